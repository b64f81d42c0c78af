"""Benchmark of `vkel predict` (local engine): batched greedy generation vs one record at a time.

Runs the real pipeline (vkel_cli.predict.run.predict: image loading, chat template, processor, generate with
left padding, parsing) on a tiny random LLaVA from `vkel models tiny`, with every answer forced to the
same length (min_new_tokens = max_new_tokens) so both settings do the same work. Prints a Markdown
section with the per-record time at batch 1 and batch 16 and their ratio (must be >= 4x).

    .venv/bin/python benchmarks/bench_predict.py [--records 48] [--repeats 3] [--tokens 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from vkel_cli.core.errors import ErrorPolicy  # noqa: E402
from vkel_cli.models.tiny import build_tiny  # noqa: E402
from vkel_cli.predict.local import LocalGenerator
from vkel_cli.predict.jobs import PredictOptions
from vkel_cli.predict.run import predict  # noqa: E402


def make_records(directory: str, n: int) -> list[dict]:
    from PIL import Image

    os.makedirs(os.path.join(directory, "img"), exist_ok=True)
    records = []
    for i in range(n):
        Image.new("RGB", (120 + i % 7, 90), (i * 5 % 256, 90, 160)).save(os.path.join(directory, "img", f"{i}.jpg"))
        tokens = ["RT", "@user", ":", "Kevin", "Love", "and", "J.", "R.", "Smith", "in", "Cleveland"] + ["#nba"] * (i % 5)
        records.append({"id": f"r{i}", "tokens": tokens, "image": f"{i}.jpg", "image_size": [120 + i % 7, 90]})
    return records


def per_record_seconds(generator, opts, records, repeats) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = list(predict(opts, ((json.loads(json.dumps(r)), None) for r in records), ErrorPolicy("fail"),
                           generator=generator))
        times.append((time.perf_counter() - start) / len(out))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=20)
    # 1 thread: on 2 shared cores torch's default threads contend with everything else running.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny(os.path.join(tmp, "model"), "llava", seed=0)
        records = make_records(tmp, args.records)
        opts = PredictOptions(stage=1, model=model, max_new_tokens=args.tokens, device="cpu",
                              image_root=os.path.join(tmp, "img"))
        generator = LocalGenerator(opts)
        generator.model.generation_config.min_new_tokens = args.tokens  # equal work in both settings
        per_record_seconds(generator, opts, records[:4], 1)  # warm-up
        results = {}
        for batch in (1, 16):
            opts.batch_size = batch
            results[batch] = per_record_seconds(generator, opts, records, args.repeats)
    ratio = results[1] / results[16]
    print("## vkel predict: batched generation (tiny LLaVA, CPU)\n")
    print(f"{args.records} records, {args.tokens} new tokens each, median of {args.repeats} runs, "
          f"torch threads {torch.get_num_threads()}.\n")
    print("| batch size | ms / record |\n|---:|---:|")
    for batch, seconds in results.items():
        print(f"| {batch} | {seconds * 1000:.1f} |")
    print(f"\nBatch 16 is **{ratio:.1f}x** faster per record than batch 1 (target >= 4x): "
          f"{'PASS' if ratio >= 4 else 'FAIL'}")


if __name__ == "__main__":
    main()
