"""`vkel data import` and `vkel data stats`: the real benchmark (Table II) and small fixtures."""

import gzip

import pytest

from conftest import FIXTURES, needs_shared
from vkel_cli.data.benchmark import import_fmnerg, import_gmner
from vkel_cli.data.stats import stats
from vkel_cli.core.errors import VkelError

MINI = FIXTURES / "mini"

TABLE_II = {
    "train": (7000, 11779, 4733, 5723),
    "dev": (1500, 2450, 991, 1171),
    "test": (1500, 2543, 1046, 1254),
}


@needs_shared
@pytest.mark.parametrize("split", sorted(TABLE_II))
def test_import_then_stats_reproduces_table_ii(vkel, shared_data, split):
    imported = vkel("data", "import", "fmnerg", shared_data / "fmnerg" / f"{split}.txt",
                    "--xml-dir", shared_data / "gmner-v2" / "xml")
    assert imported.code == 0, imported.stderr
    result = vkel("data", "stats", input=imported.stdout)
    assert result.code == 0, result.stderr
    figures = result.records()[0]
    assert (figures["tweets"], figures["entities"], figures["groundable"], figures["boxes"]) == TABLE_II[split]
    assert sum(figures["by_coarse"].values()) == figures["entities"]


@needs_shared
def test_gmner_import_maps_coarse_labels(shared_data):
    records = import_gmner(str(shared_data / "gmner-v2" / "txt" / "test.txt"), str(shared_data / "gmner-v2" / "xml"))
    figures = stats(records)
    assert figures["tweets"] == 1500
    assert set(k for k, v in figures["by_coarse"].items() if v) == {"person", "location", "organization", "other"}


def test_fixture_records_have_entities_boxes_and_sizes():
    records = list(import_fmnerg(str(MINI / "fmnerg.txt"), str(MINI / "xml")))
    assert [r["id"] for r in records] == ["101", "102", "103"]
    first = records[0]
    assert first["image"] == "101.jpg" and first["image_size"] == [500, 400]
    assert [(e["text"], e["start"], e["end"], e["coarse"], e["fine"]) for e in first["entities"]] == [
        ("Kevin Love", 0, 2, "person", "athlete"),
        ("J. R. Smith", 3, 6, "person", "athlete"),
        ("Cleveland", 7, 8, "location", "city"),
    ]
    assert first["entities"][1]["boxes"] == [[10, 20, 110, 220], [300, 20, 400, 220]]
    assert first["entities"][2]["boxes"] == []
    # no XML file: no groundable entity, size unknown without the image
    assert records[1]["entities"] == [] and records[1]["image_size"] is None
    # repeated mentions of one name share its boxes
    apples = [e for e in records[2]["entities"] if e["text"] == "Apple"]
    assert len(apples) == 2 and all(e["boxes"] == [[0, 0, 64, 48]] for e in apples)
    assert stats(records) == {"tweets": 3, "entities": 6, "groundable": 4, "boxes": 5,
                              "by_coarse": {"location": 1, "building": 0, "organization": 2, "person": 2,
                                            "other": 0, "art": 0, "event": 0, "product": 1}}


def test_image_size_falls_back_to_the_image_header(tmp_path):
    from PIL import Image

    Image.new("RGB", (37, 21)).save(tmp_path / "102.jpg")
    records = list(import_fmnerg(str(MINI / "fmnerg.txt"), str(MINI / "xml"), image_root=str(tmp_path)))
    assert records[1]["image_size"] == [37, 21]


def test_wrong_column_count_names_file_and_line(vkel, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("IMGID:1\nhello\tO\tO\nworld\tO\n")
    result = vkel("data", "import", "fmnerg", bad)
    assert result.code == 1
    assert f"(at {bad}:3)" in result.stderr and "expected 3 tab-separated columns, found 2" in result.stderr
    assert result.stdout == b"" or result.lines  # nothing malformed written


def test_bad_box_in_xml_is_reported_with_its_file(vkel, tmp_path):
    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "1.xml").write_text(
        "<annotation><size><width>10</width><height>10</height></size><object><name>A</name>"
        "<bndbox><xmin>5</xmin><ymin>5</ymin><xmax>2</xmax><ymax>9</ymax></bndbox></object></annotation>")
    (tmp_path / "t.txt").write_text("IMGID:1\nA\tB-person\tB-actor\n")
    result = vkel("data", "import", "fmnerg", tmp_path / "t.txt", "--xml-dir", tmp_path / "xml")
    assert result.code == 1
    assert "1.xml: object 1" in result.stderr and "bad box" in result.stderr


