"""The preview as one contact-sheet PNG, drawn with Pillow: for terminals, CI logs and issue
reports.

A header (title, summary, class legend with counts) over a grid of square cells. Each cell
holds one image fitted into it (centred) with its boxes drawn inside their rectangles in the
class colour, labels on top, and a caption under it. `SheetTile`s record where each image went,
so a box's place on the sheet follows from its coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageDraw, ImageFont

from annoconv.preview.colors import Rgb, text_color
from annoconv.preview.report import PreviewReport, SheetTile, ShownImage

#: Side of a cell's square image area, in pixels.
TILE = 200
MAX_COLUMNS = 10
_MARGIN = 12
_GAP = 10
_CAPTION = 18
_LINE = 2  # box outline width
_SWATCH = 12
_BACKGROUND: Rgb = (250, 251, 252)
_CELL: Rgb = (226, 229, 233)
_INK: Rgb = (31, 35, 40)
_MUTED: Rgb = (90, 96, 104)

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def draw_sheet(
    report: PreviewReport, *, tile: int = TILE, columns: int | None = None
) -> tuple[bytes, list[SheetTile]]:
    """The PNG bytes of the contact sheet of `report.shown`, and where each image went."""
    from annoconv.preview.page import summary_line

    shown = report.shown
    columns = columns or _columns(len(shown))
    width = 2 * _MARGIN + columns * tile + (columns - 1) * _GAP
    fonts = _Fonts()
    header = _header_lines(report, summary_line(report), width, fonts)
    header_height = _MARGIN + sum(line_height for _runs, line_height in header) + _GAP
    rows = math.ceil(len(shown) / columns)
    colors = report.class_colors()
    height = header_height + rows * (tile + _CAPTION + _GAP) + _MARGIN
    sheet = Image.new("RGB", (width, max(height, header_height + _MARGIN)), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = _MARGIN
    for runs, line_height in header:
        _paint_line(draw, runs, y)
        y += line_height
    tiles = []
    for index, image in enumerate(shown):
        row, column = divmod(index, columns)
        left = _MARGIN + column * (tile + _GAP)
        top = header_height + row * (tile + _CAPTION + _GAP)
        tiles.append(_draw_cell(sheet, draw, image, (left, top), tile, fonts, colors))
    buffer = BytesIO()
    sheet.save(buffer, "PNG")
    return buffer.getvalue(), tiles


def _columns(count: int) -> int:
    """Enough columns for a roughly 4:3 sheet, within 1..MAX_COLUMNS."""
    return max(1, min(count, MAX_COLUMNS, max(5, math.ceil(math.sqrt(count * 1.4)))))


class _Fonts:
    def __init__(self) -> None:
        self.title = _font(18)
        self.text = _font(13)
        self.small = _font(11)


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_height(font: Font) -> int:
    return int(font.getbbox("Ag")[3]) + 2


# --- header ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """A piece of header text at `x`, after a class colour swatch when `swatch` is given."""

    x: int
    text: str
    font: Font
    fill: Rgb
    swatch: Rgb | None = None


def _header_lines(
    report: PreviewReport, summary: str, width: int, fonts: _Fonts
) -> list[tuple[list[_Run], int]]:
    """The header as lines of text runs, each with its height."""
    lines = [
        ([_Run(_MARGIN, report.title, fonts.title, _INK)], _text_height(fonts.title) + 4),
        ([_Run(_MARGIN, summary, fonts.text, _MUTED)], _text_height(fonts.text) + 6),
    ]
    height = _text_height(fonts.text) + 6
    return lines + [(runs, height) for runs in _legend_lines(report, width, fonts.text)]


def _legend_lines(report: PreviewReport, width: int, font: Font) -> list[list[_Run]]:
    """The legend's swatches and names, flowed into lines of the sheet's width."""
    from annoconv.preview.page import class_counts

    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    colors = report.class_colors()
    lines: list[list[_Run]] = [[]]
    x = _MARGIN
    for label, (shown, total) in class_counts(report).items():
        text = f"{label} ({shown} shown / {total})"
        item_width = _SWATCH + 5 + int(probe.textlength(text, font=font)) + 16
        if lines[-1] and x + item_width > width - _MARGIN:
            lines.append([])
            x = _MARGIN
        lines[-1].append(_Run(x, text, font, _INK, colors[label]))
        x += item_width
    return [line for line in lines if line]


def _paint_line(draw: ImageDraw.ImageDraw, runs: list[_Run], y: int) -> None:
    for run in runs:
        x = run.x
        if run.swatch is not None:
            draw.rectangle((x, y + 3, x + _SWATCH, y + 3 + _SWATCH), fill=run.swatch, outline=_INK)
            x += _SWATCH + 5
        draw.text((x, y + 2), run.text, fill=run.fill, font=run.font)


# --- cells -------------------------------------------------------------------------------------


def _draw_cell(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    image: ShownImage,
    corner: tuple[int, int],
    tile: int,
    fonts: _Fonts,
    colors: Mapping[str, Rgb],
) -> SheetTile:
    left, top = corner
    draw.rectangle((left, top, left + tile - 1, top + tile - 1), fill=_CELL)
    width, height = _fitted(image, tile)
    picture = _picture(image, (width, height))
    _draw_boxes(picture, image, fonts.small, colors)
    x, y = left + (tile - width) // 2, top + (tile - height) // 2
    sheet.paste(picture, (x, y))
    _caption(draw, image, left, top + tile + 2, tile, fonts.small)
    return SheetTile(image.key, x, y, width, height)


def _fitted(image: ShownImage, tile: int) -> tuple[int, int]:
    """The image's size fitted into the cell; small images are enlarged (up to 4x) too, so
    that their boxes can be seen."""
    scale = min(4.0, tile / max(image.width, image.height))
    return max(1, round(image.width * scale)), max(1, round(image.height * scale))


def _picture(image: ShownImage, size: tuple[int, int]) -> Image.Image:
    if image.picture is None:
        return Image.new("RGB", size, (154, 160, 166))
    with Image.open(BytesIO(image.picture)) as picture:
        rgb: Image.Image = picture.convert("RGB")
    return rgb.resize(size, Image.Resampling.LANCZOS)


def _draw_boxes(
    picture: Image.Image, image: ShownImage, font: Font, colors: Mapping[str, Rgb]
) -> None:
    """Outlines inside each box's rectangle (scaled to the picture), then the labels."""
    draw = ImageDraw.Draw(picture)
    sx, sy = picture.width / image.width, picture.height / image.height
    placed = []
    for box in image.boxes:
        x0, y0 = round(box.xmin * sx), round(box.ymin * sy)
        x1, y1 = max(x0, round(box.xmax * sx) - 1), max(y0, round(box.ymax * sy) - 1)
        color = colors[box.label]
        line = _LINE if min(x1 - x0, y1 - y0) >= 2 * _LINE else 1
        draw.rectangle((x0, y0, x1, y1), outline=color, width=line)
        placed.append((box.label, color, x0, y0))
    label_height = _text_height(font)
    for label, color, x0, y0 in placed:
        text_width = int(draw.textlength(label, font=font)) + 4
        x0 = max(0, min(x0, picture.width - text_width))  # the whole label inside the image
        top = y0 - label_height if y0 >= label_height else y0
        draw.rectangle((x0, top, x0 + text_width - 1, top + label_height - 1), fill=color)
        draw.text((x0 + 2, top), label, fill=text_color(color), font=font)


def _caption(
    draw: ImageDraw.ImageDraw, image: ShownImage, left: int, top: int, tile: int, font: Font
) -> None:
    count = len(image.boxes)
    suffix = f" · {count} box{'' if count == 1 else 'es'}"
    name, cut = image.filename, 0
    while cut < len(image.filename) and draw.textlength(name + suffix, font=font) > tile:
        cut += 1
        name = image.filename[: len(image.filename) - cut] + "…"
    draw.text((left, top), name + suffix, fill=_MUTED, font=font)
