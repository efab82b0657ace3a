"""PyTorch datasets over our outputs, in the shape torchvision's detection models take.

Needs PyTorch (``pip install 'annoconv[torch]'``), not TensorFlow nor torchvision;
`import annoconv` never imports torch.

    from torch.utils.data import DataLoader
    import annoconv.torch

    train = annoconv.torch.ParquetDetection("out/ds", split="train")
    loader = DataLoader(train, batch_size=4, shuffle=True, num_workers=2,
                        collate_fn=annoconv.torch.collate)
    for images, targets in loader:
        losses = model(list(images), list(targets))

Each item is ``(image, target)``:

* ``image``: a ``[3, height, width]`` tensor, float32 in [0, 1] (`dtype=torch.uint8`: 0-255);
* ``target``: ``{"boxes": float32 [N, 4] (xmin, ymin, xmax, ymax in pixels), "labels":
  int64 [N] (label map ids: 0 is the background torchvision reserves, and no class has it),
  "key": str}``.

`transforms`, if given, is called as ``transforms(image, target)`` and returns the pair to
yield (torchvision's v2 transforms take that call; wrap the boxes as ``tv_tensors.BoundingBoxes``
in your hook to have them follow resizes and flips).

`ParquetDetection` is map-style: any DataLoader sampler (shuffle, `DistributedSampler`)
divides it. `TFRecordDetection` is iterable: it deals whole shards to DataLoader workers
and distributed ranks, so each example is read once, by one of them.
"""

from __future__ import annotations

import bisect
import io
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from annoconv.errors import AnnotationError, MissingDependencyError

try:
    import torch
    from torch.utils.data import Dataset, IterableDataset, get_worker_info
except ImportError:  # pragma: no cover - the torch test target installs PyTorch
    raise MissingDependencyError(
        "annoconv.torch needs PyTorch: pip install 'annoconv[torch]'"
    ) from None

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from annoconv.labelmap import LabelMap
from annoconv.schema import NORMALIZED

__all__ = ["ParquetDetection", "Sample", "TFRecordDetection", "Transforms", "collate"]

Sample = tuple[torch.Tensor, dict[str, Any]]
Transforms = Callable[[torch.Tensor, dict[str, Any]], Sample]


def collate(batch: Sequence[Sample]) -> tuple[tuple[torch.Tensor, ...], tuple[dict[str, Any], ...]]:
    """A DataLoader batch as detection models take it: (images, targets), each a tuple
    (images differ in size, so they are not stacked)."""
    images, targets = zip(*batch, strict=True) if batch else ((), ())
    return tuple(images), tuple(targets)


def _tensor(image: Image.Image, dtype: torch.dtype) -> torch.Tensor:
    """A decoded image as a [3, H, W] tensor (no numpy needed), its RGB pixels as
    TensorFlow gives them (16-bit samples cut to their high byte, not clipped to 255)."""
    from annoconv.io.decode import tf_rgb

    rgb = tf_rgb(image)
    width, height = rgb.size
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    chw = pixels.view(height, width, 3).permute(2, 0, 1).contiguous()
    if dtype == torch.uint8:
        return chw
    return chw.to(dtype).div_(255)


def _sample(
    image: torch.Tensor,
    boxes: list[list[float]],
    labels: list[int],
    key: str,
    transforms: Transforms | None,
) -> Sample:
    target = {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "key": key,
    }
    return transforms(image, target) if transforms is not None else (image, target)


def _label_map(label_map: LabelMap | str | None) -> LabelMap | None:
    return LabelMap.read(label_map) if isinstance(label_map, str) else label_map


# --- TFRecord shards ------------------------------------------------------------------------


