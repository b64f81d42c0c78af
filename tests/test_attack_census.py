"""The attack census (tests/attack/attack_census.py) against this tree: a handful of its cases, one per class
that needs no torch, must end handled or at worst `wrong`, never crashed, leaked, lost or hung; and the
judge itself must see each of those outcomes when they happen."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "attack"))

from attack_cases import CASES  # noqa: E402
from attack_harness import KEY, Context, Run, Shared  # noqa: E402

SAMPLE = [
    "data stats / entities: 5",
    "knowledge / duplicate id",
    "predict / span outside tokens",
    "JSONL with BOM+CRLF: vote",
    "XML box whose name matches no entity",
    "vote > /dev/full",
    "key at 13 offsets around the cut, skip, VKEL_DEBUG=1: stderr, stdout",
    "usage is prompt_tokens a string",
    "record image URL on 127.0.0.1 without opt-in (predict)",
    "SIGINT with 3 LLM calls in flight, -o",
]
BAD = ("crashed", "leaked", "lost", "hung")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return Shared(tmp_path_factory.mktemp("census-shared"), sys.executable, ROOT)


@pytest.mark.parametrize("name", SAMPLE)
def test_census_case_on_this_tree(name, shared, tmp_path):
    (case,) = [c for c in CASES if c.name == name]
    assert not case.heavy
    ctx = Context("after", ROOT, tmp_path / "case", shared)
    try:
        outcome, note = case.fn(ctx)
    finally:
        ctx.close()
    assert outcome not in BAD, f"{case.klass} / {name}: {outcome}: {note}"


def test_the_judge_sees_each_outcome(tmp_path, shared):
    ctx = Context("after", ROOT, tmp_path / "judge", shared)
    ok = Run(1, b'{"id": "r1"}\n{"id": "r3"}\n', "vkel: skipped (at in.jsonl:2): bad", 0.5, False)
    assert ctx.judge(ok, rc=(1,), good=["r1", "r3"], where=("in.jsonl:2",))[0] == "handled"
    assert ctx.judge(ok, rc=(1,), good=["r1", "r2", "r3"])[0] == "lost"
    assert ctx.judge(ok, rc=(1,), where=("in.jsonl:9",))[0] == "wrong"
    piece = KEY[5:13]  # any 8 characters of the key are a leak
    assert ctx.judge(Run(1, b"", f"vkel: error: bad key ...{piece}", 0.5, False), rc=(1,))[0] == "leaked"
    crash = Run(1, b"", "Traceback (most recent call last):\n  ...\nValueError: x", 0.5, False)
    assert ctx.judge(crash, rc=(1,))[0] == "crashed"
    assert ctx.judge(Run(-11, b"", "", 0.5, False))[0] == "crashed"
    assert ctx.judge(Run(None, b"", "", 30.0, True))[0] == "hung"
    assert ctx.judge(Run(0, b"", "", 9.0, False), deadline=5)[0] == "hung"
    ctx.write("cache/llm.sqlite", f"...{KEY}...")  # a leak into a file of the case counts too
    assert ctx.judge(Run(0, b"", "", 0.1, False))[0] == "leaked"
