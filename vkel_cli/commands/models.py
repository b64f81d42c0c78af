"""`vkel models tiny DIR`: a tiny random checkpoint (tests, laptop smoke runs).
`vkel models merge RUN_DIR OUT_DIR`: a trained adapter merged into its base, one checkpoint to serve."""

from typing import Annotated, Literal, Optional

import typer

from ..models.device import DTYPE_HELP, Dtype

app = typer.Typer(help="Model utilities: tiny random checkpoints, merged adapters.", no_args_is_help=True)


@app.command("tiny")
def tiny_cli(
    out_dir: Annotated[str, typer.Argument(metavar="DIR", help="Directory to create (must be absent or empty).")],
    backbone: Annotated[
        Literal["llava", "qwen2.5-vl", "llama", "clip"],
        typer.Option("--backbone", help="llava / qwen2.5-vl: image-text models for train/predict; llama: a text-only "
                     "LLM (vkel knowledge --llm NAME=local:DIR); clip: an open_clip model (vkel augment --clip-model DIR).")
    ] = "llava",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights.")] = 0,
):
    """Write a tiny random checkpoint for smoke tests.

    Config, safetensors weights, tokenizer and processor that load with `--model DIR` like a hub
    checkpoint. Its outputs are random: it is for testing pipelines, not for use."""
    from ..models.tiny import build_tiny
    from ..core.progress import log

    build_tiny(out_dir, backbone, seed)
    log(f"wrote a tiny {backbone} checkpoint to {out_dir}")


@app.command("merge")
def merge_cli(
    run_dir: Annotated[str, typer.Argument(metavar="RUN_DIR", help="A `vkel train` run directory (LoRA adapter).")],
    out_dir: Annotated[str, typer.Argument(metavar="OUT_DIR", help="Directory to create (must be absent or "
                                           "empty).")],
    model: Annotated[Optional[str], typer.Option("--model", metavar="BASE", help="Base model: hub id or local dir "
                     "[default: the one the run was trained on].")] = None,
    dtype: Annotated[Dtype, typer.Option("--dtype", help="Weights of the merged model; auto: the base "
                     "checkpoint's own. " + DTYPE_HELP)] = "auto",
):
    """Fold a LoRA adapter into its base model: one checkpoint to serve.

    Weights, config, generation config, processor, tokenizer and chat template: it loads with
    transformers alone (`vkel predict --model OUT_DIR`, no --adapter) and vLLM serves it without LoRA
    support (`vllm serve OUT_DIR`, then `vkel predict --engine openai`). It generates what base + adapter
    generate."""
    from ..models.merge import merge_adapter
    from ..core.progress import log

    merge_adapter(run_dir, out_dir, model=model, dtype=dtype)
    log(f"wrote the merged model to {out_dir}")
