"""`vkel models tiny DIR`: write a tiny random checkpoint (tests, laptop smoke runs)."""

from typing import Annotated, Literal

import typer

app = typer.Typer(help="Model utilities: tiny random checkpoints.", no_args_is_help=True)


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
    from ..progress import log

    build_tiny(out_dir, backbone, seed)
    log(f"wrote a tiny {backbone} checkpoint to {out_dir}")
