"""Hand-read JPEG and PNG sizes: the same as Pillow's for plain files, None (ask Pillow) for
anything carrying an orientation, other metadata or damage."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from typing import Any

import pytest
from PIL import Image, ImageFile

from annoconv.io.headers import plain_image_size


def encoded(mode: str, size: tuple[int, int], fmt: str, **options: Any) -> bytes:
    image = Image.new(mode, size, 0 if mode in ("1", "L", "I;16", "P") else (0,) * len(mode))
    buffer = BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def pillow_size(data: bytes) -> tuple[int, int]:
    with Image.open(BytesIO(data)) as image:
        return image.size


def exif(orientation: int) -> Image.Exif:
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def with_chunk(png: bytes, chunk: bytes) -> bytes:
    """`png` with `chunk` inserted right after IHDR (8 signature + 25 IHDR bytes)."""
    return png[:33] + chunk + png[33:]


PLAIN = [
    ("RGB", (64, 48), "JPEG", {}),
    ("RGB", (48, 64), "JPEG", {"progressive": True, "quality": 80}),
    ("RGB", (300, 7), "JPEG", {"optimize": True, "subsampling": 0}),
    ("L", (33, 17), "JPEG", {}),
    ("RGB", (5000, 1), "JPEG", {"comment": b"made by a test"}),
    ("RGB", (64, 48), "PNG", {}),
    ("RGBA", (31, 29), "PNG", {}),
    ("L", (17, 3), "PNG", {}),
    ("1", (65, 9), "PNG", {}),
    ("I;16", (20, 30), "PNG", {}),
    ("P", (40, 20), "PNG", {}),
    ("LA", (12, 12), "PNG", {}),
    ("RGB", (64, 48), "PNG", {"dpi": (300, 300)}),
]


@pytest.mark.parametrize(("mode", "size", "fmt", "options"), PLAIN)
def test_plain_files_give_pillows_size(
    mode: str, size: tuple[int, int], fmt: str, options: dict[str, Any]
) -> None:
    data = encoded(mode, size, fmt, **options)
    assert plain_image_size(data) == pillow_size(data) == size


def test_interlaced_png_gives_pillows_size() -> None:
    png = encoded("RGB", (23, 19), "PNG")
    header = bytearray(png[16:29])
    header[12] = 1  # Adam7 interlacing
    interlaced = png[:8] + png_chunk(b"IHDR", bytes(header)) + png[33:]
    assert plain_image_size(interlaced) == pillow_size(interlaced) == (23, 19)


OTHERS = {
    "CMYK JPEG (Adobe APP14)": encoded("CMYK", (20, 10), "JPEG"),
    "EXIF-rotated JPEG": encoded("RGB", (64, 48), "JPEG", exif=exif(6)),
    "JPEG with orientation 1 in EXIF": encoded("RGB", (64, 48), "JPEG", exif=exif(1)),
    "JPEG with an ICC profile": encoded("RGB", (8, 8), "JPEG", icc_profile=b"\0" * 200),
    "PNG with eXIf": encoded("RGB", (64, 48), "PNG", exif=exif(6)),
    "PNG with transparency": encoded("P", (8, 8), "PNG", transparency=0),
    "PNG with text": with_chunk(encoded("RGB", (8, 8), "PNG"), png_chunk(b"tEXt", b"k\0v")),
    "GIF": encoded("P", (8, 8), "GIF"),
    "BMP": encoded("RGB", (8, 8), "BMP"),
    "TIFF": encoded("RGB", (8, 8), "TIFF"),
}


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_files_with_more_than_a_size_are_left_to_pillow(name: str) -> None:
    data = OTHERS[name]
    assert plain_image_size(data) is None
    assert pillow_size(data)  # all real images Pillow reads


def test_cmyk_and_exif_jpegs_still_have_a_frame_pillow_would_read() -> None:
    """The walk stops at the APPn segments, not because the frame is unreadable."""
    cmyk = OTHERS["CMYK JPEG (Adobe APP14)"]
    assert b"\xff\xee" in cmyk and pillow_size(cmyk) == (20, 10)


def damaged_variants() -> dict[str, bytes]:
    jpeg = encoded("RGB", (64, 48), "JPEG")
    png = encoded("RGB", (64, 48), "PNG")
    sof = jpeg.index(b"\xff\xc0")
    ihdr = bytearray(png[16:29])
    ihdr[11] = 1  # unknown filter method
    return {
        "JPEG cut inside its headers": jpeg[: sof + 6],
        "JPEG with 12-bit samples": jpeg[: sof + 4] + b"\x0c" + jpeg[sof + 5 :],
        "JPEG with 2 layers": jpeg[: sof + 9] + b"\x02" + jpeg[sof + 10 :],
        "JPEG with zero width": jpeg[: sof + 7] + b"\0\0" + jpeg[sof + 9 :],
        "JPEG with a short DQT": jpeg.replace(b"\xff\xdb\x00\x43", b"\xff\xdb\x00\x13", 1),
        "JPEG with junk between segments": jpeg[:20] + b"\x00" + jpeg[20:],
        "PNG with a bad IHDR CRC": png[:29] + b"\0\0\0\0" + png[33:],
        "PNG with an unknown filter method": png[:8] + png_chunk(b"IHDR", bytes(ihdr)) + png[33:],
        "PNG with an unknown mode": png[:24] + b"\x05" + png[25:],
        "PNG cut before IDAT": png[:33],
        "PNG with IDAT first": png[:8] + png[png.index(b"IDAT") - 4 :],
    }


@pytest.mark.parametrize("name", sorted(damaged_variants()))
def test_damaged_headers_are_left_to_pillow(name: str) -> None:
    assert plain_image_size(damaged_variants()[name]) is None


def test_sizes_pillow_warns_about_are_left_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encoded("RGB", (64, 48), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    assert plain_image_size(data) is None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 48)
    assert plain_image_size(data) == (64, 48)


def test_lenient_pillow_mode_is_left_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert plain_image_size(encoded("RGB", (8, 8), "PNG")) is None
