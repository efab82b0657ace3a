"""The format registry: names, inference from paths, entry-point plug-ins, missing extras."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import labelimg_xml, write

from annoconv import formats
from annoconv.errors import FormatError, MissingDependencyError
from annoconv.formats import FormatEntry, available_formats, get_format, infer_format


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = (dict(formats._REGISTRY), dict(formats._LOADED), formats._entry_points_scanned)
    yield
    formats._REGISTRY.clear()
    formats._REGISTRY.update(saved[0])
    formats._LOADED.clear()
    formats._LOADED.update(saved[1])
    formats._entry_points_scanned = saved[2]


def test_builtins_by_name() -> None:
    assert {"voc", "csv", "pbtxt"} <= {entry.name for entry in available_formats()}
    voc = get_format("voc")
    assert voc.reader is not None and voc.writer is not None
    assert get_format("pbtxt").reader is None


def test_inference_from_paths(tmp_path: Path) -> None:
    write(tmp_path / "ann" / "deep" / "1.xml", labelimg_xml("1.jpg", 10, 10))
    write(tmp_path / "ann" / "notes.txt", "not an annotation")
    assert infer_format(str(tmp_path / "ann")) == "voc"
    assert infer_format(str(tmp_path / "ann" / "deep" / "1.xml")) == "voc"
    assert infer_format(str(tmp_path / "ann" / "**" / "*.xml")) == "voc"
    assert infer_format([str(tmp_path / "a.XML")]) == "voc"
    assert infer_format("s3://bucket/train.xml") == "voc"  # a unique extension: never opened
    assert infer_format(str(tmp_path / "out" / "label_map.pbtxt"), for_writing=True) == "pbtxt"
    with pytest.raises(
        FormatError, match=r"cannot tell the format of .*out\.bin; name it with --to"
    ):
        infer_format(str(tmp_path / "out.bin"), for_writing=True)


def test_inference_hints_agree_with_the_formats() -> None:
    """The registry infers built-in formats from hints, without importing them: each hint
    must say what the format itself says."""
    assert set(formats._HINTS) == set(formats.KNOWN_FORMATS)
    for name, hint in formats._HINTS.items():
        fmt = get_format(name)
        assert hint.extensions == fmt.extensions, name
        assert hint.reads_folders == fmt.reads_folders, name
        assert hint.claims_folders == (fmt.claims_folder is not None), name


def test_inference_imports_only_the_formats_it_picks(tmp_path: Path) -> None:
    write(tmp_path / "ann" / "1.xml", labelimg_xml("1.jpg", 10, 10))
    script = (
        "import sys\n"
        "from annoconv.sources import output_format, source_format\n"
        f"print(source_format({str(tmp_path / 'ann')!r}, None),"
        f" output_format({str(tmp_path / 'o.record')!r}, None).name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('annoconv.formats.')"
        " or m.split('.')[0] == 'pyarrow'))\n"
        "from annoconv import formats\n"
        "print(formats._entry_points_scanned)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    picked, imported, plugins_looked_for = done.stdout.splitlines()
    assert picked == "voc tfrecord"
    # built-in formats recognised both ends: no scan of the installed distributions
    assert plugins_looked_for == "False"
    # (the output's format is loaded for its writer; the source's only when it is read)
    assert imported == str(["annoconv.formats.base", "annoconv.formats.tfrecord"])


def test_unknown_name_lists_known_formats() -> None:
    known = r"unknown format 'kitti'; known formats: .*coco.*voc.*yolo"
    with pytest.raises(FormatError, match=known):
        get_format("kitti")


def test_missing_dependency_says_what_to_install(restore_registry: None) -> None:
    formats.register(FormatEntry("fancy", "annoconv_no_such_plugin.fancy:FORMAT", extra="fancy"))
    with pytest.raises(MissingDependencyError) as info:
        get_format("fancy")
    message = str(info.value)
    assert "format 'fancy' needs the package 'annoconv_no_such_plugin'" in message
    assert "pip install 'annoconv[fancy]'" in message


def test_entry_point_plugins_are_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_registry: None
) -> None:
    """A real installed distribution (a dist-info on sys.path) declaring the entry point."""
    write(
        tmp_path / "annoconv_demo_plugin.py",
        "from annoconv.formats.base import Format\n"
        "FORMAT = Format('demo', 'a demo format', ('.demo',))\n",
    )
    dist = tmp_path / "annoconv_demo_plugin-1.0.dist-info"
    write(dist / "METADATA", "Metadata-Version: 2.1\nName: annoconv-demo-plugin\nVersion: 1.0\n")
    write(dist / "entry_points.txt", "[annoconv.formats]\ndemo = annoconv_demo_plugin:FORMAT\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    formats._entry_points_scanned = False
    assert "demo" in {entry.name for entry in available_formats()}
    assert get_format("demo").description == "a demo format"
    assert infer_format(str(tmp_path / "x.demo")) == "demo"
    formats._REGISTRY.pop("demo")
    formats._entry_points_scanned = False
    # an extension no built-in claims makes inference look for plugins too
    assert infer_format(str(tmp_path / "x.demo")) == "demo"
    formats._REGISTRY.pop("demo")
    formats._LOADED.pop("demo")
    formats._entry_points_scanned = False
    # and so does a name that is not a built-in's
    assert get_format("demo").description == "a demo format"
    sys.modules.pop("annoconv_demo_plugin", None)
