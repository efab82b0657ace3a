"""Datasets in the exact shapes annotation tools export them, written by code: Roboflow's
YOLOv5/v8 and COCO exports, Ultralytics' own layout (coco8), Label Studio's YOLO and COCO
exports, CVAT's "YOLO 1.1" (Darknet) and "COCO 1.0" exports.

The layouts follow the tools' documentation and exporters (cited in docs/formats.md):

- Roboflow YOLO: ``data.yaml`` (``train: ../train/images``, ``val: ../valid/images``,
  ``test: ../test/images``, ``nc``, ``names`` list, a ``roboflow:`` block; newer exports
  write ``train: train/images``), split folders ``train/``, ``valid/``, ``test/`` each with
  ``images/`` and ``labels/``, README files; image names ``<stem>_jpg.rf.<hash>.jpg``.
- Ultralytics (coco8): ``images/{train,val}``, ``labels/{train,val}``, a yaml with ``path``,
  ``train: images/train``, ``val: images/val``, ``names`` as an index map; or ``train.txt``
  listing ``./images/train/x.jpg``.
- Label Studio YOLO: ``classes.txt``, ``notes.json`` (``categories`` ``[{id, name}]`` from 0,
  ``info``), flat ``images/`` and ``labels/``; numbers written as Python floats.
- CVAT YOLO 1.1: ``obj.data`` (``classes``, ``train = data/train.txt``,
  ``valid = data/valid.txt``, ``names = data/obj.names``, ``backup = backup/``),
  ``obj.names``, ``train.txt`` listing ``data/obj_train_data/x.jpg`` (``valid.txt``:
  ``data/obj_valid_data/``), labels beside the images.
- CVAT COCO 1.0: ``annotations/instances_default.json`` (``licenses`` ``[{name: "", id: 0,
  url: ""}]``, ``info`` of empty strings, categories ``{id, name, supercategory: ""}`` from 1,
  images with ``license``, ``flickr_url``, ``coco_url``, ``date_captured``, annotations with
  ``segmentation: []`` or polygons, float ``bbox`` and ``area``, ``attributes:
  {occluded: false, rotation: 0.0}``), images in ``images/`` (``images/default/`` in newer
  CVAT versions).
- Label Studio COCO: ``result.json`` (keys images, categories, annotations, info; image and
  category ids from 0, ``file_name`` ``images/<hash>-name.jpg``, annotations with ``ignore``),
  images in ``images/``.
- Roboflow COCO: ``train/_annotations.coco.json`` per split, images beside it, category 0
  the workspace (the supercategory of the others).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from factories import draw_image, write

NAMES = ["car", "traffic light", "person"]


def _tag(name: str) -> str:
    """A stable hex tag, as tools put hashes in exported file names."""
    return f"{zlib.crc32(name.encode()):08x}"


@dataclass
class Shot:
    """One image of a fixture: its file name, split, pixel size and the boxes its export
    encodes, as (class index, the numbers the label file or JSON holds)."""

    name: str
    split: str
    width: int
    height: int
    boxes: list[tuple[int, tuple[float, float, float, float]]] = field(default_factory=list)


# Boxes given in pixels (xmin, ymin, xmax, ymax); each export encodes them its own way.
PIXEL_SHOTS: list[
    tuple[str, str, int, int, list[tuple[int, tuple[float, float, float, float]]]]
] = [
    ("street_01", "train", 64, 48, [(0, (3.5, 10.25, 40.0, 30.75)), (2, (50.0, 2.0, 63.0, 47.0))]),
    ("street_02", "train", 80, 60, [(1, (10.0, 5.0, 14.5, 17.25))]),
    ("street_03", "train", 40, 40, []),  # a negative image
    ("street_04", "val", 50, 70, [(2, (0.0, 0.0, 50.0, 70.0)), (0, (12.3, 45.6, 33.3, 66.6))]),
    ("street_05", "test", 72, 36, [(1, (20.0, 4.0, 30.0, 20.0))]),
]


@dataclass
class Export:
    """A written export: what a user passes to annoconv (`source`) and what it encodes:
    {image file name: (width, height, [(label, xmin, ymin, xmax, ymax) in pixels])}."""

    source: Path
    expected: dict[str, tuple[int, int, list[tuple[str, float, float, float, float]]]]
    names: list[str]
    splits: dict[str, str] = field(default_factory=dict)  # image file name -> split


def _yolo_numbers(
    box: tuple[float, float, float, float], width: int, height: int, digits: int | None
) -> tuple[float, float, float, float]:
    """cx, cy, w, h normalized, rounded to `digits` decimals as exporters write them (None:
    Python's shortest float text, as Label Studio writes them)."""
    x0, y0, x1, y1 = box
    values = ((x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height)
    if digits is None:
        return values
    return tuple(float(f"{v:.{digits}f}") for v in values)  # type: ignore[return-value]


def _yolo_text(numbers: tuple[float, float, float, float], digits: int | None) -> str:
    if digits is None:
        return " ".join(str(v) for v in numbers)
    return " ".join(f"{v:.{digits}f}" for v in numbers)


def _yolo_pixels(
    numbers: tuple[float, float, float, float], width: int, height: int
) -> tuple[float, float, float, float]:
    cx, cy, w, h = numbers
    return (
        (cx - w / 2) * width,
        (cy - h / 2) * height,
        (cx + w / 2) * width,
        (cy + h / 2) * height,
    )


def write_yolo_images(
    shots: list[tuple[str, str, int, int, list[tuple[int, tuple[float, float, float, float]]]]],
    image_path: dict[str, Path],
    label_path: dict[str, Path],
    *,
    digits: int | None = 6,
    names: list[str] = NAMES,
) -> dict[str, tuple[int, int, list[tuple[str, float, float, float, float]]]]:
    """Draws each image at `image_path[name]`, writes its label file at `label_path[name]`
    (none for a negative image when the path is missing), and gives what they encode."""
    expected = {}
    for name, _split, width, height, boxes in shots:
        image = image_path[name]
        draw_image(image, width, height)
        lines, encoded = [], []
        for index, box in boxes:
            numbers = _yolo_numbers(box, width, height, digits)
            lines.append(f"{index} {_yolo_text(numbers, digits)}\n")
            encoded.append((names[index], *_yolo_pixels(numbers, width, height)))
        if name in label_path:
            write(label_path[name], "".join(lines))
        expected[image.name] = (width, height, encoded)
    return expected


# --- YOLO exports ---------------------------------------------------------------------------


def roboflow_yolo(root: Path, *, style: str = "parent", test_split: bool = True) -> Export:
    """Roboflow's "YOLOv8" export. `style` "parent": ``train: ../train/images`` (the long
    standing form); "root": ``train: train/images`` (newer exports). Without `test_split`
    there is no ``test/`` folder, but the yaml still names it, as Roboflow's does."""
    folders = {"train": "train", "val": "valid", "test": "test"}
    image_path, label_path, splits = {}, {}, {}
    shots = [shot for shot in PIXEL_SHOTS if test_split or shot[1] != "test"]
    for name, split, *_ in shots:
        folder = root / folders[split]
        file_name = f"{name}_jpg.rf.{_tag(name)}.jpg"
        image_path[name] = folder / "images" / file_name
        label_path[name] = folder / "labels" / f"{Path(file_name).stem}.txt"
        splits[file_name] = folders[split]
    expected = write_yolo_images(shots, image_path, label_path)
    prefix = "../" if style == "parent" else ""
    write(
        root / "data.yaml",
        f"train: {prefix}train/images\nval: {prefix}valid/images\ntest: {prefix}test/images\n\n"
        f"nc: {len(NAMES)}\nnames: {json.dumps(NAMES)}\n\n"
        "roboflow:\n  workspace: city-lab\n  project: streets\n  version: 3\n"
        "  license: CC BY 4.0\n  url: https://universe.roboflow.com/city-lab/streets/dataset/3\n",
    )
    write(root / "README.roboflow.txt", "\nStreets - v3 2024-01-01\n==============\n")
    write(root / "README.dataset.txt", "# Streets > 2024-01-01\n")
    return Export(root, expected, NAMES, splits)


def ultralytics_yolo(
    root: Path, *, yaml_at: Path | None = None, path_value: str | None = None, lists: bool = False
) -> Export:
    """Ultralytics' own layout (coco8): ``images/{train,val}`` and ``labels/{train,val}``
    under the dataset root, a yaml with ``path`` and ``names`` as an index map. `yaml_at`
    is where the yaml goes (default ``root/data.yaml``), `path_value` its ``path`` (default
    the root's absolute path). With `lists`, ``train``/``val`` are ``train.txt``/``val.txt``
    listing ``./images/<split>/x.jpg``, as Ultralytics' own lists do."""
    shots = [s for s in PIXEL_SHOTS if s[1] != "test"]
    image_path, label_path, splits = {}, {}, {}
    for name, split, *_ in shots:
        image_path[name] = root / "images" / split / f"{name}.jpg"
        if name != "street_03":  # the negative image has no label file at all
            label_path[name] = root / "labels" / split / f"{name}.txt"
        splits[f"{name}.jpg"] = split
    expected = write_yolo_images(shots, image_path, label_path)
    yaml_file = yaml_at or root / "data.yaml"
    path_text = path_value if path_value is not None else str(root)
    if lists:
        for split in ("train", "val"):
            listed = [f"./images/{split}/{n}.jpg\n" for n, s, *_ in shots if s == split]
            write(root / f"{split}.txt", "".join(listed))
        splits_text = "train: train.txt\nval: val.txt\n"
    else:
        splits_text = "train: images/train # train images (relative to 'path')\nval: images/val\n"
    names_text = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    write(
        yaml_file,
        "# Ultralytics YOLO, AGPL-3.0 license\n"
        f"path: {path_text} # dataset root dir\n{splits_text}test: # test images (optional)\n\n"
        f"# Classes\nnames:\n{names_text}",
    )
    return Export(yaml_file if yaml_at else root, expected, NAMES, splits)


def label_studio_yolo(root: Path, *, with_classes_txt: bool = True) -> Export:
    """Label Studio's YOLO export: ``classes.txt``, ``notes.json``, flat ``images/`` and
    ``labels/``; image names prefixed with Label Studio's upload hash."""
    image_path, label_path, splits = {}, {}, {}
    for name, *_ in PIXEL_SHOTS:
        file_name = f"{_tag(name)}-{name}.jpg"
        image_path[name] = root / "images" / file_name
        label_path[name] = root / "labels" / f"{Path(file_name).stem}.txt"
        splits[file_name] = "train"
    expected = write_yolo_images(PIXEL_SHOTS, image_path, label_path, digits=None)
    if with_classes_txt:
        write(root / "classes.txt", "".join(f"{n}\n" for n in NAMES))
    notes = {
        "categories": [{"id": i, "name": n} for i, n in enumerate(NAMES)],
        "info": {"year": 2024, "version": "1.0", "contributor": "Label Studio"},
    }
    write(root / "notes.json", json.dumps(notes, indent=2))
    return Export(root, expected, NAMES, splits)


def cvat_yolo(root: Path) -> Export:
    """CVAT's "YOLO 1.1" export (Darknet) of a task with a Train and a Validation subset:
    ``obj.data``, ``obj.names``, ``train.txt`` and ``valid.txt`` listing
    ``data/obj_<subset>_data/x.jpg``, each label beside its image (CVAT writes only the
    subsets ``train`` and ``valid``)."""
    subsets = {"train": "train", "val": "valid", "test": "valid"}
    image_path, label_path, splits = {}, {}, {}
    listed: dict[str, list[str]] = {"train": [], "valid": []}
    for name, split, *_ in PIXEL_SHOTS:
        folder = f"obj_{subsets[split]}_data"
        image_path[name] = root / folder / f"{name}.jpg"
        label_path[name] = root / folder / f"{name}.txt"
        listed[subsets[split]].append(f"data/{folder}/{name}.jpg\n")
        splits[f"{name}.jpg"] = subsets[split]
    expected = write_yolo_images(PIXEL_SHOTS, image_path, label_path)
    write(root / "obj.names", "".join(f"{n}\n" for n in NAMES))
    write(
        root / "obj.data",
        f"classes = {len(NAMES)}\ntrain = data/train.txt\nvalid = data/valid.txt\n"
        "names = data/obj.names\nbackup = backup/\n",
    )
    for subset, lines in listed.items():
        write(root / f"{subset}.txt", "".join(lines))
    return Export(root, expected, NAMES, splits)


# --- COCO exports ---------------------------------------------------------------------------


def _coco_pixels(
    bbox: list[float],
) -> tuple[float, float, float, float]:
    x, y, w, h = bbox
    return (x, y, x + w, y + h)


def cvat_coco(root: Path, *, polygons: bool = False, images_folder: str = "images") -> Export:
    """CVAT's "COCO 1.0" export: ``annotations/instances_default.json`` and the images in
    `images_folder` (``images`` or, in newer versions, ``images/default``)."""
    categories = [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(NAMES)]
    images, annotations, expected = [], [], {}
    for number, (name, _split, width, height, boxes) in enumerate(PIXEL_SHOTS, 1):
        file_name = f"{name}.jpg"
        draw_image(root / images_folder / file_name, width, height)
        images.append(
            {
                "id": number,
                "width": width,
                "height": height,
                "file_name": file_name,
                "license": 0,
                "flickr_url": "",
                "coco_url": "",
                "date_captured": 0,
            }
        )
        encoded = []
        for index, (x0, y0, x1, y1) in boxes:
            bbox = [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)]
            segmentation = [[x0, y0, x1, y0, x1, y1, x0, y1]] if polygons else []
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": number,
                    "category_id": index + 1,
                    "segmentation": segmentation,
                    "area": float(bbox[2] * bbox[3]),
                    "bbox": bbox,
                    "iscrowd": 0,
                    "attributes": {"occluded": False, "rotation": 0.0},
                }
            )
            encoded.append((NAMES[index], *_coco_pixels(bbox)))
        expected[file_name] = (width, height, encoded)
    document = {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {
            "contributor": "",
            "date_created": "",
            "description": "",
            "url": "",
            "version": "",
            "year": "",
        },
        "categories": categories,
        "images": images,
        "annotations": annotations,
    }
    path = write(root / "annotations" / "instances_default.json", json.dumps(document))
    return Export(path, expected, NAMES)


