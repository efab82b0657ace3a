"""TFRecord shards of `tf.train.Example`s in the TF Object Detection API schema.

Written without TensorFlow (see `annoconv.tfexample`). Each image becomes one Example with
its image bytes embedded (JPEG and PNG byte for byte, other formats transcoded, see
`annoconv.io.embed`), boxes normalized to [0, 1] and class ids from the run's label map.

Shards are named ``PREFIX-00000-of-00004`` (0-based, 5 digits). Which shard an image goes to
depends only on the set of image keys: keys are dealt round-robin in a hash order, so shard
sizes differ by at most one image and do not change when the input order does. A run that
reads its source once (a given label map, nothing else needing the whole dataset first: see
`annoconv.plan`) knows no keys up front: each image goes to the shard of its key's hash
(`ops.shard_of`), which depends on the key alone, so shard sizes differ by chance (a few
percent on thousands of images). With ``shard_size`` the number of shards is the total size of
the images divided by it (rounded up; the run reads the images' sizes first). Every shard is
written streaming; all shards are published together on success.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from annoconv.errors import AnnoconvError, AnnotationError, OptionError
from annoconv.formats import formats_named_by
from annoconv.formats.base import (
    BadItem,
    Capabilities,
    Format,
    Reader,
    ReadResult,
    ShardPartition,
    Source,
    Writer,
)
from annoconv.io.embed import DEFAULT_PNG_LEVEL, EmbeddedImage, SizePolicy, embed_image
from annoconv.io.fs import (
    exists,
    expand_source,
    is_dir,
    list_files,
    relative_posix,
    shard_numbers,
    shards_of,
    size_of,
)
from annoconv.io.images import RecordImages
from annoconv.ops import assign_shards, shard_of
from annoconv.options import FormatOptions
from annoconv.report import OutputFile
from annoconv.schema import (
    NORMALIZED,
    UNKNOWN,
    ImageRecord,
    ObjectAnnotation,
    make_object,
    make_record,
)
from annoconv.tfexample import (
    Feature,
    Keys,
    TFRecordError,
    TFRecordWriter,
    bytes_feature,
    decode_example,
    encode_example,
    float_feature,
    int64_feature,
    iter_tfrecords,
)

if TYPE_CHECKING:
    from annoconv.labelmap import LabelMap

Compression = Literal["GZIP", "ZLIB"] | None
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
}

_LABEL = attrgetter("label")
_POSE = attrgetter("pose")
# The OI flags the OD API reads; written as -1/0/1 like the OD API's own OID tools.
_OBJECT_FLAGS = {
    Keys.OBJECT_TRUNCATED: "truncated",
    Keys.OBJECT_OCCLUDED: "occluded",
    Keys.OBJECT_GROUP_OF: "group_of",
    Keys.OBJECT_DEPICTION: "depiction",
}
#: Flags whose unknown (-1) is written as 0: the OD API's decoder reads any non-zero value as
#: true (`difficult` in its evaluation, `group_of` cast to bool), so -1 would mean "yes".
#: `difficult` is always written; `group_of` when any box of the image knows it, and then
#: the report counts the unknowns written as 0 (`Report.adjusted`), by this description.
GROUP_OF_UNKNOWN = "unknown group_of flags written as 0 (TFRecord)"


#: More shards than this are a mistake (a shard size of a few bytes), not a plan: every shard
#: is an open file while the run writes.
MAX_SHARDS = 10_000


class TFRecordWriteOptions(FormatOptions):
    shards: int | None = Field(
        None,
        ge=1,
        le=MAX_SHARDS,
        description="number of shards (default 1)",
        json_schema_extra={"metavar": "N"},
    )
    shard_size: int | str | None = Field(
        None,
        description="pick the shard count from image bytes, e.g. 100MB",
        json_schema_extra={"metavar": "SIZE"},
    )
    compression: Literal["GZIP", "ZLIB"] | None = Field(None, description="compress the shards")
    size_policy: Literal["fail", "warn", "skip"] = Field(
        "fail",
        description="when an annotation's size disagrees with its image: fail (default), "
        "warn and trust the image (boxes rescaled), or skip the image",
    )
    jpeg_quality: int = Field(
        95,
        ge=1,
        le=100,
        description="quality of transcoded photos (default 95)",
        json_schema_extra={"metavar": "Q"},
    )
    png_level: int = Field(
        DEFAULT_PNG_LEVEL,
        ge=0,
        le=9,
        description=f"zlib level of transcoded PNGs, 0-9 (default {DEFAULT_PNG_LEVEL}: fast; "
        "6 is about a sixth smaller for twice the time, 9 smaller still, much slower)",
        json_schema_extra={"metavar": "L"},
    )

    @field_validator("shard_size")
    @classmethod
    def _size(cls, value: int | str | None) -> int | str | None:
        if value is not None and parse_size(value) < 1:
            raise ValueError("a shard size must be at least 1 byte")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> TFRecordWriteOptions:
        if self.shards is not None and self.shard_size is not None:
            raise ValueError("give either shards or shard_size, not both")
        return self


class TFRecordReadOptions(FormatOptions):
    compression: Literal["GZIP", "ZLIB", "auto"] | None = Field(
        "auto",
        description="compression of the shards (auto: told from the name or the bytes)",
        json_schema_extra={"cli": False},
    )
    label_map: Any = Field(
        None,
        description="names classes by id when an Example lacks the class text",
        json_schema_extra={"cli": False},
    )


def pipeline_config_lines(outputs: Sequence[OutputFile], given_label_map: str | None) -> list[str]:
    """What the TF Object Detection API's pipeline.config takes for TFRecord outputs: each
    shard set as the glob `input_path` takes, the label map, and `num_classes` (its top id)."""
    from annoconv.labelmap import LabelMap, quote

    sets = shard_sets(outputs)
    if not sets:
        return []
    lines = ["for the TF Object Detection API's pipeline.config:"]
    for (prefix, count), shards in sets.items():
        if any(char in prefix for char in _GLOB_SPECIAL):  # the glob would not find them
            lines += [f"  input_path: {quote(shard)}" for shard in shards]
        else:
            lines.append(f"  input_path: {quote(f'{prefix}-?????-of-{count:05d}')}")
    written = [out.path for out in outputs if out.kind == "label_map"]
    for path in written or ([given_label_map] if given_label_map else []):
        lines.append(f"  label_map_path: {quote(path)}")
        lines.append(f"  num_classes: {LabelMap.read(path).max_id}")
    return lines


#: What tf.io.gfile.glob reads as a pattern in a path.
_GLOB_SPECIAL = "*?[]{}\\"


def shard_name(prefix: str, index: int, count: int) -> str:
    return f"{prefix}-{index:05d}-of-{count:05d}"


def parse_size(text: str | int) -> int:
    """`100MB`, `1.5GB`, `512KiB` or a plain number of bytes."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size like 100MB, 1.5GB or 512KiB")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


