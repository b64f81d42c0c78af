"""Image-text backbones by name: how to load one, wrap a prompt and an image in its chat format, and
which modules LoRA adapts. `--model` is a hub id or a local directory (e.g. from `vkel models tiny`).

Add a backbone: subclass Backbone, `BACKBONES.register(name, instance)` with the config `model_type`s it serves.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .device import resolve_device, resolve_dtype  # noqa: F401 (train.py calls them through this module)
from ..core.errors import VkelError
from ..fetch.hub import hub_kwargs
from ..core.registry import Registry

# Qwen2.5-VL: one image token per 28x28 pixels (14-px patches, 2x2 merged). The hub config allows 12.8 M
# pixels (16,384 tokens); capped at 576 tokens, as many as LLaVA-1.5 spends, the benchmark's largest image
# (1200x1200) takes 576 tokens and the longest stage-2 prompt + target stays within --max-length 2048.
PIXELS_PER_TOKEN = 28 * 28
DEFAULT_MAX_PIXELS = 576 * PIXELS_PER_TOKEN
ATTN_IMPLEMENTATIONS = ("auto", "sdpa", "eager", "flash_attention_2")


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

    def set_pixels(self, processor, min_pixels: int | None, max_pixels: int | None, cap: bool = True) -> None:
        if min_pixels is not None or max_pixels is not None:
            raise VkelError(f"--min-pixels/--max-pixels apply to Qwen2.5-VL; {self.name} resizes every image to "
                            "a fixed size")


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

    def set_pixels(self, processor, min_pixels: int | None, max_pixels: int | None, cap: bool = True) -> None:
        """The image processor's pixel budget (`size` = {shortest_edge: min, longest_edge: max} pixels).
        Unset max: DEFAULT_MAX_PIXELS, or the checkpoint's own budget when that is smaller; with
        `cap=False` (a run dir's processor, saved with the budget it was trained with) the saved one."""
        import dataclasses

        image_processor = processor.image_processor
        size = image_processor.size
        low = min_pixels if min_pixels is not None else size.shortest_edge
        high = max_pixels if max_pixels is not None else min(size.longest_edge or DEFAULT_MAX_PIXELS,
                                                              DEFAULT_MAX_PIXELS if cap else 1 << 62)
        if low < PIXELS_PER_TOKEN or high < low:
            raise VkelError(f"need {PIXELS_PER_TOKEN} <= --min-pixels <= --max-pixels, got {low} and {high}")
        image_processor.size = dataclasses.replace(size, shortest_edge=low, longest_edge=high)


BACKBONES = Registry("backbone")
for _backbone in (Llava(), QwenVL()):
    BACKBONES.register(_backbone.name, _backbone)


def _model_type(model: str) -> str | None:
    """config.model_type of a local dir, or of a hub id (config fetched/cached by transformers)."""
    path = os.path.join(model, "config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("model_type")
    extra = hub_kwargs(model)  # before importing transformers: an unreachable hub fails in a second
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model, **extra).model_type
    except (OSError, ValueError) as err:
        raise VkelError(f"cannot read the model config: {err}", model) from None


def detect(model: str, backbone: str | None = None) -> Backbone:
    """The backbone for `model` (a directory or hub id); the model must be reachable (see hub.py) either way."""
    if backbone and backbone != "auto":
        chosen = BACKBONES.get(backbone)
        hub_kwargs(model)
        return chosen
    model_type = _model_type(model)
    for candidate in BACKBONES.values():
        if model_type in candidate.model_types:
            return candidate
    raise VkelError(f"no backbone for model_type {model_type!r} (known: {', '.join(BACKBONES.names())}); "
                    "pass --backbone", model)


def load_processor(model: str, padding_side: str = "left", *, min_pixels: int | None = None,
                   max_pixels: int | None = None, backbone: Backbone | None = None):
    """The processor of `model` with the pixel budget applied (Qwen2.5-VL; see set_pixels). A `vkel train`
    run dir's processor keeps the budget it was trained with unless one is given."""
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(model, **hub_kwargs(model))
    except (OSError, ValueError) as err:
        raise VkelError(f"cannot load the processor: {err}", model) from None
    backbone = backbone or _backbone_of(processor)
    if backbone is not None:
        run_dir = os.path.isfile(os.path.join(model, "adapter_config.json"))
        backbone.set_pixels(processor, min_pixels, max_pixels, cap=not run_dir)
    elif min_pixels is not None or max_pixels is not None:
        raise VkelError("--min-pixels/--max-pixels apply to Qwen2.5-VL processors only", model)
    processor.tokenizer.padding_side = padding_side
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    return processor


def _backbone_of(processor) -> Backbone | None:
    name = type(processor).__name__
    return BACKBONES["qwen2.5-vl"] if name.startswith("Qwen2_5_VL") else BACKBONES["llava"] if name.startswith(
        "Llava") else None


def _attn_kwargs(attn_implementation: str | None) -> dict:
    choice = attn_implementation or "auto"
    if choice not in ATTN_IMPLEMENTATIONS:
        raise VkelError(f"--attn-implementation must be one of {', '.join(ATTN_IMPLEMENTATIONS)}, not {choice!r}")
    if choice == "auto":
        return {}
    if choice == "flash_attention_2":
        import importlib.util

        if importlib.util.find_spec("flash_attn") is None:
            raise VkelError("--attn-implementation flash_attention_2 needs the flash-attn package "
                            "(pip install flash-attn --no-build-isolation), or choose sdpa")
    return {"attn_implementation": choice}


def load_model(backbone: Backbone, model: str, dtype: str = "auto", device: str | None = "auto", *,
               attn_implementation: str | None = "auto") -> Any:
    """The base model in eval mode; `device=None` leaves it on CPU (the Trainer places it)."""
    target = resolve_device(device) if device is not None else "cpu"
    torch_dtype = resolve_dtype(dtype, target if device is not None else resolve_device("auto"))
    try:
        loaded = backbone.model_class().from_pretrained(model, dtype=torch_dtype, **_attn_kwargs(attn_implementation),
                                                        **hub_kwargs(model))
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
    from ..core.progress import known_noise_filtered

    with known_noise_filtered():
        peft_model = PeftModel.from_pretrained(model, adapter)
    return (peft_model.merge_and_unload() if merge else peft_model).eval()
