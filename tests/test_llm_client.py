"""The OpenAI-compatible client against a real loopback server: retries, faults, secrets."""

from __future__ import annotations

import json
import threading

import pytest
from openai_server import OpenAIServer, Reply

from vkel_cli.core.errors import VkelError, redact
from vkel_cli.knowledge.llm.cache import Cache, CachedEndpoint
from vkel_cli.knowledge.llm.ledger import Ledger
from vkel_cli.knowledge.llm.openai import OpenAIEndpoint

MSG = [{"role": "user", "content": "hello"}]
KEY = "sk-test-4f1d9c0b7e2a"


@pytest.fixture
def server():
    with OpenAIServer(answer=lambda request: "hi there") as s:
        yield s


def endpoint(server, **kw):
    kw.setdefault("retries", 3)
    kw.setdefault("timeout", 5.0)
    ep = OpenAIEndpoint("test", server.url, "m-1", backoff=0.01, **kw)
    return ep


def test_answer_and_usage(server):
    completion = endpoint(server).complete(MSG, temperature=0)
    assert completion.text == "hi there"
    assert (completion.prompt_tokens, completion.completion_tokens) == (1, 2)
    body = server.requests[0]["body"]
    assert body["model"] == "m-1" and body["messages"] == MSG and body["temperature"] == 0
    assert server.requests[0]["path"] == "/v1/chat/completions"


@pytest.mark.parametrize("fault", [Reply.rate_limited(0.01), Reply.error(500), Reply.error(503), Reply.slow(1.5),
                                   Reply.truncated(), Reply.cut_off(), Reply.wrong_schema()],
                         ids=["429", "500", "503", "timeout", "truncated", "cut", "schema"])
def test_each_fault_is_retried(server, fault):
    server.queue(fault, fault)
    completion = endpoint(server, timeout=0.5).complete(MSG)
    assert completion.text == "hi there"
    assert server.calls == 3


def test_retry_after_is_honoured(server):
    server.queue(Reply.rate_limited(retry_after=1))
    endpoint(server).complete(MSG)
    first, second = server.requests
    assert second["time"] - first["time"] >= 0.95  # backoff alone would be 0.01 s


@pytest.mark.parametrize("fault,reason", [(Reply.error(500), "HTTP 500"), (Reply.truncated(), "not JSON"),
                                          (Reply.wrong_schema(), "not a chat completion")])
def test_clear_final_error_after_last_try(server, fault, reason):
    server.queue(*[fault] * 4)
    with pytest.raises(VkelError) as info:
        endpoint(server, retries=3).complete(MSG)
    assert server.calls == 4
    message = str(info.value)
    assert "LLM 'test'" in message and "failed after 4 tries" in message and reason in message


def test_client_errors_are_not_retried(server, monkeypatch):
    server.api_key = "the-right-key"
    monkeypatch.setenv("TEST_KEY", KEY)
    with pytest.raises(VkelError, match="HTTP 401"):
        endpoint(server, api_key_env="TEST_KEY").complete(MSG)
    assert server.calls == 1


def test_key_sent_in_header_only_and_redacted(server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", KEY)
    server.api_key = KEY
    ep = endpoint(server, api_key_env="TEST_KEY", retries=1)
    assert ep.complete(MSG).text == "hi there"
    request = server.requests[0]
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert KEY not in str(request["body"]) and KEY not in request["path"]
    # A server that echoes the key in its error body: the error vkel shows has it redacted.
    server.queue(*[Reply.error(500, f"bad key {KEY}")] * 2)
    with pytest.raises(VkelError) as info:
        ep.complete(MSG)
    assert KEY not in str(info.value) and "***" in str(info.value)
    assert redact(f"x {KEY} y") == "x *** y"


def test_missing_key_variable_is_named_not_guessed(server, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(VkelError, match="NO_SUCH_KEY_VAR"):
        endpoint(server, api_key_env="NO_SUCH_KEY_VAR")


def test_cache_second_call_makes_no_request(server, tmp_path):
    ledger = Ledger()
    cached = CachedEndpoint(endpoint(server), Cache(tmp_path / "c.sqlite"), ledger)
    first = cached.complete(MSG)
    second = cached.complete(MSG)
    assert server.calls == 1 and not first.cached and second.cached and second.text == first.text
    cached.complete(MSG, temperature=0.7)  # other params: another answer
    assert server.calls == 2
    # A new process (new Cache object on the same file) still hits.
    again = CachedEndpoint(endpoint(server), Cache(tmp_path / "c.sqlite"))
    assert again.complete(MSG).cached and server.calls == 2
    usage = ledger.as_dict()["test"]
    assert (usage["calls"], usage["cached"], usage["prompt_tokens"]) == (2, 1, 3)


def test_identical_concurrent_requests_are_sent_once(tmp_path):
    with OpenAIServer(answer=lambda r: "same", latency=0.3) as server:
        cached = CachedEndpoint(endpoint(server, max_concurrency=8), Cache(tmp_path / "c.sqlite"))
        results = []
        threads = [threading.Thread(target=lambda: results.append(cached.complete(MSG))) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert server.calls == 1 and len(results) == 10 and {r.text for r in results} == {"same"}


def test_concurrency_cap_per_endpoint(tmp_path):
    with OpenAIServer(answer=lambda r: "x", latency=0.2) as server:
        cached = CachedEndpoint(endpoint(server, max_concurrency=3), None)
        threads = [threading.Thread(target=cached.complete, args=([{"role": "user", "content": str(i)}],))
                   for i in range(9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert server.calls == 9 and server.max_active <= 3


def test_failures_are_not_cached(server, tmp_path):
    cached = CachedEndpoint(endpoint(server, retries=0), Cache(tmp_path / "c.sqlite"))
    server.queue(Reply.error(500))
    with pytest.raises(VkelError):
        cached.complete(MSG)
    assert cached.complete(MSG).text == "hi there" and server.calls == 2


@pytest.mark.parametrize("usage", [{"prompt_tokens": "many", "completion_tokens": [3]}, "n/a", [1, 2],
                                   {"prompt_tokens": -4, "completion_tokens": 2.5}, None, {}],
                         ids=["strings-lists", "string", "list", "negative-fraction", "null", "empty"])
def test_malformed_usage_still_yields_the_answer(server, tmp_path, usage):
    body = {"choices": [{"message": {"role": "assistant", "content": "the answer"}}], "usage": usage}
    server.queue(Reply(body=json.dumps(body).encode()))
    ledger = Ledger()
    cached = CachedEndpoint(endpoint(server, retries=0), Cache(tmp_path / "c.sqlite"), ledger)
    completion = cached.complete(MSG)
    assert completion.text == "the answer" and server.calls == 1
    assert (completion.prompt_tokens, completion.completion_tokens) == (None, None)
    assert cached.complete(MSG).text == "the answer"  # from the cache, usage still unknown
    assert ledger.as_dict()["test"] == {"calls": 1, "cached": 1, "prompt_tokens": 0, "completion_tokens": 0,
                                        "usage_unknown": 2}
    ledger.print_table()  # the stderr table copes with unknown usage
