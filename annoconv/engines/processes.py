"""The ``processes`` engine: a run's tasks on a pool of local processes (one big machine).

Workers are started with ``spawn`` (safe with threads, and the same on every platform) as soon
as the run begins, so they start up while the driver makes its first pass. The job goes to
them once, through a temporary file each worker reads on its first task; tasks themselves are
small.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from annoconv.engines.partitioned import task_bar
from annoconv.errors import AnnoconvError

if TYPE_CHECKING:
    from annoconv.engines.partitioned import Task
    from annoconv.pipeline import Job
    from annoconv.report import Report

_T = TypeVar("_T")
_R = TypeVar("_R")
#: In a worker: the job it last read, by the path of its file.
_loaded: tuple[str, Job] | None = None


class ProcessRunner:
    def __init__(self, workers: int | None = None) -> None:
        self.parallelism = workers or os.cpu_count() or 1
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(self.parallelism, context)
        for _ in range(self.parallelism):
            self._pool.submit(_get_ready)

    def __enter__(self) -> ProcessRunner:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def map(self, function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        futures = [self._pool.submit(function, item) for item in items]
        wait(futures)
        return [_result(future, f"part {index}") for index, future in enumerate(futures)]

    def run_all(self, job: Job, tasks: Sequence[Task]) -> list[Report]:
        with tempfile.NamedTemporaryFile(prefix="annoconv-job-", delete=False) as handle:
            pickle.dump(job, handle, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            futures = [self._pool.submit(_run, handle.name, task) for task in tasks]
            with task_bar(job.progress, len(futures)) as bar:
                for _ in as_completed(futures):
                    bar.update(1)
        finally:
            os.remove(handle.name)
        done = zip(futures, tasks, strict=True)
        return [_result(future, f"task {task.index}") for future, task in done]


def _get_ready() -> None:
    """Import what tasks run, while the driver is still surveying."""
    import annoconv.engines.partitioned  # noqa: F401


def _run(path: str, task: Task) -> Report:
    global _loaded
    from annoconv.engines.partitioned import run_task

    if _loaded is None or _loaded[0] != path:
        with open(path, "rb") as handle:
            _loaded = (path, pickle.load(handle))
    return run_task(_loaded[1], task)


def _result(future: Future[_R], what: str) -> _R:
    error = future.exception()
    if isinstance(error, BrokenProcessPool):
        raise AnnoconvError(
            f"a worker process died while the run's {what} was pending or running "
            "(killed, or out of memory); nothing was published"
        ) from error
    if error is not None:
        raise error
    return future.result()
