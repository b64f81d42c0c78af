"""The parser on real model outputs: a corpus of realistic generations for VKEL's two prompts (vkel_cli/format/prompts.py), written for the tests.

Each case is what a real model writes for the prompt: LLaVA-1.5 fine-tuned on the targets (the trained
form), LLaVA-1.5 / Qwen2.5-VL base models (plain sentences, `a`/`an`, commas and periods between clauses,
`<think>`/`<answer>` wrappers), and chat models behind an OpenAI-compatible server (GPT-4o, Gemini, Llama via
vLLM: preambles, one clause per line, numbered and bulleted lists, markdown bold, trailing explanations), plus
generations cut off by `max_new_tokens` and unusable boxes. Every case carries the tweet tokens (the parser
uses them to tell an entity from the prose around it) and the exact items, unparsed fragments and notes a
careful reader expects. `clean` is expected exactly when nothing is unparsed and nothing is noted.

Stage-2 items: `boxes` holds the usable normalized boxes; `box_error` (only when set) says why the entity
has no usable box although the model did not say `None`.
"""

from __future__ import annotations

from typing import NamedTuple

CAVS = "Kevin Love and J. R. Smith in Cleveland tonight !".split()
NBA = "RT @NBA : LeBron James leads the Cavs past the Warriors in Oakland".split()
FOX = "Fox &amp ; Fin Financial Group will get your business SOLD !".split()
SWIFT = "Life is a Game : Taylor Swift live at Madison Square Garden #1989Tour".split()
NONE_TWEET = "lol what a day".split()


class Case(NamedTuple):
    name: str
    writer: str  # which kind of model writes this
    stage: int
    tokens: list
    raw: str
    items: list
    unparsed: list = []
    notes: list = []


def s1(text, coarse):
    return {"text": text, "coarse": coarse}


def s2(text, coarse, fine, *boxes, error=None):
    item = {"text": text, "coarse": coarse, "fine": fine, "boxes": [list(b) for b in boxes]}
    if error:
        item["box_error"] = error
    return item


KL, JRS, CLE = s1("Kevin Love", "person"), s1("J. R. Smith", "person"), s1("Cleveland", "location")
NBA1 = [s1("LeBron James", "person"), s1("Cavs", "organization"), s1("Warriors", "organization"),
        s1("Oakland", "location")]
KL_BOX = (0.448, 0.02, 0.913, 1.0)
JRS_BOXES = ((0.0, 0.0, 0.1, 0.071), (0.2, 0.142, 0.5, 0.425))

