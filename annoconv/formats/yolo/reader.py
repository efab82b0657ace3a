"""`YoloReader`: a YOLO dataset (Ultralytics or Darknet layout) as image records."""

from __future__ import annotations

import math
import posixpath
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from annoconv.errors import AnnotationError
from annoconv.formats.base import BadItem, Reader, ReadResult, Source
from annoconv.formats.yolo.layout import YoloDataset, find_dataset, label_path
from annoconv.io.fs import dirname, is_dir, join, list_files, read_bytes, relative_posix
from annoconv.io.images import trust_source_folder
from annoconv.schema import (
    NORMALIZED,
    NORMALIZED_TOLERANCE,
    BoxOutsideError,
    ObjectAnnotation,
    make_record,
    trusted_object,
    trusted_record,
)

if TYPE_CHECKING:
    from annoconv.labelmap import LabelMap


#: How the report counts segment lines, each read as its bounding box.
SEGMENTS_AS_BOXES = "segment lines read as their bounding boxes (polygons not converted)"
#: How the report counts a pose dataset's lines, each read as its box without its keypoints.
KEYPOINTS_LEFT = "keypoint lines read as their boxes (keypoints not converted)"


class YoloReader(Reader):
    """Reads a YOLO dataset: a ``data.yaml`` (Ultralytics), an ``obj.data`` (Darknet), or a
    folder holding either (see `layout`).

    One record per image, in split order (train, val, test) and then path order; an image
    listed by two splits is read once, with the first. Records are keyed by the image path
    relative to the dataset root, have normalized coordinates and no pixel size (writers
    that need one read it from the image header), and carry their split. Each label line is
    ``class cx cy w h`` (normalized), or a segment ``class x1 y1 x2 y2 ...`` read as its
    bounding box, as Ultralytics does; the class index counts from 0 in ``names`` order
    (without names, the index is the label). An empty or missing label file is a negative
    image. A line that cannot be read makes its image an error naming the label file and
    the line.
    """

    def __init__(self, source: Source, *, images: str | None = None) -> None:
        super().__init__(source, images=images)
        self._dataset: YoloDataset | None = None
        self._entries: list[tuple[str, str, str, str]] | None = None
        self._only: list[str] | None = None
        self._tally = Tally()

    @property
    def dataset(self) -> YoloDataset:
        if self._dataset is None:
            source = self.source if isinstance(self.source, str) else self.source[0]
            self._dataset = find_dataset(source)
        return self._dataset

    def entries(self) -> list[tuple[str, str, str, str]]:
        """(key, image name, image path, split) of every image read, in reading order. The
        key is the path relative to the dataset root; the name, relative to its split's
        image folder (``images/train/x.jpg`` is ``x.jpg``)."""
        if self._entries is None:
            dataset = self.dataset
            seen: set[str] = set()
            entries = []
            for split, images in dataset.splits.items():
                folders = dataset.folders.get(split, [])
                for image in images:
                    key = _key(image, dataset.root)
                    if key not in seen:
                        seen.add(key)
                        entries.append((key, _name(image, key, folders), image, split))
            if self._only is not None:
                wanted = set(self._only)
                entries = [entry for entry in entries if entry[2] in wanted]
            self._entries = entries
        return self._entries

    def __iter__(self) -> Iterator[ReadResult]:
        names = self.dataset.names
        # The images are the dataset's own files, listed here: not URLs an annotation names.
        trust_source_folder(self.dataset.root)
        tally = self._tally = Tally()
        keypoints = self.dataset.keypoint_values
        for key, name, image, split in self.entries():
            yield read_image_labels(image, key, name, split, names, tally, keypoints)
        if self._only is None:
            for label, folder in orphan_labels(self.dataset):
                yield _orphan(label, folder)

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        names = self.dataset.names
        for key, _name, image, _split in self.entries():
            try:
                text = _label_text(label_path(image))
                labels = [_label(int(line.split()[0]), names) for line in _lines(text)]
            except (AnnotationError, ValueError, IndexError):
                continue
            yield key, labels

    def count_hint(self) -> int:
        return len(self.entries())

    def adjustments(self) -> Counter[str]:
        counts = {SEGMENTS_AS_BOXES: self._tally.segments, KEYPOINTS_LEFT: self._tally.keypoints}
        return Counter({what: count for what, count in counts.items() if count})

    def image_files(self) -> list[tuple[str, str]]:
        return [(key, image) for key, _name, image, _split in self.entries()]

    def only_files(self, files: Sequence[str]) -> YoloReader:
        subset = YoloReader(self.source, images=self.images)
        subset._dataset = self.dataset
        subset._only = list(files)
        return subset

    def declared_label_map(self) -> LabelMap | None:
        """The classes ``names`` declares, with ids = index + 1; None without names."""
        from annoconv.labelmap import LabelMap, LabelMapItem

        names = self.dataset.names
        if not names:
            return None
        first: dict[str, int] = {}
        for index, name in enumerate(names):
            first.setdefault(name, index + 1)
        return LabelMap(LabelMapItem(name, item_id) for name, item_id in first.items())


