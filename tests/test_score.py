"""The scorer's semantics on constructed cases, exact values."""

import pytest

from vkel_cli.metric.score import Scorer, max_matching, score_stream


def gold(text, fine="athlete", coarse="person", boxes=()):
    return {"text": text, "coarse": coarse, "fine": fine, "boxes": [list(b) for b in boxes]}


def pred(text, fine="athlete", coarse="person", box=None):
    return {"text": text, "coarse": coarse, "fine": fine, "box": list(box) if box else None}


def row(scorer, task, iou=0.5, type_="all"):
    [found] = [r for r in scorer.results() if r["task"] == task and r["iou"] == (None if task == "FMNER" else iou)
               and r["type"] == type_]
    return found["tp"], found["n_pred"], found["n_gold"]


def test_perfect_prediction_scores_one_everywhere():
    s = Scorer()
    s.add([gold("A", boxes=[(0, 0, 10, 10)]), gold("B")], [pred("A", box=(0, 0, 10, 10)), pred("B")])
    assert all(r["f1"] == 1.0 for r in s.results())


def test_iou_exactly_at_the_threshold_counts():
    s = Scorer(ious=[0.5, 0.6])
    s.add([gold("A", boxes=[(0, 0, 2, 1)])], [pred("A", box=(0, 0, 1, 1))])  # IoU = 1/2 exactly
    assert row(s, "FMNERG", 0.5) == (1, 1, 1)
    assert row(s, "FMNERG", 0.6) == (0, 1, 1)
    assert row(s, "EEG", 0.6) == (0, 1, 1)
    assert row(s, "FMNER") == (1, 1, 1)


def test_any_one_of_several_gold_boxes_grounds():
    s = Scorer()
    s.add([gold("A", boxes=[(0, 0, 1, 1), (5, 5, 9, 9)])], [pred("A", box=(5, 5, 9, 9))])
    assert row(s, "FMNERG") == (1, 1, 1)


def test_null_boxes_match_only_each_other():
    s = Scorer()
    s.add([gold("A"), gold("B", boxes=[(0, 0, 1, 1)]), gold("C")],
          [pred("A"), pred("B"), pred("C", box=(0, 0, 1, 1))])
    assert row(s, "EEG") == (1, 3, 3)
    assert row(s, "FMNER") == (3, 3, 3)


def test_duplicates_count_as_extra_predictions_and_repeated_gold_needs_each_its_own():
    s = Scorer()
    s.add([gold("A")], [pred("A"), pred("A")])
    assert row(s, "FMNERG") == (1, 2, 1)
    t = Scorer()
    t.add([gold("A"), gold("A")], [pred("A")])
    assert row(t, "FMNERG") == (1, 1, 2)


def test_matching_is_maximum_not_greedy():
    # p0 fits g0 and g1, p1 fits only g0: a greedy pass taking (p0, g0) would find 1; the maximum is 2.
    assert max_matching(2, [[0, 1], [0]]) == 2
    s = Scorer(ious=[0.5])
    g = [gold("A", boxes=[(0, 0, 10, 10)]), gold("A", boxes=[(0, 0, 10, 10), (20, 20, 30, 30)])]
    p = [pred("A", box=(0, 0, 10, 10)), pred("A", box=(20, 20, 30, 30))]
    s.add(g, p)
    assert row(s, "FMNERG") == (2, 2, 2)


def test_type_level_fine_and_coarse():
    fine, coarse = Scorer(level="fine"), Scorer(level="coarse")
    for s in (fine, coarse):
        s.add([gold("A", fine="athlete")], [pred("A", fine="actor")])
    assert row(fine, "FMNER") == (0, 1, 1)
    assert row(coarse, "FMNER") == (1, 1, 1)
    assert row(fine, "EEG") == (1, 1, 1)  # EEG ignores types


def test_text_must_match_exactly_unless_ignore_case():
    strict, loose = Scorer(), Scorer(ignore_case=True)
    for s in (strict, loose):
        s.add([gold("Kevin Love")], [pred("kevin  love")])
    assert row(strict, "FMNER") == (0, 1, 1)
    assert row(loose, "FMNER") == (1, 1, 1)


