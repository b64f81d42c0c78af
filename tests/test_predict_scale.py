"""`vkel predict` at real scale: torchrun over 2 processes, per-record retry of a failing batch, bounded
prompts, a fast failure without the hub, Qwen2.5-VL's pixel budget, and the one dtype vocabulary."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiny_models import tiny_model, write_images

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ENTITY = {"text": "Kevin Love", "start": 0, "end": 2, "coarse": "person", "fine": "athlete", "boxes": [[10, 6, 40, 48]]}


def write_records(root: Path, n: int, sizes=None) -> Path:
    sizes = sizes or {}
    write_images(root / "img", {f"{i}.jpg": sizes.get(i, (80, 60)) for i in range(n)})
    path = root / "records.jsonl"
    with open(path, "w") as handle:
        for i in range(n):
            record = {"id": f"t{i}", "tokens": ["Kevin", "Love", "scores", *(["more"] * i), str(i)],
                      "image": f"{i}.jpg", "entities": [ENTITY]}
            handle.write(json.dumps(record) + "\n")
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed once the socket is: connections are refused


@pytest.mark.slow
def test_torchrun_two_processes_write_the_single_process_stream(tmp_path, tmp_path_factory, vkel):
    model = tiny_model(tmp_path_factory, "llava")
    data = write_records(tmp_path, 7)
    (tmp_path / "img" / "3.jpg").unlink()  # a per-record error in rank 1's part of the first round
    args = ["predict", "--stage", "1", "--model", model, "--image-root", tmp_path / "img", "--batch-size", "2",
            "--max-new-tokens", "6", "--on-error", "skip", "--device", "cpu"]
    single = vkel(*args, data, env=ONE_THREAD)
    assert single.code == 1 and "t3" in single.stderr  # skip: written with the error, exit 1 at the end
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    env = {**os.environ, **ONE_THREAD, "MASTER_ADDR": "127.0.0.1"}
    # 7 records, 2 ranks x batch 2: rounds of 4 (t2, t3 on rank 1) and 3 (t6 alone on rank 1).
    proc = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", str(closed_port()), "-m", "vkel_cli",
                           *map(str, args), "-"], input=data.read_bytes(), capture_output=True, env=env, timeout=600)
    stderr = proc.stderr.decode()
    assert proc.stdout == single.stdout, stderr
    assert [r["id"] for r in map(json.loads, proc.stdout.splitlines())] == [f"t{i}" for i in range(7)]
    assert "image not found" in json.loads(proc.stdout.splitlines()[3])["meta"]["errors"]["predict"]
    assert "skipped (at record 't3')" in stderr
    assert proc.returncode != 0  # rank 0 exits 1 (a skipped record), torchrun reports it


@pytest.mark.slow
def test_a_failing_batch_is_retried_one_record_at_a_time(tmp_path, tmp_path_factory, one_thread):
    from vkel_cli.core.errors import ErrorPolicy
    from vkel_cli.predict.jobs import PredictOptions
    from vkel_cli.predict.run import predict

    model = tiny_model(tmp_path_factory, "qwen2.5-vl")
    # A 300x1 strip: Qwen2.5-VL's processor refuses aspect ratios over 200 (ValueError), batch or not.
    data = write_records(tmp_path, 4, sizes={2: (300, 1)})
    lines = data.read_text().splitlines()

    def run(batch_size):
        opts = PredictOptions(stage=1, model=str(model), batch_size=batch_size, max_new_tokens=5,
                              image_root=str(tmp_path / "img"), device="cpu")
        policy = ErrorPolicy("skip")
        return list(predict(opts, ((json.loads(line), None) for line in lines), policy)), policy

    batched, policy = run(4)
    assert [r["id"] for r in batched] == ["t0", "t1", "t2", "t3"]
    assert policy.skipped == 1
    error = batched[2]["meta"]["errors"]["predict"]
    assert error.startswith("generation failed: ValueError") and "aspect ratio" in error
    assert "stage1" not in batched[2]
    single, _ = run(1)
    raw = [r["meta"].get("generation", {}).get("stage1", {}).get("raw") for r in batched]
    assert raw == [r["meta"].get("generation", {}).get("stage1", {}).get("raw") for r in single]
    assert all(raw[i] is not None for i in (0, 1, 3))


@pytest.mark.slow
def test_a_ten_megabyte_record_is_a_per_record_error(tmp_path, tmp_path_factory, vkel):
    model = tiny_model(tmp_path_factory, "llava")
    data = write_records(tmp_path, 3)
    records = [json.loads(line) for line in data.read_text().splitlines()]
    records[1]["tokens"] = ["word"] * 2_000_000  # 10 MB of tokens
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    start = time.monotonic()
    result = vkel("predict", "--stage", "1", "--model", model, "--image-root", tmp_path / "img", "--max-new-tokens",
                  "4", "--on-error", "skip", "--device", "cpu", data, env=ONE_THREAD)
    elapsed = time.monotonic() - start
    out = result.records()
    assert result.code == 1 and [r["id"] for r in out] == ["t0", "t1", "t2"]
    assert "exceeds the cap of 32,000" in out[1]["meta"]["errors"]["predict"]
    assert "stage1" in out[0] and "stage1" in out[2] and "stage1" not in out[1]
    assert elapsed < 120


@pytest.mark.parametrize("command", ["predict", "train"])
def test_no_hub_fails_in_seconds_with_one_line(tmp_path, vkel, command):
    data = write_records(tmp_path, 1)
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "HF_HUB_OFFLINE": "",
           "HF_HOME": str(tmp_path / "hf")}  # an empty cache
    extra = ["--output-dir", tmp_path / "run"] if command == "train" else []
    start = time.monotonic()
    result = vkel(command, "--model", "nobody-here/no-such-model-7b", *extra, "--image-root", tmp_path / "img",
                  data, env=env, timeout=120)
    elapsed = time.monotonic() - start
    assert result.code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not reachable" in lines[0] and "--model DIR" in lines[0], result.stderr
    assert "nobody-here/no-such-model-7b" in lines[0]
    assert elapsed < 20, elapsed  # transformers alone retries for ~30 s per file
    assert result.stdout == b"" and not (tmp_path / "run").exists()


def test_qwen_pixel_budget_defaults_and_options(tmp_path_factory):
    from PIL import Image

    from vkel_cli.models import backbones
    from vkel_cli.core.errors import VkelError

    model = str(tiny_model(tmp_path_factory, "qwen2.5-vl"))
    qwen = backbones.BACKBONES["qwen2.5-vl"]

    def image_tokens(processor, size):
        enc = processor(text=["<|image_pad|>"], images=[Image.new("RGB", size)], return_tensors="pt")
        return int((enc["input_ids"][0] == processor.image_token_id).sum())

    # The tiny checkpoint asks for 56x56 pixels at most: below the default cap, so it keeps its own budget.
    assert image_tokens(backbones.load_processor(model), (600, 400)) == 2  # 56x28 pixels
    processor = backbones.load_processor(model, min_pixels=28 * 28, max_pixels=16 * 28 * 28, backbone=qwen)
    assert image_tokens(processor, (600, 400)) <= 16 and image_tokens(processor, (600, 400)) >= 12
    with pytest.raises(VkelError, match="min-pixels"):
        backbones.load_processor(model, min_pixels=5000, max_pixels=4000)
    llava = str(tiny_model(tmp_path_factory, "llava"))
    with pytest.raises(VkelError, match="apply to Qwen2.5-VL"):
        backbones.load_processor(llava, max_pixels=4000)


def test_default_budget_fits_the_benchmarks_largest_image(shared_data):
    """Qwen2.5-VL-7B's published processor (patch 14, merge 2, 3136..12845056 pixels) under the default cap:
    every benchmark image (sizes from the XML files) spends at most 576 tokens; uncapped, up to 1,849."""
    import re

    from transformers import Qwen2VLImageProcessor

    from vkel_cli.models import backbones

    sizes = set()
    for path in (shared_data / "gmner-v2" / "xml").glob("*.xml"):
        text = path.read_text(encoding="utf-8")
        sizes.add((int(re.search(r"<width>(\d+)", text)[1]), int(re.search(r"<height>(\d+)", text)[1])))
    published = Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2, min_pixels=3136,
                                      max_pixels=12845056)

    class Processor:  # what set_pixels touches
        image_processor = published

    def tokens(width, height):
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        size = published.size
        h, w = smart_resize(height, width, factor=28, min_pixels=size.shortest_edge, max_pixels=size.longest_edge)
        return (h // 28) * (w // 28)

    assert max(tokens(w, h) for w, h in sizes) == 1849
    backbones.BACKBONES["qwen2.5-vl"].set_pixels(Processor, None, None)
    assert published.size.longest_edge == backbones.DEFAULT_MAX_PIXELS == 576 * 28 * 28
    assert max(tokens(w, h) for w, h in sizes) == 576
    assert len(sizes) > 100


def test_one_dtype_vocabulary():
    import torch

    from vkel_cli.detect.base import resolve_dtype as detect_dtype
    from vkel_cli.models.device import canonical_dtype, resolve_device, resolve_dtype
    from vkel_cli.core.errors import VkelError

    assert [canonical_dtype(n) for n in ("bfloat16", "float16", "float32", "BF16", None)] == \
        ["bf16", "fp16", "fp32", "bf16", "auto"]
    assert resolve_dtype("auto", "cpu") is torch.float32 and detect_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("float16", "cpu") is resolve_dtype("fp16", "cpu") is torch.float16
    assert detect_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(VkelError, match="--dtype must be one of"):
        resolve_dtype("int8", "cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") in ("cpu", "mps")
        with pytest.raises(VkelError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_dtype_aliases_on_the_command_line(vkel):
    for command in ("predict", "detect"):
        bad = vkel(command, "--dtype", "int8", input=b"")
        assert bad.code == 2 and "bfloat16" in bad.stderr
