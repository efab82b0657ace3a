"""The image bytes that go into a TFRecord (`image/encoded`), checked against the annotation.

TensorFlow decodes JPEG, PNG, GIF and BMP, not TIFF, and ignores EXIF orientation: it
decodes the pixels as stored. So:

* JPEG and PNG files are embedded **byte for byte**; only their headers are parsed. The real
  format comes from the magic bytes, not the extension (a `.jpg` may hold a PNG). A truncated
  file, which TensorFlow refuses mid-training, is caught here by looking for its end marker.
* Everything else is **transcoded** from its first frame: bilevel, grayscale (8 and 16 bit),
  palette and alpha images to PNG (lossless; TensorFlow reads 1-bit and 16-bit PNGs and, with
  `channels=3`, drops alpha just as it does for an RGBA PNG embedded as it is), photos (RGB,
  CMYK, YCbCr, ...) to JPEG. An alpha channel that is opaque everywhere is dropped first, so
  an RGBA photo still becomes a JPEG. GIF and BMP are transcoded too: the OD API decodes an
  animated GIF to a 4-D tensor, and TensorFlow rejects 1-bit BMPs. Output bytes are
  deterministic and carry no metadata (no EXIF: nothing can apply the orientation twice).

EXIF orientation (`exif="auto"`, the default). labelImg since 2020, like browsers and most
annotation tools, shows the image turned by its orientation and records that displayed size
and boxes; older labelImg recorded the stored pixels. When the orientation is not 1:

* the annotated size equals the displayed size (orientations 5-8 swap width and height) and
  not the stored one: the pixels are turned as displayed and re-encoded (JPEG at
  `jpeg_quality` for a JPEG, PNG for a PNG), and width/height are the displayed ones;
* it equals the stored size and not the displayed one: the file is embedded as it is;
* the size cannot tell (orientations 2-4, a square image, or no annotated size): the pixels
  are turned as displayed, as current tools show them;
* it matches neither: the frame whose aspect ratio is closer to the annotation's (displayed
  on a tie), and the size policy decides the rest.

`exif="apply"` always turns, `exif="ignore"` never does.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from typing import TYPE_CHECKING, Literal, get_args

from annoconv.errors import AnnotationError, SkipRecord
from annoconv.io.headers import plain_image_size
from annoconv.io.images import exif_orientation, read_image_bytes, stored_size

if TYPE_CHECKING:  # imported where used: a parallel run's driver decodes no image
    from PIL import Image

SizePolicy = Literal["fail", "warn", "skip"]
ExifPolicy = Literal["auto", "apply", "ignore"]

#: zlib level of the PNGs a transcode writes. Measured on 200 USPTO-like bilevel pages
#: (docs/performance.md): level 1 decodes + encodes a page in half the CPU time of Pillow's
#: default 6, for pages about a fifth larger; 9 saves another 9 % at 7x the time of 6.
DEFAULT_PNG_LEVEL = 1

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the whole chunk: length, type, CRC


@cache
def _turns(displayed: bool) -> dict[int, Image.Transpose]:
    """How each EXIF orientation turns the stored pixels into the displayed ones, and back."""
    from PIL import Image

    to_displayed = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }
    if displayed:
        return to_displayed
    return {**to_displayed, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


# Pillow mode of a decoded frame -> (format, mode) it is transcoded to. Modes not listed
# (RGB, RGBX, CMYK, YCbCr, LAB, HSV) are photos: JPEG in RGB. Float images are clipped to
# 0-255 and 32-bit integer ones to 16 bits.
_LOSSLESS = {
    "1": ("png", "1"),
    "L": ("png", "L"),
    "LA": ("png", "LA"),
    "La": ("png", "LA"),
    "P": ("png", "P"),
    "PA": ("png", "RGBA"),
    "RGBA": ("png", "RGBA"),
    "RGBa": ("png", "RGBA"),
    "I;16": ("png", "I;16"),
    "I;16L": ("png", "I;16"),
    "I;16B": ("png", "I;16"),
    "I;16N": ("png", "I;16"),
    "I": ("png", "I;16"),
    "F": ("png", "L"),
}
_PHOTO = ("jpeg", "RGB")
_JPEG_MODES = ("L", "RGB", "CMYK")


class SkipImage(SkipRecord):
    """The size policy "skip" leaves this image out; callers report it as skipped."""


@dataclass(frozen=True)
class EmbeddedImage:
    """The bytes to embed for one image and what TensorFlow will decode from them."""

    data: bytes
    format: str  # "jpeg" or "png": the real format of `data`
    width: int  # of the pixels decoded from `data`
    height: int
    sha256: str  # hex digest of `data`
    transcoded: bool  # False when `data` is the source file as it is
    scale: tuple[float, float] | None  # (sx, sy) to multiply the annotation's boxes by
    note: str | None  # what was adjusted, for the run report


@dataclass(frozen=True)
class _Frame:
    """The size an image is embedded at, and whether that is its EXIF-displayed frame."""

    stored: tuple[int, int]
    orientation: int
    displayed: bool
    assumed: bool  # the annotation's size could not tell the frame

    @property
    def size(self) -> tuple[int, int]:
        return _displayed_size(self.stored, self.orientation) if self.displayed else self.stored

    @property
    def turned(self) -> bool:
        return self.displayed and self.orientation != 1


def embed_image(
    uri: str,
    *,
    annotated_size: tuple[int, int] | None,
    size_policy: SizePolicy = "fail",
    jpeg_quality: int = 95,
    source: str | None = None,
    exif: ExifPolicy = "auto",
    data: bytes | None = None,
    png_level: int = DEFAULT_PNG_LEVEL,
) -> EmbeddedImage:
    """The bytes of the image at `uri` to embed, checked against the annotation's size.

    `annotated_size` is the (width, height) the annotation `source` records, None (or a zero
    size, as labelImg writes when it failed to load the image) when unknown. A size that
    disagrees with the image follows `size_policy`: "fail" raises AnnotationError, "warn"
    trusts the image and returns the box `scale` and a `note`, "skip" raises SkipImage.
    `exif` chooses the frame of an image with an EXIF orientation (see the module doc).
    `data` is the image's bytes when the caller already holds them (an archive member, a
    prefetched object); `uri` then only names the image. `png_level` is the zlib level (0-9)
    of a transcode to PNG: lower is faster, higher smaller; the pixels are the same.

    Raises AnnotationError naming `source` and the image when the image is missing,
    unreadable or truncated.
    """
    _check_choice("size_policy", size_policy, SizePolicy)
    _check_choice("exif", exif, ExifPolicy)
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be 1-100, got {jpeg_quality}")
    if not 0 <= png_level <= 9:
        raise ValueError(f"png_level must be 0-9, got {png_level}")
    if annotated_size is not None and min(annotated_size) <= 0:
        annotated_size = None
    if data is None:
        data = _read(uri, source)
    kind = _embeddable_kind(data)
    _check_complete(uri, source, kind, data)
    size = plain_image_size(data) if kind is not None else None
    if kind is not None and size is not None:
        # Orientation 1, stored frame: what Pillow would have told, without opening it.
        frame = _Frame(size, 1, displayed=False, assumed=False)
        scale, mismatch = _check_size(uri, source, frame, annotated_size, size_policy)
        return _embedded(data, kind, frame.size, False, scale, mismatch)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data)) as image:
            frame = _choose_frame(image, annotated_size, exif)
            scale, mismatch = _check_size(uri, source, frame, annotated_size, size_policy)
            note = _join_notes(_turn_note(uri, source, frame), mismatch)
            if kind is not None and not frame.turned:
                return _embedded(data, kind, frame.size, False, scale, note)
            encoded, encoded_format, size = _transcode(image, kind, frame, jpeg_quality, png_level)
            return _embedded(encoded, encoded_format, size, True, scale, note)
    except AnnotationError:
        raise
    except UnidentifiedImageError:
        raise _image_error(uri, source, "is not an image file Pillow can identify") from None
    # Pillow raises many kinds of exceptions on damaged or hostile files; each one means
    # "this image cannot be decoded" and must name the file rather than end the run.
    except Exception as exc:
        raise _image_error(uri, source, f"cannot be decoded: {exc}") from None


def _check_choice(name: str, value: str, choices: object) -> None:
    allowed = get_args(choices)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _read(uri: str, source: str | None) -> bytes:
    return read_image_bytes(uri, source)


def _embeddable_kind(data: bytes) -> str | None:
    """The format to embed `data` in as it is ('jpeg' or 'png', by magic bytes), else None."""
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data.startswith(_PNG_MAGIC):
        return "png"
    return None


def _embedded(
    data: bytes,
    kind: str,
    size: tuple[int, int],
    transcoded: bool,
    scale: tuple[float, float] | None,
    note: str | None,
) -> EmbeddedImage:
    digest = hashlib.sha256(data).hexdigest()
    return EmbeddedImage(data, kind, size[0], size[1], digest, transcoded, scale, note)


# --- which frame, and does the annotation agree ----------------------------------------------


def _choose_frame(
    image: Image.Image, annotated: tuple[int, int] | None, exif: ExifPolicy
) -> _Frame:
    stored = stored_size(image)
    orientation = exif_orientation(image)
    displayed = _displayed_size(stored, orientation)
    if orientation == 1 or exif == "ignore":
        return _Frame(stored, orientation, displayed=False, assumed=False)
    if exif == "apply":
        return _Frame(stored, orientation, displayed=True, assumed=False)
    if annotated is None or annotated == displayed == stored:
        return _Frame(stored, orientation, displayed=True, assumed=True)
    if annotated in (displayed, stored):
        return _Frame(stored, orientation, displayed=annotated == displayed, assumed=False)
    closer = _aspect_gap(annotated, displayed) <= _aspect_gap(annotated, stored)
    return _Frame(stored, orientation, displayed=closer, assumed=False)


def _displayed_size(stored: tuple[int, int], orientation: int) -> tuple[int, int]:
    width, height = stored
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _aspect_gap(a: tuple[int, int], b: tuple[int, int]) -> float:
    return abs(math.log((a[0] * b[1]) / (a[1] * b[0])))


def _check_size(
    uri: str,
    source: str | None,
    frame: _Frame,
    annotated: tuple[int, int] | None,
    policy: SizePolicy,
) -> tuple[tuple[float, float] | None, str | None]:
    """(box scale, note) under the "warn" policy; raises under "fail" and "skip"."""
    if annotated is None or annotated == frame.size:
        return None, None
    (width, height), (ann_width, ann_height) = frame.size, annotated
    problem = (
        f"is {width}x{height}{_frame_detail(frame)} "
        f"but the annotation says {ann_width}x{ann_height}"
    )
    if policy == "warn":
        scale = (width / ann_width, height / ann_height)
        trusted = f"trusting the image: boxes scaled by {scale[0]:g}, {scale[1]:g}"
        return scale, _say(uri, source, f"{problem}; {trusted}")
    if policy == "skip":
        raise _image_error(uri, source, problem, SkipImage)
    hint = "size_policy 'warn' trusts the image and scales the boxes, 'skip' leaves it out"
    raise _image_error(uri, source, f"{problem} ({hint})")


def _frame_detail(frame: _Frame) -> str:
    """How the image looks in its other frame, for an image with an EXIF orientation."""
    if frame.orientation == 1:
        return ""
    stored, displayed = frame.stored, _displayed_size(frame.stored, frame.orientation)
    if frame.displayed:
        this, other, size = "displayed", "stored", stored
    else:
        this, other, size = "stored", "displayed", displayed
    return f" {this} ({size[0]}x{size[1]} {other}, EXIF orientation {frame.orientation})"


def _turn_note(uri: str, source: str | None, frame: _Frame) -> str | None:
    if not frame.turned:
        return None
    width, height = frame.size
    why = " (assumed: the annotation's size cannot tell the frame)" if frame.assumed else ""
    return _say(
        uri,
        source,
        f"has EXIF orientation {frame.orientation}: embedded as displayed ({width}x{height}){why}",
    )


def _join_notes(*notes: str | None) -> str | None:
    return "; ".join(note for note in notes if note) or None


# --- bytes ----------------------------------------------------------------------------------


def check_complete(uri: str, source: str | None, data: bytes) -> None:
    """An AnnotationError naming `source` and the image `uri` when `data`, a JPEG or PNG, is
    cut short: for writers that embed image files as they are found."""
    _check_complete(uri, source, _embeddable_kind(data), data)


def _check_complete(uri: str, source: str | None, kind: str | None, data: bytes) -> None:
    """TensorFlow refuses a JPEG or PNG cut short (even by its end marker alone)."""
    # Searched from the end, where the marker normally is: a forward search would crawl
    # through every 0xFF byte of the scan.
    if kind == "jpeg" and data.rfind(_JPEG_EOI) < _jpeg_scan_start(data):
        raise _image_error(uri, source, "is truncated: no JPEG end-of-image marker")
    if kind == "png" and data.rfind(_PNG_IEND) < 0:
        raise _image_error(uri, source, "is truncated: no PNG IEND chunk")


def _jpeg_scan_start(data: bytes) -> int:
    """Where the first scan's data begins, past segments (EXIF thumbnails) that hold EOIs."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:
            return position
    return 2  # not a layout we can walk: search the whole file


