"""TFRecords of the TF Object Detection API schema as a `tf.data.Dataset`, for training.

Needs TensorFlow (``pip install 'annoconv[tf]'``); `import annoconv` never imports it.

    import annoconv.tf

    train = annoconv.tf.dataset("out/links-train.record", layout="keras")

`dataset()` reads any OD API TFRecords, ours or another tool's: a shard prefix
(``out/x.record`` reads ``out/x.record-?????-of-?????``), a file, a folder, a glob or a list.
Shards are interleaved (several read at once), examples parsed and decoded in parallel;
plain, GZIP and ZLIB files are told apart by their first bytes unless `compression` says.

Each element, with ``layout="dict"`` (the default):

* ``image``: uint8 ``[height, width, 3]``, decoded as TensorFlow decodes it (JPEG, PNG, GIF,
  BMP; the pixels as stored, which is why annoconv turns EXIF-rotated photos when it writes);
* ``boxes``: float32 ``[N, 4]`` in `bounding_box_format` (below), from the normalized
  ``image/object/bbox/*`` and the decoded image's size;
* ``classes``: int64 ``[N]``, the label map ids (``image/object/class/label``, or the class
  text looked up in `label_map`; -1 when neither is known);
* ``class_names``: string ``[N]`` (``image/object/class/text``, or the ids looked up in
  `label_map`: display name, else name; empty when neither is known);
* ``key`` (``image/source_id``, else the filename), ``filename``, ``height``, ``width``.

With ``layout="keras"`` an element is what KerasCV's detection models (and KerasHub's with
this layout) take: ``{"images": image, "bounding_boxes": {"boxes": boxes, "classes":
classes}}``, images float32 (0-255) and classes float32, as KerasCV's own dataset loaders
give them; pass the same `bounding_box_format` to the model. Elements hold a varying number
of boxes: batch with ``.ragged_batch(n)`` (or pad with ``.padded_batch``).

Box formats (KerasCV's names): ``xyxy``, ``yxyx``, ``xywh``, ``center_xywh`` in pixels, and
``rel_xyxy``, ``rel_yxyx``, ``rel_xywh``, ``rel_center_xywh`` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

from annoconv.errors import MissingDependencyError

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - the test extra installs TensorFlow
    raise MissingDependencyError(
        "annoconv.tf needs TensorFlow: pip install 'annoconv[tf]'"
    ) from None

from annoconv.labelmap import LabelMap
from annoconv.tfexample import Keys, detect_compression

__all__ = ["BOX_FORMATS", "FEATURE_SPEC", "BoxFormat", "Layout", "dataset", "parse_example"]

BoxFormat = Literal[
    "xyxy", "yxyx", "xywh", "center_xywh", "rel_xyxy", "rel_yxyx", "rel_xywh", "rel_center_xywh"
]
BOX_FORMATS: tuple[str, ...] = get_args(BoxFormat)
Layout = Literal["dict", "keras"]
Compression = Literal["auto", "GZIP", "ZLIB"] | None

_string, _int64, _float32 = tf.string, tf.int64, tf.float32

#: The feature spec of `tf.io.parse_single_example` for OD API Examples: the Object
#: Detection API decoder's own (``tf_example_decoder.py``: defaults included), plus the box
#: fields annoconv also writes (truncated, occluded, depiction, view).
FEATURE_SPEC: dict[str, Any] = {
    Keys.ENCODED: tf.io.FixedLenFeature((), _string, default_value=""),
    Keys.FORMAT: tf.io.FixedLenFeature((), _string, default_value="jpeg"),
    Keys.FILENAME: tf.io.FixedLenFeature((), _string, default_value=""),
    Keys.SHA256: tf.io.FixedLenFeature((), _string, default_value=""),
    Keys.SOURCE_ID: tf.io.FixedLenFeature((), _string, default_value=""),
    Keys.HEIGHT: tf.io.FixedLenFeature((), _int64, default_value=1),
    Keys.WIDTH: tf.io.FixedLenFeature((), _int64, default_value=1),
    Keys.IMAGE_CLASS_TEXT: tf.io.VarLenFeature(_string),
    Keys.IMAGE_CLASS_LABEL: tf.io.VarLenFeature(_int64),
    Keys.BBOX_XMIN: tf.io.VarLenFeature(_float32),
    Keys.BBOX_XMAX: tf.io.VarLenFeature(_float32),
    Keys.BBOX_YMIN: tf.io.VarLenFeature(_float32),
    Keys.BBOX_YMAX: tf.io.VarLenFeature(_float32),
    Keys.OBJECT_CLASS_LABEL: tf.io.VarLenFeature(_int64),
    Keys.OBJECT_CLASS_TEXT: tf.io.VarLenFeature(_string),
    Keys.OBJECT_AREA: tf.io.VarLenFeature(_float32),
    Keys.OBJECT_IS_CROWD: tf.io.VarLenFeature(_int64),
    Keys.OBJECT_DIFFICULT: tf.io.VarLenFeature(_int64),
    Keys.OBJECT_GROUP_OF: tf.io.VarLenFeature(_int64),
    Keys.OBJECT_WEIGHT: tf.io.VarLenFeature(_float32),
    Keys.OBJECT_TRUNCATED: tf.io.VarLenFeature(_int64),
    Keys.OBJECT_OCCLUDED: tf.io.VarLenFeature(_int64),
    Keys.OBJECT_DEPICTION: tf.io.VarLenFeature(_int64),
    Keys.OBJECT_VIEW: tf.io.VarLenFeature(_string),
}


def dataset(
    source: str | Sequence[str],
    *,
    layout: Layout = "dict",
    bounding_box_format: BoxFormat = "xyxy",
    label_map: LabelMap | str | None = None,
    compression: Compression = "auto",
    shuffle_files: bool = False,
    seed: int | None = None,
    cycle_length: int | None = None,
    deterministic: bool | None = None,
) -> tf.data.Dataset:
    """A `tf.data.Dataset` of the examples of `source`'s TFRecord files (see the module).

    Files are read `cycle_length` at a time (default: as many as tf.data finds best),
    in a seeded random order with `shuffle_files`; parsing runs in parallel. `deterministic`
    False lets elements come in the order they are ready (faster; the default is tf.data's,
    ordered unless the dataset options say otherwise). `label_map` (a `LabelMap` or a
    ``.pbtxt`` path) fills in class ids or names an example lacks.
    """
    from annoconv.formats.tfrecord import tfrecord_files

    files = tfrecord_files(source)
    if not files:
        raise ValueError(f"no TFRecord files in {source!r}")
    kinds = [_compression_of(path, compression) for path in files]
    parse = _Parser(layout, bounding_box_format, label_map)
    names = tf.data.Dataset.from_tensor_slices((files, kinds))
    if shuffle_files:
        names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    records = names.interleave(
        lambda path, kind: tf.data.TFRecordDataset(path, compression_type=kind),
        cycle_length=cycle_length or tf.data.AUTOTUNE,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def parse_example(
    serialized: tf.Tensor,
    *,
    layout: Layout = "dict",
    bounding_box_format: BoxFormat = "xyxy",
    label_map: LabelMap | str | None = None,
) -> dict[str, Any]:
    """One serialized Example as `dataset()` gives it (eagerly; `dataset()` maps the same)."""
    return _Parser(layout, bounding_box_format, label_map)(serialized)


def _compression_of(path: str, compression: Compression) -> str:
    if compression not in ("auto", "GZIP", "ZLIB", None):
        raise ValueError(f"compression must be 'auto', 'GZIP', 'ZLIB' or None, not {compression!r}")
    found = detect_compression(path) if compression == "auto" else compression
    return found or ""


class _Parser:
    """Parses, decodes and lays out one Example; its lookup tables are made once, outside
    the dataset's map function."""

    def __init__(
        self, layout: Layout, box_format: BoxFormat, label_map: LabelMap | str | None
    ) -> None:
        if layout not in get_args(Layout):
            raise ValueError(f"layout must be 'dict' or 'keras', not {layout!r}")
        if box_format not in BOX_FORMATS:
            raise ValueError(
                f"bounding_box_format must be one of {', '.join(BOX_FORMATS)}, not {box_format!r}"
            )
        self.layout = layout
        self.box_format = box_format
        if isinstance(label_map, str):
            label_map = LabelMap.read(label_map)
        tables = _tables(label_map) if label_map is not None else (None, None)
        self._ids: Any = tables[0]
        self._names: Any = tables[1]

    def __call__(self, serialized: tf.Tensor) -> dict[str, Any]:
        features = tf.io.parse_single_example(serialized, FEATURE_SPEC)
        image = tf.io.decode_image(features[Keys.ENCODED], channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        shape = tf.shape(image)
        height, width = shape[0], shape[1]
        xmin, ymin, xmax, ymax = (
            _dense(features[key], 0.0)
            for key in (Keys.BBOX_XMIN, Keys.BBOX_YMIN, Keys.BBOX_XMAX, Keys.BBOX_YMAX)
        )
        count = tf.shape(xmin)[0]
        texts = _dense(features[Keys.OBJECT_CLASS_TEXT], "")
        ids = _dense(features[Keys.OBJECT_CLASS_LABEL], tf.constant(0, tf.int64))
        classes = _either(ids, count, self._ids, texts, tf.constant(-1, tf.int64))
        names = _either(texts, count, self._names, ids, tf.constant("", tf.string))
        boxes = _boxes(self.box_format, xmin, ymin, xmax, ymax, width, height)
        if self.layout == "keras":
            return {
                "images": tf.cast(image, tf.float32),
                "bounding_boxes": {"boxes": boxes, "classes": tf.cast(classes, tf.float32)},
            }
        source_id, filename = features[Keys.SOURCE_ID], features[Keys.FILENAME]
        return {
            "image": image,
            "boxes": boxes,
            "classes": classes,
            "class_names": names,
            "key": tf.where(tf.strings.length(source_id) > 0, source_id, filename),
            "filename": filename,
            "height": height,
            "width": width,
        }


def _tables(label_map: LabelMap) -> tuple[Any, Any]:
    """(text -> id, id -> name) lookups of a label map: text matches an item's name first,
    then its display name; an id is named by its display name, else its name."""
    keys = [item.name for item in label_map]
    ids = [item.id for item in label_map]
    for item in label_map:
        shown = item.display_name
        if shown is not None and shown not in keys:
            keys.append(shown)
            ids.append(item.id)
    by_text = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, tf.string), tf.constant(ids, tf.int64)
        ),
        default_value=-1,
    )
    by_id = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant([item.id for item in label_map], tf.int64),
            tf.constant([item.display_name or item.name for item in label_map], tf.string),
        ),
        default_value="",
    )
    return by_text, by_id


