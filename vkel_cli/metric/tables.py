"""Metric rows -> JSON lines (stdout), a readable rich table (stderr) and a Markdown table (files).

The JSON rows hold fractions (0.6239); the tables show percentages, as the paper does, and say so in
their headers (`P %`), so the two never disagree on units."""

from __future__ import annotations

from typing import Any, Callable, Iterable


def _iou(value) -> str:
    return "-" if value is None else f"{value:g}"


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


class Layout:
    """The columns of one kind of metric row and how a row becomes cells; shared by every table command."""

    def __init__(self, columns: tuple[str, ...], cells: Callable[[dict[str, Any]], list[str]],
                 left: tuple[int, ...] = ()):
        self.columns, self.cells, self.left = columns, cells, left

    def print_table(self, rows: Iterable[dict[str, Any]], title: str) -> None:
        from rich.table import Table

        from ..core.progress import stderr_console

        table = Table(title=title)
        for i, name in enumerate(self.columns):
            table.add_column(name, justify="left" if i in self.left else "right")
        for row in rows:
            table.add_row(*self.cells(row))
        stderr_console().print(table)

    def markdown(self, rows: Iterable[dict[str, Any]]) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(self.cells(row)) + " |" for row in rows]
        return "\n".join(lines) + "\n"


def _score_cells(row: dict[str, Any]) -> list[str]:
    return [row["task"], _iou(row["iou"]), row["type"], _pct(row["precision"]), _pct(row["recall"]),
            _pct(row["f1"]), str(row["tp"]), str(row["n_pred"]), str(row["n_gold"])]


SCORE = Layout(("task", "IoU", "type", "P %", "R %", "F1 %", "tp", "pred", "gold"), _score_cells, left=(0, 2))


def emit(rows: list[dict[str, Any]], layout: Layout, *, title: str, markdown: str | None = None,
         quiet: bool = False, notes: Iterable[str] = ()) -> None:
    """What a metric command prints: one JSON line per row on stdout, its `notes` on stderr, the Markdown
    table to `markdown` (atomically), and the table on stderr unless `quiet`."""
    import sys

    import orjson

    from ..core.progress import log
    from ..core.records import atomic_path

    out = sys.stdout.buffer
    for row in rows:
        out.write(orjson.dumps(row) + b"\n")
    out.flush()
    for note in notes:
        log(note)
    if markdown:
        with atomic_path(markdown, "w") as handle:
            handle.write(layout.markdown(rows))
    if not quiet:
        layout.print_table(rows, title)
