"""Examples and TFRecord files written without TensorFlow, checked against TensorFlow itself."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import math
import random
import struct
import tracemalloc
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from annoconv.errors import AnnoconvError
from annoconv.tfexample import (
    BytesFeature,
    DecodedFeature,
    ExampleDecodeError,
    Feature,
    FloatFeature,
    Keys,
    TFRecordError,
    TFRecordWriter,
    bytes_feature,
    decode_example,
    encode_example,
    float_feature,
    frame_record,
    int64_feature,
    iter_tfrecords,
    masked_crc32c,
)

INT64 = st.integers(-(2**63), 2**63 - 1)
_KINDS = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}


@pytest.fixture(scope="module")
def tf() -> Any:
    import tensorflow

    return tensorflow


def tf_example(tf: Any, features: Mapping[str, Feature]) -> Any:
    """The same features, as TensorFlow's own `tf.train.Example`."""

    def one(feature: Feature) -> Any:
        if isinstance(feature, BytesFeature):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=feature.values))
        if isinstance(feature, FloatFeature):
            return tf.train.Feature(float_list=tf.train.FloatList(value=feature.values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=feature.values))

    feature_map = {key: one(feature) for key, feature in features.items()}
    return tf.train.Example(features=tf.train.Features(feature=feature_map))


def as_decoded(example: Any) -> dict[str, DecodedFeature]:
    """What `decode_example` should return for a parsed `tf.train.Example`."""
    decoded: dict[str, DecodedFeature] = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        decoded[key] = (_KINDS[kind] if kind else "none", values)  # type: ignore[assignment]
    return decoded


def float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def od_features(image: bytes) -> dict[str, Feature]:
    """A realistic OD API example: every key, unicode text, -1 flags, float32 rounding."""
    return {
        Keys.HEIGHT: int64_feature([48]),
        Keys.WIDTH: int64_feature([64]),
        Keys.FILENAME: bytes_feature(["bilder/straße 1.jpg".encode()]),
        Keys.SOURCE_ID: bytes_feature([b"0001eeaf4aed83f9"]),
        Keys.SHA256: bytes_feature([hashlib.sha256(image).hexdigest().encode()]),
        Keys.ENCODED: bytes_feature([image]),
        Keys.FORMAT: bytes_feature([b"jpeg"]),
        Keys.BBOX_XMIN: float_feature([0.1, 0.0, 1 / 3]),
        Keys.BBOX_XMAX: float_feature([0.5, 1.0, 2 / 3]),
        Keys.BBOX_YMIN: float_feature([0.2, 0.0, 0.123456789012]),
        Keys.BBOX_YMAX: float_feature([0.7, 1.0, 0.987654321098]),
        Keys.OBJECT_CLASS_TEXT: bytes_feature([s.encode() for s in ("Camera", "Téléphone", "猫")]),
        Keys.OBJECT_CLASS_LABEL: int64_feature([1, 2, 300]),
        Keys.OBJECT_DIFFICULT: int64_feature([0, 1, 0]),
        Keys.OBJECT_TRUNCATED: int64_feature([-1, 0, 1]),
        Keys.OBJECT_GROUP_OF: int64_feature([0, -1, 0]),
        Keys.OBJECT_OCCLUDED: int64_feature([1, 1, -1]),
        Keys.OBJECT_DEPICTION: int64_feature([-1, -1, -1]),
        Keys.OBJECT_VIEW: bytes_feature([b"Frontal", b"", b"Unspecified"]),
        Keys.IMAGE_CLASS_TEXT: bytes_feature([]),
        Keys.IMAGE_CLASS_LABEL: int64_feature([]),
        Keys.IMAGE_CLASS_CONFIDENCE: float_feature([]),
    }


