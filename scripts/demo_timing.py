#!/usr/bin/env python3
"""Print the per-stage wall time of the demo from its timing file (`stage<TAB>seconds` lines, appended by
mk/demo.mk as each stage finishes; a stage run again replaces its earlier time).

Usage: demo_timing.py TIMING.tsv [--markdown] [--json]
  (default) a plain table on stderr; --markdown a Markdown table on stdout (for BENCHMARKS.md);
  --json one JSON object {stage: seconds} on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def read_timing(path: str | Path) -> dict[str, float]:
    """stage -> seconds, in the order the stages first ran; the latest time of a stage wins."""
    stages: dict[str, float] = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        stage, _, seconds = line.partition("\t")
        stages[stage] = float(seconds)
    return stages


def group(stages: dict[str, float]) -> dict[str, float]:
    """Sum `detect:train` and `detect:test` into `detect`, keeping first-seen order."""
    groups: dict[str, float] = {}
    for stage, seconds in stages.items():
        name = stage.split(":", 1)[0]
        groups[name] = groups.get(name, 0.0) + seconds
    return groups


def markdown(stages: dict[str, float]) -> str:
    total = sum(stages.values()) or 1.0
    rows = ["| stage | wall time (s) | share |", "|---|---:|---:|"]
    rows += [f"| {stage} | {seconds:.1f} | {100 * seconds / total:.0f} % |" for stage, seconds in stages.items()]
    rows.append(f"| **total** | **{sum(stages.values()):.1f}** | 100 % |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    if not Path(args[0]).exists():
        print(f"demo_timing: {args[0]} does not exist (run `make demo` first)", file=sys.stderr)
        return 1
    stages = read_timing(args[0])
    if "--json" in argv:
        print(json.dumps(stages))
    elif "--markdown" in argv:
        print(markdown(stages), end="")
    else:
        width = max((len(s) for s in stages), default=5)
        print("demo wall time per stage:", file=sys.stderr)
        for stage, seconds in stages.items():
            print(f"  {stage:<{width}}  {seconds:7.1f} s", file=sys.stderr)
        print(f"  {'total':<{width}}  {sum(stages.values()):7.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
