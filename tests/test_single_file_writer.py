"""The life cycle every `SingleFileWriter` shares (CSV, Faster R-CNN txt): the file streams to a
temporary name, `abort()` removes it, and nothing is written after `close()`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annoconv.formats.base import SingleFileWriter
from annoconv.formats.csv import CsvWriter
from annoconv.formats.frcnn import FrcnnWriter
from annoconv.schema import ImageRecord, ObjectAnnotation

WRITERS = [(CsvWriter, "train.csv"), (FrcnnWriter, "train.txt")]


def a_record() -> ImageRecord:
    dog = ObjectAnnotation(label="dog", xmin=1, ymin=1, xmax=2, ymax=2)
    return ImageRecord(key="a.jpg", filename="a.jpg", width=10, height=10, objects=[dog])


@pytest.mark.parametrize(("writer_class", "name"), WRITERS)
def test_abort_leaves_nothing(
    writer_class: type[SingleFileWriter], name: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    writer = writer_class(str(out / name))
    writer.write(a_record())
    assert [name for name in os.listdir(out) if ".partial" in name]  # it was streaming
    writer.abort()
    assert os.listdir(out) == []
    writer.abort()  # twice is harmless


@pytest.mark.parametrize(("writer_class", "name"), WRITERS)
def test_abort_before_any_record_creates_nothing(
    writer_class: type[SingleFileWriter], name: str, tmp_path: Path
) -> None:
    writer_class(str(tmp_path / "out" / name)).abort()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("writer_class", "name"), WRITERS)
def test_write_after_close_is_an_error(
    writer_class: type[SingleFileWriter], name: str, tmp_path: Path
) -> None:
    writer = writer_class(str(tmp_path / name))
    writer.close()
    with pytest.raises(RuntimeError, match="already closed"):
        writer.write(a_record())
