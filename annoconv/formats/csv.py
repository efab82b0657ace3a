"""The CSV every tutorial uses: ``filename,width,height,class,xmin,ymin,xmax,ymax``, a row a box.

Coordinates are pixels. Extra columns (`EXTRA_COLUMNS`) may follow the base ones, chosen with
``CsvWriter(columns=...)``; the reader takes any subset of them, in any order.

An image without objects (a negative example) is one row with its filename, width and height
(and any image-level extra columns) and an **empty** class and empty coordinates::

    filename,width,height,class,xmin,ymin,xmax,ymax
    empty.jpg,640,480,,,,,

Written files are UTF-8 without a BOM, with ``\\n`` line endings and minimal quoting: a value
is quoted only when it holds a comma, a double quote, ``\\n`` or ``\\r`` (with ``\\n`` line
endings Python's ``csv.QUOTE_MINIMAL`` leaves a ``\\r`` unquoted, which no reader gets back, so
we quote ourselves). Numbers are written losslessly: integral values as integers (``829``),
others as Python's shortest round-tripping repr (``45.70000076293945``, ``1e+16``); the
``*_norm`` columns are value / width (or height), formatted the same way. Image labels,
`sha256` and `image_uri` have no column and are not written.

Reading accepts a UTF-8 BOM, CRLF line endings, columns in any order (unknown columns are
ignored) and groups rows into images by `key` when that column exists, else by `filename`, in
first-seen order. A width, height or depth that is empty or ``0`` (what labelImg writes when it
does not know the size) is read as unknown. A file with only normalized coordinates
(``xmin_norm``... and no ``xmin``...) is read in normalized space; when both are present the
pixel columns win.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from annoconv.errors import AnnotationError, BoxOutsideError
from annoconv.formats.base import (
    BadItem,
    Format,
    PerFileReader,
    ReadResult,
    SingleFileWriter,
)
from annoconv.io.fs import decode_line, open_input
from annoconv.schema import (
    BOX_FIELDS,
    FLAG_FIELDS,
    NORMALIZED,
    PIXEL,
    UNKNOWN,
    CoordSpace,
    Flag,
    ImageRecord,
    ObjectAnnotation,
    format_number,
    make_object,
    make_record,
)

if TYPE_CHECKING:
    from annoconv.labelmap import LabelMap

__all__ = [
    "BASE_COLUMNS",
    "EXTRA_COLUMNS",
    "FORMAT",
    "CsvReader",
    "CsvWriter",
]

BASE_COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")
NORM_COLUMNS = ("xmin_norm", "ymin_norm", "xmax_norm", "ymax_norm")
IMAGE_COLUMNS = ("depth", "split", "key", "path", "verified")
EXTRA_COLUMNS = (*FLAG_FIELDS, "pose", "confidence", *IMAGE_COLUMNS, *NORM_COLUMNS)
KNOWN_COLUMNS = frozenset(BASE_COLUMNS + EXTRA_COLUMNS)
EXTENSIONS = (".csv",)

_NEEDS_QUOTES = re.compile(r'[",\r\n]')
# Tools that write numbers through a float column (pandas with a gap in it) write "640.0".
_TRAILING_ZEROS = re.compile(r"\.0*$")
_FLAGS: dict[str, Flag] = {"-1": UNKNOWN, "0": 0, "1": 1}


# --- writing ----------------------------------------------------------------------------------


class CsvWriter(SingleFileWriter):
    """Writes records as rows, streaming them into a file published atomically on close()."""

    coords = PIXEL
    kind = "csv"

    def __init__(
        self,
        destination: str,
        *,
        label_map: LabelMap | None = None,
        images: str | None = None,
        columns: Sequence[str] = (),
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        self.columns = _check_columns(columns)

    def write(self, record: ImageRecord) -> None:
        width, height = record.require_size("writing the CSV width/height columns")
        # The caller converts to pixels; a record handed over directly is converted here.
        record = record.in_space(PIXEL)
        objects: list[ObjectAnnotation | None] = [*record.objects] or [None]
        rows = [self._row(record, obj, width, height) for obj in objects]
        # Pydantic has refused lone surrogates, so encoding cannot fail half way through.
        self.output().write("".join(_line(row) for row in rows).encode("utf-8"))

    def header(self) -> bytes:
        return _line([*BASE_COLUMNS, *self.columns]).encode("utf-8")

    def _row(
        self, record: ImageRecord, obj: ObjectAnnotation | None, width: int, height: int
    ) -> list[str]:
        row = [record.filename, str(width), str(height)]
        if obj is None:
            row += ["", "", "", "", ""]
        else:
            row += [obj.label, *(format_number(getattr(obj, name)) for name in BOX_FIELDS)]
        for name in self.columns:
            if name in IMAGE_COLUMNS:
                row.append(_image_cell(record, name))
            else:
                row.append("" if obj is None else _object_cell(obj, name, width, height))
        return row


def _check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    if isinstance(columns, str):
        raise ValueError(f"columns must be a sequence of column names, not the string {columns!r}")
    unknown = [name for name in columns if name not in EXTRA_COLUMNS]
    if unknown:
        raise ValueError(
            f"unknown CSV column(s) {', '.join(map(repr, unknown))}; "
            f"valid extra columns: {', '.join(EXTRA_COLUMNS)}"
        )
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if repeated:
        raise ValueError(f"CSV column(s) given more than once: {', '.join(repeated)}")
    return tuple(columns)


def _image_cell(record: ImageRecord, name: str) -> str:
    if name == "verified":
        return "" if record.verified is None else str(int(record.verified))
    value = getattr(record, name)
    return "" if value is None else str(value)


def _object_cell(obj: ObjectAnnotation, name: str, width: int, height: int) -> str:
    if name in FLAG_FIELDS:
        return str(getattr(obj, name))
    if name == "pose":
        return obj.pose or ""
    if name == "confidence":
        return "" if obj.confidence is None else format_number(obj.confidence)
    coordinate = name.removesuffix("_norm")
    extent = width if coordinate.startswith("x") else height
    return format_number(getattr(obj, coordinate) / extent)


def _line(cells: Sequence[str]) -> str:
    return ",".join(_quote(cell) for cell in cells) + "\n"


def _quote(cell: str) -> str:
    if _NEEDS_QUOTES.search(cell):
        return '"' + cell.replace('"', '""') + '"'
    return cell


# --- reading ----------------------------------------------------------------------------------


class CsvReader(PerFileReader):
    """Reads one or more CSV files (a path or URL, a glob, or a list) into one record per image."""

    extensions = EXTENSIONS

    def read_file(self, uri: str) -> Iterator[ReadResult]:
        return _read_file(uri)


class _CellError(Exception):
    """A bad value in a row; becomes an AnnotationError naming the file and the line."""


@dataclass(frozen=True)
class _Layout:
    """Where each known column sits in the rows of one file, and what the rows mean."""

    index: dict[str, int]
    fields: int
    space: CoordSpace
    box_columns: tuple[str, ...]
    group_column: str


@dataclass
class _Image:
    """The rows of one image, as (line number, cells), and how many of them are boxes."""

    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    boxes: int = 0


@dataclass
class _Grouped:
    """A file's rows by image, and why reading stopped early, if it did."""

    images: dict[str, _Image]
    failure: AnnotationError | None = None


