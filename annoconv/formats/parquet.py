"""Parquet: our interchange and cache format, and where users look at their data.

Two layouts, both derived from the schema's Arrow form (`annoconv.schema`):

* **nested** (the default): one row per image, `schema.arrow_schema()`; its boxes are the
  `objects` column, a list of structs. With ``embed_images=True`` an `image` column follows,
  a struct ``{bytes, path}`` (Hugging Face `datasets` loads it as its Image feature): the
  image file's bytes exactly as found (JPEG, PNG, TIFF... byte for byte) and its filename.
* **flat** (``flat=True``, ``--flat``): one row per box, `schema.flat_arrow_schema()`: the
  CSV's ``filename,width,height,class,xmin,ymin,xmax,ymax`` first, then the other box fields,
  then the image fields repeated on each row. An image without objects is one row whose box
  columns are null.

Coordinates are written as the records hold them (the `coords` column says in which space),
so every number comes back bit for bit. The file's key-value metadata holds
``annoconv.version``, ``annoconv.layout`` (``nested``/``flat``), ``annoconv.coords``
(``pixel``, ``normalized``, ``mixed`` or ``none``) and ``annoconv.label_map``: the run's label
map as pbtxt text (given, or built from the first pass that a split or a sample makes, so
every split carries the same map), else a map of the classes written (sorted, ids from 1).

Row groups hold at most `row_group_size` rows (images, or boxes when flat), so readers can
stream them; the file is written as it goes into a hidden temporary file published on
`close()` (`io.fs.AtomicFile`). With a split, `convert()` writes a dataset folder,
``OUT/data/NAME/part-00000.parquet`` per split and a dataset card ``OUT/README.md``, ready for
Hugging Face `datasets` and the Hub (`annoconv.formats.parquet_hub`). Every file's metadata
also holds ``huggingface``: the `datasets` features of its columns. A file written into a hive
partition folder (``.../split=NAME/file.parquet``, our layout before dataset folders) leaves
out the `split` column, which readers (pyarrow, pandas, DuckDB, ours) take from the folder.

Reading takes a file, a folder of them (recursively: a partitioned dataset) or a glob, and
tells the layout from the metadata or, for files from elsewhere, the columns (a nested file
needs `key`, `filename`, `coords`, `objects`; a flat one `filename`, `class` and the four
coordinates; missing optional columns are null, flags -1, `key` the filename and `coords`
``pixel``). Row groups are read one batch at a time. The rows of one image in a flat file must
be consecutive. A record's `source` is the Parquet file it was read from; errors name the
file and the image's row, or all its rows in a flat file (counted from 1 in the file), with
their row group(s). Files written before a box's `source` was named `box_source` read as well.
"""

from __future__ import annotations

import bisect
import contextlib
import posixpath
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from annoconv.columnar import (
    OBJECTS,
    checked,
    flatten,
    nest,
    records_to_batch,
    row_records,
    run_starts,
)
from annoconv.errors import AnnoconvError, AnnotationError
from annoconv.formats import parquet_hub as hub
from annoconv.formats.base import (
    BadItem,
    BatchResult,
    Capabilities,
    DatasetFiles,
    Format,
    Reader,
    ReadResult,
    Source,
    Writer,
)
from annoconv.io.fs import AtomicFile, dirname, exists, expand_source, is_remote, join, size_of
from annoconv.io.images import RecordImages, read_image_bytes
from annoconv.options import FormatOptions
from annoconv.report import OutputFile
from annoconv.schema import (
    FLAT_RENAMES,
    IMAGE_COLUMN,
    NORMALIZED,
    PIXEL,
    ImageRecord,
    arrow_schema,
    flat_arrow_schema,
    image_arrow_type,
)

if TYPE_CHECKING:
    from annoconv.labelmap import LabelMap

__all__ = ["FORMAT", "META_PREFIX", "ParquetReader", "ParquetWriter"]

