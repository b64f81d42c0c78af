"""`vkel train`: one LoRA adapter per stage on an image-text backbone, with the Hugging Face Trainer
(so `torchrun`/`accelerate launch` run the same command under DDP) and PEFT (standard adapter format).

Run directory (`--output-dir`): adapter_config.json + adapter_model.safetensors, the processor,
train_args.json (options, seed, versions, and which step won the dev selection), metrics.jsonl (one line
per log event and per dev evaluation), checkpoint-N/. How it is replaced or resumed: train_rundir.py;
dev-set selection: train_eval.py.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable

from .. import __version__
from ..models import backbones
from . import rundir as train_rundir
from ..core.errors import ErrorPolicy, VkelError
from ..core.progress import log
from .examples import Collator, LengthCheck, SpooledExamples, example_options
from .rundir import METRICS_FILE, RunDir

ARGS_FILE = "train_args.json"
REPORT_TO = ("none", "tensorboard", "wandb", "mlflow")


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
    eval_file: str | None = None  # dev records with gold entities: select the best adapter on them
    eval_steps: int | None = None  # None: evaluate at the end of each epoch
    select_metric: str | None = None  # None: fmner_f1 (stage 1) or fmnerg_f1 (stage 2)
    early_stop: int | None = None  # patience, in evaluations without improvement
    eval_batch_size: int = 8
    eval_max_new_tokens: int = 256
    report_to: str = "none"
    attn_implementation: str = "auto"
    min_pixels: int | None = None  # Qwen2.5-VL pixel budget (backbones.set_pixels); None: the default
    max_pixels: int | None = None
    no_stage1: bool = False  # stage 2 end to end, no stage-1 input (LLaVA-direct)


def _versions() -> dict:
    from ..core.env_info import package_versions

    return {"vkel": __version__, "python": sys.version.split()[0], **package_versions()}


def _run_dir(opts: TrainOptions, args) -> RunDir:
    """The main process prepares the run directory (train_rundir.prepare) and tells the others."""
    import torch.distributed as dist

    outcome: list = [None]
    if args.process_index == 0:
        try:
            outcome[0] = train_rundir.prepare(opts.output_dir, opts.resume, opts.overwrite)
        except VkelError as err:
            outcome[0] = (err.message, err.where)  # sent to every process, so none waits forever
    if dist.is_available() and dist.is_initialized():
        dist.broadcast_object_list(outcome, src=0)
    if isinstance(outcome[0], tuple):
        raise VkelError(*outcome[0])
    return outcome[0]


def _check_report_to(choice: str) -> None:
    if choice not in REPORT_TO:
        raise VkelError(f"--report-to must be one of {', '.join(REPORT_TO)}, not {choice!r}")
    if choice != "none" and importlib.util.find_spec(choice) is None:
        raise VkelError(f"--report-to {choice} needs the {choice} package (pip install {choice})")


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
        report_to=opts.report_to,  # tensorboard: event files under RUN/runs/
    )


def _write_args(opts: TrainOptions, args, n_examples: int, run_dir: str,
                example_counts: dict | None = None) -> None:
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
    _dump(info, os.path.join(run_dir, ARGS_FILE))


def _dump(info: dict, path: str) -> None:
    from ..core.records import atomic_path

    with atomic_path(path, "w") as handle:
        json.dump(info, handle, indent=2)


def _record_selection(run_dir: str, state, metric: str) -> None:
    """train_args.json says which evaluation won; the run's adapter is that step's."""
    from .select import DevSelection

    path = os.path.join(run_dir, ARGS_FILE)
    with open(path, encoding="utf-8") as handle:
        info = json.load(handle)
    last = f"checkpoint-{state.global_step}"
    info["selection"] = {
        "metric": metric, "best_step": state.best_global_step, "best_value": state.best_metric,
        "last_step": state.global_step, "evaluations_since_best": DevSelection.evaluations_since_best(state),
        "early_stopped": state.global_step < state.max_steps,
        "last_checkpoint": last if os.path.isdir(os.path.join(run_dir, last)) else None,
    }
    _dump(info, path)


def _eval_settings(opts: TrainOptions, policy: ErrorPolicy):
    if not opts.eval_file:
        if opts.early_stop or opts.eval_steps or opts.select_metric:
            raise VkelError("--eval-steps, --select-metric and --early-stop need --eval-file")
        return None
    from ..predict.jobs import PredictOptions
    from .select import EvalSettings, default_metric

    predict_opts = PredictOptions(stage=opts.stage, model=opts.model, backbone=opts.backbone,
                                  batch_size=opts.eval_batch_size, max_new_tokens=opts.eval_max_new_tokens,
                                  top_k=opts.top_k, knowledge=opts.knowledge, objects=opts.objects,
                                  no_stage1=opts.no_stage1, image_root=opts.image_root,
                                  min_pixels=opts.min_pixels, max_pixels=opts.max_pixels)
    return EvalSettings(opts.eval_file, predict_opts, opts.select_metric or default_metric(opts.stage),
                        steps=opts.eval_steps, patience=opts.early_stop, on_error=policy.mode)


def train(opts: TrainOptions, pairs: Iterable, policy: ErrorPolicy | None = None, callbacks: list | None = None) -> str:
    """Train one adapter on the examples of `pairs` ((record, location) pairs); returns the run dir.
    `callbacks`: extra TrainerCallbacks (tests use one to interrupt a run)."""
    policy = policy or ErrorPolicy("fail")
    if opts.stage not in (1, 2):
        raise VkelError(f"--stage must be 1 or 2, not {opts.stage}")
    if opts.resume and opts.overwrite:
        raise VkelError("--resume and --overwrite exclude each other")
    _check_report_to(opts.report_to)
    evaluation = _eval_settings(opts, policy)
    backbone = backbones.detect(opts.model, opts.backbone)
    torch_dtype = backbones.resolve_dtype(opts.dtype, backbones.resolve_device(opts.device))
    args = _training_arguments(opts, torch_dtype)  # also sets up torch.distributed under torchrun
    run = _run_dir(opts, args)
    args.output_dir = run.work
    try:
        _train(opts, args, run, backbone, torch_dtype, evaluation, pairs, policy, callbacks)
    except BaseException:
        if args.process_index == 0:
            train_rundir.abandon(run)
        raise
    if args.process_index == 0:
        train_rundir.commit(run)
        log(f"adapter written to {opts.output_dir}")
    return opts.output_dir


def _train(opts: TrainOptions, args, run: RunDir, backbone, torch_dtype, evaluation, pairs, policy,
           callbacks) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import PrinterCallback, Trainer, set_seed

    from .callbacks import MetricsCallback, ProgressCallback

    # The processor counts each prompt's tokens while the examples are prepared (before the first step).
    processor = backbones.load_processor(opts.model, padding_side="right", min_pixels=opts.min_pixels,
                                         max_pixels=opts.max_pixels, backbone=backbone)
    dataset = SpooledExamples.build(pairs, example_options(opts), policy,
                                    check=LengthCheck(backbone, processor, opts.max_length))
    try:
        if len(dataset) == 0:
            raise VkelError("no training examples (no records, or every record was skipped)")
        if args.process_index == 0:
            _write_args(opts, args, len(dataset), run.work, dataset.counts.as_dict())
        model = backbones.load_model(backbone, opts.model, opts.dtype, device=None,
                                     attn_implementation=opts.attn_implementation)
        if torch_dtype != model.dtype:
            model = model.to(torch_dtype)
        set_seed(opts.seed)  # the LoRA initialisation is random too
        lora = LoraConfig(r=opts.lora_r, lora_alpha=opts.lora_alpha, lora_dropout=opts.lora_dropout,
                          target_modules=backbone.lora_targets(opts.lora_targets), task_type="CAUSAL_LM")
        from ..core.progress import known_noise_filtered

        with known_noise_filtered():
            model = get_peft_model(model, lora)
        if opts.gradient_checkpointing:
            model.enable_input_require_grads()
        own = [MetricsCallback(os.path.join(run.work, METRICS_FILE)),
               ProgressCallback(f"train stage {'1+2' if opts.joint else opts.stage}")]
        from .select import BestAdapterCopies, DevSelection

        own.append(BestAdapterCopies(run.work))
        selection = DevSelection(evaluation, run.work) if evaluation is not None else None
        if selection is not None:
            own.append(selection)
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=Collator(backbone, processor, opts.max_length),
                          callbacks=[*own, *(callbacks or [])])
        trainer.remove_callback(PrinterCallback)  # it prints logs on stdout, which carries records only
        if selection is not None:
            selection.trainer = trainer  # its scores go through Trainer.log: metrics.jsonl and the trackers
        if run.resume_from:
            log(f"resuming from {run.resume_from}")
        trainer.train(resume_from_checkpoint=run.resume_from)
        selected = selection is not None and trainer.state.best_global_step is not None
        if not selected:
            trainer.save_model(run.work)  # PEFT format: adapter_config.json + adapter_model.safetensors
        if args.process_index == 0:
            from .select import install_best

            if selected:
                install_best(run.work)  # the best adapter is the run's; the last stays in its checkpoint
                _record_selection(run.work, trainer.state, evaluation.metric)
                log(f"dev selection: step {trainer.state.best_global_step} "
                    f"({evaluation.metric} {trainer.state.best_metric:.4f}) is the run's adapter")
            else:
                shutil.rmtree(os.path.join(run.work, train_rundir.BEST_DIR), ignore_errors=True)
            processor.tokenizer.padding_side = "left"  # as predict uses it
            processor.save_pretrained(run.work)
    finally:
        dataset.close()
