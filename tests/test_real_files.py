"""Issue 17: real files from eight producers, and the habits of real users.

Each fixture has the structure of a file a real producer writes (named in the test), written
here by code; outputs are read back by their real consumers: TensorFlow for TFRecords with the
OD API decoder's feature spec, protobuf's text_format for label maps.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from factories import Box, draw_image, labelimg_xml, write
from od_protos import parse_with_protobuf
from oi_factory import csv_text
from PIL import Image, ImageDraw
from test_tfrecord import read_examples

from annoconv import convert
from annoconv.cli import main
from annoconv.errors import AnnotationError

CAMERA, PHONE = "/m/0dv5r", "/m/050k8"
DESCRIPTIONS = csv_text(None, [(CAMERA, "Camera"), (PHONE, "Mobile phone")])


def tfrecord_examples(prefix: Path) -> dict[str, dict[str, Any]]:
    """Every Example of the shards under `prefix`, parsed by TensorFlow, by source id."""
    shards = sorted(prefix.parent.glob(prefix.name + "-*-of-*"))
    assert shards, f"no shards at {prefix}"
    return {example["image/source_id"].decode(): example for example in read_examples(shards)}


# --- Open Images -------------------------------------------------------------------------------

# The 2019 challenge's validation boxes: 7 columns, no Source or Confidence.
CHALLENGE_HEADER = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf")


def test_open_images_challenge_2019_csv_reads_into_tfrecords(tmp_path: Path) -> None:
    rows = [
        ("0001eeaf4aed83f9", CAMERA, "0.022673", "0.964201", "0.071038", "0.800546", "0"),
        ("0001eeaf4aed83f9", PHONE, "0.25", "0.5", "0.125", "0.75", "1"),
        ("000595fe6fee6369", PHONE, "0.1", "0.2", "0.3", "0.4", "0"),
    ]
    bbox = write(
        tmp_path / "challenge-2019-validation-detection-bbox.csv", csv_text(CHALLENGE_HEADER, rows)
    )
    descriptions = write(tmp_path / "challenge-2019-classes-description-500.csv", DESCRIPTIONS)
    for image_id in ("0001eeaf4aed83f9", "000595fe6fee6369"):
        draw_image(tmp_path / "images" / f"{image_id}.jpg", 200, 100)
    out = tmp_path / "out" / "val.record"
    report = convert(
        str(bbox),
        str(out),
        images=str(tmp_path / "images"),
        read_options={"class_descriptions": str(descriptions)},
    )
    assert (report.images_written, report.boxes_written) == (2, 3)
    examples = tfrecord_examples(out)
    first = examples["0001eeaf4aed83f9"]
    assert first["image/object/bbox/xmin"].tolist() == pytest.approx([0.022673, 0.25])
    assert first["image/object/bbox/xmax"].tolist() == pytest.approx([0.964201, 0.5])
    assert first["image/object/bbox/ymin"].tolist() == pytest.approx([0.071038, 0.125])
    assert first["image/object/bbox/ymax"].tolist() == pytest.approx([0.800546, 0.75])
    assert first["image/object/class/text"].tolist() == [b"Camera", b"Mobile phone"]
    assert first["image/object/group_of"].tolist() == [0, 1]
    assert examples["000595fe6fee6369"]["image/object/group_of"].tolist() == [0]
    # The columnar path (Parquet) reads it too: no source, no confidence.
    table = pq.read_table(convert_to(bbox, tmp_path / "val.parquet", flat=True))
    assert table.column("confidence").to_pylist() == [None] * 3
    assert table.column("box_source").to_pylist() == [None] * 3
    assert table.column("group_of").to_pylist() == [0, 1, 0]


def convert_to(source: Path, output: Path, **write_options: Any) -> str:
    convert(str(source), str(output), write_options=write_options)
    return str(output)


def test_open_images_unknown_group_of_is_written_as_zero_and_counted(tmp_path: Path) -> None:
    """V6 rows flag IsGroupOf -1 where unknown; the OD API decoder casts group_of to bool."""
    header = [
        "ImageID",
        "Source",
        "LabelName",
        "Confidence",
        "XMin",
        "XMax",
        "YMin",
        "YMax",
        "IsOccluded",
        "IsTruncated",
        "IsGroupOf",
        "IsDepiction",
        "IsInside",
    ]
    rows = [
        ("0a1b", "xclick", CAMERA, "1", "0.1", "0.2", "0.1", "0.2", "0", "0", "-1", "0", "0"),
        ("0a1b", "xclick", CAMERA, "1", "0.3", "0.4", "0.3", "0.4", "0", "0", "1", "0", "0"),
        ("0a1b", "xclick", PHONE, "1", "0.5", "0.6", "0.5", "0.6", "0", "0", "-1", "0", "0"),
        ("0c2d", "xclick", PHONE, "1", "0.5", "0.6", "0.5", "0.6", "0", "0", "0", "-1", "0"),
    ]
    bbox = write(tmp_path / "validation-annotations-bbox.csv", csv_text(header, rows))
    draw_image(tmp_path / "images" / "0a1b.jpg", 64, 64)
    draw_image(tmp_path / "images" / "0c2d.jpg", 64, 64)
    out = tmp_path / "val.record"
    report = convert(str(bbox), str(out), images=str(tmp_path / "images"))
    examples = tfrecord_examples(out)
    assert examples["0a1b"]["image/object/group_of"].tolist() == [0, 1, 0]
    assert examples["0c2d"]["image/object/group_of"].tolist() == [0]
    # TensorFlow's own cast, as the decoder does it: only the known group-of box is one.
    as_bool = tf.cast(examples["0a1b"]["image/object/group_of"], tf.bool).numpy().tolist()
    assert as_bool == [False, True, False]
    assert report.adjusted["unknown group_of flags written as 0 (TFRecord)"] == 2
    assert examples["0a1b"]["image/object/difficult"].tolist() == [0, 0, 0]
    assert "adjusted: 2 unknown group_of flags written as 0 (TFRecord)" in report.summary()


def test_a_bbox_csv_missing_columns_names_the_challenge_header_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bbox = write(
        tmp_path / "bad.csv", csv_text(["ImageID", "LabelName", "XMin"], [("a", CAMERA, "0")])
    )
    code = main(["convert", str(bbox), str(tmp_path / "o.csv"), "--from", "openimages", "-q"])
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 1
    assert "missing column(s) XMax, YMin, YMax" in line
    assert "ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf (7)" in line


# --- nothing silently empty --------------------------------------------------------------------


@pytest.fixture
def raccoons(tmp_path: Path) -> Path:
    """The labelImg tutorial dataset's shape (datitran/raccoon_dataset): one class, raccoon,
    and a second class a user added, all in one annotations folder beside the images."""
    ann = tmp_path / "annotations"
    for index, boxes in enumerate(
        [
            [Box("raccoon", 81, 88, 522, 408)],
            [Box("raccoon", 1, 1, 50, 60), Box("dog", 60, 10, 90, 40)],
        ],
        1,
    ):
        name = f"raccoon-{index}.jpg"
        write(ann / f"raccoon-{index}.xml", labelimg_xml(name, 650, 417, boxes))
        draw_image(ann / name, 650, 417)
    return ann


def test_labelimg_tutorial_classes_naming_no_class_of_the_data_fails_listing_them(
    raccoons: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "train.csv"
    code = main(["convert", str(raccoons), str(out), "--classes", "Raccoon", "-q"])
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 2
    assert line == (
        "annoconv: error: --classes: no box of 'Raccoon' (did you mean 'raccoon'?) in the data; "
        "the classes present: raccoon (2), dog (1) (see annoconv convert --help)"
    )
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_labelimg_tutorial_classes_partly_absent_warns_and_converts(
    raccoons: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "train.csv"
    assert main(["convert", str(raccoons), str(out), "--classes", "raccoon", "cat"]) == 0
    warning = "--classes: no box of 'cat' in the data (the classes present: raccoon (2), dog (1))"
    assert f"warning: {warning}" in capsys.readouterr().err.splitlines()
    rows = out.read_text().splitlines()
    assert rows[1:] == [
        "raccoon-1.jpg,650,417,raccoon,81,88,522,408",
        "raccoon-2.jpg,650,417,raccoon,1,1,50,60",
    ]
    report = convert(str(raccoons), str(tmp_path / "again.csv"), classes=["raccoon", "cat"])
    assert report.warnings[0] == warning


def test_a_run_writing_no_example_says_so_even_when_quiet(
    raccoons: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every box smaller than --min-size: the CSV is a header and nothing else."""
    out = tmp_path / "small.csv"
    args = ["convert", str(raccoons), str(out), "--min-size", "1000", "-q"]
    assert main([*args, "--report-json", str(tmp_path / "r.json")]) == 0
    note = "the outputs hold no examples: all 2 images read were left out or skipped (see above)"
    assert capsys.readouterr().err.splitlines() == [f"annoconv: warning: {note}"]
    assert note in json.loads((tmp_path / "r.json").read_text())["warnings"]
    assert out.read_text().splitlines() == ["filename,width,height,class,xmin,ymin,xmax,ymax"]


