"""ordered_map, LLM configuration and the ledger."""

from __future__ import annotations

import random
import threading
import time

import pytest

from vkel_cli.core.errors import VkelError
from vkel_cli.knowledge.llm.config import resolve, spec_from_inline, specs_from_toml
from vkel_cli.knowledge.llm.parallel import ordered_map


def test_ordered_map_keeps_order_and_bounds_work():
    lock, active, peak, pulled = threading.Lock(), [0], [0], [0]

    def items():
        for i in range(60):
            pulled[0] += 1
            yield i

    def work(i):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(random.uniform(0, 0.01))
        with lock:
            active[0] -= 1
        return i * i

    out = ordered_map(work, items(), concurrency=4)
    first = next(out)
    assert first == 0 and pulled[0] <= 9  # streaming: only a window was read ahead
    assert [first, *out] == [i * i for i in range(60)]
    assert peak[0] <= 4


def test_ordered_map_reraises_at_the_failing_item():
    def work(i):
        if i == 5:
            raise ValueError("five")
        return i

    seen = []
    with pytest.raises(ValueError, match="five"):
        for value in ordered_map(work, range(20), concurrency=3):
            seen.append(value)
    assert seen == [0, 1, 2, 3, 4]


def test_toml_both_forms(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text('[[llm]]\nname = "gpt"\nbase_url = "https://api.openai.com/v1"\nmodel = "gpt-4o-mini"\n'
                 'api_key_env = "OPENAI_API_KEY"\nmax_concurrency = 8\n[llm.params]\ntemperature = 0.2\n\n'
                 '[[llm]]\nname = "small"\npath = "/models/tiny"\n')
    gpt, small = specs_from_toml(str(a))
    assert (gpt.name, gpt.kind, gpt.model, gpt.api_key_env, gpt.max_concurrency) == \
        ("gpt", "openai", "gpt-4o-mini", "OPENAI_API_KEY", 8)
    assert gpt.params == {"temperature": 0.2}
    assert (small.kind, small.path) == ("local", "/models/tiny")
    b = tmp_path / "b.toml"
    b.write_text('[llm.gemini]\nbase_url = "https://generativelanguage.googleapis.com/v1beta/openai/"\n'
                 'model = "gemini-2.0-flash"\napi_key_env = "GEMINI_API_KEY"\nparams = { max_tokens = 400 }\n')
    (gemini,) = specs_from_toml(str(b))
    assert gemini.name == "gemini" and gemini.params == {"temperature": 0, "max_tokens": 400}


def test_inline_specs():
    spec = spec_from_inline("vllm=http://localhost:8000/v1,model=Qwen/Qwen2.5-7B,key_env=VK,concurrency=16,"
                            "max_tokens=300,temperature=0.1")
    assert (spec.name, spec.base_url, spec.model, spec.api_key_env, spec.max_concurrency) == \
        ("vllm", "http://localhost:8000/v1", "Qwen/Qwen2.5-7B", "VK", 16)
    assert spec.params == {"temperature": 0.1, "max_tokens": 300}
    assert spec_from_inline("tiny=local:/m/tiny").path == "/m/tiny"
    assert spec_from_inline("local=/m/tiny").kind == "local"


@pytest.mark.parametrize("text,message", [("x", "expected NAME="), ("a=http://h/v1", "needs base_url and model"),
                                          ("a=http://h/v1,model=m,concurrency=0", ">= 1"),
                                          ("a=http://h/v1,model=m,concurrency=lots", "concurrency|invalid")])
def test_inline_errors(text, message):
    with pytest.raises(VkelError, match=message):
        spec_from_inline(text)


def test_resolve_rejects_duplicates_and_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("VKEL_LLM_CONFIG", raising=False)
    with pytest.raises(VkelError, match="no LLM configured"):
        resolve(None, None)
    with pytest.raises(VkelError, match="configured twice"):
        resolve(None, ["a=http://h/v1,model=m", "a=http://g/v1,model=n"])
    bad = tmp_path / "bad.toml"
    bad.write_text('[llm.a]\nbase_url = "http://h"\nmodel = "m"\napi_key = "sk-inline"\n')
    with pytest.raises(VkelError, match="unknown key 'api_key'"):
        resolve(str(bad), None)
