"""Image sources for `vkel augment`: backends behind one small interface, registered by name.

A backend turns a record (and its query: the sentence plus its target entities) into up to `n`
candidate image locations, http(s) URLs or local file paths; `download.ImageStore` fetches/verifies them.
Add a backend with `register("name", "module:factory")`, the factory taking the CLI options as keyword
arguments (vkel_cli/core/registry.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from ...core.records import Record
from ...core.registry import Registry


class Retriever(ABC):
    name: str = "?"

    @abstractmethod
    def candidates(self, record: Record, query: str, n: int) -> list[str]:
        """Up to `n` image locations (URLs or local paths) for this record, best first.

        Raise VkelError when the source itself fails (the record's error, not a candidate's)."""


# name -> a factory taking the CLI options as keyword arguments ("module:factory", imported when chosen).
RETRIEVERS = Registry("retriever")
RETRIEVERS.register("google", "vkel_cli.augment.retrieval.google:from_options")
RETRIEVERS.register("local", "vkel_cli.augment.retrieval.index:local_from_options")
RETRIEVERS.register("urls", "vkel_cli.augment.retrieval.index:urls_from_options")
register = RETRIEVERS.register


def get_retriever(name: str, **options) -> Retriever:
    return RETRIEVERS.get(name)(**options)


def build_query(record: Record) -> str:
    """The search query: the sentence, then its target entities (each once, in order)."""
    sentence = " ".join(record.get("tokens") or [])
    seen: list[str] = []
    for entity in record.get("entities") or []:
        text = entity.get("text")
        if text and text not in seen:
            seen.append(text)
    return " ".join([sentence, *seen]).strip()