EXTENSIONS = (".parquet",)
META_PREFIX = "annoconv."
NESTED, FLAT = "nested", "flat"
#: Rows per row group: images for the nested layout, boxes for the flat one. Half of 65,536,
#: measured: a third less peak memory (COCO train2017: a group is 19 MB, not 38) for files 4%
#: (Open Images) to 14% (COCO) larger, each group holding dictionaries of its own.
ROW_GROUP_SIZE = 32_768
#: Records converted to Arrow at a time on the record path.
_RECORD_CHUNK = 4_096
#: A row group is handed to Parquet in chunks of this many rows, counted from its first row.
#: Parquet cuts pages where its chunks allow, so chunks cut at fixed rows (whatever batches
#: came in) give the same bytes on every path, without copying a whole group into one chunk.
GROUP_CHUNK_ROWS = 8_192
#: While a row group is encoded (on a thread), the next gathers at most this share of its
#: bytes before waiting for it: a reader slower than the encoder (Open Images' CSV) never
#: waits, a faster one (COCO's grouped rows) holds a quarter group more, not a whole one.
OVERLAP_SHARE = 0.25
#: With embedded images: image bytes gathered before they go into a batch, and before the
#: rows gathered so far make a row group (however few), so memory stays bounded.
EMBEDDED_CHUNK_BYTES = 16 << 20
EMBEDDED_GROUP_BYTES = 128 << 20
SPLIT = "split"
_PARTITION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _meta_key(name: str) -> bytes:
    return f"{META_PREFIX}{name}".encode()


# --- writing ----------------------------------------------------------------------------------


