"""keras-frcnn simple txt: the rounding rule, exact bytes written, the reader on hand-written
and malformed files, and writer -> reader round trips."""

from __future__ import annotations

import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annoconv.convert import convert
from annoconv.errors import AnnotationError, SkipRecord
from annoconv.formats import get_format
from annoconv.formats.base import BadItem, ReadResult
from annoconv.formats.frcnn import FORMAT, FrcnnReader, FrcnnWriter, pixel_int
from annoconv.pipeline import run
from annoconv.schema import ImageRecord, ObjectAnnotation


def box(label: str, xmin: float, ymin: float, xmax: float, ymax: float) -> ObjectAnnotation:
    return ObjectAnnotation(label=label, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax)


def image(
    filename: str, width: int | None, height: int | None, *objects: ObjectAnnotation, **extra: Any
) -> ImageRecord:
    key = extra.pop("key", filename)
    return ImageRecord(
        key=key, filename=filename, width=width, height=height, objects=list(objects), **extra
    )


def write(path: Path, records: list[ImageRecord], **options: Any) -> bytes:
    writer = FrcnnWriter(str(path), **options)
    for record in records:
        writer.write(record)
    outputs = writer.close()
    assert [(out.path, out.kind, out.size) for out in outputs] == [
        (str(path), "frcnn", path.stat().st_size)
    ]
    return path.read_bytes()


def read(path: Path, content: str | bytes) -> list[ReadResult]:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return list(FrcnnReader(str(path)))


def records_of(items: list[ReadResult]) -> list[ImageRecord]:
    assert all(isinstance(item, ImageRecord) for item in items), items
    return [item for item in items if isinstance(item, ImageRecord)]


def summary(items: list[ReadResult]) -> list[tuple[str, ...] | tuple[str, int, int]]:
    """Each item as (key, 'label x1 y1 x2 y2', ...) or (error, images, boxes)."""
    out: list[tuple[str, ...] | tuple[str, int, int]] = []
    for item in items:
        if isinstance(item, BadItem):
            out.append((str(item.error), item.images, item.boxes))
        elif isinstance(item, ImageRecord):
            boxes = [f"{o.label} {o.xmin:g} {o.ymin:g} {o.xmax:g} {o.ymax:g}" for o in item.objects]
            out.append((item.key, *boxes))
    return out


# --- the rounding rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, 0),
        (12.0, 12),
        (12.49, 12),
        (12.5, 13),
        (12.51, 13),
        (13.5, 14),  # halves go up, not to even
        (0.5, 1),
        (-0.5, 0),
        (-0.51, -1),
        (-1.5, -1),
        (0.49999999999999994, 0),  # floor(x + 0.5) in floats would give 1
        (64.00000000000001, 64),  # 0.1 * 640
        (2.0**53, 2**53),
        (4503599627370497.0, 4503599627370497),  # floor(x + 0.5) in floats rounds to even
    ],
)
def test_pixel_int(value: float, expected: int) -> None:
    assert pixel_int(value) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_pixel_int_is_exactly_floor_of_value_plus_a_half(value: float) -> None:
    assert pixel_int(value) == math.floor(Fraction(value) + Fraction(1, 2))


# --- writing ----------------------------------------------------------------------------------


def test_writes_lines_exactly(tmp_path: Path) -> None:
    records = [
        image("a.jpg", 640, 480, box("Camera", 10, 20, 300, 400), box("Mobile phone", 0, 0, 1, 1)),
        image("b.png", 100, 50, box("dog", 0.5, 1.5, 2.5, 49.5), box("cat", 12.49, 0.4, 12.5, 50)),
        image("sub/猫.jpg", 10, 10, box("naïve 猫", 1, 1, 9, 9), box("bg", 0, 0, 10, 10)),
    ]
    expected = (
        "a.jpg,10,20,300,400,Camera\n"
        "a.jpg,0,0,1,1,Mobile phone\n"
        "b.png,1,2,3,50,dog\n"
        "b.png,12,0,13,50,cat\n"
        "sub/猫.jpg,1,1,9,9,naïve 猫\n"
        "sub/猫.jpg,0,0,10,10,bg\n"
    ).encode()
    assert write(tmp_path / "out.txt", records) == expected


