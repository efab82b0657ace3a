"""Real, messy files of the older formats, converted as a new user does from the README.

Each fixture has the shape a real producer or a real user writes (named in the test), written
here by code; outputs are read back by their real consumers (pycocotools for COCO, TensorFlow
for TFRecords, pyarrow for Parquet, protobuf's text_format for label maps).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from factories import Box, cvat_xml, draw_image, labelimg_xml, roboflow_xml, write
from od_protos import parse_with_protobuf
from oi_factory import CAMERA, PHONE, Row, bbox_csv, class_descriptions
from pycocotools.coco import COCO
from test_real_files import tfrecord_examples

from annoconv import convert
from annoconv.cli import main
from annoconv.errors import AnnotationError, FormatError


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


# --- Roboflow "Tensorflow Object Detection CSV" exports -----------------------------------------

ROBOFLOW_CSV_HEADER = "filename,width,height,class,xmin,ymin,xmax,ymax\n"


@pytest.fixture
def roboflow_csv_export(tmp_path: Path) -> Path:
    """Roboflow's "Tensorflow Object Detection CSV" export: train/, valid/ and test/, each
    with its images and an `_annotations.csv`, and the README files Roboflow adds."""
    export = tmp_path / "helmets.v1i.tensorflow"
    rows = {
        "train": [
            "a_jpg.rf.0c1d.jpg,416,416,helmet,10,20,100,200",
            "a_jpg.rf.0c1d.jpg,416,416,head,1,2,3,4",
        ],
        "valid": ["b_jpg.rf.9e8f.jpg,416,416,helmet,50,60,70,80"],
        "test": ["c_jpg.rf.7a6b.jpg,416,416,head,5,6,7,8"],
    }
    for split, lines in rows.items():
        draw_image(export / split / lines[0].split(",")[0], 416, 416)
        write(export / split / "_annotations.csv", ROBOFLOW_CSV_HEADER + "\n".join(lines) + "\n")
    write(export / "README.roboflow.txt", "Helmets - v1\n")
    write(export / "README.dataset.txt", "# Helmets\n")
    return export


def test_roboflow_csv_export_folder_converts_as_given(
    roboflow_csv_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "instances.json"
    assert main(["convert", str(roboflow_csv_export), str(out), "-q"]) == 0
    assert sorted(coco_boxes(out)) == [
        ("a_jpg.rf.0c1d.jpg", "head", [1, 2, 2, 2]),
        ("a_jpg.rf.0c1d.jpg", "helmet", [10, 20, 90, 180]),
        ("b_jpg.rf.9e8f.jpg", "helmet", [50, 60, 20, 20]),
        ("c_jpg.rf.7a6b.jpg", "head", [5, 6, 2, 2]),
    ]
    capsys.readouterr()


def test_roboflow_csv_export_keeps_its_splits(roboflow_csv_export: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "helmets.record"
    report = convert(str(roboflow_csv_export), str(out), keep_splits=True)
    assert report.images_written == 3
    train = tfrecord_examples(tmp_path / "out" / "helmets-train.record")
    valid = tfrecord_examples(tmp_path / "out" / "helmets-valid.record")
    test = tfrecord_examples(tmp_path / "out" / "helmets-test.record")
    assert [example["image/filename"] for example in train.values()] == [b"a_jpg.rf.0c1d.jpg"]
    assert train["a_jpg.rf.0c1d.jpg"]["image/object/class/text"].tolist() == [b"helmet", b"head"]
    assert valid["b_jpg.rf.9e8f.jpg"]["image/object/bbox/xmin"].tolist() == pytest.approx(
        [50 / 416]
    )
    assert test["c_jpg.rf.7a6b.jpg"]["decoded_shape"] == (416, 416, 3)


def test_a_split_column_beats_the_folder_name(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "train" / "_annotations.csv",
        "filename,width,height,class,xmin,ymin,xmax,ymax,split\na.jpg,10,10,cat,1,2,3,4,test\n",
    )
    out = tmp_path / "boxes.parquet"
    convert(str(csv), str(out))
    assert pq.read_table(out).column("split").to_pylist() == ["test"]


def test_roboflow_csv_export_to_parquet_keeps_each_image_split(
    roboflow_csv_export: Path, tmp_path: Path
) -> None:
    out = tmp_path / "boxes.parquet"
    report = convert(str(roboflow_csv_export), str(out))
    assert report.boxes_written == 4
    rows = pq.read_table(out).select(["filename", "split"]).to_pylist()
    assert sorted((row["filename"], row["split"]) for row in rows) == [
        ("a_jpg.rf.0c1d.jpg", "train"),
        ("b_jpg.rf.9e8f.jpg", "valid"),
        ("c_jpg.rf.7a6b.jpg", "test"),
    ]


def test_other_folders_holding_a_csv_are_not_taken_for_csv_sources(tmp_path: Path) -> None:
    """A run's TFRecord shards with its CSV summary beside them: not a CSV dataset."""
    folder = tmp_path / "build"
    write(folder / "uspto-train.record-00000-of-00001", b"")
    write(folder / "label_map.pbtxt", 'item { name: "a" id: 1 }\n')
    write(folder / "uspto.csv", ROBOFLOW_CSV_HEADER + "a.jpg,10,10,a,1,2,3,4\n")
    with pytest.raises(FormatError, match="cannot tell the format of folder"):
        convert(str(folder), str(tmp_path / "boxes.parquet"))


