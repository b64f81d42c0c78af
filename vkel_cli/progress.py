"""Progress and messages on stderr; stdout carries records only."""

from __future__ import annotations

import sys
from contextlib import contextmanager


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def log(message: str) -> None:
    print(f"vkel: {message}", file=sys.stderr, flush=True)


def progress_enabled() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, total: int | None = None):
    """Yields `advance(n=1, **fields)`; a rich bar on stderr when it is a terminal, else nothing."""
    if not progress_enabled():
        yield lambda n=1, **fields: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=stderr_console(), transient=False) as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n: int = 1, **fields):
            status = " ".join(f"{k}={v}" for k, v in fields.items())
            bar.update(task, advance=n, **({"status": status} if fields else {}))

        yield advance

