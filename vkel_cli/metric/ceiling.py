"""`vkel ceiling`: how good can grounding be with these objects? (the paper's Table I)

A method that grounds an entity by choosing one of the detector's top-K objects can only be right when
one of those objects overlaps a gold box enough. For each K and IoU threshold this counts the groundable
gold entities (those with at least one gold box) that have an object among the K highest-scoring ones
with IoU >= the threshold against any of their boxes: the recall ceiling the detector puts on
candidate-selection grounding. Entities are counted one by one (one object may cover several entities,
as a candidate list may offer the same object to each of them); entities not in the image are left out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Sequence

from ..core import hierarchy
from ..core.boxes import iou
from .tables import Layout

DEFAULT_KS = (2, 5, 10, 15, 20)


def top_objects(objects: Iterable[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The k highest-scoring objects (ties keep the detector's order)."""
    return sorted(objects, key=lambda obj: -float(obj.get("score", 0.0)))[:k]


def best_rank(entity: dict[str, Any], ranked: Sequence[dict[str, Any]], threshold: float) -> int | None:
    """1-based rank of the first object overlapping one of the entity's boxes with IoU >= threshold."""
    for rank, obj in enumerate(ranked, 1):
        if any(iou(obj["box"], box) >= threshold for box in entity.get("boxes") or []):
            return rank
    return None


class Ceiling:
    """Accumulates, per (K, IoU, coarse type), groundable gold entities and those covered by the top K."""

    def __init__(self, ks: Sequence[int] = DEFAULT_KS, ious: Sequence[float] = (0.5,), by_type: bool = False):
        self.ks = sorted(set(ks))
        self.ious = list(ious)
        self.by_type = by_type
        self.groundable: dict[str, int] = defaultdict(int)  # type -> groundable entities
        self.covered: dict[tuple[int, float, str], int] = defaultdict(int)
        self.records = 0
        self.without_objects = 0
        self.objects = 0

    def add(self, entities: Iterable[dict[str, Any]], objects: Iterable[dict[str, Any]] | None) -> None:
        self.records += 1
        if objects is None:
            self.without_objects += 1
        ranked = top_objects(objects or [], max(self.ks))
        self.objects += len(objects or [])
        for entity in entities:
            if not entity.get("boxes"):
                continue
            groups = ["all"]
            if self.by_type:
                coarse = entity.get("coarse") or (hierarchy.coarse_of(entity["fine"]) if entity.get("fine") else "")
                groups.append(str(coarse or "").lower())
            for group in groups:
                self.groundable[group] += 1
            for threshold in self.ious:
                rank = best_rank(entity, ranked, threshold)
                if rank is None:
                    continue
                for k in self.ks:
                    if rank <= k:
                        for group in groups:
                            self.covered[(k, threshold, group)] += 1

    def results(self) -> list[dict[str, Any]]:
        known = hierarchy.coarse_types()
        seen = set(self.groundable) - {"all"}
        types = ["all"] + [t for t in known if t in seen] + sorted(seen - set(known))
        rows = []
        for threshold in self.ious:
            for type_name in types:
                for k in self.ks:
                    n = self.groundable[type_name]
                    covered = self.covered[(k, threshold, type_name)]
                    rows.append({"k": k, "iou": threshold, "type": type_name, "covered": covered,
                                 "groundable": n, "recall": covered / n if n else 0.0})
        return rows


def ceiling_stream(pairs, ceiling: Ceiling, policy=None) -> None:
    """Feed (record, location) pairs: each needs gold `entities`; a record without `objects` counts as
    one whose detector found nothing (counted in `ceiling.without_objects`)."""
    from ..core.errors import ErrorPolicy, VkelError

    policy = policy or ErrorPolicy("fail")
    for record, where in pairs:
        if not isinstance(record.get("entities"), list):
            policy.handle(VkelError("record has no gold `entities`", str(where)))
            continue
        ceiling.add(record["entities"], record.get("objects"))


def _cells(row: dict[str, Any]) -> list[str]:
    return [f"{row['iou']:g}", row["type"], str(row["k"]), f"{100 * row['recall']:.2f}", str(row["covered"]),
            str(row["groundable"])]


LAYOUT = Layout(("IoU", "type", "K", "recall %", "covered", "groundable"), _cells, left=(1,))
