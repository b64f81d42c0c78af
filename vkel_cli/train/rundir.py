"""The run directory of `vkel train`: refuse, replace or resume it without ever losing a finished run.

- `--overwrite` trains into a sibling staging directory (`.NAME.vkel-new`) and swaps it in only once the
  new run has written its adapter: a run that fails or is killed leaves the previous run untouched.
- `--resume` continues from the newest *complete* checkpoint (a kill in the middle of a save leaves a
  partial one, which is moved aside as `incomplete-checkpoint-N`), and cuts `metrics.jsonl` back to that
  checkpoint's step so that no step is logged twice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from dataclasses import dataclass

from ..core.errors import VkelError
from ..core.progress import log

METRICS_FILE = "metrics.jsonl"
BEST_DIR = "best-adapter"  # the best adapter so far (dev selection); a copy goes into each checkpoint
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass
class RunDir:
    final: str  # the user's --output-dir
    work: str  # where this run writes: `final`, or the staging directory when replacing a run
    resume_from: str | None = None

    @property
    def staged(self) -> bool:
        return self.work != self.final


def _sibling(final: str, suffix: str) -> str:
    parent, base = os.path.split(os.path.abspath(final))
    return os.path.join(parent, f".{base}.{suffix}")


def staging_path(final: str) -> str:
    return _sibling(final, "vkel-new")


def _recover_swap(final: str) -> None:
    """A kill between the two renames of `commit` leaves `.NAME.vkel-old`: finish (or undo) that swap."""
    old, new = _sibling(final, "vkel-old"), staging_path(final)
    if not os.path.isdir(old):
        return
    if not os.path.exists(final):
        os.rename(new if os.path.isdir(new) else old, final)
        log(f"completed an interrupted replacement of {final}")
    if os.path.isdir(old):
        shutil.rmtree(old)


def prepare(final: str, resume: bool, overwrite: bool) -> RunDir:
    """Main process only: decide where this run writes and what it resumes from."""
    _recover_swap(final)
    exists = os.path.isdir(final) and bool(os.listdir(final))
    if exists and not (resume or overwrite):
        raise VkelError("the run directory exists; pass --resume to continue it or --overwrite to replace it",
                        final)
    if exists and overwrite:
        work = staging_path(final)
        shutil.rmtree(work, ignore_errors=True)  # what a killed earlier attempt left
        os.makedirs(work)
        return RunDir(final, work)
    os.makedirs(final, exist_ok=True)
    if not exists:
        return RunDir(final, final)
    checkpoint = newest_complete_checkpoint(final)
    step = checkpoint_step(checkpoint) if checkpoint else 0
    truncate_metrics(os.path.join(final, METRICS_FILE), step)
    _restore_best(final, checkpoint)
    if not checkpoint:
        log(f"no complete checkpoint in {final}: training from the start")
    return RunDir(final, final, checkpoint)


def commit(run: RunDir) -> None:
    """Main process, after the new run wrote its adapter: the staged run replaces the old one."""
    if not run.staged:
        return
    old = _sibling(run.final, "vkel-old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(run.final, old)
    os.rename(run.work, run.final)
    shutil.rmtree(old)


def abandon(run: RunDir) -> None:
    """Main process, after a failure: drop the staged run; the previous run stays as it was."""
    if run.staged:
        shutil.rmtree(run.work, ignore_errors=True)
        log(f"the previous run in {run.final} is unchanged")


# ------------------------------------------------------------------------------------ checkpoints


def checkpoint_step(path: str) -> int:
    match = CHECKPOINT_RE.match(os.path.basename(os.path.normpath(path)))
    return int(match.group(1)) if match else -1


def _check_adapter(folder: str) -> None:
    from safetensors.torch import load_file

    with open(os.path.join(folder, "adapter_config.json"), encoding="utf-8") as handle:
        json.load(handle)
    load_file(os.path.join(folder, "adapter_model.safetensors"))  # a cut file fails its header's length check


def checkpoint_problem(path: str) -> str | None:
    """Why `path` cannot be resumed from, or None. Complete means: trainer_state.json (the Trainer writes it
    last) parses with its global_step, the adapter loads, and optimizer, scheduler and RNG files are whole
    (torch saves zip archives: every member's CRC is checked, nothing is unpickled)."""
    try:
        with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as handle:
            state = json.load(handle)
        if not isinstance(state.get("global_step"), int):
            return "trainer_state.json has no global_step"
        _check_adapter(path)
        names = os.listdir(path)
        archives = ["optimizer.pt", "scheduler.pt"] + [n for n in names if n.startswith("rng_state")]
        if not any(n.startswith("rng_state") for n in names):
            return "no rng_state file"
        for name in archives:
            with zipfile.ZipFile(os.path.join(path, name)) as archive:
                if archive.testzip() is not None:
                    return f"{name} is corrupt"
        if state.get("best_global_step") is not None:
            _check_adapter(os.path.join(path, BEST_DIR))
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        return f"{type(err).__name__}: {err}"
    except Exception as err:  # safetensors raises its own error type for a cut file
        return f"{type(err).__name__}: {err}"
    return None


def newest_complete_checkpoint(run_dir: str) -> str | None:
    """The highest-step complete checkpoint; newer incomplete ones are renamed `incomplete-checkpoint-N`
    (outside the Trainer's `checkpoint-*` glob, so its rotation never counts them) and reported."""
    steps = sorted((checkpoint_step(name), name) for name in os.listdir(run_dir) if CHECKPOINT_RE.match(name))
    for _step, name in reversed(steps):
        path = os.path.join(run_dir, name)
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        aside = os.path.join(run_dir, f"incomplete-{name}")
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(path, aside)
        log(f"{path} is incomplete ({problem}); moved to {aside}, resuming from an earlier checkpoint")
    return None


def _restore_best(run_dir: str, checkpoint: str | None) -> None:
    """The best adapter so far is the one the resumed checkpoint saw, not one from the steps after it."""
    live = os.path.join(run_dir, BEST_DIR)
    shutil.rmtree(live, ignore_errors=True)
    saved = os.path.join(checkpoint, BEST_DIR) if checkpoint else None
    if saved and os.path.isdir(saved):
        shutil.copytree(saved, live)


def save_best_copy(run_dir: str, checkpoint: str) -> None:
    live = os.path.join(run_dir, BEST_DIR)
    if os.path.isdir(live) and os.path.isdir(checkpoint):
        target = os.path.join(checkpoint, BEST_DIR)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(live, target)


def truncate_metrics(path: str, step: int) -> None:
    """Keep the rows of steps <= `step` (what the resumed checkpoint had seen); the resumed run logs the rest."""
    if not os.path.isfile(path):
        return
    from ..core.records import atomic_path

    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    kept = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by the kill
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line)
    if len(kept) != len(lines):
        with atomic_path(path, "w") as handle:
            handle.write("".join(line + "\n" for line in kept))
