"""RTMDet (or any mmdet 3.x detector) through OpenMMLab's mmdet, the paper's toolkit.

`--config` is a config file or the name of a config shipped inside the mmdet package (its
`.mim/configs/**/NAME.py`). `--checkpoint` is a local path, a URL (mmengine downloads and caches
it), `released` (the weights URL that mmdet's metafile gives for a shipped config), or none for
random weights (tests). The model is built with `mmdet.apis.init_detector`; a batch goes through
mmdet's own test pipeline and ONE `model.test_step` call (what `inference_detector` does per image).
Install: `make install-mmdet` (scripts/build_mmcv.sh), see docs/detect.md.
"""

from __future__ import annotations

import contextlib
import glob
import os
from contextlib import contextmanager
from functools import lru_cache

from ..core.errors import VkelError
from ..core.progress import log
from .base import Detection, Detector, DetectorOptions, resolve_device, resolve_dtype

DEFAULT_CONFIG = "rtmdet_tiny_8xb32-300e_coco"
NO_CHECKPOINT = ("", "none", "None", "random")
INSTALL_HINT = "install it with `make install-mmdet` (builds mmcv's ops once; see docs/detect.md)"


def _import_mmdet():
    try:
        import mmcv.ops  # noqa: F401  (the compiled ops: mmcv-lite lacks them)
        import mmdet
        import mmdet.apis  # noqa: F401
    except ImportError as err:
        raise VkelError(f"the mmdet backend needs mmcv (with ops) and mmdet: {err}; {INSTALL_HINT}, "
                        "or use --backend rtdetr") from None
    return mmdet


def _logs_to_stderr() -> None:
    """mmengine's MMLogger writes to stdout, which carries our records: make the instance mmengine
    logs to (the latest created) write to stderr, through logging's own API."""
    import logging
    import sys

    from mmengine.logging import MMLogger

    name = "vkel-detect"
    logger = MMLogger.get_instance(name) if MMLogger.check_instance_created(name) else \
        MMLogger.get_instance(name, log_level="INFO")
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
            handler.setStream(sys.stderr)


@contextmanager
def _quiet():
    """While mmdet runs: Python-level stdout goes to stderr (mmengine print()s, e.g. "Loads checkpoint
    by ..." when its logger argument is None; our records are written between calls), and the known
    harmless deprecation warnings of mmdet 3.3 under torch 2.x are not repeated on every run."""
    import sys

    from ..core.progress import known_noise_filtered

    # Not warnings' "ignore" filters: init_detector's own simplefilter("once") goes ahead of them.
    with known_noise_filtered(), contextlib.redirect_stdout(sys.stderr):
        yield


def configs_dir() -> str:
    mmdet = _import_mmdet()
    return os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs")


@lru_cache(maxsize=None)
def _shipped_configs() -> dict[str, str]:
    return {os.path.splitext(os.path.basename(p))[0]: p
            for p in glob.glob(os.path.join(configs_dir(), "**", "*.py"), recursive=True)}


def resolve_config(config: str | None) -> str:
    """A config file path, or the path of the mmdet-shipped config of that name (with or without .py)."""
    config = config or DEFAULT_CONFIG
    if os.path.isfile(config):
        return config
    name = os.path.splitext(os.path.basename(config))[0]
    path = _shipped_configs().get(name)
    if path is None:
        close = sorted(n for n in _shipped_configs() if name.split("_")[0] in n)[:8]
        raise VkelError(f"--config {config!r} is neither a file nor a config shipped with mmdet"
                        + (f" (e.g. {', '.join(close)})" if close else ""))
    return path


