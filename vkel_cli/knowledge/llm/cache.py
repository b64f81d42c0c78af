"""A persistent completion cache (SQLite under the vkel cache dir) and the endpoint wrapper that
uses it.

Keyed by (endpoint identity = model and where it runs, the full messages, the params), so re-running
a command makes no calls, and a run that was interrupted resumes: every answer is committed as
soon as it arrives. Identical requests in flight at the same time are sent once (the others wait
for the first), which is how one entity in many copies of a tweet is asked once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from ...core.errors import VkelError
from ...core.paths import cache_path
from .base import Completion, Endpoint, Messages, request_key
from .ledger import Ledger


def default_path() -> Path:
    return cache_path("llm", "completions.sqlite")


class Cache:
    """Thread-safe (one connection behind a lock); several processes may share the file (WAL)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # A cache: surviving a killed process is enough (WAL + NORMAL does), an fsync per answer is not needed.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, identity TEXT, "
                             "text TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)")
        except sqlite3.Error as err:
            raise VkelError(f"cannot open the LLM cache: {err} (set VKEL_CACHE or use --no-cache)", str(self.path)) from None

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT text, prompt_tokens, completion_tokens FROM completions WHERE key = ?",
                                   (key,)).fetchone()
        return Completion(row[0], row[1], row[2], cached=True) if row else None

    def put(self, key: str, identity: str, completion: Completion) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?)",
                             (key, identity, completion.text, completion.prompt_tokens,
                              completion.completion_tokens, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedEndpoint(Endpoint):
    """Wraps an endpoint with the cache (optional), the ledger (optional), single-flight of
    identical requests, and a semaphore that caps calls in flight at its max_concurrency."""

    def __init__(self, inner: Endpoint, cache: Cache | None = None, ledger: Ledger | None = None):
        self.inner = inner
        self.name, self.model, self.max_concurrency = inner.name, inner.model, inner.max_concurrency
        self.params = getattr(inner, "params", {})
        self.cache, self.ledger = cache, ledger
        if ledger:
            ledger.register(self.name)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}

    def identity(self) -> str:
        return self.inner.identity()

    def complete(self, messages: Messages, **params) -> Completion:
        key = request_key(self.identity(), messages, self.inner.merged_params(params))
        with self._lock:
            hit = self.cache.get(key) if self.cache is not None else None
            waiting = self._inflight.get(key) if hit is None else None
            if hit is None and waiting is None:
                mine = self._inflight[key] = Future()
        if hit is not None or waiting is not None:
            completion = hit or Completion(**{**waiting.result().__dict__, "cached": True})
            self._record(completion)
            return completion
        try:
            with self._slots:
                completion = self.inner.complete(messages, **params)
        except BaseException as err:
            if self.ledger:
                self.ledger.failed(self.name)
            mine.set_exception(err)
            with self._lock:
                self._inflight.pop(key, None)
            raise
        if self.cache is not None:
            self.cache.put(key, self.identity(), completion)
        mine.set_result(completion)
        with self._lock:
            self._inflight.pop(key, None)
        self._record(completion)
        return completion

    def _record(self, completion: Completion) -> None:
        if self.ledger:
            self.ledger.add(self.name, completion)
