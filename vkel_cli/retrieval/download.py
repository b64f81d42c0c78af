"""Fetching and verifying candidate images, stored content-addressed under --image-dir.

A URL is fetched over http(s) only (redirects followed by hand, each hop checked), with a size cap,
a content-type check, timeouts and retries with backoff (vkel_cli.http), then fully decoded by PIL
with a pixel cap (decompression-bomb guard). Good bytes land in `<dir>/<sha256[:2]>/<sha256>.<ext>`;
`<dir>/.urls/` remembers what each URL gave (a file, or a permanent failure such as a 404), so a
re-run downloads nothing twice and an interrupted run resumes where it stopped. Transient failures
(timeouts, 5xx after the retries) are not remembered: the next run tries again.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin

import orjson

from .. import http
from ..images import MAX_PIXELS, is_url
from ..records import atomic_path

FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
# Servers often send images as octet-stream; anything else (text/html, json) is not an image.
ACCEPTED_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")
MAX_REDIRECTS = 5


def http_errors():
    import requests

    return requests.RequestException


class CandidateError(Exception):
    """A candidate that cannot be used; `reason` is a short counter key, `permanent` says whether a
    re-run should try it again."""

    def __init__(self, reason: str, detail: str, permanent: bool = True):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.permanent = reason, detail, permanent


@dataclass
class StoredImage:
    source: str
    path: str  # absolute path of the verified file
    size: list[int]  # [width, height]
    image: object = None  # the decoded RGB PIL image, when verification just decoded it


@dataclass
class FetchStats:
    downloaded: int = 0  # fetched over the network this run
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
    def get(self, source: str) -> StoredImage:
        """A verified image for a URL or a local path; CandidateError (counted) when unusable."""
        try:
            return self._get_url(source) if is_url(source) else self._get_local(source)
        except CandidateError as err:
            self.stats.fail(err.reason)
            raise

    def relative(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    # -- URLs ---------------------------------------------------------------------------------------
    def _memo_file(self, url: str) -> str:
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return os.path.join(self.root, ".urls", digest[:2], f"{digest}.json")

    def _get_url(self, url: str) -> StoredImage:
        memo = self._memo_file(url)
        if os.path.exists(memo):
            with open(memo, "rb") as handle:
                note = orjson.loads(handle.read())
            if "error" in note:
                self.stats.add(reused=1)
                raise CandidateError(note["error"], f"{url} (remembered from an earlier run)")
            path = os.path.join(self.root, note["file"])
            if os.path.exists(path):
                self.stats.add(reused=1)
                return StoredImage(url, path, note["size"])
        try:
            data = self._fetch(url)
            image, ext = self._verify(data, url)
        except CandidateError as err:
            if err.permanent:
                self._remember(memo, {"url": url, "error": err.reason})
            raise
        self.stats.add(downloaded=1)
        digest = hashlib.sha256(data).hexdigest()
        relative = os.path.join(digest[:2], f"{digest}.{ext}")
        path = os.path.join(self.root, relative)
        if not os.path.exists(path):
            with atomic_path(path) as handle:
                handle.write(data)
        size = [image.width, image.height]
        self._remember(memo, {"url": url, "file": relative, "size": size})
        return StoredImage(url, path, size, image)

    def _remember(self, memo: str, note: dict) -> None:
        with atomic_path(memo) as handle:
            handle.write(orjson.dumps(note))

    def _fetch(self, url: str) -> bytes:
        import requests

        for _ in range(MAX_REDIRECTS + 1):
            if not url.startswith(("http://", "https://")):
                raise CandidateError("bad_scheme", f"refusing non-http(s) URL {url[:200]}")
            try:
                response = http.request("GET", url, policy=self.policy, timeout=self.timeout, stream=True,
                                        allow_redirects=False)
            except http.HTTPFailure as err:
                raise CandidateError("network", err.message, permanent=False) from None
            except (requests.RequestException, ValueError) as err:  # InvalidURL and friends: a bad URL
                raise CandidateError("bad_url", f"{url[:200]}: {type(err).__name__}") from None
            with response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("Location", ""))
                    continue
                return self._read_body(response, url)
        raise CandidateError("redirects", f"more than {MAX_REDIRECTS} redirects from {url[:200]}")

    def _read_body(self, response, url: str) -> bytes:
        status = response.status_code
        if status >= 400:
            raise CandidateError(f"http_{status}", url[:200], permanent=status not in http.RETRY_STATUS)
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype and not ctype.startswith(ACCEPTED_TYPES):
            raise CandidateError("not_image", f"{url[:200]} is {ctype}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise CandidateError("too_large", f"{url[:200]}: {declared} bytes > {self.max_bytes}")
        chunks, total = [], 0
        try:
            for chunk in response.iter_content(65536):
                total += len(chunk)
                if total > self.max_bytes:
                    raise CandidateError("too_large", f"{url[:200]}: more than {self.max_bytes} bytes")
                chunks.append(chunk)
        except CandidateError:
            raise
        except (OSError, ValueError, http_errors()) as err:  # the connection dropped mid-body
            raise CandidateError("network", f"{url[:200]}: {type(err).__name__}", permanent=False) from None
        return b"".join(chunks)

    # -- local files --------------------------------------------------------------------------------
    def _get_local(self, path: str) -> StoredImage:
        path = os.path.abspath(path)
        try:
            if os.path.getsize(path) > self.max_bytes:
                raise CandidateError("too_large", f"{path}: more than {self.max_bytes} bytes")
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as err:
            raise CandidateError("missing_file", f"{path}: {err.strerror}") from None
        image, _ = self._verify(data, path)
        self.stats.add(local=1)
        return StoredImage(path, path, [image.width, image.height], image)

    # -- verification -------------------------------------------------------------------------------
    def _verify(self, data: bytes, where: str):
        """Fully decode `data` (a truncated file fails here), refusing huge pixel counts before decoding."""
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data), formats=list(FORMATS))
                fmt = img.format
                if img.width * img.height > self.max_pixels:
                    raise CandidateError("too_many_pixels", f"{where}: {img.width}x{img.height}")
                img.load()
                rgb = img.convert("RGB")
        except CandidateError:
            raise
        except (Image.UnidentifiedImageError, ValueError) as err:
            raise CandidateError("not_image", f"{where}: {err}") from None
        except (OSError, SyntaxError, EOFError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise CandidateError("corrupt", f"{where}: {err}") from None
        return rgb, FORMATS[fmt]
