"""What one reader was asked for: the class names and selection, and the knobs that tune speed
and memory (never the output), handed to every step of a file's reading."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
from pydantic import Field

from annoconv.io.ranges import RowsBefore
from annoconv.options import FormatOptions

#: Bytes pyarrow parses at a time; larger blocks are no faster and cost more memory.
BLOCK_SIZE = 1 << 20
#: Rows handled at a time when checking and grouping.
BATCH_ROWS = 65_536
#: Bytes of selected rows kept in memory before they are spilled to disk.
MEMORY_BUDGET = 128 << 20


class OpenImagesReadOptions(FormatOptions):
    """What a user can ask of the Open Images reader (the `OpenImagesReader` keywords)."""

    class_descriptions: str | None = Field(
        None,
        description="class-descriptions-boxable.csv (MID,name)",
        json_schema_extra={"metavar": "CSV"},
    )
    images_csv: str | list[str] | None = Field(
        None, description="image URLs (image_name,image_url)", json_schema_extra={"metavar": "CSV"}
    )
    image_labels: str | list[str] | None = Field(
        None,
        description="image-level label CSVs to attach",
        json_schema_extra={"metavar": "CSV", "nargs": "+"},
    )
    # Set by a run's class selection (--classes, --keep-empty), which this reader makes itself.
    classes: list[str] | None = Field(None, json_schema_extra={"cli": False})
    keep_empty: bool = Field(False, json_schema_extra={"cli": False})
    batch_rows: int = Field(BATCH_ROWS, ge=1, json_schema_extra={"cli": False})
    block_size: int = Field(BLOCK_SIZE, ge=1, json_schema_extra={"cli": False})
    memory_budget: int = Field(MEMORY_BUDGET, ge=0, json_schema_extra={"cli": False})
    tmp_dir: str | None = Field(None, json_schema_extra={"cli": False})


@dataclass(frozen=True)
class Options:
    names: Mapping[str, str] | None
    descriptions: str | None
    selected: Mapping[str, str] | None
    keep_empty: bool
    batch_rows: int
    block_size: int
    memory_budget: int
    tmp_dir: str | None
    #: Read only these bytes of the file (and its header): a part of a partitioned run.
    byte_range: tuple[int, int] | None = None

    @functools.cached_property
    def rows_before(self) -> RowsBefore:
        """The rows of the file before `byte_range`, added to every row number reported."""
        return RowsBefore(self.byte_range)

    @functools.cached_property
    def known_mids(self) -> pa.Array | None:
        return None if self.names is None else pa.array(list(self.names), pa.string())

    @property
    def known(self) -> tuple[pa.Array, str] | None:
        """The described MIDs and the file describing them, for checking LabelNames; None
        without class descriptions."""
        if self.known_mids is None:
            return None
        return self.known_mids, self.descriptions or "the class descriptions"

    @property
    def selected_mids(self) -> pa.Array | None:
        return None if self.selected is None else pa.array(list(self.selected), pa.string())

    def label(self, mid: str) -> str:
        """The label of a box's MID (checked to be described when there are descriptions)."""
        return mid if self.names is None else self.names[mid]

    def image_label(self, mid: str) -> str:
        """The label of an image-level MID: image labels cover ~20k classes, and those the
        (boxable) descriptions lack keep their MID."""
        return mid if self.names is None else self.names.get(mid, mid)
