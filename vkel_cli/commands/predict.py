"""`vkel predict --stage 1|2`: add `stage1` or `predictions` to each record (local model or a server)."""

from typing import Annotated, Literal, Optional

import typer

from ._options import AllowPrivateUrls, ImageRoot, Inputs, OnError, Output, allow_private

Dtype = Literal["auto", "bf16", "fp16", "fp32"]


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
    dtype: Annotated[Dtype, typer.Option("--dtype")] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    engine: Annotated[Literal["local", "openai"], typer.Option("--engine", help="local: transformers here. "
                      "openai: an OpenAI-compatible server (vLLM...) at --base-url.")] = "local",
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="e.g. http://host:8000/v1")] = None,
    served_model: Annotated[Optional[str], typer.Option("--served-model", help="The model (or LoRA) name the "
                            "server serves.")] = None,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable holding the "
                           "server's API key.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="openai: requests in flight.")] = 8,
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
    from ..predict import PredictOptions, predict
    from ._options import run_stage

    opts = PredictOptions(stage=stage, model=model, adapter=adapter, backbone=backbone, batch_size=batch_size,
                          max_new_tokens=max_new_tokens, top_k=top_k, knowledge=not no_knowledge,
                          objects=not no_objects, dtype=dtype, device=device, image_root=image_root, engine=engine,
                          base_url=base_url, served_model=served_model, api_key_env=api_key_env,
                          concurrency=concurrency, no_stage1=no_stage1)
    run_stage(inputs, output, on_error, lambda pairs, policy: predict(opts, pairs, policy))
