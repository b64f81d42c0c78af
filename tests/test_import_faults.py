"""Importers under real broken files: each fault is an error of its own tweet (named FILE:LINE or the XML
file), `--on-error skip|ignore` keeps every good record before and after it in order, ids never shift,
and BOM / CRLF files import exactly like clean ones."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURES

MINI = FIXTURES / "mini"

GOOD = "IMGID:{id}\nAda\tB-person\tB-athlete\nruns\tO\tO\n\n"
# One fault per tweet, between good tweets. Errors name the faulty token line, else the tweet's IMGID line.
BROKEN = (
    GOOD.format(id="1")                                                    # lines 1-4
    + "IMGID:2\nAda\tB-person\tB-athlete\nruns\tO\n\n"                     # line 7: 2 columns, not 3
    + "IMGID:3\nAda\tX-person\tB-athlete\n\n"                              # line 9: bad BIO tag
    + "IMGID:4\nAda\tB-person\tB-city\n\n"                                 # line 12: fine type of another coarse
    + "IMGID:5\nAda\tB-wizard\tB-athlete\n\n"                              # line 15: coarse type outside
    + "IMGID:../../etc/passwd\nAda\tB-person\tB-athlete\n\n"              # line 18: climbs out of --xml-dir
    + "IMGID:/etc/passwd\nAda\tB-person\tB-athlete\n\n"                   # line 21: absolute
    + GOOD.format(id="1")                                                  # line 24: repeated IMGID
    + GOOD.format(id="9")                                                  # line 28
)
ERRORS = {
    7: "expected 3 tab-separated columns, found 2",
    9: "bad BIO tag 'X-person'",
    12: "fine type 'city' is not a fine type of 'person'",
    15: "coarse type 'wizard' is not in the hierarchy",
    18: "IMGID '../../etc/passwd' is not a plain file name",
    21: "IMGID '/etc/passwd' is not a plain file name",
    24: "IMGID '1' repeats an earlier tweet",
}


@pytest.fixture
def broken(tmp_path):
    (tmp_path / "xml").mkdir()
    path = tmp_path / "broken.txt"
    path.write_text(BROKEN)
    return path


def test_broken_conll_lines_are_errors_of_their_tweet(vkel, broken, tmp_path):
    out = tmp_path / "out.jsonl"
    failed = vkel("data", "import", "fmnerg", broken, "--xml-dir", tmp_path / "xml", "-o", out)
    assert failed.code == 1 and f"(at {broken}:7)" in failed.stderr and not out.exists()
    for mode, code in (("skip", 1), ("ignore", 0)):
        result = vkel("data", "import", "fmnerg", broken, "--xml-dir", tmp_path / "xml", "--on-error", mode)
        assert result.code == code, result.stderr
        assert [r["id"] for r in result.records()] == ["1", "9"]
        assert [r["meta"]["source"] for r in result.records()] == [f"{broken}:1", f"{broken}:28"]
        skipped = [line for line in result.stderr.splitlines() if line.startswith("vkel: skipped")]
        assert len(skipped) == 7
        for lineno, message in ERRORS.items():
            assert sum(f"(at {broken}:{lineno}): " in line and message in line for line in skipped) == 1, message
        assert "9 tweets read, 2 written, 7 skipped; 2 without an XML file (no box), 0 boxes" in result.stderr


def test_gmner_type_outside_the_four(vkel, tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("IMGID:1\nAda\tB-PER\n\nIMGID:2\nParis\tB-CITY\n\nIMGID:3\nRome\tB-LOC\n")
    result = vkel("data", "import", "gmner", path, "--on-error", "skip")
    assert result.code == 1 and [r["id"] for r in result.records()] == ["1", "3"]
    assert f"(at {path}:4)" in result.stderr and "type 'CITY' is not a GMNER type" in result.stderr
    assert "no --xml-dir: no box imported, every entity is ungroundable" in result.stderr


def _xml(objects: str, size: str = "<size><width>100</width><height>80</height></size>") -> str:
    return f"<annotation>{size}{objects}</annotation>"


def _object(name: str, *coords) -> str:
    tags = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), coords))
    return f"<object><name>{name}</name><bndbox>{tags}</bndbox></object>"


def test_broken_xml_files_are_errors_of_their_tweet(vkel, tmp_path):
    xml = tmp_path / "xml"
    xml.mkdir()
    good = _object("Ada", 1, 2, 30, 40)
    (xml / "1.xml").write_text(_xml(good))
    (xml / "2.xml").write_text(_xml(good)[:45])                            # truncated
    (xml / "3.xml").write_text(_xml(_object("Ada", 1, 2, 30)))             # a box with 3 numbers
    (xml / "4.xml").write_text(_xml(good + _object("Bob", 5, 5, 9, 9)))    # Bob is no entity of tweet 4
    (xml / "5.xml").write_text(_xml(_object("Ada", 30, 2, 1, 40)))         # inverted
    (xml / "7.xml").write_text(_xml(good))
    conll = tmp_path / "t.txt"
    conll.write_text("".join(GOOD.format(id=i) for i in range(1, 8)))
    result = vkel("data", "import", "fmnerg", conll, "--xml-dir", xml, "--on-error", "skip")
    assert result.code == 1
    records = result.records()
    assert [r["id"] for r in records] == ["1", "6", "7"]
    assert records[0]["entities"][0]["boxes"] == [[1.0, 2.0, 30.0, 40.0]] and records[0]["image_size"] == [100, 80]
    assert records[1]["entities"][0]["boxes"] == [] and records[1]["image_size"] is None  # 6 has no XML file
    stderr = result.stderr
    assert f"(at {xml / '2.xml'}): malformed XML" in stderr
    assert f"(at {xml / '3.xml'}: object 1): <ymax> missing" in stderr
    assert f"(at {xml / '4.xml'}: object 2): box named 'Bob' matches no entity of the tweet at {conll}:13" in stderr
    assert f"(at {xml / '5.xml'}: object 1): bad box" in stderr
    assert "7 tweets read, 3 written, 4 skipped; 1 without an XML file (no box), 2 boxes" in stderr


def test_missing_xml_dir_is_an_error_not_an_empty_grounding(vkel, tmp_path):
    result = vkel("data", "import", "fmnerg", MINI / "fmnerg.txt", "--xml-dir", tmp_path / "nope")
    assert result.code == 1 and f"(at {tmp_path / 'nope'}): --xml-dir is not a directory" in result.stderr
    assert result.stdout == b""


def _windows(text: str) -> bytes:
    return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()


def test_bom_and_crlf_import_like_clean_files(vkel, tmp_path):
    xml = tmp_path / "xml"
    xml.mkdir()
    for source in (MINI / "xml").iterdir():
        (xml / source.name).write_bytes(_windows('<?xml version="1.0" encoding="utf-8"?>\n' + source.read_text()))
    conll = tmp_path / "fmnerg.txt"
    conll.write_bytes(_windows((MINI / "fmnerg.txt").read_text()))
    clean = vkel("data", "import", "fmnerg", MINI / "fmnerg.txt", "--xml-dir", MINI / "xml")
    windows = vkel("data", "import", "fmnerg", conll, "--xml-dir", xml)
    assert clean.code == windows.code == 0, windows.stderr
    strip = [{k: v for k, v in r.items() if k != "meta"} for r in clean.records()]
    assert [{k: v for k, v in r.items() if k != "meta"} for r in windows.records()] == strip
    assert len(strip) == 3 and sum(len(e["boxes"]) for r in strip for e in r["entities"]) == 5


def test_figer_bom_crlf_and_stable_ids(vkel, tmp_path):
    sample = (FIXTURES / "figer_sample.label").read_text()
    windows = tmp_path / "w.label"
    windows.write_bytes(_windows(sample))
    clean = vkel("data", "import", "figer", FIXTURES / "figer_sample.label")
    crlf = vkel("data", "import", "figer", windows)
    assert clean.code == crlf.code == 0 and clean.records() == [
        {**r, "meta": {**r["meta"], "origin": r["meta"]["origin"].replace(str(windows), str(
            FIXTURES / "figer_sample.label"))}} for r in crlf.records()]
    # the first sentence broken: the others keep the ids they have in the clean file
    first_blank = sample.index("\n\n")
    broken = tmp_path / "b.label"
    broken.write_text("Bad\tX-/person\n" + sample[sample.index("\n") + 1:])
    assert sample.index("\n") < first_blank
    result = vkel("data", "import", "figer", broken, "--on-error", "skip")
    assert result.code == 1
    assert [r["id"] for r in result.records()] == [r["id"] for r in clean.records()][1:] == ["figer-4"]
    jsonl = tmp_path / "f.jsonl"
    lines = [json.dumps({"tokens": ["Visit", "Paris"], "entities": [{"start": 1, "end": 2, "types": ["/location"]}]}),
             "{broken", json.dumps({"tokens": ["Rome"], "entities": [{"start": 0, "end": 1, "types": ["/location"]}]})]
    jsonl.write_bytes(_windows("\n".join(lines) + "\n"))
    result = vkel("data", "import", "figer", jsonl, "--on-error", "ignore")
    assert result.code == 0 and [r["id"] for r in result.records()] == ["figer-1", "figer-3"]
    assert f"(at {jsonl}:2)" in result.stderr


def test_vkel_output_stays_aligned_past_bad_lines(vkel, tmp_path):
    gold = tmp_path / "gold.jsonl"
    records = vkel("data", "import", "fmnerg", MINI / "fmnerg.txt", "--xml-dir", MINI / "xml").records()
    gold.write_bytes(_windows("\n".join([json.dumps(records[0]), '{"id": 5}', json.dumps(records[2])]) + "\n"))
    outputs = tmp_path / "gen.jsonl"
    outputs.write_text('{"output": "kevin love is a(an) person."}\n{"output": "no entity found."}\n'
                       '{"generated": "Apple is a(an) organization."}\n')
    assert vkel("data", "import", "vkel-output", outputs, "--gold", gold).code == 1
    result = vkel("data", "import", "vkel-output", outputs, "--gold", gold, "--on-error", "skip")
    assert result.code == 1 and "2 item(s) skipped" in result.stderr
    first, third = result.records()  # the bad gold line took its generation with it
    assert first["id"] == "101" and first["stage1"] == [{"text": "kevin love", "coarse": "person"}]
    assert third["id"] == "103" and "stage1" not in third
    assert "expected an object with a string `output`" in third["meta"]["errors"]["import"]
    assert f"(at {gold}:2)" in result.stderr and f"(at {outputs}:3)" in result.stderr
