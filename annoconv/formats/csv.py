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

Both directions have a columnar path (`CsvReader.batches`, `CsvWriter.write_batch`) giving
the same records, bytes and errors without a Python object per row: cells are parsed and
checked by pyarrow, and only the images a check flags are read the record way.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from pydantic import Field, field_validator

from annoconv.errors import AnnotationError
from annoconv.formats.base import (
    BadItem,
    BatchesUnavailable,
    BatchResult,
    Capabilities,
    Format,
    PerFileReader,
    Reader,
    ReadResult,
    SingleFileWriter,
    Source,
)
from annoconv.io.fs import (
    decode_line,
    exists,
    expand_source,
    head_lines,
    join,
    open_input,
    read_bytes,
)
from annoconv.io.ranges import RowsBefore, comma_key, cut_ranges, open_range, read_range
from annoconv.options import FormatOptions
from annoconv.schema import (
    BOX_FIELDS,
    FLAG_FIELDS,
    MAX_NUMBER_DIGITS,
    NORMALIZED,
    PIXEL,
    UNKNOWN,
    BoxOutsideError,
    CoordSpace,
    Flag,
    ImageRecord,
    ObjectAnnotation,
    format_number,
    make_object,
    make_record,
)

if TYPE_CHECKING:
    import pyarrow as pa

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
_WHOLE = re.compile(r"[0-9]+(?:\.0*)?")
#: The file name of each split's annotations in Roboflow's "Tensorflow Object Detection CSV".
ROBOFLOW_NAME = "_annotations.csv"
ROBOFLOW_SPLITS = ("train", "valid", "test")

_NEEDS_QUOTES = re.compile(r'[",\r\n]')
# Tools that write numbers through a float column (pandas with a gap in it) write "640.0".
_TRAILING_ZEROS = re.compile(r"\.0*$")
_FLAGS: dict[str, Flag] = {"-1": UNKNOWN, "0": 0, "1": 1}


# --- writing ----------------------------------------------------------------------------------


class CsvWriter(SingleFileWriter):
    """Writes records as rows, streaming them into a file published atomically on close()."""

    capabilities = Capabilities(coords=PIXEL, takes_batches=True, parts="concatenate")
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

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """The batch's images as `write()` writes them. Records without a pixel size, which
        the record path reads from the images' headers first, need the record path."""
        from annoconv.columnar import flatten, joined_lines

        rows = flatten(batch)
        if not rows.num_rows:
            return
        if rows.column("width").null_count or rows.column("height").null_count:
            raise BatchesUnavailable("records without a pixel size")
        cells = _batch_cells(_in_pixels(rows), self.columns)
        self.output().write(joined_lines(cells, ","))

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


def _in_pixels(rows: pa.RecordBatch) -> dict[str, pa.Array]:
    """The flat rows' columns, with the coordinates of normalized rows in pixels."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = dict(zip(rows.schema.names, rows.columns, strict=True))
    normalized = pc.equal(columns["coords"], NORMALIZED)
    if not pc.any(normalized).as_py():
        return columns
    extents = {
        axis: pc.cast(columns[size], pa.float64())
        for axis, size in (("x", "width"), ("y", "height"))
    }
    for name in BOX_FIELDS:
        scaled = pc.multiply(columns[name], extents[name[0]])
        columns[name] = pc.if_else(normalized, scaled, columns[name])
    return columns


def _batch_cells(columns: dict[str, pa.Array], extra: Sequence[str]) -> list[pa.Array]:
    """The CSV cells of flat rows in pixels, column by column, as `CsvWriter._row` writes
    them one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from annoconv.columnar import format_numbers

    def text(name: str) -> pa.Array:
        return pc.fill_null(_quoted(columns[name]), "")

    def integer(name: str) -> pa.Array:
        return pc.fill_null(pc.cast(columns[name], pa.string()), "")

    def number(values: pa.Array) -> pa.Array:
        return pc.fill_null(format_numbers(values), "")

    cells = [text("filename"), integer("width"), integer("height"), text("class")]
    cells += [number(columns[name]) for name in BOX_FIELDS]
    for name in extra:
        if name in FLAG_FIELDS or name == "depth":
            cells.append(integer(name))
        elif name in ("pose", "split", "key", "path"):
            cells.append(text(name))
        elif name == "confidence":
            cells.append(number(columns[name]))
        elif name == "verified":
            flags = pc.if_else(columns[name], "1", "0")
            cells.append(pc.fill_null(flags, ""))
        else:
            coordinate = name.removesuffix("_norm")
            extent = columns["width" if coordinate.startswith("x") else "height"]
            cells.append(number(pc.divide(columns[coordinate], pc.cast(extent, pa.float64()))))
    return cells


