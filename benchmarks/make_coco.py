"""Generate a COCO detection JSON at train2017 scale, for benchmarks.

The shape follows the real ``instances_train2017.json`` (GUIDE §3): the keys ``info``,
``licenses``, ``images``, ``annotations``, ``categories`` in that order (categories last, so
a reader meets the annotations before it knows the class names), 118,287 images with integer
ids up to 581,929 in no particular order, 860,001 annotations in an order unrelated to their
images (so they must be grouped), 80 categories with COCO's non-contiguous ids 1-90 and their
supercategories, boxes ``[x, y, w, h]`` with two decimals, polygon segmentations of 8-60
points with two decimals, and about 1% crowd annotations with uncompressed RLE
(``{"counts": [...], "size": [h, w]}``). Images get COCO's usual sizes (640x480, 640x427,
...). No image files are written: the benchmark converts annotations only.

Run: ``python benchmarks/make_coco.py /tmp/coco [--images 118287] [--annotations 860001]
[--seed 1]``. Writes ``OUT/instances_train2017.json``, streaming (a chunk of annotations at
a time, never the whole file in memory). Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

IMAGES = 118_287
ANNOTATIONS = 860_001
CHUNK = 20_000
CROWD_SHARE = 0.009
SIZES = ((640, 480), (640, 427), (480, 640), (500, 375), (640, 512), (427, 640), (612, 612))
# COCO's 80 detection classes: (id, name, supercategory); ids 12, 26, 29, 30, 45, 66, 68, 69,
# 71, 83 and 91 are unused, as in the real file.
CATEGORIES = (
    (1, "person", "person"),
    (2, "bicycle", "vehicle"),
    (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"),
    (6, "bus", "vehicle"),
    (7, "train", "vehicle"),
    (8, "truck", "vehicle"),
    (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"),
    (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"),
    (14, "parking meter", "outdoor"),
    (15, "bench", "outdoor"),
    (16, "bird", "animal"),
    (17, "cat", "animal"),
    (18, "dog", "animal"),
    (19, "horse", "animal"),
    (20, "sheep", "animal"),
    (21, "cow", "animal"),
    (22, "elephant", "animal"),
    (23, "bear", "animal"),
    (24, "zebra", "animal"),
    (25, "giraffe", "animal"),
    (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"),
    (31, "handbag", "accessory"),
    (32, "tie", "accessory"),
    (33, "suitcase", "accessory"),
    (34, "frisbee", "sports"),
    (35, "skis", "sports"),
    (36, "snowboard", "sports"),
    (37, "sports ball", "sports"),
    (38, "kite", "sports"),
    (39, "baseball bat", "sports"),
    (40, "baseball glove", "sports"),
    (41, "skateboard", "sports"),
    (42, "surfboard", "sports"),
    (43, "tennis racket", "sports"),
    (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"),
    (47, "cup", "kitchen"),
    (48, "fork", "kitchen"),
    (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"),
    (51, "bowl", "kitchen"),
    (52, "banana", "food"),
    (53, "apple", "food"),
    (54, "sandwich", "food"),
    (55, "orange", "food"),
    (56, "broccoli", "food"),
    (57, "carrot", "food"),
    (58, "hot dog", "food"),
    (59, "pizza", "food"),
    (60, "donut", "food"),
    (61, "cake", "food"),
    (62, "chair", "furniture"),
    (63, "couch", "furniture"),
    (64, "potted plant", "furniture"),
    (65, "bed", "furniture"),
    (67, "dining table", "furniture"),
    (70, "toilet", "furniture"),
    (72, "tv", "electronic"),
    (73, "laptop", "electronic"),
    (74, "mouse", "electronic"),
    (75, "remote", "electronic"),
    (76, "keyboard", "electronic"),
    (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"),
    (79, "oven", "appliance"),
    (80, "toaster", "appliance"),
    (81, "sink", "appliance"),
    (82, "refrigerator", "appliance"),
    (84, "book", "indoor"),
    (85, "clock", "indoor"),
    (86, "vase", "indoor"),
    (87, "scissors", "indoor"),
    (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"),
    (90, "toothbrush", "indoor"),
)


def write_coco(path: Path, images: int, annotations: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.choice(581_929, size=images, replace=False) + 1
    sizes = rng.integers(0, len(SIZES), size=images)
    with path.open("w", encoding="utf-8") as out:
        out.write('{"info": {"description": "COCO-shaped benchmark data", "version": "1.0"')
        out.write(', "year": 2017, "contributor": "annoconv benchmarks"}')
        out.write(', "licenses": [{"url": "http://example.org/license", "id": 1, "name": "x"}]')
        out.write(', "images": [')
        for index in range(images):
            width, height = SIZES[sizes[index]]
            image_id = int(ids[index])
            out.write(", " if index else "")
            out.write(
                f'{{"license": 1, "file_name": "{image_id:012d}.jpg", '
                f'"coco_url": "http://images.example.org/train2017/{image_id:012d}.jpg", '
                f'"height": {height}, "width": {width}, '
                f'"date_captured": "2013-11-14 11:18:45", "id": {image_id}}}'
            )
        out.write('], "annotations": [')
        written = 0
        while written < annotations:
            count = min(CHUNK, annotations - written)
            out.write(", " if written else "")
            out.write(", ".join(_annotations(rng, ids, sizes, written, count)))
            written += count
        out.write('], "categories": ')
        categories = [{"supercategory": s, "id": i, "name": n} for i, n, s in CATEGORIES]
        out.write(json.dumps(categories))
        out.write("}")


def _annotations(
    rng: np.random.Generator, ids: np.ndarray, sizes: np.ndarray, first: int, count: int
) -> list[str]:
    images = rng.integers(0, len(ids), size=count)
    categories = rng.integers(0, len(CATEGORIES), size=count)
    crowd = rng.random(count) < CROWD_SHARE
    points = rng.integers(4, 31, size=count)
    texts = []
    for row in range(count):
        image = images[row]
        width, height = SIZES[sizes[image]]
        w = round(float(rng.uniform(2, width * 0.6)), 2)
        h = round(float(rng.uniform(2, height * 0.6)), 2)
        x = round(float(rng.uniform(0, width - w)), 2)
        y = round(float(rng.uniform(0, height - h)), 2)
        if crowd[row]:
            segmentation = _rle(rng, width, height)
        else:
            segmentation = _polygon(rng, x, y, w, h, int(points[row]) * 2)
        texts.append(
            f'{{"segmentation": {segmentation}, "area": {round(w * h * 0.6, 4)}, '
            f'"iscrowd": {int(crowd[row])}, "image_id": {int(ids[image])}, '
            f'"bbox": [{x}, {y}, {w}, {h}], '
            f'"category_id": {CATEGORIES[categories[row]][0]}, "id": {first + row + 1}}}'
        )
    return texts


def _polygon(rng: np.random.Generator, x: float, y: float, w: float, h: float, n: int) -> str:
    xs = rng.uniform(x, x + w, size=n // 2)
    ys = rng.uniform(y, y + h, size=n // 2)
    values = np.empty(n)
    values[0::2], values[1::2] = xs, ys
    return "[[" + ", ".join(f"{value:.2f}" for value in values) + "]]"


def _rle(rng: np.random.Generator, width: int, height: int) -> str:
    runs = rng.integers(1, 400, size=int(rng.integers(20, 120)))
    runs[-1] = max(1, width * height - int(runs[:-1].sum()))
    counts = ", ".join(str(int(run)) for run in runs)
    return f'{{"counts": [{counts}], "size": [{height}, {width}]}}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=int, default=IMAGES)
    parser.add_argument("--annotations", type=int, default=ANNOTATIONS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "instances_train2017.json"
    write_coco(path, args.images, args.annotations, args.seed)
    path.with_suffix(".images").write_text(f"{args.images}\n")  # for benchmarks/coco.py
    print(f"{path}: {path.stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