CORPUS = [
    # ------------------------------------------------------------------------------------------ stage 1
    Case("s1-trained", "LLaVA-1.5 fine-tuned", 1, CAVS,
         "Kevin Love is a(an) person; J. R. Smith is a(an) person; Cleveland is a(an) location.",
         [KL, JRS, CLE]),
    Case("s1-preamble-inline", "GPT-4o", 1, CAVS,
         "Sure! Here are the entities: Kevin Love is a(an) person; J. R. Smith is a(an) person; "
         "Cleveland is a(an) location.",
         [KL, JRS, CLE], unparsed=["Sure! Here are the entities:"]),
    Case("s1-preamble-one-per-line", "Llama-3.1-8B-Instruct via vLLM", 1, CAVS,
         "Here are the named entities in the tweet:\n\nKevin Love is a(an) person\nJ. R. Smith is a(an) person\n"
         "Cleveland is a(an) location",
         [KL, JRS, CLE], unparsed=["Here are the named entities in the tweet:"]),
    Case("s1-numbered-dot", "GPT-4o", 1, CAVS,
         "1. Kevin Love is a(an) person\n2. J. R. Smith is a(an) person\n3. Cleveland is a(an) location",
         [KL, JRS, CLE]),
    Case("s1-numbered-paren-semicolons", "Llama-3.1-70B-Instruct via vLLM", 1, NBA,
         "1) LeBron James is a(an) person;\n2) Cavs is a(an) organization;\n3) Warriors is a(an) organization;\n"
         "4) Oakland is a(an) location.",
         NBA1),
    Case("s1-bullets-bold", "Gemini 1.5 Pro", 1, NBA,
         "- **LeBron James** is a(an) person\n- **Cavs** is a(an) organization\n* **Warriors** is a(an) "
         "organization\n• **Oakland** is a(an) location",
         NBA1),
    Case("s1-commas-articles", "LLaVA-1.5-7B base", 1, CAVS,
         "Kevin Love is a person, J. R. Smith is a person, and Cleveland is a location.",
         [KL, JRS, CLE]),
    Case("s1-periods-an", "Qwen2.5-VL-7B-Instruct base", 1, NBA,
         "LeBron James is a person. Cavs is an organization. Warriors is an organization. Oakland is a location.",
         NBA1),
    Case("s1-types-any-case", "LLaVA-1.5 fine-tuned, sampled", 1, CAVS,
         "Kevin Love is a(an) PERSON; J. R. Smith is A(AN) Person; Cleveland is a (an) Location",
         [KL, JRS, CLE]),
    Case("s1-think-answer-tags", "Qwen2.5-VL with a reasoning prompt", 1, CAVS,
         "<think>\nThe tweet names two players. Kevin Love is a person and J. R. Smith is a person; Cleveland is "
         "a location.\n</think>\n<answer>Kevin Love is a(an) person; J. R. Smith is a(an) person; Cleveland is "
         "a(an) location.</answer>",
         [KL, JRS, CLE]),
    Case("s1-think-open-in-prompt", "DeepSeek-R1-Distill via vLLM (the template opens <think>)", 1, CAVS,
         "Okay, the user wants the entities. Kevin Love is a person.\n</think>\n\nKevin Love is a(an) person; "
         "Cleveland is a(an) location.",
         [KL, CLE]),
    Case("s1-think-cut-off", "a reasoning model cut off by max_new_tokens", 1, CAVS,
         "<think>\nLet me look at the tweet. Kevin Love is a person, and", [],
         notes=["the answer ends inside <think>: no answer"]),
    Case("s1-no-entity-trained", "LLaVA-1.5 fine-tuned", 1, NONE_TWEET, "no entity found.", []),
    Case("s1-no-entity-plural", "GPT-4o", 1, NONE_TWEET, "No entities found.", []),
    Case("s1-no-entity-sentence", "Llama-3.1-8B-Instruct via vLLM", 1, NONE_TWEET,
         "There are no named entities in this tweet.", []),
    Case("s1-no-entity-none", "Qwen2.5-VL-7B-Instruct base", 1, NONE_TWEET, "None", []),
    Case("s1-empty", "an engine that returned nothing", 1, NONE_TWEET, "", [], notes=["empty answer"]),
    Case("s1-semicolon-in-entity", "LLaVA-1.5 fine-tuned", 1, FOX,
         "Fox &amp ; Fin Financial Group is a(an) organization.", [s1("Fox &amp ; Fin Financial Group", "organization")]),
    Case("s1-semicolon-in-entity-and-between", "LLaVA-1.5 fine-tuned", 1, FOX,
         "Fox &amp ; Fin Financial Group is a(an) organization; Fin Financial Group is a(an) organization.",
         [s1("Fox &amp ; Fin Financial Group", "organization"), s1("Fin Financial Group", "organization")]),
    Case("s1-is-a-inside-entity", "LLaVA-1.5 fine-tuned", 1, SWIFT,
         "Life is a Game is a(an) art; Taylor Swift is a(an) person; Madison Square Garden is a(an) building.",
         [s1("Life is a Game", "art"), s1("Taylor Swift", "person"), s1("Madison Square Garden", "building")]),
    Case("s1-quoted-italic-entities", "Llama-3.1-8B-Instruct via vLLM", 1, CAVS,
         '"Kevin Love" is a(an) person; *Cleveland* is a(an) location', [KL, CLE]),
    Case("s1-entities-and-no-entity", "LLaVA-1.5 fine-tuned, sampled", 1, CAVS,
         "Kevin Love is a(an) person.\nno entity found.", [KL],
         notes=["says there is no entity and also lists entities"]),
    Case("s1-trailing-note", "GPT-4o", 1, CAVS,
         "Kevin Love is a(an) person; Cleveland is a(an) location.\n\nNote: J. R. Smith could also be considered "
         "a person.",
         [KL, CLE], unparsed=["Note: J. R. Smith could also be considered a person."]),
    Case("s1-explanation-per-clause", "Gemini 1.5 Flash", 1, NBA,
         "LeBron James is a(an) person, the Cavs forward who led the game.\nCavs is a(an) organization "
         "(a basketball team).\nOakland is a(an) location",
         [NBA1[0], NBA1[1], NBA1[3]], unparsed=["the Cavs forward who led the game.", "(a basketball team)."]),
    Case("s1-hallucinated-entity", "LLaVA-1.5 fine-tuned", 1, CAVS,
         "Kevin Love is a(an) person; Tristan Thompson is a(an) person.",
         [KL, s1("Tristan Thompson", "person")], notes=["entity 'Tristan Thompson' does not occur in the tweet"]),
    Case("s1-preamble-and-unknown-entity", "GPT-4o-mini", 1, CAVS,
         "Entities: Gotham City is a(an) location",
         [s1("Entities: Gotham City", "location")],
         notes=["entity 'Entities: Gotham City' does not occur in the tweet"]),
    Case("s1-cut-off-in-type", "LLaVA-1.5 fine-tuned cut off by max_new_tokens", 1, CAVS,
         "Kevin Love is a(an) person; J. R. Smith is a(an) pers",
         [KL, s1("J. R. Smith", "pers")], notes=["unknown coarse type 'pers' for 'J. R. Smith'"]),
    Case("s1-cut-off-in-entity", "LLaVA-1.5 fine-tuned cut off by max_new_tokens", 1, CAVS,
         "Kevin Love is a(an) person; J. R. Smi", [KL], unparsed=["J. R. Smi"]),
    Case("s1-prose-only", "LLaVA-1.5-7B base", 1, CAVS,
         "The tweet mentions Kevin Love (person) and Cleveland (location).", [],
         unparsed=["The tweet mentions Kevin Love (person) and Cleveland (location)."]),
    # ------------------------------------------------------------------------------------------ stage 2
    Case("s2-trained", "LLaVA-1.5 fine-tuned", 2, CAVS,
         "Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0); "
         "J. R. Smith is a(an) person and a(an) athlete, whose bounding boxes are (0.0, 0.0, 0.1, 0.071), "
         "(0.2, 0.142, 0.5, 0.425); Cleveland is a(an) location and a(an) city, whose bounding boxes are None",
         [s2("Kevin Love", "person", "athlete", KL_BOX), s2("J. R. Smith", "person", "athlete", *JRS_BOXES),
          s2("Cleveland", "location", "city")]),
    Case("s2-preamble-numbered", "GPT-4o", 2, CAVS,
         "Here are the entities with their types and bounding boxes:\n\n1. Kevin Love is a(an) person and a(an) "
         "athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0)\n2. J. R. Smith is a(an) person and a(an) "
         "athlete, whose bounding boxes are None\n3. Cleveland is a(an) location and a(an) city, whose bounding "
         "boxes are None",
         [s2("Kevin Love", "person", "athlete", KL_BOX), s2("J. R. Smith", "person", "athlete"),
          s2("Cleveland", "location", "city")],
         unparsed=["Here are the entities with their types and bounding boxes:"]),
    Case("s2-commas-singular-and-boxes", "LLaVA-1.5-7B base", 2, CAVS,
         "Kevin Love is a person and an athlete, whose bounding box is (0.448, 0.02, 0.913, 1.0), J. R. Smith is "
         "a person and an athlete, whose bounding boxes are (0.0, 0.0, 0.1, 0.071) and (0.2, 0.142, 0.5, 0.425), "
         "Cleveland is a location and a city, whose bounding box is None.",
         [s2("Kevin Love", "person", "athlete", KL_BOX), s2("J. R. Smith", "person", "athlete", *JRS_BOXES),
          s2("Cleveland", "location", "city")]),
    Case("s2-with-bounding-box", "Qwen2.5-VL-7B-Instruct base", 2, CAVS,
         "Kevin Love is a person and an athlete, with bounding box [0.448, 0.02, 0.913, 1.0].",
         [s2("Kevin Love", "person", "athlete", KL_BOX)]),
    Case("s2-cut-off-mid-box", "LLaVA-1.5 fine-tuned cut off by max_new_tokens", 2, CAVS,
         "Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0); "
         "J. R. Smith is a(an) person and a(an) athlete, whose bounding boxes are (0.0, 0.0, 0.1",
         [s2("Kevin Love", "person", "athlete", KL_BOX), s2("J. R. Smith", "person", "athlete", error="cut off")],
         notes=["unusable box for 'J. R. Smith' (cut off): (0.0, 0.0, 0.1"]),
    Case("s2-cut-off-mid-number-second-box", "LLaVA-1.5 fine-tuned cut off by max_new_tokens", 2, CAVS,
         "J. R. Smith is a(an) person and a(an) athlete, whose bounding boxes are (0.0, 0.0, 0.1, 0.071), "
         "(0.2, 0.142, 0.5, 0.4",
         [s2("J. R. Smith", "person", "athlete", JRS_BOXES[0])],
         notes=["unusable box for 'J. R. Smith' (cut off): (0.2, 0.142, 0.5, 0.4"]),
    Case("s2-cut-off-in-box-words", "LLaVA-1.5 fine-tuned cut off by max_new_tokens", 2, CAVS,
         "Cleveland is a(an) location and a(an) city, whose bounding bo",
         [s2("Cleveland", "location", "city", error="no box")], unparsed=["whose bounding bo"],
         notes=["no bounding-box part for 'Cleveland'"]),
    Case("s2-unusable-boxes", "Qwen2.5-VL-7B-Instruct fine-tuned (pixel habits)", 2, CAVS,
         "Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.913, 0.02, 0.448, 1.0); "
         "J. R. Smith is a(an) person and a(an) athlete, whose bounding boxes are [120, 45, 380, 400]; "
         "Cleveland is a(an) location and a(an) city, whose bounding boxes are (0.3, 0.3, 0.3, 0.6)",
         [s2("Kevin Love", "person", "athlete", error="inverted"),
          s2("J. R. Smith", "person", "athlete", error="out of range"),
          s2("Cleveland", "location", "city", error="zero area")],
         notes=["unusable box for 'Kevin Love' (inverted): (0.913, 0.02, 0.448, 1.0)",
                "unusable box for 'J. R. Smith' (out of range): [120, 45, 380, 400]",
                "unusable box for 'Cleveland' (zero area): (0.3, 0.3, 0.3, 0.6)"]),
    Case("s2-first-box-bad-second-good", "LLaVA-1.5 fine-tuned, sampled", 2, CAVS,
         "J. R. Smith is a(an) person and a(an) athlete, whose bounding boxes are (0.5, 0.1, 0.2, 0.4), "
         "(0.2, 0.142, 0.5, 0.425)",
         [s2("J. R. Smith", "person", "athlete", JRS_BOXES[1])],
         notes=["unusable box for 'J. R. Smith' (inverted): (0.5, 0.1, 0.2, 0.4)"]),
    Case("s2-answer-tags-bold-trailing", "Qwen2.5-VL with a reasoning prompt", 2, CAVS,
         "<answer>\n**Kevin Love** is a(an) **person** and a(an) **athlete**, whose bounding boxes are "
         "(0.448, 0.02, 0.913, 1.0).\n</answer>\nKevin Love is the player on the left of the image.",
         [s2("Kevin Love", "person", "athlete", KL_BOX)],
         unparsed=["Kevin Love is the player on the left of the image."]),
    Case("s2-semicolon-in-entity", "LLaVA-1.5 fine-tuned", 2, FOX,
         "Fox &amp ; Fin Financial Group is a(an) organization and a(an) company, whose bounding boxes are "
         "(0.1, 0.1, 0.5, 0.3)",
         [s2("Fox &amp ; Fin Financial Group", "organization", "company", (0.1, 0.1, 0.5, 0.3))]),
    Case("s2-no-box-part", "LLaVA-1.5-7B base", 2, CAVS,
         "Cleveland is a(an) location and a(an) city.",
         [s2("Cleveland", "location", "city", error="no box")], notes=["no bounding-box part for 'Cleveland'"]),
    Case("s2-type-spelling", "GPT-4o", 2, NBA,
         "Cavs is a(an) organization and a(an) Sports Team, whose bounding boxes are None; Warriors is a(an) "
         "Organization and a(an) sports-team, whose bounding boxes are None",
         [s2("Cavs", "organization", "sports_team"), s2("Warriors", "organization", "sports_team")]),
    Case("s2-coarse-only", "a model trained on coarse-only (GMNER) targets", 2, NBA,
         "LeBron James is a(an) person, whose bounding boxes are (0.1, 0.2, 0.4, 0.9); Oakland is a(an) location, "
         "whose bounding boxes are None",
         [s2("LeBron James", "person", None, (0.1, 0.2, 0.4, 0.9)), s2("Oakland", "location", None)]),
    Case("s2-trailing-explanation-same-line", "Gemini 1.5 Pro", 2, CAVS,
         "Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0), as he "
         "is the player in the foreground.",
         [s2("Kevin Love", "person", "athlete", KL_BOX)], unparsed=["as he is the player in the foreground."]),
    Case("s2-preamble-inline-commas", "Llama-3.2-11B-Vision-Instruct via vLLM", 2, NBA,
         "Based on the image, LeBron James is a(an) person and a(an) athlete, whose bounding boxes are "
         "(0.1, 0.2, 0.4, 0.9), Cavs is a(an) organization and a(an) sports_team, whose bounding boxes are None.",
         [s2("LeBron James", "person", "athlete", (0.1, 0.2, 0.4, 0.9)),
          s2("Cavs", "organization", "sports_team")],
         unparsed=["Based on the image"]),
    Case("s2-no-entity", "GPT-4o", 2, NONE_TWEET, "No entities found.", []),
]


