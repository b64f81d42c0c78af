"""The one image layer (vkel_cli/fetch/images.py): what is opened, what is decoded, where paths may lead.

Every fault is real: a FIFO made with os.mkfifo, a directory, /dev/zero, a TIFF, truncated bytes, a
symlink planted inside the image root."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest
from PIL import Image, ImageOps

from vkel_cli.fetch import images
from vkel_cli.fetch.images import ImageError


def _png(size=(48, 32), colour=(255, 0, 0), fmt="PNG", **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _rotated_jpeg(path, raw_size=(400, 300), orientation=6, red=(40, 30, 120, 90)):
    """A JPEG stored `raw_size` with a red rectangle, displayed turned by its EXIF orientation."""
    raw = Image.new("RGB", raw_size, (0, 0, 255))
    raw.paste((255, 0, 0), red)
    exif = Image.Exif()
    exif[images.ORIENTATION_TAG] = orientation
    raw.save(path, format="JPEG", exif=exif, quality=100, subsampling=0)
    return raw


def _reason(call, *args, **kwargs) -> str:
    with pytest.raises(ImageError) as info:
        call(*args, **kwargs)
    return info.value.reason


# --- formats ----------------------------------------------------------------------------------------------

def test_whitelisted_formats_decode_to_rgb_and_others_are_refused():
    decoded = {fmt: images.decode_bytes(_png(fmt=fmt), f"x.{fmt}") for fmt in ("JPEG", "PNG", "WEBP", "BMP")}
    assert {fmt: (d.ext, d.image.mode, d.image.size) for fmt, d in decoded.items()} == {
        "JPEG": ("jpg", "RGB", (48, 32)), "PNG": ("png", "RGB", (48, 32)), "WEBP": ("webp", "RGB", (48, 32)),
        "BMP": ("bmp", "RGB", (48, 32))}
    # GIF: the first frame, whatever follows it
    frames = [Image.new("RGB", (20, 10), colour) for colour in ((0, 255, 0), (255, 0, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    gif = images.decode_bytes(buffer.getvalue(), "a.gif")
    assert gif.ext == "gif" and gif.image.getpixel((5, 5)) == (0, 255, 0)
    # TIFF decodes in PIL, but is not an accepted format; nor is HTML; nor zero bytes
    for data, name in ((_png(fmt="TIFF"), "x.tif"), (b"<html>hi</html>", "x.html"), (b"", "empty.jpg")):
        with pytest.raises(ImageError, match="not an image in an accepted format") as info:
            images.decode_bytes(data, name)
        assert info.value.reason == "not_image"


def test_truncated_file_is_refused_as_corrupt(tmp_path):
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    noisy.save(buffer, format="JPEG")
    (tmp_path / "t.jpg").write_bytes(buffer.getvalue()[:400])
    with pytest.raises(ImageError, match="cannot read image") as info:
        images.decode_file(str(tmp_path / "t.jpg"))
    assert info.value.reason == "corrupt"


# --- pixel cap --------------------------------------------------------------------------------------------

def test_pixel_cap_is_per_call_and_leaves_pil_globals_alone():
    before = Image.MAX_IMAGE_PIXELS
    data = _png(size=(400, 300))
    with pytest.raises(ImageError, match="400x300 is over the 100000-pixel cap") as info:
        images.decode_bytes(data, "big.png", max_pixels=100_000)
    assert info.value.reason == "too_many_pixels"
    assert images.decode_bytes(data, "big.png", max_pixels=120_000).image.size == (400, 300)
    assert images.decode_bytes(data, "big.png").frame.size == (400, 300)  # the default cap
    assert Image.MAX_IMAGE_PIXELS == before


def test_header_frame_obeys_the_cap_too(tmp_path):
    (tmp_path / "big.png").write_bytes(_png(size=(400, 300)))
    assert _reason(images.file_frame, str(tmp_path / "big.png"), max_pixels=1000) == "too_many_pixels"


# --- EXIF orientation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_is_applied_as_pil_exif_transpose_does(tmp_path, orientation):
    path = tmp_path / "o.jpg"
    _rotated_jpeg(path, raw_size=(40, 30), orientation=orientation)
    decoded = images.decode_file(str(path))
    with Image.open(path) as stored:
        expected = ImageOps.exif_transpose(stored).convert("RGB")
    assert decoded.image.size == expected.size
    assert np.array_equal(np.asarray(decoded.image), np.asarray(expected))
    turned = orientation >= 5
    assert decoded.frame == images.Frame((30, 40) if turned else (40, 30), (40, 30), orientation)
    assert images.file_frame(str(path)) == decoded.frame  # the header alone tells the same frame
    assert images.header_size(str(path)) == list(decoded.frame.size)
    assert images.size_of({"id": "x", "image": "o.jpg"}, str(tmp_path)) == list(decoded.frame.size)
    assert images.size_of({"id": "x", "image": "o.jpg", "image_size": [7, 9]}, str(tmp_path)) == [7, 9]


# --- what may be opened -----------------------------------------------------------------------------------

def _in_thread(call, seconds=5.0):
    """Run `call` in a thread and fail the test if it blocks (a FIFO opened for reading waits for a writer)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as err:  # noqa: BLE001  (handed back to the test)
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the call blocked"
    return outcome


