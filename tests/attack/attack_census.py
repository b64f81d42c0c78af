#!/usr/bin/env python
"""The attack census of issue 12: attack the real `vkel` CLI of two source trees (before and after a round
of hardening) with the same cases and count how each ends.

    .venv/bin/python tests/attack/attack_census.py --old /tmp/vkel-old --new .          # both, Markdown on stdout
    .venv/bin/python tests/attack/attack_census.py --new . --only wrong-types,secrets   # a subset, one tree

Every case runs `python -m vkel_cli ...` in a subprocess of its own (PYTHONPATH = the tree, a fresh
working directory and $VKEL_CACHE per case) under a hard timeout; faults are real: loopback HTTP servers
(tests/openai_server.py, tests/image_server.py), broken files, FIFOs, signals. An outcome is one of
  handled  clean exit 0/1/2 (130/143 for signals) with a message naming the file:line or record where the
           case has one, every good record kept in order, nothing left behind
  lost     a good record, a box or an old run is missing, or exit 0 with the output gone
  leaked   the API key, or any 8-character piece of it (or of its base64 form), appears in stdout, stderr,
           an -o file, meta or the LLM cache
  crashed  a traceback, "internal error", or an exit status other than the ones the case allows
  hung     the case's hard timeout (or its deadline, for the bounded-wait cases) ran out
  wrong    none of those, but not handled either: a malformed record accepted silently, a private address
           or a path outside --image-root reached, an unbounded read, a wrong file mode
A case that needs what a tree lacks (a command, mmdet) is `skipped` and not counted as attempted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the cases, and tests/ (the loopback servers)

from attack_cases import CASES  # noqa: E402
from attack_harness import Context, Shared  # noqa: E402

OUTCOMES = ("handled", "lost", "leaked", "crashed", "hung", "wrong")


def select(only: set[str] | None, light: bool = False) -> list:
    return [c for c in CASES if (not only or c.klass in only or c.name in only) and not (light and c.heavy)]


def run_tree(label: str, tree: Path, shared: Shared, work: Path, cases: list, jobs: int) -> list[dict]:
    results: list[dict] = [None] * len(cases)  # type: ignore[list-item]

    def one(index: int) -> None:
        case = cases[index]
        ctx = Context(label, tree, work / label / case.name, shared)
        started = time.monotonic()
        try:
            outcome, note = case.fn(ctx)
        except Exception as err:  # a harness fault: say so, never count it against the tree
            outcome, note = "harness-error", f"{type(err).__name__}: {err}"
        finally:
            ctx.close()
        results[index] = {"tree": label, "class": case.klass, "case": case.name, "outcome": outcome,
                          "note": " ".join(str(note).split())[:300], "seconds": round(time.monotonic() - started, 1)}
        print(f"[{label}] {case.klass}/{case.name}: {outcome} ({results[index]['seconds']} s) {results[index]['note'][:160]}",
              file=sys.stderr, flush=True)

    # cases with a slow torch start go first so that the cheap ones fill the gaps
    order = sorted(range(len(cases)), key=lambda i: not cases[i].heavy)
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, order))
    return results


def table(results: list[dict], labels: list[str]) -> str:
    classes = list(dict.fromkeys(r["class"] for r in results))
    head = "| class | " + " | ".join(f"{label}: attempted / handled / lost / leaked / crashed / hung / wrong"
                                      for label in labels) + " |"
    lines = [head, "|---|" + "---|" * len(labels)]
    totals = {label: [0] * 7 for label in labels}
    for klass in classes + ["**total**"]:
        cells = []
        for label in labels:
            if klass == "**total**":
                counts = totals[label]
            else:
                mine = [r for r in results if r["tree"] == label and r["class"] == klass
                        and r["outcome"] in OUTCOMES]
                counts = [len(mine)] + [sum(r["outcome"] == o for r in mine) for o in OUTCOMES]
                totals[label] = [a + b for a, b in zip(totals[label], counts)]
            cells.append(" / ".join(map(str, counts)))
        lines.append(f"| {klass} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_case(results: list[dict], labels: list[str]) -> str:
    by = {(r["tree"], r["class"], r["case"]): r for r in results}
    keys = list(dict.fromkeys((r["class"], r["case"]) for r in results))
    lines = ["| class | case | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for klass, name in keys:
        cells = []
        for label in labels:
            r = by.get((label, klass, name))
            cells.append("-" if r is None else f"**{r['outcome']}** ({r['seconds']} s) {r['note']}".replace("|", "/"))
        lines.append(f"| {klass} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, help="the tree before (e.g. a `git worktree` of the older commit)")
    parser.add_argument("--new", type=Path, help="the tree after (run last)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with the dependencies")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--only", default="", help="comma-separated classes or case names")
    parser.add_argument("--light", action="store_true", help="leave out the cases that start torch")
    parser.add_argument("--jobs", type=int, default=3, help="cases at once (most wait on servers or timeouts)")
    parser.add_argument("--json", type=Path, help="also write every result as JSON here")
    parser.add_argument("--report", type=Path, nargs="+", help="only print the tables of saved --json files "
                        "(a later file's result for the same tree and case replaces an earlier one)")
    args = parser.parse_args(argv)
    if args.report:
        import json

        merged: dict = {}
        for file in args.report:
            for r in json.loads(file.read_text()):
                merged[(r["tree"], r["class"], r["case"])] = r
        results = sorted(merged.values(), key=lambda r: r["tree"] != "before")
        labels = list(dict.fromkeys(r["tree"] for r in results))
        print(table(results, labels) + "\n\n" + per_case(results, labels))
        return 0
    trees = [(label, path.resolve()) for label, path in (("before", args.old), ("after", args.new)) if path]
    if not trees:
        parser.error("give --old and/or --new")
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="vkel-census-"))
    only = {x.strip() for x in args.only.split(",") if x.strip()} or None
    started = time.monotonic()
    shared = Shared(work / "shared", args.python, trees[0][1])
    results: list[dict] = []
    for label, path in trees:
        results += run_tree(label, path, shared, work, select(only, args.light), args.jobs)
    elapsed = time.monotonic() - started
    labels = [label for label, _ in trees]
    print(f"## Attack census ({', '.join(f'{label}: {path}' for label, path in trees)}; {elapsed:.0f} s)\n")
    print(table(results, labels) + "\n")
    print(per_case(results, labels))
    skipped = [r for r in results if r["outcome"] not in OUTCOMES]
    if skipped:
        print("\nNot counted: " + "; ".join(f"{r['tree']} {r['case']}: {r['outcome']} ({r['note']})" for r in skipped))
    if args.json:
        import json

        args.json.write_text(json.dumps(results, indent=1))
    shared.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
