"""The pipeline: the job an engine runs (`Job`), and the pump that streams a reader's items
through the run's operations into a writer, record by record or as Arrow batches (`run`,
`run_batches`), with the split writers and the image sizes filled from image headers.

Engines import this module and nothing above it; the plan (`annoconv.plan`) makes the Job.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from annoconv.columnar import SplitRouter, box_count, class_counts_of, only_keys
from annoconv.dedup import Dedup
from annoconv.errors import AnnotationError, SkipRecord
from annoconv.filters import BoxesOutside, Transform, apply_all
from annoconv.formats import (
    BadItem,
    BatchesUnavailable,
    BatchResult,
    Dropped,
    Reader,
    ReadResult,
    Source,
    Writer,
)
from annoconv.formats.base import WrappingWriter
from annoconv.io.feed import AmbiguousImages, ArchiveChoices, feed_images
from annoconv.io.fs import in_this_context
from annoconv.io.images import ImageInfo, RecordImages
from annoconv.io.pool import prefetch
from annoconv.labelmap import LabelMap
from annoconv.report import ErrorHandler, ErrorPolicy, OutputFile, Report
from annoconv.schema import PIXEL, CoordSpace, ImageRecord, with_image_size
from annoconv.sources import open_reader

if TYPE_CHECKING:
    import pyarrow as pa


def split_destination(output: str, split: str) -> str:
    """Where one split of `output` goes: `-SPLIT` inserted before the name's extension
    (`out/uspto.record` -> `out/uspto-train.record`, `out/boxes.csv` -> `out/boxes-test.csv`)."""
    cut = max(output.rfind("/"), output.rfind("\\")) + 1
    stem, dot, suffix = output[cut:].partition(".")
    return f"{output[:cut]}{stem}-{split}{dot}{suffix}"


def _split_destination(writer_class: type[Writer], output: str, split: str) -> str:
    return writer_class.split_destination(output, split) or split_destination(output, split)


@dataclass(frozen=True)
class Job:
    """What the plan settled before writing anything (reader, writer, label map, splits,
    keys, operations): small picklable facts from which an engine runs the conversion, whole
    or in parts (see `annoconv.engines`)."""

    source: Source | Reader
    from_format: str | None
    images: str | None
    #: A tar or zip archive the images are streamed from (`images` is None then).
    archive: str | None
    #: The run's storage options (`io.fs.using_storage_options`), for other processes.
    storage_options: Mapping[str, Any]
    #: Whether URLs that annotations name may all be opened (`io.images.remote_paths`).
    allow_remote_paths: bool
    read_options: Mapping[str, Any]
    output: str
    writer_class: type[Writer]
    write_options: Mapping[str, Any]
    label_map: LabelMap | None
    #: Every image key the survey kept, with its weight; None when there was no survey.
    weights: Mapping[str, int] | None
    #: Each key's split, when splitting (by ratio or by lists).
    splits: Mapping[str, str] | None
    split_names: tuple[str, ...]
    #: Whether the split comes from split lists (keys in none of them are left out).
    by_lists: bool
    #: Makes a fresh set of the run's filters (they count what they change) for each pass.
    make_filters: Callable[[], list[Transform]]
    dedup: Dedup | None
    sample: int | None
    on_error: ErrorPolicy
    progress: bool
    #: A one-pass run (no survey, see `plan`): each record's classes are checked against the
    #: label map as it passes, a class the map lacks making the record a bad item.
    check_classes: bool = False
    #: Threads that prepare records ahead of a writer declaring `prepares` (transcoding on
    #: every core); 1 prepares each record as it is written.
    prepare_threads: int = field(default_factory=lambda: usable_cores())

    def open_reader(self) -> Reader:
        if isinstance(self.source, Reader):
            return self.source
        return open_reader(
            self.source,
            from_format=self.from_format,
            images=self.images,
            read_options=self.read_options,
        )

    def destinations(self) -> dict[str, str]:
        """Each output by split name ("" when not splitting), in the order they are written."""
        if not self.split_names:
            return {"": self.output}
        return {
            name: _split_destination(self.writer_class, self.output, name)
            for name in self.split_names
        }

    def keys(self, split: str) -> dict[str, int] | None:
        """The keys (with weights) written to the output of `split`."""
        if self.weights is None:
            return None
        if not split or self.splits is None:
            return dict(self.weights)
        return {key: self.weights[key] for key, name in self.splits.items() if name == split}

    def writer(
        self,
        place: Callable[[str], str] | None = None,
        extra: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Writer:
        """The run's writer: one per split, routed by a SplitWriter. `place` moves each
        destination (to a staging folder), `extra` adds options per split (a partition)."""
        writers = {}
        for split, destination in self.destinations().items():
            options = dict(self.write_options)
            added = (extra or {}).get(split, {})
            if self.writer_class.capabilities.needs_keys and "partition" not in added:
                keys = self.keys(split)
                if keys is not None:
                    options["keys"] = keys
            options.update(added)
            target = place(destination) if place else destination
            writers[split] = self.make_writer(target, split, options)
        if not self.split_names or self.splits is None:
            return writers[""]
        return SplitWriter(writers, self.splits)

    def make_writer(self, destination: str, split: str, options: Mapping[str, Any]) -> Writer:
        """One writer of the run's class, writing `split` ("" without a split) to
        `destination`; writers that declare `split_aware` are told their split's name."""
        told = {"split": split or None} if self.writer_class.capabilities.split_aware else {}
        return self.writer_class(
            destination, label_map=self.label_map, images=self.images, **options, **told
        )

    def run(
        self,
        reader: Reader,
        make_writer: Callable[[], Writer],
        keep: Callable[[ReadResult], bool] | None = None,
        *,
        progress: bool | None = None,
        whole: bool = True,
        choices: ArchiveChoices | None = None,
        reader_adjustments: bool = True,
    ) -> Report:
        """Stream the reader (only the items `keep` accepts, before any operation counts
        them) into a writer from `make_writer`: as Arrow batches when reader and writer can
        and no operation needs records (a second writer takes the record path if the data
        needs it after all), else record by record. A part of a run (`whole=False`) leaves
        the run-wide dedup findings to the driver; without `reader_adjustments` it leaves
        the reader's `adjustments()` to another part (all parts read the whole source).
        Records whose image an archive holds twice are taken as a first pass settled
        (`choices`): see `io.feed.archive_items`."""
        progress = self.progress if progress is None else progress
        steps = [*self.make_filters(), *([self.dedup] if self.dedup is not None else [])]
        known = None
        if self.check_classes and self.label_map is not None:
            known = KnownClasses(self.label_map)
        writer = make_writer()
        batches = None
        if (
            not steps
            and keep is None
            and self.archive is None
            and writer.capabilities.takes_batches
        ):
            batches = reader.batches()
        if known is not None:
            steps.append(known)
            if batches is not None:
                batches = known.check_batches(batches)
        if batches is not None:
            for keys, reason in self._kept():
                batches = only_keys(batches, keys, reason)
            report = run_batches(batches, writer, on_error=self.on_error, progress=progress)
            if report is not None:
                if reader_adjustments:
                    report.adjusted.update(reader.adjustments())
                return report
            writer = make_writer()  # the data needed the record path after all
        items: Iterable[ReadResult] = reader if keep is None else filter(keep, reader)
        items = apply_all(steps, items)
        for keys, reason in self._kept():
            items = _only(items, keys, reason)
        coords = writer.capabilities.coords
        if coords == PIXEL and self.archive is None:
            items = fill_sizes(items, self.images)
        source = reader.source if isinstance(self.source, Reader) else self.source
        items, writer = feed_images(
            items,
            writer,
            self.archive or self.images,
            source,
            on_error=self.on_error,
            choices=choices,
        )
        if coords == PIXEL:  # boxes checked against a size read from the image just now
            items = apply_all([step for step in steps if isinstance(step, BoxesOutside)], items)
        if writer.capabilities.prepares and self.prepare_threads > 1:
            ahead = PreparingWriter(writer, self.prepare_threads)
            items, writer = ahead.stage(items), ahead
        try:
            report = run(
                items, writer, on_error=self.on_error, progress=progress, total=reader.count_hint()
            )
        except AmbiguousImages as found:  # the writer is aborted: once more, as settled
            again = partial(
                self.run,
                progress=progress,
                whole=whole,
                choices=found.choices,
                reader_adjustments=reader_adjustments,
            )
            return again(reader, make_writer, keep)
        for step in steps:
            if whole or step is not self.dedup:
                step.finish(report)
        if reader_adjustments:
            report.adjusted.update(reader.adjustments())
        return report

    def _kept(self) -> list[tuple[Collection[str], str]]:
        """The keys the run keeps, each with the reason for leaving out the others."""
        kept: list[tuple[Collection[str], str]] = []
        if self.sample is not None and self.weights is not None:
            kept.append((self.weights, f"not in the sample of {self.sample}"))
        if self.by_lists and self.splits is not None:
            kept.append((self.splits, "not in any split list"))
        return kept