def test_non_numeric_box_is_an_error(tmp_path):
    (tmp_path / "1.xml").write_text("<annotation><object><name>A</name><bndbox><xmin>x</xmin><ymin>0</ymin>"
                                    "<xmax>1</xmax><ymax>1</ymax></bndbox></object></annotation>")
    (tmp_path / "t.txt").write_text("IMGID:1\nA\tB-person\tB-actor\n")
    with pytest.raises(VkelError, match="not a number"):
        list(import_fmnerg(str(tmp_path / "t.txt"), str(tmp_path)))


def test_import_reads_gzip_and_stdin(vkel, tmp_path):
    gz = tmp_path / "f.txt.gz"
    gz.write_bytes(gzip.compress((MINI / "fmnerg.txt").read_bytes()))
    from_gz = vkel("data", "import", "fmnerg", gz)
    from_stdin = vkel("data", "import", "fmnerg", "-", input=(MINI / "fmnerg.txt").read_bytes())
    assert from_gz.code == from_stdin.code == 0
    assert [r["tokens"] for r in from_gz.records()] == [r["tokens"] for r in from_stdin.records()]


def test_vkel_output_import_parses_both_stages(vkel, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_bytes(vkel("data", "import", "fmnerg", MINI / "fmnerg.txt", "--xml-dir", MINI / "xml").stdout)
    outputs = tmp_path / "gen.jsonl"
    outputs.write_text(
        '{"output": "kevin love is a(an) person; j. r. smith is a(an) person."}\n'
        '{"output": "no entity found."}\n'
        '{"output": "Apple is a(an) organization and a(an) company, whose bounding boxes are (0.0, 0.0, 0.1, 0.1); '
        'iPhone is a(an) product and a(an) brand_name_products, whose bounding boxes are None; garbage"}\n')
    result = vkel("data", "import", "vkel-output", outputs, "--gold", gold)
    assert result.code == 0, result.stderr
    first, second, third = result.records()
    assert first["stage1"] == [{"text": "kevin love", "coarse": "person"}, {"text": "j. r. smith", "coarse": "person"}]
    assert first["entities"][0]["text"] == "Kevin Love"  # the gold rides along
    assert second["stage1"] == []
    assert third["predictions"][0] == {"text": "Apple", "coarse": "organization", "fine": "company",
                                       "box": [0.0, 0.0, 64.0, 48.0]}
    assert third["predictions"][1]["box"] is None
    assert third["meta"]["generation"]["stage2"]["unparsed"] == ["garbage"]


def test_vkel_output_import_refuses_count_mismatch(vkel, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_bytes(vkel("data", "import", "fmnerg", MINI / "fmnerg.txt").stdout)
    outputs = tmp_path / "gen.jsonl"
    outputs.write_text('{"output": "no entity found."}\n')
    result = vkel("data", "import", "vkel-output", outputs, "--gold", gold)
    assert result.code == 1 and "fewer generations" in result.stderr


def test_vkel_output_auto_stage_reads_coarse_only_and_empty_stage2_answers_as_stage2(vkel, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_bytes(vkel("data", "import", "fmnerg", MINI / "fmnerg.txt", "--xml-dir", MINI / "xml").stdout)
    outputs = tmp_path / "gen.jsonl"
    outputs.write_text(
        '{"output": "Kevin Love is a(an) person, whose bounding boxes are None"}\n'  # coarse-only stage 2
        '{"output": "No entities found."}\n'  # cannot tell: follows the previous answer's stage
        '{"output": "Apple is a(an) organization and a(an) company, whose bounding boxes are None"}\n')
    result = vkel("data", "import", "vkel-output", outputs, "--gold", gold)
    assert result.code == 0, result.stderr
    first, second, third = result.records()
    assert first["predictions"] == [{"text": "Kevin Love", "coarse": "person", "fine": None, "box": None}]
    assert second["predictions"] == [] and "stage1" not in second
    assert [p["fine"] for p in third["predictions"]] == ["company"]
