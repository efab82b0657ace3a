"""Generate a USPTO-like set for benchmarks: yellow-book drawing pages as the seed's headline
job has them (GUIDE §1, story 1), at full size.

- ``OUT/pages/PATENT/NNN.tif``: bilevel 2560x3300 pages saved as CCITT Group 4 TIFFs, 300 dpi,
  with the content of real drawing sheets: a sheet header, line drawings (parts, section
  hatching, curves, leader lines to reference numerals), "FIG. N" captions, and text-only
  pages; plus the speckle of a scan. Like real pages, each is some 200-250 KB as a level-6
  PNG (``--check`` measures it), not a blank sheet.
- ``OUT/annotations/PATENT/NNN.xml``: labelImg VOC XMLs naming ``NNN.jpg`` (as the seed's
  files do, while the pixels are TIFFs), a ``patent image`` box around each drawing and a
  ``figure label`` box around each caption; text pages have no objects (negative images).
- ``OUT/grant_yb2_20190101.tar``: the same pages in a yellow-book-style tar, one folder per
  patent under the week's folder, upper-case extensions
  (``grant_yb2_20190101/PATENT/NNN.TIF``).

Run: ``python benchmarks/make_uspto.py OUT_DIR [--pages 200] [--seed 1] [--check 10]``.
Deterministic for a given seed (the tar too: fixed member times and owners).
"""

from __future__ import annotations

import argparse
import io
import math
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from annoconv.formats.voc import VocWriter
from annoconv.schema import ImageRecord, ObjectAnnotation

WIDTH, HEIGHT = 2560, 3300
PAGES_PER_PATENT = 10
FIRST_PATENT = 10165001
ARCHIVE = "grant_yb2_20190101"
BLACK, WHITE = 0, 1
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Box:
    label: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int


class Fonts:
    def __init__(self) -> None:
        self.text = ImageFont.load_default(size=40)
        self.numeral = ImageFont.load_default(size=44)
        self.caption = ImageFont.load_default(size=96)


def header(draw: ImageDraw.ImageDraw, fonts: Fonts, patent: int, sheet: int, sheets: int) -> None:
    """The line every drawing sheet carries at its top."""
    line = f"U.S. Patent      Jan. 1, 2019      Sheet {sheet} of {sheets}      US {patent:,} B2"
    draw.text((260, 110), line, fill=BLACK, font=fonts.text)


def word(rng: random.Random) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 11)))


def text_block(
    draw: ImageDraw.ImageDraw, rng: random.Random, fonts: Fonts, top: int, bottom: int
) -> None:
    """Rows of words: the text of a specification page, or a table on a sheet."""
    y = top
    while y < bottom:
        x, right = 260, rng.randint(2000, 2300)
        while x < right:
            text = word(rng)
            draw.text((x, y), text, fill=BLACK, font=fonts.text)
            x += int(draw.textlength(text, font=fonts.text)) + 24
        y += 62 + (40 if rng.random() < 0.08 else 0)


