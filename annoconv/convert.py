"""`convert()`: picks the reader and writer, streams records between them, returns a Report."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from annoconv.errors import AnnoconvError, AnnotationError, FormatError
from annoconv.formats import BadItem, Reader, Source, Writer, get_format, infer_format
from annoconv.io.fs import GLOB_CHARS, exists
from annoconv.labelmap import LabelMap, LabelOrder
from annoconv.report import ErrorHandler, ErrorPolicy, Report
from annoconv.schema import ImageRecord


def open_reader(
    source: Source,
    *,
    from_format: str | None = None,
    images: str | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> Reader:
    """The reader for `source`, its format named or inferred from the path."""
    _check_exists(source)
    name = from_format or infer_format(source)
    fmt = get_format(name)
    if fmt.reader is None:
        raise FormatError(f"format {name!r} can be written but not read")
    return fmt.reader(source, images=images, **dict(read_options or {}))


def _check_exists(source: Source) -> None:
    paths = [source] if isinstance(source, str) else list(source)
    for path in paths:
        if not any(char in path for char in GLOB_CHARS) and not exists(path):
            raise AnnoconvError(f"{path}: no such file or folder")


def read(
    source: Source,
    *,
    from_format: str | None = None,
    images: str | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> Iterator[ImageRecord]:
    """The records of `source`, lazily; raises AnnotationError on the first bad item."""
    reader = open_reader(source, from_format=from_format, images=images, read_options=read_options)
    for item in reader:
        if isinstance(item, BadItem):
            raise item.error
        yield item


def class_counts(reader: Reader) -> Counter[str]:
    """Boxes per class over the readable records, in first-seen order (bad items are ignored
    here; the conversion pass reports them)."""
    counts: Counter[str] = Counter()
    for item in reader:
        if isinstance(item, ImageRecord):
            counts.update(obj.label for obj in item.objects)
    return counts


def resolve_label_map(
    reader: Reader,
    label_map: str | LabelMap | None,
    *,
    needed: bool,
    extend: bool = False,
    order: LabelOrder = "sorted",
) -> LabelMap | None:
    """The one label map a run uses, settled before anything is written.

    A given map must cover every class in the data (or is extended when asked); without one,
    a writer that assigns ids gets a map built from the data.
    """
    if label_map is None and not needed:
        return None
    counts = class_counts(reader)
    if label_map is None:
        return LabelMap.from_classes(counts, order=order)
    given = LabelMap.read(label_map) if isinstance(label_map, str) else label_map
    return given.check_covers(counts, extend=extend)


def convert(
    source: Source,
    output: str,
    *,
    from_format: str | None = None,
    to_format: str | None = None,
    images: str | None = None,
    label_map: str | LabelMap | None = None,
    extend_label_map: bool = False,
    label_map_order: LabelOrder = "sorted",
    on_error: ErrorPolicy = "fail",
    progress: bool = False,
    read_options: Mapping[str, Any] | None = None,
    write_options: Mapping[str, Any] | None = None,
) -> Report:
    """Convert `source` (a file, folder, glob or list of files) into `output`.

    Formats are inferred from the paths unless named. With ``on_error="skip"`` bad items are
    left out and listed in the returned report instead of stopping the run. Outputs appear
    only when the whole run succeeded.
    """
    reader = open_reader(source, from_format=from_format, images=images, read_options=read_options)
    out_name = to_format or infer_format(output, for_writing=True)
    fmt = get_format(out_name)
    if fmt.writer is None:
        raise FormatError(f"format {out_name!r} can be read but not written")
    writer_needs_map = bool(getattr(fmt.writer, "needs_label_map", False))
    resolved = resolve_label_map(
        reader,
        label_map,
        needed=writer_needs_map,
        extend=extend_label_map,
        order=label_map_order,
    )
    writer = fmt.writer(output, label_map=resolved, **dict(write_options or {}))
    return run(reader, writer, on_error=on_error, progress=progress)


def run(
    items: Iterable[ImageRecord | BadItem],
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
    except BaseException:
        writer.abort()
        raise
    report.check_balance()
    return report


def _write_one(
    item: ImageRecord | BadItem, writer: Writer, report: Report, handler: ErrorHandler
) -> None:
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
    except AnnotationError as error:
        handler.handle(error.with_source(item.source or item.key), 1, boxes)
        return
    report.images_written += 1
    report.boxes_written += boxes
    report.classes.update(obj.label for obj in item.objects)


def _progress(
    items: Iterable[ImageRecord | BadItem], enabled: bool, total: int | None
) -> Iterable[ImageRecord | BadItem]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, unit="img", file=sys.stderr, disable=not sys.stderr.isatty())