def negative_features() -> dict[str, Feature]:
    """An image without boxes: the box lists are present and empty."""
    boxes = (Keys.BBOX_XMIN, Keys.BBOX_XMAX, Keys.BBOX_YMIN, Keys.BBOX_YMAX)
    return {
        Keys.ENCODED: bytes_feature([b"\xff\xd8"]),
        **{key: float_feature([]) for key in boxes},
        Keys.OBJECT_CLASS_TEXT: bytes_feature([]),
        Keys.OBJECT_CLASS_LABEL: int64_feature([]),
    }


# --- Example encoding -----------------------------------------------------------------------


def test_od_example_is_what_tensorflow_serializes(tf: Any) -> None:
    features = od_features(jpeg_bytes())
    ours = encode_example(features)
    expected = tf_example(tf, features)
    assert tf.train.Example.FromString(ours) == expected
    assert ours == expected.SerializeToString(deterministic=True)


def test_negative_example_keeps_empty_lists(tf: Any) -> None:
    features = negative_features()
    parsed = tf.train.Example.FromString(encode_example(features))
    assert parsed == tf_example(tf, features)
    assert parsed.features.feature[Keys.BBOX_XMIN].WhichOneof("kind") == "float_list"
    assert decode_example(encode_example(features))[Keys.BBOX_XMIN] == ("float", [])


def test_parse_single_example_reads_ours(tf: Any) -> None:
    image = jpeg_bytes()
    spec = {
        Keys.ENCODED: tf.io.FixedLenFeature((), tf.string),
        Keys.FILENAME: tf.io.FixedLenFeature((), tf.string),
        Keys.HEIGHT: tf.io.FixedLenFeature((), tf.int64),
        Keys.WIDTH: tf.io.FixedLenFeature((), tf.int64),
        Keys.BBOX_YMIN: tf.io.VarLenFeature(tf.float32),
        Keys.OBJECT_CLASS_TEXT: tf.io.VarLenFeature(tf.string),
        Keys.OBJECT_CLASS_LABEL: tf.io.FixedLenFeature((3,), tf.int64),
        Keys.OBJECT_TRUNCATED: tf.io.VarLenFeature(tf.int64),
        Keys.IMAGE_CLASS_LABEL: tf.io.VarLenFeature(tf.int64),
    }
    parsed = tf.io.parse_single_example(encode_example(od_features(image)), spec)
    assert parsed[Keys.ENCODED].numpy() == image
    assert tf.io.decode_image(parsed[Keys.ENCODED]).shape == (48, 64, 3)
    assert parsed[Keys.FILENAME].numpy().decode() == "bilder/straße 1.jpg"
    assert (parsed[Keys.HEIGHT].numpy(), parsed[Keys.WIDTH].numpy()) == (48, 64)
    ymin = parsed[Keys.BBOX_YMIN].values.numpy().tolist()
    assert ymin == [float32(v) for v in (0.2, 0.0, 0.123456789012)]
    texts = [t.decode() for t in parsed[Keys.OBJECT_CLASS_TEXT].values.numpy()]
    assert texts == ["Camera", "Téléphone", "猫"]
    assert parsed[Keys.OBJECT_CLASS_LABEL].numpy().tolist() == [1, 2, 300]
    assert parsed[Keys.OBJECT_TRUNCATED].values.numpy().tolist() == [-1, 0, 1]
    assert parsed[Keys.IMAGE_CLASS_LABEL].values.numpy().tolist() == []

    boxes = {key: tf.io.VarLenFeature(tf.float32) for key in (Keys.BBOX_XMIN, Keys.BBOX_YMAX)}
    negative = tf.io.parse_single_example(encode_example(negative_features()), boxes)
    assert all(tensor.values.shape == (0,) for tensor in negative.values())


def test_float_edge_cases_match_protobuf(tf: Any) -> None:
    values = [math.nan, math.inf, -math.inf, -0.0, 1e39, -1e39, 1e-46, 3.4028235e38, 1e-40]
    features: dict[str, Feature] = {"f": float_feature(values)}
    assert encode_example(features) == tf_example(tf, features).SerializeToString()


