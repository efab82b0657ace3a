"""VOC XML: labelImg, CVAT and Roboflow files read exactly, hostile files refused, round trips."""

from __future__ import annotations

import http.server
import os
import posixpath
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import (
    Box,
    cvat_xml,
    draw_image,
    labelimg_xml,
    roboflow_xml,
    write,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from annoconv.errors import AnnotationError
from annoconv.formats import get_format, voc
from annoconv.formats.base import BadItem, ReadResult
from annoconv.formats.voc import (
    FORMAT,
    VocReader,
    VocWriter,
    output_name,
    to_voc_xml,
)
from annoconv.report import OutputFile
from annoconv.schema import BoxOutsideError, ImageRecord, ObjectAnnotation, format_number

# --- helpers -----------------------------------------------------------------------------------


def read_all(source: Any, images: str | None = None) -> list[ReadResult]:
    return list(VocReader(source, images=images))


def read_one(path: Path, images: str | None = None) -> ImageRecord:
    (result,) = read_all(str(path), images)
    assert isinstance(result, ImageRecord), result
    return result


def read_bad(path: Path, images: str | None = None) -> BadItem:
    (result,) = read_all(str(path), images)
    assert isinstance(result, BadItem), result
    return result


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the `occurrence`-th line containing `needle`."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def obj(label: str, xmin: float, ymin: float, xmax: float, ymax: float, **extra: Any) -> Any:
    return ObjectAnnotation(label=label, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, **extra)


def single_object_xml(**object_children: str) -> str:
    """A labelImg file whose one object has the given children (tag -> raw inner XML)."""
    children = "".join(f"\t\t<{tag}>{inner}</{tag}>\n" for tag, inner in object_children.items())
    return (
        "<annotation>\n\t<filename>a.jpg</filename>\n"
        "\t<size>\n\t\t<width>100</width>\n\t\t<height>80</height>\n\t\t<depth>3</depth>\n"
        f"\t</size>\n\t<object>\n{children}\t</object>\n</annotation>\n"
    )


BNDBOX = "<xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax>"


# --- reading what the tools write --------------------------------------------------------------


def test_labelimg_file_is_read_exactly(tmp_path: Path) -> None:
    text = labelimg_xml(
        "280.jpg",
        2560,
        3300,
        [("patent image", 134, 201, 2405, 3102), Box("65", 829, 45.70000076293945, 901, 88.5)],
        depth=1,
        folder="1",
        path="/home/ann/uspto/1/280.jpg",
        verified=True,
    )
    assert "\n\t<size>\n\t\t<width>2560</width>" in text  # tab-indented, as labelImg writes
    xml = write(tmp_path / "ann" / "1" / "280.xml", text)
    (record,) = read_all(str(tmp_path / "ann"))
    assert record == ImageRecord(
        key="1/280.xml",
        filename="1/280.jpg",
        width=2560,
        height=3300,
        depth=1,
        coords="pixel",
        objects=[
            obj("patent image", 134, 201, 2405, 3102, difficult=0, truncated=0),
            obj("65", 829, 45.70000076293945, 901, 88.5, difficult=0, truncated=0),
        ],
        path="/home/ann/uspto/1/280.jpg",
        verified=True,
        source=str(xml),
    )
    assert record.objects[1].ymin == 45.70000076293945


def test_cvat_file(tmp_path: Path) -> None:
    boxes = [
        Box("car", 257, 12.34, 300.5, 99, truncated=1, occluded=1, pose=None),
        Box("person", 0, 0, 10, 20, difficult=1, pose="Left"),
    ]
    xml = write(tmp_path / "frame_000001.xml", cvat_xml("frame_000001.png", 640, 480, boxes))
    assert "<xmin>257.0</xmin>" in xml.read_text()
    assert "<depth></depth>" in xml.read_text()
    record = read_one(xml)
    assert (record.filename, record.width, record.height, record.depth) == (
        "frame_000001.png",
        640,
        480,
        None,
    )
    assert record.path is None
    assert record.objects == [
        obj("car", 257.0, 12.34, 300.5, 99.0, truncated=1, occluded=1, difficult=0),
        obj("person", 0, 0, 10, 20, truncated=0, occluded=0, difficult=1, pose="Left"),
    ]


def test_roboflow_bndbox_order_is_read_by_tag(tmp_path: Path) -> None:
    name = "000008_jpg.rf.0123456789abcdef0123456789abcdef.jpg"
    xml = write(tmp_path / "x.xml", roboflow_xml(name, 155, 100, [Box("ball", 10, 20, 30, 40)]))
    assert "<xmin>10</xmin>\n\t\t\t<xmax>30</xmax>\n\t\t\t<ymin>20</ymin>" in xml.read_text()
    record = read_one(xml)
    assert record.filename == name
    assert record.path == name
    assert record.objects == [obj("ball", 10, 20, 30, 40, difficult=0, truncated=0, occluded=0)]


def test_negative_image_is_kept(tmp_path: Path) -> None:
    record = read_one(write(tmp_path / "empty.xml", labelimg_xml("empty.jpg", 10, 10, [])))
    assert record.objects == []
    assert (record.key, record.filename, record.width) == ("empty.xml", "empty.jpg", 10)


def test_extension_less_filename_is_kept_as_written(tmp_path: Path) -> None:
    text = labelimg_xml("280.jpg", 5, 5, extension_less=True)
    assert "<filename>280</filename>" in text
    assert read_one(write(tmp_path / "d" / "280.xml", text)).filename == "280"


def test_same_filename_in_two_folders_gives_two_records(tmp_path: Path) -> None:
    for folder in ("1", "2"):
        write(tmp_path / folder / "280.xml", labelimg_xml("280.jpg", 9, 9, [("x", 1, 1, 2, 2)]))
    records = read_all(str(tmp_path))
    assert [(r.key, r.filename) for r in records if isinstance(r, ImageRecord)] == [
        ("1/280.xml", "1/280.jpg"),
        ("2/280.xml", "2/280.jpg"),
    ]


def test_filename_is_the_basename_of_a_windows_path(tmp_path: Path) -> None:
    text = labelimg_xml("x.jpg", 5, 5).replace(
        "<filename>x.jpg</filename>", "<filename>C:\\Users\\me\\Pictures\\IMG_1.JPG</filename>"
    )
    assert read_one(write(tmp_path / "s" / "a.xml", text)).filename == "IMG_1.JPG"


def test_missing_filename_falls_back_to_the_path(tmp_path: Path) -> None:
    text = labelimg_xml("x.jpg", 5, 5, path="C:\\data\\imgs\\280.jpg")
    text = text.replace("\t<filename>x.jpg</filename>\n", "")
    record = read_one(write(tmp_path / "a" / "b.xml", text))
    assert (record.filename, record.path) == ("280.jpg", "C:\\data\\imgs\\280.jpg")


def test_missing_filename_and_path_is_an_error(tmp_path: Path) -> None:
    xml = write(tmp_path / "a.xml", "<annotation>\n\t<folder>x</folder>\n</annotation>\n")
    bad = read_bad(xml)
    assert str(bad.error) == (
        f"{xml}: line 1: missing <filename> (and no <path> to take the image name from)"
    )
    assert (bad.images, bad.boxes) == (1, 0)


def test_an_empty_filename_is_reported_at_its_own_line(tmp_path: Path) -> None:
    """A Roboflow-shaped file whose export left `<filename>` and `<path>` empty."""
    text = roboflow_xml("", 64, 48, [("a", 1, 1, 2, 2)])
    xml = write(tmp_path / "a.xml", text)
    assert str(read_bad(xml).error) == (
        f"{xml}: line {line_of(text, '<filename>')}, filename: empty <filename> "
        "(and no <path> to take the image name from)"
    )


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [(' verified="yes"', True), (' verified="no"', False), ("", None), (' verified="YES"', True)],
)
def test_verified(tmp_path: Path, attribute: str, expected: bool | None) -> None:
    text = labelimg_xml("a.jpg", 5, 5).replace("<annotation>", f"<annotation{attribute}>")
    assert read_one(write(tmp_path / "a.xml", text)).verified is expected


