"""`vkel detect`: top-K selection, the streaming stage (order, bad images, no image), the RT-DETR backend
built from a tiny random config, and the box round trip through the stage-2 prompt."""

from __future__ import annotations

import pytest

from detect_helpers import check_objects, make_images, parse_object_lines, records, size_of, write_jsonl
from vkel_cli.core import boxes
from vkel_cli.detect.base import Detection, DetectorOptions, create, select
from vkel_cli.detect.coco import COCO_CLASSES
from vkel_cli.core.errors import ErrorPolicy, Location, VkelError

COCO = set(COCO_CLASSES)


# --- selection: pure, exact -------------------------------------------------------------------------------

def test_select_clips_sorts_thresholds_and_cuts_to_top_k():
    dets = [
        Detection("cat", 0.40, (-5.0, 10.0, 50.0, 60.0)),  # clipped on the left
        Detection("dog", 0.90, (10.0, 10.0, 20.0, 20.0)),
        Detection("car", 0.10, (1.0, 1.0, 2.0, 2.0)),  # below the threshold
        Detection("cup", 0.70, (90.0, 40.0, 130.0, 90.0)),  # clipped right and bottom
        Detection("bus", 0.95, (120.0, 10.0, 150.0, 20.0)),  # entirely outside: no area left
        Detection("tie", 0.40, (5.123456, 6.0, 7.0, 8.0)),  # ties keep the detector's order
    ]
    assert select(dets, (100, 80), top_k=10, score_threshold=0.3) == [
        {"label": "dog", "score": 0.9, "box": [10.0, 10.0, 20.0, 20.0]},
        {"label": "cup", "score": 0.7, "box": [90.0, 40.0, 100.0, 80.0]},
        {"label": "cat", "score": 0.4, "box": [0.0, 10.0, 50.0, 60.0]},
        {"label": "tie", "score": 0.4, "box": [5.12, 6.0, 7.0, 8.0]},
    ]
    assert [o["label"] for o in select(dets, (100, 80), top_k=2, score_threshold=0.0)] == ["dog", "cup"]
    assert select(dets, (100, 80), top_k=0, score_threshold=0.0) == []
    assert select(dets, (100, 80), top_k=5, score_threshold=0.99) == []


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(VkelError, match="unknown detector backend 'yolo'.*mmdet, rtdetr"):
        create("yolo", DetectorOptions())


# --- the tiny RT-DETR -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_rtdetr(tmp_path_factory):
    from vkel_cli.detect.rtdetr import build_tiny

    return build_tiny(str(tmp_path_factory.mktemp("rtdetr") / "tiny"), num_queries=30)


@pytest.fixture(scope="module")
def rtdetr(tiny_rtdetr):
    return create("rtdetr", DetectorOptions(model=tiny_rtdetr, device="cpu", dtype="float32", score_threshold=0.0))


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect-images")
    make_images(root)
    return root


@pytest.mark.slow
def test_rtdetr_detects_per_image_with_coco_labels_and_batching_does_not_change_results(rtdetr, image_dir):
    from PIL import Image

    imgs = [Image.open(image_dir / name).convert("RGB") for name in ("a.jpg", "b.png", "c.jpg")]
    batch = rtdetr.detect(imgs)
    assert len(batch) == 3
    for dets in batch:
        assert len(dets) == 30  # one per query above threshold 0
        assert {d.label for d in dets} <= COCO
        assert all(0.0 <= d.score <= 1.0 and len(d.box) == 4 for d in dets)
    alone = rtdetr.detect([imgs[1]])[0]
    assert [d.label for d in alone] == [d.label for d in batch[1]]
    assert alone[0].box == pytest.approx(batch[1][0].box, abs=1e-3)
    # Boxes are in pixels of the original image: the same picture at twice the size gives twice the boxes.
    big = imgs[0].resize((imgs[0].width * 2, imgs[0].height * 2))
    doubled = rtdetr.detect([big])[0]
    assert doubled[0].box == pytest.approx([2 * v for v in batch[0][0].box], rel=0.05, abs=2.0)
    assert rtdetr.detect([]) == []


def _stage(pairs, detector, mode="skip", **settings):
    from vkel_cli.detect.run import DetectSettings, detect_records

    policy = ErrorPolicy(mode)
    return list(detect_records(pairs, policy, detector, DetectSettings(**settings))), policy