class ParquetWriter(Writer):
    """Writes records (or record batches) as a Parquet file, nested or flat; see the module."""

    capabilities = Capabilities(label_map_from_survey=True, takes_batches=True, parts="dataset")
    kind = "parquet"

    def __init__(
        self,
        destination: str,
        *,
        label_map: LabelMap | None = None,
        images: str | None = None,
        flat: bool = False,
        embed_images: bool = False,
        row_group_size: int = ROW_GROUP_SIZE,
        compression: str = "snappy",
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        if row_group_size < 1:
            raise ValueError(f"row_group_size must be at least 1, got {row_group_size}")
        if flat and embed_images:
            raise ValueError(
                "embed_images needs the nested layout (one row per image): "
                "the flat layout would repeat an image's bytes on every box"
            )
        self.flat = flat
        self.embed_images = embed_images
        self.row_group_size = row_group_size
        self.compression = compression
        # Images are looked up and read record by record.
        self.capabilities = Capabilities(
            label_map_from_survey=True,
            takes_batches=not embed_images,
            embeds_images=embed_images,
            parts="dataset",
        )
        self.partition = _partition_of(destination)
        #: The split of a dataset folder's file (`parquet_hub`), whose boxes get a category.
        self.dataset_split = hub.dataset_split(destination)
        self.categories = self.dataset_split is not None and not flat and label_map is not None
        self.schema = self._schema()
        self._finder = RecordImages(images) if embed_images else None
        self._records: list[ImageRecord] = []
        self._image_cells: list[dict[str, Any]] = []
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._group: list[pa.RecordBatch] = []
        self._group_rows = 0
        self._group_bytes = 0
        self._in_flight_bytes = 0
        self._image_bytes = 0
        self._classes: Counter[str] = Counter()
        self._spaces: set[str] = set()
        self._file: AtomicFile | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: Future[None] | None = None

    @classmethod
    def split_destination(cls, output: str, split: str) -> str:
        """A split goes to its folder in a dataset folder: ``OUT/data/NAME/part-00000.parquet``."""
        return join(output, hub.DATA, split, "part-00000.parquet")

    @classmethod
    def stale_outputs(cls, outputs: Sequence[OutputFile]) -> list[str]:
        """The part files of the earlier layout of a split (``OUT/split=NAME/``) beside a
        dataset folder's ``OUT/data/NAME/`` this run wrote: read with them, they would hold
        every image twice."""
        return sorted(
            {stale for out in outputs for stale in hub.replaced_parts(out.path)}
            - {out.path for out in outputs}
        )

    @classmethod
    def finish_dataset(
        cls,
        output: str,
        splits: Sequence[str],
        label_map: LabelMap | None,
        outputs: Sequence[OutputFile],
        options: Mapping[str, Any],
    ) -> DatasetFiles:
        """The dataset card of every dataset folder among a run's published `outputs`, once
        every split's files are in place (on every engine). The data is published already,
        so a card that cannot be written is a warning."""
        roots = {hub.dataset_root(out.path) for out in outputs if hub.dataset_split(out.path)}
        cards, warnings = [], []
        for root in sorted(roots):
            try:
                warnings += hub.write_card(root)
            except (OSError, ValueError, AnnoconvError, pa.ArrowException) as error:
                warnings.append(f"no dataset card written in {root}: {error}")
                continue
            card = join(root, hub.CARD)
            if exists(card) and not warnings:
                cards.append(OutputFile(card, size_of(card), "dataset_card"))
        return DatasetFiles(cards, warnings)

    @classmethod
    def part_path(cls, destination: str, index: int, *, in_split_folder: bool) -> str:
        return super().part_path(destination, index, in_split_folder=in_split_folder) + ".parquet"

    def write(self, record: ImageRecord, image_data: bytes | None = None) -> None:
        if self._finder is not None:
            from annoconv.io.embed import check_complete

            data, source = image_data, record.source or record.key
            uri = record.image_uri or record.filename
            if data is None:
                uri = self._finder.find(record)
                data = read_image_bytes(uri, source)
            check_complete(uri, source, data)
            self._image_cells.append({"bytes": data, "path": record.filename})
            self._image_bytes += len(data)
        self._records.append(record)
        if len(self._records) >= _RECORD_CHUNK or self._image_bytes >= EMBEDDED_CHUNK_BYTES:
            self._flush_records()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self._flush_records()
        self._add(batch)

    def close(self) -> list[OutputFile]:
        self._flush_records()
        self._write_groups(final=True)
        self._stop()
        writer = self._writer()
        writer.add_key_value_metadata(self._metadata())
        writer.close()
        assert self._file is not None
        size = self._file.commit()
        return [OutputFile(self.destination, size, "parquet")]

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._stop()
        if self._parquet is not None:
            # The partial file is thrown away, whatever closing it says.
            with contextlib.suppress(Exception):
                self._parquet.close()
        if self._file is not None:
            self._file.abort()

    def _schema(self) -> pa.Schema:
        schema = flat_arrow_schema() if self.flat else arrow_schema()
        if self.embed_images:
            schema = schema.append(pa.field(IMAGE_COLUMN, image_arrow_type()))
        if self.partition is not None:
            schema = schema.remove(schema.get_field_index(SPLIT))
        if self.categories:
            index = schema.get_field_index(OBJECTS)
            objects = pa.field(OBJECTS, hub.hub_objects_type(schema.field(OBJECTS).type))
            schema = schema.set(index, objects)
        # In the schema, not only the footer: `datasets` reads the Arrow schema's metadata.
        names = hub.class_names(self.label_map) if self.categories and self.label_map else None
        return schema.with_metadata({hub.HF_METADATA_KEY: hub.features_metadata(schema, names)})

    def _flush_records(self) -> None:
        if not self._records:
            return
        batch = records_to_batch(self._records)
        if self._image_cells:
            images = pa.array(self._image_cells, image_arrow_type())
            batch = pa.RecordBatch.from_arrays(
                [*batch.columns, images],
                schema=batch.schema.append(pa.field(IMAGE_COLUMN, image_arrow_type())),
            )
        self._records, self._image_cells, self._image_bytes = [], [], 0
        self._add(batch)

    def _add(self, batch: pa.RecordBatch) -> None:
        """Takes a nested batch: notes its classes and spaces, queues it in the layout."""
        if not batch.num_rows:
            return
        labels = pc.list_flatten(batch.column(OBJECTS)).field("label")
        for item in pc.value_counts(labels).to_pylist():
            self._classes[item["values"]] += item["counts"]
        self._spaces.update(pc.unique(batch.column("coords")).to_pylist())
        rows = flatten(batch) if self.flat else batch
        if self.partition is not None:
            rows = rows.drop_columns([SPLIT])
        if self.categories:
            rows = self._with_categories(rows)
        self._pending.append(rows.select(self.schema.names))
        self._pending_rows += rows.num_rows
        self._pending_bytes += rows.nbytes
        self._write_groups(final=False)

    def _write_groups(self, *, final: bool) -> None:
        """Cuts the queue into the current row group's chunks and writes each full group (and
        the rest when `final`). Groups and their chunks are cut at fixed row counts, whatever
        the batches, so both paths write the same file; with embedded images (records only)
        a group is also written once its rows hold `EMBEDDED_GROUP_BYTES`."""
        held = self._pending_bytes + self._group_bytes
        heavy = self.embed_images and held >= EMBEDDED_GROUP_BYTES
        everything = final or heavy
        while self._pending_rows:
            size = min(GROUP_CHUNK_ROWS, self.row_group_size - self._group_rows)
            if self._pending_rows < size and not everything:
                break
            self._cut_chunk(min(size, self._pending_rows))
            if self._group_bytes > self._in_flight_bytes * OVERLAP_SHARE:
                self._wait()
            if self._group_rows == self.row_group_size:
                self._write_group()
        if everything and self._group_rows:
            self._write_group()

    def _cut_chunk(self, rows: int) -> None:
        """Moves the queue's first `rows` rows into the group as one chunk (a copy only of a
        chunk that spans batches)."""
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        chunk = table.slice(0, rows).combine_chunks()
        rest = table.slice(rows)
        self._group += chunk.to_batches()
        self._group_rows += rows
        self._group_bytes += chunk.nbytes
        self._pending = rest.to_batches()
        self._pending_rows = rest.num_rows
        self._pending_bytes = rest.nbytes

    def _write_group(self) -> None:
        """Encodes and writes the group on a thread of its own (pyarrow lets go of the GIL)
        while the caller gathers the next (see `OVERLAP_SHARE`); at most one is in flight."""
        group = pa.Table.from_batches(self._group, schema=self.schema)
        self._group, self._group_rows, self._group_bytes = [], 0, 0
        writer = self._writer()
        self._wait()
        self._in_flight_bytes = group.nbytes
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="annoconv-parquet")
        self._in_flight = self._pool.submit(
            writer.write_table, group, row_group_size=self.row_group_size
        )

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            self._in_flight_bytes = 0
            in_flight.result()

    def _stop(self) -> None:
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    def _with_categories(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        assert self.label_map is not None
        field = self.schema.field(OBJECTS)
        objects, unknown = hub.with_categories(batch.column(OBJECTS), self.label_map, field.type)
        if unknown:
            self.warnings.append(
                f"{self.destination}: class(es) not in the label map, without a category: "
                + ", ".join(unknown)
            )
        return batch.set_column(batch.schema.get_field_index(OBJECTS), field, objects)

    def _writer(self) -> pq.ParquetWriter:
        if self._parquet is None:
            self._file = AtomicFile(self.destination)
            # The encoder's scratch memory from the system allocator: from the default pool
            # (mimalloc), the writing thread's heap would keep its peak beside the reading
            # thread's (15-20 MB more at COCO train2017 scale).
            self._parquet = pq.ParquetWriter(
                self._file.handle,
                self.schema,
                compression=self.compression,
                memory_pool=pa.system_memory_pool(),
            )
        return self._parquet

    def _metadata(self) -> dict[bytes, bytes]:
        from annoconv.labelmap import LabelMap
        from annoconv.version import __version__

        label_map = self.label_map or LabelMap.from_classes(self._classes)
        spaces = sorted(self._spaces)
        coords = spaces[0] if len(spaces) == 1 else ("mixed" if spaces else "none")
        return {
            _meta_key("version"): __version__.encode(),
            _meta_key("layout"): (FLAT if self.flat else NESTED).encode(),
            _meta_key("coords"): coords.encode(),
            hub.LABEL_MAP_KEY: label_map.to_pbtxt().encode("utf-8"),
        }


def _partition_of(destination: str) -> str | None:
    """The split a file in a hive partition folder (``.../split=NAME/file``) belongs to."""
    folder = posixpath.basename(dirname(destination).replace("\\", "/"))
    found = _PARTITION.match(folder)
    return found.group(2) if found and found.group(1) == SPLIT else None


# --- reading ----------------------------------------------------------------------------------


class ParquetReader(Reader):
    """Reads Parquet files of either layout (a file, a folder or partitioned dataset, a glob,
    or a list) into one record per image, streaming `batch_rows` rows at a time."""

    def __init__(
        self,
        source: Source,
        *,
        images: str | None = None,
        batch_rows: int = ROW_GROUP_SIZE,
    ) -> None:
        super().__init__(source, images=images)
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
        self.batch_rows = batch_rows

    def __iter__(self) -> Iterator[ReadResult]:
        for _uri, batch, where in self._nested():
            if isinstance(batch, BadItem):
                yield batch
                continue
            for _index, item in row_records(batch, where):
                yield item

    def batches(self) -> Iterator[BatchResult]:
        for _uri, batch, where in self._nested():
            if isinstance(batch, BadItem):
                yield batch
            else:
                yield from checked(batch, where)

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        """(key, labels) of every image the model accepts, without building records."""
        for item in self.batches():
            if isinstance(item, pa.RecordBatch):
                keys = item.column("key").to_pylist()
                labels = pc.list_flatten(item.column(OBJECTS)).field("label").to_pylist()
                offsets = item.column(OBJECTS).offsets.to_pylist()
                base = offsets[0]
                for index, key in enumerate(keys):
                    yield key, labels[offsets[index] - base : offsets[index + 1] - base]

    def _nested(self) -> Iterator[tuple[str, pa.RecordBatch | BadItem, Any]]:
        """(file, nested batch or BadItem, where(row) naming a row of the batch)."""
        files, root = expand_source(self.source, EXTENSIONS)
        for uri in files:
            yield from _FileReader(uri, _partitions(uri, root), self.batch_rows).batches()


def _partitions(uri: str, root: str) -> dict[str, str]:
    """The hive partition values (``name=value`` folders) between the root and the file."""
    values = {}
    path = uri.split("://", 1)[1] if is_remote(uri) else uri
    base = root.split("://", 1)[1] if is_remote(root) else root
    relative = posixpath.relpath(path.replace("\\", "/"), base.replace("\\", "/"))
    for part in relative.split("/")[:-1]:
        found = _PARTITION.match(part)
        if found:
            values[found.group(1)] = found.group(2)
    return values


class _FileReader:
    """One Parquet file, as nested batches in file order."""

    def __init__(self, uri: str, partitions: dict[str, str], batch_rows: int) -> None:
        self.uri = uri
        self.partitions = partitions
        self.batch_rows = batch_rows
        self._seen: set[str] = set()
        self._group_starts: list[int] = []

    def batches(self) -> Iterator[tuple[str, pa.RecordBatch | BadItem, Any]]:
        try:
            parquet = self._open()
            layout, coords = self._layout(parquet)
            self._group_starts = _group_starts(parquet)
        except AnnotationError as error:
            yield self.uri, BadItem(error, images=0), None
            return
        try:
            if layout == NESTED:
                for _group, first, batch in self._raw(parquet):
                    nested = self._conform(batch, arrow_schema(), coords)
                    where = self._where(range(first, first + nested.num_rows))
                    yield from self._valid_text(nested, where)
            else:
                yield from self._flat(parquet, coords)
        except AnnotationError as error:
            # A row group or column that cannot be read: the rest of the file is unknown.
            yield self.uri, BadItem(error, images=0), None

    def _open(self) -> pq.ParquetFile:
        try:
            if is_remote(self.uri):
                from annoconv.io.fs import filesystem

                fs, path = filesystem(self.uri)
                return pq.ParquetFile(fs.open(path, "rb"))
            return pq.ParquetFile(self.uri)
        except (OSError, pa.ArrowException) as exc:
            raise AnnotationError(
                self.uri, f"not a readable Parquet file: {_one_line(exc)}"
            ) from None
        except UnicodeDecodeError:
            raise AnnotationError(
                self.uri, "not a readable Parquet file: a column name is not valid UTF-8"
            ) from None

    def _layout(self, parquet: pq.ParquetFile) -> tuple[str, str]:
        metadata = parquet.metadata.metadata or {}
        names = set(parquet.schema_arrow.names)
        self._check_unique(parquet.schema_arrow.names)
        layout = metadata.get(_meta_key("layout"), b"").decode("utf-8", "replace")
        if layout not in (NESTED, FLAT):
            layout = NESTED if OBJECTS in names else FLAT
        needed = (
            ("key", "filename", "coords", OBJECTS)
            if layout == NESTED
            else ("filename", "class", "xmin", "ymin", "xmax", "ymax")
        )
        missing = [name for name in needed if name not in names]
        if missing:
            raise AnnotationError(
                self.uri,
                f"not an annotation table: missing column(s) {', '.join(missing)} "
                f"(a {layout} table needs {', '.join(needed)}); "
                f"it has: {', '.join(parquet.schema_arrow.names)}",
            )
        coords = metadata.get(_meta_key("coords"), b"").decode("utf-8", "replace")
        return layout, coords if coords in (PIXEL, NORMALIZED) else PIXEL

    def _valid_text(
        self, batch: pa.RecordBatch, where: Any
    ) -> Iterator[tuple[str, pa.RecordBatch | BadItem, Any]]:
        """The batch with every row holding text that is not valid UTF-8 (which Arrow does
        not check when reading) taken out as a BadItem naming the row and the column."""
        start = 0
        for index, column in _invalid_text(batch):
            if index > start:
                yield self.uri, batch.slice(start, index - start), _shifted(where, start)
            objects = batch.column(OBJECTS)[index]
            boxes = len(objects) if objects.is_valid else 0
            error = AnnotationError(self.uri, f"column {column}: not valid UTF-8", where(index))
            yield self.uri, BadItem(error, images=1, boxes=boxes), None
            start = index + 1
        if start < batch.num_rows:
            yield self.uri, batch.slice(start) if start else batch, _shifted(where, start)

    def _check_unique(self, names: Sequence[str]) -> None:
        """A column we read may appear once only: which of two would be the image's?"""
        counts = Counter(names)
        read = set(arrow_schema().names) | set(flat_arrow_schema().names)
        twice = sorted(name for name, count in counts.items() if count > 1 and name in read)
        if twice:
            listed = ", ".join(f"{name} ({counts[name]} times)" for name in twice)
            problem = f"not an annotation table: duplicate column(s) {listed}"
            raise AnnotationError(self.uri, problem)

    def _raw(self, parquet: pq.ParquetFile) -> Iterator[tuple[int, int, pa.RecordBatch]]:
        """(row group of its first row, file index of its first row, batch) in file order.
        One reader goes over every row group, and a batch may hold rows of several (a
        reader per row group cost 5 ms each: 15 s for a file of 3,000 one-row groups)."""
        first = 0
        batches = parquet.iter_batches(batch_size=self.batch_rows)
        while True:
            group = max(bisect.bisect_right(self._group_starts, first) - 1, 0)
            try:
                batch = next(batches, None)
            except (OSError, pa.ArrowException) as exc:
                raise AnnotationError(
                    self.uri, f"cannot read row group {group}: {_one_line(exc)}", f"row {first + 1}"
                ) from None
            if batch is None:
                return
            yield group, first, batch
            first += batch.num_rows

    def _where(self, firsts: Sequence[int], lasts: Sequence[int] | None = None) -> Any:
        """Names image `index` of a batch: the file's rows `firsts[index]` to `lasts[index]`
        (counted from 0; one row each without `lasts`) and their row group(s)."""

        def where(index: int) -> str:
            first = firsts[index]
            return _rows_named(first, first if lasts is None else lasts[index], self._group_starts)

        return where

    def _conform(self, batch: pa.RecordBatch, schema: pa.Schema, coords: str) -> pa.RecordBatch:
        """The batch in `schema`: columns cast, missing ones filled, partitions applied."""
        columns = []
        length = batch.num_rows
        for field in schema:
            name = field.name
            if name == "source":
                values = pa.array([self.uri] * length, pa.string())
            elif name in self.partitions:
                values = pa.array([self.partitions[name]] * length, field.type)
            elif name == OBJECTS and name in batch.schema.names:
                values = self._objects(batch.column(name), field)
            elif name in batch.schema.names:
                values = self._cast(batch.column(name), field)
            else:
                values = _default(field, length, coords, batch)
            columns.append(values)
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _objects(self, values: pa.Array, field: pa.Field) -> pa.Array:
        """The objects column of any of our layouts (`parquet_hub.conform_objects`)."""
        kind = values.type
        if not (pa.types.is_list(kind) and pa.types.is_struct(kind.value_type)):
            return self._cast(values, field)
        try:
            return hub.conform_objects(values, field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise AnnotationError(
                self.uri, f"column {field.name}: cannot read {kind} as {field.type}: {exc}"
            ) from None

    def _cast(self, values: pa.Array, field: pa.Field) -> pa.Array:
        if values.type == field.type:
            return values
        try:
            return values.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise AnnotationError(
                self.uri,
                f"column {field.name}: cannot read {values.type} as {field.type}: {_one_line(exc)}",
            ) from None

    def _flat(
        self, parquet: pq.ParquetFile, coords: str
    ) -> Iterator[tuple[str, pa.RecordBatch | BadItem, Any]]:
        """Flat rows grouped into images; an image's rows may span batches and row groups,
        so the rows of the last key of a batch wait for the next one."""
        schema = flat_arrow_schema()
        tail: pa.Table | None = None
        tail_at = 0
        for _group, first, batch in self._raw(parquet):
            conformed = self._conform(batch, schema, coords)
            bad = _invalid_text(conformed)
            if bad:
                # Which image a row belongs to needs its key: the rest of the file is unknown.
                index, column = bad[0]
                where = _rows_named(first + index, first + index, self._group_starts)
                raise AnnotationError(self.uri, f"column {column}: not valid UTF-8", where)
            rows = pa.Table.from_batches([conformed])
            start = first
            if tail is not None:
                rows = pa.concat_tables([tail, rows])
                start = tail_at
            keys = rows.column("key")
            last = keys[len(keys) - 1]
            cut = pc.index(pc.equal(keys, last), True).as_py()
            ready, tail = rows.slice(0, cut), rows.slice(cut)
            tail_at = start + cut
            if ready.num_rows:
                yield from self._images(ready, start)
        if tail is not None and tail.num_rows:
            yield from self._images(tail, tail_at)

    def _images(
        self, rows: pa.Table, first: int
    ) -> Iterator[tuple[str, pa.RecordBatch | BadItem, Any]]:
        nested = nest(rows)
        counts = pc.list_value_length(nested.column(OBJECTS)).to_pylist()
        keys = nested.column("key").to_pylist()
        # Each image is a run of rows with its key (boxes, and rows only marking it).
        starts = run_starts(rows.column("key").combine_chunks()).to_pylist()
        ends = [*starts[1:], rows.num_rows]
        where = self._where([first + at for at in starts], [first + end - 1 for end in ends])
        begin = 0
        for index, key in enumerate(keys):
            if key not in self._seen:
                self._seen.add(key)
                continue
            if index > begin:
                part = nested.slice(begin, index - begin)
                yield self.uri, part, _shifted(where, begin)
            error = AnnotationError(
                self.uri,
                f"the rows of image {key!r} are not consecutive: it appears again here after "
                "other images (sort the table by key, or by filename)",
                where(index),
            )
            yield self.uri, BadItem(error, images=1, boxes=counts[index]), None
            begin = index + 1
        if begin < nested.num_rows:
            yield self.uri, nested.slice(begin), _shifted(where, begin)


def _one_line(error: Exception) -> str:
    """Arrow's message of `error` on one line (its messages may hold line breaks)."""
    return " ".join(str(error).split())


def _invalid_text(batch: pa.RecordBatch) -> list[tuple[int, str]]:
    """(row, first column) of every row holding a string that is not valid UTF-8, in order."""
    try:
        batch.validate(full=True)
        return []
    except pa.ArrowInvalid:
        pass
    bad: dict[int, str] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        for index in range(batch.num_rows):
            try:
                column.slice(index, 1).to_pylist()
            except UnicodeDecodeError:
                bad.setdefault(index, name)
    return sorted(bad.items())


def _group_starts(parquet: pq.ParquetFile) -> list[int]:
    """The file index of the first row of each row group."""
    starts, row = [], 0
    for group in range(parquet.num_row_groups):
        starts.append(row)
        row += parquet.metadata.row_group(group).num_rows
    return starts


def _rows_named(first: int, last: int, group_starts: Sequence[int]) -> str:
    """Rows `first` to `last` of a file (from 0) as errors name them: ``row 4 (row group 1)``,
    ``rows 5-7 (row groups 1-2)``."""
    start, end = (bisect.bisect_right(group_starts, row) - 1 for row in (first, last))
    rows = f"row {first + 1}" if first == last else f"rows {first + 1}-{last + 1}"
    groups = f"row group {start}" if start == end else f"row groups {start}-{end}"
    return f"{rows} ({groups})"


def _shifted(where: Any, offset: int) -> Any:
    return lambda index: where(index + offset)


def _default(field: pa.Field, length: int, coords: str, batch: pa.RecordBatch) -> pa.Array:
    """A column a file lacks: `key` is the filename, `coords` the file's space, flags -1,
    image labels empty, the rest null."""
    name = field.name
    if name == "key":
        return batch.column("filename").cast(pa.string())
    if name == "coords":
        return pa.array([coords] * length, pa.string())
    if name in FLAT_RENAMES.values() or name in ("pose", "confidence", "class"):
        return pa.nulls(length, field.type)
    if field.type == pa.int8():
        return pa.array([-1] * length, pa.int8())
    if name == "image_labels":
        return pa.array([[]] * length, field.type)
    return pa.nulls(length, field.type)


class ParquetWriteOptions(FormatOptions):
    flat: bool = Field(
        False, description="one row per box (the CSV's columns) instead of one row per image"
    )
    embed_images: bool = Field(
        False, description="add an image column {bytes, path} with each image file's bytes"
    )
    row_group_size: int = Field(
        ROW_GROUP_SIZE, ge=1, description="images per row group", json_schema_extra={"cli": False}
    )
    compression: str = Field(
        "snappy", description="Parquet compression codec", json_schema_extra={"cli": False}
    )

    @model_validator(mode="after")
    def _layout(self) -> ParquetWriteOptions:
        if self.flat and self.embed_images:
            raise ValueError(
                "embed_images needs the nested layout (one row per image): "
                "the flat layout would repeat an image's bytes on every box"
            )
        return self


class ParquetReadOptions(FormatOptions):
    batch_rows: int = Field(
        ROW_GROUP_SIZE, ge=1, description="rows per batch read", json_schema_extra={"cli": False}
    )


FORMAT = Format(
    "parquet",
    "Parquet: one row per image (objects as a list of structs) or per box (--flat)",
    EXTENSIONS,
    reader=ParquetReader,
    writer=ParquetWriter,
    read_options=ParquetReadOptions,
    write_options=ParquetWriteOptions,
    reads_folders=True,
)
