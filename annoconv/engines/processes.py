"""The ``processes`` engine: a run's tasks on a pool of local processes (one big machine).

Workers are started as soon as the run begins, so they start up while the driver makes its
first pass. Where the platform has it (Linux, macOS) they are forked from a forkserver that
has imported what tasks run (`annoconv.forkserver`; `convert()` starts it first): a worker is
ready in a few milliseconds of CPU instead of the quarter second a fresh interpreter takes to
import annoconv, and it exits as quickly; elsewhere they are spawned. Either way a worker
holds no thread or lock of the driver's, and a forked one takes the driver's working folder,
import path, main module and environment (`DriverContext`) before it runs anything, as a
spawned one has them. The job goes to the workers once, through a temporary file each worker
reads on its first task; tasks themselves are small.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from multiprocessing import spawn
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from annoconv.engines.partitioned import task_bar
from annoconv.errors import AnnoconvError
from annoconv.forkserver import pool_context

if TYPE_CHECKING:
    from annoconv.engines.partitioned import Task
    from annoconv.pipeline import Job
    from annoconv.report import Report

_T = TypeVar("_T")
_R = TypeVar("_R")
#: In a worker: the job it last read, by the path of its file.
_loaded: tuple[str, Job] | None = None


@dataclass(frozen=True)
class DriverContext:
    """What a spawned worker gets from the driver when it starts, for a worker forked from a
    forkserver (started by an earlier run, maybe) to take before it runs anything: the
    working folder, the import path and the main module (`multiprocessing.spawn`'s
    preparation data: a class defined in the driver's script unpickles), and the environment
    (credentials). Relative paths and modules mean in the workers what they mean here."""

    preparation: Mapping[str, Any]
    environ: Mapping[str, str]

    @classmethod
    def here(cls) -> DriverContext:
        data = spawn.get_preparation_data("worker")
        kept = ("sys_path", "dir", "init_main_from_name", "init_main_from_path")
        return cls({key: data[key] for key in kept if key in data}, dict(os.environ))

    def enter(self) -> None:
        if os.environ != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        spawn.prepare(dict(self.preparation))


class ProcessRunner:
    def __init__(self, workers: int | None = None) -> None:
        self.parallelism = workers or os.cpu_count() or 1
        context = pool_context()
        forked = context.get_start_method() == "forkserver"
        driver = DriverContext.here() if forked else None
        start = partial(_start, driver, os.getpid())
        self._pool = ProcessPoolExecutor(self.parallelism, context, initializer=start)
        # Starting the first worker waits for the forkserver to start and import annoconv:
        # a thread waits, while this one goes on opening and listing the source.
        self._starting = threading.Thread(target=self._start_workers, daemon=True)
        self._starting.start()

    def _start_workers(self) -> None:
        with contextlib.suppress(RuntimeError):  # a pool shut down before it started
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
        self._starting.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _stop_workers(self) -> None:
        """End the workers at once, for an interrupted run: their tasks write into a staging
        folder the driver removes next, and must not write into it afterwards."""
        # The pool's own processes (ProcessPoolExecutor names no public way before 3.14).
        workers = list(dict(getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join()

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
        except BaseException:  # interrupted (Ctrl-C): task errors come back in the futures
            self._stop_workers()
            raise
        finally:
            os.remove(handle.name)
        done = zip(futures, tasks, strict=True)
        return [_result(future, f"task {task.index}") for future, task in done]


def _start(driver: DriverContext | None, driver_pid: int) -> None:
    """A worker's first act: the driver's context, for a forked one (see `DriverContext`),
    and a watch on the driver."""
    if driver is not None:
        driver.enter()
    if os.name == "posix":  # (os.kill on Windows would end the driver, not probe it)
        threading.Thread(target=_exit_without, args=(driver_pid,), daemon=True).start()


def _exit_without(driver_pid: int) -> None:
    """End this worker once the driver is gone (killed, even by SIGKILL). Nothing else
    would: the worker would finish its task into a staging folder that no one publishes
    or removes, then wait for work forever (it holds the work queue's writing end itself),
    keeping the forkserver alive too."""
    pidfd_open = getattr(os, "pidfd_open", None)  # Linux
    with contextlib.suppress(OSError):
        if pidfd_open is not None:
            # Readable once the driver has ended (a zombie included): no polling.
            select.select([pidfd_open(driver_pid)], [], [])
            os._exit(1)
    while True:  # no pidfd (macOS, old kernels): poll
        time.sleep(0.5)
        try:
            os.kill(driver_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # someone else's process took the pid: the driver is gone
            os._exit(1)


def _get_ready() -> None:
    """Import what tasks run (a spawned worker), while the driver is still surveying."""
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
