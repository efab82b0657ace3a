"""YOLO datasets, Ultralytics and Darknet layouts: read on real-world shapes, written and
read back by supervision (an independent consumer) and by a plain parse of the label files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from coco_factory import IMAGES, coco_document, draw_images, pixel_boxes, write_coco
from factories import Box, draw_image, labelimg_xml, write

from annoconv import convert, read
from annoconv.cli import main
from annoconv.errors import AnnotationError
from annoconv.formats import BadItem, get_format, infer_format
from annoconv.formats.coco import CocoReader
from annoconv.formats.yolo import YoloReader, YoloWriter, is_yolo_folder
from annoconv.formats.yolo.layout import label_path
from annoconv.formats.yolo.reader import KEYPOINTS_LEFT, SEGMENTS_AS_BOXES
from annoconv.formats.yolo.writer import class_indices, yolo_number
from annoconv.labelmap import LabelMap
from annoconv.schema import ImageRecord


def yolo_records(source: str | Path) -> list[ImageRecord]:
    items = list(YoloReader(str(source)))
    bad = [item for item in items if isinstance(item, BadItem)]
    assert not bad, bad
    return [item for item in items if isinstance(item, ImageRecord)]


def plain_labels(path: Path) -> list[tuple[int, float, float, float, float]]:
    """A label file parsed the simplest way, as any YOLO trainer does."""
    rows = []
    for line in path.read_text().splitlines():
        c, *values = line.split()
        rows.append((int(c), *map(float, values)))
    return rows  # type: ignore[return-value]


@pytest.fixture
def coco_source(tmp_path: Path) -> tuple[Path, Path]:
    draw_images(tmp_path / "images")
    source = write_coco(tmp_path / "annotations" / "instances_val.json", coco_document())
    return source, tmp_path / "images"


@pytest.mark.filterwarnings("ignore:OpenCV:UserWarning")  # supervision without opencv, as meant
def test_cli_converts_coco_to_yolo_read_by_supervision(
    coco_source: tuple[Path, Path], tmp_path: Path
) -> None:
    import supervision as sv

    source, images = coco_source
    out = tmp_path / "yolo"
    code = main(
        [
            "convert",
            str(source),
            str(out),
            "--from",
            "coco",
            "--to",
            "yolo",
            "--images",
            str(images),
            "--quiet",
        ]
    )
    assert code == 0
    data = yaml.safe_load((out / "data.yaml").read_text())
    names = ["person", "dog", "toothbrush"]  # the file's categories, in id order (1, 18, 90)
    assert data["names"] == dict(enumerate(names))
    assert (data["train"], data["val"], data["nc"]) == ("images", "images", 3)
    # Images copied byte for byte, one label file per image (empty for the negative).
    for name, *_ in IMAGES:
        assert (out / "images" / name).read_bytes() == (images / name).read_bytes()
    assert (out / "labels" / "000000000632.txt").read_text() == ""
    expected = pixel_boxes()
    dataset = sv.DetectionDataset.from_yolo(
        images_directory_path=str(out / "images"),
        annotations_directory_path=str(out / "labels"),
        data_yaml_path=str(out / "data.yaml"),
    )
    assert dataset.classes == names
    # supervision lists the images folder without its subfolders: all but sub/...png.
    assert len(dataset) == len([name for name, *_ in IMAGES if "/" not in name]) == 3
    for path, _image, detections in dataset:
        name = Path(path).relative_to(out / "images").as_posix()
        want = expected[name]
        assert [dataset.classes[c] for c in detections.class_id] == [b[0] for b in want]
        for got, box in zip(detections.xyxy, want, strict=True):
            assert list(got) == pytest.approx(box[1:], abs=1e-3)  # supervision's float32
    # The plain parse agrees, to float precision.
    sizes = {name: (w, h) for name, w, h, _ in IMAGES}
    for name, want in expected.items():
        rows = plain_labels(out / "labels" / (os.path.splitext(name)[0] + ".txt"))
        width, height = sizes[name]
        assert [names[r[0]] for r in rows] == [b[0] for b in want]
        for (_c, cx, cy, w, h), (_l, x0, y0, x1, y1) in zip(rows, want, strict=True):
            assert (cx - w / 2) * width == pytest.approx(x0, abs=1e-9)
            assert (cy - h / 2) * height == pytest.approx(y0, abs=1e-9)
            assert (cx + w / 2) * width == pytest.approx(x1, abs=1e-9)
            assert (cy + h / 2) * height == pytest.approx(y1, abs=1e-9)


def test_coco_to_yolo_to_coco_is_exact(coco_source: tuple[Path, Path], tmp_path: Path) -> None:
    source, images = coco_source
    declared = CocoReader(str(source)).declared_label_map()
    convert(
        str(source),
        str(tmp_path / "yolo"),
        to_format="yolo",
        images=str(images),
        label_map=declared,
    )
    yolo = YoloReader(str(tmp_path / "yolo"))
    back = tmp_path / "back.json"
    convert(
        str(tmp_path / "yolo"), str(back), from_format="yolo", label_map=yolo.declared_label_map()
    )
    again = {r.filename: r for r in read(str(back))}
    expected = pixel_boxes()
    assert sorted(again) == sorted(expected)
    for name, want in expected.items():
        got = [(o.label, o.xmin, o.ymin, o.xmax, o.ymax) for o in again[name].objects]
        assert [g[0] for g in got] == [w[0] for w in want]
        for g, w in zip(got, want, strict=True):
            assert g[1:] == pytest.approx(w[1:], abs=1e-6)  # pixels, from 12 digits
    # The class names and their order come back (ids are index + 1 in YOLO).
    assert [item.name for item in yolo.declared_label_map()] == ["person", "dog", "toothbrush"]


def test_class_indices_follow_id_order_without_gaps() -> None:
    label_map = LabelMap.parse(
        'item { name: "b" id: 18 } item { name: "a" id: 1 } '
        'item { name: "c" id: 90 display_name: "Cee" }'
    )
    indices, names = class_indices(label_map)
    assert names == ["a", "b", "Cee"]
    assert (indices["a"], indices["b"], indices["c"], indices["Cee"]) == (0, 1, 2, 2)
    assert yolo_number(0.48968750000000005) == "0.4896875"
    assert yolo_number(1.0) == "1"


def ultralytics_dataset(root: Path, names: Any, *, yaml_text: str | None = None) -> Path:
    for split, stem, size in (
        ("train", "a", (64, 48)),
        ("train", "b", (32, 32)),
        ("val", "c", (50, 40)),
    ):
        draw_image(root / "images" / split / f"{stem}.jpg", *size)
    write(root / "labels" / "train" / "a.txt", "0 0.5 0.5 0.25 0.5\n1 0.1 0.2 0.1 0.2\n")
    # b has no label file: a negative image. c has a segment line and a blank line.
    write(root / "labels" / "val" / "c.txt", "1 0.1 0.2 0.4 0.2 0.3 0.6\n\n0 0.5 0.5 1 1\n")
    text = yaml_text or yaml.safe_dump(
        {"path": str(root), "train": "images/train", "val": "images/val", "names": names}
    )
    return write(root / "data.yaml", text)


@pytest.mark.parametrize("names", [["cat", "dog"], {0: "cat", 1: "dog"}])
def test_reads_ultralytics_names_as_list_or_map(tmp_path: Path, names: Any) -> None:
    ultralytics_dataset(tmp_path / "ds", names)
    assert is_yolo_folder(str(tmp_path / "ds"))
    assert infer_format(str(tmp_path / "ds" / "data.yaml")) == "yolo"
    read_back = yolo_records(tmp_path / "ds")
    assert [(r.key, r.split, r.coords) for r in read_back] == [
        ("images/train/a.jpg", "train", "normalized"),
        ("images/train/b.jpg", "train", "normalized"),
        ("images/val/c.jpg", "val", "normalized"),
    ]
    a, b, c = read_back
    assert [(o.label, o.xmin, o.ymin, o.xmax, o.ymax) for o in a.objects] == [
        ("cat", 0.375, 0.25, 0.625, 0.75),
        ("dog", 0.05, 0.1, pytest.approx(0.15), pytest.approx(0.3)),
    ]
    assert b.objects == []
    # The segment counts as its bounding box, as Ultralytics reads it.
    assert [(o.label, o.xmin, o.ymin, o.xmax, o.ymax) for o in c.objects] == [
        ("dog", 0.1, 0.2, 0.4, 0.6),
        ("cat", 0.0, 0.0, 1.0, 1.0),
    ]
    declared = YoloReader(str(tmp_path / "ds")).declared_label_map()
    assert declared is not None
    assert [(i.name, i.id) for i in declared] == [("cat", 1), ("dog", 2)]


@pytest.mark.parametrize("engine", ["local", "processes"])
def test_segment_lines_are_counted_in_the_report(tmp_path: Path, engine: str) -> None:
    """Reading a segment as its box changes what the file said: the report counts it, summed
    over the engine's tasks (one image per task here)."""
    ultralytics_dataset(tmp_path / "ds", ["cat", "dog"])
    write(tmp_path / "ds" / "labels" / "train" / "b.txt", "0 0.1 0.1 0.5 0.1 0.3 0.4 0.2 0.3\n")
    options: dict[str, Any] = {"engine": engine, "workers": 2} if engine != "local" else {}
    report = convert(
        str(tmp_path / "ds"),
        str(tmp_path / "out.record"),
        write_options={"shards": 3},
        **options,
    )
    assert (report.images_written, report.boxes_written) == (3, 5)
    assert report.adjusted == {SEGMENTS_AS_BOXES: 2}
    assert f"adjusted: 2 {SEGMENTS_AS_BOXES}" in report.summary()


