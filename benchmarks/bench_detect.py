#!/usr/bin/env python3
"""`vkel detect` throughput: RTMDet-tiny (mmdet's shipped config, random weights, threshold 0) on CPU,
images/s through the whole stage (JPEG decode in the thread pool + batched inference + top-K), at batch
size 1 and 8, and the same with decoding done serially (1 thread, no prefetch) for comparison.

Images: generated 1024x768 JPEGs (tweet-photo sized, with shapes and noise so decoding does real work).
Prints a Markdown section with medians of a few runs. Needs `make install-mmdet`.
Usage: .venv/bin/python benchmarks/bench_detect.py [--images 32] [--runs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_images(root: Path, n: int) -> list[dict]:
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        pixels = rng.integers(0, 60, size=(768, 1024, 3), dtype=np.uint8) + np.uint8(100)
        img = Image.fromarray(pixels)
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x, y = int(rng.integers(0, 900)), int(rng.integers(0, 650))
            draw.rectangle([x, y, x + int(rng.integers(30, 200)), y + int(rng.integers(30, 200))],
                           fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        img.save(root / f"{i}.jpg", quality=90)
        records.append({"id": str(i), "tokens": ["x"], "image": f"{i}.jpg"})
    return records


def run_once(detector, records, root, batch_size, parallel) -> float:
    from vkel_cli.detect.run import DetectSettings, detect_records
    from vkel_cli.core.errors import ErrorPolicy, Location

    settings = DetectSettings(image_root=str(root), top_k=5, score_threshold=0.0, batch_size=batch_size,
                              workers=4 if parallel else 1, prefetch=1 if parallel else 0)
    pairs = ((dict(r), Location("bench", i)) for i, r in enumerate(records))
    start = time.perf_counter()
    out = list(detect_records(pairs, ErrorPolicy("fail"), detector, settings))
    elapsed = time.perf_counter() - start
    assert len(out) == len(records) and all(len(r["objects"]) == 5 for r in out)
    return len(records) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from vkel_cli.detect.base import DetectorOptions, create

    torch.manual_seed(0)
    detector = create("mmdet", DetectorOptions(config="rtmdet_tiny_8xb32-300e_coco", checkpoint="none",
                                               device="cpu", dtype="float32"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        records = make_images(root, args.images)
        run_once(detector, records[:8], root, 8, True)  # warm-up (allocator, lazy init)
        rows = []
        for batch_size in (1, 8):
            for parallel in (True, False):
                speeds = [run_once(detector, records, root, batch_size, parallel) for _ in range(args.runs)]
                rows.append((batch_size, parallel, statistics.median(speeds)))
    base = rows[0][2]
    print("## `vkel detect`: RTMDet-tiny on CPU (random weights, 1024x768 JPEGs)\n")
    print(f"{args.images} images, median of {args.runs} runs, torch threads {torch.get_num_threads()}.\n")
    print("| batch | decode | images/s | vs batch 1 parallel |")
    print("|---:|---|---:|---:|")
    for batch_size, parallel, speed in rows:
        mode = "thread pool, 1 batch ahead" if parallel else "serial"
        print(f"| {batch_size} | {mode} | {speed:.2f} | {speed / base:.2f}x |")


if __name__ == "__main__":
    main()
