"""Where vkel keeps its caches: $VKEL_CACHE, else $XDG_CACHE_HOME/vkel, else ~/.cache/vkel."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("VKEL_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "vkel"


def cache_path(*parts: str) -> Path:
    """A path under the cache directory, its parent created."""
    path = cache_dir().joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
