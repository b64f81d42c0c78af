"""Models named by hub id: fail fast, with one line, when the Hugging Face hub cannot be reached.

transformers retries an unreachable hub for about 30 s per file before giving up (a minute or more for a
config, a processor and weights). A model id that is not a local directory is checked once here: found in
the local cache -> loaded from it without network calls; else the hub's address gets one TCP connect
with a short timeout, and an unreachable hub is a VkelError naming the remedy (`--model DIR`).
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from ..core.errors import VkelError

CONNECT_TIMEOUT = 3.0
_CHECKED: dict[str, dict] = {}


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cached(model: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not a valid repo id (a path that does not exist, say)
        return False
    return isinstance(found, str)


def reachable(url: str | None = None, timeout: float = CONNECT_TIMEOUT) -> bool:
    parts = urlsplit(url or endpoint())
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_kwargs(model: str) -> dict:
    """Extra from_pretrained arguments for `model`: {} (a directory, or the hub answers),
    {"local_files_only": True} (cached, hub unreachable); VkelError when neither works."""
    if os.path.isdir(model):
        return {}
    if model in _CHECKED:
        return _CHECKED[model]
    if os.path.sep in model.strip("/").replace("/", "", 1) or model.startswith((".", "/", "~")):
        raise VkelError("model directory not found (give --model DIR, or a hub id such as "
                        "llava-hf/llava-1.5-7b-hf)", model)
    cached = _cached(model)
    if _offline() or not reachable():
        if not cached:
            why = "HF_HUB_OFFLINE is set" if _offline() else f"the Hugging Face hub ({endpoint()}) is not reachable"
            raise VkelError(f"not a local directory and not in the Hugging Face cache, and {why}; "
                            "give --model DIR (a downloaded checkpoint)", model)
        result = {"local_files_only": True}
    else:
        result = {}
    _CHECKED[model] = result
    return result
