"""COCO and YOLO fixtures shaped like real exports: COCO's own files (categories last,
non-contiguous ids, crowd RLEs, polygon-only annotations), Roboflow's split folders (with
their category 0), result files; Ultralytics and Darknet YOLO folders. Images are drawn
with Pillow (`factories.draw_image`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from factories import draw_image, write

# COCO-like categories: ids not contiguous, with supercategories.
CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
    {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
]

# (file_name, width, height, [(category_id, [x, y, w, h]), ...])
IMAGES: list[tuple[str, int, int, list[tuple[int, list[float]]]]] = [
    ("000000000139.jpg", 640, 426, [(1, [412.8, 157.61, 53.05, 138.01]), (18, [0.0, 0.5, 20, 30])]),
    ("sub/000000000285.png", 320, 240, [(90, [10.25, 20.5, 100.1, 50.7])]),
    ("000000000632.jpg", 200, 100, []),
    ("000000000724.jpg", 375, 500, [(18, [473.07 - 200, 395.93 - 300, 90.5, 100.25])]),
]


def coco_document(
    images: Sequence[tuple[str, int, int, list[tuple[int, list[float]]]]] = IMAGES,
    *,
    categories: Sequence[dict[str, Any]] = CATEGORIES,
    order: Sequence[str] = ("info", "licenses", "images", "annotations", "categories"),
    first_image_id: int = 1,
    string_ids: bool = False,
) -> dict[str, Any]:
    """A COCO detection document with its keys in `order` (COCO's own: categories last)."""
    image_entries, annotations = [], []
    for index, (name, width, height, boxes) in enumerate(images):
        image_id: int | str = first_image_id + index * 7
        if string_ids:
            image_id = f"img-{image_id}"
        image_entries.append(
            {"license": 1, "file_name": name, "height": height, "width": width, "id": image_id}
        )
        for category, bbox in boxes:
            annotations.append(
                {
                    "segmentation": [
                        [bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1], bbox[0], bbox[1] + bbox[3]]
                    ],
                    "area": bbox[2] * bbox[3],
                    "iscrowd": 0,
                    "image_id": image_id,
                    "bbox": list(bbox),
                    "category_id": category,
                    "id": 1000 + len(annotations),
                }
            )
    sections: dict[str, Any] = {
        "info": {"description": 'a "annotations": [ decoy ]', "year": 2017},
        "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "http://example.org"}],
        "images": image_entries,
        "annotations": annotations,
        "categories": list(categories),
    }
    return {key: sections[key] for key in order}


def write_coco(path: Path, document: Any, *, indent: int | None = None) -> Path:
    return write(path, json.dumps(document, indent=indent))


def draw_images(folder: Path, images: Sequence[tuple[str, int, int, Any]] = IMAGES) -> None:
    for name, width, height, _boxes in images:
        draw_image(folder / name, width, height)


def pixel_boxes(
    images: Sequence[tuple[str, int, int, list[tuple[int, list[float]]]]] = IMAGES,
    categories: Sequence[dict[str, Any]] = CATEGORIES,
) -> dict[str, list[tuple[str, float, float, float, float]]]:
    """{file name: [(label, xmin, ymin, xmax, ymax)]} as the reader must give them."""
    names = {c["id"]: c["name"] for c in categories}
    return {
        name: [(names[c], b[0], b[1], b[0] + b[2], b[1] + b[3]) for c, b in boxes]
        for name, _w, _h, boxes in images
    }