def test_bad_verified_value(tmp_path: Path) -> None:
    text = labelimg_xml("a.jpg", 5, 5).replace("<annotation>", '<annotation verified="maybe">')
    bad = read_bad(write(tmp_path / "a.xml", text))
    assert bad.error.message == "verified must be 'yes' or 'no', got 'maybe'"
    assert bad.error.where == "line 1, annotation/@verified"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("0", 0),
        ("1", 1),
        ("0.0", 0),
        ("1.0", 1),
        ("true", 1),
        ("False", 0),
        (" YES ", 1),
        ("no", 0),
        ("", -1),
        ("-1", -1),
    ],
)
def test_flag_values(tmp_path: Path, written: str, expected: int) -> None:
    text = single_object_xml(name="a", difficult=written, occluded=written, bndbox=BNDBOX)
    (found,) = read_one(write(tmp_path / "a.xml", text)).objects
    assert (found.difficult, found.occluded, found.truncated) == (expected, expected, -1)


def test_absent_flags_and_pose_are_unknown(tmp_path: Path) -> None:
    text = single_object_xml(name="a", bndbox=BNDBOX)
    assert read_one(write(tmp_path / "a.xml", text)).objects == [obj("a", 1, 2, 30, 40)]


def test_bad_flag_names_the_element(tmp_path: Path) -> None:
    text = single_object_xml(name="a", truncated="2", bndbox=BNDBOX)
    xml = write(tmp_path / "a.xml", text)
    bad = read_bad(xml)
    assert str(bad.error) == (
        f"{xml}: line {line_of(text, '<truncated>')}, object[1]/truncated: expected 0 or 1, got '2'"
    )
    assert bad.boxes == 1


@pytest.mark.parametrize(
    ("written", "expected"),
    [("Unspecified", None), ("", None), ("Frontal", "Frontal"), (" Left ", "Left")],
)
def test_pose(tmp_path: Path, written: str, expected: str | None) -> None:
    text = single_object_xml(name="a", pose=written, bndbox=BNDBOX)
    assert read_one(write(tmp_path / "a.xml", text)).objects[0].pose == expected


def test_children_are_found_by_tag_whatever_the_order_and_extras(tmp_path: Path) -> None:
    bndbox = "<ymax>40</ymax><xmax>30</xmax><ymin>2</ymin><xmin>1</xmin>"
    part = f"<name>hand</name><bndbox>{BNDBOX.replace('30', '5')}</bndbox>"
    text = single_object_xml(
        bndbox=bndbox,
        part=part,
        actions="<jumping>1</jumping>",
        attributes="<attribute><name>color</name><value>red</value></attribute>",
        occluded="1",
        name="\n\t\t\tperson\n\t\t",
    )
    assert read_one(write(tmp_path / "a.xml", text)).objects == [
        obj("person", 1, 2, 30, 40, occluded=1)
    ]


def test_names_keep_inner_whitespace_and_entities(tmp_path: Path) -> None:
    labels = ["cat\tdog", "A&amp;B", "&#x54C8;&#x54C8;", "caf\u00e9"]
    text = labelimg_xml("a.jpg", 50, 50, [("PLACEHOLDER", 1, 1, 2, 2)] * len(labels))
    for label in labels:
        text = text.replace("PLACEHOLDER", label, 1)
    record = read_one(write(tmp_path / "a.xml", text))
    assert [o.label for o in record.objects] == ["cat\tdog", "A&B", "\u54c8\u54c8", "caf\u00e9"]


def test_latin1_declared_encoding(tmp_path: Path) -> None:
    text = '<?xml version="1.0" encoding="ISO-8859-1"?>\n' + labelimg_xml(
        "caf\u00e9.jpg", 5, 5, [("Gr\u00fc\u00dfe", 1, 1, 2, 2)]
    )
    xml = write(tmp_path / "a.xml", text, encoding="latin-1")
    assert "Gr\u00fc\u00dfe".encode("latin-1") in xml.read_bytes()
    record = read_one(xml)
    assert (record.filename, record.objects[0].label) == ("caf\u00e9.jpg", "Gr\u00fc\u00dfe")


