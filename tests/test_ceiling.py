"""`vkel ceiling` (Table I): the share of groundable gold entities covered by the top-K objects."""

from __future__ import annotations

import orjson
import pytest

from vkel_cli.metric.ceiling import Ceiling


def _entity(text, boxes, coarse="person", fine="athlete"):
    return {"text": text, "start": 0, "end": 1, "coarse": coarse, "fine": fine, "boxes": boxes}


def _obj(box, score):
    return {"label": "person", "score": score, "box": box}


# Record a: entity A is covered by the 3rd best object (IoU 1), entity B by the best one at IoU 0.6 only
# (box [0,0,10,10] vs [0,0,10,6] -> 0.6), entity C is not in the image (not groundable).
# Record b: entity D has two gold boxes, the 6th best object matches the second exactly; entity E is
# matched by no object at all. Record c has no `objects` field: its entity F is never covered.
RECORDS = [
    {"id": "a", "tokens": ["x"], "entities": [
        _entity("A", [[100, 100, 200, 200]]),
        _entity("B", [[0, 0, 10, 10]], coarse="location", fine="city"),
        _entity("C", [])],
     "objects": [_obj([0, 0, 10, 6], 0.9), _obj([300, 300, 310, 310], 0.8), _obj([100, 100, 200, 200], 0.7),
                 _obj([100, 100, 200, 200], 0.1)]},
    {"id": "b", "tokens": ["x"], "entities": [
        _entity("D", [[50, 50, 60, 60], [0, 0, 40, 40]]),
        _entity("E", [[500, 500, 600, 600]])],
     # listed out of score order on purpose: ranking is by score, not by position
     "objects": [_obj([0, 0, 40, 40], 0.05)] + [_obj([200 + i, 0, 210 + i, 10], 0.5 - i / 100) for i in range(5)]},
    {"id": "c", "tokens": ["x"], "entities": [_entity("F", [[0, 0, 5, 5]])]},
]


def _by(rows, **key):
    return {(r["iou"], r["type"], r["k"]): r for r in rows}[(key["iou"], key["type"], key["k"])]


def test_exact_shares_by_k_and_iou():
    ceiling = Ceiling(ks=[2, 5, 10], ious=[0.5, 0.7], by_type=True)
    for record in RECORDS:
        ceiling.add(record["entities"], record.get("objects"))
    rows = ceiling.results()
    assert ceiling.without_objects == 1 and ceiling.records == 3
    # groundable: A, B, D, E, F = 5 (C has no box)
    # IoU 0.5: K=2 -> B; K=5 -> A, B; K=10 -> A, B, D
    assert [(_by(rows, iou=0.5, type="all", k=k)["covered"]) for k in (2, 5, 10)] == [1, 2, 3]
    assert _by(rows, iou=0.5, type="all", k=10)["groundable"] == 5
    assert _by(rows, iou=0.5, type="all", k=10)["recall"] == pytest.approx(3 / 5)
    # IoU 0.7: B's best overlap is 0.6 -> K=2 covers nothing, K=5 covers A, K=10 A and D
    assert [(_by(rows, iou=0.7, type="all", k=k)["covered"]) for k in (2, 5, 10)] == [0, 1, 2]
    # per coarse type: location = {B}, person = {A, D, E, F}
    assert _by(rows, iou=0.5, type="location", k=2)["recall"] == 1.0
    assert _by(rows, iou=0.5, type="person", k=10)["covered"] == 2
    assert _by(rows, iou=0.5, type="person", k=10)["groundable"] == 4
    # the order of the rows: IoU, then type (all, then the hierarchy's order), then K
    assert [(r["iou"], r["type"], r["k"]) for r in rows[:4]] == [(0.5, "all", 2), (0.5, "all", 5), (0.5, "all", 10),
                                                                (0.5, "location", 2)]


def test_cli_json_lines_table_and_markdown(vkel, tmp_path):
    data = b"".join(orjson.dumps(r) + b"\n" for r in RECORDS)
    md = tmp_path / "table-i.md"
    result = vkel("ceiling", "-", "--k", "2,5,10", "--iou", "0.5,0.7", "--markdown", str(md), input=data)
    assert result.code == 0, result.stderr
    rows = [orjson.loads(line) for line in result.lines]
    assert len(rows) == 6  # 2 thresholds x 3 K, "all" only
    assert [r["covered"] for r in rows] == [1, 2, 3, 0, 1, 2]
    assert all(r["groundable"] == 5 for r in rows)
    assert "1 record(s) had no `objects` field" in result.stderr
    assert "vkel ceiling (3 records, 10 objects)" in result.stderr  # the table goes to stderr
    assert md.read_text().splitlines()[2] == "| 0.5 | all | 2 | 20.00 | 1 | 5 |"


def test_cli_default_ks_and_bad_input(vkel):
    data = orjson.dumps(RECORDS[0]) + b"\n"
    result = vkel("ceiling", "-q", input=data)
    assert result.code == 0 and result.stderr == ""
    assert [orjson.loads(line)["k"] for line in result.lines] == [2, 5, 10, 15, 20]
    assert vkel("ceiling", "--k", "0", input=data).code == 2
    assert vkel("ceiling", "--iou", "1.5", input=data).code == 2
    no_gold = orjson.dumps({"id": "z", "tokens": ["x"]}) + b"\n"
    failed = vkel("ceiling", input=no_gold + data)
    assert failed.code == 1 and "<stdin>:1" in failed.stderr and "no gold `entities`" in failed.stderr
    skipped = vkel("ceiling", "--on-error", "ignore", "-q", input=no_gold + data)
    assert skipped.code == 0
    assert orjson.loads(skipped.lines[0])["groundable"] == 2
