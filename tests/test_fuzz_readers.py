"""Fuzz and property tests for every reader: random bytes, every truncation of a valid file,
hostile field values (wrong types, huge numbers, NaN/inf, negative sizes, non-ASCII), BOMs and
CRLF line endings.

Whatever the input, reading ends in records that pass validation, or in annoconv errors (raised
or yielded as BadItems) whose single-line message names the file — never in another exception
type, never in a hang (hypothesis' deadline and pytest-timeout bound each case).

A new reader joins by adding one `ReaderCase` to `CASES`: how to read a file to the end, a valid
sample, and a template whose slots the hostile values fill.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annoconv import convert
from annoconv.errors import AnnoconvError, AnnotationError
from annoconv.formats import infer_format
from annoconv.formats.base import BadItem, Dropped
from annoconv.formats.csv import CsvReader
from annoconv.formats.frcnn import FrcnnReader
from annoconv.formats.openimages import OpenImagesReader, read_class_descriptions
from annoconv.formats.parquet import ParquetReader
from annoconv.formats.tfrecord import FEATURE_KINDS, TFRecordReader, inspect_tfrecords
from annoconv.formats.voc import VocReader
from annoconv.io.archives import iter_members
from annoconv.labelmap import LabelMap
from annoconv.schema import ImageRecord, ObjectAnnotation
from annoconv.tfexample import (
    Keys,
    bytes_feature,
    decode_example,
    encode_example,
    float_feature,
    frame_record,
    int64_feature,
)

pytestmark = pytest.mark.timeout(120)

#: Each generated case must finish within this (a hang fails the case, not the whole run).
CASE_DEADLINE_MS = 5000
#: CI runs a fixed, small set of examples; ANNOCONV_FUZZ_EXAMPLES=2000 searches deeper (and
#: with fresh randomness each run).
DEEP = int(os.environ.get("ANNOCONV_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=DEEP or 40,
    deadline=CASE_DEADLINE_MS,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=not DEEP,
    database=None,
)

Slots = Mapping[str, str]


# --- the readers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReaderCase:
    """One reader under test.

    `read` reads a file to its end and returns what it yields (a parser returns one value);
    `fill` renders a file from slot values (`SLOT_NAMES`), each already a string; `valid`
    are the slot values of a correct file.
    """

    name: str
    suffix: str
    read: Callable[[str], list[Any]]
    fill: Callable[[Slots], bytes]
    valid: Slots
    #: A text format (BOMs and Windows line endings must be read like the plain file).
    text: bool = True
    #: Truncation tries every `cut_step`-th length (archives are padded to 10 kB blocks).
    cut_step: int = 1

    def sample(self) -> bytes:
        return self.fill(self.valid)

    def __str__(self) -> str:
        return self.name


SLOT_NAMES = ("width", "height", "xmin", "ymin", "xmax", "ymax", "label", "flag", "name")
PIXEL_SLOTS = {"width": "64", "height": "48", "xmin": "1", "ymin": "2", "xmax": "30", "ymax": "40"}
NORMALIZED_SLOTS = {"xmin": "0.1", "ymin": "0.2", "xmax": "0.5", "ymax": "0.75"}
TEXT_SLOTS = {"label": "dog", "flag": "0", "name": "a.jpg"}


def voc_fill(slots: Slots) -> bytes:
    s = {key: escape(value) for key, value in slots.items()}
    return (
        "<annotation>\n"
        f"\t<filename>{s['name']}</filename>\n"
        f"\t<size><width>{s['width']}</width><height>{s['height']}</height>"
        "<depth>3</depth></size>\n"
        f"\t<object><name>{s['label']}</name><difficult>{s['flag']}</difficult>\n"
        f"\t\t<bndbox><xmin>{s['xmin']}</xmin><ymin>{s['ymin']}</ymin>"
        f"<xmax>{s['xmax']}</xmax><ymax>{s['ymax']}</ymax></bndbox>\n"
        "\t</object>\n"
        f"\t<object><name>cat</name><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>{s['xmax']}</xmax>"
        "<ymax>9</ymax></bndbox></object>\n"
        "</annotation>\n"
    ).encode("utf-8", "surrogatepass")


def csv_lines(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


def csv_fill(slots: Slots) -> bytes:
    s = slots
    return csv_lines(
        [
            ["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax", "difficult"],
            [s["name"], s["width"], s["height"], s["label"], s["xmin"], s["ymin"], s["xmax"],
             s["ymax"], s["flag"]],
            [s["name"], s["width"], s["height"], "cat", "3", "4", s["xmax"], "9", "0"],
            ["b.jpg", "10", "10", "", "", "", "", "", ""],
        ]
    )  # fmt: skip


def frcnn_fill(slots: Slots) -> bytes:
    s = slots
    return (
        f"{s['name']},{s['xmin']},{s['ymin']},{s['xmax']},{s['ymax']},{s['label']}\n"
        f"{s['name']},3,4,{s['xmax']},9,cat\n"
        "b.jpg,0,0,5,5,Mobile phone\n"
    ).encode("utf-8", "surrogatepass")


OI_HEADER = [
    "ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
    "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside",
]  # fmt: skip


def openimages_fill(slots: Slots) -> bytes:
    s, f = slots, slots["flag"]
    return csv_lines(
        [
            OI_HEADER,
            ["000a1249af2bc5f0", "xclick", s["label"], s["width"], s["xmin"], s["xmax"],
             s["ymin"], s["ymax"], f, "0", f, "0", "0"],
            ["000a1249af2bc5f0", "xclick", "/m/0dv5r", "1", "0.1", s["xmax"], "0.2", "0.3",
             "0", "0", "0", "0", "0"],
            ["000b0c2d3e4f5a6b", "xclick", "/m/050k8", "1", "0", "1", "0", "1",
             "-1", "-1", "-1", "-1", "-1"],
        ]
    )  # fmt: skip


def class_descriptions_fill(slots: Slots) -> bytes:
    return csv_lines([[slots["label"], slots["name"]], ["/m/050k8", "Mobile phone"]])


def labelmap_fill(slots: Slots) -> bytes:
    label = slots["label"].replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'item {{\n  name: "{label}"\n  id: {slots["width"]}\n'
        f'  display_name: "{slots["name"]}"\n}}\n'
        "item { name: 'cat' id: 2 }  # a comment\n"
    ).encode("utf-8", "surrogatepass")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return len(text)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -len(text)


def tfrecord_fill(slots: Slots) -> bytes:
    """A TFRecord of two Examples, with the slot values pushed through the feature types
    (a huge int stays huge, NaN stays NaN, text becomes its length)."""
    first, second = examples(slots)
    return frame_record(first) + frame_record(second)


def example_fill(slots: Slots) -> bytes:
    return examples(slots)[0]


def read_framed(uri: str) -> list[Any]:
    """The file's bytes as the payload of one correctly framed record: what reaches the
    Example decoder when the CRCs are right but the message is not."""
    path = Path(uri)
    path.write_bytes(frame_record(path.read_bytes()))
    return list(TFRecordReader(uri))


def examples(slots: Slots) -> tuple[bytes, bytes]:
    s = slots
    first = {
        Keys.HEIGHT: int64_feature([_int(s["height"]) % (1 << 63)]),
        Keys.WIDTH: int64_feature([_int(s["width"]) % (1 << 63) - (1 << 62)]),
        Keys.FILENAME: bytes_feature([s["name"].encode("utf-8", "surrogatepass")]),
        Keys.SOURCE_ID: bytes_feature([s["name"].encode("utf-8", "surrogatepass")]),
        Keys.ENCODED: bytes_feature([b"\xff\xd8not really a jpeg"]),
        Keys.FORMAT: bytes_feature([b"jpeg"]),
        Keys.BBOX_XMIN: float_feature([_float(s["xmin"]), 0.1]),
        Keys.BBOX_XMAX: float_feature([_float(s["xmax"]), 0.5]),
        Keys.BBOX_YMIN: float_feature([_float(s["ymin"]), 0.2]),
        Keys.BBOX_YMAX: float_feature([_float(s["ymax"]), 0.6]),
        Keys.OBJECT_CLASS_TEXT: bytes_feature(
            [s["label"].encode("utf-8", "surrogatepass"), b"cat"]
        ),
        Keys.OBJECT_CLASS_LABEL: int64_feature([_int(s["flag"]) % (1 << 63), 2]),
        Keys.OBJECT_DIFFICULT: int64_feature([_int(s["flag"]) % (1 << 63), 0]),
    }
    second = {
        Keys.FILENAME: bytes_feature([b"b.jpg"]),
        Keys.BBOX_XMIN: float_feature([]),
        Keys.BBOX_XMAX: float_feature([]),
        Keys.BBOX_YMIN: float_feature([]),
        Keys.BBOX_YMAX: float_feature([]),
    }
    return encode_example(first), encode_example(second)


def _text_array(values: list[str | None]) -> Any:
    """A string column holding the values' bytes as they are: lone surrogates become bytes
    that are not UTF-8, which Arrow stores without a check (a file from another tool may)."""
    import pyarrow as pa

    raw = [None if v is None else v.encode("utf-8", "surrogatepass") for v in values]
    return pa.array(raw, pa.binary()).view(pa.string())


def _parquet_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def parquet_flat_fill(slots: Slots) -> bytes:
    """A flat table from another tool, every column text: the reader casts each one."""
    import pyarrow as pa

    s = slots
    columns: dict[str, list[str | None]] = {
        "filename": [s["name"], s["name"], "b.jpg"],
        "width": [s["width"], s["width"], "10"],
        "height": [s["height"], s["height"], "10"],
        "class": [s["label"], "cat", None],
        "xmin": [s["xmin"], "3", None],
        "ymin": [s["ymin"], "4", None],
        "xmax": [s["xmax"], s["xmax"], None],
        "ymax": [s["ymax"], "9", None],
        "difficult": [s["flag"], "0", None],
    }
    return _parquet_bytes(pa.table({name: _text_array(v) for name, v in columns.items()}))


def parquet_nested_fill(slots: Slots) -> bytes:
    """A nested table as we write it, the slot values pushed through the column types."""
    import pyarrow as pa

    from annoconv.schema import arrow_schema

    s = slots
    schema = arrow_schema()

    def box(label: str, values: tuple[str, str, str, str], flag: str) -> dict[str, Any]:
        coordinates = dict(zip(("xmin", "ymin", "xmax", "ymax"), map(_float, values), strict=True))
        flags = {name: (_int(flag) + 128) % 256 - 128 for name in ("difficult", "truncated")}
        return {**_defaults(ObjectAnnotation), "label": label, **coordinates, **flags}

    rows = [
        {
            **_defaults(ImageRecord),
            "key": s["name"], "filename": s["name"], "coords": "pixel",
            "width": _int32(s["width"]), "height": _int32(s["height"]),
            "objects": [
                box(s["label"], (s["xmin"], s["ymin"], s["xmax"], s["ymax"]), s["flag"]),
                box("cat", ("3", "4", s["xmax"], "9"), "0"),
            ],
        },
        {**_defaults(ImageRecord), "key": "b.jpg", "filename": "b.jpg", "width": 10,
         "height": 10},
    ]  # fmt: skip
    for row in rows:
        for text in ("key", "filename"):
            row[text] = row[text].encode("utf-8", "replace").decode("utf-8")
        for obj in row["objects"]:  # type: ignore[attr-defined]
            obj["label"] = obj["label"].encode("utf-8", "replace").decode("utf-8")
    batch = pa.RecordBatch.from_pylist(rows, schema=schema)
    return _parquet_bytes(pa.Table.from_batches([batch]))


def _int32(text: str) -> int:
    """The number wrapped into the int32 range (so a huge value becomes some odd size)."""
    return (_int(text) + 2**31) % 2**32 - 2**31


def _defaults(model: Any) -> dict[str, Any]:
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
    }


def archive_fill(kind: str) -> Callable[[Slots], bytes]:
    """An image archive holding two members named from the slots (and, in a tar, a ZIP)."""

    def fill(slots: Slots) -> bytes:
        names = [f"scans/{slots['name']}.jpg", f"{slots['label']}/{slots['width']}.tif"]
        # Archives cannot hold NUL in a name (zipfile cuts it there).
        names = [name.replace("\x00", "") for name in names]
        members = {name: slots["xmin"].encode("utf-8", "surrogatepass") for name in names}
        buffer = io.BytesIO()
        if kind == "zip":
            with zipfile.ZipFile(buffer, "w") as archive:
                for name, data in members.items():
                    archive.writestr(
                        name.encode("utf-8", "surrogatepass").decode("utf-8", "replace"), data
                    )
            return buffer.getvalue()
        inner = archive_fill("zip")(slots)
        with tarfile.open(fileobj=buffer, mode="w:gz" if kind == "tar.gz" else "w") as archive:
            for name, data in [*members.items(), ("book/patent.zip", inner)]:
                info = tarfile.TarInfo(
                    name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
                )
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    return fill


def read_archive(uri: str) -> list[Any]:
    skipped: list[tuple[str, str]] = []
    members = [
        (member.name, len(member.data))
        for member in iter_members(uri, on_skip=lambda name, why: skipped.append((name, why)))
    ]
    return [*members, *skipped]


def _items(reader: Any) -> list[Any]:
    """What the reader yields, after its cheap first pass (`labels()`, which conversions run
    first) has gone over the same file: that pass too may only raise annoconv errors."""
    try:
        for key, labels in reader.labels():
            assert isinstance(key, str) and all(isinstance(label, str) for label in labels)
    except AnnoconvError as error:
        check_error(error, reader.source)
    return list(reader)


CASES = [
    ReaderCase("voc", ".xml", lambda p: _items(VocReader(p)), voc_fill,
               {**PIXEL_SLOTS, **TEXT_SLOTS}),
    ReaderCase("csv", ".csv", lambda p: _items(CsvReader(p)), csv_fill,
               {**PIXEL_SLOTS, **TEXT_SLOTS}),
    ReaderCase("frcnn", ".txt", lambda p: _items(FrcnnReader(p)), frcnn_fill,
               {**PIXEL_SLOTS, **TEXT_SLOTS}),
    ReaderCase("openimages", ".csv", lambda p: _items(OpenImagesReader(p)), openimages_fill,
               {**PIXEL_SLOTS, **NORMALIZED_SLOTS, **TEXT_SLOTS, "label": "/m/0dv5r",
                "width": "1"}),
    ReaderCase("class-descriptions", ".csv", lambda p: [read_class_descriptions(p)],
               class_descriptions_fill, {**TEXT_SLOTS, "label": "/m/0dv5r", "name": "Camera"}),
    ReaderCase("labelmap", ".pbtxt", lambda p: [LabelMap.read(p)], labelmap_fill,
               {**PIXEL_SLOTS, **TEXT_SLOTS, "width": "1", "name": "Dog"}),
    ReaderCase("tfrecord", ".tfrecord", lambda p: _items(TFRecordReader(p)), tfrecord_fill,
               {**PIXEL_SLOTS, **NORMALIZED_SLOTS, **TEXT_SLOTS, "flag": "1"}, text=False),
    # Damage inside a record whose CRCs are right: fuzzes the tf.train.Example decoder.
    ReaderCase("tf-example", ".tfrecord", read_framed, example_fill,
               {**PIXEL_SLOTS, **NORMALIZED_SLOTS, **TEXT_SLOTS, "flag": "1"}, text=False),
    # Image archives (--images, `annoconv images transcode`): read member by member.
    *(
        ReaderCase(f"archive-{kind}", f".{kind}", read_archive, archive_fill(kind),
                   {**PIXEL_SLOTS, **TEXT_SLOTS}, text=False, cut_step=97)
        for kind in ("tar", "tar.gz", "zip")
    ),
    ReaderCase("parquet-flat", ".parquet", lambda p: _items(ParquetReader(p)), parquet_flat_fill,
               {**PIXEL_SLOTS, **TEXT_SLOTS}, text=False, cut_step=13),
    ReaderCase("parquet-nested", ".parquet", lambda p: _items(ParquetReader(p)),
               parquet_nested_fill, {**PIXEL_SLOTS, **TEXT_SLOTS}, text=False, cut_step=13),
    # Inference opens .csv files to tell our CSV from Open Images' (`sniff`).
    ReaderCase("sniff", ".csv", lambda p: [infer_format(p)], openimages_fill,
               {**PIXEL_SLOTS, **NORMALIZED_SLOTS, **TEXT_SLOTS}),
]  # fmt: skip


TFRECORD = next(case for case in CASES if case.name == "tfrecord")
OPEN_IMAGES = next(case for case in CASES if case.name == "openimages")


# --- what every outcome must look like -----------------------------------------------------------


def check_outcome(case: ReaderCase, data: bytes, workdir: Path) -> list[Any]:
    """Read `data` as `case`; fail unless the outcome is valid records or annoconv errors."""
    path = workdir / f"input{case.suffix}"
    path.write_bytes(data)
    uri = str(path)
    try:
        items = case.read(uri)
    except AnnoconvError as error:
        check_error(error, uri)
        return []
    for item in items:
        if isinstance(item, BadItem):
            assert isinstance(item.error, AnnotationError)
            check_error(item.error, uri)
            assert item.images >= 0 and item.boxes >= 0
        elif isinstance(item, ImageRecord):
            check_record(item)
        elif isinstance(item, Dropped):
            assert item.reason
    return items


def check_error(error: AnnoconvError, uri: str) -> None:
    text = str(error)
    assert uri in text, f"the error does not name the file: {text}"
    assert "\n" not in text.strip() or isinstance(error, AnnotationError), text


def check_record(record: ImageRecord) -> None:
    for size in (record.width, record.height, record.depth):
        assert size is None or 0 < size < 2**31, size  # Arrow int32, as the schema says
    for obj in record.objects:
        box = (obj.xmin, obj.ymin, obj.xmax, obj.ymax)
        assert all(math.isfinite(v) for v in box), box
        assert obj.xmin <= obj.xmax and obj.ymin <= obj.ymax, box
        assert obj.label


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="annoconv-fuzz-") as folder:
        yield Path(folder)


# --- the valid sample reads back ----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_valid_sample_reads_cleanly(case: ReaderCase, workdir: Path) -> None:
    """The starting point of every mutation is a file the reader accepts in full."""
    items = check_outcome(case, case.sample(), workdir)
    assert items, case.name
    assert not [item for item in items if isinstance(item, BadItem)], items


# --- truncation at every cut --------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_truncation(case: ReaderCase, workdir: Path) -> None:
    data = case.sample()
    for cut in range(0, len(data), case.cut_step):
        check_outcome(case, data[:cut], workdir)


# --- random bytes and random damage -------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(case: ReaderCase, workdir: Path, data: bytes) -> None:
    check_outcome(case, data, workdir)


@pytest.mark.parametrize("case", CASES, ids=str)
@FUZZ
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 8))
def test_random_byte_damage(case: ReaderCase, workdir: Path, seed: int, flips: int) -> None:
    rng = random.Random(seed)
    data = bytearray(case.sample())
    for _ in range(flips):
        data[rng.randrange(len(data))] = rng.randrange(256)
    check_outcome(case, bytes(data), workdir)


# --- hostile values in every field --------------------------------------------------------------

HOSTILE_VALUES = [
    "", " ", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400",
    "-1", "-0", "0", "-99999999999999999999", "99999999999999999999999999999", str(2**63),
    str(-(2**63) - 1), "1_000", "0x10", "1e3", "12.5", "\u0661\u0662", "\uff11\uff12",
    "abc", "true", "None",
    "\u00e9t\u00e9", "\u4e2d\u6587", "\U0001f600", "\u202egpj.exe", "\ufeff1", "a,b", '"q"',
    "x\ny", "x\r\ny", "\t7\t", "\x00", "\x7f", "\ud800", "<b>", "&amp;", "]]>", "a" * 5000,
    "9" * 5000, "0" * 4999 + "1",  # past Python's 4,300-digit limit on int()
]  # fmt: skip

hostile_value = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


def hostile_slots(case: ReaderCase) -> st.SearchStrategy[dict[str, str]]:
    changed = st.dictionaries(st.sampled_from(sorted(case.valid)), hostile_value, min_size=1)
    return changed.map(lambda values: {**case.valid, **values})


@pytest.mark.parametrize("case", CASES, ids=str)
@FUZZ
@given(data=st.data())
def test_hostile_field_values(case: ReaderCase, workdir: Path, data: st.DataObject) -> None:
    slots = data.draw(hostile_slots(case))
    check_outcome(case, case.fill(slots), workdir)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b: b"\xef\xbb\xbf" + b, id="utf8-bom"),
        pytest.param(lambda b: b.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda b: b.replace(b"\n", b"\r"), id="cr"),
        pytest.param(lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"), id="bom-crlf"),
        pytest.param(lambda b: b"\xff\xfe" + b.decode("latin-1").encode("utf-16-le"), id="utf16"),
        pytest.param(lambda b: b"\xef\xbb\xbf\xef\xbb\xbf" + b, id="double-bom"),
    ],
)
def test_boms_and_line_endings(
    case: ReaderCase, encode: Callable[[bytes], bytes], workdir: Path
) -> None:
    items = check_outcome(case, encode(case.sample()), workdir)
    if case.text and encode(b"\n") in (b"\r\n", b"\xef\xbb\xbf\n", b"\xef\xbb\xbf\r\n"):
        # A BOM and CRLF are what Windows tools write: every text reader takes them.
        assert items and not [item for item in items if isinstance(item, BadItem)], items


@pytest.mark.parametrize("case", CASES, ids=str)
def test_huge_numbers_nan_and_negative_sizes_are_errors_not_records(
    case: ReaderCase, workdir: Path
) -> None:
    """Values no image can have never come back inside a record."""
    for slot, value in [
        ("xmin", "nan"), ("xmax", "inf"), ("ymin", "-inf"), ("xmax", "1e400"),
        ("width", "-64"), ("height", "-1"), ("xmin", "-5"), ("ymax", str(2**64)),
        ("width", "1e30"), ("height", str(2**31)), ("xmax", "1e300"),
    ]:  # fmt: skip
        if slot in case.valid:
            check_outcome(case, case.fill({**case.valid, slot: value}), workdir)


# --- TFRecord: features of the wrong kind -------------------------------------------------------

WRONG_LISTS = {
    "bytes": lambda: bytes_feature([b"7"]),
    "float": lambda: float_feature([0.5]),
    "int64": lambda: int64_feature([7]),
}


@pytest.mark.parametrize("key", sorted(FEATURE_KINDS))
def test_tfrecord_feature_of_the_wrong_kind_is_named(key: str, workdir: Path) -> None:
    """A `bytes_list` of widths or a `float_list` of class names is an error naming the
    feature, for the reader and for `inspect` alike, never a value coerced into a record."""
    valid = {**PIXEL_SLOTS, **NORMALIZED_SLOTS, **TEXT_SLOTS, "flag": "1"}
    payload = decode_example(examples(valid)[0])
    for kind, make in WRONG_LISTS.items():
        if kind == FEATURE_KINDS[key]:
            continue
        features = {name: _encodable(value) for name, value in payload.items()}
        features[key] = make()
        (item,) = check_outcome(TFRECORD, frame_record(encode_example(features)), workdir)
        expected = f"record 0: {key} holds a {kind}_list, expected {FEATURE_KINDS[key]}_list"
        assert isinstance(item, BadItem) and str(item.error).endswith(expected), item
        uri = str(workdir / f"input{TFRECORD.suffix}")
        assert inspect_tfrecords([uri]).problems == [f"{uri}: {expected}"]


def _encodable(feature: tuple[str, list[Any]]) -> Any:
    kind, values = feature
    return {"bytes": bytes_feature, "float": float_feature, "int64": int64_feature}[kind](values)


def test_open_images_bad_utf8_in_a_cell_names_the_row(workdir: Path) -> None:
    rows = OPEN_IMAGES.sample().splitlines(keepends=True)
    rows[2] = rows[2].replace(b"000a", b"0\xff0a")
    (item,) = check_outcome(OPEN_IMAGES, b"".join(rows), workdir)
    assert isinstance(item, BadItem)
    assert (item.error.where, item.error.message) == (
        "row 2",
        "malformed CSV: CSV conversion error to string: invalid UTF8 data",
    )


# --- whole conversions: label map, operations and writers too -------------------------------------

#: The cases that are annotation sources, with their format's name.
CONVERTED = {
    "voc": "voc", "csv": "csv", "frcnn": "frcnn", "openimages": "openimages",
    "tfrecord": "tfrecord", "parquet-flat": "parquet", "parquet-nested": "parquet",
}  # fmt: skip
CONVERSION_CASES = [case for case in CASES if case.name in CONVERTED]
#: Fewer examples than the readers get: each one runs two whole conversions.
FUZZ_CONVERSIONS = settings(FUZZ, max_examples=DEEP or 12)


def check_conversion(case: ReaderCase, data: bytes, workdir: Path) -> None:
    """Convert `data` into a CSV and into TFRecords with a label map, skipping bad items:
    the run ends in a report that adds up, or in an annoconv error naming the file (the
    first pass, the label map built from it, the size lookups and the writers included)."""
    source = workdir / f"whole{case.suffix}"
    source.write_bytes(data)
    for output in ("out.csv", "out.record"):
        target = workdir / "converted" / output
        try:
            report = convert(
                str(source), str(target), from_format=CONVERTED[case.name], on_error="skip"
            )
        except AnnoconvError as error:
            check_error(error, str(source))
            continue
        skipped = sum(item.images for item in report.skipped)
        assert report.images_read == report.images_written + skipped, report
        for item in report.skipped:
            assert item.source and item.reason and "\n" not in item.reason, item


@pytest.mark.parametrize("case", CONVERSION_CASES, ids=str)
def test_the_valid_sample_converts(case: ReaderCase, workdir: Path) -> None:
    check_conversion(case, case.sample(), workdir)


@pytest.mark.parametrize("case", CONVERSION_CASES, ids=str)
@FUZZ_CONVERSIONS
@given(data=st.data())
def test_hostile_field_values_through_a_whole_conversion(
    case: ReaderCase, workdir: Path, data: st.DataObject
) -> None:
    check_conversion(case, case.fill(data.draw(hostile_slots(case))), workdir)


@pytest.mark.parametrize("case", CONVERSION_CASES, ids=str)
@FUZZ_CONVERSIONS
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 8))
def test_random_damage_through_a_whole_conversion(
    case: ReaderCase, workdir: Path, seed: int, flips: int
) -> None:
    rng = random.Random(seed)
    data = bytearray(case.sample())
    for _ in range(flips):
        data[rng.randrange(len(data))] = rng.randrange(256)
    check_conversion(case, bytes(data), workdir)
