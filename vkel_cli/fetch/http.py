"""The fetch layer: every HTTP request vkel makes goes through here (LLM calls, the search API, image
URLs, retrieved candidates).

- Retries: exponential backoff with jitter on 429/5xx/connection errors/timeouts, honouring Retry-After.
- One capped reader for every body, error bodies included: an answer over `max_bytes` (default
  8 MB) is refused, an error body is read up to 64 KiB (its message) and the connection dropped.
- `timeout` is a total deadline per attempt (connect, TLS, headers and every read), enforced by
  vkel_cli.fetch.net: a server that trickles a byte a second is cut off when it expires.
- `fetch()` is for URLs vkel chooses on its own: redirects are followed by hand, each hop must be
  http(s) and its address passes the private-address policy (vkel_cli.fetch.net) after name resolution.
- Messages are redacted before they are cut, so a key straddling a cut leaves nothing behind.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin

from . import net
from ..core.errors import VkelError, redact, redact_excerpt
from .net import allow_private_urls, blocked_reason, private_allowed  # noqa: F401 (the policy's public face)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
DEFAULT_MAX_BYTES = 8_000_000  # an answer (LLM completion, search result page) larger than this is refused
ERROR_BODY_BYTES = 65_536  # what is read of a 4xx/5xx body: enough for its message
MAX_REDIRECTS = 5
_CHUNK = 65_536


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


def session(guarded: bool = False):
    """A pooled requests.Session for this thread (Sessions are not guaranteed thread-safe). The
    guarded one (URLs vkel chose) ignores proxy and netrc settings from the environment: its
    connections must go to the address that was checked, with no credentials of the user's."""
    import requests

    name = "guarded" if guarded else "trusted"
    found = getattr(_local, name, None)
    if found is None:
        found = requests.Session()
        found.trust_env = not guarded
        found.mount("http://", net.adapter())
        found.mount("https://", net.adapter())
        setattr(_local, name, found)
    return found


@dataclass
class Reply:
    """A response whose body has been read (capped) and whose connection is released."""

    status_code: int
    headers: dict
    content: bytes
    url: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "Location" in self.headers


class InvalidResponse(Exception):
    """Raised by a `check` callback of request(): a 2xx body is unusable (truncated, wrong schema),
    so it is retried like a 5xx."""


class HTTPFailure(VkelError):
    """`reason`: a short key (network, timeout, too_large, blocked_address, bad_url, bad_scheme,
    redirects, http_NNN); `permanent`: whether trying again later can help."""

    def __init__(self, message: str, status: int | None = None, where: str | None = None,
                 reason: str = "network", permanent: bool = False):
        super().__init__(message, where)
        self.status, self.reason, self.permanent = status, reason, permanent


class _TooLarge(Exception):
    pass


def read_capped(response, max_bytes: int, deadline: net.Deadline, truncate: bool = False) -> bytes:
    """The body of a streamed requests response, at most `max_bytes` (decoded) bytes: more is
    _TooLarge, or cut there when `truncate`. A deadline that expired mid-body is DeadlineExceeded,
    never a short body taken for a whole one."""
    import requests

    declared = response.headers.get("Content-Length", "")
    if not truncate and declared.isdigit() and int(declared) > max_bytes:
        raise _TooLarge(f"{declared} bytes exceeds the {max_bytes}-byte cap")
    chunks, total = [], 0
    try:
        for chunk in response.iter_content(_CHUNK):
            total += len(chunk)
            if total > max_bytes:
                if not truncate:
                    raise _TooLarge(f"body exceeds the {max_bytes}-byte cap")
                chunks.append(chunk[: len(chunk) - (total - max_bytes)])
                break
            chunks.append(chunk)
    except (requests.RequestException, OSError) as err:
        if deadline.expired:
            raise _deadline_error(deadline) from None
        if isinstance(err, requests.RequestException):
            raise
        raise requests.ConnectionError(f"{type(err).__name__}: {err}") from None
    if deadline.expired:
        raise _deadline_error(deadline)
    return b"".join(chunks)


def _deadline_error(deadline: net.Deadline) -> net.DeadlineExceeded:
    return net.DeadlineExceeded(f"no complete answer within the {deadline.seconds:g} s deadline (--timeout)")


