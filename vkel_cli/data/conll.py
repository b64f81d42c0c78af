"""The benchmark's CoNLL files: an `IMGID:<id>` line, then one tab-separated token line each, a blank
line between tweets. Spans come from BIO tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..errors import VkelError
from ..records import iter_lines, source_name


@dataclass
class Tweet:
    imgid: str
    rows: list[list[str]]
    line: int  # where the IMGID line stands


def read_tweets(path: str, columns: int) -> Iterator[Tweet]:
    """Stream tweets; a token line with the wrong column count is an error naming file:line."""
    name = source_name(path)
    current: Tweet | None = None
    for lineno, raw in iter_lines(path):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise VkelError(f"not UTF-8: {err}", f"{name}:{lineno}") from None
        if line.startswith("IMGID:"):
            if current is not None:
                yield current
            current = Tweet(line[len("IMGID:"):].strip(), [], lineno)
            continue
        if not line.strip():
            continue
        if current is None:
            raise VkelError("token line before the first IMGID: line", f"{name}:{lineno}")
        fields = line.split("\t")
        if len(fields) != columns:
            raise VkelError(
                f"expected {columns} tab-separated columns, found {len(fields)}: {line[:80]!r}", f"{name}:{lineno}"
            )
        current.rows.append(fields)
    if current is not None:
        yield current


def bio_spans(tags: list[str], where: str) -> list[tuple[int, int, str]]:
    """(start, end, type) spans from BIO tags; an I- that does not continue a span of its type starts one."""
    spans: list[list] = []
    for i, tag in enumerate(tags):
        if tag == "O":
            continue
        prefix, _, label = tag.partition("-")
        if prefix not in ("B", "I") or not label:
            raise VkelError(f"bad BIO tag {tag!r} at token {i}", where)
        if prefix == "I" and spans and spans[-1][1] == i and spans[-1][2] == label:
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1, label])
    return [tuple(s) for s in spans]  # type: ignore[misc]
