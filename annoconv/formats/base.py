"""The small protocol every format implements: a Reader yields records, a Writer consumes them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from annoconv.errors import AnnotationError
from annoconv.io.fs import AtomicFile, expand_source
from annoconv.options import FormatOptions, NoOptions
from annoconv.report import OutputFile
from annoconv.schema import CoordSpace, ImageRecord

if TYPE_CHECKING:
    import pyarrow as pa

    from annoconv.labelmap import LabelMap

Source = str | Sequence[str]


@dataclass(frozen=True)
class BadItem:
    """An input item a reader could not turn into a record, with the boxes it held if known.

    Readers yield these instead of raising, so that `convert()` applies the error policy and
    a `skip` run goes on with the next item.
    """

    error: AnnotationError
    images: int = 1
    boxes: int = 0


@dataclass(frozen=True)
class Dropped:
    """Images and boxes a reader read but left out on purpose (a selection such as
    ``classes=``), counted in bulk: the report shows them as skipped with `reason`."""

    reason: str
    images: int = 0
    boxes: int = 0


ReadResult = ImageRecord | BadItem | Dropped
#: What the columnar path streams: batches of images in the nested Arrow schema
#: (`schema.arrow_schema()`, one row per image) between the same BadItems and Dropped counts.
BatchResult: TypeAlias = "pa.RecordBatch | BadItem | Dropped"


class BatchesUnavailable(Exception):
    """The data needs the record path after all: raised by `Reader.batches()` or
    `Writer.write_batch()`, possibly after batches went through (an Open Images file found
    unsorted, a record lacking the pixel size a writer needs). `convert()` throws away what
    was written and runs the record path from the start."""


@dataclass(frozen=True)
class ShardPartition:
    """The shards of one sharded output that a task of a partitioned run writes (see
    `annoconv.engines`): the output's shard count, the shard of every key the task may
    see, and the shard numbers it owns. Keys not listed fall back to the writer's hash rule."""

    count: int
    assignment: Mapping[str, int]
    owned: frozenset[int]


#: How the outputs that separate tasks of a parallel run wrote join into one output:
#: "one" - they cannot: one task writes the whole output; "concatenate" - the parts are
#: joined in order, every part after the first without its `Writer.header()`; "dataset" - the
#: parts stay files of a folder (`Writer.part_path`), read back as one dataset.
PartsJoin = Literal["one", "concatenate", "dataset"]


@dataclass(frozen=True)
class Capabilities:
    """What a writer declares about itself, for the planner and the engines to read (they
    never probe a writer's type or attributes). A writer that declares nothing gets these
    defaults, which run correctly on every engine: one task writes the whole output."""

    #: Coordinate space the writer wants records in; None when it takes either.
    coords: CoordSpace | None = None
    #: It assigns class ids, so it needs the label map before the first record.
    needs_label_map: bool = False
    #: It needs every image key (and weight) up front, e.g. to deal records into shards.
    needs_keys: bool = False
    #: It takes the label map built from the data whenever a first pass runs anyway (a split,
    #: a sample), so that every split's output carries the same map.
    label_map_from_survey: bool = False
    #: It deals records into shards (`Writer.shard_plan`); a parallel run gives each task
    #: whole shards, and the writer then takes a `partition: ShardPartition`.
    sharded: bool = False
    #: `write_batch()` takes Arrow record batches (the columnar fast path).
    takes_batches: bool = False
    #: `write()` takes the image's bytes too (`image_data=`), fed from the images folder or
    #: archive as the records pass.
    embeds_images: bool = False
    #: How the parts written by the tasks of a parallel run join (see `PartsJoin`).
    parts: PartsJoin = "one"
    #: Its outputs are used with the run's label map as a file beside them (TFRecords and
    #: the OD API): the command line saves one there unless a label map is given.
    label_map_file: bool = False
    #: Its constructor takes ``split=NAME``: the split it writes (None without a split).
    split_aware: bool = False
    #: `prepare()` does the costly part of writing a record (decoding and encoding its
    #: image) without touching the outputs, safely on other threads: the pipeline runs it a
    #: few records ahead on every core and hands the result to `write_prepared()`, in order.
    prepares: bool = False
    #: Not given the keys up front, it deals each record to the shard `ops.shard_of` names,
    #: so a run whose label map is known needs no first pass for the keys (a one-pass run:
    #: shard sizes then differ by more than one image); the parallel engines deal alike.
    shards_by_hash: bool = False