@pytest.mark.slow
def test_stage_keeps_order_reports_bad_images_and_notes_missing_image(rtdetr, image_dir):
    recs = records()
    pairs = [(r, Location("in.jsonl", i + 1)) for i, r in enumerate(recs)]
    out, policy = _stage(pairs, rtdetr, image_root=str(image_dir), top_k=3, score_threshold=0.0, batch_size=2,
                         workers=2)
    assert [r["id"] for r in out] == [r["id"] for r in records()]
    assert policy.skipped == 2
    by_id = {r["id"]: r for r in out}
    for rid in ("r-a", "r-b", "r-c", "r-d"):
        assert len(by_id[rid]["objects"]) == 3
        check_objects(by_id[rid], 3, COCO)
        assert by_id[rid]["image_size"] == list(size_of(rid))
        assert by_id[rid]["meta"]["detect"]["backend"] == "rtdetr"
    assert by_id["r-d"]["keep"] == {"nested": [1, 2]}
    assert by_id["r-none"]["objects"] == [] and "no image" in by_id["r-none"]["meta"]["detect"]["note"]
    assert "objects" not in by_id["r-corrupt"] and "cannot read image" in by_id["r-corrupt"]["meta"]["errors"]["detect"]
    assert "objects" not in by_id["r-missing"] and "not found" in by_id["r-missing"]["meta"]["errors"]["detect"]


@pytest.mark.slow
def test_stage_fail_mode_stops_at_the_corrupt_record(rtdetr, image_dir):
    pairs = [(r, Location("in.jsonl", i + 1)) for i, r in enumerate(records())]
    with pytest.raises(VkelError) as info:
        _stage(pairs, rtdetr, mode="fail", image_root=str(image_dir), batch_size=3)
    assert info.value.where == "record 'r-corrupt'"


@pytest.mark.slow
def test_box_round_trip_through_the_stage2_prompt(rtdetr, image_dir):
    """Detector output -> `objects` (px) -> stage-2 prompt text (normalized, 3 decimals) -> parsed -> px."""
    from vkel_cli.format.prompts import stage2_prompt

    rec = {"id": "r-c", "tokens": ["c"], "image": "c.jpg"}
    (out,), _ = _stage([(rec, Location("in", 1))], rtdetr, image_root=str(image_dir), top_k=5, score_threshold=0.0)
    size = out["image_size"]
    prompt = stage2_prompt(out, [{"text": "c", "coarse": "person"}], size, top_k=5)
    parsed = parse_object_lines(prompt)
    assert [label for label, _ in parsed] == [o["label"] for o in out["objects"]]
    for (label, norm), obj in zip(parsed, out["objects"]):
        assert norm == list(boxes.normalize(obj["box"], size))
        assert all(len(str(v).split(".")[1]) <= 3 for v in norm)
        back = boxes.denormalize(norm, size)
        # 3 decimals: within half a thousandth of the side, per coordinate.
        for got, want, side in zip(back, obj["box"], (size[0], size[1]) * 2):
            assert abs(got - want) <= 0.0005 * side + 1e-9
        area = (obj["box"][2] - obj["box"][0]) * (obj["box"][3] - obj["box"][1])
        assert boxes.iou(back, obj["box"]) > 0.95 or area < 25


@pytest.mark.slow
def test_cli_rtdetr_end_to_end(vkel, tiny_rtdetr, image_dir, tmp_path):
    import orjson

    src = write_jsonl(tmp_path / "in.jsonl", records())
    args = ["detect", "--backend", "rtdetr", "--model", tiny_rtdetr, "--device", "cpu", "--batch-size", "3",
            "--image-root", str(image_dir)]
    # skip mode, records from stdin, written to a file: goes on past the bad images, exits 1 at the end.
    result = vkel(*args, "--top-k", "4", "--score-threshold", "0", "--on-error", "skip",
                  "-o", str(tmp_path / "o.jsonl"), input=src.read_bytes())
    assert result.code == 1, result.stderr
    assert "record 'r-corrupt'" in result.stderr and "record 'r-missing'" in result.stderr
    assert result.stdout == b""
    out = [orjson.loads(line) for line in (tmp_path / "o.jsonl").read_bytes().splitlines()]
    assert [r["id"] for r in out] == [r["id"] for r in records()]
    for r in out:
        if r["id"] in ("r-a", "r-b", "r-c", "r-d"):
            assert len(r["objects"]) == 4
            check_objects(r, 4, COCO)

    # fail mode: the records before the corrupt one stream out (a threshold no random score reaches gives
    # them no objects), then exit 1 naming the record.
    bad = vkel(*args, "--score-threshold", "0.99", str(src))
    assert bad.code == 1 and "record 'r-corrupt'" in bad.stderr and "cannot read image" in bad.stderr
    assert [(r["id"], r["objects"]) for r in bad.records()] == [("r-a", []), ("r-none", []), ("r-b", [])]