# --- Roboflow "Pascal VOC" exports ----------------------------------------------------------------


@pytest.fixture
def roboflow_voc_export(tmp_path: Path) -> Path:
    """Roboflow's "Pascal VOC" export: train/, valid/ and test/, each with its images and
    one XML per image beside it (bndbox children xmin, xmax, ymin, ymax)."""
    export = tmp_path / "helmets.v1i.voc"
    boxes = {
        "train": [Box("helmet", 10, 20, 100, 200), Box("head", 1, 2, 3, 4)],
        "valid": [Box("helmet", 50, 60, 70, 80)],
        "test": [Box("head", 5, 6, 7, 8)],
    }
    for split, objects in boxes.items():
        name = f"{split}_0001_jpg.rf.5f2e.jpg"
        draw_image(export / split / name, 416, 416)
        write(export / split / name.replace(".jpg", ".xml"), roboflow_xml(name, 416, 416, objects))
    write(export / "README.roboflow.txt", "Helmets - v1\n")
    return export


def test_roboflow_voc_export_keeps_its_splits(roboflow_voc_export: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "instances.json"
    report = convert(str(roboflow_voc_export), str(out), keep_splits=True)
    assert report.images_written == 3
    assert coco_boxes(tmp_path / "out" / "instances-train.json") == [
        ("train/train_0001_jpg.rf.5f2e.jpg", "helmet", [10, 20, 90, 180]),
        ("train/train_0001_jpg.rf.5f2e.jpg", "head", [1, 2, 2, 2]),
    ]
    assert coco_boxes(tmp_path / "out" / "instances-valid.json") == [
        ("valid/valid_0001_jpg.rf.5f2e.jpg", "helmet", [50, 60, 20, 20]),
    ]
    assert coco_boxes(tmp_path / "out" / "instances-test.json") == [
        ("test/test_0001_jpg.rf.5f2e.jpg", "head", [5, 6, 2, 2]),
    ]


def test_roboflow_voc_export_to_parquet_keeps_each_image_split(
    roboflow_voc_export: Path, tmp_path: Path
) -> None:
    out = tmp_path / "boxes.parquet"
    convert(str(roboflow_voc_export), str(out))
    rows = pq.read_table(out).select(["key", "split"]).to_pylist()
    assert sorted((row["key"], row["split"]) for row in rows) == [
        ("test/test_0001_jpg.rf.5f2e.xml", "test"),
        ("train/train_0001_jpg.rf.5f2e.xml", "train"),
        ("valid/valid_0001_jpg.rf.5f2e.xml", "valid"),
    ]


def test_voc_folders_not_named_as_splits_give_no_split(tmp_path: Path) -> None:
    """USPTO pages are in one folder per patent; the VOC devkit's in VOC2007/Annotations."""
    for folder in ("10165001", "VOC2007/Annotations", "training"):
        write(
            tmp_path / "ann" / folder / "1.xml",
            roboflow_xml("1.jpg", 10, 10, [Box("a", 1, 1, 2, 2)]),
        )
    out = tmp_path / "boxes.parquet"
    convert(str(tmp_path / "ann"), str(out))
    assert pq.read_table(out).column("split").to_pylist() == [None, None, None]


# --- labelImg files from before 2017 (`<filename>` without its extension) -----------------------


@pytest.mark.filterwarnings("ignore:OpenCV:UserWarning")  # supervision without opencv, as meant
@pytest.mark.parametrize("images_mode", ["copy", "link"])
def test_extension_less_filenames_give_yolo_images_their_extension(
    tmp_path: Path, images_mode: str
) -> None:
    """labelImg before 2017 wrote `<filename>photo2</filename>` for photo2.jpg. The image
    copied into a YOLO dataset needs its extension: Ultralytics and supervision take only
    files with an image extension from images/, so `images/photo2` was a label without
    its image."""
    import supervision as sv

    ann = tmp_path / "photos"
    boxes = {"photo1": [Box("link", 10, 20, 50, 60)], "photo2": [Box("qr", 5, 5, 40, 30)]}
    for stem, objects in boxes.items():
        draw_image(ann / f"{stem}.jpg", 100, 80)
        write(
            ann / f"{stem}.xml", labelimg_xml(f"{stem}.jpg", 100, 80, objects, extension_less=True)
        )
    out = tmp_path / "yolo"
    convert(str(ann), str(out), to_format="yolo", write_options={"images_mode": images_mode})
    assert sorted(path.name for path in (out / "images").iterdir()) == ["photo1.jpg", "photo2.jpg"]
    assert (out / "images" / "photo2.jpg").read_bytes() == (ann / "photo2.jpg").read_bytes()
    dataset = sv.DetectionDataset.from_yolo(
        images_directory_path=str(out / "images"),
        annotations_directory_path=str(out / "labels"),
        data_yaml_path=str(out / "data.yaml"),
    )
    found = {
        Path(path).name: ([dataset.classes[c] for c in det.class_id], det.xyxy.tolist())
        for path, _image, det in dataset
    }
    assert found.keys() == {"photo1.jpg", "photo2.jpg"}
    assert found["photo2.jpg"][0] == ["qr"]
    assert found["photo2.jpg"][1][0] == pytest.approx([5, 5, 40, 30], abs=1e-3)


def test_extension_less_filenames_give_copied_coco_images_their_extension(tmp_path: Path) -> None:
    ann = tmp_path / "photos"
    draw_image(ann / "photo2.png", 100, 80)
    write(
        ann / "photo2.xml",
        labelimg_xml("photo2.png", 100, 80, [Box("qr", 5, 5, 40, 30)], extension_less=True),
    )
    out = tmp_path / "coco" / "instances.json"
    convert(str(ann), str(out), write_options={"copy_images": str(tmp_path / "coco" / "images")})
    assert coco_boxes(out) == [("photo2.png", "qr", [5, 5, 35, 25])]
    assert (tmp_path / "coco" / "images" / "photo2.png").read_bytes() == (
        ann / "photo2.png"
    ).read_bytes()


# --- keras-retinanet's CSV: the Faster R-CNN txt in a .csv, with negative lines -----------------


@pytest.fixture
def retinanet_csv(tmp_path: Path) -> Path:
    """keras-retinanet's annotations.csv: `path,x1,y1,x2,y2,class_name`, no header, paths
    relative to the file's folder, and `path,,,,,` for an image without objects."""
    draw_image(tmp_path / "images" / "img_001.jpg", 200, 100)
    draw_image(tmp_path / "images" / "img_002.jpg", 120, 90)
    return write(
        tmp_path / "annotations.csv",
        "images/img_001.jpg,10,20,30,40,cow\n"
        "images/img_001.jpg,50,20,60,40,cat\n"
        "images/img_002.jpg,,,,,\n",
    )


def test_retinanet_csv_reads_with_from_frcnn_negatives_included(
    retinanet_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "instances.json"
    report = convert(str(retinanet_csv), str(out), from_format="frcnn")
    assert (report.images_read, report.boxes_read, report.images_written) == (2, 2, 2)
    assert coco_boxes(out) == [
        ("images/img_001.jpg", "cow", [10, 20, 20, 20]),
        ("images/img_001.jpg", "cat", [50, 20, 10, 20]),
    ]
    images = json.loads(out.read_text())["images"]
    assert [(i["file_name"], i["width"], i["height"]) for i in images] == [
        ("images/img_001.jpg", 200, 100),
        ("images/img_002.jpg", 120, 90),
    ]


def test_retinanet_csv_taken_for_the_tutorial_csv_says_to_use_from_frcnn(
    retinanet_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", str(retinanet_csv), str(tmp_path / "out.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"annoconv: error: {retinanet_csv}: line 1: missing column(s) filename, width, height, "
        "class, xmin, ymin, xmax, ymax; the header has: images/img_001.jpg, 10, 20, 30, 40, cow "
        "(a box, no header: keras-frcnn's and keras-retinanet's path,x1,y1,x2,y2,class files "
        "read with --from frcnn)"
    )


def test_a_bad_line_of_an_image_with_a_negative_line_counts_its_boxes_only(tmp_path: Path) -> None:
    draw_image(tmp_path / "b.jpg", 8, 8)
    txt = write(tmp_path / "a.txt", "a.jpg,,,,,\na.jpg,1,2,3,x,cat\nb.jpg,1,2,3,4,cat\n")
    report = convert(str(txt), str(tmp_path / "o.csv"), on_error="skip")
    assert (report.images_read, report.boxes_read) == (2, 2)
    assert (report.images_skipped, report.boxes_skipped) == (1, 1)
    assert (tmp_path / "o.csv").read_text().splitlines()[1:] == ["b.jpg,8,8,cat,1,2,3,4"]


# --- CVAT "PASCAL VOC 1.1" exports and the VOC devkit layout --------------------------------------


@pytest.fixture
def cvat_voc_export(tmp_path: Path) -> Path:
    """CVAT's "PASCAL VOC 1.1" export, unpacked: Annotations/, ImageSets/Main/default.txt
    (and a per-class list), JPEGImages/ and labelmap.txt; XMLs as Datumaro writes them."""
    export = tmp_path / "task_1-2026_12_02-voc"
    boxes = {
        "frame_000000": [Box("car", 257, 12.34, 300.5, 100, occluded=1)],
        "frame_000001": [],
    }
    for stem, objects in boxes.items():
        write(export / "Annotations" / f"{stem}.xml", cvat_xml(f"{stem}.png", 640, 480, objects))
        draw_image(export / "JPEGImages" / f"{stem}.png", 640, 480)
    write(export / "ImageSets" / "Main" / "default.txt", "frame_000000\nframe_000001\n")
    write(export / "ImageSets" / "Main" / "car_default.txt", "frame_000000  1\nframe_000001 -1\n")
    write(export / "labelmap.txt", "# label:color_rgb:parts:actions\ncar:250,50,83::\n")
    return export


def test_cvat_voc_export_folder_converts_with_its_images_found(
    cvat_voc_export: Path, tmp_path: Path
) -> None:
    out = tmp_path / "coco" / "instances.json"
    report = convert(str(cvat_voc_export), str(out))
    assert report.images_written == 2
    assert coco_boxes(out) == [("JPEGImages/frame_000000.png", "car", [257, 12.34, 43.5, 87.66])]
    record = tmp_path / "tf" / "cvat.record"
    convert(str(cvat_voc_export), str(record))
    examples = tfrecord_examples(record)
    assert examples["Annotations/frame_000001.xml"]["decoded_shape"] == (480, 640, 3)
    assert (
        examples["Annotations/frame_000000.xml"]["image/encoded"]
        == (cvat_voc_export / "JPEGImages" / "frame_000000.png").read_bytes()
    )


def test_voc_annotations_folder_finds_the_images_in_jpegimages_beside_it(
    cvat_voc_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "voc.record"
    assert main(["xml2tfrecord", str(cvat_voc_export / "Annotations"), str(out), "-q"]) == 0
    examples = tfrecord_examples(out)
    assert examples["frame_000000.xml"]["image/filename"] == b"frame_000000.png"
    assert examples["frame_000000.xml"]["image/object/bbox/xmin"].tolist() == pytest.approx(
        [257 / 640]
    )
    capsys.readouterr()


# --- one <object> holding several <bndbox> -------------------------------------------------------

SEVERAL_BOXES = """<annotation>
   <folder>images</folder>
   <filename>cars.jpg</filename>
   <size><width>4000</width><height>3000</height><depth>3</depth></size>
   <object>
   <name>car</name>
   <pose>Unspecified</pose>
   <truncated>0</truncated>
   <occluded>0</occluded>
   <difficult>0</difficult>
   <bndbox>
   <xmin>2656</xmin>
   <ymin>607</ymin>
   <xmax>3530</xmax>
   <ymax>1879</ymax>
   </bndbox>
   <bndbox>
   <xmin>1655</xmin>
   <ymin>939</ymin>
   <xmax>2451</xmax>
   <ymax>2106</ymax>
   </bndbox>
   <bndbox>
   <xmin>665</xmin>
   <ymin>1188</ymin>
   <xmax>{xmax}</xmax>
   <ymax>2422</ymax>
   </bndbox>
   </object>
   <object>
   <name>person</name>
   <difficult>1</difficult>
   <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox>
   </object>
</annotation>
"""


def test_an_object_with_several_bndbox_gives_a_box_for_each(tmp_path: Path) -> None:
    """A VOC file as drainingsun/ybat issue 6 shows a tool writing it: the cars of an image
    as one <object> holding a <bndbox> per car. Each box is read (only the first was)."""
    xml = write(tmp_path / "ann" / "cars.xml", SEVERAL_BOXES.format(xmax=1506))
    out = tmp_path / "coco" / "instances.json"
    report = convert(str(xml.parent), str(out))
    assert (report.boxes_read, report.boxes_written) == (4, 4)
    assert coco_boxes(out) == [
        ("cars.jpg", "car", [2656, 607, 874, 1272]),
        ("cars.jpg", "car", [1655, 939, 796, 1167]),
        ("cars.jpg", "car", [665, 1188, 841, 1234]),
        ("cars.jpg", "person", [1, 2, 29, 38]),
    ]
    flags = [(a["iscrowd"]) for a in json.loads(out.read_text())["annotations"]]
    assert flags == [0, 0, 0, 0]
    labels = tmp_path / "label_map.pbtxt"
    assert main(["labelmap", str(xml.parent), str(labels), "-q"]) == 0
    assert parse_with_protobuf(labels.read_text()) == [("car", 1, None), ("person", 2, None)]


def test_a_bad_box_among_several_is_named_at_its_own_line(tmp_path: Path) -> None:
    xml = write(tmp_path / "cars.xml", SEVERAL_BOXES.format(xmax=4001))
    report = convert(str(xml), str(tmp_path / "boxes.csv"), on_error="skip")
    assert (report.images_skipped, report.boxes_skipped) == (1, 4)
    line = SEVERAL_BOXES.splitlines().index("   <xmax>{xmax}</xmax>") + 1
    [skipped] = report.skipped
    assert skipped.source == str(xml)
    assert skipped.reason.startswith(
        f"line {line}, object[1]/bndbox[3]/xmax: xmax 4001 is outside [0, 4000]"
    )


# --- a run that fails leaves no folder it made ----------------------------------------------------


def test_a_failed_run_leaves_no_empty_output_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped source (or one whose format cannot be told) must not leave out/deep/."""
    (tmp_path / "kept").mkdir()
    assert main(["convert", str(tmp_path / "nosuch.xml"), str(tmp_path / "out/deep/x.record")]) == 1
    assert main(["convert", str(tmp_path / "kept"), str(tmp_path / "kept/sub/x.record")]) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept"]
    assert list((tmp_path / "kept").iterdir()) == []
    capsys.readouterr()
    # A run that writes keeps its folders.
    csv = write(tmp_path / "kept" / "boxes.csv", ROBOFLOW_CSV_HEADER + "a.jpg,10,10,a,1,2,3,4\n")
    assert main(["convert", str(csv), str(tmp_path / "new/deep/boxes.parquet"), "-q"]) == 0
    assert pq.read_table(tmp_path / "new/deep/boxes.parquet").num_rows == 1


def test_cvat_voc_imagesets_named_after_subsets_are_listed_for_split_lists(
    cvat_voc_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CVAT names ImageSets/Main lists after the task's subsets (default.txt), which
    --voc-imagesets does not take: the error names them and the way to use them."""
    out = tmp_path / "boxes.csv"
    args = ["convert", str(cvat_voc_export), str(out)]
    assert main([*args, "--voc-imagesets", str(cvat_voc_export)]) == 1
    main_folder = cvat_voc_export / "ImageSets" / "Main"
    assert capsys.readouterr().err.strip() == (
        f"annoconv: error: {cvat_voc_export}: no ImageSets/Main/{{train,val,test}}.txt found; "
        f"{main_folder} has car_default.txt, default.txt: name the splits' lists with "
        "--split-lists NAME=FILE,..."
    )
    assert main([*args, "--split-lists", f"default={main_folder / 'default.txt'}", "-q"]) == 0
    assert (tmp_path / "boxes-default.csv").read_text().splitlines() == [
        "filename,width,height,class,xmin,ymin,xmax,ymax",
        "JPEGImages/frame_000000.png,640,480,car,257,12.34,300.5,100",
        "JPEGImages/frame_000001.png,640,480,,,,,",
    ]


# --- names decomposed by macOS --------------------------------------------------------------------

COMPOSED = "caf\u00e9 \u00fcber.jpg"  # as annotation tools write it
DECOMPOSED = "cafe\u0301 u\u0308ber.jpg"  # as a Mac's file system hands the file out


@pytest.mark.parametrize("place", ["beside", "images folder", "tar"])
def test_an_image_named_decomposed_on_disk_is_the_annotations_composed_name(
    tmp_path: Path, place: str
) -> None:
    """labelImg writes `<filename>café über.jpg</filename>` composed (NFC); the same folder
    copied off a Mac (HFS+, or a zip or tar made there) names the file `cafe\\u0301...`
    (NFD). They are one name: the image is found and embedded, in every place images are
    looked for."""
    import tarfile

    assert COMPOSED != DECOMPOSED
    annotations = tmp_path / "annotations"
    write(annotations / "1.xml", labelimg_xml(COMPOSED, 64, 48, [("cat", 4, 6, 40, 30)]))
    image_folder = annotations if place == "beside" else tmp_path / "images"
    image = draw_image(image_folder / DECOMPOSED, 64, 48)
    images: list[str] = []
    if place == "images folder":
        images = ["--images", str(image_folder)]
    elif place == "tar":
        archive = tmp_path / "images.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(image, arcname=DECOMPOSED)
        image.unlink()
        images = ["--images", str(archive)]
    out = tmp_path / "out" / "train.record"
    assert main(["convert", str(annotations), str(out), "-q", *images]) == 0
    (example,) = tfrecord_examples(out).values()
    assert example["image/filename"].decode() == COMPOSED
    assert example["image/encoded"] == draw_image(tmp_path / "again.jpg", 64, 48).read_bytes()
    assert example["image/object/bbox/xmin"].tolist() == [4 / 64]
    assert example["image/object/class/text"].tolist() == [b"cat"]
