"""`vkel data import e2e-gmner|riveg`: other systems' prediction files -> gold records with `predictions`,
then `vkel score`. The files are written here in each system's own grammar (read from its evaluation
code: E2E-GMNER's parsing.py/evaluator.py, RiVEG's statistic/statistic.py)."""

from __future__ import annotations

import json

import pytest

from vkel_cli.data.e2e_gmner import parse_answer, smart_resize

GOLD_CONLL = """IMGID:201
Kevin\tB-PER
Love\tI-PER
and\tO
LeBron\tB-PER
James\tI-PER
in\tO
Cleveland\tB-LOC

IMGID:202
Apple\tB-ORG
launches\tO
iPhone\tB-OTHER

IMGID:203
nothing\tO
here\tO
"""

XML = {
    "201": (500, 400, [("Kevin Love", (10, 20, 110, 220)), ("LeBron James", (300, 20, 400, 220))]),
    "202": (640, 480, [("iPhone", (0, 0, 64, 48))]),
}


@pytest.fixture
def gold(tmp_path, vkel):
    (tmp_path / "xml").mkdir()
    for imgid, (width, height, objects) in XML.items():
        boxes = "".join(f"<object><name>{name}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}"
                        f"</xmax><ymax>{b[3]}</ymax></bndbox></object>" for name, b in objects)
        (tmp_path / "xml" / f"{imgid}.xml").write_text(
            f"<annotation><size><width>{width}</width><height>{height}</height></size>{boxes}</annotation>")
    (tmp_path / "gmner.txt").write_text(GOLD_CONLL)
    result = vkel("data", "import", "gmner", tmp_path / "gmner.txt", "--xml-dir", tmp_path / "xml")
    assert result.code == 0, result.stderr
    path = tmp_path / "gold.jsonl"
    path.write_bytes(result.stdout)
    return path


def _scores(vkel, records_bytes: bytes) -> dict[str, tuple[int, int, int]]:
    result = vkel("score", "--level", "coarse", "-q", input=records_bytes)
    assert result.code == 0, result.stderr
    return {row["task"]: (row["tp"], row["n_pred"], row["n_gold"]) for row in result.records()}


def _preds(record):
    return [(p["text"], p["coarse"], p["fine"], p["box"]) for p in record["predictions"]]


# ---------------------------------------------------------------- E2E-GMNER

E2E_LINES = [
    # the restored answer: `;` and line breaks separate triples, a full-width bar, several boxes for one entity,
    # a triple with 3 numbers and one with a type outside GMNER's
    {"response_full": "ignored", "response_full_orig": "ignored",
     "response_answer_orig": "Kevin Love|PER|[12, 22, 108, 218]; LeBron James｜PER｜[[0,0,10,10],[300,20,400,220]]\n"
                             "Cleveland|LOC|None; Bad Guy|PER|[1, 2, 3]; Paris|CITY|None",
     "orig_size": [500, 400]},
    # restoration failed (the _orig fields empty): the raw generation, boxes in Qwen's resized 644x476 frame
    {"response_full": "<think>Apple is a company.</think><answer>Apple|ORG|None; iPhone|OTHER|[0, 0, 64.4, 47.6]"
                      "</answer>",
     "response_full_orig": "", "response_answer_orig": "", "orig_size": [640, 480]},
    {"response_full": "<answer>None</answer>", "response_full_orig": "<answer>None</answer>",
     "response_answer_orig": "None", "orig_size": [10, 10]},
]


def _write_jsonl(path, items):
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
    return path


