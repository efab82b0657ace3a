"""Open Images bounding-box CSVs (V2-V7), with class descriptions, image URLs and image labels.

A bbox CSV has one row per box, its columns found by name in the header: the 8 of V2/V3 train
(``ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax``), the 13 of V4/V5 (+ the flags
``IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside``) or the 21 of V6 train (+ 8 ``XClick*``
columns, not read). Coordinates are normalized, so records come in ``coords="normalized"``
space, with ``width``/``height`` unknown (no Open Images CSV holds pixel sizes). Flags are kept
as written: 1, 0, or -1 (unknown, never read as true); a flag column the file lacks, or an empty
cell, is -1. `Source` becomes the box's `source` and `Confidence` its `confidence`. Each record
is keyed by its ImageID and names the image ``<ImageID>.jpg``.

Labels: with `class_descriptions` (``class-descriptions-boxable.csv``: ``MID,DisplayName``,
with or without a header row) labels are display names (``"Mobile phone"``) and `class_ids()`
maps them back to MIDs; without it labels are the MIDs themselves. MIDs sharing one display
name (the full 20k-class file has a few) are labelled ``"Name (MID)"`` so that every label
names one class. A box whose MID the descriptions lack makes its image a bad item (under
``on_error="skip"`` the image is skipped and reported): a label would otherwise silently be a
MID among names.

Selection: ``classes=["Camera", "Mobile phone"]`` (display names or MIDs) keeps only those
classes' boxes, testing every parsed batch at once with Arrow (`is_in` on LabelName). Images
left without boxes are dropped, unless `keep_empty` keeps them as images without objects.
Everything left out is counted in one `Dropped("not in --classes")` item per file, so that the
images read (every distinct ImageID) and boxes read (every row) add up to written + skipped.
Rows that are not selected are not checked.

Order and memory. Each file is read on its own (from a folder or glob: the CSVs with a bbox
header). Its records come out in ImageID order (byte order, Google's order), the boxes of an
image in file order; an ImageID in two files makes two records (Open Images' train, validation
and test files never share images). The file is parsed once, as a stream of Arrow batches from
pyarrow's streaming CSV reader. Nothing is yielded before the whole file has been parsed,
because only then is it known whether an ImageID comes back later in an unsorted file;
meanwhile the selected rows go to a store that keeps at most `memory_budget` bytes in memory
and spills the rest, sorted, to Arrow IPC files in a temporary folder, merged back in ImageID
order when records are made (an external merge sort). For a sorted file, the normal case,
every spill is already sorted and the merge only reads them in turn; with a class selection
the store holds just the selected rows, usually well within the budget, so nothing is spilled
at all. An unsorted file (detected as an ImageID smaller than the one before it) costs one
more pass over the rows parsed before that, to learn the ImageIDs without selected boxes.
Either way no record is yielded twice and memory stays bounded.

Bad input. A row whose cells cannot be a box (a coordinate that is empty, not a number or not
finite, XMin > XMax or YMin > YMax, a coordinate outside [0, 1] beyond
`schema.NORMALIZED_TOLERANCE`, a flag other than 1/0/-1, an empty ImageID or LabelName) makes
its image a `BadItem` naming the file, the row and the problem. Rows are numbered from 1 after
the header (pyarrow's count: blank lines are skipped, not counted). A file pyarrow cannot parse
(a row with the wrong number of fields, invalid UTF-8) is one `BadItem` naming the file and
the row, carrying the rows read before the error.

`images_csv` (``image_name,image_url``, or Google's ``ImageID,Subset,OriginalURL,...`` whose
`OriginalURL` is used) sets each record's `image_uri`; `image_labels`
(``ImageID,Source,LabelName,Confidence``, confidence 0 meaning verified absent) sets its
`image_labels`, restricted to the selected classes when there is a selection. Both are
streamed, after the bbox file's pass; with a selection (and no `keep_empty`) only the entries
of the images with selected boxes are kept, otherwise all of them (for the 1.7M URLs of the
full train set, a few hundred MB). The URL is used as is: writers that need the pixels fetch
the image from it.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import csv
import dataclasses
import difflib
import functools
import io
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from annoconv.columnar import assemble, run_starts
from annoconv.errors import AnnotationError, UnsortedRange
from annoconv.formats.base import (
    BadItem,
    BatchesUnavailable,
    BatchResult,
    Dropped,
    Format,
    Reader,
    ReadResult,
    Source,
)
from annoconv.io.fs import expand_source, open_input
from annoconv.io.ranges import comma_key, cut_ranges, open_range
from annoconv.schema import (
    NORMALIZED,
    NORMALIZED_TOLERANCE,
    ImageLabel,
    ObjectAnnotation,
    arrow_image_labels_type,
    make_record,
)

__all__ = [
    "BBOX_COLUMNS",
    "CLICK_COLUMNS",
    "FLAG_COLUMNS",
    "FORMAT",
    "OpenImagesReader",
    "read_class_descriptions",
    "sniff",
]

IMAGE_ID = "ImageID"
LABEL = "LabelName"
#: The columns every bbox CSV has (V2/V3 train has only these), in the files' order.
BBOX_COLUMNS = (IMAGE_ID, "Source", LABEL, "Confidence", "XMin", "XMax", "YMin", "YMax")
#: The flag columns of V2/V3 validation/test and V4 on, with the ObjectAnnotation field of each.
FLAG_COLUMNS = {
    "IsOccluded": "occluded",
    "IsTruncated": "truncated",
    "IsGroupOf": "group_of",
    "IsDepiction": "depiction",
    "IsInside": "inside",
}
#: The extreme-click columns of V6 train: recognized, not read.
CLICK_COLUMNS = tuple(f"XClick{n}{axis}" for axis in "XY" for n in range(1, 5))
COORDINATES = ("XMin", "XMax", "YMin", "YMax")
LABEL_COLUMNS = (IMAGE_ID, "Source", LABEL, "Confidence")
DROPPED_REASON = "not in --classes"

#: Bytes pyarrow parses at a time; larger blocks are no faster and cost more memory.
BLOCK_SIZE = 1 << 20
#: Rows handled at a time when checking and grouping.
BATCH_ROWS = 65_536
#: Bytes of selected rows kept in memory before they are spilled to disk.
MEMORY_BUDGET = 128 << 20
#: Runs merged at once; more are merged in rounds, so few files are open at a time.
MERGE_FAN_IN = 64

_MID_PREFIXES = ("/m/", "/g/")
_FLAG_TEXTS = pa.array(["1", "0", "-1", ""])
# Decimal numbers Arrow and Python parse alike; other texts are checked one by one.
_DECIMAL = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
# Parse errors read "CSV parse error: Row #N: ...", conversion errors (bad UTF-8 in a cell)
# "In CSV column #C: Row #N: ...".
_ROW_NUMBER = re.compile(r"^(?:CSV parse error: |In CSV column #\d+: )Row #(\d+): ")
_LOW, _HIGH = 0.0 - NORMALIZED_TOLERANCE, 1.0 + NORMALIZED_TOLERANCE

_PROBLEM_FIELDS = [
    pa.field(IMAGE_ID, pa.string()),
    # Null in the rows that only say an image exists (see _FilePass).
    pa.field(LABEL, pa.string()),
    pa.field("problem", pa.string()),
    pa.field("problem_row", pa.int64()),
]
_LABELS_SCHEMA = pa.schema(_PROBLEM_FIELDS)
_RECORDS_SCHEMA = pa.schema(
    [
        *_PROBLEM_FIELDS,
        pa.field("Source", pa.string()),
        pa.field("Confidence", pa.float64()),
        *(pa.field(name, pa.float64()) for name in COORDINATES),
        *(pa.field(name, pa.int8()) for name in FLAG_COLUMNS),
    ]
)


# --- class descriptions and the selection -----------------------------------------------------


def read_class_descriptions(uri: str) -> dict[str, str]:
    """{MID: label} from a ``MID,DisplayName`` CSV, with or without a header row (row 1 is a
    header unless it starts with a MID). Display names shared by several MIDs become
    ``"Name (MID)"`` so that every label names one class."""
    names: dict[str, str] = {}
    with open_input(uri) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        rows = csv.reader(text, strict=True)
        try:
            for row in rows:
                line = rows.line_num
                if not row or (line == 1 and not row[0].startswith(_MID_PREFIXES)):
                    continue
                mid, name = _description(uri, row, line)
                if names.setdefault(mid, name) != name:
                    raise AnnotationError(uri, f"MID {mid} is described twice", f"line {line}")
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AnnotationError(uri, f"malformed CSV: {exc}", f"line {rows.line_num}") from None
    if not names:
        raise AnnotationError(uri, "no classes: expected rows of MID,DisplayName")
    shared = _shared_names(names)
    return {mid: f"{name} ({mid})" if name in shared else name for mid, name in names.items()}


def _description(uri: str, row: list[str], line: int) -> tuple[str, str]:
    if len(row) != 2:
        raise AnnotationError(
            uri, f"expected 2 fields (MID,DisplayName), got {len(row)}", f"line {line}"
        )
    mid, name = row
    if not mid or not name:
        raise AnnotationError(uri, f"empty {'MID' if not mid else 'DisplayName'}", f"line {line}")
    return mid, name


def _shared_names(names: Mapping[str, str]) -> set[str]:
    seen: set[str] = set()
    shared: set[str] = set()
    for name in names.values():
        (shared if name in seen else seen).add(name)
    return shared


def resolve_classes(
    classes: Sequence[str], names: Mapping[str, str] | None, descriptions: str | None
) -> dict[str, str]:
    """{MID: label} of the selected classes, given as labels or MIDs. Anything else is an
    error listing all the unknown names with their near matches."""
    if isinstance(classes, str):
        raise ValueError(f"classes must be a list of class names, not the string {classes!r}")
    if not classes:
        raise ValueError("classes is empty: name at least one class to keep")
    if names is None:
        return _resolve_mids(classes)
    mids = {label: mid for mid, label in names.items()}
    selected = {}
    unknown = []
    for name in classes:
        mid = name if name in names else mids.get(name)
        if mid is None:
            unknown.append(_unknown_class(name, mids))
        else:
            selected[mid] = names[mid]
    if unknown:
        raise AnnotationError(descriptions, f"unknown class(es): {'; '.join(unknown)}")
    return selected


def _resolve_mids(classes: Sequence[str]) -> dict[str, str]:
    names = [name for name in classes if not name.startswith(_MID_PREFIXES)]
    if names:
        listed = ", ".join(repr(name) for name in names)
        raise ValueError(
            f"without class descriptions the labels are MIDs (like /m/0dv5r), and {listed} "
            "is not one: pass class_descriptions (--class-descriptions) to select by name"
        )
    return {mid: mid for mid in classes}


def _unknown_class(name: str, mids: Mapping[str, str]) -> str:
    lowered = {label.lower(): label for label in mids}
    close = [lowered[name.lower()]] if name.lower() in lowered else []
    close += difflib.get_close_matches(name, [label for label in mids if label not in close], 3)
    hint = f" (did you mean {', '.join(repr(label) for label in close)}?)" if close else ""
    return f"{name!r} is not in the class descriptions{hint}"


# --- the reader -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    names: Mapping[str, str] | None
    descriptions: str | None
    selected: Mapping[str, str] | None
    keep_empty: bool
    batch_rows: int
    block_size: int
    memory_budget: int
    tmp_dir: str | None
    #: Read only these bytes of the file (and its header): a part of a partitioned run.
    byte_range: tuple[int, int] | None = None

    @functools.cached_property
    def known_mids(self) -> pa.Array | None:
        return None if self.names is None else pa.array(list(self.names), pa.string())

    @property
    def selected_mids(self) -> pa.Array | None:
        return None if self.selected is None else pa.array(list(self.selected), pa.string())

    def label(self, mid: str) -> str:
        """The label of a box's MID (checked to be described when there are descriptions)."""
        return mid if self.names is None else self.names[mid]

    def image_label(self, mid: str) -> str:
        """The label of an image-level MID: image labels cover ~20k classes, and those the
        (boxable) descriptions lack keep their MID."""
        return mid if self.names is None else self.names.get(mid, mid)


