"""`io.pool.prefetch`: order kept, bounded, and safe to abandon. A failing conversion leaves
its prefetch generator unfinished; the garbage collector closes it later on any thread, one
of its own workers included, so closing must never join or wait for a worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from factories import draw_image, write

from annoconv import convert
from annoconv.errors import AnnotationError
from annoconv.io import pool
from annoconv.io.pool import prefetch

#: How long workers may idle before they end (older code had no such notion).
IDLE_SECONDS = getattr(pool, "IDLE_SECONDS", 0.1)

pytestmark = pytest.mark.timeout(60)


def settled_thread_count(patience: float = 5.0) -> int:
    """The number of threads once no prefetch worker is left (they end after idling
    `IDLE_SECONDS`), or after `patience` seconds."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline and any(
        thread.name == "annoconv-prefetch" or "ThreadPoolExecutor" in thread.name
        for thread in threading.enumerate()
    ):
        time.sleep(IDLE_SECONDS)
    return threading.active_count()


def test_results_come_in_input_order_and_jobs_run_ahead() -> None:
    started: list[int] = []

    def job(item: int) -> Callable[[], int] | None:
        if item % 3 == 0:
            return None

        def work() -> int:
            started.append(item)
            time.sleep(0.001 * (item % 4))
            return item * 10

        return work

    results = [
        (item, future.result() if future is not None else None)
        for item, future in prefetch(range(50), job, threads=4, window=8)
    ]
    assert results == [(i, None if i % 3 == 0 else i * 10) for i in range(50)]
    assert sorted(started) == [i for i in range(50) if i % 3]


def test_closing_from_a_worker_thread_neither_raises_nor_waits() -> None:
    """What the garbage collector does to an abandoned generator, on one of its own
    threads: it used to raise 'cannot join current thread', or hang on a blocked worker."""
    baseline = settled_thread_count()
    release = threading.Event()
    suspended = threading.Event()
    closed: list[BaseException | None] = []
    holder: dict[str, object] = {}

    def close_generator() -> str:
        assert suspended.wait(10)  # (a running generator cannot be closed)
        generator = holder["generator"]
        try:
            generator.close()  # type: ignore[attr-defined]
            closed.append(None)
        except BaseException as error:
            closed.append(error)
        return "closer"

    def job(item: int) -> Callable[[], str]:
        if item == 0:
            return close_generator
        return lambda: str(release.wait(30))  # a worker blocked (on the import lock, say)

    generator = prefetch(range(4), job, threads=4, window=2)
    holder["generator"] = generator
    first, future = next(generator)
    suspended.set()
    assert first == 0 and future is not None
    assert future.result(timeout=10) == "closer"
    assert closed == [None]
    release.set()
    assert settled_thread_count() == baseline


def test_an_abandoned_generator_leaves_no_thread_even_if_never_closed() -> None:
    baseline = settled_thread_count()
    generator = prefetch(range(100), lambda item: lambda: item, threads=8, window=16)
    assert [next(generator)[1].result() for _ in range(3)] == [0, 1, 2]  # type: ignore[union-attr]
    assert settled_thread_count() == baseline  # the generator is still referenced
    generator.close()


@pytest.mark.timeout(120)
def test_fifty_failing_conversions_in_one_process_leave_no_threads(tmp_path: Path) -> None:
    """A Faster R-CNN txt with an empty coordinate and images to read sizes from: the run
    fails on the bad image while header reads are under way (the case that hung)."""
    images = tmp_path / "images"
    lines = ["bad.jpg,1,2,,4,dog"]
    for index in range(12):
        draw_image(images / f"{index}.jpg", 40 + index, 30)
        lines.append(f"{index}.jpg,1,2,3,4,dog")
    source = write(tmp_path / "boxes.txt", "\n".join(lines) + "\n")
    baseline = settled_thread_count()
    for _ in range(50):
        with pytest.raises(AnnotationError, match=r"line 1: x2: expected a whole number"):
            convert(str(source), str(tmp_path / "out.csv"), images=str(images))
    assert settled_thread_count() == baseline
    assert not (tmp_path / "out.csv").exists()
