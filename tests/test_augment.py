"""`vkel augment`: the right candidate wins, bad ones are counted and skipped, nothing is lost, re-runs
download nothing, --ratio subsamples reproducibly. A stub scorer with predictable similarity stands in
for CLIP here (tests/test_clip.py covers the real one, and the last test runs the CLI with a tiny CLIP)."""

from __future__ import annotations

import numpy as np
import pytest

from image_server import ImageServer
from vkel_cli.augment.run import AugmentStats, augment
from vkel_cli.augment.clip import Scorer
from vkel_cli.core.errors import ErrorPolicy, Location, VkelError
from vkel_cli.augment.retrieval import build_query, get_retriever
from vkel_cli.augment.retrieval.download import ImageStore

COLORS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}


class ColorScorer(Scorer):
    """Image -> its mean colour; text -> the colour words it names. Cosine is then exact arithmetic:
    a pure red image against "red" is 1.0, against "blue" 0.0."""

    batch_size = 4

    def __init__(self):
        self.image_batches: list[int] = []

    def prepare(self, image):
        pixels = np.asarray(image.convert("RGB"), dtype="float32").reshape(-1, 3).mean(0)
        return pixels / (np.linalg.norm(pixels) or 1.0)

    def encode_texts(self, texts):
        rows = [np.sum([COLORS[w] for w in t.split() if w in COLORS] or [(1.0, 1.0, 1.0)], axis=0) for t in texts]
        return np.array([r / np.linalg.norm(r) for r in rows], dtype="float32")

    def encode_images(self, prepared):
        self.image_batches.append(len(prepared))
        return np.stack(prepared).astype("float32")


