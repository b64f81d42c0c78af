"""Text lines of importer inputs (CoNLL, FIGER, peers' prediction files): UTF-8, with a byte order mark on
the first line and CRLF line endings accepted, since files written on Windows carry both."""

from __future__ import annotations

from typing import Iterator

from ..core.errors import VkelError
from ..core.records import iter_lines, source_name

def decode_line(raw: bytes, lineno: int, name: str) -> str:
    """One line (from `text_lines`: its BOM already stripped) without its line ending, or a VkelError
    naming file:line."""
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise VkelError(f"not UTF-8: {err}", f"{name}:{lineno}") from None


def text_lines(path: str) -> Iterator[tuple[int, bytes, str]]:
    """(line number, raw bytes, source name) for every line; decoding is left to `decode_line` so that a
    reader can treat an undecodable line as an error of the one item it belongs to."""
    name = source_name(path)
    for lineno, raw in iter_lines(path):
        yield lineno, raw, name
