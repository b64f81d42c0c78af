"""HTTP with retries: one pooled requests.Session per thread-safe client, exponential backoff with
jitter on 429/5xx/connection errors/timeouts, honouring Retry-After. Shared by the LLM client,
the image retrieval backends and image URLs."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from dataclasses import dataclass

from .errors import VkelError, redact

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    retries: int = 4  # attempts after the first
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    max_backoff: float = 30.0
    jitter: float = 0.25  # +- fraction of each delay, so parallel clients do not retry in step

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        base = min(self.backoff * (2**attempt), self.max_backoff)
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time() if when else None


_local = threading.local()


def session():
    """A pooled requests.Session for this thread (Sessions are not guaranteed thread-safe)."""
    import requests

    if getattr(_local, "session", None) is None:
        _local.session = requests.Session()
    return _local.session


class InvalidResponse(Exception):
    """Raised by a `check` callback of request(): a 2xx body is unusable (truncated, wrong schema),
    so it is retried like a 5xx."""


class HTTPFailure(VkelError):
    def __init__(self, message: str, status: int | None = None, where: str | None = None):
        super().__init__(message, where)
        self.status = status


def request(method: str, url: str, *, policy: RetryPolicy | None = None, timeout: float = 60.0,
            sleep=time.sleep, check=None, **kwargs):
    """Send a request, retrying transient failures; return the final 2xx/3xx/4xx response.

    `check(response)`, when given, is called on each 2xx response and may raise InvalidResponse
    to have it retried too. Raises HTTPFailure after the last try on transient errors, with the
    secret-free reason."""
    import requests

    policy = policy or RetryPolicy()
    last = "no attempt"
    for attempt in range(policy.retries + 1):
        retry_after = None
        try:
            response = session().request(method, url, timeout=timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as err:  # the last two: a body cut short
            last = f"{type(err).__name__}: {redact(str(err))}"
            status = None
        else:
            status = response.status_code
            if status not in RETRY_STATUS:
                if check is None or not 200 <= status < 300:
                    return response
                try:
                    check(response)
                    return response
                except InvalidResponse as err:
                    last = f"HTTP {status}: unusable response: {redact(str(err))}"
                    if attempt < policy.retries:
                        sleep(policy.delay(attempt))
                    continue
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            last = f"HTTP {status}: {redact(response.text[:200])}"
        if attempt < policy.retries:
            sleep(policy.delay(attempt, retry_after))
    raise HTTPFailure(f"{method} {url} failed after {policy.retries + 1} tries; last: {last}", status)


def fetch_bytes(url: str, *, max_bytes: int = 20_000_000, timeout: float = 30.0,
                policy: RetryPolicy | None = None) -> bytes:
    """GET a URL over http(s) with a size cap; redirects to other schemes are refused."""
    if not url.startswith(("http://", "https://")):
        raise HTTPFailure(f"refusing non-http(s) URL: {url}")
    response = request("GET", url, policy=policy, timeout=timeout, stream=True)
    with response:
        if response.status_code >= 400:
            raise HTTPFailure(f"GET {url}: HTTP {response.status_code}", response.status_code)
        if not response.url.startswith(("http://", "https://")):
            raise HTTPFailure(f"GET {url} redirected to a non-http(s) URL")
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise HTTPFailure(f"GET {url}: {declared} bytes exceeds the {max_bytes}-byte cap")
        chunks, total = [], 0
        for chunk in response.iter_content(65536):
            total += len(chunk)
            if total > max_bytes:
                raise HTTPFailure(f"GET {url}: body exceeds the {max_bytes}-byte cap")
            chunks.append(chunk)
    return b"".join(chunks)
