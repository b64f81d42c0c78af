"""Benchmark of `vkel train` on a tiny random LLaVA: a step split into data (reading the spooled
examples, loading images, chat template, processor, label masking) vs model (forward, backward,
AdamW step), and the peak RSS of a real `vkel train` run over 1000 records (must stay < 2 GB: the
trainer streams images from disk per batch).

    .venv/bin/python benchmarks/bench_train.py [--steps 20] [--batch-size 8] [--records 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from vkel_cli.models import backbones  # noqa: E402
from vkel_cli.core.errors import ErrorPolicy  # noqa: E402
from vkel_cli.models.tiny import build_tiny  # noqa: E402
from vkel_cli.core.records import read_records  # noqa: E402
from vkel_cli.train.examples import Collator, ExampleOptions, SpooledExamples  # noqa: E402


def make_records(directory: str, n: int) -> str:
    from PIL import Image

    os.makedirs(os.path.join(directory, "img"), exist_ok=True)
    path = os.path.join(directory, "train.jsonl")
    with open(path, "w") as handle:
        for i in range(n):
            size = (160 + i % 9, 120)
            Image.new("RGB", size, (i * 5 % 256, 90, 160)).save(os.path.join(directory, "img", f"{i}.jpg"))
            entities = [{"text": "Kevin Love", "start": 3, "end": 5, "coarse": "person", "fine": "athlete",
                         "boxes": [[10, 5, 60, 100]]}] if i % 2 else []
            handle.write(json.dumps({"id": f"r{i}", "tokens": ["RT", "@user", ":", "Kevin", "Love", "in", "Cleveland"],
                                     "image": f"{i}.jpg", "image_size": list(size), "entities": entities}) + "\n")
    return path


def step_split(model_dir: str, data: str, image_root: str, steps: int, batch_size: int) -> tuple[float, float]:
    import torch
    from peft import LoraConfig, get_peft_model

    backbone = backbones.detect(model_dir)
    processor = backbones.load_processor(model_dir, padding_side="right")
    dataset = SpooledExamples.build(read_records([data]), ExampleOptions(stage=1, image_root=image_root),
                                    ErrorPolicy())
    collate = Collator(backbone, processor)
    model = backbones.load_model(backbone, model_dir, "fp32", device=None)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                             target_modules=backbone.lora_targets(["q_proj", "v_proj"])))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)
    data_t, model_t = [], []
    for step in range(steps + 2):
        start = time.perf_counter()
        batch = collate([dataset[(step * batch_size + i) % len(dataset)] for i in range(batch_size)])
        mid = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        end = time.perf_counter()
        if step >= 2:  # warm-up
            data_t.append(mid - start)
            model_t.append(end - mid)
    dataset.close()
    return statistics.median(data_t), statistics.median(model_t)


def peak_rss_run(model_dir: str, data: str, image_root: str, run_dir: str, batch_size: int) -> tuple[float, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "vkel_cli", "train", "--stage", "1", "--model", model_dir, "--output-dir", run_dir,
           "--epochs", "1", "--batch-size", str(batch_size), "--grad-accum", "1", "--image-root", image_root, data]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    return peak_kib / 1024, rows[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the tiny model's matrices are "
                        "too small for intra-op threads to pay on a shared 2-core machine)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny(os.path.join(tmp, "model"), "llava", seed=0)
        data = make_records(tmp, args.records)
        image_root = os.path.join(tmp, "img")
        data_s, model_s = step_split(model_dir, data, image_root, args.steps, args.batch_size)
        peak_mib, summary = peak_rss_run(model_dir, data, image_root, os.path.join(tmp, "run"), args.batch_size)
    share = data_s / (data_s + model_s)
    print("## vkel train: step time and memory (tiny LLaVA, CPU)\n")
    print(f"Batch {args.batch_size}, median of {args.steps} steps, torch threads {args.threads}.\n")
    print("| part | ms / step |\n|---|---:|")
    print(f"| data (read examples, load images, template, processor, masks) | {data_s * 1000:.1f} |")
    print(f"| model (forward, backward, AdamW) | {model_s * 1000:.1f} |")
    print(f"\nData is {share:.0%} of a step.\n")
    print(f"Peak RSS of `vkel train` over {args.records} records (1 epoch, batch {args.batch_size}): "
          f"**{peak_mib:.0f} MiB** (target < 2048 MiB): {'PASS' if peak_mib < 2048 else 'FAIL'}; "
          f"Trainer runtime {summary.get('train_runtime', float('nan')):.1f} s.")


if __name__ == "__main__":
    main()
