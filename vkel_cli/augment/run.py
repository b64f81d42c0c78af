"""`vkel augment`: pair text-only NER sentences with retrieved images, kept when CLIP agrees.

For each record: query = sentence + its target entities; the retriever gives up to N candidates; their
bytes are fetched in threads, then decoded, verified and resized together (one task per record) in
worker processes (`decode_workers`; 0: in the threads), while the main thread encodes the previous
batch (the sentence once, the candidates in batches across records); the top-1 candidate is kept if its
cosine similarity to the sentence is >= threshold. Records stream in input order; a record without an
accepted image is dropped and counted; a bad candidate is skipped and counted, never fatal.
`sample` keeps a seeded random subset of the accepted records (the paper's ratio to the original set).
"""

from __future__ import annotations

import os
import random
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator

from .clip import Scorer
from ..core.errors import ErrorPolicy, VkelError
from ..fetch.images import is_url
from ..core.records import Record, meta
from .retrieval import Retriever, build_query
from .retrieval.decode import DecodePool
from .retrieval.download import CandidateError, Fetched, ImageStore

STAGE = "augment"


@dataclass
class AugmentStats:
    records: int = 0
    kept: int = 0
    no_candidates: int = 0
    all_failed: int = 0
    below_threshold: int = 0
    search_failed: int = 0
    sampled_out: int = 0
    candidates: int = 0
    candidates_ok: int = 0

    def summary(self, store: ImageStore) -> str:
        failures = ", ".join(f"{k} {v}" for k, v in sorted(store.stats.failures.items())) or "none"
        return (f"augment: {self.records} records in, {self.kept} written; dropped {self.no_candidates} with no "
                f"candidate, {self.all_failed} whose candidates all failed, {self.below_threshold} below the "
                f"threshold, {self.sampled_out} by --ratio; {self.search_failed} search failures. Candidates: "
                f"{self.candidates} tried, {self.candidates_ok} usable ({store.stats.downloaded} downloaded, "
                f"{store.stats.reused} from the store, {store.stats.local} local files), failed: {failures}")


@dataclass
class _Job:
    record: Record
    query: str
    search: Future  # -> per candidate a Fetched or CandidateError, or a Future of one
    fetched: list[Fetched] = field(default_factory=list)
    decoding: tuple | None = None  # (DecodeTask, start): its results[start:start + len(fetched)] are ours
    results: list = field(default_factory=list)  # usable candidates: StoredImage with .prepared
    tried: int = 0
    failed_search: bool = False


def _reservoir_add(reservoir: list, item, seen: int, k: int, rng: random.Random) -> None:
    """Algorithm R: after `seen` items, `reservoir` is a uniform random sample of min(k, seen) of them."""
    if len(reservoir) < k:
        reservoir.append(item)
        return
    j = rng.randrange(seen)
    if j < k:
        reservoir[j] = item