class TFRecordShardWriter(Writer):
    """Writes records as OD API Examples into `shards` TFRecord files named after `destination`.

    Options: `shards` (default 1) or `shard_size` (bytes, or text like ``100MB``),
    `compression` (None, "GZIP", "ZLIB"), `size_policy` for an annotation whose size
    disagrees with its image ("fail", "warn": trust the image, "skip"), `jpeg_quality` of
    transcoded photos, `png_level` (zlib, 0-9) of transcoded lossless images (bilevel pages).
    `keys` (given by `convert()`) maps every image key to its image size; without them each
    image goes to the shard of its key's hash (`ops.shard_of`).
    """

    # Takes either space (coords None): pixel boxes are normalized here by the annotation's
    # size, or by the image's when the annotation has none (cheaper than converting records
    # first). `write()` takes the image's bytes when the caller has them (annoconv.io.feed).
    capabilities = Capabilities(
        needs_label_map=True,
        needs_keys=True,
        sharded=True,
        embeds_images=True,
        label_map_file=True,
        prepares=True,
        shards_by_hash=True,
    )
    kind = "tfrecord"

    def __init__(
        self,
        destination: str,
        *,
        label_map: LabelMap | None = None,
        images: str | None = None,
        keys: Mapping[str, int] | None = None,
        shards: int | None = None,
        shard_size: int | str | None = None,
        compression: Compression = None,
        size_policy: SizePolicy = "fail",
        jpeg_quality: int = 95,
        png_level: int = DEFAULT_PNG_LEVEL,
        partition: ShardPartition | None = None,
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        if label_map is None:
            raise AnnoconvError("the TFRecord writer needs a label map")
        if shards is not None and shard_size is not None:
            raise ValueError("give either shards or shard_size, not both")
        if partition is None:
            self.count = _shard_count(shards, shard_size, keys)
            self._assignment = assign_shards(keys, self.count) if keys is not None else None
            owned: Iterable[int] = range(self.count)
        else:
            self.count, self._assignment = partition.count, dict(partition.assignment)
            owned = sorted(partition.owned)
        self.compression = compression
        self.size_policy = size_policy
        self.jpeg_quality = jpeg_quality
        self.png_level = png_level
        self._images = RecordImages(images)
        self._files = {
            index: TFRecordWriter(shard_name(destination, index, self.count), compression)
            for index in owned
        }

    @classmethod
    def weigher(cls, **options: Any) -> Callable[[ImageRecord], int] | None:
        if options.get("shard_size") is None:
            return None
        finder = RecordImages(options.get("images"))

        def weigh(record: ImageRecord) -> int:
            try:
                return size_of(finder.find(record))
            except (AnnotationError, OSError):
                return 0  # reported when the record is written

        return weigh

    @classmethod
    def shard_plan(
        cls, keys: Mapping[str, int] | None, **options: Any
    ) -> tuple[int, dict[str, int]]:
        if options.get("shards") is not None and options.get("shard_size") is not None:
            raise ValueError("give either shards or shard_size, not both")
        count = _shard_count(options.get("shards"), options.get("shard_size"), keys)
        return count, assign_shards(keys or {}, count)

    @classmethod
    def joins_shard_parts(cls, **options: Any) -> bool:
        """Framed records concatenate; a compressed stream would join as another stream."""
        return options.get("compression") is None

    @classmethod
    def usage_notes(cls, outputs: Sequence[OutputFile], label_map: str | None) -> list[str]:
        return pipeline_config_lines(outputs, label_map)

    @classmethod
    def stale_outputs(cls, outputs: Sequence[OutputFile]) -> list[str]:
        """Shards of another count under a prefix this run wrote (a rerun with other
        `shards`): a glob such as ``PREFIX-*`` in a training config would read both sets."""
        return [
            shard
            for prefix, count in sorted(shard_sets(outputs))
            for shard in shards_of(prefix)
            if (numbers := shard_numbers(shard)) and numbers[2] != count
        ]

    def write(self, record: ImageRecord, image_data: bytes | None = None) -> None:
        self.write_prepared(record, self.prepare(record, image_data))

    def prepare(self, record: ImageRecord, image_data: bytes | None = None) -> EmbeddedImage:
        """The image bytes the record's Example embeds: found, read, checked and, when TF
        cannot decode them, transcoded (Pillow's codecs release the GIL)."""
        return self._embed(record, image_data)

    def write_prepared(self, record: ImageRecord, prepared: object) -> None:
        assert self.label_map is not None and isinstance(prepared, EmbeddedImage)
        image = prepared
        if image.note:
            self.warnings.append(image.note)
        payload = encode_example(example_features(record, image, self.label_map))
        unknown = unknown_group_of_written(record.objects)
        if unknown:
            self.adjusted[GROUP_OF_UNKNOWN] += unknown
        shard = self._files.get(self._shard(record.key))
        if shard is None:
            raise AnnoconvError(f"internal error: {record.key!r} is in another task's shard")
        shard.write(payload)

    def close(self) -> list[OutputFile]:
        outputs = []
        for index, shard in self._files.items():
            size = shard.close()
            outputs.append(
                OutputFile(shard_name(self.destination, index, self.count), size, "tfrecord")
            )
        return outputs

    def abort(self) -> None:
        for shard in self._files.values():
            shard.abort()

    def _shard(self, key: str) -> int:
        if self._assignment is not None and key in self._assignment:
            return self._assignment[key]
        return shard_of(key, self.count)

    def _embed(self, record: ImageRecord, data: bytes | None) -> EmbeddedImage:
        # Given bytes come with the record's `image_uri` naming where they were taken from.
        uri = record.image_uri if data is not None and record.image_uri else None
        uri = uri or self._images.find(record)
        size = (record.width, record.height) if record.has_size else None
        return embed_image(
            uri,
            annotated_size=size,  # type: ignore[arg-type]
            size_policy=self.size_policy,
            jpeg_quality=self.jpeg_quality,
            source=record.source or record.key,
            data=data,
            png_level=self.png_level,
        )


def shard_sets(outputs: Sequence[OutputFile]) -> dict[tuple[str, int], list[str]]:
    """The TFRecord shard sets among a run's outputs: (prefix, count) -> the shards' paths."""
    sets: dict[tuple[str, int], list[str]] = {}
    for out in outputs:
        numbers = shard_numbers(out.path) if out.kind == "tfrecord" else None
        if numbers:
            prefix, _index, count = numbers
            sets.setdefault((prefix, count), []).append(out.path)
    return sets


def _shard_count(
    shards: int | None, shard_size: int | str | None, keys: Mapping[str, int] | None
) -> int:
    if shard_size is None:
        count = 1 if shards is None else shards
        if count < 1:
            raise ValueError(f"the number of shards must be at least 1, got {count}")
        return count
    if keys is None:
        raise ValueError("shard_size needs the image keys and sizes up front (use convert())")
    size = parse_size(shard_size)
    if size < 1:
        raise OptionError(f"shard_size {shard_size!r}: a shard size must be at least 1 byte")
    count = max(1, math.ceil(sum(keys.values()) / size))
    if count > MAX_SHARDS:
        raise OptionError(
            f"shard_size {shard_size!r} would make {count:,} shards of "
            f"{sum(keys.values()):,} image bytes (at most {MAX_SHARDS:,}): give a larger size"
        )
    return count


def example_features(
    record: ImageRecord, image: EmbeddedImage, label_map: LabelMap
) -> dict[str, Feature]:
    """The OD API features of one image."""
    objects = record.objects
    xmin, ymin, xmax, ymax = normalized_boxes(record, image)
    labels = list(map(_LABEL, objects))
    # Each label looked up once, in first-seen order (so a missing one fails as before).
    ids = {label: label_map.id_of(label) for label in dict.fromkeys(labels)}
    features: dict[str, Feature] = {
        Keys.HEIGHT: int64_feature([image.height]),
        Keys.WIDTH: int64_feature([image.width]),
        Keys.FILENAME: bytes_feature([record.filename.encode()]),
        Keys.SOURCE_ID: bytes_feature([record.key.encode()]),
        Keys.SHA256: bytes_feature([image.sha256.encode()]),
        Keys.ENCODED: bytes_feature([image.data]),
        Keys.FORMAT: bytes_feature([image.format.encode()]),
        Keys.BBOX_XMIN: float_feature(xmin),
        Keys.BBOX_XMAX: float_feature(xmax),
        Keys.BBOX_YMIN: float_feature(ymin),
        Keys.BBOX_YMAX: float_feature(ymax),
        Keys.OBJECT_CLASS_TEXT: bytes_feature([label.encode() for label in labels]),
        Keys.OBJECT_CLASS_LABEL: int64_feature([ids[label] for label in labels]),
        # The OD API treats any non-zero `difficult` as difficult: unknown is written as 0.
        Keys.OBJECT_DIFFICULT: int64_feature([max(obj.difficult, 0) for obj in objects]),
    }
    for key, flag in _OBJECT_FLAGS.items():
        column = list(map(attrgetter(flag), objects))
        if column.count(UNKNOWN) != len(column):
            if flag == "group_of":  # the decoder casts it to bool: -1 would be "group of"
                column = [max(value, 0) for value in column]
            features[key] = int64_feature(column)
    poses = list(map(_POSE, objects))
    if poses.count(None) != len(poses):
        features[Keys.OBJECT_VIEW] = bytes_feature([(pose or "").encode() for pose in poses])
    labels = [item for item in record.image_labels if item.label in label_map]
    if labels:
        features[Keys.IMAGE_CLASS_TEXT] = bytes_feature([item.label.encode() for item in labels])
        features[Keys.IMAGE_CLASS_LABEL] = int64_feature([label_map.id_of(i.label) for i in labels])
    return features


def unknown_group_of_written(objects: Sequence[ObjectAnnotation]) -> int:
    """How many unknown `group_of` flags `example_features` writes as 0 for these boxes
    (none when no box knows the flag: the feature is not written then)."""
    unknown = sum(1 for obj in objects if obj.group_of == UNKNOWN)
    return unknown if unknown < len(objects) else 0


def normalized_boxes(
    record: ImageRecord, image: EmbeddedImage
) -> tuple[list[float], list[float], list[float], list[float]]:
    """(xmin, ymin, xmax, ymax) lists in [0, 1].

    Pixel boxes are divided by the annotation's size; a box normalized by it stays the same
    when the image turns out to be a scaled version (size policy "warn"), so `image.scale`
    needs no applying. Without an annotated size the image's size is used, and boxes that
    fall outside the image are an error rather than coordinates beyond [0, 1].
    """
    objects = record.objects
    if record.coords == NORMALIZED:
        fx = fy = 1.0
    else:
        width, height = (record.width, record.height) if record.has_size else (None, None)
        fx = 1.0 / (width or image.width)
        fy = 1.0 / (height or image.height)
    xmin = [obj.xmin * fx for obj in objects]
    ymin = [obj.ymin * fy for obj in objects]
    xmax = [obj.xmax * fx for obj in objects]
    ymax = [obj.ymax * fy for obj in objects]
    if not record.has_size and record.coords != NORMALIZED:
        _check_inside(record, image, xmax, ymax)
    return xmin, ymin, xmax, ymax


def _check_inside(
    record: ImageRecord, image: EmbeddedImage, xmax: list[float], ymax: list[float]
) -> None:
    tolerance = 1e-9
    for index, (x, y) in enumerate(zip(xmax, ymax, strict=True)):
        if x > 1 + tolerance or y > 1 + tolerance:
            obj = record.objects[index]
            raise AnnotationError(
                record.source,
                f"box ({obj.xmin:g}, {obj.ymin:g}, {obj.xmax:g}, {obj.ymax:g}) "
                f"reaches outside the {image.width}x{image.height} image",
                f"object[{index + 1}]",
            )


# --- reading ---------------------------------------------------------------------------------


class TFRecordReader(Reader):
    """Reads OD API Examples from TFRecord files (ours or other tools'), verifying CRCs.

    Source: a file, a glob, a list, or a shard prefix (``out/train.record`` reads every
    ``out/train.record-?????-of-?????``). Records come back in normalized coordinates; the
    image bytes are not kept (their SHA-256 is). Class names come from
    ``image/object/class/text``, or from `label_map` ids when the text is missing.
    """

    def __init__(
        self,
        source: Source,
        *,
        images: str | None = None,
        compression: Literal["GZIP", "ZLIB", "auto"] | None = "auto",
        label_map: LabelMap | str | None = None,
    ) -> None:
        super().__init__(source, images=images)
        self.compression = compression
        if isinstance(label_map, str):
            from annoconv.labelmap import LabelMap

            label_map = LabelMap.read(label_map)
        self.label_map = label_map

    def files(self) -> list[str]:
        return tfrecord_files(self.source)

    def __iter__(self) -> Iterator[ReadResult]:
        for item, _image in self.with_images():
            yield item

    def with_images(self) -> Iterator[tuple[ReadResult, bytes | None]]:
        """What iteration yields, each record with its `image/encoded` bytes (None when the
        Example has none, and for bad items): the pixels training decodes (`annoconv preview`)."""
        for uri in self.files():
            yield from self._file_items(uri)

    def _file_items(self, uri: str) -> Iterator[tuple[ReadResult, bytes | None]]:
        """A file's records with their image bytes; a corrupt record (at least one image)
        is a BadItem, and reading goes on with the next sound record. A file cut short ends
        there."""
        damage: list[TFRecordError] = []
        records = iter_tfrecords(uri, self.compression, on_damage=damage.append)
        index = 0
        try:
            for payload in records:
                yield from ((BadItem(error, images=1), None) for error in damage)
                index += len(damage)  # (the records lost, at least)
                damage.clear()
                yield self._record(payload, uri, index)
                index += 1
        except TFRecordError as error:
            yield from ((BadItem(error, images=1), None) for error in damage)
            yield BadItem(error, images=0), None
            return
        yield from ((BadItem(error, images=1), None) for error in damage)

    def _record(self, payload: bytes, uri: str, index: int) -> tuple[ReadResult, bytes | None]:
        where = f"record {index}"
        try:
            features = decode_example(payload)
            record = example_record(features, uri, where, self.label_map)
        except AnnotationError as error:
            return BadItem(error), None
        except (ValueError, AnnoconvError) as error:
            return BadItem(AnnotationError(uri, str(error), where)), None
        encoded = _values(features, Keys.ENCODED)
        return record, encoded[0] if encoded else None


def tfrecord_files(source: Source) -> list[str]:
    """The files of a source; a shard prefix expands to its shards, in order, and must name
    one complete set (an interrupted publish or an older run's shards could leave another)."""
    if isinstance(source, str) and not exists(source):
        shards = shards_of(source)
        if shards:
            return _complete_set(source, shards)
    if isinstance(source, str) and is_dir(source):
        return _folder_records(source)
    files, _ = expand_source(source, ())
    return files


def _folder_records(folder: str) -> list[str]:
    """The TFRecord files of a folder: those named as TFRecords (by extension, also
    ``.gz``, or as shards ``-00000-of-00004``); failing any, every file not named as another
    format. Hidden files and folders (``.DS_Store``, a run's staging folder) never count."""
    visible = [uri for uri in list_files(folder) if not _hidden(uri, folder)]
    named = [uri for uri in visible if _named_as_tfrecord(uri)]
    if named or not visible:
        return named
    unnamed = [uri for uri in visible if named_as_other_format(uri) is None]
    if not unnamed:
        raise AnnotationError(
            folder,
            "no TFRecord files in this folder (named *.tfrecord, *.record, *.tfrecords, "
            "*.tfrec, also .gz, or shards *-00000-of-00004); the files there are named as "
            "other formats (`annoconv stats` looks at annotations of any format)",
        )
    return unnamed


def named_as_other_format(uri: str) -> str | None:
    """The format another than TFRecord that the name of `uri` says (``boxes.csv``: csv);
    None for a name that says TFRecord (a shard name does) or no format."""
    if _named_as_tfrecord(uri):
        return None
    named = formats_named_by(uri)
    return named[0] if named else None


def _named_as_tfrecord(uri: str) -> bool:
    name = posixpath.basename(uri.replace("\\", "/")).lower().removesuffix(".gz")
    return shard_numbers(name) is not None or name.endswith(FORMAT.extensions)


def _hidden(uri: str, folder: str) -> bool:
    below = relative_posix(uri, folder)
    return any(part.startswith(".") and part != ".." for part in below.split("/"))


def _complete_set(prefix: str, shards: list[str]) -> list[str]:
    found: dict[int, set[int]] = {}
    for shard in shards:
        numbers = shard_numbers(shard)
        if numbers:
            found.setdefault(numbers[2], set()).add(numbers[1])
    if len(found) > 1:
        sets = ", ".join(f"{len(found[count])} of {count}" for count in sorted(found))
        raise AnnotationError(
            prefix, f"shards of more than one set ({sets}): remove the stale ones and read again"
        )
    for count, indices in found.items():
        missing = [shard_name(prefix, i, count) for i in range(count) if i not in indices]
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise AnnotationError(
                prefix,
                f"incomplete shard set: {len(indices)} of {count} shards present; missing {shown}",
            )
        if max(indices) >= count:
            raise AnnotationError(prefix, f"a shard numbered beyond its set of {count}")
    return shards


def _values(features: Mapping[str, tuple[str, list[Any]]], key: str) -> list[Any]:
    return features[key][1] if key in features else []


def _text(features: Mapping[str, tuple[str, list[Any]]], key: str) -> str | None:
    values = _values(features, key)
    return values[0].decode("utf-8", "replace") if values else None


#: The list kind of every feature the reader uses, as the OD API's decoder expects it.
FEATURE_KINDS = {
    **dict.fromkeys((Keys.HEIGHT, Keys.WIDTH, Keys.OBJECT_CLASS_LABEL), "int64"),
    **dict.fromkeys((Keys.OBJECT_DIFFICULT, *_OBJECT_FLAGS, Keys.IMAGE_CLASS_LABEL), "int64"),
    **dict.fromkeys((Keys.BBOX_XMIN, Keys.BBOX_XMAX, Keys.BBOX_YMIN, Keys.BBOX_YMAX), "float"),
    **dict.fromkeys((Keys.FILENAME, Keys.SOURCE_ID, Keys.SHA256, Keys.ENCODED), "bytes"),
    **dict.fromkeys((Keys.FORMAT, Keys.OBJECT_CLASS_TEXT, Keys.OBJECT_VIEW), "bytes"),
    Keys.IMAGE_CLASS_TEXT: "bytes",
}


def check_kinds(features: Mapping[str, tuple[str, list[Any]]], source: str, where: str) -> None:
    """An AnnotationError for a feature holding another kind of list than the schema's (a
    `bytes_list` of widths, a `float_list` of class names): values are never coerced."""
    for key, kind in FEATURE_KINDS.items():
        found, values = features.get(key, (kind, []))
        if values and found != kind:
            raise AnnotationError(
                source, f"{key} holds a {found}_list, expected {kind}_list", where
            )


def example_record(
    features: Mapping[str, tuple[str, list[Any]]],
    source: str,
    where: str,
    label_map: LabelMap | None = None,
) -> ImageRecord:
    """An ImageRecord from decoded OD API features."""
    check_kinds(features, source, where)
    boxes = [
        _values(features, key)
        for key in (Keys.BBOX_XMIN, Keys.BBOX_YMIN, Keys.BBOX_XMAX, Keys.BBOX_YMAX)
    ]
    count = len(boxes[0])
    if any(len(values) != count for values in boxes):
        lengths = "/".join(str(len(values)) for values in boxes)
        raise AnnotationError(source, f"bbox lists differ in length ({lengths})", where)
    labels = _labels(features, count, label_map, source, where)
    flags = {name: _values(features, key) for key, name in _OBJECT_FLAGS.items()}
    flags["difficult"] = _values(features, Keys.OBJECT_DIFFICULT)
    views = _values(features, Keys.OBJECT_VIEW)
    objects = [_object(index, boxes, labels, flags, views, source, where) for index in range(count)]
    filename = _text(features, Keys.FILENAME) or _text(features, Keys.SOURCE_ID) or where
    width = _values(features, Keys.WIDTH)
    height = _values(features, Keys.HEIGHT)
    return make_record(
        source,
        where,
        key=_text(features, Keys.SOURCE_ID) or filename,
        filename=filename,
        width=width[0] if width and width[0] > 0 else None,
        height=height[0] if height and height[0] > 0 else None,
        coords=NORMALIZED,
        objects=objects,
        sha256=_text(features, Keys.SHA256),
    )


def _labels(
    features: Mapping[str, tuple[str, list[Any]]],
    count: int,
    label_map: LabelMap | None,
    source: str,
    where: str,
) -> list[str]:
    texts = _values(features, Keys.OBJECT_CLASS_TEXT)
    if len(texts) == count:
        return [text.decode("utf-8", "replace") for text in texts]
    ids = _values(features, Keys.OBJECT_CLASS_LABEL)
    if len(ids) != count or label_map is None:
        raise AnnotationError(
            source, "objects have no class text (and no label map was given for the ids)", where
        )
    by_id = {item.id: item.name for item in label_map}
    unknown = sorted({i for i in ids if i not in by_id})
    if unknown:
        raise AnnotationError(source, f"class ids {unknown} are not in the label map", where)
    return [by_id[i] for i in ids]


def _object(
    index: int,
    boxes: list[list[float]],
    labels: list[str],
    flags: Mapping[str, list[int]],
    views: list[bytes],
    source: str,
    where: str,
) -> ObjectAnnotation:
    xmin, ymin, xmax, ymax = (values[index] for values in boxes)
    known = {name: values[index] for name, values in flags.items() if len(values) > index}
    pose = views[index].decode("utf-8", "replace") if len(views) > index else None
    return make_object(
        source,
        f"{where}/object[{index + 1}]",
        label=labels[index],
        xmin=xmin,
        ymin=ymin,
        xmax=xmax,
        ymax=ymax,
        pose=pose or None,
        **{name: value if value in (-1, 0, 1) else 1 for name, value in known.items()},
    )


REQUIRED_KEYS = (
    Keys.ENCODED,
    Keys.BBOX_XMIN,
    Keys.BBOX_XMAX,
    Keys.BBOX_YMIN,
    Keys.BBOX_YMAX,
    Keys.OBJECT_CLASS_LABEL,
)


@dataclass
class Inspection:
    """What `annoconv inspect` found: per file counts, keys, classes, formats, problems."""

    files: list[dict[str, Any]] = field(default_factory=list)
    keys: Counter[str] = field(default_factory=Counter)
    classes: Counter[str] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "records": sum(f["records"] for f in self.files),
            "boxes": sum(f["boxes"] for f in self.files),
            "keys": dict(sorted(self.keys.items())),
            "classes": dict(sorted(self.classes.items())),
            "formats": dict(sorted(self.formats.items())),
            "problems": self.problems,
        }

    def table(self) -> str:
        lines = [f"{f['path']}: {f['records']} records, {f['boxes']} boxes" for f in self.files]
        lines.append("keys: " + ", ".join(f"{k} ({n})" for k, n in sorted(self.keys.items())))
        lines.append("classes: " + ", ".join(f"{k} ({n})" for k, n in sorted(self.classes.items())))
        lines.append("image formats: " + ", ".join(f"{k} ({n})" for k, n in self.formats.items()))
        lines.append(f"problems: {len(self.problems)}")
        return "\n".join(lines)