def hatch(page: Image.Image, rng: random.Random, box: tuple[int, int, int, int]) -> None:
    """A section's 45-degree hatching inside `box`, with its outline."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    tile = Image.new("1", (width, height), WHITE)
    draw = ImageDraw.Draw(tile)
    step = rng.choice((10, 12, 14, 18))
    directions = rng.choice(((1,), (-1,), (1, -1)))  # one way, the other, or crossed
    for offset in range(-height, width, step):
        for direction in directions:
            top, bottom = (0, height) if direction > 0 else (height, 0)
            draw.line((offset, top, offset + height, bottom), fill=BLACK, width=2)
    page.paste(tile, (x0, y0))
    ImageDraw.Draw(page).rectangle(box, outline=BLACK, width=5)


def stipple(draw: ImageDraw.ImageDraw, rng: random.Random, box: tuple[int, int, int, int]) -> None:
    """An ellipse shaded by dots, denser towards its left side."""
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    for _ in range((x1 - x0) * (y1 - y0) // 120):
        x, y = x0 + (x1 - x0) * rng.random() ** 2, rng.uniform(y0, y1)
        if ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1:
            draw.rectangle((x, y, x + 2, y + 2), fill=BLACK)
    draw.ellipse(box, outline=BLACK, width=5)


def part(
    page: Image.Image, draw: ImageDraw.ImageDraw, rng: random.Random, area: Box
) -> tuple[int, int]:
    """One element of a drawing; returns a point on it for a leader line."""
    w, h = rng.randint(120, 520), rng.randint(120, 520)
    x0 = rng.randint(area.xmin + 30, max(area.xmin + 31, area.xmax - w - 30))
    y0 = rng.randint(area.ymin + 30, max(area.ymin + 31, area.ymax - h - 30))
    kind = rng.random()
    if kind < 0.15:
        stipple(draw, rng, (x0, y0, x0 + w, y0 + h))
    elif kind < 0.3:
        hatch(page, rng, (x0, y0, x0 + w, y0 + h))
    elif kind < 0.45:
        radius = min(w, h) // 2
        cx, cy = x0 + radius, y0 + radius
        for ring in range(rng.randint(1, 4)):
            r = radius - ring * rng.randint(12, 30)
            if r > 8:
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=BLACK, width=4)
        return cx + radius, cy
    elif kind < 0.65:
        points = [
            (x0 + rng.randint(0, w), y0 + rng.randint(0, h)) for _ in range(rng.randint(3, 7))
        ]
        draw.polygon(points, outline=BLACK, width=4)
        return points[0]
    elif kind < 0.8:
        start, extent = rng.randint(0, 360), rng.randint(90, 300)
        draw.arc((x0, y0, x0 + w, y0 + h), start, start + extent, fill=BLACK, width=4)
        return x0 + w, y0 + h // 2
    else:
        draw.rectangle((x0, y0, x0 + w, y0 + h), outline=BLACK, width=4)
        for _ in range(rng.randint(1, 4)):  # inner detail: ribs, a dashed axis
            yy = rng.randint(y0 + 10, y0 + h - 10)
            for xx in range(x0 + 10, x0 + w - 30, 40):
                draw.line((xx, yy, xx + 22, yy), fill=BLACK, width=3)
    return x0 + w, y0 + h


def leader(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    fonts: Fonts,
    point: tuple[int, int],
    area: Box,
) -> None:
    """A leader line from `point` to a reference numeral such as ``104a``."""
    x, y = point
    tx = min(max(x + rng.randint(-260, 260), area.xmin + 10), area.xmax - 140)
    ty = min(max(y + rng.randint(-200, 200), area.ymin + 10), area.ymax - 60)
    curve = [
        (x + (tx - x) * t / 8 + math.sin(t) * 6, y + (ty - y) * t / 8 + math.cos(t) * 6)
        for t in range(9)
    ]
    draw.line(curve, fill=BLACK, width=3)
    numeral = f"{rng.randint(10, 99) * 2}{rng.choice(['', '', 'a', 'b'])}"
    draw.text((tx + 6, ty - 20), numeral, fill=BLACK, font=fonts.numeral)


def figure(
    page: Image.Image, rng: random.Random, fonts: Fonts, area: Box, number: int
) -> list[Box]:
    """A drawing inside `area` and its caption below; the boxes labelImg would get."""
    draw = ImageDraw.Draw(page)
    for _ in range(rng.randint(34, 56)):
        point = part(page, draw, rng, area)
        if rng.random() < 0.8:
            leader(draw, rng, fonts, point, area)
    caption = f"FIG. {number}"
    x = (area.xmin + area.xmax) // 2 - 170
    y = area.ymax + 50
    draw.text((x, y), caption, fill=BLACK, font=fonts.caption)
    left, top, right, bottom = draw.textbbox((x, y), caption, font=fonts.caption)
    return [area, Box("figure label", left - 6, top - 6, right + 6, bottom + 6)]


def speckle(page: Image.Image, rng: random.Random, count: int) -> None:
    """The dust and toner specks of a scanned sheet."""
    draw = ImageDraw.Draw(page)
    for _ in range(count):
        x, y = rng.randrange(WIDTH - 3), rng.randrange(HEIGHT - 3)
        size = rng.choice((0, 0, 0, 1, 1, 2))
        draw.rectangle((x, y, x + size, y + size), fill=BLACK)


def drawing_page(
    rng: random.Random, fonts: Fonts, patent: int, sheet: int, first_figure: int
) -> tuple[Image.Image, list[Box]]:
    page = Image.new("1", (WIDTH, HEIGHT), WHITE)
    draw = ImageDraw.Draw(page)
    header(draw, fonts, patent, sheet, PAGES_PER_PATENT)
    count = rng.choice((1, 1, 2, 2, 3))
    band = (HEIGHT - 560) // count  # the bottom kept for a table
    boxes: list[Box] = []
    for index in range(count):
        top = 260 + index * band
        area = Box(
            "patent image",
            rng.randint(180, 420),
            top + rng.randint(0, 60),
            rng.randint(2080, 2380),
            top + band - 260,
        )
        boxes += figure(page, rng, fonts, area, first_figure + index)
    if rng.random() < 0.3:  # a table or text block on the sheet
        text_block(draw, rng, fonts, HEIGHT - 320, HEIGHT - 120)
    speckle(page, rng, rng.randint(16000, 36000))
    return scanned(page, rng), boxes


def text_page(rng: random.Random, fonts: Fonts) -> Image.Image:
    page = Image.new("1", (WIDTH, HEIGHT), WHITE)
    draw = ImageDraw.Draw(page)
    text_block(draw, rng, fonts, 260, HEIGHT - 260)
    speckle(page, rng, rng.randint(16000, 36000))
    return scanned(page, rng)


def scanned(page: Image.Image, rng: random.Random) -> Image.Image:
    """The page as a scanner leaves it: skewed by a fraction of a degree (every straight line
    becomes a staircase, as on real sheets). The boxes stay within a few pixels."""
    return page.rotate(rng.uniform(-0.35, 0.35), Image.Resampling.NEAREST, fillcolor=WHITE)


def as_g4_tiff(page: Image.Image) -> bytes:
    buffer = io.BytesIO()
    page.save(buffer, "TIFF", compression="group4", dpi=(300, 300))
    return buffer.getvalue()


def record(patent: int, page_number: int, boxes: list[Box]) -> ImageRecord:
    stem = f"{page_number:03d}"
    return ImageRecord(
        key=f"{patent}/{stem}.xml",
        filename=f"{patent}/{stem}.jpg",
        path=f"/data/{ARCHIVE}/{patent}/{stem}.jpg",
        width=WIDTH,
        height=HEIGHT,
        depth=1,
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


def make(out: Path, pages: int, seed: int) -> tuple[int, int, int]:
    """Write the set; (pages, boxes, TIFF bytes)."""
    rng = random.Random(seed)
    fonts = Fonts()
    out.mkdir(parents=True, exist_ok=True)
    writer = VocWriter(str(out / "annotations"))
    boxes = tiff_bytes = 0
    with tarfile.open(out / f"{ARCHIVE}.tar", "w", format=tarfile.GNU_FORMAT) as archive:
        try:
            figure_number = 1
            for index in range(pages):
                patent = FIRST_PATENT + index // PAGES_PER_PATENT
                page_number = index % PAGES_PER_PATENT + 1
                if page_number == 1:
                    page, found = text_page(rng, fonts), []
                    figure_number = 1
                else:
                    page, found = drawing_page(rng, fonts, patent, page_number - 1, figure_number)
                    figure_number += sum(box.label == "patent image" for box in found)
                data = as_g4_tiff(page)
                tiff_bytes += len(data)
                folder = out / "pages" / str(patent)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{page_number:03d}.tif").write_bytes(data)
                member = tarfile.TarInfo(f"{ARCHIVE}/{patent}/{page_number:03d}.TIF")
                member.size, member.mtime, member.mode = len(data), 1546300800, 0o644
                archive.addfile(member, io.BytesIO(data))
                writer.write(record(patent, page_number, found))
                boxes += len(found)
        except BaseException:
            writer.abort()
            raise
    writer.close()
    return pages, boxes, tiff_bytes


def check(out: Path, count: int) -> None:
    """PNG sizes of the first `count` pages at level 6 (the size real pages have)."""
    sizes = []
    for tif in sorted((out / "pages").rglob("*.tif"))[:count]:
        with Image.open(tif) as image:
            buffer = io.BytesIO()
            image.save(buffer, "PNG", compress_level=6)
            sizes.append(len(buffer.getvalue()))
    print(f"level-6 PNG of {len(sizes)} pages: {sum(sizes) / len(sizes) / 1e3:.0f} KB a page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", type=int, default=0, metavar="N")
    args = parser.parse_args()
    pages, boxes, tiff_bytes = make(args.out, args.pages, args.seed)
    print(
        f"{pages} pages, {boxes} boxes under {args.out} "
        f"({tiff_bytes / pages / 1e3:.0f} KB a G4 TIFF page; {ARCHIVE}.tar)"
    )
    if args.check:
        check(args.out, args.check)


if __name__ == "__main__":
    main()
