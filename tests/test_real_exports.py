"""COCO and YOLO exports in the shapes Roboflow, CVAT, Label Studio and Ultralytics write
them (`export_shapes`), converted as a new user runs annoconv: ``annoconv convert EXPORT OUT
--to FORMAT``, the source's format inferred. Every image and box of the output is read back
by an independent consumer (TensorFlow, pycocotools, a plain parse of YOLO labels, the csv
module) and compared with what the export encodes, to float tolerance."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from export_shapes import (
    NAMES,
    Export,
    cvat_coco,
    cvat_yolo,
    label_studio_coco,
    label_studio_yolo,
    roboflow_coco,
    roboflow_yolo,
    ultralytics_yolo,
)
from factories import write
from PIL import Image

from annoconv.cli import main
from annoconv.formats import infer_format

Boxes = list[tuple[str, float, float, float, float]]
Found = dict[str, tuple[int, int, Boxes]]


def _ultralytics_relative(root: Path) -> Export:
    """coco8's own shape: the yaml in another folder, ``path`` relative to it."""
    return ultralytics_yolo(
        root / "datasets" / "coco8",
        yaml_at=root / "cfg" / "coco8.yaml",
        path_value="../datasets/coco8",
    )


def _label_studio_notes_only(root: Path) -> Export:
    return label_studio_yolo(root, with_classes_txt=False)


SHAPES: dict[str, tuple[Callable[[Path], Export], str]] = {
    "roboflow-yolo": (roboflow_yolo, "yolo"),
    "roboflow-yolo-without-test": (lambda root: roboflow_yolo(root, test_split=False), "yolo"),
    "roboflow-yolo-root-relative": (lambda root: roboflow_yolo(root, style="root"), "yolo"),
    "ultralytics-absolute-path": (ultralytics_yolo, "yolo"),
    "ultralytics-relative-path": (_ultralytics_relative, "yolo"),
    "ultralytics-txt-lists": (
        lambda root: ultralytics_yolo(root, lists=True, path_value="."),
        "yolo",
    ),
    "ultralytics-path-name-yaml-inside": (
        lambda root: ultralytics_yolo(root, path_value="coco8"),
        "yolo",
    ),
    "ultralytics-no-yaml": (lambda root: _without_yaml(ultralytics_yolo(root)), "yolo"),
    "label-studio-yolo": (label_studio_yolo, "yolo"),
    "label-studio-yolo-notes-only": (_label_studio_notes_only, "yolo"),
    "cvat-yolo": (cvat_yolo, "yolo"),
    "cvat-coco": (cvat_coco, "coco"),
    "cvat-coco-root-folder": (lambda root: _folder_of(cvat_coco(root)), "coco"),
    "cvat-coco-polygons-images-default": (
        lambda root: cvat_coco(root, polygons=True, images_folder="images/default"),
        "coco",
    ),
    "label-studio-coco": (label_studio_coco, "coco"),
    "label-studio-coco-windows": (lambda root: label_studio_coco(root, windows=True), "coco"),
    "roboflow-coco": (roboflow_coco, "coco"),
}


def _without_yaml(export: Export) -> Export:
    """coco8's folder alone: no names anywhere, so the class indices are the labels."""
    (export.source / "data.yaml").unlink()
    export.names = [str(index) for index in range(len(NAMES))]
    export.expected = {
        name: (width, height, [(str(NAMES.index(b[0])), *b[1:]) for b in boxes])
        for name, (width, height, boxes) in export.expected.items()
    }
    return export


def _folder_of(export: Export) -> Export:
    """The export passed as its root folder (``annotations/`` and ``images/`` in it)."""
    export.source = export.source.parent.parent
    return export


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The command's exit code and all it printed (the report goes to stderr)."""
    code = main(["convert", *args])
    printed = capsys.readouterr()
    return code, printed.out + printed.err


# --- reading the outputs back, each with an independent consumer ------------------------------


