"""The fetch layer under attack (loopback servers): the private-address policy for URLs vkel picks on its
own, the total deadline against trickling servers, and the size caps on every body, error bodies included."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from image_server import ImageServer, image_bytes
from openai_server import OpenAIServer, Reply

from vkel_cli.fetch import http, net
from vkel_cli.core.errors import VkelError
from vkel_cli.knowledge.llm.openai import OpenAIEndpoint
from vkel_cli.augment.retrieval.download import CandidateError, ImageStore

MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture(autouse=True)
def _policy_on(monkeypatch):
    """Every test starts with the opt-in off, whatever the environment says."""
    monkeypatch.delenv("VKEL_ALLOW_PRIVATE_URLS", raising=False)
    net.allow_private_urls(False)
    yield
    net.allow_private_urls(False)


@pytest.fixture
def server():
    with ImageServer() as srv:
        yield srv


# ---------------------------------------------------------------- the address check itself

@pytest.mark.parametrize("address,kind", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("240.0.0.1", "reserved"), ("100.64.0.1", "not globally routable"),
    ("::ffff:127.0.0.1", "loopback (inside ::ffff:7f00:1)"),
    ("::ffff:169.254.169.254", "link-local (inside ::ffff:a9fe:a9fe)"),
    ("::ffff:10.0.0.1", "private (inside ::ffff:a00:1)"),
    ("64:ff9b::7f00:1", "loopback (inside 64:ff9b::7f00:1)"),
    ("2002:7f00:1::1", "loopback (inside 2002:7f00:1::1)"),
])
def test_non_public_addresses_are_refused(address, kind):
    assert net.blocked_reason(address) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111",
                                     "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass(address):
    assert net.blocked_reason(address) is None


# ---------------------------------------------------------------- the policy in the real connection path

def test_loopback_image_url_is_refused_without_a_connection(server, tmp_path):
    url = server.image("/a.jpg", "red")
    store = ImageStore(str(tmp_path / "store"), retries=2)
    for target in (url, url.replace("127.0.0.1", "localhost")):  # a name that resolves to loopback, too
        with pytest.raises(CandidateError) as info:
            store.get(target)
        assert info.value.reason == "blocked_address"
        assert "loopback" in info.value.detail and "--allow-private-urls" in info.value.detail
    assert sum(server.hits.values()) == 0  # refused before connecting: the server saw nothing
    assert store.stats.failures["blocked_address"] == 2 and store.stats.downloaded == 0
    # A refusal is not remembered: opting in later fetches it.
    net.allow_private_urls(True)
    assert store.get(url).size == [48, 32] and server.hits["/a.jpg"] == 1


def test_env_opt_in(server, tmp_path, monkeypatch):
    url = server.image("/a.jpg", "red")
    monkeypatch.setenv("VKEL_ALLOW_PRIVATE_URLS", "1")
    assert ImageStore(str(tmp_path / "s")).get(url).size == [48, 32]


def test_a_redirect_hop_to_loopback_is_refused(server, tmp_path, monkeypatch):
    """A 'public' host (a second loopback address the test declares public) redirects to 127.0.0.1:
    the hop is refused and the private server never sees a request."""
    private = server.image("/secret.jpg", "red")
    try:
        front = ThreadingHTTPServer(("127.0.0.2", 0), _redirector(private))
    except OSError:
        pytest.skip("127.0.0.2 is not bindable here")
    threading.Thread(target=front.serve_forever, daemon=True).start()
    real = net.blocked_reason
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if ip == "127.0.0.2" else real(ip))
    try:
        with pytest.raises(http.HTTPFailure) as info:
            http.fetch_bytes(f"http://127.0.0.2:{front.server_address[1]}/go", timeout=5)
        assert info.value.reason == "blocked_address" and "127.0.0.1 is loopback" in str(info.value)
        assert server.hits["/secret.jpg"] == 0
    finally:
        front.shutdown()
        front.server_close()


def _redirector(target: str):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def test_configured_llm_endpoints_are_exempt():
    with OpenAIServer(answer=lambda r: "local vllm") as llm:
        assert OpenAIEndpoint("local", llm.url, "m", retries=0).complete(MSG).text == "local vllm"


def test_record_image_urls_follow_the_policy(server, tmp_path):
    """images.load (predict/train/detect) goes through the same layer: a per-record error naming the record."""
    from vkel_cli.fetch.images import load

    url = server.image("/r.jpg", "red")
    with pytest.raises(VkelError) as info:
        load({"id": "t1", "image": url})
    assert "record 't1'" in str(info.value) and "loopback" in str(info.value)
    net.allow_private_urls(True)
    assert load({"id": "t1", "image": url}).size == (48, 32)


# ---------------------------------------------------------------- deadlines

def test_trickling_image_server_is_cut_at_the_deadline(server, tmp_path):
    net.allow_private_urls(True)
    server.files["/slow.jpg"] = (200, {"Content-Type": "image/jpeg"}, image_bytes("red"))
    server.trickle["/slow.jpg"] = 0.2  # ~800 bytes: minutes at this pace
    store = ImageStore(str(tmp_path / "s"), timeout=1.0, retries=0)
    started = time.monotonic()
    with pytest.raises(CandidateError) as info:
        store.get(server.url + "/slow.jpg")
    elapsed = time.monotonic() - started
    assert info.value.reason == "network" and not info.value.permanent and "deadline" in info.value.detail
    assert 0.9 <= elapsed < 1.6


def test_trickling_record_image_is_given_up_at_its_deadline_not_retried(server):
    """A record's `image` URL (predict, train, detect) that trickles: one deadline, not one per retry."""
    from vkel_cli.fetch import images

    net.allow_private_urls(True)
    server.files["/t.jpg"] = (200, {"Content-Type": "image/jpeg"}, image_bytes("red"))
    server.trickle["/t.jpg"] = 0.2
    started = time.monotonic()
    with pytest.raises(VkelError) as info:
        images.load({"id": "t1", "image": server.url + "/t.jpg"}, timeout=1.0)
    elapsed = time.monotonic() - started
    assert "deadline" in str(info.value) and "failed after 1 try" in str(info.value) and "'t1'" in str(info.value)
    assert 0.9 <= elapsed < 1.8  # the default policy would have retried 4 more times


