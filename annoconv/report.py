"""What a run did: images and boxes read, written and skipped (with reasons), per class.

The counts add up: every image read is either written or skipped, and so is every box.
`Report.check_balance()` asserts this; `convert()` calls it before returning.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from annoconv.errors import AnnoconvError, AnnotationError

ErrorPolicy = Literal["fail", "skip"]
ERROR_POLICIES: tuple[ErrorPolicy, ...] = ("fail", "skip")
MAX_WARNINGS_SHOWN = 10
#: The `source` of skipped entries that count a selection's drops in bulk.
DROPPED = "(selection)"


@dataclass(frozen=True)
class SkippedItem:
    """An image (with its boxes, where they could be counted) left out of the output, and why."""

    source: str
    reason: str
    images: int = 1
    boxes: int = 0


@dataclass(frozen=True, slots=True)  # a YOLO run writes one per image
class OutputFile:
    path: str
    size: int
    kind: str


@dataclass(frozen=True)
class DuplicateGroup:
    """Images with byte-identical files (one SHA-256): the first key is kept, the others
    dropped; `conflicting` when their annotations differ."""

    sha256: str
    keys: list[str]
    conflicting: bool = False


@dataclass
class Report:
    images_read: int = 0
    boxes_read: int = 0
    images_written: int = 0
    boxes_written: int = 0
    skipped: list[SkippedItem] = field(default_factory=list)
    classes: Counter[str] = field(default_factory=Counter)
    outputs: list[OutputFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: What operations changed without leaving anything out, e.g. "boxes clipped to the image".
    adjusted: Counter[str] = field(default_factory=Counter)
    duplicates: list[DuplicateGroup] = field(default_factory=list)

    def drop(self, reason: str, images: int, boxes: int) -> None:
        """Count images/boxes left out on purpose, one entry per reason however many."""
        for index, item in enumerate(self.skipped):
            if item.source == DROPPED and item.reason == reason:
                self.skipped[index] = SkippedItem(
                    DROPPED, reason, item.images + images, item.boxes + boxes
                )
                return
        self.skipped.append(SkippedItem(DROPPED, reason, images, boxes))

    def merge(self, other: Report) -> None:
        """Add the counts, skipped items, outputs and warnings of `other` (a part of the same
        run, e.g. one task of an engine) to this report; bulk drops stay one entry per reason."""
        self.images_read += other.images_read
        self.boxes_read += other.boxes_read
        self.images_written += other.images_written
        self.boxes_written += other.boxes_written
        for item in other.skipped:
            if item.source == DROPPED:
                self.drop(item.reason, item.images, item.boxes)
            else:
                self.skipped.append(item)
        self.classes.update(other.classes)
        self.outputs.extend(other.outputs)
        self.warnings.extend(other.warnings)
        self.adjusted.update(other.adjusted)
        self.duplicates.extend(other.duplicates)

    @property
    def images_skipped(self) -> int:
        return sum(item.images for item in self.skipped)

    @property
    def boxes_skipped(self) -> int:
        return sum(item.boxes for item in self.skipped)

    @property
    def balanced(self) -> bool:
        return (
            self.images_read == self.images_written + self.images_skipped
            and self.boxes_read == self.boxes_written + self.boxes_skipped
        )

    def check_balance(self) -> None:
        if not self.balanced:
            raise AnnoconvError(
                "internal accounting error: "
                f"images {self.images_read} read != {self.images_written} written"
                f" + {self.images_skipped} skipped, or "
                f"boxes {self.boxes_read} read != {self.boxes_written} written"
                f" + {self.boxes_skipped} skipped"
            )

    def empty_note(self) -> str:
        """What a run that wrote no image says (`convert()` adds it to the warnings)."""
        if not self.images_read and self.skipped:
            # A whole file unreadable (truncated JSON, a damaged Parquet): not an empty source.
            return (
                f"the outputs hold no examples: no image was read; {len(self.skipped)} "
                "item(s) of the source were skipped (see above)"
            )
        if not self.images_read:
            return "the outputs hold no examples: the source has no images"
        return (
            f"the outputs hold no examples: all {self.images_read} images read were left "
            "out or skipped (see above)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": {
                "read": self.images_read,
                "written": self.images_written,
                "skipped": self.images_skipped,
            },
            "boxes": {
                "read": self.boxes_read,
                "written": self.boxes_written,
                "skipped": self.boxes_skipped,
            },
            "classes": dict(sorted(self.classes.items())),
            "skipped": [item.__dict__ for item in self.skipped],
            "outputs": [
                {"path": item.path, "size": item.size, "kind": item.kind} for item in self.outputs
            ],
            "warnings": list(self.warnings),
            "adjusted": dict(sorted(self.adjusted.items())),
            "duplicates": [item.__dict__ for item in self.duplicates],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def summary(self) -> str:
        """A few human-readable lines, as the CLI prints them."""
        lines = [
            f"images: {self.images_read} read, {self.images_written} written, "
            f"{self.images_skipped} skipped",
            f"boxes:  {self.boxes_read} read, {self.boxes_written} written, "
            f"{self.boxes_skipped} skipped",
        ]
        lines += [_skipped_line(item) for item in self.skipped]
        lines += [f"adjusted: {count} {what}" for what, count in sorted(self.adjusted.items())]
        lines += [_duplicate_line(group) for group in self.duplicates[:MAX_WARNINGS_SHOWN]]
        if len(self.duplicates) > MAX_WARNINGS_SHOWN:
            hidden = len(self.duplicates) - MAX_WARNINGS_SHOWN
            lines.append(f"... and {hidden} more duplicate groups (all of them in --report-json)")
        lines += [f"warning: {text}" for text in self.warnings[:MAX_WARNINGS_SHOWN]]
        if len(self.warnings) > MAX_WARNINGS_SHOWN:
            hidden = len(self.warnings) - MAX_WARNINGS_SHOWN
            lines.append(f"... and {hidden} more warnings (all of them in --report-json)")
        lines += _output_lines(self.outputs)
        return "\n".join(lines)


def _output_lines(outputs: list[OutputFile]) -> list[str]:
    """A line per output; a kind with more than MAX_WARNINGS_SHOWN files (a YOLO dataset's
    label files) as one line with their count and total size."""
    counts = Counter(out.kind for out in outputs)
    lines, summed = [], set()
    for out in outputs:
        if counts[out.kind] <= MAX_WARNINGS_SHOWN:
            lines.append(f"wrote {out.path} ({out.size} bytes)")
        elif out.kind not in summed:
            summed.add(out.kind)
            of_kind = [o for o in outputs if o.kind == out.kind]
            size = sum(o.size for o in of_kind)
            lines.append(
                f"wrote {len(of_kind)} {out.kind} files ({size} bytes), the first {out.path} "
                "(all of them in --report-json)"
            )
    return lines


def _duplicate_line(group: DuplicateGroup) -> str:
    kept, *others = group.keys
    conflict = " (CONFLICT: different annotations)" if group.conflicting else ""
    return f"duplicate images{conflict}: kept {kept}, dropped {', '.join(others)}"


def _skipped_line(item: SkippedItem) -> str:
    if item.source == DROPPED:
        return f"left out: {item.reason} ({item.images} images, {item.boxes} boxes)"
    return f"skipped {item.source}: {item.reason}"


class ErrorHandler:
    """Applies the error policy: raise under `fail`, record and go on under `skip`."""

    def __init__(self, policy: ErrorPolicy, report: Report) -> None:
        if policy not in ERROR_POLICIES:
            raise ValueError(f"error policy must be one of {ERROR_POLICIES}, got {policy!r}")
        self.policy = policy
        self.report = report

    def handle(self, error: AnnotationError, images: int = 1, boxes: int = 0) -> None:
        """Report a bad item: raises it under `fail`; under `skip` records it as skipped.

        The caller must already have counted the item's images and boxes as read.
        """
        if self.policy == "fail":
            raise error
        self.skip(error, images, boxes)

    def skip(self, error: AnnotationError, images: int = 1, boxes: int = 0) -> None:
        """Record an item as skipped, whatever the policy."""
        self.report.skipped.append(SkippedItem(error.source or "?", _reason(error), images, boxes))


def _reason(error: AnnotationError) -> str:
    return f"{error.where}: {error.message}" if error.where else error.message
