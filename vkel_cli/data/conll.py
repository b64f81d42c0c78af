"""The benchmark's CoNLL files: an `IMGID:<id>` line, then one tab-separated token line each, a blank
line between tweets. Spans come from BIO tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..core.errors import VkelError
from .text import decode_line, text_lines


@dataclass
class Tweet:
    imgid: str | None  # None for token lines before the first IMGID line
    rows: list[list[str]]
    line: int  # where the IMGID line (or the first orphan token line) stands
    error: VkelError | None = None  # the first malformed line of this tweet, if any


def read_tweets(path: str, columns: int) -> Iterator[Tweet]:
    """Stream tweets, malformed ones included: a tweet with a bad line (wrong column count, not UTF-8)
    carries that error, so the caller decides (fail or skip) and later tweets keep their place."""
    current: Tweet | None = None
    for lineno, raw, name in text_lines(path):
        where = f"{name}:{lineno}"
        try:
            line = decode_line(raw, lineno, name)
        except VkelError as err:
            if current is None:
                current = Tweet(None, [], lineno)
            current.error = current.error or err
            continue
        if line.startswith("IMGID:"):
            if current is not None:
                yield current
            current = Tweet(line[len("IMGID:"):].strip(), [], lineno)
            continue
        if not line.strip():
            continue
        if current is None:
            current = Tweet(None, [], lineno, VkelError("token line before the first IMGID: line", where))
            continue
        fields = line.split("\t")
        if len(fields) != columns:
            current.error = current.error or VkelError(
                f"expected {columns} tab-separated columns, found {len(fields)}: {line[:80]!r}", where)
            continue
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
