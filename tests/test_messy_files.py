"""Real, messy files of the older formats, converted as a new user does from the README.

Each fixture has the shape a real producer or a real user writes (named in the test), written
here by code; outputs are read back by their real consumers (pycocotools for COCO, TensorFlow
for TFRecords, pyarrow for Parquet, protobuf's text_format for label maps).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import draw_image, write
from oi_factory import CAMERA, PHONE, Row, bbox_csv, class_descriptions
from pycocotools.coco import COCO
from test_real_files import tfrecord_examples

from annoconv import convert
from annoconv.cli import main
from annoconv.errors import AnnotationError


def coco_boxes(path: Path) -> list[tuple[str, str, list[float]]]:
    """(file_name, category name, bbox) of every annotation, as pycocotools reads them."""
    coco = COCO(str(path))
    return [
        (
            coco.imgs[ann["image_id"]]["file_name"],
            coco.cats[ann["category_id"]]["name"],
            ann["bbox"],
        )
        for ann in coco.loadAnns(coco.getAnnIds())
    ]


# --- absolute image paths ------------------------------------------------------------------------


def test_frcnn_txt_naming_images_by_absolute_path_finds_them_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keras-frcnn txt files are often written with absolute paths (`/home/me/data/x.jpg`);
    the image is at that path, not under the txt's folder."""
    images = tmp_path / "dataset" / "train"
    draw_image(images / "a.jpg", 200, 100)
    draw_image(images / "b b.jpg", 300, 150)
    txt = write(
        tmp_path / "annotations" / "train.txt",
        f"{images / 'a.jpg'},10,20,30,40,Mobile phone\n{images / 'b b.jpg'},0,0,300,150,Camera\n",
    )
    out = tmp_path / "out" / "instances.json"
    assert main(["convert", str(txt), str(out), "-q"]) == 0
    assert coco_boxes(out) == [
        (str(images / "a.jpg"), "Mobile phone", [10, 20, 20, 20]),
        (str(images / "b b.jpg"), "Camera", [0, 0, 300, 150]),
    ]
    sizes = {
        image["file_name"]: (image["width"], image["height"])
        for image in json.loads(out.read_text())["images"]
    }
    assert sizes == {str(images / "a.jpg"): (200, 100), str(images / "b b.jpg"): (300, 150)}
    capsys.readouterr()


def test_csv_naming_images_by_absolute_path_embeds_them(tmp_path: Path) -> None:
    image = draw_image(tmp_path / "photos" / "a.png", 40, 20)
    csv = write(
        tmp_path / "labels" / "train.csv",
        f"filename,width,height,class,xmin,ymin,xmax,ymax\n{image},40,20,cat,4,2,20,10\n",
    )
    out = tmp_path / "out" / "x.record"
    report = convert(str(csv), str(out))
    assert report.images_written == 1
    example = tfrecord_examples(out)[str(image)]
    assert example["decoded_shape"] == (20, 40, 3)
    assert example["image/encoded"] == image.read_bytes()
    assert example["image/object/bbox/xmax"].tolist() == pytest.approx([0.5])


def test_absolute_paths_from_another_machine_are_found_by_name_under_images(
    tmp_path: Path,
) -> None:
    draw_image(tmp_path / "train" / "a.jpg", 200, 100)
    txt = write(tmp_path / "train.txt", "/home/someone/data/train/a.jpg,10,20,30,40,cat\n")
    out = tmp_path / "boxes.csv"
    convert(str(txt), str(out), images=str(tmp_path / "train"))
    assert (
        out.read_text().splitlines()[1] == "/home/someone/data/train/a.jpg,200,100,cat,10,20,30,40"
    )


# --- Open Images images as OIDv4_ToolKit downloads them -------------------------------------------


def test_oidv4_toolkit_copies_of_one_image_in_each_class_folder_are_one_image(
    tmp_path: Path,
) -> None:
    """OIDv4_ToolKit (`main.py downloader --classes Camera Mobile_phone`) saves each class's
    images in OID/Dataset/train/<class>/<ImageID>.jpg: an image holding both classes is in
    both folders, byte for byte the same. That is one image, not an ambiguity."""
    both, phone_only = "000002b66c9c498e", "000002b97e5471a0"
    train = tmp_path / "OID" / "Dataset" / "train"
    draw_image(train / "Camera" / f"{both}.jpg", 1024, 768)
    write(train / "Mobile phone" / f"{both}.jpg", (train / "Camera" / f"{both}.jpg").read_bytes())
    draw_image(train / "Mobile phone" / f"{phone_only}.jpg", 640, 480)
    rows = [
        Row(both, CAMERA, "0.5", "0.75", "0.25", "0.5"),
        Row(both, PHONE, "0.0125", "0.195312", "0.148438", "0.5875"),
        Row(phone_only, PHONE, "0.1", "0.2", "0.3", "0.4"),
    ]
    csv = write(tmp_path / "oidv6-train-annotations-bbox.csv", bbox_csv(rows, columns=21))
    classes = write(
        tmp_path / "class-descriptions-boxable.csv",
        class_descriptions({CAMERA: "Camera", PHONE: "Mobile phone"}),
    )
    out = tmp_path / "out" / "frcnn.txt"
    report = convert(
        str(csv), str(out), images=str(train), read_options={"class_descriptions": str(classes)}
    )
    assert (report.images_written, report.boxes_written) == (2, 3)
    assert out.read_text().splitlines() == [
        f"{both}.jpg,512,192,768,384,Camera",
        f"{both}.jpg,13,114,200,451,Mobile phone",
        f"{phone_only}.jpg,64,144,128,192,Mobile phone",
    ]


def test_same_named_images_that_differ_stay_ambiguous(tmp_path: Path) -> None:
    image_id = "000002b66c9c498e"
    train = tmp_path / "train"
    draw_image(train / "Camera" / f"{image_id}.jpg", 1024, 768)
    draw_image(train / "Mobile phone" / f"{image_id}.jpg", 1024, 768, mode="L")
    csv = write(tmp_path / "boxes.csv", bbox_csv([Row(image_id, CAMERA)]))
    with pytest.raises(AnnotationError, match="is ambiguous: 2 files under"):
        convert(str(csv), str(tmp_path / "frcnn.txt"), images=str(train))