@dataclass(frozen=True)
class DatasetFiles:
    """What `Writer.finish_dataset` wrote, and what the run should be told about it."""

    outputs: list[OutputFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Reader(ABC):
    """Reads one source (a path, a folder, a glob, or a list of paths) lazily.

    Iterating yields one `ImageRecord` per image, or a `BadItem` for input that could not be
    read. Iterating twice reads the source twice: readers hold no records.
    """

    def __init__(self, source: Source, *, images: str | None = None) -> None:
        self.source = source
        self.images = images

    @abstractmethod
    def __iter__(self) -> Iterator[ReadResult]: ...

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        """(key, object labels) of every readable image: what a first pass needs to settle
        the label map and the splits. Formats override it with something cheaper than
        building records; unreadable items are left out (the conversion pass reports them)."""
        for item in self:
            if isinstance(item, ImageRecord):
                yield item.key, [obj.label for obj in item.objects]

    def adjustments(self) -> Counter[str]:
        """What the last pass changed in reading without leaving an item out, counted by
        what (a YOLO segment line read as its box; a COCO segmentation not carried): the
        run's report adds them up. A reader of several sources gives its parts'."""
        counts: Counter[str] = Counter()
        for part in self.parts():
            if part is not self:
                counts.update(part.adjustments())
        return counts

    def class_ids(self) -> dict[str, str]:
        """The dataset's own identifier of each label, where it has one (Open Images MIDs:
        ``{"Camera": "/m/0dv5r"}``); a label map built from the data uses them as `name`
        with the label as `display_name`, the OD API convention."""
        return {}

    def parts(self) -> Sequence[Reader]:
        """The readers this one reads in turn (a merge's sources); itself otherwise."""
        return [self]

    def declared_label_map(self) -> LabelMap | None:
        """The classes the source itself declares, with their ids (a COCO file's
        `categories`, a YOLO `names` list), when it declares them: a run without a given label
        map uses it instead of building one from the data."""
        return None

    def count_hint(self) -> int | None:
        """How many items iteration will yield, when cheap to know (for progress bars)."""
        return None

    def image_files(self) -> list[tuple[str, str]] | None:
        """For readers of one file per image (VOC): (key, file) of every file, in reading
        order, so that an engine can hand each task its own files; None for other readers."""
        return None

    def only_files(self, files: Sequence[str]) -> Reader:
        """The same reader over `files` (some of `image_files()`, in that order), keying
        records as the whole reader does. Only for readers with `image_files()`."""
        raise NotImplementedError(f"{type(self).__name__} cannot read a subset of its files")

    def byte_ranges(self, count: int) -> list[Reader] | None:
        """For readers of one big CSV sorted by image: at most `count` readers of byte
        ranges of it (`io.ranges`), each reading the rows of whole images, that together
        read what this reader does in the same order; None when the source cannot be cut."""
        return None

    def batches(self) -> Iterator[BatchResult] | None:
        """The columnar fast path: what iteration yields, in the same order, with the records
        as rows of Arrow record batches in the nested schema (`schema.arrow_schema()`, the
        rows exactly what `columnar.records_to_batch` makes of the records) and the same
        BadItems and Dropped counts at the same places; no Python object per box. None when
        this reader, with its options, cannot."""
        return None


class PerFileReader(Reader):
    """A reader whose files each stand alone: `read_file` reads one, in the sorted order
    `expand_source` lists them (a file, a folder, a glob or a list)."""

    extensions: ClassVar[tuple[str, ...]] = ()

    def __iter__(self) -> Iterator[ReadResult]:
        files, _root = expand_source(self.source, self.extensions)
        for uri in files:
            yield from self.read_file(uri)

    @abstractmethod
    def read_file(self, uri: str) -> Iterator[ReadResult]: ...


class Writer(ABC):
    """Writes records to one destination, atomically: nothing looks complete until `close()`.

    `write()` must check a record completely before writing any of it, so that a record it
    rejects (by raising AnnotationError) leaves no partial output behind. What the writer
    is able to do and needs is its `capabilities`, declared once; a writer whose capabilities
    depend on its options sets its own in `__init__`.
    """

    capabilities: Capabilities = Capabilities()
    #: What the report calls the writer's files.
    kind: ClassVar[str] = "file"

    def __init__(
        self, destination: str, *, label_map: LabelMap | None = None, images: str | None = None
    ) -> None:
        self.destination = destination
        self.label_map = label_map
        self.images = images
        #: What the writer adjusted along the way (e.g. boxes rescaled), for the run report.
        self.warnings: list[str] = []
        #: What it changed, counted (e.g. unknown flags written as 0): `Report.adjusted`.
        self.adjusted: Counter[str] = Counter()

    @classmethod
    def split_destination(cls, output: str, split: str) -> str | None:
        """Where split `split` of `output` goes, for writers with a layout of their own
        (Parquet's `OUT/data/NAME/part-00000.parquet`); None for the usual `-SPLIT` before
        the extension."""
        return None

    @classmethod
    def part_path(cls, destination: str, index: int, *, in_split_folder: bool) -> str:
        """For writers whose parts join as a "dataset": where part `index` of `destination`
        goes (`in_split_folder`: the destination is a split's file inside a folder of its
        own). Parts are ``part-00000``... files of a folder named as the destination."""
        from annoconv.io.fs import dirname, join

        folder = dirname(destination) if in_split_folder else destination
        return join(folder, f"part-{index:05d}")

    def header(self) -> bytes:
        """The bytes the output starts with (a CSV header): for writers whose parts are
        joined by concatenation, every part after the first is joined without them."""
        return b""

    @classmethod
    def weigher(cls, **options: Any) -> Callable[[ImageRecord], int] | None:
        """For `needs_keys` writers: a function giving each record's expected output size in
        bytes (to size shards), built from the writer's options; None counts images instead."""
        return None

    @classmethod
    def shard_plan(
        cls, keys: Mapping[str, int] | None, **options: Any
    ) -> tuple[int, dict[str, int]] | None:
        """For writers that deal records into shards: (number of shards, each key's shard)
        as the writer itself would settle them from `keys` and its options, so that a
        partitioned run can give each task whole shards (the writer then takes a
        `partition: ShardPartition`). None for writers of one output."""
        return None

    @classmethod
    def joins_shard_parts(cls, **options: Any) -> bool:
        """For sharded writers: whether, with these options, a shard's file is the
        concatenation of files holding runs of its records (uncompressed TFRecords): a
        partitioned run with fewer shards than workers then has each task write its part of
        every shard, joined in order."""
        return False

    @classmethod
    def finish_dataset(
        cls,
        output: str,
        splits: Sequence[str],
        label_map: LabelMap | None,
        outputs: Sequence[OutputFile],
        options: Mapping[str, Any],
    ) -> DatasetFiles:
        """Once every split's outputs are published (on every engine): write the files that
        describe the whole dataset (a YOLO ``data.yaml`` naming every split's folders, a
        Parquet dataset card), and say what was written. `splits` are the run's split names
        (empty without a split), `options` the writers' options."""
        return DatasetFiles()

    @classmethod
    def usage_notes(cls, outputs: Sequence[OutputFile], label_map: str | None) -> list[str]:
        """What to tell a user about using a run's `outputs` (with the label map file given
        to the run, if any): the command line prints it after the run's summary."""
        return []

    @classmethod
    def stale_outputs(cls, outputs: Sequence[OutputFile]) -> list[str]:
        """Once a run's `outputs` are published: the files an earlier run left that would be
        read together with them (a sharded writer's shards of another count under the same
        prefix), for the engine to remove. Writers of fixed names have none."""
        return []

    @abstractmethod
    def write(self, record: ImageRecord) -> None: ...

    def prepare_job(self, record: ImageRecord) -> Callable[[], object]:
        """The work `prepare()` does for `record`, to run on another thread; taken now, in
        stream order (a wrapper feeding image bytes hands them over here)."""
        return partial(self.prepare, record)

    def prepare(self, record: ImageRecord, image_data: bytes | None = None) -> object:
        """For writers declaring `prepares`: the costly, thread-safe part of writing
        `record`; raises what `write()` would raise for it."""
        raise NotImplementedError(f"{type(self).__name__} does not prepare records")

    def write_prepared(self, record: ImageRecord, prepared: object) -> None:
        """Write `record` with what `prepare()` gave for it (same output as `write()`)."""
        raise NotImplementedError(f"{type(self).__name__} does not prepare records")

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Write a batch of records in the nested Arrow schema, with the same output as
        writing them one by one with `write()` (writers declaring `takes_batches` only)."""
        raise NotImplementedError(f"{type(self).__name__} does not take record batches")

    @abstractmethod
    def close(self) -> list[OutputFile]:
        """Finish and publish every output; returns what was written."""

    @abstractmethod
    def abort(self) -> None:
        """Throw away everything written so far; called instead of close() on failure."""


class SourceSplits:
    """The splits the records written into one dataset came with (a source's own: Roboflow's
    train/valid/test folders, a data.yaml's), for a writer of split datasets to say when
    several were written together."""

    def __init__(self) -> None:
        self.seen: dict[str, None] = {}

    def add(self, split: str | None) -> None:
        if split:
            self.seen.setdefault(split)

    def add_column(self, splits: Sequence[str | None]) -> None:
        for split in dict.fromkeys(splits):
            self.add(split)

    def note(self) -> str | None:
        """What to tell the user, when the records came from more than one split."""
        if len(self.seen) < 2:
            return None
        return (
            f"the source's splits {', '.join(self.seen)} were written as one dataset "
            "(--keep-splits writes one per split)"
        )


class WrappingWriter(Writer):
    """A writer that hands every record to another one (`inner`), adding a step on the way
    (image bytes fed to it, records prepared ahead): it declares what the inner writer
    declares, and closes and aborts it."""

    def __init__(self, inner: Writer) -> None:
        super().__init__(inner.destination, label_map=inner.label_map, images=inner.images)
        self.capabilities = inner.capabilities
        self.inner = inner

    def close(self) -> list[OutputFile]:
        outputs = self.inner.close()
        self.warnings = self.inner.warnings
        self.adjusted = self.inner.adjusted
        return outputs

    def abort(self) -> None:
        self.inner.abort()


class SingleFileWriter(Writer):
    """A writer of one file, opened on first use and published on `close()`.

    Subclasses give the file `kind` (for the report) and, if the file starts with one,
    `header()`; they write through `output()`. Their parts join by concatenation unless a
    subclass declares otherwise (a file whose parts cannot simply be joined, e.g. JSON).
    """

    capabilities = Capabilities(parts="concatenate")

    def __init__(
        self, destination: str, *, label_map: LabelMap | None = None, images: str | None = None
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        self._file: AtomicFile | None = None
        self._closed = False

    def output(self) -> AtomicFile:
        if self._closed:
            raise RuntimeError(f"the {self.kind} writer of {self.destination} is already closed")
        if self._file is None:
            self._file = AtomicFile(self.destination)
            self._file.write(self.header())
        return self._file

    def close(self) -> list[OutputFile]:
        size = self.output().commit()
        self._closed = True
        return [OutputFile(self.destination, size, self.kind)]

    def abort(self) -> None:
        self._closed = True
        if self._file is not None:
            self._file.abort()


@dataclass(frozen=True)
class Format:
    """A format, everything about it in one place: what the registry hands out.

    `reader`/`writer` build the objects; their user-facing keyword options are declared by
    `read_options`/`write_options` (pydantic models: types, defaults, bounds, help text), which
    check the options before anything is read or written and give the command line its flags.
    """

    name: str
    description: str
    extensions: tuple[str, ...] = ()
    reader: Callable[..., Reader] | None = None
    writer: type[Writer] | None = None
    #: For formats sharing an extension: looks at a source and returns the format name it holds.
    sniff: Callable[[str], str] | None = None
    read_options: type[FormatOptions] = NoOptions
    write_options: type[FormatOptions] = NoOptions
    #: Whether a folder holding files with these extensions is one source of this format.
    reads_folders: bool = False
    #: Looks into a folder and says whether it holds a dataset of this format (a YOLO folder
    #: with its data.yaml), for formats whose folders their files' extensions do not tell.
    claims_folder: Callable[[str], bool] | None = field(default=None, compare=False)
    #: A quick look (a header, the first bytes) at what is at an output path: whether it
    #: holds this format's data, as an earlier run's output does. For formats whose reader
    #: reads a whole file before its first record; without it, the first record is read.
    recognizes: Callable[[str], bool] | None = field(default=None, compare=False)
