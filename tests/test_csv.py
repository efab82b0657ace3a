"""The tutorial CSV format: exact bytes written, every reader path, round trips, bad input."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annoconv.errors import AnnotationError
from annoconv.formats.base import BadItem, ReadResult
from annoconv.formats.csv import EXTRA_COLUMNS, FORMAT, CsvReader, CsvWriter
from annoconv.schema import ImageRecord, ObjectAnnotation, format_number

HEADER = "filename,width,height,class,xmin,ymin,xmax,ymax\n"


def box(
    label: str, xmin: float, ymin: float, xmax: float, ymax: float, **extra: Any
) -> ObjectAnnotation:
    return ObjectAnnotation(label=label, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, **extra)


def image(
    filename: str, width: int | None, height: int | None, *objects: ObjectAnnotation, **extra: Any
) -> ImageRecord:
    key = extra.pop("key", filename)
    return ImageRecord(
        key=key, filename=filename, width=width, height=height, objects=list(objects), **extra
    )


def write(path: Path, records: list[ImageRecord], columns: tuple[str, ...] = ()) -> bytes:
    writer = CsvWriter(str(path), columns=columns)
    for record in records:
        writer.write(record)
    outputs = writer.close()
    assert [(out.path, out.kind) for out in outputs] == [(str(path), "csv")]
    assert outputs[0].size == path.stat().st_size
    return path.read_bytes()


def read(path: Path, content: str | bytes) -> list[ReadResult]:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return list(CsvReader(str(path)))


def records_of(items: list[ReadResult]) -> list[ImageRecord]:
    assert all(isinstance(item, ImageRecord) for item in items), items
    return [item for item in items if isinstance(item, ImageRecord)]


def errors_of(items: list[ReadResult]) -> list[tuple[str, int, int]]:
    return [(str(i.error), i.images, i.boxes) for i in items if isinstance(i, BadItem)]


# --- writing ----------------------------------------------------------------------------------


def test_writes_base_columns_exactly(tmp_path: Path) -> None:
    records = [
        image(
            "a.jpg",
            829,
            600,
            box("cat", 10.0, 20.0, 300.0, 400.0),
            box("a,b", 0.5, 1.25, 45.70000076293945, 599.9),
        ),
        image("b.png", 100, 50, box('say "hi"', 0, 0, 100, 50)),
        image("猫.jpg", 10, 10, box("naïve 猫", 1, 1, 9, 9)),
        image("empty.jpg", 640, 480),
        image("c d.jpg", 10, 10, box("two\nlines", 0, 0, 1, 1), box("cr\rhere", 0, 0, 2, 2)),
    ]
    expected = (
        HEADER + "a.jpg,829,600,cat,10,20,300,400\n"
        'a.jpg,829,600,"a,b",0.5,1.25,45.70000076293945,599.9\n'
        'b.png,100,50,"say ""hi""",0,0,100,50\n'
        "猫.jpg,10,10,naïve 猫,1,1,9,9\n"
        "empty.jpg,640,480,,,,,\n"
        'c d.jpg,10,10,"two\nlines",0,0,1,1\n'
        'c d.jpg,10,10,"cr\rhere",0,0,2,2\n'
    ).encode()
    assert write(tmp_path / "out.csv", records) == expected


def test_writes_extra_columns_in_the_order_given(tmp_path: Path) -> None:
    columns = ("xmin_norm", "difficult", "key", "verified", "confidence", "pose", "ymax_norm")
    records = [
        image(
            "a.jpg",
            200,
            100,
            box("dog", 50, 25, 150, 75, difficult=1, confidence=0.25, pose="Frontal"),
            box("cat", 0, 0, 200, 100),
            key="ann/a.xml",
            verified=False,
        ),
        image("b.jpg", 10, 10, key="ann/b.xml"),
        image("c.jpg", 3, 7, box("x", 1, 0, 2, 1, difficult=0, confidence=1.0), verified=True),
    ]
    expected = (
        HEADER.rstrip("\n") + "," + ",".join(columns) + "\n"
        "a.jpg,200,100,dog,50,25,150,75,0.25,1,ann/a.xml,0,0.25,Frontal,0.75\n"
        "a.jpg,200,100,cat,0,0,200,100,0,-1,ann/a.xml,0,,,1\n"
        "b.jpg,10,10,,,,,,,,ann/b.xml,,,,\n"
        "c.jpg,3,7,x,1,0,2,1,0.3333333333333333,0,c.jpg,1,1,,0.14285714285714285\n"
    ).encode()
    assert write(tmp_path / "out.csv", records, columns) == expected


