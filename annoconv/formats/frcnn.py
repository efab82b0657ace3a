"""keras-frcnn's "simple" txt: ``filepath,x1,y1,x2,y2,class_name``, one box per line.

No header. Coordinates are whole pixels of the original image, (x1,y1) the top-left corner and
(x2,y2) the bottom-right. The image size is not in the file (keras-frcnn opens every image to
learn it), so records read from it have no width/height. Lines naming the same filepath are
the boxes of one image. keras-frcnn treats a class literally named ``bg`` as background
(regions to learn as negatives); here ``bg`` is an ordinary label, read and written as it is.

Writing (`FrcnnWriter`):

- Coordinates are rounded to whole pixels one by one with `pixel_int` (nearest, halves up),
  then clamped to [0, width] / [0, height] when the size is known. A box that rounding
  collapses to zero width or height is still written, and noted in the run's warnings:
  keras-frcnn's parser reads it, and dropping it would change the dataset behind the user's
  back.
- The filepath is ``path_prefix + filename``, a plain string concatenation (no separator is
  added or removed), e.g. ``--path-prefix "drive/My Drive/GP/Dataset/train/"``.
- Class names may hold spaces. One holding a comma cannot be written (keras-frcnn splits each
  line on every comma): the record is rejected with an AnnotationError naming it and the class.
  A comma in the filepath is written as it is: our reader splits from the right and reads it
  back, but keras-frcnn's own parser cannot read such a line. Line breaks in either, and
  leading or trailing whitespace (which readers strip), are rejected like a comma in a class.
- An image without boxes (a negative example) has no line in this format: `write()` raises
  `SkipRecord`, so the run reports the image as skipped, with the reason, whatever the error
  policy.
- UTF-8, ``\\n`` line endings, streamed into a file published atomically on `close()`.
  Records sharing a filepath are written as they come and read back as one image.

Reading (`FrcnnReader`) accepts a UTF-8 BOM, CRLF (or CR) line endings, blank lines and
whitespace around fields (``a.jpg, 10, 20, 30, 40, Mobile phone``). keras-retinanet's CSV is
this format too (``--from frcnn`` for its ``.csv``): its ``path/to/image.jpg,,,,,`` line, an
image without objects, is read as such (keras-frcnn has no such line). Each line is split from
the right into exactly six fields, so commas in paths survive. Coordinates must be whole
numbers; ``12.0`` is accepted (tools writing through float columns produce it) but ``12.5``
is an error, as are negative values and x1 > x2 or y1 > y2. Lines are grouped into images by
filepath over the whole file, in first-seen order; key and filename are the filepath. A bad
line makes its whole image a `BadItem` counting all of that image's lines as boxes (a line
with too few fields is charged to the image named by its first field).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from pydantic import Field

from annoconv.errors import AnnotationError, SkipRecord
from annoconv.formats.base import (
    BadItem,
    Capabilities,
    Format,
    PerFileReader,
    ReadResult,
    SingleFileWriter,
)
from annoconv.io.fs import decode_line, head_lines, open_input
from annoconv.options import FormatOptions
from annoconv.schema import (
    MAX_NUMBER_DIGITS,
    PIXEL,
    ImageRecord,
    ObjectAnnotation,
    format_number,
    make_object,
    make_record,
)

if TYPE_CHECKING:
    from annoconv.labelmap import LabelMap

__all__ = ["FORMAT", "FrcnnReader", "FrcnnWriter", "pixel_int"]

EXTENSIONS = (".txt",)
FIELDS = ("filepath", "x1", "y1", "x2", "y2", "class_name")
COORDINATES = FIELDS[1:5]

# keras-frcnn reads in text mode, where "\r", "\n" and "\r\n" all end a line.
_LINE_BREAKS = ("\n", "\r")
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.0+)?")


def pixel_int(value: float) -> int:
    """`value` rounded to the nearest whole pixel, halves up: 12.5 -> 13, 12.49 -> 12, -0.5 -> 0.

    The one rule annoconv uses wherever a format wants integer pixels. Truncation
    (``int(xmin * width)``, as the seed scripts do) moves every edge up-left by half a pixel
    on average; rounding to nearest does not. Halves go up rather than to even (`round`) so
    that every position rounds the same way: a box moved by whole pixels stays the same box.

    This is ``math.floor(value + 0.5)`` computed exactly: that float addition can itself round
    up (``0.49999999999999994 + 0.5 == 1.0``), whereas ``value - floor(value)`` compares with
    0.5 without error for every finite float.
    """
    whole = math.floor(value)
    return whole + 1 if value - whole >= 0.5 else whole


# --- writing ----------------------------------------------------------------------------------


class FrcnnWriter(SingleFileWriter):
    """Writes one line per box, streaming them into a file published atomically on close()."""

    capabilities = Capabilities(coords=PIXEL, parts="concatenate")
    kind = "frcnn"

    def __init__(
        self,
        destination: str,
        *,
        label_map: LabelMap | None = None,
        images: str | None = None,
        path_prefix: str | None = None,
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        self.path_prefix = _check_prefix(path_prefix or "")

    def write(self, record: ImageRecord) -> None:
        source = record.source or record.key
        if not record.objects:
            raise SkipRecord(
                source, "no boxes: the Faster R-CNN txt has no way to list an image without any"
            )
        # The caller converts to pixels; a record handed over directly is converted here.
        record = record.in_space(PIXEL)
        filepath = self.path_prefix + record.filename
        _check_field(source, "filepath", filepath)
        lines: list[str] = []
        notes: list[str] = []
        for obj in record.objects:
            _check_class(source, obj.label)
            box = _pixel_box(obj, record.width, record.height)
            lines.append(f"{filepath},{','.join(map(str, box))},{obj.label}\n")
            note = _collapse_note(obj, box)
            if note:
                notes.append(f"{source}: {note}")
        # Pydantic has refused lone surrogates, so encoding cannot fail half way through.
        self.output().write("".join(lines).encode("utf-8"))
        self.warnings.extend(notes)


def _check_prefix(prefix: str) -> str:
    if any(brk in prefix for brk in _LINE_BREAKS):
        raise ValueError(f"path_prefix {prefix!r} holds a line break")
    if prefix != prefix.lstrip():
        raise ValueError(f"path_prefix {prefix!r} starts with whitespace, which readers strip")
    try:
        prefix.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"path_prefix {prefix!r} cannot be encoded as UTF-8") from None
    return prefix


def _check_field(source: str, name: str, value: str) -> None:
    """A filepath or class name must read back as it was written."""
    if any(brk in value for brk in _LINE_BREAKS):
        raise AnnotationError(source, f"{name} {value!r} holds a line break")
    if value != value.strip():
        raise AnnotationError(
            source, f"{name} {value!r} has leading or trailing whitespace, which readers strip"
        )
    if value.startswith("\ufeff"):
        raise AnnotationError(
            source, f"{name} {value!r} starts with U+FEFF, which readers take for a byte-order mark"
        )


def _check_class(source: str, label: str) -> None:
    _check_field(source, "class", label)
    if "," in label:
        raise AnnotationError(
            source,
            f"class {label!r} holds a comma, which the Faster R-CNN txt cannot hold "
            "(keras-frcnn splits each line on every comma)",
        )


def _pixel_box(
    obj: ObjectAnnotation, width: int | None, height: int | None
) -> tuple[int, int, int, int]:
    """x1, y1, x2, y2: rounded with `pixel_int`, then clamped into the image."""
    return (
        _clamp(pixel_int(obj.xmin), width),
        _clamp(pixel_int(obj.ymin), height),
        _clamp(pixel_int(obj.xmax), width),
        _clamp(pixel_int(obj.ymax), height),
    )


def _clamp(value: int, limit: int | None) -> int:
    value = max(value, 0)
    return value if limit is None else min(value, limit)


def _collapse_note(obj: ObjectAnnotation, box: tuple[int, int, int, int]) -> str | None:
    x1, y1, x2, y2 = box
    if (x1 == x2 and obj.xmin < obj.xmax) or (y1 == y2 and obj.ymin < obj.ymax):
        given = ",".join(format_number(v) for v in (obj.xmin, obj.ymin, obj.xmax, obj.ymax))
        return (
            f"box {obj.label!r} ({given}) is empty in whole pixels; written as {x1},{y1},{x2},{y2}"
        )
    return None


# --- reading ----------------------------------------------------------------------------------


class FrcnnReader(PerFileReader):
    """Reads one or more txt files (a path or URL, a glob, or a list) into one record per image."""

    extensions = EXTENSIONS

    def read_file(self, uri: str) -> Iterator[ReadResult]:
        return _read_file(uri)


@dataclass
class _Image:
    """The boxes of one filepath so far, and the first bad line among its lines, if any."""

    first_line: int
    objects: list[ObjectAnnotation] = field(default_factory=list)
    lines: int = 0
    error: AnnotationError | None = None


def _read_file(uri: str) -> Iterator[ReadResult]:
    with open_input(uri) as handle:
        images, failure = _group(uri, handle)
    if failure is not None:
        # The file could not be read to its end, so no image in it is known to be complete.
        boxes = sum(image.lines for image in images.values())
        yield BadItem(failure, images=len(images), boxes=boxes)
        return
    for key, image in images.items():
        yield _result(uri, key, image)


def starts_with_a_box_line(path: str) -> bool:
    """Whether the first line of the file at `path` is a line of this format, or the file
    holds none (see `Format.recognizes`: its reader reads a whole file before its first
    image)."""
    try:
        head = head_lines(path)
        if head is None:
            return False
        for number, text in _numbered_lines(path, io.BytesIO(head)):
            if text.strip():
                images: dict[str, _Image] = {}
                _add_line(path, number, text, images)
                return all(image.error is None for image in images.values())
    except (AnnotationError, OSError):
        return False
    return True


def _group(uri: str, handle: IO[bytes]) -> tuple[dict[str, _Image], AnnotationError | None]:
    """The file's boxes by filepath, and why reading stopped early, if it did."""
    images: dict[str, _Image] = {}
    try:
        for number, text in _numbered_lines(uri, handle):
            if text.strip():
                _add_line(uri, number, text, images)
    except AnnotationError as error:
        return images, error
    return images, None


