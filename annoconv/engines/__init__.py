"""Engines run a conversion that `convert()` has settled (a `convert.Job`).

- ``local``: in this process, streaming, as it always did.
- ``processes``: tasks on N local processes, for one big machine (`engines.processes`).
- ``dask``: tasks on a Dask cluster, an existing one or a LocalCluster (`engines.dask`, needs
  ``annoconv[dask]``).

The two parallel engines share `engines.partitioned`: the driver cuts the work into tasks
(whole output shards, runs of annotation files, or byte ranges of one big CSV), each task
reads its own part of the source and writes its outputs straight to a staging folder beside
the destination, and the driver publishes them once every task has succeeded. See
docs/engines.md for the determinism contract. Nothing here imports Dask until the ``dask``
engine is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from annoconv.errors import AnnoconvError

if TYPE_CHECKING:
    from annoconv.convert import Job
    from annoconv.engines.partitioned import TaskRunner
    from annoconv.formats.base import Reader
    from annoconv.report import Report

EngineName = Literal["local", "processes", "dask"]
ENGINES: tuple[EngineName, ...] = ("local", "processes", "dask")


def check_engine(engine: str, workers: int | None, scheduler: Any) -> None:
    """Usage errors in the engine options, raised before any work is done."""
    if engine not in ENGINES:
        raise AnnoconvError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise AnnoconvError(f"workers must be at least 1, got {workers}")
    if scheduler is not None and engine != "dask":
        raise AnnoconvError("a scheduler is only used with engine 'dask'")
    if workers is not None and engine == "local":
        raise AnnoconvError("workers needs engine 'processes' or 'dask'")
    if workers is not None and scheduler is not None:
        raise AnnoconvError("workers sizes a LocalCluster; a running scheduler has its own")


@contextlib.contextmanager
def engine_runner(
    engine: EngineName = "local", workers: int | None = None, scheduler: Any = None
) -> Iterator[TaskRunner | None]:
    """The runner of the parallel engines, started on entry (its workers start up while the
    caller makes its first pass) and stopped on exit; None for the local engine."""
    check_engine(engine, workers, scheduler)
    if engine == "local":
        yield None
    elif engine == "processes":
        from annoconv.engines.processes import ProcessRunner

        with ProcessRunner(workers) as runner:
            yield runner
    else:
        from annoconv.engines.dask import DaskRunner

        with DaskRunner(workers, scheduler) as dask_runner:
            yield dask_runner


def run_job(job: Job, reader: Reader, runner: TaskRunner | None) -> Report:
    """Run `job` (whose source `reader` reads) in this process, or as tasks on `runner`;
    once its outputs are published, what an earlier run left that would be read with them
    is removed (see `Writer.clear_stale`) and named in the report's warnings."""
    if runner is None:
        report = job.run(reader, job.writer)
    else:
        from annoconv.engines.partitioned import run_partitioned

        report = run_partitioned(job, reader, runner)
    removed = job.writer_class.clear_stale(report.outputs)
    if removed:
        shown = ", ".join(removed[:3]) + (
            f" and {len(removed) - 3} more" if len(removed) > 3 else ""
        )
        report.warnings.append(
            f"removed {len(removed)} file(s) an earlier run left beside the new output: {shown}"
        )
    return report


def survey_labels(reader: Reader, runner: TaskRunner) -> Iterable[tuple[str, list[str]]] | None:
    """`reader.labels()` read by the runner's workers, in the same order; None for readers
    that cannot hand out their files (they are surveyed here)."""
    from annoconv.engines.partitioned import parallel_labels

    return parallel_labels(reader, runner)
