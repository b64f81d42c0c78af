"""Errors that name where they happened, the skip/fail policy, and secret redaction."""

from __future__ import annotations

import base64
import json
import sys
import threading
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

# Values (API keys) that must never reach output, logs, records, caches or tracebacks. Backends
# register the secrets they read; every message vkel prints, and every answer text it keeps, passes
# through redact().
_SECRETS: set[str] = set()
_ORDERED: list[str] = []  # longest first, so a form that contains another is replaced whole
_LOCK = threading.Lock()
MIN_SECRET = 4


def _forms(value: str) -> set[str]:
    """The value as it may travel or come back: raw, percent-encoded (a query parameter),
    JSON-escaped, and base64 of the value and of its Authorization header."""
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    for blob in (value, f"Bearer {value}"):
        raw = blob.encode("utf-8")
        forms.add(base64.b64encode(raw).decode().rstrip("="))
        forms.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    return {form for form in forms if len(form) >= MIN_SECRET}


def register_secret(value: str | None) -> None:
    """Register a secret (and its encoded forms) for redaction. Call it wherever a key is read."""
    if not value or len(value) < MIN_SECRET:
        return
    with _LOCK:
        _SECRETS.update(_forms(value))
        _ORDERED[:] = sorted(_SECRETS, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***. Redact whole texts, then cut: a key
    that straddles a cut would otherwise leave its prefix behind."""
    for secret in _ORDERED:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def redact_excerpt(text: str, limit: int) -> str:
    """The first `limit` characters of `text`, redacted before the cut."""
    return redact(text)[:limit]


def contains_secret(text: str) -> bool:
    return any(secret in text for secret in _ORDERED)


class VkelError(Exception):
    """A data or runtime error the user can act on: exit status 1, message names the location."""

    def __init__(self, message: str, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        text = f"(at {self.where}): {self.message}" if self.where else self.message
        return redact(text)

    def at(self, where: str) -> "VkelError":
        """Attach a location when the raiser did not know it."""
        if self.where is None:
            self.where = where
        return self


class SkippedRecords(VkelError):
    """Raised at the end of a run in `--on-error skip` mode when something was skipped."""


@dataclass
class Location:
    source: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}"


ON_ERROR_MODES = ("fail", "skip", "ignore")


class ErrorPolicy:
    """What to do with a bad record: `fail` stops (exit 1); `skip` reports it on stderr, goes on
    and exits 1 at the end; `ignore` reports it and exits 0."""

    def __init__(self, mode: str = "fail", stream=None):
        if mode not in ON_ERROR_MODES:
            raise ValueError(f"--on-error must be one of {', '.join(ON_ERROR_MODES)}, not {mode!r}")
        self.mode = mode
        self.skipped = 0
        self._stream = stream

    def handle(self, error: VkelError) -> None:
        """Raise `error` in fail mode; otherwise report it and count it."""
        if self.mode == "fail":
            raise error
        self.skipped += 1
        print(f"vkel: skipped {error}", file=self._stream or sys.stderr, flush=True)

    def finish(self) -> None:
        if self.skipped and self.mode == "skip":
            raise SkippedRecords(f"{self.skipped} item(s) skipped because of errors (see above)")