def augment(pairs, policy: ErrorPolicy, *, retriever: Retriever, store: ImageStore, scorer: Scorer,
            candidates: int = 5, threshold: float = 0.3, workers: int = 8, decode_workers: int = 0,
            sample: int | None = None, seed: int = 0, relative: bool = False,
            stats: AugmentStats | None = None) -> Iterator[Record]:
    stats = stats if stats is not None else AugmentStats()
    reservoir: list = []
    rng = random.Random(seed)
    accepted = 0
    # A light (test-size) encoder waits on decoding: it gets the cores the decoding workers leave, as
    # torch's threads would otherwise spin on cores the workers need. A real one is the bottleneck and
    # keeps all its threads (the workers are mostly idle then).
    encoder_threads = None
    if decode_workers > 0 and scorer.light:
        encoder_threads = max(1, (os.cpu_count() or 1) - decode_workers)
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="vkel-fetch") as fetch_pool, \
            ThreadPoolExecutor(max(1, min(workers, 4)), thread_name_prefix="vkel-search") as search_pool, \
            DecodePool(decode_workers, fetch_pool, store.max_pixels, scorer.preparer()) as decoder, \
            scorer.cpu_threads(encoder_threads):

        def fetch(source: str):
            try:
                return store.fetch(source)
            except CandidateError as err:
                return err

        def search(record: Record, query: str):
            sources = retriever.candidates(record, query, candidates)[:candidates]
            # local files are read right here: a thread hop per file would cost more than the read
            return [fetch_pool.submit(fetch, s) if is_url(s) else fetch(s) for s in sources]

        def searched() -> Iterator[_Job]:
            # Search and fetch run ahead of decoding by a bounded window of records.
            window: deque[_Job] = deque()
            lookahead = max(8, 2 * scorer.batch_size // max(1, candidates))
            for record, where in pairs:
                query = build_query(record)
                window.append(_Job(record, query, search_pool.submit(search, record, query)))
                if len(window) > lookahead:
                    yield window.popleft()
            yield from window

        def decoding() -> Iterator[_Job]:
            # Records' candidates are decoded in tasks of about `group` images (one inter-process round
            # trip each), running ahead of encoding by a window that keeps every worker busy.
            group = max(candidates, min(32, scorer.batch_size // 2))
            window: deque[_Job] = deque()
            lookahead = max(4, (2 * max(1, decode_workers) + 1) * -(-group // max(1, candidates)))
            waiting: list[_Job] = []
            waiting_images = 0
            for job in searched():
                _collect_fetches(job, policy, stats)
                waiting.append(job)
                waiting_images += len(job.fetched)
                if waiting_images >= group:
                    _submit_decoding(waiting, decoder)
                    window.extend(waiting)
                    waiting, waiting_images = [], 0
                while len(window) > lookahead:
                    yield window.popleft()
            _submit_decoding(waiting, decoder)
            yield from window
            yield from waiting

        def finished(batch: list[_Job]) -> Iterator[Record]:
            nonlocal accepted
            for job, best in zip(batch, _score(batch, scorer)):
                stats.records += 1
                record = job.record
                if best is None:
                    if job.failed_search:
                        yield record  # unchanged but for meta.errors, as every stage does in skip mode
                    elif not job.tried:
                        stats.no_candidates += 1
                    else:
                        stats.all_failed += 1
                    continue
                stored, score = best
                if score < threshold:
                    stats.below_threshold += 1
                    continue
                out = _synthetic(record, stored, score, store, relative)
                accepted += 1
                if sample is None:
                    stats.kept += 1
                    yield out
                else:
                    _reservoir_add(reservoir, (accepted, out), accepted, sample, rng)

        batch: list[_Job] = []
        pending_images = 0
        for job in decoding():
            if job.decoding is not None:
                task, start = job.decoding
                for fetched, decoded in zip(job.fetched, task.results()[start:start + len(job.fetched)]):
                    if isinstance(decoded, CandidateError):
                        store.reject(fetched, decoded)
                        continue
                    stats.candidates_ok += 1
                    job.results.append(store.commit(fetched, decoded))
                job.fetched, job.decoding = [], None  # the bytes are no longer needed
            batch.append(job)
            pending_images += len(job.results)
            if pending_images >= scorer.batch_size:
                yield from finished(batch)
                batch, pending_images = [], 0
        yield from finished(batch)
    if sample is not None:
        stats.kept = len(reservoir)
        stats.sampled_out = accepted - len(reservoir)
        for _, out in sorted(reservoir, key=lambda pair: pair[0]):
            yield out


def _collect_fetches(job: _Job, policy: ErrorPolicy, stats: AugmentStats) -> None:
    """Wait for a record's search and downloads; keep the fetched bytes, count the failures."""
    try:
        answers = job.search.result()  # per candidate: a result, or a Future of one (downloads)
    except VkelError as err:
        stats.search_failed += 1
        policy.handle(err.at(f"record {job.record.get('id')!r}"))
        meta(job.record).setdefault("errors", {})[STAGE] = str(err)
        job.failed_search = True
        answers = []
    for result in answers:
        if isinstance(result, Future):
            result = result.result()
        stats.candidates += 1
        job.tried += 1
        if not isinstance(result, CandidateError):
            job.fetched.append(result)


def _submit_decoding(jobs: list[_Job], decoder: DecodePool) -> None:
    """One decoding task for the candidates of these records."""
    items = [(fetched.data, fetched.source) for job in jobs for fetched in job.fetched]
    if not items:
        return
    task, start = decoder.submit(items), 0
    for job in jobs:
        job.decoding = (task, start)
        start += len(job.fetched)


def _score(batch: list[_Job], scorer: Scorer) -> list:
    """Per job: (StoredImage, best cosine) or None when it has no usable candidate."""
    scored = [job for job in batch if job.results]
    best: dict[int, tuple] = {}
    if scored:
        texts = scorer.encode_texts([" ".join(job.record.get("tokens") or []) for job in scored])
        images = scorer.encode_images([stored.prepared for job in scored for stored in job.results])
        offset = 0
        for row, job in enumerate(scored):
            n = len(job.results)
            sims = images[offset:offset + n] @ texts[row]
            offset += n
            top = int(sims.argmax())  # the first of equal maxima: the retriever's better-ranked one
            best[id(job)] = (job.results[top], float(sims[top]))
            for stored in job.results:
                stored.prepared = None  # drop the encoder inputs as soon as scored
    return [best.get(id(job)) for job in batch]


def _synthetic(record: Record, stored, score: float, store: ImageStore, relative: bool) -> Record:
    out = dict(record)
    out["image"] = store.relative(stored.path) if relative and stored.path.startswith(store.root) else stored.path
    out["image_size"] = list(stored.size)
    out["entities"] = [{**entity, "boxes": []} for entity in record.get("entities") or []]
    info = dict(meta(record))
    if info.get("source") and info.get("source") != "synthetic":
        info["text_source"] = info["source"]
    info.update({"source": "synthetic", "clip_score": round(score, 4), "image_source": stored.source})
    out["meta"] = info
    return out


def sample_size(ratio: float | None, reference_size: int | None) -> int | None:
    if ratio is None and reference_size is None:
        return None
    if ratio is None or reference_size is None:
        raise VkelError("--ratio and --reference-size go together (e.g. --ratio 0.8 --reference-size 7000)")
    if ratio < 0 or reference_size < 0:
        raise VkelError("--ratio and --reference-size must not be negative")
    return int(round(ratio * reference_size))