def test_int64_extremes_match_protobuf(tf: Any) -> None:
    features: dict[str, Feature] = {
        "i": int64_feature([0, 1, -1, 127, 128, 2**63 - 1, -(2**63), 300, -300])
    }
    assert encode_example(features) == tf_example(tf, features).SerializeToString()


def test_int64_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        int64_feature([2**63])
    with pytest.raises(ValueError, match="out of range"):
        int64_feature([-(2**63) - 1])


def test_encoding_is_deterministic() -> None:
    features = od_features(b"\xff\xd8image")
    shuffled = dict(reversed(list(features.items())))
    assert encode_example(features) == encode_example(dict(features)) == encode_example(shuffled)


def test_empty_example() -> None:
    assert encode_example({}) == b"\x0a\x00"
    assert decode_example(b"") == decode_example(b"\x0a\x00") == {}


@st.composite
def features_strategy(draw: st.DrawFn) -> dict[str, Feature]:
    one = st.one_of(
        st.lists(st.binary(max_size=40), max_size=5).map(bytes_feature),
        st.lists(st.floats(width=32, allow_nan=False), max_size=5).map(float_feature),
        st.lists(INT64, max_size=5).map(int64_feature),
    )
    return draw(st.dictionaries(st.text(max_size=20), one, max_size=6))


@settings(max_examples=150, deadline=None)
@given(features=features_strategy())
def test_round_trip_through_tensorflow(tf: Any, features: dict[str, Feature]) -> None:
    ours = encode_example(features)
    expected = tf_example(tf, features)
    assert tf.train.Example.FromString(ours) == expected
    if not any(a != b and b.startswith(a) for a in features for b in features):
        # upb writes a key after the longer keys it prefixes; C++ protobuf and we sort plainly.
        assert ours == expected.SerializeToString(deterministic=True)
    decoded = decode_example(expected.SerializeToString())
    assert decoded == {key: (f.kind, list(f.values)) for key, f in features.items()}
    assert decode_example(ours) == decoded


# --- decoding what other tools may write ------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, body: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(body)) + body


UNKNOWN = (
    varint(9 << 3 | 0) + varint(-5)  # varint
    + varint(10 << 3 | 1) + bytes(8)  # fixed64
    + field(11, b"\x01\x02")  # length-delimited
    + varint(12 << 3 | 5) + bytes(4)  # fixed32
    + varint(13 << 3 | 3)  # a group holding a group
    + varint(14 << 3 | 3) + varint(14 << 3 | 4)
    + varint(13 << 3 | 4)
)  # fmt: skip


def entry(key: bytes, feature: bytes, *, reverse: bool = False) -> bytes:
    parts = [field(1, key), field(2, feature)]
    return field(1, b"".join(reversed(parts) if reverse else parts))


def unusual_example() -> bytes:
    """Valid but unlike protobuf's own output: unpacked numbers, odd order, unknown fields."""
    unpacked_ints = b"".join(varint(1 << 3) + varint(v) for v in (5, -1, 2**40))
    unpacked_floats = b"".join(varint(1 << 3 | 5) + struct.pack("<f", v) for v in (0.5, -2.0))
    mixed_ints = field(1, varint(7) + varint(-7)) + UNKNOWN + varint(1 << 3) + varint(300)
    features = (
        entry(b"zeta", UNKNOWN + field(3, unpacked_ints), reverse=True)
        + UNKNOWN
        + entry(b"alpha", field(2, unpacked_floats + field(1, struct.pack("<f", 1.5))))
        + entry(b"mixed", field(3, mixed_ints) + UNKNOWN)
        + entry(b"dup", field(1, field(1, b"first")))
        + entry(b"dup", field(1, field(1, b"second")))
        + entry(b"oneof", field(1, field(1, b"gone")) + field(3, varint(1 << 3) + varint(4)))
        + entry(b"merged", field(1, field(1, b"a")) + field(1, field(1, b"b")))
        + entry(b"unset", b"")
        + entry("ключ".encode(), UNKNOWN)
    )
    return UNKNOWN + field(1, features) + UNKNOWN + field(1, entry(b"later", field(3, b"")))