def test_normalized_boxes_are_converted_rounded_and_clamped(tmp_path: Path) -> None:
    # Normalized boxes may stray 1e-4 outside the image; in pixels that can be a whole pixel.
    record = image(
        "a.jpg",
        10000,
        5000,
        box("dog", -0.00009, 0.25, 1.00009, 1.0001),
        box("cat", 0.00025, 0.0001, 0.5, 0.5),
        coords="normalized",
    )
    data = write(tmp_path / "out.txt", [record])
    assert data == b"a.jpg,0,1250,10000,5000,dog\na.jpg,3,1,5000,2500,cat\n"


def test_without_a_size_boxes_are_rounded_but_not_clamped(tmp_path: Path) -> None:
    record = image("a.jpg", None, None, box("dog", 1.5, 2.5, 1000.5, 2000.4))
    assert write(tmp_path / "out.txt", [record]) == b"a.jpg,2,3,1001,2000,dog\n"


def test_a_box_collapsed_by_rounding_is_written_with_a_warning(tmp_path: Path) -> None:
    writer = FrcnnWriter(str(tmp_path / "out.txt"))
    writer.write(
        image(
            "a.jpg",
            100,
            100,
            box("thin", 10.2, 5, 10.4, 9),
            box("line", 10, 5, 10, 9),  # already empty: nothing to note
            source="ann/a.xml",
        )
    )
    writer.close()
    assert (tmp_path / "out.txt").read_bytes() == b"a.jpg,10,5,10,9,thin\na.jpg,10,5,10,9,line\n"
    assert writer.warnings == [
        "ann/a.xml: box 'thin' (10.2,5,10.4,9) is empty in whole pixels; written as 10,5,10,9"
    ]


def test_path_prefix_is_prepended_as_is(tmp_path: Path) -> None:
    records = [image("img/a.jpg", 10, 10, box("Camera", 1, 2, 3, 4))]
    data = write(tmp_path / "out.txt", records, path_prefix="drive/My Drive/GP/Dataset/train/")
    assert data == b"drive/My Drive/GP/Dataset/train/img/a.jpg,1,2,3,4,Camera\n"
    data = write(tmp_path / "out2.txt", records, path_prefix="x_")
    assert data == b"x_img/a.jpg,1,2,3,4,Camera\n"


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("a\nb/", "path_prefix 'a\\nb/' holds a line break"),
        ("a\rb/", "path_prefix 'a\\rb/' holds a line break"),
        ("\udcff/", "path_prefix '\\udcff/' cannot be encoded as UTF-8"),
        (" data/", "path_prefix ' data/' starts with whitespace, which readers strip"),
    ],
)
def test_bad_path_prefix_is_refused(tmp_path: Path, prefix: str, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        FrcnnWriter(str(tmp_path / "out.txt"), path_prefix=prefix)
    assert str(excinfo.value) == message


def test_comma_in_path_is_written_as_is_and_reads_back(tmp_path: Path) -> None:
    records = [
        image("photos, 2019/a,b.jpg", 10, 10, box("Mobile phone", 1, 2, 3, 4), box("x", 0, 0, 1, 1))
    ]
    out = tmp_path / "out.txt"
    assert write(out, records) == (
        b"photos, 2019/a,b.jpg,1,2,3,4,Mobile phone\nphotos, 2019/a,b.jpg,0,0,1,1,x\n"
    )
    assert summary(list(FrcnnReader(str(out)))) == [
        ("photos, 2019/a,b.jpg", "Mobile phone 1 2 3 4", "x 0 0 1 1")
    ]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            image("a.jpg", 10, 10, box("dog", 0, 0, 1, 1), box("a,b", 0, 0, 1, 1), key="k.xml"),
            "k.xml: class 'a,b' holds a comma, which the Faster R-CNN txt cannot hold "
            "(keras-frcnn splits each line on every comma)",
        ),
        (
            image("a.jpg", 10, 10, box("two\nlines", 0, 0, 1, 1), source="ann/a.xml"),
            "ann/a.xml: class 'two\\nlines' holds a line break",
        ),
        (
            image("a.jpg", 10, 10, box("cr\rhere", 0, 0, 1, 1)),
            "a.jpg: class 'cr\\rhere' holds a line break",
        ),
        (
            image("a.jpg", 10, 10, box("dog ", 0, 0, 1, 1)),
            "a.jpg: class 'dog ' has leading or trailing whitespace, which readers strip",
        ),
        (
            image("a\nb.jpg", 10, 10, box("dog", 0, 0, 1, 1), key="k"),
            "k: filepath 'a\\nb.jpg' holds a line break",
        ),
        (
            image(" a.jpg", 10, 10, box("dog", 0, 0, 1, 1), key="k"),
            "k: filepath ' a.jpg' has leading or trailing whitespace, which readers strip",
        ),
    ],
)
def test_unrepresentable_records_are_refused_whole(
    tmp_path: Path, record: ImageRecord, message: str
) -> None:
    writer = FrcnnWriter(str(tmp_path / "out.txt"))
    writer.write(image("first.jpg", 10, 10, box("dog", 1, 1, 2, 2)))
    with pytest.raises(AnnotationError) as excinfo:
        writer.write(record)
    assert str(excinfo.value) == message
    assert not isinstance(excinfo.value, SkipRecord)
    writer.close()
    assert (tmp_path / "out.txt").read_bytes() == b"first.jpg,1,1,2,2,dog\n"


