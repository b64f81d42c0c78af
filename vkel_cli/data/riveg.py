"""`vkel data import riveg`: RiVEG's prediction lines -> the gold records with `predictions`.

RiVEG (statistic/statistic.py) scores one line per predicted entity:
`IMAGE###entity(TYPE)###description###FLAG###&[x1, y1, x2, y2]` — IMAGE is the tweet's image name
(`71044.jpg`, in its intermediate files `Imageid:71044.jpg#8465`), TYPE one of PER/LOC/ORG/OTHER, FLAG 0
when the entity is judged not in the image (the box is then `[0, 0, 0, 0]`), the box in pixels of the
original image (its gold lines may chain several: `&[..]&[..]`). Lines are joined to the gold records by
IMAGE's stem = the record id; a tweet with no line has no prediction. Our reading of the grammar follows
that script; the code is our own.

A line judged in the image (FLAG not 0) without a usable box is, as in its scorer, a prediction never
grounded (`box: null` with `box_error`). A line whose entity or type does not parse is kept in its record's
`meta.generation.stage2.unparsed` and counted; a line whose image cannot be read, or names no gold record,
is an error of that line (`--on-error`).
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator

from ..core.errors import ErrorPolicy, Location, VkelError
from ..core.records import Record
from .benchmark import GMNER_TYPES
from .e2e_gmner import NUMBER, PeerCounts
from .join import join_by_id, set_generation
from .text import decode_line, text_lines

ENTITY = re.compile(r"^(.*\S)\s*\(([^()]*)\)\s*$")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def image_id(field: str) -> str:
    """`Imageid:71044.jpg#8465` / `71044.jpg` / `71044` -> `71044`."""
    name = field.strip().removeprefix("Imageid:").split("#", 1)[0].strip()
    stem, ext = os.path.splitext(os.path.basename(name))
    return stem if ext.lower() in IMAGE_EXTENSIONS else os.path.basename(name)


def parse_line(line: str) -> tuple[dict[str, Any] | None, int]:
    """(prediction, extra boxes) from one line's fields after the image; None when it does not parse."""
    fields = line.split("###")
    entity = ENTITY.match(fields[1].strip()) if len(fields) >= 2 else None
    if entity is None or entity.group(2).strip().upper() not in GMNER_TYPES:
        return None, 0
    last = fields[-1].strip()
    flag_field = fields[-2].strip() if last.startswith("&") else last
    flag = int(flag_field) if re.fullmatch(r"[0-9]+", flag_field) and len(fields) >= 3 else None
    boxes: list[list[float]] = []
    if last.startswith("&"):
        boxes = [[float(n) for n in NUMBER.findall(part)] for part in last.split("&")[1:]]
    prediction: dict[str, Any] = {"text": entity.group(1), "coarse": GMNER_TYPES[entity.group(2).strip().upper()],
                                  "fine": None, "box": None}
    if flag == 0 or (flag is None and boxes and not any(boxes[0])):
        return prediction, 0  # RiVEG writes FLAG 0 and `&[0, 0, 0, 0]` for an entity not in the image
    # judged in the image: a box that is not one is never grounded (its scorer gets IoU 0 from it)
    if not boxes or len(boxes[0]) != 4:
        prediction["box_error"] = "no box"
    elif boxes[0][2] < boxes[0][0] or boxes[0][3] < boxes[0][1]:
        prediction["box_error"] = "inverted"
    elif boxes[0][2] == boxes[0][0] or boxes[0][3] == boxes[0][1]:
        prediction["box_error"] = "zero area"
    else:
        prediction["box"] = boxes[0]
    return prediction, max(len(boxes) - 1, 0)


def import_riveg(path: str, gold: str, policy: ErrorPolicy | None = None,
                 counts: PeerCounts | None = None) -> Iterator[Record]:
    """Reads the prediction file whole (it is grouped by image, not by gold order), then streams the gold."""
    policy = policy or ErrorPolicy("fail")
    counts = counts if counts is not None else PeerCounts()
    groups: dict[str, list[tuple[str, str]]] = {}
    first: dict[str, Location] = {}
    for lineno, raw, name in text_lines(path):
        try:
            line = decode_line(raw, lineno, name)
        except VkelError as err:
            counts.lines += 1
            policy.handle(err)
            continue
        if not line.strip():
            continue
        counts.lines += 1
        where = Location(name, lineno)
        key = image_id(line.split("###", 1)[0]) if "###" in line else ""
        if not key:
            policy.handle(VkelError(f"not a RiVEG line (`IMAGE###entity(TYPE)###...###&[x1, y1, x2, y2]`): "
                                    f"{line[:80]!r}", str(where)))
            continue
        groups.setdefault(key, []).append((line, str(where)))
        first.setdefault(key, where)

    def attach(record: Record, lines: list[tuple[str, str]]) -> None:
        predictions, unparsed, extra = [], [], 0
        for line, _ in lines:
            prediction, more = parse_line(line)
            if prediction is None:
                unparsed.append(line)
            else:
                predictions.append(prediction)
                extra += more
        record["predictions"] = predictions
        note: dict[str, Any] = {"raw": "\n".join(line for line, _ in lines)}
        if lines:
            note["source"] = ", ".join(where for _, where in lines)
        if unparsed:
            note["unparsed"] = unparsed
        if extra:
            note["notes"] = [f"{extra} extra boxes ignored (a prediction has one box)"]
        set_generation(record, note)
        counts.record(predictions, unparsed, extra)

    return join_by_id(groups, path, gold, policy, attach, first)
