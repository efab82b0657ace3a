"""`convert()`: picks the reader and writer, streams records between them, returns a Report."""

from __future__ import annotations

import inspect
import sys
from collections import Counter
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from annoconv.columnar import SplitRouter, box_count, class_counts_of, only_keys
from annoconv.dedup import Dedup, ImageHashes
from annoconv.engines import EngineName, engine_runner, run_job, survey_labels
from annoconv.errors import AnnoconvError, AnnotationError, FormatError, SkipRecord
from annoconv.filters import (
    BoxesOutside,
    ClassSelection,
    OutsidePolicy,
    Transform,
    apply_all,
    build_filters,
)
from annoconv.formats import (
    BadItem,
    BatchesUnavailable,
    BatchResult,
    Dropped,
    Reader,
    ReadResult,
    Source,
    Writer,
    get_format,
    infer_format,
)
from annoconv.io.archives import is_archive
from annoconv.io.feed import AmbiguousImages, feed_images
from annoconv.io.fs import (
    GLOB_CHARS,
    applies_storage_options,
    current_storage_options,
    exists,
    shards_of,
)
from annoconv.io.images import ImageInfo, RecordImages, read_image_info
from annoconv.io.pool import prefetch
from annoconv.labelmap import LabelMap, LabelMapItem, LabelOrder, similar_classes_note
from annoconv.ops import (
    assign_from_lists,
    assign_splits,
    assign_stratified,
    parse_split,
    read_split_lists,
    sample_keys,
)
from annoconv.report import ErrorHandler, ErrorPolicy, OutputFile, Report
from annoconv.schema import PIXEL, ImageRecord, with_image_size

if TYPE_CHECKING:
    import pyarrow as pa


