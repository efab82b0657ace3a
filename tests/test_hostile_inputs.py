"""Hostile and broken inputs that an independent audit found (issue 18): each ends in one line
naming the file under `--on-error fail` and in a reported skip under `skip`, never in a
traceback; what an annotation names (a URL, a FIFO, a folder, a name too long for the
filesystem) is refused or reported against that annotation.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from factories import Box, draw_image, labelimg_xml, write

from annoconv import convert
from annoconv.cli import main
from annoconv.errors import AnnotationError
from annoconv.formats.base import BadItem
from annoconv.formats.tfrecord import TFRecordReader
from annoconv.tfexample import TFRecordWriter, bytes_feature, encode_example

pytestmark = pytest.mark.timeout(120)

CSV_HEADER = "filename,width,height,class,xmin,ymin,xmax,ymax\n"
HUGE = "9" * 5000  # past Python's 4,300-digit limit on int()


def run_cli(*args: str | Path) -> int:
    return main([str(arg) for arg in args])


def patched(path: Path, old: bytes, new: bytes) -> Path:
    """`path` with every `old` replaced by `new` (same length: Parquet offsets stay right)."""
    assert len(old) == len(new)
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new))
    return path


def flat_table(**columns: list[object]) -> pa.Table:
    base: dict[str, list[object]] = {
        "filename": ["a.jpg", "b.jpg"],
        "class": ["dogq", "cat"],
        "xmin": [1.0, 2.0],
        "ymin": [1.0, 2.0],
        "xmax": [3.0, 4.0],
        "ymax": [3.0, 4.0],
    }
    base.update(columns)
    return pa.table(base)


def plain_parquet(table: pa.Table, path: Path) -> Path:
    """Without compression, dictionaries or statistics, so that values can be patched."""
    pq.write_table(table, path, compression="none", use_dictionary=False, write_statistics=False)
    return path


def duplicate_column(tmp_path: Path) -> Path:
    table = flat_table()
    doubled = pa.Table.from_arrays(
        [*table.columns, pa.array(["x", "y"])], names=[*table.column_names, "class"]
    )
    return plain_parquet(doubled, tmp_path / "dup.parquet")


def column_name_not_utf8(tmp_path: Path) -> Path:
    table = flat_table(zzzq=[1, 2])
    return patched(plain_parquet(table, tmp_path / "name.parquet"), b"zzzq", b"zz\xffq")


def flat_value_not_utf8(tmp_path: Path) -> Path:
    path = plain_parquet(flat_table(), tmp_path / "value.parquet")
    return patched(path, b"dogq", b"do\xffq")


def frcnn_huge_coordinate(tmp_path: Path) -> Path:
    return write(tmp_path / "boxes.txt", f"a.jpg,1,2,{HUGE},4,dog\n")


def csv_huge_width(tmp_path: Path) -> Path:
    return write(
        tmp_path / "boxes.csv",
        f"{CSV_HEADER}a.jpg,{HUGE},10,dog,1,1,2,2\n",
    )


BROKEN: dict[str, tuple[Callable[[Path], Path], str]] = {
    "parquet-duplicate-column": (
        duplicate_column,
        "not an annotation table: duplicate column(s) class (2 times)",
    ),
    "parquet-column-name-not-utf8": (
        column_name_not_utf8,
        "not a readable Parquet file: a column name is not valid UTF-8",
    ),
    "parquet-value-not-utf8": (
        flat_value_not_utf8,
        "row 1 (row group 0): column class: not valid UTF-8",
    ),
    "frcnn-5000-digit-coordinate": (
        frcnn_huge_coordinate,
        "line 1: x2: a number of 5000 digits is too large",
    ),
    "csv-5000-digit-width": (csv_huge_width, "line 2: width: a number of 5000 digits is too large"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("output", ["out.csv", "out.record"])
def test_broken_input_is_one_line_never_a_traceback(
    case: str, output: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, message = BROKEN[case]
    source = make(tmp_path)
    out = tmp_path / output
    assert run_cli("convert", source, out, "-q") == 1
    err = capsys.readouterr().err
    assert err == f"annoconv: error: {source}: {message}\n"

    report = tmp_path / "report.json"
    assert run_cli("convert", source, out, "--on-error", "skip", "-q", "--report-json", report) == 0
    assert "Traceback" not in capsys.readouterr().err
    skipped = json.loads(report.read_text(encoding="utf-8"))["skipped"]
    assert [item["reason"] for item in skipped] == [message]
    assert skipped[0]["source"] == str(source)


def test_a_nested_parquet_row_not_utf8_is_skipped_alone(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "boxes.csv",
        f"{CSV_HEADER}a.jpg,10,10,dogq,1,1,2,2\nb.jpg,10,10,cat,1,1,2,2\n"
        "b.jpg,10,10,cat,1,1,3,3\nc.jpg,10,10,cow,1,1,2,2\n",
    )
    source = tmp_path / "nested.parquet"
    convert(str(csv), str(source), write_options={"compression": "none"})
    patched(source, b"dogq", b"do\xffq")
    out = tmp_path / "out.csv"
    report = convert(str(source), str(out), on_error="skip")
    assert [(item.reason, item.images, item.boxes) for item in report.skipped] == [
        ("row 1 (row group 0): column objects: not valid UTF-8", 1, 1)
    ]
    assert (report.images_written, report.boxes_written) == (2, 3)
    assert out.read_text(encoding="utf-8") == (
        f"{CSV_HEADER}b.jpg,10,10,cat,1,1,2,2\nb.jpg,10,10,cat,1,1,3,3\nc.jpg,10,10,cow,1,1,2,2\n"
    )


@pytest.mark.parametrize("literal", [HUGE, "0x" + HUGE])
def test_a_label_map_id_of_5000_digits_is_one_short_line(
    literal: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pbtxt = write(tmp_path / "map.pbtxt", f'item {{ name: "dog" id: {literal} }}\n')
    csv = write(tmp_path / "a.csv", f"{CSV_HEADER}a.jpg,10,10,dog,1,1,2,2\n")
    assert run_cli("convert", csv, tmp_path / "o.record", "--label-map", pbtxt, "-q") == 1
    err = capsys.readouterr().err
    shown = literal[:40]
    assert err == (
        f"annoconv: error: {pbtxt}:1:24: integer {shown}... ({len(literal)} characters) "
        "is out of the int32 range\n"
    )


# --- a skip run goes on, naming the annotation --------------------------------------------------


def voc_folder(tmp_path: Path) -> Path:
    """A good annotation with its image, for the runs below to write."""
    folder = tmp_path / "ann"
    draw_image(folder / "good.jpg", 40, 30)
    write(folder / "good.xml", labelimg_xml("good.jpg", 40, 30, [Box("dog", 1, 2, 20, 25)]))
    return folder


def skip_report(source: Path, out: Path, *extra: str | Path) -> dict[str, object]:
    report = out.parent / "report.json"
    args = ("convert", source, out, "--on-error", "skip", "-q", "--report-json", report, *extra)
    assert run_cli(*args) == 0
    return json.loads(report.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def written_filenames(prefix: Path) -> list[str]:
    return [record.filename for record in TFRecordReader(str(prefix))]


def test_an_empty_name_skips_its_file_in_a_tfrecord_run(tmp_path: Path) -> None:
    folder = voc_folder(tmp_path)
    draw_image(folder / "bad.jpg", 40, 30)
    write(
        folder / "bad.xml",
        "<annotation><filename>bad.jpg</filename>\n<object><name/><bndbox><xmin>1</xmin>"
        "<ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>",
    )
    out = tmp_path / "out" / "train.record"
    report = skip_report(folder, out)
    assert report["skipped"] == [
        {
            "source": str(folder / "bad.xml"),
            "reason": "line 2, object[1]/name: empty <name>",
            "images": 1,
            "boxes": 1,
        }
    ]
    assert written_filenames(out) == ["good.jpg"]
    label_map = (out.parent / "label_map.pbtxt").read_text(encoding="utf-8")
    assert label_map == 'item {\n  name: "dog"\n  id: 1\n}\n'


def test_a_path_too_long_for_the_filesystem_names_its_annotation(tmp_path: Path) -> None:
    folder = voc_folder(tmp_path)
    recorded = f"/tmp/{'x' * 300}/far.jpg"
    long_xml = write(
        folder / "long.xml",
        labelimg_xml("far.jpg", None, None, [Box("dog", 1, 2, 3, 4)], path=recorded),
    )
    message = "image 'far.jpg' cannot be looked up: file name too long"
    for out in (tmp_path / "o1" / "train.record", tmp_path / "o2" / "boxes.csv"):
        report = skip_report(folder, out)
        assert [(item["source"], item["reason"]) for item in report["skipped"]] == [  # type: ignore[attr-defined]
            (str(long_xml), message)
        ]
    with pytest.raises(AnnotationError) as raised:
        convert(str(folder), str(tmp_path / "o3" / "train.record"))
    assert str(raised.value) == f"{long_xml}: {message}"


def parquet_naming(tmp_path: Path, image_uri: str) -> Path:
    """A Parquet table of one image whose image_uri is `image_uri`."""
    folder = voc_folder(tmp_path)
    source = tmp_path / "named.parquet"
    convert(str(folder / "good.xml"), str(source))
    table = pq.read_table(source)
    column = table.schema.get_field_index("image_uri")
    pq.write_table(table.set_column(column, "image_uri", pa.array([image_uri])), source)
    return source


@pytest.mark.parametrize("output", ["out.record", "out.parquet"])
def test_an_image_uri_naming_a_folder_names_its_annotation(output: str, tmp_path: Path) -> None:
    source = parquet_naming(tmp_path, str(tmp_path))
    write_options = {"embed_images": True} if output.endswith(".parquet") else None
    message = f"image_uri {tmp_path} is not a regular file (a folder)"
    with pytest.raises(AnnotationError) as raised:
        convert(str(source), str(tmp_path / output), write_options=write_options)
    assert str(raised.value) == f"{source}: {message}"
    report = convert(
        str(source), str(tmp_path / output), write_options=write_options, on_error="skip"
    )
    assert [(item.source, item.reason) for item in report.skipped] == [(str(source), message)]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_an_image_uri_naming_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    source = parquet_naming(tmp_path, str(fifo))
    report = convert(str(source), str(tmp_path / "out.record"), on_error="skip")
    assert [item.reason for item in report.skipped] == [
        f"image_uri {fifo} is not a regular file (a FIFO)"
    ]


# --- URLs inside annotations ------------------------------------------------------------------


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A web server on 127.0.0.1 serving one JPEG at /x.jpg: (its base URL, the requests)."""
    served = tmp_path / "served"
    draw_image(served / "x.jpg", 40, 30)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(str(args[0]))

    handler = functools.partial(Handler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()


def test_a_url_in_a_voc_path_is_never_requested(web: tuple[str, list[str]], tmp_path: Path) -> None:
    base, requests = web
    folder = voc_folder(tmp_path)
    remote = write(
        folder / "remote.xml",
        labelimg_xml("x.jpg", 40, 30, [Box("dog", 1, 2, 3, 4)], path=f"{base}/x.jpg"),
    )
    out = tmp_path / "out" / "train.record"
    report = convert(str(folder), str(out), on_error="skip")
    assert requests == []
    assert [(item.source, item.reason) for item in report.skipped] == [
        (
            str(remote),
            f"image 'x.jpg' not found; looked at, in order: {folder / 'x.jpg'}; {folder} for "
            f"x.* (any image extension); not at {base}/x.jpg, a URL the annotation names (see "
            "--allow-remote-paths); pass the images folder with --images",
        )
    ]
    # Allowed explicitly, the URL is opened and its bytes embedded.
    allowed = convert(str(folder), str(out), allow_remote_paths=True)
    assert allowed.images_written == 2 and requests
    served = (tmp_path / "served" / "x.jpg").read_bytes()
    assert served in [record_bytes for record_bytes in encoded_images(out)]


def encoded_images(prefix: Path) -> list[bytes]:
    from annoconv.tfexample import decode_example, iter_tfrecords

    payloads = [decode_example(p) for p in iter_tfrecords(f"{prefix}-00000-of-00001")]
    return [payload["image/encoded"][1][0] for payload in payloads]


def test_a_url_in_a_parquet_image_uri_is_never_requested(
    web: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, requests = web
    source = parquet_naming(tmp_path, f"{base}/x.jpg")
    out = tmp_path / "out.record"
    report = convert(str(source), str(out), on_error="skip")
    assert requests == []
    assert [item.reason for item in report.skipped] == [
        f"image_uri '{base}/x.jpg' is a URL the annotation names; annoconv opens only the URLs "
        "the user gives (the images folder, the annotations' folder), unless remote paths in "
        "annotations are allowed (--allow-remote-paths)"
    ]
    # Needing no image, a conversion to CSV reads the table as before.
    assert convert(str(source), str(tmp_path / "out.csv")).images_written == 1
    assert requests == []
    allowed = convert(str(source), str(out), allow_remote_paths=True)
    assert allowed.images_written == 1 and requests


# --- books ---------------------------------------------------------------------------------------


def test_the_objects_of_an_unparseable_xml_are_skipped_boxes(tmp_path: Path) -> None:
    folder = voc_folder(tmp_path)
    text = labelimg_xml("cut.jpg", 40, 30, [Box("dog", 1, 2, 3, 4), Box("cat", 2, 3, 4, 5)])
    write(folder / "cut.xml", text[: text.rindex("<ymax>")])
    report = skip_report(folder, tmp_path / "out.csv")
    assert report["boxes"] == {"read": 3, "written": 1, "skipped": 2}
    assert report["images"] == {"read": 2, "written": 1, "skipped": 1}


# --- memory linear in boxes per image -------------------------------------------------------------

BOXES = 2000
MEMORY_PROBE = """
import sys
import pyarrow as pa
from annoconv import convert
convert(sys.argv[1], sys.argv[2])
print(pa.default_memory_pool().max_memory())
"""


@pytest.mark.parametrize("through", ["csv", "parquet"])
def test_one_image_with_thousands_of_boxes_takes_memory_linear_in_them(
    through: str, tmp_path: Path
) -> None:
    """The columnar path's peak Arrow memory for one image of 2,000 boxes (about 100 kB of
    data): it took 259 MB when flattening copied the image's box list once per box."""
    import subprocess
    import sys

    rows = "".join(
        f"a.jpg,10000,10000,c{i % 7},{i % 100},1,{i % 100 + 5},9\n" for i in range(BOXES)
    )
    source = write(tmp_path / "boxes.csv", CSV_HEADER + rows)
    if through == "parquet":
        source_path = tmp_path / "boxes.parquet"
        convert(str(source), str(source_path))
        source = source_path
    out = tmp_path / "out.csv"
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(source), str(out)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.read_text(encoding="utf-8") == CSV_HEADER + rows
    assert int(probe.stdout) < 20_000_000, probe.stdout


def tfrecord_of(path: Path, names: list[str]) -> Path:
    with TFRecordWriter(str(path)) as writer:
        for name in names:
            writer.write(encode_example({"image/filename": bytes_feature([name.encode()])}))
    return path


def read_tfrecord(path: Path) -> list[str]:
    """What the reader yields: filenames, and the message of each BadItem (with its images)."""
    found = []
    for item in TFRecordReader(str(path)):
        if isinstance(item, BadItem):
            found.append(f"{item.error.where}: {item.error.message} [{item.images}]")
        else:
            found.append(item.filename)  # type: ignore[union-attr]
    return found


NAMES = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
RECORD = 16 + len(encode_example({"image/filename": bytes_feature([b"a.jpg"])}))


def test_a_bogus_first_length_loses_one_record_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tfrecord_of(tmp_path / "t.tfrecord", NAMES)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x55
    path.write_bytes(bytes(data))
    assert read_tfrecord(path) == [
        "record 0 at byte 0: corrupt: the CRC of the record length does not match; "
        f"{RECORD} bytes lost before the next sound record [1]",
        *NAMES[1:],
    ]


def test_a_damaged_payload_loses_that_record_only(tmp_path: Path) -> None:
    path = tfrecord_of(tmp_path / "t.tfrecord", NAMES)
    data = bytearray(path.read_bytes())
    data[2 * RECORD + 14] ^= 0x01
    path.write_bytes(bytes(data))
    assert read_tfrecord(path) == [
        "a.jpg",
        "b.jpg",
        f"record 2 at byte {2 * RECORD}: corrupt: the CRC of the {RECORD - 16}-byte payload "
        "does not match [1]",
        "d.jpg",
    ]
    report = convert(str(path), str(tmp_path / "out.parquet"), on_error="skip")
    assert (report.images_read, report.images_written, len(report.skipped)) == (4, 3, 1)


def test_garbage_after_a_bad_length_is_lost_to_the_end(tmp_path: Path) -> None:
    import gzip

    path = tfrecord_of(tmp_path / "t.tfrecord", NAMES[:2])
    data = path.read_bytes() + b"\x01" * 5000
    path.write_bytes(gzip.compress(data, mtime=0))  # (read through the decompressor)
    assert read_tfrecord(path) == [
        "a.jpg",
        "b.jpg",
        f"record 2 at byte {2 * RECORD} of the decompressed data: corrupt: the CRC of the "
        "record length does not match; no sound record follows (the rest is lost) [1]",
    ]


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("s3://bucket/images/a.jpg", True),
        ("s3://bucket/images/sub/a.jpg", True),
        ("s3://bucket/images-other/a.jpg", False),
        ("s3://bucket/images/../secret/a.jpg", False),
        ("s3://bucket/images/%2E%2E/secret/a.jpg", False),
        ("s3://other/images/a.jpg", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("tar://a.jpg::s3://bucket/images/x.tar", False),
    ],
)
def test_which_urls_an_annotation_may_name(uri: str, allowed: bool) -> None:
    from annoconv.io.images import remote_allowed, remote_paths

    with remote_paths():
        assert remote_allowed(uri, [None, "s3://bucket/images/", "/local/ann"]) is allowed
        assert not remote_allowed(uri, [])
    with remote_paths(allow=True):
        assert remote_allowed(uri, [])