class OpenImagesReader(Reader):
    """Reads Open Images bbox CSVs (a path or URL, a glob, a folder or a list; each file on its
    own) into one normalized-coordinate record per ImageID, in ImageID order.

    `batch_rows`, `block_size` (bytes pyarrow parses at once), `memory_budget` (bytes of
    selected rows held before spilling to disk) and `tmp_dir` (where spills go; the system's
    temporary folder by default) tune speed and memory, never the output. `byte_range`
    reads only those bytes of a single file (after its header), as cut by `byte_ranges()`.
    """

    def __init__(
        self,
        source: Source,
        *,
        images: str | None = None,
        class_descriptions: str | None = None,
        images_csv: str | Sequence[str] | None = None,
        image_labels: str | Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        keep_empty: bool = False,
        batch_rows: int = BATCH_ROWS,
        block_size: int = BLOCK_SIZE,
        memory_budget: int = MEMORY_BUDGET,
        tmp_dir: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(source, images=images)
        for name, value in (
            ("batch_rows", batch_rows),
            ("block_size", block_size),
            ("memory_budget", memory_budget),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        names = read_class_descriptions(class_descriptions) if class_descriptions else None
        selected = None if classes is None else resolve_classes(classes, names, class_descriptions)
        self.options = _Options(
            names=names,
            descriptions=class_descriptions,
            selected=selected,
            keep_empty=keep_empty,
            batch_rows=batch_rows,
            block_size=block_size,
            memory_budget=memory_budget,
            tmp_dir=tmp_dir,
            byte_range=byte_range,
        )
        self.images_csv = _as_list(images_csv)
        self.image_labels = _as_list(image_labels)
        # Header problems in side files surface now, not after the long first pass.
        for uri in self.images_csv:
            _url_columns(uri)
        for uri in self.image_labels:
            _label_columns(uri)
        self._count: int | None = None

    def __iter__(self) -> Iterator[ReadResult]:
        count = 0
        for uri in self._files():
            for item in self._file_records(uri):
                count += not isinstance(item, Dropped)
                yield item
        self._count = count

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        """(ImageID, labels of its selected boxes) of every image iteration makes a record
        of, in the same order: the same pass and checks, keeping only ImageIDs and labels."""
        count = 0
        for uri in self._files():
            with _FilePass(uri, self.options, _LABELS_SCHEMA) as file_pass:
                if file_pass.collect() is not None:
                    continue
                for image in file_pass.images(_label_maker(self.options)):
                    count += not isinstance(image, Dropped)
                    if isinstance(image, _Image):
                        yield image.key, image.items
        self._count = count

    def class_ids(self) -> dict[str, str]:
        """{label: MID} of the selected classes, or of every described class; empty without
        class descriptions (the labels are MIDs then)."""
        if self.options.names is None:
            return {}
        chosen = self.options.selected or self.options.names
        return {label: mid for mid, label in chosen.items()}

    def count_hint(self) -> int | None:
        """The images of the last complete pass (records and bad items), if there was one."""
        return self._count

    def batches(self) -> Iterator[BatchResult] | None:
        """The columnar path, for files sorted by ImageID (Google's are) without a class
        selection or side tables: each file streamed batch by batch with the record path's
        checks, the rows of complete images handed on as soon as the next ImageID starts.
        A file found unsorted or malformed raises BatchesUnavailable, so that `convert()`
        falls back to the record path (which sorts, or reports the file as one bad item)."""
        if self.options.selected is not None or self.images_csv or self.image_labels:
            return None
        return (item for uri in self._files() for item in _stream_file(uri, self.options))

    def byte_ranges(self, count: int) -> list[Reader] | None:
        """Readers of byte ranges of a single bbox CSV, cut between ImageIDs; None for
        several files, or when the cuts show the file is not sorted by ImageID."""
        files = self._files()
        if len(files) != 1 or self.options.byte_range is not None:
            return None
        header = _header(files[0])
        if IMAGE_ID not in header:
            return None
        cuts = cut_ranges(files[0], count, comma_key(header.index(IMAGE_ID)))
        if cuts is None or any(before >= after for before, after in cuts.boundaries):
            return None
        parts: list[Reader] = []
        for byte_range in cuts.ranges:
            part = copy.copy(self)
            part.source = files[0]
            part.options = dataclasses.replace(self.options, byte_range=byte_range)
            parts.append(part)
        return parts

    def _files(self) -> list[str]:
        """The bbox CSVs: a folder or glob keeps only CSVs with a bbox header, as Open Images
        downloads put class descriptions and image lists beside the boxes."""
        files = expand_source(self.source, (".csv",))[0]
        if isinstance(self.source, str) and files != [self.source]:
            return [uri for uri in files if _is_bbox(uri)]
        return files

    def _file_records(self, uri: str) -> Iterator[ReadResult]:
        with _FilePass(uri, self.options, _RECORDS_SCHEMA) as file_pass:
            failure = file_pass.collect()
            if failure is not None:
                yield failure
                return
            side = self._side_tables(file_pass.wanted)
            for image in file_pass.images(_object_maker(self.options)):
                yield _record(uri, image, side) if isinstance(image, _Image) else image

    def _side_tables(self, wanted: pa.Array | None) -> _SideTables:
        whole = dataclasses.replace(self.options, byte_range=None)  # side files are read whole
        urls: dict[str, str] = {}
        for uri in self.images_csv:
            _read_urls(uri, wanted, whole, urls)
        labels: dict[str, list[ImageLabel]] = {}
        for uri in self.image_labels:
            _read_image_labels(uri, wanted, whole, labels)
        return _SideTables(urls, labels)


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


# --- one file: parse, check, store, group -----------------------------------------------------

T = TypeVar("T")


@dataclass
class _Image(Generic[T]):
    """The selected boxes (as objects or labels) of one ImageID, from rows without problems."""

    key: str
    items: list[T] = field(default_factory=list)


class _DistinctIds:
    """Counts the distinct ImageIDs of a stream of batches while it is sorted, and notices
    when it is not (an ImageID smaller than the one before it)."""

    def __init__(self) -> None:
        self.count = 0
        self.sorted = True
        self._last: str | None = None

    def add(self, ids: pa.Array) -> None:
        if not self.sorted or len(ids) == 0:
            return
        first, before, after = ids[0].as_py(), ids[:-1], ids[1:]
        went_back = self._last is not None and first < self._last
        if went_back or pc.any(pc.less(after, before)).as_py():
            self.sorted = False
            return
        changes = pc.sum(pc.not_equal(after, before)).as_py() or 0
        self.count += changes + (first != self._last)
        self._last = ids[-1].as_py()


class _FilePass:
    """One pass over one bbox CSV: `collect()` parses and checks every row, keeping the
    selected ones in a `_SortedStore`; `images()` then groups them by ImageID, in order.

    Besides box rows, the store gets "marker" rows (an ImageID, no label) for images that may
    have no selected box but must be seen by the grouping: with `keep_empty`, to be kept; in an
    unsorted file, to be counted as dropped. A sorted file without `keep_empty` needs none: its
    images without selected boxes are counted on the fly.
    """

    def __init__(self, uri: str, options: _Options, schema: pa.Schema) -> None:
        self.uri = uri
        self.options = options
        self.schema = schema
        self.store = _SortedStore(
            schema, options.memory_budget, options.batch_rows, options.tmp_dir
        )
        self.rows = 0
        self.dropped_boxes = 0
        self.all_ids = _DistinctIds()
        #: After `collect()`: the ImageIDs with selected boxes, when fewer than all are wanted.
        self.wanted: pa.Array | None = None
        self._unsorted_from: int | None = None
        self._wanted: list[pa.Array] = []
        self._pending = _Pending()
        self._selected_mids = options.selected_mids
        self._known_mids = options.known_mids

    def __enter__(self) -> _FilePass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    def collect(self) -> BadItem | None:
        """Reads the whole file into the store; a BadItem if it cannot be read to its end."""
        try:
            columns = _bbox_columns(self.uri)
        except AnnotationError as error:
            return BadItem(error, images=0)
        try:
            for start, batch in _batches(self.uri, columns, self.options):
                self._add(start, batch)
            self._check_pending()
            if self._unsorted_from is not None:
                self._mark_all(stop=self._unsorted_from)
        except AnnotationError as error:
            return BadItem(error, images=self.all_ids.count, boxes=self.rows)
        self.wanted = self._wanted_ids()
        return None

    def _wanted_ids(self) -> pa.Array | None:
        if self.options.selected is None or self.options.keep_empty:
            return None
        if not self._wanted:
            return pa.array([], pa.string())
        return pc.unique(pa.concat_arrays(self._wanted))

    def images(self, make: _Maker[T]) -> Iterator[_Image[T] | BadItem | Dropped]:
        """Every image with selected boxes (or all, with `keep_empty`), in ImageID order; a
        BadItem for an image with a bad row; the drops counted in one Dropped at the end."""
        dropped = 0
        if self.wanted is not None and self.all_ids.sorted:
            dropped = self.all_ids.count - len(self.wanted)
        for group in _groups(self.store.merged(), make):
            if group.problem is not None:
                message, row = group.problem
                error = AnnotationError(self.uri, f"image {group.key}: {message}", f"row {row}")
                yield BadItem(error, images=1, boxes=group.boxes)
            elif group.boxes or self.options.keep_empty:
                yield _Image(group.key, group.items)
            else:
                dropped += 1
        if dropped or self.dropped_boxes:
            yield Dropped(DROPPED_REASON, images=dropped, boxes=self.dropped_boxes)

    def _add(self, start: int, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        ids = batch.column(IMAGE_ID)
        self.all_ids.add(ids)
        chosen = self._selection(batch)
        selected = batch if chosen is None else batch.take(chosen)
        if chosen is not None:
            self.dropped_boxes += batch.num_rows - selected.num_rows
            if not self.options.keep_empty:
                self._wanted.append(pc.unique(selected.column(IMAGE_ID)))
        if selected.num_rows:
            self._pending.add(start, chosen, selected)
            if self._pending.rows >= self.options.batch_rows:
                self._check_pending()
        if not self.all_ids.sorted and self._unsorted_from is None:
            if self.options.byte_range is not None:
                raise UnsortedRange(f"{self.uri} is not sorted by ImageID")
            self._unsorted_from = start
        if self._unsorted_from is not None:
            self.store.add(_markers(self.schema, pc.unique(ids)))
        elif self.options.keep_empty and chosen is not None:
            self.store.add(_markers(self.schema, _without(pc.unique(ids), selected)))

    def _selection(self, batch: pa.RecordBatch) -> pa.Array | None:
        """Indices of the selected rows; None when every row is."""
        if self._selected_mids is None:
            return None
        return pc.indices_nonzero(pc.is_in(batch.column(LABEL), value_set=self._selected_mids))

    def _check_pending(self) -> None:
        if not self._pending.rows:
            return
        known = None
        if self._known_mids is not None:
            known = (self._known_mids, self.options.descriptions or "the class descriptions")
        batch, rows = self._pending.take()
        self.store.add(_checked(batch, rows, known, self.schema))

    def _mark_all(self, stop: int) -> None:
        """Marks every ImageID of the rows before `stop`: in an unsorted file, the images of
        the rows read before that was noticed may have no selected box."""
        for start, batch in _batches(self.uri, (IMAGE_ID,), self.options):
            if start >= stop:
                return
            ids = batch.column(IMAGE_ID)[: stop - start]
            self.store.add(_markers(self.schema, pc.unique(ids)))


def _without(ids: pa.Array, selected: pa.RecordBatch) -> pa.Array:
    return ids.filter(pc.invert(pc.is_in(ids, value_set=selected.column(IMAGE_ID))))


def _markers(schema: pa.Schema, ids: pa.Array) -> pa.RecordBatch:
    columns = [ids, *(pa.nulls(len(ids), f.type) for f in list(schema)[1:])]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


class _Pending:
    """Selected rows gathered from several batches to be checked at once (a check costs per
    call more than per row), with what it takes to number them."""

    def __init__(self) -> None:
        self.rows = 0
        self._batches: list[pa.RecordBatch] = []
        # Per batch: its first index in the whole, its first row in the file, and the
        # indices of its rows in the parsed batch (None when they are all the batch's rows).
        self._offsets: list[int] = []
        self._origins: list[tuple[int, pa.Array | None]] = []

    def _reset(self) -> None:
        self.rows = 0
        self._batches, self._offsets, self._origins = [], [], []

    def add(self, start: int, chosen: pa.Array | None, batch: pa.RecordBatch) -> None:
        self._offsets.append(self.rows)
        self._origins.append((start, chosen))
        self._batches.append(batch)
        self.rows += batch.num_rows

    def take(self) -> tuple[pa.RecordBatch, Callable[[int], int]]:
        """The gathered rows as one batch, and the file row number of each (by index)."""
        offsets, origins = self._offsets, self._origins
        batch = pa.Table.from_batches(self._batches).combine_chunks().to_batches()[0]

        def row(index: int) -> int:
            part = bisect.bisect_right(offsets, index) - 1
            start, chosen = origins[part]
            within = index - offsets[part]
            return start + (within if chosen is None else int(chosen[within].as_py()))

        self._reset()
        return batch, row


# --- reading the CSV --------------------------------------------------------------------------


_LINE_END = re.compile("\r\n|\r|\n")


def _header(uri: str) -> list[str]:
    """The cells of the first line of a CSV file (a UTF-8 BOM removed)."""
    with open_input(uri) as handle:
        # fsspec's remote files take no size in readline(): read a bounded chunk instead.
        raw = re.split(rb"\r\n|\r|\n", handle.read(1 << 20), maxsplit=1)[0]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AnnotationError(uri, "the header is not valid UTF-8", "line 1") from None
    # pyarrow ends lines at "\r" too (old Mac files), which readline() does not.
    first = _LINE_END.split(text, maxsplit=1)[0]
    try:
        return next(csv.reader([first]), [])
    except csv.Error as exc:
        raise AnnotationError(uri, f"malformed CSV header: {exc}", "line 1") from None


def _bbox_columns(uri: str) -> tuple[str, ...]:
    """The columns to read from a bbox CSV: the 8 base ones and the flags it has."""
    header = _header(uri)
    _check_unique(uri, header)
    missing = [name for name in BBOX_COLUMNS if name not in header]
    if missing:
        raise AnnotationError(uri, _not_bbox(header, missing), "line 1")
    return (*BBOX_COLUMNS, *(name for name in FLAG_COLUMNS if name in header))


def _is_bbox(uri: str) -> bool:
    try:
        return set(_header(uri)) >= set(BBOX_COLUMNS)
    except AnnotationError:
        return False


def _not_bbox(header: list[str], missing: list[str]) -> str:
    if not header:
        return f"empty file: expected the header {','.join(BBOX_COLUMNS)},..."
    if set(header) >= set(LABEL_COLUMNS) and not set(header) & set(COORDINATES):
        return (
            f"this is an image-level labels file ({','.join(header)}), not a bbox CSV: "
            "pass it as image_labels (--image-labels) next to a bbox CSV"
        )
    return (
        f"not an Open Images bbox CSV: missing column(s) {', '.join(missing)}; expected "
        f"{','.join(BBOX_COLUMNS)} (8 columns), + {','.join(FLAG_COLUMNS)} (13) "
        f"and + XClick1X...XClick4Y (21); the header has: {','.join(header)}"
    )


def _check_unique(uri: str, header: list[str]) -> None:
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise AnnotationError(
            uri, f"column(s) given more than once: {', '.join(repeated)}", "line 1"
        )


def _read_csv(
    uri: str,
    columns: Sequence[str],
    options: _Options,
    *,
    quoted_newlines: bool = False,
    threads: bool = False,
) -> Iterator[pa.RecordBatch]:
    """The given columns, as strings, in batches from pyarrow's streaming reader.

    Single-threaded parsing is as fast here (one block at a time) and lets pyarrow number the
    row of a parse error. With `threads`, pyarrow parses ahead in its own threads while the
    caller works on the batch before (the columnar path, which leaves parse errors to the
    record path).
    """
    byte_range = options.byte_range
    with open_range(uri, byte_range) if byte_range else open_input(uri) as handle:
        try:
            reader = pacsv.open_csv(
                handle,
                read_options=pacsv.ReadOptions(block_size=options.block_size, use_threads=threads),
                parse_options=pacsv.ParseOptions(newlines_in_values=quoted_newlines),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(columns, pa.string()),
                    include_columns=list(columns),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            yield from reader
        except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
            raise _malformed(uri, exc) from None


def _malformed(uri: str, exc: Exception) -> AnnotationError:
    message = str(exc).split("\n", 1)[0]
    found = _ROW_NUMBER.match(message)
    detail = message[found.end() :] if found else message.removeprefix("CSV parse error: ")
    if len(detail) > 200:
        detail = detail[:200] + "..."
    # pyarrow counts the header as row 1.
    where = f"row {int(found.group(1)) - 1}" if found else None
    return AnnotationError(uri, f"malformed CSV: {detail}", where)


def _batches(
    uri: str, columns: Sequence[str], options: _Options, *, threads: bool = False
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(number of its first row, batch of at most `batch_rows` rows), in file order."""
    start = 1
    for batch in _read_csv(uri, columns, options, threads=threads):
        for offset in range(0, batch.num_rows, options.batch_rows):
            piece = batch.slice(offset, options.batch_rows)
            yield start, piece
            start += piece.num_rows


# --- checking rows ----------------------------------------------------------------------------


@dataclass
class _Check:
    """Rows failing one check (a boolean array) and how to describe the failure of row i."""

    failing: pa.Array
    describe: Callable[[int], str]


def _checked(
    batch: pa.RecordBatch,
    rows: Callable[[int], int],
    known: tuple[pa.Array, str] | None,
    schema: pa.Schema,
) -> pa.RecordBatch:
    """The selected rows in the store's schema: numbers parsed, flags as int8, and the first
    problem of each bad row with its row number (null for good rows). `known` is the
    described MIDs and the file describing them, if any."""
    cells = {name: batch.column(name) for name in batch.schema.names}
    checks = _identity_checks(cells, known)
    coordinates = {}
    for name in COORDINATES:
        coordinates[name], failing = _floats(cells[name])
        checks.append(_Check(failing, _not_number(name, cells[name])))
    checks += _box_checks(cells, coordinates)
    confidence, failing = _floats(
        pc.if_else(pc.equal(cells["Confidence"], ""), None, cells["Confidence"])
    )
    checks.append(_Check(failing, _not_number("Confidence", cells["Confidence"])))
    checks.append(_Check(_non_finite(confidence), _not_finite("Confidence", cells["Confidence"])))
    flags = {}
    for name in FLAG_COLUMNS:
        flags[name], failing = _flags(cells.get(name), batch.num_rows)
        if failing is not None:
            checks.append(_Check(failing, _not_flag(name, cells[name])))
    problem, problem_row = _problems(checks, batch.num_rows, rows)
    values = {
        IMAGE_ID: cells[IMAGE_ID],
        LABEL: cells[LABEL],
        "problem": problem,
        "problem_row": problem_row,
        "Source": cells["Source"],
        "Confidence": confidence,
        **coordinates,
        **flags,
    }
    return pa.RecordBatch.from_arrays([values[name] for name in schema.names], schema=schema)


def _identity_checks(
    cells: Mapping[str, pa.Array], known: tuple[pa.Array, str] | None
) -> list[_Check]:
    ids, labels = cells[IMAGE_ID], cells[LABEL]
    checks = [
        _Check(pc.equal(ids, ""), lambda _: "ImageID is empty"),
        _Check(pc.equal(labels, ""), lambda _: "LabelName is empty"),
    ]
    if known is not None:
        mids, where = known
        checks.append(
            _Check(
                pc.invert(pc.is_in(labels, value_set=mids)),
                lambda i: f"LabelName {labels[i].as_py()} is not in {where}",
            )
        )
    return checks


def _box_checks(cells: Mapping[str, pa.Array], values: Mapping[str, pa.Array]) -> list[_Check]:
    checks = [_Check(_non_finite(values[name]), _not_finite(name, cells[name])) for name in values]
    for low, high in (("XMin", "XMax"), ("YMin", "YMax")):
        failing = pc.greater(values[low], values[high])
        checks.append(_Check(failing, _disordered(low, high, cells)))
    for name, value in values.items():
        outside = pc.or_(pc.less(value, _LOW), pc.greater(value, _HIGH))
        checks.append(_Check(outside, _outside(name, cells[name])))
    return checks


def _problems(
    checks: Sequence[_Check], length: int, rows: Callable[[int], int]
) -> tuple[pa.Array, pa.Array]:
    """(message, row number) of the first failing check of each row; nulls for good rows."""
    failing = [pc.fill_null(check.failing, False) for check in checks]
    bad = failing[0]
    for more in failing[1:]:
        bad = pc.or_(bad, more)
    if not pc.any(bad).as_py():
        return pa.nulls(length, pa.string()), pa.nulls(length, pa.int64())
    messages: list[str | None] = [None] * length
    numbers: list[int | None] = [None] * length
    for index in pc.indices_nonzero(bad).to_pylist():
        check = next(c for c, f in zip(checks, failing, strict=True) if f[index].as_py())
        messages[index] = check.describe(index)
        numbers[index] = rows(index)
    return pa.array(messages, pa.string()), pa.array(numbers, pa.int64())


def _floats(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The numbers the texts hold (null where one holds none) and where they hold none.

    Null texts (allowed empties) stay null without failing. The vectorized cast parses with
    correct rounding, like Python's float(), so values equal float(text) to the last bit.
    """
    try:
        return pc.cast(texts, pa.float64()), pa.nulls(len(texts), pa.bool_())
    except pa.ArrowInvalid:
        pass
    plain = pc.fill_null(pc.match_substring_regex(texts, _DECIMAL), True)
    values = pc.cast(pc.if_else(plain, texts, None), pa.float64()).to_pylist()
    failing = [False] * len(texts)
    for index in pc.indices_nonzero(pc.invert(plain)).to_pylist():
        values[index] = _float_or_none(texts[index].as_py())
        failing[index] = values[index] is None
    return pa.array(values, pa.float64()), pa.array(failing, pa.bool_())


def _float_or_none(text: str) -> float | None:
    """Arrow's reading of one unusual text (`nan`, `inf`...), or None if it is not a number."""
    try:
        value: float | None = pc.cast(pa.array([text]), pa.float64())[0].as_py()
    except pa.ArrowInvalid:
        return None
    return value


def _flags(texts: pa.Array | None, length: int) -> tuple[pa.Array, pa.Array | None]:
    """Flags as int8 (empty or a missing column: -1), and the cells that are no flag."""
    if texts is None:
        return pa.array([-1] * length, pa.int8()), None
    with contextlib.suppress(pa.ArrowInvalid):
        # The usual column, every cell 1, 0 or -1, in one cast; anything else takes the
        # general path, which finds the failing cells.
        values = pc.cast(texts, pa.int8())
        bounds = pc.min_max(values).as_py()
        # Casting also reads "+1" or "01", which are no flags.
        spelled = pc.or_(pc.equal(pc.binary_length(texts), 1), pc.equal(texts, "-1"))
        in_range = bounds["min"] is None or (bounds["min"] >= -1 and bounds["max"] <= 1)
        if values.null_count == 0 and in_range and pc.all(spelled).as_py():
            return values, pa.nulls(length, pa.bool_())
    failing = pc.invert(pc.is_in(texts, value_set=_FLAG_TEXTS))
    usable = pc.if_else(pc.or_(failing, pc.equal(texts, "")), "-1", texts)
    return pc.cast(usable, pa.int8()), failing


def _non_finite(values: pa.Array) -> pa.Array:
    return pc.invert(pc.is_finite(values))


def _not_number(name: str, texts: pa.Array) -> Callable[[int], str]:
    def describe(index: int) -> str:
        text = texts[index].as_py()
        return f"{name} is empty" if text == "" else f"{name} {text!r} is not a number"

    return describe


def _not_finite(name: str, texts: pa.Array) -> Callable[[int], str]:
    return lambda index: f"{name} {texts[index].as_py()} is not a finite number"


def _disordered(low: str, high: str, cells: Mapping[str, pa.Array]) -> Callable[[int], str]:
    def describe(index: int) -> str:
        return f"{low} {cells[low][index].as_py()} > {high} {cells[high][index].as_py()}"

    return describe


def _outside(name: str, texts: pa.Array) -> Callable[[int], str]:
    return lambda index: f"{name} {texts[index].as_py()} is outside [0, 1]"


def _not_flag(name: str, texts: pa.Array) -> Callable[[int], str]:
    return lambda index: f"{name} {texts[index].as_py()!r} is not 1, 0 or -1"


# --- the store: an external merge sort by ImageID ---------------------------------------------


class _SortedStore:
    """Rows added in file order, given back in ImageID order within bounded memory.

    Rows are buffered up to `budget` bytes; then the buffer is sorted by ImageID (stably, so
    the rows of an image keep their file order) and spilled as a run, an Arrow IPC stream in a
    temporary folder. `merged()` merges the runs. For a sorted file every run is sorted
    already and the runs follow each other, so the merge just reads them in turn.
    """

    def __init__(self, schema: pa.Schema, budget: int, batch_rows: int, tmp_dir: str | None):
        self.schema = schema
        self.budget = budget
        self.batch_rows = batch_rows
        self.tmp_dir = tmp_dir
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._runs: list[str] = []
        self._written = 0
        self._folder: str | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self._buffer.append(batch)
        self._buffered += batch.nbytes
        if self._buffered > self.budget:
            self._spill()

    def merged(self) -> Iterator[pa.RecordBatch]:
        """Every row added, in ImageID order, in batches of at most `batch_rows` rows."""
        if not self._runs:
            yield from _sorted(self._take_buffer()).to_batches(self.batch_rows)
            return
        self._spill()
        runs = self._runs
        while len(runs) > MERGE_FAN_IN:
            runs = [
                self._merge_runs(runs[start : start + MERGE_FAN_IN])
                for start in range(0, len(runs), MERGE_FAN_IN)
            ]
        for table in _merge([self._read_run(run) for run in runs], self.schema):
            yield from table.to_batches(self.batch_rows)

    def close(self) -> None:
        self._buffer = []
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _take_buffer(self) -> pa.Table:
        table = pa.Table.from_batches(self._buffer, schema=self.schema)
        self._buffer, self._buffered = [], 0
        return table

    def _spill(self) -> None:
        if self._buffer:
            self._runs.append(self._write_run([_sorted(self._take_buffer())]))

    def _merge_runs(self, runs: Sequence[str]) -> str:
        merged = self._write_run(_merge([self._read_run(run) for run in runs], self.schema))
        for run in runs:
            os.remove(run)
        return merged

    def _write_run(self, tables: Iterable[pa.Table]) -> str:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="annoconv-openimages-", dir=self.tmp_dir)
        path = os.path.join(self._folder, f"run-{self._written:06d}.arrow")
        self._written += 1
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, self.schema) as writer:
            for table in tables:
                writer.write_table(table, max_chunksize=self.batch_rows)
        return path

    def _read_run(self, path: str) -> Iterator[pa.RecordBatch]:
        with pa.OSFile(path, "rb") as source:
            yield from pa.ipc.open_stream(source)


def _sorted(table: pa.Table) -> pa.Table:
    """The table stably sorted by ImageID, left alone when it already is."""
    ids = table.column(IMAGE_ID)
    if len(ids) < 2 or not pc.any(pc.less(ids[1:], ids[:-1])).as_py():
        return table
    return table.sort_by(IMAGE_ID)


class _Cursor:
    """The unmerged rows of one sorted run: a buffer and the batches still to read."""

    def __init__(self, batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> None:
        self._batches = batches
        self.rows = schema.empty_table()
        self.done = False

    def pull(self) -> None:
        batch = next(self._batches, None)
        if batch is None:
            self.done = True
        else:
            self.rows = pa.concat_tables([self.rows, pa.Table.from_batches([batch])])

    def fill(self) -> None:
        while not self.rows.num_rows and not self.done:
            self.pull()

    @property
    def last_id(self) -> str:
        ids = self.rows.column(IMAGE_ID)
        return str(ids[len(ids) - 1].as_py())

    def take_below(self, bound: str | None) -> pa.Table:
        """Removes and returns the rows whose ImageID is below `bound` (all if None)."""
        if bound is None:
            end = self.rows.num_rows
        else:
            end = pc.search_sorted(self.rows.column(IMAGE_ID), pa.scalar(bound)).as_py()
        taken, self.rows = self.rows.slice(0, end), self.rows.slice(end)
        return taken


def _merge(runs: Sequence[Iterator[pa.RecordBatch]], schema: pa.Schema) -> Iterator[pa.Table]:
    """The rows of sorted runs, in ImageID order; an image's rows in run order, then file
    order (runs hold consecutive parts of the file).

    Rows below the smallest last ImageID of the runs still being read are final: no run can
    give any more of them. They are taken from every run at once; then each run whose buffer
    ends with that ImageID reads its next batch. Every round reads a batch, so the merge
    ends, holding about one batch per run.
    """
    cursors = []
    for run in runs:
        cursor = _Cursor(run, schema)
        cursor.fill()
        if cursor.rows.num_rows:
            cursors.append(cursor)
    while cursors:
        reading = [cursor for cursor in cursors if not cursor.done]
        bound = min((cursor.last_id for cursor in reading), default=None)
        pieces = [piece for cursor in cursors if (piece := cursor.take_below(bound)).num_rows]
        if pieces:
            yield pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces).sort_by(IMAGE_ID)
        for cursor in reading:
            if cursor.last_id == bound:
                cursor.pull()
        for cursor in cursors:
            cursor.fill()
        cursors = [cursor for cursor in cursors if cursor.rows.num_rows]


# --- grouping rows into images ----------------------------------------------------------------


@dataclass
class _Group(Generic[T]):
    """The rows of one ImageID: its boxes (as items) and the first problem of its rows."""

    key: str
    items: list[T] = field(default_factory=list)
    boxes: int = 0
    problem: tuple[str, int] | None = None


#: Given a batch of stored rows, a function making the item of row i from its MID.
_Maker = Callable[[pa.RecordBatch], Callable[[int, str], T]]


def _groups(batches: Iterable[pa.RecordBatch], make: _Maker[T]) -> Iterator[_Group[T]]:
    """The rows of sorted batches grouped by ImageID (marker rows only open a group)."""
    group: _Group[T] | None = None
    for batch in batches:
        ids = batch.column(IMAGE_ID).to_pylist()
        labels = batch.column(LABEL).to_pylist()
        problems = batch.column("problem").to_pylist()
        problem_rows = batch.column("problem_row").to_pylist()
        build = make(batch)
        for index, key in enumerate(ids):
            if group is None or key != group.key:
                if group is not None:
                    yield group
                group = _Group(key)
            label = labels[index]
            if label is None:
                continue
            group.boxes += 1
            if group.problem is not None:
                continue
            if problems[index] is not None:
                group.problem = (problems[index], problem_rows[index])
                group.items = []
            else:
                group.items.append(build(index, label))
    if group is not None:
        yield group


def _label_maker(options: _Options) -> _Maker[str]:
    def make(batch: pa.RecordBatch) -> Callable[[int, str], str]:
        return lambda _index, mid: options.label(mid)

    return make


def _object_maker(options: _Options) -> _Maker[ObjectAnnotation]:
    def make(batch: pa.RecordBatch) -> Callable[[int, str], ObjectAnnotation]:
        source = batch.column("Source").to_pylist()
        confidence = batch.column("Confidence").to_pylist()
        xmin, xmax, ymin, ymax = (batch.column(name).to_pylist() for name in COORDINATES)
        occluded, truncated, group_of, depiction, inside = (
            batch.column(name).to_pylist() for name in FLAG_COLUMNS
        )

        def build(index: int, mid: str) -> ObjectAnnotation:
            return ObjectAnnotation(
                label=options.label(mid),
                xmin=xmin[index],
                ymin=ymin[index],
                xmax=xmax[index],
                ymax=ymax[index],
                occluded=occluded[index],
                truncated=truncated[index],
                group_of=group_of[index],
                depiction=depiction[index],
                inside=inside[index],
                confidence=confidence[index],
                source=source[index] or None,
            )

        return build

    return make


def _record(uri: str, image: _Image[ObjectAnnotation], side: _SideTables) -> ReadResult:
    try:
        return make_record(
            uri,
            key=image.key,
            filename=f"{image.key}.jpg",
            coords=NORMALIZED,
            objects=image.items,
            image_labels=side.labels.get(image.key, []),
            image_uri=side.urls.get(image.key),
        )
    except AnnotationError as error:
        return BadItem(error, images=1, boxes=len(image.items))


# --- the columnar path: sorted files, streamed ------------------------------------------------


def _stream_file(uri: str, options: _Options) -> Iterator[BatchResult]:
    """A sorted bbox CSV as nested batches of its images, BadItems between them; the rows of
    the last ImageID of each parsed batch wait for the next, which may hold more of them."""
    try:
        columns = _bbox_columns(uri)
    except AnnotationError as error:
        yield BadItem(error, images=0)
        return
    known = None
    if options.known_mids is not None:
        known = (options.known_mids, options.descriptions or "the class descriptions")
    ids = _DistinctIds()
    held: pa.Table | None = None
    try:
        for start, batch in _batches(uri, columns, options, threads=True):
            ids.add(batch.column(IMAGE_ID))
            if not ids.sorted:
                raise BatchesUnavailable(f"{uri} is not sorted by ImageID")
            checked = _checked(batch, _numbered_from(start), known, _RECORDS_SCHEMA)
            rows = pa.Table.from_batches([checked])
            if held is not None:
                rows = pa.concat_tables([held, rows])
            keys = rows.column(IMAGE_ID)
            cut = pc.index(keys, keys[len(keys) - 1]).as_py()
            held = rows.slice(cut)
            if cut:
                yield from _image_batches(uri, rows.slice(0, cut).combine_chunks(), options)
    except AnnotationError as error:
        raise BatchesUnavailable(str(error)) from None
    if held is not None and held.num_rows:
        yield from _image_batches(uri, held.combine_chunks(), options)


def _numbered_from(start: int) -> Callable[[int], int]:
    return lambda index: start + index


def _image_batches(uri: str, rows: pa.Table, options: _Options) -> Iterator[BatchResult]:
    """Checked rows of complete images as a nested batch; an image with a bad row as a
    BadItem naming its first problem, as `_FilePass.images` does."""
    problems = rows.column("problem")
    if not problems.null_count < len(problems):
        yield _nested(uri, rows, options)
        return
    starts = run_starts(rows.column(IMAGE_ID).combine_chunks()).to_pylist()
    ends = [*starts[1:], rows.num_rows]
    bad_rows = pc.indices_nonzero(pc.is_valid(problems)).to_pylist()
    begin = 0
    for image in sorted({bisect.bisect_right(starts, row) - 1 for row in bad_rows}):
        first, end = starts[image], ends[image]
        if first > begin:
            yield _nested(uri, rows.slice(begin, first - begin), options)
        group = rows.slice(first, end - first)
        at = pc.index(pc.is_valid(group.column("problem")), True).as_py()
        message = group.column("problem")[at].as_py()
        row = group.column("problem_row")[at].as_py()
        key = group.column(IMAGE_ID)[0].as_py()
        error = AnnotationError(uri, f"image {key}: {message}", f"row {row}")
        yield BadItem(error, images=1, boxes=group.num_rows)
        begin = end
    if begin < rows.num_rows:
        yield _nested(uri, rows.slice(begin), options)


def _nested(uri: str, rows: pa.Table, options: _Options) -> pa.RecordBatch:
    """Checked rows of complete, good images as the nested batch of their records."""
    rows = rows.combine_chunks()
    count = rows.num_rows
    ids = rows.column(IMAGE_ID).combine_chunks()
    starts = run_starts(ids)
    keys = pc.take(ids, starts)
    images = len(keys)
    string_nulls = pa.nulls(images, pa.string())
    int_nulls = pa.nulls(images, pa.int32())
    image_columns = {
        "key": keys,
        "filename": pc.binary_join_element_wise(keys, ".jpg", ""),
        "width": int_nulls,
        "height": int_nulls,
        "depth": int_nulls,
        "coords": pa.repeat(pa.scalar(NORMALIZED), images),
        "image_labels": pa.repeat(pa.scalar([], arrow_image_labels_type()), images),
        "split": string_nulls,
        "path": string_nulls,
        "image_uri": string_nulls,
        "sha256": string_nulls,
        "verified": pa.nulls(images, pa.bool_()),
        "source": pa.repeat(pa.scalar(uri), images),
    }
    mids = rows.column(LABEL).combine_chunks()
    source = rows.column("Source").combine_chunks()
    box_columns = {
        "class": _labels(mids, options),
        "xmin": rows.column("XMin").combine_chunks(),
        "ymin": rows.column("YMin").combine_chunks(),
        "xmax": rows.column("XMax").combine_chunks(),
        "ymax": rows.column("YMax").combine_chunks(),
        "difficult": pa.repeat(pa.scalar(-1, pa.int8()), count),
        "pose": pa.nulls(count, pa.string()),
        "confidence": rows.column("Confidence").combine_chunks(),
        "box_source": pc.if_else(pc.equal(source, ""), None, source),
    }
    for column, name in FLAG_COLUMNS.items():
        box_columns[name] = rows.column(column).combine_chunks()
    offsets = pa.concat_arrays([starts, pa.array([count], pa.int64())])
    return assemble(image_columns, box_columns, offsets)


def _labels(mids: pa.Array, options: _Options) -> pa.Array:
    """The label of every box's MID (all described: rows with others are bad rows)."""
    if options.names is None:
        return mids
    known = options.known_mids
    labels = pa.array(list(options.names.values()), pa.string())
    return pc.take(labels, pc.index_in(mids, value_set=known))


# --- image URLs and image-level labels --------------------------------------------------------


@dataclass(frozen=True)
class _SideTables:
    urls: Mapping[str, str]
    labels: Mapping[str, list[ImageLabel]]


def _url_columns(uri: str) -> tuple[str, str]:
    """(ImageID column, URL column) of an images CSV in either known form."""
    header = _header(uri)
    if IMAGE_ID in header and "OriginalURL" in header:
        return IMAGE_ID, "OriginalURL"
    if "image_name" in header and "image_url" in header:
        return "image_name", "image_url"
    raise AnnotationError(
        uri,
        "not an Open Images images CSV: expected the columns image_name,image_url or "
        f"ImageID,Subset,OriginalURL,...; the header has: {','.join(header)}",
        "line 1",
    )


def _read_urls(uri: str, wanted: pa.Array | None, options: _Options, urls: dict[str, str]) -> None:
    """Adds {ImageID: URL} of the wanted images (all if None) to `urls`; the first wins."""
    key_column, url_column = _url_columns(uri)
    for batch in _read_csv(uri, (key_column, url_column), options, quoted_newlines=True):
        keys = batch.column(key_column)
        if key_column == "image_name":
            keys = pc.replace_substring_regex(keys, r"\.[jJ][pP][eE]?[gG]$", "")
        keep = pc.not_equal(batch.column(url_column), "")
        if wanted is not None:
            keep = pc.and_(keep, pc.is_in(keys, value_set=wanted))
        found = batch.column(url_column).filter(keep).to_pylist()
        for key, url in zip(keys.filter(keep).to_pylist(), found, strict=True):
            urls.setdefault(key, url)


def _label_columns(uri: str) -> tuple[str, ...]:
    header = _header(uri)
    _check_unique(uri, header)
    missing = [name for name in (IMAGE_ID, LABEL, "Confidence") if name not in header]
    if missing:
        raise AnnotationError(
            uri,
            f"not an Open Images image-level labels CSV: missing column(s) {', '.join(missing)}; "
            f"expected {','.join(LABEL_COLUMNS)}; the header has: {','.join(header)}",
            "line 1",
        )
    return IMAGE_ID, LABEL, "Confidence"


def _read_image_labels(
    uri: str, wanted: pa.Array | None, options: _Options, labels: dict[str, list[ImageLabel]]
) -> None:
    """Adds the image-level labels of the wanted images (all if None), of the selected classes
    when there is a selection, to `labels`, in file order."""
    selected = options.selected_mids
    start = 1
    for batch in _read_csv(uri, _label_columns(uri), options):
        keep = pc.not_equal(batch.column(LABEL), "")
        if wanted is not None:
            keep = pc.and_(keep, pc.is_in(batch.column(IMAGE_ID), value_set=wanted))
        if selected is not None:
            keep = pc.and_(keep, pc.is_in(batch.column(LABEL), value_set=selected))
        chosen = pc.indices_nonzero(keep)
        kept = batch.take(chosen)
        texts = kept.column("Confidence")
        confidence, failing = _floats(pc.if_else(pc.equal(texts, ""), None, texts))
        bad = pc.indices_nonzero(pc.fill_null(failing, False))
        if len(bad):
            first = bad[0].as_py()
            row = start + chosen[first].as_py()
            text = texts[first].as_py()
            raise AnnotationError(uri, f"Confidence {text!r} is not a number", f"row {row}")
        rows = zip(
            kept.column(IMAGE_ID).to_pylist(),
            kept.column(LABEL).to_pylist(),
            confidence.to_pylist(),
            strict=True,
        )
        for key, mid, value in rows:
            labels.setdefault(key, []).append(
                ImageLabel(label=options.image_label(mid), confidence=value)
            )
        start += batch.num_rows


# --- format detection -------------------------------------------------------------------------


def sniff(path: str) -> str:
    """``"openimages"`` when the (first) CSV's header has Open Images' ImageID and LabelName
    columns, else ``"csv"`` (the tutorial CSV, which then reports its own problems)."""
    try:
        files = expand_source(path, (".csv",))[0]
        header = _header(files[0]) if files else []
    except Exception:  # a guess only: the chosen reader reports the real problem when it reads
        return "csv"
    return "openimages" if IMAGE_ID in header and LABEL in header else "csv"


FORMAT = Format(
    "openimages",
    "Open Images bbox CSV (V2-V7, 8/13/21 columns) with class descriptions",
    (".csv",),
    reader=OpenImagesReader,
    sniff=sniff,
)
