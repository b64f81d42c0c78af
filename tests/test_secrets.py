"""API keys never leak: servers (loopback) that echo the key in error bodies at every cut position, in
successful answers, in headers, and in encoded forms; checked in messages, stdout, -o files, meta, the
LLM cache and the search cache, under --on-error fail and skip, with VKEL_DEBUG=1."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import quote_plus

import orjson
import pytest
from image_server import ImageServer
from openai_server import OpenAIServer, Reply, knowledge_answer

from vkel_cli.core.errors import VkelError, redact
from vkel_cli.knowledge.llm.cache import Cache, CachedEndpoint
from vkel_cli.knowledge.llm.openai import OpenAIEndpoint
from vkel_cli.augment.retrieval import get_retriever

KEY = "sk-leak-" + "9f3a61c0e7b24d58a1c6"  # 28 characters
ENCODED_KEY = "gk+Zx/4Tq=Lm9w2Rv7Yp"  # a key whose URL form differs from itself
MSG = [{"role": "user", "content": "hello"}]


def leaks(text: str | bytes, key: str = KEY) -> list[str]:
    """Which forms of `key` appear in `text`: itself, its 8-character prefix, URL and base64 forms."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    forms = {"key": key, "prefix": key[:8], "percent": quote_plus(key),
             "base64": base64.b64encode(key.encode()).decode().rstrip("=")}
    return [name for name, form in forms.items() if form in text]


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("VKEL_LEAK_KEY", KEY)
    with OpenAIServer(answer=lambda r: "fine") as server:
        yield server


def _endpoint(server, **kw):
    return OpenAIEndpoint("leaky", server.url, "m", api_key_env="VKEL_LEAK_KEY", backoff=0.01, **kw)


@pytest.mark.parametrize("status,cut,retries", [(500, 200, 0), (400, 300, 0), (200, 80, 0)],
                         ids=["5xx-retried-cut-200", "4xx-cut-300", "not-json-cut-80"])
def test_key_straddling_every_cut_of_an_error_body(keyed, status, cut, retries):
    """The key starts at every offset from fully before to fully after the cut of the message."""
    leaked = []
    for offset in range(cut - len(KEY) - 40, cut + 2):
        body = b"." * offset + KEY.encode() + b"." * 400
        keyed.queue(*[Reply(status=status, body=body)] * (retries + 1))
        with pytest.raises(VkelError) as info:
            _endpoint(keyed, retries=retries).complete(MSG)
        if leaks(str(info.value)):
            leaked.append(offset)
    assert leaked == [], f"{len(leaked)} cut positions leak a prefix of the key"


def test_key_echoed_in_a_successful_answer_never_reaches_the_cache(keyed, tmp_path):
    keyed.answer = lambda r: Reply(content=f"your key is {KEY}, base64 {base64.b64encode(KEY.encode()).decode()}",
                                   headers={"X-Echo": f"Bearer {KEY}"})
    cache = Cache(tmp_path / "c.sqlite")
    completion = CachedEndpoint(_endpoint(keyed, retries=0), cache).complete(MSG)
    assert completion.text.startswith("your key is ***") and not leaks(completion.text)
    cache.close()
    for file in tmp_path.iterdir():
        assert not leaks(file.read_bytes()), file.name


def test_encoded_forms_are_redacted(monkeypatch):
    monkeypatch.setenv("VKEL_LEAK_KEY2", ENCODED_KEY)
    OpenAIEndpoint("enc", "http://127.0.0.1:9/v1", "m", api_key_env="VKEL_LEAK_KEY2")  # registers the key
    for form in (ENCODED_KEY, quote_plus(ENCODED_KEY), base64.b64encode(ENCODED_KEY.encode()).decode(),
                 base64.b64encode(f"Bearer {ENCODED_KEY}".encode()).decode()):
        assert redact(f"<{form}>") in ("<***>", "<***=>", "<***==>"), form  # base64 padding may stay