# ------------------------------------------------------------------------------------------------ tests

import pytest  # noqa: E402

from vkel_cli.format import sequences  # noqa: E402


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_corpus_parses_as_a_careful_reader_expects(case):
    parse = sequences.parse_stage1 if case.stage == 1 else sequences.parse_stage2
    result = parse(case.raw, case.tokens)
    assert result.items == case.items
    assert result.unparsed == case.unparsed
    assert result.notes == case.notes
    assert result.clean == (not case.unparsed and not case.notes)


def test_corpus_covers_every_case_of_the_issue():
    raws = " ".join(c.raw for c in CORPUS)
    for needle in ["Sure!", "\n1. ", "\n2) ", "\n- ", "\n* ", "\n• ", "<answer>", "<think>", "</think>", " is a ",
                   " is an ", "a(an)", "PERSON", "bounding box is", "bounding boxes are", "**", "&amp ;"]:
        assert needle in raws, needle
    errors = {item.get("box_error") for c in CORPUS for item in c.items if c.stage == 2}
    assert errors >= {"cut off", "inverted", "out of range", "zero area", "no box"}
    assert sum(1 for c in CORPUS if c.items == [] and not c.notes and not c.unparsed) == 5  # no-entity variants


def test_attach_reads_the_tweet_from_the_record_and_notes_what_it_dropped():
    [case] = [c for c in CORPUS if c.name == "s1-preamble-inline"]
    record = {"id": "1", "tokens": case.tokens}
    result = sequences.attach_stage1(record, case.raw)
    assert not result.clean
    assert record["stage1"] == case.items
    assert record["meta"]["generation"]["stage1"] == {"raw": case.raw, "unparsed": ["Sure! Here are the entities:"]}