def orphan_labels(dataset: YoloDataset) -> list[tuple[str, str]]:
    """(label file, the images folder its image should be in) of every label file in the
    ``labels`` mirror of a split's images folder that no image of the dataset has: a
    partial export (an export without its images, a deleted image)."""
    wanted = {label_path(image) for images in dataset.splits.values() for image in images}
    orphans: list[tuple[str, str]] = []
    seen: set[str] = set()
    for folders in dataset.folders.values():
        for folder in folders:
            labels = dirname(label_path(join(folder, "x.jpg")))
            if labels in seen or labels == dirname(join(folder, "x.jpg")) or not is_dir(labels):
                continue
            seen.add(labels)
            orphans += [(uri, folder) for uri in list_files(labels, (".txt",)) if uri not in wanted]
    return orphans


def _orphan(label: str, folder: str) -> BadItem:
    """A label file without its image: an error of that image (its boxes counted)."""
    try:
        boxes = len(_lines(_label_text(label)))
    except AnnotationError:
        boxes = 0
    stem = posixpath.splitext(posixpath.basename(label.replace("\\", "/")))[0]
    error = AnnotationError(label, f"no image {stem}.* for this label file in {folder}")
    return BadItem(error, images=1, boxes=boxes)


def _key(image: str, root: str) -> str:
    try:
        key = relative_posix(image, root)
    except ValueError:
        return image.replace("\\", "/")
    return image.replace("\\", "/") if key.startswith("../") else key


def _name(image: str, key: str, folders: list[str]) -> str:
    for folder in folders:
        try:
            name = relative_posix(image, folder)
        except ValueError:
            continue
        if not name.startswith("../"):
            return name
    return key.removeprefix("images/")


def _label(index: int, names: list[str] | None) -> str:
    if names is None:
        return str(index)
    return names[index]


def _label_text(uri: str) -> str:
    try:
        data = read_bytes(uri)
    except FileNotFoundError:
        return ""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AnnotationError(uri, "not UTF-8 text") from None


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@dataclass
class Tally:
    """What reading label files met that the records do not show."""

    #: Segment lines (``class x1 y1 x2 y2 ...``), each read as its bounding box.
    segments: int = 0
    #: Lines of a pose dataset, each read as its box without its keypoints.
    keypoints: int = 0


