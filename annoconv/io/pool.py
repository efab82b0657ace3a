"""Bounded, order-keeping background work for record streams (image headers, image hashes).

`prefetch` may be abandoned half way: a conversion that fails leaves its item generators
unfinished, and they are closed whenever the garbage collector gets to them, on whatever
thread it runs then, possibly one of the workers itself (while it imports a Pillow plugin,
holding the import lock other workers wait for). So closing one never waits for a thread:
it cancels the jobs not started, and the workers end on their own once no job is left,
after `IDLE_SECONDS` without work. No thread outlives its jobs by more than that, whether
or not anybody ever closes the generator.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from annoconv.io.fs import in_this_context

T = TypeVar("T")
R = TypeVar("R")

#: How long a worker waits for another job before it ends.
IDLE_SECONDS = 0.1


def prefetch(
    items: Iterable[T],
    job: Callable[[T], Callable[[], R] | None],
    *,
    threads: int = 8,
    window: int = 64,
) -> Iterator[tuple[T, Future[R] | None]]:
    """Each item with the future of its job (None when `job(item)` gives no work), in input
    order. Jobs run on at most `threads` threads, at most `window` items ahead of the
    consumer."""
    workers = Workers(threads)
    pending: deque[tuple[T, Future[R] | None]] = deque()
    try:
        for item in items:
            work = job(item)
            future = workers.submit(in_this_context(work)) if work is not None else None
            pending.append((item, future))
            if len(pending) >= window:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        workers.close()


class Workers:
    """Up to `threads` threads running submitted jobs in submission order. A thread starts
    when a job waits and no thread is free, and ends after `IDLE_SECONDS` without a job;
    `close()` cancels the jobs not started and returns at once (it never joins a thread)."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._threads = threads
        self._jobs: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self._changed = threading.Condition()
        self._running = 0
        self._idle = 0
        self._closed = False

    def submit(self, work: Callable[[], R]) -> Future[R]:
        future: Future[R] = Future()
        with self._changed:
            if self._closed:
                raise RuntimeError("submit() after close()")
            self._jobs.append((future, work))
            # A new thread when more jobs wait than idle threads will take (one each).
            start = len(self._jobs) > self._idle and self._running < self._threads
            if start:
                self._running += 1
            else:
                self._changed.notify()
        if start:
            threading.Thread(target=self._work, name="annoconv-prefetch").start()
        return future

    def close(self) -> None:
        with self._changed:
            self._closed = True
            waiting = list(self._jobs)
            self._jobs.clear()
            self._changed.notify_all()
        for future, _work in waiting:
            future.cancel()

    def _work(self) -> None:
        while True:
            taken = self._next()
            if taken is None:
                return
            future, work = taken
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = work()
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)
            else:
                future.set_result(result)
            del future, work, taken  # (nothing of a finished job stays alive with the thread)

    def _next(self) -> tuple[Future[Any], Callable[[], Any]] | None:
        """The next job, or None when this thread is to end (closed, or idle too long)."""
        with self._changed:
            deadline = time.monotonic() + IDLE_SECONDS
            while not self._jobs and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle += 1
                try:
                    self._changed.wait(left)
                finally:
                    self._idle -= 1
            if not self._jobs:
                self._running -= 1
                return None
            return self._jobs.popleft()
