"""`vkel detect --backend mmdet`: RTMDet-tiny from the config shipped inside mmdet, random weights (no
checkpoint), run for real through mmcv's compiled ops. Installed by `make install-mmdet` (a prerequisite
of `make test`); skipped, saying why, only where mmdet cannot be imported."""

from __future__ import annotations

import importlib.util

import pytest

from detect_helpers import check_objects, make_images, records, write_jsonl
from vkel_cli.detect.base import DetectorOptions, create
from vkel_cli.detect.coco import COCO_CLASSES
from vkel_cli.core.errors import ErrorPolicy, Location, VkelError


def _mmdet_importable() -> str | None:
    if importlib.util.find_spec("mmdet") is None or importlib.util.find_spec("mmcv") is None:
        return "mmdet/mmcv are not installed (run `make install-mmdet`)"
    try:
        import mmcv.ops  # noqa: F401
        import mmdet.apis  # noqa: F401
    except ImportError as err:
        return f"mmdet is installed but cannot be imported: {err}"
    return None


_WHY = _mmdet_importable()
pytestmark = [pytest.mark.mmdet, pytest.mark.skipif(_WHY is not None, reason=_WHY or "")]

CONFIG = "rtmdet_tiny_8xb32-300e_coco"
COCO = set(COCO_CLASSES)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mmdet-images")
    make_images(root)
    return root


@pytest.fixture(scope="module")
def rtmdet():
    import torch

    torch.manual_seed(0)
    return create("mmdet", DetectorOptions(config=CONFIG, checkpoint="none", device="cpu", dtype="float32"))


def test_shipped_config_names_and_released_checkpoints_resolve():
    from vkel_cli.detect.mmdet_backend import released_checkpoint, resolve_config

    path = resolve_config(CONFIG)
    assert path.endswith(f"/.mim/configs/rtmdet/{CONFIG}.py")
    assert resolve_config(CONFIG + ".py") == path == resolve_config(path)
    assert resolve_config("rtmdet_l_8xb32-300e_coco").endswith("rtmdet_l_8xb32-300e_coco.py")
    url = released_checkpoint(path)
    assert url.startswith(f"https://download.openmmlab.com/mmdetection/v3.0/rtmdet/{CONFIG}/{CONFIG}_")
    assert url.endswith(".pth")
    with pytest.raises(VkelError, match="neither a file nor a config shipped with mmdet.*rtmdet"):
        resolve_config("rtmdet_nano_nonexistent")


def test_config_file_with_mmdet_scheme_base(tmp_path):
    """`_base_ = 'mmdet::...'` makes mmengine use pkg_resources: the install step pins setuptools < 81."""
    cfg = tmp_path / "my_rtmdet.py"
    cfg.write_text(f"_base_ = 'mmdet::rtmdet/{CONFIG}.py'\nmodel = dict(test_cfg=dict(max_per_img=7))\n")
    detector = create("mmdet", DetectorOptions(config=str(cfg), checkpoint="none", device="cpu"))
    assert detector.model_name == "my_rtmdet" and detector.model.cfg.model.test_cfg.max_per_img == 7


def test_mmcv_compiled_ops_are_the_real_ones():
    import torch
    from mmcv.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


@pytest.mark.slow
def test_rtmdet_tiny_random_weights_batched_equals_single(rtmdet, image_dir):
    from PIL import Image

    assert rtmdet.model_name == CONFIG and rtmdet.classes[:3] == ["person", "bicycle", "car"]
    imgs = [Image.open(image_dir / n).convert("RGB") for n in ("a.jpg", "b.png", "d.png")]
    batch = rtmdet.detect(imgs)
    assert len(batch) == 3
    for dets in batch:
        assert len(dets) > 5  # random weights: many low-score boxes above the config's 0.001
        assert {d.label for d in dets} <= COCO
    # The batched call (one test_step) gives what mmdet's own per-image inference_detector gives.
    from mmdet.apis import inference_detector

    ref = inference_detector(rtmdet.model, [__import__("numpy").asarray(imgs[1])[:, :, ::-1].copy()])[0]
    top_ref = ref.pred_instances.scores[:5].tolist()
    assert [d.score for d in batch[1][:5]] == pytest.approx(top_ref, abs=1e-4)
    assert list(batch[1][0].box) == pytest.approx(ref.pred_instances.bboxes[0].tolist(), abs=1e-2)