def read_image_labels(
    image: str,
    key: str,
    name: str,
    split: str | None,
    names: list[str] | None,
    tally: Tally | None = None,
    keypoints: int | None = None,
) -> ReadResult:
    """The record of one image and its label file, or a BadItem saying what is wrong; the
    segment and keypoint lines met are counted in `tally`. With `keypoints` (a pose
    dataset's values per line after the box), every line is a box and its keypoints."""
    uri = label_path(image)
    try:
        text = _label_text(uri)
    except AnnotationError as error:
        return BadItem(error)
    lines = text.splitlines()
    objects: list[ObjectAnnotation] = []
    segments = 0
    try:
        for number, line in enumerate(lines, 1):
            if line.strip():
                obj, segment = _object(line, uri, number, names, keypoints)
                objects.append(obj)
                segments += segment
    except AnnotationError as error:
        return BadItem(error, boxes=len(_lines(text)))
    if tally is not None:
        if keypoints is None:
            tally.segments += segments
        else:
            tally.keypoints += len(objects)
    fields = {
        "key": key,
        "filename": name,
        "coords": NORMALIZED,
        "objects": objects,
        "split": split,
        "image_uri": image,
    }
    low, high = -NORMALIZED_TOLERANCE, 1 + NORMALIZED_TOLERANCE
    if all(low <= o.xmin and o.xmax <= high and low <= o.ymin and o.ymax <= high for o in objects):
        return trusted_record(source=uri, **fields)
    try:
        return make_record(uri, None, **fields)
    except BoxOutsideError as error:
        return BadItem(_on_line(error, objects, lines), boxes=len(objects))
    except AnnotationError as error:
        return BadItem(error, boxes=len(objects))


def _on_line(
    error: BoxOutsideError, objects: list[ObjectAnnotation], lines: list[str]
) -> BoxOutsideError:
    """The error naming the label file's line rather than the record's object number."""
    from annoconv.schema import outside_problem

    numbers = [number for number, line in enumerate(lines, 1) if line.strip()]
    for obj, number in zip(objects, numbers, strict=True):
        problem = outside_problem(obj, NORMALIZED, None, None)
        if problem:
            return BoxOutsideError(
                error.source, f"{obj.label!r}: {problem}", f"line {number}", record=error.record
            )
    return error


def _object(
    line: str, uri: str, number: int, names: list[str] | None, keypoints: int | None = None
) -> tuple[ObjectAnnotation, bool]:
    """The box of a label line, and whether the line is a segment (or, in a pose dataset,
    holds `keypoints` values after its box)."""
    parts = line.split()
    where = f"line {number}"
    try:
        index = _class_index(parts[0])
        values = [float(part) for part in parts[1:]]
    except ValueError:
        message = f"expected 'class cx cy w h' (numbers), got {line!r}"
        raise AnnotationError(uri, message, where) from None
    if not all(math.isfinite(value) for value in values):
        raise AnnotationError(uri, f"coordinates must be finite numbers, got {line!r}", where)
    if names is not None and not 0 <= index < len(names):
        raise AnnotationError(uri, f"class {index} is not in names (0..{len(names) - 1})", where)
    if index < 0:
        raise AnnotationError(uri, f"class {index} is negative", where)
    if keypoints is not None and len(values) != 4 + keypoints:
        raise AnnotationError(
            uri,
            f"expected 'class cx cy w h' and {keypoints} keypoint values (kpt_shape), "
            f"got {len(values)} values after the class",
            where,
        )
    if len(values) == 4 or keypoints is not None:
        cx, cy, w, h = values[:4]
        if not w > 0 or not h > 0:
            raise AnnotationError(
                uri, f"box width and height must be positive, got {line!r}", where
            )
        xmin, xmax, ymin, ymax = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    elif len(values) >= 6 and len(values) % 2 == 0:
        xs, ys = values[0::2], values[1::2]
        xmin, xmax, ymin, ymax = min(xs), max(xs), min(ys), max(ys)
    else:
        raise AnnotationError(
            uri,
            f"expected 'class cx cy w h' or a segment 'class x1 y1 x2 y2 x3 y3 ...', "
            f"got {len(parts)} values",
            where,
        )
    obj = trusted_object(label=_label(index, names), xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax)
    return obj, len(values) > 4


def _class_index(text: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)
