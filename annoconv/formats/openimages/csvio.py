"""Reading the CSV files: the header line, and the rows as batches of strings from pyarrow's
streaming reader, a parse error naming its row."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv

from annoconv.errors import AnnotationError
from annoconv.formats.openimages.options import Options
from annoconv.io.fs import open_input
from annoconv.io.ranges import RowsBefore, open_range

# Parse errors read "CSV parse error: Row #N: ...", conversion errors (bad UTF-8 in a cell)
# "In CSV column #C: Row #N: ...".
_ROW_NUMBER = re.compile(r"^(?:CSV parse error: |In CSV column #\d+: )Row #(\d+): ")
_LINE_END = re.compile("\r\n|\r|\n")


def read_header(uri: str) -> list[str]:
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


def read_csv(
    uri: str,
    columns: Sequence[str],
    options: Options,
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
            raise _malformed(uri, exc, options.rows_before) from None


def _malformed(uri: str, exc: Exception, rows_before: RowsBefore) -> AnnotationError:
    message = str(exc).split("\n", 1)[0]
    found = _ROW_NUMBER.match(message)
    detail = message[found.end() :] if found else message.removeprefix("CSV parse error: ")
    if len(detail) > 200:
        detail = detail[:200] + "..."
    # pyarrow counts the header as row 1, and from the start of a byte range.
    where = f"row {int(found.group(1)) - 1 + rows_before(uri)}" if found else None
    return AnnotationError(uri, f"malformed CSV: {detail}", where)


def numbered_batches(
    uri: str, columns: Sequence[str], options: Options, *, threads: bool = False
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(number of its first row, batch of at most `batch_rows` rows), in file order."""
    start = 1
    for batch in read_csv(uri, columns, options, threads=threads):
        for offset in range(0, batch.num_rows, options.batch_rows):
            piece = batch.slice(offset, options.batch_rows)
            yield start, piece
            start += piece.num_rows