@pytest.mark.parametrize("shape", [[12, 2], [17, 3]])
def test_pose_datasets_read_each_line_as_its_box(tmp_path: Path, shape: list[int]) -> None:
    """Ultralytics pose labels are `class cx cy w h` and kpt_shape's keypoints: the box is
    the first four values, however many follow (with [12, 2] the line would otherwise read
    as a polygon); a line of another length names its file and line."""
    root = tmp_path / "pose"
    draw_image(root / "images" / "train" / "a.jpg", 64, 48)
    keypoints = " ".join(["0.9 0.05" if shape[1] == 2 else "0.9 0.05 2"] * shape[0])
    write(root / "labels" / "train" / "a.txt", f"0 0.5 0.5 0.25 0.5 {keypoints}\n")
    config = {"path": str(root), "train": "images/train", "kpt_shape": shape, "names": ["tiger"]}
    write(root / "data.yaml", yaml.safe_dump(config))
    report = convert(str(root), str(tmp_path / "out.csv"), images=str(root / "images" / "train"))
    assert report.adjusted == {KEYPOINTS_LEFT: 1}
    (record,) = yolo_records(root)
    assert [(o.label, o.xmin, o.ymin, o.xmax, o.ymax) for o in record.objects] == [
        ("tiger", 0.375, 0.25, 0.625, 0.75)
    ]
    label = root / "labels" / "train" / "a.txt"
    write(label, "0 0.5 0.5 0.25 0.5 0.9 0.05\n")
    with pytest.raises(AnnotationError, match=r"a\.txt: line 1: .* got 6 values after"):
        convert(str(root), str(tmp_path / "bad.csv"))
    write(root / "data.yaml", yaml.safe_dump({"train": "images/train", "kpt_shape": [17]}))
    with pytest.raises(AnnotationError, match=r"data\.yaml: kpt_shape: expected"):
        convert(str(root), str(tmp_path / "bad.csv"))


