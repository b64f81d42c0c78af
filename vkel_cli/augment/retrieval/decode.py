"""Verifying a candidate's bytes and preparing the encoder's input, in threads or worker processes.

`decode_image` fully decodes one image with the one image layer (`vkel_cli.fetch.images`: format whitelist,
pixel cap before decoding, EXIF orientation, truncated files refused) and, given a `prepare` callable,
returns what the encoder takes. It is a plain function of bytes so that `decode_many` (one task: the
candidates of a few records) can run in a process pool: with a small CLIP model the per-image Python work
of decoding and resizing is most of the filter's time, and threads would serialise it on the GIL. Only
PIL (and numpy in `prepare`) is imported in a worker.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from ...fetch import images
from ...core.errors import VkelError

FORMATS = images.FORMATS


class CandidateError(Exception):
    """A candidate that cannot be used; `reason` is a short counter key, `permanent` says whether a
    re-run should try it again."""

    def __init__(self, reason: str, detail: str, permanent: bool = True):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.permanent = reason, detail, permanent

    def __reduce__(self):  # crosses process boundaries with its three fields
        return CandidateError, (self.reason, self.detail, self.permanent)


@dataclass
class Decoded:
    ext: str  # file extension of the detected format
    size: list[int]  # [width, height] after EXIF orientation
    prepared: Any = None  # the encoder's input, when a `prepare` was given


def decode_image(data: bytes, where: str, max_pixels: int, prepare: Callable | None = None) -> Decoded:
    try:
        decoded = images.decode_bytes(data, where, max_pixels=max_pixels)
    except images.ImageError as err:
        raise CandidateError(err.reason, err.message, err.permanent) from None
    image = decoded.image
    return Decoded(decoded.ext, list(decoded.frame.size), prepare(image) if prepare is not None else None)


def decode_many(items: list[tuple[bytes, str]], max_pixels: int, prepare: Callable | None) -> list:
    """One task: Decoded or CandidateError per (bytes, where), in order."""
    results: list = []
    for data, where in items:
        try:
            results.append(decode_image(data, where, max_pixels, prepare))
        except CandidateError as err:
            results.append(err)
    return results


def _quiet_worker() -> None:
    """In our own worker processes only: PIL's decompression-bomb warning is noise next to the pixel cap
    that refuses such images anyway (the main process's warning filters are left alone)."""
    import warnings

    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class DecodePool:
    """Runs `decode_many` tasks (the candidates of a few records each) in `processes` worker processes,
    or (0) in the given thread pool. Workers do not fork the parent, which runs threads (downloads,
    torch) that a fork would copy mid-flight: they come from a forkserver (or are spawned).

    A worker that dies (a decoder crash, the OOM killer) breaks every task then in the pool; each is run
    again alone in a fresh one-worker pool, so only the task that crashes twice loses its candidates
    (counted as `decoder_crashed`)."""

    def __init__(self, processes: int, threads: Executor, max_pixels: int, prepare: Callable | None):
        self.processes, self.threads, self.max_pixels, self.prepare = processes, threads, max_pixels, prepare
        self._pool: ProcessPoolExecutor | None = self._new_pool(processes) if processes > 0 else None

    def _new_pool(self, processes: int) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(processes, mp_context=_context(), initializer=_quiet_worker)
        for _ in range(processes):  # workers start on demand: start them all now, while records are read
            pool.submit(int)
        return pool

    def submit(self, items: list[tuple[bytes, str]]) -> "DecodeTask":
        return DecodeTask(self, items, self._submit(items))

    def _submit(self, items: list[tuple[bytes, str]]) -> Future:
        from concurrent.futures.process import BrokenProcessPool

        if self.processes <= 0:
            return self.threads.submit(decode_many, items, self.max_pixels, self.prepare)
        for _ in range(2):
            if self._pool is None:
                self._pool = self._new_pool(self.processes)
            try:
                future = self._pool.submit(decode_many, items, self.max_pixels, self.prepare)
                future.pool = self._pool  # which pool to drop if this task finds it broken
                return future
            except BrokenProcessPool:
                self._drop_pool(self._pool)
        raise VkelError("cannot start decoding worker processes (try --decode-workers 0)")

    def wait(self, future: Future, items: list[tuple[bytes, str]]) -> list:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool:
            self._drop_pool(getattr(future, "pool", None))
        alone = self._new_pool(1)
        try:
            return alone.submit(decode_many, items, self.max_pixels, self.prepare).result()
        except BrokenProcessPool as err:
            return [CandidateError("decoder_crashed", f"{where}: {err}", permanent=False) for _, where in items]
        finally:
            alone.shutdown(wait=True, cancel_futures=True)

    def _drop_pool(self, broken: ProcessPoolExecutor | None) -> None:
        if broken is not None and broken is self._pool:
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "DecodePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)  # workers exit on their own
            self._pool = None


def _context():
    """forkserver where there is one (Unix): a clean server process, started once and preloaded with
    this module, forks each worker in milliseconds; spawn elsewhere."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "vkel_cli.fetch.images", "vkel_cli.augment.image_prep"])
    return context


class DecodeTask:
    """One submitted task; `results()` waits once and keeps the answer (several records share a task)."""

    def __init__(self, pool: DecodePool, items: list[tuple[bytes, str]], future: Future):
        self._pool, self._items, self._future = pool, items, future
        self._results: list | None = None

    def results(self) -> list:
        if self._results is None:
            self._results = self._pool.wait(self._future, self._items)
            self._items = []  # the bytes are no longer needed
        return self._results
