"""`OpenImagesReader`: the files of a source, each read on its own by the record path
(`records`) or the columnar path (`columnar`), with the side tables and byte-range parts."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Sequence

import pyarrow as pa

from annoconv.formats.base import BatchResult, Dropped, Reader, ReadResult, Source
from annoconv.formats.openimages.checks import LABELS_SCHEMA, RECORDS_SCHEMA
from annoconv.formats.openimages.classes import read_class_descriptions, resolve_classes
from annoconv.formats.openimages.columnar import stream_file
from annoconv.formats.openimages.columns import IMAGE_ID, is_bbox
from annoconv.formats.openimages.csvio import read_header
from annoconv.formats.openimages.options import BATCH_ROWS, BLOCK_SIZE, MEMORY_BUDGET, Options
from annoconv.formats.openimages.records import (
    FilePass,
    Image,
    label_maker,
    object_maker,
    to_record,
)
from annoconv.formats.openimages.sidetables import (
    SideTables,
    label_columns,
    read_image_labels,
    read_urls,
    url_columns,
)
from annoconv.io.fs import expand_source
from annoconv.io.ranges import comma_key, cut_ranges
from annoconv.schema import ImageLabel


class OpenImagesReader(Reader):
    """Reads Open Images bbox CSVs (a path or URL, a glob, a folder or a list; each file on its
    own) into one normalized-coordinate record per ImageID, in ImageID order.

    `batch_rows`, `block_size` (bytes pyarrow parses at once), `memory_budget` (bytes of
    selected rows held before spilling to disk) and `tmp_dir` (where spills go; the system's
    temporary folder by default) tune speed and memory, never the output. `byte_range`
    reads only those bytes of a single file (after its header), as cut by `byte_ranges()`.
    """

    def __init__(
        self,
        source: Source,
        *,
        images: str | None = None,
        class_descriptions: str | None = None,
        images_csv: str | Sequence[str] | None = None,
        image_labels: str | Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        keep_empty: bool = False,
        batch_rows: int = BATCH_ROWS,
        block_size: int = BLOCK_SIZE,
        memory_budget: int = MEMORY_BUDGET,
        tmp_dir: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(source, images=images)
        for name, value in (
            ("batch_rows", batch_rows),
            ("block_size", block_size),
            ("memory_budget", memory_budget),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        names = read_class_descriptions(class_descriptions) if class_descriptions else None
        selected = None if classes is None else resolve_classes(classes, names, class_descriptions)
        self.options = Options(
            names=names,
            descriptions=class_descriptions,
            selected=selected,
            keep_empty=keep_empty,
            batch_rows=batch_rows,
            block_size=block_size,
            memory_budget=memory_budget,
            tmp_dir=tmp_dir,
            byte_range=byte_range,
        )
        self.images_csv = _as_list(images_csv)
        self.image_labels = _as_list(image_labels)
        # Header problems in side files surface now, not after the long first pass.
        for uri in self.images_csv:
            url_columns(uri)
        for uri in self.image_labels:
            label_columns(uri)
        self._count: int | None = None

    def __iter__(self) -> Iterator[ReadResult]:
        count = 0
        for uri in self._files():
            for item in self._file_records(uri):
                count += not isinstance(item, Dropped)
                yield item
        self._count = count

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        """(ImageID, labels of its selected boxes) of every image iteration makes a record
        of, in the same order: the same pass and checks, keeping only ImageIDs and labels."""
        count = 0
        for uri in self._files():
            with FilePass(uri, self.options, LABELS_SCHEMA) as file_pass:
                if file_pass.collect() is not None:
                    continue
                for image in file_pass.images(label_maker(self.options)):
                    count += not isinstance(image, Dropped)
                    if isinstance(image, Image):
                        yield image.key, image.items
        self._count = count

    def class_ids(self) -> dict[str, str]:
        """{label: MID} of the selected classes, or of every described class; empty without
        class descriptions (the labels are MIDs then)."""
        if self.options.names is None:
            return {}
        chosen = self.options.selected or self.options.names
        return {label: mid for mid, label in chosen.items()}

    def count_hint(self) -> int | None:
        """The images of the last complete pass (records and bad items), if there was one."""
        return self._count

    def batches(self) -> Iterator[BatchResult] | None:
        """The columnar path, for files sorted by ImageID (Google's are) without a class
        selection or side tables: each file streamed batch by batch with the record path's
        checks, the rows of complete images handed on as soon as the next ImageID starts.
        A file found unsorted or malformed raises BatchesUnavailable, so that `convert()`
        falls back to the record path (which sorts, or reports the file as one bad item)."""
        if self.options.selected is not None or self.images_csv or self.image_labels:
            return None
        return (item for uri in self._files() for item in stream_file(uri, self.options))

    def byte_ranges(self, count: int) -> list[Reader] | None:
        """Readers of byte ranges of a single bbox CSV, cut between ImageIDs; None for
        several files, or when the cuts show the file is not sorted by ImageID."""
        files = self._files()
        if len(files) != 1 or self.options.byte_range is not None:
            return None
        header = read_header(files[0])
        if IMAGE_ID not in header:
            return None
        cuts = cut_ranges(files[0], count, comma_key(header.index(IMAGE_ID)))
        if cuts is None or any(before >= after for before, after in cuts.boundaries):
            return None
        parts: list[Reader] = []
        for byte_range in cuts.ranges:
            part = copy.copy(self)
            part.source = files[0]
            part.options = dataclasses.replace(self.options, byte_range=byte_range)
            parts.append(part)
        return parts

    def _files(self) -> list[str]:
        """The bbox CSVs: a folder or glob keeps only CSVs with a bbox header, as Open Images
        downloads put class descriptions and image lists beside the boxes."""
        files = expand_source(self.source, (".csv",))[0]
        if isinstance(self.source, str) and files != [self.source]:
            return [uri for uri in files if is_bbox(uri)]
        return files

    def _file_records(self, uri: str) -> Iterator[ReadResult]:
        with FilePass(uri, self.options, RECORDS_SCHEMA) as file_pass:
            failure = file_pass.collect()
            if failure is not None:
                yield failure
                return
            side = self._side_tables(file_pass.wanted)
            for image in file_pass.images(object_maker(self.options)):
                yield to_record(uri, image, side) if isinstance(image, Image) else image

    def _side_tables(self, wanted: pa.Array | None) -> SideTables:
        whole = dataclasses.replace(self.options, byte_range=None)  # side files are read whole
        urls: dict[str, str] = {}
        for uri in self.images_csv:
            read_urls(uri, wanted, whole, urls)
        labels: dict[str, list[ImageLabel]] = {}
        for uri in self.image_labels:
            read_image_labels(uri, wanted, whole, labels)
        return SideTables(urls, labels)


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
