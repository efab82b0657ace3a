"""Records built in Python as a source: `write()` sends them to any output `convert()` writes.

    from annoconv import ImageRecord, ObjectAnnotation, write
    write(my_records(), "out/train.record", images="photos/", split="train=0.8,test=0.2")

A run may read its source twice (a first pass settles the label map, the splits and the shards),
while records from a generator come once: they are spooled to a temporary file as they come and
read back from it, so memory holds one record (and the set of keys, checked unique) at a time
however many there are.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from annoconv.errors import AnnoconvError, OptionError
from annoconv.formats.base import Reader, ReadResult
from annoconv.options import RunOptions
from annoconv.report import Report
from annoconv.schema import ImageRecord

#: What a records source is called in messages and reports.
RECORDS_SOURCE = "<records>"


class SpooledRecords(Reader):
    """A reader of records written once to a spool file by `spool()`, in their order."""

    def __init__(self, path: str, count: int, *, images: str | None = None) -> None:
        super().__init__(RECORDS_SOURCE, images=images)
        self.path = path
        self.count = count

    def __iter__(self) -> Iterator[ReadResult]:
        with open(self.path, "rb") as handle:
            for _ in range(self.count):
                yield pickle.load(handle)

    def count_hint(self) -> int:
        return self.count


def spool(records: Iterable[ImageRecord], folder: str, *, images: str | None) -> SpooledRecords:
    """Write `records` to a file in `folder`, checking that each is an ImageRecord with a key
    of its own (keys name images in splits, shards and reports)."""
    path = os.path.join(folder, "records.pickle")
    seen: set[str] = set()
    with open(path, "wb") as handle:
        for index, record in enumerate(records):
            if not isinstance(record, ImageRecord):
                raise AnnoconvError(
                    f"{RECORDS_SOURCE}: item {index} is a {type(record).__name__}, "
                    "not an ImageRecord"
                )
            if record.key in seen:
                raise AnnoconvError(f"{RECORDS_SOURCE}: item {index}: key {record.key!r} twice")
            seen.add(record.key)
            pickle.dump(record, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return SpooledRecords(path, len(seen), images=images)


def write(
    records: Iterable[ImageRecord],
    output: str,
    options: RunOptions | None = None,
    **keywords: Any,
) -> Report:
    """Write `records` (ImageRecords built in Python: another format's annotations, a model's
    detections) to `output`, in any format and with any option of `convert()` (`to_format`,
    `label_map`, `split`, `write_options`, the operations...), as keywords or a
    `RunOptions`, on the local engine.

    `images` is the folder the images are found in by each record's `filename` (or give each
    record its `image_uri`). The records are iterated once, spooled to a temporary file."""
    from annoconv.convert import convert

    settings = RunOptions.of(keywords) if options is None else options.replaced(**keywords)
    if settings.engine != "local":
        raise OptionError("write() runs on the local engine; write a format, then convert()")
    with tempfile.TemporaryDirectory(prefix="annoconv-records-") as folder:
        reader = spool(records, folder, images=settings.images)
        return convert(reader, output, settings)
