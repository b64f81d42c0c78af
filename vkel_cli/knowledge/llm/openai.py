"""OpenAI-compatible chat completions over HTTP: OpenAI, Gemini's OpenAI endpoint, vLLM, Ollama,
llama.cpp's server, Together, Groq... One pooled requests.Session per thread (vkel_cli.fetch.http).

The API key is read from the environment variable named in the config, registered as a secret
(so every message vkel prints has it redacted) and sent only in the Authorization header. A server
that echoes it back (in an answer or an error) gets it redacted before the text goes anywhere: the
record, its meta, the cache. Answers larger than `max_answer_bytes` (default 8 MB) are refused.
"""

from __future__ import annotations

import os

from ...core.errors import VkelError, redact, redact_excerpt, register_secret
from ...fetch.http import DEFAULT_MAX_BYTES, HTTPFailure, InvalidResponse, RetryPolicy, request
from .base import Completion, Endpoint, EndpointSpec, Messages


def parse_chat_response(response) -> Completion:
    """The Completion in a /chat/completions body; InvalidResponse when it is not one."""
    try:
        body = response.json()
    except ValueError as err:  # truncated or not JSON at all
        raise InvalidResponse(f"body is not JSON ({err}); starts {redact_excerpt(response.text, 80)!r}") from None
    try:
        message = body["choices"][0]["message"]
        text = message.get("content")
        if text is None and isinstance(message.get("reasoning_content"), str):
            text = ""  # a reasoning model that spent its budget thinking: an empty answer, not a schema error
        if not isinstance(text, str):
            raise TypeError("message.content is not a string")
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise InvalidResponse(f"not a chat completion ({type(err).__name__}: {err}); "
                              f"starts {redact_excerpt(response.text, 80)!r}") from None
    usage = body.get("usage") if isinstance(body, dict) else None
    return Completion(redact(text), _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens"))


def _tokens(usage, key: str) -> int | None:
    """A token count from the usage block; None (unknown) when it is missing or malformed: the answer
    itself is still good."""
    value = usage.get(key) if isinstance(usage, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        return None
    return int(value)


class OpenAIEndpoint(Endpoint):
    def __init__(self, name: str, base_url: str, model: str, api_key_env: str | None = None,
                 max_concurrency: int = 4, params: dict | None = None, timeout: float = 60.0, retries: int = 4,
                 backoff: float = 0.5, max_answer_bytes: int = DEFAULT_MAX_BYTES):
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise VkelError(f"LLM {name!r}: base_url must be an http(s) URL, not {base_url!r}")
        if not model:
            raise VkelError(f"LLM {name!r}: no model given (model=NAME)")
        self.name, self.model = name, model
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url if self.base_url.endswith("/chat/completions") else self.base_url + "/chat/completions"
        self.max_concurrency = max(1, int(max_concurrency))
        self.params = dict(params or {})
        self.timeout = float(timeout)  # the total deadline of one attempt
        self.max_answer_bytes = int(max_answer_bytes)
        self.policy = RetryPolicy(retries=int(retries), backoff=backoff)
        self._headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise VkelError(f"LLM {name!r}: environment variable {api_key_env} (its API key) is not set")
            register_secret(key)
            self._headers["Authorization"] = f"Bearer {key}"

    def identity(self) -> str:
        # Two servers may serve different weights under one model name: key the cache on both.
        return f"{self.model}@{self.base_url}"

    def complete(self, messages: Messages, **params) -> Completion:
        payload = {"model": self.model, "messages": messages, **self.merged_params(params)}
        result: list[Completion] = []

        def check(response):
            result.append(parse_chat_response(response))

        try:
            response = request("POST", self.url, policy=self.policy, timeout=self.timeout, check=check,
                               max_bytes=self.max_answer_bytes, json=payload, headers=self._headers)
        except HTTPFailure as err:
            raise HTTPFailure(f"LLM {self.name!r}: {err.message}", err.status, reason=err.reason,
                              permanent=err.permanent) from None
        if response.status_code >= 300 or not result:
            raise VkelError(f"LLM {self.name!r}: POST {self.url}: HTTP {response.status_code}: "
                            f"{redact_excerpt(response.text, 300)}")
        return result[-1]


def _from_spec(spec: EndpointSpec) -> OpenAIEndpoint:
    return OpenAIEndpoint(spec.name, spec.base_url, spec.model, spec.api_key_env, spec.max_concurrency,
                          spec.params, spec.timeout, spec.retries)
