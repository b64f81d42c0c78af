"""Tiny random checkpoints shared by the model tests: built once per test session (a few seconds each)."""

from __future__ import annotations

from pathlib import Path

_BUILT: dict[str, Path] = {}


def tiny_model(tmp_path_factory, backbone: str) -> Path:
    if backbone not in _BUILT:
        from vkel_cli.models.tiny import build_tiny

        out = tmp_path_factory.mktemp(f"tiny-{backbone}") / "model"
        build_tiny(str(out), backbone, seed=0)
        _BUILT[backbone] = out
    return _BUILT[backbone]


def write_images(root: Path, names_sizes: dict[str, tuple[int, int]]) -> None:
    """Small solid-colour JPEGs, one per name, of the given (width, height)."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for i, (name, size) in enumerate(names_sizes.items()):
        Image.new("RGB", size, ((40 * i) % 256, 120, 200)).save(root / name)