def test_e2e_gmner_answers_become_pixel_predictions_and_score(vkel, gold, tmp_path):
    predictions = _write_jsonl(tmp_path / "test_pred_best.jsonl", E2E_LINES)
    result = vkel("data", "import", "e2e-gmner", predictions, "--gold", gold)
    assert result.code == 0, result.stderr
    first, second, third = result.records()
    assert [r["id"] for r in (first, second, third)] == ["201", "202", "203"]
    assert _preds(first) == [("Kevin Love", "person", None, [12.0, 22.0, 108.0, 218.0]),
                             ("LeBron James", "person", None, [0.0, 0.0, 10.0, 10.0]),
                             ("Cleveland", "location", None, None),
                             ("Bad Guy", "person", None, None)]
    assert first["predictions"][3]["box_error"] == "no box"  # as in E2E's metric: a prediction never grounded
    stage2 = first["meta"]["generation"]["stage2"]
    assert stage2["unparsed"] == ["Paris|CITY|None"]
    assert stage2["notes"] == ["1 extra boxes ignored (a prediction has one box)"]
    assert first["entities"][0]["boxes"] == [[10.0, 20.0, 110.0, 220.0]]  # the gold rides along
    assert [(t, c, f) for t, c, f, _ in _preds(second)] == [("Apple", "organization", None),
                                                            ("iPhone", "other", None)]
    assert _preds(second)[0][3] is None and _preds(second)[1][3] == pytest.approx([0, 0, 64, 48])
    assert second["meta"]["generation"]["stage2"]["notes"] == ["boxes restored from response_full's 644x476 frame"]
    assert third["predictions"] == []
    assert ("e2e-gmner: 3 lines read, 3 records given 6 predictions; 1 with an unusable box (box_error, never "
            "grounded); 1 unparsable items kept in meta.generation.stage2.unparsed; 1 extra boxes beyond an "
            "entity's first ignored; 1 answers taken from response_full") in result.stderr
    # 5 gold entities, 6 predictions (Bad Guy is spurious); LeBron's first box misses, so grounding loses one
    assert _scores(vkel, result.stdout) == {"FMNER": (5, 6, 5), "EEG": (4, 6, 5), "FMNERG": (4, 6, 5)}


def test_e2e_gmner_count_mismatch_and_bad_lines(vkel, gold, tmp_path):
    short = _write_jsonl(tmp_path / "short.jsonl", E2E_LINES[:2])
    result = vkel("data", "import", "e2e-gmner", short, "--gold", gold)
    assert result.code == 1 and "fewer prediction lines in" in result.stderr and f"{gold}:3" in result.stderr
    long = _write_jsonl(tmp_path / "long.jsonl", E2E_LINES + E2E_LINES[:1])
    result = vkel("data", "import", "e2e-gmner", long, "--gold", gold)
    assert result.code == 1 and "more prediction lines than gold records" in result.stderr
    assert f"{long}:4" in result.stderr
    # a broken second line: an error of that record; the others stay aligned and its gold still comes out
    broken = tmp_path / "broken.jsonl"
    lines = [json.dumps(E2E_LINES[0]), '{"response_full": "Apple|ORG|None"', json.dumps(E2E_LINES[2])]
    broken.write_text("\n".join(lines) + "\n")
    assert vkel("data", "import", "e2e-gmner", broken, "--gold", gold).code == 1
    for mode, code in (("skip", 1), ("ignore", 0)):
        result = vkel("data", "import", "e2e-gmner", broken, "--gold", gold, "--on-error", mode)
        assert result.code == code, result.stderr
        records = result.records()
        assert [r["id"] for r in records] == ["201", "202", "203"]
        assert "predictions" not in records[1] and "malformed JSON" in records[1]["meta"]["errors"]["import"]
        assert len(records[0]["predictions"]) == 4 and records[2]["predictions"] == []
        assert f"(at {broken}:2)" in result.stderr


def test_e2e_gmner_grammar_details():
    predictions, unparsed, extra = parse_answer("A | B|ORG|n/a；C|per|[1,2,3,4]\n\nnone; D|LOC|[]; E|LOC")
    assert [(p["text"], p["coarse"], p["boxes"], p.get("box_error")) for p in predictions] == [
        ("A | B", "organization", None, None), ("C", "person", [[1.0, 2.0, 3.0, 4.0]], None),
        ("D", "location", None, "no box")]
    assert unparsed == ["E|LOC"] and extra == 0
    assert [p.get("box_error") for p in parse_answer("A|PER|[5, 1, 2, 9]; B|PER|[1, 1, 1, 9]")[0]] == [
        "inverted", "zero area"]
    assert parse_answer("None") == ([], [], 0)
    assert smart_resize(500, 706, 3136, 12845056) == (504, 700)
    # over max_pixels: sqrt(12e6 / 1003520) = 3.458; floor(4000 / 3.458 / 28) = 41, floor(3000 / 3.458 / 28) = 30
    assert smart_resize(4000, 3000, 3136, 1003520) == (41 * 28, 30 * 28)


