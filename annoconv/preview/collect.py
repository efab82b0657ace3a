"""Which images a preview shows, and their pictures.

Two steps, both with bounded memory:

1. `select()` streams the source once and draws a seeded sample of whole images
   (`ops.sample_keys`: the same images `convert(..., sample=N, seed=S)` keeps after the same
   class selection), holding only the sampled records (and, for a TFRecord, their encoded
   bytes). Readers with a columnar path are sampled from their Arrow batches, with the same
   ranks: only rows that enter the sample become records. No image file is opened here.
2. `show()` makes a picture of each sampled image only: the bytes training reads (see
   `annoconv.preview.pixels`), decoded and downscaled on a small thread pool, with the boxes
   placed as the TFRecord writer places them (`tfrecord.normalized_boxes`).

Everything read is counted in the report: shown, left out by the selection or the sample, or
skipped (with its reason) when its image cannot be had.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from annoconv.columnar import box_count, class_counts_of, row_records
from annoconv.errors import AnnoconvError, AnnotationError
from annoconv.filters import ClassSelection, Transform, apply_all
from annoconv.formats import (
    BadItem,
    BatchesUnavailable,
    Dropped,
    Reader,
    ReadResult,
    get_format,
)
from annoconv.io.feed import AmbiguousImages, ArchiveChoices, ImageFeed, archive_items
from annoconv.io.images import RecordImages
from annoconv.io.pool import prefetch
from annoconv.ops import sample_keys
from annoconv.preview.pixels import TF_FORMATS, Picture, picture_of
from annoconv.preview.report import PreviewReport, ShownBox, ShownImage
from annoconv.report import ErrorHandler, ErrorPolicy
from annoconv.schema import NORMALIZED, ImageRecord

if TYPE_CHECKING:
    import pyarrow as pa

#: Records, or anything else that iterates into records (a generator, a list).
Records = Iterable[ReadResult]


@dataclass(frozen=True)
class Candidate:
    """A sampled image: its place in reading order, its record, and its bytes when the source
    holds them (`trained`: the bytes a TFRecord feeds training, else an image file's bytes)."""

    ordinal: int
    record: ImageRecord
    data: bytes | None = None
    trained: bool = False


@dataclass
class Opened:
    """A source opened for a preview: its items, each with the image bytes it carries."""

    items: Iterable[tuple[ReadResult, bytes | None]]
    trained: bool  # the bytes are a TFRecord's image/encoded
    reader: Reader | None
    transforms: list[Transform]


def open_source(
    source: Any,
    *,
    from_format: str | None,
    images: str | None,
    read_options: Mapping[str, Any] | None,
    classes: Sequence[str] | None,
    split: Sequence[str] | None,
) -> Opened:
    """The items of `source` (a path, a list of paths, a Reader, or records) with the class
    and split selections to apply to them."""
    from annoconv.formats.tfrecord import TFRecordReader
    from annoconv.sources import open_reader, selects_classes, source_format

    options = dict(read_options or {})
    transforms: list[Transform] = []
    reader: Reader | None = None
    if isinstance(source, Reader):
        reader = source
    elif isinstance(source, str) or _is_path_list(source):
        name = source_format(source, from_format)
        selects = classes is not None and selects_classes(get_format(name))
        if selects:  # faster than a filter: Open Images selects while reading its CSV
            options.update(classes=list(classes or ()), keep_empty=False)
            classes = None
        reader = open_reader(source, from_format=name, images=images, read_options=options)
    if classes is not None:
        transforms.append(ClassSelection(frozenset(classes)))
    if split is not None:
        transforms.append(SplitSelection(split))
    if isinstance(reader, TFRecordReader):
        return Opened(reader.with_images(), True, reader, transforms)
    items: Records = reader if reader is not None else _records(source)
    return Opened(((item, None) for item in items), False, reader, transforms)


def _is_path_list(source: Any) -> bool:
    return (
        isinstance(source, (list, tuple))
        and bool(source)
        and all(isinstance(path, str) for path in source)
    )


def _records(source: Any) -> Iterator[ReadResult]:
    if isinstance(source, ImageRecord):
        yield source
        return
    try:
        items = iter(source)
    except TypeError:
        raise TypeError(
            "preview() takes a path, a list of paths, a Reader or ImageRecords, "
            f"not {type(source).__name__}"
        ) from None
    for item in items:
        if not isinstance(item, (ImageRecord, BadItem, Dropped)):
            raise TypeError(f"preview() got a {type(item).__name__} among the records")
        yield item


class SplitSelection(Transform):
    """Keeps the images of the named splits (a record's `split`: a Parquet column or
    partition, an Open Images file's split); the others are left out. Remembers the splits
    it saw, for the message when none matched."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)
        self.seen: set[str | None] = set()

    def apply(self, items: Iterable[ReadResult]) -> Iterator[ReadResult]:
        reason = f"not in split {', '.join(sorted(self.names))}"
        for item in items:
            if isinstance(item, ImageRecord):
                self.seen.add(item.split)
                if item.split not in self.names:
                    yield Dropped(reason, images=1, boxes=len(item.objects))
                    continue
            yield item

    def check(self) -> None:
        """Raise when no image was in the wanted splits but the source has other ones."""
        if self.seen & self.names or not self.seen:
            return
        known = sorted(name for name in self.seen if name is not None)
        have = f"its splits are {', '.join(known)}" if known else "its records have no split"
        raise AnnoconvError(
            f"no image is in split {', '.join(sorted(self.names))}: {have}"
            + ("" if known else " (preview the split's own output instead, e.g. out-train.record)")
        )


# --- step 1: the sample --------------------------------------------------------------------


def select(
    opened: Opened, size: int, seed: int, report: PreviewReport, handler: ErrorHandler
) -> list[Candidate]:
    """The sampled images in reading order; every item read is counted in `report`. Readers
    with a columnar path are sampled from their Arrow batches: only the rows that enter the
    sample become records."""
    chosen = _select_batches(opened, size, seed, report, handler.policy)
    if chosen is None:
        chosen = sample_keys(
            _candidates(opened, report, handler), size, seed, key=lambda c: c.record.key
        )
    for transform in opened.transforms:
        if isinstance(transform, SplitSelection):
            transform.check()
    left_images = report.selected_images - len(chosen)
    if left_images:
        left_boxes = sum(report.selected_classes.values()) - sum(
            len(candidate.record.objects) for candidate in chosen
        )
        report.drop(f"not in the sample of {size} (seed {seed})", left_images, left_boxes)
    return sorted(chosen, key=lambda candidate: candidate.ordinal)


def _candidates(
    opened: Opened, report: PreviewReport, handler: ErrorHandler
) -> Iterator[Candidate]:
    """Every selected record as a candidate (with the bytes its source carries)."""
    feed = ImageFeed()

    def offered() -> Iterator[ReadResult]:
        for item, data in opened.items:
            if data is not None and isinstance(item, ImageRecord):
                feed.offer(item.key, data)
            yield item

    for ordinal, item in enumerate(apply_all(opened.transforms, offered())):
        if isinstance(item, ImageRecord):
            _count_read(report, 1, len(item.objects))
            report.selected_images += 1
            report.selected_classes.update(obj.label for obj in item.objects)
            yield Candidate(ordinal, item, feed.take(item.key), opened.trained)
        else:
            _count_other(item, report, handler)


def _count_other(item: BadItem | Dropped, report: PreviewReport, handler: ErrorHandler) -> None:
    _count_read(report, item.images, item.boxes)
    if isinstance(item, Dropped):
        report.drop(item.reason, item.images, item.boxes)
    else:
        handler.handle(item.error, item.images, item.boxes)


def _select_batches(
    opened: Opened, size: int, seed: int, report: PreviewReport, policy: ErrorPolicy
) -> list[Candidate] | None:
    """`sample_keys` over a reader's record batches (the same ranks, so the same sample),
    None when the reader has no columnar path or gives it up (`BatchesUnavailable`: the
    record path then reads the source from the start) or a selection needs records."""
    reader = opened.reader
    batches = reader.batches() if reader is not None and not opened.transforms else None
    if batches is None or opened.trained:
        return None
    part = PreviewReport()
    handler = ErrorHandler(policy, part)
    prefix = f"{seed}\x00".encode()
    # The `size` smallest ranks, as a heap of the largest first; on equal ranks the first
    # read stays (as in heapq.nsmallest).
    heap: list[tuple[int, int, Candidate]] = []
    ordinal = 0
    try:
        for item in batches:
            if isinstance(item, (BadItem, Dropped)):
                _count_other(item, part, handler)
                ordinal += 1
                continue
            _count_read(part, item.num_rows, box_count(item))
            part.selected_images += item.num_rows
            part.selected_classes.update(class_counts_of(item))
            for index, key in enumerate(item.column("key").to_pylist()):
                rank = int.from_bytes(hashlib.sha256(prefix + key.encode()).digest(), "big")
                if len(heap) < size or -rank > heap[0][0]:
                    candidate = _row_candidate(item, index, ordinal)
                    entry = (-rank, -ordinal, candidate)
                    if len(heap) < size:
                        heapq.heappush(heap, entry)
                    else:
                        heapq.heapreplace(heap, entry)
                ordinal += 1
    except BatchesUnavailable:
        return None
    report.merge(part)
    report.selected_images += part.selected_images
    report.selected_classes.update(part.selected_classes)
    return [candidate for _rank, _ordinal, candidate in heap]


def _row_candidate(batch: pa.RecordBatch, index: int, ordinal: int) -> Candidate:
    """Row `index` of a checked batch (the model accepts it) as a record."""
    _row, record = next(row_records(batch.slice(index, 1), lambda _row: f"row {index}"))
    if not isinstance(record, ImageRecord):  # checked batches hold only valid rows
        raise record.error
    return Candidate(ordinal, record)


def _count_read(report: PreviewReport, images: int, boxes: int) -> None:
    report.images_read += images
    report.boxes_read += boxes


# --- step 2: the pictures --------------------------------------------------------------------


def show(
    chosen: list[Candidate],
    *,
    images: str | None,
    archive: str | None,
    reader: Reader | None,
    longest: int,
    report: PreviewReport,
    handler: ErrorHandler,
    on_error: ErrorPolicy,
    threads: int | None = None,
) -> list[ShownImage]:
    """The pictures of the sampled images, in reading order; images that cannot be had are
    handled by the error policy (and counted as skipped)."""
    if reader is not None:
        chosen = _with_parquet_images(chosen, reader)
    items: Iterable[Candidate | BadItem] = chosen
    if archive is not None:
        items = _from_archive(chosen, archive, on_error)
    finder = RecordImages(images)
    workers = threads or min(4, os.cpu_count() or 1)

    def job(item: Candidate | BadItem) -> Callable[[], ShownImage] | None:
        return partial(_shown, item, finder, longest) if isinstance(item, Candidate) else None

    shown: list[tuple[int, ShownImage]] = []
    for item, future in prefetch(items, job, threads=workers, window=2 * workers):
        if isinstance(item, BadItem):
            handler.handle(item.error, item.images, item.boxes)
            continue
        assert future is not None
        record = item.record
        try:
            image = future.result()
        except AnnotationError as error:
            handler.handle(error.with_source(record.source or record.key), 1, len(record.objects))
            continue
        shown.append((item.ordinal, image))
        report.images_written += 1
        report.boxes_written += len(image.boxes)
        report.classes.update(box.label for box in image.boxes)
    return [image for _ordinal, image in sorted(shown, key=lambda pair: pair[0])]


def _from_archive(
    chosen: list[Candidate], archive: str, on_error: ErrorPolicy
) -> Iterator[Candidate | BadItem]:
    """The candidates in archive order, each with its image's bytes taken from the archive
    as it streams by (once), then a BadItem for each whose image the archive lacks."""
    yield from (candidate for candidate in chosen if candidate.data is not None)
    wanted = [candidate for candidate in chosen if candidate.data is None]
    if not wanted:
        return
    choices: ArchiveChoices | None = None
    while True:
        try:
            found = _archive_pass(wanted, archive, on_error, choices)
        except AmbiguousImages as error:  # once more, as the first pass settled (see io.feed)
            choices = error.choices
            continue
        yield from found
        return


def _archive_pass(
    wanted: list[Candidate],
    archive: str,
    on_error: ErrorPolicy,
    choices: ArchiveChoices | None,
) -> list[Candidate | BadItem]:
    by_key = {candidate.record.key: candidate for candidate in wanted}
    records = [candidate.record for candidate in wanted]
    feed = ImageFeed()
    found: list[Candidate | BadItem] = []
    for item in archive_items(
        records, archive, feed, embed=True, on_error=on_error, choices=choices
    ):
        if isinstance(item, ImageRecord):
            data = feed.take(item.key)
            ordinal = by_key[item.key].ordinal
            found.append(Candidate(ordinal, item, data) if data is not None else by_key[item.key])
        elif isinstance(item, BadItem):
            found.append(item)
    return found


def _with_parquet_images(chosen: list[Candidate], reader: Reader) -> list[Candidate]:
    """Candidates of a Parquet source whose files embed the images (an `image` column of
    {bytes, path}) with those bytes, read for the sampled keys only."""
    from annoconv.formats.parquet import ParquetReader

    if not isinstance(reader, ParquetReader) or not chosen:
        return chosen
    from annoconv.preview.parquet import embedded_images

    found = embedded_images(reader, {candidate.record.key for candidate in chosen})
    result = []
    for candidate in chosen:
        record = candidate.record
        if record.key in found:
            name, data = found[record.key]
            record = record.model_copy(update={"image_uri": name})
            candidate = Candidate(candidate.ordinal, record, data)
        result.append(candidate)
    return result


def _shown(candidate: Candidate, finder: RecordImages, longest: int) -> ShownImage:
    """The picture and boxes of one sampled image; AnnotationError when it cannot be had."""
    record = candidate.record
    source = record.source or record.key
    if candidate.trained and candidate.data is not None:
        return _shown_trained(record, candidate.data, longest)
    if candidate.trained:
        raise AnnotationError(source, "the Example has no image/encoded bytes")
    from annoconv.formats.tfrecord import normalized_boxes
    from annoconv.io.embed import embed_image

    # The bytes the TFRecord writer would embed, with its EXIF and size decisions; a size
    # that disagrees with the annotation is shown (with a note) rather than failing.
    uri = record.image_uri if candidate.data is not None and record.image_uri else None
    uri = uri or finder.find(record)
    embedded = embed_image(
        uri,
        annotated_size=(record.width, record.height) if record.has_size else None,  # type: ignore[arg-type]
        size_policy="warn",
        source=source,
        data=candidate.data,
    )
    xmins, ymins, xmaxs, ymaxs = normalized_boxes(record, embedded)
    picture = _picture(embedded.data, longest, source, uri)
    width, height = embedded.width, embedded.height
    boxes = tuple(
        ShownBox(obj.label, x0 * width, y0 * height, x1 * width, y1 * height)
        for obj, x0, y0, x1, y1 in zip(record.objects, xmins, ymins, xmaxs, ymaxs, strict=True)
    )
    notes = (embedded.note,) if embedded.note else ()
    return _image(record, picture, width, height, boxes, notes, uri)


def _shown_trained(record: ImageRecord, data: bytes, longest: int) -> ShownImage:
    """A TFRecord's image as training decodes it, with its normalized boxes on it."""
    source = record.source or record.key
    picture = _picture(data, longest, source, None)
    width, height = picture.width, picture.height
    notes = []
    if picture.decoder_format not in TF_FORMATS:
        held = picture.decoder_format
        notes.append(f"image/encoded holds {held}, which TensorFlow cannot decode")
    if record.has_size and (record.width, record.height) != (width, height):
        notes.append(
            f"image/width,height say {record.width}x{record.height} but the image decodes "
            f"to {width}x{height} (the boxes, normalized, are placed on the decoded image)"
        )
    if record.coords == NORMALIZED:
        sx, sy = float(width), float(height)
    elif record.has_size:
        sx, sy = width / record.width, height / record.height  # type: ignore[operator]
    else:
        sx = sy = 1.0
    boxes = tuple(
        ShownBox(obj.label, obj.xmin * sx, obj.ymin * sy, obj.xmax * sx, obj.ymax * sy)
        for obj in record.objects
    )
    return _image(record, picture, width, height, boxes, tuple(notes), f"{source} (image/encoded)")


def _picture(data: bytes, longest: int, source: str, uri: str | None) -> Picture:
    try:
        return picture_of(data, longest)
    # Pillow raises many kinds of exceptions on damaged bytes; each means "cannot be decoded".
    except Exception as exc:
        what = f"image {uri}" if uri and uri != source else "image"
        raise AnnotationError(source, f"{what} cannot be decoded: {exc}") from None


def _image(
    record: ImageRecord,
    picture: Picture,
    width: int,
    height: int,
    boxes: tuple[ShownBox, ...],
    notes: tuple[str, ...],
    origin: str | None,
) -> ShownImage:
    return ShownImage(
        key=record.key,
        filename=record.filename,
        width=width,
        height=height,
        boxes=boxes,
        picture=picture.data,
        picture_format=picture.format,
        notes=notes,
        origin=origin,
        split=record.split,
    )
