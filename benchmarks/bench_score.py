#!/usr/bin/env python3
"""`vkel score` on the 1 500-tweet FMNERG test set, end to end (process start included).

Goal: well under 0.5 s. Uses ../shared/data when present, else 1 500 generated records of the same
shape. Predictions are the gold with a third of the boxes shifted and a tenth of the types changed,
so the matching does real work. Prints a Markdown section with medians of several runs."""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def gold_records():
    sys.path.insert(0, str(ROOT))
    if (SHARED / "fmnerg" / "test.txt").exists():
        from vkel_cli.data.benchmark import import_fmnerg

        return list(import_fmnerg(str(SHARED / "fmnerg" / "test.txt"), str(SHARED / "gmner-v2" / "xml"))), "real"
    rng = random.Random(0)
    records = []
    for i in range(1500):
        entities = [{"text": f"e{i}_{j}", "start": j, "end": j + 1, "coarse": "person", "fine": "athlete",
                     "boxes": [[10, 10, 100, 100]] if rng.random() < 0.4 else []} for j in range(2)]
        records.append({"id": str(i), "tokens": ["x"] * 3, "entities": entities})
    return records, "generated"


def with_predictions(records):
    rng = random.Random(1)
    for record in records:
        preds = []
        for e in record["entities"]:
            box = list(e["boxes"][0]) if e["boxes"] else None
            if box and rng.random() < 0.33:
                box = [v + 15 for v in box]
            fine = "actor" if rng.random() < 0.1 else e["fine"]
            preds.append({"text": e["text"], "coarse": e["coarse"], "fine": fine, "box": box})
        record["predictions"] = preds
    return records


def time_run(argv, runs=7):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    records, kind = gold_records()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in with_predictions(records)))
        vkel = [sys.executable, "-m", "vkel_cli"]
        plain = time_run(vkel + ["score", "-q", str(path)])
        sweep = time_run(vkel + ["score", "-q", "--by-type", "--iou", "0.1,0.3,0.5,0.7,0.9,1.0", str(path)])
        floor = time_run([sys.executable, "-c", "import typer"])
    print("## vkel score (FMNERG test set, end to end)\n")
    print(f"- data: {kind} ({len(records)} records, {sum(len(r['entities']) for r in records)} entities)")
    print(f"- `vkel score`: median {plain:.3f} s (goal < 0.5 s: {plain / 0.5:.2f} of the budget)")
    print(f"- `vkel score --by-type --iou 0.1,...,1.0`: median {sweep:.3f} s")
    print(f"- bare `python -c 'import typer'`: median {floor:.3f} s (scoring itself: {plain - floor:.3f} s)\n")


if __name__ == "__main__":
    main()
