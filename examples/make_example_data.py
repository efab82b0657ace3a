"""Generate the bundled USPTO-like example dataset (no downloads).

Pages look like yellow-book patent pages: bilevel 2560x3300 CCITT Group 4 TIFFs holding line
drawings with "FIG. N" captions, one folder per patent. Annotations are labelImg-style VOC XMLs
written by annoconv's own VOC writer, with the quirks of the real thing:

- the XMLs name ``00000002.jpg`` while the pixels are ``00000002.tif``;
- every patent folder has its own ``00000001``..., so filenames repeat across folders;
- text-only pages are annotated without objects (negative images);
- one XML lacks its ``<size>`` (the size is read from the image header with ``--images``).

Run: ``python examples/make_example_data.py [OUT_DIR]`` (default: examples/uspto). The output
is deterministic: running it again gives byte-identical files.
"""

from __future__ import annotations

import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from annoconv.formats.voc import VocWriter
from annoconv.schema import ImageRecord, ObjectAnnotation

PAGE_WIDTH, PAGE_HEIGHT = 2560, 3300
PATENTS = ("10165001", "10165002", "10165003")
PAGES_PER_PATENT = 4
SEED = 20190101


@dataclass(frozen=True)
class Box:
    label: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int


def draw_figure(draw: ImageDraw.ImageDraw, rng: random.Random, area: Box) -> None:
    """Line art inside `area`: a frame, some parts and leader lines, like a patent drawing."""
    draw.rectangle((area.xmin, area.ymin, area.xmax, area.ymax), outline=0, width=6)
    for _ in range(rng.randint(3, 7)):
        x0 = rng.randint(area.xmin + 40, area.xmax - 200)
        y0 = rng.randint(area.ymin + 40, area.ymax - 200)
        x1, y1 = x0 + rng.randint(60, 180), y0 + rng.randint(60, 180)
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), outline=0, width=4)
        else:
            draw.rectangle((x0, y0, x1, y1), outline=0, width=4)
        draw.line((x1, y1, min(x1 + 90, area.xmax - 10), y1 + 40), fill=0, width=3)


def caption_box(
    draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, text: str, x: int, y: int
) -> Box:
    draw.text((x, y), text, fill=0, font=font)
    left, top, right, bottom = draw.textbbox((x, y), text, font=font)
    return Box("figure label", left - 4, top - 4, right + 4, bottom + 4)


def drawing_page(
    rng: random.Random, font: ImageFont.ImageFont, first_fig: int
) -> tuple[Image.Image, list[Box]]:
    page = Image.new("1", (PAGE_WIDTH, PAGE_HEIGHT), 1)
    draw = ImageDraw.Draw(page)
    boxes: list[Box] = []
    count = rng.randint(1, 2)
    band = (PAGE_HEIGHT - 400) // count
    for index in range(count):
        top = 200 + index * band
        figure = Box(
            "patent image",
            rng.randint(200, 500),
            top + rng.randint(0, 100),
            rng.randint(2000, 2300),
            top + band - 350,
        )
        draw_figure(draw, rng, figure)
        boxes.append(figure)
        label = f"FIG. {first_fig + index}"
        boxes.append(
            caption_box(draw, font, label, (figure.xmin + figure.xmax) // 2 - 150, figure.ymax + 60)
        )
    return page, boxes


def text_page(rng: random.Random) -> Image.Image:
    page = Image.new("1", (PAGE_WIDTH, PAGE_HEIGHT), 1)
    draw = ImageDraw.Draw(page)
    y = 250
    while y < PAGE_HEIGHT - 250:
        width = rng.randint(1400, 2100)
        draw.rectangle((250, y, 250 + width, y + 18), fill=0)
        y += 70
    return page


def make_patent(
    out: Path, patent: str, rng: random.Random, font: ImageFont.ImageFont, writer: VocWriter
) -> None:
    image_dir = out / "images" / patent
    image_dir.mkdir(parents=True, exist_ok=True)
    fig = 1
    for page_number in range(1, PAGES_PER_PATENT + 1):
        stem = f"{page_number:08d}"
        if page_number == 1:
            page, boxes = text_page(rng), []
        else:
            page, boxes = drawing_page(rng, font, fig)
            fig += sum(1 for box in boxes if box.label == "patent image")
        page.save(image_dir / f"{stem}.tif", compression="group4", dpi=(300, 300))
        # One XML of the set is missing its <size>, as third-party writers sometimes leave it.
        size_known = not (patent == PATENTS[-1] and page_number == PAGES_PER_PATENT)
        record = ImageRecord(
            key=f"{patent}/{stem}.xml",
            filename=f"{patent}/{stem}.jpg",
            path=f"/Volumes/LaCie/grant_yb2_20190101/2019-01/{patent}/{stem}.jpg",
            width=PAGE_WIDTH if size_known else None,
            height=PAGE_HEIGHT if size_known else None,
            depth=1 if size_known else None,
            objects=[
                ObjectAnnotation(
                    label=box.label,
                    xmin=box.xmin,
                    ymin=box.ymin,
                    xmax=box.xmax,
                    ymax=box.ymax,
                    difficult=0,
                    truncated=0,
                    pose="Unspecified",
                )
                for box in boxes
            ],
        )
        writer.write(record)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).parent / "uspto"
    shutil.rmtree(out, ignore_errors=True)
    rng = random.Random(SEED)
    font = ImageFont.load_default(size=72)
    writer = VocWriter(str(out / "annotations"))
    try:
        for patent in PATENTS:
            make_patent(out, patent, rng, font, writer)
    except BaseException:
        writer.abort()
        raise
    outputs = writer.close()
    print(f"wrote {len(outputs)} annotations and their images under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
