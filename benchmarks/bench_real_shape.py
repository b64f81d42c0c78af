"""Benchmark at the real model shapes: LLaVA-1.5-7B and Qwen2.5-VL-7B built from their published
architecture numbers (random weights, nothing downloaded), measured through vkel's own code paths:
`vkel_cli.train.run.train` (HF Trainer + PEFT LoRA, batch 4) and `vkel_cli.predict.run.predict` (local engine,
batched greedy generation), on the benchmark's records (their real prompt and target lengths; images
synthesised at the benchmark's sizes, from the XML files).

    .venv/bin/python benchmarks/bench_real_shape.py                  # full scale: needs a GPU with ~40 GB
    .venv/bin/python benchmarks/bench_real_shape.py --scale tiny     # the same code on CPU in seconds

Prints a Markdown table (stdout) beside the paper's Table XI: seconds per sample for LoRA training
(stages 1 and 2) and for generation at batch 1 and 16, tokens/s, peak memory and model FLOPs
utilisation (MFU). FLOPs are counted per the model shape: forward 2 x params x tokens (+ attention
4 x layers x hidden x tokens^2); a LoRA step adds a backward over the frozen weights that computes input
gradients only (another 2 x params x tokens; the adapter's own weights are negligible); the vision
tower runs forward only. Peak: the GPU's dense bf16 figure when known (--peak-tflops overrides), else a
measured bf16/fp32 matmul rate (CPU).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- published shapes
# llava-hf/llava-1.5-7b-hf: CLIP ViT-L/14 at 336 px (576 patches; the second-to-last layer's features,
# CLS dropped) + a 2-layer GELU projector + Vicuna-7B v1.5 (Llama-2-7B shape, 32,064 embedding rows).
LLAVA_1_5_7B = {
    "vision": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
               "image_size": 336, "patch_size": 14, "projection_dim": 768},
    "text": {"vocab_size": 32064, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
             "rms_norm_eps": 1e-5},
}
# Qwen/Qwen2.5-VL-7B-Instruct: a 32-block ViT (1280 wide, window attention but for blocks 7/15/23/31,
# 14-px patches merged 2x2 into one token) + Qwen2.5-7B (28 layers, 3584 wide, GQA 28/4 heads,
# 152,064 embedding rows, M-RoPE sections 16/24/24). Pixels: the hub processor's 3136..12,845,056, which
# vkel caps at 576 tokens by default (backbones.DEFAULT_MAX_PIXELS).
QWEN2_5_VL_7B = {
    "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "out_hidden_size": 3584,
               "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
               "fullatt_block_indexes": [7, 15, 23, 31], "hidden_act": "silu"},
    "text": {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
             "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 128000,
             "max_window_layers": 28, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
             "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}},
    "pixels": (3136, 12845056),
}
SHAPES = {"llava": LLAVA_1_5_7B, "qwen2.5-vl": QWEN2_5_VL_7B}
# The paper's Table XI (LLaVA-1.5-7B, LoRA r=8, batch 4, one RTX 8000): seconds per sample.
PAPER = {"train stage 1": 1.08, "train stage 2": 1.93}
# Dense bf16 tensor-core peaks (vendor data sheets), by a substring of torch.cuda.get_device_name().
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A6000": 154.8, "RTX 8000": 130.5,
                   "4090": 165.2, "A10": 125.0, "L4": 121.0, "V100": 125.0}
COLUMNS = ["model", "measure", "batch", "s/sample", "tokens/s", "peak mem GB", "MFU %", "paper s/sample"]


def benchmark_records(n: int, image_dir: Path, stage2: bool) -> list[dict]:
    """The first `n` test records of the benchmark (../shared/data, else the bundled sample) with images
    written at their declared sizes; stage-2 inputs get gold stage-1, five objects and a knowledge line."""
    from PIL import Image

    from vkel_cli.data.benchmark import import_fmnerg

    shared = ROOT.parent / "shared" / "data"
    if (shared / "fmnerg" / "test.txt").is_file():
        txt, xml = shared / "fmnerg" / "test.txt", shared / "gmner-v2" / "xml"
    else:
        txt, xml = ROOT / "examples" / "sample" / "test.txt", ROOT / "examples" / "sample" / "xml"
    image_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for record in import_fmnerg(str(txt), str(xml)):
        if len(records) == n:
            break
        width, height = record.get("image_size") or (600, 450)  # the median size where none is declared
        name = f"{record['id']}.jpg"
        if not (image_dir / name).exists():
            Image.new("RGB", (width, height), (len(records) * 37 % 256, 110, 170)).save(image_dir / name)
        record["image"], record["image_size"] = name, [width, height]
        if stage2:
            record["stage1"] = [{"text": e["text"], "coarse": e["coarse"]} for e in record.get("entities") or []]
            record["objects"] = [{"label": "person", "score": 0.9 - 0.1 * i,
                                  "box": [10 * i, 10 * i, width // 2 + 10 * i, height // 2 + 10 * i]} for i in range(5)]
            record["visual_knowledge"] = {e["text"]: f"{e['text']} is shown in the image; the picture is a "
                                          "photograph posted with the tweet." for e in record.get("entities") or []}
        records.append(record)
    return records


def build_model(backbone: str, scale: str, directory: Path, device: str) -> Path:
    import torch

    from vkel_cli.models.tiny import build_shaped, build_tiny

    out = directory / f"{backbone}-{scale}"
    if scale == "tiny":
        return Path(build_tiny(str(out), backbone, seed=0))
    # A 32k-token BPE trained on the benchmark's tweets: prompt lengths close to a real tokenizer's.
    text = " ".join(" ".join(r["tokens"]) for r in benchmark_records(2000, directory / "img", False))
    with torch.device(device if device.startswith("cuda") else "cpu"):
        build_shaped(str(out), backbone, SHAPES[backbone], vocab=32000, seed_text=text, dtype=torch.bfloat16)
    return out


def count_params(model) -> tuple[int, int, int]:
    """(language-model params without the embedding table, vision params, LM layers x hidden)."""
    lm = vision = 0
    for name, param in model.named_parameters():
        if "embed_tokens" in name or "lm_head" in name:
            continue
        if "vision" in name or "visual" in name or "multi_modal_projector" in name:
            vision += param.numel()
        else:
            lm += param.numel()
    text = model.config.get_text_config()
    return lm, vision, text.num_hidden_layers * text.hidden_size


class Meter:
    """Wall time, peak memory and FLOP rate of the device."""

    def __init__(self, device: str, peak_tflops: float | None):
        import torch

        self.torch, self.device = torch, device
        self.cuda = device.startswith("cuda")
        self.peak = (peak_tflops or self._known_peak() or self._measured_peak()) * 1e12

    def _known_peak(self) -> float | None:
        if not self.cuda:
            return None
        name = self.torch.cuda.get_device_name(self.device)
        return next((peak for key, peak in GPU_PEAK_TFLOPS.items() if key in name), None)

    def _measured_peak(self) -> float:
        torch = self.torch
        dtype = torch.bfloat16 if self.cuda else torch.float32
        a = torch.randn(1024, 1024, dtype=dtype, device=self.device)
        self.sync()
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < 0.5:
            a @ a
            n += 1
        self.sync()
        return 2 * 1024**3 * n / (time.perf_counter() - start) / 1e12

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def reset(self) -> None:
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gb(self) -> float:
        if self.cuda:
            return self.torch.cuda.max_memory_allocated(self.device) / 1e9
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # process peak RSS (kB -> GB)


def sequence_lengths(model_dir: Path, backbone, records: list[dict], stage: int, image_root: Path) -> tuple:
    """Mean (tokens in the sequence, image tokens, target tokens) of the training examples, by the
    project's own collator (chat template + processor, as training sees them)."""
    from vkel_cli.models import backbones as bb
    from vkel_cli.core.errors import ErrorPolicy
    from vkel_cli.train.examples import Collator, ExampleOptions, SpooledExamples

    processor = bb.load_processor(str(model_dir), padding_side="right")
    pairs = ((dict(r), None) for r in records)
    dataset = SpooledExamples.build(pairs, ExampleOptions(stage=stage, noise=0.0, image_root=str(image_root)),
                                    ErrorPolicy("fail"))
    try:
        collate = Collator(backbone, processor, 4096)
        totals, images, targets = [], [], []
        for i in range(len(dataset)):
            batch = collate([dataset[i]])
            totals.append(int(batch["attention_mask"].sum()))
            images.append(int((batch["input_ids"] == bb.BACKBONES[backbone.name].image_token_id(processor)).sum()))
            targets.append(int((batch["labels"] != -100).sum()))
    finally:
        dataset.close()
    return statistics.mean(totals), statistics.mean(images), statistics.mean(targets)


