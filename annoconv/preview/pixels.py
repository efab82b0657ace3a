"""The pixels a preview draws: an image's bytes as TensorFlow decodes them, downscaled.

The bytes are those training reads: `io.embed.embed_image` makes them from an image file
exactly as the TFRecord writer does (TIFF transcoded, EXIF orientation settled against the
annotation), and a TFRecord's own `image/encoded` is taken as it is. They are decoded the way
the TF Object Detection API's decoder does (`io.decode.tf_rgb`).
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from annoconv.io.decode import tf_rgb
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


def encode_picture(pixels: Image.Image) -> tuple[bytes, str]:
    """(bytes, "png" or "jpeg"): PNG for images of few colours, JPEG for photos."""
    buffer = BytesIO()
    if pixels.getcolors(PNG_MAX_COLORS) is not None:
        pixels.save(buffer, "PNG", optimize=True)
        return buffer.getvalue(), "png"
    pixels.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue(), "jpeg"
