"""Decoding candidates in worker processes: same answers as in threads, bad bytes and crashed workers
cost only their own candidates."""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from image_server import image_bytes
from vkel_cli.augment.retrieval.decode import CandidateError, DecodePool, decode_image


class MeanColour:
    """A picklable `prepare`: the image's mean colour (a worker unpickles it by importing this module)."""

    def __call__(self, image):
        return np.asarray(image, dtype="float32").reshape(-1, 3).mean(0)


class CrashOnTinyImages(MeanColour):
    """Kills the worker process (as a segfaulting decoder or the OOM killer would) on a 3x3 image."""

    def __call__(self, image):
        if image.size == (3, 3):
            os._exit(3)
        return super().__call__(image)


def _items():
    good = [(image_bytes(colour, fmt=fmt), f"{colour}.{fmt}") for colour, fmt in
            (("red", "JPEG"), ("blue", "PNG"), ("green", "GIF"))]
    truncated = image_bytes("red", size=(64, 64), noise=True)[:300]
    return good + [(b"<html>not an image</html>", "page.html"), (truncated, "truncated.jpg")]


def _summary(results):
    return [r.reason if isinstance(r, CandidateError) else (r.ext, r.size, np.round(r.prepared).tolist())
            for r in results]


def test_processes_answer_as_threads_do_and_errors_cross_the_boundary():
    err = pickle.loads(pickle.dumps(CandidateError("corrupt", "x.jpg: broken", permanent=False)))
    assert (err.reason, err.detail, err.permanent) == ("corrupt", "x.jpg: broken", False)
    items = _items()
    with ThreadPoolExecutor(2) as threads:
        with DecodePool(0, threads, 10**6, MeanColour()) as inline:
            expected = _summary(inline.submit(items).results())
        with DecodePool(2, threads, 10**6, MeanColour()) as pool:
            tasks = [pool.submit(items[i:i + 2]) for i in range(0, len(items), 2)]
            got = [answer for task in tasks for answer in _summary(task.results())]
    assert got == expected
    assert expected[:3] == [("jpg", [48, 32], [254.0, 0.0, 0.0]), ("png", [48, 32], [0.0, 0.0, 255.0]),
                            ("gif", [48, 32], [0.0, 128.0, 0.0])]
    assert expected[3:] == ["not_image", "corrupt"]


def test_pixel_cap_refuses_before_decoding():
    with pytest.raises(CandidateError) as info:
        decode_image(image_bytes("red", size=(400, 300)), "big.jpg", max_pixels=100_000)
    assert info.value.reason == "too_many_pixels"


@pytest.mark.slow
def test_a_crashed_worker_costs_only_its_own_task():
    tiny = (image_bytes("red", size=(3, 3), fmt="PNG"), "crash.png")
    groups = [[(image_bytes("blue"), f"b{i}.jpg"), (image_bytes("green"), f"g{i}.jpg")] for i in range(4)]
    groups[1] = groups[1] + [tiny]
    with ThreadPoolExecutor(1) as threads, DecodePool(2, threads, 10**6, CrashOnTinyImages()) as pool:
        tasks = [pool.submit(group) for group in groups]
        answers = [task.results() for task in tasks]
        later = pool.submit(groups[0]).results()  # the pool was started afresh
    crashed = answers[1]
    assert [a.reason for a in crashed] == ["decoder_crashed"] * 3 and not any(a.permanent for a in crashed)
    for i in (0, 2, 3):  # tasks broken by the same crash were run again, alone, and came back whole
        assert [a.size for a in answers[i]] == [[48, 32], [48, 32]]
    assert [a.size for a in later] == [[48, 32], [48, 32]]


def test_candidates_go_through_the_one_image_layer(tmp_path):
    """Formats, orientation and regular files: the same rules as every other stage (vkel_cli.fetch.images)."""
    import io
    import threading

    from PIL import Image

    from vkel_cli.fetch.images import ORIENTATION_TAG
    from vkel_cli.augment.retrieval.download import ImageStore

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 8
    Image.new("RGB", (60, 20), (255, 0, 0)).save(buffer, format="JPEG", exif=exif)
    turned = decode_image(buffer.getvalue(), "turned.jpg", 10**6, MeanColour())
    assert (turned.ext, turned.size) == ("jpg", [20, 60])  # what CLIP sees is the displayed picture
    with pytest.raises(CandidateError) as info:
        decode_image(image_bytes("red", fmt="TIFF"), "x.tif", 10**6)
    assert info.value.reason == "not_image"

    os.mkfifo(tmp_path / "pipe.jpg")
    store = ImageStore(str(tmp_path / "store"))
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(error=_catch(store.get, str(tmp_path / "pipe.jpg"))),
                              daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "a FIFO candidate blocked"
    assert outcome["error"].reason == "not_regular" and store.stats.failures == {"not_regular": 1}


def _catch(call, *args):
    try:
        call(*args)
    except CandidateError as err:
        return err
    return None