def test_attach_stage2_marks_unusable_boxes_and_keeps_types():
    [case] = [c for c in CORPUS if c.name == "s2-unusable-boxes"]
    record = {"id": "1", "tokens": case.tokens}
    sequences.attach_stage2(record, case.raw, [1000, 500])
    assert record["predictions"] == [
        {"text": "Kevin Love", "coarse": "person", "fine": "athlete", "box": None, "box_error": "inverted"},
        {"text": "J. R. Smith", "coarse": "person", "fine": "athlete", "box": None, "box_error": "out of range"},
        {"text": "Cleveland", "coarse": "location", "fine": "city", "box": None, "box_error": "zero area"}]
    assert record["meta"]["generation"]["stage2"]["notes"] == case.notes


def test_attach_stage2_first_usable_box_in_pixels():
    [case] = [c for c in CORPUS if c.name == "s2-first-box-bad-second-good"]
    record = {"id": "1", "tokens": case.tokens}
    sequences.attach_stage2(record, case.raw, [1000, 500])
    assert record["predictions"][0]["box"] == pytest.approx([200, 71, 500, 212.5])
    assert "box_error" not in record["predictions"][0]


def test_attach_stage2_without_image_size_never_claims_not_in_image():
    record = {"id": "1", "tokens": CAVS}
    raw = ("Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0); "
           "Cleveland is a(an) location and a(an) city, whose bounding boxes are None")
    result = sequences.attach_stage2(record, raw, None)
    assert record["predictions"] == [
        {"text": "Kevin Love", "coarse": "person", "fine": "athlete", "box": None, "box_error": "image size unknown"},
        {"text": "Cleveland", "coarse": "location", "fine": "city", "box": None}]
    assert result.notes == ["image size unknown: generated boxes cannot be converted to pixels"]


