"""The columnar path: images as rows of Arrow record batches instead of Python objects.

Batches are in the nested schema (`schema.arrow_schema()`, one row per image, its boxes a
list of structs); `flatten` and `nest` turn them into the flat schema
(`schema.flat_arrow_schema()`, one row per box) and back. A batch row is exactly what
`records_to_batch` makes of the record, so a reader can offer both paths from one table and
a writer's output does not depend on the path. `suspects` is the vectorized validation: the
images that may break a rule of the model, so that only those are built as records (whose
validation then gives the very message the record path gives).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from annoconv.errors import AnnotationError
from annoconv.formats.base import BadItem, BatchesUnavailable, BatchResult, Dropped
from annoconv.schema import (
    BOX_FIELDS,
    FLAG_FIELDS,
    FLAT_RENAMES,
    NORMALIZED,
    NORMALIZED_TOLERANCE,
    PIXEL,
    PIXEL_TOLERANCE,
    ImageRecord,
    arrow_schema,
    flat_arrow_schema,
    make_record,
)

if TYPE_CHECKING:
    import pyarrow as pa

OBJECTS = "objects"


def records_to_batch(records: Sequence[ImageRecord]) -> pa.RecordBatch:
    """The records as one batch in the nested schema."""
    import pyarrow as pa

    return pa.RecordBatch.from_pylist(
        [record.model_dump() for record in records], schema=arrow_schema()
    )


def box_count(batch: pa.RecordBatch) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(pc.list_value_length(batch.column(OBJECTS))).as_py() or 0)


def row_records(batch: pa.RecordBatch, where: Any) -> Iterator[tuple[int, ImageRecord | BadItem]]:
    """(row, record or BadItem) of every row; `where(row)` names the row in errors. The
    batch's `source` column becomes each record's source."""
    for index, row in enumerate(batch.to_pylist()):
        yield index, _row_record(row, where(index))


def _row_record(row: dict[str, Any], where: str) -> ImageRecord | BadItem:
    source = row.pop("source")
    try:
        return make_record(source, where, **row)
    except AnnotationError as error:
        return BadItem(error, images=1, boxes=len(row[OBJECTS] or ()))


def checked(batch: pa.RecordBatch, where: Any) -> Iterator[BatchResult]:
    """The batch with the rows the model rejects taken out as BadItems, in row order: only
    the `suspects` are built as records (and put back when the model accepts them)."""
    start = 0
    for index in suspects(batch):
        row = batch.slice(index, 1).to_pylist()[0]
        result = _row_record(row, where(index))
        if isinstance(result, BadItem):
            if index > start:
                yield batch.slice(start, index - start)
            yield result
            start = index + 1
    if start < batch.num_rows:
        yield batch.slice(start) if start else batch


def suspects(batch: pa.RecordBatch) -> list[int]:
    """The rows (images) that may break a rule of the model, sorted: every row the model
    rejects is among them (the checks are the model's, as array operations)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not batch.num_rows:
        return []
    image_bad = _image_problems(batch)
    objects = batch.column(OBJECTS)
    values = pc.list_flatten(objects)
    parents = pc.list_parent_indices(objects)
    box_bad = _box_problems(batch, values, parents)
    labels = pc.list_flatten(batch.column("image_labels"))
    label_bad = _empty(labels.field("label"))
    bad_rows = [
        pc.indices_nonzero(image_bad),
        pc.take(parents, pc.indices_nonzero(box_bad)),
        pc.take(
            pc.list_parent_indices(batch.column("image_labels")), pc.indices_nonzero(label_bad)
        ),
    ]
    found = pc.unique(pa.concat_arrays([array.cast(pa.int64()) for array in bad_rows]))
    return sorted(found.to_pylist())


def _empty(texts: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    return pc.fill_null(pc.equal(pc.binary_length(texts), 0), True)


def _any(conditions: Iterable[pa.Array]) -> pa.Array:
    import pyarrow.compute as pc

    result = None
    for condition in conditions:
        filled = pc.fill_null(condition, True)
        result = filled if result is None else pc.or_(result, filled)
    assert result is not None
    return result


def _image_problems(batch: pa.RecordBatch) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    spaces = pa.array([PIXEL, NORMALIZED])
    sizes = [pc.fill_null(pc.less(batch.column(name), 1), False) for name in ("width", "height")]
    return _any(
        [
            _empty(batch.column("key")),
            _empty(batch.column("filename")),
            *sizes,
            pc.fill_null(pc.less(batch.column("depth"), 1), False),
            pc.invert(pc.is_in(batch.column("coords"), value_set=spaces)),
            pc.is_null(batch.column(OBJECTS)),
            pc.is_null(batch.column("image_labels")),
        ]
    )


def _box_problems(batch: pa.RecordBatch, values: pa.Array, parents: pa.Array) -> pa.Array:
    """Per box: a null or empty label, a bad flag, a coordinate that is null, not finite,
    disordered or outside the image, judged as `schema.ImageRecord` judges it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    flags = pa.array([-1, 0, 1], pa.int8())
    box = {name: values.field(name) for name in BOX_FIELDS}
    problems = [_empty(values.field("label"))]
    problems += [pc.invert(pc.is_in(values.field(name), value_set=flags)) for name in FLAG_FIELDS]
    problems += [pc.invert(pc.is_finite(box[name])) for name in BOX_FIELDS]
    problems += [pc.greater(box["xmin"], box["xmax"]), pc.greater(box["ymin"], box["ymax"])]
    normalized = pc.equal(pc.take(batch.column("coords"), parents), NORMALIZED)
    width = pc.cast(pc.take(batch.column("width"), parents), pa.float64())
    height = pc.cast(pc.take(batch.column("height"), parents), pa.float64())
    sized = pc.and_(pc.is_valid(width), pc.is_valid(height))
    for name in BOX_FIELDS:
        value = box[name]
        limit = width if name.startswith("x") else height
        beyond_normalized = pc.or_(
            pc.less(value, 0.0 - NORMALIZED_TOLERANCE),
            pc.greater(value, 1.0 + NORMALIZED_TOLERANCE),
        )
        beyond_pixels = pc.or_(
            pc.less(value, 0.0 - PIXEL_TOLERANCE),
            pc.greater(value, pc.add(limit, PIXEL_TOLERANCE)),
        )
        # Without a size, only a negative xmin or ymin is outside.
        negative = pc.less(value, -PIXEL_TOLERANCE)
        unsized = negative if name in ("xmin", "ymin") else pc.and_(negative, False)
        pixel_problem = pc.if_else(pc.fill_null(sized, False), beyond_pixels, unsized)
        problems.append(pc.if_else(normalized, beyond_normalized, pixel_problem))
    return _any(problems)


# --- flat <-> nested --------------------------------------------------------------------------


def flatten(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The nested batch as the flat table: a row per box, and one row with null box columns
    for an image without objects."""
    import pyarrow as pa
    import pyarrow.compute as pc

    objects = batch.column(OBJECTS)
    empty = pc.equal(pc.list_value_length(objects), 0)
    filled = pc.if_else(empty, pa.scalar([None], objects.type), objects)
    parents = pc.list_parent_indices(filled)
    boxes = pc.list_flatten(filled)
    box_fields = boxes.type
    columns: dict[str, pa.Array] = {
        FLAT_RENAMES.get(field.name, field.name): array
        for field, array in zip(box_fields, boxes.flatten(), strict=True)
    }
    # Without the objects column: taking it row by row would copy an image's whole box list
    # once per box (memory quadratic in boxes per image).
    images = batch.drop_columns([OBJECTS]).take(parents)
    for name in images.schema.names:
        columns[name] = images.column(name)
    schema = flat_arrow_schema()
    extra = [name for name in batch.schema.names if name not in schema.names and name != OBJECTS]
    for name in extra:
        schema = schema.append(batch.schema.field(name))
    return pa.RecordBatch.from_arrays([columns[name] for name in schema.names], schema=schema)


def nest(flat: pa.Table) -> pa.RecordBatch:
    """The flat rows as a nested batch, one row per run of rows with the same `key` (an
    image's rows must be consecutive). Rows with neither a class nor a coordinate only mark
    their image; other rows are boxes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    flat = flat.combine_chunks()
    rows = flat.num_rows
    if not rows:
        return _empty_batch()
    starts = run_starts(flat.column("key").combine_chunks())
    is_box = _any_valid(flat, ["class", *BOX_FIELDS])
    before = pc.cumulative_sum(pc.cast(is_box, pa.int32())).combine_chunks()
    ends = pa.concat_arrays([pc.subtract(starts[1:], 1), pa.array([rows - 1], pa.int64())])
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.take(before, ends)])
    boxes = flat.filter(is_box)
    images = flat.take(starts)
    return assemble(
        {name: images.column(name).combine_chunks() for name in images.column_names},
        {name: boxes.column(name).combine_chunks() for name in boxes.column_names},
        offsets,
    )


def run_starts(keys: pa.Array) -> pa.Array:
    """The index of the first row of each run of equal keys (int64)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    changes = pc.indices_nonzero(pc.not_equal(keys[1:], keys[:-1])).cast(pa.int64())
    return pa.concat_arrays([pa.array([0], pa.int64()), pc.add(changes, 1)])


def assemble(
    images: Mapping[str, pa.Array], boxes: Mapping[str, pa.Array], offsets: pa.Array
) -> pa.RecordBatch:
    """A nested batch from its image columns, its boxes' columns (named as in the flat
    schema) and the offsets of each image's boxes (one more than there are images)."""
    import pyarrow as pa

    schema = arrow_schema()
    list_type = schema.field(OBJECTS).type
    fields = list(list_type.value_type)
    arrays = [boxes[FLAT_RENAMES.get(f.name, f.name)] for f in fields]
    values = pa.StructArray.from_arrays(arrays, fields=fields)
    objects = pa.ListArray.from_arrays(offsets.cast(pa.int32()), values, type=list_type)
    columns = [objects if f.name == OBJECTS else images[f.name] for f in schema]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _empty_batch() -> pa.RecordBatch:
    import pyarrow as pa

    return pa.RecordBatch.from_pylist([], schema=arrow_schema())


def _any_valid(table: pa.Table, names: Sequence[str]) -> pa.Array:
    import pyarrow.compute as pc

    result = None
    for name in names:
        valid = pc.is_valid(table.column(name))
        result = valid if result is None else pc.or_(result, valid)
    return result


def drop_keys(batch: pa.RecordBatch, keep: pa.Array) -> tuple[pa.RecordBatch, int, int]:
    """(the rows whose key is in `keep`, images left out, boxes left out)."""
    import pyarrow.compute as pc

    kept = pc.is_in(batch.column("key"), value_set=keep)
    if pc.all(kept).as_py():
        return batch, 0, 0
    taken = batch.filter(kept)
    return taken, batch.num_rows - taken.num_rows, box_count(batch) - box_count(taken)


def with_column(batch: pa.RecordBatch, name: str, values: pa.Array) -> pa.RecordBatch:
    """The batch with column `name` replaced by `values`."""
    index = batch.schema.get_field_index(name)
    return batch.set_column(index, batch.schema.field(name), values)


def only_keys(
    items: Iterable[BatchResult], keys: Collection[str], reason: str
) -> Iterator[BatchResult]:
    """The items with only the images whose key is in `keys`; the others as Dropped."""
    import pyarrow as pa

    wanted = pa.array(list(keys), pa.string())
    for item in items:
        if not isinstance(item, pa.RecordBatch):
            yield item
            continue
        kept, images, boxes = drop_keys(item, wanted)
        if images:
            yield Dropped(reason, images=images, boxes=boxes)
        if kept.num_rows:
            yield kept


def class_counts_of(batch: pa.RecordBatch) -> dict[str, int]:
    """Boxes per label in a nested batch."""
    import pyarrow.compute as pc

    labels = pc.list_flatten(batch.column(OBJECTS)).field("label")
    return {item["values"]: item["counts"] for item in pc.value_counts(labels).to_pylist()}


class SplitRouter:
    """Cuts nested batches by split, as `convert.SplitWriter` routes records: each image to
    the split its key was assigned, marked with the split's name."""

    def __init__(self, assignment: Mapping[str, str], names: Sequence[str]) -> None:
        import pyarrow as pa

        self.names = list(names)
        position = {name: index for index, name in enumerate(self.names)}
        self._keys = pa.array(list(assignment), pa.string())
        self._splits = pa.array([position[name] for name in assignment.values()], pa.int32())

    def parts(self, batch: pa.RecordBatch) -> Iterator[tuple[str, pa.RecordBatch]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        found = pc.index_in(batch.column("key"), value_set=self._keys)
        if found.null_count:
            # An image the first pass did not see: the record path reports it image by image.
            raise BatchesUnavailable("an image outside the split assignment")
        splits = pc.take(self._splits, found)
        for index, name in enumerate(self.names):
            part = batch.filter(pc.equal(splits, index))
            if part.num_rows:
                names = pa.array([name] * part.num_rows, pa.string())
                yield name, with_column(part, "split", names)


# --- text -------------------------------------------------------------------------------------

# Arrow's text of a double that equals Python's repr (and so `schema.format_number`): plain
# decimals of the shortest round-tripping digits. Exponents, "-0" and magnitudes that repr
# prints in exponent form (below 1e-4, integral ones from 1e16) are formatted in Python.
_PLAIN_DECIMAL = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"


def format_numbers(values: pa.Array) -> pa.Array:
    """`schema.format_number` of every value (nulls stay null), as one string array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from annoconv.schema import format_number

    values = values.cast(pa.float64())
    texts = pc.cast(values, pa.string())
    magnitude = pc.abs(values)
    plain = pc.and_(
        pc.match_substring_regex(texts, _PLAIN_DECIMAL),
        pc.and_(pc.not_equal(texts, "-0"), pc.less(magnitude, 1e16)),
    )
    plain = pc.and_(plain, pc.or_(pc.greater_equal(magnitude, 1e-4), pc.equal(magnitude, 0)))
    odd = pc.indices_nonzero(pc.invert(pc.fill_null(plain, True))).to_pylist()
    if not odd:
        return texts
    fixed = texts.to_pylist()
    for index in odd:
        fixed[index] = format_number(values[index].as_py())
    return pa.array(fixed, pa.string())


def joined_lines(cells: Sequence[pa.Array], separator: str) -> bytes:
    """The rows of `cells` (string arrays, no nulls) as lines, cells joined by `separator`,
    each line ending in a newline, encoded as UTF-8."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lines = pc.binary_join_element_wise(*cells, separator)
    ended = pc.binary_join_element_wise(lines, "\n", "").cast(pa.large_string())
    whole = pa.ListArray.from_arrays(pa.array([0, len(ended)], pa.int32()), ended)
    text: str = pc.binary_join(whole, pa.scalar("", pa.large_string()))[0].as_py()
    return text.encode("utf-8")
