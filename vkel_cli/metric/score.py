"""`vkel score`: FMNERG / FMNER / EEG micro precision, recall and F1, the paper's metric made exact.

A prediction is correct for a task when its text equals a gold entity's text (FMNER, EEG, FMNERG),
its type equals the gold type (FMNER, FMNERG; fine by default, coarse with level="coarse"), and its
grounding is right (EEG, FMNERG): both boxes null, or IoU with any one gold box >= the threshold; a
prediction marked `box_error` (its generated box was unusable) is never grounded.
Within a record predictions and gold entities are matched one to one (a maximum bipartite matching),
so duplicates count as extra predictions and each repeated gold mention needs its own prediction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..core import hierarchy
from ..core.boxes import iou

TASKS = ("FMNERG", "FMNER", "EEG")
# task -> (needs type, needs grounding); every task needs the entity text
_NEEDS = {"FMNERG": (True, True), "FMNER": (True, False), "EEG": (False, True)}


def normalize_text(text: str, ignore_case: bool) -> str:
    text = " ".join(str(text).split())
    return text.lower() if ignore_case else text


def max_matching(n_left: int, edges: list[list[int]]) -> int:
    """Size of a maximum bipartite matching (Kuhn's augmenting paths; records are small)."""
    return len(maximum_matching(n_left, edges))


def maximum_matching(n_left: int, edges: list[list[int]]) -> dict[int, int]:
    """A maximum bipartite matching as {right: left} (`vkel report` shows which pairs it made)."""
    match_right: dict[int, int] = {}

    def augment(left: int, seen: set[int]) -> bool:
        for right in edges[left]:
            if right in seen:
                continue
            seen.add(right)
            if right not in match_right or augment(match_right[right], seen):
                match_right[right] = left
                return True
        return False

    for left in range(n_left):
        if edges[left]:
            augment(left, set())
    return match_right


@dataclass
class _Pair:
    """What one (prediction, gold) pair agrees on; grounding is decided per threshold."""

    text: bool
    type: bool
    both_null: bool
    best_iou: float  # -1 when one side has no box


_NO_MATCH = _Pair(text=False, type=False, both_null=False, best_iou=-1.0)


class Scorer:
    def __init__(self, level: str = "fine", ious: Sequence[float] = (0.5,), by_type: bool = False,
                 ignore_case: bool = False):
        if level not in ("fine", "coarse"):
            raise ValueError("level must be 'fine' or 'coarse'")
        self.level = level
        self.ious = list(ious)
        self.by_type = by_type
        self.ignore_case = ignore_case
        # (task, iou, type) -> [tp, n_pred, n_gold]
        self.counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.types_seen: set[str] = set()

    def _coarse(self, item: dict[str, Any]) -> str:
        coarse = item.get("coarse")
        if not coarse and item.get("fine"):
            coarse = hierarchy.coarse_of(item["fine"])
        return str(coarse or "").lower()

    def _type(self, item: dict[str, Any]) -> str:
        return str(item.get("fine") or "").lower() if self.level == "fine" else self._coarse(item)

    def _pair(self, pred: dict[str, Any], gold: dict[str, Any]) -> _Pair:
        """The pair's agreement, for a pair whose texts are equal (others never count)."""
        # A prediction with `box_error` (the model's box was unusable: cut off, inverted...) is grounded
        # nowhere: its null box never means "not in the image".
        box = None if pred.get("box_error") else pred.get("box")
        gold_boxes = gold.get("boxes") or []
        return _Pair(
            text=True,
            type=self._type(pred) == self._type(gold) and self._type(gold) != "",
            both_null=box is None and not gold_boxes and not pred.get("box_error"),
            best_iou=max((iou(box, g) for g in gold_boxes), default=-1.0) if box is not None else -1.0,
        )

    def pairs(self, gold: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> list[list[_Pair]]:
        """pairs[i][j]: what prediction i and gold entity j agree on."""
        gold_texts = [normalize_text(g.get("text", ""), self.ignore_case) for g in gold]
        pred_texts = [normalize_text(p.get("text", ""), self.ignore_case) for p in predictions]
        return [[self._pair(p, g) if pt == gt else _NO_MATCH for g, gt in zip(gold, gold_texts)]
                for p, pt in zip(predictions, pred_texts)]

    @staticmethod
    def correct(pair: _Pair, task: str, threshold: float | None) -> bool:
        """Whether the pair counts as a true positive for `task` at IoU `threshold`."""
        needs_type, needs_ground = _NEEDS[task]
        if not pair.text or (needs_type and not pair.type):
            return False
        return not needs_ground or pair.both_null or pair.best_iou >= threshold  # type: ignore[operator]

    def _tp(self, pairs: list[list[_Pair]], preds: list[int], golds: list[int], task: str,
            threshold: float | None) -> int:
        edges = [[j for j in golds if self.correct(pairs[i][j], task, threshold)] for i in preds]
        return max_matching(len(preds), edges)

    def _keys(self):
        for task in TASKS:
            for threshold in ([None] if task == "FMNER" else self.ious):
                yield task, threshold

    def add(self, gold: Iterable[dict[str, Any]], predictions: Iterable[dict[str, Any]]) -> None:
        """Score one record."""
        gold, predictions = list(gold), list(predictions)
        pairs = self.pairs(gold, predictions)
        pred_types = [self._coarse(p) for p in predictions]
        gold_types = [self._coarse(g) for g in gold]
        groups = {"all": (list(range(len(predictions))), list(range(len(gold))))}
        if self.by_type:
            for t in set(pred_types) | set(gold_types):
                self.types_seen.add(t)
                groups[t] = ([i for i, x in enumerate(pred_types) if x == t],
                             [j for j, x in enumerate(gold_types) if x == t])
        for task, threshold in self._keys():
            for type_name, (preds, golds) in groups.items():
                counts = self.counts[(task, threshold, type_name)]
                counts[0] += self._tp(pairs, preds, golds, task, threshold) if preds and golds else 0
                counts[1] += len(preds)
                counts[2] += len(golds)

    def results(self) -> list[dict[str, Any]]:
        known = hierarchy.coarse_types()
        types = ["all"] + ([t for t in known if t in self.types_seen] +
                           sorted(self.types_seen - set(known)) if self.by_type else [])
        rows = []
        for task, threshold in self._keys():
            for type_name in types:
                tp, n_pred, n_gold = self.counts[(task, threshold, type_name)]
                precision = tp / n_pred if n_pred else 0.0
                recall = tp / n_gold if n_gold else 0.0
                f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
                rows.append({"task": task, "iou": threshold, "type": type_name, "level": self.level, "tp": tp,
                             "n_pred": n_pred, "n_gold": n_gold, "precision": precision, "recall": recall,
                             "f1": f1})
        return rows


def _predictions(record: dict[str, Any], field: str, where) -> list[dict[str, Any]]:
    from ..core.errors import VkelError

    value = record.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise VkelError(f"`{field}` must be a list of objects", str(where))
    return value


def score_stream(pairs, scorer: Scorer, pred_field: str = "predictions", gold: dict[str, list] | None = None,
                 policy=None) -> dict[str, int]:
    """Feed (record, location) pairs to `scorer`. Without `gold`, each record carries its gold `entities`;
    with `gold` (id -> entities), records are predictions joined by id and unseen gold ids count as
    records with no prediction. Returns counters for the report (records, without_predictions, unseen_gold)."""
    from ..core.errors import ErrorPolicy, VkelError

    policy = policy or ErrorPolicy("fail")
    seen: set[str] = set()
    stats = {"records": 0, "without_predictions": 0, "unseen_gold": 0}
    for record, where in pairs:
        try:
            if gold is not None:
                if record["id"] not in gold:
                    raise VkelError(f"prediction id {record['id']!r} is not in the gold file", str(where))
                if record["id"] in seen:
                    raise VkelError(f"id {record['id']!r} appears twice", str(where))
                seen.add(record["id"])
                entities = _in_frame_of(record, gold[record["id"]], getattr(gold, "sizes", {}).get(record["id"]),
                                        where)
            else:
                if record.get("entities") is None:  # its type is the schema's (records.read_records)
                    raise VkelError("record has no gold `entities` (score joined by id with --gold FILE)",
                                    str(where))
                entities = record["entities"]
            predictions = _predictions(record, pred_field, where)
        except VkelError as err:
            policy.handle(err)
            if gold is not None and record.get("id") in seen:  # its gold still counts, as not predicted
                stats["unseen_gold"] += 1
                scorer.add(gold[record["id"]], [])
            continue
        stats["records"] += 1
        stats["without_predictions"] += pred_field not in record
        scorer.add(entities, predictions)
    if gold is not None:
        for key in gold.keys() - seen:
            stats["unseen_gold"] += 1
            scorer.add(gold[key], [])
    return stats


class GoldSet(dict):
    """id -> gold entities, and `sizes`: id -> the `image_size` their boxes are given in."""

    def __init__(self):
        super().__init__()
        self.sizes: dict[str, list] = {}


def _in_frame_of(record: dict[str, Any], entities: list, gold_size, where) -> list:
    """The gold entities' boxes in the prediction record's pixel frame: a stage that read the image put
    the record in the decoded image's frame (images.align), while the gold file keeps the declared one."""
    size = record.get("image_size")
    if not gold_size or not size or [float(v) for v in gold_size] == [float(v) for v in size]:
        return entities
    import copy

    from ..core.errors import VkelError
    from ..fetch.images import Frame, align

    frame = Frame(size=(int(size[0]), int(size[1])), raw_size=(int(size[0]), int(size[1])))
    moved = {"id": record["id"], "image_size": list(gold_size), "entities": copy.deepcopy(entities)}
    try:
        return align(moved, frame)["entities"]
    except VkelError as err:
        raise VkelError(f"the gold file's boxes are for a {gold_size[0]}x{gold_size[1]} image, this record's for "
                        f"{size[0]}x{size[1]}: {err.message}", str(where)) from None


def load_gold(path: str, policy=None) -> GoldSet:
    from ..core.errors import ErrorPolicy, VkelError
    from ..core.records import read_records

    policy = policy or ErrorPolicy("fail")
    gold = GoldSet()
    for record, where in read_records([path], policy):  # the reader checks types and refuses repeated ids
        if record.get("entities") is None:
            policy.handle(VkelError("gold record has no `entities`", str(where)))
            continue
        gold[record["id"]] = record["entities"]
        if record.get("image_size"):
            gold.sizes[record["id"]] = record["image_size"]
    return gold
