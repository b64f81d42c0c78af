"""Generated text -> entity clauses: a small tokenizer of clauses and a clause grammar.

The trained answers are `Kevin Love is a(an) person; Cleveland is a(an) location.` (stage 1) and
`Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.448, 0.02, 0.913, 1.0)` (stage 2),
but real models also write preambles, lists, sentences and wrappers. How an answer is read:

1. Wrappers. `<think>…</think>` is dropped with its content (also when only `</think>` is generated, as
   when the chat template opens the block). When `<answer>` is present, only its content is the answer
   and other text is unparsed. Markdown emphasis (`**`, `__`, backticks) is removed.
2. Segments. The answer is cut at line breaks and at `;`, except a `;` inside a span that occurs in the
   tweet (`Fox &amp ; Fin Financial Group`). A list marker at the start of a line (`1.`, `2)`, `-`, `*`,
   `•`) is removed. A segment that only says there is no entity (`No entities found.`, `None`, ...) is
   skipped.
3. Clauses. In a segment, each clause head ` is ARTICLE TYPE` starts a clause; a new clause can thus
   begin after `,` or `.` (`A is a person, B is a location.`). The clause grammar:

       clause  := entity " is " article coarse [","] [" and " article fine] [box part]
       article := "a(an)" | "a (an)" | "a/an" | "an" | "a"                    (any case)
       type    := after a(an): any word, kept and noted when not in the hierarchy;
                  after a / an: a type of the hierarchy followed by a clause boundary, so that prose
                  ("he is a basketball player") and entities ("Life is a Game") are no clauses.
                  Types are read in any case, with ` ` or `-` for `_` (`Sports Team` -> sports_team).
       box part:= [","] ["whose" | "with"] "bounding box(es)" ["is" | "are"] (None | box {("," | "and") box})
       box     := "(" n, n, n, n ")" | "[" n, n, n, n "]"

4. Entities. The entity is the text between the previous clause (or the segment start) and ` is `,
   without leading separators (`,` `.` `:` `and`). When it does not occur in the tweet (token-aligned,
   ignoring case and whitespace), its longest word-aligned tail that does is the entity (the model's own
   spelling is kept) and the rest is unparsed; when no tail occurs, the text is kept and noted.
5. Boxes. A box is unusable when it is cut off, out of [0, 1], inverted or of zero area; it is noted, and
   an entity with no usable box gets `box_error` (its box matches no gold box, see score.py).

Text outside clauses that is more than separators is reported as unparsed; nothing raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..core import hierarchy

NUM = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE]-?\d+)?"
_ARTICLE = r"a\s*\(\s*an\s*\)|a\s*/\s*an|an|a"
_WORD = r"[^\W\d][\w-]*"


def _known_type_pattern() -> str:
    names = sorted(set(hierarchy.coarse_types()) | set(hierarchy.fine_types()), key=len, reverse=True)
    return "|".join(r"[\s_-]+".join(map(re.escape, name.split("_"))) for name in names)


_TYPE = rf"(?:(?:{_known_type_pattern()})\b|{_WORD})"
# What may follow a type written after a plain a / an for it to be a clause and not prose.
_BOUNDARY = re.compile(r"\s*(?:$|[,.;:!?)\]]|and\b|whose\b|with\b|\()", re.I)
_HEAD = re.compile(rf"\s+is\s+(?P<article>{_ARTICLE})\s+(?P<type>{_TYPE})", re.I)
_FINE = re.compile(rf"\s*,?\s*and\s+(?P<article>{_ARTICLE})\s+(?P<type>{_TYPE})", re.I)
_BOX_INTRO = re.compile(r"\s*,?\s*(?:whose\s+|with\s+)?(?:its\s+|the\s+)?bounding\s+box(?:es)?\s*(?:is|are)?\s*:?\s*",
                        re.I)
_NONE = re.compile(r"(?:none|null|n/a)\b", re.I)
_FULL_BOX = re.compile(rf"[(\[]\s*({NUM})\s*,\s*({NUM})\s*,\s*({NUM})\s*,\s*({NUM})\s*[)\]]")
_CUT_BOX = re.compile(rf"(?:[(\[]\s*(?:{NUM}\s*,?\s*){{0,4}})?\s*$")
_NEXT_BOX = re.compile(r"\s*(?:,|and|&)?\s*(?=[(\[])", re.I)
_LIST_MARKER = re.compile(r"^\s*(?:\(?\d{1,3}[.)]|[-*•·–+])\s+")
_LEADING_SEPARATORS = re.compile(r"^[\s,.;:]*(?:(?:and|&)\s+)?", re.I)
_SEPARATOR = re.compile(r"[\s,.;:!]*(?:(?:and|&)[\s,.;:!]*)?", re.I)
_NO_ENTITY = re.compile(
    r"(?:there\s+(?:are|is)\s+)?no\s+(?:named\s+)?entit(?:y|ies)(?:\s+(?:were\s+|was\s+)?(?:found|mentioned|detected))?"
    r"(?:\s+in\s+(?:the|this)\s+tweet)?|none(?:\s+found)?|n/a", re.I)
_MARKDOWN = re.compile(r"\*\*|__|`")
_QUOTES = "\"'“”‘’*"
_PLAIN_ARTICLES = ("a", "an")
_WINDOW = 200


@dataclass
class Clause:
    """One clause as read: entity text, types, usable normalized boxes, and why it has no usable box."""

    text: str
    coarse: str
    fine: str | None = None
    boxes: list[list[float]] = field(default_factory=list)
    box_error: str | None = None


@dataclass
class Reading:
    clauses: list[Clause] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Tweet:
    """The tweet's text for containment tests: token-aligned, ignoring case and whitespace."""

    def __init__(self, tokens: Sequence[str]):
        parts = ["".join(str(t).casefold().split()) for t in tokens]
        self.joined = "".join(parts)
        self.starts, self.ends, offset = set(), set(), 0
        for part in parts:
            if part:
                self.starts.add(offset)
                offset += len(part)
                self.ends.add(offset)

    def contains(self, text: str) -> bool:
        key = "".join(text.casefold().split())
        if not key:
            return False
        at = self.joined.find(key)
        while at >= 0:
            if at in self.starts and at + len(key) in self.ends:
                return True
            at = self.joined.find(key, at + 1)
        return False


