"""Test-only writers that engine tests hand to worker processes (imported there by name),
and `probe`, what a worker process sees of its surroundings.

`KillingTFRecordWriter` is the TFRecord writer that kills its own process in the middle of
writing a shard: once per marker file (the first task to get there dies, its retry lives),
or, with `kill_always`, whenever it writes shard 0.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from annoconv.formats.base import Format
from annoconv.formats.tfrecord import TFRecordShardWriter, TFRecordWriteOptions
from annoconv.schema import ImageRecord

KILL_AFTER = 3


class KillingTFRecordWriter(TFRecordShardWriter):
    def __init__(
        self,
        destination: str,
        *,
        kill_marker: str,
        kill_always: bool = False,
        shards: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(destination, shards=shards, **options)
        self.kill_marker = kill_marker
        self.kill_always = kill_always
        self.written = 0

    def write(self, record: ImageRecord) -> None:
        super().write(record)
        self.written += 1
        if self.written == KILL_AFTER and self._should_die():
            os.kill(os.getpid(), signal.SIGKILL)

    def _should_die(self) -> bool:
        if self.kill_always:
            return 0 in self._files
        try:
            os.close(os.open(self.kill_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True


class KillingOptions(TFRecordWriteOptions):
    kill_marker: str
    kill_always: bool = False


FORMAT = Format(
    "tfrecord-killing",
    "TFRecord that kills its worker (tests)",
    (),
    writer=KillingTFRecordWriter,
    write_options=KillingOptions,
)


def probe(variable: str) -> tuple[str, str | None, list[str]]:
    """A worker's working folder, one environment variable, and its import path."""
    return os.getcwd(), os.environ.get(variable), list(sys.path)
