"""FIGER-style text-only fine-grained NER -> records (the text half of `vkel augment`'s stage-1 data).

Two input formats, told apart by the first non-blank line:
- CoNLL: `token<TAB>O` / `token<TAB>B-/type/sub,/type` / `I-...`, a blank line between sentences
  (FIGER(GOLD) `exp.label`);
- JSONL: one object per line with `tokens` and `entities` (or FIGER's `mentions`), each span having
  `start`, `end` and its FIGER types in `types` (or `labels`).

FIGER types are mapped to the benchmark's 8 coarse types and, where one fits, to one of its 51 fine types
by a JSON type map (shipped: resources/figer_type_map.json). Mentions with no mapped type, sentences with
no mapped mention, and sentences longer than `max_tokens` are dropped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Iterator


from ..core import hierarchy
from ..core.errors import ErrorPolicy, VkelError
from ..core.records import Record, entity_text, iter_lines, iter_nonblank, load_object, source_name, strip_bom
from .text import decode_line, text_lines

TypeMap = dict[str, "tuple[str, str | None] | None"]


def load_type_map(path: str | None = None) -> TypeMap:
    """FIGER type -> (coarse, fine or None), or None for types that map to nothing.

    The file is a JSON object, either flat or under "types"; each value is null, a coarse type name,
    or {"coarse": ..., "fine": ...}. Unknown coarse/fine names are errors naming the file and key."""
    if path is None:
        text = resources.files("vkel_cli.resources").joinpath("figer_type_map.json").read_text("utf-8")
        name = "figer_type_map.json"
    else:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as err:
            raise VkelError(f"cannot read type map: {err.strerror}", path) from None
        name = path
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise VkelError(f"type map is not valid JSON: {err}", name) from None
    table = data.get("types", data) if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise VkelError("type map must be a JSON object of FIGER type -> mapping", name)
    coarse_types = set(hierarchy.coarse_types())
    result: TypeMap = {}
    for figer_type, value in table.items():
        if figer_type.startswith("_"):  # comments
            continue
        where = f"{name}: {figer_type!r}"
        if value is None:
            result[figer_type] = None
            continue
        if isinstance(value, str):
            value = {"coarse": value, "fine": None}
        if not isinstance(value, dict):
            raise VkelError("a mapping must be null, a coarse type, or {coarse, fine}", where)
        coarse, fine = value.get("coarse"), value.get("fine")
        if coarse not in coarse_types:
            raise VkelError(f"unknown coarse type {coarse!r} (known: {', '.join(sorted(coarse_types))})", where)
        if fine is not None and hierarchy.coarse_of(fine) != coarse:
            raise VkelError(f"{fine!r} is not a fine type of {coarse!r}", where)
        result[figer_type] = (coarse, fine)
    return result


def map_types(types: list[str], type_map: TypeMap) -> tuple[str, str | None] | None:
    """The mapping for a mention carrying several FIGER types: the most specific type that has a fine
    type wins (deepest path, then first listed); else the first type that maps to a coarse type."""
    mapped = [(type_map[t], t) for t in types if type_map.get(t)]
    if not mapped:
        return None
    with_fine = [(m, t) for m, t in mapped if m[1] is not None]
    if with_fine:
        return max(with_fine, key=lambda pair: pair[1].count("/"))[0]  # max keeps the first of equals
    return mapped[0][0]


@dataclass
class Sentence:
    tokens: list[str]
    mentions: list[tuple[int, int, list[str]]]  # (start, end, FIGER types)
    where: str  # file:line of its first line
    id: str | None = None
    number: int = 0  # its place in the input, broken sentences included, so ids never shift


@dataclass
class ImportCounts:
    sentences: int = 0
    written: int = 0
    too_long: int = 0
    no_mapped_mention: int = 0
    mentions: int = 0
    mentions_unmapped: int = 0
    unmapped_types: Counter = field(default_factory=Counter)
    by_coarse: Counter = field(default_factory=Counter)

    def summary(self, max_tokens: int) -> str:
        top = ", ".join(f"{t} {n}" for t, n in self.unmapped_types.most_common(6)) or "none"
        return (f"figer: {self.sentences} sentences read, {self.written} written; dropped {self.too_long} longer "
                f"than {max_tokens} tokens, {self.no_mapped_mention} with no mapped mention. Mentions in kept-length "
                f"sentences: {self.mentions}, dropped {self.mentions_unmapped} with no mapped type "
                f"(most frequent unmapped: {top})")


def _split_label(label: str, where: str) -> tuple[str, list[str]]:
    if label == "O":
        return "O", []
    if label[:2] in ("B-", "I-") and len(label) > 2:
        types = [t.strip() for t in label[2:].split(",") if t.strip()]
        if types:
            return label[0], types
    raise VkelError(f"label must be O, B-/types or I-/types, found {label[:80]!r}", where)


def read_conll(path: str, policy: ErrorPolicy) -> Iterator[Sentence]:
    name = source_name(path)
    tokens: list[str] = []
    mentions: list[list] = []
    first = 0
    number = 0
    bad = False  # the current sentence had a malformed line (skip mode drops it whole)

    def flush():
        nonlocal number
        if tokens or bad:
            number += 1
        if tokens and not bad:
            yield Sentence(list(tokens), [(s, e, t) for s, e, t in mentions], f"{name}:{first}", number=number)

    for lineno, raw, _ in text_lines(path):
        where = f"{name}:{lineno}"
        try:
            line = decode_line(raw, lineno, name)
        except VkelError as err:
            policy.handle(err)
            bad = True
            continue
        if not line.strip():
            yield from flush()
            tokens, mentions, bad = [], [], False
            continue
        try:
            fields = line.split("\t")
            # FIGER(GOLD) has a few lines with a trailing tab: extra empty columns are tolerated.
            if len(fields) < 2 or any(f.strip() for f in fields[2:]) or not fields[0]:
                raise VkelError(f"expected `token<TAB>label`, found {line[:80]!r}", where)
            tag, types = _split_label(fields[1].strip(), where)
        except VkelError as err:
            policy.handle(err)
            bad = True
            continue
        if not tokens:
            first = lineno
        position = len(tokens)
        tokens.append(fields[0])
        if tag == "B" or (tag == "I" and not (mentions and mentions[-1][1] == position
                                              and mentions[-1][2] == types)):
            mentions.append([position, position + 1, types])  # an I- that continues nothing starts a mention
        elif tag == "I":
            mentions[-1][1] = position + 1
    yield from flush()


def read_jsonl(path: str, policy: ErrorPolicy) -> Iterator[Sentence]:
    for number, (where, raw) in enumerate(iter_nonblank(path), 1):
        try:
            sentence = _sentence_from_json(raw, str(where))
        except VkelError as err:
            policy.handle(err)
            continue
        sentence.number = number
        yield sentence


def _sentence_from_json(raw: bytes, where: str) -> Sentence:
    obj = load_object(raw, where)
    tokens = obj.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise VkelError("expected an object with `tokens` (a list of strings)", where)
    spans = obj.get("entities", obj.get("mentions")) or []
    mentions = []
    for i, span in enumerate(spans):
        types = span.get("types", span.get("labels")) if isinstance(span, dict) else None
        if isinstance(types, str):
            types = [types]
        start, end = (span.get("start"), span.get("end")) if isinstance(span, dict) else (None, None)
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(tokens)):
            raise VkelError(f"entities[{i}] needs integer start < end within the {len(tokens)} tokens", where)
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise VkelError(f"entities[{i}] needs its FIGER `types` (a list of strings)", where)
        mentions.append((start, end, types))
    sid = obj.get("id")
    return Sentence(tokens, mentions, where, str(sid) if sid is not None else None)


def _looks_like_jsonl(path: str) -> bool:
    lines = iter_lines(path)
    try:
        for _, raw in lines:
            if raw.strip():
                return raw.lstrip().startswith(b"{")
        return False
    finally:
        lines.close()


def import_figer(path: str, type_map: TypeMap, *, max_tokens: int = 26, id_prefix: str = "figer",
                 policy: ErrorPolicy | None = None, counts: ImportCounts | None = None) -> Iterator[Record]:
    """Stream records from a FIGER file; `counts` (if given) is filled in as records are produced."""
    policy = policy or ErrorPolicy("fail")
    counts = counts if counts is not None else ImportCounts()
    # Sniffing reads the first line of a file; stdin cannot be re-read, so it is taken as CoNLL unless
    # its first byte says otherwise (peeked, not consumed).
    if path == "-":
        import sys

        jsonl = strip_bom(sys.stdin.buffer.peek(4)[:4], 1)[:1] == b"{"
    else:
        jsonl = _looks_like_jsonl(path)
    sentences = read_jsonl(path, policy) if jsonl else read_conll(path, policy)
    for sentence in sentences:
        counts.sentences += 1
        if len(sentence.tokens) > max_tokens:
            counts.too_long += 1
            continue
        entities = []
        for start, end, types in sentence.mentions:
            counts.mentions += 1
            mapped = map_types(types, type_map)
            if mapped is None:
                counts.mentions_unmapped += 1
                counts.unmapped_types.update(types)
                continue
            coarse, fine = mapped
            entities.append({"text": entity_text(sentence.tokens, start, end), "start": start, "end": end,
                             "coarse": coarse, "fine": fine, "boxes": []})
        if not entities:
            counts.no_mapped_mention += 1
            continue
        counts.written += 1
        counts.by_coarse.update(e["coarse"] for e in entities)
        yield {"id": sentence.id or f"{id_prefix}-{sentence.number}", "tokens": sentence.tokens, "image": None,
               "image_size": None, "entities": entities,
               "meta": {"source": "figer", "origin": sentence.where}}
