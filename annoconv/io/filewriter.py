"""The process writing a staged folder's files (`annoconv.io.placing.StagedFolder`), and the
threads that write them there. Run as a script (``python -S filewriter.py DESCRIPTOR``), it
imports nothing but the standard library: it starts in a few hundredths of a second, and its
threads wait for nothing but the kernel, where threads beside the work that makes the files
wait for the GIL that work holds (each open, write and close up to the switch interval).

Protocol, on the connection `DESCRIPTOR` (`multiprocessing.connection`): lists of
(path, bytes) to write; None when there are no more, answered with None or the first error
(sent as soon as it happens, too); the end of the connection (the parent gone) stops it."""

from __future__ import annotations

import os
import pickle
import queue
import signal
import sys
import threading
from multiprocessing.connection import Connection

#: Threads creating a staged folder's files: two keep the kernel busy on a second core
#: (118,287 label files: file creation is most of a labels-only YOLO run's time).
WRITE_THREADS = 2


#: How a file is opened: as ``open(path, "wb")`` opens it, without Python's file objects.
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def write_file(path: str, data: bytes) -> None:
    handle = os.open(path, _FLAGS, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view) :]
    finally:
        os.close(handle)


class FileWrites:
    """Files written by threads of their own, so that creating them (kernel time, which
    lets go of the GIL) overlaps the work that makes them, and each other. At most `depth`
    puts wait (each a file, or a list of them); the first error is raised by the next put
    or by `finish()`."""

    def __init__(self, depth: int = 256, threads: int = WRITE_THREADS) -> None:
        self._queue: queue.Queue[list[tuple[str, bytes]] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._run, name="annoconv-writes", daemon=True)
            for _ in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def put(self, path: str, data: bytes) -> None:
        self.put_many([(path, data)])

    def put_many(self, files: list[tuple[str, bytes]]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(files)

    def finish(self) -> None:
        for _thread in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (files := self._queue.get()) is not None:
            for path, data in files:
                if self._error is not None:
                    break
                try:
                    write_file(path, data)
                except BaseException as error:  # raised in the writer's thread
                    self._error = error


def serve(descriptor: int) -> None:
    """Write the batches received on the connection `descriptor` (see the module). Interrupts
    are the parent's to handle: it stops this process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection = Connection(descriptor)
    writes = FileWrites(depth=4)  # batches: a few hundred files each
    failed = False
    while True:
        try:
            batch = connection.recv()
        except EOFError:
            os._exit(0)  # the parent is gone: its staging folder is never published
        if batch is None:
            break
        if failed:
            continue  # the parent has the error; what it sent meanwhile is not written
        try:
            half = len(batch) // 2  # one half a thread: both write while the next arrives
            writes.put_many(batch[:half])
            writes.put_many(batch[half:])
        except BaseException as error:
            failed = True
            connection.send(_picklable(error))
    try:
        writes.finish()
    except BaseException as error:
        if not failed:
            connection.send(_picklable(error))
        return
    connection.send(None)


def _picklable(error: BaseException) -> BaseException:
    """`error`, or, when it cannot cross the connection, an OSError with its message."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return OSError(str(error))
    return error


if __name__ == "__main__":
    serve(int(sys.argv[1]))
