"""The `vkel detect` stage: records -> batches of decoded images -> detector -> `objects`.

Images come from the one image layer (vkel_cli.fetch.images: regular files under --image-root, format
whitelist, pixel cap, EXIF orientation). Detections are in the decoded image's frame, and the record is
aligned to that frame (`images.align`: `image_size` set to it, boxes given in another declared size
rescaled), so its objects and gold boxes share one frame.

Images are decoded by a thread pool one batch ahead of the detector (PIL releases the GIL while
decoding), so decoding overlaps inference. Output order is input order; at most `prefetch + 1`
batches are held in memory, so the stage streams.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..fetch import images
from ..core.errors import ErrorPolicy, Location, VkelError
from ..core.progress import progress_bar
from ..core.records import Record, batched, meta
from .base import Detector, select

STAGE = "detect"


@dataclass
class DetectSettings:
    image_root: str | None = None
    top_k: int = 5
    score_threshold: float = 0.3
    batch_size: int = 8
    workers: int = 4  # image-decoding threads
    prefetch: int = 1  # batches decoded ahead of the one being detected


@dataclass
class _Item:
    record: Record
    where: Location
    image: Future | None  # None: the record has no image


def _load(record: Record, image_root: str | None) -> images.Decoded:
    return images.load_decoded(record, image_root)


def detect_records(pairs: Iterable[tuple[Record, Location]], policy: ErrorPolicy, detector: Detector,
                   settings: DetectSettings) -> Iterator[Record]:
    """Yield every record with `objects` added, in input order (see the module docstring)."""
    if settings.top_k < 0:
        raise VkelError(f"--top-k must be >= 0, not {settings.top_k}")
    if settings.batch_size < 1:
        raise VkelError(f"--batch-size must be >= 1, not {settings.batch_size}")
    provenance = {"backend": detector.name, "model": detector.model_name, "top_k": settings.top_k,
                  "score_threshold": settings.score_threshold}
    with ThreadPoolExecutor(max(1, settings.workers), thread_name_prefix="vkel-decode") as pool, \
            progress_bar(f"detect ({detector.name})") as advance:
        pending: deque[list[_Item]] = deque()

        def submit(chunk) -> list[_Item]:
            return [_Item(record, where, pool.submit(_load, record, settings.image_root)
                          if record.get("image") else None) for record, where in chunk]

        try:
            for chunk in batched(pairs, settings.batch_size):
                pending.append(submit(chunk))
                if len(pending) > settings.prefetch:
                    batch = pending.popleft()
                    yield from _finish(batch, policy, detector, settings, provenance)
                    advance(len(batch))
            while pending:
                batch = pending.popleft()
                yield from _finish(batch, policy, detector, settings, provenance)
                advance(len(batch))
        finally:  # an error or a closed pipe: do not decode what will never be used
            for batch in pending:
                for item in batch:
                    if item.image is not None:
                        item.image.cancel()


def _finish(batch: list[_Item], policy: ErrorPolicy, detector: Detector, settings: DetectSettings,
            provenance: dict) -> Iterator[Record]:
    """Wait for the batch's images, detect on those that decoded, and yield the batch in order."""
    loaded: dict[int, images.Decoded] = {}
    failed: dict[int, VkelError] = {}
    for i, item in enumerate(batch):
        if item.image is None:
            continue
        try:
            loaded[i] = item.image.result()
        except VkelError as err:
            failed[i] = err
    order = sorted(loaded)
    results = detector.detect([loaded[i].image for i in order]) if order else []
    if len(results) != len(order):
        raise VkelError(f"detector {detector.name!r} returned {len(results)} results for {len(order)} images")
    detections = dict(zip(order, results))

    for i, item in enumerate(batch):
        record = item.record
        if i in failed:
            policy.handle(failed[i])  # raises in fail mode
            meta(record).setdefault("errors", {})[STAGE] = failed[i].message
            yield record
            continue
        info = dict(provenance)
        if item.image is None:
            record["objects"] = []
            info["note"] = "record has no image: no objects"
        else:
            frame = loaded[i].frame
            try:  # the record's boxes first, then objects that are in the frame already
                images.align(record, frame)
            except VkelError as err:
                policy.handle(err)
                meta(record).setdefault("errors", {})[STAGE] = err.message
                yield record
                continue
            record["objects"] = select(detections[i], frame.size, settings.top_k, settings.score_threshold)
        meta(record)[STAGE] = info
        yield record
