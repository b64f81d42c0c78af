"""`vkel data import vkel-output`: LLaVA generations (JSONL, `output` field, one line per gold record
in order) -> the gold records with `stage1` or `predictions` parsed by the one shared parser."""

from __future__ import annotations

from itertools import zip_longest
from typing import Iterator

from .. import images, sequences
from ..errors import VkelError
from ..records import Record, iter_nonblank, load_object, read_records, source_name


def detect_stage(text: str) -> int:
    lowered = text.lower()
    return 2 if (" and a" in lowered and "bounding box" in lowered) else 1


def _outputs(path: str) -> Iterator[tuple[str, str]]:
    for where, line in iter_nonblank(path):
        item = load_object(line, where)
        if not isinstance(item.get("output"), str):
            raise VkelError("expected an object with a string `output`", str(where))
        yield item["output"], str(where)


def import_outputs(path: str, gold: str, stage: str = "auto", image_root: str | None = None) -> Iterator[Record]:
    for pair in zip_longest(_outputs(path), read_records([gold])):
        output, record = pair
        if record is None:
            raise VkelError(f"more generations than gold records in {source_name(gold)}", output[1])
        if output is None:
            raise VkelError(f"fewer generations in {source_name(path)} than gold records", str(record[1]))
        (text, _), (record, _) = output, record
        chosen = detect_stage(text) if stage == "auto" else int(stage)
        if chosen == 1:
            sequences.attach_stage1(record, text)
        else:
            sequences.attach_stage2(record, text, images.size_of(record, image_root))
        yield record