def test_decodes_valid_but_unusual_bytes_like_protobuf(tf: Any) -> None:
    data = unusual_example()
    expected = as_decoded(tf.train.Example.FromString(data))
    assert expected["zeta"] == ("int64", [5, -1, 2**40])  # the test bytes say what they mean
    assert decode_example(data) == expected


def test_unknown_fields_inside_a_map_entry_keep_the_entry() -> None:
    # As C++ protobuf does; upb (protobuf's Python backend) moves such an entry to the unknown
    # fields, and TensorFlow's own parser refuses the whole Example.
    data = field(1, field(1, field(1, b"k") + UNKNOWN + field(2, field(3, field(1, b"\x05")))))
    assert decode_example(data) == {"k": ("int64", [5])}


# problem (a regular expression) -> bytes
MALFORMED = {
    "truncated varint": b"\x0a\x80",
    r"field 1 runs 3 byte\(s\) past its message": b"\x0a\x05\x0a\x01",
    "unexpected wire type 7": b"\x0f",
    "field number 0": b"\x02\x00",
    "varint longer than 10 bytes": b"\x08" + b"\xff" * 11 + b"\x01",
    r"feature name b'\\xff\\xfe' is not UTF-8": field(1, field(1, field(1, b"\xff\xfe"))),
    "packed float list of 3 bytes": field(1, field(1, field(2, field(2, field(1, b"abc"))))),
    "group 5 has no end": b"\x2b\x08\x01",
    "end of group 6 inside another group": b"\x2b\x34",
}


@pytest.mark.parametrize(("problem", "data"), MALFORMED.items(), ids=range(len(MALFORMED)))
def test_malformed_bytes_raise_a_clear_error(problem: str, data: bytes) -> None:
    with pytest.raises(ExampleDecodeError, match=rf"malformed tf.train.Example: {problem} at byte"):
        decode_example(data)
    assert issubclass(ExampleDecodeError, ValueError)
    assert issubclass(ExampleDecodeError, AnnoconvError)


def test_every_truncation_is_valid_or_a_clear_error() -> None:
    data = encode_example(od_features(b"\xff\xd8 image bytes"))
    for end in range(len(data)):
        with contextlib.suppress(ExampleDecodeError):
            decode_example(data[:end])


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    with contextlib.suppress(ExampleDecodeError):
        decode_example(data)


# --- TFRecord framing -----------------------------------------------------------------------


def test_crc32c_check_value_and_masked_vectors() -> None:
    assert google_crc32c.value(b"123456789") == 0xE3069283
    # formats.md §6.2
    assert frame_record(b"") == bytes.fromhex("0000000000000000 29039807 d8ea82a2")
    assert frame_record(b"a") == bytes.fromhex("0100000000000000 0175de41 61 786ee428")
    assert frame_record(b"hello") == bytes.fromhex("0500000000000000 eab2043e 68656c6c6f bb1f1c19")
    assert masked_crc32c(b"") == 0xA282EAD8


def payload_sets() -> dict[str, list[bytes]]:
    rng = random.Random(7)
    many = [rng.randbytes(rng.randrange(3000)) for _ in range(2000)]
    return {
        "none": [],
        "empty": [b""],
        "one-byte": [b"x"],
        "1MB": [rng.randbytes(1 << 20)],
        "many": many,
        "mixed": [b"", *many[:50], b"\0" * (3 << 20), b"a" * 300_000, b""],
    }


PAYLOADS = payload_sets()


