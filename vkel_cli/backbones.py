"""Image-text backbones by name: how to load one, wrap a prompt and an image in its chat format, and
which modules LoRA adapts. `--model` is a hub id or a local directory (e.g. from `vkel models tiny`).

Add a backbone: subclass Backbone, register it in BACKBONES with the config `model_type`s it serves.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import VkelError

DTYPES = ("auto", "bf16", "fp16", "fp32")


class Backbone:
    name = ""
    model_types: tuple[str, ...] = ()
    # LoRA adapts the language model only: plain ["q_proj", "v_proj"] would also match the vision tower's
    # attention (CLIP has q_proj/v_proj too), so target modules are a regex anchored on the LM.
    lm_pattern = r".*language_model.*\.({names})"

    def model_class(self):
        raise NotImplementedError

    def lora_targets(self, names: list[str]) -> str:
        return self.lm_pattern.format(names="|".join(names))

    def messages(self, prompt: str) -> list[dict]:
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]

    def prompt_text(self, processor, prompt: str) -> str:
        """The full model input text (chat template, image placeholder, generation prompt). A literal
        image token in the tweet would make the processor miscount image features: it is blanked."""
        prompt = prompt.replace(processor.image_token, " ")
        return processor.apply_chat_template(self.messages(prompt), add_generation_prompt=True, tokenize=False)

    def target_text(self, processor, target: str) -> str:
        """What follows the generation prompt in training: the answer and the end-of-turn token."""
        return f" {target}{processor.tokenizer.eos_token}"

    def image_token_id(self, processor) -> int:
        return processor.image_token_id


class Llava(Backbone):
    name = "llava"
    model_types = ("llava",)

    def model_class(self):
        from transformers import LlavaForConditionalGeneration

        return LlavaForConditionalGeneration


class QwenVL(Backbone):
    name = "qwen2.5-vl"
    model_types = ("qwen2_5_vl",)

    def model_class(self):
        from transformers import Qwen2_5_VLForConditionalGeneration

        return Qwen2_5_VLForConditionalGeneration

    def target_text(self, processor, target: str) -> str:
        # The generation prompt ends with "assistant\n"; the turn ends with <|im_end|> (the eos).
        return f"{target}<|im_end|>"


BACKBONES: dict[str, Backbone] = {b.name: b for b in (Llava(), QwenVL())}


def _model_type(model: str) -> str | None:
    """config.model_type of a local dir, or of a hub id (config fetched/cached by transformers)."""
    path = os.path.join(model, "config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("model_type")
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model).model_type
    except (OSError, ValueError) as err:
        raise VkelError(f"cannot read the model config: {err}", model) from None


def detect(model: str, backbone: str | None = None) -> Backbone:
    if backbone and backbone != "auto":
        if backbone not in BACKBONES:
            raise VkelError(f"unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
        return BACKBONES[backbone]
    model_type = _model_type(model)
    for candidate in BACKBONES.values():
        if model_type in candidate.model_types:
            return candidate
    raise VkelError(f"no backbone for model_type {model_type!r} (known: {', '.join(BACKBONES)}); "
                    "pass --backbone", model)


def resolve_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str, device: str):
    """auto: bf16 on a GPU that supports it, fp16 on other GPUs, fp32 on CPU."""
    import torch

    if dtype not in DTYPES:
        raise VkelError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]


def load_processor(model: str, padding_side: str = "left"):
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(model)
    except (OSError, ValueError) as err:
        raise VkelError(f"cannot load the processor: {err}", model) from None
    processor.tokenizer.padding_side = padding_side
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    return processor


def load_model(backbone: Backbone, model: str, dtype: str = "auto", device: str | None = "auto") -> Any:
    """The base model in eval mode; `device=None` leaves it on CPU (the Trainer places it)."""
    target = resolve_device(device) if device is not None else "cpu"
    torch_dtype = resolve_dtype(dtype, target if device is not None else resolve_device("auto"))
    try:
        loaded = backbone.model_class().from_pretrained(model, dtype=torch_dtype)
    except (OSError, ValueError) as err:
        raise VkelError(f"cannot load the model: {err}", model) from None
    if device is not None:
        loaded.to(target)
    return loaded.eval()


def load_adapter(model: Any, adapter: str, merge: bool = True) -> Any:
    """Apply a PEFT adapter directory (a `vkel train` run dir); merged for faster generation."""
    from peft import PeftModel

    if not os.path.isfile(os.path.join(adapter, "adapter_config.json")):
        raise VkelError("not a LoRA adapter directory (no adapter_config.json); pass a `vkel train` run dir",
                        adapter)
    peft_model = PeftModel.from_pretrained(model, adapter)
    return (peft_model.merge_and_unload() if merge else peft_model).eval()
