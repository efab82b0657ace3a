"""One run at a time per output: a lock file beside the output, named after it.

Two runs writing the same output (a CSV, a shard prefix, a Parquet dataset folder) would both
succeed, the later one silently replacing the other's files, or, with another shard count,
deleting them as stale. So a run takes `output_lock(output)` before it writes anything, and a
second run on the same output fails at once with one line naming the holder::

    out/train.record: another run is writing this output (pid 4242 on host build-7, since
    2026-12-02T03:50:00Z); wait for it to end, or remove out/.train.record.lock if it is gone

The lock file (``.NAME.lock`` beside ``NAME``, hidden: no shard pattern matches it) holds the
holder's pid, host and start time, for that message. What holds the lock is an exclusive
`flock` on the file, which the kernel drops when the holder ends however it ends (SIGKILL
too), so a lock left by a dead run is simply taken over, and the file is removed when the run
releases the lock. Where `flock` is missing (Windows) the file is created exclusively instead,
and a lock whose pid is no longer alive on this host is taken over.

Local paths only: object stores (``s3://``...) have no locks, so remote outputs are not
locked (`output_lock` yields None for them); see docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from annoconv.errors import OutputLockedError
from annoconv.io.fs import is_remote

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"


def lock_path(output: str) -> str:
    """The lock file of `output`: ``.NAME.lock`` in the folder of ``NAME`` (links and `..`
    resolved, so that every spelling of one output shares one lock)."""
    final = os.path.realpath(output.removeprefix("file://").rstrip("/\\") or ".")
    folder, name = os.path.split(final)
    return os.path.join(folder, f".{name}{LOCK_SUFFIX}")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says."""

    pid: int | None
    host: str | None
    started: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "its holder did not say who it is"
        since = f", since {self.started}" if self.started else ""
        return f"pid {self.pid} on host {self.host or 'unknown'}{since}"


class OutputLock:
    """A held lock on one output; `release()` gives it up (and removes the lock file)."""

    def __init__(
        self, output: str, path: str, handle: IO[str], created: Sequence[str] = ()
    ) -> None:
        self.output = output
        self.path = path
        self._handle: IO[str] | None = handle
        self._created = list(created)

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        # Removed while still held: a run waiting on the old file sees it gone and retries.
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        handle.close()  # (closing drops the flock)
        # The folders made for the lock, when the run left them empty (it failed before
        # writing): a mistyped source must not leave `out/deep/` behind.
        for folder in self._created:
            try:
                os.rmdir(folder)
            except OSError:
                break

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(output: str) -> OutputLock:
    """The lock on `output` (a local path), or OutputLockedError naming the run holding it."""
    path = lock_path(output)
    created = _missing_folders(os.path.dirname(path))
    for _attempt in range(100):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            handle = _locked(output, path) if fcntl is not None else _created(output, path)
        except FileNotFoundError:  # another run removed the empty folder it had made
            continue
        if handle is not None:
            _write_holder(handle)
            return OutputLock(output, path, handle, created)
    raise OutputLockedError(output, path, _read_holder(path).describe())


def _missing_folders(folder: str) -> list[str]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while folder and not os.path.exists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


@contextlib.contextmanager
def output_lock(output: str) -> Iterator[OutputLock | None]:
    """Holds the lock on `output` for the block (nothing for remote outputs)."""
    if is_remote(output):
        yield None
        return
    with acquire(output) as lock:
        yield lock


def _locked(output: str, path: str) -> IO[str] | None:
    """The lock file opened and flocked, or None to try again (it was replaced meanwhile);
    OutputLockedError when another process holds it."""
    assert fcntl is not None
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open while held
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise OutputLockedError(output, path, _read_holder(path).describe()) from None
    except BaseException:
        handle.close()
        raise
    try:
        current = os.stat(path)
    except FileNotFoundError:
        current = None
    opened = os.fstat(handle.fileno())
    if current is None or (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
        handle.close()  # its holder removed it as we opened it: take the new one
        return None
    return handle


def _created(output: str, path: str) -> IO[str] | None:
    """The lock file, created exclusively; None once a stale one was removed (try again)."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    except FileExistsError:
        holder = _read_holder(path)
        if holder.host == socket.gethostname() and holder.pid and not _alive(holder.pid):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            return None
        raise OutputLockedError(output, path, holder.describe()) from None
    return os.fdopen(descriptor, "w+", encoding="utf-8")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _write_holder(handle: IO[str]) -> None:
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(holder) + "\n")
    handle.flush()


def _read_holder(path: str) -> Holder:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            found = json.loads(handle.read(4096) or "{}")
    except (OSError, ValueError):
        found = {}
    if not isinstance(found, dict):
        found = {}
    pid = found.get("pid")
    host, started = found.get("host"), found.get("started")
    return Holder(
        pid if isinstance(pid, int) else None,
        host if isinstance(host, str) else None,
        started if isinstance(started, str) else None,
    )