def tfrecord_boxes(out: Path) -> Found:
    from test_tfrecord import read_examples

    found: Found = {}
    for example in read_examples(sorted(out.parent.glob(f"{out.name}-*-of-*"))):
        width, height = int(example["image/width"]), int(example["image/height"])
        assert example["decoded_shape"][:2] == (height, width)
        name = Path(example["image/filename"].decode()).name
        labels = [t.decode() for t in example["image/object/class/text"]]
        corners = [example[f"image/object/bbox/{k}"] for k in ("xmin", "ymin", "xmax", "ymax")]
        boxes = [
            (label, x0 * width, y0 * height, x1 * width, y1 * height)
            for label, x0, y0, x1, y1 in zip(labels, *corners, strict=True)
        ]
        found[name] = (width, height, boxes)
    return found


def coco_boxes(out: Path) -> Found:
    from pycocotools.coco import COCO

    (path,) = out.glob("*.json")
    with redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    found: Found = {}
    for image in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        boxes = [
            (coco.cats[a["category_id"]]["name"], x, y, x + w, y + h)
            for a in anns
            for x, y, w, h in [a["bbox"]]
        ]
        found[Path(image["file_name"]).name] = (image["width"], image["height"], boxes)
    return found


def yolo_boxes(out: Path) -> Found:
    """A plain parse, as Ultralytics finds the labels: names from data.yaml, sizes from the
    copied images."""
    names = yaml.safe_load((out / "data.yaml").read_text())["names"]
    found: Found = {}
    for image in sorted((out / "images").rglob("*.jpg")):
        # Ultralytics' rule: the last /images/ of the path becomes /labels/.
        before, after = image.as_posix().rsplit("/images/", 1)
        label = Path(f"{before}/labels/{after}").with_suffix(".txt")
        with Image.open(image) as opened:
            width, height = opened.size
        boxes = []
        for line in label.read_text().splitlines():
            index, cx, cy, w, h = line.split()
            x0, y0 = (float(cx) - float(w) / 2) * width, (float(cy) - float(h) / 2) * height
            x1, y1 = (float(cx) + float(w) / 2) * width, (float(cy) + float(h) / 2) * height
            boxes.append((names[int(index)], x0, y0, x1, y1))
        found[image.name] = (width, height, boxes)
    return found


def csv_boxes(out: Path) -> Found:
    found: Found = {}
    with out.open(newline="") as handle:
        for row in csv.DictReader(handle):
            name = Path(row["filename"]).name
            size = (int(row["width"]), int(row["height"]))
            boxes = found.setdefault(name, (*size, []))[2]
            if row["class"]:
                corners = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
                boxes.append((row["class"], *corners))  # type: ignore[arg-type]
    return found


OUTPUTS: dict[str, tuple[str, Callable[[Path], Found], float]] = {
    "tfrecord": ("data.record", tfrecord_boxes, 1.2e-7),
    "coco": ("coco", coco_boxes, 1e-9),
    "yolo": ("yolo", yolo_boxes, 1e-9),
    "csv": ("boxes.csv", csv_boxes, 1e-9),
}


def assert_same_boxes(found: Found, expected: Found, tolerance: float) -> None:
    """Same images, sizes, labels in order, and corners within `tolerance` of the image's
    size (TFRecord keeps normalized float32: 1.2e-7; the others 1e-9)."""
    assert sorted(found) == sorted(expected)
    for name, (width, height, boxes) in expected.items():
        got_width, got_height, got = found[name]
        assert (got_width, got_height) == (width, height), name
        assert [b[0] for b in got] == [b[0] for b in boxes], (name, got, boxes)
        scale = (width, height, width, height)
        for g, w in zip(got, boxes, strict=True):
            got_normalized = [v / s for v, s in zip(g[1:], scale, strict=True)]
            want_normalized = [v / s for v, s in zip(w[1:], scale, strict=True)]
            assert got_normalized == pytest.approx(want_normalized, abs=tolerance), name