class KnownClasses(Transform):
    """In a one-pass run, where no survey checked the data against the label map: a record
    holding a class the map lacks becomes a bad item naming its file and the class."""

    def __init__(self, label_map: LabelMap) -> None:
        self.label_map = label_map

    def apply(self, items: Iterable[ReadResult]) -> Iterator[ReadResult]:
        label_map = self.label_map
        for item in items:
            if isinstance(item, ImageRecord):
                unknown = [obj.label for obj in item.objects if obj.label not in label_map]
                if unknown:
                    yield BadItem(self._error(item, unknown), boxes=len(item.objects))
                    continue
            yield item

    def check_batches(self, items: Iterable[BatchResult]) -> Iterator[BatchResult]:
        """The columnar path's items, unchanged while every class is in the map; a class the
        map lacks needs the record path (which reports the image as `apply` does)."""
        for item in items:
            if not isinstance(item, (BadItem, Dropped)) and any(
                label not in self.label_map for label in class_counts_of(item)
            ):
                raise BatchesUnavailable("a class not in the label map")
            yield item

    def _error(self, record: ImageRecord, unknown: list[str]) -> AnnotationError:
        names = ", ".join(repr(label) for label in dict.fromkeys(unknown))
        where = f" {self.label_map.source}" if self.label_map.source else ""
        return AnnotationError(
            record.source or record.key,
            f"class(es) {names} not in the label map{where}; add them to the map or pass "
            "--extend-label-map (which reads the data once more first)",
        )


