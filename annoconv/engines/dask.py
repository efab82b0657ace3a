"""The ``dask`` engine: a run's tasks on a Dask cluster (``pip install 'annoconv[dask]'``).

`scheduler` is the address of a running scheduler (``tcp://host:8786``) or a
`distributed.Client`; without one, a LocalCluster of `workers` single-threaded processes is
started for the run and closed after it. The job goes to the cluster once, as a task the
others depend on; each task then reads and writes its own files, so image bytes never pass
through the scheduler.
Dask re-runs the tasks of a worker that dies; since a task writes the same staged files
however often it runs, a re-run is harmless. A task that keeps killing its workers ends the
run with an error, and nothing is published.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from annoconv.errors import AnnoconvError, MissingDependencyError

if TYPE_CHECKING:
    from annoconv.engines.partitioned import Task
    from annoconv.pipeline import Job
    from annoconv.report import Report


_T = TypeVar("_T")
_R = TypeVar("_R")


def _given(job: Job) -> Job:
    return job


def _distributed() -> Any:
    try:
        import distributed
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"engine 'dask' needs the package {exc.name!r}, which is not installed; "
            "run: pip install 'annoconv[dask]'"
        ) from None
    return distributed


class DaskRunner:
    def __init__(self, workers: int | None = None, scheduler: Any = None) -> None:
        distributed = _distributed()
        self._distributed = distributed
        self._cluster = None
        self._own_client = not isinstance(scheduler, distributed.Client)
        if scheduler is None:
            self._cluster = distributed.LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            self.client = distributed.Client(self._cluster)
        elif isinstance(scheduler, str):
            self.client = distributed.Client(scheduler)
        else:
            self.client = scheduler
        self.parallelism = max(1, sum(self.client.nthreads().values()))

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def map(self, function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        run = uuid.uuid4().hex[:8]
        keys = [f"annoconv-{run}-part-{index}" for index in range(len(items))]
        futures = self.client.map(function, items, key=keys)
        try:
            return list(self.client.gather(futures))
        finally:
            self.client.cancel(futures)

    def run_all(self, job: Job, tasks: Sequence[Task]) -> list[Report]:
        from annoconv.engines.partitioned import run_task, task_bar

        run = uuid.uuid4().hex[:8]
        # The job is a task of its own rather than scattered data: a worker holding it may
        # die, and the scheduler can rebuild a task's result but not lost scattered data.
        shared = self.client.submit(_given, job, key=f"annoconv-{run}-job")
        futures = [
            self.client.submit(run_task, shared, task, key=f"annoconv-{run}-{task.index}")
            for task in tasks
        ]
        with task_bar(job.progress, len(futures)) as bar:
            for _ in self._distributed.as_completed(futures):
                bar.update(1)
        try:
            return [self._result(future, task) for future, task in zip(futures, tasks, strict=True)]
        finally:
            self.client.cancel([*futures, shared])

    def _result(self, future: Any, task: Task) -> Report:
        if future.status == "finished":
            return future.result()  # type: ignore[no-any-return]
        if future.status != "error":
            raise AnnoconvError(
                f"task {task.index} of the run ended {future.status} on the Dask cluster; "
                "nothing was published"
            )
        error = future.exception()
        if type(error).__name__ == "KilledWorker":
            raise AnnoconvError(
                f"task {task.index} of the run killed every Dask worker it ran on ({error}); "
                "nothing was published"
            ) from None
        raise error