@pytest.mark.slow
def test_stage_with_rtmdet_keeps_order_and_reports_bad_images(rtmdet, image_dir):
    from vkel_cli.detect.run import DetectSettings, detect_records

    policy = ErrorPolicy("ignore")
    pairs = [(r, Location("in.jsonl", i + 1)) for i, r in enumerate(records())]
    out = list(detect_records(pairs, policy, rtmdet, DetectSettings(image_root=str(image_dir), top_k=5,
                                                                   score_threshold=0.0, batch_size=4)))
    assert [r["id"] for r in out] == [r["id"] for r in records()]
    assert policy.skipped == 2
    for r in out:
        if r["id"] in ("r-a", "r-b", "r-c", "r-d"):
            assert len(r["objects"]) == 5
            check_objects(r, 5, COCO)
            assert r["meta"]["detect"]["model"] == CONFIG
    assert out[1]["objects"] == []
    assert "cannot read image" in out[3]["meta"]["errors"]["detect"]


@pytest.mark.slow
def test_checkpoint_file_is_loaded_with_its_classes(rtmdet, image_dir, tmp_path):
    """A checkpoint as mmengine saves one (meta + state_dict): its weights and class names are used,
    and it loads under torch's default weights_only=True."""
    import torch
    from PIL import Image

    # A deterministic change (RTMDet's head shares convs between levels: aliased keys must agree).
    state = {k: v * 1.5 + 0.01 if v.is_floating_point() else v for k, v in rtmdet.model.state_dict().items()}
    classes = tuple(f"thing{i}" for i in range(80))
    path = tmp_path / "rtmdet.pth"
    torch.save({"meta": {"dataset_meta": {"classes": classes}, "epoch": 3}, "state_dict": state}, path)
    loaded = create("mmdet", DetectorOptions(config=CONFIG, checkpoint=str(path), device="cpu"))
    assert loaded.classes == list(classes)
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    dets = loaded.detect([Image.open(image_dir / "c.jpg").convert("RGB")])[0]
    assert dets and all(d.label.startswith("thing") for d in dets)

    # torch's weights_only default refuses a checkpoint that pickles other objects: a clear error.
    import numpy as np

    torch.save({"meta": {"hist": np.arange(3)}, "state_dict": state}, tmp_path / "np.pth")
    with pytest.raises(VkelError, match="weights_only=True.*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1"):
        create("mmdet", DetectorOptions(config=CONFIG, checkpoint=str(tmp_path / "np.pth"), device="cpu"))
    with pytest.raises(VkelError, match="no such file"):
        create("mmdet", DetectorOptions(config=CONFIG, checkpoint=str(tmp_path / "absent.pth"), device="cpu"))


@pytest.mark.slow
def test_cli_mmdet_end_to_end(vkel, rtmdet, image_dir, tmp_path):
    """Through the CLI, with a checkpoint file: stdout carries records only (mmengine logs to stdout by
    default; loading a checkpoint logs)."""
    import torch

    ckpt = tmp_path / "ckpt.pth"
    torch.save({"meta": {}, "state_dict": rtmdet.model.state_dict()}, ckpt)
    src = write_jsonl(tmp_path / "in.jsonl", records(with_bad=False))
    result = vkel("detect", "--config", CONFIG, "--checkpoint", str(ckpt), "--score-threshold", "0", "--top-k", "5",
                  "--batch-size", "2", "--device", "cpu", "--image-root", str(image_dir), str(src))
    assert result.code == 0, result.stderr
    assert "Loads checkpoint" in result.stderr
    out = result.records()  # every stdout line is a record
    assert [r["id"] for r in out] == [r["id"] for r in records(with_bad=False)]
    for r in out:
        if r.get("image"):
            assert len(r["objects"]) == 5
            check_objects(r, 5, COCO)
        else:
            assert r["objects"] == []
