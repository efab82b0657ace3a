"""Engines run a conversion that the plan has settled (a `pipeline.Job`); they know the
pipeline and no format by name: what they ask of a writer is its declared `capabilities`.

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
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, get_args

from annoconv.errors import AnnoconvError, OptionError
from annoconv.formats.base import Reader, Source
from annoconv.io.fs import (
    GLOB_CHARS,
    comparable_path,
    expand_source,
    is_dir,
    remove_file,
    shards_of,
)
from annoconv.options import EngineName, engine_problem

if TYPE_CHECKING:
    from annoconv.engines.partitioned import TaskRunner
    from annoconv.pipeline import Job
    from annoconv.report import Report

ENGINES: tuple[EngineName, ...] = get_args(EngineName)


def check_engine(engine: str, workers: int | None, scheduler: Any) -> None:
    """Usage errors in the engine options, raised before any work is done."""
    problem = engine_problem(engine, workers, scheduler)
    if problem:
        raise OptionError(problem)


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
    once its outputs are published, the writer's dataset-wide files are written
    (`Writer.finish_dataset`), and what an earlier run left that would be read with the
    outputs is removed (`Writer.stale_outputs`), never a file the run read, and named in the
    report's warnings."""
    if runner is None:
        report = job.run(reader, job.writer)
    else:
        from annoconv.engines.partitioned import run_partitioned

        report = run_partitioned(job, reader, runner)
    report.outputs += job.writer_class.finish_dataset(
        job.output, job.split_names, job.label_map, report.outputs
    )
    stale = job.writer_class.stale_outputs(report.outputs)
    if stale:
        read = {comparable_path(path) for path in source_files(job.source)}
        inputs = [path for path in stale if comparable_path(path) in read]
        report.warnings += remove_stale([path for path in stale if path not in inputs])
        if inputs:
            report.warnings.append(
                f"kept {len(inputs)} file(s) of another shard set under the output's prefix: "
                f"this run read them ({inputs[0]}{' ...' if len(inputs) > 1 else ''})"
            )
    return report


def source_files(source: Source | Reader) -> list[str]:
    """The files a source names: its files, the files under its folders, the shards of a
    prefix; a merge's sources' files."""
    if isinstance(source, Reader):
        return [path for part in source.parts() for path in source_files(part.source)]
    files: list[str] = []
    for path in [source] if isinstance(source, str) else source:
        if any(char in path for char in GLOB_CHARS) or is_dir(path):
            files += expand_source(path, ())[0]
        else:
            files += [path, *shards_of(path)]
    return files


def remove_stale(paths: Sequence[str]) -> list[str]:
    """Remove `paths`; the warnings that say what was removed and what could not be."""
    removed, warnings = [], []
    for path in paths:
        try:
            remove_file(path)
        except (OSError, AnnoconvError) as error:
            warnings.append(f"could not remove {path}, left by an earlier run: {error}")
        else:
            removed.append(path)
    if removed:
        more = f" and {len(removed) - 3} more" if len(removed) > 3 else ""
        warnings.insert(
            0,
            f"removed {len(removed)} file(s) an earlier run left beside the new output: "
            + ", ".join(removed[:3])
            + more,
        )
    return warnings


def parallel_labels(
    reader: Reader, *, runner: TaskRunner
) -> Iterable[tuple[str, list[str]]] | None:
    """`reader.labels()` read by the runner's workers, in the same order; None for readers
    that can hand out neither their files nor byte ranges (they are surveyed here)."""
    from annoconv.engines.partitioned import labels_on_workers

    return labels_on_workers(reader, runner)
