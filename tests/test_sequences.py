"""Sequence formats and the tolerant parser: round trips and malformed generations."""

import pytest

from vkel_cli.format import sequences
from vkel_cli.core.boxes import denormalize, format_box, normalize

ENTITIES = [
    {"text": "Kevin Love", "coarse": "person", "fine": "athlete", "boxes": [[224, 14, 456.5, 706]]},
    {"text": "J. R. Smith", "coarse": "person", "fine": "athlete", "boxes": [[0, 0, 50, 50], [100, 100, 250, 300]]},
    {"text": "Cleveland", "coarse": "location", "fine": "city", "boxes": []},
]
SIZE = [500, 706]


def test_stage1_target_format():
    assert sequences.stage1_target(ENTITIES[:2]) == "Kevin Love is a(an) person; J. R. Smith is a(an) person."
    assert sequences.stage1_target([]) == "no entity found."


def test_stage2_target_format():
    text = sequences.stage2_target(ENTITIES[:1], SIZE)
    assert text == "Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0)"
    assert sequences.stage2_target(ENTITIES[2:], SIZE).endswith("whose bounding boxes are None")
    two = sequences.stage2_target(ENTITIES[1:2], SIZE)
    assert two.endswith("are (0.0, 0.0, 0.1, 0.071), (0.2, 0.142, 0.5, 0.425)")


def test_round_trip_gold_to_text_to_triples():
    parsed = sequences.parse_stage2(sequences.stage2_target(ENTITIES, SIZE))
    assert parsed.clean
    assert [(i["text"], i["coarse"], i["fine"]) for i in parsed.items] == [
        (e["text"], e["coarse"], e["fine"]) for e in ENTITIES]
    for item, entity in zip(parsed.items, ENTITIES):
        assert len(item["boxes"]) == len(entity["boxes"])
        for got, want in zip(item["boxes"], entity["boxes"]):
            assert denormalize(got, SIZE) == pytest.approx(want, abs=0.0005 * max(SIZE))
    stage1 = sequences.parse_stage1(sequences.stage1_target(ENTITIES))
    assert [(i["text"], i["coarse"]) for i in stage1.items] == [(e["text"], e["coarse"]) for e in ENTITIES]


def test_parser_keeps_what_parses_and_reports_the_rest():
    text = ("kevin love is a(an) person and a(an) athlete, whose bounding boxes are (0.1, 0.2, 0.3, 0.4); "
            "blah blah; smith is a(an) person and a(an) athlete, whose bounding boxes are (0.5, 0.5")
    result = sequences.parse_stage2(text)
    # The clause cut off in its box keeps its entity and types; its box is unusable, not "not in the image".
    assert result.items == [
        {"text": "kevin love", "coarse": "person", "fine": "athlete", "boxes": [[0.1, 0.2, 0.3, 0.4]]},
        {"text": "smith", "coarse": "person", "fine": "athlete", "boxes": [], "box_error": "cut off"}]
    assert result.unparsed == ["blah blah"]
    assert result.notes == ["unusable box for 'smith' (cut off): (0.5, 0.5"]


@pytest.mark.parametrize("garbage", ["", "   ", "\x00\x01", "is a(an)", ";;;;", "(((", "no entity found",
                                     "None", "x" * 5000, "a is a(an) person and a(an) b, whose bounding boxes are ("])
def test_parser_never_raises(garbage):
    sequences.parse_stage1(garbage)
    sequences.parse_stage2(garbage)


def test_unknown_types_are_kept_and_noted():
    result = sequences.parse_stage1("Gotham is a(an) city.")
    assert result.items == [{"text": "Gotham", "coarse": "city"}]
    assert "unknown coarse type" in result.notes[0]


def test_attach_stage2_converts_first_box_to_pixels_and_notes_raw():
    record = {"id": "1", "image_size": SIZE}
    raw = sequences.stage2_target(ENTITIES[1:], SIZE)
    sequences.attach_stage2(record, raw, SIZE)
    assert record["predictions"][0]["box"] == pytest.approx([0, 0, 50, 0.071 * 706])
    assert record["predictions"][1]["box"] is None
    assert record["meta"]["generation"]["stage2"] == {"raw": raw}


def test_box_formatting_rounds_to_three_decimals():
    assert format_box(normalize([1, 2, 333, 250], [1000, 500])) == "(0.001, 0.004, 0.333, 0.5)"