def test_writes_every_extra_column(tmp_path: Path) -> None:
    record = image(
        "a.jpg",
        640,
        480,
        box("dog", 1, 2, 3, 4, difficult=0, truncated=1, occluded=-1, group_of=0, depiction=1),
        depth=3,
        split="train",
        path="C:\\Users\\me\\a.jpg",
        key="k",
    )
    data = write(tmp_path / "out.csv", [record], EXTRA_COLUMNS)
    assert (
        data
        == (
            HEADER.rstrip("\n") + "," + ",".join(EXTRA_COLUMNS) + "\n"
            "a.jpg,640,480,dog,1,2,3,4,0,1,-1,0,1,-1,,,3,train,k,C:\\Users\\me\\a.jpg,,"
            "0.0015625,0.004166666666666667,0.0046875,0.008333333333333333\n"
        ).encode()
    )


def test_format_number_is_lossless() -> None:
    assert format_number(829.0) == "829"
    assert format_number(45.70000076293945) == "45.70000076293945"
    assert format_number(0.1 + 0.2) == "0.30000000000000004"
    assert format_number(1e20) == "1e+20"
    assert format_number(-0.0) == "0"


def test_unknown_and_repeated_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as excinfo:
        CsvWriter(str(tmp_path / "x.csv"), columns=["difficult", "colour", "class"])
    assert str(excinfo.value) == (
        "unknown CSV column(s) 'colour', 'class'; valid extra columns: difficult, truncated, "
        "occluded, group_of, depiction, inside, pose, confidence, depth, split, key, path, "
        "verified, xmin_norm, ymin_norm, xmax_norm, ymax_norm"
    )
    with pytest.raises(ValueError, match="given more than once: pose"):
        CsvWriter(str(tmp_path / "x.csv"), columns=["pose", "pose"])
    with pytest.raises(ValueError, match="not the string 'pose'"):
        CsvWriter(str(tmp_path / "x.csv"), columns="pose")


def test_no_records_give_the_header_only(tmp_path: Path) -> None:
    assert write(tmp_path / "out.csv", []) == HEADER.encode()
    assert read(tmp_path / "out.csv", HEADER) == []


def test_unknown_size_is_refused_naming_the_annotation(tmp_path: Path) -> None:
    writer = CsvWriter(str(tmp_path / "out.csv"))
    good = image("a.jpg", 10, 10, box("dog", 1, 1, 2, 2))
    sizeless = image("b.jpg", None, None, box("dog", 1, 1, 2, 2), source="ann/b.xml")
    writer.write(good)
    with pytest.raises(AnnotationError) as excinfo:
        writer.write(sizeless)
    assert str(excinfo.value) == (
        "ann/b.xml: image size is unknown but writing the CSV width/height columns needs it; "
        "pass the images (--images DIR) so their headers can be read"
    )
    writer.close()
    assert (tmp_path / "out.csv").read_text() == HEADER + "a.jpg,10,10,dog,1,1,2,2\n"


def test_normalized_records_are_written_in_pixels(tmp_path: Path) -> None:
    record = image("a.jpg", 200, 100, box("dog", 0.25, 0.5, 0.75, 1.0), coords="normalized")
    data = write(tmp_path / "out.csv", [record])
    assert data == (HEADER + "a.jpg,200,100,dog,50,50,150,100\n").encode()


def test_format_is_registered() -> None:
    from annoconv.formats import get_format

    assert get_format("csv") is FORMAT
    assert FORMAT.extensions == (".csv",)
    assert FORMAT.reader is CsvReader and FORMAT.writer is CsvWriter


# --- reading ----------------------------------------------------------------------------------


def test_reads_bom_crlf_and_negative_images(tmp_path: Path) -> None:
    content = (
        b"\xef\xbb\xbffilename,width,height,class,xmin,ymin,xmax,ymax\r\n"
        b"a.jpg,640,480,dog,1,2,3.5,4\r\n"
        b"empty.jpg,640,480,,,,,\r\n"
        b"a.jpg,640,480,cat,5,6,7,45.70000076293945\r\n"
    )
    path = tmp_path / "in.csv"
    assert records_of(read(path, content)) == [
        image(
            "a.jpg",
            640,
            480,
            box("dog", 1, 2, 3.5, 4),
            box("cat", 5, 6, 7, 45.70000076293945),
            source=str(path),
        ),
        image("empty.jpg", 640, 480, source=str(path)),
    ]


