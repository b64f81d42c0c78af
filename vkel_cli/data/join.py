"""Putting other systems' predictions beside the gold records: by order (one item per gold record) or by
id. A malformed gold line or prediction item is an error of that one record (`--on-error`): by order it
still consumes its partner, so the records after it stay aligned; a gold record whose prediction could
not be read is written with `meta.errors.import` and no `predictions`, so its gold still counts."""

from __future__ import annotations

from itertools import zip_longest
from typing import Any, Callable, Iterable, Iterator

from ..core.errors import ErrorPolicy, Location, VkelError
from ..core.records import Record, iter_nonblank, parse_record, source_name

# An item read from a prediction file: its value, or the error that made it unreadable, and where it stood.
Item = tuple[Any, str]


def gold_records(gold: str) -> Iterator[tuple[Record | VkelError, str]]:
    """Every non-blank gold line as a record, or as the error that it is not one."""
    for where, line in iter_nonblank(gold):
        try:
            yield parse_record(line, where), str(where)
        except VkelError as err:
            yield err, str(where)


def _meta(record: Record) -> dict[str, Any]:
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    record["meta"] = meta
    return meta


def mark_failed(record: Record, err: VkelError) -> Record:
    _meta(record).setdefault("errors", {})["import"] = str(err)
    return record


def set_generation(record: Record, note: dict[str, Any]) -> None:
    """meta.generation.stage2 = {raw, source, unparsed?, notes?}: what the other system said, where, and
    what could not be used (the same place `vkel predict` keeps its parse notes)."""
    _meta(record).setdefault("generation", {})["stage2"] = note


def join_by_order(items: Iterable[Item], path: str, gold: str, policy: ErrorPolicy, what: str,
                  attach: Callable[[Record, Any, str], None]) -> Iterator[Record]:
    """Pair the n-th item with the n-th gold record; a count mismatch stops the run (it means the files do
    not belong together, and every pair after the first extra one would be wrong)."""
    for pair in zip_longest(items, gold_records(gold)):
        item, record = pair
        if record is None:
            raise VkelError(f"more {what} than gold records in {source_name(gold)}", item[1])
        if item is None:
            raise VkelError(f"fewer {what} in {source_name(path)} than gold records", record[1])
        (value, item_where), (record, gold_where) = item, record
        if isinstance(record, VkelError):
            policy.handle(record)
            continue
        if isinstance(value, VkelError):
            policy.handle(value)
            yield mark_failed(record, value)
            continue
        try:
            attach(record, value, item_where)
        except VkelError as err:
            policy.handle(err.at(item_where))
            yield mark_failed(record, err)
            continue
        yield record


def join_by_id(groups: dict[str, list], path: str, gold: str, policy: ErrorPolicy,
               attach: Callable[[Record, list], None], first_line: dict[str, Location]) -> Iterator[Record]:
    """Gold records in gold order, each with the items grouped under its id (none: an empty list). Items
    whose id has no gold record are errors, reported once the gold has been read."""
    seen: set[str] = set()
    for record, where in gold_records(gold):
        if isinstance(record, VkelError):
            policy.handle(record)
            continue
        if record["id"] in seen:
            policy.handle(VkelError(f"gold id {record['id']!r} repeats an earlier record", where))
            continue
        seen.add(record["id"])
        attach(record, groups.get(record["id"], []))
        yield record
    for key in sorted(groups.keys() - seen, key=lambda k: first_line[k].line):
        policy.handle(VkelError(f"{len(groups[key])} prediction line(s) for {key!r}, which is not an id in "
                                f"{source_name(gold)}", str(first_line[key])))
