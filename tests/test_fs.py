"""Path helpers of io/fs.py that hot loops lean on: the same answers as the slow library calls."""

from __future__ import annotations

import os

import pytest

from annoconv.io.fs import read_bytes, relative_posix


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/data/ann/1/a.xml", "/data/ann"),
        ("/data/ann/1/a.xml", "/data/ann/"),
        ("/data/ann/a.xml", "/"),
        ("data/ann/1/a.xml", "data/ann"),
        ("../data/1/a.xml", "../data"),
        ("./ann/a.xml", "."),
        ("ann/a.xml", "."),
        ("/data/ann/./1/a.xml", "/data/ann"),
        ("/data/ann/x/../1/a.xml", "/data/ann"),
        ("/data/ann//1/a.xml", "/data/ann"),
        ("/data/ann/.hidden/a.xml", "/data/ann"),
        ("/data/ann/1/", "/data/ann"),
        ("/data/annotations/a.xml", "/data/ann"),
        ("/data/other/a.xml", "/data/ann"),
        ("/data/ann", "/data/ann"),
        ("file:///data/ann/1/a.xml", "file:///data/ann"),
    ],
)
def test_relative_posix_equals_relpath(path: str, root: str) -> None:
    expected = os.path.relpath(path.removeprefix("file://"), root.removeprefix("file://"))
    assert relative_posix(path, root) == expected.replace(os.sep, "/")


def test_read_bytes_local_and_file_url(tmp_path: os.PathLike[str]) -> None:
    target = os.path.join(tmp_path, "a.bin")
    with open(target, "wb") as handle:
        handle.write(b"\x00\xffdata")
    assert read_bytes(target) == read_bytes(f"file://{target}") == b"\x00\xffdata"
    with pytest.raises(FileNotFoundError):
        read_bytes(os.path.join(tmp_path, "missing.bin"))
