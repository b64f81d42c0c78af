"""Which gold entity each prediction answered, and what was wrong with it, by the scorer's own rules.

The pairs come from `vkel_cli.metric.score` (same text normalisation, type comparison, `box_error` and IoU
rules, same maximum matching), matched in rounds so that each entity gets its best explanation:
  1. correct      text, type and grounding right (the FMNERG matching: as many as `vkel score` counts)
  2. wrong_type   text and grounding right, type wrong (EEG right, FMNER wrong)
  3. wrong_box    text and type right, grounding wrong (FMNER right, EEG wrong)
  4. wrong_type   text right only (`box_ok` False: the box is wrong too)
and what is left is `missed` (gold) or `spurious` (prediction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..metric.score import Scorer, maximum_matching

KINDS = ("correct", "wrong_type", "wrong_box", "missed", "spurious")
KIND_LABELS = {"correct": "correct", "wrong_type": "wrong type", "wrong_box": "wrong box", "missed": "missed",
               "spurious": "spurious"}


@dataclass
class Item:
    kind: str
    gold: dict[str, Any] | None
    pred: dict[str, Any] | None
    iou: float | None = None  # best IoU of the predicted box with the gold boxes (both present)
    box_ok: bool = True  # for wrong_type: whether the grounding was right

    @property
    def coarse(self) -> str:
        from ..core import hierarchy

        item = self.gold or self.pred or {}
        coarse = item.get("coarse") or (hierarchy.coarse_of(item["fine"]) if item.get("fine") else "")
        # a filter key: no spaces (the card lists its keys space-separated)
        return "_".join(str(coarse or "").lower().split()) or "untyped"


def align(gold: list[dict[str, Any]], predictions: list[dict[str, Any]], scorer: Scorer,
          threshold: float) -> list[Item]:
    """The record's items: gold entities in order (with the prediction matched to each), then spurious
    predictions in order."""
    pairs = scorer.pairs(gold, predictions)
    free_preds = set(range(len(predictions)))
    free_golds = set(range(len(gold)))
    matched: dict[int, tuple[int, str, bool]] = {}  # gold -> (pred, kind, box_ok)
    rounds = [("FMNERG", "correct", True), ("EEG", "wrong_type", True), ("FMNER", "wrong_box", False),
              (None, "wrong_type", False)]
    for task, kind, box_ok in rounds:
        preds = sorted(free_preds)
        golds = sorted(free_golds)

        def ok(pair) -> bool:
            return pair.text if task is None else scorer.correct(pair, task, threshold)

        edges = [[golds.index(j) for j in golds if ok(pairs[i][j])] for i in preds]
        for right, left in maximum_matching(len(preds), edges).items():
            pred_index, gold_index = preds[left], golds[right]
            matched[gold_index] = (pred_index, kind, box_ok)
            free_preds.discard(pred_index)
            free_golds.discard(gold_index)
    items = []
    for j, entity in enumerate(gold):
        if j not in matched:
            items.append(Item("missed", entity, None))
            continue
        i, kind, box_ok = matched[j]
        best = pairs[i][j].best_iou
        items.append(Item(kind, entity, predictions[i], best if best >= 0 else None, box_ok))
    items += [Item("spurious", None, predictions[i]) for i in sorted(free_preds)]
    return items
