"""`vkel data import figer`: FIGER text NER -> records, type mapping, drops and their counts."""

from __future__ import annotations

import json

import orjson
import pytest

from conftest import FIXTURES, needs_shared, SHARED_DATA
from vkel_cli.core import hierarchy
from vkel_cli.data.figer import ImportCounts, import_figer, load_type_map, map_types
from vkel_cli.core.errors import ErrorPolicy, VkelError

SAMPLE = FIXTURES / "figer_sample.label"


def _entities(record):
    return [(e["text"], e["start"], e["end"], e["coarse"], e["fine"], e["boxes"]) for e in record["entities"]]


def test_sample_records_and_drop_counts():
    counts = ImportCounts()
    records = list(import_figer(str(SAMPLE), load_type_map(), counts=counts))
    assert [r["id"] for r in records] == ["figer-1", "figer-4"]  # numbered by input sentence, drops included
    first, second = records
    assert first["image"] is None and first["image_size"] is None and first["meta"]["source"] == "figer"
    assert _entities(first) == [  # /person/businessman is unmapped, /person keeps the mention (fine unknown)
        ("Steve Jobs", 0, 2, "person", None, []),
        ("iPhone", 4, 5, "product", "brand_name_products", []),
        ("San Francisco", 6, 8, "location", "city", []),
    ]  # "Tuesday" (/time) dropped
    assert _entities(second) == [  # an I- opening a mention, adjacent B- mentions kept apart
        ("Lakers", 1, 2, "organization", "sports_team", []),
        ("Kobe Bryant", 3, 5, "person", "athlete", []),
        ("Shaq", 5, 6, "person", "athlete", []),
        ("Staples Center", 8, 10, "building", "sports_facility", []),
    ]
    assert second["tokens"][-1] == "\u201d"  # the trailing-tab line is a token like any other
    assert (counts.sentences, counts.written, counts.too_long, counts.no_mapped_mention) == (4, 2, 1, 1)
    assert (counts.mentions, counts.mentions_unmapped) == (9, 2) and counts.unmapped_types == {"/time": 2}


def test_max_tokens_is_an_option():
    records = list(import_figer(str(SAMPLE), load_type_map(), max_tokens=30))
    assert [r["id"] for r in records] == ["figer-1", "figer-3", "figer-4"]
    assert list(import_figer(str(SAMPLE), load_type_map(), max_tokens=10)) == []


def test_jsonl_input(tmp_path):
    path = tmp_path / "figer.jsonl"
    path.write_text(
        json.dumps({"tokens": ["Visit", "Paris", "now"], "mentions": [
            {"start": 1, "end": 2, "labels": ["/location", "/location/city"]}]}) + "\n\n"
        + json.dumps({"id": "own-id", "tokens": ["Play", "Zelda"], "entities": [
            {"start": 1, "end": 2, "types": ["/game"]}]}) + "\n")
    records = list(import_figer(str(path), load_type_map()))
    assert [r["id"] for r in records] == ["figer-1", "own-id"]
    assert _entities(records[0]) == [("Paris", 1, 2, "location", "city", [])]
    assert _entities(records[1]) == [("Zelda", 1, 2, "product", "game", [])]


def test_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.label"
    path.write_text("Good\tO\nBad\tX-/person\nNext\tB-/person\n\nAda\tB-/person\n")
    with pytest.raises(VkelError) as info:
        list(import_figer(str(path), load_type_map()))
    assert info.value.where == f"{path}:2"
    policy = ErrorPolicy("ignore")
    records = list(import_figer(str(path), load_type_map(), policy=policy))
    assert [r["tokens"] for r in records] == [["Ada"]] and policy.skipped == 1  # the broken sentence is dropped
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"tokens": ["a"], "entities": [{"start": 0, "end": 3, "types": ["/person"]}]}\n')
    with pytest.raises(VkelError, match="entities\\[0\\]") as info:
        list(import_figer(str(jsonl), load_type_map()))
    assert info.value.where == f"{jsonl}:1"


def test_type_map_override_and_validation(tmp_path):
    custom = tmp_path / "map.json"
    custom.write_text(json.dumps({"/time": {"coarse": "other", "fine": None}, "/person": "person"}))
    records = list(import_figer(str(SAMPLE), load_type_map(str(custom))))
    assert [r["id"] for r in records] == ["figer-1", "figer-2", "figer-4"]
    assert _entities(records[1]) == [("Monday", 3, 4, "other", None, [])]
    custom.write_text(json.dumps({"/person": {"coarse": "person", "fine": "city"}}))
    with pytest.raises(VkelError, match="city"):
        load_type_map(str(custom))
    custom.write_text(json.dumps({"/person": "people"}))
    with pytest.raises(VkelError, match="unknown coarse"):
        load_type_map(str(custom))


def test_most_specific_mapped_type_wins():
    table = load_type_map()
    assert map_types(["/organization", "/organization/sports_team"], table) == ("organization", "sports_team")
    assert map_types(["/education/department", "/organization"], table) == ("organization", "educational_institution")
    assert map_types(["/time", "/title"], table) is None
    assert map_types(["/person/businessman", "/person"], table) == ("person", None)


def test_shipped_map_targets_are_valid_types():
    table = load_type_map()
    assert len(table) == 113
    for coarse, fine in filter(None, table.values()):
        assert coarse in hierarchy.coarse_types() and (fine is None or hierarchy.coarse_of(fine) == coarse)


@needs_shared
def test_shipped_map_covers_every_figer_type():
    names = (SHARED_DATA / "figer" / "figer_types.txt").read_text().split()
    assert len(names) == 113 and set(names) == set(load_type_map())


@needs_shared
def test_real_figer_gold_through_the_cli(vkel, tmp_path):
    out = tmp_path / "figer.jsonl"
    result = vkel("data", "import", "figer", SHARED_DATA / "figer" / "figer_gold_exp.label", "-o", out)
    assert result.code == 0, result.stderr
    assert "434 sentences read, 166 written" in result.stderr and "139 longer than 26" in result.stderr
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 166 and all(len(r["tokens"]) <= 26 and r["entities"] for r in records)
    stats = vkel("data", "stats", out)
    assert stats.code == 0, stats.stderr
    totals = orjson.loads(stats.stdout)
    assert totals["tweets"] == 166 and totals["entities"] == 268 and totals["boxes"] == 0
    assert totals["by_coarse"] == {"location": 38, "building": 5, "organization": 65, "person": 142, "other": 6,
                                   "art": 5, "event": 4, "product": 3}


def test_cli_stdin_and_usage(vkel):
    result = vkel("data", "import", "figer", "-", "--max-tokens", "30", input=SAMPLE.read_bytes())
    assert result.code == 0 and len(result.lines) == 3
    assert "4 sentences read, 3 written" in result.stderr
    assert vkel("data", "import", "figer", SAMPLE, "--max-tokens", "0").code == 2
    missing = vkel("data", "import", "figer", "/nonexistent/x.label")
    assert missing.code == 1 and "/nonexistent/x.label" in missing.stderr
