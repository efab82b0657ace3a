"""`tf.train.Example` encoding and TFRecord files, without TensorFlow or protobuf.

Examples are written straight in the protobuf wire format. The messages involved:

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }  // entry { string key = 1; Feature value = 2; }
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                             Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

Our output is byte for byte what protobuf's deterministic serialization gives: map keys sorted.
(upb, protobuf's Python backend, writes a key after the longer keys it is a prefix of; C++
protobuf and we sort plainly. Either way the message is the same.)
A TFRecord file is a sequence of framed records (length, masked CRC32C of the length, payload,
masked CRC32C of the payload), optionally compressed as a whole with GZIP or ZLIB.
"""

from __future__ import annotations

import functools
import io
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar, Final, Literal

import google_crc32c

from annoconv.errors import AnnoconvError, AnnotationError
from annoconv.io.fs import AtomicFile, open_input

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class Keys:
    """The feature keys of the TF Object Detection API's Examples, in one place."""

    HEIGHT: Final = "image/height"
    WIDTH: Final = "image/width"
    FILENAME: Final = "image/filename"
    SOURCE_ID: Final = "image/source_id"
    SHA256: Final = "image/key/sha256"
    ENCODED: Final = "image/encoded"
    FORMAT: Final = "image/format"
    BBOX_XMIN: Final = "image/object/bbox/xmin"
    BBOX_XMAX: Final = "image/object/bbox/xmax"
    BBOX_YMIN: Final = "image/object/bbox/ymin"
    BBOX_YMAX: Final = "image/object/bbox/ymax"
    OBJECT_CLASS_TEXT: Final = "image/object/class/text"
    OBJECT_CLASS_LABEL: Final = "image/object/class/label"
    OBJECT_DIFFICULT: Final = "image/object/difficult"
    OBJECT_TRUNCATED: Final = "image/object/truncated"
    OBJECT_GROUP_OF: Final = "image/object/group_of"
    OBJECT_OCCLUDED: Final = "image/object/occluded"
    OBJECT_DEPICTION: Final = "image/object/depiction"
    OBJECT_VIEW: Final = "image/object/view"
    IMAGE_CLASS_TEXT: Final = "image/class/text"
    IMAGE_CLASS_LABEL: Final = "image/class/label"
    IMAGE_CLASS_CONFIDENCE: Final = "image/class/confidence"


class ExampleDecodeError(AnnoconvError, ValueError):
    """Bytes that are not a valid serialized `tf.train.Example`."""


class TFRecordError(AnnotationError):
    """A corrupt or truncated TFRecord file; names the file, the record and its byte offset."""

    def __init__(
        self, uri: str, message: str, index: int, offset: int, decompressed: bool = False
    ) -> None:
        self.index = index
        self.offset = offset
        where = f"record {index} at byte {offset}"
        super().__init__(
            uri, message, f"{where} of the decompressed data" if decompressed else where
        )


# --- protobuf wire format ---------------------------------------------------------------------

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = range(6)
_UINT64: Final = (1 << 64) - 1
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_FIELD_1: Final = b"\x0a"  # field 1, length-delimited
_FIELD_2: Final = b"\x12"  # field 2, length-delimited


@functools.lru_cache(maxsize=1 << 12)
def _varint(value: int) -> bytes:
    """A base-128 varint; negative numbers as their 64-bit two's complement (10 bytes)."""
    value &= _UINT64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(tag: bytes, body: bytes) -> bytes:
    return tag + _varint(len(body)) + body


# --- features -------------------------------------------------------------------------------

FeatureKind = Literal["bytes", "float", "int64"]


@dataclass(frozen=True, slots=True)
class BytesFeature:
    values: tuple[bytes, ...]
    kind: ClassVar[FeatureKind] = "bytes"
    tag: ClassVar[bytes] = b"\x0a"  # Feature.bytes_list

    def list_body(self) -> list[bytes]:
        parts: list[bytes] = []
        for value in self.values:
            parts += (_FIELD_1 + _varint(len(value)), value)
        return parts