def _only(items: Iterable[ReadResult], keys: Container[str], reason: str) -> Iterator[ReadResult]:
    """The items whose key is in `keys`; the other records as `Dropped` counts."""
    for item in items:
        if isinstance(item, ImageRecord) and item.key not in keys:
            yield Dropped(reason, images=1, boxes=len(item.objects))
        else:
            yield item


def fill_sizes(
    items: Iterable[ReadResult], images: str | None, *, threads: int = 8, window: int = 64
) -> Iterator[ReadResult]:
    """The items, with the pixel size of every record that lacks one read from its image's
    header. Headers are read by a bounded thread pool (at most `window` records in flight,
    order kept); an image that cannot be found or read makes its record a BadItem."""
    finder = RecordImages(images)

    def job(item: ReadResult) -> Callable[[], ImageInfo] | None:
        if isinstance(item, ImageRecord) and not item.has_size:
            return partial(finder.info, item)
        return None

    for item, future in prefetch(items, job, threads=threads, window=window):
        yield _with_size(item, future)


def _with_size(item: ReadResult, job: Future[ImageInfo] | None) -> ReadResult:
    if job is None or not isinstance(item, ImageRecord):
        return item
    try:
        info = job.result()
    except AnnotationError as error:
        source = item.source or item.key
        problem = error.message
        if error.source and error.source != source:  # the header reader names the image
            problem = f"image {error.source} cannot be read: {problem}"
        needed = AnnotationError(source, f"image size is unknown and {problem}", error.where)
        return BadItem(needed, boxes=len(item.objects))
    try:
        return with_image_size(item, info.width, info.height, item.depth or info.depth)
    except AnnotationError as error:
        return BadItem(error, boxes=len(item.objects))


