"""The open_clip scorer (a tiny model built from a config, no download) and `vkel augment` end to end."""

from __future__ import annotations


import numpy as np
import pytest

from conftest import FIXTURES
from image_server import ImageServer, image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from vkel_cli.models.tiny import build_tiny_clip

    return build_tiny_clip(str(tmp_path_factory.mktemp("tiny-clip")), seed=3)


def _images():
    from PIL import Image

    return [Image.new("RGB", (40 + 7 * i, 30 + 5 * i), (40 * i, 255 - 30 * i, 17 * i)) for i in range(7)]


def test_batched_equals_one_at_a_time_and_rows_are_unit(tiny_clip):
    from vkel_cli.augment.clip import OpenClipScorer

    scorer = OpenClipScorer(tiny_clip, None, device="cpu", batch_size=3)  # 7 images: batches of 3, 3, 1
    prepared = [scorer.prepare(img) for img in _images()]
    batched = scorer.encode_images(prepared)
    single = np.concatenate([scorer.encode_images([p]) for p in prepared])
    assert batched.shape == (7, 32)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    texts = scorer.encode_texts(["a red car", "Staples Center"])
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    # the saved weights are what a second load sees
    again = OpenClipScorer(tiny_clip, "ignored-for-a-directory", device="cpu")
    np.testing.assert_allclose(again.encode_texts(["a red car", "Staples Center"]), texts, atol=1e-6)


def test_load_errors_are_clear(tmp_path):
    from vkel_cli.augment.clip import OpenClipScorer
    from vkel_cli.core.errors import VkelError

    with pytest.raises(VkelError, match="cannot load CLIP model 'No-Such-Model'"):
        OpenClipScorer("No-Such-Model", None)
    with pytest.raises(VkelError, match="local checkpoint"):
        OpenClipScorer("ViT-B-32", str(tmp_path / "missing.pt"))


def test_augment_cli_local_and_google(tiny_clip, vkel, tmp_path):
    imported = vkel("data", "import", "figer", FIXTURES / "figer_sample.label")
    assert imported.code == 0, imported.stderr
    pool = tmp_path / "pool"
    pool.mkdir()
    for name, color in (("a.jpg", "red"), ("b.png", "blue")):
        (pool / name).write_bytes(image_bytes(color, fmt="PNG" if name.endswith("png") else "JPEG"))
    (pool / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    (pool / "index.tsv").write_text("figer-1\ta.jpg\tbroken.jpg\tb.png\nfiger-4\tmissing.jpg\n")
    result = vkel("augment", "--retriever", "local", "--index", pool / "index.tsv", "--clip-model", tiny_clip,
                  "--threshold", "-1", "--image-dir", tmp_path / "store", "--device", "cpu", input=imported.stdout)
    assert result.code == 0, result.stderr
    records = result.records()
    assert [r["id"] for r in records] == ["figer-1"]
    record = records[0]
    assert record["image"] in (str(pool / "a.jpg"), str(pool / "b.png")) and record["image_size"] == [48, 32]
    assert record["meta"]["source"] == "synthetic" and -1 <= record["meta"]["clip_score"] <= 1
    assert "2 records in, 1 written" in result.stderr and "not_image 1" in result.stderr
    assert "missing_file 1" in result.stderr

    with ImageServer() as srv:
        query = "The Lakers with Kobe Bryant Shaq won at Staples Center \u201d Lakers Kobe Bryant Shaq Staples Center"
        srv.results[query] = [srv.image("/x.jpg", "green"), srv.url + "/gone.jpg"]
        env = {"VKEL_GOOGLE_API_KEY": "cli-secret-key", "VKEL_GOOGLE_CSE_ID": "cse",
               "VKEL_GOOGLE_BASE_URL": srv.url + "/customsearch/v1"}
        args = ["augment", "--clip-model", tiny_clip, "--threshold", "-1", "--image-dir", tmp_path / "store",
                "--relative", "--retries", "0"]
        refused = vkel(*args, input=imported.stdout, env=env)  # loopback candidates without the opt-in
        assert refused.code == 0 and refused.records() == [] and "blocked_address 2" in refused.stderr
        assert set(srv.hits) == {"/customsearch/v1"}  # the searches only: no candidate was fetched
        args.append("--allow-private-urls")
        result = vkel(*args, input=imported.stdout, env=env)
        assert result.code == 0, result.stderr
        assert [r["id"] for r in result.records()] == ["figer-4"]
        image = result.records()[0]["image"]
        assert not image.startswith("/") and (tmp_path / "store" / image).is_file()
        assert "http_404 1" in result.stderr and "cli-secret-key" not in result.stderr
        hits = sum(srv.hits.values())
        rerun = vkel(*args, input=imported.stdout, env=env)
        assert rerun.stdout == result.stdout and sum(srv.hits.values()) == hits

        ratio = vkel(*args, "--ratio", "0.5", "--reference-size", "2", input=imported.stdout, env=env)
        assert len(ratio.records()) == 1 and "0 by --ratio" in ratio.stderr


def test_models_tiny_clip_and_random_weights_are_seeded(vkel, tmp_path):
    from vkel_cli.augment.clip import OpenClipScorer

    result = vkel("models", "tiny", tmp_path / "clip", "--backbone", "clip", "--seed", "3")
    assert result.code == 0, result.stderr
    loaded = OpenClipScorer(str(tmp_path / "clip"), "none", device="cpu")
    assert loaded.encode_texts(["a red flag"]).shape == (1, 32)
    # an architecture with random weights is the same model every run, for the same seed
    kwargs = dict(device="cpu", seed=5)
    first, second = (OpenClipScorer("ViT-S-32", "none", **kwargs).encode_texts(["x"]) for _ in range(2))
    assert (first == second).all()
    other = OpenClipScorer("ViT-S-32", "none", device="cpu", seed=6).encode_texts(["x"])
    assert not (first == other).all()