def test_roboflow_data_yaml_paths_relative_to_the_parent(tmp_path: Path) -> None:
    root = tmp_path / "export"
    draw_image(root / "train" / "images" / "x.jpg", 20, 10)
    write(root / "train" / "labels" / "x.txt", "0 0.5 0.5 0.5 0.5\n")
    write(
        root / "data.yaml", "train: ../train/images\nval: ../train/images\nnc: 1\nnames: ['ant']\n"
    )
    (record,) = yolo_records(root / "data.yaml")
    assert (record.key, record.objects[0].label) == ("train/images/x.jpg", "ant")


def test_bad_lines_name_the_label_file_and_line(tmp_path: Path) -> None:
    ultralytics_dataset(tmp_path / "ds", ["cat", "dog"])
    bad = write(
        tmp_path / "ds" / "labels" / "train" / "a.txt", "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n"
    )
    with pytest.raises(AnnotationError) as caught:
        convert(str(tmp_path / "ds"), str(tmp_path / "out.csv"), from_format="yolo")
    assert str(caught.value) == f"{bad}: line 2: class 7 is not in names (0..1)"
    write(bad, "0 0.5 0.5 0 0.1\n")
    with pytest.raises(AnnotationError, match="line 1: box width and height must be positive"):
        list(read(str(tmp_path / "ds"), from_format="yolo"))
    write(bad, "0 0.95 0.5 0.2 0.2\n")  # reaches past the right edge
    report = convert(
        str(tmp_path / "ds"), str(tmp_path / "out.csv"), from_format="yolo", boxes_outside="clip"
    )
    assert report.images_written == 3


