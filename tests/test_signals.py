"""Ctrl-C and SIGTERM against a real run with HTTP calls in flight: the process ends within about two
seconds, leaves nothing half-written beside -o, keeps the LLM cache consistent and says so in one line."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import orjson
import pytest

from openai_server import OpenAIServer


def _records(n: int) -> bytes:
    return b"".join(orjson.dumps({"id": f"t{i}", "tokens": f"Kevin Love visits Paris #{i}".split(),
                                  "stage1": [{"text": "Kevin Love", "coarse": "person"}]}) + b"\n"
                    for i in range(n))


class SlowAfter:
    """Answers the first `fast` requests at once, then takes `delay` seconds per answer."""

    def __init__(self, fast: int, delay: float):
        self.fast, self.delay, self.count = fast, delay, 0
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.count += 1
            slow = self.count > self.fast
        if slow:
            time.sleep(self.delay)
        return "height: tall\ncolor: red"


def _start(server, tmp_path, cache):
    source = tmp_path / "in.jsonl"
    source.write_bytes(_records(20))
    cmd = [sys.executable, "-m", "vkel_cli", "knowledge", "--llm", f"m0={server.url},model=m,concurrency=4",
           str(source), "-o", str(tmp_path / "out.jsonl")]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "VKEL_CACHE": str(cache)})


@pytest.mark.parametrize("signum, code, word", [(signal.SIGINT, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated")])
def test_signal_stops_in_flight_run_promptly_and_cleanly(tmp_path, signum, code, word):
    cache = tmp_path / "cache"
    answer = SlowAfter(fast=6, delay=30.0)
    with OpenAIServer(answer=answer) as server:
        proc = _start(server, tmp_path, cache)
        deadline = time.time() + 60
        while server.calls < 8 and time.time() < deadline:  # 6 answered, the next ones hanging
            time.sleep(0.02)
        assert server.calls >= 8, "the run never reached the slow answers"
        sent = time.monotonic()
        proc.send_signal(signum)
        try:
            out, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
        elapsed = time.monotonic() - sent
    stderr = err.decode()
    assert proc.returncode == code, stderr
    assert elapsed < 2.5, f"took {elapsed:.2f} s to stop"
    assert [line for line in stderr.splitlines() if word in line] == [
        f"vkel: {word} ({signal.Signals(signum).name})"]
    assert "Traceback" not in stderr
    # nothing half-written: no output, no temporary file beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "in.jsonl"]
    # the cache is a consistent SQLite database holding the answers that arrived
    db = sqlite3.connect(str(cache / "llm" / "completions.sqlite"))
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM completions").fetchone()[0] == 6


def test_rerun_after_interrupt_completes_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    with OpenAIServer(answer=SlowAfter(fast=6, delay=30.0)) as server:
        proc = _start(server, tmp_path, cache)
        deadline = time.time() + 60
        while server.calls < 8 and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
        server.answer = SlowAfter(fast=10**6, delay=0)  # same server: the cache knows the endpoint by its URL
        server.reset()
        proc = _start(server, tmp_path, cache)
        proc.communicate(timeout=120)
        assert proc.returncode == 0
        assert server.calls == 20 - 6  # the six answers of the interrupted run came from the cache
    out = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["id"] for line in out] == [f"t{i}" for i in range(20)]
