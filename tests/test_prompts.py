"""Stage prompts, stage-2 training noise, and training example round trips (pure functions)."""

from __future__ import annotations

import pytest

from vkel_cli.core import hierarchy
from vkel_cli.format import prompts, sequences
from vkel_cli.core.boxes import denormalize

SIZE = [500, 400]
RECORD = {
    "id": "r1",
    "tokens": ["RT", "@cavs", ":", "Kevin", "Love", "and", "J.", "R.", "Smith", "in", "Cleveland"],
    "image": "r1.jpg",
    "image_size": SIZE,
    "entities": [
        {"text": "Kevin Love", "start": 3, "end": 5, "coarse": "person", "fine": "athlete", "boxes": [[224, 8, 456, 400]]},
        {"text": "J. R. Smith", "start": 6, "end": 9, "coarse": "person", "fine": "athlete",
         "boxes": [[0, 0, 50, 50], [100, 100, 250, 300]]},
        {"text": "Cleveland", "start": 10, "end": 11, "coarse": "location", "fine": "city", "boxes": []},
    ],
    "objects": [
        {"label": "person", "score": 0.5, "box": [0, 0, 50, 40]},
        {"label": "ball", "score": 0.9, "box": [250, 200, 500, 400]},
        {"label": "person", "score": 0.7, "box": [100, 100, 200, 200]},
    ],
    "visual_knowledge": {"Kevin Love": "A tall   basketball player\nin a red jersey."},
}


def test_stage1_prompt_lists_the_coarse_types_and_the_tweet():
    text = prompts.stage1_prompt(RECORD)
    assert text.endswith("Tweet: RT @cavs : Kevin Love and J. R. Smith in Cleveland")
    for coarse in hierarchy.coarse_types():
        assert coarse in text
    assert "is a(an)" in text and "no entity found." in text


def test_stage2_prompt_sections():
    stage1 = prompts.gold_stage1(RECORD)
    text = prompts.stage2_prompt(RECORD, stage1, SIZE, top_k=2)
    lines = text.split("\n")
    # Knowledge for each stage-1 entity, whitespace collapsed; absent knowledge is said so.
    assert "- Kevin Love: A tall basketball player in a red jersey." in lines
    assert "- J. R. Smith: no visual knowledge." in lines
    assert "- Cleveland: no visual knowledge." in lines
    # Top-2 objects by score, boxes normalized by the image size.
    objects = lines[lines.index("Objects in the image:") + 1:][:2]
    assert objects == ["- ball (0.5, 0.5, 1.0, 1.0)", "- person (0.2, 0.25, 0.4, 0.5)"]
    assert lines[-1] == ("Entities: Kevin Love is a(an) person; J. R. Smith is a(an) person; "
                         "Cleveland is a(an) location.")
    assert "Fine-grained types: location: city," in text and "person: politician" in text


def test_stage2_prompt_ablations_and_missing_parts():
    stage1 = prompts.gold_stage1(RECORD)
    bare = prompts.stage2_prompt(RECORD, stage1, SIZE, knowledge=False, objects=False)
    assert "Visual knowledge" not in bare and "Objects in the image" not in bare
    assert "Entities: Kevin Love is a(an) person" in bare
    no_objects = prompts.stage2_prompt({**RECORD, "objects": []}, stage1, SIZE)
    assert "Objects in the image:\n- none detected" in no_objects
    unsized = prompts.object_lines(RECORD["objects"], None, 1)
    assert unsized == ["- ball"]
    assert prompts.stage2_prompt(RECORD, [], SIZE).endswith("Entities: no entity found.")


def test_gold_stage1_prefers_the_records_stage1():
    assert prompts.gold_stage1(RECORD)[2] == {"text": "Cleveland", "coarse": "location"}
    given = {**RECORD, "stage1": [{"text": "Cavs", "coarse": "organization", "extra": 1}]}
    assert prompts.gold_stage1(given) == [{"text": "Cavs", "coarse": "organization"}]


def test_noise_is_seeded_per_record_and_has_the_asked_rate():
    entities = prompts.gold_stage1(RECORD)
    assert prompts.perturb_stage1(entities, 0.0, 0, "r1") == entities
    changed = 0
    for i in range(2000):
        noisy = prompts.perturb_stage1(entities, 0.1, 7, f"id{i}")
        assert noisy == prompts.perturb_stage1(entities, 0.1, 7, f"id{i}")  # repeatable
        if noisy != entities:
            changed += 1
            dropped = len(noisy) == len(entities) - 1
            retyped = len(noisy) == len(entities) and sum(a != b for a, b in zip(noisy, entities)) == 1
            assert dropped or retyped
            if retyped:
                assert all(e["coarse"] in hierarchy.coarse_types() for e in noisy)
    assert 150 < changed < 250  # ~10% of 2000
    assert entities == prompts.gold_stage1(RECORD)  # the input is not mutated
    assert prompts.perturb_stage1([], 1.0, 0, "x") == []


def test_stage2_example_round_trip_gold_to_target_to_triples():
    _prompt, target = prompts.stage2_example(RECORD, SIZE, noise=1.0, seed=0)
    record = {"id": "r1"}
    result = sequences.attach_stage2(record, target, SIZE)
    assert result.clean
    gold = RECORD["entities"]
    assert [(p["text"], p["coarse"], p["fine"]) for p in record["predictions"]] == [
        (e["text"], e["coarse"], e["fine"]) for e in gold]
    for pred, entity in zip(record["predictions"], gold):
        if entity["boxes"]:
            # The first box is the prediction's box, back in pixels within the 3-decimal rounding.
            assert pred["box"] == pytest.approx(entity["boxes"][0], abs=0.0005 * max(SIZE))
        else:
            assert pred["box"] is None
    parsed = sequences.parse_stage2(target)
    flat = [v for b in parsed.items[1]["boxes"] for v in denormalize(b, SIZE)]
    assert flat == pytest.approx([0, 0, 50, 50, 100, 100, 250, 300], abs=0.25)


def test_stage1_example_round_trip():
    _prompt, target = prompts.stage1_example(RECORD)
    record = {"id": "r1"}
    sequences.attach_stage1(record, target)
    assert record["stage1"] == [{"text": e["text"], "coarse": e["coarse"]} for e in RECORD["entities"]]
    assert prompts.stage1_example({**RECORD, "entities": []})[1] == "no entity found."


def test_long_visual_knowledge_is_cut_to_a_word_budget():
    entities = [{"text": "Kevin Love", "coarse": "person"}, {"text": "Cleveland", "coarse": "location"}]
    long_text = " ".join(f"w{i}" for i in range(500))
    lines = prompts.knowledge_lines(entities, {"Kevin Love": long_text, "Cleveland": "a  red\\nflag"})
    assert lines[0] == "- Kevin Love: " + " ".join(f"w{i}" for i in range(prompts.KNOWLEDGE_WORDS)) + " ..."
    assert lines[1] == "- Cleveland: a red\\nflag"
    assert prompts.knowledge_lines(entities[:1], {"Kevin Love": "short one"}, max_words=1) == ["- Kevin Love: short ..."]