def type_name(word: str) -> str:
    return re.sub(r"[\s-]+", "_", word.strip()).lower()


def _fragment(text: str) -> str:
    """What is reported of leftover text: without the separators around it ("" when nothing is left)."""
    return text.strip().lstrip(",.;:").strip().rstrip(",;").strip()


def _is_separator(text: str) -> bool:
    return bool(_SEPARATOR.fullmatch(text))


# ---------------------------------------------------------------------------------- step 1: wrappers


def unwrap(raw: str, reading: Reading) -> str:
    """The answer part of a generation: <think> dropped, <answer> content kept (the rest unparsed)."""
    text = re.sub(r"<think>.*?</think>", "\n", raw, flags=re.S | re.I)
    if re.search(r"</think>", text, re.I):  # the block was opened by the chat template
        text = re.split(r"</think>", text, flags=re.I)[-1]
    if re.search(r"<think>", text, re.I):
        text = re.split(r"<think>", text, flags=re.I)[0]
        if not text.strip():
            reading.notes.append("the answer ends inside <think>: no answer")
    if re.search(r"<answer>", text, re.I):
        inside, outside = [], []
        for i, part in enumerate(re.split(r"</?answer>", text, flags=re.I)):
            (inside if i % 2 else outside).append(part)
        reading.unparsed.extend(f for f in (_fragment(p) for p in outside) if f)
        text = "\n".join(inside)
    return _MARKDOWN.sub("", text)


# ---------------------------------------------------------------------------------- step 2: segments


def _protected(line: str, at: int, tweet: Tweet | None) -> bool:
    """Is the `;` at `at` inside a span of the tweet (`&amp ; Fin`)? Judged by the words around it."""
    if tweet is None:
        return False
    # A window around the `;` keeps this linear in long answers; the adjacent words are all it needs.
    before, after = line[max(0, at - _WINDOW):at].split(), line[at + 1:at + 1 + _WINDOW].split()
    return bool(before and after) and tweet.contains(before[-1] + ";" + after[0])


def segments(answer: str, tweet: Tweet | None) -> list[str]:
    found = []
    for line in answer.splitlines():
        line = _LIST_MARKER.sub("", line, count=1)
        start = 0
        for match in re.finditer(";", line):
            if not _protected(line, match.start(), tweet):
                found.append(line[start:match.start()])
                start = match.end()
        found.append(line[start:])
    return [s for s in found if s.strip()]


def is_no_entity(segment: str) -> bool:
    return bool(_NO_ENTITY.fullmatch(" ".join(segment.split()).strip(" .!")))


# ---------------------------------------------------------------------------------- step 3: clauses


def _type_ok(match: re.Match, text: str, known: set[str]) -> bool:
    """After a(an) any word is a type; after a plain a / an only a known type ending the clause."""
    if re.sub(r"\s", "", match["article"]).lower() not in _PLAIN_ARTICLES:
        return True
    return type_name(match["type"]) in known and bool(_BOUNDARY.match(text, match.end()))


def _next_head(segment: str, pos: int, known: set[str]) -> re.Match | None:
    while True:
        match = _HEAD.search(segment, pos)
        if match is None or _type_ok(match, segment, known):
            return match
        pos = match.start() + 1


