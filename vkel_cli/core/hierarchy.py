"""The FMNERG type hierarchy: 8 coarse types, 51 fine types (shipped with the package)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def load() -> dict:
    text = resources.files("vkel_cli.resources").joinpath("type_hierarchy.json").read_text("utf-8")
    return json.loads(text)


def coarse_types() -> list[str]:
    return list(load()["coarse_to_fine"])


def fine_types(coarse: str | None = None) -> list[str]:
    table = load()["coarse_to_fine"]
    if coarse is None:
        return [fine for fines in table.values() for fine in fines]
    return list(table.get(coarse, []))


def coarse_of(fine: str) -> str | None:
    return load()["fine_to_coarse"].get(fine)