def label_studio_coco(root: Path, *, windows: bool = False) -> Export:
    """Label Studio's COCO export: ``result.json`` beside ``images/``; ``file_name`` is
    ``images/<hash>-name.jpg`` (``images\\...`` when exported on Windows)."""
    separator = "\\" if windows else "/"
    categories = [{"id": i, "name": n} for i, n in enumerate(NAMES)]
    images, annotations, expected = [], [], {}
    for number, (name, _split, width, height, boxes) in enumerate(PIXEL_SHOTS):
        file_name = f"{_tag(name)}-{name}.jpg"
        draw_image(root / "images" / file_name, width, height)
        images.append(
            {
                "width": width,
                "height": height,
                "id": number,
                "file_name": f"images{separator}{file_name}",
            }
        )
        encoded = []
        for index, (x0, y0, x1, y1) in boxes:
            bbox = [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]  # Label Studio writes ints
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": number,
                    "category_id": index,
                    "segmentation": [],
                    "bbox": bbox,
                    "ignore": 0,
                    "iscrowd": 0,
                    "area": bbox[2] * bbox[3],
                }
            )
            encoded.append((NAMES[index], *_coco_pixels([float(v) for v in bbox])))
        expected[file_name] = (width, height, encoded)
    document = {
        "images": images,
        "categories": categories,
        "annotations": annotations,
        "info": {
            "year": 2024,
            "version": "1.0",
            "description": "",
            "contributor": "Label Studio",
            "url": "",
            "date_created": "2024-01-01 10:00:00.000000",
        },
    }
    write(root / "result.json", json.dumps(document, indent=2))
    return Export(root, expected, NAMES)


