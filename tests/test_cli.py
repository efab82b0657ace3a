"""The `annoconv` command end to end: the foundation's "done when", run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from factories import Box, cvat_xml, draw_image, labelimg_xml, roboflow_xml, write
from od_protos import parse_with_protobuf

from annoconv.cli import main

MIXED_CSV = (
    "filename,width,height,class,xmin,ymin,xmax,ymax\n"
    "a/1.jpg,640,480,dog,10,20,110,220\n"
    "a/1.jpg,640,480,cat,300.5,40.25,400,300\n"
    "b/1.jpg,320,240,cat,257,12.34,300,200\n"
    'c/img_jpg.rf.abc.jpg,200,100,"hot dog, large",1,2,150,99\n'
    "d/empty.jpg,50,60,,,,,\n"
)


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Path, Path]:
    """labelImg, CVAT (no size: the image gives it) and Roboflow XMLs, a negative image, and
    `1.jpg` annotated in two folders."""
    ann, images = tmp_path / "ann", tmp_path / "images"
    write(
        ann / "a" / "1.xml",
        labelimg_xml(
            "1.jpg", 640, 480, [("dog", 10, 20, 110, 220), ("cat", 300.5, 40.25, 400, 300)]
        ),
    )
    write(ann / "b" / "1.xml", cvat_xml("1.jpg", None, None, [("cat", 257.0, 12.34, 300, 200)]))
    draw_image(images / "b" / "1.jpg", 320, 240)
    write(
        ann / "c" / "roboflow.xml",
        roboflow_xml("img_jpg.rf.abc.jpg", 200, 100, [("hot dog, large", 1, 2, 150, 99)]),
    )
    write(ann / "d" / "empty.xml", labelimg_xml("empty.jpg", 50, 60, []))
    return ann, images


def run_cli(*args: str | Path) -> int:
    return main([str(arg) for arg in args])


def test_xml2csv_writes_the_exact_csv(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = mixed
    out = tmp_path / "out" / "train.csv"
    assert run_cli("xml2csv", ann, out, "--images", images, "-q") == 0
    assert out.read_text(encoding="utf-8") == MIXED_CSV


def test_voc_to_csv_to_csv_is_exact(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = mixed
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    assert run_cli("convert", ann, first, "--images", images, "-q") == 0
    assert run_cli("convert", first, second, "-q") == 0
    assert second.read_bytes() == first.read_bytes()
    assert first.read_text(encoding="utf-8") == MIXED_CSV


def test_report_adds_up_and_is_saved_as_json(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = mixed
    report_path = tmp_path / "report.json"
    out = tmp_path / "train.csv"
    args = ("xml2csv", ann, out, "--images", images, "-q", "--report-json", report_path)
    assert run_cli(*args) == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["images"] == {"read": 4, "written": 4, "skipped": 0}
    assert report["boxes"] == {"read": 4, "written": 4, "skipped": 0}
    assert report["classes"] == {"cat": 2, "dog": 1, "hot dog, large": 1}
    assert report["outputs"] == [{"path": str(out), "size": out.stat().st_size, "kind": "csv"}]


def test_missing_size_without_images_is_a_clear_error(
    mixed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, _ = mixed
    out = tmp_path / "train.csv"
    assert run_cli("xml2csv", ann, out, "-q") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(ann / "b" / "1.xml") in err
    assert "image size is unknown and image 'b/1.jpg' not found" in err and "--images" in err
    assert not out.exists()
    assert list(tmp_path.glob(".train.csv.partial-*")) == []


def test_labelmap_parses_with_protobuf_text_format(
    mixed: tuple[Path, Path], tmp_path: Path
) -> None:
    ann, _ = mixed
    out = tmp_path / "label_map.pbtxt"
    assert run_cli("labelmap", ann, out, "-q") == 0
    assert parse_with_protobuf(out.read_text(encoding="utf-8")) == [
        ("cat", 1, None),
        ("dog", 2, None),
        ("hot dog, large", 3, None),
    ]


def test_labelmap_first_seen_order_and_merge(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    ann, _ = mixed
    base = write(tmp_path / "base.pbtxt", "item { name: 'zebra' id: 7 }  # kept first\n")
    out = tmp_path / "label_map.pbtxt"
    assert run_cli("labelmap", base, ann, out, "--order", "first-seen", "-q") == 0
    assert parse_with_protobuf(out.read_text(encoding="utf-8")) == [
        ("zebra", 7, None),
        ("dog", 8, None),
        ("cat", 9, None),
        ("hot dog, large", 10, None),
    ]


def test_labelmap_from_class_list(tmp_path: Path) -> None:
    out = tmp_path / "label_map.pbtxt"
    assert run_cli("labelmap", out, "--classes", "patent image", "figure label", "-q") == 0
    assert parse_with_protobuf(out.read_text(encoding="utf-8")) == [
        ("figure label", 1, None),
        ("patent image", 2, None),
    ]


def test_unknown_classes_fail_before_writing(
    mixed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, images = mixed
    given = write(tmp_path / "given.pbtxt", 'item { name: "dog" id: 1 }\n')
    out = tmp_path / "train.csv"
    args = ("xml2csv", ann, out, "--images", images, "--label-map", given, "-q")
    assert run_cli(*args) == 1
    err = capsys.readouterr().err
    assert "2 class(es) not in the label map" in err
    assert "'cat' (2)" in err and "'hot dog, large' (1)" in err
    assert not out.exists()


def test_extend_label_map_converts(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = mixed
    given = write(tmp_path / "given.pbtxt", 'item { name: "dog" id: 1 }\n')
    out = tmp_path / "train.csv"
    args = ("xml2csv", ann, out, "--images", images, "--label-map", given, "--extend-label-map")
    assert run_cli(*args, "-q") == 0
    assert out.read_text(encoding="utf-8") == MIXED_CSV


HOSTILE = {
    "xxe.xml": (
        '<?xml version="1.0"?>\n<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file://{secret}">]>\n'
        "<annotation><filename>x.jpg</filename><object><name>&secret;</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox>"
        "</object></annotation>\n"
    ),
    "bomb.xml": (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
            for i in range(1, 10)
        )
        + "]>\n<annotation><filename>&lol9;</filename></annotation>\n"
    ),
    "truncated.xml": "<annotation><filename>t.jpg</filename><object><name>dog</na",
    "text.xml": labelimg_xml("n.jpg", 100, 100, [Box("dog", 1, 2, 3, 4)]).replace(
        "<xmin>1</xmin>", "<xmin>head</xmin>"
    ),
}


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    secret = write(tmp_path / "secret.txt", "TOP-SECRET-CONTENT")
    ann = tmp_path / "ann"
    write(ann / "good.xml", labelimg_xml("good.jpg", 100, 80, [("dog", 5, 6, 50, 60)]))
    for name, text in HOSTILE.items():
        write(ann / name, text.replace("{secret}", str(secret)))
    return ann, secret


@pytest.mark.parametrize("bad", sorted(HOSTILE))
def test_hostile_or_broken_xml_fails_with_one_line_naming_the_file(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = write(tmp_path / "secret.txt", "TOP-SECRET-CONTENT")
    xml = write(tmp_path / "ann" / bad, HOSTILE[bad].replace("{secret}", str(secret)))
    out = tmp_path / "out.csv"
    assert run_cli("xml2csv", xml.parent, out, "-q") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("annoconv: error: ")
    assert str(xml) in err
    assert "Traceback" not in err and "TOP-SECRET-CONTENT" not in err
    assert not out.exists()


def test_skip_converts_the_rest_and_reports_each_skip(
    hostile: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, _ = hostile
    out = tmp_path / "out.csv"
    report_path = tmp_path / "report.json"
    args = ("xml2csv", ann, out, "--on-error", "skip", "--report-json", report_path)
    assert run_cli(*args) == 0
    assert out.read_text(encoding="utf-8") == (
        "filename,width,height,class,xmin,ymin,xmax,ymax\ngood.jpg,100,80,dog,5,6,50,60\n"
    )
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["images"] == {"read": 5, "written": 1, "skipped": 4}
    skipped = {Path(item["source"]).name: item["reason"] for item in report["skipped"]}
    assert sorted(skipped) == sorted(HOSTILE)
    assert "entit" in skipped["xxe.xml"].lower() and "entit" in skipped["bomb.xml"].lower()
    assert "expected a number, got 'head'" in skipped["text.xml"]
    err = capsys.readouterr().err
    assert "TOP-SECRET-CONTENT" not in err + out.read_text(encoding="utf-8")
    for name in HOSTILE:
        assert f"skipped {ann / name}:" in err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path / "a.csv", "filename,width,height,class,xmin,ymin,xmax,ymax\n")
    assert run_cli("convert", src, tmp_path / "out.unknownext") == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert run_cli("convert", src, tmp_path / "out.csv", "--to", "nope") == 2
    assert "unknown format 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        run_cli("convert", src)
    assert exit_info.value.code == 2
    assert run_cli("labelmap", tmp_path / "only.pbtxt") == 2


def test_missing_source_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("xml2csv", tmp_path / "nowhere", tmp_path / "out.csv") == 1
    assert f"{tmp_path / 'nowhere'}: no such file or folder" in capsys.readouterr().err


def test_stats_table_and_json(mixed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ann, images = mixed
    assert run_cli("stats", ann, "--images", images) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[:5] == [
        "class             images     boxes",
        "cat                    2         2",
        "dog                    1         1",
        "hot dog, large         1         1",
        "total                  4         4",
    ]
    assert "negative images (no boxes): 1" in table
    assert run_cli("stats", ann, "--images", images, "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["classes"]["cat"] == {"boxes": 2, "images": 2}
    assert (stats["images"], stats["boxes"], stats["negative_images"]) == (4, 4, 1)
    assert stats["min_size"] == [50, 60] and stats["max_size"] == [640, 480]


@pytest.mark.parametrize("command", [[], ["convert"], ["xml2csv"], ["labelmap"], ["stats"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: annoconv" in capsys.readouterr().out


def test_console_script_and_light_import(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    """The installed `annoconv` command works, and neither importing the package nor a whole
    conversion pulls in TensorFlow, Dask, s3fs, pandas, matplotlib or DuckDB."""
    ann, images = mixed
    out = tmp_path / "train.csv"
    script = (
        "import sys, annoconv\n"
        "heavy = ('tensorflow', 'dask', 'distributed', 's3fs', 'pandas', 'matplotlib', 'duckdb')\n"
        "assert not [m for m in heavy if m in sys.modules], sorted(sys.modules)\n"
        f"annoconv.convert({str(ann)!r}, {str(out)!r}, images={str(images)!r})\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert out.read_text(encoding="utf-8") == MIXED_CSV
    command = Path(sys.executable).parent / "annoconv"
    if command.exists():
        shown = subprocess.run([command, "formats"], capture_output=True, text=True)
        assert shown.returncode == 0 and "voc" in shown.stdout and "pbtxt" in shown.stdout


@pytest.mark.parametrize("words", [None, ["--help"], ["--version"]])
def test_light_start_imports_no_library_a_run_needs(words: list[str] | None) -> None:
    """`import annoconv` and `annoconv --help` / `--version` load neither the typed schema's
    pydantic nor pyarrow, lxml, Pillow, fsspec or numpy: the run imports what it uses."""
    script = "import sys, annoconv\n"
    if words is not None:
        script += (
            "from annoconv.cli import main\n"
            f"try:\n    main({words!r})\nexcept SystemExit as done:\n    assert not done.code\n"
        )
    script += (
        "heavy = ('pydantic', 'pyarrow', 'lxml', 'PIL', 'fsspec', 'numpy', 'pandas')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[]"
    if words is not None:
        assert "annoconv" in done.stdout


def test_interrupted_run_leaves_no_output(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    """A failure mid-run (here: a record the writer rejects under `fail`) publishes nothing."""
    ann, _ = mixed
    out = tmp_path / "nested" / "train.csv"
    assert run_cli("xml2csv", ann, out, "-q") == 1
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_error_message_without_traceback_unless_debug(tmp_path: Path) -> None:
    bad = write(tmp_path / "ann" / "bad.xml", HOSTILE["truncated.xml"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    base = [sys.executable, "-m", "annoconv", "xml2csv", str(bad.parent), str(tmp_path / "o.csv")]
    quiet = subprocess.run(base, capture_output=True, text=True, env=env)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    loud = subprocess.run([*base, "--debug"], capture_output=True, text=True, env=env)
    assert loud.returncode == 1 and "Traceback" in loud.stderr


def test_stats_of_open_images_names_classes_from_the_descriptions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import csv
    from collections import Counter

    data = Path(__file__).resolve().parent.parent / "examples" / "openimages"
    with open(data / "class-descriptions-boxable.csv", newline="", encoding="utf-8") as handle:
        names = dict(csv.reader(handle))
    with open(data / "train-annotations-bbox.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = Counter(names[row["LabelName"]] for row in rows)
    bbox, descriptions = (
        data / "train-annotations-bbox.csv",
        data / "class-descriptions-boxable.csv",
    )
    code = main(["stats", str(bbox), "--class-descriptions", str(descriptions), "--json"])
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert {name: entry["boxes"] for name, entry in stats["classes"].items()} == expected
    assert stats["images"] == len({row["ImageID"] for row in rows})


def test_xml_shortcuts_take_the_selection_and_operation_flags(tmp_path: Path) -> None:
    from annoconv.tfexample import decode_example, iter_tfrecords

    uspto = Path(__file__).resolve().parent.parent / "examples" / "uspto"
    ann, images = str(uspto / "annotations"), str(uspto / "images")
    csv_out = tmp_path / "drawings.csv"
    assert main(["xml2csv", ann, str(csv_out), "--images", images, "-q"]) == 0
    all_rows = csv_out.read_text(encoding="utf-8").splitlines()[1:]
    drop = ["--drop-classes", "figure label"]
    assert main(["xml2csv", ann, str(csv_out), "--images", images, *drop, "-q"]) == 0
    kept = csv_out.read_text(encoding="utf-8").splitlines()[1:]
    assert kept == [row for row in all_rows if ",figure label," not in row]
    assert len(kept) == 13 + 3  # 13 drawings, 3 negative pages

    record = tmp_path / "pages.record"
    rename = ["--classes", "patent image", "--rename", "patent image=drawing"]
    assert main(["xml2tfrecord", ann, str(record), "--images", images, *rename, "-q"]) == 0
    assert (tmp_path / "label_map.pbtxt").read_text() == 'item {\n  name: "drawing"\n  id: 1\n}\n'
    texts = [
        text
        for payload in iter_tfrecords(str(record) + "-00000-of-00001", None)
        for text in decode_example(payload)["image/object/class/text"][1]
    ]
    assert texts == [b"drawing"] * 13


def test_pipeline_config_lines_escape_and_list_what_a_glob_would_miss() -> None:
    from annoconv.formats.tfrecord import TFRecordShardWriter
    from annoconv.report import OutputFile

    outputs = [
        OutputFile("C:\\data\\train.record-00000-of-00002", 1, "tfrecord"),
        OutputFile("C:\\data\\train.record-00001-of-00002", 1, "tfrecord"),
        OutputFile("out/we[ird].record-00000-of-00001", 1, "tfrecord"),
    ]
    assert TFRecordShardWriter.usage_notes(outputs, None) == [
        "for the TF Object Detection API's pipeline.config:",
        '  input_path: "C:\\\\data\\\\train.record-00000-of-00002"',
        '  input_path: "C:\\\\data\\\\train.record-00001-of-00002"',
        '  input_path: "out/we[ird].record-00000-of-00001"',
    ]


@pytest.mark.parametrize("words", [["formats"], ["stats", "--help"]])
def test_output_into_a_closed_pipe_ends_quietly(words: list[str]) -> None:
    """`annoconv formats | head -1`: when standard output's reader has gone, the command ends
    with SIGPIPE's status (or 0 for --help, as argparse exits) and no error line or traceback."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "annoconv", *words], stdout=writer, stderr=subprocess.PIPE
        )
    finally:
        os.close(writer)
    assert done.stderr == b""
    assert done.returncode == (0 if "--help" in words else 141)
