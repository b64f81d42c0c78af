"""`vkel data import e2e-gmner`: E2E-GMNER's prediction files -> the gold records with `predictions`.

Its evaluator (src/e2egmner/engine/evaluator.py) writes one JSON object per test tweet, in test order and
without an id, carrying the model's text several ways: `response_answer_orig` (the answer with boxes
restored to pixels of the original image), `response_full_orig` (the whole restored text) and
`response_full` (the raw generation, boxes in the frame of the image as Qwen2.5-VL resized it; the
`_orig` fields are empty when the restoration failed). An answer is the text between `<answer>` tags (else
after `</think>`, else all of it): `None`, or triples `entity|TYPE|[x1, y1, x2, y2]` / `entity|TYPE|None`
separated by `;` or line breaks; a triple may carry several boxes (`[[..],[..]]`). Types are GMNER's
PER/LOC/ORG/OTHER. Our reading of the grammar follows its parser (parsing.py); the code is our own.

A triple whose box does not parse is, as in their metric, a prediction that is never grounded (`box: null`
with `box_error`). Where vkel's metric differs from theirs: a prediction has one box here (the first; the
others are counted in meta), and a triple with a type outside GMNER's is kept in
`meta.generation.stage2.unparsed` rather than counted as a prediction.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..core.errors import ErrorPolicy, VkelError
from ..core.records import Record, iter_nonblank, load_object
from .benchmark import GMNER_TYPES
from .join import Item, join_by_order, set_generation

ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
AFTER_THINK = re.compile(r"</think>\s*(.*)$", re.S | re.I)
BAR_VARIANTS = "｜│丨￨∣"  # bars models write instead of `|`
TRIPLE_SEPARATOR = re.compile(r"[;；\n]+")
NUMBER = re.compile(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?")
# Qwen2.5-VL's image processor defaults (preprocessor_config.json), used to undo its resize.
QWEN_FACTOR, QWEN_MIN_PIXELS, QWEN_MAX_PIXELS = 28, 56 * 56, 28 * 28 * 16384


@dataclass
class PeerCounts:
    """What an import of another system's predictions read, kept and could not use."""
    lines: int = 0
    records: int = 0
    predictions: int = 0
    unparsed: int = 0
    box_errors: int = 0
    extra_boxes: int = 0
    notes: dict[str, int] = field(default_factory=dict)

    def note(self, key: str) -> None:
        self.notes[key] = self.notes.get(key, 0) + 1

    def record(self, predictions: list[dict], unparsed: list, extra_boxes: int) -> None:
        """Count one gold record given its imported predictions."""
        self.records += 1
        self.predictions += len(predictions)
        self.unparsed += len(unparsed)
        self.box_errors += sum("box_error" in p for p in predictions)
        self.extra_boxes += extra_boxes

    def summary(self, name: str) -> str:
        notes = "".join(f"; {n} {key}" for key, n in sorted(self.notes.items()))
        return (f"{name}: {self.lines} lines read, {self.records} records given {self.predictions} predictions; "
                f"{self.box_errors} with an unusable box (box_error, never grounded); "
                f"{self.unparsed} unparsable items kept in meta.generation.stage2.unparsed; "
                f"{self.extra_boxes} extra boxes beyond an entity's first ignored{notes}")


def answer_text(text: str) -> str:
    text = (text or "").strip()
    match = ANSWER_TAG.search(text) or AFTER_THINK.search(text)
    return (match.group(1) if match else text).strip()


def parse_boxes(text: str) -> list[list[float]] | None:
    """`None`/`n/a` -> None (not in the image); groups of 4 numbers -> boxes; anything else -> ValueError
    whose message is the `box_error` vocabulary of docs/records.md."""
    if text.strip().lower() in ("none", "n/a"):
        return None
    numbers = [float(n) for n in NUMBER.findall(text)]
    if not numbers or len(numbers) % 4:
        raise ValueError("no box")
    boxes = [numbers[i:i + 4] for i in range(0, len(numbers), 4)]
    for box in boxes:
        if box[2] < box[0] or box[3] < box[1]:
            raise ValueError("inverted")
        if box[2] == box[0] or box[3] == box[1]:
            raise ValueError("zero area")
    return boxes


def parse_answer(answer: str) -> tuple[list[dict[str, Any]], list[str], int]:
    """(predictions with every box, unparsable triples, extra boxes beyond each prediction's first)."""
    for bar in BAR_VARIANTS:
        answer = answer.replace(bar, "|")
    predictions: list[dict[str, Any]] = []
    unparsed: list[str] = []
    extra = 0
    for segment in TRIPLE_SEPARATOR.split(answer):
        segment = segment.strip()
        if not segment or segment.lower() == "none":
            continue
        parts = [p.strip() for p in segment.split("|") if p.strip()]
        if len(parts) < 3:
            unparsed.append(segment)
            continue
        text, label, box_text = " | ".join(parts[:-2]), parts[-2], parts[-1]  # a `|` inside the entity
        coarse = GMNER_TYPES.get(label.upper())
        if coarse is None:
            unparsed.append(segment)
            continue
        prediction: dict[str, Any] = {"text": text, "coarse": coarse, "fine": None}
        try:
            prediction["boxes"] = parse_boxes(box_text)
        except ValueError as err:
            prediction.update(boxes=None, box_error=str(err))
        extra += max(len(prediction["boxes"] or []) - 1, 0)
        predictions.append(prediction)
    return predictions, unparsed, extra


