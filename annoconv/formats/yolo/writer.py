"""`YoloWriter`: records as a YOLO dataset, Ultralytics or Darknet layout."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from annoconv.errors import AnnoconvError, AnnotationError
from annoconv.formats.base import (
    BatchesUnavailable,
    Capabilities,
    DatasetFiles,
    SourceSplits,
    Writer,
)
from annoconv.formats.yolo.layout import DATA_YAML, OBJ_DATA
from annoconv.io.embed import SizePolicy
from annoconv.io.fs import is_dir, join, remove_file, write_atomic
from annoconv.io.placing import ImagePlacer, ImagesMode, PlacedImage, StagedFolder
from annoconv.report import OutputFile
from annoconv.schema import NORMALIZED, ImageRecord

if TYPE_CHECKING:
    import pyarrow as pa

    from annoconv.labelmap import LabelMap

Layout = Literal["ultralytics", "darknet"]
LAYOUTS: tuple[Layout, ...] = ("ultralytics", "darknet")
OBJ_NAMES = "obj.names"
#: Darknet's folder of images and labels (AlexeyAB's ``data/obj/``).
DARKNET_FOLDER = "obj"
# data.yaml's key for a split name (Ultralytics wants train and val).
_YAML_KEYS = {"valid": "val", "validation": "val"}
# Significant digits of normalized coordinates: 1e-12 of the image, far below a pixel.
_DIGITS = 12
_NUMBER = f"%.{_DIGITS}g"
_LINE = f"%d {_NUMBER} {_NUMBER} {_NUMBER} {_NUMBER}\n"


def yolo_number(value: float) -> str:
    """A normalized coordinate as text: 12 significant digits, shortest form (``0.4896875``,
    not the ``0.48968750000000005`` float arithmetic may leave)."""
    return _NUMBER % value


def class_indices(label_map: LabelMap) -> tuple[dict[str, int], list[str]]:
    """({label: class index}, names in index order): the label map's classes in id order,
    numbered from 0 (YOLO wants 0..n-1 even when the ids have gaps, as COCO's do). Labels
    are looked up by name and display name; ``names`` holds the display name if any."""
    items = sorted((item for item in label_map if item.id >= 1), key=lambda item: item.id)
    indices: dict[str, int] = {}
    names = []
    for index, item in enumerate(items):
        names.append(item.display_name or item.name)
        for text in (item.name, item.display_name):
            if text:
                indices.setdefault(text, index)
    return indices, names


class YoloWriter(Writer):
    """Writes a YOLO dataset into the destination folder.

    Ultralytics layout (default): ``images/<split>/NAME`` and ``labels/<split>/STEM.txt``
    (without a split: ``images/`` and ``labels/``) and ``data.yaml`` (``train``, ``val``,
    ``test`` folders relative to it, ``names`` as an index map), so that
    ``yolo train data=OUT/data.yaml`` finds everything. Darknet layout (``layout="darknet"``):
    images and labels side by side in ``obj/`` (``obj/<split>/`` for a split), a list of
    image paths per split (``train.txt``, ``valid.txt``...), ``obj.names`` and ``obj.data``.

    Each label line is ``class cx cy w h``, normalized, the class the label's position in
    the label map's id order (`class_indices`); an image without boxes gets an empty label
    file. Images are copied (JPEG and PNG byte for byte, other formats transcoded to PNG or
    JPEG as for TFRecords), hard-linked or symlinked (`images_mode`), or not written at all
    (``"none"``: labels only); NAME is the record's filename. `size_policy` and
    `jpeg_quality` are those of the TFRecord writer.
    """

    # Takes either space: boxes are normalized with the annotation's size, or the image's.
    capabilities = Capabilities(needs_label_map=True, split_aware=True, embeds_images=True)
    kind = "yolo"

    def __init__(
        self,
        destination: str,
        *,
        label_map: LabelMap | None = None,
        images: str | None = None,
        split: str | None = None,
        layout: Layout = "ultralytics",
        images_mode: ImagesMode = "copy",
        size_policy: SizePolicy = "fail",
        jpeg_quality: int = 95,
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        if label_map is None:
            raise AnnoconvError("the YOLO writer needs a label map (for the class indices)")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.split = split
        self.layout = layout
        if images_mode == "none":
            # Labels only: nothing to place, so Arrow batches can be written as they come.
            self.capabilities = replace(
                type(self).capabilities, embeds_images=False, takes_batches=True
            )
        self.images_mode = images_mode
        self._indices, self._names = class_indices(label_map)
        images_folder, labels_folder = _folders(destination, layout, split)
        self._images = StagedFolder(images_folder)
        self._labels = (
            self._images if labels_folder == images_folder else StagedFolder(labels_folder)
        )
        self._placer = ImagePlacer(
            images_folder,
            images,
            mode=images_mode,
            size_policy=size_policy,
            jpeg_quality=jpeg_quality,
            staged=self._images,
        )
        self._outputs: list[OutputFile] = []
        self._names_seen: set[str] = set()
        self._listed: list[str] = []
        self._source_splits = SourceSplits()
        self._state = "open"

    @classmethod
    def split_destination(cls, output: str, split: str) -> str:
        """Every split's writer writes into the same folder (each in its own subfolders)."""
        return output

    def write(self, record: ImageRecord, image_data: bytes | None = None) -> None:
        if self._state != "open":
            raise RuntimeError(f"YoloWriter.write() after {self._state}")
        source = record.source or record.key
        classes = [self._class(source, obj.label) for obj in record.objects]
        name = image_name(record.filename)
        if name.lower() in self._names_seen:
            raise AnnotationError(source, f"another image was already written as {name}")
        if self.images_mode == "none" and (record.coords == NORMALIZED or record.has_size):
            placed = PlacedImage(name, record.width or 0, record.height or 0, 0, None)
        else:
            placed = self._placer.place(record, name, image_data)
        self._names_seen.add(name.lower())
        self._source_splits.add(record.split)
        if placed.uri is not None:
            self._outputs.append(OutputFile(placed.uri, placed.written, "image"))
        if placed.note:
            self.warnings.append(placed.note)
        text = label_lines(record, classes, (placed.width, placed.height))
        label = posixpath.splitext(placed.name)[0] + ".txt"
        size = self._labels.write(label, text.encode())
        self._outputs.append(OutputFile(self._labels.final_path(label), size, "yolo"))
        if self.layout == "darknet":
            self._listed.append(placed.name)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """The batch's images as `write()` writes them without images (``images_mode`` none);
        the lines computed with array operations. An image `write()` would refuse (a class
        not in the label map, a name written before) or could not write without reading its
        image (pixel boxes, no size) needs the record path."""
        if self._state != "open":
            raise RuntimeError(f"YoloWriter.write_batch() after {self._state}")
        if self.images_mode != "none":
            raise BatchesUnavailable("images to place")
        names = [image_name(filename) for filename in batch.column("filename").to_pylist()]
        folded = [name.lower() for name in names]
        if len(set(folded)) != len(folded) or not self._names_seen.isdisjoint(folded):
            raise BatchesUnavailable("an image name written twice")
        texts = batch_label_texts(batch, self._indices)
        labels = self._labels
        for name, text in zip(names, texts, strict=True):
            label = posixpath.splitext(name)[0] + ".txt"
            size = labels.write(label, text.encode())
            self._outputs.append(OutputFile(labels.final_path(label), size, "yolo"))
        self._names_seen.update(folded)
        self._source_splits.add_column(batch.column("split").to_pylist())
        if self.layout == "darknet":
            self._listed += names

    def close(self) -> list[OutputFile]:
        if self._state != "open":
            raise RuntimeError(f"YoloWriter.close() after {self._state}")
        self._state = "close()"
        try:
            self._images.publish()
            if self._labels is not self._images:
                self._labels.publish()
        except BaseException:
            self._state = "open"
            self.abort()
            raise
        if self.layout == "darknet":
            folder = posixpath.join(self.destination.replace("\\", "/"), DARKNET_FOLDER)
            folder = posixpath.join(folder, self.split) if self.split else folder
            listed = [posixpath.join(folder, name) for name in self._listed]
            uri = join(self.destination, f"{_darknet_list_name(self.split)}.txt")
            text = "".join(f"{path}\n" for path in listed)
            self._outputs.append(OutputFile(uri, write_atomic(uri, text.encode()), "list"))
        if self.split is None:
            assert self.label_map is not None
            self._outputs += write_dataset_files(self.destination, [], self.label_map, self.layout)
            self.warnings += filter(None, [self._source_splits.note()])
        return list(self._outputs)

    def abort(self) -> None:
        if self._state == "close()":
            return
        self._state = "abort()"
        self._images.abort()
        self._labels.abort()
        for output in self._outputs:
            if output.kind not in ("image", "yolo"):
                remove_file(output.path)
        self._outputs.clear()

    @classmethod
    def finish_dataset(
        cls,
        output: str,
        splits: Sequence[str],
        label_map: LabelMap | None,
        outputs: Sequence[OutputFile],
        options: Mapping[str, Any],
    ) -> DatasetFiles:
        """Once every split's writer has closed: ``data.yaml`` listing the splits (or
        Darknet's ``obj.names`` and ``obj.data``). Without splits the writer wrote them."""
        if not splits:
            return DatasetFiles()
        if label_map is None:
            raise AnnoconvError("the YOLO writer needs a label map (for the class names)")
        layout = options.get("layout")
        if layout is None:
            layout = "darknet" if is_dir(join(output, DARKNET_FOLDER)) else "ultralytics"
        return DatasetFiles(write_dataset_files(output, list(splits), label_map, layout))

    def _class(self, source: str, label: str) -> int:
        index = self._indices.get(label)
        if index is None:
            raise AnnotationError(source, f"class {label!r} is not in the label map")
        return index


def label_lines(record: ImageRecord, classes: list[int], image_size: tuple[int, int]) -> str:
    """The label file of a record: ``class cx cy w h`` per box, normalized by the
    annotation's size (the image's when the annotation has none)."""
    if record.coords == NORMALIZED:
        fx = fy = 1.0
    else:
        width, height = (record.width, record.height) if record.has_size else image_size
        fx, fy = 1.0 / (width or image_size[0]), 1.0 / (height or image_size[1])
    lines = []
    for obj, index in zip(record.objects, classes, strict=True):
        xmin, xmax = obj.xmin * fx, obj.xmax * fx
        ymin, ymax = obj.ymin * fy, obj.ymax * fy
        values = (index, (xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin)
        lines.append(_LINE % values)
    return "".join(lines)


def batch_label_texts(batch: pa.RecordBatch, indices: Mapping[str, int]) -> list[str]:
    """`label_lines` of every image of a nested batch, the same text: each box normalized by
    its image's size with the same float operations, its class from `indices`. Raises
    BatchesUnavailable for a class not in `indices` or pixel boxes of an image without a
    size (which `write()` reads from the image)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    objects = batch.column("objects")
    boxes = pc.list_flatten(objects)
    parents = pc.list_parent_indices(objects)
    known = pa.array(list(indices), pa.string())
    found = pc.index_in(boxes.field("label"), value_set=known)
    if found.null_count:
        raise BatchesUnavailable("a class not in the label map")
    classes = pc.take(pa.array(list(indices.values()), pa.int64()), found)
    normalized = pc.equal(batch.column("coords"), NORMALIZED)
    width, height = batch.column("width"), batch.column("height")
    unsized = pc.or_(pc.is_null(width), pc.is_null(height))
    if pc.any(pc.and_(pc.invert(normalized), unsized)).as_py():
        raise BatchesUnavailable("pixel boxes of an image without a size")
    one = pa.scalar(1.0)
    scales = [
        pc.take(pc.if_else(normalized, one, pc.divide(one, pc.cast(extent, pa.float64()))), parents)
        for extent in (width, height)
    ]
    xmin, xmax = (pc.multiply(boxes.field(name), scales[0]) for name in ("xmin", "xmax"))
    ymin, ymax = (pc.multiply(boxes.field(name), scales[1]) for name in ("ymin", "ymax"))
    columns = (
        classes,
        pc.divide(pc.add(xmin, xmax), 2.0),
        pc.divide(pc.add(ymin, ymax), 2.0),
        pc.subtract(xmax, xmin),
        pc.subtract(ymax, ymin),
    )
    line = _LINE.__mod__
    lines = list(map(line, zip(*(column.to_pylist() for column in columns), strict=True)))
    offsets = objects.offsets.to_pylist()  # of a slice: not from 0
    ends = [offset - offsets[0] for offset in offsets]
    return ["".join(lines[start:stop]) for start, stop in pairwise(ends)]


def image_name(filename: str) -> str:
    """Where the image goes under the images folder (relative, posix): its filename, without
    any ``images`` folder in it (Ultralytics and darknet find a label by turning the last
    ``/images/`` of the image's path into ``/labels/``: Label Studio's ``images/x.jpg`` must
    not become ``images/images/x.jpg``, whose label they would look for in
    ``images/labels/``); its base name when the filename is absolute or leaves the folder."""
    name = filename.replace("\\", "/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or name.startswith("/") or ".." in parts or ":" in parts[0]:
        return parts[-1] if parts and parts[-1] != ".." else name
    return "/".join([part for part in parts[:-1] if part != "images"] + parts[-1:])


def _folders(destination: str, layout: Layout, split: str | None) -> tuple[str, str]:
    if layout == "darknet":
        folder = (
            join(destination, DARKNET_FOLDER, split) if split else join(destination, DARKNET_FOLDER)
        )
        return folder, folder
    if split:
        return join(destination, "images", split), join(destination, "labels", split)
    return join(destination, "images"), join(destination, "labels")


def _darknet_list_name(split: str | None) -> str:
    return {None: "train", "val": "valid", "validation": "valid"}.get(split, split or "train")


def write_dataset_files(
    output: str, splits: list[str], label_map: LabelMap, layout: str
) -> list[OutputFile]:
    """data.yaml (Ultralytics), or obj.names and obj.data (Darknet)."""
    _indices, names = class_indices(label_map)
    if layout == "darknet":
        return _darknet_files(output, splits, names)
    import yaml

    folders: dict[str, str] = {}
    for split in splits:
        folders.setdefault(_YAML_KEYS.get(split, split), f"images/{split}")
    if not splits:
        folders = {"train": "images", "val": "images"}
    if "val" not in folders:
        folders["val"] = folders.get("test") or next(iter(folders.values()))
    if "train" not in folders:
        folders["train"] = next(iter(folders.values()))
    ordered: dict[str, str] = {
        key: folders[key] for key in ("train", "val", "test") if key in folders
    }
    ordered.update({key: value for key, value in folders.items() if key not in ordered})
    document: dict[str, object] = {
        **ordered,
        "nc": len(names),
        "names": dict(enumerate(names)),
    }
    text = "# written by annoconv; paths are relative to this file's folder\n" + yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True
    )
    uri = join(output, DATA_YAML)
    return [OutputFile(uri, write_atomic(uri, text.encode("utf-8")), "data_yaml")]


def _darknet_files(output: str, splits: list[str], names: list[str]) -> list[OutputFile]:
    base = output.replace("\\", "/").rstrip("/")
    lists = [_darknet_list_name(split) for split in splits] or ["train"]
    lines = [f"classes = {len(names)}"]
    lines.append(f"train = {base}/{lists[0]}.txt")
    valid = next((name for name in lists if name in ("valid", "test")), lists[-1])
    lines.append(f"valid = {base}/{valid}.txt")
    if "test" in lists and valid != "test":
        lines.append(f"test = {base}/test.txt")
    lines += [f"names = {base}/{OBJ_NAMES}", "backup = backup/"]
    names_uri, data_uri = join(output, OBJ_NAMES), join(output, OBJ_DATA)
    names_text = "".join(f"{name}\n" for name in names)
    return [
        OutputFile(names_uri, write_atomic(names_uri, names_text.encode("utf-8")), "names"),
        OutputFile(data_uri, write_atomic(data_uri, ("\n".join(lines) + "\n").encode()), "data"),
    ]