def test_utf8_bom_and_utf16(tmp_path: Path) -> None:
    text = labelimg_xml("a.jpg", 5, 5, [("\u54c8", 1, 1, 2, 2)])
    bom = write(tmp_path / "bom.xml", b"\xef\xbb\xbf" + text.encode())
    utf16 = write(
        tmp_path / "u16.xml", '<?xml version="1.0" encoding="UTF-16"?>\n' + text, "utf-16"
    )
    assert read_one(bom).objects[0].label == "\u54c8"
    assert read_one(utf16).objects[0].label == "\u54c8"


def test_float_coordinates_are_kept_exactly(tmp_path: Path) -> None:
    values = ["257.0", "45.70000076293945", "2006.8831168831168", "1e2", ".5", "+3"]
    bndbox = (
        f"<xmin>{values[0]}</xmin><ymin>{values[1]}</ymin>"
        f"<xmax>{values[2]}</xmax><ymax>{values[3]}</ymax>"
    )
    text = single_object_xml(name="a", bndbox=bndbox).replace("100", "3000").replace("80", "800")
    (found,) = read_one(write(tmp_path / "a.xml", text)).objects
    assert (found.xmin, found.ymin, found.xmax, found.ymax) == (
        257.0,
        45.70000076293945,
        2006.8831168831168,
        100.0,
    )
    bndbox = "<xmin>.5</xmin><ymin>+3</ymin><xmax> 7 </xmax><ymax>8.</ymax>"
    text = single_object_xml(name="a", bndbox=bndbox)
    (found,) = read_one(write(tmp_path / "b.xml", text)).objects
    assert (found.xmin, found.ymin, found.xmax, found.ymax) == (0.5, 3.0, 7.0, 8.0)


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [("500", "375", (500, 375)), ("500.0", "375.0", (500, 375)), (" 7 ", "9", (7, 9))],
)
def test_size_values(tmp_path: Path, width: str, height: str, expected: tuple[int, int]) -> None:
    text = (
        labelimg_xml("a.jpg", 1, 1)
        .replace("<width>1</width>", f"<width>{width}</width>")
        .replace("<height>1</height>", f"<height>{height}</height>")
    )
    record = read_one(write(tmp_path / "a.xml", text))
    assert (record.width, record.height) == expected


@pytest.mark.parametrize("width", ["abc", "-5", "12.5", "nan", "inf"])
def test_bad_size_names_the_element(tmp_path: Path, width: str) -> None:
    text = labelimg_xml("a.jpg", 1, 1).replace("<width>1</width>", f"<width>{width}</width>")
    xml = write(tmp_path / "a.xml", text)
    assert str(read_bad(xml).error) == (
        f"{xml}: line {line_of(text, '<width>')}, size/width: "
        f"expected a whole number of pixels, got {width!r}"
    )


# --- image size from the image when the XML lacks it ------------------------------------------


def test_missing_size_read_from_the_image_beside_the_xml(tmp_path: Path) -> None:
    write(tmp_path / "ann" / "1" / "280.xml", cvat_xml("280.jpg", None, None, [("x", 1, 1, 5, 5)]))
    image = draw_image(tmp_path / "ann" / "1" / "280.tif", 64, 48, "1", compression="group4")
    (record,) = read_all(str(tmp_path / "ann"))
    assert isinstance(record, ImageRecord)
    assert (record.width, record.height, record.depth, record.image_uri) == (64, 48, 1, str(image))
    assert record.filename == "1/280.jpg"


@pytest.mark.parametrize("size", [("0", "0"), ("", ""), ("640", "0")])
def test_zero_or_empty_size_read_from_the_mirrored_images_folder(
    tmp_path: Path, size: tuple[str, str]
) -> None:
    text = labelimg_xml("280.jpg", 1, 1, [("x", 1, 1, 5, 5)], depth=3)
    text = text.replace("<width>1</width>", f"<width>{size[0]}</width>")
    text = text.replace("<height>1</height>", f"<height>{size[1]}</height>")
    write(tmp_path / "ann" / "1" / "280.xml", text)
    image = draw_image(tmp_path / "images" / "1" / "280.png", 30, 20, "L")
    draw_image(tmp_path / "images" / "2" / "280.png", 99, 99)
    (record,) = read_all(str(tmp_path / "ann"), images=str(tmp_path / "images"))
    assert isinstance(record, ImageRecord)
    # The image header is more trustworthy than a broken size block: its depth wins too.
    assert (record.width, record.height, record.depth, record.image_uri) == (30, 20, 1, str(image))


def test_missing_size_read_from_an_image_found_by_name(tmp_path: Path) -> None:
    write(tmp_path / "ann" / "a" / "7.xml", cvat_xml("7.jpg", None, None))
    image = draw_image(tmp_path / "images" / "2024" / "batch" / "7.jpg", 12, 34, "RGB")
    record = read_one(tmp_path / "ann" / "a" / "7.xml", images=str(tmp_path / "images"))
    assert (record.width, record.height, record.depth, record.image_uri) == (12, 34, 3, str(image))


def test_missing_size_without_image_stays_unknown(tmp_path: Path) -> None:
    xml = write(tmp_path / "ann" / "7.xml", cvat_xml("7.jpg", None, None, [("x", 1, 2, 3, 4)]))
    record = read_one(xml, images=str(tmp_path / "no-images"))
    assert (record.width, record.height, record.image_uri) == (None, None, None)
    with pytest.raises(AnnotationError) as caught:
        record.require_size("writing TFRecords")
    assert str(caught.value) == (
        f"{xml}: image size is unknown but writing TFRecords needs it; "
        "pass the images (--images DIR) so their headers can be read"
    )