def test_darknet_layout_reads_and_writes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    draw_image(root / "obj" / "1.jpg", 40, 20)
    draw_image(root / "obj" / "2.png", 30, 30)
    write(root / "obj" / "1.txt", "1 0.5 0.5 0.5 0.5\n")
    write(root / "obj.names", "person\ncar\n")
    write(root / "train.txt", "data/obj/1.jpg\ndata/obj/2.png\n")
    write(
        root / "obj.data",
        "classes = 2\ntrain = data/train.txt\nvalid = data/train.txt\n"
        "names = data/obj.names\nbackup = backup/\n",
    )
    assert infer_format(str(root / "obj.data")) == "yolo"
    read_back = yolo_records(root)
    assert [(r.key, [o.label for o in r.objects]) for r in read_back] == [
        ("obj/1.jpg", ["car"]),
        ("obj/2.png", []),
    ]
    out = tmp_path / "darknet"
    convert(
        str(root),
        str(out),
        from_format="yolo",
        to_format="yolo",
        write_options={"layout": "darknet"},
        label_map=YoloReader(str(root)).declared_label_map(),
    )
    assert (out / "obj.names").read_text() == "person\ncar\n"
    assert (out / "obj" / "1.txt").read_text() == "1 0.5 0.5 0.5 0.5\n"
    assert (out / "obj" / "2.txt").read_text() == ""
    listed = (out / "train.txt").read_text().splitlines()
    assert listed == [f"{out}/obj/1.jpg", f"{out}/obj/2.png"]
    assert "classes = 2" in (out / "obj.data").read_text()
    again = yolo_records(out / "obj.data")
    assert [[o.label for o in r.objects] for r in again] == [["car"], []]


def test_voc_to_yolo_reads_sizes_and_links_images(tmp_path: Path) -> None:
    ann = tmp_path / "voc"
    write(ann / "a.xml", labelimg_xml("a.jpg", 64, 48, [Box("dog", 16, 12, 48, 36)]))
    write(ann / "b.xml", labelimg_xml("b.tif", 40, 30, [Box("cat", 0, 0, 40, 30)]))
    draw_image(ann / "a.jpg", 64, 48)
    draw_image(ann / "b.tif", 40, 30, mode="1", compression="group4")
    for mode in ("link", "symlink"):
        out = tmp_path / mode
        convert(str(ann), str(out), to_format="yolo", write_options={"images_mode": mode})
        linked = out / "images" / "a.jpg"
        if mode == "link":
            assert os.path.samefile(linked, ann / "a.jpg") and not linked.is_symlink()
        else:
            assert linked.is_symlink() and linked.resolve() == (ann / "a.jpg").resolve()
        # The TIFF cannot be linked: transcoded to PNG, as for TFRecords.
        assert (out / "images" / "b.png").is_file() and not (out / "images" / "b.png").is_symlink()
        assert plain_labels(out / "labels" / "a.txt") == [(1, 0.5, 0.5, 0.5, 0.5)]
        assert plain_labels(out / "labels" / "b.txt") == [(0, 0.5, 0.5, 1.0, 1.0)]


