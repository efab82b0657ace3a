"""Byte ranges of a big CSV file, so that parallel tasks each read one part of it.

`cut_ranges` cuts the rows after the header into ranges at line boundaries, by seeking to
evenly spaced offsets and reading on to the next line start (a few lines per cut, so it is
cheap on S3 too), then moving each cut forward past the lines whose key (the ImageID, the
filename) equals the key of the line the cut landed in: the rows of one image, consecutive in
a sorted file, fall in one range. `open_range` reads one range with the header line in front,
so the format's own reader parses it like a whole file; its rows are numbered from the range's
start, and `RowsBefore` gives what to add to name them in the whole file.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from annoconv.io.fs import open_input, size_of

#: Files with fewer bytes of rows than two of these are not cut (a part costs a task).
MIN_PART_BYTES = 16 << 20

#: Bytes read at a time when counting the rows before a range.
COUNT_CHUNK = 1 << 20

#: The key of a line (without its line end); None when the line cannot be cut by bytes
#: (a quoted field may hold a newline, a blank line).
KeyOf = Callable[[bytes], "bytes | None"]


@dataclass(frozen=True)
class Cuts:
    """Ranges ``[start, end)`` tiling the rows after the header, and at each cut the key of
    the line before it and of the line after it."""

    ranges: list[tuple[int, int]]
    boundaries: list[tuple[bytes, bytes]]


def cut_ranges(uri: str, count: int, key_of: KeyOf) -> Cuts | None:
    """At most `count` ranges of `uri` (see the module); None when the file is too small to
    be worth cutting, or a line met while cutting cannot be cut by bytes."""
    size = size_of(uri)
    with open_input(uri) as handle:
        handle.readline()
        begin = handle.tell()
        count = min(count, (size - begin) // MIN_PART_BYTES)
        if count < 2:
            return None
        cuts = [begin]
        boundaries = []
        for index in range(1, count):
            target = begin + (size - begin) * index // count
            if target <= cuts[-1]:
                continue
            handle.seek(target - 1)
            handle.readline()  # to the start of the first line at or after `target`
            found = _next_key_change(handle, key_of)
            if found is None:
                return None
            cut, before, after = found
            if cut >= size:
                break
            if cut > cuts[-1]:
                cuts.append(cut)
                boundaries.append((before, after))
    if len(cuts) < 2:
        return None
    ends = [*cuts[1:], size]
    return Cuts(list(zip(cuts, ends, strict=True)), boundaries)


def _next_key_change(handle: IO[bytes], key_of: KeyOf) -> tuple[int, bytes, bytes] | None:
    """(offset of the first line whose key differs from the current line's, the two keys);
    the offset is the file's size (and the second key empty) when no line differs."""
    line = handle.readline()
    if not line:
        return handle.tell(), b"", b""
    first = key_of(line.rstrip(b"\r\n"))
    while first is not None:
        start = handle.tell()
        line = handle.readline()
        if not line:
            return start, first, b""
        key = key_of(line.rstrip(b"\r\n"))
        if key != first:
            return (start, first, key) if key is not None else None
    return None


def comma_key(column: int) -> KeyOf:
    """The key of a line as cell `column` of an unquoted comma-separated line."""

    def key_of(line: bytes) -> bytes | None:
        if b'"' in line or not line.strip():
            return None
        cells = line.split(b",", column + 1)
        return cells[column] if column < len(cells) else None

    return key_of


class _RangeReader(io.RawIOBase):
    """The header line, then bytes ``[start, end)`` of an open file."""

    def __init__(self, handle: IO[bytes], start: int, end: int) -> None:
        self._head = handle.readline()
        handle.seek(start)
        self._handle = handle
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            taken = self._head[: len(view)]
            view[: len(taken)] = taken
            self._head = self._head[len(taken) :]
            return len(taken)
        wanted = min(len(view), self._left)
        if wanted <= 0:
            return 0
        data = self._handle.read(wanted)
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)


@contextlib.contextmanager
def open_range(uri: str, byte_range: tuple[int, int]) -> Iterator[IO[bytes]]:
    """A binary file object reading the header line of `uri`, then `byte_range` of it."""
    with open_input(uri) as handle:
        yield io.BufferedReader(_RangeReader(handle, *byte_range), 1 << 20)


def read_range(uri: str, byte_range: tuple[int, int]) -> bytes:
    """The header line of `uri` and `byte_range` of it, as bytes."""
    with open_range(uri, byte_range) as handle:
        return handle.read()


class RowsBefore:
    """For a reader of one byte range (or of whole files, `byte_range` None): the rows of its
    file before the range, to add to the row numbers it reports. Counted the first time an
    error asks (one read of the bytes before the range), then kept: a run without errors
    pays nothing."""

    def __init__(self, byte_range: tuple[int, int] | None) -> None:
        self.byte_range = byte_range
        self._counted: dict[str, int] = {}

    def __call__(self, uri: str) -> int:
        if self.byte_range is None:
            return 0
        if uri not in self._counted:
            self._counted[uri] = rows_before(uri, self.byte_range[0])
        return self._counted[uri]


def rows_before(uri: str, start: int) -> int:
    """The rows of `uri` after its header line and before byte `start` (a line start), as
    pyarrow's CSV reader numbers rows: lines ended by ``\\n``, ``\\r\\n`` or a lone ``\\r``,
    blank lines not counted. For our CSV, whose ranges hold neither blank lines nor lone CRs,
    these are its lines. Quotes are not followed: a newline inside a quoted cell would count
    as a row end (Google's bbox files hold no quotes; our CSV with any is not cut). Read in
    chunks of `COUNT_CHUNK` bytes."""
    counter = _RowCounter()
    with open_input(uri) as handle:
        handle.readline()
        left = start - handle.tell()
        while left > 0:
            chunk = handle.read(min(left, COUNT_CHUNK))
            if not chunk:
                break
            counter.add(chunk)
            left -= len(chunk)
    return counter.rows


_BLANK_RUN = re.compile(rb"\n\n+")


class _RowCounter:
    """Counts the non-blank lines of bytes given chunk by chunk, from a line start."""

    def __init__(self) -> None:
        self.rows = 0
        self._line_start = True
        self._after_cr = False  # a "\n" starting the next chunk ends no line of its own

    def add(self, chunk: bytes) -> None:
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not chunk:
            return
        blank = int(self._line_start and chunk.startswith(b"\n"))
        if b"\n\n" in chunk:
            blank += sum(len(run) - 1 for run in _BLANK_RUN.findall(chunk))
        self.rows += chunk.count(b"\n") - blank
        self._line_start = chunk.endswith(b"\n")
