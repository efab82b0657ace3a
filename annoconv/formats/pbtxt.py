"""The label map as an output format: collects the classes of the records written to it and
publishes a ``.pbtxt`` label map on close (reading one is `LabelMap.read`)."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import Field

from annoconv.formats.base import Capabilities, Format, Writer
from annoconv.labelmap import LabelMap, LabelOrder, check_order
from annoconv.options import FormatOptions
from annoconv.report import OutputFile
from annoconv.schema import ImageRecord


class LabelMapWriter(Writer):
    """Writes the label map of the records' object classes.

    With a base `label_map` the output is that map, extended (ids after its largest) with
    any class it lacks; without one, a map of the classes seen, ids from 1 in `order`.
    Nothing is written before `close()`, which writes the whole file atomically.
    """

    # The output *is* the run's label map: `convert()` settles it (given, extended or built
    # in the requested order) before the first record, like for any writer that assigns ids.
    capabilities = Capabilities(needs_label_map=True)

    def __init__(
        self,
        destination: str,
        *,
        label_map: LabelMap | None = None,
        images: str | None = None,
        order: LabelOrder = "sorted",
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        check_order(order)
        self.order: LabelOrder = order
        #: Boxes per class, in first-seen order.
        self.counts: Counter[str] = Counter()
        self._finished = False

    def write(self, record: ImageRecord) -> None:
        self._check_open()
        self.counts.update(obj.label for obj in record.objects)

    def result(self) -> LabelMap:
        """The label map `close()` will write."""
        if self.label_map is None:
            return LabelMap.from_classes(self.counts, order=self.order)
        return self.label_map.extend(self.counts, order=self.order)

    def close(self) -> list[OutputFile]:
        self._check_open()
        self._finished = True
        size = self.result().write(self.destination)
        return [OutputFile(self.destination, size, "label_map")]

    def abort(self) -> None:
        self._finished = True

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError(f"label map writer for {self.destination} is already closed")


class LabelMapWriteOptions(FormatOptions):
    order: Literal["sorted", "first-seen"] = Field(
        "sorted",
        description="id order of a label map built from the data (default: sorted by name)",
        json_schema_extra={"cli": False},
    )


FORMAT = Format(
    "pbtxt",
    "TF Object Detection API label map (StringIntLabelMap text format)",
    (".pbtxt",),
    writer=LabelMapWriter,
    write_options=LabelMapWriteOptions,
)