class TFRecordDetection(IterableDataset[Sample]):
    """The examples of OD API TFRecord files (a shard prefix, a file, a folder, a glob or a
    list), read with annoconv's own reader (both CRCs of every record checked; plain, GZIP
    or ZLIB), decoded as TensorFlow decodes them (the pixels as stored).

    Shards are dealt to the readers, ``rank * workers + worker`` of ``world_size * workers``
    (DataLoader workers; ranks of `torch.distributed` when it is initialized, or as given):
    each reads whole shards, so write at least as many shards as there are readers.
    `shuffle_shards` reads them in a random order, the same on every reader, new each epoch
    (`set_epoch`). Class ids are ``image/object/class/label``, or the class text looked up in
    `label_map` for Examples without ids.
    """

    def __init__(
        self,
        source: str | Sequence[str],
        *,
        label_map: LabelMap | str | None = None,
        transforms: Transforms | None = None,
        dtype: torch.dtype = torch.float32,
        compression: Literal["auto", "GZIP", "ZLIB"] | None = "auto",
        shuffle_shards: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        from annoconv.formats.tfrecord import tfrecord_files

        self.files = tfrecord_files(source)
        if not self.files:
            raise ValueError(f"no TFRecord files in {source!r}")
        self.label_map = _label_map(label_map)
        self.transforms = transforms
        self.dtype = dtype
        self.compression = compression
        self.shuffle_shards = shuffle_shards
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        # In shared memory: DataLoader workers that persist between epochs hold copies of
        # this dataset made at the first epoch, and must still see `set_epoch`.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()  # type: ignore[no-untyped-call]

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose shard order `shuffle_shards` uses (call it before each epoch)."""
        self._epoch.fill_(epoch)

    def shards(self, reader: int, readers: int) -> list[str]:
        """The shards reader `reader` of `readers` reads this epoch."""
        files = list(self.files)
        if self.shuffle_shards:
            random.Random(f"{self.seed}/{self.epoch}").shuffle(files)
        return files[reader::readers]

    def __iter__(self) -> Iterator[Sample]:
        reader, readers = self._reader()
        if readers > len(self.files) and reader == 0:
            warnings.warn(
                f"{len(self.files)} TFRecord shard(s) for {readers} readers (DataLoader "
                "workers x ranks): some read nothing; write more shards (--shards)",
                stacklevel=2,
            )
        for uri in self.shards(reader, readers):
            yield from self._read(uri)

    def _reader(self) -> tuple[int, int]:
        """(this reader's number, the number of readers)."""
        rank, world = self.rank, self.world_size
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank = torch.distributed.get_rank() if rank is None else rank
            world = torch.distributed.get_world_size() if world is None else world
        rank, world = rank or 0, world or 1
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in 0..{world - 1}")
        worker = get_worker_info()
        workers, number = (worker.num_workers, worker.id) if worker is not None else (1, 0)
        return rank * workers + number, world * workers

    def _read(self, uri: str) -> Iterator[Sample]:
        from annoconv.tfexample import decode_example, iter_tfrecords

        for index, payload in enumerate(iter_tfrecords(uri, self.compression, verify=True)):
            where = f"record {index}"
            try:
                features = decode_example(payload)
            except ValueError as error:
                raise AnnotationError(uri, str(error), where) from None
            yield self._example(features, uri, where)

    def _example(self, features: dict[str, Any], uri: str, where: str) -> Sample:
        from annoconv.formats.tfrecord import check_kinds
        from annoconv.tfexample import Keys

        check_kinds(features, uri, where)

        def values(key: str) -> list[Any]:
            return list(features[key][1]) if key in features else []

        encoded = values(Keys.ENCODED)
        if not encoded:
            raise AnnotationError(uri, f"no {Keys.ENCODED}", where)
        image = _decoded(encoded[0], uri, where)
        width, height = image.size
        corners = [
            values(key) for key in (Keys.BBOX_XMIN, Keys.BBOX_YMIN, Keys.BBOX_XMAX, Keys.BBOX_YMAX)
        ]
        count = len(corners[0])
        if any(len(column) != count for column in corners):
            lengths = "/".join(str(len(column)) for column in corners)
            raise AnnotationError(uri, f"bbox lists differ in length ({lengths})", where)
        boxes = [
            [x0 * width, y0 * height, x1 * width, y1 * height]
            for x0, y0, x1, y1 in zip(*corners, strict=True)
        ]
        labels = self._labels(values(Keys.OBJECT_CLASS_LABEL), values, count, uri, where)
        key = values(Keys.SOURCE_ID) or values(Keys.FILENAME) or [where.encode()]
        tensor = _tensor(image, self.dtype)
        return _sample(tensor, boxes, labels, key[0].decode("utf-8", "replace"), self.transforms)

    def _labels(
        self, ids: list[int], values: Callable[[str], list[Any]], count: int, uri: str, where: str
    ) -> list[int]:
        from annoconv.tfexample import Keys

        if len(ids) == count:
            return ids
        texts = [text.decode("utf-8", "replace") for text in values(Keys.OBJECT_CLASS_TEXT)]
        if len(texts) != count or self.label_map is None:
            raise AnnotationError(
                uri, "objects have no class ids (and no label map was given for the text)", where
            )
        unknown = sorted({text for text in texts if text not in self.label_map})
        if unknown:
            raise AnnotationError(uri, f"classes {unknown} are not in the label map", where)
        return [self.label_map.id_of(text) for text in texts]


def _decoded(data: bytes, source: str, where: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:
        raise AnnotationError(source, f"cannot decode the image: {exc}", where) from None
    return image


# --- Parquet --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """The rows of one Parquet file, as Arrow columns (shared by DataLoader workers)."""

    uri: str
    keys: pa.Array
    filenames: pa.Array
    widths: pa.Array
    heights: pa.Array
    normalized: pa.Array
    image_uris: pa.Array | None
    images: pa.Array | None
    #: Each row's boxes: offsets into the four coordinate arrays and `labels`.
    offsets: pa.Array
    corners: tuple[pa.Array, pa.Array, pa.Array, pa.Array]
    labels: pa.Array

    def __len__(self) -> int:
        return len(self.keys)


_COLUMNS = ("key", "filename", "width", "height", "coords", "objects", "split", "image_uri")


class ParquetDetection(Dataset[Sample]):
    """The images of our Parquet output (nested layout): a file, a dataset folder (all its
    splits, or `split`: one it lacks is an error naming those it has), a folder of an older
    layout (``split=NAME``), a glob or a list.

    Images come from the embedded ``image`` column (``--embed-images``), else from `images`
    (a folder: the row's `filename` under it), else from ``image_uri``; an image file is
    decoded in its annotation's frame (turned by its EXIF orientation when the annotation
    is of the turned image, as annoconv's TFRecord writer does). An image of another size
    than its annotation says is an error, or with ``size_policy="warn"`` its boxes are
    scaled to the image (trusting it, as ``--size-policy warn`` does). Class ids come from the
    label map in the files' metadata, or `label_map`. The annotations (and embedded images)
    are held as Arrow columns, which DataLoader workers share.
    """

    def __init__(
        self,
        source: str | Sequence[str],
        *,
        split: str | None = None,
        images: str | None = None,
        label_map: LabelMap | str | None = None,
        transforms: Transforms | None = None,
        dtype: torch.dtype = torch.float32,
        size_policy: Literal["fail", "warn"] = "fail",
    ) -> None:
        from annoconv.io.fs import expand_source

        if size_policy not in ("fail", "warn"):
            raise ValueError(f"size_policy must be 'fail' or 'warn', not {size_policy!r}")

        files, root = expand_source(source, (".parquet",))
        if not files:
            raise ValueError(f"no Parquet files in {source!r}")
        self.images = images
        self.transforms = transforms
        self.dtype = dtype
        self.size_policy = size_policy
        self._warned = False
        self.label_map = _label_map(label_map) or _footer_label_map(files)
        self._splits: set[str] = set()
        self._parts = [part for uri in files if (part := self._part(uri, root, split)) is not None]
        if split is not None and split not in self._splits:
            found = ", ".join(sorted(self._splits)) or "none"
            raise ValueError(f"no split {split!r} in {source!r}; its splits: {found}")
        self._starts = [0]
        for part in self._parts:
            self._starts.append(self._starts[-1] + len(part))

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} images")
        index %= len(self)
        number = bisect.bisect_right(self._starts, index) - 1
        part, row = self._parts[number], index - self._starts[number]
        key = part.keys[row].as_py()
        width, height = part.widths[row].as_py(), part.heights[row].as_py()
        annotated = (width, height) if width and height else None
        image = self._image(part, row, annotated)
        start, end = part.offsets[row].as_py(), part.offsets[row + 1].as_py()
        columns = [corner[start:end].to_pylist() for corner in part.corners]
        boxes = [list(box) for box in zip(*columns, strict=True)]
        scale_x, scale_y = self._scale(part, row, annotated, image.size)
        if part.normalized[row].as_py():
            scale_x, scale_y = image.size
        if (scale_x, scale_y) != (1, 1):
            boxes = [
                [x0 * scale_x, y0 * scale_y, x1 * scale_x, y1 * scale_y] for x0, y0, x1, y1 in boxes
            ]
        labels = part.labels[start:end].to_pylist()
        return _sample(_tensor(image, self.dtype), boxes, labels, key, self.transforms)

    def _scale(
        self,
        part: _Part,
        row: int,
        annotated: tuple[int, int] | None,
        decoded: tuple[int, int],
    ) -> tuple[float, float]:
        """(x, y) factors from the annotation's pixels to the decoded image's (in the
        annotation's frame): 1 when the sizes agree; when they do not, an error under
        `size_policy` "fail", the image trusted under "warn" (as the TFRecord writer does)."""
        if annotated is None or annotated == decoded:
            return 1.0, 1.0
        problem = (
            f"the image is {decoded[0]}x{decoded[1]} but the annotation says "
            f"{annotated[0]}x{annotated[1]}"
        )
        if self.size_policy == "fail":
            hint = "size_policy='warn' trusts the image and scales the boxes"
            raise AnnotationError(part.uri, f"{problem} ({hint})", f"row {row + 1}")
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"{part.uri}: row {row + 1}: {problem}; boxes scaled to the image "
                "(size_policy='warn'; further disagreements are not reported)",
                stacklevel=3,
            )
        return decoded[0] / annotated[0], decoded[1] / annotated[1]

    def _image(self, part: _Part, row: int, annotated: tuple[int, int] | None) -> Image.Image:
        from annoconv.io.embed import in_annotated_frame
        from annoconv.io.fs import join
        from annoconv.io.images import read_image_bytes

        where = f"row {row + 1}"
        data = part.images[row]["bytes"].as_py() if part.images is not None else None
        if data is None:
            filename = part.filenames[row].as_py()
            found = part.image_uris[row].as_py() if part.image_uris is not None else None
            location = join(self.images, *filename.split("/")) if self.images else found
            if location is None:
                raise AnnotationError(
                    part.uri,
                    f"no image for {filename!r}: the file embeds none (--embed-images) and "
                    "no images folder was given (images=...)",
                    where,
                )
            try:
                data = read_image_bytes(location, part.uri)
            except AnnotationError as error:
                raise AnnotationError(part.uri, error.message, where) from None
        try:
            image = Image.open(io.BytesIO(data))
            turned = in_annotated_frame(image, annotated)
            turned.load()
            if image.format == "GIF":
                # As the TFRecord writer transcodes it, to a PNG whose transparent pixels
                # keep their colour (TensorFlow's GIF decoder would blacken them).
                turned = turned.convert("RGBA")
        except Exception as exc:
            raise AnnotationError(part.uri, f"cannot decode the image: {exc}", where) from None
        return turned

    def _part(self, uri: str, root: str, split: str | None) -> _Part | None:
        from annoconv.formats.parquet import _partitions
        from annoconv.formats.parquet_hub import conform_objects
        from annoconv.schema import arrow_schema

        parquet = _open(uri)
        names = parquet.schema_arrow.names
        if "objects" not in names or "key" not in names:
            raise AnnotationError(
                uri,
                "ParquetDetection reads the nested layout (one row per image, boxes in "
                "`objects`); convert a flat table with: annoconv convert FLAT OUT.parquet",
            )
        columns = [name for name in (*_COLUMNS, "image") if name in names]
        table = parquet.read(columns=columns)
        partition = _partitions(uri, root).get("split")
        if partition is not None:
            self._splits.add(partition)
        elif "split" in names:
            self._splits.update(
                value for value in pc.unique(table.column("split")).to_pylist() if value
            )
        if split is not None:
            if partition is not None:
                if partition != split:
                    return None
            elif "split" in names:
                table = table.filter(pc.equal(table.column("split"), split))
            else:
                return None
        if not table.num_rows:
            return None
        objects = conform_objects(
            table.column("objects").combine_chunks(), arrow_schema().field("objects").type
        )
        flat = pc.list_flatten(objects)
        fields = dict(zip([f.name for f in flat.type], flat.flatten(), strict=True))
        return _Part(
            uri=uri,
            keys=_column(table, "key"),
            filenames=_column(table, "filename"),
            widths=_column(table, "width"),
            heights=_column(table, "height"),
            normalized=pc.equal(_column(table, "coords"), NORMALIZED)
            if "coords" in columns
            else pa.array([False] * table.num_rows),
            image_uris=_column(table, "image_uri") if "image_uri" in columns else None,
            images=_column(table, "image") if "image" in columns else None,
            offsets=pc.subtract(objects.offsets, objects.offsets[0]),
            corners=(fields["xmin"], fields["ymin"], fields["xmax"], fields["ymax"]),
            labels=self._ids(fields["label"], uri),
        )

    def _ids(self, labels: pa.Array, uri: str) -> pa.Array:
        unknown = sorted(
            label for label in pc.unique(labels).to_pylist() if label not in self.label_map
        )
        if unknown:
            raise AnnotationError(
                uri, f"classes not in the label map: {', '.join(map(repr, unknown))}"
            )
        distinct = pc.unique(labels)
        ids = pa.array([self.label_map.id_of(label) for label in distinct.to_pylist()], pa.int64())
        return pc.take(ids, pc.index_in(labels, value_set=distinct))


def _open(uri: str) -> pq.ParquetFile:
    from annoconv.io.fs import filesystem, is_remote

    try:
        if is_remote(uri):
            fs, path = filesystem(uri)
            return pq.ParquetFile(fs.open(path, "rb"))
        return pq.ParquetFile(uri)
    except (OSError, pa.ArrowException) as exc:
        raise AnnotationError(uri, f"not a readable Parquet file: {exc}") from None


def _column(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


def _footer_label_map(files: Sequence[str]) -> LabelMap:
    """The label map in the first file's metadata (every file of a run holds the same), else
    one of the classes found, sorted, as annoconv's writers build it."""
    from annoconv.formats.parquet import META_PREFIX

    metadata = _open(files[0]).metadata.metadata or {}
    text = metadata.get(f"{META_PREFIX}label_map".encode())
    if text:
        return LabelMap.parse(text.decode("utf-8"), files[0])
    labels: set[str] = set()
    for uri in files:
        parquet = _open(uri)
        if "objects" in parquet.schema_arrow.names:
            objects = parquet.read(columns=["objects"]).column("objects")
            labels.update(pc.unique(pc.list_flatten(objects).field("label")).to_pylist())
    return LabelMap.from_classes(sorted(label for label in labels if label))