def _record(rid, words, entity=0):
    tokens = words.split()
    return {"id": rid, "tokens": tokens, "image": None, "image_size": None,
            "entities": [{"text": tokens[entity], "start": entity, "end": entity + 1, "coarse": "product",
                          "fine": "product_other", "boxes": []}], "meta": {"source": "figer"}}


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A search server answering five records: one with a clear winner among bad candidates, one whose
    candidates all fail, one with no result, one below threshold, one plain."""
    monkeypatch.setenv("VKEL_GOOGLE_API_KEY", "test-key-abcdef")
    monkeypatch.setenv("VKEL_GOOGLE_CSE_ID", "cse")
    monkeypatch.setenv("VKEL_ALLOW_PRIVATE_URLS", "1")  # the candidates are on the loopback address
    with ImageServer() as srv:
        bad = srv.add_bad_ones()
        red, blue, green = (srv.image(f"/img/{c}.jpg", c) for c in ("red", "blue", "green"))
        records = [_record("r1", "a red car"), _record("r2", "green truck here"), _record("r3", "blue nothing"),
                   _record("r4", "the yellow sun"), _record("r5", "blue sea")]
        q = {r["id"]: build_query(r) for r in records}
        srv.results[q["r1"]] = [bad["http_404"], blue, bad["not_image"], red, bad["corrupt"]]
        srv.results[q["r2"]] = [bad["too_large"], bad["bad_scheme"], bad["http_404"]]
        srv.results[q["r4"]] = [blue]  # "yellow" names no colour: white text vector, cos(blue) = 0.577
        srv.results[q["r5"]] = [green, blue, red, blue, red, green]  # 6 results, only 5 asked for
        yield srv, records, str(tmp_path / "images")


def _run(srv, records, image_dir, threshold=0.6, **kw):
    retriever = get_retriever("google", search_url=srv.url + "/customsearch/v1", retries=0)
    store = ImageStore(image_dir, max_bytes=50_000, retries=0)
    stats = AugmentStats()
    pairs = ((dict(r), Location("in.jsonl", i + 1)) for i, r in enumerate(records))
    out = list(augment(pairs, ErrorPolicy(kw.pop("on_error", "fail")), retriever=retriever, store=store,
                       scorer=kw.pop("scorer", ColorScorer()), threshold=threshold, workers=4, stats=stats, **kw))
    return out, stats, store


@pytest.mark.parametrize("decode_workers", [0, 2])  # decoding in the download threads, or in processes
def test_right_candidate_wins_bad_ones_counted_nothing_lost(world, decode_workers):
    srv, records, image_dir = world
    out, stats, store = _run(srv, records, image_dir, decode_workers=decode_workers)
    by_id = {r["id"]: r for r in out}
    assert list(by_id) == ["r1", "r5"]
    r1 = by_id["r1"]
    assert r1["image"].endswith(".jpg") and r1["meta"]["image_source"].endswith("/img/red.jpg")
    assert r1["meta"]["clip_score"] == pytest.approx(1.0, abs=1e-3)
    assert r1["meta"]["source"] == "synthetic" and r1["meta"]["text_source"] == "figer"
    assert r1["image_size"] == [48, 32] and r1["entities"][0]["boxes"] == [] and r1["tokens"] == ["a", "red", "car"]
    assert by_id["r5"]["meta"]["image_source"].endswith("/img/blue.jpg")
    # every record and every candidate is accounted for
    assert (stats.records, stats.kept, stats.all_failed, stats.no_candidates, stats.below_threshold) == (5, 2, 1, 1, 1)
    assert stats.candidates == 5 + 3 + 1 + 5 and stats.candidates_ok == 2 + 1 + 5
    assert dict(store.stats.failures) == {"http_404": 2, "not_image": 1, "corrupt": 1, "too_large": 1,
                                          "bad_scheme": 1}
    assert stats.candidates == stats.candidates_ok + sum(store.stats.failures.values())


def test_rerun_downloads_nothing_and_gives_the_same_records(world):
    srv, records, image_dir = world
    first, _, _ = _run(srv, records, image_dir)
    hits = sum(srv.hits.values())
    second, stats, store = _run(srv, records, image_dir, decode_workers=1)
    assert sum(srv.hits.values()) == hits  # neither searches nor images were requested again
    assert second == first and store.stats.downloaded == 0 and stats.kept == 2
    # a stored image damaged since is a failed candidate like any other: r1 is left with blue alone
    with open(first[0]["image"], "r+b") as handle:
        handle.truncate(200)
    third, stats, store = _run(srv, records, image_dir, decode_workers=1)
    # corrupt: the remembered one, and the red file that r1's red and r5's two reds share (content-addressed)
    assert store.stats.failures["corrupt"] == 1 + 3 and stats.below_threshold == 2
    assert third == [first[1]] and store.stats.downloaded == 0


def test_threshold_and_batches(world):
    srv, records, image_dir = world
    scorer = ColorScorer()
    out, stats, _ = _run(srv, records, image_dir, threshold=0.5, scorer=scorer)
    assert [r["id"] for r in out] == ["r1", "r4", "r5"]
    assert out[1]["meta"]["clip_score"] == pytest.approx(3 ** -0.5, abs=1e-3)
    assert sum(scorer.image_batches) == 8 and max(scorer.image_batches) > 1  # candidates encoded in batches


def test_ratio_subsample_is_seeded_uniform_and_ordered(world):
    srv, records, image_dir = world
    full, _, _ = _run(srv, records, image_dir, threshold=0.0)
    assert [r["id"] for r in full] == ["r1", "r4", "r5"]
    picks = set()
    for seed in range(12):
        sub, stats, _ = _run(srv, records, image_dir, threshold=0.0, sample=2, seed=seed)
        ids = [r["id"] for r in sub]
        assert len(ids) == 2 and ids == sorted(ids) and set(ids) <= {r["id"] for r in full}
        assert stats.sampled_out == len(full) - 2 and stats.kept == 2
        again, _, _ = _run(srv, records, image_dir, threshold=0.0, sample=2, seed=seed)
        assert again == sub
        picks.add(tuple(ids))
    assert len(picks) > 1  # the seed matters


def test_search_failure_follows_on_error(world):
    srv, records, image_dir = world
    srv.search_status = 403
    with pytest.raises(VkelError, match="403"):
        _run(srv, records[:1], image_dir)
    out, stats, _ = _run(srv, records[:2], image_dir, on_error="ignore")
    assert [r["id"] for r in out] == ["r1", "r2"] and stats.search_failed == 2
    assert "403" in out[0]["meta"]["errors"]["augment"] and out[0]["image"] is None
    assert "test-key-abcdef" not in out[0]["meta"]["errors"]["augment"]