def _numbered_lines(uri: str, handle: IO[bytes]) -> Iterator[tuple[int, str]]:
    """The file's lines without their endings, numbered as keras-frcnn's text mode sees them."""
    number = 0
    for raw in handle:
        text = decode_line(uri, raw, number + 1)
        if number == 0:
            text = text.removeprefix("\ufeff")
        body = text.removesuffix("\n")
        if body != text:
            body = body.removesuffix("\r")
        for line in body.split("\r"):
            number += 1
            yield number, line


def _add_line(uri: str, number: int, text: str, images: dict[str, _Image]) -> None:
    fields = text.rsplit(",", len(FIELDS) - 1)
    # With fewer than six fields every comma was split, so fields[0] is the first field.
    image = images.setdefault(fields[0].strip(), _Image(number))
    if _is_negative(fields):
        return
    image.lines += 1
    if image.error is not None:
        return
    try:
        image.objects.append(_parse_box(uri, f"line {number}", fields))
    except AnnotationError as error:
        image.error = error


def _is_negative(fields: list[str]) -> bool:
    """keras-retinanet's line of an image without objects: ``path/to/image.jpg,,,,,``."""
    return (
        len(fields) == len(FIELDS)
        and bool(fields[0].strip())
        and not any(cell.strip() for cell in fields[1:])
    )


