"""Images placed beside written annotations (YOLO's ``images/``, COCO's ``--copy-images``):
copied, hard-linked or symlinked, with the bytes TFRecords embed (`annoconv.io.embed`):
JPEG and PNG byte for byte, other formats transcoded to PNG or JPEG."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import posixpath
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Literal, NoReturn

from annoconv.errors import AnnotationError
from annoconv.io import filewriter
from annoconv.io.embed import SizePolicy, embed_image
from annoconv.io.filewriter import FileWrites, write_file
from annoconv.io.fs import is_remote, join, remove_file, write_atomic
from annoconv.io.images import RecordImages, is_image_name, read_image_info
from annoconv.schema import ImageRecord

#: How images reach the output: copied, hard-linked, symlinked, or not at all (labels only).
ImagesMode = Literal["copy", "link", "symlink", "none"]
IMAGES_MODES: tuple[ImagesMode, ...] = ("copy", "link", "symlink", "none")
_KEPT_FORMATS = ("JPEG", "PNG")
#: Files sent to the writer process at a time (or fewer once their bytes reach BATCH_BYTES):
#: a few hundred per message keep the pipe's cost small beside the files' own.
BATCH_FILES = 256
BATCH_BYTES = 4 << 20
_EXTENSIONS = {"jpeg": ".jpg", "png": ".png"}


@dataclass(frozen=True)
class PlacedImage:
    """An image as the output has it: its name (relative to the images folder, posix), its
    size in pixels, the bytes written (0 for a link or nothing), and, when the annotation's
    size disagreed under size policy "warn", the scale to apply to pixel boxes."""

    name: str
    width: int
    height: int
    written: int
    uri: str | None
    scale: tuple[float, float] | None = None
    note: str | None = None


class _ProcessWrites:
    """Files written by a process of their own (`annoconv.io.filewriter`, run as a script with
    `WRITE_THREADS` threads) and sent to it in batches: its threads wait for nothing but the
    kernel, where threads of this process would wait for the GIL that the work making the
    files holds (a convoy: each open, write and close waits up to the switch interval). The
    script imports nothing but the standard library (`multiprocessing` would run the caller's
    main script again in it). It starts with the first full batch; a folder of fewer files
    is written here, at `finish()`; where it cannot start, threads of this process write
    (`FileWrites`). The first error is raised by the next batch's `put()` or by `finish()`,
    as it was raised there."""

    def __init__(self) -> None:
        self._batch: list[tuple[str, bytes]] = []
        self._batch_bytes = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._threads: FileWrites | None = None
        self._error: BaseException | None = None

    def put(self, path: str, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._batch.append((path, data))
        self._batch_bytes += len(data)
        if len(self._batch) >= BATCH_FILES or self._batch_bytes >= BATCH_BYTES:
            self._send_batch()

    def finish(self) -> None:
        if self._error is not None:
            raise self._error
        if self._threads is not None:
            self._send_batch()
            self._threads.finish()
            return
        if self._connection is None:
            for path, data in self._batch:  # too few to be worth a process
                write_file(path, data)
            self._batch.clear()
            return
        try:
            self._send_batch()
            self._send(None)
            try:
                reply = self._connection.recv()
            except EOFError:
                reply = self._ended()
            if reply is None and self._process is not None:
                self._process.wait()  # done: it exits as soon as it has said so
        except BaseException:  # an interrupt, say: the process writes nothing more
            self.stop()
            raise
        self.stop()
        if reply is not None:
            self._fail(reply)

    def stop(self) -> None:
        """The process ended now (killed if still writing): nothing more is written."""
        process, connection, threads = self._process, self._connection, self._threads
        self._process = self._connection = self._threads = None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
        if connection is not None:
            connection.close()
        if threads is not None:
            with contextlib.suppress(BaseException):
                threads.finish()

    def _send_batch(self) -> None:
        if self._connection is None and self._threads is None:
            self._start()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        if self._threads is not None:
            for path, data in batch:
                self._threads.put(path, data)
        else:
            self._send(batch)

    def _start(self) -> None:
        mine, theirs = socket.socketpair()
        try:
            if not os.path.isfile(filewriter.__file__):
                raise FileNotFoundError(filewriter.__file__)
            self._process = subprocess.Popen(
                [sys.executable, "-S", filewriter.__file__, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
        except OSError:  # no interpreter or script to start (an embedded Python): threads
            mine.close()
            self._threads = FileWrites()
        else:
            self._connection = Connection(mine.detach())
        finally:
            theirs.close()

    def _send(self, batch: list[tuple[str, bytes]] | None) -> None:
        assert self._connection is not None
        if self._connection.poll():  # the process failed: its error, or its end
            try:
                error = self._connection.recv()
            except EOFError:
                error = self._ended()
            self._fail(error)
        try:
            self._connection.send(batch)
        except OSError:  # the process ended; it may have said why
            self._fail(self._ended())

    def _ended(self) -> BaseException:
        """Why the process stopped listening: the error it sent, or its exit code."""
        assert self._connection is not None and self._process is not None
        with contextlib.suppress(EOFError, OSError):
            if self._connection.poll():
                reply = self._connection.recv()
                if isinstance(reply, BaseException):
                    return reply
        code = self._process.wait()
        return OSError(f"the process writing files ended with exit code {code}")

    def _fail(self, error: BaseException) -> NoReturn:
        self._error = error
        self.stop()
        raise error


def _new_writes() -> _ProcessWrites | FileWrites:
    """A writer process, but not in a daemonic process (the processes engine's workers, busy
    on every core already) nor off POSIX (its connection is a descriptor): threads there."""
    if os.name != "posix" or multiprocessing.current_process().daemon:
        return FileWrites()
    return _ProcessWrites()


class StagedFolder:
    """A folder of many small files published at once: locally the files are written,
    plainly, into a hidden sibling (``.NAME.partial-XXXXXXXX``) moved into place by
    `publish()` (one rename when the folder is new); elsewhere (S3) each file is written
    atomically to its final name and `abort()` removes those written."""

    def __init__(self, final: str) -> None:
        self.final = final
        self.remote = is_remote(final)
        self.staging = final
        if not self.remote:
            parent, name = os.path.split(os.path.abspath(final.removeprefix("file://")))
            self.staging = os.path.join(parent, f".{name}.partial-{uuid.uuid4().hex[:8]}")
        self._made: set[str] = set()
        self._written: list[str] = []
        self._writes: _ProcessWrites | FileWrites | None = None

    def path(self, name: str) -> str:
        """Where the file `name` (relative, posix) is being written now."""
        return join(self.staging, *name.split("/"))

    def final_path(self, name: str) -> str:
        """Where the file `name` is once published."""
        return join(self.final, *name.split("/"))

    def prepare(self, name: str) -> str:
        """`path(name)`, its folder made: for a file written by other means (a link)."""
        target = self.path(name)
        if self.remote:
            self._written.append(target)  # locally, abort() removes the staging folder
        else:
            folder = os.path.dirname(target)
            if folder not in self._made:
                os.makedirs(folder, exist_ok=True)
                self._made.add(folder)
        return target

    def write(self, name: str, data: bytes) -> int:
        if self.remote:
            target = self.path(name)
            size = write_atomic(target, data)
            self._written.append(target)
            return size
        if self._writes is None:
            self._writes = _new_writes()
        self._writes.put(self.prepare(name), data)
        return len(data)

    def _finish_writes(self) -> None:
        writes, self._writes = self._writes, None
        if writes is not None:
            writes.finish()

    def publish(self) -> None:
        """Move the files into place: the staging folder renamed, or, when the folder exists
        (an earlier run, another writer of the same run), each file moved into it (files
        there that this writer did not write are left alone)."""
        self._finish_writes()
        if self.remote or not os.path.isdir(self.staging):
            return
        final = os.path.abspath(self.final.removeprefix("file://"))
        if not os.path.lexists(final):
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(self.staging, final)
            return
        for folder, _dirs, files in os.walk(self.staging):
            target_folder = os.path.join(final, os.path.relpath(folder, self.staging))
            os.makedirs(target_folder, exist_ok=True)
            for name in files:
                os.replace(os.path.join(folder, name), os.path.join(target_folder, name))
        shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        writes, self._writes = self._writes, None
        if isinstance(writes, _ProcessWrites):
            writes.stop()  # its files go: none is written after this
        elif writes is not None:
            with contextlib.suppress(BaseException):  # the run failed already; its files go
                writes.finish()
        if self.remote:
            for target in self._written:
                remove_file(target)
        else:
            shutil.rmtree(self.staging, ignore_errors=True)
        self._written.clear()


def _with_extension(name: str, extension: str) -> str:
    """`name`, with `extension` added when it has no image extension: datasets find their
    images by extension (old labelImg files name `photo2` for photo2.jpg)."""
    return name if is_image_name(name) else name + extension


class ImagePlacer:
    """Places each record's image under `folder` as `name` (its extension changed when the
    image is transcoded). `images` is the run's images folder, where images are looked for.
    With a `staged` folder, files go there (and `folder` is its final place)."""

    def __init__(
        self,
        folder: str,
        images: str | None,
        *,
        mode: ImagesMode = "copy",
        size_policy: SizePolicy = "fail",
        jpeg_quality: int = 95,
        staged: StagedFolder | None = None,
    ) -> None:
        if mode not in IMAGES_MODES:
            raise ValueError(f"images_mode must be one of {', '.join(IMAGES_MODES)}, got {mode!r}")
        self.folder = folder
        self.staged = staged
        self.mode = mode
        self.size_policy = size_policy
        self.jpeg_quality = jpeg_quality
        self._finder = RecordImages(images)

    def place(self, record: ImageRecord, name: str, data: bytes | None = None) -> PlacedImage:
        """Place the image of `record` (its bytes `data` when the caller has them)."""
        uri = record.image_uri if data is not None and record.image_uri else None
        uri = uri or self._finder.find(record)
        if self.mode == "none":
            width, height = self._size(record, uri)
            return PlacedImage(name, width, height, 0, None)
        if self.mode in ("link", "symlink") and data is None:
            linked = self._link(record, uri, name)
            if linked is not None:
                return linked
        return self._copy(record, uri, name, data)

    def _size(self, record: ImageRecord, uri: str) -> tuple[int, int]:
        if record.width is not None and record.height is not None:
            return record.width, record.height
        info = read_image_info(uri)
        return info.width, info.height

    def _link(self, record: ImageRecord, uri: str, name: str) -> PlacedImage | None:
        """A link to a JPEG or PNG image; None for another format (transcoded instead)."""
        if is_remote(uri) or is_remote(self.folder):
            raise AnnotationError(
                record.source or record.key,
                f"images_mode {self.mode} needs local images and a local output ({uri})",
            )
        info = read_image_info(uri)
        if info.format not in _KEPT_FORMATS or info.exif_orientation != 1:
            return None
        name = _with_extension(name, _EXTENSIONS[info.format.lower()])
        width, height = info.width, info.height
        if record.has_size and (record.width, record.height) != (width, height):
            return None  # the size policy decides, on the copy path
        if self.staged is not None:
            target, final = self.staged.prepare(name), self.staged.final_path(name)
        else:
            target = final = join(self.folder, *name.split("/"))
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            remove_file(target)
        if self.mode == "link":
            os.link(uri, target)
        else:
            os.symlink(os.path.abspath(uri), target)
        return PlacedImage(name, width, height, 0, final)

    def _copy(self, record: ImageRecord, uri: str, name: str, data: bytes | None) -> PlacedImage:
        size = (record.width, record.height) if record.has_size else None
        image = embed_image(
            uri,
            annotated_size=size,  # type: ignore[arg-type]
            size_policy=self.size_policy,
            jpeg_quality=self.jpeg_quality,
            source=record.source or record.key,
            data=data,
        )
        if image.transcoded:
            name = posixpath.splitext(name)[0] + _EXTENSIONS[image.format]
        name = _with_extension(name, _EXTENSIONS[image.format])
        if self.staged is not None:
            written, target = self.staged.write(name, image.data), self.staged.final_path(name)
        else:
            target = join(self.folder, *name.split("/"))
            written = write_atomic(target, image.data)
        return PlacedImage(
            name, image.width, image.height, written, target, image.scale, image.note
        )
