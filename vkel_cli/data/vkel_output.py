"""`vkel data import vkel-output`: LLaVA generations (JSONL, `output` field, one line per gold record
in order) -> the gold records with `stage1` or `predictions` parsed by the one shared parser."""

from __future__ import annotations

from typing import Iterator

from ..fetch import images
from ..format import sequences
from ..core.errors import ErrorPolicy, VkelError
from ..core.records import Record, iter_nonblank, load_object
from .join import Item, join_by_order


def detect_stage(text: str) -> int | None:
    """2 for a stage-2 answer (any clause with a box part, coarse-only ones included), 1 for a stage-1
    answer with entities, None when the text cannot tell (e.g. "no entity found.")."""
    lowered = text.lower()
    if "bounding box" in lowered:
        return 2
    return 1 if " is a" in lowered else None


# Where each trainer's prediction file keeps the generated text: vkel/VKEL (`output`), LLaMA-Factory's
# generated_predictions.jsonl (`predict`), ms-swift's `swift infer` result (`response`), LLaVA's
# model_vqa answers (`text`); the first string found is the generation.
GENERATION_FIELDS = ("output", "predict", "response", "text")


def _outputs(path: str) -> Iterator[Item]:
    for where, line in iter_nonblank(path):
        try:
            item = load_object(line, where)
            text = next((item[key] for key in GENERATION_FIELDS if isinstance(item.get(key), str)), None)
            if text is None:
                raise VkelError("expected an object with a string `output` (or `predict`, `response`, `text`)",
                                str(where))
            yield text, str(where)
        except VkelError as err:
            yield err, str(where)


def import_outputs(path: str, gold: str, stage: str = "auto", image_root: str | None = None,
                   policy: ErrorPolicy | None = None) -> Iterator[Record]:
    decided: list[int] = []  # auto: an answer that cannot tell follows the last one that could

    def attach(record: Record, text: str, where: str) -> None:
        if stage == "auto":
            found = detect_stage(text)
            if found is not None:
                decided[:] = [found]
            chosen = found or (decided[0] if decided else 1)
        else:
            chosen = int(stage)
        if chosen == 1:
            sequences.attach_stage1(record, text)
        else:
            sequences.attach_stage2(record, text, images.size_of(record, image_root))

    return join_by_order(_outputs(path), path, gold, policy or ErrorPolicy("fail"), "generations", attach)