def _transcode(
    image: Image.Image, kind: str | None, frame: _Frame, jpeg_quality: int, png_level: int
) -> tuple[bytes, str, tuple[int, int]]:
    """(bytes, format, size) of the first frame encoded for TF, turned to `frame`."""
    pixels = _turned_pixels(image, frame)
    if kind is None:
        pixels = _without_opaque_alpha(pixels)
    encoded_format, mode = _target(pixels.mode, kind)
    if pixels.mode != mode:
        pixels = pixels.convert(mode)
    # Metadata copied from the source (ICC profile, EXIF, dpi) must not reach the output;
    # a palette's transparent index is pixel data and stays.
    pixels.info = {k: v for k, v in pixels.info.items() if k == "transparency"}
    buffer = BytesIO()
    if encoded_format == "jpeg":
        pixels.save(buffer, "JPEG", quality=jpeg_quality, optimize=True)
    else:
        pixels.save(buffer, "PNG", compress_level=png_level)
    return buffer.getvalue(), encoded_format, pixels.size


def in_annotated_frame(image: Image.Image, annotated: tuple[int, int] | None) -> Image.Image:
    """The pixels of an opened image file in the frame its annotation (of size `annotated`)
    uses: turned as its EXIF orientation displays them, or as stored, by the rules above
    (``exif="auto"``). For loaders that decode image files as found."""
    return _turned_pixels(image, _choose_frame(image, annotated, "auto"))


