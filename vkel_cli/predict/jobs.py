"""One record through `vkel predict`, engine aside: its prompt and image (`prepare`), and its answer parsed
back into `stage1` or `predictions` (`complete`). Both engines and dev selection use these.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from ..core.errors import ErrorPolicy, VkelError
from ..core.records import meta
from ..fetch import images
from ..format import prompts
from ..format.sequences import attach_stage1, attach_stage2

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
