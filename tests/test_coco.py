"""COCO detection JSON: the streaming reader on real-world shapes, the writer read back by
pycocotools (COCO, loadRes, COCOeval), round trips with VOC and TFRecord."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from coco_factory import CATEGORIES, IMAGES, coco_document, draw_images, pixel_boxes, write_coco
from factories import Box, draw_image, labelimg_xml, write
from hypothesis import given, settings
from hypothesis import strategies as st

from annoconv import convert
from annoconv.errors import AnnotationError
from annoconv.formats import BadItem, infer_format
from annoconv.formats.coco import CocoReader, is_coco, stream
from annoconv.formats.coco.reader import SEGMENTATIONS_LEFT, declared_categories
from annoconv.formats.coco.stream import Category
from annoconv.formats.coco.writer import span_text
from annoconv.labelmap import LabelMap, LabelMapItem
from annoconv.schema import ImageRecord

ORDERS = [
    ("info", "licenses", "images", "annotations", "categories"),  # COCO's own
    ("info", "licenses", "categories", "images", "annotations"),  # Roboflow's
    ("annotations", "categories", "images"),  # annotations before the images
]


def records(source: str | Path, **options: Any) -> list[ImageRecord]:
    items = list(CocoReader(str(source), **options))
    bad = [item for item in items if isinstance(item, BadItem)]
    assert not bad, bad
    return [item for item in items if isinstance(item, ImageRecord)]


def boxes_of(record: ImageRecord) -> list[tuple[str, float, float, float, float]]:
    return [(o.label, o.xmin, o.ymin, o.xmax, o.ymax) for o in record.objects]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("indent", [None, 2])
def test_reads_every_image_and_box_in_any_key_order(
    tmp_path: Path, order: tuple[str, ...], indent: int | None
) -> None:
    path = write_coco(
        tmp_path / "instances_val2017.json", coco_document(order=order), indent=indent
    )
    read = records(path)
    expected = pixel_boxes()
    assert [r.filename for r in read] == [name for name, *_ in IMAGES]
    assert [r.key for r in read] == [name for name, *_ in IMAGES]
    for record, (name, width, height, _boxes) in zip(read, IMAGES, strict=True):
        assert (record.width, record.height, record.coords) == (width, height, "pixel")
        assert boxes_of(record) == expected[name]  # exactly: xmax = x + width
        assert all(o.group_of == 0 for o in record.objects)
        assert record.split == "val2017"
    assert read[2].objects == []  # an image without annotations is a negative


def test_string_ids_windows_names_crowds_and_polygon_only_annotations(tmp_path: Path) -> None:
    images = [
        ("train\\a.jpg", 100, 80, [(18, [1.5, 2.5, 10, 20])]),
        ("C:\\data\\b.jpg", 50, 50, []),
    ]
    document = coco_document(images, string_ids=True)
    document["images"][1]["id"] = "img-8"
    document["annotations"] += [
        {  # a crowd region with an uncompressed RLE, as COCO has them
            "id": 7,
            "image_id": "img-1",
            "category_id": 1,
            "iscrowd": 1,
            "area": 120.0,
            "bbox": [5, 6, 30, 40],
            "segmentation": {"counts": [10, 20, 30], "size": [80, 100]},
        },
        {  # polygons only: the box is derived from them
            "id": 8,
            "image_id": "img-8",
            "category_id": 90,
            "iscrowd": 0,
            "segmentation": [[10, 12.5, 30, 12.5, 20, 40], [5, 20, 8, 22, 6, 25]],
        },
    ]
    read = records(write_coco(tmp_path / "x.json", document))
    assert [r.filename for r in read] == ["train/a.jpg", "b.jpg"]
    assert read[1].path == "C:\\data\\b.jpg"  # the name as written, for the locator
    first, crowd = read[0].objects
    assert (first.label, first.xmin, first.ymax, first.group_of) == ("dog", 1.5, 22.5, 0)
    assert (crowd.label, crowd.group_of, crowd.xmax, crowd.ymax) == ("person", 1, 35, 46)
    assert boxes_of(read[1]) == [("toothbrush", 5, 12.5, 30, 40)]


def test_url_and_upload_file_names_are_found_by_their_base_name(tmp_path: Path) -> None:
    """Label Studio's JSON-only COCO export names each image by its upload path or URL; a
    cloud-storage project by its bucket URL. The images are found by base name under
    --images, and outputs name them so (a URL's `//` is not a folder)."""
    images = [
        ("/data/upload/1/abc-cat.jpg", 64, 48, [(18, [1, 2, 10, 20])]),
        ("http://localhost:8080/data/upload/1/def-dog.jpg?token=x", 32, 40, [(1, [3, 4, 5, 6])]),
        ("s3://bucket/tasks/ghi-bird.png", 20, 20, []),
    ]
    source = write_coco(tmp_path / "result.json", coco_document(images))
    folder = tmp_path / "images"
    for name, width, height in (("abc-cat.jpg", 64, 48), ("def-dog.jpg", 32, 40)):
        draw_image(folder / name, width, height)
    draw_image(folder / "ghi-bird.png", 20, 20)
    read = records(source)
    assert [r.filename for r in read] == ["abc-cat.jpg", "def-dog.jpg", "ghi-bird.png"]
    assert read[1].path == images[1][0]  # the name as written, for the locator
    out = tmp_path / "yolo"
    report = convert(str(source), str(out), to_format="yolo", images=str(folder))
    assert (report.images_written, report.boxes_written) == (3, 2)
    assert (out / "images" / "def-dog.jpg").read_bytes() == (folder / "def-dog.jpg").read_bytes()
    assert (out / "labels" / "def-dog.txt").read_text() == "0 0.171875 0.175 0.15625 0.15\n"
    assert (out / "labels" / "ghi-bird.txt").read_text() == ""


@pytest.mark.parametrize(
    ("output", "engine"),
    [("out.csv", "local"), ("out.parquet", "local"), ("out.record", "processes")],
)
def test_segmentations_left_behind_are_counted_in_the_report(
    tmp_path: Path, output: str, engine: str
) -> None:
    """Boxes are converted, segmentations are not: the report says how many annotations had
    one (polygons, an RLE, a polygon-only annotation; an empty list is none), on the record
    path (CSV), the columnar one (Parquet) and once over an engine's tasks that each read
    the whole file for their shard (TFRecord, 3 shards)."""
    document = coco_document()
    polygons = [[1.0, 2.0, 11.0, 2.0, 11.0, 22.0]]
    annotations = document["annotations"]
    annotations[0]["segmentation"] = polygons
    annotations[1]["segmentation"] = {"counts": [5, 10, 5], "size": [20, 1]}
    annotations[1]["iscrowd"] = 1
    annotations[2]["segmentation"] = []
    del annotations[3]["bbox"]
    annotations[3]["segmentation"] = polygons
    path = write_coco(tmp_path / "instances_val.json", document)
    draw_images(tmp_path)
    options: dict[str, Any] = {}
    if engine == "processes":
        options = {"engine": engine, "workers": 2, "write_options": {"shards": 3}}
    report = convert(str(path), str(tmp_path / output), **options)
    assert report.boxes_written == len(annotations)
    assert report.adjusted == {SEGMENTATIONS_LEFT: 3}


def test_bad_annotations_name_the_file_and_the_element(tmp_path: Path) -> None:
    document = coco_document()
    document["annotations"][1]["bbox"][2] = -3
    document["annotations"][1]["id"] = 91234
    document["annotations"].append(
        {"id": 5, "image_id": 999, "category_id": 1, "bbox": [1, 1, 2, 2], "iscrowd": 0}
    )
    document["annotations"][3]["category_id"] = 7
    path = write_coco(tmp_path / "instances_val.json", document)
    items = list(CocoReader(str(path)))
    errors = [str(item.error) for item in items if isinstance(item, BadItem)]
    assert f"{path}: annotations[1] (id 91234): bbox width is -3" in errors
    assert f"{path}: annotations[4] (id 5): image_id 999 is not one of the images" in errors
    assert f"{path}: annotations[3] (id 1003): category_id 7 is not one of the categories" in (
        errors
    )
    with pytest.raises(AnnotationError, match=r"annotations\[1\] \(id 91234\): bbox width is -3"):
        convert(str(path), str(tmp_path / "out.csv"))
    report = convert(str(path), str(tmp_path / "out.csv"), on_error="skip")
    # Images 1 and 4 carry a bad annotation and are skipped whole; the orphan counts alone.
    assert (report.images_read, report.images_written) == (4, 2)
    assert (report.boxes_read, report.boxes_written) == (5, 1)
    assert len(report.skipped) == 3


def test_malformed_and_truncated_json_are_one_error_naming_the_file(tmp_path: Path) -> None:
    text = json.dumps(coco_document())
    path = write(tmp_path / "cut.json", text[: len(text) // 2])
    with pytest.raises(AnnotationError, match=r"cut\.json: not valid JSON"):
        convert(str(path), str(tmp_path / "out.csv"))
    bad_image = coco_document()
    bad_image["images"][0]["width"] = "wide"
    path = write_coco(tmp_path / "bad.json", bad_image)
    with pytest.raises(AnnotationError, match=r"bad\.json: images\[0\] \(id 1\): width and height"):
        convert(str(path), str(tmp_path / "out.csv"))


def test_roboflow_split_folders_and_their_workspace_category(tmp_path: Path) -> None:
    categories = [
        {"id": 0, "name": "cells-Xc2e", "supercategory": "none"},
        {"id": 1, "name": "platelet", "supercategory": "cells-Xc2e"},
        {"id": 2, "name": "rbc", "supercategory": "cells-Xc2e"},
    ]
    order = ("info", "licenses", "categories", "images", "annotations")
    for split, name in (("train", "a_jpg.rf.1f2e.jpg"), ("valid", "b_jpg.rf.9a0c.jpg")):
        images = [(name, 416, 416, [(1, [10, 10, 50, 60]), (2, [100, 100, 5, 5])])]
        document = coco_document(images, categories=categories, order=order, first_image_id=0)
        write_coco(tmp_path / split / "_annotations.coco.json", document)
        draw_image(tmp_path / split / name, 416, 416)
    write(tmp_path / "README.roboflow.txt", "exported from roboflow.com")
    assert infer_format(str(tmp_path)) == "coco"
    reader = CocoReader(str(tmp_path))
    read = records(tmp_path)
    assert [(r.key, r.filename, r.split) for r in read] == [
        ("train/a_jpg.rf.1f2e.jpg", "a_jpg.rf.1f2e.jpg", "train"),
        ("valid/b_jpg.rf.9a0c.jpg", "b_jpg.rf.9a0c.jpg", "valid"),
    ]
    declared = reader.declared_label_map()
    assert declared is not None
    assert [(item.name, item.id) for item in declared] == [("platelet", 1), ("rbc", 2)]
    # The images beside each JSON are found: a TFRecord run embeds them.
    report = convert(str(tmp_path), str(tmp_path / "out" / "cells.record"))
    assert report.images_written == 2


def test_declared_categories_move_zero_based_ids_up() -> None:
    zero_based = [Category(0, "cat", None), Category(1, "dog", None)]
    assert [(c.name, c.id) for c in declared_categories(zero_based)] == [("cat", 1), ("dog", 2)]
    coco = [Category(1, "person", "person"), Category(90, "toothbrush", "indoor")]
    assert [(c.name, c.id) for c in declared_categories(coco)] == [
        ("person", 1),
        ("toothbrush", 90),
    ]


def test_result_files_read_as_detections(tmp_path: Path) -> None:
    truth = write_coco(tmp_path / "instances_val.json", coco_document())
    results = [
        {"image_id": 8, "category_id": 90, "bbox": [10.25, 20.5, 100.1, 50.7], "score": 0.875},
        {"image_id": 1, "category_id": 18, "bbox": [0, 0.5, 20, 30], "score": 0.5},
        {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.25},
    ]
    path = write(tmp_path / "detections.json", json.dumps(results))
    assert is_coco(str(path)) and infer_format(str(path)) == "coco"
    plain = records(path)
    assert [r.key for r in plain] == ["8", "1"]  # images named by id, first seen first
    assert [(o.label, o.confidence) for o in plain[1].objects] == [("18", 0.5), ("1", 0.25)]
    with_truth = records(path, ground_truth=str(truth))
    assert [r.filename for r in with_truth] == [name for name, *_ in IMAGES]
    assert [(o.label, o.confidence) for o in with_truth[0].objects] == [
        ("dog", 0.5),
        ("person", 0.25),
    ]
    assert boxes_of(with_truth[1]) == [("toothbrush", 10.25, 20.5, 10.25 + 100.1, 20.5 + 50.7)]
    assert with_truth[2].objects == []


def test_grouping_spilled_to_disk_gives_the_same_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = [
        (f"{n:04d}.jpg", 64, 48, [(1 + 17 * (k % 2), [k, k, 3, 2]) for k in range(n % 5)])
        for n in range(40)
    ]
    document = coco_document(images)
    document["annotations"].reverse()  # not grouped by image
    path = write_coco(tmp_path / "x.json", document)
    in_memory = records(path)
    monkeypatch.setattr(stream, "BATCH_ROWS", 3)
    spilled = CocoReader(str(path), memory_budget=1, tmp_dir=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    again = [item for item in spilled if isinstance(item, ImageRecord)]
    assert again == in_memory
    assert [len(r.objects) for r in again] == [n % 5 for n in range(40)]
    # Within an image, annotations keep their file order (reversed here).
    assert [o.xmin for o in again[4].objects] == [3, 2, 1, 0]
    assert list((tmp_path / "tmp").iterdir()) == []  # the spill is cleaned up


def test_look_alike_text_does_not_confuse_the_splice(tmp_path: Path) -> None:
    images = [(f'annotations": [{n}].jpg', 10, 10, [(1, [1, 1, 2, 2])]) for n in range(3)]
    document = coco_document(images)
    document["annotations"][-1]["note"] = '], "categories": []}'
    read = records(write_coco(tmp_path / "x.json", document))
    assert [r.filename for r in read] == [name for name, *_ in images]
    assert all(len(r.objects) == 1 for r in read)


# --- writing ------------------------------------------------------------------------------


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    ann = tmp_path / "voc"
    write(ann / "a.xml", labelimg_xml("a.jpg", 640, 480, [Box("dog", 10, 20.5, 110, 220)]))
    boxes = [Box("cat", 45.70000076293945, 1, 281.70000076293945, 99), Box("dog", 0, 0, 320, 240)]
    write(ann / "b.xml", labelimg_xml("b.jpg", 320, 240, boxes))
    write(ann / "c.xml", labelimg_xml("c.jpg", 200, 100, []))
    return ann


def load_coco(path: Path) -> Any:
    from pycocotools.coco import COCO

    with redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_pycocotools_reads_our_output_and_scores_it_perfect(voc: Path, tmp_path: Path) -> None:
    from pycocotools.cocoeval import COCOeval

    out = tmp_path / "out" / "instances.json"
    report = convert(str(voc), str(out))
    assert report.outputs[-1].path == str(out)
    coco = load_coco(out)
    assert {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())} == {"cat": 1, "dog": 2}
    by_file = {img["file_name"]: img for img in coco.loadImgs(coco.getImgIds())}
    assert sorted(by_file) == ["a.jpg", "b.jpg", "c.jpg"]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[by_file["b.jpg"]["id"]]))
    assert [a["bbox"] for a in anns] == [[45.70000076293945, 1, 236, 98], [0, 0, 320, 240]]
    assert [(a["category_id"], a["iscrowd"], a["area"]) for a in anns] == [
        (1, 0, 236 * 98),
        (2, 0, 320 * 240),
    ]
    detections = [{**a, "score": 0.9} for a in coco.loadAnns(coco.getAnnIds())]
    for detection in detections:
        detection.pop("segmentation")
        detection.pop("id")
    with redirect_stdout(io.StringIO()):
        results = coco.loadRes(detections)
        evaluation = COCOeval(coco, results, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)  # AP@[.5:.95]
    assert evaluation.stats[1] == pytest.approx(1.0)  # AP@.5


def test_voc_to_coco_to_voc_is_exact(voc: Path, tmp_path: Path) -> None:
    from annoconv import read

    convert(str(voc), str(tmp_path / "x.json"))
    convert(str(tmp_path / "x.json"), str(tmp_path / "back"), to_format="voc")
    before = {r.filename: boxes_of(r) for r in read(str(voc))}
    after = {r.filename: boxes_of(r) for r in read(str(tmp_path / "back"))}
    assert after == before  # to the last bit, 45.70000076293945 included


def test_coco_to_coco_keeps_category_ids_and_supercategories(tmp_path: Path) -> None:
    source = write_coco(tmp_path / "in.json", coco_document())
    declared = CocoReader(str(source)).declared_label_map()
    assert declared is not None
    out = tmp_path / "out.json"
    convert(
        str(source),
        str(out),
        label_map=declared,
        write_options={"supercategories_from": str(source)},
    )
    document = json.loads(out.read_text())
    assert document["categories"] == CATEGORIES
    coco = load_coco(out)
    expected = pixel_boxes()
    for image in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        got = [(coco.cats[a["category_id"]]["name"], *a["bbox"]) for a in anns]
        want = [
            (label, x0, y0, x1 - x0, y1 - y0)
            for label, x0, y0, x1, y1 in expected[image["file_name"]]
        ]
        assert [(g[0], *g[1:3]) for g in got] == [(w[0], *w[1:3]) for w in want]
        for g, w in zip(got, want, strict=True):  # widths: shortest text giving back xmax
            assert g[1] + g[3] == w[1] + w[3] and g[2] + g[4] == w[2] + w[4]
    source_bboxes = [a["bbox"] for a in coco_document()["annotations"]]
    assert [a["bbox"] for a in document["annotations"]] == source_bboxes  # the very numbers


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(min_value=0, max_value=5000, places=2),
    st.decimals(min_value="0.01", max_value=5000, places=2),
)
def test_span_text_gives_back_the_source_width(x: Any, w: Any) -> None:
    low, width = float(x), float(w)
    high = low + width
    text = span_text(low, high)
    assert low + float(text) == high
    assert len(text) <= len(repr(width))