def test_labels_only_writes_no_image(tmp_path: Path, coco_source: tuple[Path, Path]) -> None:
    source, _images = coco_source
    out = tmp_path / "labels-only"
    report = convert(str(source), str(out), to_format="yolo", write_options={"images_mode": "none"})
    assert not (out / "images").exists()
    assert sorted(p.name for p in (out / "labels").iterdir()) == [
        "000000000139.txt",
        "000000000632.txt",
        "000000000724.txt",
        "sub",
    ]
    assert report.images_written == len(IMAGES)


def test_split_writers_and_the_finish_hook_make_data_yaml(
    coco_source: tuple[Path, Path], tmp_path: Path
) -> None:
    source, images = coco_source
    label_map = CocoReader(str(source)).declared_label_map()
    assert label_map is not None
    out = str(tmp_path / "split")
    records = [r for r in read(str(source), images=str(images))]
    writers = {
        split: YoloWriter(
            YoloWriter.split_destination(out, split),
            label_map=label_map,
            images=str(images),
            split=split,
        )
        for split in ("train", "val")
    }
    for index, record in enumerate(records):
        writers["train" if index % 2 == 0 else "val"].write(record)
    for writer in writers.values():
        writer.close()
    outputs = YoloWriter.finish_dataset(out, ["train", "val"], label_map, [], {}).outputs
    data = yaml.safe_load(Path(out, "data.yaml").read_text())
    assert [o.kind for o in outputs] == ["data_yaml"]
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert data["names"] == {0: "person", 1: "dog", 2: "toothbrush"}
    assert sorted(p.name for p in Path(out, "labels", "val").iterdir()) == [
        "000000000724.txt",
        "sub",
    ]
    again = yolo_records(Path(out))
    assert [(r.split, len(r.objects)) for r in again] == [
        ("train", 2),
        ("train", 0),
        ("val", 1),
        ("val", 1),
    ]


def test_split_conversion_writes_ultralytics_layout(
    coco_source: tuple[Path, Path], tmp_path: Path
) -> None:
    source, images = coco_source
    out = tmp_path / "yolo"
    convert(str(source), str(out), to_format="yolo", images=str(images), split="train=0.5,val=0.5")
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert len(list((out / "labels" / "train").rglob("*.txt"))) == 2
    assert len(list((out / "labels" / "val").rglob("*.txt"))) == 2
    # the same on the processes engine: data.yaml written once the splits are published
    engine = tmp_path / "yolo-processes"
    report = convert(
        str(source),
        str(engine),
        to_format="yolo",
        images=str(images),
        split="train=0.5,val=0.5",
        engine="processes",
        workers=2,
    )
    assert yaml.safe_load((engine / "data.yaml").read_text()) == data
    assert "data.yaml" in {Path(out.path).name for out in report.outputs}


def test_a_folder_with_data_yaml_is_inferred_as_yolo(tmp_path: Path) -> None:
    ultralytics_dataset(tmp_path / "ds", ["cat", "dog"])
    assert infer_format(str(tmp_path / "ds")) == "yolo"


