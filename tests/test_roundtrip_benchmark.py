"""The whole benchmark round trip: every gold entity of ../shared/data (train + dev + test) -> its stage-1 and
stage-2 target -> the parser (with the tweet) -> the same text, types and boxes (within the 3-decimal rounding)."""

from __future__ import annotations

import pytest

from vkel_cli.format import sequences
from vkel_cli.core.boxes import denormalize
from vkel_cli.data.benchmark import import_fmnerg

SPLITS = ("train", "dev", "test")
ENTITIES = 16772  # the benchmark's entity count, train + dev + test


def _records(shared_data):
    xml = str(shared_data / "gmner-v2" / "xml")
    for split in SPLITS:
        yield from import_fmnerg(str(shared_data / "fmnerg" / f"{split}.txt"), xml)


def _box_ok(parsed: list, gold: list, size) -> bool:
    if len(parsed) != len(gold):
        return False
    # Half a rounding step of the larger side, plus float slack.
    tolerance = 0.0005 * max(size) + 1e-6 if size else 0.0
    return all(denormalize(p, size) == pytest.approx(g, abs=tolerance) for p, g in zip(parsed, gold))


def test_every_benchmark_entity_round_trips_through_both_targets(shared_data):
    counts = {"entities": 0, "stage1": 0, "stage2_text_types": 0, "stage2_boxes": 0, "with_boxes": 0,
              "records_clean": 0, "records": 0}
    failures = []
    for record in _records(shared_data):
        tokens, size, gold = record["tokens"], record["image_size"], record["entities"]
        counts["records"] += 1
        counts["entities"] += len(gold)
        stage1 = sequences.parse_stage1(sequences.stage1_target(gold), tokens)
        stage2 = sequences.parse_stage2(sequences.stage2_target(gold, size), tokens)
        counts["records_clean"] += stage1.clean and stage2.clean
        if len(stage1.items) == len(gold):
            counts["stage1"] += sum(i == {"text": e["text"], "coarse": e["coarse"]} for i, e in zip(stage1.items, gold))
        if len(stage2.items) == len(gold):
            for item, entity in zip(stage2.items, gold):
                same = (item["text"], item["coarse"], item["fine"]) == (entity["text"], entity["coarse"], entity["fine"])
                counts["stage2_text_types"] += same
                counts["with_boxes"] += bool(entity["boxes"])
                counts["stage2_boxes"] += same and "box_error" not in item and _box_ok(item["boxes"], entity["boxes"], size)
        if not (stage1.clean and stage2.clean and len(stage1.items) == len(stage2.items) == len(gold)):
            failures.append((record["id"], stage1.unparsed + stage2.unparsed, stage1.notes + stage2.notes))
    print(counts)  # the numbers for the report (pytest -s)
    assert failures == []
    assert counts["entities"] == ENTITIES
    assert counts["stage1"] == counts["stage2_text_types"] == counts["stage2_boxes"] == ENTITIES
    assert counts["records_clean"] == counts["records"] == 10000
    assert counts["with_boxes"] > 5000  # the boxes were really exercised