def open_reader(
    source: Source,
    *,
    from_format: str | None = None,
    images: str | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> Reader:
    """The reader for `source`, its format named or inferred from the path."""
    name = source_format(source, from_format)
    fmt = get_format(name)
    if fmt.reader is None:
        raise FormatError(f"format {name!r} can be written but not read")
    options = dict(read_options or {})
    _check_options(fmt.reader, options, f"{name} reader")
    return fmt.reader(source, images=images, **options)


def source_format(source: Source, from_format: str | None = None) -> str:
    """The format `source` is read as: the one named, else inferred once it is known to exist."""
    _check_exists(source)
    return from_format or infer_format(source)


def _check_exists(source: Source) -> None:
    paths = [source] if isinstance(source, str) else list(source)
    for path in paths:
        if any(char in path for char in GLOB_CHARS) or exists(path) or shards_of(path):
            continue
        raise AnnoconvError(f"{path}: no such file or folder")


def read(
    source: Source,
    *,
    from_format: str | None = None,
    images: str | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> Iterator[ImageRecord]:
    """The records of `source`, lazily; raises AnnotationError on the first bad item.
    Items a selection option left out (``read_options={"classes": ...}``) are passed over."""
    reader = open_reader(source, from_format=from_format, images=images, read_options=read_options)
    for item in reader:
        if isinstance(item, BadItem):
            raise item.error
        if isinstance(item, ImageRecord):
            yield item


def class_counts(reader: Reader) -> Counter[str]:
    """Boxes per class over the readable records, in first-seen order (bad items are ignored
    here; the conversion pass reports them)."""
    return survey(reader).counts


@dataclass
class Survey:
    """What a first pass over the source learns: classes, and the image keys with weights."""

    counts: Counter[str] = field(default_factory=Counter)
    weights: dict[str, int] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)
    hashes: ImageHashes | None = None
    dedup: Dedup | None = None


def _takes(factory: Callable[..., object] | None, option: str) -> bool:
    return factory is not None and option in inspect.signature(factory).parameters


def survey(
    reader: Reader,
    weigh: Callable[[ImageRecord], int] | None = None,
    *,
    sample: int | None = None,
    seed: int = 0,
    selection: ClassSelection | None = None,
    transforms: Sequence[Transform] = (),
    dedup: bool = False,
    keep_labels: bool = False,
    label_pairs: Callable[[], Iterable[tuple[str, list[str]]] | None] | None = None,
) -> Survey:
    """One pass over the readable records, keeping only small per-image facts, as the
    `transforms` leave them; with `dedup`, every image is hashed and only the first of each
    set of duplicates is kept; with `sample`, only a uniform sample of that many images
    (see `ops.sample_keys`); with `keep_labels`, each image's labels are kept too.
    `label_pairs` gives what `reader.labels()` would, when an engine reads them in parallel."""
    steps = [*([selection] if selection is not None else []), *transforms]
    result = Survey()
    entries: Iterable[tuple[str, list[str], int]]
    if weigh is None and not dedup and all(step.on_labels for step in steps):
        pairs = label_pairs() if label_pairs is not None else None
        if pairs is None:
            pairs = reader.labels()
        entries = ((key, labels, 1) for key, labels in pairs)
        for step in steps:
            entries = step.survey(entries)
    else:
        records: Iterable[ImageRecord] = (
            item for item in apply_all(steps, reader) if isinstance(item, ImageRecord)
        )
        if dedup:
            result.hashes = ImageHashes()
            records = result.hashes.scan(records, reader.images)
        entries = (
            (item.key, [obj.label for obj in item.objects], weigh(item) if weigh else 1)
            for item in records
        )
    if result.hashes is not None:
        entries = list(entries)  # every image hashed before duplicates can be told apart
        result.dedup = Dedup(result.hashes)
        entries = [entry for entry in entries if entry[0] not in result.dedup.dropped]
    if sample is not None:
        entries = sample_keys(entries, sample, seed, key=lambda entry: entry[0])
    for key, labels, weight in entries:
        result.counts.update(labels)
        result.weights[key] = weight
        if keep_labels:
            result.labels[key] = labels
    return result


def settle_label_map(
    counts: Counter[str],
    label_map: str | LabelMap | None,
    *,
    needed: bool,
    extend: bool = False,
    order: LabelOrder = "sorted",
    class_ids: Mapping[str, str] | None = None,
) -> LabelMap | None:
    """The one label map a run uses, settled before anything is written.

    A given map must cover every class in the data (or is extended when asked); without one,
    a writer that assigns ids gets a map built from the data. Where the dataset has its own
    class ids (`class_ids`, Open Images MIDs), they become the items' `name` and the labels
    their `display_name`, the OD API's convention.
    """
    if label_map is not None:
        given = LabelMap.read(label_map) if isinstance(label_map, str) else label_map
        return given.check_covers(counts, extend=extend)
    if not needed:
        return None
    built = LabelMap.from_classes(counts, order=order)
    if not class_ids:
        return built
    return LabelMap(
        LabelMapItem(class_ids[item.name], item.id, item.name) if item.name in class_ids else item
        for item in built
    )


def split_destination(output: str, split: str) -> str:
    """Where one split of `output` goes: `-SPLIT` inserted before the name's extension
    (`out/uspto.record` -> `out/uspto-train.record`, `out/boxes.csv` -> `out/boxes-test.csv`)."""
    cut = max(output.rfind("/"), output.rfind("\\")) + 1
    stem, dot, suffix = output[cut:].partition(".")
    return f"{output[:cut]}{stem}-{split}{dot}{suffix}"


@applies_storage_options
def convert(
    source: Source | Reader,
    output: str,
    *,
    from_format: str | None = None,
    to_format: str | None = None,
    images: str | None = None,
    label_map: str | LabelMap | None = None,
    extend_label_map: bool = False,
    label_map_order: LabelOrder = "sorted",
    label_map_output: str | None = None,
    label_map_names: Literal["ids", "labels"] = "ids",
    split: Mapping[str, float] | str | None = None,
    classes: Sequence[str] | None = None,
    keep_empty: bool = False,
    sample: int | None = None,
    seed: int = 0,
    on_error: ErrorPolicy = "fail",
    progress: bool = False,
    read_options: Mapping[str, Any] | None = None,
    write_options: Mapping[str, Any] | None = None,
    stratify: bool = False,
    split_lists: Mapping[str, str | Iterable[str]] | None = None,
    exclude_classes: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    min_size: float | tuple[float, float] | None = None,
    min_area: float | None = None,
    drop_difficult: bool = False,
    boxes_outside: OutsidePolicy = "fail",
    dedup: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    engine: EngineName = "local",
    workers: int | None = None,
    scheduler: Any = None,
) -> Report:
    """Convert `source` (a file, folder, glob or list of files, or an open Reader such as
    `merge.MergedReader`) into `output`.

    Formats are inferred from the paths unless named. `classes` keeps only those classes'
    boxes (images left without any are dropped unless `keep_empty`; readers that can select
    faster, like Open Images', do it themselves). `sample` keeps a uniform, seeded sample of
    that many images, taken after the class selection. `split` (``{"train": 0.7, "test": 0.3}`` or
    ``"train=0.7,test=0.3"``) writes one output per split, named by `split_destination`,
    with images assigned reproducibly from `seed`; every split shares one label map, which
    `label_map_output` also saves (for datasets with class ids such as Open Images MIDs,
    ``label_map_names="labels"`` names items by label instead of id). Records without a
    pixel size get it from their image's header when the writer works in pixels. With
    ``on_error="skip"`` bad items are left out and listed in the returned report instead of
    stopping the run. Outputs appear only when the whole run succeeded.

    The operations of docs/operations.md, in the order they apply: `boxes_outside`
    (``"clip"`` or ``"drop"`` boxes reaching outside the image instead of failing),
    `classes`, `exclude_classes`, `rename` (``{"cell phone": "Mobile phone"}``; the label map
    is built after renaming), `min_size` (``w`` or ``(w, h)``) and `min_area` in the data's
    coordinate space, `drop_difficult`, `dedup` (byte-identical images by SHA-256), `sample`,
    then the split: by ratio (`split`, with `stratify` spreading every class over every
    split), or by `split_lists` (``{"train": "train.txt", ...}``, see `ops.read_split_lists`).
    Everything left out is counted in the report with its reason.

    Any path may be an fsspec URL (``s3://``, ``memory://``, ``zip://…::s3://…``);
    `storage_options` reach every remote filesystem of the run (for s3 e.g.
    ``{"endpoint_url": ..., "anon": False}``; see `annoconv.io.fs.using_storage_options`).
    `images` may be a tar or zip archive (also remote, also with ZIPs inside a tar): it is
    streamed once and each annotation's image is taken as it passes (see annoconv.io.feed).

    `engine` runs the conversion in this process ("local"), on `workers` local processes
    ("processes") or on a Dask cluster ("dask": `scheduler` is its address or a
    `distributed.Client`; without one a LocalCluster of `workers` processes is started).
    Every engine writes the same examples and the same shard contents (docs/engines.md).
    """
    # The engine starts first: its workers get ready while the source is opened.
    with engine_runner(engine, workers, scheduler) as runner:
        # An archive of images is streamed by `feed_images`; readers and writers see no folder.
        archive, images = (
            (images, None) if images is not None and is_archive(images) else (None, images)
        )
        # Each pass gets its own filters (they count what they change).
        make_filters = partial(
            build_filters,
            classes=classes,
            exclude_classes=exclude_classes,
            rename=rename,
            min_size=min_size,
            min_area=min_area,
            drop_difficult=drop_difficult,
            boxes_outside=boxes_outside,
            keep_empty=keep_empty,
        )
        reader, from_format, read_options, selects = _open_source(
            source, from_format, images, read_options, classes=classes, keep_empty=keep_empty
        )
        if selects:  # the reader selects the classes itself, faster than a filter can
            make_filters = partial(make_filters, classes=None)
        writer_class = _writer_class(output, to_format)
        options = dict(write_options or {})
        fractions = _check_plan(writer_class, options, archive, split, split_lists, stratify)
        needs_map = writer_class.needs_label_map or label_map_output is not None
        facts = None
        first_pass_needed = (
            needs_map or writer_class.needs_keys or label_map is not None or dedup,
            fractions,
            split_lists,
            sample,
        )
        if any(first_pass_needed):
            weigh = (
                writer_class.weigher(images=images, **options) if writer_class.needs_keys else None
            )
            facts = survey(
                reader,
                weigh,
                sample=sample,
                seed=seed,
                transforms=make_filters(),
                dedup=dedup,
                keep_labels=bool(fractions and stratify),
                label_pairs=partial(survey_labels, reader, runner) if runner is not None else None,
            )
        resolved = settle_label_map(
            facts.counts if facts else Counter(),
            label_map,
            needed=needs_map or (facts is not None and writer_class.label_map_from_survey),
            extend=extend_label_map,
            order=label_map_order,
            class_ids=reader.class_ids() if label_map_names == "ids" else None,
        )

        assignment = (
            _assign(facts, fractions, split_lists, stratify=stratify, seed=seed)
            if facts is not None
            else None
        )
        job = Job(
            source=source,
            from_format=from_format,
            images=images,
            archive=archive,
            storage_options=current_storage_options(),
            read_options=read_options,
            output=output,
            writer_class=writer_class,
            write_options=options,
            label_map=resolved,
            weights=facts.weights if facts is not None else None,
            splits=assignment,
            split_names=tuple(fractions or split_lists or {}) if assignment is not None else (),
            by_lists=bool(split_lists),
            make_filters=make_filters,
            dedup=facts.dedup if facts is not None else None,
            sample=sample,
            on_error=on_error,
            progress=progress,
        )
        report = run_job(job, reader, runner)
        note = similar_classes_note(report.classes)
        if note:
            report.warnings.append(note)
        if label_map_output is not None and resolved is not None:
            size = resolved.write(label_map_output)
            report.outputs.append(OutputFile(label_map_output, size, "label_map"))
        return report


def _open_source(
    source: Source | Reader,
    from_format: str | None,
    images: str | None,
    read_options: Mapping[str, Any] | None,
    *,
    classes: Sequence[str] | None,
    keep_empty: bool,
) -> tuple[Reader, str | None, dict[str, Any], bool]:
    """The run's reader, the source format, the reader options, and whether the reader
    selects `classes` itself (readers that can, like Open Images', are given the selection)."""
    options = dict(read_options or {})
    if isinstance(source, Reader):
        return source, from_format, options, False
    # Inferred once: inference may open the source to sniff it.
    from_format = source_format(source, from_format)
    selects = classes is not None and _takes(get_format(from_format).reader, "classes")
    if selects:
        options.update(classes=list(classes or ()), keep_empty=keep_empty)
    reader = open_reader(source, from_format=from_format, images=images, read_options=options)
    return reader, from_format, options, selects


def _check_plan(
    writer_class: type[Writer],
    write_options: Mapping[str, Any],
    archive: str | None,
    split: Mapping[str, float] | str | None,
    split_lists: Mapping[str, str | Iterable[str]] | None,
    stratify: bool,
) -> Mapping[str, float] | None:
    """Refuse option combinations that cannot work, before any pass; the split fractions."""
    if archive is not None and write_options.get("shard_size") is not None:
        raise FormatError(
            f"shard_size needs the image sizes before writing; {archive} is an archive read "
            "once while writing: give the number of shards instead"
        )
    _check_options(writer_class, write_options, f"{writer_class.__name__}")
    fractions = parse_split(split) if isinstance(split, str) else split
    if fractions and split_lists:
        raise AnnoconvError("give either a split by ratio or split lists, not both")
    if stratify and not fractions:
        raise AnnoconvError("stratify needs a split by ratio (split=...)")
    return fractions


def _assign(
    facts: Survey,
    fractions: Mapping[str, float] | None,
    split_lists: Mapping[str, str | Iterable[str]] | None,
    *,
    stratify: bool,
    seed: int,
) -> dict[str, str] | None:
    """Each surveyed image's split (by ratio, stratified or not, or from lists), or None
    when the run has no split."""
    if fractions:
        if stratify:
            return assign_stratified(facts.labels, fractions, seed)
        return assign_splits(facts.weights, fractions, seed)
    if split_lists:
        return assign_from_lists(facts.weights, read_split_lists(split_lists))
    return None


def _split_destination(writer_class: type[Writer], output: str, split: str) -> str:
    return writer_class.split_destination(output, split) or split_destination(output, split)


@dataclass(frozen=True)
class Job:
    """What `convert()` settled before writing anything (reader, writer, label map, splits,
    keys, operations): small picklable facts from which an engine runs the conversion, whole
    or in parts (see `annoconv.engines`)."""

    source: Source | Reader
    from_format: str | None
    images: str | None
    #: A tar or zip archive the images are streamed from (`images` is None then).
    archive: str | None
    #: The run's storage options (`io.fs.using_storage_options`), for other processes.
    storage_options: Mapping[str, Any]
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
            if self.writer_class.needs_keys and "partition" not in added:
                keys = self.keys(split)
                if keys is not None:
                    options["keys"] = keys
            options.update(added)
            writers[split] = self.writer_class(
                place(destination) if place else destination,
                label_map=self.label_map,
                images=self.images,
                **options,
            )
        if not self.split_names or self.splits is None:
            return writers[""]
        return SplitWriter(writers, self.splits)

    def run(
        self,
        reader: Reader,
        make_writer: Callable[[], Writer],
        keep: Callable[[ReadResult], bool] | None = None,
        *,
        progress: bool | None = None,
        whole: bool = True,
        ambiguous: Mapping[str, AnnotationError] | None = None,
    ) -> Report:
        """Stream the reader (only the items `keep` accepts, before any operation counts
        them) into a writer from `make_writer`: as Arrow batches when reader and writer can
        and no operation needs records (a second writer takes the record path if the data
        needs it after all), else record by record. A part of a run (`whole=False`) leaves
        the run-wide dedup findings to the driver. Records whose image an archive holds
        twice (`ambiguous`, by key) are skipped: see `io.feed.archive_items`."""
        progress = self.progress if progress is None else progress
        steps = [*self.make_filters(), *([self.dedup] if self.dedup is not None else [])]
        writer = make_writer()
        batches = None
        if not steps and keep is None and self.archive is None and writer.takes_batches:
            batches = reader.batches()
        if batches is not None:
            for keys, reason in self._kept():
                batches = only_keys(batches, keys, reason)
            report = run_batches(batches, writer, on_error=self.on_error, progress=progress)
            if report is not None:
                return report
            writer = make_writer()  # the data needed the record path after all
        items: Iterable[ReadResult] = reader if keep is None else filter(keep, reader)
        items = apply_all(steps, items)
        for keys, reason in self._kept():
            items = _only(items, keys, reason)
        if writer.coords == PIXEL and self.archive is None:
            items = fill_sizes(items, self.images)
        source = reader.source if isinstance(self.source, Reader) else self.source
        items, writer = feed_images(
            items,
            writer,
            self.archive or self.images,
            source,
            on_error=self.on_error,
            ambiguous=ambiguous,
        )
        if writer.coords == PIXEL:  # boxes checked against a size read from the image just now
            items = apply_all([step for step in steps if isinstance(step, BoxesOutside)], items)
        try:
            report = run(
                items, writer, on_error=self.on_error, progress=progress, total=reader.count_hint()
            )
        except AmbiguousImages as found:  # the writer is aborted: once more, without them
            again = partial(self.run, progress=progress, whole=whole, ambiguous=found.problems)
            return again(reader, make_writer, keep)
        for step in steps:
            if whole or step is not self.dedup:
                step.finish(report)
        return report

    def _kept(self) -> list[tuple[Collection[str], str]]:
        """The keys the run keeps, each with the reason for leaving out the others."""
        kept: list[tuple[Collection[str], str]] = []
        if self.sample is not None and self.weights is not None:
            kept.append((self.weights, f"not in the sample of {self.sample}"))
        if self.by_lists and self.splits is not None:
            kept.append((self.splits, "not in any split list"))
        return kept


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
            return partial(_image_info, finder, item)
        return None

    for item, future in prefetch(items, job, threads=threads, window=window):
        yield _with_size(item, future)


def _image_info(finder: RecordImages, record: ImageRecord) -> ImageInfo:
    return read_image_info(finder.find(record))


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


def _writer_class(output: str, to_format: str | None) -> type[Writer]:
    name = to_format or infer_format(output, for_writing=True)
    fmt = get_format(name)
    if fmt.writer is None:
        raise FormatError(f"format {name!r} can be read but not written")
    return fmt.writer


def _check_options(factory: Callable[..., object], options: Mapping[str, Any], name: str) -> None:
    """Unknown options of a reader or writer are a usage error that lists the valid ones."""
    accepted = inspect.signature(factory).parameters
    reserved = {"source", "destination", "label_map", "images", "keys"}
    unknown = sorted(set(options) - set(accepted) | ({"keys"} & set(options)))
    if unknown:
        valid = sorted(set(accepted) - reserved)
        raise FormatError(
            f"the {name} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(valid) or 'none'}"
        )


class SplitWriter(Writer):
    """Routes each record to the writer of its split, marking the record with the split."""

    def __init__(self, writers: Mapping[str, Writer], assignment: Mapping[str, str]) -> None:
        first = next(iter(writers.values()))
        super().__init__(first.destination, label_map=first.label_map)
        self.coords = first.coords  # type: ignore[misc]
        self.writers = dict(writers)
        self.assignment = assignment
        self.takes_batches = all(writer.takes_batches for writer in self.writers.values())
        self._router: SplitRouter | None = None

    @property
    def embeds_images(self) -> bool:
        return all(getattr(writer, "embeds_images", False) for writer in self.writers.values())

    def write(self, record: ImageRecord, image_data: bytes | None = None) -> None:
        name = self.assignment.get(record.key)
        if name is None:
            raise AnnotationError(
                record.source, f"image {record.key!r} was not seen when splitting"
            )
        marked = record.model_copy(update={"split": name})
        if image_data is None:
            self.writers[name].write(marked)
        else:
            self.writers[name].write(marked, image_data=image_data)  # type: ignore[call-arg]

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if self._router is None:
            self._router = SplitRouter(self.assignment, list(self.writers))
        for name, part in self._router.parts(batch):
            self.writers[name].write_batch(part)

    def close(self) -> list[OutputFile]:
        outputs = [output for writer in self.writers.values() for output in writer.close()]
        self.warnings = [text for writer in self.writers.values() for text in writer.warnings]
        return outputs

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


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
        record = item.in_space(writer.coords) if writer.coords else item
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