@dataclass(frozen=True, slots=True)
class FloatFeature:
    values: tuple[float, ...]
    kind: ClassVar[FeatureKind] = "float"
    tag: ClassVar[bytes] = b"\x12"  # Feature.float_list

    def list_body(self) -> list[bytes]:
        return [_length_delimited(_FIELD_1, _pack_floats(self.values))] if self.values else []


@dataclass(frozen=True, slots=True)
class Int64Feature:
    values: tuple[int, ...]
    kind: ClassVar[FeatureKind] = "int64"
    tag: ClassVar[bytes] = b"\x1a"  # Feature.int64_list

    def list_body(self) -> list[bytes]:
        return [_length_delimited(_FIELD_1, _pack_varints(self.values))] if self.values else []


Feature = BytesFeature | FloatFeature | Int64Feature


def bytes_feature(values: Iterable[bytes]) -> BytesFeature:
    return BytesFeature(tuple(values))


def float_feature(values: Iterable[float]) -> FloatFeature:
    """Floats, stored as float32 (rounded to nearest; beyond float32's range they become inf)."""
    return FloatFeature(tuple(values))


def int64_feature(values: Iterable[int]) -> Int64Feature:
    feature = Int64Feature(tuple(values))
    if feature.values and (min(feature.values) < _INT64_MIN or max(feature.values) > _INT64_MAX):
        wrong = [v for v in feature.values if not _INT64_MIN <= v <= _INT64_MAX]
        raise ValueError(f"int64 feature values out of range: {wrong[:5]}")
    return feature


def _pack_floats(values: tuple[float, ...]) -> bytes:
    try:
        return struct.pack(f"<{len(values)}f", *values)
    except OverflowError:
        # struct refuses what does not fit a float32; protobuf (a C cast) stores inf instead.
        packed = array("f", values)
        if sys.byteorder == "big":
            packed.byteswap()
        return packed.tobytes()


def _pack_varints(values: tuple[int, ...]) -> bytes:
    if min(values) >= 0 and max(values) < 0x80:
        return bytes(values)  # the usual flags, ids and sizes below 128: one byte each
    return b"".join(map(_varint, values))


def encode_example(features: Mapping[str, Feature]) -> bytes:
    """A serialized `tf.train.Example`; keys sorted, so equal inputs give equal bytes.

    An empty value list is still written (as an empty list), so TensorFlow sees the feature
    with zero values: negative images keep their (empty) box lists.
    """
    entries: list[bytes] = []
    for key in sorted(features):
        entries += _map_entry(key, features[key])
    return b"".join([_FIELD_1, _varint(sum(map(len, entries))), *entries])


def _map_entry(key: str, feature: Feature) -> list[bytes]:
    """A `Features.feature` map entry as parts, so large values (images) are copied only once."""
    body = feature.list_body()
    body_size = sum(map(len, body))
    value_head = feature.tag + _varint(body_size)
    head = _entry_key(key) + _varint(len(value_head) + body_size) + value_head
    return [_FIELD_1 + _varint(len(head) + body_size) + head, *body]


@functools.lru_cache(maxsize=1 << 10)
def _entry_key(key: str) -> bytes:
    """A map entry's key field and the tag of its value field, the same for every Example."""
    return _length_delimited(_FIELD_1, key.encode()) + _FIELD_2


# --- decoding -------------------------------------------------------------------------------

#: "none" is a Feature with no list set at all (TensorFlow reads it as an empty list).
DecodedKind = Literal["bytes", "float", "int64", "none"]
DecodedFeature = tuple[DecodedKind, list[Any]]
_LIST_KINDS: Final[dict[int, FeatureKind]] = {1: "bytes", 2: "float", 3: "int64"}


