#!/usr/bin/env python3
"""CLI start-up against the framework floor, and the end-to-end demo time split by stage.

Start-up: `vkel --help` and `vkel score --help` (the installed console script, a fresh process each time)
against a bare `python -c "import typer"`, medians of several interleaved runs. Goal: ratio < 1.5x; when a
ratio is over, the slowest imports under `vkel_cli.cli` are listed (python -X importtime) so it is clear
what to make lazy.

Demo: the per-stage wall time from the demo's timing file ($VKEL_DEMO_TIMING, default demo/timing.tsv,
written by `make demo`; `make bench` runs a fresh demo for it). Prints a Markdown section on stdout.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("VKEL_BENCH_RUNS", "9"))
GOAL = 1.5


def command(*args: str) -> list[str]:
    vkel = BIN / "vkel"
    return [str(vkel), *args] if vkel.exists() else [sys.executable, "-m", "vkel_cli", *args]


# A one-command typer app: what any typer subcommand's --help costs beyond the bare import (typer 0.29
# imported pydantic at that point, which is why vkel pins typer < 0.29).
MINIMAL_APP = """
import typer
app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
@app.callback()
def root():
    "root"
@app.command()
def hello(name: str = "x"):
    "Say hello."
app()
"""

FLOOR = "python -c 'import typer' (floor)"
SUB_FLOOR = "one-command typer app, hello --help"
CASES = {
    FLOOR: [sys.executable, "-c", "import typer"],
    SUB_FLOOR: [sys.executable, "-c", MINIMAL_APP, "hello", "--help"],
    "vkel --help": command("--help"),
    "vkel score --help": command("score", "--help"),
}


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench_cli: {' '.join(argv)} failed: {proc.stderr.decode()[-500:]}")
    return elapsed


def startup() -> dict[str, float]:
    for argv in CASES.values():  # warm the OS file cache and .pyc files first
        wall(argv)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(RUNS):  # interleaved, so a noisy moment hits every case alike
        for name, argv in CASES.items():
            samples[name].append(wall(argv))
    return {name: statistics.median(values) for name, values in samples.items()}


def import_times(argv: list[str]) -> dict[str, tuple[float, float]]:
    """module -> (self ms, cumulative ms) for one run of argv under `python -X importtime`."""
    if argv[0] != sys.executable:  # the console script: run its file with this interpreter
        argv = [sys.executable, *argv]
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, cwd=ROOT)
    found = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| *(\S+)", line)
        if match:
            found[match.group(3)] = (int(match.group(1)) / 1000, int(match.group(2)) / 1000)
    return found


def slowest_imports(argv: list[str], limit: int = 10) -> list[tuple[str, float, float]]:
    """The modules argv imports that the one-command typer app does not, by their own import time."""
    mine, floor = import_times(argv), import_times(CASES[SUB_FLOOR])
    extra = [(name, own, total) for name, (own, total) in mine.items() if name not in floor]
    return sorted(extra, key=lambda item: -item[1])[:limit]


def demo_section() -> list[str]:
    path = Path(os.environ.get("VKEL_DEMO_TIMING", ROOT / "demo" / "timing.tsv"))
    if not path.exists():
        return [f"No demo timing file ({path}): run `make demo` (or `make bench`, which runs a fresh demo)."]
    sys.path.insert(0, str(ROOT / "scripts"))
    from demo_timing import group, markdown, read_timing

    stages = read_timing(path)
    lines = [f"End-to-end `make demo` on the bundled sample (tiny random models), from `{path.name}`; "
             "wall time per step (each step is its own `vkel` process, so every row includes a Python + "
             "torch start-up):", "", markdown(stages).rstrip(), "", "Grouped by stage:", "",
             markdown(group(stages)).rstrip()]
    return lines


def main() -> int:
    medians = startup()
    floor, sub_floor = medians[FLOOR], medians[SUB_FLOOR]
    lines = ["## CLI start-up and the demo", "",
             f"Start-up, median of {RUNS} runs each (fresh process; goal: at most {GOAL}x the bare typer import):",
             "", "| command | median (ms) | ratio to `import typer` | ratio to one-command typer app |",
             "|---|---:|---:|---:|"]
    over = []
    for name, seconds in medians.items():
        ratio = seconds / floor
        lines.append(f"| `{name}` | {1000 * seconds:.0f} | {ratio:.2f}x | {seconds / sub_floor:.2f}x |")
        if name.startswith("vkel") and ratio >= GOAL:
            over.append(name)
    lines += ["", "(The last column compares with a one-command typer app's `--help`: what typer itself costs "
              "once it resolves a command.)", ""]
    if over:
        lines.append(f"**Over the {GOAL}x goal: {', '.join(over)}.**")
        for name in over:
            lines += ["", f"Heaviest imports of `{name}` that the one-command typer app does not make too "
                      "(`python -X importtime`, by own time):", "", "| module | own ms | cumulative ms |",
                      "|---|---:|---:|"]
            lines += [f"| `{module}` | {own:.1f} | {total:.1f} |" for module, own, total in slowest_imports(CASES[name])]
    else:
        lines.append(f"Both stay under the {GOAL}x goal.")
    lines += [""] + demo_section()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