def test_size_present_does_not_read_the_image(tmp_path: Path) -> None:
    xml = write(tmp_path / "a.xml", labelimg_xml("a.jpg", 640, 480))
    write(tmp_path / "a.jpg", "not an image: reading it would fail")
    record = read_one(xml)
    assert (record.width, record.height, record.image_uri) == (640, 480, None)


def test_missing_size_with_unreadable_image(tmp_path: Path) -> None:
    xml = write(tmp_path / "a.xml", cvat_xml("a.jpg", None, None, [("x", 1, 2, 3, 4)]))
    image = write(tmp_path / "a.jpg", "not an image")
    bad = read_bad(xml)
    assert str(bad.error) == (
        f"{xml}: the image size is missing and the image {image} cannot be read: "
        "not an image file Pillow can identify"
    )
    assert bad.boxes == 1


def test_missing_size_with_ambiguous_image(tmp_path: Path) -> None:
    xml = write(tmp_path / "ann" / "a.xml", cvat_xml("a.jpg", None, None))
    draw_image(tmp_path / "img" / "x" / "a.jpg", 5, 5)
    draw_image(tmp_path / "img" / "y" / "a.jpg", 5, 5, mode="L")  # copies would be one image
    bad = read_bad(xml, images=str(tmp_path / "img"))
    assert bad.error.source == str(xml)
    assert "image 'a.jpg' is ambiguous: 2 files under" in bad.error.message
    assert "(x/a.jpg, y/a.jpg)" in bad.error.message


# --- sources -----------------------------------------------------------------------------------


def make_tree(root: Path) -> list[str]:
    names = ["b/2.xml", "a/10.xml", "a/9.xml", "c.xml", "a/sub/1.xml"]
    for name in names:
        write(root / name, labelimg_xml(posixpath.basename(name)[:-4] + ".jpg", 4, 4))
        write(root / name.replace(".xml", ".jpg"), b"")
    write(root / "notes.txt", "not an annotation")
    return sorted(names)


def keys(results: list[ReadResult]) -> list[str]:
    return [r.key for r in results if isinstance(r, ImageRecord)]


def test_folder_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    expected = make_tree(tmp_path)
    assert expected == ["a/10.xml", "a/9.xml", "a/sub/1.xml", "b/2.xml", "c.xml"]
    reader = VocReader(str(tmp_path))
    assert reader.count_hint() == 5
    assert keys(list(reader)) == expected
    assert keys(list(reader)) == expected  # iterating again reads again, same order