def _parse_box(uri: str, where: str, fields: list[str]) -> ObjectAnnotation:
    if len(fields) != len(FIELDS):
        raise AnnotationError(
            uri,
            f"expected {len(FIELDS)} comma-separated fields ({','.join(FIELDS)}), "
            f"got {len(fields)}",
            where,
        )
    filepath, *cells, label = (cell.strip() for cell in fields)
    for name, value in (("filepath", filepath), ("class_name", label)):
        if not value:
            raise AnnotationError(uri, f"{name}: empty", where)
    x1, y1, x2, y2 = (
        _coordinate(uri, where, n, c) for n, c in zip(COORDINATES, cells, strict=True)
    )
    for low, high, low_name, high_name in ((x1, x2, "x1", "x2"), (y1, y2, "y1", "y2")):
        if low > high:
            raise AnnotationError(uri, f"{low_name} {low} > {high_name} {high}", where)
    return make_object(uri, where, label=label, xmin=x1, ymin=y1, xmax=x2, ymax=y2)


def _coordinate(uri: str, where: str, name: str, cell: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(cell):
        raise AnnotationError(
            uri, f"{name}: expected a whole number of pixels, got {cell!r}", where
        )
    whole = cell.split(".")[0]
    if len(whole.lstrip("+-").lstrip("0")) > MAX_NUMBER_DIGITS:
        raise AnnotationError(uri, f"{name}: a number of {len(whole)} digits is too large", where)
    value = int(whole)
    if value < 0:
        raise AnnotationError(uri, f"{name}: {value} is negative", where)
    return value


def _result(uri: str, key: str, image: _Image) -> ReadResult:
    if image.error is not None:
        return BadItem(image.error, images=1, boxes=image.lines)
    try:
        return make_record(
            uri,
            f"line {image.first_line}",
            key=key,
            filename=key,
            coords=PIXEL,
            objects=image.objects,
        )
    except AnnotationError as error:
        return BadItem(error, images=1, boxes=image.lines)


class FrcnnWriteOptions(FormatOptions):
    path_prefix: str | None = Field(
        None,
        description="prepended to every image path in the txt",
        json_schema_extra={"metavar": "PREFIX"},
    )


FORMAT = Format(
    "frcnn",
    "keras-frcnn simple txt: filepath,x1,y1,x2,y2,class_name (no header)",
    EXTENSIONS,
    reader=FrcnnReader,
    writer=FrcnnWriter,
    write_options=FrcnnWriteOptions,
    recognizes=starts_with_a_box_line,
)