def test_negative_image_is_skipped_and_reported(tmp_path: Path) -> None:
    writer = FrcnnWriter(str(tmp_path / "out.txt"))
    with pytest.raises(SkipRecord) as excinfo:
        writer.write(image("empty.jpg", 10, 10, source="ann/empty.xml"))
    assert str(excinfo.value) == (
        "ann/empty.xml: no boxes: the Faster R-CNN txt has no way to list an image without any"
    )

    records = [
        image("a.jpg", 10, 10, box("dog", 1, 1, 2, 2)),
        image("empty.jpg", None, None, source="ann/empty.xml"),
    ]
    # Skipped whatever the error policy: "fail" is the default.
    report = run(records, FrcnnWriter(str(tmp_path / "run.txt")))
    assert (report.images_read, report.images_written, report.images_skipped) == (2, 1, 1)
    assert [(item.source, item.reason) for item in report.skipped] == [
        (
            "ann/empty.xml",
            "no boxes: the Faster R-CNN txt has no way to list an image without any",
        )
    ]
    assert (tmp_path / "run.txt").read_bytes() == b"a.jpg,1,1,2,2,dog\n"


def test_convert_from_csv_with_prefix_and_a_negative_image(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "filename,width,height,class,xmin,ymin,xmax,ymax\n"
        "a.jpg,200,100,Mobile phone,10.5,20.5,99.5,100\n"
        "empty.jpg,640,480,,,,,\n"
        "a.jpg,200,100,Camera,0,0,0.4,0.6\n"
    )
    out = tmp_path / "out" / "train.txt"
    report = convert(
        str(source), str(out), from_format="csv", write_options={"path_prefix": "data/"}
    )
    assert out.read_bytes() == (
        b"data/a.jpg,11,21,100,100,Mobile phone\ndata/a.jpg,0,0,0,1,Camera\n"
    )
    assert (report.images_written, report.boxes_written, report.images_skipped) == (1, 2, 1)
    assert report.warnings == [
        f"{source}: box 'Camera' (0,0,0.4,0.6) is empty in whole pixels; written as 0,0,0,1"
    ]


def test_no_records_give_an_empty_file(tmp_path: Path) -> None:
    assert write(tmp_path / "out.txt", []) == b""
    assert read(tmp_path / "out.txt", b"") == []


def test_registered_under_its_name() -> None:
    assert get_format("frcnn") is FORMAT
    assert (FORMAT.extensions, FORMAT.reader, FORMAT.writer) == (
        (".txt",),
        FrcnnReader,
        FrcnnWriter,
    )


# --- reading ----------------------------------------------------------------------------------