def test_glob_source_keeps_only_xml(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert keys(read_all(f"{tmp_path}/a/*")) == ["10.xml", "9.xml"]
    assert keys(read_all(f"{tmp_path}/**/*.xml")) == [
        "a/10.xml",
        "a/9.xml",
        "a/sub/1.xml",
        "b/2.xml",
        "c.xml",
    ]


def test_list_of_files_and_single_file(tmp_path: Path) -> None:
    make_tree(tmp_path)
    files = [str(tmp_path / "b/2.xml"), str(tmp_path / "a/9.xml")]
    results = read_all(files)
    assert keys(results) == ["a/9.xml", "b/2.xml"]
    assert [r.filename for r in results if isinstance(r, ImageRecord)] == ["a/9.jpg", "b/2.jpg"]
    assert keys(read_all(str(tmp_path / "a/sub/1.xml"))) == ["1.xml"]


def test_a_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    write(tmp_path / "1.xml", labelimg_xml("1.jpg", 4, 4))
    write(tmp_path / "2.xml", "<annotation><object>")
    write(tmp_path / "3.xml", labelimg_xml("3.jpg", 4, 4))
    results = read_all(str(tmp_path))
    assert [type(r).__name__ for r in results] == ["ImageRecord", "BadItem", "ImageRecord"]


def test_missing_file_in_a_list(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.xml")
    (bad,) = read_all([missing])
    assert isinstance(bad, BadItem)
    assert str(bad.error) == f"{missing}: cannot read the file: No such file or directory"


def test_format_entry() -> None:
    assert get_format("voc") is FORMAT
    assert (FORMAT.name, FORMAT.extensions) == ("voc", (".xml",))
    assert FORMAT.reader is VocReader
    assert FORMAT.writer is VocWriter


# --- malformed files ---------------------------------------------------------------------------


def test_truncated_file(tmp_path: Path) -> None:
    text = labelimg_xml("a.jpg", 5, 5, [("a", 1, 1, 2, 2)])
    xml = write(tmp_path / "a.xml", text[: text.index("<ymin>") + 3])
    bad = read_bad(xml)
    assert bad.error.source == str(xml)
    assert bad.error.where == f"line {line_of(text, '<ymin>')}"
    assert bad.error.message.startswith("malformed XML: ")
    assert "\n" not in str(bad.error)
    assert bad.boxes == 1  # the <object> start tag before the cut: a box skipped with the file


def test_empty_file(tmp_path: Path) -> None:
    xml = write(tmp_path / "a.xml", " \n")
    assert str(read_bad(xml).error) == f"{xml}: the file is empty"


def test_wrong_root(tmp_path: Path) -> None:
    xml = write(tmp_path / "a.xml", '<?xml version="1.0"?>\n<dataset><image/></dataset>')
    assert (
        str(read_bad(xml).error)
        == f"{xml}: line 2: root element is <dataset>, expected <annotation>"
    )


def test_text_where_a_number_belongs(tmp_path: Path) -> None:
    # The failure that breaks positional parsers (raccoon_dataset#83), here with a location.
    text = labelimg_xml("a.jpg", 50, 50, [("a", 1, 1, 2, 2), ("b", 1, 1, 2, 2)])
    text = text.replace("<xmin>1</xmin>", "<xmin>head</xmin>").replace("head", "1", 1)
    xml = write(tmp_path / "a.xml", text)
    bad = read_bad(xml)
    assert str(bad.error) == (
        f"{xml}: line {line_of(text, '<xmin>', 2)}, object[2]/bndbox/xmin: "
        "expected a number, got 'head'"
    )
    assert (bad.images, bad.boxes) == (1, 2)


def test_xmin_greater_than_xmax_is_reported_at_the_xmin_line(tmp_path: Path) -> None:
    text = labelimg_xml("a.jpg", 100, 100, [("a", 1, 1, 2, 2), ("b", 50, 1, 10, 2)])
    xml = write(tmp_path / "a.xml", text)
    assert str(read_bad(xml).error) == (
        f"{xml}: line {line_of(text, '<xmin>', 2)}, object[2]/bndbox/xmin: xmin 50 > xmax 10"
    )


def test_box_outside_the_image_is_reported_at_the_coordinate_line(tmp_path: Path) -> None:
    text = roboflow_xml("a.jpg", 155, 100, [("a", 1, 1, 156, 2)])
    xml = write(tmp_path / "a.xml", text)
    error = read_bad(xml).error
    assert str(error) == (
        f"{xml}: line {line_of(text, '<xmax>')}, object[1]/bndbox/xmax: "
        "xmax 156 is outside [0, 155] (image 155x100)"
    )
    # The clip and drop policies still get the record as read.
    assert isinstance(error, BoxOutsideError) and error.record is not None


@pytest.mark.parametrize(
    ("children", "where", "message"),
    [
        ({"bndbox": BNDBOX}, "object[1]", "missing <name>"),
        ({"name": "  ", "bndbox": BNDBOX}, "object[1]/name", "empty <name>"),
        ({"name": "a"}, "object[1]", "missing <bndbox>"),
        (
            {"name": "a", "bndbox": BNDBOX.replace("<ymax>40</ymax>", "")},
            "object[1]/bndbox",
            "missing <ymax>",
        ),
        (
            {"name": "a", "bndbox": BNDBOX.replace("30", "(88, 100)")},
            "object[1]/bndbox/xmax",
            "expected a number, got '(88, 100)'",
        ),
        (
            {"name": "a", "bndbox": BNDBOX.replace("30", "")},
            "object[1]/bndbox/xmax",
            "expected a number, got ''",
        ),
    ],
)
def test_broken_objects(tmp_path: Path, children: dict[str, str], where: str, message: str) -> None:
    text = single_object_xml(**children)
    bad = read_bad(write(tmp_path / "a.xml", text))
    assert bad.error.where is not None
    line, path = bad.error.where.split(", ")
    assert (path, bad.error.message) == (where, message)
    assert line.startswith("line ") and int(line[5:]) >= line_of(text, "<object>")
    assert bad.boxes == 1


# --- hostile files -----------------------------------------------------------------------------


class CountingServer:
    """An HTTP server on 127.0.0.1 that counts requests: proof that nothing is fetched."""

    def __init__(self) -> None:
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                body = b'<!ENTITY leak "FETCHED">'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_server() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


def test_external_entity_to_a_local_secret(tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.txt", "TOP-SECRET-7f3a")
    text = (
        f'<?xml version="1.0"?>\n<!DOCTYPE annotation [\n'
        f'<!ENTITY s SYSTEM "file://{secret}">\n]>\n'
        "<annotation><filename>&s;</filename><object><name>&s;</name>"
        f"<bndbox>{BNDBOX}</bndbox></object></annotation>"
    )
    xml = write(tmp_path / "a.xml", text)
    bad = read_bad(xml)
    assert str(bad.error) == f"{xml}: DTD entity declarations are not allowed"
    assert "TOP-SECRET" not in repr(bad)


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    text = (
        f'<?xml version="1.0"?>\n<!DOCTYPE annotation [\n{"".join(entities)}\n]>\n'
        "<annotation><filename>&lol9;</filename></annotation>"
    )
    xml = write(tmp_path / "a.xml", text)
    started = time.perf_counter()
    bad = read_bad(xml)
    assert time.perf_counter() - started < 1.0
    assert str(bad.error) == f"{xml}: DTD entity declarations are not allowed"


def test_utf16_entity_declarations_are_refused_too(tmp_path: Path) -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE a [<!ENTITY x "y">]><annotation/>'
    xml = write(tmp_path / "a.xml", text, "utf-16")
    assert str(read_bad(xml).error) == f"{xml}: DTD entity declarations are not allowed"


def test_entity_declarations_in_utf32_are_refused_after_parsing(tmp_path: Path) -> None:
    # The byte scan does not see `<!ENTITY` in UTF-32; the check on the parsed DTD does.
    text = '<?xml version="1.0" encoding="UTF-32"?>\n<!DOCTYPE a [<!ENTITY x "y">]><annotation/>'
    xml = write(tmp_path / "a.xml", text, "utf-32")
    assert str(read_bad(xml).error) == f"{xml}: DTD entity declarations are not allowed"


def test_parser_messages_stay_on_one_line(tmp_path: Path) -> None:
    text = '<?xml version="1.0" encoding="IBM500"?>\n<annotation/>'
    xml = write(tmp_path / "a.xml", text, "cp500")
    assert str(read_bad(xml).error) == (
        f"{xml}: line 1: malformed XML: Unsupported encoding: detecting EBCDIC (column 1)"
    )


def test_external_dtd_is_not_fetched(tmp_path: Path, http_server: CountingServer) -> None:
    body = labelimg_xml("a.jpg", 5, 5, [("a", 1, 1, 2, 2)])
    text = f'<?xml version="1.0"?>\n<!DOCTYPE annotation SYSTEM "{http_server.url}/voc.dtd">\n'
    record = read_one(write(tmp_path / "a.xml", text + body))
    assert [o.label for o in record.objects] == ["a"]
    assert http_server.requests == 0


def test_entity_from_an_unloaded_external_dtd_is_refused(
    tmp_path: Path, http_server: CountingServer
) -> None:
    text = (
        f'<?xml version="1.0"?>\n<!DOCTYPE annotation SYSTEM "{http_server.url}/voc.dtd">\n'
        "<annotation>\n<filename>a&leak;.jpg</filename>\n</annotation>\n"
    )
    xml = write(tmp_path / "a.xml", text)
    assert str(read_bad(xml).error) == (
        f"{xml}: line 4: entity reference &leak; is not allowed (external DTDs are not loaded)"
    )
    assert http_server.requests == 0


def test_parameter_entity_to_a_url_is_refused(tmp_path: Path, http_server: CountingServer) -> None:
    text = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE annotation [<!ENTITY % remote SYSTEM "{http_server.url}/x.dtd"> %remote;]>\n'
        "<annotation><filename>&leak;</filename></annotation>"
    )
    xml = write(tmp_path / "a.xml", text)
    assert str(read_bad(xml).error) == f"{xml}: DTD entity declarations are not allowed"
    assert http_server.requests == 0


# --- writing -----------------------------------------------------------------------------------


def record(**fields: Any) -> ImageRecord:
    defaults: dict[str, Any] = {"key": "1/280.xml", "filename": "1/280.jpg"}
    return ImageRecord(**{**defaults, **fields})


EXPECTED_XML = """<annotation verified="yes">
\t<folder>uspto</folder>
\t<filename>280.jpg</filename>
\t<path>C:\\data\\uspto\\280.jpg</path>
\t<source>
\t\t<database>Unknown</database>
\t</source>
\t<size>
\t\t<width>2560</width>
\t\t<height>3300</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>patent  image</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>1</difficult>
\t\t<bndbox>
\t\t\t<xmin>829</xmin>
\t\t\t<ymin>45.70000076293945</ymin>
\t\t\t<xmax>901</xmax>
\t\t\t<ymax>1000.5</ymax>
\t\t</bndbox>
\t</object>
\t<object>
\t\t<name>\u54c8 &amp; &lt;x&gt;</name>
\t\t<pose>Left</pose>
\t\t<occluded>1</occluded>
\t\t<bndbox>
\t\t\t<xmin>0</xmin>
\t\t\t<ymin>0</ymin>
\t\t\t<xmax>2560</xmax>
\t\t\t<ymax>3300</ymax>
\t\t</bndbox>
\t</object>
</annotation>
"""


def test_writer_writes_labelimg_layout(tmp_path: Path) -> None:
    rec = record(
        width=2560,
        height=3300,
        path="C:\\data\\uspto\\280.jpg",
        verified=True,
        objects=[
            obj("patent  image", 829, 45.70000076293945, 901, 1000.5, truncated=0, difficult=1),
            obj("\u54c8 & <x>", 0, 0, 2560, 3300, occluded=1, pose="Left", group_of=1),
        ],
    )
    writer = VocWriter(str(tmp_path / "out"))
    writer.write(rec)
    outputs = writer.close()
    target = tmp_path / "out" / "1" / "280.xml"
    assert target.read_bytes() == EXPECTED_XML.encode("utf-8")
    assert outputs == [OutputFile(str(target), target.stat().st_size, "voc")]
    assert os.listdir(target.parent) == ["280.xml"]  # no partial files left behind


def test_writer_minimal_record(tmp_path: Path) -> None:
    data = to_voc_xml(ImageRecord(key="k", filename="a.png", verified=False))
    assert data.decode() == (
        '<annotation verified="no">\n\t<folder></folder>\n\t<filename>a.png</filename>\n'
        "\t<path>a.png</path>\n\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n"
        "\t<segmented>0</segmented>\n</annotation>\n"
    )


def test_writer_depth_defaults_to_3(tmp_path: Path) -> None:
    data = to_voc_xml(record(width=4, height=5))
    assert b"<width>4</width>\n\t\t<height>5</height>\n\t\t<depth>3</depth>" in data


@pytest.mark.parametrize(
    ("key", "filename", "expected"),
    [
        ("1/280.xml", "1/280.jpg", "1/280.xml"),
        ("./a/B.XML", "x.jpg", "a/B.XML"),
        ("train/7", "train/7.jpg", "train/7.xml"),
        ("row-3", "imgs/280", "imgs/280.xml"),
    ],
)
def test_output_name(key: str, filename: str, expected: str) -> None:
    assert output_name(ImageRecord(key=key, filename=filename)) == expected


@pytest.mark.parametrize("key", ["../evil.xml", "/etc/evil.xml", "a/../../evil.xml", "C:/x.xml"])
def test_output_name_stays_inside_the_destination(key: str) -> None:
    with pytest.raises(AnnotationError, match="must stay inside the destination folder"):
        output_name(ImageRecord(key=key, filename="a.jpg"))


def test_writer_refuses_what_it_cannot_write_and_writes_nothing(tmp_path: Path) -> None:
    writer = VocWriter(str(tmp_path / "out"))
    bad_label = record(objects=[obj("a\x01b", 1, 1, 2, 2)], source="src.csv")
    with pytest.raises(AnnotationError) as caught:
        writer.write(bad_label)
    assert str(caught.value) == "src.csv: object[1]/name: '\\x01' cannot be written in XML"
    normalized = record(coords="normalized", objects=[obj("a", 0.1, 0.1, 0.2, 0.2)])
    with pytest.raises(AnnotationError, match="VOC needs pixel coordinates"):
        writer.write(normalized)
    writer.write(record())
    with pytest.raises(AnnotationError, match=r"another record was already written to 1/280\.xml"):
        writer.write(record(filename="1/other.jpg"))
    assert [Path(o.path).name for o in writer.close()] == ["280.xml"]
    assert sorted(os.listdir(tmp_path / "out" / "1")) == ["280.xml"]


def test_abort_removes_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write(out / "keep.txt", "the user's file")
    writer = VocWriter(str(out))
    writer.write(record())
    writer.write(record(key="a/b/c.xml", filename="a/b/c.jpg"))
    writer.abort()
    assert sorted(os.listdir(out)) == ["keep.txt"]
    with pytest.raises(RuntimeError, match=r"write\(\) after abort\(\)"):
        writer.write(record())


def test_abort_after_close_keeps_the_published_files(tmp_path: Path) -> None:
    writer = VocWriter(str(tmp_path))
    writer.write(record())
    (output,) = writer.close()
    writer.abort()
    assert Path(output.path).read_bytes() == to_voc_xml(record())


@pytest.mark.parametrize(
    ("value", "text"),
    [(829.0, "829"), (0.0, "0"), (45.70000076293945, "45.70000076293945"), (1e-05, "1e-05")],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text
    assert float(text) == value


# --- round trips -------------------------------------------------------------------------------


def test_tool_files_round_trip_through_the_writer(tmp_path: Path) -> None:
    write(tmp_path / "in/1/280.xml", labelimg_xml("280.jpg", 2560, 3300, [("x", 1, 2, 3, 4.5)]))
    write(tmp_path / "in/2/a.xml", cvat_xml("a.png", 640, 480, [Box("c", 257, 1.5, 300, 2)]))
    write(tmp_path / "in/3.xml", roboflow_xml("3.jpg", 155, 100, [("b", 10, 20, 30, 40)]))
    write(tmp_path / "in/4.xml", labelimg_xml("4.jpg", 9, 9, [], verified=True))
    first = [strip_source(r) for r in read_all(str(tmp_path / "in"))]
    writer = VocWriter(str(tmp_path / "out"))
    for item in first:
        writer.write(item)
    writer.close()
    again = [strip_source(r) for r in read_all(str(tmp_path / "out"))]
    # What VOC writes in place of unknowns: depth 3 and the filename as <path>.
    filled = [
        r.model_copy(update={"depth": r.depth or 3, "path": r.path or r.filename}) for r in first
    ]
    assert again == filled
    assert [r.path for r in again] == [
        "/home/user/images/280.jpg",
        "2/a.png",
        "3.jpg",
        "/home/user/images/4.jpg",
    ]


def strip_source(result: ReadResult) -> ImageRecord:
    assert isinstance(result, ImageRecord), result
    return result.model_copy(update={"source": None})


SEGMENT = st.text("abcxyz019_-", min_size=1, max_size=6)
TEXT = (
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool)
)


NAME = TEXT.filter(lambda t: "/" not in t and "\\" not in t and t not in (".", ".."))
# Recorded paths that cannot name an image on this machine (the reader may look them up).
PATHS = (
    NAME
    | st.builds("C:\\Users\\{}\\{}".format, NAME, NAME)
    | st.builds("/nonexistent/annoconv/{}/{}".format, NAME, NAME)
)


@st.composite
def voc_records(draw: st.DrawFn) -> ImageRecord:
    """Records as VocReader produces them: everything VOC can hold, nothing it cannot."""
    folders = draw(st.lists(SEGMENT, max_size=2))
    stem = draw(SEGMENT)
    extension = draw(st.sampled_from([".jpg", ".PNG", ".tif", ""]))
    key = posixpath.join(*folders, stem + ".xml")
    filename = posixpath.join(*folders, stem + extension)
    sized = draw(st.booleans())
    width = draw(st.integers(1, 10_000)) if sized else None
    height = draw(st.integers(1, 10_000)) if sized else None
    flags = st.sampled_from([-1, 0, 1])
    objects = []
    for _ in range(draw(st.integers(0, 4))):
        xs = sorted(draw(st.floats(0, width or 1e7)) for _ in range(2))
        ys = sorted(draw(st.floats(0, height or 1e7)) for _ in range(2))
        pose = draw(st.none() | TEXT.filter(lambda p: p != "Unspecified"))
        objects.append(
            obj(
                draw(TEXT),
                xs[0],
                ys[0],
                xs[1],
                ys[1],
                difficult=draw(flags),
                truncated=draw(flags),
                occluded=draw(flags),
                pose=pose,
            )
        )
    return ImageRecord(
        key=key,
        filename=filename,
        width=width,
        height=height,
        depth=draw(st.sampled_from([1, 3, 4])) if sized else None,
        objects=objects,
        path=draw(PATHS),
        verified=draw(st.sampled_from([True, False, None])),
    )


@settings(max_examples=60, deadline=None)
@given(voc_records())
def test_write_then_read_gives_back_the_same_record(original: ImageRecord) -> None:
    with tempfile.TemporaryDirectory() as out:
        writer = VocWriter(out)
        writer.write(original)
        writer.close()
        (again,) = read_all(out)
    assert strip_source(again) == original
    if isinstance(again, ImageRecord):
        for before, after in zip(original.objects, again.objects, strict=True):
            assert (after.xmin, after.ymin, after.xmax, after.ymax) == (
                before.xmin,
                before.ymin,
                before.xmax,
                before.ymax,
            )


# --- the plain-document fast path --------------------------------------------------------------

PLAIN = labelimg_xml(
    "a.jpg", 100, 80, [Box("dog", 1, 2, 30, 40), Box("cat", 5.5, 6, 7, 8.25)], verified=True
)


def slow_path(data: bytes, uri: str, key: str) -> ImageRecord | str:
    """What lxml and `_record` make of a document: the record, or the error message."""
    try:
        return voc._record(voc.parse_voc_xml(data, uri), uri, key, None)
    except AnnotationError as error:
        return str(error)


def fast_path(data: bytes, uri: str, key: str) -> ImageRecord | None:
    plain = voc._plain_document(data)
    return None if plain is None else voc._plain_record(plain, uri, key)


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        (PLAIN, True),
        (PLAIN.replace("\n", "\r\n"), True),
        (PLAIN.replace('<annotation verified="yes">', "<annotation verified='no'>"), True),
        ('<?xml version="1.0" encoding="UTF-8"?>\n' + PLAIN, True),
        (PLAIN.replace("<pose>Unspecified</pose>", "<pose> Frontal </pose>"), True),
        (PLAIN.replace("<difficult>0</difficult>", "<difficult> 1 </difficult>"), True),
        (PLAIN.replace("<truncated>0</truncated>", "<truncated>yes</truncated>"), True),
        (PLAIN.replace("<depth>3</depth>", "<depth></depth>"), True),
        (PLAIN.replace("<folder>images</folder>", "<folder>a > b</folder>"), True),
        (PLAIN.replace("<name>dog</name>", "<name>\u00e9t\u00e9\n chien </name>"), True),
        # Not plain: lxml reads them (or refuses them) instead.
        (" " + '<?xml version="1.0"?>' + PLAIN, False),
        (PLAIN.replace("<name>dog</name>", "<name>R&amp;D</name>"), False),
        (PLAIN.replace("<segmented>0</segmented>", "<!-- note --><segmented>0</segmented>"), False),
        (PLAIN.replace("<segmented>0</segmented>", "<segmented/>"), False),
        (PLAIN.replace("<name>dog</name>", "<name>d\x01og</name>"), False),
        (PLAIN.replace("<name>dog</name>", "<name>dog</nam>"), False),
        (PLAIN.replace("</annotation>", "</annotation><x/>"), False),
        (PLAIN.replace("<xmin>1</xmin>", "<xmin>1e0</xmin>"), False),
        (PLAIN.replace("<xmin>1</xmin>", "<xmin>nan</xmin>"), False),
        (PLAIN.replace("<xmin>1</xmin>", "<xmin>1_0</xmin>"), False),
        (PLAIN.replace("<xmin>1</xmin>", "<xmin>50</xmin>"), False),  # xmin > xmax
        (PLAIN.replace("<xmax>30</xmax>", "<xmax>101</xmax>"), False),  # outside the image
        (PLAIN.replace("<name>dog</name>", "<name> </name>"), False),
        (PLAIN.replace("<difficult>0</difficult>", "<difficult>2</difficult>"), False),
        (PLAIN.replace("<width>100</width>", "<width>100.5</width>"), False),
        (PLAIN.replace("<width>100</width>", "<width>0</width>"), False),
        (PLAIN.replace('verified="yes"', 'verified="maybe"'), False),
        (PLAIN.replace("<filename>a.jpg</filename>", "<filename><x>a</x></filename>"), False),
        (PLAIN.replace("\t\t<pose>", "\t\t<extra>1</extra><pose>", 1), False),
        (PLAIN.replace("<object>", '<object id="1">', 1), False),
        ('<?xml version="1.0" encoding="ISO-8859-1"?>\n' + PLAIN, False),
        (PLAIN.replace("<annotation", "<annotatio", 1), False),
    ],
)
def test_plain_documents_read_as_lxml_reads_them(tmp_path: Path, text: str, fast: bool) -> None:
    assert text != PLAIN or fast  # every variant changes the plain file
    data = text.encode()
    uri, key = str(write(tmp_path / "1" / "a.xml", data)), "1/a.xml"
    quick = fast_path(data, uri, key)
    assert (quick is not None) == fast
    expected = slow_path(data, uri, key)
    if quick is not None:
        assert isinstance(expected, ImageRecord)
        assert quick == expected
        assert quick.model_fields_set == expected.model_fields_set
        for mine, theirs in zip(quick.objects, expected.objects, strict=True):
            assert mine.model_fields_set == theirs.model_fields_set
    result = voc.read_voc_file(uri, key)
    assert (str(result.error) if isinstance(result, BadItem) else result) == expected
    # The survey's labels: from the same grammar, or from lxml when it is not plain.
    names = voc._plain_labels(data)
    assert (names is not None) == (voc._plain_document(data) is not None)
    if names is not None:
        root = voc.parse_voc_xml(data, uri)
        assert names == [(name.text or "").strip() for name in root.iterfind("object/name")]


