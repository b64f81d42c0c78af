"""`vkel train --stage 1|2`: train one LoRA adapter (HF Trainer + PEFT); runs unchanged under torchrun."""

from typing import Annotated, Literal, Optional

import typer

from ..models.device import DTYPE_HELP, Dtype
from ._options import AllowPrivateUrls, ImageRoot, Inputs, OnError, allow_private
from .predict import MaxPixels, MinPixels

SelectMetric = Literal["fmnerg_f1", "fmner_f1", "eeg_f1", "fmnerg_precision", "fmner_precision", "eeg_precision",
                       "fmnerg_recall", "fmner_recall", "eeg_recall"]
ReportTo = Literal["none", "tensorboard", "wandb", "mlflow"]
AttnImplementation = Literal["auto", "sdpa", "eager", "flash_attention_2"]


def train_cli(
    inputs: Inputs = None,
    stage: Annotated[int, typer.Option("--stage", min=1, max=2, help="1: entities and coarse types. 2: fine "
                                       "types and boxes (input: stage-1 entities, knowledge, objects).")] = 1,
    model: Annotated[str, typer.Option("--model", metavar="DIR|ID", help="Base model: hub id or local dir.")] = "llava-hf/llava-1.5-7b-hf",
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", metavar="DIR", help="The run directory (adapter, processor, "
                          "train_args.json, metrics.jsonl, checkpoints); required but with --dry-run.",
                          show_default=False)] = None,
    backbone: Annotated[str, typer.Option("--backbone", help="llava, qwen2.5-vl, or auto (from the model's "
                                          "config).")] = "auto",
    epochs: Annotated[float, typer.Option("--epochs", min=0.0)] = 10.0,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Stop after this many optimizer steps (overrides "
                                           "--epochs when > 0).")] = -1,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate (AdamW, linear decay).")] = 2e-5,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Examples per device per step.")] = 1,
    grad_accum: Annotated[Optional[int], typer.Option("--grad-accum", min=1, help="Gradient accumulation steps "
                          "[default: enough to reach --effective-batch over all processes].")] = None,
    effective_batch: Annotated[int, typer.Option("--effective-batch", min=1)] = 30,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1)] = 8,
    lora_alpha: Annotated[int, typer.Option("--lora-alpha", min=1)] = 16,
    lora_dropout: Annotated[float, typer.Option("--lora-dropout", min=0.0, max=1.0)] = 0.05,
    lora_targets: Annotated[str, typer.Option("--lora-targets", help="Comma-separated module names, adapted in "
                            "the language model only.")] = "q_proj,v_proj",
    max_length: Annotated[int, typer.Option("--max-length", min=16, help="Tokens per sequence (image tokens "
                                            "included); longer targets are cut.")] = 2048,
    noise: Annotated[float, typer.Option("--noise", min=0.0, max=1.0, help="Stage 2: fraction of records whose "
                                         "stage-1 input is perturbed (an entity dropped or retyped).")] = 0.1,
    top_k: Annotated[int, typer.Option("--top-k", min=0, help="Stage 2: objects in the prompt.")] = 5,
    joint: Annotated[bool, typer.Option("--joint", help="One adapter on both stages' sequences.")] = False,
    no_stage1: Annotated[bool, typer.Option("--no-stage1", help="Stage 2 end to end: tweet + image -> the final "
                         "triples, no stage-1 entities, knowledge or objects in the prompt (LLaVA-direct).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write the examples the run would train on "
                       "({id, stage, prompt, target} per line) on stdout and stop; the model is not read and "
                       "the output directory not created.")] = False,
    no_knowledge: Annotated[bool, typer.Option("--no-knowledge", help="Stage 2 without visual knowledge.")] = False,
    no_objects: Annotated[bool, typer.Option("--no-objects", help="Stage 2 without detected objects.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    save_steps: Annotated[Optional[int], typer.Option("--save-steps", min=1, help="Checkpoint every N steps "
                          "[default: every epoch].")] = None,
    logging_steps: Annotated[int, typer.Option("--logging-steps", min=1)] = 10,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --output-dir from its last "
                                         "checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing run directory.")] = False,
    dtype: Annotated[Dtype, typer.Option("--dtype", help="auto: bf16 on GPUs that have it, fp32 on CPU. " + DTYPE_HELP)] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda (under torchrun each process takes "
                                        "its local GPU).")] = "auto",
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing")] = False,
    num_workers: Annotated[int, typer.Option("--num-workers", min=0, help="DataLoader worker processes.")] = 0,
    eval_file: Annotated[Optional[str], typer.Option("--eval-file", metavar="FILE", help="Dev records (gold "
                         "`entities`; stage 2: the inputs predict reads): generate and score on them, keep the best "
                         "adapter.")] = None,
    eval_steps: Annotated[Optional[int], typer.Option("--eval-steps", min=1, help="Evaluate every N steps and at "
                          "the last [default: at the end of each epoch].")] = None,
    select_metric: Annotated[Optional[SelectMetric], typer.Option("--select-metric", help="The dev score that "
                             "picks the adapter [default: fmner_f1 for stage 1, fmnerg_f1 for stage 2].")] = None,
    early_stop: Annotated[Optional[int], typer.Option("--early-stop", min=1, metavar="PATIENCE", help="Stop after "
                          "this many evaluations without a better dev score.")] = None,
    eval_batch_size: Annotated[int, typer.Option("--eval-batch-size", min=1, help="Dev records per generate "
                               "call.")] = 8,
    eval_max_new_tokens: Annotated[int, typer.Option("--eval-max-new-tokens", min=1)] = 256,
    report_to: Annotated[ReportTo, typer.Option("--report-to", help="Tracker for the loss and dev curves "
                         "(tensorboard: event files under RUN/runs/).")] = "none",
    attn_implementation: Annotated[AttnImplementation, typer.Option("--attn-implementation", help="Attention "
                                   "kernel of the model (flash_attention_2 needs flash-attn).")] = "auto",
    min_pixels: MinPixels = None,
    max_pixels: MaxPixels = None,
    image_root: ImageRoot = None,
    allow_private_urls: AllowPrivateUrls = False,
    on_error: OnError = "fail",
):
    """Train a LoRA adapter for stage 1 or 2.

    Reads gold records (with `entities`); writes a run directory.

    Under `torchrun --nproc-per-node N -m vkel_cli train ...` give the records as files (every process
    reads them)."""
    allow_private(allow_private_urls)
    from ..core.errors import ErrorPolicy, VkelError
    from ..core.records import read_records
    from ..train.run import TrainOptions, train

    if output_dir is None and not dry_run:
        raise typer.BadParameter("--output-dir is required (but with --dry-run)", param_hint="--output-dir")
    if no_stage1 and stage != 2 and not joint:
        raise typer.BadParameter("--no-stage1 trains stage 2 without stage-1 input: give it with --stage 2",
                                 param_hint="--no-stage1")
    if resume and overwrite:
        raise VkelError("--resume and --overwrite exclude each other")
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and (not inputs or "-" in inputs):
        raise VkelError("under torchrun every process reads the records: give them as files, not stdin")
    opts = TrainOptions(
        model=model, output_dir=output_dir, stage=stage, backbone=backbone, epochs=epochs, max_steps=max_steps,
        lr=lr, batch_size=batch_size, grad_accum=grad_accum, effective_batch=effective_batch, lora_r=lora_r,
        lora_alpha=lora_alpha, lora_dropout=lora_dropout,
        lora_targets=[t.strip() for t in lora_targets.split(",") if t.strip()], max_length=max_length,
        noise=noise, top_k=top_k, joint=joint, knowledge=not no_knowledge, objects=not no_objects, seed=seed,
        save_steps=save_steps, logging_steps=logging_steps, resume=resume, overwrite=overwrite, dtype=dtype,
        device=device, gradient_checkpointing=gradient_checkpointing, num_workers=num_workers,
        image_root=image_root, no_stage1=no_stage1, eval_file=eval_file, eval_steps=eval_steps,
        select_metric=select_metric, early_stop=early_stop, eval_batch_size=eval_batch_size,
        eval_max_new_tokens=eval_max_new_tokens, report_to=report_to, attn_implementation=attn_implementation,
        min_pixels=min_pixels, max_pixels=max_pixels,
    )
    policy = ErrorPolicy(on_error)
    if dry_run:
        from ..core.records import open_output
        from ..train.examples import dry_run as write_examples, example_options

        with open_output("-") as writer:
            write_examples(read_records(inputs or ["-"], policy), example_options(opts), policy, writer)
        policy.finish()
        return
    train(opts, read_records(inputs or ["-"], policy), policy)
    policy.finish()
