"""The columnar path: a bbox CSV sorted by ImageID streamed as nested Arrow batches of its
images, with the record path's checks and messages."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from annoconv.columnar import assemble, run_starts
from annoconv.errors import AnnotationError
from annoconv.formats.base import BadItem, BatchesUnavailable, BatchResult
from annoconv.formats.openimages.checks import RECORDS_SCHEMA, bad_image, checked
from annoconv.formats.openimages.columns import FLAG_COLUMNS, IMAGE_ID, LABEL, bbox_columns
from annoconv.formats.openimages.csvio import numbered_batches
from annoconv.formats.openimages.options import Options
from annoconv.formats.openimages.order import DistinctIds
from annoconv.schema import NORMALIZED, arrow_image_labels_type


def stream_file(uri: str, options: Options) -> Iterator[BatchResult]:
    """A sorted bbox CSV as nested batches of its images, BadItems between them; the rows of
    the last ImageID of each parsed batch wait for the next, which may hold more of them."""
    try:
        columns = bbox_columns(uri)
    except AnnotationError as error:
        yield BadItem(error, images=0)
        return
    known = options.known
    ids = DistinctIds()
    held: pa.Table | None = None
    try:
        for start, batch in numbered_batches(uri, columns, options, threads=True):
            ids.add(batch.column(IMAGE_ID))
            if not ids.sorted:
                raise BatchesUnavailable(f"{uri} is not sorted by ImageID")
            checked_rows = checked(batch, _numbered_from(start), known, RECORDS_SCHEMA)
            rows = pa.Table.from_batches([checked_rows])
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


def _image_batches(uri: str, rows: pa.Table, options: Options) -> Iterator[BatchResult]:
    """Checked rows of complete images as a nested batch; an image with a bad row as a
    BadItem naming its first problem, as `records.FilePass.images` does."""
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
        yield bad_image(uri, key, message, row, group.num_rows, options.rows_before)
        begin = end
    if begin < rows.num_rows:
        yield _nested(uri, rows.slice(begin), options)


def _nested(uri: str, rows: pa.Table, options: Options) -> pa.RecordBatch:
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


def _labels(mids: pa.Array, options: Options) -> pa.Array:
    """The label of every box's MID (all described: rows with others are bad rows)."""
    if options.names is None:
        return mids
    known = options.known_mids
    labels = pa.array(list(options.names.values()), pa.string())
    return pc.take(labels, pc.index_in(mids, value_set=known))
