"""`vkel predict`: generate stage-1 entities or stage-2 predictions for a stream of records.

Engines: `local` (transformers, batched greedy generation with left padding, base model + merged LoRA
adapter) and `openai` (the same prompts, image as an image_url content part, sent to an
OpenAI-compatible server such as vLLM serving LLaVA with the LoRA adapter). Both parse the answers
with format/sequences.py's parser and write records in input order, streaming batch by batch.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..core.errors import ErrorPolicy, VkelError
from ..core.records import batched
from ..core.registry import Registry
from . import dist
from .jobs import Job, PredictOptions, finish, prepare
from .local import LocalGenerator, local_outcomes


def _local(opts: PredictOptions, pairs: Iterable, policy: ErrorPolicy,
           generator: LocalGenerator | None = None) -> Iterator[dict[str, Any]]:
    if opts.distributed and dist.world_size() > 1:
        yield from dist.predict_distributed(opts, pairs, policy, generator)
        return
    generator = generator or LocalGenerator(opts)
    for chunk in batched(pairs, max(1, opts.batch_size)):
        for record, error in local_outcomes(generator, [record for record, _where in chunk], opts):
            if error is not None:
                policy.handle(error)
            yield record


# ----------------------------------------------------------------------------- openai engine


def _openai(opts: PredictOptions, pairs: Iterable, policy: ErrorPolicy) -> Iterator[dict[str, Any]]:
    from ..knowledge.llm.openai import OpenAIEndpoint
    from ..knowledge.llm.parallel import ordered_map

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
