"""benchmarks/bench_real_shape.py: the published 7B shapes are right (parameter counts of the real
checkpoints, counted on the meta device), and `--scale tiny` runs the whole measurement on CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_published_shapes_have_the_real_parameter_counts():
    import torch
    from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration,
                              Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration)

    from bench_real_shape import LLAVA_1_5_7B, QWEN2_5_VL_7B

    llava = LlavaConfig(vision_config=CLIPVisionConfig(**LLAVA_1_5_7B["vision"]),
                        text_config=LlamaConfig(**LLAVA_1_5_7B["text"]), vision_feature_layer=-2,
                        vision_feature_select_strategy="default", image_seq_length=576)
    qwen = Qwen2_5_VLConfig(vision_config=dict(QWEN2_5_VL_7B["vision"]), text_config=dict(QWEN2_5_VL_7B["text"]))
    with torch.device("meta"):
        counts = [sum(p.numel() for p in cls(config).parameters())
                  for cls, config in ((LlavaForConditionalGeneration, llava), (Qwen2_5_VLForConditionalGeneration, qwen))]
    # llava-hf/llava-1.5-7b-hf and Qwen/Qwen2.5-VL-7B-Instruct as their safetensors indexes count them.
    assert counts == [7_063_427_072, 8_292_166_656]
    assert (LLAVA_1_5_7B["vision"]["image_size"] // LLAVA_1_5_7B["vision"]["patch_size"]) ** 2 == 576


@pytest.mark.slow
def test_tiny_scale_prints_the_table_with_positive_numbers(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_real_shape.py"), "--scale", "tiny",
                           "--train-steps", "2", "--gen-batches", "2", "--work-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=900,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| model"))
    assert [c.strip() for c in lines[header].strip("|").split("|")] == [
        "model", "measure", "batch", "s/sample", "tokens/s", "peak mem GB", "MFU %", "paper s/sample"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[header + 2:] if line.startswith("|")]
    # 2 backbones x 2 stages x (train + generate at batch 1 and 16)
    assert len(rows) == 12
    assert {row[0] for row in rows} == {"LLaVA-1.5-7B (tiny)", "Qwen2.5-VL-7B (tiny)"}
    assert [row[2] for row in rows[:6]] == ["4", "1", "16", "4", "1", "16"]
    for row in rows:
        assert all(float(value.replace(",", "")) > 0 for value in row[3:7]), row
    trains = [row for row in rows if row[1].startswith("train")]
    assert [row[7] for row in trains] == ["1.08", "1.93", "1.08", "1.93"]
    assert "Table XI" in proc.stdout and list(tmp_path.iterdir()) == []  # the work dir is cleaned up
