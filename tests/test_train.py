"""`vkel train`: loss masking, run directories, seeded repeatability, resume after an interruption,
PEFT loading, and a 2-process DDP run under torchrun (gloo, CPU), on tiny random models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_models import tiny_model, write_images

pytestmark = pytest.mark.slow

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # 2 shared cores: threads only contend


def make_records(root: Path, n: int = 6) -> Path:
    write_images(root / "img", {f"{i}.jpg": (80 + 10 * (i % 3), 60) for i in range(n)})
    path = root / "train.jsonl"
    with open(path, "w") as handle:
        for i in range(n):
            tokens = ["RT", "@cavs", ":", "Kevin", "Love", "in", "Cleveland", str(i)]
            entities = [{"text": "Kevin Love", "start": 3, "end": 5, "coarse": "person", "fine": "athlete",
                         "boxes": [[10, 5, 40, 50]]},
                        {"text": "Cleveland", "start": 6, "end": 7, "coarse": "location", "fine": "city", "boxes": []}]
            record = {"id": f"t{i}", "tokens": tokens, "image": f"{i}.jpg", "image_size": [80 + 10 * (i % 3), 60],
                      "entities": entities if i % 3 else [],
                      "objects": [{"label": "person", "score": 0.9, "box": [10, 5, 40, 50]}]}
            handle.write(json.dumps(record) + "\n")
    return path


def pairs_of(path: Path):
    from vkel_cli.core.records import read_records

    return read_records([str(path)])


def options(model, out, root, **overrides):
    from vkel_cli.train.run import TrainOptions

    base = dict(model=str(model), output_dir=str(out), max_steps=4, batch_size=2, grad_accum=1, logging_steps=1,
                image_root=str(root / "img"), lr=1e-3)
    return TrainOptions(**{**base, **overrides})


def losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows if "loss" in row}


@pytest.mark.parametrize("backbone,stage", [("llava", 1), ("qwen2.5-vl", 2)])
def test_collator_masks_prompt_and_image_tokens(tmp_path, tmp_path_factory, backbone, stage):
    from vkel_cli.models import backbones
    from vkel_cli.core.errors import ErrorPolicy
    from vkel_cli.train.examples import IGNORE_INDEX, Collator, ExampleOptions, SpooledExamples

    model = tiny_model(tmp_path_factory, backbone)
    data = make_records(tmp_path, 3)
    processor = backbones.load_processor(str(model), padding_side="right")
    dataset = SpooledExamples.build(pairs_of(data), ExampleOptions(stage=stage, image_root=str(tmp_path / "img"),
                                                                  noise=0.0), ErrorPolicy())
    try:
        assert len(dataset) == 3 and dataset[2]["id"] == "t2"
        batch = Collator(backbones.detect(str(model)), processor)([dataset[0], dataset[1]])
    finally:
        dataset.close()
    assert not os.path.exists(dataset.path)
    eos = processor.tokenizer.eos_token
    for row in range(2):
        labels = batch["labels"][row]
        kept = labels[labels != IGNORE_INDEX]
        decoded = processor.tokenizer.decode(kept)
        target = ("no entity found." if row == 0 else
                  ("Kevin Love is a(an) person; Cleveland is a(an) location." if stage == 1 else
                   "Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.111, 0.083, 0.444, 0.833)"
                   "; Cleveland is a(an) location and a(an) city, whose bounding boxes are None"))
        assert decoded.strip() == target + eos
        # No image token and no padding is ever a label.
        image_positions = batch["input_ids"][row] == processor.image_token_id
        assert image_positions.any() and (labels[image_positions] == IGNORE_INDEX).all()
        assert (labels[batch["attention_mask"][row] == 0] == IGNORE_INDEX).all()


def test_run_dir_resume_repeatability_and_peft_loading(tmp_path, tmp_path_factory, one_thread):
    from peft import PeftModel
    from transformers import LlavaForConditionalGeneration, TrainerCallback

    from vkel_cli.core.errors import VkelError
    from vkel_cli.train.run import train

    model = tiny_model(tmp_path_factory, "llava")
    data = make_records(tmp_path)
    full, cut = tmp_path / "full", tmp_path / "cut"
    train(options(model, full, tmp_path, save_steps=2), pairs_of(data))
    for name in ("adapter_config.json", "adapter_model.safetensors", "processor_config.json", "tokenizer.json",
                 "train_args.json", "metrics.jsonl"):
        assert (full / name).is_file(), name
    args = json.loads((full / "train_args.json").read_text())
    assert args["options"]["lora_r"] == 8 and args["seed"] == 0 and args["examples"] == 6
    assert args["versions"]["transformers"] and args["versions"]["peft"]

    with pytest.raises(VkelError, match="--resume"):
        train(options(model, full, tmp_path), pairs_of(data))

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt  # killed after checkpoint-2, before step 3 was logged

    with pytest.raises(KeyboardInterrupt):
        train(options(model, cut, tmp_path, save_steps=2), pairs_of(data), callbacks=[Crash()])
    assert (cut / "checkpoint-2").is_dir() and not (cut / "adapter_model.safetensors").exists()
    train(options(model, cut, tmp_path, save_steps=2, resume=True), pairs_of(data))
    # Same seed and data: the same loss curve, and resuming continues it exactly.
    assert sorted(losses(cut)) == [1, 2, 3, 4]
    assert losses(cut) == losses(full)

    base = LlavaForConditionalGeneration.from_pretrained(model)
    plain = PeftModel.from_pretrained(base, full)
    names = [n for n, _ in plain.named_modules() if n.endswith("lora_A")]
    assert names and all("language_model" in n for n in names)
    from safetensors.torch import load_file

    saved = load_file(full / "adapter_model.safetensors")
    assert any(v.abs().sum() > 0 for k, v in saved.items() if "lora_B" in k)  # trained, not the zero init

    train(options(model, full, tmp_path, overwrite=True, max_steps=1), pairs_of(data))
    assert sorted(losses(full)) == [1]


def test_joint_trains_on_both_stages(tmp_path, tmp_path_factory, one_thread):
    from vkel_cli.train.run import train

    model = tiny_model(tmp_path_factory, "qwen2.5-vl")
    data = make_records(tmp_path, 4)
    run = tmp_path / "joint"
    train(options(model, run, tmp_path, joint=True, max_steps=1), pairs_of(data))
    assert json.loads((run / "train_args.json").read_text())["examples"] == 8
    assert (run / "adapter_model.safetensors").is_file()


def test_ddp_two_processes_gloo(tmp_path, tmp_path_factory):
    model = tiny_model(tmp_path_factory, "llava")
    data = make_records(tmp_path, 8)
    run = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "vkel_cli", "train", "--stage", "1",
           "--model", str(model), "--output-dir", str(run), "--max-steps", "2", "--batch-size", "2",
           "--logging-steps", "1", "--image-root", str(tmp_path / "img"), str(data)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **ONE_THREAD})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == ""  # stdout carries records only
    args = json.loads((run / "train_args.json").read_text())
    assert args["world_size"] == 2
    assert args["gradient_accumulation_steps"] == 8  # ceil(30 / (2 per device x 2 processes))
    assert sorted(losses(run)) == [1, 2]
    assert (run / "adapter_model.safetensors").is_file()
