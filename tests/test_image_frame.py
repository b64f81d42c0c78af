"""One pixel frame (issue 11 §4): gold boxes, detected objects, prompts and generated boxes all in the frame
of the decoded image after EXIF orientation, in every stage that reads images (detect, predict stage 2,
train stage-2 targets and prompts).

Two real files: a JPEG stored 400x300 with EXIF orientation 6 (displayed 300x400) whose record was annotated
on the stored pixels, and a PNG resized to half after annotation. The detector is a real one for this
picture: it finds the red rectangle painted into the image, so its boxes are known to the pixel."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from PIL import Image

from vkel_cli.fetch import images
from vkel_cli.format import prompts
from vkel_cli.detect.base import Detection, Detector
from vkel_cli.detect.run import DetectSettings, detect_records
from vkel_cli.core.errors import ErrorPolicy, Location
from vkel_cli.fetch.images import Frame, ImageError

TARGET = "Kevin is a(an) person and a(an) athlete, whose bounding boxes are "


class RedBoxDetector(Detector):
    """Finds the red rectangle: one detection, its pixel bounds in the image it is given."""

    name, model_name = "redbox", "red-pixels"

    def detect(self, pictures):
        out = []
        for picture in pictures:
            rgb = np.asarray(picture).astype(int)
            ys, xs = np.nonzero((rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60))
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            out.append([Detection("red box", 1.0, box)])
        return out


def _record(rid, image, size, entity_box, objects=None):
    record = {"id": rid, "tokens": ["Kevin", "smiles"], "image": image, "image_size": size,
              "entities": [{"text": "Kevin", "start": 0, "end": 1, "coarse": "person", "fine": "athlete",
                            "boxes": [entity_box]}],
              "stage1": [{"text": "Kevin", "coarse": "person"}]}
    if objects is not None:
        record["objects"] = objects
    return record


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    # stored 400x300, red at (40, 30)-(120, 90); orientation 6 displays it turned a quarter clockwise
    raw = Image.new("RGB", (400, 300), (0, 0, 255))
    raw.paste((255, 0, 0), (40, 30, 120, 90))
    exif = Image.Exif()
    exif[images.ORIENTATION_TAG] = 6
    raw.save(root / "rotated.jpg", format="JPEG", exif=exif, quality=100, subsampling=0)
    # annotated at 800x600 (red at (100, 60)-(300, 240)), then the file was resized to 400x300
    original = Image.new("RGB", (800, 600), (0, 0, 255))
    original.paste((255, 0, 0), (100, 60, 300, 240))
    original.resize((400, 300), Image.Resampling.NEAREST).save(root / "resized.png")
    original.resize((500, 333), Image.Resampling.NEAREST).save(root / "rounded.png")
    return root


def _detect(records, root, mode="fail"):
    policy = ErrorPolicy(mode)
    pairs = [(r, Location("in.jsonl", i + 1)) for i, r in enumerate(records)]
    out = list(detect_records(pairs, policy, RedBoxDetector(), DetectSettings(image_root=str(root), top_k=5,
                                                                              score_threshold=0.0)))
    return out, policy


def _stage2_example(record, root):
    from vkel_cli.train.examples import ExampleOptions, record_examples

    (example,) = record_examples(copy.deepcopy(record), ExampleOptions(stage=2, noise=0.0, image_root=str(root)))
    return example


def _predict_job(record, root):
    from vkel_cli.predict.jobs import PredictOptions, prepare

    opts = PredictOptions(stage=2, image_root=str(root))
    return prepare(copy.deepcopy(record), opts), opts


def test_exif_rotated_jpeg_annotated_on_its_stored_pixels(root):
    annotated = _record("rot", "rotated.jpg", [400, 300], [40, 30, 120, 90],
                        objects=[{"label": "red box", "score": 0.9, "box": [40, 30, 120, 90]}])
    frame = images.frame_of(annotated, str(root))
    assert frame == Frame((300, 400), (400, 300), 6)

    # detect: objects found in the decoded image; the gold box turned into the same place
    (out,), _ = _detect([copy.deepcopy(annotated)], root)
    assert out["image_size"] == [300, 400]
    assert out["objects"] == [{"label": "red box", "score": 1.0, "box": [210.0, 40.0, 270.0, 120.0]}]
    assert out["entities"][0]["boxes"] == [[210.0, 40.0, 270.0, 120.0]]
    assert out["meta"]["image_frame"] == {"declared_size": [400, 300], "image_size": [300, 400],
                                          "boxes": "turned by EXIF orientation 6", "moved": 2}
    assert prompts.object_lines(out["objects"], out["image_size"]) == ["- red box (0.7, 0.1, 0.9, 0.3)"]

    # train: the stage-2 target and prompt, from the record as annotated and from detect's output alike
    for record in (annotated, out):
        example = _stage2_example(record, root)
        assert example["target"] == TARGET + "(0.7, 0.1, 0.9, 0.3)"
        assert "Objects in the image:\n- red box (0.7, 0.1, 0.9, 0.3)\n" in example["prompt"]

    # predict stage 2: the prompt in the decoded frame; the generated box back in pixels of that frame
    job, opts = _predict_job(annotated, root)
    assert job.error is None and job.size == [300, 400] and job.image.size == (300, 400)
    assert "Objects in the image:\n- red box (0.7, 0.1, 0.9, 0.3)\n" in job.prompt
    from vkel_cli.predict.jobs import finish

    record = finish(job, TARGET + "(0.7, 0.1, 0.9, 0.3)", opts, ErrorPolicy("fail"))
    assert record["predictions"][0]["box"] == pytest.approx([210.0, 40.0, 270.0, 120.0])
    assert record["entities"][0]["boxes"] == [[210.0, 40.0, 270.0, 120.0]]


def test_image_resized_after_annotation(root):
    annotated = _record("small", "resized.png", [800, 600], [200, 150, 400, 450],
                        objects=[{"label": "red box", "score": 0.9, "box": [100, 60, 300, 240]}])
    (out,), _ = _detect([copy.deepcopy(annotated)], root)
    assert out["image_size"] == [400, 300]
    assert out["objects"] == [{"label": "red box", "score": 1.0, "box": [50.0, 30.0, 150.0, 120.0]}]
    assert out["entities"][0]["boxes"] == [[100.0, 75.0, 200.0, 225.0]]
    assert out["meta"]["image_frame"] == {"declared_size": [800, 600], "image_size": [400, 300],
                                          "boxes": "rescaled", "moved": 2}
    assert out["meta"]["detect"]["backend"] == "redbox" and "note" not in out["meta"]["detect"]
    # the old objects, rescaled, and the new ones give the same prompt line: fractions are kept
    assert prompts.object_lines(out["objects"], out["image_size"]) == ["- red box (0.125, 0.1, 0.375, 0.4)"]
    assert prompts.object_lines(annotated["objects"], [800, 600]) == ["- red box (0.125, 0.1, 0.375, 0.4)"]

    example = _stage2_example(annotated, root)
    assert example["target"] == TARGET + "(0.25, 0.25, 0.5, 0.75)"
    assert "Objects in the image:\n- red box (0.125, 0.1, 0.375, 0.4)\n" in example["prompt"]

    job, opts = _predict_job(annotated, root)
    assert job.error is None and job.size == [400, 300]
    assert job.record["objects"][0]["box"] == [50.0, 30.0, 150.0, 120.0]
    assert "Objects in the image:\n- red box (0.125, 0.1, 0.375, 0.4)\n" in job.prompt
    from vkel_cli.predict.jobs import finish

    record = finish(job, TARGET + "(0.25, 0.25, 0.5, 0.75)", opts, ErrorPolicy("fail"))
    assert record["predictions"][0]["box"] == pytest.approx([100.0, 75.0, 200.0, 225.0])


def test_rounded_resize_is_accepted_and_a_different_aspect_is_a_per_record_error(root):
    # 1000x667 -> 500x333: one scale to within a pixel of rounding; each axis by its own ratio
    record = _record("r", "rounded.png", [1000, 667], [100, 100, 300, 600])
    images.align(record, Frame((500, 333), (500, 333)))
    assert record["entities"][0]["boxes"] == [[50.0, 49.93, 150.0, 299.55]]
    assert record["image_size"] == [500, 333] and record["meta"]["image_frame"]["boxes"] == "rescaled"
    again = copy.deepcopy(record)
    images.align(again, Frame((500, 333), (500, 333)))  # aligned records are left as they are
    assert again == record
    # without a declared size the boxes are taken as in the decoded frame
    bare = _record("b", "resized.png", None, [1, 2, 3, 4])
    images.align(bare, Frame((400, 300), (400, 300)))
    assert bare["image_size"] == [400, 300] and bare["entities"][0]["boxes"] == [[1, 2, 3, 4]]
    assert "image_frame" not in bare.get("meta", {})

    # 800x800 declared for a 400x300 file: no sensible mapping; the record is reported, nothing moved
    wrong = _record("wrong", "resized.png", [800, 800], [200, 150, 400, 450])
    good = _record("good", "resized.png", [400, 300], [100, 75, 200, 225])
    with pytest.raises(ImageError, match=r"image_size \[800, 800\] does not match the image \(400x300"):
        images.align(copy.deepcopy(wrong), Frame((400, 300), (400, 300)))
    out, policy = _detect([copy.deepcopy(wrong), copy.deepcopy(good)], root, mode="skip")
    assert [r["id"] for r in out] == ["wrong", "good"] and policy.skipped == 1
    assert "objects" not in out[0] and "not a uniform rescale" in out[0]["meta"]["errors"]["detect"]
    assert out[0]["entities"][0]["boxes"] == [[200, 150, 400, 450]] and out[0]["image_size"] == [800, 800]
    assert out[1]["objects"][0]["box"] == [50.0, 30.0, 150.0, 120.0] and "image_frame" not in out[1]["meta"]
    job, _ = _predict_job(wrong, root)
    assert job.error is not None and job.error.where == "record 'wrong'"
    with pytest.raises(ImageError, match="not a uniform rescale"):
        _stage2_example(wrong, root)


def test_openai_engine_sends_the_picture_in_the_same_frame(root):
    """A server may not apply EXIF orientation: a turned JPEG is sent as the decoded picture; a file with no
    turn is sent as its own bytes."""
    import base64
    import io

    from vkel_cli.predict.jobs import PredictOptions, prepare

    opts = PredictOptions(stage=2, image_root=str(root))
    turned = prepare(_record("rot", "rotated.jpg", None, [1, 1, 2, 2]), opts, as_data_url=True)
    head, _, body = turned.image.partition(",")
    assert head == "data:image/jpeg;base64"
    with Image.open(io.BytesIO(base64.b64decode(body))) as sent:
        assert sent.size == (300, 400) and images._orientation(sent) == 1
    plain = prepare(_record("small", "resized.png", None, [1, 1, 2, 2]), opts, as_data_url=True)
    assert plain.image == "data:image/png;base64," + base64.b64encode((root / "resized.png").read_bytes()).decode()
