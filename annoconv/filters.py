"""Record-stream filters between reader and writer: classes, renames, box size, `difficult`
and boxes outside the image.

Each filter is a `Transform`: `apply()` maps a stream of read results to another, yielding a
`Dropped(reason, images, boxes)` for whatever it removes so that the run's report adds up.
Filters that look at class names only also act on the `(key, labels, weight)` entries of the
first, cheap pass over the source (`survey()`), so the label map and the splits see the data
as the writer will. `build_filters()` puts them in their fixed order:

    boxes outside the image -> keep classes -> drop classes -> rename -> min size/area -> difficult

Classes are selected by their names in the source, before renaming; the label map is built
after renaming. An image that had boxes and lost all of them to a filter is dropped too, unless
`keep_empty`; an image that had no boxes to begin with is a negative example and stays.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Literal

from annoconv.formats import BadItem, Dropped, ReadResult
from annoconv.report import Report
from annoconv.schema import (
    NORMALIZED,
    BoxOutsideError,
    ImageRecord,
    ObjectAnnotation,
    format_number,
    outside_problem,
)

#: (image key, its boxes' labels, its weight): what the first pass keeps per image.
Entry = tuple[str, list[str], int]
OutsidePolicy = Literal["fail", "clip", "drop"]
OUTSIDE_POLICIES: tuple[OutsidePolicy, ...] = ("fail", "clip", "drop")


class Transform(ABC):
    """One step of the record stream."""

    #: Whether `survey()` works on (key, labels) entries; if not, the first pass reads records.
    on_labels: bool = False

    @abstractmethod
    def apply(self, items: Iterable[ReadResult]) -> Iterator[ReadResult]: ...

    def survey(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        raise NotImplementedError(f"{type(self).__name__} needs whole records")

    def finish(self, report: Report) -> None:
        """Add what this step changed without removing anything (e.g. clipped boxes)."""
        return None


def apply_all(transforms: Sequence[Transform], items: Iterable[ReadResult]) -> Iterable[ReadResult]:
    for transform in transforms:
        items = transform.apply(items)
    return items


class BoxFilter(Transform):
    """Keeps the boxes `keeps()` accepts; the others are dropped with `reason`."""

    def __init__(self, reason: str, keep_empty: bool = False) -> None:
        self.reason = reason
        self.keep_empty = keep_empty

    @abstractmethod
    def keeps(self, record: ImageRecord, obj: ObjectAnnotation) -> bool: ...

    def apply(self, items: Iterable[ReadResult]) -> Iterator[ReadResult]:
        for item in items:
            if not isinstance(item, ImageRecord) or not item.objects:
                yield item
                continue
            kept = [obj for obj in item.objects if self.keeps(item, obj)]
            yield from _keep_boxes(item, kept, self.reason, self.keep_empty)


def _keep_boxes(
    record: ImageRecord, kept: list[ObjectAnnotation], reason: str, keep_empty: bool
) -> Iterator[ReadResult]:
    """`record` with only the `kept` boxes, and a Dropped for the rest (the whole image when
    it is left without boxes, unless `keep_empty`)."""
    dropped = len(record.objects) - len(kept)
    if not kept and record.objects and not keep_empty:
        yield Dropped(reason, images=1, boxes=dropped)
        return
    if dropped:
        yield Dropped(reason, boxes=dropped)
    if dropped or any(new is not old for new, old in zip(kept, record.objects, strict=True)):
        record = record.model_copy(update={"objects": kept})
    yield record


class LabelFilter(BoxFilter):
    """A filter deciding by class name alone, so it also applies to the first pass."""

    on_labels = True

    @abstractmethod
    def keeps_label(self, label: str) -> bool: ...

    def keeps(self, record: ImageRecord, obj: ObjectAnnotation) -> bool:
        return self.keeps_label(obj.label)

    def survey(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        for key, labels, weight in entries:
            kept = [label for label in labels if self.keeps_label(label)]
            if kept or not labels or self.keep_empty:
                yield key, kept, weight


class ClassSelection(LabelFilter):
    """Keeps only the boxes of `classes`, for readers that cannot select themselves. Counts
    the boxes of every class it sees (`seen`), for `selection_check`."""

    def __init__(
        self, classes: frozenset[str], keep_empty: bool = False, reason: str = "not in --classes"
    ) -> None:
        super().__init__(reason, keep_empty)
        self.classes = classes
        self.seen: Counter[str] = Counter()

    def keeps_label(self, label: str) -> bool:
        self.seen[label] += 1
        return label in self.classes


#: How many of the classes present a message about the selection lists.
CLASSES_LISTED = 20


def selection_check(classes: Sequence[str], seen: Counter[str]) -> tuple[str | None, str | None]:
    """(error, warning) of a class selection against the boxes' classes `seen` in the data:
    an error when none of `classes` is there, a warning naming those that are not when
    others are; each lists the classes present (the most frequent first)."""
    missing = [name for name in dict.fromkeys(classes) if name not in seen]
    if not missing:
        return None, None
    named = ", ".join(_with_near_match(name, seen) for name in missing)
    if not seen:
        present = "the data has no boxes"
    else:
        ranked = [f"{label} ({count})" for label, count in seen.most_common(CLASSES_LISTED)]
        more = len(seen) - CLASSES_LISTED
        present = (
            "the classes present: " + ", ".join(ranked) + (f" and {more} more" if more > 0 else "")
        )
    if len(missing) == len(set(classes)):
        return f"--classes: no box of {named} in the data; {present}", None
    return None, f"--classes: no box of {named} in the data ({present})"


def _with_near_match(name: str, seen: Counter[str]) -> str:
    """The name, with the class present it probably means: `'Dog' (did you mean 'dog'?)`."""
    folded = {label.casefold(): label for label in seen}
    close = [folded[name.casefold()]] if name.casefold() in folded else []
    close = close or difflib.get_close_matches(name, list(seen), 1)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)


class ClassExclusion(LabelFilter):
    """Drops the boxes of `classes` (`--drop-classes`)."""

    def __init__(self, classes: frozenset[str], keep_empty: bool = False) -> None:
        super().__init__("in --drop-classes", keep_empty)
        self.classes = classes

    def keeps_label(self, label: str) -> bool:
        return label not in self.classes


class Rename(Transform):
    """Renames classes (boxes and image-level labels); two names renamed to one merge."""

    on_labels = True

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self.renamed = 0

    def apply(self, items: Iterable[ReadResult]) -> Iterator[ReadResult]:
        for item in items:
            if isinstance(item, ImageRecord):
                item = self._rename(item)
            yield item

    def _rename(self, record: ImageRecord) -> ImageRecord:
        names = self.names
        hits = sum(obj.label in names for obj in record.objects)
        if not hits and not any(label.label in names for label in record.image_labels):
            return record
        self.renamed += hits
        objects = [
            obj.model_copy(update={"label": names[obj.label]}) if obj.label in names else obj
            for obj in record.objects
        ]
        image_labels = [
            lab.model_copy(update={"label": names[lab.label]}) if lab.label in names else lab
            for lab in record.image_labels
        ]
        return record.model_copy(update={"objects": objects, "image_labels": image_labels})

    def survey(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        for key, labels, weight in entries:
            yield key, [self.names.get(label, label) for label in labels], weight

    def finish(self, report: Report) -> None:
        if self.renamed:
            report.adjusted["boxes renamed (--rename)"] += self.renamed


def parse_rename(text: str) -> tuple[str, str]:
    """`cell phone=Mobile phone` -> ("cell phone", "Mobile phone")."""
    old, sep, new = text.partition("=")
    old, new = old.strip(), new.strip()
    if not sep or not old or not new:
        raise ValueError(f"rename {text!r} is not OLD=NEW (e.g. 'cell phone=Mobile phone')")
    return old, new


class MinBoxSize(BoxFilter):
    """Drops boxes narrower or lower than `width`/`height`, or smaller than `area`.

    Sizes are in the record's own coordinate space: pixels for pixel sources (VOC, CSV,
    Faster R-CNN), fractions of the image side (and of the image area) for normalized ones
    (Open Images, TFRecord).
    """

    def __init__(
        self,
        width: float = 0.0,
        height: float = 0.0,
        area: float = 0.0,
        keep_empty: bool = False,
    ) -> None:
        limits = []
        if width or height:
            limits.append(f"--min-size {format_number(width)}x{format_number(height)}")
        if area:
            limits.append(f"--min-area {format_number(area)}")
        super().__init__(f"smaller than {' / '.join(limits)}", keep_empty)
        self.width, self.height, self.area = width, height, area

    def keeps(self, record: ImageRecord, obj: ObjectAnnotation) -> bool:
        width, height = obj.xmax - obj.xmin, obj.ymax - obj.ymin
        return width >= self.width and height >= self.height and width * height >= self.area


def parse_min_size(text: str) -> tuple[float, float]:
    """`8` -> (8, 8); `16x8` -> (16, 8) (width x height)."""
    parts = text.lower().split("x")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise ValueError(f"min size {text!r} is not N or WxH (e.g. 8 or 16x8)") from None
    if len(values) not in (1, 2) or any(value < 0 for value in values):
        raise ValueError(f"min size {text!r} is not N or WxH with N, W, H >= 0")
    return (values[0], values[-1])


class DropDifficult(BoxFilter):
    """Drops boxes marked `difficult` (flag 1; unknown counts as not difficult)."""

    def __init__(self, keep_empty: bool = False) -> None:
        super().__init__("difficult (--drop-difficult)", keep_empty)

    def keeps(self, record: ImageRecord, obj: ObjectAnnotation) -> bool:
        return obj.difficult != 1


class BoxesOutside(Transform):
    """Takes in records a reader rejected only for boxes outside their image, and clips
    those boxes to the image (`clip`: a box left empty is dropped) or drops them (`drop`).

    Readers stay strict: such a record arrives as a BadItem whose BoxOutsideError carries
    the record as read (a size read from the image is checked the same way, see
    `schema.with_image_size`). Boxes of records whose image size stays unknown cannot be.
    """

    def __init__(self, policy: OutsidePolicy, keep_empty: bool = False) -> None:
        if policy not in ("clip", "drop"):
            raise ValueError(f"boxes_outside must be one of {OUTSIDE_POLICIES}, got {policy!r}")
        self.policy = policy
        self.keep_empty = keep_empty
        self.clipped = 0

    def apply(self, items: Iterable[ReadResult]) -> Iterator[ReadResult]:
        for item in items:
            record = recovered(item)
            if record is None:
                yield item
            elif self.policy == "drop":
                kept = [obj for obj in record.objects if not is_outside(record, obj)]
                yield from _keep_boxes(record, kept, "outside the image", self.keep_empty)
            else:
                yield from self._clip(record)

    def _clip(self, record: ImageRecord) -> Iterator[ReadResult]:
        kept = []
        for obj in record.objects:
            clipped = clip_box(record, obj)
            if clipped is None:
                continue
            self.clipped += clipped is not obj
            kept.append(clipped)
        yield from _keep_boxes(
            record, kept, "outside the image (empty when clipped)", self.keep_empty
        )

    def finish(self, report: Report) -> None:
        if self.clipped:
            report.adjusted["boxes clipped to the image"] += self.clipped


def recovered(item: ReadResult) -> ImageRecord | None:
    """The record of a BadItem whose only fault is boxes outside the image, else None."""
    if isinstance(item, BadItem) and isinstance(item.error, BoxOutsideError):
        return item.error.record
    return None


def is_outside(record: ImageRecord, obj: ObjectAnnotation) -> bool:
    """Whether `obj` reaches outside `record`'s image, as the schema's validation judges."""
    return outside_problem(obj, record.coords, record.width, record.height) is not None


def clip_box(record: ImageRecord, obj: ObjectAnnotation) -> ObjectAnnotation | None:
    """`obj` clipped to the image (the same object when inside), None when nothing is left."""
    if record.coords == NORMALIZED:
        right, bottom = 1.0, 1.0
    elif record.width is not None and record.height is not None:
        right, bottom = float(record.width), float(record.height)
    else:
        return obj
    box = {
        "xmin": min(max(obj.xmin, 0.0), right),
        "ymin": min(max(obj.ymin, 0.0), bottom),
        "xmax": min(max(obj.xmax, 0.0), right),
        "ymax": min(max(obj.ymax, 0.0), bottom),
    }
    if box["xmax"] <= box["xmin"] or box["ymax"] <= box["ymin"]:
        return None
    if all(box[name] == getattr(obj, name) for name in box):
        return obj
    return obj.model_copy(update=box)


def build_filters(
    *,
    classes: Sequence[str] | None = None,
    exclude_classes: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    min_size: float | tuple[float, float] | None = None,
    min_area: float | None = None,
    drop_difficult: bool = False,
    boxes_outside: OutsidePolicy = "fail",
    keep_empty: bool = False,
) -> list[Transform]:
    """The filters the options ask for, in their fixed order (see the module docstring)."""
    transforms: list[Transform] = []
    if boxes_outside != "fail":
        transforms.append(BoxesOutside(boxes_outside, keep_empty))
    if classes is not None:
        transforms.append(ClassSelection(frozenset(classes), keep_empty))
    if exclude_classes:
        transforms.append(ClassExclusion(frozenset(exclude_classes), keep_empty))
    if rename:
        transforms.append(Rename(rename))
    if min_size is not None or min_area is not None:
        width, height = min_size if isinstance(min_size, tuple) else (min_size or 0.0,) * 2
        transforms.append(MinBoxSize(width, height, min_area or 0.0, keep_empty))
    if drop_difficult:
        transforms.append(DropDifficult(keep_empty))
    return transforms
