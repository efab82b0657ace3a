"""Statistics of a dataset, for any reader: images, boxes, classes, boxes per image, box
size and aspect distributions, and suspicious boxes.

Definitions (what `annoconv stats` prints and `--json` holds):

- box width/height/area are in **pixels**; with `image_sizes`, records without a pixel size
  (YOLO, Open Images) get their image's, read from its header. Boxes of normalized records
  whose image size stays unknown (Open Images without images) have no pixel size: they are
  counted in `boxes_without_pixel_size` and left out of the size distributions. Aspect is
  width/height.
- percentiles use the nearest-rank method: the p-th percentile of n sorted values is the
  value at rank ceil(p/100 * n) (1-based; p=0 gives the minimum).
- histograms have power-of-two bins: a value v > 0 falls in [2^k, 2^(k+1)) with
  k = floor(log2 v); zeros are counted apart.
- suspicious boxes: `zero_area` (width or height 0), `outside` (reaching outside the image:
  such records, which readers reject, are taken in for counting), `tiny` (pixel width or height
  above 0 but below `tiny`, 4 by default).

Sizes are held as 8-byte floats per box (three arrays), so 10 million boxes take ~240 MB.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from annoconv.errors import AnnotationError
from annoconv.filters import is_outside, recovered
from annoconv.formats import BadItem, Dropped, ReadResult
from annoconv.io.images import ImageInfo, RecordImages
from annoconv.io.pool import prefetch
from annoconv.labelmap import similar_classes, similar_classes_note
from annoconv.report import ErrorHandler, ErrorPolicy, Report
from annoconv.schema import NORMALIZED, ImageRecord, with_image_size

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)
TINY_PIXELS = 4.0
MAX_EXAMPLES = 10
#: Image lookups that may all fail before the stats stop looking (the images are elsewhere:
#: an Open Images CSV of millions of rows without its images).
GIVE_UP_AFTER = 32


@dataclass
class DatasetStats:
    """Counts and distributions over a dataset (see the module docstring)."""

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
    tiny: float = TINY_PIXELS
    boxes_per_image: Counter[int] = field(default_factory=Counter)
    widths: array[float] = field(default_factory=lambda: array("d"))
    heights: array[float] = field(default_factory=lambda: array("d"))
    boxes_without_pixel_size: int = 0
    suspicious: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, record: ImageRecord, outside: bool = False) -> None:
        labels = [obj.label for obj in record.objects]
        self.images += 1
        self.boxes += len(labels)
        self.negative_images += not labels
        self.boxes_per_class.update(labels)
        self.images_per_class.update(set(labels))
        self.max_boxes_per_image = max(self.max_boxes_per_image, len(labels))
        self.boxes_per_image[len(labels)] += 1
        self._add_boxes(record, outside)
        if record.width is None or record.height is None:
            self.unknown_size += 1
            return
        size = (record.width, record.height)
        self.min_size = size if self.min_size is None else min(self.min_size, size, key=_area)
        self.max_size = size if self.max_size is None else max(self.max_size, size, key=_area)

    def _add_boxes(self, record: ImageRecord, outside: bool) -> None:
        scale_x = scale_y = 1.0
        if record.coords == NORMALIZED:
            if not record.has_size:
                self.boxes_without_pixel_size += len(record.objects)
            scale_x, scale_y = float(record.width or 0), float(record.height or 0)
        for obj in record.objects:
            where = f"{record.key}: {obj.label}"
            if obj.xmax == obj.xmin or obj.ymax == obj.ymin:
                self._suspect("zero_area", where)
            if outside and is_outside(record, obj):
                self._suspect("outside", where)
            if record.coords == NORMALIZED and not record.has_size:
                continue
            width, height = (obj.xmax - obj.xmin) * scale_x, (obj.ymax - obj.ymin) * scale_y
            self.widths.append(width)
            self.heights.append(height)
            if 0 < min(width, height) < self.tiny:
                self._suspect("tiny", where)

    def _suspect(self, kind: str, where: str) -> None:
        self.suspicious[kind] += 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(where)

    @property
    def areas(self) -> list[float]:
        return [w * h for w, h in zip(self.widths, self.heights, strict=True)]

    @property
    def aspects(self) -> list[float]:
        return [w / h for w, h in zip(self.widths, self.heights, strict=True) if h > 0]

    def to_dict(self) -> dict[str, Any]:
        per_image = sorted(self.boxes_per_image.elements())
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
            "boxes_per_image": {
                "images_with": {
                    str(n): self.boxes_per_image[n] for n in sorted(self.boxes_per_image)
                },
                "percentiles": percentiles(per_image),
            },
            "boxes_without_pixel_size": self.boxes_without_pixel_size,
            "box_width": distribution(self.widths),
            "box_height": distribution(self.heights),
            "box_area": distribution(self.areas),
            "box_aspect": distribution(self.aspects),
            "suspicious": {
                "zero_area": self.suspicious["zero_area"],
                "outside": self.suspicious["outside"],
                "tiny": self.suspicious["tiny"],
                "tiny_below_pixels": self.tiny,
                "examples": self.examples,
                "similar_classes": similar_classes(self.boxes_per_class),
            },
            "skipped": [item.__dict__ for item in self.report.skipped],
        }

    def table(self) -> str:
        """The per-class table the CLI prints, with a total line and the distributions."""
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
        lines.append(_percentile_line("boxes per image", sorted(self.boxes_per_image.elements())))
        for title, values in (
            ("box width (px)", self.widths),
            ("box height (px)", self.heights),
            ("box aspect (w/h)", self.aspects),
        ):
            if values:
                lines.append(_percentile_line(title, sorted(values)))
        if self.boxes_without_pixel_size:
            lines.append(f"boxes without a pixel size: {self.boxes_without_pixel_size}")
        for kind in ("zero_area", "outside", "tiny"):
            if self.suspicious[kind]:
                shown = ", ".join(self.examples[kind][:3])
                lines.append(f"suspicious: {self.suspicious[kind]} {kind} boxes (e.g. {shown})")
        note = similar_classes_note(self.boxes_per_class)
        if note:
            lines.append(f"suspicious: {note}")
        return "\n".join(lines)


def with_image_sizes(
    items: Iterable[ReadResult], images: str | None, *, threads: int = 8, window: int = 64
) -> Iterator[ReadResult]:
    """The items, each record without a pixel size given its image's, read from the header by
    a bounded thread pool (order kept). Looking is not an error here: a record whose image
    cannot be found or read keeps no size (its image counts as of unknown size), and after
    `GIVE_UP_AFTER` failed lookups without one success the rest are not looked for. A box
    outside the size read comes as the BoxOutsideError the stats count as suspicious."""
    finder = RecordImages(images)
    found = failed = 0

    def job(item: ReadResult) -> Callable[[], ImageInfo] | None:
        if not isinstance(item, ImageRecord) or item.has_size:
            return None
        if failed >= GIVE_UP_AFTER and not found:
            return None
        return partial(finder.info, item)

    for item, future in prefetch(items, job, threads=threads, window=window):
        if future is None or not isinstance(item, ImageRecord):
            yield item
            continue
        try:
            info = future.result()
        except AnnotationError:
            failed += 1
            yield item
            continue
        found += 1
        try:
            yield with_image_size(item, info.width, info.height, item.depth or info.depth)
        except AnnotationError as error:
            yield BadItem(error, boxes=len(item.objects))


def _percentile_line(title: str, values: Sequence[float]) -> str:
    if not values:
        return f"{title}: none"
    shown = ", ".join(f"{p} {value:.4g}" for p, value in percentiles(values).items())
    return f"{title}: {shown}"


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def percentiles(ordered: Sequence[float]) -> dict[str, float]:
    """Nearest-rank percentiles of already sorted values ({} when there are none)."""
    if not ordered:
        return {}
    count = len(ordered)
    return {f"p{p}": ordered[max(math.ceil(p / 100 * count), 1) - 1] for p in PERCENTILES}


def log2_histogram(values: Iterable[float]) -> tuple[int, list[tuple[float, float, int]]]:
    """(zeros, [(from, to, count)]) over power-of-two bins [2^k, 2^(k+1)), lowest first."""
    zeros = 0
    bins: Counter[int] = Counter()
    for value in values:
        if value <= 0:
            zeros += 1
        else:
            bins[math.floor(math.log2(value))] += 1
    return zeros, [(2.0**k, 2.0 ** (k + 1), bins[k]) for k in sorted(bins)]


def distribution(values: Iterable[float]) -> dict[str, Any]:
    ordered = sorted(values)
    zeros, bins = log2_histogram(ordered)
    return {
        "count": len(ordered),
        "percentiles": percentiles(ordered),
        "zeros": zeros,
        "histogram": [{"from": low, "to": high, "count": count} for low, high, count in bins],
    }


def dataset_stats(
    items: Iterable[ReadResult],
    *,
    on_error: ErrorPolicy = "fail",
    tiny: float = TINY_PIXELS,
    image_sizes: bool = False,
    images: str | None = None,
) -> DatasetStats:
    """Statistics over a stream of records; bad items follow the error policy, except records
    rejected only for boxes outside their image, which are counted (as suspicious boxes).
    With `image_sizes`, records without a pixel size get their image's (see
    `with_image_sizes`; `images` is where the images are, as for `convert`)."""
    stats = DatasetStats(tiny=tiny)
    handler = ErrorHandler(on_error, stats.report)
    if image_sizes:
        items = with_image_sizes(items, images)
    for item in items:
        record = recovered(item)
        if record is not None:
            stats.add(record, outside=True)
        elif isinstance(item, Dropped):
            stats.report.drop(item.reason, item.images, item.boxes)
        elif isinstance(item, BadItem):
            handler.handle(item.error, item.images, item.boxes)
        else:
            stats.add(item)
    return stats
