"""`vkel vote`: the offline majority vote (exact outcomes) and the LLM voter over loopback HTTP."""

from __future__ import annotations

import json
import re

import orjson
import pytest
from openai_server import OpenAIServer, Reply, last_user_text

from vkel_cli.core.errors import ErrorPolicy
from vkel_cli.knowledge.ask import render_answer
from vkel_cli.knowledge.vote import NA, join_summary, majority, run

ANSWERS = {
    "m0": {"fine_type": "athlete", "gender": "male", "hairstyle": "short black hair", "skin_colour": "N/A",
           "clothing_number": "number 0"},
    "m1": {"fine_type": "athlete", "gender": "Male", "hairstyle": "N/A", "skin_colour": "N/A",
           "clothing_number": "jersey number 0"},
    "m2": {"fine_type": "athlete", "gender": "a man", "hairstyle": "N/A", "skin_colour": "unknown",
           "clothing_number": "number 23"},
}


def knowledge_record(rid="r1", with_meta=True) -> dict:
    record = {"id": rid, "tokens": "Kevin Love scores".split(), "stage1": [{"text": "Kevin Love", "coarse": "person"}],
              "knowledge": {"Kevin Love": {llm: render_answer(a) for llm, a in ANSWERS.items()}}}
    if with_meta:
        record["meta"] = {"knowledge": {"from": "stage1", "aspects": {"Kevin Love": ANSWERS}}}
    return record


@pytest.mark.parametrize("values,expected", [
    (["male", "Male", "a man"], "male"),  # two agree; the earliest of the tied pair wins
    (["number 0", "jersey number 0", "number 23"], "number 0"),  # most overlap with the others
    (["a man", "male", "Male"], "male"),
    (["red", "blue", "green"], NA),  # they disagree
    (["short black hair", "N/A", None], NA),  # a lone claim is dropped
    (["N/A", "unknown", ""], NA),
    (["red car", "blue car"], "red car"),  # a tie: the first
    (["tall glass tower"], "tall glass tower"),  # a single source is kept
    (["blue logo with a white star", "N/A", "white star on a blue logo"], "blue logo with a white star"),
])
def test_majority_exact(values, expected):
    assert majority(values) == expected


def test_majority_record_votes_and_summary():
    (out,) = list(run([(knowledge_record(), None)], ErrorPolicy("fail"), method="majority"))
    votes = out["meta"]["vote"]["votes"]["Kevin Love"]
    assert votes == {"fine_type": "athlete", "gender": "male", "hairstyle": NA, "skin_colour": NA,
                     "clothing_number": "number 0"}
    assert out["visual_knowledge"] == {"Kevin Love": "fine type: athlete; gender: male; clothing number: number 0"}
    assert join_summary({"a": NA}) == NA


def voter_answer(request: dict):
    text = last_user_text(request)
    if "Vote on these answers" in text:
        aspect = re.search(r"described the (.*?) of ", text).group(1)
        return json.dumps({"value": f"VOTED {aspect}"})
    entity = re.search(r'"(.*?)"', text).group(1)
    return f"SUMMARY of {entity}"


def test_llm_voter_calls_only_for_disputed_aspects_then_summarises(vkel):
    with OpenAIServer(answer=voter_answer) as server:
        records = [knowledge_record("a"), knowledge_record("b", with_meta=False), {"id": "none", "tokens": ["x"]}]
        args = ["vote", "--llm", "other=http://127.0.0.1:9/v1,model=x", "--llm", f"judge={server.url},model=j",
                "--voter", "judge"]
        result = vkel(*args, input=b"".join(orjson.dumps(r) + b"\n" for r in records))
        assert result.code == 0, result.stderr
        a, b, none = result.records()
        votes = a["meta"]["vote"]["votes"]["Kevin Love"]
        assert votes == {"fine_type": "athlete", "gender": "VOTED gender", "hairstyle": NA, "skin_colour": NA,
                         "clothing_number": "VOTED clothing number"}
        assert a["visual_knowledge"] == {"Kevin Love": "SUMMARY of Kevin Love"}
        assert b["meta"]["vote"]["votes"] == a["meta"]["vote"]["votes"]  # parsed back from the knowledge text
        assert none["visual_knowledge"] == {} and a["meta"]["vote"]["voter"] == "judge"
        assert server.calls == 3  # two disputed aspects + one summary; record b: all from the cache
        assert a["meta"]["llm_usage"]["vote"]["judge"]["calls"] == 3
        assert b["meta"]["llm_usage"]["vote"]["judge"]["cached"] == 3
        vote_prompt = last_user_text(server.requests[0]["body"])
        assert "1. male\n2. Male\n3. a man" in vote_prompt
        server.reset()
        assert vkel(*args, input=orjson.dumps(records[0])).code == 0 and server.calls == 0


def test_voter_failure_is_reported_per_entity(vkel):
    with OpenAIServer(answer=voter_answer) as server:
        server.queue(*[Reply.error(500)] * 2)
        result = vkel("vote", "--on-error", "skip", "--llm", f"judge={server.url},model=j,retries=1",
                      input=orjson.dumps(knowledge_record()) + b"\n")
        assert result.code == 1
        (out,) = result.records()
        assert out["visual_knowledge"] == {} and "Kevin Love" in out["meta"]["errors"]["vote"]
        assert "record 'r1'" in result.stderr


def test_majority_needs_no_llm_and_unknown_voter_is_an_error(vkel):
    ok = vkel("vote", "--method", "majority", input=orjson.dumps(knowledge_record(with_meta=False)) + b"\n")
    assert ok.code == 0, ok.stderr
    assert ok.records()[0]["meta"]["vote"]["votes"]["Kevin Love"]["clothing_number"] == "number 0"
    bad = vkel("vote", "--llm", "a=http://127.0.0.1:9/v1,model=x", "--voter", "b", input=b"")
    assert bad.code == 1 and "--voter 'b' is not a configured LLM" in bad.stderr
