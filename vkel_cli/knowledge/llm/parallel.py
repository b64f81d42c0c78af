"""An order-keeping parallel map over a stream."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], concurrency: int, window: int | None = None) -> Iterator[R]:
    """Yield fn(item) for each item, in input order, running up to `concurrency` calls at once.

    Streams: at most `window` items (default 2 x concurrency, so a slow head item does not starve
    the workers) are taken from `items` ahead of the one being yielded. An exception raised by
    fn is re-raised when its item's turn comes; closing the iterator cancels what has not started.
    """
    concurrency = max(1, int(concurrency))
    window = max(concurrency, window or 2 * concurrency)
    iterator = iter(items)
    pending: deque = deque()
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vkel-map")
    try:
        for item in iterator:
            pending.append(executor.submit(fn, item))
            while len(pending) >= window or (pending and pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


class Pools:
    """One thread pool per endpoint, sized to its max_concurrency: calls to each LLM are bounded
    separately, and a slow LLM does not hold back the others' workers."""

    def __init__(self, endpoints):
        self._pools = {ep.name: ThreadPoolExecutor(max_workers=max(1, ep.max_concurrency),
                                                    thread_name_prefix=f"vkel-{ep.name}")
                       for ep in endpoints}
        self.capacity = sum(max(1, ep.max_concurrency) for ep in endpoints)

    def submit(self, name: str, fn, *args, **kwargs):
        return self._pools[name].submit(fn, *args, **kwargs)

    def shutdown(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


def fan_out(items: Iterable[T], plan: Callable, finish: Callable, limit: int) -> Iterator[R]:
    """For each item, `plan(item)` submits its jobs and returns (context, [(key, future)...]);
    `finish(item, context, jobs)` is yielded in input order once they are done. Streams: at most
    about `limit` jobs are pending, so the input is never read far ahead of the output."""
    pending: deque = deque()
    count = 0

    def head_done() -> bool:
        return all(future.done() for _, future in pending[0][2])

    for item in items:
        context, jobs = plan(item)
        pending.append((item, context, jobs))
        count += len(jobs)
        while pending and (count > limit or head_done()):
            head = pending.popleft()
            count -= len(head[2])
            yield finish(*head)
    while pending:
        yield finish(*pending.popleft())