def inspect_tfrecords(sources: list[str], *, label_map: LabelMap | str | None = None) -> Inspection:
    """Reads every record (verifying CRCs) and checks it against the OD API schema."""
    if isinstance(label_map, str):
        from annoconv.labelmap import LabelMap

        label_map = LabelMap.read(label_map)
    result = Inspection()
    for source in sources:
        for uri in tfrecord_files(source):
            _inspect_file(uri, label_map, result)
    return result


def _inspect_file(uri: str, label_map: LabelMap | None, result: Inspection) -> None:
    records = boxes = 0
    other = named_as_other_format(uri)
    if other is not None:
        result.problems.append(
            f"{uri}: named as a {other} file, not a TFRecord; not read "
            "(`annoconv stats` looks at annotations of any format)"
        )
        result.files.append({"path": uri, "records": 0, "boxes": 0})
        return
    try:
        for index, payload in enumerate(iter_tfrecords(uri, "auto")):
            records += 1
            where = f"{uri}: record {index}"
            try:
                features = decode_example(payload)
                check_kinds(features, uri, f"record {index}")
            except AnnotationError as error:
                result.problems.append(str(error))
                continue
            except (ValueError, AnnoconvError) as error:
                result.problems.append(f"{where}: {error}")
                continue
            result.keys.update(list(features))
            result.formats.update([_text(features, Keys.FORMAT) or "?"])
            boxes += len(_values(features, Keys.BBOX_XMIN))
            texts = _values(features, Keys.OBJECT_CLASS_TEXT)
            result.classes.update(text.decode("utf-8", "replace") for text in texts)
            result.problems.extend(_example_problems(features, uri, f"record {index}", label_map))
    except AnnoconvError as error:
        result.problems.append(str(error))
    result.files.append({"path": uri, "records": records, "boxes": boxes})


