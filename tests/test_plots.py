"""scripts/plot_sweeps.py: the sweep figures beside the Markdown tables, checked from the SVG back to the
metrics values (every point where the input puts it)."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest

from conftest import ROOT

pytest.importorskip("matplotlib")
SCRIPT = ROOT / "scripts" / "plot_sweeps.py"
SVG = "{http://www.w3.org/2000/svg}"


def _row(task, iou, type_name, f1):
    return {"task": task, "iou": iou, "type": type_name, "level": "fine", "tp": 0, "n_pred": 0, "n_gold": 0,
            "precision": f1, "recall": f1, "f1": f1}


def _write(path: Path, rows) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _plot(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def _points(svg: Path) -> dict[str, list[tuple[float, float]]]:
    """gid -> the line's vertices in SVG units."""
    tree = ET.parse(svg)  # also proves the SVG is well-formed XML
    lines = {}
    for group in tree.iter(f"{SVG}g"):
        gid = group.get("id", "")
        if ":" not in gid:
            continue
        path = next(group.iter(f"{SVG}path"))
        numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path.get("d"))]
        lines[gid] = list(zip(numbers[0::2], numbers[1::2]))
    return lines


def _assert_plotted(points: list[tuple[float, float]], values: list[float]):
    """The SVG coordinates are one linear map of the values (same axes, fixed limits): fit it on the two
    extreme values and check every point against it."""
    lo = min(range(len(values)), key=values.__getitem__)
    hi = max(range(len(values)), key=values.__getitem__)
    assert values[hi] > values[lo]
    scale = (points[hi] - points[lo]) / (values[hi] - values[lo])
    for p, v in zip(points, values):
        assert p == pytest.approx(points[lo] + scale * (v - values[lo]), abs=0.02)


def test_iou_sweep_by_type(tmp_path):
    ious = [0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
    f1 = {("FMNERG", "all"): [0.7, 0.66, 0.6, 0.45, 0.2, 0.05], ("FMNERG", "person"): [0.8, 0.75, 0.7, 0.5, 0.3, 0.1],
          ("FMNERG", "location"): [0.5, 0.5, 0.4, 0.35, 0.1, 0.0], ("EEG", "all"): [0.9, 0.8, 0.7, 0.6, 0.3, 0.1],
          ("EEG", "person"): [0.95, 0.85, 0.75, 0.55, 0.25, 0.02], ("EEG", "location"): [0.6, 0.6, 0.5, 0.4, 0.2, 0.1]}
    rows = [_row("FMNER", None, t, 0.8) for t in ("all", "person", "location")]
    rows += [_row(task, iou, t, values[i]) for (task, t), values in f1.items() for i, iou in enumerate(ious)]
    metrics = _write(tmp_path / "metrics.jsonl", rows)
    result = _plot("iou", metrics, "-o", tmp_path / "fig" / "table-ix", "--title", "Table IX")
    assert result.returncode == 0, result.stderr
    from PIL import Image

    with Image.open(tmp_path / "fig" / "table-ix.png") as png:
        png.load()
        assert png.size[0] > 600 and png.size[1] > 300
    lines = _points(tmp_path / "fig" / "table-ix.svg")
    assert set(lines) == {f"{task}:{t}" for task, t in f1}
    for task in ("FMNERG", "EEG"):
        ys = [y for (tk, _), values in f1.items() if tk == task for y in values]
        svg_ys = [p[1] for (tk, t) in f1 if tk == task for p in lines[f"{tk}:{t}"]]
        _assert_plotted(svg_ys, [100 * y for y in ys])  # the F1 values, on the panel's one y scale
        svg_xs = [p[0] for p in lines[f"{task}:all"]]
        _assert_plotted(svg_xs, ious)
    assert "Table IX" in (tmp_path / "fig" / "table-ix.svg").read_text()  # text kept as text


def test_label_sweep_like_fig_8(tmp_path):
    ks = [1, 3, 5, 7, 10]
    values = {"FMNERG": [0.5, 0.56, 0.6, 0.58, 0.55], "FMNER": [0.7, 0.71, 0.72, 0.7, 0.69],
              "EEG": [0.6, 0.63, 0.66, 0.65, 0.64]}
    items = []
    for i, k in enumerate(ks):
        rows = [_row("FMNER", None, "all", values["FMNER"][i])]
        rows += [_row(task, iou, "all", values[task][i] if iou == 0.5 else 0.01)
                 for task in ("FMNERG", "EEG") for iou in (0.5, 0.7)]
        items.append(f"K={k}={_write(tmp_path / f'k{k}.jsonl', rows)}")
    result = _plot("labels", "--x-label", "K", "-o", tmp_path / "fig-8", *items)
    assert result.returncode == 0, result.stderr
    lines = _points(tmp_path / "fig-8.svg")
    assert set(lines) == {f"IoU 0.5, all types:{t}" for t in values}
    svg_ys = [p[1] for task in values for p in lines[f"IoU 0.5, all types:{task}"]]
    _assert_plotted(svg_ys, [100 * v for task in values for v in values[task]])
    _assert_plotted([p[0] for p in lines["IoU 0.5, all types:FMNERG"]], ks)  # K on a numeric axis, not evenly spaced


def test_errors_name_the_file(tmp_path):
    missing = _plot("labels", "-o", tmp_path / "x", f"K=1={tmp_path / 'none.jsonl'}")
    assert missing.returncode == 1 and "none.jsonl: no such metrics file" in missing.stderr
    partial = _write(tmp_path / "p.jsonl", [_row("FMNER", None, "all", 0.5), _row("FMNERG", 0.5, "all", 0.5)])
    no_row = _plot("labels", "-o", tmp_path / "x", f"K=1={partial}")
    assert no_row.returncode == 1 and "no EEG row at IoU 0.5" in no_row.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.svg").exists()


def test_demo_timing_bars(tmp_path):
    timing = tmp_path / "timing.tsv"
    timing.write_text("import:train\t0.5e-3\ndetect:test\t12.25\ntrain:stage1\t40\n")
    result = _plot("timing", "-o", tmp_path / "demo-timing", timing)
    assert result.returncode == 0, result.stderr
    tree = ET.parse(tmp_path / "demo-timing.svg")
    widths = []
    for n in range(3):
        group = next(g for g in tree.iter(f"{SVG}g") if g.get("id") == f"stage:{n}")
        numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", next(group.iter(f"{SVG}path")).get("d"))]
        xs = numbers[0::2]
        widths.append(max(xs) - min(xs))
    assert widths[2] / widths[1] == pytest.approx(40 / 12.25, rel=1e-3) and widths[0] < 0.01
    assert (tmp_path / "demo-timing.png").stat().st_size > 0
    timing.write_text("import:train 12\n")
    bad = _plot("timing", "-o", tmp_path / "bad", timing)
    assert bad.returncode == 1 and "timing.tsv:1: expected `stage<TAB>seconds`" in bad.stderr