def test_trickling_llm_answer_is_cut_at_the_deadline():
    with OpenAIServer(answer=lambda r: "ok") as llm:
        llm.queue(Reply.trickling(0.2), Reply.trickling(0.2))
        endpoint = OpenAIEndpoint("slow", llm.url, "m", timeout=1.0, retries=1, backoff=0.01)
        started = time.monotonic()
        with pytest.raises(VkelError) as info:
            endpoint.complete(MSG)
        elapsed = time.monotonic() - started
    assert "deadline" in str(info.value) and "failed after 2 tries" in str(info.value)
    assert 1.9 <= elapsed < 2.9  # two attempts of one second each, not 2 x minutes


def test_trickling_headers_are_cut_at_the_deadline():
    """A server that accepts and then dribbles its status line: no socket timeout ever trips."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve():
        conn, _ = listener.accept()
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
                if stop.wait(0.2):
                    break
                conn.send(bytes([byte]))
        except OSError:
            pass
        finally:
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(http.HTTPFailure) as info:
        http.request("POST", f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions",
                     policy=http.RetryPolicy(retries=0), timeout=1.0, json={})
    elapsed = time.monotonic() - started
    stop.set()
    listener.close()
    assert info.value.reason == "timeout" and elapsed < 1.6


def test_later_records_do_not_wait_behind_a_trickling_one(vkel):
    """`vkel knowledge` with one entity answered by a trickle: that record gets a per-record error at the
    deadline, every other record comes out with its knowledge."""
    from openai_server import knowledge_answer, last_user_text

    def answer(request):
        if "Slowpoke" in last_user_text(request):
            return Reply.trickling(0.3, knowledge_answer(request))
        return knowledge_answer(request)

    records = [{"id": f"t{i}", "tokens": ["Visit", f"Town{i}" if i != 2 else "Slowpoke"],
                "stage1": [{"text": f"Town{i}" if i != 2 else "Slowpoke", "coarse": "location"}]} for i in range(6)]
    with OpenAIServer(answer=answer) as llm:
        started = time.monotonic()
        result = vkel("knowledge", "--on-error", "skip", "--no-cache",
                      "--llm", f"m={llm.url},model=m,concurrency=3,timeout=1.5,retries=0",
                      input=b"".join(orjson.dumps(r) + b"\n" for r in records))
        elapsed = time.monotonic() - started
    assert result.code == 1 and "1 item(s) skipped" in result.stderr
    out = result.records()
    assert [r["id"] for r in out] == [f"t{i}" for i in range(6)]
    assert "deadline" in out[2]["meta"]["errors"]["knowledge"]
    assert all(r["knowledge"] for i, r in enumerate(out) if i != 2)
    assert elapsed < 15  # the trickle alone would take minutes


# ---------------------------------------------------------------- caps

def test_error_bodies_are_capped_not_read_whole(server, tmp_path):
    """A 503 with a 32 MB body, retried twice: the client reads a bounded prefix and hangs up each time."""
    net.allow_private_urls(True)
    size = 32_000_000
    server.streams["/busy.jpg"] = (503, {"Content-Type": "text/plain"}, size)
    store = ImageStore(str(tmp_path / "s"), max_bytes=50_000, retries=2, backoff=0.01)
    with pytest.raises(CandidateError) as info:
        store.get(server.url + "/busy.jpg")
    assert info.value.reason == "network"
    for _ in range(50):  # the handler records what it sent once the client has hung up
        if len(server.sent.get("/busy.jpg", [])) == 3:
            break
        time.sleep(0.1)
    sent = server.sent["/busy.jpg"]
    assert len(sent) == 3 and max(sent) < size // 2, sent


def test_llm_answers_have_a_size_cap():
    big = b'{"choices": [{"message": {"content": "' + b"a" * 9_000_000 + b'"}}]}'
    with OpenAIServer(answer=lambda r: Reply(body=big)) as llm:
        endpoint = OpenAIEndpoint("big", llm.url, "m", retries=2, backoff=0.01)
        assert endpoint.max_answer_bytes == http.DEFAULT_MAX_BYTES == 8_000_000
        with pytest.raises(VkelError, match="exceeds the 8000000-byte cap"):
            endpoint.complete(MSG)
        assert llm.calls == 1  # a size refusal is not retried