def test_a_split_list_naming_no_image_leaves_an_empty_split_and_says_so(
    raccoons: Path, tmp_path: Path
) -> None:
    write(tmp_path / "train.txt", "raccoon-1\nraccoon-2\n")
    write(tmp_path / "test.txt", "raccoon-9\n")  # a typo: no such image
    report = convert(
        str(raccoons),
        str(tmp_path / "out.record"),
        split_lists={"train": str(tmp_path / "train.txt"), "test": str(tmp_path / "test.txt")},
    )
    assert "split 'test' has no images: its output holds no examples" in report.warnings
    assert tfrecord_examples(tmp_path / "out-train.record").keys() == {
        "raccoon-1.xml",
        "raccoon-2.xml",
    }


# --- nothing silently overwritten --------------------------------------------------------------


def test_a_second_tfrecord_run_into_the_folder_keeps_the_first_runs_label_map(
    raccoons: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tutorial habit: every run writes into `data/`. A second dataset with other classes
    would rewrite data/label_map.pbtxt under the first run's shards."""
    data = tmp_path / "data"
    assert main(["xml2tfrecord", str(raccoons), str(data / "raccoon.record"), "-q"]) == 0
    label_map = data / "label_map.pbtxt"
    first = label_map.read_bytes()
    assert parse_with_protobuf(first.decode()) == [("dog", 1, None), ("raccoon", 2, None)]
    other = tmp_path / "kangaroos"
    write(other / "k.xml", labelimg_xml("k.jpg", 64, 64, [Box("kangaroo", 1, 1, 9, 9)]))
    draw_image(other / "k.jpg", 64, 64)
    capsys.readouterr()
    code = main(["xml2tfrecord", str(other), str(data / "kangaroo.record"), "-q"])
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 2
    assert line == (
        f"annoconv: error: {label_map} holds another label map (2 classes) than this run's "
        "(1 classes), which outputs written with it use: give --overwrite (overwrite=True) "
        "to replace it, or write into another folder (see annoconv xml2tfrecord --help)"
    )
    assert label_map.read_bytes() == first
    assert not list(data.glob("kangaroo*"))
    # The first run's shards still agree with the map beside them.
    assert main(["inspect", str(data / "raccoon.record"), "--label-map", str(label_map)]) == 0
    # The same classes again are no conflict; --overwrite replaces a different map.
    assert main(["xml2tfrecord", str(raccoons), str(data / "again.record"), "-q"]) == 0
    args = ["xml2tfrecord", str(other), str(data / "kangaroo.record"), "-q", "--overwrite"]
    assert main(args) == 0
    assert parse_with_protobuf(label_map.read_text()) == [("kangaroo", 1, None)]
    examples = tfrecord_examples(data / "kangaroo.record")
    assert examples["k.xml"]["image/object/class/label"].tolist() == [1]


# --- image pairing -----------------------------------------------------------------------------

# The yellow book's layout, and the path labelImg recorded on the annotator's Mac.
YELLOW = "grant_yb2_20190101/2019-01/10/{}/1/280.tif"
RECORDED = "/Volumes/LaCie/grant_yb2_20190101/2019-01/10/{}/1/280.jpg"


def page(blank: bool) -> bytes:
    """A 64x48 bilevel Group 4 page, drawn or blank: two pages the same size, told apart by
    their pixels."""
    image = Image.new("1", (64, 48), 1)
    if not blank:
        ImageDraw.Draw(image).rectangle((8, 8, 40, 30), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, "TIFF", compression="group4")
    return buffer.getvalue()


def uspto_annotations(root: Path, folders: dict[str, str]) -> Path:
    """Flat-ish annotations `<name>/280.xml`, each recording the path of its own patent."""
    ann = root / "ann"
    for name, patent in folders.items():
        text = labelimg_xml("280.jpg", 64, 48, [Box("patent image", 2, 3, 60, 40)], path=patent)
        write(ann / name / "280.xml", text)
    return ann


def embedded_pages(prefix: Path) -> dict[str, bool]:
    """Each example's source id -> whether its embedded page is the blank one."""
    pages = {}
    for key, example in tfrecord_examples(prefix).items():
        decoded = tf.io.decode_image(example["image/encoded"], channels=1).numpy()
        pages[key] = bool(decoded.min() == 255)
    return pages


def yellow_book_tar(path: Path, patents: list[tuple[str, bool]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for patent, blank in patents:
            data = page(blank)
            info = tarfile.TarInfo(YELLOW.format(patent))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_uspto_labelimg_paths_tell_same_named_archive_members_apart(tmp_path: Path) -> None:
    """166's page passes first and is 'a's first match; 165's, passing later, shares more
    folders with a's <path>: the run starts over and each annotation gets its own page."""
    ann = uspto_annotations(tmp_path, {"a": RECORDED.format("165"), "b": RECORDED.format("166")})
    archive = yellow_book_tar(tmp_path / "grant_yb2_20190101.tar", [("166", True), ("165", False)])
    out = tmp_path / "out" / "pages.record"
    report = convert(str(ann), str(out), images=str(archive))
    assert (report.images_written, report.images_skipped) == (2, 0)
    assert embedded_pages(out) == {"a/280.xml": False, "b/280.xml": True}


def test_uspto_a_wrong_first_member_of_another_size_gives_way_under_skip(tmp_path: Path) -> None:
    """166's page is smaller: written first for 'a', it is a size mismatch (skipped); 165's
    page then passes, matches 'a' better, and the run starts over with it."""
    ann = uspto_annotations(tmp_path, {"a": RECORDED.format("165")})
    small = io.BytesIO()
    Image.new("1", (32, 24), 1).save(small, "TIFF", compression="group4")
    archive = tmp_path / "grant.tar"
    with tarfile.open(archive, "w") as tar:
        for patent, data in (("166", small.getvalue()), ("165", page(False))):
            info = tarfile.TarInfo(YELLOW.format(patent))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "pages.record"
    report = convert(str(ann), str(out), images=str(archive), on_error="skip")
    assert (report.images_written, report.skipped) == (1, [])
    assert tfrecord_examples(out)["a/280.xml"]["decoded_shape"] == (48, 64, 3)


def test_uspto_same_named_members_no_path_tells_apart_fail_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A third annotation recorded on Windows shares no folder with either page."""
    ann = uspto_annotations(
        tmp_path,
        {
            "a": RECORDED.format("165"),
            "b": RECORDED.format("166"),
            "c": "C:\\Users\\scan\\Desktop\\280.jpg",
        },
    )
    archive = yellow_book_tar(tmp_path / "grant.tar", [("166", True), ("165", False)])
    out = tmp_path / "out" / "pages.record"
    code = main(["xml2tfrecord", str(ann), str(out), "--images", str(archive), "-q"])
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 1
    assert line == (
        f"annoconv: error: {ann / 'c' / '280.xml'}: image 'c/280.jpg' is ambiguous in the "
        "archive: 2 members match it equally well (grant_yb2_20190101/2019-01/10/166/1/280.tif, "
        "grant_yb2_20190101/2019-01/10/165/1/280.tif; matched by stem); to tell them apart, "
        "mirror the archive's folders under the annotations folder, or record the image's "
        "folders in <path> (e.g. .../grant_yb2_20190101/2019-01/10/166/1/280.tif)"
    )
    assert not out.parent.exists() or not list(out.parent.iterdir())
    # Skipping it, the other two get their own pages.
    report = convert(str(ann), str(out), images=str(archive), on_error="skip")
    assert [item.source for item in report.skipped] == [str(ann / "c" / "280.xml")]
    assert embedded_pages(out) == {"a/280.xml": False, "b/280.xml": True}


def test_uspto_labelimg_paths_tell_same_named_files_under_images_apart(tmp_path: Path) -> None:
    ann = uspto_annotations(tmp_path, {"a": RECORDED.format("165"), "b": RECORDED.format("166")})
    images = tmp_path / "images"
    for patent, blank in (("165", False), ("166", True)):
        write(images / YELLOW.format(patent), page(blank))
    out = tmp_path / "pages.record"
    convert(str(ann), str(out), images=str(images))
    assert embedded_pages(out) == {"a/280.xml": False, "b/280.xml": True}
    # Without <path> folders to go by, the error lists both and what would decide.
    write(ann / "c" / "280.xml", labelimg_xml("280.jpg", 64, 48, [], path="280.jpg"))
    with pytest.raises(AnnotationError) as caught:
        convert(str(ann), str(tmp_path / "again.record"), images=str(images))
    assert str(caught.value) == (
        f"{ann / 'c' / '280.xml'}: image '280.jpg' is ambiguous: 2 files under {images} match "
        "it (grant_yb2_20190101/2019-01/10/165/1/280.tif, "
        "grant_yb2_20190101/2019-01/10/166/1/280.tif); its recorded <path>'s folders do not "
        "tell them apart; keep the image beside its annotation, mirror the annotation folders "
        "under the images folder, or record the image's folders in <path>"
    )


def labelimg_test_file(folder: Path) -> Path:
    """labelImg's own tests/test_io.py: PascalVocWriter('tests', 'test', (512, 512, 1),
    localImgPath='tests/test.512.512.bmp') saved as tests/test.xml: `<filename>` without
    extension, `<path>` relative to the repository, not to the XML."""
    boxes = [Box("person", 60, 40, 430, 504, difficult=1), Box("face", 113, 40, 450, 403, 1)]
    text = labelimg_xml(
        "test", 512, 512, boxes, depth=1, folder="tests", path="tests/test.512.512.bmp"
    )
    return write(folder / "test.xml", text)


def test_labelimg_own_test_file_finds_its_bmp_by_the_path_name(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    labelimg_test_file(tests)
    Image.new("L", (512, 512), 200).save(tests / "test.512.512.bmp")
    out = tmp_path / "out.record"
    convert(str(tests), str(out))
    example = tfrecord_examples(out)["test.xml"]
    assert example["decoded_shape"] == (512, 512, 3)
    assert example["image/format"] == b"png"  # TensorFlow decodes BMP, but the OD API wants these
    assert example["image/object/bbox/xmin"].tolist() == pytest.approx([60 / 512, 113 / 512])
    assert example["image/object/class/text"].tolist() == [b"person", b"face"]


def test_labelimg_own_test_file_without_its_image_says_where_it_looked_in_order(
    tmp_path: Path,
) -> None:
    tests = tmp_path / "tests"
    xml = labelimg_test_file(tests)
    images = tmp_path / "images"
    images.mkdir()
    with pytest.raises(AnnotationError) as caught:
        convert(str(tests), str(tmp_path / "out.record"), images=str(images))
    assert str(caught.value) == (
        f"{xml}: image 'test' not found; looked at, in order: {tests / 'test'}; "
        f"{tests / 'test.512.512.bmp'}; {images / 'test'}; {images / 'test.512.512.bmp'}; "
        f"{tests} for test.* (any image extension); {images} for test.* (any image extension); "
        f"anywhere under {images} for test; anywhere under {images} for test.512.512.bmp; "
        f"{tests / 'tests/test.512.512.bmp'} (the recorded <path>); "
        f"anywhere under {images} for test.*; {tests / 'tests'} for test.512.512.*"
    )


def test_mmdetection_voc_devkit_xml_naming_another_image_pairs_by_stem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mmdetection's tests/data/VOCdevkit/VOC2007/Annotations/000001.xml names 000002.jpg;
    mmdetection (and Datumaro) take JPEGImages/000001.jpg, the devkit's convention."""
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    boxes = [Box("dog", 48, 240, 195, 371), Box("person", 8, 12, 352, 498)]
    write(
        voc / "Annotations" / "000001.xml",
        labelimg_xml("000002.jpg", 353, 500, boxes, folder="VOC2007", path=""),
    )
    draw_image(voc / "JPEGImages" / "000001.jpg", 353, 500)
    draw_image(voc / "JPEGImages" / "000002.jpg", 335, 500)
    out = tmp_path / "out" / "voc.record"
    args = ["xml2tfrecord", str(voc / "Annotations"), str(out), "--images", str(voc / "JPEGImages")]
    # By <filename>, the other image's size disagrees with the annotation.
    assert main([*args, "-q"]) == 1
    assert "000002.jpg is 335x500 but the annotation says 353x500" in capsys.readouterr().err
    assert main([*args, "-q", "--image-name", "stem"]) == 0
    example = tfrecord_examples(out)["000001.xml"]
    assert example["image/filename"] == b"000001.jpg"
    assert example["decoded_shape"] == (500, 353, 3)
    assert example["image/object/bbox/xmax"].tolist() == pytest.approx([195 / 353, 352 / 353])
    # The API takes the same option.
    report = convert(
        str(voc / "Annotations"),
        str(tmp_path / "boxes.csv"),
        images=str(voc / "JPEGImages"),
        read_options={"image_name": "stem"},
    )
    assert report.images_written == 1
    assert (tmp_path / "boxes.csv").read_text().splitlines()[
        1
    ] == "000001.jpg,353,500,dog,48,240,195,371"


@pytest.fixture
def datumaro_voc(tmp_path: Path) -> Path:
    """Datumaro's tests/assets/voc_dataset/voc_dataset1 shape: ImageSets/Main/test.txt lists
    2007_000002, which has an image and no XML (Datumaro reads it as an unannotated image),
    and here also 2007_000003, which has neither."""
    voc = tmp_path / "voc_dataset1"
    boxes = [Box("cat", 1, 2, 3, 4), Box("person", 4, 5, 8, 9)]
    write(voc / "Annotations" / "2007_000001.xml", labelimg_xml("2007_000001.jpg", 20, 10, boxes))
    draw_image(voc / "JPEGImages" / "2007_000001.jpg", 20, 10)
    draw_image(voc / "JPEGImages" / "2007_000002.jpg", 20, 10)
    write(voc / "ImageSets" / "Main" / "train.txt", "2007_000001\n")
    write(voc / "ImageSets" / "Main" / "test.txt", "2007_000002\n2007_000003\n")
    return voc


@pytest.mark.parametrize("engine", ["local", "processes"])
def test_datumaro_imagesets_image_without_xml_is_a_negative_example(
    datumaro_voc: Path, tmp_path: Path, engine: str
) -> None:
    voc = datumaro_voc
    out = tmp_path / "out" / "voc.record"
    workers = {"workers": 2} if engine == "processes" else {}
    report = convert(
        str(voc / "Annotations"),
        str(out),
        images=str(voc / "JPEGImages"),
        split_lists={
            "train": str(voc / "ImageSets/Main/train.txt"),
            "test": str(voc / "ImageSets/Main/test.txt"),
        },
        engine=engine,
        write_options={"shards": 2},
        **workers,
    )
    test_list = str(voc / "ImageSets/Main/test.txt")
    assert (report.images_read, report.images_written, report.images_skipped) == (3, 2, 1)
    assert [(s.reason, s.images) for s in report.skipped] == [
        (f"listed in {test_list} without an annotation or an image", 1)
    ]
    assert (
        f"1 image(s) listed in {test_list} have no annotation and no image file beside the "
        f"annotations or under {voc / 'JPEGImages'}: 2007_000003"
    ) in report.warnings
    train = tfrecord_examples(tmp_path / "out" / "voc-train.record")
    assert train["2007_000001.xml"]["image/object/class/text"].tolist() == [b"cat", b"person"]
    test = tfrecord_examples(tmp_path / "out" / "voc-test.record")
    assert list(test) == ["2007_000002.jpg"]
    negative = test["2007_000002.jpg"]
    assert negative["decoded_shape"] == (10, 20, 3)
    assert negative["image/object/bbox/xmin"].tolist() == []


def test_datumaro_imagesets_through_the_command_line(
    datumaro_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    voc = datumaro_voc
    out = tmp_path / "boxes.csv"
    args = ["convert", str(voc / "Annotations"), str(out), "--images", str(voc / "JPEGImages")]
    assert main([*args, "--voc-imagesets", str(voc)]) == 0
    err = capsys.readouterr().err
    assert "left out: listed in" in err and "2007_000003" in err
    # The negative image is a row without a box, its size read from the image.
    assert (tmp_path / "boxes-test.csv").read_text().splitlines() == [
        "filename,width,height,class,xmin,ymin,xmax,ymax",
        "2007_000002.jpg,20,10,,,,,",
    ]


# --- an honest command line --------------------------------------------------------------------


def test_formats_lists_plugins_with_extensions_and_descriptions_in_100_columns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from annoconv.formats import FormatEntry, register, unregister
    from annoconv.formats.base import Format, SingleFileWriter

    description = (
        "Label Studio JSON export with rectangle labels, keypoints and polygons "
        "(a plugin with a long description that has to wrap)"
    )
    wide = Format(
        "labelstudio",
        description,
        (".json", ".labelstudio.json", ".ls.json"),
        writer=SingleFileWriter,
    )
    register(wide)
    register(FormatEntry("broken", "annoconv_no_such_plugin:FORMAT"))
    try:
        assert main(["formats"]) == 0
    finally:
        unregister("labelstudio")
        unregister("broken")
    table = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in table) <= 100
    assert table[0].split() == ["FORMAT", "EXTENSIONS", "READ/WRITE", "DESCRIPTION"]
    # Columns start where the header's words do (a longer format name widens the first).
    extensions, sides, text_at = (table[0].index(word) for word in table[0].split()[1:])
    start = next(i for i, line in enumerate(table) if line.startswith("labelstudio "))
    rows = table[start : start + 4]
    assert " ".join(row[extensions:sides].strip() for row in rows).split() == [
        ".json",
        ".labelstudio.json",
        ".ls.json",
    ]
    assert rows[0][sides:text_at].strip() == "write"
    text = " ".join(row[text_at:].strip() for row in rows if row[text_at:].strip())
    assert text == f"{description} (plugin)"
    broken = next(line for line in table if line.startswith("broken "))
    assert "cannot be loaded" in broken


def test_merge_and_labelmap_usage_lines_say_what_they_take(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("merge", "labelmap"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
    out = capsys.readouterr().out
    assert "usage: annoconv merge SRC SRC [SRC ...] DST [options]" in out
    assert "usage: annoconv labelmap [SRC ...] OUT.pbtxt [--classes NAME ...] [options]" in out