def roboflow_coco(root: Path) -> Export:
    """Roboflow's "COCO" export: ``train/``, ``valid/``, ``test/`` each holding its images
    and ``_annotations.coco.json``; category 0 is the workspace."""
    folders = {"train": "train", "val": "valid", "test": "test"}
    categories = [{"id": 0, "name": "streets-Ab3d", "supercategory": "none"}] + [
        {"id": i + 1, "name": n, "supercategory": "streets-Ab3d"} for i, n in enumerate(NAMES)
    ]
    expected, splits = {}, {}
    for split, folder in folders.items():
        images, annotations = [], []
        for name, shot_split, width, height, boxes in PIXEL_SHOTS:
            if shot_split != split:
                continue
            file_name = f"{name}_jpg.rf.{_tag(name)}.jpg"
            draw_image(root / folder / file_name, width, height)
            image_id = len(images)
            images.append(
                {
                    "id": image_id,
                    "license": 1,
                    "file_name": file_name,
                    "height": height,
                    "width": width,
                    "date_captured": "2024-01-01T10:00:00+00:00",
                }
            )
            encoded = []
            for index, (x0, y0, x1, y1) in boxes:
                bbox = [x0, y0, round(x1 - x0, 3), round(y1 - y0, 3)]
                annotations.append(
                    {
                        "id": len(annotations),
                        "image_id": image_id,
                        "category_id": index + 1,
                        "bbox": bbox,
                        "area": bbox[2] * bbox[3],
                        "segmentation": [],
                        "iscrowd": 0,
                    }
                )
                encoded.append((NAMES[index], *_coco_pixels(bbox)))
            expected[file_name] = (width, height, encoded)
            splits[file_name] = folder
        document = {
            "info": {"year": "2024", "version": "3", "description": "Exported from roboflow.com"},
            "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/"}],
            "categories": categories,
            "images": images,
            "annotations": annotations,
        }
        write(root / folder / "_annotations.coco.json", json.dumps(document))
    write(root / "README.roboflow.txt", "\nStreets - v3 2024-01-01\n")
    return Export(root, expected, NAMES, splits)
