"""`vkel models merge RUN_DIR OUT_DIR`: the LoRA adapter of a `vkel train` run folded into its base weights,
written as a complete checkpoint (weights, config, generation config, processor, tokenizer, chat template).

The result loads with `from_pretrained(OUT_DIR)` (no PEFT) and vLLM serves it like any hub checkpoint,
without `--enable-lora`; its generations are those of base + adapter (PEFT's merge_and_unload, the path
`vkel predict --adapter` takes). The directory appears whole or not at all: it is written beside OUT_DIR
and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from ..core.errors import VkelError

PROVENANCE_FILE = "vkel_merge.json"


def base_model_of(run_dir: str) -> str | None:
    """The base model a run was trained on: train_args.json's --model, else the adapter config's."""
    for name, keys in (("train_args.json", ("options", "model")), ("adapter_config.json", ("base_model_name_or_path",))):
        try:
            with open(os.path.join(run_dir, name), encoding="utf-8") as handle:
                value = json.load(handle)
            for key in keys:
                value = value[key]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(value, str) and value:
            return value
    return None


def merge_adapter(run_dir: str, out_dir: str, model: str | None = None, dtype: str = "auto") -> str:
    """Write base + adapter of `run_dir` merged into `out_dir` (absent or empty); returns out_dir.
    `dtype`: auto keeps the base checkpoint's own dtype (what it is served in), else bf16/fp16/fp32."""
    from .. import __version__
    from . import backbones
    from .device import canonical_dtype, resolve_dtype

    if not os.path.isfile(os.path.join(run_dir, "adapter_config.json")):
        raise VkelError("not a LoRA adapter directory (no adapter_config.json); pass a `vkel train` run dir", run_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise VkelError("the output directory exists and is not empty", out_dir)
    base = model or base_model_of(run_dir)
    if not base:
        raise VkelError("the run does not name its base model; pass --model", run_dir)
    backbone = backbones.detect(base)
    name = canonical_dtype(dtype)
    torch_dtype = "auto" if name == "auto" else resolve_dtype(name, "cpu")
    try:
        loaded = backbone.model_class().from_pretrained(base, dtype=torch_dtype, **backbones.hub_kwargs(base))
    except (OSError, ValueError) as err:
        raise VkelError(f"cannot load the model: {err}", base) from None
    merged = backbones.load_adapter(loaded, run_dir, merge=True)
    # The run dir's processor is the one the adapter was trained with (its pixel budget included).
    source = run_dir if os.path.isfile(os.path.join(run_dir, "processor_config.json")) else base
    processor = backbones.load_processor(source, padding_side="left", backbone=backbone)

    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.", dir=parent)
    try:
        merged.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
        with open(os.path.join(staging, PROVENANCE_FILE), "w", encoding="utf-8") as handle:
            json.dump({"base_model": base, "adapter": os.path.abspath(run_dir), "vkel": __version__,
                       "dtype": str(merged.dtype).removeprefix("torch.")}, handle, indent=2)
        os.chmod(staging, 0o777 & ~_umask())
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty, checked above
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