def test_without_tokens_the_text_before_is_is_kept_whole():
    # parse_* called without the tweet cannot tell prose from entity: it keeps the text, as before.
    result = sequences.parse_stage1("Sure! Here are the entities: Kevin Love is a(an) person")
    assert result.items == [{"text": "Sure! Here are the entities: Kevin Love", "coarse": "person"}]


def test_runaway_generations_parse_in_linear_time():
    import time

    start = time.perf_counter()
    clauses = sequences.parse_stage2("Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are None; "
                                     * 3000, CAVS)
    prose = sequences.parse_stage1("so I think that the answer might be " * 2000 + "Kevin Love is a(an) person", CAVS)
    assert time.perf_counter() - start < 3.0  # quadratic tail and `;` searches took ~30 s each here
    assert len(clauses.items) == 3000 and clauses.clean
    assert prose.items == [KL] and prose.unparsed[0].startswith("so I think")


def test_vkel_import_and_score_real_generations_end_to_end(vkel, tmp_path):
    """A user's path: generations of a chat model -> `vkel data import vkel-output` -> `vkel score`."""
    import json

    gold = [{"id": "1", "tokens": CAVS, "image_size": [1000, 500],
             "entities": [{"text": "Kevin Love", "start": 0, "end": 2, "coarse": "person", "fine": "athlete",
                           "boxes": [[448, 10, 913, 500]]},
                          {"text": "J. R. Smith", "start": 3, "end": 6, "coarse": "person", "fine": "athlete",
                           "boxes": []},
                          {"text": "Cleveland", "start": 7, "end": 8, "coarse": "location", "fine": "city",
                           "boxes": []}]},
            {"id": "2", "tokens": FOX, "image_size": [1000, 500],
             "entities": [{"text": "Fox &amp ; Fin Financial Group", "start": 0, "end": 6, "coarse": "organization",
                           "fine": "company", "boxes": [[100, 50, 500, 150]]}]}]
    by_name = {c.name: c for c in CORPUS}
    outputs = [by_name["s2-preamble-numbered"].raw.replace("J. R. Smith is a(an) person and a(an) athlete, whose "
                                                           "bounding boxes are None",
                                                           "J. R. Smith is a(an) person and a(an) athlete, whose "
                                                           "bounding boxes are (0.2, 0.1"),
               by_name["s2-semicolon-in-entity"].raw]
    (tmp_path / "gold.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gold))
    (tmp_path / "gen.jsonl").write_text("".join(json.dumps({"output": o}) + "\n" for o in outputs))
    imported = vkel("data", "import", "vkel-output", tmp_path / "gen.jsonl", "--gold", tmp_path / "gold.jsonl",
                    "--stage", "2", "-o", tmp_path / "pred.jsonl")
    assert imported.code == 0, imported.stderr
    first, second = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert [(p["text"], p.get("box_error")) for p in first["predictions"]] == [
        ("Kevin Love", None), ("J. R. Smith", "cut off"), ("Cleveland", None)]
    assert first["meta"]["generation"]["stage2"]["unparsed"] == [
        "Here are the entities with their types and bounding boxes:"]
    assert first["meta"]["generation"]["stage2"]["notes"] == ["unusable box for 'J. R. Smith' (cut off): (0.2, 0.1"]
    assert second["predictions"][0]["text"] == "Fox &amp ; Fin Financial Group"
    assert "unparsed" not in second["meta"]["generation"]["stage2"]
    scored = vkel("score", tmp_path / "pred.jsonl")
    assert scored.code == 0, scored.stderr
    rows = {r["task"]: (r["tp"], r["n_pred"], r["n_gold"]) for r in scored.records() if r["type"] == "all"}
    # J. R. Smith is not in the image, but a cut-off box never means "not in the image".
    assert rows == {"FMNER": (4, 4, 4), "FMNERG": (3, 4, 4), "EEG": (3, 4, 4)}
