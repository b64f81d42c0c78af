"""`vkel predict`: generate stage-1 entities or stage-2 predictions for a stream of records.

Engines: `local` (transformers, batched greedy generation with left padding, base model + merged LoRA
adapter) and `openai` (the same prompts, image as an image_url content part, sent to an
OpenAI-compatible server such as vLLM serving LLaVA with the LoRA adapter). Both parse the answers
with sequences.py's parser and write records in input order, streaming batch by batch.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from . import images, prompts
from .device import resolve_device
from .errors import ErrorPolicy, VkelError
from .records import batched, meta
from .registry import Registry
from .sequences import attach_stage1, attach_stage2

ERROR_KEY = "predict"
# A prompt longer than this is a per-record error before anything is tokenized or allocated: 10x the
# longest stage-2 prompt of the benchmark (2,231 characters with its target), far beyond --max-length 2048.
MAX_PROMPT_CHARS = 32_000


@dataclass
class PredictOptions:
    stage: int = 1
    model: str | None = None
    adapter: str | None = None
    backbone: str = "auto"
    batch_size: int = 8
    max_new_tokens: int = 256
    top_k: int = prompts.DEFAULT_TOP_K
    knowledge: bool = True
    objects: bool = True
    no_stage1: bool = False  # stage 2 without stage-1 input, as `vkel train --no-stage1` trained it
    dtype: str = "auto"
    device: str = "auto"
    min_pixels: int | None = None  # Qwen2.5-VL pixel budget (backbones.set_pixels); None: the default
    max_pixels: int | None = None
    attn_implementation: str = "auto"
    distributed: bool = False  # under torchrun: split the records over the processes (predict_dist.py)
    image_root: str | None = None
    engine: str = "local"
    base_url: str | None = None
    served_model: str | None = None
    api_key_env: str | None = None
    concurrency: int = 8
    timeout: float = 120.0


@dataclass
class Job:
    record: dict[str, Any]
    prompt: str = ""
    image: Any = None  # PIL image (local engine) or a data URL (openai engine)
    size: list | None = None
    error: VkelError | None = None


def stage_prompt(record: dict[str, Any], opts: PredictOptions, size) -> str:
    if opts.stage == 1:
        return prompts.stage1_prompt(record)
    if opts.no_stage1:  # end to end (LLaVA-direct): the tweet and the image only
        return prompts.direct_prompt(record)
    stage1 = record.get("stage1")
    if not isinstance(stage1, list):
        raise VkelError("no `stage1` entities: run `vkel predict --stage 1` first", f"record {record.get('id')!r}")
    stage1 = [{"text": e["text"], "coarse": e.get("coarse", "")} for e in stage1
              if isinstance(e, dict) and isinstance(e.get("text"), str)]
    return prompts.stage2_prompt(record, stage1, size, top_k=opts.top_k, knowledge=opts.knowledge,
                                 objects=opts.objects)


def prepare(record: dict[str, Any], opts: PredictOptions, as_data_url: bool = False) -> Job:
    """Load the image and build the prompt (at most MAX_PROMPT_CHARS); a failure is kept on the job, not raised."""
    job = Job(record)
    try:
        decoded = images.load_decoded(record, opts.image_root)
        images.align(record, decoded.frame)  # gold boxes, objects and the prompt in the decoded image's frame
        job.size = list(decoded.frame.size)
        prompt = stage_prompt(record, opts, job.size)
        if len(prompt) > MAX_PROMPT_CHARS:  # a huge `tokens` list or knowledge text fails its record only
            raise VkelError(f"prompt of {len(prompt):,} characters exceeds the cap of {MAX_PROMPT_CHARS:,} "
                            "(tokens or knowledge too long)", f"record {record.get('id')!r}")
        job.prompt = prompt
        original = decoded.ext if decoded.frame.orientation == 1 else None
        job.image = data_url(record, decoded.image, opts.image_root, original) if as_data_url else decoded.image
    except VkelError as err:
        job.error = err
    return job


def data_url(record: dict[str, Any], picture, image_root: str | None, original: str | None = None) -> str:
    """The file's own bytes when `original` is the extension of a local JPEG/PNG/WebP with no EXIF turn
    (no re-encoding loss, and nothing a server could display differently), else the picture as JPEG."""
    location = images.resolve(record.get("image"), image_root)
    mime = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
    if original in mime and location and not images.is_url(location):
        with images.open_regular(location) as handle:
            data, kind = handle.read(), mime[original]
    else:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=95)
        data, kind = buffer.getvalue(), mime["jpg"]
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def complete(job: Job, raw: str | None, opts: PredictOptions) -> tuple[dict[str, Any], VkelError | None]:
    """The record with its answer parsed in, or with meta.errors set; the error goes to the policy."""
    if job.error is not None:
        meta(job.record).setdefault("errors", {})[ERROR_KEY] = job.error.message
    elif opts.stage == 1:
        attach_stage1(job.record, raw or "")
    else:
        attach_stage2(job.record, raw or "", job.size)
    return job.record, job.error


def finish(job: Job, raw: str | None, opts: PredictOptions, policy: ErrorPolicy) -> dict[str, Any]:
    record, error = complete(job, raw, opts)
    if error is not None:
        policy.handle(error)
    return record


# ------------------------------------------------------------------------------ local engine


class LocalGenerator:
    """Base model + merged adapter; `generate(jobs)` returns one decoded answer per job.
    `loaded`: a model already in memory (vkel train's dev evaluation passes the model being trained)."""

    def __init__(self, opts: PredictOptions, loaded: Any = None):
        from . import backbones

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


def _local(opts: PredictOptions, pairs: Iterable, policy: ErrorPolicy,
           generator: LocalGenerator | None = None) -> Iterator[dict[str, Any]]:
    from . import predict_dist

    if opts.distributed and predict_dist.world_size() > 1:
        yield from predict_dist.predict_distributed(opts, pairs, policy, generator)
        return
    generator = generator or LocalGenerator(opts)
    for chunk in batched(pairs, max(1, opts.batch_size)):
        for record, error in local_outcomes(generator, [record for record, _where in chunk], opts):
            if error is not None:
                policy.handle(error)
            yield record


# ----------------------------------------------------------------------------- openai engine


def _openai(opts: PredictOptions, pairs: Iterable, policy: ErrorPolicy) -> Iterator[dict[str, Any]]:
    from .llm.openai import OpenAIEndpoint
    from .llm.parallel import ordered_map

    if not opts.base_url:
        raise VkelError("--base-url is required with --engine openai")
    served = opts.served_model or opts.adapter or opts.model
    if not served:
        raise VkelError("--served-model is required with --engine openai (the name the server knows the model by)")
    endpoint = OpenAIEndpoint("predict", opts.base_url, served, api_key_env=opts.api_key_env,
                              max_concurrency=opts.concurrency, timeout=opts.timeout,
                              params={"temperature": 0, "max_tokens": opts.max_new_tokens})

    def run(record: dict[str, Any]) -> tuple[Job, str | None]:
        job = prepare(record, opts, as_data_url=True)
        if job.error is not None:
            return job, None
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": job.image}},
                                                 {"type": "text", "text": job.prompt}]}]
        try:
            return job, endpoint.complete(messages).text.strip()
        except VkelError as err:
            job.error = err.at(f"record {record.get('id')!r}")
            return job, None

    for job, raw in ordered_map(run, (record for record, _where in pairs), opts.concurrency):
        yield finish(job, raw, opts, policy)


ENGINES = Registry("engine")
ENGINES.register("local", _local)
ENGINES.register("openai", _openai)


def predict(opts: PredictOptions, pairs: Iterable, policy: ErrorPolicy | None = None,
            generator: LocalGenerator | None = None) -> Iterator[dict[str, Any]]:
    """Records of `pairs` ((record, location)) with `stage1` or `predictions` added, in input order.
    `generator`: a LocalGenerator already loaded (reused across calls by benchmarks)."""
    if opts.stage not in (1, 2):
        raise VkelError(f"--stage must be 1 or 2, not {opts.stage}")
    engine = ENGINES.get(opts.engine)
    if opts.engine == "local":
        return engine(opts, pairs, policy or ErrorPolicy("fail"), generator)
    return engine(opts, pairs, policy or ErrorPolicy("fail"))
