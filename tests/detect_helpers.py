"""Shared test material for `vkel detect`: a little image set with the failure cases the stage must handle."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

# (id, image file or None, size) in the order the records are written.
SIZES = {"a": (320, 200), "b": (100, 300), "c": (257, 181), "d": (640, 480)}


def make_images(root: Path) -> dict[str, Path]:
    """Real JPEG/PNG files with shapes in them (so a detector sees edges), one corrupt, one truncated."""
    from PIL import Image, ImageDraw

    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, (name, size) in enumerate(SIZES.items()):
        img = Image.new("RGB", size, (30 + 40 * i, 120, 200 - 30 * i))
        draw = ImageDraw.Draw(img)
        w, h = size
        draw.rectangle([w // 5, h // 4, w // 2, h - h // 5], fill=(240, 220, 20))
        draw.ellipse([w // 2, h // 8, w - w // 8, h // 2], fill=(10, 10, 10))
        path = root / (f"{name}.png" if i % 2 else f"{name}.jpg")
        img.save(path)
        paths[name] = path
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    good = paths["d"].read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 3])
    return paths


def records(with_bad: bool = True) -> list[dict]:
    """Records in a fixed order: good images, a record without image, a corrupt and a missing image."""
    out = [
        {"id": "r-a", "tokens": ["Kevin", "Love"], "image": "a.jpg"},
        {"id": "r-none", "tokens": ["no", "image"], "image": None},
        {"id": "r-b", "tokens": ["b"], "image": "b.png", "image_size": [100, 300]},
    ]
    if with_bad:
        out.append({"id": "r-corrupt", "tokens": ["x"], "image": "corrupt.jpg"})
    out.append({"id": "r-c", "tokens": ["c"], "image": "c.jpg"})
    if with_bad:
        out.append({"id": "r-missing", "tokens": ["y"], "image": "missing.jpg"})
    out.append({"id": "r-d", "tokens": ["d"], "image": "d.png", "keep": {"nested": [1, 2]}})
    return out


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in items))
    return path


def size_of(record_id: str) -> tuple[int, int]:
    return SIZES[record_id.split("-", 1)[1]]


OBJECT_LINE = re.compile(r"^- (?P<label>.+?) \((?P<box>[0-9., ]+)\)$")


def parse_object_lines(prompt: str) -> list[tuple[str, list[float]]]:
    """The (label, normalized box) pairs of a stage-2 prompt's "Objects in the image:" block."""
    block = prompt.split("Objects in the image:\n", 1)[1]
    found = []
    for line in block.splitlines():
        match = OBJECT_LINE.match(line)
        if not match:
            break
        found.append((match["label"], [float(v) for v in match["box"].split(",")]))
    return found


def check_objects(test_record: dict, top_k: int, labels: set[str]) -> None:
    """Every `objects` entry is well formed, inside the image, sorted by score, at most top_k."""
    w, h = size_of(test_record["id"])
    objects = test_record["objects"]
    assert len(objects) <= top_k
    scores = [o["score"] for o in objects]
    assert scores == sorted(scores, reverse=True)
    for o in objects:
        assert set(o) == {"label", "score", "box"}
        assert o["label"] in labels
        x1, y1, x2, y2 = o["box"]
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (o, (w, h))
        assert 0.0 <= o["score"] <= 1.0