def decode_example(data: bytes) -> dict[str, DecodedFeature]:
    """The features of a serialized `tf.train.Example`: key -> (kind, values).

    Reads anything protobuf would: fields in any order, repeated numbers packed or not, unknown
    fields skipped, repeated messages merged. Raises `ExampleDecodeError` on malformed bytes.
    """
    data = bytes(data)
    features: dict[str, DecodedFeature] = {}
    for number, wire, start, stop in _fields(data, 0, len(data)):
        if number == 1 and wire == _LEN:
            for entry_number, entry_wire, begin, end in _fields(data, start, stop):
                if entry_number == 1 and entry_wire == _LEN:
                    key, feature = _decode_entry(data, begin, end)
                    features[key] = feature
    return features


def _decode_entry(data: bytes, start: int, stop: int) -> tuple[str, DecodedFeature]:
    key = ""
    feature: DecodedFeature = ("none", [])
    for number, wire, begin, end in _fields(data, start, stop):
        if wire != _LEN:
            continue
        if number == 1:
            key = _decode_text(data[begin:end], begin)
        elif number == 2:
            feature = _decode_feature(data, begin, end, feature)
    return key, feature


def _decode_text(raw: bytes, pos: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(f"feature name {raw!r} is not UTF-8", pos) from None


def _decode_feature(data: bytes, start: int, stop: int, previous: DecodedFeature) -> DecodedFeature:
    """A Feature message merged into `previous`, as protobuf merges a repeated message field."""
    kind, values = previous
    for number, wire, begin, end in _fields(data, start, stop):
        list_kind = _LIST_KINDS.get(number)
        if list_kind is None or wire != _LEN:
            continue
        if list_kind != kind:  # another member of the oneof replaces the previous one
            kind, values = list_kind, []
        values.extend(_LIST_DECODERS[list_kind](data, begin, end))
    return kind, values


def _decode_bytes_list(data: bytes, start: int, stop: int) -> list[bytes]:
    return [
        data[begin:end]
        for number, wire, begin, end in _fields(data, start, stop)
        if number == 1 and wire == _LEN
    ]


def _decode_float_list(data: bytes, start: int, stop: int) -> list[float]:
    values: list[float] = []
    for number, wire, begin, end in _fields(data, start, stop):
        if number == 1 and wire == _LEN:
            if (end - begin) % 4:
                raise _malformed(f"packed float list of {end - begin} bytes", begin)
            values += struct.unpack_from(f"<{(end - begin) // 4}f", data, begin)
        elif number == 1 and wire == _I32:
            values += struct.unpack_from("<f", data, begin)
    return values


def _decode_int64_list(data: bytes, start: int, stop: int) -> list[int]:
    values: list[int] = []
    for number, wire, begin, end in _fields(data, start, stop):
        if number == 1 and wire == _LEN:
            values += _unpack_varints(data, begin, end)
        elif number == 1 and wire == _VARINT:
            values.append(_signed(_read_varint(data, begin, end)[0]))
    return values


_LIST_DECODERS: Final[dict[FeatureKind, Callable[[bytes, int, int], list[Any]]]] = {
    "bytes": _decode_bytes_list,
    "float": _decode_float_list,
    "int64": _decode_int64_list,
}


def _unpack_varints(data: bytes, pos: int, end: int) -> list[int]:
    chunk = data[pos:end]
    if not chunk or max(chunk) < 0x80:
        return list(chunk)  # every value a single byte
    values = []
    while pos < end:
        value, pos = _read_varint(data, pos, end)
        values.append(_signed(value))
    return values


def _signed(value: int) -> int:
    value &= _UINT64  # protobuf keeps the low 64 bits of an overlong varint
    return value - (1 << 64) if value > _INT64_MAX else value


def _malformed(problem: str, pos: int) -> ExampleDecodeError:
    return ExampleDecodeError(f"malformed tf.train.Example: {problem} at byte {pos}")


def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it)."""
    start = pos
    value = shift = 0
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise _malformed("varint longer than 10 bytes", start)
    raise _malformed("truncated varint", start)


def _fields(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, start, stop) of each field of the message in data[pos:end].

    The span is the payload of a length-delimited field or group, else the value's own bytes.
    """
    while pos < end:
        tag_start = pos
        key = data[pos]
        if key < 0x80:  # one-byte tags and lengths are by far the most common: skip the call
            pos += 1
        else:
            key, pos = _read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _malformed("field number 0", tag_start)
        if wire == _SGROUP:
            stop, after = _skip_group(data, number, pos, end)
            yield number, wire, pos, stop
            pos = after
            continue
        if wire == _LEN:
            if pos < end and data[pos] < 0x80:
                pos += 1
                stop = pos + data[pos - 1]
            else:
                size, pos = _read_varint(data, pos, end)
                stop = pos + size
        else:
            stop = _scalar_end(data, wire, pos, end, tag_start)
        if stop > end:
            raise _malformed(f"field {number} runs {stop - end} byte(s) past its message", pos)
        yield number, wire, pos, stop
        pos = stop


