"""A stable colour per class: the same class name gets the same colour on every page, sheet
and run, whatever other classes the data holds (the hue comes from a hash of the name)."""

from __future__ import annotations

import colorsys
import hashlib

Rgb = tuple[int, int, int]

# Vivid and mid-light: visible on photos, on white pages and on black backgrounds alike.
_SATURATION = 0.9
_LIGHTNESS = 0.5
# Relative luminance above which black text contrasts more than white (WCAG ratios).
_DARK_TEXT_ABOVE = 0.179


def class_color(label: str) -> Rgb:
    """The colour of class `label`: a hue from the SHA-256 of the name."""
    digest = hashlib.sha256(label.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    red, green, blue = colorsys.hls_to_rgb(hue, _LIGHTNESS, _SATURATION)
    return round(red * 255), round(green * 255), round(blue * 255)


def text_color(background: Rgb) -> Rgb:
    """Black or white, whichever reads better on `background`."""
    red, green, blue = (_linear(channel / 255) for channel in background)
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return (0, 0, 0) if luminance > _DARK_TEXT_ABOVE else (255, 255, 255)


def hex_color(color: Rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def _linear(channel: float) -> float:
    """An sRGB channel value (0-1) as linear light."""
    if channel <= 0.04045:
        return channel / 12.92
    return float(((channel + 0.055) / 1.055) ** 2.4)