def smart_resize(width: int, height: int, min_pixels: int, max_pixels: int,
                 factor: int = QWEN_FACTOR) -> tuple[int, int]:
    """The (width, height) Qwen2.5-VL's processor resizes an image to: sides multiples of `factor`, area
    within [min_pixels, max_pixels], aspect ratio kept as well as that allows."""
    w_bar, h_bar = round(width / factor) * factor, round(height / factor) * factor
    if w_bar * h_bar > max_pixels:
        beta = math.sqrt(width * height / max_pixels)
        w_bar, h_bar = math.floor(width / beta / factor) * factor, math.floor(height / beta / factor) * factor
    elif w_bar * h_bar < min_pixels:
        beta = math.sqrt(min_pixels / (width * height))
        w_bar, h_bar = math.ceil(width * beta / factor) * factor, math.ceil(height * beta / factor) * factor
    return max(w_bar, factor), max(h_bar, factor)


def restore_box(box: list[float], size: list[int], resized: tuple[int, int]) -> list[float]:
    """A box in the resized frame -> pixels of the original, clamped to the image."""
    (width, height), (new_w, new_h) = size, resized
    x1, y1, x2, y2 = box[0] * width / new_w, box[1] * height / new_h, box[2] * width / new_w, box[3] * height / new_h
    return [min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width),
            min(max(y2, 0.0), height)]


def _lines(path: str) -> Iterator[Item]:
    for where, line in iter_nonblank(path):
        try:
            yield load_object(line, where), str(where)
        except VkelError as err:
            yield err, str(where)


def _chosen_text(item: dict[str, Any], where: str) -> tuple[str, str]:
    """(answer, field it came from): the restored answer first, the raw generation last."""
    for key in ("response_answer_orig", "response_full_orig", "response_full"):
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            raise VkelError(f"`{key}` must be a string, got {type(value).__name__}", where)
        if value and value.strip():
            return (value.strip() if key == "response_answer_orig" else answer_text(value)), key
    if not any(key in item for key in ("response_answer_orig", "response_full_orig", "response_full")):
        raise VkelError("no `response_answer_orig`, `response_full_orig` or `response_full`: not an "
                        "E2E-GMNER prediction line", where)
    return "", "response_full"


def import_e2e_gmner(path: str, gold: str, policy: ErrorPolicy | None = None, counts: PeerCounts | None = None,
                     min_pixels: int = QWEN_MIN_PIXELS, max_pixels: int = QWEN_MAX_PIXELS) -> Iterator[Record]:
    counts = counts if counts is not None else PeerCounts()

    def items() -> Iterator[Item]:
        for item in _lines(path):
            counts.lines += 1
            yield item

    def attach(record: Record, item: dict[str, Any], where: str) -> None:
        answer, source = _chosen_text(item, where)
        predictions, unparsed, extra = parse_answer(answer)
        notes = []
        if source == "response_full" and any(p["boxes"] for p in predictions):
            size = item.get("orig_size") or record.get("image_size")
            if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, (int, float)) and v > 0
                                                                        for v in size)):
                raise VkelError("boxes are in the model's resized frame and the image size is unknown "
                                "(no `orig_size` here, no `image_size` in the gold record)", where)
            resized = smart_resize(int(size[0]), int(size[1]), min_pixels, max_pixels)
            for p in predictions:
                p["boxes"] = [restore_box(b, size, resized) for b in p["boxes"]] if p["boxes"] else None
            notes.append(f"boxes restored from response_full's {resized[0]}x{resized[1]} frame")
            counts.note("answers taken from response_full (boxes restored from the resized frame)")
        if extra:
            notes.append(f"{extra} extra boxes ignored (a prediction has one box)")
        record["predictions"] = [
            {"text": p["text"], "coarse": p["coarse"], "fine": None, "box": p["boxes"][0] if p["boxes"] else None,
             **({"box_error": p["box_error"]} if "box_error" in p else {})} for p in predictions]
        note: dict[str, Any] = {"raw": answer, "source": f"{where} {source}"}
        if unparsed:
            note["unparsed"] = unparsed
        if notes:
            note["notes"] = notes
        set_generation(record, note)
        counts.record(predictions, unparsed, extra)

    return join_by_order(items(), path, gold, policy or ErrorPolicy("fail"), "prediction lines", attach)
