"""A local LLM through transformers (AutoModelForCausalLM + AutoTokenizer from a directory), for
fully offline runs. Greedy decoding; the tokenizer's chat template when it has one. Image parts
of messages are dropped (text-only models). torch/transformers are imported when the model loads."""

from __future__ import annotations

import os
import threading

from ...core.errors import VkelError
from .base import Completion, Endpoint, EndpointSpec, Messages, message_text

# One load at a time across endpoints: two threads importing transformers for the first time at
# once see a half-initialised module (`cannot import name 'AutoModelForCausalLM'`).
_LOAD_LOCK = threading.Lock()


class LocalEndpoint(Endpoint):
    def __init__(self, name: str, path: str, max_concurrency: int = 1, params: dict | None = None,
                 device: str | None = None):
        if not os.path.isdir(path):
            raise VkelError(f"LLM {name!r}: local model directory not found: {path}")
        self.name, self.path = name, os.path.abspath(path)
        self.model = os.path.basename(self.path.rstrip("/"))
        self.max_concurrency = 1  # one forward at a time: a second concurrent generate only thrashes
        self.params = dict(params or {})
        self.device = device
        self._lock = threading.Lock()
        self._loaded = None

    def identity(self) -> str:
        return f"local:{self.path}"

    def _load(self):
        with _LOAD_LOCK:
            return self._load_unlocked()

    def _load_unlocked(self):
        if self._loaded is None:
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as err:
                raise VkelError(f"LLM {self.name!r}: the local backend needs torch and transformers ({err}); "
                                "pip install 'vkel[models]'") from None
            try:
                tokenizer = AutoTokenizer.from_pretrained(self.path)
                model = AutoModelForCausalLM.from_pretrained(self.path)
            except (OSError, ValueError) as err:
                raise VkelError(f"LLM {self.name!r}: cannot load a causal LM from {self.path}: {err}") from None
            from ...models.device import resolve_device

            device = resolve_device(self.device, mps=False)
            model.to(device).eval()
            self._loaded = (torch, tokenizer, model, device)
        return self._loaded

    def _prompt(self, tokenizer, messages: Messages) -> str:
        flat = [{"role": m.get("role", "user"), "content": message_text(m)} for m in messages]
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(flat, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in flat) + "\n\nassistant:"

    def complete(self, messages: Messages, **params) -> Completion:
        params = self.merged_params(params)
        max_new = int(params.get("max_tokens") or params.get("max_new_tokens") or 256)
        with self._lock:
            torch, tokenizer, model, device = self._load()
            text = self._prompt(tokenizer, messages)
            # The chat template already wrote the BOS token when it has one.
            inputs = tokenizer(text, return_tensors="pt", add_special_tokens=not getattr(tokenizer, "chat_template", None))
            inputs = {k: v.to(device) for k, v in inputs.items()}
            with torch.inference_mode():
                output = model.generate(**inputs, max_new_tokens=max_new, do_sample=False,
                                        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            new = output[0, inputs["input_ids"].shape[1]:]
            answer = tokenizer.decode(new, skip_special_tokens=True)
        return Completion(answer.strip(), int(inputs["input_ids"].shape[1]), int(new.shape[0]))


def _from_spec(spec: EndpointSpec) -> LocalEndpoint:
    return LocalEndpoint(spec.name, spec.path, spec.max_concurrency, spec.params)
