"""Tiny random checkpoints built from configs, loadable with `from_pretrained(dir)` exactly like a hub
checkpoint: config + safetensors weights + a small byte-level BPE tokenizer trained offline + processor.

No weights can be downloaded here, so every model stage is tested on these; users can smoke-test a
pipeline on a laptop with them. Outputs are random text, which is the point: the parser must cope.
"""

from __future__ import annotations

import os
from typing import Callable

from ..core.errors import VkelError

BACKBONES = ("llava", "qwen2.5-vl", "llama", "clip")

# Words the tokenizer is trained on: prompt vocabulary, type names and common tweet words, so prompts
# and targets tokenize into few tokens. Byte-level BPE covers any other text byte by byte.
_CORPUS_WORDS = (
    "USER ASSISTANT system user assistant You are a helpful assistant . Given the tweet and the image , list "
    "the named entities and their types . Answer with entity is a(an) type ; separated no entity found "
    "person location organization product building event art miscellaneous other creature "
    "athlete politician actor singer writer city country company team club sports_team band album film "
    "whose bounding boxes are None ( 0.0 , 0.1 0.25 0.5 0.75 1.0 ) 0 1 2 3 4 5 6 7 8 9 "
    "Visual knowledge Objects in the image Entities from stage 1 Kevin Love J. R. Smith Trump New York "
    "RT @ # http https :// the of and to in is for on with at by from this that it was not knowledge about "
    "Detected objects label box fine-grained coarse type types and grounding sentence Sentence Entities"
)

LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}"
    "{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', "
    "'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != "
    "'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', "
    "'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)  # the template llava-hf/llava-1.5-7b-hf ships

QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and "
    "message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or "
    "'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)  # a reduced Qwen2.5-VL template (images and text; no video)

LLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] "
    "+ eos_token + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def _train_tokenizer(specials: list[str], vocab_size: int, seed_text: str = ""):
    """A byte-level BPE: every string tokenizes (unknown characters fall back to bytes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    from ..core import hierarchy

    types = " ".join(hierarchy.coarse_types() + hierarchy.fine_types())
    lines = [_CORPUS_WORDS, types, seed_text] * 20
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


def _fast_tokenizer(tok, **special):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False, padding_side="left",
                                   **special)


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


# The tiny shapes; benchmarks/bench_real_shape.py passes the published 7B ones through the same builders.
TINY_SHAPES = {
    "llava": {"vision": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                         "image_size": 32, "patch_size": 8, "projection_dim": 64},
              "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "num_key_value_heads": 4, "max_position_embeddings": 4096}},
    "qwen2.5-vl": {"vision": {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4,
                              "out_hidden_size": 64, "patch_size": 14, "spatial_merge_size": 2,
                              "temporal_patch_size": 2, "window_size": 56, "fullatt_block_indexes": [1]},
                   "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
                            "max_window_layers": 2,
                            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                                "mrope_section": [2, 3, 3]}},
                   "pixels": (56 * 56, 56 * 56)},
}


def _save(model, processor, out_dir: str) -> None:
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def _build_llava(out_dir: str, seed: int, shape: dict | None = None, vocab: int = 512, seed_text: str = "",
                 dtype=None) -> None:
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    shape = shape or TINY_SHAPES["llava"]
    tokenizer = _fast_tokenizer(
        _train_tokenizer(specials, vocab, seed_text), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", extra_special_tokens={"image_token": "<image>"},
    )
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    patch, px = shape["vision"]["patch_size"], shape["vision"]["image_size"]
    vision = CLIPVisionConfig(**shape["vision"])
    # A real checkpoint's embedding table may be larger than its tokenizer (llava-1.5: 32064 rows).
    text = LlamaConfig(**{"vocab_size": len(tokenizer), **shape["text"]},
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    # "default" drops the CLS feature; the processor adds it back with num_additional_image_tokens=1,
    # as llava-1.5 does: (32/8)^2 = 16 image tokens per image.
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token_id,
                         image_seq_length=(px // patch) ** 2, vision_feature_select_strategy="default",
                         vision_feature_layer=-2, pad_token_id=tokenizer.pad_token_id)
    _seed(seed)
    model = _instantiate(LlavaForConditionalGeneration, config, dtype)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    image_processor = CLIPImageProcessor(size={"shortest_edge": px}, crop_size={"height": px, "width": px})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=patch,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_CHAT_TEMPLATE)
    _save(model, processor, out_dir)


def _instantiate(model_class, config, dtype):
    """Random weights; `dtype` (a torch dtype) builds them in it directly (7B in bf16 is 14 GB, not 28)."""
    if dtype is None:
        return model_class(config)
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return model_class(config)
    finally:
        torch.set_default_dtype(before)


def _build_qwen(out_dir: str, seed: int, shape: dict | None = None, vocab: int = 512, seed_text: str = "",
                dtype=None) -> None:
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor)

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    shape = shape or TINY_SHAPES["qwen2.5-vl"]
    tokenizer = _fast_tokenizer(
        _train_tokenizer(specials, vocab, seed_text), eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    # Qwen merges 2x2 patches of 14 px: a 56x56 image gives a 4x4 grid -> 4 image tokens.
    config = Qwen2_5_VLConfig(
        vision_config=dict(shape["vision"]),
        text_config={"vocab_size": len(tokenizer), **shape["text"],
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"]},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    _seed(seed)
    model = _instantiate(Qwen2_5_VLForConditionalGeneration, config, dtype)
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    low, high = shape["pixels"]
    image_processor = Qwen2VLImageProcessor(min_pixels=low, max_pixels=high)
    from transformers import Qwen2VLVideoProcessor

    video_processor = Qwen2VLVideoProcessor(min_pixels=low, max_pixels=high)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=video_processor, chat_template=QWEN_CHAT_TEMPLATE)
    _save(model, processor, out_dir)


def _build_llama(out_dir: str, seed: int) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tokenizer = _fast_tokenizer(_train_tokenizer(specials, 512), bos_token="<s>", eos_token="</s>",
                                unk_token="<unk>", pad_token="<pad>")
    tokenizer.chat_template = LLAMA_CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    _seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _build_clip(out_dir: str, seed: int) -> None:
    build_tiny_clip(out_dir, seed=seed)


# open_clip's smallest working shape: a few kB of weights, loads in milliseconds.
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def build_tiny_clip(directory: str, *, seed: int = 0, config: dict | None = None) -> str:
    """Write a tiny random open_clip model in open_clip's `local-dir:` layout (config + weights), for
    tests, benchmarks and offline demos. Returns the directory (usable as --clip-model)."""
    import json

    import open_clip
    import torch

    os.makedirs(directory, exist_ok=True)
    model_cfg = json.loads(json.dumps(config or TINY_CONFIG))
    torch.manual_seed(seed)
    model = open_clip.CLIP(**model_cfg)
    with open(os.path.join(directory, "open_clip_config.json"), "w", encoding="utf-8") as handle:
        json.dump({"model_cfg": model_cfg, "preprocess_cfg": {}}, handle, indent=1)
    torch.save(model.state_dict(), os.path.join(directory, "open_clip_pytorch_model.bin"))
    return directory


_BUILDERS: dict[str, Callable[[str, int], None]] = {
    "llava": _build_llava,
    "qwen2.5-vl": _build_qwen,
    "llama": _build_llama,
    "clip": _build_clip,  # open_clip `local-dir:` layout, for `vkel augment --clip-model DIR`
}


def build_shaped(out_dir: str, backbone: str, shape: dict, *, seed: int = 0, vocab: int = 512, seed_text: str = "",
                 dtype=None) -> str:
    """A random checkpoint of `backbone` ("llava" or "qwen2.5-vl") with the config numbers of `shape` (as
    TINY_SHAPES), a byte-level BPE of `vocab` tokens trained on the prompt words and `seed_text`, and
    weights built in `dtype`; written like build_tiny's."""
    builders = {"llava": _build_llava, "qwen2.5-vl": _build_qwen}
    if backbone not in builders:
        raise VkelError(f"no shaped build for {backbone!r}; choose llava or qwen2.5-vl")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise VkelError(f"{out_dir} exists and is not empty")
    os.makedirs(out_dir, exist_ok=True)
    builders[backbone](out_dir, seed, shape=shape, vocab=vocab, seed_text=seed_text, dtype=dtype)
    return out_dir


def build_tiny(out_dir: str, backbone: str = "llava", seed: int = 0) -> str:
    """Write a tiny random checkpoint of `backbone` into `out_dir` (created); returns out_dir."""
    if backbone not in _BUILDERS:
        raise VkelError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise VkelError(f"{out_dir} exists and is not empty")
    os.makedirs(out_dir, exist_ok=True)
    _BUILDERS[backbone](out_dir, seed)
    return out_dir
