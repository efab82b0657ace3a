"""The pixels a preview draws: an image's bytes as TensorFlow decodes them, downscaled.

The bytes are those training reads: `io.embed.embed_image` makes them from an image file
exactly as the TFRecord writer does (TIFF transcoded, EXIF orientation settled against the
annotation), and a TFRecord's own `image/encoded` is taken as it is. They are decoded the way
the TF Object Detection API's decoder does (``tf.io.decode_image(channels=3)``): pixels as
stored, EXIF orientation ignored, the first frame, alpha dropped (not blended; a GIF's
transparent pixels black), grey repeated into three channels, 16-bit samples cut to their
high byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from annoconv.io.images import stored_size

#: What `tf.io.decode_image` decodes (Pillow's format names).
TF_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP"})
#: JPEG quality of the embedded pictures of photos: small files, no visible blocking.
JPEG_QUALITY = 75
#: A picture with at most this many colours (drawings, bilevel pages, generated images) is
#: embedded as PNG, exactly; others as JPEG.
PNG_MAX_COLORS = 256


@dataclass(frozen=True)
class Picture:
    """A downscaled picture of an image: `data` in `format` ("jpeg" or "png"), and the size
    of the decoded image it shows (not of the picture)."""

    data: bytes
    format: str
    width: int
    height: int
    decoder_format: str  # Pillow's name of the decoded bytes' format


def picture_of(data: bytes, longest: int) -> Picture:
    """`data` decoded as TensorFlow does, downscaled to at most `longest` pixels on its longer
    side (never up) and encoded as PNG or JPEG. Pillow's exceptions pass through."""
    with Image.open(BytesIO(data)) as image:
        decoder_format = image.format or "unknown"
        width, height = stored_size(image)
        target = fitted((width, height), longest)
        if decoder_format in ("JPEG", "MPO"):
            # Decodes at 1/2, 1/4 or 1/8 scale straight from the DCT, never below target.
            image.draft(image.mode, target)
        image.seek(0)
        image.load()
        pixels = tf_rgb(image)
    if pixels.size != target:
        pixels = pixels.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    encoded, kind = encode_picture(pixels)
    return Picture(encoded, kind, width, height, decoder_format)


def fitted(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """`size` scaled down (never up) to fit `longest` on its longer side, at least 1x1."""
    width, height = size
    scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def tf_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels as ``tf.io.decode_image(channels=3)`` gives them (see the module doc)."""
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


def encode_picture(pixels: Image.Image) -> tuple[bytes, str]:
    """(bytes, "png" or "jpeg"): PNG for images of few colours, JPEG for photos."""
    buffer = BytesIO()
    if pixels.getcolors(PNG_MAX_COLORS) is not None:
        pixels.save(buffer, "PNG", optimize=True)
        return buffer.getvalue(), "png"
    pixels.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue(), "jpeg"