def test_reads_a_hand_written_file(tmp_path: Path) -> None:
    content = (
        "\ufeffdrive/My Drive/train/a.jpg,10,20,300,400,Mobile phone\r\n"
        "\r\n"
        "b.jpg, 1 , 2,3 ,4 , Camera \r\n"
        "   \r\n"
        "photos, 2019/c,d.jpg,5,6,7,8,bg\r\n"
        "drive/My Drive/train/a.jpg,0,0,640,480,bg\r\n"
        "b.jpg,+1,2.0,3.00,4,Camera"  # no final line break
    )
    items = read(tmp_path / "in.txt", content)
    assert summary(items) == [
        ("drive/My Drive/train/a.jpg", "Mobile phone 10 20 300 400", "bg 0 0 640 480"),
        ("b.jpg", "Camera 1 2 3 4", "Camera 1 2 3 4"),
        ("photos, 2019/c,d.jpg", "bg 5 6 7 8"),
    ]
    first = records_of(items)[0]
    assert (first.filename, first.coords, first.width, first.height) == (
        "drive/My Drive/train/a.jpg",
        "pixel",
        None,
        None,
    )
    assert first.source == str(tmp_path / "in.txt")


def test_cr_line_endings_are_line_breaks(tmp_path: Path) -> None:
    items = read(tmp_path / "in.txt", "a.jpg,1,2,3,4,x\rb.jpg,1,2,3,4,y\r\rc.jpg,1,2,x,4,z\r")
    assert summary(items) == [
        ("a.jpg", "x 1 2 3 4"),
        ("b.jpg", "y 1 2 3 4"),
        (f"{tmp_path / 'in.txt'}: line 4: x2: expected a whole number of pixels, got 'x'", 1, 1),
    ]


