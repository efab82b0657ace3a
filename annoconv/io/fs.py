"""Paths over local disks, S3 and any fsspec URL: listing sources, reading, atomic writing.

Local paths stay plain OS paths (so messages show what the user typed); anything with a
protocol (``s3://``, ``memory://``, ...) goes through fsspec.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import functools
import glob as globlib
import json
import os
import posixpath
import re
import shutil
import time
import types
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any, TypeVar, cast

from annoconv.errors import (
    AccessDeniedError,
    AnnotationError,
    MissingDependencyError,
    NotFoundError,
    StorageError,
)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

GLOB_CHARS = frozenset("*?[")
#: The annoconv extra that installs the fsspec implementation of a protocol.
_PROTOCOL_EXTRAS = {"s3": "s3", "s3a": "s3", "http": "http", "https": "http"}


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _local(uri: str) -> str:
    return uri.removeprefix("file://")


# --- storage options ---------------------------------------------------------------------
#
# The options travel with the run, not the process: `using_storage_options` sets them in a
# context variable for the code it wraps (a `convert()` call), so two runs in two threads can
# use two endpoints at once. Every remote open and listing goes through `filesystem()` or
# `open_input()`, which read it; work handed to other threads takes the context along
# (`in_this_context`), and other processes get the options in the job they run.

_options: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "annoconv_storage_options", default=types.MappingProxyType({})
)
#: Options that botocore takes as client arguments, which s3fs wants under `client_kwargs`.
_S3_CLIENT_OPTIONS = ("endpoint_url", "region_name")


@contextlib.contextmanager
def using_storage_options(options: Mapping[str, Any] | None) -> Iterator[None]:
    """Inside the block, every remote filesystem is opened with `options` (e.g.
    ``{"endpoint_url": "http://127.0.0.1:9000", "anon": False}``); None or {} changes nothing.

    The options apply to the storage protocol of each URL (the last one of a chained URL such
    as ``zip://a.tif::s3://bucket/a.zip``). For s3, `endpoint_url` and `region_name` are moved
    into ``client_kwargs`` as s3fs expects. The setting belongs to the calling thread's
    context (and the work it hands to threads with `in_this_context`), not to the process.
    """
    if not options:
        yield
        return
    token = _options.set({**_options.get(), **options})
    try:
        yield
    finally:
        _options.reset(token)


def applies_storage_options(func: F) -> F:
    """Decorates an API function that takes a `storage_options` keyword: the whole call runs
    inside `using_storage_options(storage_options)`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with using_storage_options(kwargs.get("storage_options")):
            return func(*args, **kwargs)

    return cast(F, wrapper)


def in_this_context(work: Callable[..., T]) -> Callable[..., T]:
    """`work`, to be run on another thread with this thread's run settings (its storage
    options): what a thread pool's jobs are wrapped in."""
    return functools.partial(contextvars.copy_context().run, work)


def current_storage_options() -> dict[str, Any]:
    """The options `using_storage_options` set (for handing them to other processes)."""
    return dict(_options.get())


def parse_storage_option(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` from the command line: true/false, none/null, integers, floats and JSON
    objects or lists become Python values, anything else stays text. A dotted key
    (`client_kwargs.region_name=eu-west-1`) makes a nested option."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"storage option {text!r} is not KEY=VALUE (e.g. endpoint_url=http://...)")
    value = _option_value(raw.strip())
    for part in reversed(key.split(".")[1:]):
        value = {part: value}
    return key.split(".")[0], value


def merge_storage_options(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """Options from several `parse_storage_option` results, nested dicts merged."""
    merged: dict[str, Any] = {}
    for key, value in pairs:
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _option_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    if raw.startswith(("{", "[")):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(f"storage option value {raw!r} is not valid JSON") from None
    return raw


def _protocols(uri: str) -> list[str]:
    return [part.split("://", 1)[0] for part in uri.split("::") if "://" in part]


def _fs_kwargs(uri: str) -> dict[str, Any]:
    """The keyword arguments fsspec takes for `uri` under the current storage options."""
    options = dict(_options.get())
    protocols = _protocols(uri)
    if not options or not protocols:
        return {}
    target = protocols[-1]
    if target in ("s3", "s3a"):
        client = dict(options.pop("client_kwargs", None) or {})
        for name in _S3_CLIENT_OPTIONS:
            if name in options:
                client[name] = options.pop(name)
        if client:
            options["client_kwargs"] = client
    return options if len(protocols) == 1 else {target: options}


# --- errors and retries -------------------------------------------------------------------

#: Errors that say something about the path, not the connection: never retried.
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
#: botocore's errors for credentials that are missing or incomplete (matched by name: botocore
#: is an optional dependency).
_CREDENTIAL_ERRORS = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
)
_TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET, None}


@contextlib.contextmanager
def storage_errors(uri: str) -> Iterator[None]:
    """Missing and forbidden paths as one-line errors naming `uri` (NotFoundError is still a
    FileNotFoundError, AccessDeniedError a PermissionError)."""
    try:
        yield
    except (NotFoundError, AccessDeniedError):
        raise
    except FileNotFoundError as exc:
        raise NotFoundError(uri, f"not found ({_detail(exc)})") from None
    except PermissionError as exc:
        raise AccessDeniedError(
            uri, f"permission denied ({_detail(exc)}); check the credentials and the policy"
        ) from None
    except Exception as exc:
        if type(exc).__name__ not in _CREDENTIAL_ERRORS:
            raise
        raise AccessDeniedError(uri, f"no usable credentials ({exc})") from None


def os_problem(exc: OSError) -> str:
    """An OSError as a short phrase, without the path (the message names it already):
    `no such file or directory`."""
    if exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def _detail(exc: OSError) -> str:
    return exc.strerror or (str(exc.args[0]) if exc.args else type(exc).__name__)


def is_transient(exc: BaseException) -> bool:
    """Whether an error may go away when tried again (a dropped connection, a timeout, a
    server error that s3fs reports as EIO), as opposed to a missing or forbidden path."""
    if isinstance(exc, _PERMANENT):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def retrying(action: Callable[[], T], *, attempts: int = 3, backoff: float = 0.25) -> T:
    """`action()`, tried again after transient errors (`attempts` in all, the wait doubling
    from `backoff` seconds); other errors and the last attempt's error propagate."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem for a remote URI and the path within it."""
    from fsspec.core import url_to_fs

    try:
        fs, path = url_to_fs(uri, **_fs_kwargs(uri))
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
    with storage_errors(uri):
        return bool(fs.isdir(path))


def exists(uri: str) -> bool:
    if not is_remote(uri):
        return os.path.exists(_local(uri))
    fs, path = filesystem(uri)
    with storage_errors(uri):
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


#: Within `listing_once()` (a conversion): folders listed whole to infer their format, kept
#: for the one next listing of the same folder (the reader's), so a run walks its source once.
_LISTED: contextvars.ContextVar[dict[str, list[str]] | None] = contextvars.ContextVar(
    "annoconv_listed", default=None
)


@contextlib.contextmanager
def listing_once() -> Iterator[None]:
    """While in it, a folder listed by `source_suffixes` is not walked again by the next
    `list_files` of it (which takes the kept listing; any later one walks the folder)."""
    token = _LISTED.set({})
    try:
        yield
    finally:
        _LISTED.reset(token)


def list_files(root: str, suffixes: Sequence[str] | None = None) -> list[str]:
    """Every file under `root`, recursively, sorted; only those ending in `suffixes` if given."""
    wanted = tuple(s.lower() for s in suffixes) if suffixes else None
    kept = _LISTED.get()
    found = kept.pop(root, None) if kept is not None else None
    if found is None:
        found = _all_files(root)
    if wanted:
        found = [p for p in found if p.lower().endswith(wanted)]
    return sorted(found)


#: What a run stages its outputs under (`AtomicFile`'s hidden sibling, an engine's staging
#: folder): a run killed before publishing leaves them, and no listing of a source takes them.
STAGED_NAME = re.compile(r"\..+\.(?:partial|annoconv)-[0-9a-f]{8}")


def _all_files(root: str) -> list[str]:
    if is_remote(root):
        fs, path = filesystem(root)
        with storage_errors(root):
            found = [_remote_join(root, path, p) for p in fs.find(path)]
        return [p for p in found if not _staged(posixpath.relpath(p, root))]
    found = []
    for folder, dirs, files in os.walk(_local(root)):
        dirs[:] = sorted(name for name in dirs if not STAGED_NAME.fullmatch(name))
        found.extend(
            os.path.join(folder, name) for name in files if not STAGED_NAME.fullmatch(name)
        )
    return found


def _staged(relative: str) -> bool:
    return any(STAGED_NAME.fullmatch(part) for part in relative.split("/"))


def source_suffixes(folder: str) -> list[str]:
    """The file extensions found under a folder, most common first (for format inference)."""
    found = _all_files(folder)
    kept = _LISTED.get()
    if kept is not None:
        kept[folder] = found
    counts: dict[str, int] = {}
    for path in found:
        suffix = posixpath.splitext(path.lower())[1]
        counts[suffix] = counts.get(suffix, 0) + 1
    return sorted(counts, key=lambda s: (-counts[s], s))


def expand_source(source: str | Sequence[str], suffixes: Sequence[str]) -> tuple[list[str], str]:
    """(files, root) for a folder (recursive), a glob, a single file or a list of files.
    A path that exists is taken as it is, glob characters and all (a folder `run [1]`).

    `root` is the folder the files are taken relative to when naming records.
    """
    if not isinstance(source, str):
        files = sorted(source)
        return files, _common_root(files)
    if any(char in source for char in GLOB_CHARS) and not exists(source):
        return _glob(source), _glob_root(source)
    if is_dir(source):
        return list_files(source, suffixes), source
    return [source], dirname(source)


_SHARD = r"-(\d{5,})-of-(\d{5,})"
#: ``-00000-of-00004`` ending a shard's name, as we write them: its index, the count of its set.
SHARD_SUFFIX = re.compile(_SHARD + "$")
#: The same, maybe with an extension after it, as other tools name shards
#: (``train-00000-of-00004.tfrecord``, ``...-of-00004.gz``).
_SHARD_NAMED = re.compile(_SHARD + r"(?:\.[^/\\]*)?$")


def shard_numbers(path: str) -> tuple[str, int, int] | None:
    """(prefix, index, count) of a shard's path; None for a path not named as a shard."""
    match = _SHARD_NAMED.search(path)
    return (path[: match.start()], int(match[1]), int(match[2])) if match else None


def shards_of(prefix: str) -> list[str]:
    """The files of a sharded output named by its prefix (`out/train.record` stands for
    `out/train.record-00000-of-00004` ...), in order; empty when there are none. Only the
    prefix's own: not those of a longer prefix it begins (`out/train.record-old-...`)."""
    base = posixpath.basename(prefix.replace("\\", "/"))
    return [
        path
        for path in _glob(f"{globlib.escape(prefix)}-*-of-*")
        if _SHARD_NAMED.fullmatch(posixpath.basename(path.replace("\\", "/"))[len(base) :])
    ]


def comparable_path(uri: str) -> str:
    """A spelling of `uri` that equals another path's when both name the same file: local
    paths resolved (links, `..`, `file://`), remote URLs without their protocol."""
    if is_remote(uri):
        return uri.split("://", 1)[1].rstrip("/")
    return os.path.realpath(_local(uri))


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


def head_lines(uri: str, limit: int = 1 << 16) -> bytes | None:
    """The first whole lines of `uri` within its first `limit` bytes (the whole file when it
    is shorter), for a quick look at a text file; None when its first line is longer (a
    JSON document on one line is no file of lines)."""
    with open_input(uri) as handle:
        head = handle.read(limit + 1)
    if len(head) <= limit:
        return head
    end = head.rfind(b"\n")
    return head[: end + 1] if end >= 0 else None


@contextlib.contextmanager
def open_input(uri: str) -> Iterator[IO[bytes]]:
    """A binary file object for reading a local path or any fsspec URL."""
    if not is_remote(uri):
        with open(_local(uri), "rb") as handle:
            yield handle
        return
    import fsspec

    with storage_errors(uri), fsspec.open(uri, "rb", **_fs_kwargs(uri)) as handle:
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
    """The whole file; remote reads are retried on transient errors."""
    if not is_remote(uri):
        with open(_local(uri), "rb") as handle:  # skips open_input's generator: a hot path
            return handle.read()

    def read() -> bytes:
        with open_input(uri) as handle:
            return handle.read()

    return retrying(read)


def size_of(uri: str) -> int:
    if not is_remote(uri):
        return os.path.getsize(_local(uri))
    fs, path = filesystem(uri)
    with storage_errors(uri):
        return int(fs.size(path))


#: Filesystems whose files honour ``autocommit=False`` (others, like ``memory://``, would
#: show a partial file under its final name, so they get a hidden temporary and a move).
_DEFERRED_COMMIT = frozenset({"s3", "s3a", "gs", "gcs"})


def move(source: str, target: str) -> None:
    """Rename a file into place (atomic locally; a server-side copy on S3, so the bytes do not
    travel through this process)."""
    if not is_remote(source):
        if os.path.isdir(_local(target)):  # (a file's staged copy: os.replace's error names it)
            raise StorageError(target, "names a folder; name the file to write")
        os.makedirs(os.path.dirname(os.path.abspath(_local(target))), exist_ok=True)
        os.replace(_local(source), _local(target))
        return
    fs, path = filesystem(source)
    with storage_errors(target):
        fs.mv(path, filesystem(target)[1])


def remove_file(uri: str) -> None:
    """Remove one file; nothing happens when it does not exist."""
    if not is_remote(uri):
        with contextlib.suppress(FileNotFoundError):
            os.remove(_local(uri))
        return
    fs, path = filesystem(uri)
    with contextlib.suppress(FileNotFoundError), storage_errors(uri):
        fs.rm(path)


def remove_tree(uri: str) -> None:
    """Remove a folder and everything under it; nothing happens when it does not exist."""
    if not is_remote(uri):
        shutil.rmtree(_local(uri), ignore_errors=True)
        return
    fs, path = filesystem(uri)
    with contextlib.suppress(FileNotFoundError), storage_errors(uri):
        fs.rm(path, recursive=True)


class AtomicFile:
    """A file that appears under its final name only when `commit()` succeeds.

    Locally it is written to a hidden sibling (``.NAME.partial-XXXXXXXX``) and renamed into
    place, so a failed or killed run never leaves a file that looks complete. On other
    filesystems fsspec's deferred commit is used: an S3 upload is a multipart upload that is
    completed on commit and aborted on abort (a killed run leaves only an incomplete upload,
    which no listing shows and a bucket lifecycle rule removes). Filesystems without deferred
    commit get the hidden sibling and a move.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._done = False
        self._remote_temp: str | None = None
        if is_remote(uri):
            self._temp: str | None = None
            self._fs, self._path = filesystem(uri)
            with storage_errors(uri):
                self.handle: IO[bytes] = self._open_remote()
        else:
            final = os.path.abspath(_local(uri))
            # Found now, not by the rename that publishes the whole run's work.
            if os.path.isdir(final) or uri.endswith(("/", os.sep)):
                raise StorageError(uri, "names a folder; name the file to write")
            name = os.path.basename(final)
            self._temp = os.path.join(
                os.path.dirname(final), f".{name}.partial-{uuid.uuid4().hex[:8]}"
            )
            try:
                os.makedirs(os.path.dirname(final), exist_ok=True)
                self.handle = open(self._temp, "wb")  # noqa: SIM115 - closed in commit/abort
            except (FileExistsError, NotADirectoryError):
                raise StorageError(
                    uri, "cannot be written: a file stands where its folder would be"
                ) from None

    def _open_remote(self) -> IO[bytes]:
        if _protocols(self.uri)[-1] in _DEFERRED_COMMIT:
            return self._fs.open(self._path, "wb", autocommit=False)  # type: ignore[no-any-return]
        folder, name = posixpath.split(self._path)
        self._remote_temp = posixpath.join(folder, f".{name}.partial-{uuid.uuid4().hex[:8]}")
        return self._fs.open(self._remote_temp, "wb")  # type: ignore[no-any-return]

    def write(self, data: bytes) -> int:
        with storage_errors(self.uri):
            return self.handle.write(data)

    def commit(self) -> int:
        """Publish the file under its final name; returns its size in bytes."""
        if self._done:
            raise RuntimeError(f"{self.uri} was already committed or aborted")
        if self._temp is None:
            return self._commit_remote()
        self._done = True
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

    def _commit_remote(self) -> int:
        # close() first: it uploads the last buffered part (without committing, autocommit
        # being off); committing before it would complete the upload without that part.
        try:
            with storage_errors(self.uri):
                self.handle.close()
                if self._remote_temp is None:
                    self.handle.commit()  # type: ignore[attr-defined]
                else:
                    self._fs.mv(self._remote_temp, self._path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return size_of(self.uri)

    def abort(self) -> None:
        """Throw the partial file away; safe to call more than once."""
        if self._done:
            return
        self._done = True
        if self._temp is None:
            # Cleaning up must not hide the error that made the run abort.
            with contextlib.suppress(Exception):
                if self._remote_temp is None:
                    self.handle.discard()  # type: ignore[attr-defined]
                else:
                    self.handle.close()
                    self._fs.rm(self._remote_temp)
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
