"""The sequence formats of VKEL's two stages: gold records -> target text, and generated text ->
entities (the one parser used by `vkel predict` and `vkel data import vkel-output`).

Stage 1:  `Kevin Love is a(an) person; J. R. Smith is a(an) person.`  or  `no entity found.`
Stage 2:  `Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0)`
          several boxes separated by `, `; `None` when the entity is not in the image; entities joined
          by `; `. Coordinates are fractions of the image size rounded to 3 decimals.

The parser never raises: it keeps every clause that parses and reports the fragments that did not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from . import boxes as box_ops
from . import hierarchy

NO_ENTITY = "no entity found."
_NUM = r"-?\d+(?:\.\d*)?(?:[eE]-?\d+)?"
_BOX = rf"\(\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*\)"
_ARTICLE = r"(?:a\s*\(an\)|an|a)"
_END = r"\s*(?:;|\.?\s*$)"
_STAGE1 = re.compile(rf"\s*(?P<text>.+?)\s+is\s+{_ARTICLE}\s+(?P<coarse>[A-Za-z_]+){_END}", re.I)
_STAGE2 = re.compile(
    rf"\s*(?P<text>.+?)\s+is\s+{_ARTICLE}\s+(?P<coarse>[A-Za-z_]+)\s+and\s+{_ARTICLE}\s+(?P<fine>[A-Za-z_]+)"
    rf"(?:\s*,?\s*whose\s+bounding\s+box(?:es)?\s+(?:are|is)\s+(?P<boxes>none|{_BOX}(?:\s*,\s*{_BOX})*))?{_END}",
    re.I,
)
_BOX_RE = re.compile(_BOX)
_NUM_RE = re.compile(_NUM)


# ---------------------------------------------------------------------------------- targets


def stage1_target(entities: Iterable[dict[str, Any]]) -> str:
    clauses = [f"{e['text']} is a(an) {e['coarse']}" for e in entities]
    return "; ".join(clauses) + "." if clauses else NO_ENTITY


def boxes_text(boxes: Sequence[Sequence[float]], image_size: Sequence[float] | None) -> str:
    if not boxes or not image_size:
        return "None"
    return ", ".join(box_ops.format_box(box_ops.normalize(b, image_size)) for b in boxes)


def stage2_target(entities: Iterable[dict[str, Any]], image_size: Sequence[float] | None) -> str:
    clauses = [
        f"{e['text']} is a(an) {e['coarse']} and a(an) {e['fine']}, whose bounding boxes are "
        + boxes_text(e.get("boxes") or [], image_size)
        for e in entities
    ]
    return "; ".join(clauses) if clauses else NO_ENTITY


# ----------------------------------------------------------------------------------- parser


@dataclass
class ParseResult:
    items: list[dict[str, Any]] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.unparsed and not self.notes


def _is_no_entity(text: str) -> bool:
    return text.strip().rstrip(".").strip().lower() in ("no entity found", "none", "")


def _clauses(text: str, pattern: re.Pattern) -> tuple[list[re.Match], list[str]]:
    """Match `pattern` clause after clause; skip to the next `; ` where a clause does not parse."""
    matches, unparsed, pos = [], [], 0
    text = text.strip()
    while pos < len(text):
        match = pattern.match(text, pos)
        if match and match.end() > pos:
            matches.append(match)
            pos = match.end()
            continue
        cut = text.find(";", pos)
        fragment = text[pos:] if cut < 0 else text[pos:cut]
        if fragment.strip(" .;"):
            unparsed.append(fragment.strip())
        pos = len(text) if cut < 0 else cut + 1
    return matches, unparsed


def _check_types(result: ParseResult) -> None:
    known_coarse = set(hierarchy.coarse_types())
    known_fine = set(hierarchy.fine_types())
    for item in result.items:
        if item["coarse"] not in known_coarse:
            result.notes.append(f"unknown coarse type {item['coarse']!r} for {item['text']!r}")
        if "fine" in item and item["fine"] not in known_fine:
            result.notes.append(f"unknown fine type {item['fine']!r} for {item['text']!r}")


def parse_stage1(text: str) -> ParseResult:
    if _is_no_entity(text):
        return ParseResult()
    matches, unparsed = _clauses(text, _STAGE1)
    result = ParseResult(
        items=[{"text": m["text"].strip(), "coarse": m["coarse"].lower()} for m in matches], unparsed=unparsed
    )
    _check_types(result)
    return result


def _boxes(group: str | None) -> list[list[float]] | None:
    if group is None or group.lower() == "none":
        return None if group is None else []
    return [[float(v) for v in _NUM_RE.findall(b)] for b in _BOX_RE.findall(group)]


def parse_stage2(text: str) -> ParseResult:
    """Items carry `boxes`: normalized boxes, [] for None; a clause without a box part gets []
    and a note."""
    if _is_no_entity(text):
        return ParseResult()
    matches, unparsed = _clauses(text, _STAGE2)
    result = ParseResult(unparsed=unparsed)
    for m in matches:
        boxes = _boxes(m["boxes"])
        if boxes is None:
            result.notes.append(f"no bounding-box part for {m['text'].strip()!r}")
            boxes = []
        for b in boxes:
            if not (0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1):
                result.notes.append(f"box {b} of {m['text'].strip()!r} is not a valid normalized box")
        result.items.append(
            {"text": m["text"].strip(), "coarse": m["coarse"].lower(), "fine": m["fine"].lower(), "boxes": boxes}
        )
    _check_types(result)
    return result


# ------------------------------------------------------------------------- onto records


def _note(record: dict[str, Any], stage: str, raw: str, result: ParseResult) -> None:
    """meta.generation.<stage> keeps the raw text, and what did not parse when anything did not."""
    note: dict[str, Any] = {"raw": raw}
    if result.unparsed:
        note["unparsed"] = result.unparsed
    if result.notes:
        note["notes"] = result.notes
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    record["meta"] = meta
    meta.setdefault("generation", {})[stage] = note


def attach_stage1(record: dict[str, Any], raw: str) -> ParseResult:
    result = parse_stage1(raw)
    record["stage1"] = result.items
    _note(record, "stage1", raw, result)
    return result


def to_predictions(items: list[dict[str, Any]], image_size: Sequence[float] | None) -> list[dict[str, Any]]:
    """Stage-2 items -> `predictions`: the first generated box, back in pixels, is the box."""
    predictions = []
    for item in items:
        box = None
        if item["boxes"] and image_size:
            box = box_ops.denormalize(item["boxes"][0], image_size)
        predictions.append({"text": item["text"], "coarse": item["coarse"], "fine": item["fine"], "box": box})
    return predictions


def attach_stage2(record: dict[str, Any], raw: str, image_size: Sequence[float] | None) -> ParseResult:
    result = parse_stage2(raw)
    if not image_size and any(item["boxes"] for item in result.items):
        result.notes.append("image size unknown: generated boxes cannot be converted to pixels")
    record["predictions"] = to_predictions(result.items, image_size)
    _note(record, "stage2", raw, result)
    return result
