"""Image retrieval backends and the content-addressed, verifying download store (against a loopback server)."""

from __future__ import annotations

import json
import os

import pytest

from image_server import ImageServer, image_bytes
from vkel_cli.core.errors import VkelError, redact
from vkel_cli.augment.retrieval import build_query, get_retriever
from vkel_cli.augment.retrieval.download import CandidateError, ImageStore


@pytest.fixture(autouse=True)
def _loopback_allowed(monkeypatch):
    # The test servers live on 127.0.0.1, which URLs vkel picks may not reach without opting in.
    monkeypatch.setenv("VKEL_ALLOW_PRIVATE_URLS", "1")


@pytest.fixture
def server():
    with ImageServer() as srv:
        yield srv


def _store(tmp_path, **kw):
    kw.setdefault("max_bytes", 50_000)
    kw.setdefault("retries", 0)
    return ImageStore(str(tmp_path / "images"), **kw)


def test_bad_candidates_are_refused_with_their_reason_and_remembered(server, tmp_path):
    bad = server.add_bad_ones()
    good = server.image("/ok/red.jpg", "red")
    store = _store(tmp_path)
    reasons = {}
    for expected, url in bad.items():
        with pytest.raises(CandidateError) as info:
            store.get(url)
        reasons[expected] = info.value.reason
    assert reasons == {"http_404": "http_404", "not_image": "not_image", "not_image_octet": "not_image",
                       "corrupt": "corrupt", "too_large": "too_large", "bad_scheme": "bad_scheme",
                       "bad_scheme_file": "bad_scheme"}
    stored = store.get(good)
    assert stored.size == [48, 32] and os.path.isfile(stored.path)
    assert store.stats.downloaded == 1 and sum(store.stats.failures.values()) == len(bad)
    # the ftp/file redirects were never followed: only the redirecting URL itself was requested
    assert server.hits["/bad/ftp"] == 1 and server.hits["/bad/file"] == 1

    # A re-run (a fresh store on the same directory) asks the server for nothing, and answers the same.
    before = sum(server.hits.values())
    again = _store(tmp_path)
    for expected, url in bad.items():
        with pytest.raises(CandidateError) as info:
            again.get(url)
        assert info.value.reason == reasons[expected]
    assert again.get(good).path == stored.path
    assert sum(server.hits.values()) == before
    assert again.stats.reused == len(bad) + 1 and again.stats.downloaded == 0


def test_content_addressed_and_redirects_followed(server, tmp_path):
    a = server.image("/a.png", "blue", fmt="PNG")
    server.files["/b.png"] = server.files["/a.png"]  # same bytes under another URL
    server.files["/hop"] = (302, {"Location": "/a.png"}, b"")
    store = _store(tmp_path)
    first, second, hopped = store.get(a), store.get(server.url + "/b.png"), store.get(server.url + "/hop")
    assert first.path == second.path == hopped.path
    assert first.path.endswith(".png") and os.path.basename(first.path).startswith(
        os.path.basename(os.path.dirname(first.path)))
    files = [f for root, _, names in os.walk(store.root) if ".urls" not in root for f in names]
    assert len(files) == 1


def test_decompression_bomb_guard(server, tmp_path):
    url = server.image("/wide.png", "green", size=(400, 300), fmt="PNG")
    with pytest.raises(CandidateError) as info:
        _store(tmp_path, max_pixels=100_000).get(url)
    assert info.value.reason == "too_many_pixels"


def test_transient_failures_are_retried_next_run_not_remembered(server, tmp_path):
    server.files["/flaky.jpg"] = (503, {"Content-Type": "text/plain"}, b"busy")
    store = _store(tmp_path)
    with pytest.raises(CandidateError) as info:
        store.get(server.url + "/flaky.jpg")
    assert info.value.reason == "network" and not info.value.permanent
    server.image("/flaky.jpg", "red")
    assert _store(tmp_path).get(server.url + "/flaky.jpg").size == [48, 32]
    assert server.hits["/flaky.jpg"] == 2


