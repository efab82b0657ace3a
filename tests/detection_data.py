"""A small detection dataset for the loader tests: labelImg XMLs beside real images of
different sizes and formats, seeded random boxes (fractional coordinates, some images
without any), and the truth to compare what each loader yields against."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from factories import Box, draw_image, labelimg_xml, write

CLASSES = ("cat", "dog", "mobile phone")
#: A box as the annotation gives it: (label, xmin, ymin, xmax, ymax) in pixels.
Truth = tuple[str, float, float, float, float]


@dataclass
class Dataset:
    root: Path
    #: Per image key (the XML's path relative to `root`): its size and boxes.
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    boxes: dict[str, list[Truth]] = field(default_factory=dict)
    #: The image file of each key, relative to `root`.
    images: dict[str, str] = field(default_factory=dict)

    @property
    def box_count(self) -> int:
        return sum(map(len, self.boxes.values()))


def voc_dataset(root: Path, images: int = 12, seed: int = 0) -> Dataset:
    """`images` labelImg annotations with their JPEG or PNG images; every fourth image has no
    boxes (a negative example)."""
    rng = random.Random(seed)
    dataset = Dataset(root)
    for index in range(images):
        width, height = rng.randint(40, 120), rng.randint(30, 100)
        name = f"img{index:02d}.{'png' if index % 3 == 0 else 'jpg'}"
        count = 0 if index % 4 == 3 else rng.randint(1, 4)
        boxes = [_box(rng, width, height) for _ in range(count)]
        key = f"part{index % 2}/img{index:02d}.xml"
        write(root / key, labelimg_xml(name, width, height, boxes))
        draw_image(root / f"part{index % 2}" / name, width, height)
        dataset.sizes[key] = (width, height)
        dataset.images[key] = f"part{index % 2}/{name}"
        dataset.boxes[key] = [(b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in boxes]
    return dataset


def _box(rng: random.Random, width: int, height: int) -> Box:
    x0 = rng.randint(0, width - 10) + rng.choice([0, 0.5, 0.25])
    y0 = rng.randint(0, height - 10) + rng.choice([0, 0.5])
    x1 = min(float(width), x0 + rng.randint(3, 30) + rng.choice([0, 0.75]))
    y1 = min(float(height), y0 + rng.randint(3, 30))
    return Box(rng.choice(CLASSES), x0, y0, x1, y1)
