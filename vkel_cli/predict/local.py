"""The local engine: transformers, batched greedy generation with left padding, base model + LoRA adapter."""

from __future__ import annotations

import os
from typing import Any

from ..core.errors import VkelError
from ..models.device import resolve_device
from .jobs import Job, PredictOptions, complete, prepare


class LocalGenerator:
    """Base model + merged adapter; `generate(jobs)` returns one decoded answer per job.
    `loaded`: a model already in memory (vkel train's dev evaluation passes the model being trained)."""

    def __init__(self, opts: PredictOptions, loaded: Any = None):
        from ..models import backbones

        if not opts.model:
            raise VkelError("--model is required with --engine local")
        self.backbone = backbones.detect(opts.model, opts.backbone)
        # The adapter's run dir holds the processor it was trained with; fall back to the model's.
        source = opts.adapter if opts.adapter and os.path.isfile(
            os.path.join(opts.adapter, "processor_config.json")) else opts.model
        self.processor = backbones.load_processor(source, padding_side="left", min_pixels=opts.min_pixels,
                                                  max_pixels=opts.max_pixels, backbone=self.backbone)
        if loaded is not None:
            self.device, self.model = next(loaded.parameters()).device, loaded
        else:
            self.device = resolve_device(opts.device)
            model = backbones.load_model(self.backbone, opts.model, opts.dtype, self.device,
                                         attn_implementation=opts.attn_implementation)
            self.model = backbones.load_adapter(model, opts.adapter) if opts.adapter else model
        self.max_new_tokens = opts.max_new_tokens

    def generate(self, jobs: list[Job]) -> list[str]:
        import torch

        texts = [self.backbone.prompt_text(self.processor, job.prompt) for job in jobs]
        batch = self.processor(text=texts, images=[job.image for job in jobs], return_tensors="pt", padding=True)
        batch = batch.to(self.device)
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.processor.tokenizer.pad_token_id)
        new_tokens = out[:, batch["input_ids"].shape[1]:]
        return [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]


def generate_or_retry(generator: LocalGenerator, jobs: list[Job]) -> dict[int, str]:
    """Answers by id(job). When the batch fails (a degenerate image the processor refuses, out of memory),
    its jobs are retried one at a time and the one that fails again gets the error, not its neighbours."""
    if not jobs:
        return {}
    try:
        return dict(zip(map(id, jobs), generator.generate(jobs)))
    except Exception as err:  # noqa: BLE001 - any failure of one input must not sink the batch
        if len(jobs) == 1:
            jobs[0].error = VkelError(f"generation failed: {type(err).__name__}: {err}",
                                      f"record {jobs[0].record.get('id')!r}")
            return {}
        _free_accelerator_memory()
    answers: dict[int, str] = {}
    for job in jobs:
        answers.update(generate_or_retry(generator, [job]))
    return answers


def _free_accelerator_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def local_outcomes(generator: LocalGenerator, records: list[dict[str, Any]],
                   opts: PredictOptions) -> list[tuple[dict[str, Any], VkelError | None]]:
    """One batch of records through prepare -> generate -> parse (shared by one process and torchrun)."""
    jobs = [prepare(record, opts) for record in records]
    answers = generate_or_retry(generator, [job for job in jobs if job.error is None])
    return [complete(job, answers.get(id(job)), opts) for job in jobs]
