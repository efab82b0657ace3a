"""Path helpers of io/fs.py that hot loops lean on: the same answers as the slow library calls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annoconv.io.fs import expand_source, read_bytes, relative_posix, shards_of


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


def test_a_conversion_walks_its_source_folder_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inferring the source's format lists the folder; the reader takes that listing instead
    of walking the folder again. Outside a conversion nothing is kept."""
    from factories import draw_image, labelimg_xml, write

    from annoconv import convert
    from annoconv.io import fs

    source = tmp_path / "ann"
    for index in range(3):
        draw_image(source / f"{index}.jpg", 20, 10)
        write(source / f"{index}.xml", labelimg_xml(f"{index}.jpg", 20, 10, [("cat", 1, 1, 5, 5)]))
    walked: list[str] = []
    walk = fs._all_files
    monkeypatch.setattr(fs, "_all_files", lambda root: walked.append(root) or walk(root))
    report = convert(str(source), str(tmp_path / "out.csv"))
    assert report.images_written == 3 and report.boxes_written == 3
    assert walked.count(str(source)) == 1
    walked.clear()
    assert fs.source_suffixes(str(source)) == [".jpg", ".xml"]
    assert len(fs.list_files(str(source), [".xml"])) == 3
    assert walked == [str(source)] * 2


@pytest.mark.parametrize("folder", ["run [1]", "what?", "all*", "v[2]?*"])
def test_an_existing_path_with_glob_characters_is_taken_as_it_is(
    tmp_path: Path, folder: str
) -> None:
    """A folder named `run [1]` is read, not taken as a glob matching `run 1` (which matched
    nothing: an empty preview, "no TFRecord files"); a pattern that names no file is a glob."""
    root = tmp_path / folder
    root.mkdir()
    (root / "a.xml").write_text("<annotation/>")
    (root / "x.record-00000-of-00002").write_bytes(b"0")
    (root / "x.record-00001-of-00002").write_bytes(b"1")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "b.xml").write_text("<annotation/>")
    assert expand_source(str(root), (".xml",)) == ([str(root / "a.xml")], str(root))
    assert expand_source(str(root / "a.xml"), ()) == ([str(root / "a.xml")], str(root))
    assert shards_of(str(root / "x.record")) == [
        str(root / "x.record-00000-of-00002"),
        str(root / "x.record-00001-of-00002"),
    ]
    assert expand_source(str(tmp_path / "*" / "*.xml"), ())[0] == sorted(
        [str(tmp_path / "other" / "b.xml"), str(root / "a.xml")]
    )
