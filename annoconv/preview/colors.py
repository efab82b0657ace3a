"""A colour per class, the same on every page and sheet.

Each class name picks a colour of `PALETTE` (colours chosen to tell apart, and to show on
photos and on white pages) by a hash of the name, so a class keeps its colour whatever else the
data holds. Among the classes of one page, a class whose colour an earlier class (by name)
already took gets the next free one, so up to len(PALETTE) classes all differ; beyond that,
colours come from the name's hash hue.
"""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Iterable

Rgb = tuple[int, int, int]

#: Distinct colours (after Sasha Trubetskoy's list of 20, without the pale ones that vanish on
#: white paper and the dark ones that vanish on dark photos).
PALETTE: tuple[Rgb, ...] = (
    (230, 25, 75),  # red
    (60, 180, 75),  # green
    (255, 225, 25),  # yellow
    (67, 99, 216),  # blue
    (245, 130, 49),  # orange
    (145, 30, 180),  # purple
    (66, 212, 244),  # cyan
    (240, 50, 230),  # magenta
    (191, 239, 69),  # lime
    (70, 153, 144),  # teal
)
# Relative luminance above which black text contrasts more than white (WCAG ratios).
_DARK_TEXT_ABOVE = 0.179


def class_color(label: str) -> Rgb:
    """The colour class `label` prefers: the palette entry its name's hash picks."""
    return PALETTE[_digest(label) % len(PALETTE)]


def class_colors(labels: Iterable[str]) -> dict[str, Rgb]:
    """The colour of each class shown together: its own (`class_color`) unless a class
    earlier by name took it, then the next free palette entry; past the palette, a hue."""
    colors: dict[str, Rgb] = {}
    taken: set[int] = set()
    hues: set[int] = set()
    for label in sorted(set(labels)):
        start = _digest(label) % len(PALETTE)
        free = [
            index
            for step in range(len(PALETTE))
            if (index := (start + step) % len(PALETTE)) not in taken
        ]
        if free:
            taken.add(free[0])
            colors[label] = PALETTE[free[0]]
        else:
            colors[label] = _hue(label, hues)
    return colors


def text_color(background: Rgb) -> Rgb:
    """Black or white, whichever reads better on `background`."""
    red, green, blue = (_linear(channel / 255) for channel in background)
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return (0, 0, 0) if luminance > _DARK_TEXT_ABOVE else (255, 255, 255)


def hex_color(color: Rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def _digest(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode("utf-8")).digest()[:8], "big")


def _hue(label: str, taken: set[int]) -> Rgb:
    """A colour of the name's hash hue (in degrees), or the next hue not `taken` (7 degrees
    on: 7 and 360 share no factor, so every degree comes round)."""
    degree = (_digest(label) >> 16) % 360
    for _ in range(360):
        if degree not in taken:
            break
        degree = (degree + 7) % 360
    taken.add(degree)
    red, green, blue = colorsys.hls_to_rgb(degree / 360, 0.5, 0.85)
    return round(red * 255), round(green * 255), round(blue * 255)


def _linear(channel: float) -> float:
    """An sRGB channel value (0-1) as linear light."""
    if channel <= 0.04045:
        return channel / 12.92
    return float(((channel + 0.055) / 1.055) ** 2.4)