def _scalar_end(data: bytes, wire: int, pos: int, end: int, tag_start: int) -> int:
    if wire == _VARINT:
        return _read_varint(data, pos, end)[1]
    if wire == _I64:
        return pos + 8
    if wire == _I32:
        return pos + 4
    raise _malformed(f"unexpected wire type {wire}", tag_start)


def _skip_group(data: bytes, number: int, pos: int, end: int) -> tuple[int, int]:
    """(end of the group's contents, position after its end tag); groups may nest."""
    open_groups = [number]
    while True:
        tag_start = pos
        if pos >= end:
            raise _malformed(f"group {number} has no end", tag_start)
        key, pos = _read_varint(data, pos, end)
        inner, wire = key >> 3, key & 7
        if inner == 0:
            raise _malformed("field number 0", tag_start)
        if wire == _EGROUP:
            if inner != open_groups.pop():
                raise _malformed(f"end of group {inner} inside another group", tag_start)
            if not open_groups:
                return tag_start, pos
        elif wire == _SGROUP:
            open_groups.append(inner)
        elif wire == _LEN:
            size, pos = _read_varint(data, pos, end)
            pos += size
        else:
            pos = _scalar_end(data, wire, pos, end, tag_start)


# --- TFRecord framing -----------------------------------------------------------------------

Compression = Literal["GZIP", "ZLIB"] | None
_HEADER = struct.Struct("<QI")
_CRC = struct.Struct("<I")
_MASK_DELTA: Final = 0xA282EAD8
#: What TensorFlow's ZlibCompressionOptions use; with them our compressed files are byte for
#: byte the ones `tf.io.TFRecordWriter` writes (zlib's default level, memory level 9).
_MEM_LEVEL: Final = 9
_WBITS: Final = {"GZIP": zlib.MAX_WBITS | 16, "ZLIB": zlib.MAX_WBITS}


