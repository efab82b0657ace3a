"""Story 2 end to end: Open Images CSV -> the Camera / Mobile phone subset, sampled and split,
as Faster R-CNN txt, CSV and TFRecord, checked against an independent computation."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from factories import draw_image
from oi_factory import (
    CAMERA,
    CLASSES,
    PHONE,
    bbox_csv,
    expected_boxes,
    random_rows,
    write_dataset,
)
from oi_factory import write as write_text

from annoconv.cli import main
from annoconv.formats import infer_format
from annoconv.formats.frcnn import pixel_int


@pytest.fixture(params=[8, 13, 21])
def open_images(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = random.Random(7)
    rows = random_rows(rng, 40)
    return write_dataset(
        tmp_path / "oi",
        rows,
        columns=request.param,
        image_size=lambda index: (64 + index, 48 + index % 5),
    )


def subset(bbox: Path) -> dict[str, list]:
    boxes = expected_boxes(str(bbox), CLASSES, classes=[CAMERA, PHONE])
    return {image_id: found for image_id, found in boxes.items() if found}


def size_of(images: Path, image_id: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(images / f"{image_id}.jpg") as image:
        return image.size


def test_open_images_csv_is_told_apart_from_the_tutorial_csv(
    open_images: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    bbox, _, _ = open_images
    assert infer_format(str(bbox)) == "openimages"
    tutorial = tmp_path / "t.csv"
    tutorial.write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n", encoding="utf-8")
    assert infer_format(str(tutorial)) == "csv"


def test_frcnn_subset_with_split_matches_an_independent_computation(
    open_images: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    bbox, descriptions, images = open_images
    out = tmp_path / "out" / "annotation.txt"
    prefix = "drive/My Drive/GP/Dataset/train/"
    args = [
        "convert", bbox, out, "--to", "frcnn", "--class-descriptions", descriptions,
        "--classes", "Camera", "Mobile phone", "--split", "train=0.8,test=0.2", "--seed", "1",
        "--images", images, "--path-prefix", prefix, "-q",
    ]  # fmt: skip
    assert main([str(a) for a in args]) == 0
    expected_lines = set()
    for image_id, found in subset(bbox).items():
        width, height = size_of(images, image_id)
        for box in found:
            coords = (box.xmin * width, box.ymin * height, box.xmax * width, box.ymax * height)
            x1, y1, x2, y2 = (pixel_int(value) for value in coords)
            expected_lines.add(f"{prefix}{image_id}.jpg,{x1},{y1},{x2},{y2},{box.label}")
    train = (tmp_path / "out" / "annotation-train.txt").read_text(encoding="utf-8").splitlines()
    test = (tmp_path / "out" / "annotation-test.txt").read_text(encoding="utf-8").splitlines()
    assert set(train) | set(test) == expected_lines
    assert len(train) + len(test) == len(expected_lines)
    train_ids = {line.split(",")[0] for line in train}
    test_ids = {line.split(",")[0] for line in test}
    assert not train_ids & test_ids
    assert len(train_ids) == round(0.8 * len(subset(bbox)))


def test_csv_and_tfrecord_of_a_sample(open_images: tuple[Path, Path, Path], tmp_path: Path) -> None:
    bbox, descriptions, images = open_images
    common = [
        "--class-descriptions", descriptions, "--classes", "Camera", "/m/050k8",
        "--sample", "5", "--seed", "3", "--images", images, "-q",
    ]  # fmt: skip
    out_csv = tmp_path / "sample.csv"
    assert main([str(a) for a in ["convert", bbox, out_csv, *common]]) == 0
    with out_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    sampled = {row["filename"].removesuffix(".jpg") for row in rows}
    assert len(sampled) == 5
    expected = subset(bbox)
    for image_id in sampled:
        width, height = size_of(images, image_id)
        mine = [row for row in rows if row["filename"] == f"{image_id}.jpg"]
        assert [(r["class"], float(r["xmin"]), float(r["ymax"])) for r in mine] == [
            (box.label, box.xmin * width, box.ymax * height) for box in expected[image_id]
        ]
        assert {(r["width"], r["height"]) for r in mine} == {(str(width), str(height))}
    out_record = tmp_path / "tf" / "sample.record"
    assert main([str(a) for a in ["convert", bbox, out_record, *common]]) == 0
    label_map = (tmp_path / "tf" / "label_map.pbtxt").read_text(encoding="utf-8")
    assert label_map == (
        'item {\n  name: "/m/0dv5r"\n  id: 1\n  display_name: "Camera"\n}\n'
        'item {\n  name: "/m/050k8"\n  id: 2\n  display_name: "Mobile phone"\n}\n'
    )
    from annoconv import read

    records = list(read(f"{out_record}-00000-of-00001"))
    assert {record.key for record in records} == sampled
    for record in records:
        found = expected[record.key]
        assert [obj.label for obj in record.objects] == [box.label for box in found]
        assert [obj.xmin for obj in record.objects] == pytest.approx(
            [box.xmin for box in found], abs=1e-6
        )


def test_pixel_sizes_from_image_urls(tmp_path: Path) -> None:
    """No images folder: the images CSV's URLs (here a server on 127.0.0.1) give the sizes."""
    import functools
    import http.server
    import threading

    from oi_factory import Row, images_csv_figure_eight

    images = tmp_path / "served"
    draw_image(images / "00000000000000aa.jpg", 90, 60)
    draw_image(images / "00000000000000bb.jpg", 40, 80)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(images))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        bbox = tmp_path / "bbox.csv"
        rows = [Row("00000000000000aa", xmin="0.5", xmax="1"), Row("00000000000000bb")]
        write_text(bbox, bbox_csv(rows))
        urls = {key: f"{base}/{key}.jpg" for key in ("00000000000000aa", "00000000000000bb")}
        write_text(tmp_path / "images.csv", images_csv_figure_eight(urls))
        out = tmp_path / "sized.csv"
        args = ["convert", bbox, out, "--images-csv", tmp_path / "images.csv", "-q"]
        assert main([str(a) for a in args]) == 0
    finally:
        server.shutdown()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[1] == "00000000000000aa.jpg,90,60,/m/0dv5r,45,12,90,36"
    assert lines[2] == "00000000000000bb.jpg,40,80,/m/0dv5r,4,16,20,48"


def test_label_map_named_by_class_names_on_request(
    open_images: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    bbox, descriptions, images = open_images
    args = [
        "convert", bbox, tmp_path / "x.record", "--class-descriptions", descriptions,
        "--classes", "Camera", "Mobile phone", "--images", images,
        "--label-map-names", "labels", "-q",
    ]  # fmt: skip
    assert main([str(a) for a in args]) == 0
    assert (tmp_path / "label_map.pbtxt").read_text(encoding="utf-8") == (
        'item {\n  name: "Camera"\n  id: 1\n}\nitem {\n  name: "Mobile phone"\n  id: 2\n}\n'
    )