def released_checkpoint(config_path: str) -> str:
    """The released weights URL for a shipped config, from mmdet's metafile.yml beside it."""
    import yaml

    name = os.path.splitext(os.path.basename(config_path))[0]
    metafile = os.path.join(os.path.dirname(config_path), "metafile.yml")
    if os.path.isfile(metafile):
        with open(metafile, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
        for model in data.get("Models", []):
            if model.get("Name") == name and model.get("Weights"):
                return model["Weights"]
    raise VkelError(f"mmdet publishes no released checkpoint for config {name!r}: pass --checkpoint PATH|URL")


def _load_config(path: str, score_threshold: float):
    """The config, with the head's score_thr raised to the user's threshold (when it has one). Boxes below
    it cannot suppress boxes above it in NMS, so the kept objects are the same, and NMS has far fewer
    candidates."""
    from mmengine.config import Config

    cfg = Config.fromfile(path)
    test_cfg = cfg.model.get("test_cfg")
    if test_cfg is not None and isinstance(test_cfg.get("score_thr"), (int, float)):
        test_cfg.score_thr = max(test_cfg.score_thr, score_threshold)
    return cfg


class MMDetDetector(Detector):
    name = "mmdet"

    def __init__(self, options: DetectorOptions):
        _import_mmdet()
        _logs_to_stderr()
        import torch
        from mmdet.apis import init_detector

        self.device = resolve_device(options.device)
        self.dtype = resolve_dtype(options.dtype, self.device)
        if self.device.startswith("cuda"):
            from mmcv.ops import get_compiling_cuda_version

            if get_compiling_cuda_version() in ("not available", "", None):
                raise VkelError("this mmcv build has CPU ops only: use --device cpu, or rebuild with "
                                "`MMCV_CUDA=1 scripts/build_mmcv.sh` on a machine with nvcc")
        config = resolve_config(options.config)
        checkpoint = options.checkpoint
        if checkpoint in NO_CHECKPOINT:
            checkpoint = None
        elif checkpoint == "released":
            checkpoint = released_checkpoint(config)
        elif not os.path.isfile(checkpoint) and "://" not in checkpoint:
            raise VkelError(f"--checkpoint {checkpoint!r}: no such file (give a path, a URL, released or none)")
        try:
            with _quiet():
                self.model = init_detector(_load_config(config, options.score_threshold), checkpoint,
                                           device=self.device)
        except Exception as err:  # noqa: BLE001  (mmengine/torch raise many types; the user needs the cause)
            if type(err).__name__ == "UnpicklingError":
                raise VkelError(f"cannot load checkpoint {checkpoint}: torch.load(weights_only=True) refused it "
                                "(it pickles more than tensors and plain containers). If you trust the file, "
                                "set TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1") from None
            raise VkelError(f"cannot build the mmdet detector from {config} "
                            f"(checkpoint {checkpoint or 'none'}): {type(err).__name__}: {err}") from None
        self.classes = list((self.model.dataset_meta or {}).get("classes") or [])
        log(f"mmdet: {os.path.basename(config)} on {self.device}, "
            + (f"checkpoint {checkpoint}" if checkpoint else "random weights (no checkpoint), COCO classes"))
        self.model_name = os.path.splitext(os.path.basename(config))[0]
        self._pipeline = self._test_pipeline()
        self._torch = torch

    def _test_pipeline(self):
        from mmcv.transforms import Compose
        from mmdet.utils import get_test_pipeline_cfg

        pipeline = get_test_pipeline_cfg(self.model.cfg.copy())
        # We hand over decoded arrays, not file names (prefixed: registries are scoped), and there are
        # no annotations to load (as in mmdet's own DetInferencer).
        pipeline[0].type = "mmdet.LoadImageFromNDArray"
        pipeline = [step for step in pipeline if not str(step.get("type", "")).endswith("LoadAnnotations")]
        return Compose(pipeline)

    def _label(self, index: int) -> str:
        return self.classes[index] if 0 <= index < len(self.classes) else str(index)

    def detect(self, images: list) -> list[list[Detection]]:
        import numpy as np

        if not images:
            return []
        inputs, samples = [], []
        for i, image in enumerate(images):
            # mmdet's pipelines expect OpenCV's BGR order (the configs' mean/std are BGR).
            data = self._pipeline({"img": np.ascontiguousarray(np.asarray(image)[:, :, ::-1]), "img_id": i})
            inputs.append(data["inputs"])
            samples.append(data["data_samples"])
        torch = self._torch
        autocast = torch.autocast(self.device.split(":")[0], dtype=self.dtype, enabled=self.dtype != torch.float32)
        with _quiet(), torch.no_grad(), autocast:
            results = self.model.test_step({"inputs": inputs, "data_samples": samples})
        out = []
        for result in results:
            pred = result.pred_instances
            boxes = pred.bboxes.float().cpu().tolist()
            scores = pred.scores.float().cpu().tolist()
            labels = pred.labels.cpu().tolist()
            out.append([Detection(self._label(label), score, tuple(box))
                        for box, score, label in zip(boxes, scores, labels)])
        return out