def measure_train(model_dir: Path, records: list[dict], stage: int, image_root: Path, work: Path, args,
                  meter: Meter) -> dict:
    from transformers import TrainerCallback

    from vkel_cli.train.run import TrainOptions, train

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_begin(self, *_args, **_kw):
            meter.sync()
            self.start = time.perf_counter()

        def on_step_end(self, *_args, **_kw):
            meter.sync()
            self.times.append(time.perf_counter() - self.start)

    timer = StepTimer()
    meter.reset()
    opts = TrainOptions(model=str(model_dir), output_dir=str(work / f"run-{model_dir.name}-{stage}"), stage=stage,
                        max_steps=args.train_steps, batch_size=4, grad_accum=1, lora_r=8, lora_alpha=16,
                        max_length=4096, noise=0.0, save_steps=10**6, logging_steps=10**6, dtype=args.dtype,
                        device=args.device, image_root=str(image_root), overwrite=True)
    train(opts, ((dict(r), None) for r in records), callbacks=[timer])
    steps = timer.times[1:] or timer.times  # the first step pays for warm-up
    return {"seconds": statistics.median(steps) / 4, "peak": meter.peak_gb()}


def measure_generate(generator, records: list[dict], stage: int, batch: int, new_tokens: int, image_root: Path,
                     meter: Meter) -> dict:
    from vkel_cli.core.errors import ErrorPolicy
    from vkel_cli.predict.jobs import PredictOptions
    from vkel_cli.predict.run import predict

    opts = PredictOptions(stage=stage, batch_size=batch, max_new_tokens=new_tokens, image_root=str(image_root))
    generator.max_new_tokens = new_tokens
    meter.reset()
    rounds = []
    # Whole batches only; records are reused in turn when there are fewer than two batches' worth (the
    # bundled sample has 8 test tweets: a fresh clone without ../shared measures on those).
    for index in range(max(2, len(records) // batch)):
        chunk = [(dict(records[(index * batch + j) % len(records)]), None) for j in range(batch)]
        meter.sync()
        began = time.perf_counter()
        out = list(predict(opts, chunk, ErrorPolicy("fail"), generator=generator))
        meter.sync()
        rounds.append(time.perf_counter() - began)
        assert len(out) == batch
    timed = rounds[1:] or rounds  # the first round pays for warm-up
    return {"seconds": statistics.median(timed) / batch, "peak": meter.peak_gb()}


def run_backbone(backbone_name: str, args, work: Path, meter: Meter) -> list[list]:
    import torch

    from vkel_cli.models import backbones
    from vkel_cli.predict.local import LocalGenerator
    from vkel_cli.predict.jobs import PredictOptions

    model_dir = build_model(backbone_name, args.scale, work, args.device)
    backbone = backbones.detect(str(model_dir))
    image_root = work / "img"
    label = f"{'LLaVA-1.5-7B' if backbone_name == 'llava' else 'Qwen2.5-VL-7B'}" + (" (tiny)" if args.scale == "tiny"
                                                                                     else "")
    rows = []
    n_gen = max(args.gen_batches * 16, 16 + 16)
    records = {stage: benchmark_records(max(n_gen, args.train_steps * 4), image_root, stage == 2) for stage in (1, 2)}
    lengths = {stage: sequence_lengths(model_dir, backbone, records[stage], stage, image_root) for stage in (1, 2)}
    # Training first, each run loading its own copy; the generation model is loaded afterwards, so one
    # 7B copy is on the GPU at a time.
    trained = {stage: measure_train(model_dir, records[stage], stage, image_root, work, args, meter)
               for stage in (1, 2)}
    generator = LocalGenerator(PredictOptions(model=str(model_dir), dtype=args.dtype, device=args.device))
    lm, vision, layers_hidden = count_params(generator.model)
    for stage in (1, 2):
        total, image, target = lengths[stage]
        text = total - image
        vision_tokens = image * (4 if backbone_name == "qwen2.5-vl" else 1)  # patches before the 2x2 merge
        forward = 2 * lm * total + 4 * layers_hidden * total**2 + 2 * vision * vision_tokens
        train_flops = forward + 2 * lm * total + 4 * layers_hidden * total**2
        result = trained[stage]
        rows.append([label, f"train stage {stage} (LoRA r=8; {total:.0f} tokens: {image:.0f} image, {text:.0f} "
                     f"text)", 4, result["seconds"], total / result["seconds"], result["peak"],
                     100 * train_flops / result["seconds"] / meter.peak, PAPER.get(f"train stage {stage}")])
        new_tokens = max(1, round(target))
        # Random weights rarely say "stop": every answer runs to the real target length.
        generator.model.generation_config.min_new_tokens = new_tokens
        for batch in (1, 16):
            result = measure_generate(generator, records[stage], stage, batch, new_tokens, image_root, meter)
            prompt = total - target
            flops = 2 * lm * (prompt + new_tokens) + 4 * layers_hidden * prompt**2 + 2 * vision * vision_tokens
            rows.append([label, f"generate stage {stage} ({prompt:.0f} in, {new_tokens} out)", batch,
                         result["seconds"], new_tokens / result["seconds"], result["peak"],
                         100 * flops / result["seconds"] / meter.peak, None])
    del generator
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return rows


def markdown(rows: list[list], meter: Meter, args) -> str:
    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3g}" if value < 100 else f"{value:,.0f}"
        return str(value)

    lines = [f"## Real-shape benchmark ({args.scale} scale, {args.dtype}, device {args.device}, "
             f"peak {meter.peak / 1e12:.3g} TFLOP/s)", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    lines += ["", "Paper, Table XI (LLaVA-1.5-7B, LoRA r=8, batch 4, one RTX 8000): 1.08 s/sample stage 1, "
              "1.93 s/sample stage 2. Goals here: stage-2 generation at batch 16 <= 0.2 s/sample; training MFU "
              ">= 40 %."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=("full", "tiny"), default="full")
    parser.add_argument("--backbone", choices=("both", "llava", "qwen2.5-vl"), default="both")
    parser.add_argument("--train-steps", type=int, default=None, help="LoRA steps per stage (first is warm-up)")
    parser.add_argument("--gen-batches", type=int, default=None, help="batches of 16 per generation measure")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    parser.add_argument("--work-dir", default=None, help="where models and images go (default: a temp dir)")
    args = parser.parse_args(argv)
    import torch

    tiny = args.scale == "tiny"
    args.train_steps = args.train_steps or (3 if tiny else 6)
    args.gen_batches = args.gen_batches or (2 if tiny else 3)
    args.device = args.device or ("cpu" if tiny else "cuda")
    args.dtype = args.dtype or ("fp32" if tiny else "bf16")
    if not tiny and not torch.cuda.is_available():
        print("bench_real_shape: the full scale needs a CUDA GPU (~40 GB for a 7B model in bf16 with LoRA "
              "training); --scale tiny runs the same code on CPU", file=sys.stderr)
        return 2
    if tiny:
        torch.set_num_threads(1)
    meter = Meter(args.device, args.peak_tflops)
    names = ["llava", "qwen2.5-vl"] if args.backbone == "both" else [args.backbone]
    with tempfile.TemporaryDirectory(prefix="vkel-bench-real-", dir=args.work_dir) as work:
        rows = [row for name in names for row in run_backbone(name, args, Path(work), meter)]
    print(markdown(rows, meter, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
