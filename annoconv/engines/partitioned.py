"""A conversion cut into tasks that run anywhere (other processes, a Dask cluster).

The driver (`run_partitioned`) has already settled everything small: the label map, the
splits, each key's output shard. It cuts the work into tasks:

- for writers of shards (TFRecord), one task per output shard; the task reads exactly the
  annotation files whose images go to its shard, in the order the local engine reads them,
  so every shard gets the same records in the same order. Readers that cannot hand out their
  files (CSV, Open Images) are read whole by every task, each keeping only its shard's images;
- for writers of one file (CSV, Faster R-CNN txt), runs of consecutive annotation files; each
  task writes a part, and the driver joins the parts in order (annotation text only);
- for a reader of one big sorted CSV (`Reader.byte_ranges`) into one file or a Parquet dataset,
  byte ranges of the CSV cut between images: each task reads its range and writes a part,
  joined as above or published as ``OUT/part-0000N.parquet``. A range found unsorted sends the
  whole file back to one task.

Tasks write straight to a staging folder beside the destination (``.NAME.annoconv-XXXXXXXX``)
under names that depend only on the task, so a task run twice (a retried worker) writes the
same files again. Only when every task has succeeded does the driver move the outputs to their
final names; on any failure it removes the staging folder, so no partial output looks complete.
Image bytes never travel through the driver or the scheduler: each task reads its images itself.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from annoconv.errors import AnnoconvError, UnsortedRange
from annoconv.formats.base import Reader, ReadResult, ShardPartition
from annoconv.io.fs import (
    AtomicFile,
    current_storage_options,
    dirname,
    is_dir,
    is_remote,
    join,
    list_files,
    move,
    open_input,
    relative_posix,
    remove_file,
    remove_tree,
    using_storage_options,
)
from annoconv.io.images import remote_paths
from annoconv.labelmap import LabelMap
from annoconv.ops import shard_of
from annoconv.pipeline import Job
from annoconv.report import OutputFile, Report
from annoconv.schema import ImageRecord
from annoconv.survey import survey

_T = TypeVar("_T")
_R = TypeVar("_R")
#: Single-file outputs are cut into this many parts per worker (uneven file sizes even out).
PARTS_PER_WORKER = 2
_COPY_CHUNK = 1 << 20


class TaskRunner(Protocol):
    """Runs tasks somewhere: a process pool, a Dask cluster."""

    #: How many tasks can run at once.
    parallelism: int

    def map(self, function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """`function` of every item on the workers, the results in order (small results,
        such as the labels of a run of files)."""
        ...

    def run_all(self, job: Job, tasks: Sequence[Task]) -> list[Report]:
        """`run_task(job, task)` for every task, waiting for all of them (none may still be
        writing when this returns); the reports in task order. Raises the error of the first
        failed task in task order."""
        ...


@dataclass(frozen=True)
class Task:
    """One task's share of a run: what it reads and what it writes. Small and picklable."""

    index: int
    staging: str
    #: The files this task reads; None: the whole source, keeping only its share.
    reader: Reader | None
    #: Per split ("" when not splitting), the shards this task writes (sharded writers).
    partitions: Mapping[str, ShardPartition] = field(default_factory=dict)
    #: For single-file writers: the number of the part this task writes.
    part: int | None = None
    #: Whether the part is a file of a dataset folder (`Writer.part_path`), published as it
    #: is, rather than a piece the driver joins into one file.
    dataset_part: bool = False


