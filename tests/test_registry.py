"""The one registry pattern (vkel_cli/core/registry.py) behind every pluggable part."""

from __future__ import annotations

import sys

import pytest

from vkel_cli.core.errors import VkelError
from vkel_cli.core.registry import Registry


def test_lazy_targets_import_only_when_chosen_and_unknown_names_list_the_known_ones():
    reg = Registry("widget")
    reg.register("csv", "colorsys:rgb_to_hsv")
    sys.modules.pop("colorsys", None)
    assert "colorsys" not in sys.modules  # registering imported nothing
    import colorsys

    assert reg.get("csv") is colorsys.rgb_to_hsv and reg["csv"] is colorsys.rgb_to_hsv

    @reg.register("mine")
    def build():
        return 42

    assert reg.get("mine")() == 42 and reg.names() == ["csv", "mine"] and "mine" in reg
    with pytest.raises(VkelError, match=r"unknown widget 'nope' \(known: csv, mine\)"):
        reg.get("nope")


def test_every_built_in_entry_resolves():
    """Lazy "module:attribute" strings are only checked when chosen: resolve them all here."""
    from vkel_cli.models.backbones import BACKBONES
    from vkel_cli.detect.base import BACKENDS as DETECTORS
    from vkel_cli.knowledge.llm.base import BACKENDS as LLM_KINDS
    from vkel_cli.predict.run import ENGINES
    from vkel_cli.augment.retrieval import RETRIEVERS

    expected = {"backbone": ["llava", "qwen2.5-vl"], "detector backend": ["mmdet", "rtdetr"],
                "LLM kind": ["local", "openai"], "engine": ["local", "openai"],
                "retriever": ["google", "local", "urls"]}
    for registry in (BACKBONES, DETECTORS, LLM_KINDS, ENGINES, RETRIEVERS):
        assert registry.names() == expected[registry.kind]
        assert all(callable(value) or hasattr(value, "name") for value in registry.values())
