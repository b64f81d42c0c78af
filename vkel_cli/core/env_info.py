"""What `vkel env` reports for bug reports: versions of the stack, the device, cache paths."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from .. import __version__
from .paths import cache_dir

STACK = ["typer", "rich", "orjson", "requests", "pillow", "torch", "torchvision", "transformers", "peft",
         "accelerate", "open_clip_torch", "mmcv", "mmengine", "mmdet"]


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in STACK:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info() -> dict:
    try:
        import torch
    except ImportError:
        return {"torch": None}
    info = {"cuda_available": torch.cuda.is_available(), "threads": torch.get_num_threads()}
    if info["cuda_available"]:
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def collect(with_device: bool = True) -> dict:
    return {
        "vkel": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": device_info() if with_device else None,
        "cache_dir": str(cache_dir()),
    }
