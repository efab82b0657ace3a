"""`annoconv.tf.dataset`: tf.data over TFRecord shards written by annoconv and by TensorFlow's
own writer, every example once, boxes equal to the source's to float32 precision."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf
from detection_data import CLASSES, Dataset, voc_dataset
from PIL import Image

import annoconv.tf as atf
from annoconv import LabelMap, convert

#: float32 normalized coordinates times the size, against the annotation's float64 pixels.
TOLERANCE = 1e-3
IDS = {name: index + 1 for index, name in enumerate(sorted(CLASSES))}


@pytest.fixture(scope="module")
def voc(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return voc_dataset(tmp_path_factory.mktemp("voc"), images=14, seed=4)


@pytest.fixture(scope="module")
def shards(voc: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    convert(str(voc.root), str(out / "all.record"), write_options={"shards": 3})
    return out / "all.record"


def elements(dataset: Any) -> list[dict[str, Any]]:
    return [tf.nest.map_structure(lambda t: t.numpy(), element) for element in dataset]


def text(value: bytes) -> str:
    return value.decode("utf-8")


def assert_boxes(found: Any, expected: list[tuple[float, float, float, float]]) -> None:
    assert found.shape == (len(expected), 4)
    for got, want in zip(found.tolist(), expected, strict=True):
        assert got == pytest.approx(want, abs=TOLERANCE)


def test_every_example_of_our_shards_once_with_the_source_boxes(voc: Dataset, shards: Path) -> None:
    found = elements(atf.dataset(str(shards)))
    keys = [text(e["key"]) for e in found]
    assert sorted(keys) == sorted(voc.boxes) and len(keys) == len(set(keys))
    for element in found:
        key = text(element["key"])
        truth = voc.boxes[key]
        width, height = voc.sizes[key]
        assert element["image"].shape == (height, width, 3) and element["image"].dtype == "uint8"
        assert (element["width"], element["height"]) == (width, height)
        assert_boxes(element["boxes"], [box[1:] for box in truth])
        assert [text(n) for n in element["class_names"]] == [box[0] for box in truth]
        assert element["classes"].tolist() == [IDS[box[0]] for box in truth]
        assert text(element["filename"]) == voc.images[key]


def test_the_keras_layout_and_box_formats(voc: Dataset, shards: Path) -> None:
    formats = {
        "rel_yxyx": lambda x0, y0, x1, y1, w, h: (y0 / h, x0 / w, y1 / h, x1 / w),
        "xywh": lambda x0, y0, x1, y1, w, h: (x0, y0, x1 - x0, y1 - y0),
        "center_xywh": lambda x0, y0, x1, y1, w, h: (
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            x1 - x0,
            y1 - y0,
        ),
        "rel_xyxy": lambda x0, y0, x1, y1, w, h: (x0 / w, y0 / h, x1 / w, y1 / h),
    }
    by_key = {text(e["key"]): e for e in elements(atf.dataset(str(shards), deterministic=True))}
    for name, convert_box in formats.items():
        keras = elements(
            atf.dataset(str(shards), layout="keras", bounding_box_format=name, deterministic=True)
        )
        assert len(keras) == len(voc.boxes)
        ordered = list(by_key.values())  # the same files, the same deterministic order
        for element, plain in zip(keras, ordered, strict=True):
            assert set(element) == {"images", "bounding_boxes"}
            assert element["images"].dtype == "float32"
            assert (element["images"] == plain["image"]).all()
            key = text(plain["key"])
            width, height = voc.sizes[key]
            expected = [convert_box(*box[1:], width, height) for box in voc.boxes[key]]
            assert_boxes(element["bounding_boxes"]["boxes"], expected)
            assert element["bounding_boxes"]["classes"].tolist() == plain["classes"].tolist()
    batched = atf.dataset(str(shards), layout="keras").ragged_batch(4)
    sizes = [int(batch["bounding_boxes"]["boxes"].nrows()) for batch in batched]
    assert sizes == [4, 4, 4, 2]
    with pytest.raises(ValueError, match="bounding_box_format must be one of"):
        atf.dataset(str(shards), bounding_box_format="xyxy_pixels")  # type: ignore[arg-type]


def test_gzip_shards_shuffled_files_and_the_public_feature_spec(
    voc: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "gz.record"
    convert(str(voc.root), str(out), write_options={"shards": 4, "compression": "GZIP"})
    shards = sorted(tmp_path.glob("gz.record-*"))
    assert len(shards) == 4 and shards[0].read_bytes()[:2] == b"\x1f\x8b"
    for compression in ("auto", "GZIP"):
        found = elements(
            atf.dataset(str(out), compression=compression, shuffle_files=True, seed=1)  # type: ignore[arg-type]
        )
        assert sorted(text(e["key"]) for e in found) == sorted(voc.boxes)
    # FEATURE_SPEC parses our records with tf.io directly.
    raw = tf.data.TFRecordDataset([str(p) for p in shards], compression_type="GZIP")
    parsed = [tf.io.parse_single_example(r, atf.FEATURE_SPEC) for r in raw]
    assert sorted(text(p["image/source_id"].numpy()) for p in parsed) == sorted(voc.boxes)
    assert sum(int(tf.size(p["image/object/bbox/xmin"].values)) for p in parsed) == voc.box_count


def _example(features: dict[str, Any]) -> bytes:
    feature = {}
    for key, values in features.items():
        if isinstance(values[0], bytes):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        elif isinstance(values[0], float):
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return bytes(example.SerializeToString())


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def test_tfrecords_written_by_tensorflow_with_only_some_fields(tmp_path: Path) -> None:
    """Other tools' Examples: class text without ids, ids without text, no source_id, no
    size: ids and names come from the label map, the key from the filename, the size from
    the decoded image."""
    label_map = LabelMap.parse(
        "item { name: '/m/01' id: 3 display_name: 'Camera' }\nitem { name: 'phone' id: 5 }\n"
    )
    common = {"image/object/bbox/ymin": [0.1, 0.5], "image/object/bbox/ymax": [0.4, 1.0]}
    common |= {"image/object/bbox/xmin": [0.0, 0.25], "image/object/bbox/xmax": [0.5, 0.75]}
    examples = [
        {
            "image/encoded": [_png(40, 20)],
            "image/filename": [b"a.png"],
            "image/object/class/text": [b"Camera", b"phone"],
            **common,
        },
        {
            "image/encoded": [_png(80, 10)],
            "image/source_id": [b"b-id"],
            "image/object/class/label": [5, 3],
            **common,
        },
        {"image/encoded": [_png(8, 8)], "image/filename": [b"empty.png"]},
    ]
    path = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for features in examples:
            writer.write(_example(features))
    found = {text(e["key"]): e for e in elements(atf.dataset(str(path), label_map=label_map))}
    assert list(found) == ["a.png", "b-id", "empty.png"]
    a, b, empty = found.values()
    assert a["classes"].tolist() == [3, 5] and [text(n) for n in a["class_names"]] == [
        "Camera",
        "phone",
    ]
    assert b["classes"].tolist() == [5, 3] and [text(n) for n in b["class_names"]] == [
        "phone",
        "Camera",
    ]
    assert_boxes(a["boxes"], [(0.0, 2.0, 20.0, 8.0), (10.0, 10.0, 30.0, 20.0)])
    assert_boxes(b["boxes"], [(0.0, 1.0, 40.0, 4.0), (20.0, 5.0, 60.0, 10.0)])
    assert (b["width"], b["height"]) == (80, 10)
    assert empty["boxes"].shape == (0, 4) and empty["classes"].shape == (0,)
    # Without a label map what is missing stays unknown.
    plain = {text(e["key"]): e for e in elements(atf.dataset([str(path)]))}
    assert plain["a.png"]["classes"].tolist() == [-1, -1]
    assert [text(n) for n in plain["b-id"]["class_names"]] == ["", ""]
    assert plain["b-id"]["classes"].tolist() == [5, 3]


def _encoded(image: Image.Image, kind: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def _palette_image() -> Image.Image:
    image = Image.new("P", (6, 2), 0)
    image.putpalette([250, 240, 230, 10, 20, 30, 90, 0, 200] + [0] * 759)
    image.paste(1, (0, 0, 3, 2))
    image.putpixel((5, 1), 2)
    return image


def _lossless_kinds() -> dict[str, bytes]:
    wide = Image.new("I;16", (6, 2))
    wide.putdata([0x0000, 0x00FF, 0x1234, 0x8000, 0xFF00, 0xFFFF] * 2)
    grey_alpha = Image.new("LA", (6, 2), (77, 0))
    return {
        "16-bit grey PNG": _encoded(wide, "PNG"),
        "palette PNG, a transparent index": _encoded(_palette_image(), "PNG", transparency=1),
        "GIF, a transparent index": _encoded(_palette_image(), "GIF", transparency=1),
        "GIF": _encoded(_palette_image(), "GIF"),
        "grey PNG with alpha, all transparent": _encoded(grey_alpha, "PNG"),
        "bilevel PNG": _encoded(Image.new("1", (6, 2), 1), "PNG"),
    }


@pytest.mark.parametrize("kind", sorted(_lossless_kinds()))
def test_pixels_decoded_without_tensorflow_are_tensorflows(kind: str) -> None:
    """What the preview draws and annoconv.torch yields (`tf_rgb` on Pillow's decode) is, for
    lossless formats, exactly what tf.io.decode_image(channels=3) gives training."""
    from annoconv.io.decode import tf_rgb

    data = _lossless_kinds()[kind]
    wanted = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        pixels = tf_rgb(image)
    assert pixels.mode == "RGB" and pixels.size == (6, 2)
    assert list(pixels.tobytes()) == wanted.reshape(-1).tolist()
