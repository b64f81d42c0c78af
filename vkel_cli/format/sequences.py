"""The sequence formats of VKEL's two stages: gold records -> target text, and generated text ->
entities (the one parser used by `vkel predict` and `vkel data import vkel-output`).

Stage 1:  `Kevin Love is a(an) person; J. R. Smith is a(an) person.`  or  `no entity found.`
Stage 2:  `Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0)`
          several boxes separated by `, `; `None` when the entity is not in the image; entities joined
          by `; `. Coordinates are fractions of the image size rounded to 3 decimals.

The parser (the grammar is in parse_generation.py) never raises: it keeps every clause that parses,
reports the fragments that did not in `unparsed`, and what it guessed or repaired in `notes`; `clean` is
true only when there is neither. It reads the tweet's tokens to tell an entity from the prose around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..core import boxes as box_ops
from ..core import hierarchy
from . import parse as parse_generation

NO_ENTITY = "no entity found."


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


def _check_types(result: ParseResult) -> None:
    known_coarse = set(hierarchy.coarse_types())
    known_fine = set(hierarchy.fine_types())
    for item in result.items:
        if item["coarse"] not in known_coarse:
            result.notes.append(f"unknown coarse type {item['coarse']!r} for {item['text']!r}")
        if item.get("fine") is not None and item["fine"] not in known_fine:
            result.notes.append(f"unknown fine type {item['fine']!r} for {item['text']!r}")


def _parse(text: str, stage: int, tokens: Sequence[str] | None) -> ParseResult:
    reading = parse_generation.read(text, stage, tokens)
    result = ParseResult(parse_generation.as_items(reading, stage), reading.unparsed, reading.notes)
    _check_types(result)
    return result


def parse_stage1(text: str, tokens: Sequence[str] | None = None) -> ParseResult:
    """Items `{"text", "coarse"}`. With the tweet's `tokens`, prose before an entity is told apart."""
    return _parse(text, 1, tokens)


def parse_stage2(text: str, tokens: Sequence[str] | None = None) -> ParseResult:
    """Items `{"text", "coarse", "fine", "boxes"}` (+ `box_error`): `boxes` are the usable normalized boxes,
    [] for None; `fine` is None for a coarse-only clause; `box_error` (cut off, out of range, inverted,
    zero area, no box) says why an entity has no usable box although the model did not say None."""
    return _parse(text, 2, tokens)


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


def _tokens(record: dict[str, Any]) -> list[str] | None:
    tokens = record.get("tokens")
    return tokens if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) else None


def attach_stage1(record: dict[str, Any], raw: str) -> ParseResult:
    result = parse_stage1(raw, _tokens(record))
    record["stage1"] = result.items
    _note(record, "stage1", raw, result)
    return result


def to_predictions(items: list[dict[str, Any]], image_size: Sequence[float] | None) -> list[dict[str, Any]]:
    """Stage-2 items -> `predictions`: the first usable generated box, back in pixels, is the box. An entity
    whose boxes cannot be used gets `box: null` and `box_error`, which the scorer never grounds."""
    predictions = []
    for item in items:
        prediction = {"text": item["text"], "coarse": item["coarse"], "fine": item["fine"], "box": None}
        if item["boxes"] and image_size:
            prediction["box"] = box_ops.denormalize(item["boxes"][0], image_size)
        elif item["boxes"]:
            prediction["box_error"] = "image size unknown"
        if item.get("box_error"):
            prediction["box_error"] = item["box_error"]
        predictions.append(prediction)
    return predictions


def attach_stage2(record: dict[str, Any], raw: str, image_size: Sequence[float] | None) -> ParseResult:
    result = parse_stage2(raw, _tokens(record))
    if not image_size and any(item["boxes"] for item in result.items):
        result.notes.append("image size unknown: generated boxes cannot be converted to pixels")
    record["predictions"] = to_predictions(result.items, image_size)
    _note(record, "stage2", raw, result)
    return result
