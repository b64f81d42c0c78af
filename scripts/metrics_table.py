#!/usr/bin/env python3
"""Join several `vkel score` metrics files into one Markdown table (the paper's tables).

  metrics_table.py [--title T] [--iou 0.5] [--type all] LABEL=METRICS.jsonl ...
      one row per LABEL: P / R / F1 of FMNERG, FMNER and EEG (Table IV, VI, X; Fig. 8, 10 as rows)
  metrics_table.py --by-iou [--title T] METRICS.jsonl
      one row per IoU threshold of one file: FMNERG and EEG P / R / F1 (Table IX; FMNER needs no box)

Writes Markdown to stdout; a missing metrics file or a missing row is an error naming it (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TASKS = ("FMNERG", "FMNER", "EEG")


def load(path: str) -> list[dict]:
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise SystemExit(f"metrics_table: {path}:{n}: not JSON: {err}") from None
    return rows


def pick(rows: list[dict], task: str, iou: float | None, type_name: str, where: str) -> dict:
    for row in rows:
        same_iou = row.get("iou") is None if task == "FMNER" or iou is None else (
            row.get("iou") is not None and abs(row["iou"] - iou) < 1e-9)
        if row.get("task") == task and row.get("type", "all") == type_name and same_iou:
            return row
    raise SystemExit(f"metrics_table: {where}: no {task} row at IoU {iou} for type {type_name!r}")


def pct(value: float) -> str:
    return f"{100 * value:.2f}"


def by_label(pairs: list[tuple[str, str]], iou: float, type_name: str) -> str:
    head = ["system"] + [f"{task} {m}" for task in TASKS for m in ("P", "R", "F1")]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for label, path in pairs:
        rows = load(path)
        cells = [label]
        for task in TASKS:
            row = pick(rows, task, iou, type_name, path)
            cells += [pct(row["precision"]), pct(row["recall"]), pct(row["f1"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def by_iou(path: str, type_name: str) -> str:
    rows = load(path)
    ious = sorted({row["iou"] for row in rows if row.get("task") == "FMNERG" and row.get("iou") is not None})
    if not ious:
        raise SystemExit(f"metrics_table: {path}: no FMNERG rows")
    head = ["IoU"] + [f"{task} {m}" for task in ("FMNERG", "EEG") for m in ("P", "R", "F1")]
    lines = ["| " + " | ".join(head) + " |", "|---:" * len(head) + "|"]
    for iou in ious:
        cells = [f"{iou:g}"]
        for task in ("FMNERG", "EEG"):
            row = pick(rows, task, iou, type_name, path)
            cells += [pct(row["precision"]), pct(row["recall"]), pct(row["f1"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def missing_file(items: list[str]) -> str | None:
    """The first METRICS path of `items` (METRICS or LABEL=METRICS) that is not a file, else None."""
    return next((path for path in (item.rpartition("=")[2] for item in items) if not Path(path).is_file()), None)


def labelled(items: list[str]) -> list[tuple[str, str]]:
    """LABEL=PATH items as (label, path), split at the last "=" so a label may hold one ("K=5=out/k5/m.jsonl");
    a bare PATH is labelled by its folder."""
    return [(item.rpartition("=")[0], item.rpartition("=")[2]) if "=" in item else (Path(item).parent.name, item)
            for item in items]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("items", nargs="+", help="LABEL=METRICS.jsonl (or one METRICS.jsonl with --by-iou)")
    parser.add_argument("--title", help="a Markdown heading above the table")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold of the rows shown (default 0.5)")
    parser.add_argument("--type", default="all", help="coarse type of the rows shown (default all)")
    parser.add_argument("--by-iou", action="store_true", help="one row per IoU threshold of one metrics file")
    args = parser.parse_args(argv[1:])
    missing = missing_file(args.items)
    if missing:
        print(f"metrics_table: {missing}: no such metrics file", file=sys.stderr)
        return 1
    if args.by_iou:
        if len(args.items) != 1:
            parser.error("--by-iou takes exactly one metrics file")
        table = by_iou(args.items[0].rpartition("=")[2], args.type)
    else:
        pairs = labelled(args.items)
        table = by_label(pairs, args.iou, args.type)
    if args.title:
        sys.stdout.write(f"### {args.title}\n\n")
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
