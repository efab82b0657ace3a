"""The record path for one bbox CSV: a pass that parses, checks and stores the selected rows
(`FilePass`), then groups them by ImageID into records, bad items and the drops."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from annoconv.errors import AnnotationError, UnsortedRange
from annoconv.formats.base import BadItem, Dropped, ReadResult
from annoconv.formats.openimages.checks import bad_image, checked
from annoconv.formats.openimages.columns import (
    COORDINATES,
    FLAG_COLUMNS,
    IMAGE_ID,
    LABEL,
    bbox_columns,
)
from annoconv.formats.openimages.csvio import numbered_batches
from annoconv.formats.openimages.options import Options
from annoconv.formats.openimages.order import DistinctIds, SortedStore
from annoconv.formats.openimages.sidetables import SideTables
from annoconv.schema import NORMALIZED, ObjectAnnotation, make_record

DROPPED_REASON = "not in --classes"

T = TypeVar("T")


@dataclass
class Image(Generic[T]):
    """The selected boxes (as objects or labels) of one ImageID, from rows without problems."""

    key: str
    items: list[T] = field(default_factory=list)


class FilePass:
    """One pass over one bbox CSV: `collect()` parses and checks every row, keeping the
    selected ones in a `SortedStore`; `images()` then groups them by ImageID, in order.

    Besides box rows, the store gets "marker" rows (an ImageID, no label) for images that may
    have no selected box but must be seen by the grouping: with `keep_empty`, to be kept; in an
    unsorted file, to be counted as dropped. A sorted file without `keep_empty` needs none: its
    images without selected boxes are counted on the fly.
    """

    def __init__(self, uri: str, options: Options, schema: pa.Schema) -> None:
        self.uri = uri
        self.options = options
        self.schema = schema
        self.store = SortedStore(schema, options.memory_budget, options.batch_rows, options.tmp_dir)
        self.rows = 0
        self.dropped_boxes = 0
        self.all_ids = DistinctIds()
        #: After `collect()`: the ImageIDs with selected boxes, when fewer than all are wanted.
        self.wanted: pa.Array | None = None
        self._unsorted_from: int | None = None
        self._wanted: list[pa.Array] = []
        self._pending = _Pending()
        self._selected_mids = options.selected_mids

    def __enter__(self) -> FilePass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    def collect(self) -> BadItem | None:
        """Reads the whole file into the store; a BadItem if it cannot be read to its end."""
        try:
            columns = bbox_columns(self.uri)
        except AnnotationError as error:
            return BadItem(error, images=0)
        try:
            for start, batch in numbered_batches(self.uri, columns, self.options):
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

    def images(self, make: Maker[T]) -> Iterator[Image[T] | BadItem | Dropped]:
        """Every image with selected boxes (or all, with `keep_empty`), in ImageID order; a
        BadItem for an image with a bad row; the drops counted in one Dropped at the end."""
        dropped = 0
        if self.wanted is not None and self.all_ids.sorted:
            dropped = self.all_ids.count - len(self.wanted)
        for group in _groups(self.store.merged(), make):
            if group.problem is not None:
                message, row = group.problem
                yield bad_image(
                    self.uri, group.key, message, row, group.boxes, self.options.rows_before
                )
            elif group.boxes or self.options.keep_empty:
                yield Image(group.key, group.items)
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
        batch, rows = self._pending.take()
        self.store.add(checked(batch, rows, self.options.known, self.schema))

    def _mark_all(self, stop: int) -> None:
        """Marks every ImageID of the rows before `stop`: in an unsorted file, the images of
        the rows read before that was noticed may have no selected box."""
        for start, batch in numbered_batches(self.uri, (IMAGE_ID,), self.options):
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


# --- grouping rows into images ----------------------------------------------------------------


@dataclass
class _Group(Generic[T]):
    """The rows of one ImageID: its boxes (as items) and the first problem of its rows."""

    key: str
    items: list[T] = field(default_factory=list)
    boxes: int = 0
    problem: tuple[str, int] | None = None


#: Given a batch of stored rows, a function making the item of row i from its MID.
Maker = Callable[[pa.RecordBatch], Callable[[int, str], T]]


def _groups(batches: Iterable[pa.RecordBatch], make: Maker[T]) -> Iterator[_Group[T]]:
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


def label_maker(options: Options) -> Maker[str]:
    def make(batch: pa.RecordBatch) -> Callable[[int, str], str]:
        return lambda _index, mid: options.label(mid)

    return make


def object_maker(options: Options) -> Maker[ObjectAnnotation]:
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


def to_record(uri: str, image: Image[ObjectAnnotation], side: SideTables) -> ReadResult:
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
