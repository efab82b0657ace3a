"""A new user's first hour with `annoconv`, adversarially: the mistakes and interruptions
that broke it once (the output pointed at the source, a bad flag found late, Ctrl-C at
start-up, a killed or interrupted run of the processes engine), each run as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import draw_image, labelimg_xml, write

from annoconv.cli import main

#: The module (`annoconv.cli.main` the attribute is the function).
cli_main = sys.modules["annoconv.cli.main"]

pytestmark = pytest.mark.timeout(120)


HEADER = "filename,width,height,class,xmin,ymin,xmax,ymax\n"


def run_cli(*args: str | Path) -> int:
    return main([str(arg) for arg in args])


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones included) with its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    ann = tmp_path / "ann"
    write(ann / "a" / "1.xml", labelimg_xml("1.jpg", 640, 480, [("dog", 10, 20, 110, 220)]))
    write(ann / "b" / "2.xml", labelimg_xml("2.jpg", 320, 240, [("cat", 1, 2, 30, 40)]))
    return ann


@pytest.mark.parametrize(
    "words",
    [
        ["convert", "{ann}", "{ann}", "--to", "voc", "--rename", "dog=wolf"],
        ["convert", "{ann}", "{ann}/sub", "--to", "voc"],
        ["convert", "{ann}", "{ann}/new/folder", "--to", "voc"],
        ["convert", "{csv}", "{csv}", "--classes", "dog"],
        ["convert", "{csv}", "{tmp}/./ann/../labels.csv", "--classes", "dog"],
        ["merge", "{csv}", "{ann}", "{csv}"],
    ],
)
def test_an_output_onto_or_inside_the_source_is_refused(
    words: list[str], voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Converting a VOC folder into itself rewrote the user's XMLs (`dog` renamed in the
    annotations themselves); a CSV converted onto itself lost its other classes; an output
    in the source's format inside the source folder is read back as input by the next run."""
    assert run_cli("convert", voc, tmp_path / "labels.csv", "-q") == 0
    before = snapshot(tmp_path)
    given = {"ann": str(voc), "csv": str(tmp_path / "labels.csv"), "tmp": str(tmp_path)}
    assert run_cli(*(word.format(**given) for word in words), "-q") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("annoconv: error: the output ")
    assert " is the source " in error or " is inside the source folder " in error
    assert snapshot(tmp_path) == before  # not a byte written, no folder made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ann", "labels.csv"]
    assert not (voc / "new").exists()