def _entity(prefix: str, tweet: Tweet | None, reading: Reading) -> str | None:
    """The entity in the text before ` is `: its longest tail that occurs in the tweet (see module doc)."""
    text = _LEADING_SEPARATORS.sub("", prefix, count=1).strip()
    if not text:
        return None
    if tweet is None:
        return text
    words = list(re.finditer(r"\S+", text))
    lengths = [len(w.group()) for w in words]
    remaining = sum(lengths)  # non-space characters of the tail that starts at this word
    for word, length in zip(words, lengths):
        # A tail longer than the tweet cannot occur in it (quotes aside), and long prose stays linear.
        too_long = remaining > len(tweet.joined) + 8
        remaining -= length
        if too_long:
            continue
        tail = text[word.start():]
        for candidate in (tail, tail.strip(_QUOTES)):
            if tweet.contains(candidate):
                rest = _fragment(text[:word.start()])
                if rest and not _is_separator(rest):
                    reading.unparsed.append(rest)
                return candidate
    reading.notes.append(f"entity {text!r} does not occur in the tweet")
    return text


def _box_problem(box: list[float]) -> str | None:
    if not all(0.0 <= v <= 1.0 for v in box):
        return "out of range"
    if box[0] > box[2] or box[1] > box[3]:
        return "inverted"
    if box[0] == box[2] or box[1] == box[3]:
        return "zero area"
    return None


def _box_part(segment: str, pos: int, clause: Clause, reading: Reading) -> int:
    """Read the box part at `pos` into `clause`; returns where the clause ends."""
    intro = _BOX_INTRO.match(segment, pos)
    if intro and (none := _NONE.match(segment, intro.end())):
        return none.end()
    problems, at = [], intro.end() if intro else pos
    while intro:
        full = _FULL_BOX.match(segment, at)
        if full is None:
            if _CUT_BOX.match(segment, at):  # the generation ends inside the box part
                problems.append(("cut off", segment[at:].strip()))
                at = len(segment)
            break
        box = [float(v) for v in full.groups()]
        problem = _box_problem(box)
        if problem:
            problems.append((problem, full.group(0)))
        else:
            clause.boxes.append(box)
        at = full.end()
        next_box = _NEXT_BOX.match(segment, at)
        if next_box is None:
            break
        at = next_box.end()
    if not clause.boxes and not problems:  # no box part, or one that says nothing readable
        clause.box_error = "no box"
        reading.notes.append(f"no bounding-box part for {clause.text!r}")
        return pos
    for problem, box_text in problems:
        reading.notes.append(f"unusable box for {clause.text!r} ({problem})" + (f": {box_text}" if box_text else ""))
    if not clause.boxes:
        clause.box_error = problems[0][0]
    return at


def read_segment(segment: str, stage: int, tweet: Tweet | None, known: set[str], reading: Reading) -> None:
    start = pos = 0
    while (head := _next_head(segment, pos, known)) is not None:
        text = _entity(segment[start:head.start()], tweet, reading)
        if text is None:  # ` is a(an) person` with nothing before it
            pos = head.end()
            continue
        clause = Clause(text=text, coarse=type_name(head["type"]))
        end = head.end()
        if stage == 2:
            fine = _FINE.match(segment, end)
            if fine and _type_ok(fine, segment, known):
                clause.fine, end = type_name(fine["type"]), fine.end()
            end = _box_part(segment, end, clause, reading)
        reading.clauses.append(clause)
        start = pos = end
    rest = _fragment(segment[start:])
    if rest and not _is_separator(rest):
        reading.unparsed.append(rest)


def read(raw: str, stage: int, tokens: Sequence[str] | None = None) -> Reading:
    """The clauses of a generated answer, what could not be used, and notes on what was guessed."""
    reading = Reading()
    answer = unwrap(raw or "", reading)
    tweet = Tweet(tokens) if tokens else None
    known = set(hierarchy.coarse_types()) | set(hierarchy.fine_types())
    said_none = False
    for segment in segments(answer, tweet):
        if is_no_entity(segment):
            said_none = True
            continue
        read_segment(segment, stage, tweet, known, reading)
    if said_none and reading.clauses:
        reading.notes.append("says there is no entity and also lists entities")
    if not said_none and not reading.clauses and not reading.unparsed and not reading.notes:
        reading.notes.append("empty answer")
    return reading


def as_items(reading: Reading, stage: int) -> list[dict[str, Any]]:
    items = []
    for clause in reading.clauses:
        item: dict[str, Any] = {"text": clause.text, "coarse": clause.coarse}
        if stage == 2:
            item["fine"] = clause.fine
            item["boxes"] = clause.boxes
            if clause.box_error:
                item["box_error"] = clause.box_error
        items.append(item)
    return items
