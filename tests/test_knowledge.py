"""`vkel knowledge`: prompts, answer parsing, and end-to-end runs against loopback LLM servers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import orjson
import pytest
from openai_server import OpenAIServer, Reply, knowledge_answer, last_user_text

from vkel_cli.core import hierarchy
from vkel_cli.core.errors import VkelError
from vkel_cli.knowledge.ask import aspects_for, build_messages, load_templates, parse_answer

KEY = "sk-knowledge-77e0c1d2b3"
PERSON = aspects_for(load_templates(), "person")


def make_records(n: int, same_sentence: bool = False) -> list[dict]:
    out = []
    for i in range(n):
        tag = "" if same_sentence else f" #{i}"
        tokens = f"Kevin Love scores in Cleveland{tag}".split()
        stage1 = [{"text": "Kevin Love", "coarse": "person"}, {"text": "Cleveland", "coarse": "location"}]
        if i % 3 == 2:
            stage1.append({"text": f"Nike{i}", "coarse": "product"})
        out.append({"id": f"t{i}", "tokens": tokens, "stage1": stage1, "keep": i})
    return out


def jsonl(records) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def entity_and_sentence(request: dict) -> tuple[str, str]:
    text = last_user_text(request["body"])
    return re.search(r"^Entity: (.*)$", text, re.M).group(1), re.search(r"^Sentence: (.*)$", text, re.M).group(1)


# ---------------------------------------------------------------- parsing and prompts

@pytest.mark.parametrize("text", [
    '{"fine_type": "athlete", "gender": "male", "hairstyle": "short"}',
    '```json\n{"Fine Type": "athlete", "Gender": "male", "hair-style": "short",}\n```',
    'Sure! Here it is:\n{"fine_type": "athlete", "gender": "male", "hairstyle": "short"}\nHope it helps.',
    "- Fine type: athlete\n- **Gender**: male\n- hairstyle: short",
])
def test_parse_answer_tolerates_formats(text):
    assert parse_answer(text, PERSON) == {"fine_type": "athlete", "gender": "male", "hairstyle": "short"}


def test_parse_answer_normalises_values_and_keeps_free_text():
    parsed = parse_answer('{"skin_color": null, "clothing_number": 23, "gender": ["male", "adult"], "extra": "x"}',
                          PERSON)
    assert parsed == {"skin_colour": "N/A", "clothing_number": "23", "gender": "male; adult", "extra": "x"}
    assert parse_answer("He is a tall basketball player with short hair.", PERSON) is None
    assert parse_answer('{"gender": "male"', PERSON) is None  # truncated JSON: free text


def test_prompt_has_type_fine_types_aspects_and_sentence():
    user = build_messages(load_templates(), "Kevin Love", "person", "Kevin Love scores")[1]["content"]
    assert "Entity: Kevin Love" in user and "Sentence: Kevin Love scores" in user
    assert ", ".join(hierarchy.fine_types("person")) in user
    for aspect in ("gender", "facial_contour", "hairstyle", "skin_colour", "clothing_number"):
        assert f'"{aspect}"' in user
    other = build_messages(load_templates(), "X", "spaceship", "s")[1]["content"]
    assert '"appearance", "background"' in other  # unknown coarse type: the `other` template


def test_templates_override(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"task": "Describe {entity} now.", "types": {
        "person": {"instruction": "Look:", "aspects": {"jersey": "the jersey"}}}}))
    templates = load_templates(str(path))
    user = build_messages(templates, "Kevin Love", "person", "s")[1]["content"]
    assert user.startswith("Describe Kevin Love now.") and '"fine_type", "jersey"' in user
    assert '"logo", "slogan"' in build_messages(templates, "Nike", "organization", "s")[1]["content"]
    path.write_text(json.dumps({"types": {"person": {"aspects": []}}}))
    with pytest.raises(VkelError, match="types.person needs an `aspects` object"):
        load_templates(str(path))


# ---------------------------------------------------------------- end to end

@pytest.fixture
def servers():
    started = [OpenAIServer(answer=lambda r, i=i: knowledge_answer(r, f" by m{i}")).start() for i in range(3)]
    yield started
    for server in started:
        server.stop()


def llm_args(servers, extra: str = ",retries=3", keyed: bool = False) -> list[str]:
    args = []
    for i, server in enumerate(servers):
        key = ",key_env=VKEL_TEST_KEY" if i == 0 and keyed else ""
        args += ["--llm", f"m{i}={server.url},model=model-{i},concurrency=2{key}{extra}"]
    return args


def test_three_llms_every_entity_once_in_order_key_never_shown(vkel, servers):
    servers[0].api_key = KEY
    servers[1].queue(Reply.rate_limited(0.05), Reply.error(500), Reply.truncated(), Reply.wrong_schema())
    records = make_records(12)
    result = vkel("knowledge", *llm_args(servers, keyed=True), input=jsonl(records), env={"VKEL_TEST_KEY": KEY})
    assert result.code == 0, result.stderr
    out = result.records()
    assert [r["id"] for r in out] == [r["id"] for r in records] and [r["keep"] for r in out] == list(range(12))
    for record in out:
        entities = [e["text"] for e in record["stage1"]]
        assert list(record["knowledge"]) == entities
        for entity in entities:
            assert list(record["knowledge"][entity]) == ["m0", "m1", "m2"]
            assert record["knowledge"][entity]["m1"].startswith("fine type: ")
            assert f"of {entity} by m1" in record["knowledge"][entity]["m1"]
        assert record["meta"]["knowledge"]["aspects"]["Kevin Love"]["m2"]["gender"] == "gender of Kevin Love by m2"
        usage = record["meta"]["llm_usage"]["knowledge"]
        assert usage["m0"]["calls"] == len(entities) and usage["m0"]["prompt_tokens"] > 0
    asked = 12 * 2 + 4  # entities over all records
    for server in servers:
        pairs = [entity_and_sentence(r) for r in server.requests if r["body"]]
        answered = set(pairs)
        assert len(answered) == asked
    assert servers[0].calls == asked and servers[2].calls == asked and servers[1].calls == asked + 4
    assert "LLM usage" in result.stderr and "m1" in result.stderr
    assert KEY not in result.stderr and KEY.encode() not in result.stdout

    # Re-running the same command: everything from the cache, zero HTTP calls, same knowledge.
    for server in servers:
        server.reset()
    again = vkel("knowledge", *llm_args(servers, keyed=True), input=jsonl(records), env={"VKEL_TEST_KEY": KEY})
    assert again.code == 0, again.stderr
    assert sum(server.calls for server in servers) == 0
    assert [r["knowledge"] for r in again.records()] == [r["knowledge"] for r in out]
    assert again.records()[0]["meta"]["llm_usage"]["knowledge"]["m0"]["cached"] == 2

    # --no-cache asks again.
    bypass = vkel("knowledge", "--no-cache", "--llm", f"m2={servers[2].url},model=model-2", input=jsonl(records[:1]))
    assert bypass.code == 0 and servers[2].calls == 2


def test_same_entity_same_sentence_is_asked_once(vkel, servers):
    records = make_records(6, same_sentence=True)
    result = vkel("knowledge", *llm_args(servers[:1]), input=jsonl(records))
    assert result.code == 0, result.stderr
    # Kevin Love and Cleveland (one sentence) + Nike2 and Nike5: 4 distinct questions.
    assert servers[0].calls == 4
    assert all(r["knowledge"]["Kevin Love"]["m0"] == result.records()[0]["knowledge"]["Kevin Love"]["m0"]
               for r in result.records())


def test_skip_keeps_going_and_names_entities_without_knowledge(vkel, servers):
    def flaky(request):
        if "Entity: Nike5" in last_user_text(request):
            return Reply.error(503)
        return knowledge_answer(request)

    servers[0].answer = flaky
    records = make_records(8)
    result = vkel("knowledge", "--on-error", "skip", *llm_args(servers[:1], ",retries=1"), input=jsonl(records))
    assert result.code == 1
    out = result.records()
    assert [r["id"] for r in out] == [r["id"] for r in records]
    bad = out[5]
    assert bad["knowledge"]["Nike5"] == {} and bad["knowledge"]["Kevin Love"]["m0"]
    assert "Nike5" in bad["meta"]["errors"]["knowledge"] and "failed after 2 tries" in bad["meta"]["errors"]["knowledge"]
    assert "record 't5'" in result.stderr and "1 entity has no knowledge" in result.stderr
    assert "'t5':'Nike5'" in result.stderr
    assert all("errors" not in r["meta"] for i, r in enumerate(out) if i != 5)


def test_fail_mode_error_and_traceback_never_show_the_key(vkel, servers):
    servers[0].queue(*[Reply.error(500, f"bad request from {KEY}")] * 10)
    result = vkel("knowledge", *llm_args(servers[:1], ",retries=1", keyed=True), input=jsonl(make_records(2)),
                  env={"VKEL_TEST_KEY": KEY, "VKEL_DEBUG": "1"})
    assert result.code == 1 and result.stdout == b""
    assert "HTTP 500" in result.stderr and "***" in result.stderr
    assert KEY not in result.stderr
    assert servers[0].requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"


def test_interrupted_run_resumes(tmp_path, servers):
    server = servers[0]
    server.latency = 0.05
    records = make_records(30)  # 70 questions
    total = 30 * 2 + 10
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(records))
    cmd = [sys.executable, "-m", "vkel_cli", "knowledge", "--llm", f"m0={server.url},model=m,concurrency=2",
           str(source), "-o", str(tmp_path / "out.jsonl")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 60
    while server.calls < 20 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = server.calls
    assert 20 <= first < total and not (tmp_path / "out.jsonl").exists()  # atomic output: nothing half-written
    server.reset()
    subprocess.run(cmd, check=True, env=os.environ.copy(), capture_output=True)
    out = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    cached = sum(r["meta"]["llm_usage"]["knowledge"]["m0"].get("cached", 0) for r in out)
    assert len(out) == 30 and cached >= first - 2  # at most the calls in flight at the kill were lost
    assert cached + server.calls == total and server.calls < total


def test_streams_in_order_with_bounded_read_ahead(servers):
    from vkel_cli.core.errors import ErrorPolicy
    from vkel_cli.knowledge.ask import run
    from vkel_cli.knowledge.llm.config import open_endpoints

    pulled = [0]

    def pairs():
        for record in make_records(300):
            pulled[0] += 1
            yield record, None

    endpoints = open_endpoints(None, [f"m0={servers[0].url},model=m,concurrency=2"], use_cache=False)
    out = run(pairs(), ErrorPolicy("fail"), endpoints)
    assert next(out)["id"] == "t0" and pulled[0] <= 10  # 4 x 2 jobs pending at most, ~2.3 jobs per record
    assert [r["id"] for r in out] == [f"t{i}" for i in range(1, 300)]


def test_from_gold_with_a_config_file_and_missing_stage1(vkel, servers, tmp_path):
    gold = {"id": "g", "tokens": ["Obama", "speaks"], "entities": [
        {"text": "Obama", "start": 0, "end": 1, "coarse": "person", "fine": "politician", "boxes": []}]}
    config = tmp_path / "llms.toml"
    config.write_text(f'[llm.m0]\nbase_url = "{servers[0].url}"\nmodel = "m"\nmax_concurrency = 2\n')
    result = vkel("knowledge", "--from", "gold", "--llm-config", str(config), input=jsonl([gold]))
    assert result.code == 0, result.stderr
    assert list(result.records()[0]["knowledge"]) == ["Obama"]
    assert result.records()[0]["meta"]["knowledge"]["from"] == "gold"
    missing = vkel("knowledge", "--from", "stage1", *llm_args(servers[:1]), input=jsonl([gold]))
    assert missing.code == 1 and "record has no `stage1`" in missing.stderr and "<stdin>:1" in missing.stderr
