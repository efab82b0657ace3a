"""One COCO file parsed incrementally, its annotations grouped by image in bounded memory.

The annotations array is parsed by ijson (its C backend when installed) one item at a time:
the polygons and RLEs of an annotation are dropped as soon as it is read, and what is kept
of it (image id, category id, box, crowd flag, score) goes into Arrow record batches, spilled
to a temporary folder past a memory budget. The small sections (``images``, ``categories``)
come from a second, short parse of the file without its annotations array: the main pass
notes where that array begins and ends (to the byte: `_key_candidates`, `_closing_bracket`),
and the second pass reads the bytes before and after it, joined by an empty array. So the
file is parsed about once, whatever the order of its sections (COCO writes ``categories``
last, Roboflow first).

Once the images are known, each annotation's image id is resolved to the image's position
in ``images`` (vectorized), and the rows are sorted by it with `SortedStore`, an external
merge sort that keeps the file order within an image. `CocoScan.groups()` then walks the
images in file order with their annotations.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from annoconv.errors import AnnotationError
from annoconv.formats.openimages.order import SortedStore
from annoconv.io.fs import open_input
from annoconv.schema import MAX_INT32

#: Annotations turned into one Arrow batch at a time (and handed out grouped).
BATCH_ROWS = 16_384
#: Bytes of annotation rows kept in memory before they are spilled to disk.
MEMORY_BUDGET = 16 << 20
#: ijson's read size.
_READ_SIZE = 1 << 16
# How far before the first annotation's end the `"annotations"` key is looked for, at first.
_KEY_WINDOW = 1 << 20
_ANNOTATIONS_KEY = re.compile(rb'"annotations"\s*:\s*\[')
_WHITESPACE = b" \t\r\n"

RAW_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string()),
        pa.field("category_id", pa.int64()),
        pa.field("x", pa.float64()),
        pa.field("y", pa.float64()),
        pa.field("w", pa.float64()),
        pa.field("h", pa.float64()),
        pa.field("iscrowd", pa.int8()),
        pa.field("score", pa.float64()),
        pa.field("position", pa.int64()),
        pa.field("ann_id", pa.string()),
    ]
)
#: The grouped rows: the raw ones with the image's position in ``images``.
GROUPED_SCHEMA = RAW_SCHEMA.append(pa.field("image", pa.int64()))


def _with_positions(
    batch: pa.RecordBatch, image_ids: pa.Array, unknown: Callable[[pa.RecordBatch], None]
) -> pa.RecordBatch:
    """The rows of known images, each with its image's position in `image_ids`."""
    positions = pc.index_in(batch.column("image_id"), value_set=image_ids)
    with_positions = batch.append_column("image", positions.cast(pa.int64()))
    known = pc.is_valid(positions)
    if pc.all(known).as_py():
        return with_positions
    unknown(batch.filter(pc.invert(known)))
    return with_positions.filter(known)


def ijson_backend() -> Any:
    """ijson with its fastest backend (yajl2_c), else its pure Python one."""
    import ijson

    return ijson


@dataclass
class Images:
    """The ``images`` section, columnar (Arrow, a few bytes an image): id (as text), file
    name, width, height, and the problem of each entry that cannot be an image (None for
    good ones)."""

    _batches: list[pa.RecordBatch] = field(default_factory=list)
    _pending: list[tuple[Any, ...]] = field(default_factory=list)
    _ids: pa.Array | None = None

    def add(
        self, image_id: str, name: str, width: int | None, height: int | None, problem: str | None
    ) -> None:
        self._pending.append((image_id, name, width, height, problem))
        self._ids = None
        if len(self._pending) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            columns = zip(*self._pending, strict=True)
            arrays = [pa.array(c, type=f.type) for c, f in zip(columns, IMAGES_SCHEMA, strict=True)]
            self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=IMAGES_SCHEMA))
            self._pending = []

    def __len__(self) -> int:
        return int(sum(batch.num_rows for batch in self._batches)) + len(self._pending)

    def ids(self) -> pa.Array:
        """Every image's id, as an Arrow array."""
        if self._ids is None:
            self._flush()
            chunks = [batch.column("id") for batch in self._batches]
            self._ids = pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())
        return self._ids

    def rows(self) -> Iterator[tuple[str, str, int | None, int | None, str | None]]:
        """(id, file name, width, height, problem) of every image, in order."""
        self._flush()
        for batch in self._batches:
            yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