def test_empty_records_and_undefined_scores_are_zero():
    s = Scorer()
    s.add([], [])
    r = [x for x in s.results() if x["task"] == "FMNERG"][0]
    assert (r["precision"], r["recall"], r["f1"]) == (0.0, 0.0, 0.0)
    s.add([gold("A")], [])
    s.add([], [pred("B")])
    assert row(s, "FMNERG") == (0, 1, 1)


def test_micro_averages_and_f1():
    s = Scorer()
    s.add([gold("A"), gold("B"), gold("C"), gold("D")], [pred("A"), pred("B"), pred("X")])
    [r] = [x for x in s.results() if x["task"] == "FMNER"]
    assert (r["tp"], r["n_pred"], r["n_gold"]) == (2, 3, 4)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_by_type_puts_predictions_under_their_predicted_type():
    s = Scorer(by_type=True)
    s.add([gold("A", coarse="person", fine="athlete")], [pred("A", coarse="location", fine="city")])
    assert row(s, "EEG", type_="person") == (0, 0, 1)
    assert row(s, "EEG", type_="location") == (0, 1, 0)
    assert row(s, "EEG") == (1, 1, 1)


def test_joined_by_id_counts_missing_predictions_and_rejects_unknown_ids():
    from vkel_cli.core.errors import VkelError

    gold_by_id = {"1": [gold("A")], "2": [gold("B")]}
    s = Scorer()
    stats = score_stream([({"id": "1", "predictions": [pred("A")]}, "p:1")], s, gold=gold_by_id)
    assert stats["unseen_gold"] == 1
    assert row(s, "FMNER") == (1, 1, 2)
    with pytest.raises(VkelError, match="not in the gold file"):
        score_stream([({"id": "9", "predictions": []}, "p:1")], Scorer(), gold=gold_by_id)


def test_cli_gold_against_itself_is_100_and_stdout_is_json(vkel, tmp_path):
    from conftest import FIXTURES

    records = vkel("data", "import", "fmnerg", FIXTURES / "mini" / "fmnerg.txt", "--xml-dir",
                   FIXTURES / "mini" / "xml").records()
    import orjson

    lines = []
    for r in records:
        r["predictions"] = [{"text": e["text"], "coarse": e["coarse"], "fine": e["fine"],
                             "box": e["boxes"][0] if e["boxes"] else None} for e in r["entities"]]
        lines.append(orjson.dumps(r))
    md = tmp_path / "m.md"
    result = vkel("score", "--iou", "0.1,0.5,1.0", "--by-type", "--markdown", md, input=b"\n".join(lines))
    assert result.code == 0, result.stderr
    rows = result.records()
    assert {(r["task"], r["iou"]) for r in rows} == {("FMNERG", 0.1), ("FMNERG", 0.5), ("FMNERG", 1.0),
                                                    ("FMNER", None), ("EEG", 0.1), ("EEG", 0.5), ("EEG", 1.0)}
    assert all(r["f1"] == 1.0 for r in rows if r["n_gold"])
    assert "FMNERG" in result.stderr  # the table goes to stderr
    assert md.read_text().startswith("| task | IoU |")


def test_cli_rejects_bad_iou_as_usage_error(vkel):
    result = vkel("score", "--iou", "0,7", input=b"")
    assert result.code == 2


@pytest.mark.parametrize("gold_boxes", [[], [(0, 0, 10, 10)], [(0, 0, 10, 10), (20, 20, 30, 30)]])
def test_an_unusable_box_is_right_for_fmner_and_wrong_for_grounding_whatever_the_gold(gold_boxes):
    # The parser's representation of a cut-off / inverted / out-of-range box: box null + box_error.
    unusable = {**pred("A"), "box_error": "cut off"}
    s = Scorer(ious=[0.5, 0.0])
    s.add([gold("A", boxes=gold_boxes)], [unusable])
    assert row(s, "FMNER") == (1, 1, 1)
    for threshold in (0.5, 0.0):
        assert row(s, "FMNERG", threshold) == (0, 1, 1)
        assert row(s, "EEG", threshold) == (0, 1, 1)
    # Without the marker the same null box means "not in the image", right exactly when the gold agrees.
    plain = Scorer()
    plain.add([gold("A", boxes=gold_boxes)], [pred("A")])
    assert row(plain, "FMNERG") == ((1, 1, 1) if not gold_boxes else (0, 1, 1))


