"""Trainer callbacks: metrics as JSONL in the run dir, and a rich progress bar (loss, ETA) on stderr."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack

from transformers import TrainerCallback

from ..core.progress import log, progress_enabled


class MetricsCallback(TrainerCallback):
    """Appends every log event ({step, epoch, loss, learning_rate, ...}) to metrics.jsonl (main process)."""

    def __init__(self, path: str):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3), **logs}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


class ProgressCallback(TrainerCallback):
    """A rich bar when stderr is a terminal; otherwise one `step N/M loss X` line per log event."""

    def __init__(self, description: str):
        self.description = description
        self._stack: ExitStack | None = None
        self._advance = None
        self._shown = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if progress_enabled():
            from ..core.progress import progress_bar

            self._stack = ExitStack()
            self._advance = self._stack.enter_context(progress_bar(self.description, state.max_steps))
            self._advance(state.global_step)
            self._shown = state.global_step
        elif state.global_step:
            log(f"{self.description}: resumed at step {state.global_step}/{state.max_steps}")

    def on_step_end(self, args, state, control, **kwargs):
        if self._advance is not None:
            self._advance(state.global_step - self._shown)
            self._shown = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        if self._advance is not None:
            self._advance(0, loss=f"{logs['loss']:.4f}")
        else:
            log(f"{self.description}: step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self._stack is not None:
            self._stack.close()
            self._stack = None
            self._advance = None
