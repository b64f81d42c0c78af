"""The record stream: one JSON object per line, one tweet per record (see docs/records.md).

Readers stream (one record in memory at a time), read `-` as stdin and `.gz` transparently, and
name the source and line of anything malformed. Writers emit one compact line per record, flushed,
and write files atomically so that a failed run leaves nothing half-written.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import tempfile
import zlib
from contextlib import contextmanager
from itertools import islice
from typing import Any, Iterable, Iterator

import orjson

from .errors import ErrorPolicy, Location, VkelError

Record = dict[str, Any]

GZIP_MAGIC = b"\x1f\x8b"


def source_name(source: str) -> str:
    return "<stdin>" if source == "-" else source


def _open_binary(source: str):
    if source == "-":
        return sys.stdin.buffer
    try:
        return open(source, "rb")
    except OSError as err:
        raise VkelError(f"cannot open: {err.strerror}", source) from None


def iter_lines(source: str) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line) from a file or `-`, gunzipping when the data is gzip."""
    raw = _open_binary(source)
    stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    name = source_name(source)
    lineno = 0
    try:
        if stream.peek(2)[:2] == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream)
        for lineno, line in enumerate(stream, 1):
            yield lineno, line
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise VkelError(f"corrupt or truncated gzip data: {err}", f"{name}:{lineno + 1}") from None
    finally:
        if source != "-":
            raw.close()


def iter_nonblank(source: str) -> Iterator[tuple[Location, bytes]]:
    """(location, line) for every non-blank line of a file or `-`."""
    name = source_name(source)
    for lineno, line in iter_lines(source):
        if line.strip():
            yield Location(name, lineno), line


def load_object(line: bytes, where: Location | str) -> dict[str, Any]:
    """One JSON object from a line, or a VkelError naming where it stood."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise VkelError(f"malformed JSON: {err}", str(where)) from None
    if not isinstance(value, dict):
        raise VkelError(f"a line must hold a JSON object, got {type(value).__name__}", str(where))
    return value


def parse_record(line: bytes, where: Location) -> Record:
    record = load_object(line, where)
    check_record(record, where)
    return record


def read_records(
    sources: Iterable[str] = ("-",), policy: ErrorPolicy | None = None
) -> Iterator[tuple[Record, Location]]:
    """Stream (record, location) pairs from every source in turn; blank lines are skipped."""
    policy = policy or ErrorPolicy("fail")
    for source in sources or ["-"]:
        for where, line in iter_nonblank(source):
            try:
                yield parse_record(line, where), where
            except VkelError as err:
                policy.handle(err)


def _is_box(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def check_record(record: Record, where: Location | str | None = None) -> None:
    """Check the fields of the contract that are present; other fields pass through unchecked."""

    def fail(message: str):
        raise VkelError(message, str(where) if where else None)

    if not isinstance(record.get("id"), str):
        fail("record has no string `id`")
    tokens = record.get("tokens")
    if tokens is not None and not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)):
        fail("`tokens` must be a list of strings")
    size = record.get("image_size")
    if size is not None and not (
        isinstance(size, list) and len(size) == 2 and all(isinstance(v, (int, float)) for v in size)
    ):
        fail("`image_size` must be [width, height] or null")
    for i, entity in enumerate(record.get("entities") or []):
        if not isinstance(entity, dict) or not isinstance(entity.get("text"), str):
            fail(f"entities[{i}] must be an object with a string `text`")
        boxes = entity.get("boxes", [])
        if not isinstance(boxes, list) or not all(_is_box(b) for b in boxes):
            fail(f"entities[{i}].boxes must be a list of [x1, y1, x2, y2]")
    for i, pred in enumerate(record.get("predictions") or []):
        if not isinstance(pred, dict) or not isinstance(pred.get("text"), str):
            fail(f"predictions[{i}] must be an object with a string `text`")
        box = pred.get("box")
        if box is not None and not _is_box(box):
            fail(f"predictions[{i}].box must be [x1, y1, x2, y2] or null")


def dumps(record: Record) -> bytes:
    return orjson.dumps(record) + b"\n"


class RecordWriter:
    """Writes records to an open binary stream, one flushed line each."""

    def __init__(self, stream):
        self._stream = stream
        self.count = 0

    def write(self, record: Record) -> None:
        self._stream.write(dumps(record))
        self._stream.flush()
        self.count += 1

    def write_all(self, records: Iterable[Record]) -> int:
        for record in records:
            self.write(record)
        return self.count


@contextmanager
def atomic_path(path: str, mode: str = "wb"):
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def open_output(path: str | None = "-"):
    """A RecordWriter on stdout (`-` or None) or on a file written atomically (`.gz` compressed)."""
    if path in (None, "-"):
        yield RecordWriter(sys.stdout.buffer)
        return
    with atomic_path(path) as handle:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as gz:
                yield RecordWriter(gz)
        else:
            yield RecordWriter(handle)


def batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def meta(record: Record) -> dict:
    """The record's `meta` object, created when absent."""
    value = record.get("meta")
    if not isinstance(value, dict):
        value = record["meta"] = {}
    return value


def entity_text(tokens: list[str], start: int, end: int) -> str:
    return " ".join(tokens[start:end])