def test_fifo_directory_and_device_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "folder.jpg").mkdir()
    cases = {"pipe.jpg": "a FIFO", "folder.jpg": "a directory", "/dev/zero": "a device"}
    for image, kind in cases.items():
        for call in (lambda: images.load({"id": "r1", "image": image}, str(tmp_path)),
                     lambda: images.frame_of({"id": "r1", "image": image}, str(tmp_path))):
            outcome = _in_thread(call)
            err = outcome.get("error")
            assert isinstance(err, ImageError), outcome
            assert err.reason == "not_regular" and kind in err.message and err.where == "record 'r1'"
    assert images.header_size(str(tmp_path / "pipe.jpg")) is None
    assert images.size_of({"id": "r1", "image": "pipe.jpg"}, str(tmp_path)) is None


def test_missing_file_names_the_record(tmp_path):
    with pytest.raises(ImageError, match="image not found") as info:
        images.load({"id": "r9", "image": "nope.jpg"}, str(tmp_path))
    assert (info.value.reason, info.value.where) == ("not_found", "record 'r9'")
    assert _reason(images.load, {"id": "r9"}) == "no_image"
    assert _reason(images.load, {"id": "r9", "image": 123}) == "bad_field"


def test_relative_paths_stay_inside_the_image_root(tmp_path, monkeypatch):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.png").write_bytes(_png(colour=(0, 0, 0)))
    (root / "sub" / "ok.png").write_bytes(_png())
    os.symlink(outside / "secret.png", root / "escape.png")  # a link that leads out
    os.symlink(root / "sub" / "ok.png", root / "inside.png")  # a link that stays in
    os.symlink(outside, root / "elsewhere")  # a linked directory outside
    for image in ("../outside/secret.png", "sub/../../outside/secret.png", "escape.png", "elsewhere/secret.png"):
        with pytest.raises(ImageError, match="leads outside the image root") as info:
            images.load({"id": "r", "image": image}, str(root))
        assert info.value.reason == "outside_root"
    assert images.load({"id": "r", "image": "sub/../inside.png"}, str(root)).getpixel((0, 0)) == (255, 0, 0)
    # an absolute path is the user's own choice
    assert images.load({"id": "r", "image": str(outside / "secret.png")}, str(root)).getpixel((0, 0)) == (0, 0, 0)
    # the root itself may be a link; without --image-root, the current directory is the root
    os.symlink(root, tmp_path / "root-link")
    assert images.resolve("sub/ok.png", str(tmp_path / "root-link")) == str(root / "sub" / "ok.png")
    monkeypatch.chdir(root)
    assert images.load({"id": "r", "image": "sub/ok.png"}).size == (48, 32)
    assert _reason(images.load, {"id": "r", "image": "../outside/secret.png"}) == "outside_root"


# --- a stage end to end: bad image paths are per-record errors --------------------------------------------

@pytest.mark.slow
def test_vkel_detect_refuses_fifo_and_escaping_paths_per_record(vkel, tmp_path):
    import orjson

    from vkel_cli.detect.rtdetr import build_tiny

    model = build_tiny(str(tmp_path / "rtdetr"), num_queries=5)
    root = tmp_path / "images"
    root.mkdir()
    (root / "good.png").write_bytes(_png(size=(64, 48)))
    os.mkfifo(root / "pipe.jpg")
    (tmp_path / "outside.png").write_bytes(_png())
    recs = [{"id": "a", "image": "good.png"}, {"id": "fifo", "image": "pipe.jpg"},
            {"id": "up", "image": "../outside.png"}, {"id": "b", "image": "good.png"}]
    data = b"".join(orjson.dumps(r) + b"\n" for r in recs)
    result = vkel("detect", "--backend", "rtdetr", "--model", model, "--device", "cpu", "--score-threshold", "0",
                  "--image-root", str(root), "--on-error", "skip", input=data, timeout=120)
    assert result.code == 1, result.stderr
    out = result.records()
    assert [r["id"] for r in out] == ["a", "fifo", "up", "b"]
    assert [len(r.get("objects", [])) for r in out] == [5, 0, 0, 5]
    assert "a FIFO, not a regular file" in out[1]["meta"]["errors"]["detect"]
    assert "leads outside the image root" in out[2]["meta"]["errors"]["detect"]
    assert "record 'fifo'" in result.stderr and "record 'up'" in result.stderr
