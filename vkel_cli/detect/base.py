"""The detector interface, its options, and the registry of backends by name.

Backends are registered as "module:attribute" strings so that importing this module (and
`vkel --help`) never imports torch, mmdet or transformers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

from ..core.registry import Registry


@dataclass(frozen=True)
class Detection:
    """One detected object: a class name, a confidence in [0, 1], and [x1, y1, x2, y2] in pixels
    of the image given to the detector."""

    label: str
    score: float
    box: tuple[float, float, float, float]


@dataclass
class DetectorOptions:
    """Everything a backend may need; each backend reads the fields it understands."""

    config: str | None = None  # mmdet: config file or name of a config shipped with mmdet
    checkpoint: str | None = None  # mmdet: local path, URL, "released", or None (random weights)
    model: str | None = None  # rtdetr: hub id or local directory
    device: str = "auto"
    dtype: str = "auto"
    score_threshold: float = 0.0  # backends may drop detections below it early


class Detector(ABC):
    """Runs on a batch of RGB PIL images; returns, per image, its detections (any order)."""

    name: str = ""
    model_name: str = ""  # what produced the boxes, recorded in meta.detect
    device: str = "cpu"

    @abstractmethod
    def detect(self, images: list) -> list[list[Detection]]:
        """One list of detections per input image, in input order."""


# name -> a factory taking DetectorOptions and returning a Detector ("module:factory", imported when chosen).
BACKENDS = Registry("detector backend")
BACKENDS.register("mmdet", "vkel_cli.detect.mmdet_backend:MMDetDetector")
BACKENDS.register("rtdetr", "vkel_cli.detect.rtdetr:RTDetrDetector")
register = BACKENDS.register


def create(name: str, options: DetectorOptions) -> Detector:
    return BACKENDS.get(name)(options)


def resolve_device(device: str) -> str:
    """The shared device rule (vkel_cli/models/device.py) without Apple's mps, which the detectors do not support."""
    from ..models.device import resolve_device as resolve

    return resolve(device, mps=False)


def resolve_dtype(dtype: str, device: str):
    """The shared dtype vocabulary; `auto` is fp16 on CUDA (what the detectors are run in), fp32 elsewhere."""
    from ..models.device import resolve_dtype as resolve

    return resolve(dtype, device, cuda_auto="fp16")


def select(detections: Sequence[Detection], size: Sequence[int], top_k: int, score_threshold: float) -> list[dict]:
    """The `objects` field: boxes clipped inside the image (w, h), empty ones dropped, scores at or
    above the threshold, the top K by score (ties: the detector's order)."""
    width, height = size
    kept = []
    for det in detections:
        if det.score < score_threshold:
            continue
        x1, y1, x2, y2 = det.box
        box = [round(min(max(float(v), 0.0), limit), 2) for v, limit in ((x1, width), (y1, height), (x2, width),
                                                                         (y2, height))]
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        kept.append((det, box))
    kept.sort(key=lambda pair: -pair[0].score)  # stable: equal scores keep the detector's order
    return [{"label": det.label, "score": round(float(det.score), 4), "box": box} for det, box in kept[:top_k]]
