"""Paths over local disks, S3 and any fsspec URL: listing sources, reading, atomic writing.

Local paths stay plain OS paths (so messages show what the user typed); anything with a
protocol (``s3://``, ``memory://``, ...) goes through fsspec.
"""

from __future__ import annotations

import contextlib
import glob as globlib
import os
import posixpath
import uuid
from collections.abc import Iterator, Sequence
from typing import IO, Any

from annoconv.errors import AnnotationError, MissingDependencyError

GLOB_CHARS = frozenset("*?[")
#: The annoconv extra that installs the fsspec implementation of a protocol.
_PROTOCOL_EXTRAS = {"s3": "s3", "s3a": "s3", "http": "http", "https": "http"}


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _local(uri: str) -> str:
    return uri.removeprefix("file://")


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem for a remote URI and the path within it."""
    from fsspec.core import url_to_fs

    try:
        fs, path = url_to_fs(uri)
    except ImportError as exc:
        protocol = uri.split("://", 1)[0]
        extra = _PROTOCOL_EXTRAS.get(protocol)
        hint = f"pip install 'annoconv[{extra}]'" if extra else str(exc)
        raise MissingDependencyError(f"{uri}: reading {protocol}:// needs {hint}") from None
    return fs, str(path)


def is_dir(uri: str) -> bool:
    if not is_remote(uri):
        return os.path.isdir(_local(uri))
    fs, path = filesystem(uri)
    return bool(fs.isdir(path))


def exists(uri: str) -> bool:
    if not is_remote(uri):
        return os.path.exists(_local(uri))
    fs, path = filesystem(uri)
    return bool(fs.exists(path))


def join(root: str, *parts: str) -> str:
    if not is_remote(root):
        return os.path.join(_local(root), *parts)
    return posixpath.join(root, *parts)


def dirname(uri: str) -> str:
    return posixpath.dirname(uri) if is_remote(uri) else os.path.dirname(_local(uri))


def relative_posix(path: str, root: str) -> str:
    """`path` relative to `root`, with forward slashes whatever the platform."""
    if is_remote(path):
        return posixpath.relpath(path.split("://", 1)[1], root.split("://", 1)[1])
    path, root = _local(path), _local(root)
    # The usual case, a plain path below the root, without os.path.relpath's normalizing
    # of both paths (it costs more than reading a small file).
    prefix = root.rstrip(os.sep) + os.sep
    if root and path.startswith(prefix):
        rest = path[len(prefix) :]
        if _plain_relative(rest):
            return rest.replace(os.sep, "/")
    return os.path.relpath(path, root).replace(os.sep, "/")


def _plain_relative(rest: str) -> bool:
    """Whether `rest` is a relative path relpath would give back unchanged: no empty, `.`
    or `..` components (so also no hidden names, to keep the test simple)."""
    return bool(rest) and not (
        os.sep + "." in os.sep + rest
        or os.sep * 2 in os.sep + rest
        or rest.endswith(os.sep)
        or (os.altsep is not None and os.altsep in rest)
    )


def list_files(root: str, suffixes: Sequence[str] | None = None) -> list[str]:
    """Every file under `root`, recursively, sorted; only those ending in `suffixes` if given."""
    wanted = tuple(s.lower() for s in suffixes) if suffixes else None
    if is_remote(root):
        fs, path = filesystem(root)
        found = [_remote_join(root, path, p) for p in fs.find(path)]
    else:
        found = []
        for folder, dirs, files in os.walk(_local(root)):
            dirs.sort()
            found.extend(os.path.join(folder, name) for name in files)
    if wanted:
        found = [p for p in found if p.lower().endswith(wanted)]
    return sorted(found)


def source_suffixes(folder: str) -> list[str]:
    """The file extensions found under a folder, most common first (for format inference)."""
    counts: dict[str, int] = {}
    for path in list_files(folder):
        suffix = posixpath.splitext(path.lower())[1]
        counts[suffix] = counts.get(suffix, 0) + 1
    return sorted(counts, key=lambda s: (-counts[s], s))


def expand_source(source: str | Sequence[str], suffixes: Sequence[str]) -> tuple[list[str], str]:
    """(files, root) for a folder (recursive), a glob, a single file or a list of files.

    `root` is the folder the files are taken relative to when naming records.
    """
    if not isinstance(source, str):
        files = sorted(source)
        return files, _common_root(files)
    if any(char in source for char in GLOB_CHARS):
        return _glob(source), _glob_root(source)
    if is_dir(source):
        return list_files(source, suffixes), source
    return [source], dirname(source)


def shards_of(prefix: str) -> list[str]:
    """The files of a sharded output named by its prefix (`out/train.record` stands for
    `out/train.record-00000-of-00004` ...), in order; empty when there are none."""
    if any(char in prefix for char in GLOB_CHARS):
        return []
    return _glob(f"{prefix}-*-of-*")


def _glob(pattern: str) -> list[str]:
    if is_remote(pattern):
        fs, path = filesystem(pattern)
        root = _glob_root(pattern)
        _, root_path = filesystem(root)
        return sorted(_remote_join(root, root_path, p) for p in fs.glob(path))
    return sorted(p for p in globlib.glob(_local(pattern), recursive=True) if os.path.isfile(p))


def _remote_join(root_uri: str, root_path: str, found: str) -> str:
    """A path fsspec listed under `root_path`, as a URL spelled like `root_uri`.

    fsspec's listings may spell paths differently from the URL (``memory://`` roots come back
    as ``/bucket/...``), so the URL is rebuilt from the part below the root.
    """
    return posixpath.join(root_uri, posixpath.relpath(found, root_path))


def _glob_root(pattern: str) -> str:
    parts = pattern.replace("\\", "/").split("/")
    fixed = []
    for part in parts:
        if any(char in part for char in GLOB_CHARS):
            break
        fixed.append(part)
    return "/".join(fixed) or "."


def _common_root(files: Sequence[str]) -> str:
    if not files:
        return "."
    if any(is_remote(f) for f in files):
        return posixpath.dirname(files[0])
    return os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])


@contextlib.contextmanager
def open_input(uri: str) -> Iterator[IO[bytes]]:
    """A binary file object for reading a local path or any fsspec URL."""
    if not is_remote(uri):
        with open(_local(uri), "rb") as handle:
            yield handle
        return
    import fsspec

    with fsspec.open(uri, "rb") as handle:
        yield handle


def decode_line(uri: str, raw: bytes, line: int) -> str:
    """One line of a text file as UTF-8; an error names the file, the line and the byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = (
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start + 1} of the line)"
        )
        raise AnnotationError(uri, message, f"line {line}") from None


