"""Fetching and verifying candidate images, stored content-addressed under --image-dir.

A URL is fetched through the fetch layer (vkel_cli.fetch.http.fetch: http(s) only, redirects followed by
hand with each hop's address checked against the private-address policy, a size cap, a total deadline,
retries with backoff), its content type checked, then fully decoded by PIL
with a pixel cap (decompression-bomb guard; `decode.decode_image`). Good bytes land in
`<dir>/<sha256[:2]>/<sha256>.<ext>`;
`<dir>/.urls/` remembers what each URL gave (a file, or a permanent failure such as a 404), so a
re-run downloads nothing twice and an interrupted run resumes where it stopped. Transient failures
(timeouts, 5xx after the retries) are not remembered: the next run tries again.

`get` does it all in the calling thread. `fetch` (bytes only) and `commit`/`reject` (after decoding)
split it, so that `vkel augment` can decode a record's candidates together in a worker process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import orjson

from ...fetch import http, images
from ...fetch.images import MAX_PIXELS, is_url
from ...core.records import atomic_path
from .decode import CandidateError, Decoded, decode_image

__all__ = ["CandidateError", "Fetched", "FetchStats", "ImageStore", "StoredImage"]
# Servers often send images as octet-stream; anything else (text/html, json) is not an image.
ACCEPTED_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")


@dataclass
class StoredImage:
    source: str
    path: str  # absolute path of the verified file
    size: list[int]  # [width, height]
    prepared: object = None  # the encoder's input, when decoding was given a `prepare`


@dataclass
class Fetched:
    """A candidate's bytes, not yet decoded."""
    source: str
    data: bytes
    path: str | None  # where the bytes already lie (a local file, a stored download); None: fresh download
    memo: str | None = None  # a URL's memo file


@dataclass
class FetchStats:
    downloaded: int = 0  # fetched over the network this run (and verified)
    reused: int = 0  # answered from the store (or a remembered failure)
    local: int = 0  # local files verified in place
    failures: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def fail(self, reason: str) -> None:
        with self._lock:
            self.failures[reason] += 1


class ImageStore:
    def __init__(self, root: str, *, max_bytes: int = 10_000_000, max_pixels: int = MAX_PIXELS,
                 timeout: float = 20.0, retries: int = 2, backoff: float = 0.5):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.max_bytes, self.max_pixels, self.timeout = max_bytes, max_pixels, timeout
        self.policy = http.RetryPolicy(retries=retries, backoff=backoff)
        self.stats = FetchStats()

    # -- public -------------------------------------------------------------------------------------
    def get(self, source: str, prepare: Callable | None = None) -> StoredImage:
        """A verified image for a URL or a local path; CandidateError (counted) when unusable."""
        fetched = self.fetch(source)
        try:
            decoded = decode_image(fetched.data, source, self.max_pixels, prepare)
        except CandidateError as err:
            self.reject(fetched, err)
            raise
        return self.commit(fetched, decoded)

    def fetch(self, source: str) -> Fetched:
        """The bytes of a URL (from the store when an earlier run kept them) or of a local file;
        CandidateError (counted) when there are none to decode."""
        try:
            return self._fetch_url(source) if is_url(source) else self._read_local(source)
        except CandidateError as err:
            self.stats.fail(err.reason)
            raise

    def commit(self, fetched: Fetched, decoded: Decoded) -> StoredImage:
        """Keep a fresh download that decoded well (content-addressed file + URL memo)."""
        if fetched.path is not None:
            if fetched.memo is None:
                self.stats.add(local=1)
            return StoredImage(fetched.source, fetched.path, decoded.size, decoded.prepared)
        digest = hashlib.sha256(fetched.data).hexdigest()
        relative = os.path.join(digest[:2], f"{digest}.{decoded.ext}")
        path = os.path.join(self.root, relative)
        if not os.path.exists(path):
            with atomic_path(path) as handle:
                handle.write(fetched.data)
        self._remember(fetched.memo, {"url": fetched.source, "file": relative, "size": decoded.size})
        self.stats.add(downloaded=1)
        return StoredImage(fetched.source, path, decoded.size, decoded.prepared)

    def reject(self, fetched: Fetched, err: CandidateError) -> None:
        """Count a candidate whose bytes did not decode; a fresh download's failure is remembered."""
        self.stats.fail(err.reason)
        if fetched.path is None and fetched.memo and err.permanent:
            self._remember(fetched.memo, {"url": fetched.source, "error": err.reason})

    def relative(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    # -- URLs ---------------------------------------------------------------------------------------
    def _memo_file(self, url: str) -> str:
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return os.path.join(self.root, ".urls", digest[:2], f"{digest}.json")

    def _fetch_url(self, url: str) -> Fetched:
        memo = self._memo_file(url)
        if os.path.exists(memo):
            with open(memo, "rb") as handle:
                note = orjson.loads(handle.read())
            if "error" in note:
                self.stats.add(reused=1)
                raise CandidateError(note["error"], f"{url} (remembered from an earlier run)")
            path = os.path.join(self.root, note["file"])
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
                self.stats.add(reused=1)
                return Fetched(url, data, path, memo)
            except OSError:
                pass  # the stored file is gone: download it again
        try:
            data = self._download(url)
        except CandidateError as err:
            if err.permanent:
                self._remember(memo, {"url": url, "error": err.reason})
            raise
        return Fetched(url, data, None, memo)

    def _remember(self, memo: str, note: dict) -> None:
        with atomic_path(memo) as handle:
            handle.write(orjson.dumps(note))

    def _download(self, url: str) -> bytes:
        """The bytes at `url` through the fetch layer (redirects by hand, each hop http(s) and
        address-checked, the size cap, the total deadline), or CandidateError with the reason."""
        try:
            reply = http.fetch(url, max_bytes=self.max_bytes, timeout=self.timeout, policy=self.policy)
        except http.HTTPFailure as err:
            # A refused address is not remembered: a re-run with --allow-private-urls must try it.
            blocked = err.reason == "blocked_address"
            reason = err.reason if err.permanent else "network"
            raise CandidateError(reason, f"{url[:200]}: {err.message}", permanent=err.permanent and not blocked) from None
        status = reply.status_code
        if status >= 300:
            raise CandidateError(f"http_{status}", url[:200], permanent=status not in http.RETRY_STATUS)
        ctype = reply.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype and not ctype.startswith(ACCEPTED_TYPES):
            raise CandidateError("not_image", f"{url[:200]} is {ctype}")
        return reply.content

    # -- local files --------------------------------------------------------------------------------
    def _read_local(self, path: str) -> Fetched:
        path = os.path.abspath(path)
        try:
            if os.path.getsize(path) > self.max_bytes:
                raise CandidateError("too_large", f"{path}: more than {self.max_bytes} bytes")
            with images.open_regular(path) as handle:  # a FIFO or a device is refused, not waited on
                data = handle.read()
        except images.ImageError as err:
            raise CandidateError(err.reason, err.message) from None
        except OSError as err:
            raise CandidateError("missing_file", f"{path}: {err.strerror}") from None
        return Fetched(path, data, path)
