"""What a preview shows and what it did: the images on the page, their boxes in the pixels
TensorFlow decodes, and a run report whose counts add up like a conversion's."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from annoconv.preview.colors import Rgb, class_colors, hex_color
from annoconv.report import Report


@dataclass(frozen=True)
class ShownBox:
    """One box as drawn: its class and its corners in pixels of the decoded image."""

    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float


@dataclass(frozen=True)
class ShownImage:
    """One image on the page: its pixels as TensorFlow decodes them (`width` x `height`),
    downscaled into `picture` (JPEG or PNG bytes; None when the image could not be had, for
    a single record's notebook view), and its boxes in those pixels."""

    key: str
    filename: str
    width: int
    height: int
    boxes: tuple[ShownBox, ...]
    picture: bytes | None
    picture_format: str  # "jpeg" or "png"
    notes: tuple[str, ...] = ()
    origin: str | None = None  # where the pixels came from: an image file, a TFRecord
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "filename": self.filename,
            "width": self.width,
            "height": self.height,
            "boxes": [box.__dict__ for box in self.boxes],
            "notes": list(self.notes),
            "origin": self.origin,
            "split": self.split,
        }


@dataclass(frozen=True)
class SheetTile:
    """Where the contact sheet drew image `key`: its pixels fill the rectangle at (`x`, `y`)
    of `width` x `height`, so a box corner (bx, by) of the image lands at
    (x + bx * width / image width, y + by * height / image height)."""

    key: str
    x: int
    y: int
    width: int
    height: int


@dataclass
class PreviewReport(Report):
    """The run report of a preview: images read, shown (`images_written`) and left out
    (not in the sample, not in the selection, unreadable), per-class counts of the boxes
    shown (`classes`) and of every box the selection kept (`selected_classes`), the images
    shown in page order, and the contact sheet's layout when one was drawn.

    In a notebook it shows as the images with their boxes."""

    title: str = ""
    shown: list[ShownImage] = field(default_factory=list)
    selected_images: int = 0
    selected_classes: Counter[str] = field(default_factory=Counter)
    sample: int = 0
    seed: int = 0
    tiles: list[SheetTile] = field(default_factory=list)

    def class_colors(self) -> dict[str, Rgb]:
        """The colour of each class on the page and the sheet (see `preview.colors`)."""
        return class_colors([*self.selected_classes, *self.classes])

    def to_dict(self) -> dict[str, Any]:
        result = super().to_dict()
        result["preview"] = {
            "title": self.title,
            "colors": {label: hex_color(color) for label, color in self.class_colors().items()},
            "selected_images": self.selected_images,
            "selected_classes": dict(sorted(self.selected_classes.items())),
            "sample": self.sample,
            "seed": self.seed,
            "shown": [image.to_dict() for image in self.shown],
        }
        return result

    def _repr_html_(self) -> str:
        from annoconv.preview.page import gallery_html

        return gallery_html(self)
