"""The local transformers backend on a tiny random llama (offline)."""

from __future__ import annotations

import orjson
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    pytest.importorskip("transformers")
    from vkel_cli.models.tiny import build_tiny

    return build_tiny(str(tmp_path_factory.mktemp("tiny") / "llama"), "llama")


def test_local_endpoint_generates_greedily(tiny_llama):
    from vkel_cli.knowledge.llm.local import LocalEndpoint

    endpoint = LocalEndpoint("tiny", tiny_llama)
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": [{"type": "text", "text": "Kevin Love"},
                                             {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AA"}}]}]
    first = endpoint.complete(messages, max_tokens=8)
    second = endpoint.complete(messages, max_tokens=8)
    assert isinstance(first.text, str) and first.text == second.text  # greedy: deterministic
    assert first.prompt_tokens > 5 and 0 < first.completion_tokens <= 8


def test_knowledge_with_a_local_llm(vkel, tiny_llama):
    record = {"id": "t", "tokens": "Kevin Love scores".split(), "stage1": [{"text": "Kevin Love", "coarse": "person"}]}
    args = ["knowledge", "--llm", f"local={tiny_llama}", "--max-tokens", "12", "--on-error", "fail"]
    result = vkel(*args, input=orjson.dumps(record) + b"\n")
    assert result.code == 0, result.stderr
    (out,) = result.records()
    assert list(out["knowledge"]["Kevin Love"]) == ["local"]
    usage = out["meta"]["llm_usage"]["knowledge"]["local"]
    assert usage["calls"] == 1 and usage["completion_tokens"] <= 12
    again = vkel(*args, input=orjson.dumps(record) + b"\n")
    assert again.records()[0]["meta"]["llm_usage"]["knowledge"]["local"] == {**usage, "calls": 0, "cached": 1}


def test_two_local_llms_load_concurrently_and_only_selects_one(vkel, tiny_llama):
    # A fresh process importing transformers from two threads at once used to fail for one of them.
    record = {"id": "t", "tokens": "Kevin Love scores".split(), "stage1": [{"text": "Kevin Love", "coarse": "person"}]}
    args = ["knowledge", "--llm", f"alpha=local:{tiny_llama}", "--llm", f"beta=local:{tiny_llama}",
            "--max-tokens", "6"]
    both = vkel(*args, input=orjson.dumps(record) + b"\n")
    assert both.code == 0, both.stderr
    assert sorted(both.records()[0]["knowledge"]["Kevin Love"]) == ["alpha", "beta"]
    only = vkel(*args, "--only", "beta", input=orjson.dumps(record) + b"\n")
    assert only.code == 0, only.stderr
    assert list(only.records()[0]["knowledge"]["Kevin Love"]) == ["beta"]
    unknown = vkel(*args, "--only", "gamma", input=orjson.dumps(record) + b"\n")
    assert unknown.code == 1 and "gamma" in unknown.stderr
