"""What the report sums over the whole stream: a fine-type confusion matrix, the IoU histogram of
matched pairs and the count of each error kind (per coarse type)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .align import KINDS, Item

MISSED = "(missed)"
SPURIOUS = "(spurious)"
UNTYPED = "(none)"
BINS = 10  # IoU histogram: [0, 0.1), ..., [0.9, 1.0]


def fine_of(entity: dict[str, Any] | None) -> str:
    if entity is None:
        return UNTYPED
    return str(entity.get("fine") or "").lower() or UNTYPED


class Summary:
    def __init__(self):
        self.confusion: Counter = Counter()  # (gold fine or SPURIOUS, predicted fine or MISSED) -> n
        self.iou_bins = [0] * BINS
        self.one_box_null = 0  # text-matched pairs where only one side has a box
        self.kinds: Counter = Counter()  # (kind, coarse) -> n
        self.records = 0

    def add(self, items: list[Item]) -> None:
        self.records += 1
        for item in items:
            self.kinds[(item.kind, item.coarse)] += 1
            gold = fine_of(item.gold) if item.gold is not None else SPURIOUS
            pred = fine_of(item.pred) if item.pred is not None else MISSED
            self.confusion[(gold, pred)] += 1
            if item.gold is not None and item.pred is not None:
                if item.iou is not None:
                    self.iou_bins[min(int(item.iou * BINS), BINS - 1)] += 1
                elif bool(item.gold.get("boxes")) != (item.pred.get("box") is not None):
                    self.one_box_null += 1

    def kind_totals(self) -> dict[str, int]:
        return {kind: sum(n for (k, _), n in self.kinds.items() if k == kind) for kind in KINDS}

    def coarse_types(self) -> list[str]:
        from ..core import hierarchy

        seen = {coarse for _, coarse in self.kinds}
        known = hierarchy.coarse_types()
        return [t for t in known if t in seen] + sorted(seen - set(known))

    def matrix_labels(self) -> tuple[list[str], list[str]]:
        """Row labels (gold fine types seen, then spurious) and column labels (predicted, then missed),
        in the hierarchy's order."""
        from ..core import hierarchy

        order = {fine: i for i, fine in enumerate(hierarchy.fine_types())}

        def key(name: str):
            return (order.get(name, len(order)), name)

        gold = sorted({g for g, _ in self.confusion if g != SPURIOUS}, key=key)
        pred = sorted({p for _, p in self.confusion if p != MISSED}, key=key)
        return gold + [SPURIOUS], pred + [MISSED]
