"""Generate the bundled Open Images-like example (story 2: a camera detector), no downloads.

Writes, under OUT (default: examples/openimages):

- ``train-annotations-bbox.csv``: the 13-column bbox CSV of Open Images V4/V5 (``ImageID,
  Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,
  IsDepiction,IsInside``), sorted by ImageID, normalized coordinates printed with 6 decimals
  as Google's files do, flags 1/0/-1;
- ``class-descriptions-boxable.csv``: ``MID,DisplayName`` rows without a header (V4/V5);
- ``images/<ImageID>.jpg``: small photos-to-be whose objects are drawn where the boxes say
  (no CSV gives pixel sizes: they differ from image to image on purpose).

Cameras, mobile phones, people, cars and tripods appear in random mixes, so selecting
``Camera`` and ``Mobile phone`` leaves some images out and some boxes out of kept images.

Run: ``python examples/make_openimages_data.py [OUT_DIR]``. The output is deterministic:
running it again gives byte-identical files.
"""

from __future__ import annotations

import csv
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

SEED = 20200406
IMAGES = 30
SIZES = ((160, 120), (200, 150), (240, 160), (120, 160))
CLASSES = {
    "/m/0dv5r": "Camera",
    "/m/050k8": "Mobile phone",
    "/m/01g317": "Person",
    "/m/0k4j": "Car",
    "/m/073bxn": "Tripod",
}
COLORS = {
    "/m/0dv5r": (40, 40, 40),
    "/m/050k8": (20, 20, 90),
    "/m/01g317": (200, 150, 120),
    "/m/0k4j": (160, 30, 30),
    "/m/073bxn": (90, 90, 90),
}
HEADER = (
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
)


@dataclass(frozen=True)
class PixelBox:
    mid: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int


def random_box(rng: random.Random, mid: str, width: int, height: int) -> PixelBox:
    box_w = rng.randint(width // 6, width // 2)
    box_h = rng.randint(height // 6, height // 2)
    xmin, ymin = rng.randint(0, width - box_w), rng.randint(0, height - box_h)
    return PixelBox(mid, xmin, ymin, xmin + box_w, ymin + box_h)


def draw_object(draw: ImageDraw.ImageDraw, box: PixelBox) -> None:
    """A flat stand-in for the object: its colour, and a lens for a camera."""
    draw.rectangle((box.xmin, box.ymin, box.xmax - 1, box.ymax - 1), fill=COLORS[box.mid])
    if box.mid == "/m/0dv5r":
        cx, cy = (box.xmin + box.xmax) // 2, (box.ymin + box.ymax) // 2
        r = max(2, min(box.xmax - box.xmin, box.ymax - box.ymin) // 4)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(150, 180, 220))


def make_image(rng: random.Random, path: Path) -> tuple[tuple[int, int], list[PixelBox]]:
    width, height = rng.choice(SIZES)
    mids = rng.choices(list(CLASSES), weights=(4, 4, 3, 2, 1), k=rng.randint(1, 3))
    boxes = [random_box(rng, mid, width, height) for mid in mids]
    background = tuple(rng.randint(170, 240) for _ in range(3))
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    for box in boxes:
        draw_object(draw, box)
    image.save(path, "JPEG", quality=85)
    return (width, height), boxes


def bbox_row(rng: random.Random, image_id: str, size: tuple[int, int], box: PixelBox) -> list[str]:
    width, height = size
    flags = [rng.choice(("0", "1")) for _ in range(4)] + [rng.choice(("0", "-1"))]
    return [
        image_id,
        rng.choice(("xclick", "activemil")),
        box.mid,
        "1",
        f"{box.xmin / width:.6f}",
        f"{box.xmax / width:.6f}",
        f"{box.ymin / height:.6f}",
        f"{box.ymax / height:.6f}",
        *flags,
    ]


def write_csv(path: Path, header: tuple[str, ...] | None, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).parent / "openimages"
    shutil.rmtree(out, ignore_errors=True)
    (out / "images").mkdir(parents=True)
    rng = random.Random(SEED)
    image_ids = sorted({f"{rng.getrandbits(64):016x}" for _ in range(IMAGES)})
    rows = []
    for image_id in image_ids:
        size, boxes = make_image(rng, out / "images" / f"{image_id}.jpg")
        rows += [bbox_row(rng, image_id, size, box) for box in boxes]
    write_csv(out / "train-annotations-bbox.csv", HEADER, rows)
    write_csv(out / "class-descriptions-boxable.csv", None, [list(i) for i in CLASSES.items()])
    print(f"wrote {len(image_ids)} images and {len(rows)} boxes under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
