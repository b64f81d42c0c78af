"""`vkel models merge`: base + LoRA adapter written as one checkpoint that transformers loads without PEFT
and that generates exactly what base + adapter generate, on the tiny LLaVA and Qwen2.5-VL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiny_models import tiny_model, write_images

pytestmark = pytest.mark.slow

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def make_run_dir(model: Path, run: Path) -> None:
    """A run directory as `vkel train` leaves it (PEFT adapter + processor), with LoRA B initialised at random
    so the adapter changes the outputs (PEFT's default B = 0 would make merging a no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from vkel_cli.models import backbones

    backbone = backbones.detect(str(model))
    base = backbones.load_model(backbone, str(model), "fp32", device="cpu")
    torch.manual_seed(1)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=backbone.lora_targets(["q_proj", "v_proj", "o_proj"]),
                      init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(base, lora)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(20)  # large enough to change greedy answers of the tiny model
    peft_model.save_pretrained(run)
    backbones.load_processor(str(model), padding_side="left").save_pretrained(run)


def write_records(root: Path, n: int) -> Path:
    write_images(root / "img", {f"{i}.jpg": (80 + 20 * i, 60) for i in range(n)})
    path = root / "records.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "tokens": ["Kevin", "Love", "scores", *["x"] * i],
                                        "image": f"{i}.jpg"}) + "\n" for i in range(n)))
    return path


@pytest.mark.parametrize("backbone", ["llava", "qwen2.5-vl"])
def test_merged_model_generates_what_base_plus_adapter_generates(tmp_path, tmp_path_factory, vkel, backbone,
                                                                 one_thread):
    from safetensors import safe_open

    model = tiny_model(tmp_path_factory, backbone)
    run, merged = tmp_path / "run", tmp_path / "merged"
    make_run_dir(model, run)
    # The base comes from the run (adapter_config.json names it); --model overrides it.
    result = vkel("models", "merge", run, merged, env=ONE_THREAD)
    assert result.code == 0, result.stderr
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "chat_template.jinja", "vkel_merge.json"):
        assert (merged / name).is_file(), name
    assert (merged / "processor_config.json").is_file() or (merged / "preprocessor_config.json").is_file()
    assert not (merged / "adapter_config.json").exists()
    with safe_open(merged / "model.safetensors", "pt") as weights:
        keys = list(weights.keys())
    assert keys and not any("lora" in key or "base_layer" in key for key in keys)
    assert json.loads((merged / "vkel_merge.json").read_text())["base_model"] == str(model)

    data = write_records(tmp_path, 4)
    common = ["predict", "--stage", "1", "--image-root", tmp_path / "img", "--max-new-tokens", "8",
              "--batch-size", "2", "--device", "cpu", data]
    with_adapter = vkel(*common, "--model", model, "--adapter", run, env=ONE_THREAD)
    from_merged = vkel(*common, "--model", merged, env=ONE_THREAD)
    base_alone = vkel(*common, "--model", model, env=ONE_THREAD)
    assert with_adapter.code == from_merged.code == base_alone.code == 0, from_merged.stderr
    assert from_merged.stdout == with_adapter.stdout
    assert base_alone.stdout != with_adapter.stdout  # the adapter matters, so the equality above can fail

    again = vkel("models", "merge", run, merged, env=ONE_THREAD)
    assert again.code == 1 and "not empty" in again.stderr


def test_merge_loads_without_peft_and_refuses_bad_input(tmp_path, tmp_path_factory, vkel, one_thread):
    import subprocess
    import sys

    model = tiny_model(tmp_path_factory, "llava")
    run = tmp_path / "run"
    make_run_dir(model, run)
    merged = tmp_path / "merged"
    result = vkel("models", "merge", run, merged, "--model", model, "--dtype", "bfloat16", env=ONE_THREAD)
    assert result.code == 0, result.stderr
    assert json.loads((merged / "config.json").read_text())["dtype"] == "bfloat16"
    # transformers alone, with peft made unimportable: nothing of the adapter is left to need it.
    code = ("import sys; sys.modules['peft'] = None\n"
            "from transformers import AutoModelForImageTextToText\n"
            f"m = AutoModelForImageTextToText.from_pretrained({str(merged)!r})\n"
            "print(type(m).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=None, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "LlavaForConditionalGeneration", proc.stderr

    not_a_run = vkel("models", "merge", tmp_path / "img-nowhere", tmp_path / "out2")
    assert not_a_run.code == 1 and "no adapter_config.json" in not_a_run.stderr
    assert not (tmp_path / "out2").exists()