def write_ours(path: Path, payloads: list[bytes], compression: Any = None) -> int:
    with TFRecordWriter(str(path), compression) as writer:
        for payload in payloads:
            writer.write(payload)
    assert writer.bytes_written == sum(len(p) + 16 for p in payloads)
    return path.stat().st_size


def write_tf(tf: Any, path: Path, payloads: list[bytes], compression: str = "") -> None:
    with tf.io.TFRecordWriter(str(path), compression) as writer:
        for payload in payloads:
            writer.write(payload)


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_files_are_byte_identical_to_tensorflows(
    tf: Any, tmp_path: Path, name: str, compression: Any
) -> None:
    payloads = PAYLOADS[name]
    ours, theirs = tmp_path / "ours.tfrecord", tmp_path / "theirs.tfrecord"
    assert write_ours(ours, payloads, compression) == ours.stat().st_size
    write_tf(tf, theirs, payloads, compression or "")
    if compression and "ng" in zlib.ZLIB_RUNTIME_VERSION:
        pytest.skip("zlib-ng compresses differently from the classic zlib TensorFlow bundles")
    assert ours.read_bytes() == theirs.read_bytes()
    if compression is None:
        assert ours.read_bytes() == b"".join(map(frame_record, payloads))


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_tensorflow_reads_our_compressed_files(tf: Any, tmp_path: Path, compression: str) -> None:
    payloads = PAYLOADS["mixed"]
    path = tmp_path / "ours.tfrecord"
    write_ours(path, payloads, compression)
    dataset = tf.data.TFRecordDataset(str(path), compression_type=compression)
    assert [record.numpy() for record in dataset] == payloads
    if compression == "GZIP":
        assert gzip.decompress(path.read_bytes()) == b"".join(map(frame_record, payloads))


@pytest.mark.parametrize(
    ("written", "read"),
    [(written, read) for written in ("", "GZIP", "ZLIB") for read in (written or None, "auto")],
)
def test_we_read_tensorflows_files(tf: Any, tmp_path: Path, written: str, read: Any) -> None:
    payloads = PAYLOADS["mixed"]
    path = tmp_path / "theirs.tfrecord"
    write_tf(tf, path, payloads, written)
    assert list(iter_tfrecords(str(path), read, verify=True)) == payloads


def test_auto_is_not_fooled_by_a_length_that_looks_like_zlib(tmp_path: Path) -> None:
    payload = b"p" * 0x9C78  # the length's first bytes are 78 9c, a zlib header
    path = tmp_path / "plain.tfrecord"
    write_ours(path, [payload])
    assert path.read_bytes()[:2] == b"\x78\x9c"
    assert list(iter_tfrecords(str(path), "auto")) == [payload]


def test_concatenated_gzip_members_read_as_one_stream(tmp_path: Path) -> None:
    path = tmp_path / "joined.tfrecord.gz"
    path.write_bytes(gzip.compress(frame_record(b"one")) + gzip.compress(frame_record(b"two")))
    assert list(iter_tfrecords(str(path), "auto")) == [b"one", b"two"]


def records_file(tmp_path: Path, compression: Any = None) -> tuple[Path, list[bytes]]:
    payloads = [b"a" * 10, b"b" * 20, b"c" * 30, b"d" * 40]
    path = tmp_path / "data.tfrecord"
    write_ours(path, payloads, compression)
    return path, payloads


def offset_of(payloads: list[bytes], index: int) -> int:
    return sum(len(p) + 16 for p in payloads[:index])


@pytest.mark.parametrize(("where", "problem"), [(14, "payload"), (3, "record length")])
def test_corrupt_byte_names_file_record_and_offset(
    tmp_path: Path, where: int, problem: str
) -> None:
    path, payloads = records_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[offset_of(payloads, 2) + where] ^= 0x01
    path.write_bytes(bytes(data))
    records = iter_tfrecords(str(path))
    assert next(records) == payloads[0]
    assert next(records) == payloads[1]
    with pytest.raises(TFRecordError, match=f"CRC of the .*{problem}") as caught:
        next(records)
    assert (caught.value.index, caught.value.offset) == (2, offset_of(payloads, 2))
    assert str(caught.value).startswith(f"{path}: record 2 at byte {offset_of(payloads, 2)}: ")