def test_box_error_wins_over_a_box_given_with_it():
    s = Scorer()
    s.add([gold("A", boxes=[(0, 0, 10, 10)])], [{**pred("A", box=(0, 0, 10, 10)), "box_error": "inverted"}])
    assert row(s, "FMNERG") == (0, 1, 1) and row(s, "FMNER") == (1, 1, 1)


def test_vkel_score_on_parsed_generations_with_unusable_boxes(vkel, tmp_path):
    from vkel_cli.format import sequences

    tokens = "Kevin Love and J. R. Smith in Cleveland".split()
    record = {"id": "1", "tokens": tokens, "image_size": [1000, 500],
              "entities": [gold("Kevin Love", boxes=[(448, 10, 913, 500)]), gold("J. R. Smith"),
                           gold("Cleveland", coarse="location", fine="city")]}
    raw = ("Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0); "
           "J. R. Smith is a(an) person and a(an) athlete, whose bounding boxes are (0.9, 0.1, 0.2, 0.5); "
           "Cleveland is a(an) location and a(an) city, whose bounding boxes are (0.3, 0.3, 0.3")
    sequences.attach_stage2(record, raw, record["image_size"])
    path = tmp_path / "pred.jsonl"
    import json

    path.write_text(json.dumps(record) + "\n")
    result = vkel("score", path)
    assert result.code == 0, result.stderr
    rows = {(r["task"], r["type"]): (r["tp"], r["n_pred"], r["n_gold"]) for r in result.records()}
    assert rows[("FMNER", "all")] == (3, 3, 3)
    assert rows[("FMNERG", "all")] == (1, 3, 3)  # the two unusable boxes ground nothing, though both golds are null
    assert rows[("EEG", "all")] == (1, 3, 3)


def test_gold_file_boxes_are_put_in_the_frame_of_the_predictions(vkel, tmp_path):
    """Predictions of a stage that read a resized image are in the decoded frame (images.align); the gold
    file keeps the annotation's frame. --gold rescales gold boxes to the prediction record's image_size."""
    import orjson

    gold = [{"id": "a", "tokens": ["Anna"], "image_size": [800, 600],
             "entities": [{"text": "Anna", "start": 0, "end": 1, "coarse": "person", "fine": "actor",
                           "boxes": [[200, 150, 400, 450]]}]},
            {"id": "b", "tokens": ["Bern"], "image_size": [800, 600],
             "entities": [{"text": "Bern", "start": 0, "end": 1, "coarse": "location", "fine": "city",
                           "boxes": [[0, 0, 80, 60]]}]}]
    preds = [{"id": "a", "tokens": ["Anna"], "image_size": [400, 300],  # the file was halved after annotation
              "predictions": [{"text": "Anna", "coarse": "person", "fine": "actor", "box": [100, 75, 200, 225]}]},
             {"id": "b", "tokens": ["Bern"], "image_size": [500, 500],  # not a rescale: boxes cannot be placed
              "predictions": [{"text": "Bern", "coarse": "location", "fine": "city", "box": [0, 0, 50, 50]}]}]
    gold_path = tmp_path / "gold.jsonl"
    gold_path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in gold))
    result = vkel("score", "--gold", gold_path, "--on-error", "skip",
                  input=b"".join(orjson.dumps(r) + b"\n" for r in preds))
    assert result.code == 1
    fmnerg = next(r for r in result.records() if r["task"] == "FMNERG")
    assert (fmnerg["tp"], fmnerg["n_pred"], fmnerg["n_gold"]) == (1, 1, 2)  # b: reported, its gold counted as missed
    assert "800x600 image, this record's for 500x500" in result.stderr and "1 item(s) skipped" in result.stderr
