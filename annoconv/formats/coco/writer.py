"""`CocoWriter`: records as one COCO detection JSON, written streaming and atomically."""

from __future__ import annotations

import json
import tempfile
from typing import TYPE_CHECKING, Any

from annoconv.errors import AnnoconvError, AnnotationError
from annoconv.formats.base import Capabilities, SourceSplits, Writer
from annoconv.io.embed import SizePolicy
from annoconv.io.fs import AtomicFile, join, remove_file
from annoconv.io.placing import ImagePlacer, ImagesMode, PlacedImage
from annoconv.report import OutputFile
from annoconv.schema import NORMALIZED, PIXEL, ImageRecord, format_number

if TYPE_CHECKING:
    from annoconv.labelmap import LabelMap

#: The file a COCO output folder gets (``instances_<split>.json`` for a split).
DEFAULT_NAME = "instances.json"
_FLUSH_BYTES = 1 << 20


def coco_path(destination: str, split: str | None = None) -> str:
    """The JSON a destination names: itself when it ends in ``.json``, else a file in that
    folder (``instances.json``, ``instances_<split>.json``)."""
    if destination.lower().endswith(".json"):
        return destination
    return join(destination, f"instances_{split}.json" if split else DEFAULT_NAME)


def span_text(low: float, high: float) -> str:
    """``high - low`` as the shortest decimal text whose value, added to `low`, gives back
    `high` exactly (what a reader computes as x + width): ``395.93``, not the
    ``395.93000000000006`` float subtraction may leave."""
    width = high - low
    text = format_number(width)
    if low + float(text) == high and len(text) <= 10:
        return text
    for digits in range(1, 18):
        candidate = format_number(float(f"{width:.{digits}g}"))
        if low + float(candidate) == high:
            return candidate
    return text