def _dense(values: Any, default: Any) -> tf.Tensor:
    return tf.sparse.to_dense(values, default_value=default)


def _either(
    own: tf.Tensor, count: tf.Tensor, table: Any, other: tf.Tensor, missing: tf.Tensor
) -> tf.Tensor:
    """`own` when it has a value per box; else `other` looked up in `table` when it has;
    else `missing` for every box."""
    filled = tf.fill([count], missing)
    looked_up: Callable[[], tf.Tensor] = (
        (lambda: table.lookup(other)) if table is not None else (lambda: filled)
    )
    fallback = tf.cond(tf.equal(tf.size(other), count), looked_up, lambda: filled)
    return tf.cond(tf.equal(tf.size(own), count), lambda: own, lambda: fallback)


def _boxes(
    box_format: str,
    xmin: tf.Tensor,
    ymin: tf.Tensor,
    xmax: tf.Tensor,
    ymax: tf.Tensor,
    width: tf.Tensor,
    height: tf.Tensor,
) -> tf.Tensor:
    """[N, 4] float32 boxes in `box_format` from normalized corners."""
    relative = box_format.startswith("rel_")
    if not relative:
        scale_x, scale_y = tf.cast(width, tf.float32), tf.cast(height, tf.float32)
        xmin, xmax, ymin, ymax = xmin * scale_x, xmax * scale_x, ymin * scale_y, ymax * scale_y
    kind = box_format.removeprefix("rel_")
    if kind == "xyxy":
        columns = [xmin, ymin, xmax, ymax]
    elif kind == "yxyx":
        columns = [ymin, xmin, ymax, xmax]
    elif kind == "xywh":
        columns = [xmin, ymin, xmax - xmin, ymax - ymin]
    else:  # center_xywh
        columns = [(xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin]
    return tf.stack(columns, axis=-1)