def test_reads_columns_in_any_order_ignoring_unknown_ones(tmp_path: Path) -> None:
    content = (
        " class ,xmin,notes,filename , ymax,width,xmax,height,ymin,difficult,pose\n"
        "dog,1,whatever,a.jpg,4,640,3,480,2,1,Left\n"
        "cat,5,,a.jpg,8,640,7,480,6,,\n"
    )
    path = tmp_path / "in.csv"
    assert records_of(read(path, content)) == [
        image(
            "a.jpg",
            640,
            480,
            box("dog", 1, 2, 3, 4, difficult=1, pose="Left"),
            box("cat", 5, 6, 7, 8),
            source=str(path),
        )
    ]


def test_reads_what_pandas_writes(tmp_path: Path) -> None:
    # A float column with a gap gives "640.0"; labelImg's unknown size is 0x0.
    content = (
        "filename,width,height,class,xmin,ymin,xmax,ymax,depth,truncated,verified\n"
        "a.jpg,640.0,480.0,dog,1.0,2.0,3.0,4.0,3.0,1.0,True\n"
        "b.jpg,0,0,dog,1,2,3,4,,,False\n"
    )
    path = tmp_path / "in.csv"
    assert records_of(read(path, content)) == [
        image(
            "a.jpg",
            640,
            480,
            box("dog", 1, 2, 3, 4, truncated=1),
            depth=3,
            verified=True,
            source=str(path),
        ),
        image("b.jpg", None, None, box("dog", 1, 2, 3, 4), verified=False, source=str(path)),
    ]


def test_reads_normalized_only_columns_in_normalized_space(tmp_path: Path) -> None:
    content = (
        "filename,width,height,class,xmin_norm,ymin_norm,xmax_norm,ymax_norm\n"
        "a.jpg,,,dog,0.1,0.2,0.30000000000000004,1\n"
    )
    path = tmp_path / "in.csv"
    assert records_of(read(path, content)) == [
        image(
            "a.jpg",
            None,
            None,
            box("dog", 0.1, 0.2, 0.30000000000000004, 1.0),
            coords="normalized",
            source=str(path),
        )
    ]


def test_groups_by_key_when_there_is_one(tmp_path: Path) -> None:
    content = (
        HEADER.rstrip("\n") + ",key,split,path\n"
        "a.jpg,10,10,dog,1,1,2,2,x/a.xml,train,/home/me/a.jpg\n"
        "a.jpg,10,10,cat,1,1,2,2,y/a.xml,test,\n"
        "a.jpg,10,10,cow,1,1,3,3,x/a.xml,train,/home/me/a.jpg\n"
    )
    path = tmp_path / "in.csv"
    assert records_of(read(path, content)) == [
        image(
            "a.jpg",
            10,
            10,
            box("dog", 1, 1, 2, 2),
            box("cow", 1, 1, 3, 3),
            key="x/a.xml",
            split="train",
            path="/home/me/a.jpg",
            source=str(path),
        ),
        image(
            "a.jpg", 10, 10, box("cat", 1, 1, 2, 2), key="y/a.xml", split="test", source=str(path)
        ),
    ]


