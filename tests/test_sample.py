"""The bundled sample (examples/sample/) is exactly what scripts/make_sample.py generates, and it imports
with the expected figures."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest

from conftest import ROOT

SAMPLE = ROOT / "examples" / "sample"

# What `vkel data import fmnerg SPLIT.txt --xml-dir xml | vkel data stats` must say about the sample.
EXPECTED_STATS = {
    "train": {"tweets": 24, "entities": 44, "groundable": 19, "boxes": 20},
    "dev": {"tweets": 8, "entities": 17, "groundable": 10, "boxes": 11},
    "test": {"tweets": 8, "entities": 19, "groundable": 9, "boxes": 9},
}


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "scripts" / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same_picture(a: bytes, b: bytes) -> bool:
    """JPEG bytes can differ between libjpeg builds; the decoded drawing must not."""
    from PIL import Image, ImageChops

    first, second = Image.open(io.BytesIO(a)).convert("RGB"), Image.open(io.BytesIO(b)).convert("RGB")
    if first.size != second.size:
        return False
    diff = ImageChops.difference(first, second).convert("L")
    return max(diff.getdata()) <= 8


def test_committed_sample_is_what_the_script_generates(tmp_path):
    generator = _load_generator()
    assert generator.write(tmp_path) > 0
    generated = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    committed = {p.relative_to(SAMPLE).as_posix() for p in SAMPLE.rglob("*") if p.is_file()}
    assert generated == committed, "examples/sample is stale: run `python scripts/make_sample.py`"
    for rel in sorted(generated):
        new, old = (tmp_path / rel).read_bytes(), (SAMPLE / rel).read_bytes()
        if new != old:
            assert rel.endswith(".jpg") and _same_picture(new, old), f"{rel} differs: rerun scripts/make_sample.py"


def test_generation_is_deterministic():
    generator = _load_generator()
    assert generator.generate() == generator.generate()


def test_sample_is_small():
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 1_000_000


def test_boxes_lie_inside_their_images():
    from PIL import Image

    from vkel_cli.data.voc import read_annotation

    xml_files = sorted((SAMPLE / "xml").glob("*.xml"))
    assert xml_files
    for path in xml_files:
        annotation = read_annotation(str(path))
        with Image.open(SAMPLE / "images" / f"{path.stem}.jpg") as image:
            assert list(image.size) == annotation.size
        for boxes in annotation.boxes.values():
            for x1, y1, x2, y2 in boxes:
                assert 0 <= x1 < x2 <= annotation.size[0] and 0 <= y1 < y2 <= annotation.size[1]


def test_pool_index_names_existing_images():
    index = json.loads((SAMPLE / "pool" / "index.json").read_text())
    assert index
    for files in index.values():
        assert files and all((SAMPLE / "pool" / name).is_file() for name in files)


@pytest.mark.parametrize("split", sorted(EXPECTED_STATS))
def test_import_and_stats(vkel, split):
    imported = vkel("data", "import", "fmnerg", SAMPLE / f"{split}.txt", "--xml-dir", SAMPLE / "xml",
                    "--image-root", SAMPLE / "images")
    assert imported.code == 0, imported.stderr
    records = imported.records()
    assert all(r["image"] == f"{r['id']}.jpg" and r["image_size"] for r in records)
    stats = vkel("data", "stats", input=imported.stdout)
    assert stats.code == 0, stats.stderr
    figures = stats.records()[0]
    assert {k: figures[k] for k in EXPECTED_STATS[split]} == EXPECTED_STATS[split]
    assert sum(figures["by_coarse"].values()) == EXPECTED_STATS[split]["entities"]


def test_every_sample_type_is_in_the_hierarchy():
    from vkel_cli.core.hierarchy import coarse_of

    for split in EXPECTED_STATS:
        for line in (SAMPLE / f"{split}.txt").read_text().splitlines():
            if "\t" in line:
                _, coarse, fine = line.split("\t")
                if fine != "O":
                    assert coarse_of(fine[2:]) == coarse[2:]


def test_figer_sample_imports_with_its_drops(vkel):
    """15 sentences: one too long, one with only an unmapped type (/time), one without a mention."""
    imported = vkel("data", "import", "figer", SAMPLE / "figer.txt")
    assert imported.code == 0, imported.stderr
    records = imported.records()
    assert len(records) == 12 and sum(len(r["entities"]) for r in records) == 25
    assert "dropped 1 longer than 26 tokens" in imported.stderr
    index = json.loads((SAMPLE / "pool" / "index.json").read_text())
    assert all(r["id"] in index for r in records), "every kept sentence has candidates in the local pool"
