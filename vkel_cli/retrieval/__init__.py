"""Image sources for `vkel augment`: backends behind one small interface, registered by name.

A backend turns a record (and its query: the sentence plus its target entities) into up to `n`
candidate image locations, http(s) URLs or local file paths; `download.ImageStore` fetches/verifies them.
Add a backend with `register("name")` on a factory taking the CLI options as keyword arguments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

from ..errors import VkelError
from ..records import Record


class Retriever(ABC):
    name: str = "?"

    @abstractmethod
    def candidates(self, record: Record, query: str, n: int) -> list[str]:
        """Up to `n` image locations (URLs or local paths) for this record, best first.

        Raise VkelError when the source itself fails (the record's error, not a candidate's)."""


RETRIEVERS: dict[str, Callable[..., Retriever]] = {}


def register(name: str):
    def decorate(factory):
        RETRIEVERS[name] = factory
        return factory

    return decorate


def get_retriever(name: str, **options) -> Retriever:
    from . import google, index  # noqa: F401  (registers the built-in backends)

    if name not in RETRIEVERS:
        raise VkelError(f"unknown retriever {name!r} (known: {', '.join(sorted(RETRIEVERS))})")
    return RETRIEVERS[name](**options)


def build_query(record: Record) -> str:
    """The search query: the sentence, then its target entities (each once, in order)."""
    sentence = " ".join(record.get("tokens") or [])
    seen: list[str] = []
    for entity in record.get("entities") or []:
        text = entity.get("text")
        if text and text not in seen:
            seen.append(text)
    return " ".join([sentence, *seen]).strip()
