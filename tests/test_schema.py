"""One schema for every stage: a record whose contract fields are malformed is a per-record error at its
line, never a crash; under --on-error skip every good record before and after it comes out, in order."""

from __future__ import annotations

import copy
import math

import orjson
import pytest

from openai_server import OpenAIServer
from vkel_cli.core import schema
from vkel_cli.core.errors import VkelError

GOOD = {"id": "g", "tokens": ["Kevin", "Love", "in", "Cleveland"], "image": "img.jpg", "image_size": [64, 48],
        "entities": [{"text": "Kevin Love", "start": 0, "end": 2, "coarse": "person", "fine": "athlete",
                      "boxes": [[1, 2, 30, 40]]}],
        "stage1": [{"text": "Kevin Love", "coarse": "person"}],
        "objects": [{"label": "person", "score": 0.9, "box": [1, 2, 30, 40]}],
        "knowledge": {"Kevin Love": {"m0": "height: tall", "m1": "height: tall man"}},
        "visual_knowledge": {"Kevin Love": "a tall man"},
        "predictions": [{"text": "Kevin Love", "coarse": "person", "fine": "athlete", "box": [1, 2, 30, 40]}],
        "meta": {"source": "test"}}
ENTITY = GOOD["entities"][0]


def _with(**changes) -> dict:
    record = copy.deepcopy(GOOD)
    record.update({"id": "bad", **changes})
    return record


# (kind, the bad record, words of the message)
BAD = [
    ("entities not a list", _with(entities=5), "`entities` must be a list"),
    ("entity not an object", _with(entities=[5]), "`entities[0]` must be an object"),
    ("image a number", _with(image=123), "`image` must be a string or null, got number"),
    ("stage1 a number", _with(stage1=5), "`stage1` must be a list"),
    ("stage1 text a number", _with(stage1=[{"text": 5}]), "`stage1[0].text` must be a string"),
    ("knowledge a string", _with(knowledge="x"), "`knowledge` must be an object"),
    ("knowledge per entity a number", _with(knowledge={"Kevin Love": 5}), "`knowledge['Kevin Love']`"),
    ("visual_knowledge a number", _with(visual_knowledge=3), "`visual_knowledge` must be an object"),
    ("objects an object", _with(objects={}), "`objects` must be a list"),
    ("object box of 2", _with(objects=[{"label": "x", "score": 0.5, "box": [1, 2]}]), "`objects[0].box`"),
    ("image_size zero", _with(image_size=[0, 0]), "`image_size` must be [width, height]"),
    ("image_size a string", _with(image_size="64x48"), "`image_size`"),
    ("box of 3 numbers", _with(entities=[{**ENTITY, "boxes": [[1, 2, 3]]}]), "`entities[0].boxes[0]` must be"),
    ("negative box", _with(entities=[{**ENTITY, "boxes": [[-5, 2, 30, 40]]}]), "negative coordinate"),
    ("inverted box", _with(entities=[{**ENTITY, "boxes": [[30, 40, 1, 2]]}]), "inverted"),
    ("span outside tokens", _with(entities=[{**ENTITY, "start": 3, "end": 9}]), "outside the 4 tokens"),
    ("span not integers", _with(entities=[{**ENTITY, "start": "0"}]), "`entities[0].start` must be an integer"),
    ("tokens a string", _with(tokens="Kevin Love"), "`tokens` must be a list of strings"),
    ("predictions a number", _with(predictions=5), "`predictions` must be a list"),
    ("prediction box of 5", _with(predictions=[{"text": "a", "box": [1, 2, 3, 4, 5]}]), "`predictions[0].box`"),
    ("meta a number", _with(meta=5), "`meta` must be an object"),
    ("id a number", _with(id=5), "`id` must be a non-empty string"),
    ("duplicate id", dict(copy.deepcopy(GOOD), id="a"), "duplicate id 'a'"),
]
NAN = (b'{"id": "bad", "tokens": ["a"], "entities": [{"text": "a", "start": 0, "end": 1, '
       b'"boxes": [[0, 0, NaN, 1]]}]}')


def _mixed(bad_line: bytes) -> bytes:
    a, b = dict(copy.deepcopy(GOOD), id="a"), dict(copy.deepcopy(GOOD), id="b")
    return orjson.dumps(a) + b"\n" + bad_line + b"\n" + orjson.dumps(b) + b"\n"


BAD_LINES = [pytest.param(orjson.dumps(record), words, id=kind) for kind, record, words in BAD]
BAD_LINES.append(pytest.param(NAN, "malformed JSON", id="NaN"))


def test_the_good_record_passes_and_nulls_are_absences():
    assert schema.problem(GOOD) is None
    nulls = {key: None for key in GOOD if key != "id"}
    assert schema.problem({"id": "x", **nulls}) is None
    assert schema.problem({"id": "x", "other": {"anything": [1, "b"]}}) is None  # non-contract fields pass