def test_local_files_are_verified_in_place(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(image_bytes("red"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(image_bytes("red")[:100])
    store = _store(tmp_path)
    assert store.get(str(good)).path == str(good)
    for path, reason in ((broken, "corrupt"), (tmp_path / "absent.jpg", "missing_file")):
        with pytest.raises(CandidateError) as info:
            store.get(str(path))
        assert info.value.reason == reason


def test_google_backend_request_cache_and_secret(server, monkeypatch):
    monkeypatch.setenv("VKEL_GOOGLE_API_KEY", "sekrit-key-123")
    monkeypatch.setenv("VKEL_GOOGLE_CSE_ID", "engine-1")
    server.results["a b A"] = [f"{server.url}/{i}.jpg" for i in range(8)]
    google = get_retriever("google", search_url=server.url + "/customsearch/v1", retries=0)
    record = {"id": "r1", "tokens": ["a", "b"], "entities": [{"text": "A"}]}
    assert google.candidates(record, "a b A", 5) == [f"{server.url}/{i}.jpg" for i in range(5)]
    params = server.search_params[0]
    assert params == {"key": "sekrit-key-123", "cx": "engine-1", "q": "a b A", "searchType": "image", "num": "5",
                      "safe": "active"}
    assert google.candidates(record, "a b A", 5) and server.hits["/customsearch/v1"] == 1  # cached

    server.search_status = 403
    with pytest.raises(VkelError) as info:
        google.candidates(record, "another query", 5)
    message = redact(str(info.value))
    assert "HTTP 403" in message and "sekrit-key-123" not in message


def test_google_backend_needs_its_env(monkeypatch):
    monkeypatch.delenv("VKEL_GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("VKEL_GOOGLE_CSE_ID", "x")
    with pytest.raises(VkelError, match="VKEL_GOOGLE_API_KEY"):
        get_retriever("google")


@pytest.mark.parametrize("form", ["tsv", "jsonl", "json"])
def test_local_index_formats(tmp_path, form):
    pool = tmp_path / "pool"
    pool.mkdir()
    index = pool / f"index.{form}"
    if form == "tsv":
        index.write_text("# comment\nr1\ta.jpg\tb.jpg\nr1\tc.jpg\nthe query\t/abs/q.jpg\n")
    elif form == "jsonl":
        index.write_text('{"id": "r1", "images": ["a.jpg", "b.jpg", "c.jpg"]}\n'
                         '{"query": "the query", "images": "/abs/q.jpg"}\n')
    else:
        index.write_text(json.dumps({"r1": ["a.jpg", "b.jpg", "c.jpg"], "the query": ["/abs/q.jpg"]}))
    local = get_retriever("local", index=str(index))
    assert local.candidates({"id": "r1"}, "x", 2) == [str(pool / "a.jpg"), str(pool / "b.jpg")]
    assert local.candidates({"id": "zz"}, "the query", 5) == ["/abs/q.jpg"]
    assert local.candidates({"id": "zz"}, "nothing", 5) == []


def test_urls_backend_takes_urls_by_id_only(tmp_path):
    index = tmp_path / "urls.tsv"
    index.write_text("r1\thttp://h/1.jpg\thttps://h/2.jpg\n")
    urls = get_retriever("urls", index=str(index))
    assert urls.candidates({"id": "r1"}, "q", 5) == ["http://h/1.jpg", "https://h/2.jpg"]
    index.write_text("r1\t/local/file.jpg\n")
    with pytest.raises(VkelError, match="http"):
        get_retriever("urls", index=str(index))
    index.write_text("r1 no tab here\n")
    with pytest.raises(VkelError, match=r"urls.tsv:1"):
        get_retriever("urls", index=str(index))


def test_query_is_sentence_plus_entities():
    record = {"tokens": ["Obama", "visits", "Paris", "with", "Obama"],
              "entities": [{"text": "Obama"}, {"text": "Paris"}, {"text": "Obama"}]}
    assert build_query(record) == "Obama visits Paris with Obama Obama Paris"
