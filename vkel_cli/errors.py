"""Errors that name where they happened, the skip/fail policy, and secret redaction."""

from __future__ import annotations

import sys
from dataclasses import dataclass

# Values (API keys) that must never reach output, logs or tracebacks. Backends register the
# secrets they read; every message vkel prints passes through redact().
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


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