def test_a_model_answer_box_is_only_shaped_but_data_boxes_are_strict():
    # a generated box that is inverted is a wrong answer (scored IoU 0), not a broken record
    assert schema.problem(_with(predictions=[{"text": "a", "box": [30, 40, 1, 2]}])) is None
    assert "inverted" in schema.problem(_with(objects=[{"label": "x", "score": 1, "box": [30, 40, 1, 2]}]))
    assert "four finite numbers" in schema.problem(_with(entities=[{**ENTITY, "boxes": [[0, 0, math.inf, 1]]}]))
    assert "four finite numbers" in schema.problem(_with(entities=[{**ENTITY, "boxes": [[0, 0, True, 1]]}]))


def test_check_record_names_the_line_and_the_record():
    with pytest.raises(VkelError) as info:
        schema.check_record(_with(image=123), "in.jsonl:7")
    assert str(info.value) == "(at in.jsonl:7): record 'bad': `image` must be a string or null, got number"


@pytest.mark.parametrize("bad_line, words", BAD_LINES)
def test_the_reader_reports_each_bad_kind_at_its_line_and_keeps_the_rest(tmp_path, bad_line, words):
    import io

    from vkel_cli.core.errors import ErrorPolicy
    from vkel_cli.core.records import read_records

    path = tmp_path / "in.jsonl"
    path.write_bytes(_mixed(bad_line))
    report = io.StringIO()
    policy = ErrorPolicy("skip", stream=report)
    assert [(r["id"], w.line) for r, w in read_records([str(path)], policy)] == [("a", 1), ("b", 3)]
    assert policy.skipped == 1 and f"(at {path}:2)" in report.getvalue() and words in report.getvalue()
    with pytest.raises(VkelError, match=r"in\.jsonl:2"):
        list(read_records([str(path)]))


def _interleaved(tmp_path):
    """good a, every bad kind each followed by a good record: the good ones are a, g0, g1, ..."""
    lines, good = [orjson.dumps(dict(copy.deepcopy(GOOD), id="a"))], ["a"]
    for i, (_, record, _) in enumerate(BAD):
        lines.append(orjson.dumps(record if record["id"] == "a" else dict(record, id=f"bad{i}")
                                  if isinstance(record.get("id"), str) else record))
        lines.append(orjson.dumps(dict(copy.deepcopy(GOOD), id=f"g{i}")))
        good.append(f"g{i}")
    lines.append(NAN)
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, good, len(BAD) + 1


def test_score_and_stats_skip_every_bad_record_and_count_every_good_one(vkel, tmp_path):
    path, good, bad = _interleaved(tmp_path)
    score = vkel("score", "-q", "--on-error", "skip", path)
    assert score.code == 1 and "internal error" not in score.stderr, score.stderr
    assert score.stderr.count("vkel: skipped") == bad
    fmnerg = score.records()[0]
    assert (fmnerg["task"], fmnerg["n_gold"], fmnerg["tp"]) == ("FMNERG", len(good), len(good))
    stats = vkel("data", "stats", "--on-error", "ignore", path)
    assert stats.code == 0 and stats.records()[0]["tweets"] == len(good)
    fail = vkel("data", "stats", path)
    assert fail.code == 1 and fail.stdout == b"" and f"vkel: error (at {path}:2)" in fail.stderr


def test_vote_writes_every_good_record_in_order(vkel, tmp_path):
    path, good, bad = _interleaved(tmp_path)
    vote = vkel("vote", "--method", "majority", "--on-error", "skip", path)
    assert vote.code == 1 and "internal error" not in vote.stderr, vote.stderr
    assert [r["id"] for r in vote.records()] == good and vote.stderr.count("vkel: skipped") == bad
    assert "height: tall" in vote.records()[0]["visual_knowledge"]["Kevin Love"]


def test_llm_stages_skip_bad_records_without_calling_for_them(vkel, tmp_path):
    path, good, bad = _interleaved(tmp_path)
    image = tmp_path / "img.jpg"
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 30, 30)).save(image)
    answer = "Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.1, 0.1, 0.5, 0.5)"
    with OpenAIServer(answer=lambda request: answer) as server:
        knowledge = vkel("knowledge", "--from", "gold", "--llm", f"m0={server.url},model=m", "--on-error", "skip",
                         path)
        calls_knowledge = server.calls
        predict = vkel("predict", "--stage", "2", "--engine", "openai", "--base-url", server.url, "--served-model",
                       "m", "--image-root", tmp_path, "--on-error", "skip", path)
    for result in (knowledge, predict):
        assert result.code == 1 and "internal error" not in result.stderr, result.stderr
        assert [r["id"] for r in result.records()] == good
        assert result.stderr.count("vkel: skipped") == bad
    assert calls_knowledge == 1  # one entity in one sentence, asked once (the other good records hit the cache)
    assert predict.records()[-1]["predictions"][0]["box"] == pytest.approx([6.4, 4.8, 32.0, 24.0])