def read_bytes(uri: str) -> bytes:
    if not is_remote(uri):
        with open(_local(uri), "rb") as handle:  # skips open_input's generator: a hot path
            return handle.read()
    with open_input(uri) as handle:
        return handle.read()


def size_of(uri: str) -> int:
    if not is_remote(uri):
        return os.path.getsize(_local(uri))
    fs, path = filesystem(uri)
    return int(fs.size(path))


class AtomicFile:
    """A file that appears under its final name only when `commit()` succeeds.

    Locally it is written to a hidden sibling (``.NAME.partial-XXXXXXXX``) and renamed into
    place, so a failed or killed run never leaves a file that looks complete. On other
    filesystems fsspec's deferred commit is used (an S3 multipart upload completes only on
    commit).
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._done = False
        if is_remote(uri):
            fs, path = filesystem(uri)
            self._temp: str | None = None
            self.handle: IO[bytes] = fs.open(path, "wb", autocommit=False)
        else:
            final = os.path.abspath(_local(uri))
            os.makedirs(os.path.dirname(final), exist_ok=True)
            name = os.path.basename(final)
            self._temp = os.path.join(
                os.path.dirname(final), f".{name}.partial-{uuid.uuid4().hex[:8]}"
            )
            self.handle = open(self._temp, "wb")  # noqa: SIM115 - closed in commit/abort

    def write(self, data: bytes) -> int:
        return self.handle.write(data)

    def commit(self) -> int:
        """Publish the file under its final name; returns its size in bytes."""
        if self._done:
            raise RuntimeError(f"{self.uri} was already committed or aborted")
        self._done = True
        if self._temp is None:
            self.handle.commit()  # type: ignore[attr-defined]
            self.handle.close()
            return size_of(self.uri)
        # No fsync: the rename already guarantees that no run, failed or killed, leaves a
        # complete-looking file; syncing every small file would dominate folder outputs.
        self.handle.close()
        try:
            os.replace(self._temp, _local(self.uri))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._temp)
            raise
        return os.path.getsize(_local(self.uri))

    def abort(self) -> None:
        """Throw the partial file away; safe to call more than once."""
        if self._done:
            return
        self._done = True
        if self._temp is None:
            with contextlib.suppress(Exception):
                self.handle.discard()  # type: ignore[attr-defined]
            return
        self.handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._temp)


def write_atomic(uri: str, data: bytes) -> int:
    """Write a whole small file atomically; returns its size."""
    target = AtomicFile(uri)
    try:
        target.write(data)
    except BaseException:
        target.abort()
        raise
    return target.commit()
