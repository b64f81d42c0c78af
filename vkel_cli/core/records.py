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
from .schema import UniqueIds, check_record  # noqa: F401  (check_record: part of this module's API)
from .unix import ReaderGone, forget_temporary, new_file_mode, register_temporary

Record = dict[str, Any]

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"  # files written on Windows start with one; line endings there are CRLF


def source_name(source: str) -> str:
    return "<stdin>" if source == "-" else source


def _open_binary(source: str):
    if source == "-":
        return sys.stdin.buffer
    try:
        return open(source, "rb")
    except OSError as err:
        raise VkelError(f"cannot open: {err.strerror}", source) from None


def strip_bom(line: bytes, lineno: int) -> bytes:
    """The line without the UTF-8 byte order mark a first line may start with."""
    return line[len(BOM):] if lineno == 1 and line.startswith(BOM) else line


def iter_lines(source: str) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line) from a file or `-`, gunzipping when the data is gzip; a byte order mark
    is stripped here, so no reader above needs to."""
    raw = _open_binary(source)
    stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    name = source_name(source)
    lineno = 0
    try:
        if stream.peek(2)[:2] == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream)
        for lineno, line in enumerate(stream, 1):
            yield lineno, strip_bom(line, lineno)
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
        raise VkelError(f"malformed JSON: {err}{_format_hint(line)}", str(where)) from None
    if not isinstance(value, dict):
        raise VkelError(f"a line must hold a JSON object, got {type(value).__name__}", str(where))
    return value


def _format_hint(line: bytes) -> str:
    """A pointer to the importer when a line looks like a dataset file rather than records."""
    text = line.strip()
    if text.startswith(b"<"):
        return ("; this looks like XML: boxes in Pascal-VOC XML are read by the importer "
                "(`vkel data import fmnerg TXT --xml-dir DIR`)")
    if text.startswith(b"IMGID:") or (b"\t" in text and not text.startswith((b"{", b"["))):
        return ("; this looks like a CoNLL file: turn it into records first "
                "(`vkel data import fmnerg FILE --xml-dir DIR`, or `vkel data import gmner ...`)")
    return ""


def parse_record(line: bytes, where: Location) -> Record:
    record = load_object(line, where)
    check_record(record, where)
    return record


def read_records(
    sources: Iterable[str] = ("-",), policy: ErrorPolicy | None = None
) -> Iterator[tuple[Record, Location]]:
    """Stream (record, location) pairs from every source in turn; blank lines are skipped.

    Every record is checked against the schema (vkel_cli/core/schema.py) and ids must be unique in the
    stream: a bad record goes to `policy` (fail: stop; skip/ignore: reported, left out)."""
    policy = policy or ErrorPolicy("fail")
    ids = UniqueIds()
    for source in sources or ["-"]:
        for where, line in iter_nonblank(source):
            try:
                record = parse_record(line, where)
                ids.check(record, where)
            except VkelError as err:
                policy.handle(err)
                continue
            yield record, where


def dumps(record: Record) -> bytes:
    return orjson.dumps(record) + b"\n"


class RecordWriter:
    """Writes records to an open binary stream, one flushed line each. A write that fails (disk full)
    is a VkelError naming the output; a reader that went away is unix.ReaderGone."""

    def __init__(self, stream, name: str = "<stdout>"):
        self._stream = stream
        self.name = name
        self.count = 0

    def write(self, record: Record) -> None:
        try:
            self._stream.write(dumps(record))
            self._stream.flush()
        except BrokenPipeError:
            raise ReaderGone() from None
        except OSError as err:
            raise VkelError(f"cannot write records: {err.strerror or err}", self.name) from None
        self.count += 1

    def write_all(self, records: Iterable[Record]) -> int:
        for record in records:
            self.write(record)
        return self.count


@contextmanager
def atomic_path(path: str, mode: str = "wb"):
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds.

    The file gets the mode a plain open() would give (the umask's, or the replaced file's), not
    mkstemp's 0600; the temporary file is registered so that a signal removes it (unix.py)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    register_temporary(tmp)
    try:
        os.fchmod(fd, new_file_mode(path))
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        forget_temporary(tmp)


@contextmanager
def open_output(path: str | None = "-"):
    """A RecordWriter on stdout (`-` or None) or on a file written atomically (`.gz` compressed)."""
    if path in (None, "-"):
        yield RecordWriter(sys.stdout.buffer)
        return
    with atomic_path(path) as handle:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as gz:
                yield RecordWriter(gz, path)
        else:
            yield RecordWriter(handle, path)


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