def test_malformed_lines_spoil_their_image_only(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    content = (
        "good.jpg,1,2,3,4,dog\n"
        "few.jpg,1,2,3,4\n"
        "half.jpg,12.5,2,30,40,dog\n"
        "wide.jpg,30,2,10,40,dog\n"
        "tall.jpg,1,40,10,2,dog\n"
        "neg.jpg,-1,2,10,40,dog\n"
        "noclass.jpg,1,2,10,40, \n"
        ",1,2,10,40,dog\n"
        "exp.jpg,1e2,2,10,40,dog\n"
        "junk\n"
        "wide.jpg,1,2,3,4,dog\n"  # counted with its image, which is already bad
        "good.jpg,5,6,7,8,dog\n"
        "class,comma.jpg,1,2,3,4,a,b\n"
    )
    where = str(path)
    assert summary(read(path, content)) == [
        ("good.jpg", "dog 1 2 3 4", "dog 5 6 7 8"),
        (
            f"{where}: line 2: expected 6 comma-separated fields "
            "(filepath,x1,y1,x2,y2,class_name), got 5",
            1,
            1,
        ),
        (f"{where}: line 3: x1: expected a whole number of pixels, got '12.5'", 1, 1),
        (f"{where}: line 4: x1 30 > x2 10", 1, 2),
        (f"{where}: line 5: y1 40 > y2 2", 1, 1),
        (f"{where}: line 6: x1: -1 is negative", 1, 1),
        (f"{where}: line 7: class_name: empty", 1, 1),
        (f"{where}: line 8: filepath: empty", 1, 1),
        (f"{where}: line 9: x1: expected a whole number of pixels, got '1e2'", 1, 1),
        (
            f"{where}: line 10: expected 6 comma-separated fields "
            "(filepath,x1,y1,x2,y2,class_name), got 1",
            1,
            1,
        ),
        (f"{where}: line 13: y2: expected a whole number of pixels, got 'a'", 1, 1),
    ]


def test_invalid_utf8_spoils_the_images_read_so_far(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    items = read(
        path, b"a.jpg,1,2,3,4,x\na.jpg,1,2,3,4,y\nb.jpg,1,2,3,4,caf\xe9\nc.jpg,1,2,3,4,z\n"
    )
    assert summary(items) == [
        (f"{path}: line 3: not valid UTF-8 (byte 0xe9 at position 18 of the line)", 1, 2)
    ]


def test_reads_a_folder_of_txt_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b.jpg,1,2,3,4,y\n")
    (tmp_path / "a.txt").write_text("a.jpg,1,2,3,4,x\n")
    (tmp_path / "notes.md").write_text("not,a,box\n")
    assert summary(list(FrcnnReader(str(tmp_path)))) == [
        ("a.jpg", "x 1 2 3 4"),
        ("b.jpg", "y 1 2 3 4"),
    ]


# --- round trip -------------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1).filter(
    lambda text: text == text.strip()
)
# A path starting with U+FEFF is refused by the writer (see test below): readers strip it.
_FILEPATHS = _TEXT.filter(lambda text: not text.startswith("\ufeff"))
_LABELS = _TEXT.filter(lambda text: "," not in text)


@st.composite
def _objects(draw: st.DrawFn) -> ObjectAnnotation:
    x1, x2 = sorted(draw(st.lists(st.integers(0, 5000), min_size=2, max_size=2)))
    y1, y2 = sorted(draw(st.lists(st.integers(0, 5000), min_size=2, max_size=2)))
    return box(draw(_LABELS), x1, y1, x2, y2)


@st.composite
def _records(draw: st.DrawFn) -> list[ImageRecord]:
    names = draw(st.lists(_FILEPATHS, min_size=0, max_size=5, unique=True))
    return [
        image(name, None, None, *draw(st.lists(_objects(), min_size=1, max_size=4)))
        for name in names
    ]


@settings(max_examples=200, deadline=None)
@given(_records())
def test_round_trip_writer_to_reader(records: list[ImageRecord]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "out.txt")
        writer = FrcnnWriter(path)
        for record in records:
            writer.write(record)
        writer.close()
        back = records_of(list(FrcnnReader(path)))
    assert [(r.key, r.filename, r.objects) for r in back] == [
        (r.filename, r.filename, r.objects) for r in records
    ]
    assert all(r.coords == "pixel" and r.width is None and r.source == path for r in back)


def test_writer_refuses_a_path_that_readers_would_take_for_a_byte_order_mark(
    tmp_path: Path,
) -> None:
    box = ObjectAnnotation(label="cat", xmin=1, ymin=1, xmax=5, ymax=5)
    record = ImageRecord(
        key="a", filename="\ufeffa.jpg", width=10, height=10, objects=[box], source="a.xml"
    )
    writer = FrcnnWriter(str(tmp_path / "o.txt"))
    with pytest.raises(AnnotationError, match=r"a\.xml: filepath .* starts with U\+FEFF"):
        writer.write(record)
    writer.abort()


# --- a round trip through a format without image sizes ----------------------------------------

LINKS_PHOTOS = Path(__file__).resolve().parent.parent / "examples" / "links" / "photos"


def test_our_txt_of_exif_rotated_photos_reads_back_with_the_images(tmp_path: Path) -> None:
    """The links photos are stored landscape with EXIF orientation 6; labelImg annotated them
    as displayed (portrait). The txt has no sizes: read back, they come from the image
    headers, as displayed, and every box fits as it did (it said 'ymin 194 is outside
    [0, 180]' when the stored size was taken)."""
    from annoconv.formats.tfrecord import TFRecordReader

    direct = tmp_path / "direct.csv"
    convert(str(LINKS_PHOTOS), str(direct))
    txt = tmp_path / "links.txt"
    convert(str(LINKS_PHOTOS), str(txt))
    back = tmp_path / "back.csv"
    convert(str(txt), str(back), images=str(LINKS_PHOTOS))
    # (An image without boxes has no line in the txt.)
    boxed = [line for line in direct.read_text(encoding="utf-8").splitlines() if ",,,," not in line]
    assert back.read_text(encoding="utf-8").splitlines() == boxed
    assert ",180,240," in back.read_text(encoding="utf-8")
    prefix = tmp_path / "links.record"
    report = convert(str(txt), str(prefix), images=str(LINKS_PHOTOS))
    assert report.images_written == len({line.split(",")[0] for line in boxed[1:]})
    sizes = {(record.width, record.height) for record in TFRecordReader(str(prefix))}
    assert (180, 240) in sizes and (240, 180) not in sizes