def _turned_pixels(image: Image.Image, frame: _Frame) -> Image.Image:
    image.load()
    # Pillow 13 turns TIFFs to their orientation on load and then drops the tag.
    turned_on_load = frame.orientation != 1 and exif_orientation(image) != frame.orientation
    if frame.orientation == 1 or frame.displayed == turned_on_load:
        return image
    return image.transpose(_turns(frame.displayed)[frame.orientation])


def _without_opaque_alpha(image: Image.Image) -> Image.Image:
    """The image without an alpha channel that is opaque everywhere (it carries nothing)."""
    if "A" not in image.getbands():
        return image
    lowest, _ = image.getchannel("A").getextrema()
    if lowest != 255:
        return image
    return image.convert("L" if image.mode in ("LA", "La") else "RGB")


def _target(mode: str, kind: str | None) -> tuple[str, str]:
    """(format, mode) to encode decoded pixels in; a turned JPEG or PNG keeps its format."""
    if kind == "jpeg":
        return "jpeg", mode if mode in _JPEG_MODES else "RGB"
    if kind == "png" and mode == "RGB":
        return "png", "RGB"
    return _LOSSLESS.get(mode, _PHOTO)


# --- messages -------------------------------------------------------------------------------


def _image_error(
    uri: str, source: str | None, problem: str, kind: type[AnnotationError] = AnnotationError
) -> AnnotationError:
    if source is None or source == uri:
        return kind(uri, f"image {problem}")
    return kind(source, f"image {uri} {problem}")


def _say(uri: str, source: str | None, problem: str) -> str:
    return str(_image_error(uri, source, problem))
