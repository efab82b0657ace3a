"""The size of a plain JPEG or PNG read straight from its header bytes, without Pillow.

Embedding an image byte for byte needs only its size and EXIF orientation. Opening it with
Pillow costs more than reading, hashing and writing it; the walk below reads the same
header fields Pillow reads. It answers only for files it can vouch for: no EXIF or other
APPn segments but JFIF's (a JPEG's orientation lives in APP1), no PNG chunks but a few
plain ones (a PNG's lives in eXIf), sizes Pillow would open without a decompression-bomb
warning, and no header Pillow would refuse. For anything else it returns None and the
caller asks Pillow, whose answer (or error) stands.
"""

from __future__ import annotations

import zlib

_JPEG_SOI = b"\xff\xd8\xff"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers Pillow reads the size from (SOF0-SOF15 but DHT, JPG, DAC; and DHP).
_SOF = frozenset({*range(0xC0, 0xD0), 0xDE}) - {0xC4, 0xC8, 0xCC}
# Segments Pillow skips, or reads without a check that could fail on a well-formed length.
_SKIPPED = frozenset({0xC4, 0xCC, 0xDC, 0xDD, 0xDF, 0xFE})
_APP0, _DQT, _SOS = 0xE0, 0xDB, 0xDA
# (bit depth, colour type) pairs Pillow opens.
_PNG_MODES = frozenset(
    {(1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2), (1, 3), (2, 3), (4, 3), (8, 3)}
    | {(8, 4), (16, 4), (8, 6), (16, 6)}
)
# Chunks before IDAT that carry no orientation, with the least length Pillow reads of each.
_PNG_PLAIN_CHUNKS = {b"PLTE": 0, b"gAMA": 4, b"cHRM": 0, b"sRGB": 1, b"pHYs": 9}


def plain_image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a plain JPEG or PNG with no EXIF orientation, or None when
    Pillow must be asked (another format, other metadata, anything unusual)."""
    from PIL import Image, ImageFile  # here: a parallel run's driver reads no image

    if ImageFile.LOAD_TRUNCATED_IMAGES:
        return None  # Pillow then reads damaged headers its own lenient way
    if data.startswith(_JPEG_SOI):
        size = _jpeg_size(data)
    elif data.startswith(_PNG_SIGNATURE):
        size = _png_size(data)
    else:
        return None
    limit = Image.MAX_IMAGE_PIXELS
    if size is None or (limit is not None and size[0] * size[1] > limit):
        return None
    return size


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in the frame header, walking the segments up to the first scan."""
    size = None
    position, end = 2, len(data)
    while position + 4 <= end and data[position] == 0xFF:
        marker = data[position + 1]
        length = data[position + 2] << 8 | data[position + 3]
        body_start, body_end = position + 4, position + 2 + length
        if length < 2 or body_end > end:
            return None
        if marker == _SOS:
            return size
        if marker in _SOF:
            if size is not None:
                return None  # Pillow keeps the last of several frames
            size = _frame_size(data[body_start:body_end])
            if size is None:
                return None
        elif marker == _DQT:
            if not _valid_quantization(data[body_start:body_end]):
                return None
        elif marker == _APP0:
            if data.startswith(b"JFIF", body_start) and length - 2 < 7:
                return None  # too short for the JFIF version Pillow reads
        elif marker not in _SKIPPED:
            return None  # EXIF, ICC, XMP, MPF, Adobe and the rest: Pillow's business
        position = body_end
    return None


def _frame_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) of a start-of-frame body Pillow accepts (8 bits, 1, 3 or 4 layers)."""
    if len(frame) < 6 or frame[0] != 8 or frame[5] not in (1, 3, 4):
        return None
    height, width = frame[1] << 8 | frame[2], frame[3] << 8 | frame[4]
    return (width, height) if width and height else None


def _valid_quantization(tables: bytes) -> bool:
    """Whether the tables of a DQT segment are complete, as Pillow checks."""
    position = 0
    while position < len(tables):
        precision = 1 if tables[position] < 16 else 2
        position += 1 + 64 * precision
        if position > len(tables):
            return False
    return True


def _png_size(data: bytes) -> tuple[int, int] | None:
    """The size in IHDR, every chunk up to the first IDAT plain and its CRC right."""
    position, end = len(_PNG_SIGNATURE), len(data)
    size = None
    while position + 8 <= end:
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        body_start = position + 8
        body_end = body_start + length
        if body_end + 4 > end:
            return None
        if kind == b"IDAT":
            return size
        body = data[body_start:body_end]
        if zlib.crc32(body, zlib.crc32(kind)) != int.from_bytes(
            data[body_end : body_end + 4], "big"
        ):
            return None
        if kind == b"IHDR":
            if size is not None or length < 13 or (body[8], body[9]) not in _PNG_MODES:
                return None
            if body[11]:
                return None  # an unknown filter method, which Pillow refuses
            size = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big")
            if not size[0] or not size[1]:
                return None
        elif size is None or length < _PNG_PLAIN_CHUNKS.get(kind, length + 1):
            return None  # IHDR must come first; other chunks are Pillow's business
        position = body_end + 4
    return None