def test_search_key_in_urls_and_error_bodies(monkeypatch):
    """The search key travels in the query string (percent-encoded): a connection error that quotes the URL,
    an error body that echoes it (raw, percent-encoded, base64) and result links carrying it are all clean."""
    monkeypatch.setenv("VKEL_GOOGLE_API_KEY", ENCODED_KEY)
    monkeypatch.setenv("VKEL_GOOGLE_CSE_ID", "cse")
    record = {"id": "r1", "tokens": ["a"], "entities": []}
    dead = get_retriever("google", search_url="http://127.0.0.1:9/customsearch/v1", retries=0)
    with pytest.raises(VkelError) as info:
        dead.candidates(record, "q1", 3)
    assert "ConnectionError" in str(info.value) and not leaks(str(info.value), ENCODED_KEY)
    with ImageServer() as srv:
        google = get_retriever("google", search_url=srv.url + "/customsearch/v1", retries=0)
        srv.search_status = 403  # the fake API answers "denied for key <key>"
        with pytest.raises(VkelError) as info:
            google.candidates(record, "q2", 3)
        assert "HTTP 403" in str(info.value) and not leaks(str(info.value), ENCODED_KEY)
        srv.search_status = 200
        srv.results["q3"] = [f"{srv.url}/a.jpg?k={quote_plus(ENCODED_KEY)}", f"{srv.url}/b.jpg"]
        assert google.candidates(record, "q3", 3) == [f"{srv.url}/b.jpg"]
    for file in Path(os.environ["VKEL_CACHE"]).rglob("*"):
        if file.is_file():
            assert not leaks(file.read_bytes(), ENCODED_KEY), file


def test_cli_echoing_server_leaks_nothing_anywhere(vkel, tmp_path):
    """`vkel knowledge` against a server that echoes the key in answers, headers and error bodies
    (some records fail), under --on-error skip with -o and under fail, with VKEL_DEBUG=1."""
    def answer(request):
        text = knowledge_answer(request)
        if "Town3" in str(request["messages"]):
            return Reply(status=500, body=(b"." * 190 + f"invalid key {KEY}".encode()))
        return Reply(content=text[:-1] + f', "note": "asked with {KEY}"}}', headers={"X-Echo": f"Bearer {KEY}"})

    records = [{"id": f"t{i}", "tokens": ["Visit", f"Town{i}"], "stage1": [{"text": f"Town{i}", "coarse": "location"}]}
               for i in range(5)]
    stdin = b"".join(orjson.dumps(r) + b"\n" for r in records)
    env = {"VKEL_LEAK_KEY": KEY, "VKEL_DEBUG": "1"}
    with OpenAIServer(answer=answer, api_key=KEY) as server:
        llm = ["--llm", f"m={server.url},model=m,key_env=VKEL_LEAK_KEY,retries=0"]
        out = tmp_path / "out.jsonl"
        skipped = vkel("knowledge", "--on-error", "skip", "-o", out, *llm, input=stdin, env=env)
        assert skipped.code == 1 and "1 item(s) skipped" in skipped.stderr
        kept = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        assert [r["id"] for r in kept] == [f"t{i}" for i in range(5)]
        assert "HTTP 500" in kept[3]["meta"]["errors"]["knowledge"] and kept[0]["knowledge"]["Town0"]["m"]
        printed = vkel("knowledge", "--on-error", "skip", *llm, input=stdin, env=env)  # stdout, from the cache
        failed = vkel("knowledge", "--no-cache", *llm, input=stdin, env=env)
        assert failed.code == 1 and "HTTP 500" in failed.stderr
    outputs = {"-o file": out.read_bytes(), "skip stderr": skipped.stderr, "stdout": printed.stdout,
               "stdout stderr": printed.stderr, "fail stderr": failed.stderr, "fail stdout": failed.stdout}
    for file in Path(os.environ["VKEL_CACHE"]).rglob("*"):
        if file.is_file():
            outputs[f"cache {file.name}"] = file.read_bytes()
    found = {where: leaks(text) for where, text in outputs.items() if leaks(text)}
    assert found == {}
