"""A staged folder's local files, written by a process of their own (annoconv.io.filewriter)
past the first batch and in this process below it: the same bytes either way, the first error
raised here as it was raised there, and nothing written or left once the folder is aborted."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from annoconv import convert
from annoconv.forkserver import pool_context
from annoconv.io import placing
from annoconv.io.filewriter import FileWrites
from annoconv.io.placing import BATCH_FILES, StagedFolder


def files(count: int) -> dict[str, bytes]:
    """`count` label-like files in a few folders, each with its own content."""
    return {
        f"labels/{index % 3}/{index:05d}.txt": label_line(index) * (index % 4)
        for index in range(count)
    }


def label_line(index: int) -> bytes:
    return f"{index % 80} 0.{index:05d} 0.5 0.25 0.125\n".encode()


def digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


def writer_process(staged: StagedFolder) -> subprocess.Popen[bytes] | None:
    writes = staged._writes
    assert isinstance(writes, placing._ProcessWrites)
    return writes._process


@pytest.mark.parametrize("count", [5, BATCH_FILES * 3 + 7])
def test_published_files_have_the_bytes_written(tmp_path: Path, count: int) -> None:
    wanted = files(count)
    staged = StagedFolder(str(tmp_path / "out"))
    for name, data in wanted.items():
        assert staged.write(name, data) == len(data)
    process = writer_process(staged)
    assert (process is not None) == (count > BATCH_FILES)  # a few files need no process
    staged.publish()
    expected = {name: hashlib.sha256(data).hexdigest() for name, data in wanted.items()}
    assert digests(tmp_path / "out") == expected
    assert process is None or process.returncode == 0
    assert [path.name for path in tmp_path.iterdir()] == ["out"]  # no staging folder left


@pytest.mark.parametrize("before", [3, BATCH_FILES + 3])
def test_the_first_error_is_raised_here_as_it_was_there(tmp_path: Path, before: int) -> None:
    staged = StagedFolder(str(tmp_path / "out"))
    staged.prepare("taken/inner.txt")  # "taken" is a folder: a file cannot be written there
    bad = staged.path("taken")
    for name, data in list(files(before).items()):
        staged.write(name, data)
    staged.write("taken", b"0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(IsADirectoryError) as raised:
        for name, data in files(BATCH_FILES * 4).items():  # a later put raises it, or publish
            staged.write("more/" + name, data)
        staged.publish()
    threads = FileWrites()
    threads.put(bad, b"")
    with pytest.raises(IsADirectoryError) as in_threads:
        threads.finish()
    assert str(raised.value) == str(in_threads.value)
    assert re.search(r"Is a directory: '.*taken'", str(raised.value))
    staged.abort()
    assert list(tmp_path.iterdir()) == []


def test_abort_stops_the_process_and_removes_the_staging_folder(tmp_path: Path) -> None:
    staged = StagedFolder(str(tmp_path / "out"))
    for name, data in files(BATCH_FILES * 8).items():
        staged.write(name, data)
    process = writer_process(staged)
    assert process is not None and process.poll() is None
    staged.abort()
    assert process.returncode is not None  # ended (killed, or done): it writes nothing more
    assert list(tmp_path.iterdir()) == []


def test_the_process_ends_when_its_parent_is_gone(tmp_path: Path) -> None:
    staged = StagedFolder(str(tmp_path / "out"))
    for name, data in files(BATCH_FILES + 1).items():
        staged.write(name, data)
    writes = staged._writes
    assert isinstance(writes, placing._ProcessWrites) and writes._connection is not None
    process = writes._process
    assert process is not None
    writes._connection.close()  # what the parent's death does to the connection
    assert process.wait(timeout=30) == 0
    assert not (tmp_path / "out").exists()


def writes_kind() -> str:
    """What writes a staged folder's files in the calling process."""
    writes = placing._new_writes()
    writes.finish()
    return type(writes).__name__


def test_daemonic_workers_write_with_threads() -> None:
    assert writes_kind() == "_ProcessWrites"
    with pool_context().Pool(1) as pool:  # the processes engine's workers are daemonic
        assert pool.apply(writes_kind) == "FileWrites"


def test_coco_to_yolo_labels_past_a_batch_on_both_engines(tmp_path: Path) -> None:
    """Local (a writer process) and the processes engine (threads in its workers) write
    the same label files, each with the source's box, normalized."""
    count = BATCH_FILES * 2 + 44
    document = {
        "images": [
            {"id": i, "file_name": f"img{i:04d}.jpg", "width": 640, "height": 480}
            for i in range(count)
        ],
        "annotations": [
            {"id": i, "image_id": i, "category_id": 1 + i % 3, "bbox": [i % 300, 10, 20.5, 30]}
            for i in range(count)
        ],
        "categories": [{"id": 1 + c, "name": f"class{c}"} for c in range(3)],
    }
    source = tmp_path / "instances_train.json"
    source.write_text(json.dumps(document))
    for engine, extra in (("local", {}), ("processes", {"workers": 2})):
        convert(
            str(source),
            str(tmp_path / engine),
            to_format="yolo",
            write_options={"images_mode": "none"},
            engine=engine,
            **extra,  # type: ignore[arg-type]
        )
    local = digests(tmp_path / "local")
    assert local == digests(tmp_path / "processes")
    labels = sorted((tmp_path / "local").rglob("img*.txt"))
    assert len(labels) == count
    for path in labels:
        i = int(path.stem.removeprefix("img"))
        cls, cx, cy, w, h = path.read_text().split()
        assert int(cls) == i % 3
        expected = ((i % 300 + 10.25) / 640, 25 / 480, 20.5 / 640, 30 / 480)
        assert [float(cx), float(cy), float(w), float(h)] == pytest.approx(expected, abs=1e-12)