def _attempt(method: str, url: str, timeout: float, max_bytes: int, guarded: bool, kwargs: dict) -> Reply:
    import requests

    deadline = net.Deadline(timeout)
    with net.Scope(deadline, guarded) as scope:
        try:
            response = session(guarded).request(method, url, timeout=timeout, stream=True,
                                                allow_redirects=False, **kwargs)
        except requests.RequestException:
            if scope.refused:
                raise net.AddressRefused(scope.refused[0]) from None
            if deadline.expired:
                raise _deadline_error(deadline) from None
            raise
        with response:  # an unread rest is not drained: the connection is dropped
            error = response.status_code >= 400
            content = read_capped(response, min(max_bytes, ERROR_BODY_BYTES) if error else max_bytes,
                                  deadline, truncate=error)
            return Reply(response.status_code, response.headers, content, response.url)


def request(method: str, url: str, *, policy: RetryPolicy | None = None, timeout: float = 60.0,
            sleep=time.sleep, check=None, max_bytes: int = DEFAULT_MAX_BYTES, guarded: bool = False,
            **kwargs) -> Reply:
    """Send a request, retrying transient failures; return the final 2xx/3xx/4xx Reply (redirects
    are not followed: see fetch()).

    `check(reply)`, when given, is called on each 2xx reply and may raise InvalidResponse to have
    it retried too. `guarded`: the URL was chosen by vkel, not the user (address policy applies).
    Raises HTTPFailure after the last try on transient errors, and at once on permanent ones (a
    body over `max_bytes`, a refused address, a malformed URL), with a secret-free reason."""
    import requests

    policy = policy or RetryPolicy()
    last, status, reason = "no attempt", None, "network"
    for attempt in range(policy.retries + 1):
        retry_after = None
        try:
            reply = _attempt(method, url, timeout, max_bytes, guarded, kwargs)
        except _TooLarge as err:
            raise HTTPFailure(f"{method} {url}: {err}", reason="too_large", permanent=True) from None
        except net.AddressRefused as err:
            raise HTTPFailure(f"{method} {url}: {err}", reason="blocked_address", permanent=True) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as err:
            raise HTTPFailure(f"{method} {url}: malformed URL ({type(err).__name__})", reason="bad_url",
                              permanent=True) from None
        except net.DeadlineExceeded as err:
            last, status, reason = str(err), None, "timeout"
            if guarded:  # a web host chosen by vkel that cannot answer in time is not waited for again
                break
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as err:  # the last two: a body cut short
            last, status, reason = f"{type(err).__name__}: {redact(str(err))}", None, "network"
        else:
            status, reason = reply.status_code, "network"
            if status not in RETRY_STATUS:
                if check is None or not 200 <= status < 300:
                    return reply
                try:
                    check(reply)
                    return reply
                except InvalidResponse as err:
                    last = f"HTTP {status}: unusable response: {redact(str(err))}"
                    if attempt < policy.retries:
                        sleep(policy.delay(attempt))
                    continue
            retry_after = parse_retry_after(reply.headers.get("Retry-After"))
            last = f"HTTP {status}: {redact_excerpt(reply.text, 200)}"
        if attempt < policy.retries:
            sleep(policy.delay(attempt, retry_after))
    tries = attempt + 1
    raise HTTPFailure(f"{method} {url} failed after {tries} tr{'y' if tries == 1 else 'ies'}; last: {last}", status,
                      reason=reason)


def fetch(url: str, *, max_bytes: int = 20_000_000, timeout: float = 30.0,
          policy: RetryPolicy | None = None) -> Reply:
    """GET a URL vkel chose on its own (a record's image, a retrieved candidate): redirects followed
    by hand, each hop http(s) only and address-checked; the final Reply (maybe 4xx)."""
    for _ in range(MAX_REDIRECTS + 1):
        if not url.startswith(("http://", "https://")):
            raise HTTPFailure(f"refusing non-http(s) URL {url[:200]}", reason="bad_scheme", permanent=True)
        reply = request("GET", url, policy=policy, timeout=timeout, max_bytes=max_bytes, guarded=True)
        if not reply.is_redirect:
            return reply
        url = urljoin(url, reply.headers["Location"])
    raise HTTPFailure(f"more than {MAX_REDIRECTS} redirects, last to {url[:200]}", reason="redirects",
                      permanent=True)


def fetch_bytes(url: str, *, max_bytes: int = 20_000_000, timeout: float = 30.0,
                policy: RetryPolicy | None = None) -> bytes:
    """The body of fetch(url); HTTPFailure on a 4xx/5xx answer."""
    reply = fetch(url, max_bytes=max_bytes, timeout=timeout, policy=policy)
    if reply.status_code >= 300:
        raise HTTPFailure(f"GET {url}: HTTP {reply.status_code}", reply.status_code,
                          reason=f"http_{reply.status_code}", permanent=reply.status_code not in RETRY_STATUS)
    return reply.content
