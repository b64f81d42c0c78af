"""Boxes: `[x1, y1, x2, y2]` in pixels in records; normalized to [0, 1] (3 decimals) in sequences."""

from __future__ import annotations

from typing import Sequence

Box = list[float]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union on continuous coordinates, area = (x2 - x1) * (y2 - y1)."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def normalize(box: Sequence[float], size: Sequence[float]) -> tuple[float, float, float, float]:
    """Pixels -> fractions of the image size, clipped to [0, 1], rounded to 3 decimals."""
    w, h = size
    scaled = (box[0] / w, box[1] / h, box[2] / w, box[3] / h)
    return tuple(round(min(max(v, 0.0), 1.0), 3) for v in scaled)  # type: ignore[return-value]


def denormalize(box: Sequence[float], size: Sequence[float]) -> Box:
    """Fractions of the image size -> pixels (floats, not rounded: IoU uses continuous values)."""
    w, h = size
    return [box[0] * w, box[1] * h, box[2] * w, box[3] * h]


def format_number(value: float) -> str:
    """`0.02`, `1.0`, `0.448`: the shortest form of the value rounded to 3 decimals."""
    return repr(round(float(value), 3))


def format_box(box: Sequence[float]) -> str:
    return "(" + ", ".join(format_number(v) for v in box) + ")"