# ---------------------------------------------------------------- RiVEG

RIVEG_LINES = """201.jpg###Kevin Love(PER)###a basketball player###2###&[12.0, 22.0, 108.0, 218.0]
Imageid:201.jpg#ab12###LeBron James(PER)###a player###2###&[300.0, 20.0, 400.0, 220.0]&[0, 0, 5, 5]
201.jpg###Cleveland(LOC)###a city###0###&[0, 0, 0, 0]
201.jpg###Cavs(TEAM)###a team###0###&[0, 0, 0, 0]
202.jpg###Apple(ORG)###a company###0###&[0, 0, 0, 0]
202.jpg###Apple Inc(ORG)###a company###2###&[0, 0, 0, 0]
999.jpg###Ghost(PER)###nobody###0###&[0, 0, 0, 0]
this line is not RiVEG's
202.jpg###iPhone(OTHER)###a phone, (really)###2###&[0.0, 0.0, 64.0, 48.0]
"""


def test_riveg_lines_join_by_image_and_score(vkel, gold, tmp_path):
    predictions = tmp_path / "OFA_pred_final.txt"
    predictions.write_text(RIVEG_LINES)
    strict = vkel("data", "import", "riveg", predictions, "--gold", gold)
    assert strict.code == 1 and f"(at {predictions}:8)" in strict.stderr and "not a RiVEG line" in strict.stderr
    result = vkel("data", "import", "riveg", predictions, "--gold", gold, "--on-error", "skip")
    assert result.code == 1
    assert f"(at {predictions}:7)" in result.stderr and "'999'" in result.stderr  # names no gold record
    assert "2 item(s) skipped" in result.stderr
    first, second, third = result.records()
    assert _preds(first) == [("Kevin Love", "person", None, [12.0, 22.0, 108.0, 218.0]),
                             ("LeBron James", "person", None, [300.0, 20.0, 400.0, 220.0]),
                             ("Cleveland", "location", None, None)]
    assert first["meta"]["generation"]["stage2"]["unparsed"] == ["201.jpg###Cavs(TEAM)###a team###0###&[0, 0, 0, 0]"]
    assert _preds(second) == [("Apple", "organization", None, None), ("Apple Inc", "organization", None, None),
                              ("iPhone", "other", None, [0.0, 0.0, 64.0, 48.0])]
    # judged in the image, but no usable box: never grounded, as in RiVEG's scorer
    assert [p.get("box_error") for p in second["predictions"]] == [None, "zero area", None]
    assert "unparsed" not in second["meta"]["generation"]["stage2"]
    assert third["predictions"] == [] and third["meta"]["generation"]["stage2"] == {"raw": ""}
    assert ("riveg: 9 lines read, 3 records given 6 predictions; 1 with an unusable box (box_error, never "
            "grounded); 1 unparsable items kept in meta.generation.stage2.unparsed; 1 extra boxes beyond an "
            "entity's first ignored") in result.stderr
    assert _scores(vkel, result.stdout) == {"FMNER": (5, 6, 5), "EEG": (5, 6, 5), "FMNERG": (5, 6, 5)}


def test_riveg_accepts_bom_and_crlf(vkel, gold, tmp_path):
    lines = [line for line in RIVEG_LINES.splitlines() if "999" not in line and "not RiVEG" not in line]
    plain, windows = tmp_path / "plain.txt", tmp_path / "windows.txt"
    plain.write_text("\n".join(lines) + "\n")
    windows.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    a = vkel("data", "import", "riveg", plain, "--gold", gold)
    b = vkel("data", "import", "riveg", windows, "--gold", gold)
    assert a.code == b.code == 0, b.stderr
    assert [_preds(r) for r in a.records()] == [_preds(r) for r in b.records()]
    assert sum(len(r["predictions"]) for r in b.records()) == 6
