"""`vkel data stats`: the figures of the paper's Table II (and III) for a record stream."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from ..core import hierarchy
from ..core.records import Record


def stats(records: Iterable[Record]) -> dict:
    tweets = entities = groundable = boxes = 0
    by_coarse: Counter = Counter({t: 0 for t in hierarchy.coarse_types()})
    for record in records:
        tweets += 1
        for entity in record.get("entities") or []:
            entities += 1
            by_coarse[entity.get("coarse")] += 1
            if entity.get("boxes"):
                groundable += 1
                boxes += len(entity["boxes"])
    return {"tweets": tweets, "entities": entities, "groundable": groundable, "boxes": boxes,
            "by_coarse": dict(by_coarse)}
