"""`vkel train`: one LoRA adapter per stage on an image-text backbone, with the Hugging Face Trainer
(so `torchrun`/`accelerate launch` run the same command under DDP) and PEFT (standard adapter format).

Run directory (`--output-dir`): adapter_config.json + adapter_model.safetensors, the processor,
train_args.json (options, seed, versions), metrics.jsonl (one line per log event), checkpoint-N/.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable

from . import __version__, backbones
from .errors import ErrorPolicy, VkelError
from .progress import log
from .train_data import Collator, LengthCheck, SpooledExamples, example_options

METRICS_FILE = "metrics.jsonl"
ARGS_FILE = "train_args.json"


@dataclass
class TrainOptions:
    model: str
    output_dir: str
    stage: int = 1
    backbone: str = "auto"
    epochs: float = 10.0
    max_steps: int = -1
    lr: float = 2e-5
    batch_size: int = 1
    grad_accum: int | None = None  # None: reach effective_batch across all processes
    effective_batch: int = 30
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    max_length: int = 2048
    noise: float = 0.1
    top_k: int = 5
    joint: bool = False
    knowledge: bool = True
    objects: bool = True
    seed: int = 0
    save_steps: int | None = None  # None: a checkpoint at the end of each epoch
    save_total_limit: int | None = 2
    logging_steps: int = 10
    resume: bool = False
    overwrite: bool = False
    dtype: str = "auto"
    device: str = "auto"
    gradient_checkpointing: bool = False
    num_workers: int = 0
    image_root: str | None = None
    no_stage1: bool = False  # stage 2 end to end, no stage-1 input (LLaVA-direct)


def _versions() -> dict:
    from .env_info import package_versions

    return {"vkel": __version__, "python": sys.version.split()[0], **package_versions()}


def prepare_run_dir(opts: TrainOptions) -> str | None:
    """Refuse an existing run unless --resume/--overwrite; returns the checkpoint to resume from."""
    from transformers.trainer_utils import get_last_checkpoint

    out = opts.output_dir
    exists = os.path.isdir(out) and bool(os.listdir(out))
    if exists and opts.overwrite:
        shutil.rmtree(out)
        exists = False
    if exists and not opts.resume:
        raise VkelError("the run directory exists; pass --resume to continue it or --overwrite to replace it", out)
    os.makedirs(out, exist_ok=True)
    return get_last_checkpoint(out) if exists else None


def _grad_accum(opts: TrainOptions, world_size: int) -> int:
    if opts.grad_accum:
        return opts.grad_accum
    return max(1, math.ceil(opts.effective_batch / (opts.batch_size * max(world_size, 1))))


def _training_arguments(opts: TrainOptions, torch_dtype):
    import torch
    from transformers import TrainingArguments

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cpu = opts.device == "cpu" or (opts.device == "auto" and not torch.cuda.is_available())
    return TrainingArguments(
        output_dir=opts.output_dir,
        num_train_epochs=opts.epochs,
        max_steps=opts.max_steps,
        learning_rate=opts.lr,
        optim="adamw_torch",
        per_device_train_batch_size=opts.batch_size,
        gradient_accumulation_steps=_grad_accum(opts, world_size),
        logging_strategy="steps",
        logging_steps=opts.logging_steps,
        save_strategy="steps" if opts.save_steps else "epoch",
        save_steps=opts.save_steps or 500,
        save_total_limit=opts.save_total_limit,
        seed=opts.seed,
        data_seed=opts.seed,
        use_cpu=cpu,
        ddp_backend="gloo" if cpu and world_size > 1 else None,
        ddp_find_unused_parameters=False,
        bf16=torch_dtype == torch.bfloat16,
        fp16=torch_dtype == torch.float16,
        **({"activation_checkpointing": True} if opts.gradient_checkpointing else {}),
        dataloader_num_workers=opts.num_workers,
        remove_unused_columns=False,
        disable_tqdm=True,
        report_to="none",
    )


def _write_args(opts: TrainOptions, args, n_examples: int, example_counts: dict | None = None) -> None:
    from .records import atomic_path

    info = {
        "options": asdict(opts),
        "seed": opts.seed,
        "world_size": args.world_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "effective_batch": args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        "examples": n_examples,
        "example_counts": example_counts,
        "versions": _versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_path(os.path.join(opts.output_dir, ARGS_FILE), "w") as handle:
        json.dump(info, handle, indent=2)


def train(opts: TrainOptions, pairs: Iterable, policy: ErrorPolicy | None = None, callbacks: list | None = None) -> str:
    """Train one adapter on the examples of `pairs` ((record, location) pairs); returns the run dir.
    `callbacks`: extra TrainerCallbacks (tests use one to interrupt a run)."""
    from peft import LoraConfig, get_peft_model
    from transformers import PrinterCallback, Trainer, set_seed

    from .train_callbacks import MetricsCallback, ProgressCallback

    policy = policy or ErrorPolicy("fail")
    if opts.stage not in (1, 2):
        raise VkelError(f"--stage must be 1 or 2, not {opts.stage}")
    backbone = backbones.detect(opts.model, opts.backbone)
    torch_dtype = backbones.resolve_dtype(opts.dtype, backbones.resolve_device(opts.device))
    args = _training_arguments(opts, torch_dtype)  # also sets up torch.distributed under torchrun

    resume_from = None
    with args.main_process_first(desc="run directory"):
        if args.process_index == 0:
            resume_from = prepare_run_dir(opts)
    if args.process_index != 0 and opts.resume:
        from transformers.trainer_utils import get_last_checkpoint

        resume_from = get_last_checkpoint(opts.output_dir)

    # The processor counts each prompt's tokens while the examples are prepared (before the first step).
    processor = backbones.load_processor(opts.model, padding_side="right")
    dataset = SpooledExamples.build(pairs, example_options(opts), policy,
                                    check=LengthCheck(backbone, processor, opts.max_length))
    try:
        if len(dataset) == 0:
            raise VkelError("no training examples (no records, or every record was skipped)")
        if args.process_index == 0:
            _write_args(opts, args, len(dataset), dataset.counts.as_dict())
        model = backbones.load_model(backbone, opts.model, opts.dtype, device=None)
        if torch_dtype != model.dtype:
            model = model.to(torch_dtype)
        set_seed(opts.seed)  # the LoRA initialisation is random too
        lora = LoraConfig(r=opts.lora_r, lora_alpha=opts.lora_alpha, lora_dropout=opts.lora_dropout,
                          target_modules=backbone.lora_targets(opts.lora_targets), task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
        if opts.gradient_checkpointing:
            model.enable_input_require_grads()
        callbacks = [MetricsCallback(os.path.join(opts.output_dir, METRICS_FILE)),
                     ProgressCallback(f"train stage {'1+2' if opts.joint else opts.stage}"), *(callbacks or [])]
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=Collator(backbone, processor, opts.max_length), callbacks=callbacks)
        trainer.remove_callback(PrinterCallback)  # it prints logs on stdout, which carries records only
        if resume_from:
            log(f"resuming from {resume_from}")
        trainer.train(resume_from_checkpoint=resume_from)
        trainer.save_model(opts.output_dir)  # PEFT format: adapter_config.json + adapter_model.safetensors
        if args.process_index == 0:
            processor.tokenizer.padding_side = "left"  # as predict uses it
            processor.save_pretrained(opts.output_dir)
            log(f"adapter written to {opts.output_dir}")
    finally:
        dataset.close()
    return opts.output_dir