def masked_crc32c(data: bytes) -> int:
    """CRC-32C of `data`, masked as TFRecord stores it (rotated right by 15, plus a constant)."""
    crc = int(google_crc32c.value(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _header(length: int) -> bytes:
    size = struct.pack("<Q", length)
    return size + _CRC.pack(masked_crc32c(size))


def frame_record(payload: bytes) -> bytes:
    """One TFRecord record: length, its masked CRC, the payload, the payload's masked CRC."""
    return _header(len(payload)) + payload + _CRC.pack(masked_crc32c(payload))


class TFRecordWriter:
    """Writes a TFRecord file that appears under `uri` only when `close()` succeeds.

    With GZIP or ZLIB the whole stream is compressed (mtime 0, no file name), byte-identical to
    TensorFlow's own writer. Usable as a context manager (closes, or aborts on an exception).
    """

    def __init__(self, uri: str, compression: Compression = None) -> None:
        if compression not in (None, "GZIP", "ZLIB"):
            raise ValueError(f"compression must be None, 'GZIP' or 'ZLIB', not {compression!r}")
        self.uri = uri
        self.compression = compression
        self._file = AtomicFile(uri)
        self._compressor = (
            zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, _WBITS[compression], _MEM_LEVEL
            )
            if compression
            else None
        )
        self._bytes_written = 0
        self._closed = False

    @property
    def bytes_written(self) -> int:
        """Framed bytes written so far, before compression."""
        return self._bytes_written

    def write(self, payload: bytes) -> None:
        if self._closed:
            raise ValueError(f"{self.uri}: write to a closed TFRecordWriter")
        for part in (_header(len(payload)), payload, _CRC.pack(masked_crc32c(payload))):
            self._emit(self._compressor.compress(part) if self._compressor else part)
        self._bytes_written += len(payload) + 16

    def close(self) -> int:
        """Finish and publish the file; returns its size in bytes."""
        if self._closed:
            raise ValueError(f"{self.uri}: TFRecordWriter already closed")
        try:
            if self._compressor:
                self._emit(self._compressor.flush())
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self._file.commit()

    def abort(self) -> None:
        """Throw the file away; safe to call more than once, and after `close()`."""
        self._closed = True
        self._file.abort()

    def _emit(self, data: bytes) -> None:
        if data:
            self._file.write(data)

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --- TFRecord reading -----------------------------------------------------------------------

_READ_CHUNK: Final = 1 << 18
_MAX_READ: Final = 1 << 24  # a garbage length (verify=False) must not become one huge read


def iter_tfrecords(
    uri: str,
    compression: Literal["GZIP", "ZLIB", "auto"] | None = None,
    verify: bool = True,
    on_damage: Callable[[TFRecordError], None] | None = None,
) -> Iterator[bytes]:
    """The payloads of a TFRecord file, one at a time (memory bounded by the largest record).

    With `verify` both CRCs of every record are checked. "auto" tells plain, GZIP and ZLIB
    files apart by their first bytes. Corrupt or truncated files raise `TFRecordError`;
    with `on_damage`, a corrupt record is handed to it instead and reading goes on: after a
    payload whose CRC fails, with the next record (its length was sound); after a length
    whose CRC fails, with the next place where a sound record header starts (the bytes in
    between are lost, and the error says how many). The framing allows this: a header is
    a length and its masked CRC32C, which garbage matches once in 2^32 places.
    """
    if compression not in (None, "GZIP", "ZLIB", "auto"):
        raise ValueError(f"compression must be None, 'GZIP', 'ZLIB' or 'auto', not {compression!r}")
    return _read_file(uri, compression, verify, on_damage)


def _read_file(
    uri: str,
    compression: Literal["GZIP", "ZLIB", "auto"] | None,
    verify: bool,
    on_damage: Callable[[TFRecordError], None] | None = None,
) -> Iterator[bytes]:
    with open_input(uri) as handle:
        if compression == "auto":
            compression = _detect_compression(handle.read(_HEADER.size))
            handle.seek(0)
        if compression is None:
            yield from _records(handle, uri, verify, on_damage=on_damage)
        else:
            stream = io.BufferedReader(_InflateReader(handle, compression), _READ_CHUNK)
            yield from _records(stream, uri, verify, decompressed=True, on_damage=on_damage)


def _detect_compression(head: bytes) -> Compression:
    if len(head) == _HEADER.size and _valid_header(head):
        return None  # a plain record can start with bytes that look like a zlib header
    if head[:2] == b"\x1f\x8b":
        return "GZIP"
    if len(head) >= 2 and _is_zlib_header(head[0], head[1]):
        return "ZLIB"
    return None


def _is_zlib_header(cmf: int, flg: int) -> bool:
    """RFC 1950: deflate with a window of at most 32 KiB, and a header check that adds up."""
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0


def _valid_header(header: bytes) -> bool:
    stored: int = _CRC.unpack_from(header, 8)[0]
    return masked_crc32c(header[:8]) == stored


def _records(
    raw: IO[bytes],
    uri: str,
    verify: bool,
    decompressed: bool = False,
    on_damage: Callable[[TFRecordError], None] | None = None,
) -> Iterator[bytes]:
    stream = _Rewindable(raw)
    offset = index = 0

    def fail(message: str) -> TFRecordError:
        return TFRecordError(uri, message, index, offset, decompressed)

    while True:
        try:
            header = _read_exact(stream, _HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                raise fail(f"truncated: the record header has {len(header)} of 12 bytes")
            length, length_crc = _HEADER.unpack(header)
            if verify and masked_crc32c(header[:8]) != length_crc:
                problem = "corrupt: the CRC of the record length does not match"
                if on_damage is None:
                    raise fail(problem)
                found = _next_header(stream, header)
                if found is None:
                    on_damage(fail(f"{problem}; no sound record follows (the rest is lost)"))
                    return
                skipped, header = found
                on_damage(fail(f"{problem}; {skipped} bytes lost before the next sound record"))
                offset += skipped
                length, length_crc = _HEADER.unpack(header)
            payload = _read_exact(stream, length)
            footer = _read_exact(stream, 4)
        except EOFError as error:
            raise fail(f"truncated: {error}") from None
        except zlib.error as error:
            raise fail(f"corrupt compressed data: {error}") from None
        if len(payload) < length or len(footer) < 4:
            raise fail(f"truncated: the record of {length} bytes is cut short")
        if verify and masked_crc32c(payload) != _CRC.unpack(footer)[0]:
            damaged = fail(f"corrupt: the CRC of the {length}-byte payload does not match")
            if on_damage is None:
                raise damaged
            on_damage(damaged)
        else:
            yield payload
        offset += length + 16
        index += 1


#: The upper half of a record length: zero for every record under 4 GiB, which is where a
#: resync looks for headers.
_HIGH_ZEROS: Final = b"\x00\x00\x00\x00"


def _next_header(stream: _Rewindable, bad: bytes) -> tuple[int, bytes] | None:
    """After the bad header `bad`: (bytes skipped, header) of the next sound record header
    (a length under 4 GiB and its CRC), the stream left just after it; None at the end."""
    data, skipped = bad[1:], 1
    while True:
        start = 0
        while (found := data.find(_HIGH_ZEROS, start + 4)) >= 0:
            start = found - 4
            if start + _HEADER.size > len(data):
                break
            if _valid_header(data[start : start + _HEADER.size]):
                stream.unread(data[start + _HEADER.size :])
                return skipped + start, data[start : start + _HEADER.size]
            start += 1
        keep = min(len(data), _HEADER.size - 1)
        skipped += len(data) - keep
        more = stream.read(_READ_CHUNK)
        if not more:
            return None
        data = data[len(data) - keep :] + more


class _Rewindable:
    """A stream that bytes read too far can be given back to."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._head = b""

    def read(self, size: int) -> bytes:
        if not self._head:
            return self._stream.read(size)
        taken, self._head = self._head[:size], self._head[size:]
        return taken

    def unread(self, data: bytes) -> None:
        self._head = data + self._head


def _read_exact(stream: IO[bytes] | _Rewindable, size: int) -> bytes:
    """`size` bytes, or fewer only at the end of the stream."""
    chunks = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, _MAX_READ))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _InflateReader(io.RawIOBase):
    """A GZIP or ZLIB stream decompressed on the fly, in bounded memory.

    Concatenated GZIP members read as one stream, as `gzip` does.
    """

    def __init__(self, raw: IO[bytes], compression: Literal["GZIP", "ZLIB"]) -> None:
        self._raw = raw
        self._compression = compression
        self._inflater = zlib.decompressobj(_WBITS[compression])
        self._input = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            if self._inflater.eof and not self._next_member():
                return 0
            if not self._input:
                self._input = self._raw.read(_READ_CHUNK)
                if not self._input:
                    raise EOFError(f"the {self._compression} stream ends before its end marker")
            out = self._inflater.decompress(self._input, len(view))
            self._input = self._inflater.unconsumed_tail
            if out:
                view[: len(out)] = out
                return len(out)

    def _next_member(self) -> bool:
        """Start on the data after a finished stream; False at the end of the file."""
        rest = self._inflater.unused_data or self._input or self._raw.read(_READ_CHUNK)
        if not rest:
            return False
        if self._compression == "ZLIB":
            raise zlib.error("data after the end of the ZLIB stream")
        self._inflater = zlib.decompressobj(_WBITS["GZIP"])
        self._input = rest
        return True