class SplitWriter(Writer):
    """Routes each record to the writer of its split, marking the record with the split."""

    def __init__(self, writers: Mapping[str, Writer], assignment: Mapping[str, str]) -> None:
        first = next(iter(writers.values()))
        super().__init__(first.destination, label_map=first.label_map)
        self.writers = dict(writers)
        self.assignment = assignment
        every = [writer.capabilities for writer in self.writers.values()]
        self.capabilities = replace(
            first.capabilities,
            takes_batches=all(caps.takes_batches for caps in every),
            embeds_images=all(caps.embeds_images for caps in every),
        )
        self._router: SplitRouter | None = None

    def write(self, record: ImageRecord, image_data: bytes | None = None) -> None:
        name = self._split_of(record)
        marked = record.model_copy(update={"split": name})
        if image_data is None:
            self.writers[name].write(marked)
        else:
            self.writers[name].write(marked, image_data=image_data)  # type: ignore[call-arg]

    def prepare(self, record: ImageRecord, image_data: bytes | None = None) -> object:
        return self.writers[self._split_of(record)].prepare(record, image_data)

    def write_prepared(self, record: ImageRecord, prepared: object) -> None:
        name = self._split_of(record)
        self.writers[name].write_prepared(record.model_copy(update={"split": name}), prepared)

    def _split_of(self, record: ImageRecord) -> str:
        name = self.assignment.get(record.key)
        if name is None:
            raise AnnotationError(
                record.source, f"image {record.key!r} was not seen when splitting"
            )
        return name

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if self._router is None:
            self._router = SplitRouter(self.assignment, list(self.writers))
        for name, part in self._router.parts(batch):
            self.writers[name].write_batch(part)

    def close(self) -> list[OutputFile]:
        outputs = [output for writer in self.writers.values() for output in writer.close()]
        self.warnings = [text for writer in self.writers.values() for text in writer.warnings]
        for writer in self.writers.values():
            self.adjusted.update(writer.adjusted)
        return outputs

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


class PreparingWriter(WrappingWriter):
    """Runs a writer's `prepare()` on `threads` threads a bounded number of records ahead of
    the stream (`stage`), and writes each record with its result, in stream order: the
    output is the one `write()` would give, made on every core.

    Threads pay only for work that leaves the GIL (Pillow decoding and encoding a page);
    embedding a JPEG as it is (reading, hashing, a header) is a fraction of a millisecond of
    Python, which a second thread only slows down (measured: 40 % more CPU on 5,000 small
    images, no faster). So the work's cost is measured as it runs (`Pace`), and while it is
    cheap each record is prepared when it is written, on this thread, as without threads."""

    def __init__(self, inner: Writer, threads: int) -> None:
        super().__init__(inner)
        self.threads = threads
        self.pace = Pace()
        self._pending: deque[tuple[str, Future[object] | Later]] = deque()

    def stage(self, items: Iterable[ReadResult]) -> Iterator[ReadResult]:
        """The items, unchanged, each record's preparation taken as it passes (in stream
        order: a feeding wrapper hands its bytes over then) and started on the pool when
        preparing is costly; at most `2 * threads` items are held back."""
        coords = self.capabilities.coords
        held: deque[ReadResult] = deque()
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for item in items:
                if isinstance(item, ImageRecord):
                    self._take(item, coords, pool)
                held.append(item)
                if len(held) >= 2 * self.threads:
                    yield held.popleft()
            while held:
                yield held.popleft()

    def _take(self, record: ImageRecord, coords: CoordSpace | None, pool: Executor) -> None:
        try:
            placed = record.in_space(coords) if coords else record
        except AnnotationError:
            return  # reported when the record is written
        work = self.pace.timed(self.inner.prepare_job(placed))
        if self.pace.costly:
            self._pending.append((record.key, pool.submit(in_this_context(work))))
        else:
            self._pending.append((record.key, Later(work)))

    def write(self, record: ImageRecord) -> None:
        while self._pending:
            key, outcome = self._pending.popleft()
            if key == record.key:  # records passed over by an error were never written
                self.inner.write_prepared(record, outcome.result())
                return
        self.inner.write(record)


