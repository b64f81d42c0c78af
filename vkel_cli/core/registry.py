"""One pattern for every pluggable part: a named Registry (detector backends, LLM endpoint kinds,
retrievers, backbones, prediction engines).

An entry is the object itself or a lazy "module:attribute" string, imported the first time it is chosen,
so a backend's heavy libraries load only when it is used. A new backend is one `register` call (or the
decorator form); choosing an unknown name is one clear error that lists the known ones.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterator

from .errors import VkelError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind  # what an entry is, for messages: "detector backend", "retriever", ...
        self._entries: dict[str, Any] = {}

    def register(self, name: str, target: Any = None) -> Any:
        """`register(name, target)`, or `@register(name)` on a class or factory."""
        if target is None:
            def decorate(value):
                self._entries[name] = value
                return value

            return decorate
        self._entries[name] = target
        return target

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise VkelError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        target = self._entries[name]
        if isinstance(target, str):  # "module:attribute", imported now that it is chosen
            module_name, _, attribute = target.partition(":")
            target = self._entries[name] = getattr(importlib.import_module(module_name), attribute)
        return target

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def values(self) -> list[Any]:
        return [self.get(name) for name in self._entries]


__all__ = ["Registry"]
