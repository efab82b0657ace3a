"""Generate a synthetic labelImg dataset for benchmarks (GUIDE §6 shape: JPEG and PNG images,
~10 boxes each, one labelImg XML beside each image).

Run: ``python benchmarks/make_synthetic.py OUT_DIR [--images 5000] [--seed 1]``.
Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image, ImageDraw

from annoconv.formats.voc import VocWriter
from annoconv.schema import ImageRecord, ObjectAnnotation

CLASSES = ("patent image", "figure label", "dog", "cat", "Mobile phone", "Camera")


def make_image(rng: random.Random, path: Path, width: int, height: int) -> None:
    background = tuple(rng.randint(0, 255) for _ in range(3))
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randint(0, width - 2), rng.randint(0, height - 2)
        x1, y1 = rng.randint(x0 + 1, width), rng.randint(y0 + 1, height)
        draw.rectangle((x0, y0, x1, y1), outline=tuple(rng.randint(0, 255) for _ in range(3)))
    if path.suffix == ".png":
        image.convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(path)
    else:
        image.save(path, quality=85)


def make_record(rng: random.Random, key: str, width: int, height: int) -> ImageRecord:
    objects = []
    for _ in range(rng.randint(0, 21)):
        x0, y0 = rng.randint(1, width - 2), rng.randint(1, height - 2)
        x1, y1 = rng.randint(x0 + 1, width), rng.randint(y0 + 1, height)
        objects.append(
            ObjectAnnotation(
                label=rng.choice(CLASSES), xmin=x0, ymin=y0, xmax=x1, ymax=y1, difficult=0
            )
        )
    return ImageRecord(
        key=f"{key}.xml", filename=key, width=width, height=height, depth=3, objects=objects
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    writer = VocWriter(str(args.out))
    boxes = 0
    for index in range(args.images):
        folder = f"part{index // 500:03d}"
        suffix = ".png" if index % 5 == 0 else ".jpg"
        width, height = rng.choice([(640, 480), (800, 600), (480, 640)])
        name = f"{folder}/img{index:06d}{suffix}"
        (args.out / folder).mkdir(parents=True, exist_ok=True)
        make_image(rng, args.out / name, width, height)
        record = make_record(rng, name.rsplit(".", 1)[0], width, height)
        writer.write(record.model_copy(update={"filename": name}))
        boxes += len(record.objects)
    writer.close()
    print(f"{args.images} images, {boxes} boxes under {args.out}")


if __name__ == "__main__":
    main()
