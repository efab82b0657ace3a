"""The ``processes`` engine: a run's tasks on a pool of local processes (one big machine).

Workers are started with ``spawn`` (safe with threads, and the same on every platform); each
receives the job once, when it starts, and then only the small task descriptions.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from annoconv.engines.partitioned import Task, run_task
from annoconv.errors import AnnoconvError

if TYPE_CHECKING:
    from annoconv.convert import Job
    from annoconv.report import Report

_job: Job | None = None


class ProcessRunner:
    def __init__(self, workers: int | None = None) -> None:
        self.parallelism = workers or os.cpu_count() or 1

    def run_all(self, job: Job, tasks: Sequence[Task]) -> list[Report]:
        context = multiprocessing.get_context("spawn")
        workers = min(self.parallelism, len(tasks))
        with ProcessPoolExecutor(workers, context, initializer=_receive, initargs=(job,)) as pool:
            futures = [pool.submit(_run, task) for task in tasks]
            wait(futures)
        return [_result(future, task) for future, task in zip(futures, tasks, strict=True)]


def _receive(job: Job) -> None:
    global _job
    _job = job


def _run(task: Task) -> Report:
    assert _job is not None, "the worker was started without its job"
    return run_task(_job, task)


def _result(future: Future[Report], task: Task) -> Report:
    error = future.exception()
    if isinstance(error, BrokenProcessPool):
        raise AnnoconvError(
            f"a worker process died while the run's task {task.index} was pending or running "
            "(killed, or out of memory); nothing was published"
        ) from error
    if error is not None:
        raise error
    return future.result()
