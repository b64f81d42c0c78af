"""`vkel models tiny`: complete checkpoints that load through the same path as hub checkpoints."""

from __future__ import annotations

import json

import pytest

from tiny_models import tiny_model

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backbone", ["llava", "qwen2.5-vl"])
def test_tiny_multimodal_loads_and_generates(tmp_path_factory, backbone):
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = tiny_model(tmp_path_factory, backbone)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "chat_template.jinja"):
        assert (path / name).is_file(), name
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Tweet: Kevin Love 🏀 ünï"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image = Image.new("RGB", (90, 60), (10, 200, 30))
    enc = processor(text=[text, text + " more"], images=[image, image], return_tensors="pt", padding=True)
    assert processor.tokenizer.padding_side == "left"
    # The image placeholder is expanded to the number of visual features the model produces.
    n_image = (enc["input_ids"][0] == processor.image_token_id).sum().item()
    if backbone == "llava":
        assert n_image == 16  # (32 px / patch 8)^2
    else:
        assert n_image == enc["image_grid_thw"][0].prod().item() // 4  # 2x2 patches merge into one token
    # Every character tokenizes (byte-level BPE): no unknown tokens.
    ids = processor.tokenizer("Kevin Love 🏀 ünï", add_special_tokens=False)["input_ids"]
    assert processor.tokenizer.unk_token_id not in ids
    assert processor.tokenizer.decode(ids) == "Kevin Love 🏀 ünï"
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape == (2, enc["input_ids"].shape[1] + 5)


def test_tiny_llama_text_only(tmp_path_factory):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model(tmp_path_factory, "llama")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Who is Kevin Love?"}], tokenize=False,
                                         add_generation_prompt=True)
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == enc["input_ids"].shape[1] + 4


def test_same_seed_same_weights_and_cli(tmp_path, vkel):
    from safetensors.torch import load_file

    from vkel_cli.models.tiny import build_tiny

    build_tiny(str(tmp_path / "a"), "llama", seed=3)
    result = vkel("models", "tiny", tmp_path / "b", "--backbone", "llama", "--seed", "3")
    assert result.code == 0, result.stderr
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["model_type"] == "llama"
    again = vkel("models", "tiny", tmp_path / "b", "--backbone", "llama")
    assert again.code == 1 and "not empty" in again.stderr
