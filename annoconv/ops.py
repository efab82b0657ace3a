"""Operations over streams of records: statistics (split, filter, sample and dedup grow here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from annoconv.formats import BadItem
from annoconv.report import ErrorHandler, ErrorPolicy, Report
from annoconv.schema import ImageRecord


@dataclass
class DatasetStats:
    """Counts over a dataset: images, boxes, and per class the boxes and images holding it."""

    images: int = 0
    negative_images: int = 0
    boxes: int = 0
    boxes_per_class: Counter[str] = field(default_factory=Counter)
    images_per_class: Counter[str] = field(default_factory=Counter)
    unknown_size: int = 0
    min_size: tuple[int, int] | None = None
    max_size: tuple[int, int] | None = None
    max_boxes_per_image: int = 0
    report: Report = field(default_factory=Report)

    def add(self, record: ImageRecord) -> None:
        labels = [obj.label for obj in record.objects]
        self.images += 1
        self.boxes += len(labels)
        self.negative_images += not labels
        self.boxes_per_class.update(labels)
        self.images_per_class.update(set(labels))
        self.max_boxes_per_image = max(self.max_boxes_per_image, len(labels))
        if record.width is None or record.height is None:
            self.unknown_size += 1
            return
        size = (record.width, record.height)
        self.min_size = size if self.min_size is None else min(self.min_size, size, key=_area)
        self.max_size = size if self.max_size is None else max(self.max_size, size, key=_area)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "negative_images": self.negative_images,
            "boxes": self.boxes,
            "classes": {
                name: {"boxes": self.boxes_per_class[name], "images": self.images_per_class[name]}
                for name in sorted(self.boxes_per_class)
            },
            "unknown_size": self.unknown_size,
            "min_size": list(self.min_size) if self.min_size else None,
            "max_size": list(self.max_size) if self.max_size else None,
            "max_boxes_per_image": self.max_boxes_per_image,
            "skipped": [item.__dict__ for item in self.report.skipped],
        }

    def table(self) -> str:
        """The per-class table the CLI prints, with a total line."""
        names = sorted(self.boxes_per_class)
        width = max([len("class"), len("total"), *(len(name) for name in names)])
        lines = [f"{'class':<{width}}  {'images':>8}  {'boxes':>8}"]
        for name in names:
            images, boxes = self.images_per_class[name], self.boxes_per_class[name]
            lines.append(f"{name:<{width}}  {images:>8}  {boxes:>8}")
        lines.append(f"{'total':<{width}}  {self.images:>8}  {self.boxes:>8}")
        lines.append(f"negative images (no boxes): {self.negative_images}")
        if self.min_size and self.max_size:
            lines.append(
                f"image sizes: {_size(self.min_size)} to {_size(self.max_size)}"
                + (f", {self.unknown_size} unknown" if self.unknown_size else "")
            )
        elif self.unknown_size:
            lines.append(f"image sizes: {self.unknown_size} unknown")
        return "\n".join(lines)


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def dataset_stats(
    items: Iterable[ImageRecord | BadItem], *, on_error: ErrorPolicy = "fail"
) -> DatasetStats:
    """Statistics over a stream of records; bad items follow the error policy."""
    stats = DatasetStats()
    handler = ErrorHandler(on_error, stats.report)
    for item in items:
        if isinstance(item, BadItem):
            handler.handle(item.error, item.images, item.boxes)
            continue
        stats.add(item)
    return stats