def task_bar(enabled: bool, total: int) -> Any:
    """The driver's progress bar over a run's tasks as they finish (images are counted in
    the workers, out of sight): a tqdm bar on a terminal's stderr, else one that stays quiet."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="task",
        desc="tasks",
        file=sys.stderr,
        disable=not enabled or not sys.stderr.isatty(),
    )


def run_task(job: Job, task: Task) -> Report:
    """Run one task; its outputs stay in the staging folder until the driver publishes."""
    try:
        with (
            using_storage_options(job.storage_options),
            remote_paths(job.allow_remote_paths),
        ):
            reader = task.reader if task.reader is not None else job.open_reader()
            extra = {split: {"partition": part} for split, part in task.partitions.items()}
            keep = _share(job, task) if task.reader is None and task.partitions else None
            return job.run(
                reader,
                lambda: job.writer(lambda name: _task_destination(job, task, name), extra),
                keep,
                progress=False,
                whole=False,
                # Tasks that each read the whole source for their share: one counts its facts.
                reader_adjustments=keep is None or task.index == 0,
            )
    except AnnoconvError as error:
        failure = _detached(error)
    raise failure


def _task_destination(job: Job, task: Task, destination: str) -> str:
    """Where `task` writes its share of `destination`, in the staging folder."""
    if not task.dataset_part:
        return staged(task.staging, destination, task.part)
    assert task.part is not None
    return staged(task.staging, _part_path(job, destination, task.part))


def _part_path(job: Job, destination: str, index: int) -> str:
    """Where part `index` of a dataset output goes. Without a split the output becomes a
    folder of parts; a split's destination lies in a folder of its own when the writer puts
    it in one (Parquet's ``OUT/split=NAME/``), else beside the others."""
    in_folder = bool(job.split_names) and bool(
        job.writer_class.split_destination(job.output, job.split_names[0])
    )
    return job.writer_class.part_path(destination, index, in_split_folder=in_folder)


def _detached(error: AnnoconvError) -> AnnoconvError:
    """The same error without its chained causes (an lxml error cannot be pickled, and Dask
    sends the whole chain back to the driver)."""
    reduced = error.__reduce__()
    try:
        copy = reduced[0](*reduced[1])  # type: ignore[operator]
    except TypeError:
        return AnnoconvError(str(error))
    return copy if isinstance(copy, AnnoconvError) else AnnoconvError(str(error))


def staged(staging: str, destination: str, part: int | None = None) -> str:
    """Where a task writes `destination` (or its part number `part`) inside `staging`, which
    lies in the folder of the run's output: the same path relative to that folder."""
    name = relative_posix(destination, _parent(staging))
    return join(staging, name if part is None else f"{name}.part-{part:05d}")


def _parent(uri: str) -> str:
    return dirname(uri) or "."


def _basename(uri: str) -> str:
    return posixpath.basename(uri) if is_remote(uri) else os.path.basename(uri)


def _share(job: Job, task: Task) -> Callable[[ReadResult], bool]:
    """For a task reading the whole source: whether an item is this task's to write. Each
    image belongs to the task of its shard; items that are not images go to task 0, so
    that every item is counted once over all tasks."""
    known = job.weights or {}

    def keep(item: ReadResult) -> bool:
        if not isinstance(item, ImageRecord):
            return task.index == 0
        split = job.splits.get(item.key, "") if job.splits else ""
        partition = task.partitions.get(split)
        if partition is None:
            return task.index == 0
        if item.key in known:
            return item.key in partition.assignment
        return shard_of(item.key, partition.count) in partition.owned

    return keep


def run_partitioned(job: Job, reader: Reader, runner: TaskRunner) -> Report:
    """Run `job` as tasks on `runner`, publish the outputs and return the merged report."""
    named = job.output.rstrip("/\\") or job.output  # `out/yolo/`: beside `out/yolo`, not in it
    staging = join(dirname(named), f".{_basename(named)}.annoconv-{uuid.uuid4().hex[:8]}")
    # The engine runs tasks side by side: each prepares its records on its own thread.
    job = dataclasses.replace(job, prepare_threads=1)
    try:
        job, tasks = _range_tasks(job, reader, runner, staging) or (
            job,
            plan_tasks(job, reader, runner.parallelism, staging),
        )
        try:
            reports = runner.run_all(job, tasks)
        except UnsortedRange:
            # A range the cuts could not tell was unsorted: the file goes in one task.
            remove_tree(staging)
            tasks = [Task(0, staging, None)]
            reports = runner.run_all(job, tasks)
        report = Report()
        for part in reports:
            report.merge(part)
        if job.dedup is not None:
            job.dedup.finish(report)  # the duplicates found by the survey, once
        report.outputs = _publish(job, tasks, reports)
    finally:
        remove_tree(staging)
    if len(tasks) < runner.parallelism:
        report.warnings.append(
            f"the run had {len(tasks)} task(s) for {runner.parallelism} workers; "
            "more output shards (--shards) would keep them all busy"
        )
    report.check_balance()
    return report


def plan_tasks(job: Job, reader: Reader, parallelism: int, staging: str) -> list[Task]:
    """The tasks of a run: one per output shard, or runs of files for single-file outputs."""
    if job.archive is not None:
        # Which annotation an archive member belongs to depends on all of them (a member that
        # matches one by path is no other's), so one task streams the archive for the run.
        return [Task(0, staging, None)]
    plans = {split: _shard_plan(job, split) for split in job.destinations()}
    files = reader.image_files()
    sharded = {split: plan for split, plan in plans.items() if plan is not None}
    if sharded and len(sharded) == len(plans):
        shards = sum(count for count, _ in sharded.values())
        joins = job.writer_class.joins_shard_parts(**job.write_options)
        if files is not None and shards < parallelism and joins:
            return _shard_part_tasks(reader, files, sharded, parallelism, staging)
        return _shard_tasks(job, reader, files, sharded, staging)
    if files is None or job.writer_class.capabilities.parts != "concatenate":
        # A whole-source reader into a single file, or a writer of neither shards nor one
        # joinable file (Parquet, a VOC folder): one task does the run.
        return [Task(0, staging, None)]
    runs = _file_runs(reader, files, parallelism)
    return [Task(index, staging, run, part=index) for index, run in enumerate(runs)]


def _shard_plan(job: Job, split: str) -> tuple[int, dict[str, int]] | None:
    """The writer's shards of the output of `split`, for writers that declare shards."""
    if not job.writer_class.capabilities.sharded:
        return None
    return job.writer_class.shard_plan(job.keys(split), **job.write_options)


def _range_tasks(
    job: Job, reader: Reader, runner: TaskRunner, staging: str
) -> tuple[Job, list[Task]] | None:
    """For a whole-source reader of one big sorted CSV into one file (joined from parts) or
    a dataset folder: one task per byte range (`Reader.byte_ranges`). A dataset's parts get
    the label map the local engine's writer would build, settled here first. None when the
    run cannot be cut so."""
    parts_join = job.writer_class.capabilities.parts
    single = parts_join == "concatenate"
    if reader.image_files() is not None or parts_join == "one":
        return None
    if any(_shard_plan(job, split) is not None for split in job.destinations()):
        return None
    parts = reader.byte_ranges(runner.parallelism * PARTS_PER_WORKER)
    if parts is None:
        return None
    if not single and job.label_map is None:
        label_map = _surveyed_label_map(job, parts, runner)
        if label_map is None:
            return None
        job = dataclasses.replace(job, label_map=label_map)
    tasks = [
        Task(index, staging, part, part=index, dataset_part=not single)
        for index, part in enumerate(parts)
    ]
    return job, tasks


def _surveyed_label_map(job: Job, parts: Sequence[Reader], runner: TaskRunner) -> LabelMap | None:
    """The map of the classes the run writes (sorted, ids from 1: what a writer without a
    map builds), from a survey of the ranges on the workers; None if one is unsorted."""
    transforms = job.make_filters()
    if not all(step.on_labels for step in transforms):
        return None  # operations that need whole records: not worth a survey of their own
    try:
        if not transforms:  # only the classes are needed: each part sends back its counts
            counted = runner.map(partial(_class_counts, options=current_storage_options()), parts)
            return LabelMap.from_classes(sum(counted, Counter()))
        pairs = _labels_of_parts(parts, runner)
    except UnsortedRange:
        return None
    found = survey(parts[0], transforms=transforms, label_pairs=lambda: pairs)
    return LabelMap.from_classes(found.counts)


def _class_counts(reader: Reader, options: Mapping[str, Any]) -> Counter[str]:
    with using_storage_options(options):
        return Counter(label for _key, labels in reader.labels() for label in labels)


def labels_on_workers(reader: Reader, runner: TaskRunner) -> list[tuple[str, list[str]]] | None:
    """The survey pass (`Reader.labels()`) over runs of the reader's files, or byte ranges of
    its one CSV, on the workers, joined in reading order, so the driver reads none of them;
    None for readers that can do neither."""
    files = reader.image_files()
    if files is not None:
        return _labels_of_parts(_file_runs(reader, files, runner.parallelism), runner)
    parts = reader.byte_ranges(runner.parallelism * PARTS_PER_WORKER)
    if parts is None:
        return None
    try:
        return _labels_of_parts(parts, runner)
    except UnsortedRange:
        return None


def _labels_of_parts(parts: Sequence[Reader], runner: TaskRunner) -> list[tuple[str, list[str]]]:
    surveyed = runner.map(partial(_labels_of, options=current_storage_options()), parts)
    return [pair for labels in surveyed for pair in labels]


def _labels_of(reader: Reader, options: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    with using_storage_options(options):
        return list(reader.labels())


def _file_runs(reader: Reader, files: Sequence[tuple[str, str]], parallelism: int) -> list[Reader]:
    """The reader cut into runs of consecutive files, `PARTS_PER_WORKER` per worker, as even
    as can be (at least one run, even of no files)."""
    return [reader.only_files([uri for _key, uri in run]) for run in _runs(files, parallelism)]


def _runs(files: Sequence[tuple[str, str]], parallelism: int) -> list[Sequence[tuple[str, str]]]:
    count = max(1, min(len(files), parallelism * PARTS_PER_WORKER))
    bounds = [len(files) * index // count for index in range(count + 1)]
    return [files[bounds[i] : bounds[i + 1]] for i in range(count)]


def _shard_part_tasks(
    reader: Reader,
    files: list[tuple[str, str]],
    plans: Mapping[str, tuple[int, dict[str, int]]],
    parallelism: int,
    staging: str,
) -> list[Task]:
    """Fewer shards than workers, of a writer whose shard files join by concatenation
    (`Writer.joins_shard_parts`): runs of consecutive files, each task writing its part of
    every shard (the records of its files that go there, in reading order), joined per shard
    in task order (`_join_parts`), the local engine's bytes."""
    tasks = []
    for index, run in enumerate(_runs(files, parallelism)):
        keys = {key for key, _uri in run}
        partitions = {
            split: ShardPartition(
                count,
                {key: shard for key, shard in assignment.items() if key in keys},
                frozenset(range(count)),
            )
            for split, (count, assignment) in plans.items()
        }
        uris = [uri for _key, uri in run]
        tasks.append(Task(index, staging, reader.only_files(uris), partitions, part=index))
    return tasks


def _shard_tasks(
    job: Job,
    reader: Reader,
    files: list[tuple[str, str]] | None,
    plans: Mapping[str, tuple[int, dict[str, int]]],
    staging: str,
) -> list[Task]:
    units = [(split, shard) for split, (count, _) in plans.items() for shard in range(count)]
    task_of = {unit: index for index, unit in enumerate(units)}
    keys: list[dict[str, dict[str, int]]] = [{} for _ in units]
    for split, (_count, assignment) in plans.items():
        for key, shard in assignment.items():
            keys[task_of[split, shard]].setdefault(split, {})[key] = shard
    readers: list[Reader | None] = [None] * len(units)
    if files is not None:
        chosen: list[list[str]] = [[] for _ in units]
        for key, uri in files:
            chosen[_file_task(job, key, plans, task_of)].append(uri)
        readers = [reader.only_files(uris) for uris in chosen]
    tasks = []
    for index, (split, shard) in enumerate(units):
        partitions = {
            name: ShardPartition(
                count, keys[index].get(name, {}), frozenset([shard] if name == split else [])
            )
            for name, (count, _) in plans.items()
        }
        tasks.append(Task(index, staging, readers[index], partitions))
    return tasks


def _file_task(
    job: Job,
    key: str,
    plans: Mapping[str, tuple[int, dict[str, int]]],
    task_of: Mapping[tuple[str, int], int],
) -> int:
    """The task that reads the file of `key`: its shard's. A file the survey did not keep
    (unreadable, or left out by a selection or sample) yields no image to write, only a
    count, so any task may read it; it goes where the writer's hash rule would put it."""
    split = job.splits.get(key, "") if job.splits else ""
    if split in plans:
        count, assignment = plans[split]
        if key in assignment:
            return task_of[split, assignment[key]]
        if not job.splits:
            return task_of[split, shard_of(key, count)]
    return shard_of(key, len(task_of))


def _publish(job: Job, tasks: Sequence[Task], reports: Sequence[Report]) -> list[OutputFile]:
    """Move every task's outputs to their final names, in the local engine's order."""
    written = [output for report in reports for output in report.outputs]
    destinations = list(job.destinations().values())
    if tasks[0].part is not None and not tasks[0].dataset_part:
        return [out for place in destinations for out in _join_parts(job, tasks, place, written)]
    staging = tasks[0].staging
    prefixes = [staged(staging, destination) for destination in destinations]
    if tasks[0].dataset_part:  # a destination's parts lie in its folder
        folders = [dirname(_part_path(job, d, 0)) for d in destinations]
        prefixes = [staged(staging, folder) + "/" for folder in folders]

    def order(out: OutputFile) -> tuple[int, str]:
        found = (i for i, prefix in enumerate(prefixes) if out.path.startswith(prefix))
        return next(found, len(prefixes)), out.path

    def final_name(out: OutputFile) -> str:
        parent, name = dirname(staging), relative_posix(out.path, staging)
        return join(parent, name) if parent else name

    if tasks[0].dataset_part:
        _clear_old_parts(job, [final_name(out) for out in written])
    outputs = []
    for out in sorted(written, key=order):
        final = final_name(out)
        move(out.path, final)
        outputs.append(OutputFile(final, out.size, out.kind))
    return outputs


def _clear_old_parts(job: Job, finals: Sequence[str]) -> None:
    """Before part files are published into their folders: an earlier run's output there
    (a single file where the folder goes, part files this run does not write) is removed,
    so the folder reads as this run's dataset only. Part files are told by the writer's own
    part names (`Writer.part_path`)."""
    for folder in sorted({dirname(final) for final in finals}):
        if not is_dir(folder):
            remove_file(folder)
            continue
        named = _part_name_pattern(job, folder)
        for old in list_files(folder, []):
            stale = named.fullmatch(_basename(old)) and dirname(old) == folder
            if stale and old not in finals:
                remove_file(old)


def _part_name_pattern(job: Job, folder: str) -> re.Pattern[str]:
    """The names the writer gives part files in `folder`, whatever their number."""
    example = _basename(job.writer_class.part_path(folder, 0, in_split_folder=False))
    head, _, tail = example.partition("00000")
    return re.compile(re.escape(head) + r"\d{5}" + re.escape(tail))


def _join_parts(
    job: Job, tasks: Sequence[Task], destination: str, written: Sequence[OutputFile]
) -> list[OutputFile]:
    """The outputs of `destination` from the tasks' parts, in order; each part after the
    first loses the header. A task writes its part under its staged name (`staged(...,
    part)`), a shard's part with the shard's suffix after it (``-00001-of-00004``): the parts
    with the same suffix join into `destination` + that suffix, in the order task 0 wrote
    them."""
    split = next(name for name, place in job.destinations().items() if place == destination)
    header = _header(job, destination, split)
    suffixes: dict[str, dict[int, OutputFile]] = {}
    for task in tasks:
        prefix = staged(task.staging, destination, task.part)
        for out in written:
            suffix = out.path[len(prefix) :]
            if out.path.startswith(prefix) and (not suffix or suffix.startswith("-")):
                suffixes.setdefault(suffix, {})[task.index] = out
    if not suffixes:
        raise AnnoconvError(f"internal error: no task wrote a part of {destination}")
    return [
        _join(destination + suffix, [parts.get(task.index) for task in tasks], header)
        for suffix, parts in suffixes.items()
    ]


def _header(job: Job, destination: str, split: str) -> bytes:
    """The header of `destination`'s parts (a CSV header). Shard files have none: a sharded
    writer, which needs keys to be made, is not made for it."""
    if job.writer_class.capabilities.sharded:
        return b""
    return job.make_writer(destination, split, job.write_options).header()


def _join(final: str, parts: Sequence[OutputFile | None], header: bytes) -> OutputFile:
    target = AtomicFile(final)
    try:
        for index, part in enumerate(parts):
            if part is None:
                raise AnnoconvError(f"internal error: task {index} wrote no part of {final}")
            for chunk in _chunks(part.path, skip=len(header) if index else 0):
                target.write(chunk)
        size = target.commit()
    except BaseException:
        target.abort()
        raise
    kind = next(part.kind for part in parts if part is not None)
    return OutputFile(final, size, kind)


def _chunks(uri: str, *, skip: int) -> Iterator[bytes]:
    with open_input(uri) as handle:
        handle.read(skip)
        while chunk := handle.read(_COPY_CHUNK):
            yield chunk
