"""Byte ranges of a big CSV file, so that parallel tasks each read one part of it.

`cut_ranges` cuts the rows after the header into ranges at line boundaries, by seeking to
evenly spaced offsets and reading on to the next line start (a few lines per cut, so it is
cheap on S3 too), then moving each cut forward past the lines whose key (the ImageID, the
filename) equals the key of the line the cut landed in: the rows of one image, consecutive in
a sorted file, fall in one range. `open_range` reads one range with the header line in front,
so the format's own reader parses it like a whole file.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from annoconv.io.fs import open_input, size_of

#: Files with fewer bytes of rows than two of these are not cut (a part costs a task).
MIN_PART_BYTES = 16 << 20

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