def _quoted(texts: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    needs = pc.match_substring_regex(texts, _NEEDS_QUOTES.pattern)
    escaped = pc.binary_join_element_wise('"', pc.replace_substring(texts, '"', '""'), '"', "")
    return pc.if_else(needs, escaped, texts)


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
    """Reads one or more CSV files (a path or URL, a glob, or a list) into one record per image.
    `byte_range` reads only those bytes of a single file (after its header), as cut by
    `byte_ranges()`."""

    extensions = EXTENSIONS

    def __init__(
        self,
        source: Source,
        *,
        images: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(source, images=images)
        self.byte_range = byte_range
        self._rows_before = RowsBefore(byte_range)

    def read_file(self, uri: str) -> Iterator[ReadResult]:
        return _read_file(uri, self.byte_range, self._rows_before)

    def byte_ranges(self, count: int) -> list[Reader] | None:
        """Readers of byte ranges of a single file, cut between images; only for files that
        the columnar path reads (no quotes, so no newline inside a cell) whose rows of each
        image are consecutive (else first-seen grouping would join rows across ranges)."""
        files, _root = expand_source(self.source, self.extensions)
        if len(files) != 1 or self.byte_range is not None:
            return None
        column = _consecutive_key_column(files[0])
        if column is None:
            return None
        cuts = cut_ranges(files[0], count, comma_key(column))
        if cuts is None:
            return None
        return [
            CsvReader(files[0], images=self.images, byte_range=byte_range)
            for byte_range in cuts.ranges
        ]

    def batches(self) -> Iterator[BatchResult]:
        """The columnar path: each file parsed by pyarrow and checked column by column; the
        images a check flags are read the record way, for its exact result and message.
        Files with what only the record path reads alike (quotes, blank lines, a lone CR,
        text pyarrow cannot parse) make `convert()` fall back to it."""
        files, _root = expand_source(self.source, self.extensions)
        return (
            item for uri in files for item in _file_batches(uri, self.byte_range, self._rows_before)
        )


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
    #: The split of every image when no column gives it: Roboflow's `valid/_annotations.csv`.
    split: str | None = None


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


def _read_file(
    uri: str, byte_range: tuple[int, int] | None, before: RowsBefore
) -> Iterator[ReadResult]:
    with open_range(uri, byte_range) if byte_range else open_input(uri) as handle:
        rows = _numbered_rows(uri, handle, before)
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
            yield _file_record(uri, layout, key, image.rows, before)
        except AnnotationError as error:
            yield BadItem(error, images=1, boxes=image.boxes)


def _numbered_rows(
    uri: str, handle: IO[bytes], before: RowsBefore
) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows, each with the line it starts on in what is read (the header line,
    then a byte range's lines: `_in_file` names them in the file)."""
    reader = csv.reader(_text_lines(uri, handle, before), strict=True)
    end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            where = f"line {_in_file(end + 1, uri, before)}"
            raise AnnotationError(uri, f"malformed CSV: {exc}", where) from None
        line, end = end + 1, reader.line_num
        if not _blank(row):
            yield line, row


def _text_lines(uri: str, handle: IO[bytes], before: RowsBefore) -> Iterator[str]:
    """The file's lines decoded one by one, so a decoding error names its line exactly."""
    for number, raw in enumerate(handle, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = decode_line(uri, raw, _in_file(number, uri, before))  # raises, naming it
        yield text.removeprefix("\ufeff") if number == 1 else text


def _in_file(line: int, uri: str, before: RowsBefore) -> int:
    """Line `line` of what is read (the header line 1, then the lines of the file or of a
    byte range) as a line of the whole file; the lines before a range are counted only when
    an error asks."""
    return line if line == 1 else line + before(uri)


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
            f"missing column(s) {', '.join(missing)}; the header has: {', '.join(names)}"
            + (_HEADERLESS_HINT if _box_line(names) else ""),
            where,
        )
    return _Layout(
        index=index,
        fields=len(header),
        space=NORMALIZED if normalized else PIXEL,
        box_columns=NORM_COLUMNS if normalized else BOX_FIELDS,
        group_column="key" if "key" in index else "filename",
        split=None if "split" in index else _folder_split(uri),
    )


def has_csv_header(path: str) -> bool:
    """Whether the file at `path` starts with a header row of this format (see
    `Format.recognizes`: its reader reads a whole file before its first image)."""
    try:
        head = head_lines(path)
        if head is None:
            return False
        rows = _numbered_rows(path, io.BytesIO(head), RowsBefore(None))
        _layout(path, *_header(path, rows))
    except (AnnotationError, OSError):
        return False
    return True


def is_roboflow_export(folder: str) -> bool:
    """Whether `folder` is Roboflow's "Tensorflow Object Detection CSV" export (or one split
    of it): an `_annotations.csv` in it or in its `train/`, `valid/` or `test/` folder."""
    places = [(ROBOFLOW_NAME,), *((split, ROBOFLOW_NAME) for split in ROBOFLOW_SPLITS)]
    return any(exists(join(folder, *parts)) for parts in places)


def _folder_split(uri: str) -> str | None:
    """The split Roboflow's "Tensorflow Object Detection CSV" export names by the folder of
    each `_annotations.csv` (`train/`, `valid/`, `test/`); None for any other file."""
    path = uri.replace("\\", "/")
    if posixpath.basename(path) != ROBOFLOW_NAME:
        return None
    return posixpath.basename(posixpath.dirname(path)) or None


_HEADERLESS_HINT = (
    " (a box, no header: keras-frcnn's and keras-retinanet's path,x1,y1,x2,y2,class "
    "files read with --from frcnn)"
)


def _box_line(cells: list[str]) -> bool:
    """Whether a first row is a box of a headerless path,x1,y1,x2,y2,class file (or
    keras-retinanet's path,,,,, of an image without objects)."""
    if len(cells) != 6 or not cells[0]:
        return False
    coordinates = cells[1:5]
    return all(_WHOLE.fullmatch(cell) for cell in coordinates) or not any(cells[1:])


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


def _file_record(
    uri: str, layout: _Layout, key: str, rows: list[tuple[int, list[str]]], before: RowsBefore
) -> ImageRecord:
    """`_record` of rows numbered in what is read. Messages name lines in many places, so an
    image of a byte range that fails is read again with its rows numbered in the file (the
    lines before the range counted only now), to fail with the file's line numbers."""
    try:
        return _record(uri, layout, key, rows)
    except AnnotationError:
        if not before(uri):
            raise
    return _record(uri, layout, key, [(_in_file(line, uri, before), row) for line, row in rows])


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
    if layout.split is not None:
        parsed.fields["split"] = layout.split
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
    if len(text.lstrip("0")) > MAX_NUMBER_DIGITS:
        raise _CellError(f"{column}: a number of {len(text)} digits is too large")
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


# --- the columnar path ------------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"
# Texts whose value the vectorized conversions give exactly as `_number`, `_size` and `_flag`
# do; any other text makes its image a suspect, read the record way.
_DECIMAL = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_DIGITS = r"^[0-9]{1,10}$"
_INT32_MAX = 2**31 - 1


def _file_batches(
    uri: str, byte_range: tuple[int, int] | None, before: RowsBefore
) -> Iterator[BatchResult]:
    """One CSV file as nested batches: images in first-seen order, as `_read_file` gives."""
    data = (read_range(uri, byte_range) if byte_range else read_bytes(uri)).removeprefix(_BOM)
    if not _columnar_readable(data):
        raise BatchesUnavailable(f"{uri} needs the CSV module's reading")
    header_text = decode_line(uri, data.split(b"\n", 1)[0], 1).rstrip("\r")
    try:
        layout = _layout(uri, 1, next(csv.reader([header_text])))
    except AnnotationError as error:
        yield BadItem(error, images=0)
        return
    table = _parsed(uri, data, layout.fields)
    if not table.num_rows:
        return
    yield from _table_batches(uri, layout, table, before)


def _columnar_readable(data: bytes) -> bool:
    """Whether pyarrow reads `data` (BOM removed) as the CSV module does: no quotes, no
    blank line, no lone CR."""
    lines = data.replace(b"\r\n", b"\n")
    return not (
        not data or b'"' in data or b"\r" in lines or b"\n\n" in lines or lines.startswith(b"\n")
    )


def _consecutive_key_column(uri: str) -> int | None:
    """The column of the image key of a file the columnar path reads, when the rows of each
    image are consecutive in it; else None. Reads the whole file once."""
    import pyarrow.compute as pc

    from annoconv.columnar import run_starts

    data = read_bytes(uri).removeprefix(_BOM)
    if not _columnar_readable(data):
        return None
    try:
        header = decode_line(uri, data.split(b"\n", 1)[0], 1).rstrip("\r")
        layout = _layout(uri, 1, next(csv.reader([header])))
        column = layout.index[layout.group_column]
        table = _parsed(uri, data, layout.fields, only=[f"c{column}"])
    except (AnnotationError, BatchesUnavailable):
        return None
    keys = table.column(f"c{column}").combine_chunks()
    if len(run_starts(keys)) != len(pc.unique(keys)):
        return None
    return column


def _parsed(uri: str, data: bytes, fields: int, only: Sequence[str] = ()) -> pa.Table:
    """The rows as string columns ``c0``, ``c1``...; with `only`, just those columns (every
    row's field count is still checked)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{index}" for index in range(fields)]
    try:
        return pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                include_columns=list(only),
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise BatchesUnavailable(f"{uri}: {exc}") from None


def _table_batches(
    uri: str, layout: _Layout, table: pa.Table, before: RowsBefore
) -> Iterator[BatchResult]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from annoconv.columnar import nest, records_to_batch, run_starts, suspects

    keys = table.column(f"c{layout.index[layout.group_column]}").combine_chunks()
    order = pc.sort_indices(pc.index_in(keys, value_set=pc.unique(keys)))
    table = table.take(order)
    lines = pc.add(order, 2).to_pylist()  # the header is line 1; blank lines were refused
    flat, bad_rows = _flat_rows(uri, layout, table)
    nested = nest(flat)
    starts = run_starts(flat.column("key").combine_chunks()).to_pylist()
    ends = [*starts[1:], table.num_rows]
    row_images = pc.subtract(pc.cumulative_sum(pc.cast(_run_marks(flat), pa.int64())), 1)
    flagged = set(pc.take(row_images, pc.indices_nonzero(bad_rows)).to_pylist())
    flagged.update(suspects(nested))
    begin = 0
    for image in sorted(flagged):
        if image > begin:
            yield nested.slice(begin, image - begin)
        rows = table.slice(starts[image], ends[image] - starts[image])
        numbered = list(zip(lines[starts[image] : ends[image]], _row_lists(rows), strict=True))
        key = flat.column("key")[starts[image]].as_py()
        try:
            yield records_to_batch([_file_record(uri, layout, key, numbered, before)])
        except AnnotationError as error:
            yield BadItem(error, images=1, boxes=_box_rows(layout, numbered))
        begin = image + 1
    if begin < nested.num_rows:
        yield nested.slice(begin)


def _run_marks(flat: pa.Table) -> pa.Array:
    """True on the first row of each image (runs of equal keys)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = flat.column("key").combine_chunks()
    changed = pc.not_equal(keys[1:], keys[:-1])
    return pa.concat_arrays([pa.array([True]), pc.fill_null(changed, True)])


def _row_lists(rows: pa.Table) -> list[list[str]]:
    columns = [column.to_pylist() for column in rows.columns]
    return [list(cells) for cells in zip(*columns, strict=True)]


def _box_rows(layout: _Layout, rows: list[tuple[int, list[str]]]) -> int:
    at = [layout.index[name] for name in ("class", *layout.box_columns)]
    return sum(1 for _line, row in rows if any(row[position] for position in at))


def _flat_rows(uri: str, layout: _Layout, table: pa.Table) -> tuple[pa.Table, pa.Array]:
    """The rows in the flat schema, and where a cell needs the record path's reading (an
    unusual spelling, a bad value, rows of one image that disagree)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from annoconv.schema import flat_arrow_schema

    count = table.num_rows

    def cell(name: str) -> pa.Array:
        return table.column(f"c{layout.index[name]}").combine_chunks()

    def optional(name: str) -> pa.Array:
        return cell(name) if name in layout.index else pa.repeat(pa.scalar(""), count)

    odd: list[pa.Array] = []
    label = cell("class")
    box_texts = [cell(name) for name in layout.box_columns]
    is_box = pc.not_equal(label, "")
    for texts in box_texts:
        is_box = pc.or_(is_box, pc.not_equal(texts, ""))
    odd.append(pc.and_(pc.equal(label, ""), is_box))
    columns: dict[str, pa.Array] = {}
    for name, texts in zip(BOX_FIELDS, box_texts, strict=True):
        plain = pc.match_substring_regex(texts, _DECIMAL)
        odd.append(pc.and_(is_box, pc.invert(plain)))
        columns[name] = pc.cast(pc.if_else(pc.and_(is_box, plain), texts, None), pa.float64())
    columns["class"] = pc.if_else(is_box, label, None)
    for name in FLAG_FIELDS:
        texts = optional(name)
        spelled = pc.is_in(texts, value_set=pa.array(["-1", "0", "1"]))
        odd.append(pc.and_(pc.invert(spelled), pc.not_equal(texts, "")))
        flag = pc.cast(pc.if_else(spelled, texts, "-1"), pa.int8())
        columns[name] = pc.if_else(is_box, flag, None)
    pose = optional("pose")
    columns["pose"] = pc.if_else(pc.and_(is_box, pc.not_equal(pose, "")), pose, None)
    confidence = optional("confidence")
    plain = pc.match_substring_regex(confidence, _DECIMAL)
    odd.append(pc.and_(pc.not_equal(confidence, ""), pc.invert(plain)))
    usable = pc.and_(is_box, plain)
    columns["confidence"] = pc.cast(pc.if_else(usable, confidence, None), pa.float64())
    columns["box_source"] = pa.nulls(count, pa.string())
    columns["filename"] = cell("filename")
    odd.append(pc.equal(columns["filename"], ""))
    for name in ("width", "height", "depth"):
        texts = optional(name)
        digits = pc.match_substring_regex(texts, _DIGITS)
        odd.append(pc.and_(pc.not_equal(texts, ""), pc.invert(digits)))
        values = pc.cast(pc.if_else(digits, texts, None), pa.int64())
        odd.append(pc.fill_null(pc.greater(values, _INT32_MAX), False))
        usable = pc.and_(
            pc.fill_null(pc.greater(values, 0), False), pc.less_equal(values, _INT32_MAX)
        )
        columns[name] = pc.cast(pc.if_else(usable, values, None), pa.int32())
    key = cell(layout.group_column)
    odd.append(pc.equal(key, ""))
    columns["key"] = key
    columns["coords"] = pa.repeat(pa.scalar(layout.space), count)
    columns["image_labels"] = pa.repeat(
        pa.scalar([], flat_arrow_schema().field("image_labels").type), count
    )
    for name in ("split", "path"):
        texts = optional(name)
        columns[name] = pc.if_else(pc.equal(texts, ""), None, texts)
    if layout.split is not None:
        columns["split"] = pa.repeat(pa.scalar(layout.split), count)
    verified = pc.utf8_lower(optional("verified"))
    spellings = pa.array(["", "1", "0", "true", "false"])
    odd.append(pc.invert(pc.is_in(verified, value_set=spellings)))
    truth = pc.is_in(verified, value_set=pa.array(["1", "true"]))
    columns["verified"] = pc.if_else(pc.equal(verified, ""), None, truth)
    columns["image_uri"] = pa.nulls(count, pa.string())
    columns["sha256"] = pa.nulls(count, pa.string())
    columns["source"] = pa.repeat(pa.scalar(uri), count)
    schema = flat_arrow_schema()
    flat = pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
    odd.append(_disagreeing(flat))
    bad = odd[0]
    for more in odd[1:]:
        bad = pc.or_(bad, pc.fill_null(more, True))
    return flat, bad


def _disagreeing(flat: pa.Table) -> pa.Array:
    """Rows whose image fields differ from their image's first row (the record path's
    "all rows of one image must agree")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    firsts = pc.subtract(pc.cumulative_sum(pc.cast(_run_marks(flat), pa.int64())), 1)
    starts = pc.indices_nonzero(_run_marks(flat))
    first_row = pc.take(starts, firsts)
    differs = pa.repeat(pa.scalar(False), flat.num_rows)
    for name in ("filename", "width", "height", "depth", "split", "path", "verified"):
        values = flat.column(name).combine_chunks()
        first = pc.take(values, first_row)
        same = pc.or_(
            pc.fill_null(pc.equal(values, first), False),
            pc.and_(pc.is_null(values), pc.is_null(first)),
        )
        differs = pc.or_(differs, pc.invert(same))
    return differs


class CsvWriteOptions(FormatOptions):
    columns: list[str] = Field(
        default_factory=list,
        description="extra CSV columns, comma separated (e.g. difficult,truncated,xmin_norm)",
        json_schema_extra={"separator": ",", "metavar": "COLS"},
    )

    @field_validator("columns")
    @classmethod
    def _known(cls, columns: list[str]) -> list[str]:
        """Checked with the other options (a usage error), not when the writer opens."""
        return list(_check_columns(columns))


FORMAT = Format(
    "csv",
    "CSV with filename,width,height,class,xmin,ymin,xmax,ymax (one row per box)",
    EXTENSIONS,
    reader=CsvReader,
    writer=CsvWriter,
    write_options=CsvWriteOptions,
    claims_folder=is_roboflow_export,
    recognizes=has_csv_header,
)