IMAGES_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("file_name", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("problem", pa.string()),
    ]
)


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    supercategory: str | None


@dataclass
class BadAnnotation:
    """An annotation that cannot be a box, held until its image is known."""

    image_id: str | None
    position: int
    error: AnnotationError


def describe_element(section: str, position: int, item: Any) -> str:
    """``annotations[1523] (id 91234)``: where an element sits, with its id when it has one."""
    item_id = item.get("id") if isinstance(item, dict) else None
    return f"{section}[{position}]" + (f" (id {item_id})" if item_id is not None else "")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def id_text(value: Any) -> str | None:
    """An id as text (ints and strings, as COCO files hold them); None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


class AnnotationRows:
    """Annotations kept as Arrow batches in file order (spilled past the budget), then
    resolved to image positions and given back grouped by image (`grouped`)."""

    def __init__(self, budget: int = MEMORY_BUDGET, tmp_dir: str | None = None) -> None:
        self.budget = budget
        self.tmp_dir = tmp_dir
        self.rows = 0
        #: Annotations with a segmentation (polygons or RLE), of which only the box is kept.
        self.segmented = 0
        self._pending: list[tuple[Any, ...]] = []
        self._batches: list[pa.RecordBatch] = []
        self._buffered = 0
        self._folder: str | None = None
        self._spill: pa.ipc.RecordBatchStreamWriter | None = None
        self._spill_sink: pa.NativeFile | None = None
        self._spill_path: str | None = None

    def add(self, values: tuple[Any, ...]) -> None:
        self._pending.append(values)
        if len(self._pending) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        self.rows += len(self._pending)
        columns = zip(*self._pending, strict=True)
        batch = pa.RecordBatch.from_arrays(
            [pa.array(column, type=f.type) for column, f in zip(columns, RAW_SCHEMA, strict=True)],
            schema=RAW_SCHEMA,
        )
        self._pending = []
        if self._spill is not None:
            self._spill.write_batch(batch)
            return
        self._batches.append(batch)
        self._buffered += batch.nbytes
        if self._buffered > self.budget:
            self._start_spill()

    def _start_spill(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="annoconv-coco-", dir=self.tmp_dir)
        # Removed with this object if nobody closes it (a first pass whose scan was kept).
        weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        self._spill_path = os.path.join(self._folder, "annotations.arrow")
        self._spill_sink = pa.OSFile(self._spill_path, "wb")
        self._spill = pa.ipc.new_stream(self._spill_sink, RAW_SCHEMA)
        for batch in self._batches:
            self._spill.write_batch(batch)
        self._batches, self._buffered = [], 0

    def raw(self) -> Iterator[pa.RecordBatch]:
        """The rows in file order (as often as wanted, until `close()`)."""
        self._flush()
        if self._spill_path is None:
            yield from self._batches
            return
        if self._spill is not None:
            self._spill.close()
            assert self._spill_sink is not None
            self._spill_sink.close()
            self._spill = None
        with pa.OSFile(self._spill_path, "rb") as source:
            yield from pa.ipc.open_stream(source)

    def grouped(
        self, image_ids: pa.Array, unknown: Callable[[pa.RecordBatch], None]
    ) -> Iterator[pa.RecordBatch]:
        """Every row whose image id is one of `image_ids`, with its position there as
        ``image``, sorted by it (file order within an image); rows of unknown images are
        handed to `unknown` instead."""
        if self._spill_path is None:
            yield from self._grouped_in_memory(image_ids, unknown)
            return
        store = SortedStore(GROUPED_SCHEMA, self.budget, BATCH_ROWS, self.tmp_dir, key="image")
        try:
            for batch in self.raw():
                store.add(_with_positions(batch, image_ids, unknown))
            yield from store.merged()
        finally:
            store.close()

    def _grouped_in_memory(
        self, image_ids: pa.Array, unknown: Callable[[pa.RecordBatch], None]
    ) -> Iterator[pa.RecordBatch]:
        """`grouped` for rows that fit in memory: only the image positions are sorted (a
        stable sort, keeping file order within an image) and the rows taken in that order a
        batch at a time, so that the rows are never copied whole."""
        positions = [_with_positions(batch, image_ids, unknown) for batch in self.raw()]
        if not positions:
            return
        rows = pa.Table.from_batches(positions, schema=GROUPED_SCHEMA)
        order = pc.sort_indices(rows.column("image"))
        for start in range(0, len(order), BATCH_ROWS):
            taken = rows.take(order.slice(start, BATCH_ROWS))
            yield from taken.combine_chunks().to_batches()

    def close(self) -> None:
        self._batches = []
        if self._spill is not None:
            with contextlib.suppress(Exception):
                self._spill.close()
            self._spill = None
        if self._spill_sink is not None:
            self._spill_sink.close()
        self._spill_path = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


@dataclass
class CocoScan:
    """What one pass over a COCO file found."""

    uri: str
    is_results: bool
    images: Images
    categories: list[Category]
    rows: AnnotationRows
    bad: list[BadAnnotation]
    #: The file cannot be parsed: nothing else here is complete.
    failure: AnnotationError | None = None


class _Tracked:
    """A file handle that remembers where the last chunk read began, and the offset now."""

    def __init__(self, handle: IO[bytes], skip: int = 0) -> None:
        self.handle = handle
        handle.read(skip)  # a byte-order mark, which yajl does not take
        self.offset = skip
        self.chunk_start = skip

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.chunk_start = self.offset
        self.offset += len(data)
        return data


def scan(
    uri: str,
    *,
    annotations: bool = True,
    budget: int = MEMORY_BUDGET,
    tmp_dir: str | None = None,
) -> CocoScan:
    """Parse the COCO file at `uri`: its annotations (unless not wanted: a ground truth
    read for its images and categories), images and categories; or a result file."""
    rows = AnnotationRows(budget, tmp_dir)
    bad: list[BadAnnotation] = []
    result = CocoScan(uri, False, Images(), [], rows, bad)
    try:
        first, skip = _start(uri)
        result.is_results = first == b"["
        prefix = "item" if result.is_results else "annotations.item"
        add = annotation_reader(uri, result.is_results)
        if not annotations:
            add = _ignored
        extent = _main_pass(uri, prefix, lambda i, item: add(i, item, rows, bad), skip)
        if not result.is_results:
            _small_sections(uri, extent, result, skip)
    except AnnotationError as error:
        result.failure = error
    except Exception as error:  # ijson's errors: malformed or truncated JSON
        if not _is_json_error(error):
            raise
        result.failure = AnnotationError(uri, f"not valid JSON: {_json_message(error)}")
    return result


def _is_json_error(error: Exception) -> bool:
    import ijson

    return isinstance(error, (ijson.JSONError, UnicodeDecodeError))


def _json_message(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


_BOM = b"\xef\xbb\xbf"


def _start(uri: str) -> tuple[bytes, int]:
    """(the first non-blank byte of the file, the length of its UTF-8 byte-order mark)."""
    skip = None
    with open_input(uri) as handle:
        while chunk := handle.read(4096):
            if skip is None:
                skip = len(_BOM) if chunk.startswith(_BOM) else 0
                chunk = chunk[skip:]
            stripped = chunk.lstrip(_WHITESPACE)
            if stripped:
                return stripped[:1], skip
    raise AnnotationError(uri, "the file is empty")


def _main_pass(
    uri: str, prefix: str, on_item: Callable[[int, Any], None], skip: int = 0
) -> tuple[int, int] | None:
    """Every item under `prefix`, in order; (where the chunk holding the first item's end
    ends, where the chunk holding the last one's end begins), or None without items."""
    ijson = ijson_backend()
    first_end = last_start = None
    with open_input(uri) as handle:
        tracked = _Tracked(handle, skip)
        items = ijson.items(tracked, prefix, use_float=True, buf_size=_READ_SIZE)
        for position, item in enumerate(items):
            if first_end is None:
                first_end = tracked.offset
            last_start = tracked.chunk_start
            on_item(position, item)
    if first_end is None or last_start is None:
        return None
    return first_end, last_start


def _small_sections(
    uri: str, extent: tuple[int, int] | None, result: CocoScan, skip: int = 0
) -> None:
    """`images` and `categories`, from the file without its annotations array when the
    main pass found one, else from the whole file."""
    if extent is not None:
        first_end, last_start = extent
        for key in _key_candidates(uri, first_end):
            close = _closing_bracket(uri, max(last_start, key + len(b'"annotations"')))
            if close is None:
                continue
            try:
                _read_small_sections(partial(_Spliced, uri, key, close, skip), result)
                return
            except Exception as error:
                if not _is_json_error(error):
                    raise
                result.images, result.categories = Images(), []
    _read_small_sections(partial(_Spliced, uri, None, None, skip), result)


def _read_small_sections(stream: Callable[[], _Spliced], result: CocoScan) -> None:
    ijson = ijson_backend()
    for section, add in (("images", _add_image), ("categories", _add_category)):
        with stream() as handle:
            items = ijson.items(handle, f"{section}.item", use_float=True, buf_size=_READ_SIZE)
            for position, item in enumerate(items):
                add(position, item, result)


def _key_candidates(uri: str, first_end: int) -> Iterator[int]:
    """Where the ``"annotations"`` key may begin: the matches before the end of the chunk
    that held the first annotation's end, last first (the key is the last one before the
    first annotation). Text inside strings never matches (its quotes are escaped); a key
    of that name in a nested object makes the file without the array unparsable."""
    window, seen = _KEY_WINDOW, first_end
    while seen > 0:
        start = max(0, first_end - window)
        with open_input(uri) as handle:
            handle.seek(start)
            data = handle.read(seen - start)
        for match in reversed(list(_ANNOTATIONS_KEY.finditer(data))):
            yield start + match.start()
        # A match cut by the window's start is found whole by the next, larger window.
        seen, window = start + len(b'"annotations"'), window * 4
        if start == 0:
            return


def _closing_bracket(uri: str, from_offset: int) -> int | None:
    """The ``]`` ending the annotations array: the first one at or after `from_offset` (past
    the key, and at the start of the chunk that held the last annotation's end) after which
    the file reads as the rest of the top-level object. A ``]`` inside an annotation makes
    that object close early, one inside a string meets an unescaped quote: either makes the
    rest unparsable, mostly within a few bytes."""
    with open_input(uri) as handle:
        handle.seek(from_offset)
        data = handle.read()
    view = memoryview(data)
    position = data.find(b"]")
    while position >= 0:
        if _parses(_Parts([b'{"annotations": []', view[position + 1 :]])):
            return from_offset + position
        position = data.find(b"]", position + 1)
    return None


def _parses(handle: Any) -> bool:
    """Whether the stream is one complete JSON value."""
    ijson = ijson_backend()
    try:
        for _event in ijson.basic_parse(handle, buf_size=4096):
            pass
    except Exception as error:
        if _is_json_error(error):
            return False
        raise
    return True


class _Parts:
    """A readable stream of byte strings and views, one after the other."""

    def __init__(self, parts: list[bytes | memoryview]) -> None:
        self._parts = parts

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson's check of the stream's type
            return b""
        while self._parts:
            part = self._parts[0]
            if not len(part):
                self._parts.pop(0)
                continue
            cut = len(part) if size < 0 else size
            self._parts[0] = part[cut:]
            return bytes(part[:cut])
        return b""


class _Spliced:
    """The file, or with the contents of its annotations array left out (the bytes before
    the key at `key`, an empty array, the bytes after the ``]`` at `close`)."""

    def __init__(self, uri: str, key: int | None, close: int | None, skip: int = 0) -> None:
        self.uri = uri
        self._stack = contextlib.ExitStack()
        self._handle: IO[bytes] | None = None
        self._parts: list[tuple[int, int | None] | bytes] = (
            [(skip, None)]
            if key is None or close is None
            else [(skip, key), b'"annotations": []', (close + 1, None)]
        )

    def __enter__(self) -> _Spliced:
        self._handle = self._stack.enter_context(open_input(self.uri))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def read(self, size: int = -1) -> bytes:
        assert self._handle is not None
        if size == 0:  # ijson's check of the stream's type
            return b""
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                self._parts.pop(0)
                return part
            start, end = part
            wanted = -1 if end is None else end - start
            if size >= 0:
                wanted = size if wanted < 0 else min(size, wanted)
            if self._handle.tell() != start:
                self._handle.seek(start)
            data = self._handle.read(wanted) if wanted != 0 else b""
            if not data:
                self._parts.pop(0)
                continue
            self._parts[0] = (start + len(data), end)
            return data
        return b""


def _add_image(position: int, item: Any, result: CocoScan) -> None:
    images = result.images
    where = describe_element("images", position, item)
    problem = None
    image_id = file_name = width = height = None
    if not isinstance(item, dict):
        problem = f"{where}: expected an object, got {type(item).__name__}"
    else:
        image_id = id_text(item.get("id"))
        raw_name = item.get("file_name")
        width = _dimension(item.get("width"))
        height = _dimension(item.get("height"))
        if image_id is None:
            problem = f"{where}: id must be an integer or a string, got {item.get('id')!r}"
        elif not isinstance(raw_name, str) or not raw_name.strip():
            problem = f"{where}: file_name must be a non-empty string, got {raw_name!r}"
        elif width is False or height is False:
            problem = (
                f"{where}: width and height must be whole numbers of pixels, got "
                f"{item.get('width')!r} x {item.get('height')!r}"
            )
        else:
            file_name = raw_name.strip()
    images.add(
        image_id or f"#{position}",
        file_name or "",
        width if isinstance(width, int) and not problem else None,
        height if isinstance(height, int) and not problem else None,
        problem,
    )


def _dimension(value: Any) -> int | bool | None:
    """A width or height: a positive whole number, None when absent or 0, False when bad."""
    if value is None:
        return None
    if not is_number(value) or not math.isfinite(value) or value < 0:
        return False
    if (isinstance(value, float) and not value.is_integer()) or value > MAX_INT32:
        return False
    return int(value) or None


def _add_category(position: int, item: Any, result: CocoScan) -> None:
    if not isinstance(item, dict):
        raise AnnotationError(
            result.uri, f"expected an object, got {type(item).__name__}", f"categories[{position}]"
        )
    where = describe_element("categories", position, item)
    category_id, name = item.get("id"), item.get("name")
    if not isinstance(category_id, int) or isinstance(category_id, bool):
        raise AnnotationError(result.uri, f"id must be an integer, got {category_id!r}", where)
    if not isinstance(name, str) or not name.strip():
        raise AnnotationError(result.uri, f"name must be a non-empty string, got {name!r}", where)
    supercategory = item.get("supercategory")
    result.categories.append(
        Category(
            category_id,
            name.strip(),
            supercategory if isinstance(supercategory, str) and supercategory else None,
        )
    )


AddAnnotation = Callable[[int, Any, AnnotationRows, list[BadAnnotation]], None]


def _ignored(position: int, item: Any, rows: AnnotationRows, bad: list[BadAnnotation]) -> None:
    return None


def annotation_reader(uri: str, results: bool) -> AddAnnotation:
    """The function that turns one element of ``annotations`` (or of a result file's list)
    into a row, or into a BadAnnotation saying what is wrong with it."""
    section = "" if results else "annotations"

    def add(position: int, item: Any, rows: AnnotationRows, bad: list[BadAnnotation]) -> None:
        row = _plain_row(item, position)
        if row is not None:
            rows.add(row)
            if item.get("segmentation"):
                rows.segmented += 1
            return
        if type(item) is not dict:
            where = f"{section}[{position}]"
            error = AnnotationError(uri, f"expected an object, got {type(item).__name__}", where)
            bad.append(BadAnnotation(None, position, error))
            return
        image_id = id_text(item.get("image_id"))
        try:
            values = _annotation_values(item)
        except ValueError as wrong:
            where = describe_element(section, position, item)
            bad.append(BadAnnotation(image_id, position, AnnotationError(uri, str(wrong), where)))
            return
        if image_id is None:
            where = describe_element(section, position, item)
            problem = f"image_id must be an integer or a string, got {item.get('image_id')!r}"
            bad.append(BadAnnotation(None, position, AnnotationError(uri, problem, where)))
            return
        category, x, y, w, h, crowd, score = values
        rows.add((image_id, category, x, y, w, h, crowd, score, position, id_text(item.get("id"))))
        if item.get("segmentation"):
            rows.segmented += 1

    return add


_NUMBERS = frozenset((int, float))
_INT64 = 1 << 63


def _plain_row(item: Any, position: int) -> tuple[Any, ...] | None:
    """The row of an annotation as nearly all are (int or string ids, a bbox of 4 numbers
    with a positive size, iscrowd 0 or 1 or missing), checked in one go; None for anything
    else, which `_annotation_values` then reads with its messages. The same checks."""
    if type(item) is not dict:
        return None
    get = item.get
    image_id, category, bbox = get("image_id"), get("category_id"), get("bbox")
    if type(image_id) is int:
        image_id = str(image_id)
    elif type(image_id) is not str or not image_id:
        return None
    if type(category) is not int or not -_INT64 <= category < _INT64:
        return None
    if type(bbox) is not list or len(bbox) != 4:
        return None
    x, y, w, h = bbox
    numbers = _NUMBERS
    if not (type(x) in numbers and type(y) in numbers and type(w) in numbers):
        return None
    if not (type(h) in numbers and w > 0 and h > 0):
        return None
    crowd, score, ann_id = get("iscrowd"), get("score"), get("id")
    if crowd is None:
        crowd = -1
    elif type(crowd) is not int or (crowd != 0 and crowd != 1):
        return None
    if score is not None:
        if type(score) not in numbers:
            return None
        score = float(score)
    if type(ann_id) is int:
        ann_id = str(ann_id)
    elif type(ann_id) is not str or not ann_id:
        ann_id = None
    return (
        image_id,
        category,
        float(x),
        float(y),
        float(w),
        float(h),
        crowd,
        score,
        position,
        ann_id,
    )


def _annotation_values(item: dict[str, Any]) -> tuple[Any, ...]:
    """(category_id, x, y, w, h, iscrowd, score) of an annotation; ValueError says why not."""
    category = item.get("category_id")
    if type(category) is not int or not -_INT64 <= category < _INT64:
        raise ValueError(f"category_id must be an integer, got {category!r}")
    bbox = item.get("bbox")
    if bbox is None:
        x, y, w, h = _polygon_box(item.get("segmentation"))
    elif (
        type(bbox) is list
        and len(bbox) == 4
        and type(bbox[0]) in _NUMBERS
        and type(bbox[1]) in _NUMBERS
        and type(bbox[2]) in _NUMBERS
        and type(bbox[3]) in _NUMBERS
    ):
        x, y, w, h = float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])
    else:
        raise ValueError(f"bbox must be [x, y, width, height] (4 numbers), got {bbox!r}")
    if not w > 0:
        raise ValueError(f"bbox width is {_number(w)}")
    if not h > 0:
        raise ValueError(f"bbox height is {_number(h)}")
    crowd = item.get("iscrowd")
    if crowd is None:
        crowd = -1
    elif (crowd != 0 and crowd != 1) or type(crowd) not in _NUMBERS:
        raise ValueError(f"iscrowd must be 0 or 1, got {crowd!r}")
    score = item.get("score")
    if score is not None and not is_number(score):
        raise ValueError(f"score must be a number, got {score!r}")
    return category, x, y, w, h, int(crowd), None if score is None else float(score)


def _polygon_box(segmentation: Any) -> tuple[float, float, float, float]:
    """The box around an annotation's polygons, for one without a bbox."""
    if isinstance(segmentation, dict):
        raise ValueError("no bbox, and an RLE segmentation (boxes are derived from polygons only)")
    points = (
        [value for polygon in segmentation for value in polygon]
        if isinstance(segmentation, list) and all(isinstance(p, list) for p in segmentation)
        else None
    )
    if not points or len(points) % 2 or not all(is_number(value) for value in points):
        raise ValueError("no bbox, and no polygon segmentation to derive one from")
    xs, ys = points[0::2], points[1::2]
    return float(min(xs)), float(min(ys)), float(max(xs) - min(xs)), float(max(ys) - min(ys))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
