"""Dev-set selection for `vkel train --eval-file`: generate on the dev records with `vkel predict`'s batched
code path, score them with `vkel score`'s Scorer, keep the best adapter, optionally stop early.

Under torchrun the dev batches are dealt out to the processes whole (batch b to rank b mod N), so every
batch holds the same records, padded the same way, as in a single process: the scores are identical,
N times faster. Every process gathers all predictions and scores them, so all agree on the best step
and on stopping without another round of messages.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from transformers import TrainerCallback

from ..core.errors import ErrorPolicy, VkelError
from ..predict.local import LocalGenerator
from ..predict.jobs import PredictOptions
from ..predict.run import predict
from ..core.progress import log
from ..core.records import batched, read_records
from ..metric.score import Scorer, score_stream
from .rundir import ADAPTER_FILES, BEST_DIR, save_best_copy

TASKS = ("fmnerg", "fmner", "eeg")
SELECT_METRICS = tuple(f"{task}_{part}" for task in TASKS for part in ("f1", "precision", "recall"))
ROW_KEY = "eval_records"  # marks an evaluation row in metrics.jsonl and the Trainer's log history


def default_metric(stage: int) -> str:
    return "fmner_f1" if stage == 1 else "fmnerg_f1"


@dataclass
class EvalSettings:
    file: str
    predict: PredictOptions  # stage, model, prompt options, batch size, max new tokens
    metric: str
    steps: int | None = None  # None: at the end of each epoch
    patience: int | None = None  # stop after this many evaluations without improvement
    on_error: str = "fail"

    def __post_init__(self):
        if self.metric not in SELECT_METRICS:
            raise VkelError(f"--select-metric must be one of {', '.join(SELECT_METRICS)}, not {self.metric!r}")
        if not os.path.isfile(self.file):
            raise VkelError("no such dev file", self.file)


def dev_pairs(settings: EvalSettings, policy: ErrorPolicy) -> Iterator[tuple[dict, Any]]:
    """Dev records with gold `entities`. Stage 2 reads `stage1` like predict does; a record without it
    gets the gold entities with their coarse types, as training does."""
    for record, where in read_records([settings.file], policy):
        if not isinstance(record.get("entities"), list):
            policy.handle(VkelError("dev record has no gold `entities`", str(where)))
            continue
        if settings.predict.stage == 2 and "stage1" not in record:
            record = copy.copy(record)
            record["stage1"] = [{"text": e.get("text"), "coarse": e.get("coarse")} for e in record["entities"]
                                if isinstance(e, dict)]
        yield record, where


def _deal(pairs: Iterable, batch_size: int, rank: int, world: int) -> Iterator:
    """Whole batches of the single-process order, batch b to process b mod world."""
    for index, chunk in enumerate(batched(pairs, batch_size)):
        if index % world == rank:
            yield from chunk


def _gather(items: list) -> list:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return items
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


def evaluate(generator: LocalGenerator, settings: EvalSettings, rank: int = 0, world: int = 1) -> dict[str, float]:
    """P/R/F1 of the three tasks on the dev file (micro, IoU 0.5), plus `records`."""
    opts = settings.predict
    field = "stage1" if opts.stage == 1 else "predictions"
    policy = ErrorPolicy(settings.on_error)
    mine = []
    model = generator.model
    was_training = model.training
    model.eval()  # no LoRA dropout while generating
    try:
        for record in predict(opts, _deal(dev_pairs(settings, policy), opts.batch_size, rank, world), policy,
                              generator=generator):
            mine.append({"entities": record["entities"], **({field: record[field]} if field in record else {})})
    finally:
        model.train(was_training)
    scored = _gather(mine)
    scorer = Scorer(level="coarse" if opts.stage == 1 else "fine")
    score_stream(((record, f"dev record {i + 1}") for i, record in enumerate(scored)), scorer, field)
    metrics: dict[str, float] = {"records": len(scored)}
    for row in scorer.results():
        if row["type"] == "all":
            for part in ("precision", "recall", "f1"):
                metrics[f"{row['task'].lower()}_{part}"] = round(row[part], 6)
    return metrics


def save_adapter(model, run_dir: str) -> None:
    """The adapter as it is now becomes `RUN/best-adapter` (written beside, then renamed in)."""
    target = os.path.join(run_dir, BEST_DIR)
    staging = target + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staging, target)


def install_best(run_dir: str) -> bool:
    """At the end of training: the best adapter becomes the run's adapter. False when there is none."""
    best = os.path.join(run_dir, BEST_DIR)
    if not os.path.isdir(best):
        return False
    for name in ADAPTER_FILES:
        os.replace(os.path.join(best, name), os.path.join(run_dir, name))
    shutil.rmtree(best)
    return True


class BestAdapterCopies(TrainerCallback):
    """Each checkpoint gets a copy of the best adapter so far (when there is one), so that resuming from it,
    with or without --eval-file, finds the best adapter as of that step. Always installed: a checkpoint whose
    state names a best step is complete only with its copy (train_rundir.checkpoint_problem)."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            save_best_copy(self.run_dir, os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))


class DevSelection(TrainerCallback):
    """Evaluates every `steps` optimizer steps (and at the last) or at each epoch end, before that step's
    checkpoint is written, so the checkpoint's trainer_state.json (best_metric, best_global_step, the
    evaluation rows in log_history) and its copy of the best adapter are what a resume continues from."""

    def __init__(self, settings: EvalSettings, run_dir: str):
        self.settings = settings
        self.run_dir = run_dir
        self.trainer = None  # set by train(): Trainer.log sends the scores to metrics.jsonl and the trackers
        self._generator: LocalGenerator | None = None
        self._last_step = -1

    def on_step_end(self, args, state, control, model=None, **kwargs):
        steps = self.settings.steps
        if steps and (state.global_step % steps == 0 or state.global_step >= state.max_steps):
            self._evaluate(args, state, control, model)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if not self.settings.steps:
            self._evaluate(args, state, control, model)

    def _evaluate(self, args, state, control, model) -> None:
        if state.global_step == self._last_step:
            return
        self._last_step = state.global_step
        if self._generator is None:
            self._generator = LocalGenerator(self.settings.predict, loaded=model)
        metrics = evaluate(self._generator, self.settings, args.process_index, args.world_size)
        value = metrics[self.settings.metric]
        if state.best_metric is None or value > state.best_metric:
            state.best_metric, state.best_global_step = value, state.global_step
            if state.is_world_process_zero:
                save_adapter(model, self.run_dir)
        row = {f"eval_{key}": value for key, value in metrics.items()}
        row["eval_best_step"] = state.best_global_step
        should_log = control.should_log  # Trainer.log clears it: this step's loss would go unlogged
        self.trainer.log(row)
        control.should_log = self.trainer.control.should_log = should_log
        if state.is_world_process_zero:
            log(f"dev at step {state.global_step}: {self.settings.metric} {value:.4f} "
                f"(best {state.best_metric:.4f} at step {state.best_global_step})")
        patience = self.settings.patience
        if patience and self.evaluations_since_best(state) >= patience:
            control.should_training_stop = True
            control.should_save = True  # the last adapter stays in its checkpoint
            if state.is_world_process_zero:
                log(f"early stop: no better {self.settings.metric} in {patience} evaluations")

    @staticmethod
    def evaluations_since_best(state) -> int:
        return sum(1 for row in state.log_history if ROW_KEY in row and row["step"] > (state.best_global_step or 0))
