"""The cases of the attack census: records, importers, streams (this file); secrets, network, signals and
training (attack_cases_net.py). Each case gets a Context (its own directory, the tree's CLI under a hard
timeout) and returns (outcome, note) from Context.judge."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Callable

from attack_harness import Context, good, jsonl, write_images


@dataclass
class Case:
    klass: str
    name: str
    fn: Callable[[Context], tuple[str, str]]
    heavy: bool = False  # starts torch (~20-40 s)


CASES: list[Case] = []


def case(klass: str, name: str, heavy: bool = False):
    def register(fn):
        CASES.append(Case(klass, name, fn, heavy))
        return fn
    return register


def llm_server(ctx: Context, **kw):
    from openai_server import OpenAIServer, knowledge_answer

    kw.setdefault("answer", knowledge_answer)
    return ctx.server(OpenAIServer(**kw))


# -- wrong field types, through every stage that reads records ---------------------------------------------
def _bad(kind: str) -> dict:
    r = good(2)
    if kind == "entities: 5":
        r["entities"] = 5
    elif kind == "image: 123":
        r["image"] = 123
    elif kind == "stage1: 5":
        r["stage1"] = 5
    elif kind == 'knowledge: "x"':
        r["knowledge"] = "x"
    elif kind == "image_size: [0, 0]":
        r["image_size"] = [0, 0]
    elif kind == "box of 3 numbers":
        r["entities"][0]["boxes"] = [[1, 2, 3]]
    elif kind == "inverted box":
        r["entities"][0]["boxes"] = [[30, 40, 1, 1]]
    elif kind == "span outside tokens":
        r["entities"][0].update(start=3, end=9)
    elif kind == "duplicate id":
        r["id"] = "r1"
    return r


KINDS = ["entities: 5", "image: 123", "stage1: 5", 'knowledge: "x"', "image_size: [0, 0]", "box of 3 numbers",
         "inverted box", "span outside tokens", "duplicate id"]


def _stream_with(ctx: Context, kind: str) -> str:
    write_images(ctx.dir, ["img.jpg"])
    ctx.write("in.jsonl", jsonl([good(1), _bad(kind), good(3)]))
    ctx.write("gold.jsonl", jsonl([good(1), good(2), good(3)]))
    return "in.jsonl"


WHERE = ("in.jsonl:2", "record 'r2'", "line 2")


def _wrong_type_case(command: str, kind: str):
    def run(ctx: Context):
        src = _stream_with(ctx, kind)
        if command == "data stats":
            r = ctx.vkel("data", "stats", "--on-error", "skip", src)
            stats = (r.records() or [{}])[0]
            if r.rc == 0 and not r.timed_out and "Traceback" not in r.err and stats.get("tweets") == 3:
                return ctx.judge(r, wrong=f"accepted silently (tweets {stats.get('tweets')}, rc 0)")
            lost = None if stats.get("tweets", 0) >= 2 or r.rc not in (0, 1) else f"stats: {stats}"
            return ctx.judge(r, rc=(1,), where=WHERE, lost=lost)
        if command == "score":
            r = ctx.vkel("score", "-q", "--on-error", "skip", "--gold", "gold.jsonl", src)
            rows = [x for x in r.records() if x.get("task") == "FMNER"]
            tp = rows[0].get("tp") if rows else None
            lost = None if (tp or 0) >= 2 or r.rc not in (0, 1) else f"FMNER tp {tp} (2 good predictions)"
            if r.rc == 0 and not lost and "Traceback" not in r.err:
                return ctx.judge(r, wrong=f"accepted silently (tp {tp}, rc 0)")
            return ctx.judge(r, rc=(1,), where=WHERE, lost=lost)
        if command == "knowledge":
            server = llm_server(ctx)
            r = ctx.vkel("knowledge", "--on-error", "skip", "--llm", f"m={server.url},model=m,retries=0", src)
        elif command == "vote":
            r = ctx.vkel("vote", "--method", "majority", "--on-error", "skip", src)
        else:  # predict through an OpenAI-compatible server: cheap, and the same reader as the local engine
            server = llm_server(ctx, answer=lambda req: "Kevin Love <person>")
            r = ctx.vkel("predict", "--stage", "1", "--engine", "openai", "--base-url", server.url,
                         "--served-model", "m", "--image-root", ".", "--on-error", "skip", src)
        good_ids = ["r1", "r3"]
        if r.rc == 0 and [i for i in r.ids() if i in good_ids] == good_ids and "Traceback" not in r.err:
            return ctx.judge(r, good=good_ids, wrong="accepted silently (rc 0, no error reported)")
        return ctx.judge(r, good=good_ids, rc=(1,), where=WHERE)
    return run


for _command in ("data stats", "score", "knowledge", "vote", "predict"):
    for _kind in KINDS:
        case("wrong field types", f"{_command} / {_kind}")(_wrong_type_case(_command, _kind))


@case("wrong field types", "predict --engine local (tiny llava) / all 9 kinds in one stream", heavy=True)
def predict_local_all(ctx: Context):
    model = ctx.shared.tiny("llava")
    write_images(ctx.dir, ["img.jpg"])
    records, good_ids = [], []
    for n, kind in enumerate(KINDS):
        bad = _bad(kind)
        if kind != "duplicate id":
            bad["id"] = f"bad{n}"
        ok = good(100 + n)
        records += [ok, bad]
        good_ids.append(ok["id"])
        if kind == "duplicate id":
            bad["id"] = ok["id"]
    ctx.write("in.jsonl", jsonl(records))
    r = ctx.vkel("predict", "--stage", "1", "--model", model, "--backbone", "llava", "--device", "cpu",
                 "--max-new-tokens", "4", "--batch-size", "4", "--image-root", ".", "--on-error", "skip", "in.jsonl",
                 timeout=240)
    reported = sum(f"in.jsonl:{2 * (n + 1)}" in r.err or f"'bad{n}'" in r.err for n in range(len(KINDS)))
    wrong = None if reported == len(KINDS) else f"{reported} of {len(KINDS)} bad records reported; rc {r.rc}"
    return ctx.judge(r, good=good_ids, rc=(1,), wrong=wrong)


@case("wrong field types", "detect --backend rtdetr (tiny) / all 9 kinds in one stream", heavy=True)
def detect_all(ctx: Context):
    model = ctx.shared.rtdetr()
    write_images(ctx.dir, ["img.jpg"])
    records, good_ids = [], []
    for n, kind in enumerate(KINDS):
        ok, bad = good(100 + n), _bad(kind)
        bad["id"] = ok["id"] if kind == "duplicate id" else f"bad{n}"
        records += [ok, bad]
        good_ids.append(ok["id"])
    ctx.write("in.jsonl", jsonl(records))
    r = ctx.vkel("detect", "--backend", "rtdetr", "--model", model, "--device", "cpu", "--image-root", ".",
                 "--on-error", "skip", "in.jsonl", timeout=240)
    reported = sum(f"in.jsonl:{2 * (n + 1)}" in r.err or f"'bad{n}'" in r.err for n in range(len(KINDS)))
    wrong = None if reported == len(KINDS) else f"{reported} of {len(KINDS)} bad records reported; rc {r.rc}"
    return ctx.judge(r, good=good_ids, rc=(1,), wrong=wrong)


# -- byte order marks and CRLF ---------------------------------------------------------------------------
BOM = "\ufeff"


def _crlf(text: str) -> bytes:
    return (BOM + text.replace("\n", "\r\n")).encode()


@case("BOM and CRLF", "JSONL with BOM+CRLF: data stats")
def bom_stats(ctx: Context):
    ctx.write("in.jsonl", _crlf(jsonl([good(1), good(2)])))
    r = ctx.vkel("data", "stats", "in.jsonl")
    stats = (r.records() or [{}])[0]
    return ctx.judge(r, rc=(0,), lost=None if stats.get("tweets") == 2 else f"stats {stats}")


@case("BOM and CRLF", "JSONL with BOM+CRLF: vote")
def bom_vote(ctx: Context):
    ctx.write("in.jsonl", _crlf(jsonl([good(1), good(2)])))
    return ctx.judge(ctx.vkel("vote", "--method", "majority", "in.jsonl"), rc=(0,), good=["r1", "r2"])


@case("BOM and CRLF", "JSONL with BOM+CRLF: score --gold (both files)")
def bom_score(ctx: Context):
    ctx.write("gold.jsonl", _crlf(jsonl([good(1), good(2)])))
    ctx.write("in.jsonl", _crlf(jsonl([good(1), good(2)])))
    r = ctx.vkel("score", "-q", "--gold", "gold.jsonl", "in.jsonl")
    rows = [x for x in r.records() if x.get("task") == "FMNER"]
    return ctx.judge(r, rc=(0,), lost=None if rows and rows[0].get("tp") == 2 else f"rows {rows}")


@case("BOM and CRLF", "JSONL with BOM+CRLF on stdin: knowledge")
def bom_knowledge(ctx: Context):
    server = llm_server(ctx)
    r = ctx.vkel("knowledge", "--llm", f"m={server.url},model=m,retries=0", stdin=_crlf(jsonl([good(1), good(2)])))
    return ctx.judge(r, rc=(0,), good=["r1", "r2"])


def _fmnerg_files(ctx: Context, transform=lambda text: text.encode()):
    from pathlib import Path

    mini = Path(__file__).resolve().parent.parent / "fixtures" / "mini"
    ctx.write("fmnerg.txt", transform((mini / "fmnerg.txt").read_text()))
    for xml in (mini / "xml").iterdir():
        ctx.write(f"xml/{xml.name}", transform(xml.read_text()))


@case("BOM and CRLF", "CoNLL + XML with BOM+CRLF: data import fmnerg")
def bom_fmnerg(ctx: Context):
    _fmnerg_files(ctx, _crlf)
    r = ctx.vkel("data", "import", "fmnerg", "fmnerg.txt", "--xml-dir", "xml")
    recs = {x["id"]: x for x in r.records()}
    boxes = sum(len(e.get("boxes") or []) for e in (recs.get("101") or {}).get("entities", []))
    lost = None if boxes == 3 and len(recs) >= 3 else f"records {sorted(recs)}, boxes of 101: {boxes} (3 in the XML)"
    return ctx.judge(r, rc=(0,), lost=lost)


@case("BOM and CRLF", "FIGER CoNLL with BOM+CRLF: data import figer")
def bom_figer(ctx: Context):
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "fixtures" / "figer_sample.label").read_text()
    ctx.write("plain.label", text)
    ctx.write("bom.label", _crlf(text))
    plain = ctx.vkel("data", "import", "figer", "plain.label")
    r = ctx.vkel("data", "import", "figer", "bom.label")
    ids, plain_ids = r.ids(), plain.ids()
    lost = None if ids == plain_ids else f"ids {ids} vs {plain_ids} without the BOM"
    strip = [[{k: v for k, v in x.items() if k != "meta"} for x in run.records()] for run in (r, plain)]
    wrong = None if strip[0] == strip[1] else "the BOM (or a CR) is kept inside a token"
    return ctx.judge([r], rc=(0,), lost=lost, wrong=wrong)


# -- importer faults ---------------------------------------------------------------------------------------
def _import(ctx: Context, *args):
    """`data import ... --on-error skip`; a tree whose importers lack --on-error runs them in their only
    (fail) mode instead, so the fault itself is still tried."""
    r = ctx.vkel("data", "import", *args, "--on-error", "skip")
    if r.rc == 2 and "--on-error" in r.err:
        ctx.runs.pop()
        r = ctx.vkel("data", "import", *args)
        r.err += "\n(census: this tree's importer has no --on-error; ran in fail mode)"
    return r


@case("importer faults", "XML box whose name matches no entity")
def xml_orphan_box(ctx: Context):
    _fmnerg_files(ctx)
    xml = (ctx.dir / "xml" / "101.xml").read_text().replace("<name>Kevin Love</name>", "<name>Kevin Lov</name>")
    ctx.write("xml/101.xml", xml)
    r = _import(ctx, "fmnerg", "fmnerg.txt", "--xml-dir", "xml")
    if r.rc == 0 and "Kevin Lov" not in r.err:
        return ctx.judge(r, lost="the box of 'Kevin Lov' dropped silently (exit 0, nothing on stderr)")
    return ctx.judge(r, rc=(1,), where=("101.xml", "'101'"))


@case("importer faults", "no --xml-dir: boxes absent, said on stderr")
def no_xml_dir(ctx: Context):
    _fmnerg_files(ctx)
    r = ctx.vkel("data", "import", "fmnerg", "fmnerg.txt")
    return ctx.judge(r, rc=(0,), where=("xml-dir", "xml dir", "no box"))


@case("importer faults", "fine type outside the hierarchy, --on-error skip")
def type_outside(ctx: Context):
    _fmnerg_files(ctx)
    text = (ctx.dir / "fmnerg.txt").read_text().replace("B-city", "B-wizard", 1)
    ctx.write("fmnerg.txt", text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "B-wizard" in t)
    r = _import(ctx, "fmnerg", "fmnerg.txt", "--xml-dir", "xml")
    ids = r.ids()
    if r.rc == 0 and "wizard" not in r.err:
        return ctx.judge(r, wrong="type 'wizard' accepted or dropped silently (exit 0)")
    lost = None if {"102", "103"} <= set(ids) else f"other tweets lost: out {ids}"
    return ctx.judge(r, rc=(1,), where=(f"fmnerg.txt:{line}", "fmnerg.txt:1)"), lost=lost)  # the token or its tweet


@case("importer faults", "IMGID climbing out of --xml-dir")
def imgid_climb(ctx: Context):
    _fmnerg_files(ctx)
    ctx.write("outside.xml", (ctx.dir / "xml" / "101.xml").read_bytes())
    ctx.write("fmnerg.txt", (ctx.dir / "fmnerg.txt").read_text().replace("IMGID:101", "IMGID:../outside"))
    r = _import(ctx, "fmnerg", "fmnerg.txt", "--xml-dir", "xml")
    climbed = [x for x in r.records() if x.get("id") == "../outside" and any(
        e.get("boxes") for e in x.get("entities") or [])]
    if climbed:
        return ctx.judge(r, wrong="read ../outside.xml (outside --xml-dir)")
    return ctx.judge(r, rc=(1,), where=("fmnerg.txt:1", "../outside"))


@case("importer faults", "--xml-dir that is a file")
def xml_dir_file(ctx: Context):
    _fmnerg_files(ctx)
    r = ctx.vkel("data", "import", "fmnerg", "fmnerg.txt", "--xml-dir", "fmnerg.txt")
    if r.rc == 0:
        return ctx.judge(r, wrong="exit 0: a --xml-dir that is not a directory was taken as 'no XML'")
    return ctx.judge(r, rc=(1, 2), where=("fmnerg.txt",))


@case("importer faults", "malformed CoNLL line under --on-error skip: other IMGIDs stable")
def conll_skip(ctx: Context):
    _fmnerg_files(ctx)
    ctx.write("fmnerg.txt", (ctx.dir / "fmnerg.txt").read_text().replace("Love\tI-person\tI-athlete",
                                                                        "Love\tI-person", 1))
    r = _import(ctx, "fmnerg", "fmnerg.txt", "--xml-dir", "xml")
    ids = r.ids()
    lost = None if {"102", "103"} <= set(ids) and "101" not in ids else f"ids out {ids}"
    return ctx.judge(r, rc=(1,), where=("fmnerg.txt:3",), lost=lost)


# -- closed and full stdout ---------------------------------------------------------------------------------
def _many(ctx: Context, n: int = 20000) -> str:
    ctx.write("many.jsonl", jsonl([dict(good(i), image=None) for i in range(n)]))
    return "many.jsonl"


@case("closed or full stdout", "vote | head -1 (reader gone)")
def closed_vote(ctx: Context):
    r = ctx.vkel("vote", "--method", "majority", _many(ctx), shell_tail="| head -1 >/dev/null")
    return ctx.judge(r, rc=(0,))


@case("closed or full stdout", "data import fmnerg | head -1 (reader gone)")
def closed_import(ctx: Context):
    _fmnerg_files(ctx)
    text = (ctx.dir / "fmnerg.txt").read_text()
    ctx.write("big.txt", "".join(text.replace("IMGID:1", f"IMGID:{k}1") for k in range(3000)))
    r = ctx.vkel("data", "import", "fmnerg", "big.txt", shell_tail="| head -1 >/dev/null")
    return ctx.judge(r, rc=(0,))


def _full(ctx: Context, *args):
    with open("/dev/full", "wb") as full:
        r = ctx.vkel(*args, stdout=full)
    if r.rc == 0:
        return ctx.judge(r, lost="exit 0 with the output gone (stdout is /dev/full)")
    return ctx.judge(r, rc=(1,), where=("No space", "stdout", "standard output", "write"))


@case("closed or full stdout", "vote > /dev/full")
def full_vote(ctx: Context):
    return _full(ctx, "vote", "--method", "majority", _many(ctx, 2000))


@case("closed or full stdout", "data stats > /dev/full")
def full_stats(ctx: Context):
    return _full(ctx, "data", "stats", _many(ctx, 5))


@case("closed or full stdout", "score > /dev/full")
def full_score(ctx: Context):
    ctx.write("gold.jsonl", jsonl([good(1)]))
    return _full(ctx, "score", "-q", "--gold", "gold.jsonl", "gold.jsonl")


# -- output file modes ----------------------------------------------------------------------------------------
def _mode_case(ctx: Context, args: list, output: str):
    r = ctx.vkel(*args, umask=0o022)
    path = ctx.dir / output
    if not path.exists():
        return ctx.judge(r, lost=f"{output} not written")
    mode = path.stat().st_mode & 0o777
    return ctx.judge(r, rc=(0,), wrong=None if mode == 0o644 else f"{output} has mode {mode:o} under umask 022")


@case("output permissions", "vote -o under umask 022")
def mode_vote(ctx: Context):
    ctx.write("in.jsonl", jsonl([good(1)]))
    return _mode_case(ctx, ["vote", "--method", "majority", "-o", "out.jsonl", "in.jsonl"], "out.jsonl")


@case("output permissions", "data import -o under umask 022")
def mode_import(ctx: Context):
    _fmnerg_files(ctx)
    return _mode_case(ctx, ["data", "import", "fmnerg", "fmnerg.txt", "--xml-dir", "xml", "-o", "out.jsonl"],
                      "out.jsonl")


@case("output permissions", "score --markdown under umask 022")
def mode_score(ctx: Context):
    ctx.write("gold.jsonl", jsonl([good(1)]))
    return _mode_case(ctx, ["score", "-q", "--gold", "gold.jsonl", "--markdown", "t.md", "gold.jsonl"], "t.md")


import attack_cases_net  # noqa: E402,F401  (registers the other half of the cases)