class CocoWriter(Writer):
    """Writes one COCO detection JSON (see the package docstring for its content).

    The destination is a ``.json`` file, or a folder that gets ``instances.json`` (with
    a split, ``instances_<split>.json``). `copy_images` places every image in that folder
    (in ``<copy_images>/<split>/`` for a split), `images_mode` saying how; ``file_name``
    is then the name there. `supercategories_from` is a COCO file whose categories'
    supercategories are written for the classes of the same name.

    Images and annotations are written as the records come: the images into the output,
    the annotations into a temporary file appended at `close()`; the output is published
    atomically then.
    """

    capabilities = Capabilities(coords=PIXEL, needs_label_map=True, split_aware=True)
    kind = "coco"

    def __init__(
        self,
        destination: str,
        *,
        label_map: LabelMap | None = None,
        images: str | None = None,
        split: str | None = None,
        copy_images: str | None = None,
        images_mode: ImagesMode = "copy",
        supercategories_from: str | None = None,
        size_policy: SizePolicy = "fail",
        jpeg_quality: int = 95,
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        if label_map is None:
            raise AnnoconvError("the COCO writer needs a label map (for the category ids)")
        self.split = split
        self.path = coco_path(destination, split)
        self.supercategories = _supercategories(supercategories_from, label_map)
        self._placer = None
        if copy_images is not None:
            folder = join(copy_images, split) if split else copy_images
            self._placer = ImagePlacer(
                folder,
                images,
                mode=images_mode,
                size_policy=size_policy,
                jpeg_quality=jpeg_quality,
            )
            # Embedding writers take either space: boxes are scaled with the image's size.
            self.capabilities = Capabilities(
                needs_label_map=True, split_aware=True, embeds_images=True
            )
        self._ids = {label: label_map.id_of(label) for label in _labels(label_map)}
        self._file: AtomicFile | None = None
        self._annotations = tempfile.TemporaryFile(prefix="annoconv-coco-")  # noqa: SIM115
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._images = 0
        self._boxes = 0
        self._names: set[str] = set()
        self._placed: list[OutputFile] = []
        self._source_splits = SourceSplits()
        self._state = "open"

    @classmethod
    def split_destination(cls, output: str, split: str) -> str | None:
        """A split of an output folder goes to ``instances_<split>.json`` in it; of a
        ``.json`` file, to ``NAME-<split>.json`` beside it (the usual rule)."""
        return None if output.lower().endswith(".json") else coco_path(output, split)

    def write(self, record: ImageRecord, image_data: bytes | None = None) -> None:
        if self._state != "open":
            raise RuntimeError(f"CocoWriter.write() after {self._state}")
        ids = [self._category_id(record, obj.label) for obj in record.objects]
        record, file_name, placed = self._placed_record(record, image_data)
        width, height = record.require_size("COCO's width and height")
        self._images += 1
        self._source_splits.add(record.split)
        image_id = self._images
        entry = {"id": image_id, "file_name": file_name, "width": width, "height": height}
        parts = [_dumps(entry)]
        for obj, category in zip(record.objects, ids, strict=True):
            self._boxes += 1
            parts.append(_annotation(self._boxes, image_id, category, obj))
        if placed is not None and placed.uri is not None:
            self._placed.append(OutputFile(placed.uri, placed.written, "image"))
            if placed.note:
                self.warnings.append(placed.note)
        self._output_image(parts[0])
        if len(parts) > 1:
            before = ", " if self._boxes > len(parts) - 1 else ""
            self._annotations.write((before + ", ".join(parts[1:])).encode("utf-8"))

    def close(self) -> list[OutputFile]:
        if self._state != "open":
            raise RuntimeError(f"CocoWriter.close() after {self._state}")
        self._state = "close()"
        output = self._output()
        self._flush()
        output.write(b'], "annotations": [')
        self._annotations.seek(0)
        while chunk := self._annotations.read(_FLUSH_BYTES):
            output.write(chunk)
        self._annotations.close()
        output.write(b'], "categories": ' + self._categories().encode("utf-8") + b"}\n")
        size = output.commit()
        if self.split is None:
            self.warnings += filter(None, [self._source_splits.note()])
        return [*self._placed, OutputFile(self.path, size, "coco")]

    def abort(self) -> None:
        if self._state == "close()":
            return
        self._state = "abort()"
        self._annotations.close()
        if self._file is not None:
            self._file.abort()
        for placed in self._placed:
            remove_file(placed.path)
        self._placed.clear()

    # --- pieces ---------------------------------------------------------------------------

    def _category_id(self, record: ImageRecord, label: str) -> int:
        category = self._ids.get(label)
        if category is None:
            assert self.label_map is not None
            category = self.label_map.id_of(label)  # raises, naming the label
        if category < 1:
            raise AnnotationError(
                record.source or record.key, f"class {label!r} has id {category}, not a category"
            )
        return category

    def _placed_record(
        self, record: ImageRecord, data: bytes | None
    ) -> tuple[ImageRecord, str, PlacedImage | None]:
        """The record in pixels with the size of its image, its file_name, and the placed
        image (with `copy_images`)."""
        if self._placer is None:
            name = record.filename.replace("\\", "/")
            return record, name, None
        name = record.filename.replace("\\", "/")
        if name.lower() in self._names:
            raise AnnotationError(
                record.source or record.key, f"another image was already written as {name}"
            )
        placed = self._placer.place(record, name, data)
        self._names.add(placed.name.lower())
        self._names.add(name.lower())
        return _in_pixels(record, placed), placed.name, placed

    def _output(self) -> AtomicFile:
        if self._file is None:
            self._file = AtomicFile(self.path)
            info = {"description": "written by annoconv", "version": "1.0"}
            self._file.write(f'{{"info": {_dumps(info)}, "licenses": [], "images": ['.encode())
        return self._file

    def _output_image(self, text: str) -> None:
        self._pending.append(text)
        self._pending_bytes += len(text)
        if self._pending_bytes >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        output = self._output()
        separator = ", " if self._images > len(self._pending) else ""
        output.write((separator + ", ".join(self._pending)).encode("utf-8"))
        self._pending, self._pending_bytes = [], 0

    def _categories(self) -> str:
        assert self.label_map is not None
        entries = []
        for item in sorted(self.label_map, key=lambda item: item.id):
            if item.id < 1:
                continue
            name = item.display_name or item.name
            entry: dict[str, Any] = {"id": item.id, "name": name}
            supercategory = self.supercategories.get(name)
            if supercategory is not None:
                entry["supercategory"] = supercategory
            entries.append(_dumps(entry))
        return "[" + ", ".join(entries) + "]"


def _labels(label_map: LabelMap) -> list[str]:
    return [text for item in label_map for text in (item.name, item.display_name) if text]


def _in_pixels(record: ImageRecord, placed: PlacedImage) -> ImageRecord:
    """The record in pixels of the placed image (boxes scaled when the image's size won
    under size policy "warn")."""
    size = {"width": placed.width, "height": placed.height}
    if record.coords == NORMALIZED:
        return record.model_copy(update=size).in_space(PIXEL)
    if placed.scale is None:
        return record.model_copy(update=size)
    sx, sy = placed.scale
    objects = [
        obj.model_copy(
            update={
                "xmin": obj.xmin * sx,
                "xmax": obj.xmax * sx,
                "ymin": obj.ymin * sy,
                "ymax": obj.ymax * sy,
            }
        )
        for obj in record.objects
    ]
    return record.model_copy(update={**size, "objects": objects})


def _annotation(annotation_id: int, image_id: int, category: int, obj: Any) -> str:
    x, y = format_number(obj.xmin), format_number(obj.ymin)
    w, h = span_text(obj.xmin, obj.xmax), span_text(obj.ymin, obj.ymax)
    area = format_number(float(w) * float(h))
    crowd = 1 if obj.group_of == 1 else 0
    score = "" if obj.confidence is None else f', "score": {format_number(obj.confidence)}'
    return (
        f'{{"id": {annotation_id}, "image_id": {image_id}, "category_id": {category}, '
        f'"bbox": [{x}, {y}, {w}, {h}], "area": {area}, "iscrowd": {crowd}{score}, '
        f'"segmentation": []}}'
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _supercategories(uri: str | None, label_map: LabelMap) -> dict[str, str]:
    """{category name: supercategory} of a COCO file's categories; without one, those of the
    COCO source whose declared map the run uses (`reader.CategoryMap`)."""
    if uri is None:
        from annoconv.formats.coco.reader import CategoryMap

        return dict(label_map.supercategories) if isinstance(label_map, CategoryMap) else {}
    from annoconv.formats.coco.stream import scan

    found = scan(uri, annotations=False)
    if found.failure is not None:
        raise found.failure
    return {c.name: c.supercategory for c in found.categories if c.supercategory}