class Later:
    """Work run when its result is asked for, on the asking thread (a cheap preparation)."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.work = work

    def result(self) -> object:
        return self.work()


class Pace:
    """How costly preparing a record is: a moving average of the CPU time its work takes on
    its thread. Costly (the pool pays) above `threshold` seconds; it starts costly, so the
    first records measure the pool."""

    def __init__(self, threshold: float = 0.002, weight: float = 0.1) -> None:
        self.threshold = threshold
        self.weight = weight
        self.average = threshold * 2
        self._lock = threading.Lock()

    @property
    def costly(self) -> bool:
        return self.average > self.threshold

    def timed(self, work: Callable[[], object]) -> Callable[[], object]:
        def measured() -> object:
            start = time.thread_time()
            try:
                return work()
            finally:
                self._add(time.thread_time() - start)

        return measured

    def _add(self, seconds: float) -> None:
        with self._lock:
            self.average += self.weight * (seconds - self.average)


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def run(
    items: Iterable[ReadResult],
    writer: Writer,
    *,
    on_error: ErrorPolicy = "fail",
    progress: bool = False,
    total: int | None = None,
) -> Report:
    """Stream `items` into `writer`, applying the error policy; publish outputs on success."""
    report = Report()
    handler = ErrorHandler(on_error, report)
    if total is None and isinstance(items, Reader):
        total = items.count_hint()
    try:
        for item in _progress(items, progress, total):
            _write_one(item, writer, report, handler)
        report.outputs = writer.close()
        report.warnings.extend(writer.warnings)
        report.adjusted.update(writer.adjusted)
    except BaseException:
        writer.abort()
        raise
    report.check_balance()
    return report


def run_batches(
    items: Iterable[BatchResult],
    writer: Writer,
    *,
    on_error: ErrorPolicy = "fail",
    progress: bool = False,
) -> Report | None:
    """`run()` for the columnar path: stream record batches (and BadItems, Dropped counts)
    into a writer that takes batches. None, with the writer aborted, when the reader or the
    writer finds that the data needs the record path (`BatchesUnavailable`)."""
    report = Report()
    handler = ErrorHandler(on_error, report)
    bar = _batch_progress(progress)
    try:
        for item in items:
            if isinstance(item, (BadItem, Dropped)):
                _write_one(item, writer, report, handler)
                continue
            boxes = box_count(item)
            report.images_read += item.num_rows
            report.boxes_read += boxes
            writer.write_batch(item)
            report.images_written += item.num_rows
            report.boxes_written += boxes
            report.classes.update(class_counts_of(item))
            if bar is not None:
                bar.update(item.num_rows)
        report.outputs = writer.close()
        report.warnings.extend(writer.warnings)
        report.adjusted.update(writer.adjusted)
    except BatchesUnavailable:
        writer.abort()
        return None
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        # A reader's generator left half way (the writer gave up) closes its files now.
        close = getattr(items, "close", None)
        if close is not None:
            close()
    report.check_balance()
    return report


def _batch_progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit="img", file=sys.stderr, disable=not sys.stderr.isatty())


def _write_one(item: ReadResult, writer: Writer, report: Report, handler: ErrorHandler) -> None:
    if isinstance(item, Dropped):
        report.images_read += item.images
        report.boxes_read += item.boxes
        report.drop(item.reason, item.images, item.boxes)
        return
    if isinstance(item, BadItem):
        report.images_read += item.images
        report.boxes_read += item.boxes
        handler.handle(item.error, item.images, item.boxes)
        return
    boxes = len(item.objects)
    report.images_read += 1
    report.boxes_read += boxes
    try:
        coords = writer.capabilities.coords
        record = item.in_space(coords) if coords else item
        writer.write(record)
    except SkipRecord as error:
        handler.skip(error.with_source(item.source or item.key), 1, boxes)
        return
    except AnnotationError as error:
        handler.handle(error.with_source(item.source or item.key), 1, boxes)
        return
    report.images_written += 1
    report.boxes_written += boxes
    report.classes.update(obj.label for obj in item.objects)


def _progress(
    items: Iterable[ReadResult], enabled: bool, total: int | None
) -> Iterable[ReadResult]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, unit="img", file=sys.stderr, disable=not sys.stderr.isatty())
