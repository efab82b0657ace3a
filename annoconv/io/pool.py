"""Bounded, order-keeping background work for record streams (image headers, image hashes)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from annoconv.io.fs import in_this_context

T = TypeVar("T")
R = TypeVar("R")


def prefetch(
    items: Iterable[T],
    job: Callable[[T], Callable[[], R] | None],
    *,
    threads: int = 8,
    window: int = 64,
) -> Iterator[tuple[T, Future[R] | None]]:
    """Each item with the future of its job (None when `job(item)` gives no work), in input
    order. Jobs run on a pool of `threads`, at most `window` items ahead of the consumer."""
    pending: deque[tuple[T, Future[R] | None]] = deque()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for item in items:
            work = job(item)
            pending.append((item, pool.submit(in_this_context(work)) if work is not None else None))
            if len(pending) >= window:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