def test_verify_false_skips_the_checks(tmp_path: Path) -> None:
    path, payloads = records_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[offset_of(payloads, 1) + 12] = ord("X")
    path.write_bytes(bytes(data))
    assert list(iter_tfrecords(str(path), verify=False))[1] == b"X" + b"b" * 19


@pytest.mark.parametrize("cut", [1, 5, 12, 30, 53])
def test_truncated_file_is_an_error(tmp_path: Path, cut: int) -> None:
    path, payloads = records_file(tmp_path)
    start = offset_of(payloads, 3)
    path.write_bytes(path.read_bytes()[: start + cut])
    with pytest.raises(TFRecordError, match=f"record 3 at byte {start}: truncated"):
        list(iter_tfrecords(str(path)))


def test_garbage_length_without_verify_is_truncation_not_a_huge_read(tmp_path: Path) -> None:
    path = tmp_path / "garbage.tfrecord"
    path.write_bytes(struct.pack("<QI", 1 << 60, 0) + b"tiny")
    with pytest.raises(TFRecordError, match="truncated"):
        list(iter_tfrecords(str(path), verify=False))


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_truncated_compressed_file_is_an_error(tmp_path: Path, compression: Any) -> None:
    path, _ = records_file(tmp_path, compression)
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(TFRecordError, match="of the decompressed data: truncated"):
        list(iter_tfrecords(str(path), compression))


def test_corrupt_compressed_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "data.tfrecord.gz"
    data = bytearray(gzip.compress(b"".join(frame_record(b"x" * 100) for _ in range(3))))
    data[-6] ^= 0xFF  # the gzip trailer's CRC-32
    path.write_bytes(bytes(data))
    with pytest.raises(TFRecordError, match="corrupt compressed data"):
        list(iter_tfrecords(str(path), "GZIP"))


def test_zlib_stream_with_trailing_data_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "data.tfrecord.z"
    path.write_bytes(zlib.compress(frame_record(b"x")) + b"junk")
    with pytest.raises(TFRecordError, match="after the end of the ZLIB stream"):
        list(iter_tfrecords(str(path), "ZLIB"))


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
def test_reading_is_streaming(tmp_path: Path, compression: Any) -> None:
    path = tmp_path / "big.tfrecord"
    write_ours(path, [bytes([n]) * (1 << 20) for n in range(40)], compression)
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_tfrecords(str(path), "auto"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 40
    assert peak < 8 << 20  # a few records' worth, not the 40 MB file


def test_bad_compression_names_are_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compression"):
        iter_tfrecords(str(tmp_path / "missing"), "gzip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compression"):
        TFRecordWriter(str(tmp_path / "x"), "SNAPPY")  # type: ignore[arg-type]


# --- writer lifecycle -----------------------------------------------------------------------


def test_file_appears_only_on_close(tmp_path: Path) -> None:
    path = tmp_path / "out" / "train.record"
    writer = TFRecordWriter(str(path))
    writer.write(b"payload")
    assert writer.bytes_written == 7 + 16
    assert not path.exists()
    assert writer.close() == 7 + 16
    assert path.read_bytes() == frame_record(b"payload")
    writer.abort()  # after close: nothing to undo
    assert path.exists()
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "train.record"
    with pytest.raises(RuntimeError), TFRecordWriter(str(path), "GZIP") as writer:
        writer.write(b"payload")
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_remote_file_round_trip() -> None:
    uri = "memory://annoconv-tfexample/train.record"
    with TFRecordWriter(uri, "GZIP") as writer:
        writer.write(b"remote")
    assert list(iter_tfrecords(uri, "auto")) == [b"remote"]
