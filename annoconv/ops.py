"""Operations over streams of records: statistics, splits and shard assignment."""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from annoconv.formats import BadItem, Dropped, ReadResult
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


def dataset_stats(items: Iterable[ReadResult], *, on_error: ErrorPolicy = "fail") -> DatasetStats:
    """Statistics over a stream of records; bad items follow the error policy."""
    stats = DatasetStats()
    handler = ErrorHandler(on_error, stats.report)
    for item in items:
        if isinstance(item, Dropped):
            stats.report.drop(item.reason, item.images, item.boxes)
            continue
        if isinstance(item, BadItem):
            handler.handle(item.error, item.images, item.boxes)
            continue
        stats.add(item)
    return stats


# --- splits and shards ---------------------------------------------------------------------
#
# Both are decided from the set of image keys alone, never from the order records arrive in:
# keys are ranked by a SHA-256 of (seed, key), so the same images give the same assignment
# however the input is listed, and a different seed gives an independent shuffle.


def parse_split(text: str) -> dict[str, float]:
    """`train=0.7,test=0.3` -> {"train": 0.7, "test": 0.3}; fractions must sum to 1."""
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"split {part.strip()!r} is not NAME=FRACTION (e.g. train=0.7)")
        if name in fractions:
            raise ValueError(f"split {name!r} is given twice")
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"split {name!r}: {value.strip()!r} is not a number") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"split {name!r}: fraction {fraction} is not in (0, 1]")
        fractions[name] = fraction
    check_split(fractions)
    return fractions


def check_split(fractions: Mapping[str, float]) -> None:
    if not fractions:
        raise ValueError("a split needs at least one NAME=FRACTION")
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions sum to {total:g}, not 1")


def split_counts(total: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Images per split: floor of each share, the remainder going to the largest fractional
    parts (ties to the split named first), so the counts always add up to `total`."""
    exact = {name: total * fraction for name, fraction in fractions.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(fractions, key=lambda name: -(exact[name] - counts[name]))
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def rank_keys(keys: Iterable[str], seed: int | str = "") -> list[str]:
    """The keys in a pseudo-random order that depends only on the keys and the seed."""
    prefix = f"{seed}\x00".encode()
    return sorted(set(keys), key=lambda key: (hashlib.sha256(prefix + key.encode()).digest(), key))


def assign_splits(keys: Iterable[str], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Each image key's split: exact proportions (see `split_counts`), reproducible by seed."""
    check_split(fractions)
    ranked = rank_keys(keys, seed)
    assignment: dict[str, str] = {}
    start = 0
    for name, count in split_counts(len(ranked), fractions).items():
        assignment.update((key, name) for key in ranked[start : start + count])
        start += count
    return assignment


def assign_shards(keys: Iterable[str], num_shards: int) -> dict[str, int]:
    """Each key's shard: keys dealt round-robin in hash order, so shard sizes differ by at
    most one image and do not depend on the input order."""
    if num_shards < 1:
        raise ValueError(f"the number of shards must be at least 1, got {num_shards}")
    return {key: rank % num_shards for rank, key in enumerate(rank_keys(keys, "shard"))}


def shard_of(key: str, num_shards: int) -> int:
    """A key's shard when the set of keys is not known in advance (hash modulo)."""
    digest = hashlib.sha256(b"shard\x00" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


_T = TypeVar("_T")


def sample_keys(items: Iterable[_T], size: int, seed: int, *, key: Callable[[_T], str]) -> list[_T]:
    """A uniform sample of `size` items in one pass, holding at most `size` of them.

    Each item is ranked by a SHA-256 of (seed, key) and the `size` lowest ranks are kept (a
    bottom-k sketch: every subset of that size is equally likely, as with reservoir sampling,
    and the sample depends only on the seed and the keys, not on their order).
    """
    if size < 0:
        raise ValueError(f"the sample size must be >= 0, got {size}")
    prefix = f"{seed}\x00".encode()

    def rank(item: _T) -> tuple[bytes, str]:
        name = key(item)
        return hashlib.sha256(prefix + name.encode()).digest(), name

    return heapq.nsmallest(size, items, key=rank)