def _read_file(uri: str) -> Iterator[ReadResult]:
    with open_input(uri) as handle:
        rows = _numbered_rows(uri, handle)
        try:
            layout = _layout(uri, *_header(uri, rows))
        except AnnotationError as error:
            yield BadItem(error, images=0)
            return
        grouped = _group(rows, layout)
    if grouped.failure is not None:
        # The file could not be read to its end, so no image in it is known to be complete.
        images = grouped.images.values()
        boxes = sum(image.boxes for image in images)
        yield BadItem(grouped.failure, images=len(images), boxes=boxes)
        return
    for key, image in grouped.images.items():
        try:
            yield _record(uri, layout, key, image.rows)
        except AnnotationError as error:
            yield BadItem(error, images=1, boxes=image.boxes)


def _numbered_rows(uri: str, handle: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows, each with the line it starts on."""
    reader = csv.reader(_text_lines(uri, handle), strict=True)
    end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise AnnotationError(uri, f"malformed CSV: {exc}", f"line {end + 1}") from None
        line, end = end + 1, reader.line_num
        if not _blank(row):
            yield line, row


def _text_lines(uri: str, handle: IO[bytes]) -> Iterator[str]:
    """The file's lines decoded one by one, so a decoding error names its line exactly."""
    for number, raw in enumerate(handle, start=1):
        text = decode_line(uri, raw, number)
        yield text.removeprefix("\ufeff") if number == 1 else text


def _blank(row: list[str]) -> bool:
    return all(not cell.strip() for cell in row)


def _header(uri: str, rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    for line, row in rows:
        return line, row
    raise AnnotationError(uri, f"empty file: expected a header row ({','.join(BASE_COLUMNS)})")


def _layout(uri: str, line: int, header: list[str]) -> _Layout:
    where = f"line {line}"
    names = [name.strip() for name in header]
    counts = Counter(names)
    repeated = sorted(name for name in KNOWN_COLUMNS if counts[name] > 1)
    if repeated:
        raise AnnotationError(uri, f"column(s) given more than once: {', '.join(repeated)}", where)
    index = {name: position for position, name in enumerate(names) if name in KNOWN_COLUMNS}
    normalized = not any(name in index for name in BOX_FIELDS) and all(
        name in index for name in NORM_COLUMNS
    )
    missing = [
        name
        for name in BASE_COLUMNS
        if name not in index and not (normalized and name in BOX_FIELDS)
    ]
    if missing:
        raise AnnotationError(
            uri,
            f"missing column(s) {', '.join(missing)}; the header has: {', '.join(names)}",
            where,
        )
    return _Layout(
        index=index,
        fields=len(header),
        space=NORMALIZED if normalized else PIXEL,
        box_columns=NORM_COLUMNS if normalized else BOX_FIELDS,
        group_column="key" if "key" in index else "filename",
    )


def _group(rows: Iterator[tuple[int, list[str]]], layout: _Layout) -> _Grouped:
    grouped = _Grouped({})
    group_at = layout.index[layout.group_column]
    box_at = [layout.index[name] for name in ("class", *layout.box_columns)]
    try:
        for line, row in rows:
            key = row[group_at] if group_at < len(row) else ""
            image = grouped.images.setdefault(key, _Image())
            image.rows.append((line, row))
            if any(position < len(row) and row[position] for position in box_at):
                image.boxes += 1  # not the row marking an image without objects
    except AnnotationError as error:
        grouped.failure = error
    return grouped


@dataclass
class _Parsed:
    """The rows of one image, parsed: image-level fields, boxes and the line of each box."""

    fields: dict[str, Any]
    objects: list[ObjectAnnotation]
    box_lines: list[int]


def _record(uri: str, layout: _Layout, key: str, rows: list[tuple[int, list[str]]]) -> ImageRecord:
    parsed = _parse_rows(uri, layout, rows)
    try:
        return make_record(
            uri,
            f"line {rows[0][0]}",
            key=key,
            coords=layout.space,
            **parsed.fields,
            objects=parsed.objects,
        )
    except AnnotationError as error:
        culprit = _culprit_line(uri, key, layout.space, parsed)
        if isinstance(error, BoxOutsideError):
            raise error.relocated(culprit or error.where) from None
        raise AnnotationError(uri, error.message, culprit or error.where) from None


def _parse_rows(uri: str, layout: _Layout, rows: list[tuple[int, list[str]]]) -> _Parsed:
    first_line = rows[0][0]
    image_fields: dict[str, tuple[str, Any]] = {}
    parsed = _Parsed({}, [], [])
    for line, row in rows:
        where = f"line {line}"
        if len(row) != layout.fields:
            raise AnnotationError(
                uri, f"expected {layout.fields} fields as in the header, got {len(row)}", where
            )
        cells = {name: row[position] for name, position in layout.index.items()}
        try:
            _merge_image_fields(image_fields, _image_fields(cells), first_line)
            obj = _object(uri, where, cells, layout.box_columns)
        except _CellError as exc:
            raise AnnotationError(uri, str(exc), where) from None
        if obj is not None:
            parsed.objects.append(obj)
            parsed.box_lines.append(line)
    parsed.fields = {name: value for name, (_, value) in image_fields.items() if name != "key"}
    return parsed


def _image_fields(cells: dict[str, str]) -> dict[str, tuple[str, Any]]:
    """Each image-level column present: (the cell as written, its value)."""
    fields: dict[str, tuple[str, Any]] = {}
    for name in ("filename", "width", "height", *IMAGE_COLUMNS):
        if name not in cells:
            continue
        cell = cells[name]
        if name in ("filename", "key") and not cell:
            raise _CellError(f"{name}: empty")
        if name in ("width", "height", "depth"):
            fields[name] = (cell, _size(cell, name))
        elif name == "verified":
            fields[name] = (cell, _verified(cell))
        else:
            fields[name] = (cell, cell or None)
    return fields


def _merge_image_fields(
    image: dict[str, tuple[str, Any]], row: dict[str, tuple[str, Any]], first_line: int
) -> None:
    if not image:
        image.update(row)
        return
    for name, (cell, value) in row.items():
        seen_cell, seen_value = image[name]
        if value != seen_value:
            raise _CellError(
                f"{name}: {cell!r} differs from {seen_cell!r} on line {first_line} "
                "(all rows of one image must agree)"
            )


def _object(
    uri: str, where: str, cells: dict[str, str], box_columns: tuple[str, ...]
) -> ObjectAnnotation | None:
    """The row's box, or None for the row marking an image without objects."""
    label = cells["class"]
    if not label:
        if any(cells[name] for name in box_columns):
            raise _CellError(
                "class: empty on a row with coordinates "
                "(only a row with neither marks an image without objects)"
            )
        return None
    box = {
        name: _number(cells[column], column)
        for name, column in zip(BOX_FIELDS, box_columns, strict=True)
    }
    flags = {name: _flag(cells[name], name) for name in FLAG_FIELDS if name in cells}
    confidence = cells.get("confidence", "")
    return make_object(
        uri,
        where,
        label=label,
        **box,
        **flags,
        pose=cells.get("pose") or None,
        confidence=_number(confidence, "confidence") if confidence else None,
    )


def _culprit_line(uri: str, key: str, space: CoordSpace, parsed: _Parsed) -> str | None:
    """The line of the first box the image rejects (e.g. one outside it), found by trying each."""
    for obj, line in zip(parsed.objects, parsed.box_lines, strict=True):
        try:
            make_record(uri, key=key, coords=space, **parsed.fields, objects=[obj])
        except AnnotationError:
            return f"line {line}"
    return None


def _number(cell: str, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        value = None
    # float() also takes "1_000", which no CSV writer means.
    if value is None or "_" in cell:
        raise _CellError(f"{column}: expected a number, got {cell!r}")
    return value


def _size(cell: str, column: str) -> int | None:
    if not cell.strip():
        return None
    text = _TRAILING_ZEROS.sub("", cell.strip())
    if not (text.isascii() and text.isdigit()):
        raise _CellError(f"{column}: expected a whole number, got {cell!r}")
    return int(text) or None


def _flag(cell: str, column: str) -> Flag:
    if not cell.strip():
        return UNKNOWN
    value = _FLAGS.get(_TRAILING_ZEROS.sub("", cell.strip()))
    if value is None:
        raise _CellError(f"{column}: expected -1, 0 or 1, got {cell!r}")
    return value


def _verified(cell: str) -> bool | None:
    text = cell.strip().lower()
    if not text:
        return None
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise _CellError(f"verified: expected 1 or 0, got {cell!r}")


FORMAT = Format(
    "csv",
    "CSV with filename,width,height,class,xmin,ymin,xmax,ymax (one row per box)",
    EXTENSIONS,
    reader=CsvReader,
    writer=CsvWriter,
)