def test_reads_a_glob_and_a_list_of_files(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text(HEADER + "a.jpg,10,10,dog,1,1,2,2\n")
    (tmp_path / "test.csv").write_text(HEADER + "b.jpg,10,10,,,,,\n")
    by_glob = records_of(list(CsvReader(str(tmp_path / "*.csv"))))
    assert [(r.filename, r.source) for r in by_glob] == [
        ("b.jpg", str(tmp_path / "test.csv")),
        ("a.jpg", str(tmp_path / "train.csv")),
    ]
    by_list = records_of(list(CsvReader([str(tmp_path / "train.csv")])))
    assert [r.filename for r in by_list] == ["a.jpg"]


def test_csv_to_records_to_csv_is_byte_identical(tmp_path: Path) -> None:
    columns = ("difficult", "truncated", "pose", "confidence", "key", "verified", "xmax_norm")
    original = (
        HEADER.rstrip("\n") + "," + ",".join(columns) + "\n"
        "a.jpg,829,600,dog,10,20.5,45.70000076293945,599.9,0,1,Left,0.875,a,1,0.05512665954516219\n"
        'a.jpg,829,600,"a,b ""c""",0,0,829,600,-1,-1,,,a,1,1\n'
        "neg.jpg,100,100,,,,,,,,,,neg,,\n"
        '猫.jpg,3,3,"naïve\n猫",1,1,2,2,1,0,,1e-05,cat,0,0.6666666666666666\n'
    ).encode()
    source = tmp_path / "in.csv"
    source.write_bytes(original)
    records = records_of(list(CsvReader(str(source))))
    assert len(records) == 3
    assert write(tmp_path / "out.csv", records, columns) == original


# --- round trip -------------------------------------------------------------------------------

# Surrogates cannot be encoded; NUL is refused by Python 3.10's csv reader.
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
NAMES = TEXT.filter(bool)
FLAGS = st.sampled_from([-1, 0, 1])
BOX = {"xmin", "ymin", "xmax", "ymax"}


@st.composite
def boxes(draw: st.DrawFn, width: int, height: int) -> ObjectAnnotation:
    xs = sorted(draw(st.floats(0, width)) for _ in range(2))
    ys = sorted(draw(st.floats(0, height)) for _ in range(2))
    flags = {name: draw(FLAGS) for name in ("difficult", "truncated", "occluded", "group_of")}
    return ObjectAnnotation(
        label=draw(NAMES),
        xmin=xs[0],
        ymin=ys[0],
        xmax=xs[1],
        ymax=ys[1],
        **flags,
        depiction=draw(FLAGS),
        inside=draw(FLAGS),
        pose=draw(st.none() | NAMES),
        confidence=draw(st.none() | st.floats(allow_nan=False)),
    )


@st.composite
def records(draw: st.DrawFn) -> ImageRecord:
    width = draw(st.integers(1, 2**31 - 1))
    height = draw(st.integers(1, 100_000))
    return ImageRecord(
        key=draw(NAMES),
        filename=draw(NAMES),
        width=width,
        height=height,
        depth=draw(st.none() | st.integers(1, 4)),
        objects=draw(st.lists(boxes(width, height), max_size=3)),
        split=draw(st.none() | NAMES),
        path=draw(st.none() | NAMES),
        verified=draw(st.none() | st.booleans()),
    )


def round_trip(items: list[ImageRecord], columns: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.csv"
        write(path, items, columns)
        back = records_of(list(CsvReader(str(path))))
    assert back == [item.model_copy(update={"source": str(path)}) for item in items]


@settings(max_examples=200, deadline=None)
@given(st.lists(records(), max_size=4, unique_by=lambda r: r.key))
def test_round_trip_with_every_column(items: list[ImageRecord]) -> None:
    round_trip(items, EXTRA_COLUMNS)


@settings(deadline=None)
@given(st.lists(records(), max_size=4, unique_by=lambda r: r.filename))
def test_round_trip_of_the_base_columns(items: list[ImageRecord]) -> None:
    # Without the extra columns only the box and the size survive, and the key is the filename.
    base = [
        ImageRecord(
            key=item.filename,
            filename=item.filename,
            width=item.width,
            height=item.height,
            objects=[
                ObjectAnnotation(label=o.label, **o.model_dump(include=BOX)) for o in item.objects
            ],
        )
        for item in items
    ]
    round_trip(base, ())


# --- bad input --------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    expected = [
        (
            f"{path}: empty file: expected a header row "
            "(filename,width,height,class,xmin,ymin,xmax,ymax)",
            0,
            0,
        )
    ]
    assert errors_of(read(path, b"")) == expected
    assert errors_of(read(path, b"\xef\xbb\xbf\r\n\n")) == expected


def test_header_only_is_an_empty_dataset(tmp_path: Path) -> None:
    assert read(tmp_path / "in.csv", HEADER) == []
    assert read(tmp_path / "in.csv", HEADER.rstrip("\n")) == []


def test_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    items = read(path, "filename,width,Class,xmin,ymin,xmax\na.jpg,1,dog,0,0,1\n")
    assert errors_of(items) == [
        (
            f"{path}: line 1: missing column(s) height, class, ymax; "
            "the header has: filename, width, Class, xmin, ymin, xmax",
            0,
            0,
        )
    ]


def test_partial_normalized_columns_are_missing_pixel_ones(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    items = read(path, "filename,width,height,class,xmin_norm,ymin_norm,xmax_norm\n")
    assert errors_of(items)[0][0] == (
        f"{path}: line 1: missing column(s) xmin, ymin, xmax, ymax; the header has: "
        "filename, width, height, class, xmin_norm, ymin_norm, xmax_norm"
    )


def test_repeated_column(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    items = read(path, "filename,width,height,class,xmin,ymin,xmax,ymax,class\n")
    assert errors_of(items) == [(f"{path}: line 1: column(s) given more than once: class", 0, 0)]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a.jpg,640,480,dog,abc,2,3,4", "line 3: xmin: expected a number, got 'abc'"),
        ("a.jpg,640,480,dog,1,2,3,", "line 3: ymax: expected a number, got ''"),
        ("a.jpg,640,480,dog,1_0,2,30,40", "line 3: xmin: expected a number, got '1_0'"),
        ("a.jpg,640,480,dog,30,2,10,4", "line 3: xmin 30 > xmax 10"),
        ("a.jpg,640,480,dog,1,20.5,3,4", "line 3: ymin 20.5 > ymax 4"),
        ("a.jpg,640,480,dog,nan,2,3,4", "line 3/xmin: coordinate must be a finite number, got nan"),
        (
            "a.jpg,640,500,dog,1,2,3,4",
            "line 3: height: '500' differs from '480' on line 2 (all rows of one image must agree)",
        ),
        (
            "a.jpg,,480,dog,1,2,3,4",
            "line 3: width: '' differs from '640' on line 2 (all rows of one image must agree)",
        ),
        ("a.jpg,640,480,a,b,1,2,3,4", "line 3: expected 8 fields as in the header, got 9"),
        ("a.jpg,640,480,dog,1,2,3", "line 3: expected 8 fields as in the header, got 7"),
        (
            "a.jpg,640,480,,1,2,3,4",
            "line 3: class: empty on a row with coordinates "
            "(only a row with neither marks an image without objects)",
        ),
        (
            "a.jpg,640,480,dog,1,2,700,4",
            "line 3: object[2] ('dog'): xmax 700 is outside [0, 640] (image 640x480)",
        ),
    ],
)
def test_bad_row_makes_its_image_bad(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "in.csv"
    content = (
        HEADER + "a.jpg,640,480,cat,1,2,3,4\n" + row + "\nb.jpg,10,10,dog,1,1,2,2\n"
        "a.jpg,640,480,cow,1,2,3,4\n"
    )
    items = read(path, content)
    assert errors_of(items) == [(f"{path}: {message}", 1, 3)]
    assert isinstance(items[1], ImageRecord) and items[1].filename == "b.jpg"
    assert len(items) == 2


def test_box_outside_the_image_names_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    content = HEADER + "a.jpg,100,100,,,,,\na.jpg,100,100,a,1,1,2,2\na.jpg,100,100,b,1,1,2,101\n"
    assert errors_of(read(path, content)) == [
        (f"{path}: line 4: object[2] ('b'): ymax 101 is outside [0, 100] (image 100x100)", 1, 2)
    ]


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("", "a.jpg,12.5,10,dog,1,1,2,2", "width: expected a whole number, got '12.5'"),
        ("", "a.jpg,-3,10,dog,1,1,2,2", "width: expected a whole number, got '-3'"),
        ("", ",10,10,dog,1,1,2,2", "filename: empty"),
        (",key", "a.jpg,10,10,dog,1,1,2,2,", "key: empty"),
        (",difficult", "a.jpg,10,10,dog,1,1,2,2,2", "difficult: expected -1, 0 or 1, got '2'"),
        (",verified", "a.jpg,10,10,dog,1,1,2,2,yes", "verified: expected 1 or 0, got 'yes'"),
        (
            ",confidence",
            "a.jpg,10,10,dog,1,1,2,2,high",
            "confidence: expected a number, got 'high'",
        ),
        (",depth", "a.jpg,10,10,dog,1,1,2,2,RGB", "depth: expected a whole number, got 'RGB'"),
    ],
)
def test_bad_values(tmp_path: Path, header: str, row: str, message: str) -> None:
    path = tmp_path / "in.csv"
    items = read(path, HEADER.rstrip("\n") + header + "\n" + row + "\n")
    assert errors_of(items) == [(f"{path}: line 2: {message}", 1, 1)]


def test_text_that_is_not_utf8_stops_the_file(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    content = HEADER.encode() + b"a.jpg,1,1,dog,0,0,1,1\nb.jpg,1,1,caf\xe9,0,0,1,1\n"
    assert errors_of(read(path, content)) == [
        (f"{path}: line 3: not valid UTF-8 (byte 0xe9 at position 14 of the line)", 1, 1)
    ]


def test_unterminated_quote_stops_the_file(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    content = HEADER + 'a.jpg,1,1,dog,0,0,1,1\na.jpg,1,1,"cat,0,0,1,1\nb.jpg,1,1,,,,,\n'
    assert errors_of(read(path, content)) == [
        (f"{path}: line 3: malformed CSV: unexpected end of data", 1, 1)
    ]


def test_bad_file_does_not_stop_the_next(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("filename,class\n")
    (tmp_path / "b.csv").write_text(HEADER + "b.jpg,10,10,dog,1,1,2,2\n")
    items = list(CsvReader(str(tmp_path / "*.csv")))
    assert [type(item).__name__ for item in items] == ["BadItem", "ImageRecord"]
