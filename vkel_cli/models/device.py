"""Device and dtype: the one rule for train, predict, detect, CLIP scoring and local LLMs.

One `--dtype` vocabulary everywhere: `auto|bf16|fp16|fp32`, with torch's names `bfloat16|float16|float32`
accepted as aliases. torch is imported only when a value is resolved (command modules import `DTYPE_NAMES`).
"""

from __future__ import annotations

import os
from typing import Literal

from ..core.errors import VkelError

DTYPE_NAMES = ("auto", "bf16", "fp16", "fp32")
DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}
# The typer option type: the canonical names and torch's spellings (a wrong name is a usage error, exit 2).
Dtype = Literal["auto", "bf16", "fp16", "fp32", "bfloat16", "float16", "float32"]
DTYPE_HELP = "auto, bf16, fp16 or fp32 (bfloat16/float16/float32 accepted)."


def canonical_dtype(name: str | None) -> str:
    """`bfloat16` -> `bf16`, ...; None/"" -> auto; VkelError for anything else."""
    key = (name or "auto").strip().lower()
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_NAMES:
        raise VkelError(f"--dtype must be one of {', '.join(DTYPE_NAMES)} (or bfloat16, float16, float32), "
                        f"not {name!r}")
    return key


def resolve_device(device: str | None = "auto", mps: bool = True) -> str:
    """`auto` -> cuda (cuda:LOCAL_RANK under torchrun) when available, else Apple's mps (when `mps`), else cpu. An explicit CUDA device on a
    machine without CUDA is an error here rather than a stack trace at the first tensor move."""
    import torch

    if device in ("auto", "", None):
        if torch.cuda.is_available():
            # Under torchrun each process takes its own GPU.
            local = os.environ.get("LOCAL_RANK")
            return f"cuda:{int(local) % torch.cuda.device_count()}" if local and local.isdigit() else "cuda"
        if mps and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VkelError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    return device


def resolve_dtype(dtype: str | None, device: str, cuda_auto: str = "bf16"):
    """The torch dtype for a name of the vocabulary. `auto`: fp32 off CUDA; on CUDA `cuda_auto` (bf16 by
    default, fp16 where the GPU has no bf16; detection passes fp16, what its kernels are tuned for)."""
    import torch

    name = canonical_dtype(dtype)
    if name == "auto":
        if not device.startswith("cuda"):
            return torch.float32
        if cuda_auto == "bf16" and not torch.cuda.is_bf16_supported():
            return torch.float16
        name = cuda_auto
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]