def _example_problems(
    features: Mapping[str, tuple[str, list[Any]]],
    uri: str,
    where: str,
    label_map: LabelMap | None,
) -> list[str]:
    problems = [f"{uri}: {where}: missing {key}" for key in REQUIRED_KEYS if key not in features]
    try:
        record = example_record(features, uri, where, label_map)
    except AnnotationError as error:
        return [*problems, str(error)]
    ids = _values(features, Keys.OBJECT_CLASS_LABEL)
    if any(i < 1 for i in ids):
        problems.append(f"{uri}: {where}: class ids must be >= 1, got {sorted(set(ids))}")
    if label_map is not None and len(ids) == len(record.objects):
        for obj, class_id in zip(record.objects, ids, strict=True):
            if obj.label not in label_map or label_map.id_of(obj.label) != class_id:
                problems.append(
                    f"{uri}: {where}: class {obj.label!r} has id {class_id}, "
                    f"the label map says {label_map.get(obj.label)}"
                )
                break
    return problems


FORMAT = Format(
    "tfrecord",
    "TFRecord shards of TF Object Detection API tf.train.Examples (no TensorFlow needed)",
    (".tfrecord", ".record", ".tfrecords", ".tfrec"),
    reader=TFRecordReader,
    writer=TFRecordShardWriter,
    read_options=TFRecordReadOptions,
    write_options=TFRecordWriteOptions,
)
