"""One preview run: check the outputs, draw the sample, make the pictures, write the page and
the sheet (atomically), return the report."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from annoconv.errors import FormatError, OptionError
from annoconv.io.archives import is_archive
from annoconv.io.fs import using_storage_options, write_atomic
from annoconv.preview.collect import Candidate, open_source, select, show
from annoconv.preview.report import PreviewReport, ShownBox, ShownImage
from annoconv.preview.settings import DEFAULT_SAMPLE, NOTEBOOK_SAMPLE
from annoconv.report import ErrorHandler, ErrorPolicy, OutputFile
from annoconv.schema import NORMALIZED, ImageRecord

_PAGE_SUFFIXES = (".html", ".htm")
_SHEET_SUFFIXES = (".png",)


def run_preview(
    source: Any,
    out: str | None,
    *,
    from_format: str | None,
    images: str | None,
    sample: int | None,
    seed: int,
    classes: Sequence[str] | None,
    split: Sequence[str] | None,
    contact_sheet: str | None,
    on_error: ErrorPolicy,
    storage_options: Mapping[str, Any] | None,
    read_options: Mapping[str, Any] | None,
    image_size: int,
    title: str | None,
    how: str | None = None,
) -> PreviewReport:
    """`annoconv.preview.preview()`; `how` is the command line shown on the page."""
    page, sheet = _outputs(out, contact_sheet)
    size = sample if sample is not None else DEFAULT_SAMPLE if out else NOTEBOOK_SAMPLE
    if size < 1:
        raise OptionError(f"the sample size must be at least 1, got {size}")
    if image_size < 16:
        raise OptionError(f"image_size must be at least 16 pixels, got {image_size}")
    report = PreviewReport(title=title or _title(source), sample=size, seed=seed)
    handler = ErrorHandler(on_error, report)
    archive, folder = (images, None) if images and is_archive(images) else (None, images)
    with using_storage_options(storage_options):
        opened = open_source(
            source,
            from_format=from_format,
            images=folder,
            read_options=read_options,
            classes=classes,
            split=split,
        )
        chosen = select(opened, size, seed, report, handler)
        report.shown = show(
            chosen,
            images=folder,
            archive=archive,
            reader=opened.reader,
            longest=image_size,
            report=report,
            handler=handler,
            on_error=on_error,
        )
        report.check_balance()
        _write(report, page, sheet, how or _call(source, out, sample, seed))
    return report


def _outputs(out: str | None, contact_sheet: str | None) -> tuple[str | None, str | None]:
    """(page path, sheet path) from `out` (by its extension) and `contact_sheet`."""
    page = sheet = None
    if out is not None:
        if _suffix(out) in _PAGE_SUFFIXES:
            page = out
        elif _suffix(out) in _SHEET_SUFFIXES:
            sheet = out
        else:
            raise FormatError(
                f"{out}: a preview is written as .html (a page) or .png (a contact sheet)"
            )
    if contact_sheet is not None:
        if _suffix(contact_sheet) not in _SHEET_SUFFIXES:
            raise FormatError(f"{contact_sheet}: the contact sheet is a .png file")
        if sheet is not None and contact_sheet != sheet:
            raise FormatError(f"{out} is a contact sheet already; give one PNG")
        sheet = contact_sheet
    return page, sheet


def _suffix(path: str) -> str:
    return posixpath.splitext(path.replace("\\", "/").rstrip("/"))[1].lower()


def _title(source: Any) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, (list, tuple)) and all(isinstance(path, str) for path in source):
        return ", ".join(source)
    return "records"


def _call(source: Any, out: str | None, sample: int | None, seed: int) -> str:
    shown = _title(source) if isinstance(source, (str, list, tuple)) else "records"
    arguments = [repr(shown)] + ([repr(out)] if out else [])
    if sample is not None:
        arguments.append(f"sample={sample}")
    if seed:
        arguments.append(f"seed={seed}")
    return f"annoconv.preview({', '.join(arguments)})"


def _write(report: PreviewReport, page: str | None, sheet: str | None, how: str) -> None:
    """Write the outputs (each atomically) and list them in the report."""
    if sheet is not None:
        from annoconv.preview.sheet import draw_sheet

        data, report.tiles = draw_sheet(report)
        size = write_atomic(sheet, data)
        report.outputs.append(OutputFile(sheet, size, "contact_sheet"))
    if page is not None:
        from annoconv.preview.page import page_html

        size = write_atomic(page, page_html(report, how).encode("utf-8"))
        report.outputs.append(OutputFile(page, size, "preview_page"))
    report.warnings.extend(note for image in report.shown for note in image.notes)


def single_record_report(record: ImageRecord) -> PreviewReport:
    """A report showing `record` alone: on its image when it can be found and decoded, else
    its boxes on a blank frame with the reason (for `ImageRecord._repr_html_`)."""
    report = PreviewReport(title=record.key, sample=1)
    handler = ErrorHandler("skip", report)
    candidate = Candidate(0, record)
    report.images_read, report.boxes_read = 1, len(record.objects)
    report.selected_images = 1
    report.selected_classes.update(obj.label for obj in record.objects)
    report.shown = show(
        [candidate],
        images=None,
        archive=None,
        reader=None,
        longest=512,
        report=report,
        handler=handler,
        on_error="skip",
    )
    if not report.shown:
        reason = report.skipped[0].reason if report.skipped else "image not found"
        report.shown = [_blank(record, reason)]
    return report


def _blank(record: ImageRecord, reason: str) -> ShownImage:
    """The record's boxes on a frame of its size (or of the boxes' extent), no pixels."""
    if record.has_size:
        width, height = record.require_size()
    elif record.coords == NORMALIZED:
        width = height = 512
    else:
        width = max(1, round(max((obj.xmax for obj in record.objects), default=1)))
        height = max(1, round(max((obj.ymax for obj in record.objects), default=1)))
    sx, sy = (float(width), float(height)) if record.coords == NORMALIZED else (1.0, 1.0)
    boxes = tuple(
        ShownBox(obj.label, obj.xmin * sx, obj.ymin * sy, obj.xmax * sx, obj.ymax * sy)
        for obj in record.objects
    )
    return ShownImage(
        key=record.key,
        filename=record.filename,
        width=width,
        height=height,
        boxes=boxes,
        picture=None,
        picture_format="png",
        notes=(f"no pixels: {reason}",),
        split=record.split,
    )