def test_plain_labels_match_lxml(tmp_path: Path) -> None:
    texts = {
        "plain.xml": PLAIN,
        "entities.xml": PLAIN.replace("<name>dog</name>", "<name> R&amp;D </name>"),
        "negative.xml": labelimg_xml("n.jpg", 10, 10, []),
        "broken.xml": PLAIN.replace("</annotation>", ""),
        "unknown-size.xml": labelimg_xml("u.jpg", None, None, [Box(" x ", 1, 1, 2, 2)]),
    }
    for name, text in texts.items():
        write(tmp_path / name, text)
    labels = dict(VocReader(str(tmp_path)).labels())
    assert labels == {
        "entities.xml": ["R&D", "cat"],
        "negative.xml": [],
        "plain.xml": ["dog", "cat"],
        "unknown-size.xml": ["x"],
    }


SIGNIFICANT = st.sampled_from([*"<>/&;\"'=? \t\n\r!-[]x0.1e", "\x00", "\u00e9", "\ufffe"])


@st.composite
def mutated_plain(draw: st.DrawFn) -> bytes:
    """PLAIN with a few characters inserted, deleted or replaced: mostly near-misses of the
    grammar, which the fast path must either read exactly as lxml does or leave to lxml."""
    text = PLAIN
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.sampled_from(range(len(text) + 1)))  # uniform, not biased to 0
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(SIGNIFICANT)
        if action == "insert":
            text = text[:at] + char + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None)
@given(mutated_plain())
def test_mutated_documents_read_as_lxml_reads_them(data: bytes) -> None:
    uri, key = "/data/ann/1/a.xml", "1/a.xml"
    quick = fast_path(data, uri, key)
    if quick is not None:
        assert quick == slow_path(data, uri, key)
    names = voc._plain_labels(data)
    if names is not None:
        root = voc.parse_voc_xml(data, uri)
        assert names == [(name.text or "").strip() for name in root.iterfind("object/name")]


def test_a_size_beyond_int32_is_refused_on_the_fast_path_too(tmp_path: Path) -> None:
    # A plain labelImg file takes the regex fast path, which must keep the schema's int32 bound.
    write(tmp_path / "a.xml", labelimg_xml("a.jpg", 64, 2**31, [("dog", 1, 2, 30, 40)]))
    (item,) = list(VocReader(str(tmp_path)))
    assert isinstance(item, BadItem)
    assert "a.xml" in str(item.error) and "2147483647" in str(item.error)