def test_yolo_reader_hands_out_its_images_to_engines(tmp_path: Path) -> None:
    ultralytics_dataset(tmp_path / "ds", ["cat", "dog"])
    reader = YoloReader(str(tmp_path / "ds"))
    files = reader.image_files()
    assert [key for key, _ in files] == [
        "images/train/a.jpg",
        "images/train/b.jpg",
        "images/val/c.jpg",
    ]
    part = reader.only_files([files[2][1]])
    assert [r.key for r in part if isinstance(r, ImageRecord)] == ["images/val/c.jpg"]
    assert label_path(files[0][1]) == str(tmp_path / "ds" / "labels" / "train" / "a.txt")
    report = convert(
        str(tmp_path / "ds"),
        str(tmp_path / "out.csv"),
        from_format="yolo",
        engine="processes",
        workers=2,
    )
    local = convert(str(tmp_path / "ds"), str(tmp_path / "local.csv"), from_format="yolo")
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert report.boxes_written == local.boxes_written == 4


def test_yolo_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats"]) == 0
    listed = capsys.readouterr().out
    assert "yolo" in listed and "coco" in listed
    assert get_format("yolo").writer is YoloWriter


def test_two_writers_into_one_folder_keep_each_others_files(
    coco_source: tuple[Path, Path], tmp_path: Path
) -> None:
    source, images = coco_source
    label_map = CocoReader(str(source)).declared_label_map()
    records = list(read(str(source), images=str(images)))
    out = str(tmp_path / "one")
    writers = [YoloWriter(out, label_map=label_map, images=str(images)) for _ in range(2)]
    for index, record in enumerate(records):
        writers[index % 2].write(record)
    for writer in writers:
        writer.close()
    assert len(list(Path(out, "labels").rglob("*.txt"))) == len(records)
    assert not [p for p in Path(out).iterdir() if p.name.startswith(".")]  # no staging left


