"""The record schema of docs/records.md: one check per field, shared by every stage.

The reader (`records.read_records`) checks every record it reads, so a stage only ever sees records
whose contract fields have the right shape: a wrong type, an empty image size, a box that is not four
finite numbers in order, a span outside `tokens` is a per-record error (`--on-error`) at the line it
came from, never a crash further down. Fields outside the contract pass through unchecked. An absent
field and a null one are the same (but `id`, which is required).

Boxes are strict where they are data (gold `entities[].boxes`, detected `objects[].box`: pixels,
0 <= x1 < x2, 0 <= y1 < y2) and only shaped where they are a model's answer (`predictions[].box`:
four finite numbers; a wrong answer is scored as wrong, not refused).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .errors import VkelError


class Invalid(ValueError):
    """A field that breaks the contract; `path` names it (`entities[0].boxes[1]`)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"`{path}` {message}")


def _kind(value: Any) -> str:
    return "null" if value is None else {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(path: str, value: Any, nullable: bool = True) -> None:
    if not (isinstance(value, str) or (nullable and value is None)):
        raise Invalid(path, f"must be a string{' or null' if nullable else ''}, got {_kind(value)}")


def _list(path: str, value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise Invalid(path, f"must be a list of {what}, got {_kind(value)}")
    return value


def _object(path: str, value: Any, what: str = "object") -> dict:
    if not isinstance(value, dict):
        raise Invalid(path, f"must be an {what}, got {_kind(value)}")
    return value


def box_shape(path: str, value: Any) -> list:
    if not (isinstance(value, list) and len(value) == 4 and all(is_number(v) for v in value)):
        raise Invalid(path, f"must be [x1, y1, x2, y2] (four finite numbers), got {_shown(value)}")
    return value


def pixel_box(path: str, value: Any) -> None:
    x1, y1, x2, y2 = box_shape(path, value)
    if x1 < 0 or y1 < 0:
        raise Invalid(path, f"has a negative coordinate: {_shown(value)}")
    if not (x1 < x2 and y1 < y2):
        raise Invalid(path, f"is inverted or empty (needs x1 < x2 and y1 < y2): {_shown(value)}")


def _items(path: str, value: Any, what: str, check: Callable[[str, dict], None]) -> None:
    for i, item in enumerate(_list(path, value, what)):
        check(f"{path}[{i}]", _object(f"{path}[{i}]", item))


# ------------------------------------------------------------------------------------------ fields


def check_id(path: str, value: Any, record: dict) -> None:
    if not isinstance(value, str) or not value:
        raise Invalid(path, f"must be a non-empty string (every record needs one), got {_shown(value)}")


def check_tokens(path: str, value: Any, record: dict) -> None:
    if not all(isinstance(t, str) for t in _list(path, value, "strings")):
        raise Invalid(path, "must be a list of strings")


def check_image(path: str, value: Any, record: dict) -> None:
    _string(path, value)


def check_image_size(path: str, value: Any, record: dict) -> None:
    if not (isinstance(value, list) and len(value) == 2 and all(is_number(v) and v > 0 for v in value)):
        raise Invalid(path, f"must be [width, height] in pixels, both > 0, or null, got {_shown(value)}")


def check_meta(path: str, value: Any, record: dict) -> None:
    _object(path, value)


def check_entities(path: str, value: Any, record: dict) -> None:
    tokens = record.get("tokens")

    def entity(where: str, item: dict) -> None:
        _string(f"{where}.text", item.get("text"), nullable=False)
        _string(f"{where}.coarse", item.get("coarse"))
        _string(f"{where}.fine", item.get("fine"))
        start, end = item.get("start"), item.get("end")
        for name, bound in (("start", start), ("end", end)):
            if bound is not None and not is_int(bound):
                raise Invalid(f"{where}.{name}", f"must be an integer token index, got {_shown(bound)}")
        if start is not None and end is not None:
            limit = len(tokens) if isinstance(tokens, list) else None
            if not (0 <= start < end and (limit is None or end <= limit)):
                raise Invalid(where, f"span [{start}, {end}) is outside the {limit if limit is not None else '?'} "
                                     "tokens (needs 0 <= start < end <= len(tokens))")
        boxes = item.get("boxes")
        if boxes is not None:
            for j, box in enumerate(_list(f"{where}.boxes", boxes, "[x1, y1, x2, y2]")):
                pixel_box(f"{where}.boxes[{j}]", box)

    _items(path, value, "entity objects", entity)


def check_stage1(path: str, value: Any, record: dict) -> None:
    def item(where: str, entry: dict) -> None:
        _string(f"{where}.text", entry.get("text"), nullable=False)
        _string(f"{where}.coarse", entry.get("coarse"))

    _items(path, value, "{text, coarse} objects", item)


def check_predictions(path: str, value: Any, record: dict) -> None:
    def item(where: str, entry: dict) -> None:
        _string(f"{where}.text", entry.get("text"), nullable=False)
        _string(f"{where}.coarse", entry.get("coarse"))
        _string(f"{where}.fine", entry.get("fine"))
        if entry.get("box") is not None:
            box_shape(f"{where}.box", entry["box"])

    _items(path, value, "{text, coarse, fine, box} objects", item)


def check_objects(path: str, value: Any, record: dict) -> None:
    def item(where: str, entry: dict) -> None:
        _string(f"{where}.label", entry.get("label"), nullable=False)
        score = entry.get("score")
        if score is not None and not is_number(score):
            raise Invalid(f"{where}.score", f"must be a finite number, got {_shown(score)}")
        if entry.get("box") is not None:
            pixel_box(f"{where}.box", entry["box"])

    _items(path, value, "{label, score, box} objects", item)


def check_knowledge(path: str, value: Any, record: dict) -> None:
    for entity, by_llm in _object(path, value, "object {entity: {llm: text}}").items():
        for llm, text in _object(f"{path}[{entity!r}]", by_llm, "object {llm: text}").items():
            _string(f"{path}[{entity!r}][{llm!r}]", text, nullable=False)


def check_visual_knowledge(path: str, value: Any, record: dict) -> None:
    for entity, text in _object(path, value, "object {entity: text}").items():
        _string(f"{path}[{entity!r}]", text)


# field -> its check(path, value, record); a field absent or null is not checked (but `id`).
FIELDS: dict[str, Callable[[str, Any, dict], None]] = {
    "tokens": check_tokens,
    "image": check_image,
    "image_size": check_image_size,
    "meta": check_meta,
    "entities": check_entities,
    "stage1": check_stage1,
    "objects": check_objects,
    "knowledge": check_knowledge,
    "visual_knowledge": check_visual_knowledge,
    "predictions": check_predictions,
}


def problem(record: dict) -> str | None:
    """What breaks the contract in `record` (the first problem found), or None."""
    try:
        check_id("id", record.get("id"), record)
        for field, check in FIELDS.items():
            value = record.get(field)
            if value is not None:
                check(field, value, record)
    except Invalid as err:
        return str(err)
    return None


def check_record(record: dict, where: Any = None) -> None:
    """VkelError naming `where` (file:line) and the record when a contract field is malformed."""
    message = problem(record)
    if message is not None:
        rid = record.get("id")
        prefix = f"record {rid!r}: " if isinstance(rid, str) and rid else ""
        raise VkelError(prefix + message, str(where) if where is not None else None)


class UniqueIds:
    """Refuses a record whose id was already seen in the same stream (memory: the ids seen)."""

    def __init__(self):
        self._seen: set[str] = set()

    def check(self, record: dict, where: Any = None) -> None:
        rid = record["id"]
        if rid in self._seen:
            raise VkelError(f"duplicate id {rid!r}: an earlier record of the stream has it",
                            str(where) if where is not None else None)
        self._seen.add(rid)
