"""The LLM interface: an Endpoint answers chat messages with a Completion.

Backends register a factory under a kind name ("openai", "local"); config.py builds endpoints
from an EndpointSpec through that registry, so a new backend is one module and one register call.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...core.errors import VkelError
from ...core.registry import Registry

Messages = list[dict]


@dataclass
class Completion:
    text: str
    prompt_tokens: int | None = 0  # None: the server reported no (or a malformed) usage
    completion_tokens: int | None = 0
    cached: bool = False


class Endpoint(ABC):
    """One named LLM. `complete` is called from several threads at once, at most
    `max_concurrency` at a time per endpoint (callers bound it)."""

    name: str
    model: str
    max_concurrency: int = 1
    params: dict

    @abstractmethod
    def complete(self, messages: Messages, **params) -> Completion:
        """Answer OpenAI-format chat `messages`; `params` (temperature, max_tokens...) override the
        endpoint's defaults. Raises VkelError with a secret-free message after the last retry."""

    def identity(self) -> str:
        """What the cache keys on besides the messages and params: the model, and where it runs."""
        return self.model

    def merged_params(self, params: dict) -> dict:
        return {**(getattr(self, "params", None) or {}), **params}


@dataclass
class EndpointSpec:
    """An endpoint as configured (TOML table or inline --llm), before it is built."""

    name: str
    kind: str = "openai"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    max_concurrency: int = 4
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float = 60.0
    retries: int = 4
    path: str | None = None  # local models


# kind -> a factory taking an EndpointSpec ("module:factory", imported when an endpoint of that kind is built;
# local.py imports torch only when its model loads).
BACKENDS = Registry("LLM kind")
BACKENDS.register("openai", "vkel_cli.knowledge.llm.openai:_from_spec")
BACKENDS.register("local", "vkel_cli.knowledge.llm.local:_from_spec")
register_backend = BACKENDS.register


def build(spec: EndpointSpec) -> Endpoint:
    try:
        factory = BACKENDS.get(spec.kind)
    except VkelError as err:
        raise VkelError(f"LLM {spec.name!r}: {err.message}") from None
    return factory(spec)


def request_key(identity: str, messages: Messages, params: dict) -> str:
    """A stable digest of everything that determines an answer."""
    blob = orjson.dumps([identity, messages, params], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


def message_text(message: dict) -> str:
    """The text of a message whose content is a string or a list of parts (images dropped)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
    return ""
