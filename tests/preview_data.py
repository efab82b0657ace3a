"""A small labelImg VOC dataset with the images previews get wrong, drawn with Pillow.

Every box frames an object painted in a colour of its own, so a test can look under a drawn
box and see whether it sits on its object:

- ``phone``: a phone photo stored landscape with EXIF orientation 6; labelImg recorded the
  displayed (portrait) size and boxes, so it must be shown turned, the boxes on the objects;
- ``page``: a bilevel Group 4 TIFF (TensorFlow cannot decode TIFF: it is transcoded);
- ``alpha``: an RGBA PNG whose transparent pixels hold green: TensorFlow drops alpha, so the
  preview shows green there (a browser showing the PNG as it is would show the page);
- ``negative``: an image without objects;
- ``edges``: boxes touching the image's four edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from factories import labelimg_xml, write
from PIL import Image, ImageDraw

Rgb = tuple[int, int, int]
RED: Rgb = (220, 30, 30)
BLUE: Rgb = (30, 60, 220)
GREEN: Rgb = (0, 200, 0)
BLACK: Rgb = (0, 0, 0)
ORANGE: Rgb = (240, 150, 0)
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Expected:
    """What an image must look like in a preview: its decoded size, its boxes (label,
    xmin, ymin, xmax, ymax in those pixels) and the colour of each box's object."""

    key: str
    width: int
    height: int
    boxes: tuple[tuple[str, float, float, float, float], ...]
    colors: tuple[Rgb, ...]


def make_dataset(folder: Path) -> dict[str, Expected]:
    """Write the images and their XMLs into `folder`; key (the XML name) -> what to expect."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = [
        _phone(folder),
        _page(folder),
        _alpha(folder),
        _negative(folder),
        _edges(folder),
    ]
    return {item.key: item for item in expected}


def _annotate(folder: Path, stem: str, image_name: str, item: Expected) -> Expected:
    xml = labelimg_xml(image_name, item.width, item.height, item.boxes, folder="data")
    write(folder / f"{stem}.xml", xml)
    return item


def _phone(folder: Path) -> Expected:
    displayed = Image.new("RGB", (120, 160), (245, 245, 240))
    draw = ImageDraw.Draw(displayed)
    boxes = (("cup", 20.0, 90.0, 70.0, 140.0), ("phone", 60.0, 10.0, 110.0, 50.0))
    colors = (RED, BLUE)
    for (_label, *box), color in zip(boxes, colors, strict=True):
        draw.rectangle([round(v) for v in box], fill=color)
    # Stored as the sensor saw it: turned so that orientation 6 shows it upright.
    stored = displayed.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    stored.save(folder / "phone.jpg", "JPEG", quality=92, exif=exif.tobytes())
    return _annotate(folder, "phone", "phone.jpg", Expected("phone.xml", 120, 160, boxes, colors))


def _page(folder: Path) -> Expected:
    page = Image.new("1", (200, 260), 1)
    ImageDraw.Draw(page).rectangle((30, 40, 149, 119), fill=0)
    page.save(folder / "page.tif", compression="group4")
    boxes = (("figure", 30.0, 40.0, 150.0, 120.0),)
    return _annotate(folder, "page", "page.tif", Expected("page.xml", 200, 260, boxes, (BLACK,)))


def _alpha(folder: Path) -> Expected:
    image = Image.new("RGBA", (160, 100), (*GREEN, 0))
    ImageDraw.Draw(image).rectangle((10, 10, 59, 59), fill=(*RED, 255))
    image.save(folder / "alpha.png")
    boxes = (("cup", 10.0, 10.0, 60.0, 60.0),)
    return _annotate(folder, "alpha", "alpha.png", Expected("alpha.xml", 160, 100, boxes, (RED,)))


def _negative(folder: Path) -> Expected:
    Image.new("RGB", (140, 100), (200, 200, 200)).save(folder / "negative.jpg", quality=92)
    return _annotate(folder, "negative", "negative.jpg", Expected("negative.xml", 140, 100, (), ()))


def _edges(folder: Path) -> Expected:
    image = Image.new("RGB", (100, 80), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    boxes = (("phone", 0.0, 0.0, 40.0, 30.0), ("cup", 60.0, 50.0, 100.0, 80.0))
    colors = (BLUE, ORANGE)
    for (_label, *box), color in zip(boxes, colors, strict=True):
        x0, y0, x1, y1 = (round(v) for v in box)
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=color)
    image.save(folder / "edges.png")
    return _annotate(folder, "edges", "edges.png", Expected("edges.xml", 100, 80, boxes, colors))


def close(color: tuple[int, ...], wanted: tuple[int, ...], tolerance: int = 40) -> bool:
    """Whether two colours agree channel by channel within `tolerance` (JPEG, resampling)."""
    return all(abs(a - b) <= tolerance for a, b in zip(color[:3], wanted[:3], strict=True))
