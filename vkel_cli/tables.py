"""Metric rows -> a readable rich table (stderr) or a Markdown table (files).

The JSON rows hold fractions (0.6239); the tables show percentages, as the paper does, and say so in
their headers (`P %`), so the two never disagree on units."""

from __future__ import annotations

from typing import Any, Iterable


def _iou(value) -> str:
    return "-" if value is None else f"{value:g}"


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


COLUMNS = ("task", "IoU", "type", "P %", "R %", "F1 %", "tp", "pred", "gold")


def cells(row: dict[str, Any]) -> list[str]:
    return [row["task"], _iou(row["iou"]), row["type"], _pct(row["precision"]), _pct(row["recall"]),
            _pct(row["f1"]), str(row["tp"]), str(row["n_pred"]), str(row["n_gold"])]


def print_table(rows: Iterable[dict[str, Any]], title: str = "vkel score") -> None:
    from rich.table import Table

    from .progress import stderr_console

    table = Table(title=title)
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if i in (0, 2) else "right")
    for row in rows:
        table.add_row(*cells(row))
    stderr_console().print(table)


def markdown(rows: Iterable[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"
