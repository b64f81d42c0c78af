"""Image-text similarity for `vkel augment`'s filter (the paper's eq. 2), behind a small interface.

A Scorer has three steps so that the pipeline can overlap them: `prepare` (resize/crop one decoded
image; runs in decoding workers, threads or processes, so `preparer()` must pickle without the model),
`encode_texts` and `encode_images` (batched, L2-normalised rows), so cosine similarity is a dot product.
`OpenClipScorer` is the real one (open_clip); tests may pass any other Scorer (e.g. one with
predictable similarities).

Models: `--clip-model` is an open_clip architecture name (ViT-L-14, ViT-B-32, ...) with `--clip-pretrained`
a tag (`openai`, downloaded by open_clip into its cache), a checkpoint file, or `none` (random weights);
or a directory holding `open_clip_config.json` + weights (open_clip's `local-dir:` layout, what
`models/tiny.py: build_tiny_clip` writes), in which case `--clip-pretrained` is not used.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Callable

from ..core.errors import VkelError
from .image_prep import normalize_batch, plan_for

RANDOM = ("", "none", "random")


class Scorer(ABC):
    batch_size: int = 32
    light: bool = False  # encoding an image costs less CPU than decoding one (a test-size model)

    @abstractmethod
    def prepare(self, image) -> Any:
        """One RGB PIL image -> the encoder's input (thread-safe; called from worker threads)."""

    def cpu_threads(self, threads: int | None) -> AbstractContextManager:
        """While the context lasts, encode with at most this many CPU threads (None: no limit)."""
        return nullcontext()

    def preparer(self) -> Callable[[Any], Any]:
        """`prepare` as a picklable callable for decoding worker processes. The bound method pickles the
        whole scorer: a scorer holding a model returns something smaller."""
        return self.prepare

    @abstractmethod
    def encode_texts(self, texts: list[str]):
        """-> numpy float32 array (len(texts), dim), rows L2-normalised."""

    @abstractmethod
    def encode_images(self, prepared: list[Any]):
        """-> numpy float32 array (len(prepared), dim), rows L2-normalised."""


def resolve_device(device: str = "auto") -> str:
    from ..models.device import resolve_device as resolve

    return resolve(device, mps=False)


class OpenClipScorer(Scorer):
    def __init__(self, model: str = "ViT-L-14", pretrained: str | None = "openai", *, device: str = "auto",
                 batch_size: int = 32, precision: str | None = None, seed: int = 0):
        import open_clip
        import torch

        torch.manual_seed(seed)  # random weights (--clip-pretrained none) are then the same every run
        self.device = resolve_device(device)
        self.batch_size = batch_size
        name = model
        if os.path.isdir(model):
            name = f"local-dir:{os.path.abspath(model)}"
        weights = None if (pretrained or "").lower() in RANDOM or name.startswith(("local-dir:", "hf-hub:")) \
            else pretrained
        precision = precision or ("fp16" if self.device.startswith("cuda") else "fp32")
        try:
            self.model, _, self.preprocess = open_clip.create_model_and_transforms(
                name, pretrained=weights, device=self.device, precision=precision)
            self.tokenizer = open_clip.get_tokenizer(name)
        except (RuntimeError, FileNotFoundError, ValueError, OSError) as err:
            hint = ("" if weights is None else
                    f" (--clip-pretrained {weights!r}: a tag is downloaded by open_clip into its cache, so it needs "
                    "network access the first time; pass a local checkpoint file or a model directory instead)")
            raise VkelError(f"cannot load CLIP model {model!r}: {err}{hint}") from None
        self.model.eval()
        # the resize/crop half runs in decoding workers, ToTensor + Normalize batched in encode_images
        self.plan = plan_for(self.preprocess)
        # the smallest published CLIP image towers have 10M+ parameters; below 5M is a test-size model
        self.light = sum(p.numel() for p in self.model.visual.parameters()) < 5_000_000
        self.random_weights = weights is None and not name.startswith(("local-dir:", "hf-hub:"))
        self._torch = torch

    def prepare(self, image):
        return self.preparer()(image)

    def preparer(self):
        return self.plan or self.preprocess

    @contextmanager
    def cpu_threads(self, threads: int | None):
        torch = self._torch
        before = torch.get_num_threads()
        if self.device == "cpu" and threads is not None and threads < before:
            torch.set_num_threads(max(1, threads))
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def encode_texts(self, texts: list[str]):
        torch = self._torch
        with torch.inference_mode():
            tokens = self.tokenizer(texts).to(self.device)
            features = self.model.encode_text(tokens, normalize=True)
        return features.float().cpu().numpy()

    def encode_images(self, prepared: list[Any]):
        import numpy as np

        torch = self._torch
        outputs = []
        with torch.inference_mode():
            dtype = next(self.model.parameters()).dtype
            for start in range(0, len(prepared), self.batch_size):
                chunk = prepared[start:start + self.batch_size]
                if isinstance(chunk[0], np.ndarray):  # uint8 arrays from the plan
                    batch = normalize_batch(chunk, self.plan.mean, self.plan.std, self.device)
                else:
                    batch = torch.stack(chunk).to(self.device)
                outputs.append(self.model.encode_image(batch.to(dtype), normalize=True).float().cpu().numpy())
        if not outputs:
            return np.zeros((0, 0), dtype="float32")
        return np.concatenate(outputs)
