"""Checking bbox rows as array operations: the cells parsed (numbers, flags), the first problem
of each bad row with its row number, in the schema of the checked rows."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from annoconv.errors import AnnotationError
from annoconv.formats.base import BadItem
from annoconv.formats.openimages.columns import (
    COORDINATES,
    FLAG_COLUMNS,
    IMAGE_ID,
    LABEL,
    OPTIONAL_COLUMNS,
)
from annoconv.io.ranges import RowsBefore
from annoconv.schema import NORMALIZED_TOLERANCE


@functools.cache
def _flag_texts() -> pa.Array:
    # Built on first use: pa.array() imports pandas, which a run without Open Images skips.
    return pa.array(["1", "0", "-1", ""])


# Decimal numbers Arrow and Python parse alike; other texts are checked one by one.
_DECIMAL = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_LOW, _HIGH = 0.0 - NORMALIZED_TOLERANCE, 1.0 + NORMALIZED_TOLERANCE

_PROBLEM_FIELDS = [
    pa.field(IMAGE_ID, pa.string()),
    # Null in the rows that only say an image exists (see records.FilePass).
    pa.field(LABEL, pa.string()),
    pa.field("problem", pa.string()),
    pa.field("problem_row", pa.int64()),
]
#: Checked rows when only the labels are wanted.
LABELS_SCHEMA = pa.schema(_PROBLEM_FIELDS)
#: Checked rows with everything a record needs.
RECORDS_SCHEMA = pa.schema(
    [
        *_PROBLEM_FIELDS,
        pa.field("Source", pa.string()),
        pa.field("Confidence", pa.float64()),
        *(pa.field(name, pa.float64()) for name in COORDINATES),
        *(pa.field(name, pa.int8()) for name in FLAG_COLUMNS),
    ]
)


def bad_image(
    uri: str, key: str, message: str, row: int, boxes: int, rows_before: RowsBefore
) -> BadItem:
    """The bad item of an image with a bad row, naming the row's (first) problem and the
    row's number in the file (`row` counts from the start of what was read)."""
    error = AnnotationError(uri, f"image {key}: {message}", f"row {row + rows_before(uri)}")
    return BadItem(error, images=1, boxes=boxes)


@dataclass
class _Check:
    """Rows failing one check (a boolean array) and how to describe the failure of row i."""

    failing: pa.Array
    describe: Callable[[int], str]


def checked(
    batch: pa.RecordBatch,
    rows: Callable[[int], int],
    known: tuple[pa.Array, str] | None,
    schema: pa.Schema,
) -> pa.RecordBatch:
    """The selected rows in the store's schema: numbers parsed, flags as int8, and the first
    problem of each bad row with its row number (null for good rows). `known` is the
    described MIDs and the file describing them, if any."""
    cells = {name: batch.column(name) for name in batch.schema.names}
    for name in OPTIONAL_COLUMNS:  # absent from the challenge files: read as empty cells
        if name not in cells:
            cells[name] = pa.nulls(batch.num_rows, pa.string()).fill_null("")
    checks = _identity_checks(cells, known)
    coordinates = {}
    for name in COORDINATES:
        coordinates[name], failing = floats(cells[name])
        checks.append(_Check(failing, _not_number(name, cells[name])))
    checks += _box_checks(cells, coordinates)
    confidence, failing = floats(
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


def floats(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
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
    failing = pc.invert(pc.is_in(texts, value_set=_flag_texts()))
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