def counts(printed: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    images = re.search(r"images: (\d+) read, (\d+) written, (\d+) skipped", printed)
    boxes = re.search(r"boxes:  (\d+) read, (\d+) written, (\d+) skipped", printed)
    assert images and boxes, printed
    return (
        tuple(int(n) for n in images.groups()),  # type: ignore[return-value]
        tuple(int(n) for n in boxes.groups()),  # type: ignore[return-value]
    )


@pytest.mark.parametrize("to", list(OUTPUTS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_an_export_converts_as_a_new_user_runs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: str, to: str
) -> None:
    make, source_format = SHAPES[shape]
    export = make(tmp_path / "export")
    assert infer_format(str(export.source)) == source_format
    name, read_back, tolerance = OUTPUTS[to]
    out = tmp_path / "out" / name
    code, printed = run(capsys, str(export.source), str(out), "--to", to)
    assert code == 0, printed
    images = len(export.expected)
    boxes = sum(len(b) for _w, _h, b in export.expected.values())
    assert counts(printed) == ((images, images, 0), (boxes, boxes, 0))
    assert_same_boxes(read_back(out), export.expected, tolerance)
    if to in ("coco", "yolo"):  # the class names and their order, as the export gives them
        names = (
            [c["name"] for c in json.loads(next(out.glob("*.json")).read_text())["categories"]]
            if to == "coco"
            else list(yaml.safe_load((out / "data.yaml").read_text())["names"].values())
        )
        assert names == export.names


# --- shapes that need more than a conversion ---------------------------------------------------


@pytest.mark.parametrize("make", [roboflow_yolo, cvat_yolo], ids=["roboflow", "cvat"])
def test_yolo_exports_keep_their_splits_with_valid_as_val(
    tmp_path: Path, make: Callable[[Path], Export]
) -> None:
    from annoconv.formats.yolo import YoloReader

    export = make(tmp_path / "export")
    records = list(YoloReader(str(export.source)))
    assert {Path(r.filename).name: r.split for r in records} == {  # type: ignore[union-attr]
        name: {"valid": "val"}.get(split, split) for name, split in export.splits.items()
    }


def test_an_export_as_a_zip_says_to_unpack_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CVAT hands out its exports as zips; annotations are not read from inside archives."""
    export = cvat_yolo(tmp_path / "export")
    archive = tmp_path / "task_1-yolo 1.1.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(export.source.rglob("*")):
            bundle.write(path, path.relative_to(export.source).as_posix())
    code, printed = run(capsys, str(archive), str(tmp_path / "out.csv"))
    assert code == 2
    assert printed.strip() == (
        f"annoconv: error: {archive}: an archive; annotations are read from a folder or a "
        f"file, not from inside an archive (images are, with --images {archive}): unpack it "
        "and pass the folder (see annoconv convert --help)"
    )
    code, printed = run(capsys, str(archive), str(tmp_path / "out.csv"), "--from", "yolo")
    assert code == 2
    assert "not a YOLO dataset (a data.yaml, an obj.data or a folder): unpack it" in printed
    with zipfile.ZipFile(archive) as bundle:  # unpacked, it converts
        bundle.extractall(tmp_path / "unpacked")
    code, printed = run(capsys, str(tmp_path / "unpacked"), str(tmp_path / "out.csv"))
    assert code == 0, printed
    assert_same_boxes(csv_boxes(tmp_path / "out.csv"), export.expected, 1e-9)


def test_cvat_yolo_without_its_images_names_the_missing_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CVAT exports labels only unless "save images" is ticked."""
    export = cvat_yolo(tmp_path / "export")
    for image in (export.source / "obj_train_data").glob("*.jpg"):
        image.unlink()
    code, printed = run(capsys, str(export.source), str(tmp_path / "out.record"))
    labels = export.source / "obj_train_data"
    assert code == 1
    assert printed.strip() == (
        f"annoconv: error: {labels / 'street_01.txt'}: image {labels / 'street_01.jpg'} not found"
    )


def test_cvat_coco_images_elsewhere_are_found_with_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Images neither beside annotations/ nor given: one line asking for --images."""
    export = cvat_coco(tmp_path / "export")
    (tmp_path / "export" / "images").rename(tmp_path / "pictures")
    code, printed = run(capsys, str(export.source), str(tmp_path / "out.record"))
    assert code == 1
    lines = printed.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"annoconv: error: {export.source}: image 'street_01.jpg' not found")
    assert lines[0].endswith("pass the images folder with --images")
    out = tmp_path / "out" / "data.record"
    code, printed = run(
        capsys, str(export.source), str(out), "--images", str(tmp_path / "pictures")
    )
    assert code == 0, printed
    assert_same_boxes(tfrecord_boxes(out), export.expected, 1.2e-7)


def test_cvat_coco_with_a_missing_image_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = cvat_coco(tmp_path / "export")
    missing = tmp_path / "export" / "images" / "street_04.jpg"
    missing.unlink()
    code, printed = run(capsys, str(export.source), str(tmp_path / "out.record"))
    assert (code, printed.strip()) == (
        1,
        f"annoconv: error: {export.source}: image {missing} not found",
    )
    code, printed = run(
        capsys, str(export.source), str(tmp_path / "out.record"), "--on-error", "skip"
    )
    assert code == 0
    assert counts(printed) == ((5, 4, 1), (6, 4, 2))


def test_coco_to_coco_keeps_supercategories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = roboflow_coco(tmp_path / "export")
    code, printed = run(capsys, str(export.source), str(tmp_path / "out"), "--to", "coco")
    assert code == 0, printed
    document = json.loads((tmp_path / "out" / "instances.json").read_text())
    assert document["categories"] == [
        {"id": i + 1, "name": n, "supercategory": "streets-Ab3d"} for i, n in enumerate(NAMES)
    ]


def _write(path: Path, text: str) -> Path:
    return write(path, text)


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (
            lambda root: _write(
                root / "train" / "labels" / _label_of(root, "street_01"),
                "0 0.5 0.5 0.25\n",
            ),
            r"train/labels/street_01_jpg\.rf\.[0-9a-f]+\.txt: line 1: expected 'class cx cy w h'"
            r" or a segment 'class x1 y1 x2 y2 x3 y3 \.\.\.', got 4 values$",
        ),
        (
            lambda root: _write(
                root / "valid" / "labels" / _label_of(root, "street_04"),
                "0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.1 0.1\n",
            ),
            r"valid/labels/street_04_jpg\.rf\.[0-9a-f]+\.txt: line 2: class 3 is not in names"
            r" \(0\.\.2\)$",
        ),
    ],
)
def test_broken_label_lines_are_one_line_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], break_it: Any, message: str
) -> None:
    export = roboflow_yolo(tmp_path / "export")
    break_it(export.source)
    code, printed = run(capsys, str(export.source), str(tmp_path / "out.csv"))
    assert code == 1
    assert "\n" not in printed.strip()
    assert re.search(message, printed.strip()), printed


def _label_of(root: Path, stem: str) -> str:
    (label,) = root.rglob(f"{stem}_jpg.rf.*.txt")
    return label.name


@pytest.mark.parametrize("images", ["emptied", "removed"])
def test_labels_without_their_images_name_each_label_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], images: str
) -> None:
    export = label_studio_yolo(tmp_path / "export")
    folder = export.source / "images"
    for image in folder.iterdir():
        image.unlink()
    if images == "removed":
        folder.rmdir()
    assert infer_format(str(export.source)) == "yolo"
    code, printed = run(capsys, str(export.source), str(tmp_path / "out.csv"))
    first = sorted((export.source / "labels").iterdir())[0]
    assert (code, printed.strip()) == (
        1,
        f"annoconv: error: {first}: no image {first.stem}.* for this label file in {folder}",
    )
    code, printed = run(capsys, str(export.source), str(tmp_path / "out.csv"), "--on-error", "skip")
    assert code == 0
    assert counts(printed) == ((5, 0, 5), (6, 0, 6))  # every label file reported, boxes counted
    assert printed.count("for this label file in") == 5


def test_a_roboflow_split_missing_its_images_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = roboflow_yolo(tmp_path / "export")
    for image in (export.source / "valid" / "images").iterdir():
        image.unlink()
    code, printed = run(capsys, str(export.source), str(tmp_path / "out.csv"), "--on-error", "skip")
    assert code == 0
    assert counts(printed) == ((5, 4, 1), (6, 4, 2))
    assert re.search(r"skipped .*valid/labels/street_04_jpg\.rf\.[0-9a-f]+\.txt: no image", printed)


def test_notes_json_alone_is_not_taken_for_coco(tmp_path: Path) -> None:
    from annoconv.formats.coco import is_coco

    export = label_studio_yolo(tmp_path / "export")
    assert not is_coco(str(export.source / "notes.json"))
    code = main(["convert", str(export.source), str(tmp_path / "o.csv"), "--from", "coco"])
    assert code == 2


# --- a source's own splits kept apart (--keep-splits) -------------------------------------------


def _split_of_output(path: Path) -> str:
    """`images/<split>/x.jpg` -> split."""
    return path.parent.name


def test_roboflow_yolo_to_yolo_keeps_train_valid_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = roboflow_yolo(tmp_path / "export")
    out = tmp_path / "yolo"
    code, printed = run(capsys, str(export.source), str(out), "--to", "yolo", "--keep-splits")
    assert code == 0, printed
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert (data["train"], data["val"], data["test"]) == (
        "images/train",
        "images/val",
        "images/test",
    )
    written = {image.name: _split_of_output(image) for image in (out / "images").rglob("*.jpg")}
    assert written == {name: {"valid": "val"}.get(s, s) for name, s in export.splits.items()}
    assert_same_boxes(yolo_boxes(out), export.expected, 1e-9)


def test_roboflow_coco_to_coco_keeps_one_file_per_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pycocotools.coco import COCO

    export = roboflow_coco(tmp_path / "export")
    out = tmp_path / "coco"
    code, printed = run(capsys, str(export.source), str(out), "--to", "coco", "--keep-splits")
    assert code == 0, printed
    found: Found = {}
    for folder in ("train", "valid", "test"):
        path = out / f"instances_{folder}.json"
        with redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
        names = {Path(image["file_name"]).name for image in coco.loadImgs(coco.getImgIds())}
        assert names == {name for name, split in export.splits.items() if split == folder}
        for image in coco.loadImgs(coco.getImgIds()):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
            boxes = [
                (coco.cats[a["category_id"]]["name"], x, y, x + w, y + h)
                for a in anns
                for x, y, w, h in [a["bbox"]]
            ]
            found[Path(image["file_name"]).name] = (image["width"], image["height"], boxes)
    assert sorted(path.name for path in out.glob("*.json")) == [
        "instances_test.json",
        "instances_train.json",
        "instances_valid.json",
    ]
    assert_same_boxes(found, export.expected, 1e-9)


def test_kept_splits_are_the_same_on_the_processes_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """YOLO -> TFRecord with the source's splits: PREFIX-train, -val, -test shards, byte for
    byte the same on two worker processes as in this process."""
    export = roboflow_yolo(tmp_path / "export")
    outputs = {}
    for engine in ("local", "processes"):
        out = tmp_path / engine / "data.record"
        flags = ["--engine", engine] + (["--workers", "2"] if engine == "processes" else [])
        code, printed = run(capsys, str(export.source), str(out), "--keep-splits", *flags)
        assert code == 0, printed
        outputs[engine] = {p.name: p.read_bytes() for p in out.parent.glob("data-*.record-*")}
    assert sorted(outputs["local"]) == [
        "data-test.record-00000-of-00001",
        "data-train.record-00000-of-00001",
        "data-val.record-00000-of-00001",
    ]
    assert outputs["processes"] == outputs["local"]
    for split, count in (("train", 3), ("val", 1), ("test", 1)):
        found = tfrecord_boxes(out.parent / f"data-{split}.record")
        assert len(found) == count
        assert_same_boxes(found, {k: export.expected[k] for k in found}, 1.2e-7)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--keep-splits: 2 of 2 images have no split in the source"),
        (["--split", "train=0.5,test=0.5"], "keep_splits keeps the source's own splits"),
    ],
)
def test_keep_splits_without_source_splits_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    from factories import Box, draw_image, labelimg_xml

    for name in ("a", "b"):
        draw_image(tmp_path / "voc" / f"{name}.jpg", 32, 24)
        write(
            tmp_path / "voc" / f"{name}.xml",
            labelimg_xml(f"{name}.jpg", 32, 24, [Box("cat", 1, 2, 10, 12)]),
        )
    out = tmp_path / "out"
    code, printed = run(capsys, str(tmp_path / "voc"), str(out / "x.csv"), "--keep-splits", *extra)
    assert code == 2
    assert message in printed and len(printed.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


# --- stats of sources without pixel sizes ---------------------------------------------------------


def test_stats_of_a_yolo_export_read_image_sizes_from_headers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """YOLO keeps normalized boxes: `annoconv stats` reads each image's header, so box sizes
    are in pixels (those the export encodes), and `--no-image-sizes` leaves them unknown."""
    export = roboflow_yolo(tmp_path / "export")
    assert main(["stats", str(export.source), "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    boxes = [box for _w, _h, listed in export.expected.values() for box in listed]
    widths = sorted(x1 - x0 for _label, x0, _y0, x1, _y1 in boxes)
    heights = sorted(y1 - y0 for _label, _x0, y0, _x1, y1 in boxes)
    sizes = sorted((w * h, (w, h)) for w, h, _listed in export.expected.values())
    assert result["unknown_size"] == 0 and result["boxes_without_pixel_size"] == 0
    assert (result["min_size"], result["max_size"]) == ([*sizes[0][1]], [*sizes[-1][1]])
    assert result["box_width"]["count"] == len(boxes)
    assert result["box_width"]["percentiles"]["p0"] == pytest.approx(widths[0], abs=1e-6)
    assert result["box_width"]["percentiles"]["p100"] == pytest.approx(widths[-1], abs=1e-6)
    assert result["box_height"]["percentiles"]["p100"] == pytest.approx(heights[-1], abs=1e-6)

    assert main(["stats", str(export.source), "--json", "-q", "--no-image-sizes"]) == 0
    unsized = json.loads(capsys.readouterr().out)
    assert unsized["unknown_size"] == len(export.expected)
    assert unsized["boxes_without_pixel_size"] == len(boxes)


def test_stats_stop_looking_for_images_that_are_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A normalized source whose images are not beside it (an Open Images CSV alone): the
    stats count the sizes as unknown and stop looking after GIVE_UP_AFTER failed lookups,
    not one filesystem search per row."""
    from annoconv.io.images import RecordImages
    from annoconv.sources import open_reader
    from annoconv.stats import GIVE_UP_AFTER, dataset_stats

    rows = ["ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax"]
    rows += [f"img{index:04d},xclick,/m/01,1,0.1,0.5,0.2,0.6" for index in range(500)]
    source = write(tmp_path / "train-annotations-bbox.csv", "\n".join(rows) + "\n")
    looked = []
    real = RecordImages.info
    monkeypatch.setattr(
        RecordImages, "info", lambda finder, record: looked.append(1) or real(finder, record)
    )
    result = dataset_stats(open_reader(str(source)), image_sizes=True)
    assert result.images == 500 and result.unknown_size == 500
    assert result.boxes_without_pixel_size == 500
    assert GIVE_UP_AFTER <= len(looked) <= GIVE_UP_AFTER + 64  # the lookahead window


@pytest.mark.parametrize(
    ("make", "to", "extra", "splits"),
    [
        (roboflow_yolo, "yolo", [], "train, val, test"),
        (roboflow_coco, "coco", [], "test, train, valid"),  # the files in name order
        (roboflow_coco, "yolo", ["--images-mode", "none"], "test, train, valid"),  # batches
    ],
)
def test_splits_written_together_are_named_with_the_flag_that_keeps_them(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Export],
    to: str,
    extra: list[str],
    splits: str,
) -> None:
    export = make(tmp_path / "export")
    code, printed = run(capsys, str(export.source), str(tmp_path / "one"), "--to", to, *extra)
    assert code == 0, printed
    assert f"the source's splits {splits} were written as one dataset (--keep-splits" in printed
    code, printed = run(
        capsys, str(export.source), str(tmp_path / "kept"), "--to", to, "--keep-splits", *extra
    )
    assert code == 0, printed
    assert "written as one dataset" not in printed