def _mixed_records() -> list[ImageRecord]:
    """Records of every kind the labels-only writer meets: pixel boxes with a size (awkward
    decimals), normalized boxes without one, no boxes, folders and Windows separators."""
    from annoconv.schema import make_record

    def box(label: str, xmin: float, ymin: float, xmax: float, ymax: float) -> dict[str, Any]:
        return {"label": label, "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}

    return [
        make_record(
            "a.json",
            key="a",
            filename="000000000139.jpg",
            width=640,
            height=426,
            objects=[
                box("person", 412.8, 157.61, 412.8 + 53.05, 157.61 + 138.01),
                box("dog", 0.0, 0.5, 20.0, 30.5),
                box("person", 1 / 3, 2 / 3, 639.999999, 425.1),
            ],
        ),
        make_record(
            "a.json",
            key="b",
            filename="sub\\000000000285.png",
            coords="normalized",
            objects=[box("toothbrush", 0.1, 0.2, 0.30000000000000004, 0.9)],
        ),
        make_record("a.json", key="c", filename="/abs/000000000632.jpg", width=5, height=7),
        make_record(
            "a.json",
            key="d",
            filename="x/images/y/000000000724.jpg",  # no images/ folder in the output
            width=375,
            height=500,
            objects=[box("dog", 273.07, 95.93, 363.57, 196.18)],
        ),
    ]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("layout", ["ultralytics", "darknet"])
def test_labels_only_batches_write_the_bytes_of_the_record_path(
    tmp_path: Path, layout: str
) -> None:
    from annoconv.columnar import records_to_batch

    records = _mixed_records()
    label_map = LabelMap.from_classes(["person", "dog", "toothbrush"])
    options: dict[str, Any] = {"label_map": label_map, "images_mode": "none", "layout": layout}
    by_record = YoloWriter(str(tmp_path / "records"), **options)
    for record in records:
        by_record.write(record)
    by_record.close()
    by_batch = YoloWriter(str(tmp_path / "batches"), **options)
    assert by_batch.capabilities.takes_batches
    batch = records_to_batch(records)
    by_batch.write_batch(batch.slice(0, 1))
    by_batch.write_batch(batch.slice(1))  # a slice: its list offsets do not start at 0
    outputs = by_batch.close()
    expected = _files(tmp_path / "records")
    written = _files(tmp_path / "batches")
    if layout == "darknet":  # the image list and obj.data name the destination folder
        for listed in ("train.txt", "obj.data"):
            there = expected.pop(listed).replace(b"/records/", b"/batches/")
            assert written.pop(listed) == there
    assert written == expected
    labels = [out for out in outputs if out.kind == "yolo"]
    assert len(labels) == len(records)
    folder = "labels" if layout == "ultralytics" else "obj"
    dog = class_indices(label_map)[0]["dog"]
    line = (dog, 318.32 / 375, 146.055 / 500, 90.5 / 375, 100.25 / 500)
    written_line = plain_labels(tmp_path / "batches" / folder / "x" / "y" / "000000000724.txt")
    assert written_line == [pytest.approx(line, abs=1e-11)]
    assert expected[f"{folder}/000000000632.txt"] == b""


def test_images_to_place_keep_the_record_path(tmp_path: Path) -> None:
    label_map = LabelMap.from_classes(["person"])
    assert not YoloWriter(str(tmp_path / "a"), label_map=label_map).capabilities.takes_batches


@pytest.mark.parametrize("case", ["unknown class", "name twice", "no size"])
def test_batches_a_record_would_refuse_need_the_record_path(tmp_path: Path, case: str) -> None:
    from annoconv.columnar import records_to_batch
    from annoconv.formats import BatchesUnavailable

    records = _mixed_records()
    classes = ["person", "dog", "toothbrush"]
    if case == "unknown class":
        classes.remove("dog")
    elif case == "name twice":
        records.append(records[0].model_copy(update={"key": "again"}))
    else:
        records[0] = records[0].model_copy(update={"width": None, "height": None})
    writer = YoloWriter(
        str(tmp_path / "out"), label_map=LabelMap.from_classes(classes), images_mode="none"
    )
    with pytest.raises(BatchesUnavailable):
        writer.write_batch(records_to_batch(records))
    writer.abort()
    assert not (tmp_path / "out").exists()


def test_one_pass_with_a_class_the_map_lacks_reports_it_as_the_record_path(
    tmp_path: Path, coco_source: tuple[Path, Path]
) -> None:
    source, _images = coco_source
    label_map = LabelMap.from_classes(["person", "toothbrush"])  # no dog
    out = tmp_path / "labels-only"
    report = convert(
        str(source),
        str(out),
        to_format="yolo",
        label_map=label_map,
        on_error="skip",
        write_options={"images_mode": "none"},
    )
    dogs = [name for name, _w, _h, boxes in IMAGES if any(c == 18 for c, _box in boxes)]
    assert report.images_skipped == len(dogs) == 2
    assert all("'dog' not in the label map" in item.reason for item in report.skipped)
    assert report.images_written == len(IMAGES) - len(dogs)
    toothbrush = class_indices(label_map)[0]["toothbrush"]
    line = (toothbrush, (10.25 + 100.1 / 2) / 320, (20.5 + 50.7 / 2) / 240, 100.1 / 320, 50.7 / 240)
    written_line = plain_labels(out / "labels" / "sub" / "000000000285.txt")
    assert written_line == [pytest.approx(line, abs=1e-11)]
    assert not (out / "labels" / "000000000139.txt").exists()


def test_coco_to_labels_only_takes_the_columnar_path(
    tmp_path: Path, coco_source: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _images = coco_source
    label_map = CocoReader(str(source)).declared_label_map()
    assert label_map is not None
    by_record = YoloWriter(str(tmp_path / "by-record"), label_map=label_map, images_mode="none")
    for record in read(str(source)):
        by_record.write(record)
    by_record.close()

    def refuse(self: YoloWriter, record: ImageRecord) -> None:
        raise AssertionError("the record path was taken")

    monkeypatch.setattr(YoloWriter, "write", refuse)
    report = convert(
        str(source),
        str(tmp_path / "by-batch"),
        to_format="yolo",
        label_map=label_map,
        write_options={"images_mode": "none"},
    )
    assert report.images_written == len(IMAGES)
    assert report.boxes_written == sum(len(boxes) for *_rest, boxes in IMAGES)
    assert _files(tmp_path / "by-batch") == _files(tmp_path / "by-record")
