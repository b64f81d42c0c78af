"""Progress and messages on stderr; stdout carries records only.

Progress bars and libraries' warnings (Python warnings, transformers/huggingface_hub logging and
download bars) appear only when stderr is a terminal, or with `vkel --verbose` (VKEL_VERBOSE=1):
a log file or CI output gets vkel's own messages, not noise. Without a terminal, --verbose gives
a plain progress line every PLAIN_EVERY seconds instead of a bar.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

PLAIN_EVERY = 10.0  # seconds between plain progress lines (--verbose, stderr not a terminal)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def log(message: str) -> None:
    print(f"vkel: {message}", file=sys.stderr, flush=True)


def verbose() -> bool:
    return os.environ.get("VKEL_VERBOSE", "") not in ("", "0")


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_enabled() -> bool:
    return stderr_is_terminal() or verbose()


def quiet_libraries() -> None:
    """Keep libraries' warnings and progress bars off a stderr that is not a terminal (unless
    --verbose). Set before the libraries are imported (the stages import them lazily); environment
    variables are inherited by worker processes too."""
    if not stderr_is_terminal():  # libraries' bars in a log are noise even with --verbose (vkel logs progress)
        for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE"):
            os.environ.setdefault(name, "1")
    if progress_enabled():
        return
    import logging
    import warnings

    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"  # worker processes (decoding, DataLoader)
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                        ("TQDM_DISABLE", "1"), ("DATASETS_VERBOSITY", "error"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    if logging.lastResort is not None:  # what prints a library's warning when nothing configured logging
        logging.lastResort.setLevel(logging.ERROR)


# Warnings that tell a vkel user nothing they can act on, raised inside the libraries' own calls to each
# other (category, message regex). Everything else raised in a `known_noise_filtered()` block is shown.
KNOWN_NOISE = [
    # PEFT reads transformers' deprecated alias when it wraps a model (train, predict --adapter).
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
    # mmdet's init_detector for --checkpoint none, which vkel asked for on purpose (random weights).
    (UserWarning, r"checkpoint is None, use COCO classes by default"),
    # mmdet 3.3 under torch 2.x, on every run.
    (FutureWarning, r"torch\.cuda\.amp\.autocast"),
    (UserWarning, r"torch\.meshgrid: in an upcoming release"),
]


@contextmanager
def known_noise_filtered():
    """Scope around a library call: drop KNOWN_NOISE, pass every other warning on to the usual filters.

    The block's warnings are recorded, then re-issued after it: a library that calls
    `warnings.simplefilter("once")` itself (mmdet does) would put its filter ahead of any "ignore"
    added here, and its change would outlive the call."""
    import re
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for found in caught:
        if not any(isinstance(found.message, category) and re.search(pattern, str(found.message))
                   for category, pattern in KNOWN_NOISE):
            warnings.warn_explicit(found.message, found.category, found.filename, found.lineno, source=found.source)


@contextmanager
def _logging_through(stream):
    """While a bar is live, logging handlers that write to the real stderr (libraries create theirs at
    import) write through the bar's console instead, so their lines land above the bar, not glued to it."""
    import logging

    real = getattr(stream, "rich_proxied_file", None)  # set when rich redirected stderr to the live console
    loggers = [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    moved = [(handler, handler.stream) for logger in loggers for handler in logger.handlers
             if real is not None and type(handler) is logging.StreamHandler
             and handler.stream in (real, sys.__stderr__)]
    for handler, _ in moved:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler, original in moved:
            handler.setStream(original)


def _count(task) -> str:
    # Without a known total the bar shows a count, not `8/None`.
    return f"{task.completed:g}" if task.total is None else f"{task.completed:g}/{task.total:g}"


@contextmanager
def progress_bar(description: str, total: int | None = None):
    """Yields `advance(n=1, **fields)`: a rich bar on a terminal stderr, plain lines with --verbose
    elsewhere, else nothing."""
    if not stderr_is_terminal():
        if not verbose():
            yield lambda n=1, **fields: None
            return
        yield from _plain(description, total)
        return
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    class CountColumn(ProgressColumn):
        def render(self, task):
            return Text(_count(task))

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), CountColumn(), TimeElapsedColumn()]
    if total is not None:
        columns.append(TimeRemainingColumn())
    columns.append(TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=stderr_console(), transient=False) as bar, _logging_through(sys.stderr):
        task = bar.add_task(description, total=total, status="")

        def advance(n: int = 1, **fields):
            status = " ".join(f"{k}={v}" for k, v in fields.items())
            bar.update(task, advance=n, **({"status": status} if fields else {}))

        yield advance


def _plain(description: str, total: int | None):
    state = {"done": 0, "last": time.monotonic(), "status": ""}

    def line() -> str:
        count = f"{state['done']}/{total}" if total is not None else str(state["done"])
        return f"{description}: {count}" + (f" {state['status']}" if state["status"] else "")

    def advance(n: int = 1, **fields):
        state["done"] += n
        if fields:
            state["status"] = " ".join(f"{k}={v}" for k, v in fields.items())
        if time.monotonic() - state["last"] >= PLAIN_EVERY:
            state["last"] = time.monotonic()
            log(line())

    yield advance
    log(line())