def test_an_output_of_another_format_inside_the_source_folder_is_let_be(
    voc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV beside the XMLs is not read as VOC: writing it there is the user's choice."""
    assert run_cli("convert", voc, voc / "out" / "labels.csv", "-q") == 0
    assert run_cli("convert", voc, voc / "out" / "labels.csv", "-q") == 0
    lines = (voc / "out" / "labels.csv").read_text().splitlines()
    assert lines[1:] == ["a/1.jpg,640,480,dog,10,20,110,220", "b/2.jpg,320,240,cat,1,2,30,40"]


def test_a_usage_error_found_by_the_plan_leaves_no_output_folder(
    voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The output's lock made its folders before the plan refused the options."""
    out = tmp_path / "out" / "nested" / "labels.csv"
    assert run_cli("convert", voc, out, "--classes", "horse") == 2
    assert "--classes: no box of 'horse' in the data" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert run_cli("convert", voc, out, "-q") == 0  # a run that publishes keeps them
    assert out.read_text().splitlines()[1] == "a/1.jpg,640,480,dog,10,20,110,220"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (
            ["convert", "{ann}", "{out}/x.csv", "--columns", "difficult,colour"],
            "annoconv: error: columns: unknown CSV column(s) 'colour'; valid extra columns: ",
        ),
        (
            ["preview", "{ann}", "{out}/x.html", "--sample", "0"],
            "annoconv: error: the sample size must be at least 1, got 0",
        ),
        (
            ["preview", "{ann}", "{out}/x.html", "--image-size", "3"],
            "annoconv: error: image_size must be at least 16 pixels, got 3",
        ),
        (
            ["images", "transcode", "{ann}", "{out}", "--to", "jpeg", "--jpeg-quality", "500"],
            "annoconv: error: jpeg_quality must be 0-100, got 500",
        ),
        (
            ["images", "transcode", "{ann}", "{out}", "--to", "png", "--workers", "0"],
            "annoconv: error: workers must be at least 1, got 0",
        ),
    ],
)
def test_bad_option_values_are_usage_errors(
    words: list[str], message: str, voc: Path, tmp_path: Path
) -> None:
    """They ended in a Python traceback (ValueError), exit status 1."""
    given = {"ann": str(voc), "out": str(tmp_path / "out")}
    done = subprocess.run(
        [sys.executable, "-m", "annoconv", *(word.format(**given) for word in words)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "words",
    [
        ["convert", "a", "b", "--shards", "2", "--bogus", "z"],
        ["images", "transcode", "a", "b", "--to", "png", "--bogus", "z"],
        ["formats", "--bogus", "z"],
    ],
)
def test_an_unknown_flag_points_at_the_commands_help(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """It pointed at `annoconv --help`, which lists the commands, not their flags."""
    assert main(words) == 2
    command = "annoconv " + " ".join(
        w for w in words[:2] if w in {"convert", "images", "transcode", "formats"}
    )
    assert capsys.readouterr().err == (
        f"{command}: error: unrecognized arguments: --bogus z (see {command} --help)\n"
    )


def test_ctrl_c_while_the_command_line_is_made(
    voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SIGINT landing while the parser is built (a third of a second of imports at the
    start of every run) gave a traceback and death by the signal instead of exit 130."""
    real = cli_main.build_parser

    def interrupted(command: str | None = None) -> object:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, delivered here
        return real(command)

    monkeypatch.setattr(cli_main, "build_parser", interrupted)
    assert run_cli("convert", voc, tmp_path / "out" / "x.csv") == 130
    assert capsys.readouterr().err == "annoconv: interrupted; no output was published\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "theirs", "words"),
    [
        ("labels.csv", "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax\n", []),
        ("boxes.txt", "remember to label the cats\n", []),
        ("table.parquet", "filename,width,height,class,xmin,ymin,xmax,ymax\n", []),
        ("boxes.csv", "just notes\n", ["--to", "frcnn"]),
    ],
)
def test_a_file_of_another_format_at_the_output_is_kept(
    name: str,
    theirs: str,
    words: list[str],
    voc: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A user's file at the output path (an Open Images CSV named like our CSV, notes named
    like a Faster R-CNN txt, a CSV named .parquet) was silently replaced."""
    out = write(tmp_path / name, theirs)
    assert run_cli("convert", voc, out, *words) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith(f"annoconv: error: {out} exists and does not read as ")
        and "--overwrite" in error
    )
    assert out.read_text() == theirs and sorted(os.listdir(tmp_path)) == ["ann", name]
    # An earlier run's output is replaced by a rerun; --overwrite replaces the user's file.
    assert run_cli("convert", voc, out, *words, "--overwrite", "-q") == 0
    written = out.read_bytes()
    assert written != theirs.encode()
    assert run_cli("convert", voc, out, *words, "-q") == 0
    assert out.read_bytes() == written


@pytest.mark.parametrize(
    ("to", "theirs"),
    [
        ("yolo", {"data.yaml": b"names: [a]\n", "labels/a.txt": b"0 0.5 0.5 0.1 0.1\n"}),
        ("coco", {"instances.json": b"my own notes\n"}),
        ("voc", {"notes.txt": b"remember the cats\n"}),
    ],
)
def test_a_folder_of_other_files_at_the_output_is_kept(
    to: str,
    theirs: dict[str, bytes],
    voc: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A YOLO output into a folder holding another dataset replaced its data.yaml and mixed
    the labels; a COCO output replaced the folder's instances.json."""
    mine = tmp_path / "mine"
    for name, data in theirs.items():
        write(mine / name, data)
    assert run_cli("convert", voc, mine, "--to", to) == 2
    assert capsys.readouterr().err.startswith(
        f"annoconv: error: {mine} exists and does not read as {to} (an earlier run's output "
    )
    assert snapshot(mine) == theirs
    draw_image(voc / "a" / "1.jpg", 640, 480)
    draw_image(voc / "b" / "2.jpg", 320, 240)
    fresh = tmp_path / "fresh"
    assert run_cli("convert", voc, fresh, "--to", to, "-q") == 0
    written = snapshot(fresh)
    assert run_cli("convert", voc, fresh, "--to", to, "-q") == 0  # a rerun writes over it
    assert snapshot(fresh) == written


NAMES_A_FOLDER = "names a folder; name the file to write (see annoconv convert --help)"


@pytest.mark.parametrize("engine", [[], ["--engine", "processes", "--workers", "2"]])
def test_a_file_output_naming_a_folder_fails_before_the_work_is_lost(
    engine: list[str], voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV (or Parquet) output naming an existing folder (or ending in a slash) ran the
    whole conversion, then failed at the rename with the staging file's name:
    `[Errno 21] Is a directory: '/tmp/.../.mine.partial-5a5a59f1' -> 'mine'`."""
    mine = write(tmp_path / "mine" / "notes.txt", "mine\n").parent
    assert run_cli("convert", voc, mine, "--to", "csv", *engine) == 2
    assert capsys.readouterr().err == f"annoconv: error: {mine}: {NAMES_A_FOLDER}\n"
    assert snapshot(tmp_path / "mine") == {"notes.txt": b"mine\n"}
    slashed = f"{tmp_path / 'new.csv'}/"
    assert run_cli("convert", voc, slashed, *engine) == 2
    assert capsys.readouterr().err == f"annoconv: error: {slashed}: {NAMES_A_FOLDER}\n"
    # A writer of another kind, found when it opens the file (a Parquet file here).
    (tmp_path / "empty").mkdir()
    assert run_cli("convert", voc, tmp_path / "empty", "--to", "parquet", *engine) == 1
    error = capsys.readouterr().err
    assert (
        error == f"annoconv: error: {tmp_path / 'empty'}: names a folder; name the file to write\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ann", "empty", "mine"]
    assert not any((tmp_path / "empty").iterdir())


@pytest.mark.parametrize("report", ["{tmp}/reports", "{tmp}/new/"])
def test_a_report_json_naming_a_folder_is_refused_before_the_run(
    report: str, voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report is saved after the outputs are published: a folder there made a run that
    had published its CSV exit 1 (`[Errno 21] Is a directory`)."""
    (tmp_path / "reports").mkdir()
    path = report.format(tmp=tmp_path)
    assert run_cli("convert", voc, tmp_path / "out.csv", "--report-json", path) == 2
    assert capsys.readouterr().err == (
        f"annoconv: error: --report-json {path}: names a folder; name the JSON file to write "
        "(see annoconv convert --help)\n"
    )
    assert sorted(os.listdir(tmp_path)) == ["ann", "reports"]


def test_ctrl_c_in_transcode_says_what_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`images transcode` publishes image by image (a rerun resumes): an interrupted one said
    "no output was published" with the PNGs written so far in place."""
    from PIL import Image

    (tmp_path / "pages").mkdir()
    Image.new("1", (40, 30)).save(tmp_path / "pages" / "page.tif", compression="group4")
    from annoconv.io import transcode

    real = transcode.transcode_images

    def interrupted(*args: object, **keywords: object) -> object:
        result = real(*args, **keywords)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, once the first images are written
        return result

    monkeypatch.setattr(transcode, "transcode_images", interrupted)
    assert (
        run_cli("images", "transcode", tmp_path / "pages", tmp_path / "out", "--to", "png") == 130
    )
    assert capsys.readouterr().err == (
        "annoconv: interrupted; the images transcoded so far are kept, and a rerun skips them\n"
    )
    with Image.open(tmp_path / "out" / "page.png") as png:
        assert (png.format, png.size) == ("PNG", (40, 30))


def test_a_skipped_unreadable_source_is_not_called_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A truncated COCO JSON under --on-error skip was listed as skipped, then the run said
    "the source has no images", as if the file were empty."""
    whole = '{"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 8}], '
    truncated = write(tmp_path / "instances.json", whole + '"annotations": [{"id"')
    assert run_cli("convert", truncated, tmp_path / "out.csv", "--on-error", "skip") == 0
    error = capsys.readouterr().err
    assert f"skipped {truncated}: not valid JSON: " in error
    assert "warning: the outputs hold no examples: no image was read; 1 item(s) of the " in error
    assert "the source has no images" not in error
    assert (tmp_path / "out.csv").read_text() == HEADER


# --- the processes engine, killed or interrupted ------------------------------------------------

FILES = 2500


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough XMLs that a VOC -> VOC run on the processes engine takes a few seconds."""
    root = tmp_path_factory.mktemp("many")
    for index in range(FILES):
        boxes = [("cat", 1, 2, 10 + index % 50, 12), ("dog", 3, 3, 20, 20)]
        write(
            root / f"{index // 100:03d}" / f"{index:05d}.xml", labelimg_xml("x.jpg", 64, 48, boxes)
        )
    return root


def staged_files(out: Path) -> list[Path]:
    return [path for path in out.rglob("*.xml") if path.is_file()]


@pytest.fixture
def started(many: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`annoconv convert MANY OUT/voc --to voc --engine processes --workers 2`, running, once
    its tasks have begun writing into their staging folder."""
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "annoconv", "convert", str(many), str(out / "voc")]
    process = subprocess.Popen(
        [*command, "--to", "voc", "--engine", "processes", "--workers", "2", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        # Python children of a non-interactive shell may inherit SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        while not staged_files(out):
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)
        yield process, out
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=60)


def test_a_killed_driver_takes_its_workers_with_it(
    started: tuple[subprocess.Popen[bytes], Path], many: Path
) -> None:
    """SIGKILL of the command left its workers running: they wrote the rest of their task
    into the staging folder, then waited for work forever (with the forkserver), holding
    the command's stderr open. And the next run reading that folder read the staged XMLs."""
    process, out = started
    process.kill()
    # Returns once every holder of the command's stderr (its workers) has ended.
    process.communicate(timeout=30)
    staged = staged_files(out)
    assert 0 < len(staged) < FILES
    assert staged == staged_files(out)  # nothing writes there any more
    (staging,) = [p for p in out.iterdir() if p.name.startswith(".voc.annoconv-")]
    # A run reading the folder takes none of the killed run's staged files...
    assert run_cli("convert", out, out.parent / "again.csv", "--from", "voc", "-q") == 0
    assert (out.parent / "again.csv").read_text() == HEADER
    # ... and a rerun completes, the leftovers untouched.
    assert run_cli("convert", many, out / "voc", "--to", "voc", "-q") == 0
    assert len(list((out / "voc").rglob("*.xml"))) == FILES
    assert staging.exists()


def test_ctrl_c_on_the_processes_engine_leaves_nothing(
    started: tuple[subprocess.Popen[bytes], Path],
) -> None:
    """SIGINT to the command (a `kill -INT`, or Ctrl-C reaching the driver first) removed
    the staging folder while the workers went on writing into it, which made it again."""
    process, out = started
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 130
    assert error.decode().startswith("annoconv: interrupted; no output was published\n")
    time.sleep(1)  # a worker still running would write again meanwhile
    assert sorted(os.listdir(out)) == []


def test_a_box_outside_its_image_names_the_option_that_keeps_going(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A labelImg box drawn past the image's edge stops the run at its coordinate; the error
    says which option converts the file anyway, and that option does."""
    write(tmp_path / "ann" / "1.xml", labelimg_xml("1.jpg", 64, 48, [("cat", 4, 6, 80, 30)]))
    out = tmp_path / "out.csv"
    assert main(["convert", str(tmp_path / "ann"), str(out), "-q"]) == 1
    error = capsys.readouterr().err.strip()
    assert "object[1]/bndbox/xmax: xmax 80 is outside [0, 64] (image 64x48)" in error
    assert error.endswith(
        "(--boxes-outside clip keeps such boxes cut to the image, drop leaves them out)"
    )
    assert not out.exists()
    assert main(["convert", str(tmp_path / "ann"), str(out), "-q", "--boxes-outside", "clip"]) == 0
    assert out.read_text().splitlines()[1].split(",")[-4:] == ["4", "6", "64", "30"]


ONE_LINE_JSON = '{"images": [' + ", ".join(f'{{"id": {i}}}' for i in range(20000)) + "]}"


@pytest.mark.parametrize(
    ("fmt", "name", "head", "tail", "recognized"),
    [
        # Our outputs, damaged after their first line: recognized by their head alone (a
        # rerun replaces them) without reading them whole.
        (
            "csv",
            "boxes.csv",
            "filename,width,height,class,xmin,ymin,xmax,ymax\n",
            b"\xff\xfe",
            True,
        ),
        ("frcnn", "train.txt", "a.jpg,1,2,30,40,cat\n", b"b.jpg,oops\n", True),
        ("coco", "instances.json", '{"images": [{"id": 1, ', b"\x00 not json", True),
        # A one-line JSON document over 64 KiB at a CSV or txt output: not read to its end.
        ("csv", "boxes.csv", ONE_LINE_JSON, b"", False),
        ("frcnn", "train.txt", ONE_LINE_JSON, b"", False),
    ],
)
def test_what_is_at_the_output_is_told_by_a_look_at_its_head(
    tmp_path: Path, fmt: str, name: str, head: str, tail: bytes, recognized: bool
) -> None:
    """A rerun onto a large output of ours (a 120 MB CSV, a 383 MB COCO file) read it whole to
    find its first record before writing over it (24 s, 14 s); the formats whose readers read
    a file to its end first tell theirs by its first bytes (`Format.recognizes`)."""
    from annoconv.errors import OptionError
    from annoconv.formats import get_format
    from annoconv.plan import check_replaced_file

    out = write(tmp_path / name, head.encode() + b"\n" * (fmt != "coco") + tail)
    if recognized:
        check_replaced_file(str(out), get_format(fmt))
    else:
        with pytest.raises(OptionError, match="does not read as"):
            check_replaced_file(str(out), get_format(fmt))


def test_a_file_the_system_cannot_open_is_named_in_words(
    voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A split list that is missing, or a folder, gave Python's `[Errno 2] No such file or
    directory: '...'`; the line names the file, then what is wrong with it."""
    missing, folder = tmp_path / "nothere.txt", tmp_path / "ann"
    out = tmp_path / "out.csv"
    assert run_cli("convert", voc, out, "--split-lists", f"train={missing}") == 1
    assert capsys.readouterr().err == f"annoconv: error: {missing}: no such file or directory\n"
    assert run_cli("convert", voc, out, "--split-lists", f"train={folder}") == 1
    assert capsys.readouterr().err == f"annoconv: error: {folder}: is a directory\n"
    assert not out.exists()
