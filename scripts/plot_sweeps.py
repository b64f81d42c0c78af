#!/usr/bin/env python3
"""Figures of the paper's sweeps, from the same `vkel score` metrics files scripts/metrics_table.py reads.

  plot_sweeps.py iou [--task FMNERG] -o PREFIX METRICS.jsonl
      Table IX as a figure: F1 against the IoU threshold, one line per coarse type (and all types);
      FMNERG and EEG side by side (FMNER needs no box, so it does not move with the threshold).
  plot_sweeps.py labels --x-label K -o PREFIX LABEL=METRICS.jsonl ...
      Fig. 8 / Fig. 10: FMNERG, FMNER and EEG F1 (IoU --iou, type --type) against the value in each label
      (`K=5`, `noise=0.1`: the number after the last `=`; labels that are not numbers are placed in order).

  plot_sweeps.py timing -o PREFIX TIMING.tsv
      `make bench`: the demo's seconds per stage (the `stage<TAB>seconds` lines mk/demo.mk writes), as bars.

Writes PREFIX.png and PREFIX.svg (matplotlib, no display needed); a missing file or row is an error
naming it (exit 1), as in metrics_table.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_table import TASKS, labelled, load, missing_file, pick  # noqa: E402  (one reader of the metrics files)

Series = dict[str, tuple[list[float], list[float]]]  # name -> (x values, F1 in %)


def iou_series(path: str, task: str) -> Series:
    """F1 (%) of `task` per IoU threshold, one series per type present in the file ("all" first)."""
    rows = load(path)
    ious = sorted({r["iou"] for r in rows if r.get("task") == task and r.get("iou") is not None})
    if not ious:
        raise SystemExit(f"plot_sweeps: {path}: no {task} rows with an IoU threshold")
    types = list(dict.fromkeys(["all"] + [r.get("type", "all") for r in rows if r.get("task") == task]))
    return {t: (ious, [100 * pick(rows, task, iou, t, path)["f1"] for iou in ious]) for t in types}


def label_value(label: str) -> float | None:
    try:
        return float(label.rpartition("=")[2])
    except ValueError:
        return None


def label_series(pairs: list[tuple[str, str]], iou: float, type_name: str) -> tuple[Series, list[str]]:
    """F1 (%) of each task against the labels' values; returns the series and the tick labels."""
    values = [label_value(label) for label, _ in pairs]
    xs = values if all(v is not None for v in values) else list(range(len(pairs)))
    loaded = [load(path) for _, path in pairs]
    series = {task: (list(xs), [100 * pick(rows, task, iou, type_name, path)["f1"]
                                for rows, (_, path) in zip(loaded, pairs)]) for task in TASKS}
    return series, [label.rpartition("=")[2] if "=" in label else label for label, _ in pairs]


def timing_series(path: str) -> tuple[list[str], list[float]]:
    stages, seconds = [], []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        stage, _, value = line.partition("\t")
        try:
            seconds.append(float(value))
        except ValueError:
            raise SystemExit(f"plot_sweeps: {path}:{n}: expected `stage<TAB>seconds`") from None
        stages.append(stage)
    if not stages:
        raise SystemExit(f"plot_sweeps: {path}: no timings")
    return stages, seconds


def draw_bars(stages: list[str], seconds: list[float], title: str, prefix: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "vkel"})
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(stages) + 1.2))
    bars = ax.barh(range(len(stages)), seconds, color="#4a78c8")
    for n, bar in enumerate(bars):
        bar.set_gid(f"stage:{n}")
    ax.set_yticks(range(len(stages)))
    ax.set_yticklabels(stages, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, prefix)


def _save(fig, prefix: str) -> None:
    import matplotlib.pyplot as plt

    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "svg"):
        tmp = f"{prefix}.{ext}.tmp"
        fig.savefig(tmp, format=ext, dpi=120, metadata={"Date": None} if ext == "svg" else None)
        Path(tmp).replace(f"{prefix}.{ext}")
    plt.close(fig)


def draw(panels: list[tuple[str, Series]], x_label: str, title: str, prefix: str, ticks: list[str] | None = None):
    """One axes per panel; each series a line with markers whose SVG group id is `<panel>:<series>`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "vkel"})
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (panel, series) in zip(axes[0], panels):
        for name, (xs, ys) in series.items():
            (line,) = ax.plot(xs, ys, marker="o", linewidth=2.2 if name == "all" else 1.2, label=name)
            line.set_gid(f"{panel}:{name}")
        ax.set_title(panel)
        ax.set_xlabel(x_label)
        ax.set_ylabel("F1 %")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        first = next(iter(series.values()))[0]
        ax.set_xticks(first)
        if ticks:
            ax.set_xticklabels(ticks)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, prefix)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("iou", "labels", "timing"),
                        help="iou: one file's IoU sweep; labels: one file per point; timing: stage seconds")
    parser.add_argument("items", nargs="+", help="METRICS.jsonl (iou) or LABEL=METRICS.jsonl ... (labels)")
    parser.add_argument("-o", "--output", required=True, help="PREFIX: writes PREFIX.png and PREFIX.svg")
    parser.add_argument("--title", default="", help="the figure's title")
    parser.add_argument("--x-label", default="", help="the x axis (labels)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold of the points (labels; default 0.5)")
    parser.add_argument("--type", default="all", help="coarse type of the points (labels; default all)")
    args = parser.parse_args(argv[1:])
    missing = missing_file(args.items)
    if missing:
        print(f"plot_sweeps: {missing}: no such metrics file", file=sys.stderr)
        return 1
    if args.kind == "timing":
        stages, seconds = timing_series(args.items[0])
        draw_bars(stages, seconds, args.title or "demo: seconds per stage", args.output)
    elif args.kind == "iou":
        if len(args.items) != 1:
            parser.error("iou takes exactly one metrics file")
        path = args.items[0]
        draw([(task, iou_series(path, task)) for task in ("FMNERG", "EEG")], "IoU threshold", args.title,
             args.output)
    else:
        pairs = labelled(args.items)
        series, ticks = label_series(pairs, args.iou, args.type)
        draw([(f"IoU {args.iou:g}, {args.type} types", series)], args.x_label, args.title, args.output, ticks)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
