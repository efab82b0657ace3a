"""Merging several sources, possibly of different formats, into one dataset.

`MergedReader` reads its sources one after the other as one reader, so every operation of
`convert()` (filters, dedup, sample, splits) and one label map apply to the whole. Keys that
occur in more than one source are made unique by prefixing them with the source's name
(`source1/`, `source2/`, ... unless named), and the image of such a record is looked up
before its key changes. Images sharing a file name across sources are compared by their
annotations: differing ones are reported as conflicts (the run's warnings), both are kept.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from annoconv.dedup import annotation_digest
from annoconv.errors import AnnotationError, OptionError
from annoconv.formats import Reader, ReadResult, Source
from annoconv.io.images import RecordImages
from annoconv.labelmap import LabelMap
from annoconv.options import RunOptions
from annoconv.report import Report
from annoconv.schema import ImageRecord


@dataclass(frozen=True)
class MergeSource:
    """One source of a merge: its path(s), format (inferred when None), images folder,
    reader options, and the name its colliding keys are prefixed with."""

    source: Source
    from_format: str | None = None
    images: str | None = None
    read_options: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None


class MergedReader(Reader):
    """The records of several readers, in order, with keys unique across them."""

    def __init__(
        self,
        readers: Sequence[Reader],
        names: Sequence[str] | None = None,
        *,
        images: str | None = None,
    ) -> None:
        super().__init__([_describe(reader.source) for reader in readers], images=images)
        self.readers = list(readers)
        self.names = list(names or [f"source{index}" for index in range(1, len(readers) + 1)])
        if len(set(self.names)) != len(self.names) or len(self.names) != len(self.readers):
            raise ValueError("every merged source needs its own name")
        self.conflicts: list[str] = []
        self._colliding: set[str] | None = None

    def colliding_keys(self) -> set[str]:
        """Keys found in more than one source (one cheap labels() pass, done once)."""
        if self._colliding is None:
            seen: set[str] = set()
            colliding: set[str] = set()
            for reader in self.readers:
                keys = {key for key, _ in reader.labels()}
                colliding |= keys & seen
                seen |= keys
            self._colliding = colliding
        return self._colliding

    def __iter__(self) -> Iterator[ReadResult]:
        self.conflicts = []
        by_name: dict[str, tuple[str, str, str]] = {}
        for name, reader in zip(self.names, self.readers, strict=True):
            finder = RecordImages(reader.images)
            own_images = reader.images != self.images
            for item in reader:
                if isinstance(item, ImageRecord):
                    item = self._unique(item, name, finder, own_images)
                    self._compare(item, name, by_name)
                yield item

    def _unique(
        self, record: ImageRecord, name: str, finder: RecordImages, own_images: bool
    ) -> ImageRecord:
        """The record with its key made unique if it collides, and its image located when
        the run's images folder would not find it (its own folder, or a changed key)."""
        collides = record.key in self.colliding_keys()
        if not collides and not own_images:
            return record
        update: dict[str, Any] = {"key": f"{name}/{record.key}"} if collides else {}
        if record.image_uri is None:
            # Not found: left for the writer to report, if it needs the image at all.
            with contextlib.suppress(AnnotationError):
                update["image_uri"] = finder.find(record)
        return record.model_copy(update=update)

    def _compare(
        self, record: ImageRecord, name: str, by_name: dict[str, tuple[str, str, str]]
    ) -> None:
        base = posixpath.basename(record.filename)
        digest = annotation_digest(record)
        first = by_name.setdefault(base, (name, record.key, digest))
        if first[0] != name and first[2] != digest:
            self.conflicts.append(
                f"conflict: image {base!r} is annotated differently in {first[0]} "
                f"({first[1]}) and {name} ({record.key})"
            )

    def parts(self) -> Sequence[Reader]:
        return self.readers

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        colliding = self.colliding_keys()
        for name, reader in zip(self.names, self.readers, strict=True):
            for key, labels in reader.labels():
                yield (f"{name}/{key}" if key in colliding else key), labels

    def class_ids(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        for reader in self.readers:
            for label, ident in reader.class_ids().items():
                ids.setdefault(label, ident)
        return ids

    def declared_label_map(self) -> LabelMap | None:
        """The sources' declared classes merged (ids of the first source kept, the others'
        classes added after them), when every source declares its classes."""
        declared = [reader.declared_label_map() for reader in self.readers]
        if not declared or any(part is None for part in declared):
            return None
        merged = declared[0]
        for part in declared[1:]:
            assert merged is not None and part is not None
            merged = merged.merge(part)
        return merged

    def count_hint(self) -> int | None:
        hints = [reader.count_hint() for reader in self.readers]
        return None if any(hint is None for hint in hints) else sum(h or 0 for h in hints)


def _describe(source: Source) -> str:
    return source if isinstance(source, str) else ",".join(source)


def open_merged(
    sources: Iterable[str | MergeSource],
    *,
    images: str | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> MergedReader:
    """A MergedReader over `sources` (paths, or MergeSource for per-source settings).
    `read_options` go to every source whose reader takes them (e.g. Open Images'
    `class_descriptions`); a MergeSource's own options override them."""
    from annoconv.formats import get_format
    from annoconv.sources import open_reader, source_format

    specs = [given if isinstance(given, MergeSource) else MergeSource(given) for given in sources]
    _check_archives(specs, images)
    readers, names = [], []
    for index, spec in enumerate(specs, 1):
        name = source_format(spec.source, spec.from_format)
        accepted = get_format(name).read_options.model_fields
        options = {key: value for key, value in (read_options or {}).items() if key in accepted}
        reader = open_reader(
            spec.source,
            from_format=name,
            images=spec.images or images,
            read_options={**options, **spec.read_options},
        )
        readers.append(reader)
        names.append(spec.name or f"source{index}")
    if not readers:
        raise ValueError("merge needs at least one source")
    return MergedReader(readers, names, images=images)


def _check_archives(specs: Sequence[MergeSource], images: str | None) -> None:
    """An archive of images is streamed once for the whole run, so it serves every source."""
    from annoconv.io.archives import is_archive

    own = [(index, spec.images) for index, spec in enumerate(specs, 1) if spec.images]
    for index, folder in own:
        if is_archive(folder):
            raise OptionError(
                f"images of source {index}, {folder}: an archive of images is read once for "
                f"the whole run; give it for every source (images={folder})"
            )
    if images is not None and own and is_archive(images):
        raise OptionError(
            f"images {images} is an archive, read for every source; "
            "per-source image folders cannot be added to it"
        )


def merge(
    sources: Iterable[str | MergeSource],
    output: str,
    options: RunOptions | None = None,
    **keywords: Any,
) -> Report:
    """Merge `sources` into one dataset at `output` with one label map; the options are
    those of `convert()` (filters, dedup, split, label map, writer options...), as keywords
    or a `RunOptions`: `images` and `read_options` apply to every source (the options a
    source's reader does not take are not given to it), a MergeSource's own override them.
    Conflicting duplicates across sources are listed in the report's warnings."""
    from annoconv.convert import convert
    from annoconv.plan import check_output_apart

    sources = list(sources)
    read = [s.source if isinstance(s, MergeSource) else s for s in sources]
    # (The sources' formats are inferred later: an output inside a source folder is let be.)
    check_output_apart(read, output, inside=False)
    settings = RunOptions.of(keywords) if options is None else options.replaced(**keywords)
    reader = open_merged(sources, images=settings.images, read_options=settings.read_options)
    report = convert(reader, output, settings.replaced(read_options={}))
    report.warnings.extend(reader.conflicts)
    return report
