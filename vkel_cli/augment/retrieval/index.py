"""Offline image sources: an index file mapping record ids (or queries) to images.

`local`: values are image files (relative paths are taken from the index file's folder) or URLs;
keys are record ids, else the exact query (sentence plus entities). For users' own image pools.
`urls`:  values are http(s) URLs; keys are record ids.

Index formats (by content, not by extension):
- TSV/text: `key<TAB>location[<TAB>location...]`, one or more lines per key (`#` lines are comments);
- JSONL: `{"id"|"query": key, "images"|"urls": [locations]}` per line;
- JSON: one object `{key: [locations]}`.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import orjson

from ...core.errors import VkelError
from ...fetch.images import is_url
from ...core.records import Record, source_name
from . import Retriever


def _is_entry(obj) -> bool:
    return isinstance(obj, dict) and ("id" in obj or "query" in obj) and any(
        k in obj for k in ("images", "urls", "url"))


def load_index(path: str) -> dict[str, list[str]]:
    name = source_name(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise VkelError(f"cannot open index: {err.strerror}", name) from None
    table: dict[str, list[str]] = defaultdict(list)
    if data.lstrip().startswith(b"{"):
        try:
            whole = json.loads(data)
        except json.JSONDecodeError:
            whole = None  # several JSON lines: JSONL, read below
        if isinstance(whole, dict) and not _is_entry(whole):
            for key, values in whole.items():
                table[str(key)].extend(_as_list(values, name))
            return dict(table)
    for lineno, raw in enumerate(data.splitlines(), 1):
        where = f"{name}:{lineno}"
        line = raw.decode("utf-8", "replace")
        if not line.strip() or line.startswith("#"):
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as err:
                raise VkelError(f"malformed JSON: {err}", where) from None
            if not _is_entry(obj):
                raise VkelError('expected {"id"|"query": key, "images"|"urls": [...]}', where)
            key = obj.get("id", obj.get("query"))
            table[str(key)].extend(_as_list(obj.get("images", obj.get("urls", obj.get("url"))), where))
        else:
            fields = line.split("\t")
            if len(fields) < 2 or not all(f.strip() for f in fields):
                raise VkelError(f"expected `key<TAB>image[<TAB>image...]`, found {line[:80]!r}", where)
            table[fields[0]].extend(f.strip() for f in fields[1:])
    return dict(table)


def _as_list(values, where: str) -> list[str]:
    values = [values] if isinstance(values, str) else values
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise VkelError("images must be a string or a list of strings", where)
    return values


class IndexRetriever(Retriever):
    def __init__(self, index_path: str, *, by_query: bool, urls_only: bool, name: str):
        self.name = name
        self.table = load_index(index_path)
        self.by_query = by_query
        base = os.path.dirname(os.path.abspath(index_path))
        if urls_only:
            for key, values in self.table.items():
                for value in values:
                    if not is_url(value):
                        raise VkelError(f"--retriever urls takes http(s) URLs only; {key!r} has {value[:80]!r}",
                                        source_name(index_path))
        else:  # relative image paths are relative to the index file, so an index travels with its pool
            self.table = {k: [v if is_url(v) or os.path.isabs(v) else os.path.join(base, v) for v in vs]
                          for k, vs in self.table.items()}

    def candidates(self, record: Record, query: str, n: int) -> list[str]:
        found = self.table.get(str(record.get("id")))
        if found is None and self.by_query:
            found = self.table.get(query)
        return list(found or [])[:n]


def _need_index(index: str | None, name: str) -> str:
    if not index:
        raise VkelError(f"--retriever {name} needs --index FILE")
    return index


def local_from_options(*, index: str | None = None, **_ignored) -> IndexRetriever:
    return IndexRetriever(_need_index(index, "local"), by_query=True, urls_only=False, name="local")


def urls_from_options(*, index: str | None = None, **_ignored) -> IndexRetriever:
    return IndexRetriever(_need_index(index, "urls"), by_query=False, urls_only=True, name="urls")