def test_copy_images_makes_a_self_contained_dataset(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    write(ann / "a.xml", labelimg_xml("a.jpg", 64, 48, [Box("dog", 1, 2, 30, 40)]))
    write(ann / "b.xml", labelimg_xml("b.tif", 40, 30, [Box("cat", 0, 0, 40, 30)]))
    draw_image(ann / "a.jpg", 64, 48)
    draw_image(ann / "b.tif", 40, 30, mode="1", compression="group4")
    out = tmp_path / "coco"
    convert(
        str(ann), str(out), to_format="coco", write_options={"copy_images": str(out / "images")}
    )
    coco = load_coco(out / "instances.json")
    names = sorted(img["file_name"] for img in coco.loadImgs(coco.getImgIds()))
    assert names == ["a.jpg", "b.png"]  # the TIFF transcoded to PNG, as for TFRecords
    assert (out / "images" / "a.jpg").read_bytes() == (ann / "a.jpg").read_bytes()
    from PIL import Image

    with Image.open(out / "images" / "b.png") as image:
        assert (image.format, image.size) == ("PNG", (40, 30))


def test_splits_write_one_instances_file_each(voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "coco"
    out.mkdir()
    report = convert(str(voc), str(out), to_format="coco", split="train=0.67,val=0.33", seed=3)
    written = sorted(p.name for p in out.iterdir())
    assert written == ["instances_train.json", "instances_val.json"]
    total = sum(len(load_coco(out / name).imgs) for name in written)
    assert total == report.images_written == 3
    for name in written:  # one label map, every category in every split
        assert [c["name"] for c in json.loads((out / name).read_text())["categories"]] == [
            "cat",
            "dog",
        ]


def test_coco_to_tfrecord_read_by_tensorflow(tmp_path: Path) -> None:
    from test_tfrecord import read_examples

    draw_images(tmp_path / "images")
    source = write_coco(tmp_path / "annotations" / "instances_val.json", coco_document())
    convert(str(source), str(tmp_path / "val.record"), images=str(tmp_path / "images"))
    examples = read_examples([tmp_path / "val.record-00000-of-00001"])
    expected = pixel_boxes()
    assert len(examples) == len(IMAGES)
    for example in examples:
        name = example["image/filename"].decode()
        width, height = example["image/width"], example["image/height"]
        boxes = expected[name]
        labels = [t.decode() for t in example["image/object/class/text"]]
        assert labels == [b[0] for b in boxes]
        for key, index, size in (("xmin", 1, width), ("ymin", 2, height), ("xmax", 3, width)):
            got = list(example[f"image/object/bbox/{key}"])
            assert got == pytest.approx([b[index] / size for b in boxes], abs=1e-6)


def test_is_coco_looks_at_the_content(tmp_path: Path) -> None:
    assert is_coco(str(write_coco(tmp_path / "a.json", coco_document())))
    assert not is_coco(str(write(tmp_path / "b.json", '{"name": "package.json"}')))
    assert not is_coco(str(write(tmp_path / "c.json", "[1, 2, 3]")))


def test_the_label_map_must_cover_the_categories(tmp_path: Path) -> None:
    source = write_coco(tmp_path / "in.json", coco_document())
    partial = LabelMap([LabelMapItem("person", 1)])
    with pytest.raises(Exception, match="not in the label map"):
        convert(str(source), str(tmp_path / "out.json"), label_map=partial)


def test_the_columnar_path_gives_the_records_rows(tmp_path: Path) -> None:
    import pyarrow as pa

    from annoconv.columnar import records_to_batch

    document = coco_document()
    document["annotations"][0]["bbox"] = [600, 1, 50, 5]  # outside its 640-wide image
    document["annotations"][2]["category_id"] = 5  # not a category
    document["annotations"][1]["iscrowd"] = 1
    document["annotations"][3]["score"] = 0.5
    path = write_coco(tmp_path / "x.json", document)
    by_records = list(CocoReader(str(path)))
    by_batches = list(CocoReader(str(path)).batches())
    kinds = [type(item).__name__ for item in by_batches]
    assert kinds == ["BadItem", "BadItem", "RecordBatch"]
    assert [str(i.error) for i in by_batches[:2]] == [
        str(i.error) for i in by_records if isinstance(i, BadItem)
    ]
    good = [item for item in by_records if isinstance(item, ImageRecord)]
    expected = records_to_batch(good)
    got = by_batches[2]
    assert isinstance(got, pa.RecordBatch)
    assert got.to_pylist() == expected.to_pylist()
    out = tmp_path / "x.parquet"
    report = convert(str(path), str(out), on_error="skip")
    assert (report.images_written, report.boxes_written) == (2, 1)
