"""Pixels as training sees them: an image decoded the way the TF Object Detection API's
decoder does (``tf.io.decode_image(channels=3)``): pixels as stored, EXIF orientation
ignored, the first frame, alpha dropped (not blended; a GIF's transparent pixels black),
grey repeated into three channels, 16-bit samples cut to their high byte. The preview draws
these pixels and `annoconv.torch` yields them, so both show what a TensorFlow pipeline reads.
"""

from __future__ import annotations

from PIL import Image


def tf_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels of a decoded `image` as ``tf.io.decode_image(channels=3)`` gives them (see
    the module doc)."""
    mode = image.mode
    if mode == "I" or mode.startswith("I;16"):
        # The high byte of 16-bit samples, as libpng's strip-16 gives TensorFlow.
        wide = image if mode == "I" else image.convert("I")
        image = wide.point(lambda value: value / 256).convert("L")
    if image.mode == "RGB":
        return image
    if image.format == "GIF" and image.mode == "P" and "transparency" in image.info:
        return _gif_rgb(image, image.info["transparency"])
    if image.mode in ("P", "PA"):
        # The palette's colours; a transparent index keeps its colour, as alpha is dropped.
        image = image.convert("RGBA")
    return image.convert("RGB")


def _gif_rgb(image: Image.Image, transparent: int) -> Image.Image:
    """A GIF's first frame as TensorFlow's GIF decoder gives it: its transparent pixels
    black (0, 0, 0), not their palette colour as in PNGs."""
    rgb = image.convert("RGBA").convert("RGB")
    mask = image.point([255 if index == transparent else 0 for index in range(256)], "1")
    rgb.paste((0, 0, 0), (0, 0, *rgb.size), mask)
    return rgb
