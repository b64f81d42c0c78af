"""`vkel predict --stage 1|2`: add `stage1` or `predictions` to each record (local model or a server)."""

import os
from typing import Annotated, Literal, Optional

import typer

from ..models.device import DTYPE_HELP, Dtype
from ._options import AllowPrivateUrls, ImageRoot, Inputs, OnError, Output, allow_private

MinPixels = Annotated[Optional[int], typer.Option(
    "--min-pixels", min=784, help="Qwen2.5-VL: smallest image area in pixels (28x28 pixels = one image token) "
    "[default: the checkpoint's, 3136].")]
MaxPixels = Annotated[Optional[int], typer.Option(
    "--max-pixels", min=784, help="Qwen2.5-VL: largest image area in pixels; larger images are scaled down "
    "[default: 451584 = 576 tokens, or a run dir's own].")]
AttnImplementation = Annotated[Literal["auto", "sdpa", "eager", "flash_attention_2"], typer.Option(
    "--attn-implementation", help="Attention kernel of the model (flash_attention_2 needs flash-attn).")]


def predict_cli(
    inputs: Inputs = None,
    stage: Annotated[int, typer.Option("--stage", min=1, max=2, help="1: adds `stage1`. 2: adds `predictions` "
                                       "(needs `stage1`; uses `visual_knowledge` and `objects`).")] = 1,
    model: Annotated[Optional[str], typer.Option("--model", metavar="DIR|ID", help="Base model: hub id or local dir (local engine)."
                                                 )] = None,
    adapter: Annotated[Optional[str], typer.Option("--adapter", metavar="DIR", help="A `vkel train` run directory (LoRA "
                                                   "adapter); none: the base model alone.")] = None,
    backbone: Annotated[str, typer.Option("--backbone", help="llava, qwen2.5-vl or auto.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Records per generate call.")] = 8,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 256,
    top_k: Annotated[int, typer.Option("--top-k", min=0, help="Stage 2: objects in the prompt.")] = 5,
    no_knowledge: Annotated[bool, typer.Option("--no-knowledge", help="Stage 2 without visual knowledge.")] = False,
    no_objects: Annotated[bool, typer.Option("--no-objects", help="Stage 2 without detected objects.")] = False,
    no_stage1: Annotated[bool, typer.Option("--no-stage1", help="Stage 2 end to end, for an adapter trained with "
                         "`vkel train --no-stage1`: the prompt has the tweet alone (no `stage1`, knowledge or "
                         "objects needed).")] = False,
    dtype: Annotated[Dtype, typer.Option("--dtype", help=DTYPE_HELP)] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    engine: Annotated[Literal["local", "openai"], typer.Option("--engine", help="local: transformers here. "
                      "openai: an OpenAI-compatible server (vLLM...) at --base-url.")] = "local",
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="e.g. http://host:8000/v1")] = None,
    served_model: Annotated[Optional[str], typer.Option("--served-model", help="The model (or LoRA) name the "
                            "server serves.")] = None,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable holding the "
                           "server's API key.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="openai: requests in flight.")] = 8,
    min_pixels: MinPixels = None,
    max_pixels: MaxPixels = None,
    attn_implementation: AttnImplementation = "auto",
    image_root: ImageRoot = None,
    output: Output = "-",
    allow_private_urls: AllowPrivateUrls = False,
    on_error: OnError = "fail",
):
    """Generate stage 1 or 2 answers and parse them.

    Each record gets `stage1` = [{text, coarse}] or
    `predictions` = [{text, coarse, fine, box}] (box in pixels), raw text in meta.generation."""
    allow_private(allow_private_urls)
    if no_stage1 and stage != 2:
        raise typer.BadParameter("--no-stage1 is stage 2 without stage-1 input: give it with --stage 2",
                                 param_hint="--no-stage1")
    from ..predict.jobs import PredictOptions
    from ..predict.run import predict
    from ..predict.dist import rank, world_size
    from ._options import run_stage

    opts = PredictOptions(stage=stage, model=model, adapter=adapter, backbone=backbone, batch_size=batch_size,
                          max_new_tokens=max_new_tokens, top_k=top_k, knowledge=not no_knowledge,
                          objects=not no_objects, dtype=dtype, device=device, image_root=image_root, engine=engine,
                          base_url=base_url, served_model=served_model, api_key_env=api_key_env,
                          concurrency=concurrency, no_stage1=no_stage1, min_pixels=min_pixels,
                          max_pixels=max_pixels, attn_implementation=attn_implementation)
    if engine == "local" and world_size() > 1:  # under torchrun: rank 0 reads and writes, all generate
        opts.distributed = True
        if rank() != 0:
            output = os.devnull
    run_stage(inputs, output, on_error, lambda pairs, policy: predict(opts, pairs, policy))
