"""Images a split list names that have no annotation.

A VOC dataset's ``ImageSets/Main/train.txt`` lists every image of the split; an image listed
there without an XML in ``Annotations/`` is an unannotated (negative) image, as Datumaro reads
it. `find_listed` looks for such images (beside the annotations, then where `--images` holds
them, as `io.images.ImageLocator` looks for any annotation's image): each one found becomes a
record without boxes in its list's split; those with neither an annotation nor an image are
counted as left out, per list, and named in a warning — never silently dropped.

Only readers of one file per image (`Reader.image_files()`, VOC) are checked: their keys are
the whole dataset, so an entry no key matches has no annotation.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from annoconv.errors import AnnoconvError
from annoconv.formats.base import Dropped, Reader, ReadResult
from annoconv.io.fs import is_remote, join, relative_posix
from annoconv.io.images import ImageLocator
from annoconv.labelmap import LabelMap
from annoconv.schema import PIXEL, ImageRecord, make_record

#: How `image_files()` names what this module adds (no real file has such a name).
_LISTED = "listed:"
_MISSING = _LISTED + "(not found)"
#: How many entries a warning names.
NAMED = 10


@dataclass(frozen=True)
class Listed:
    """What the split lists name beyond the annotations: negative images found (records,
    each with its split) and the entries found nowhere (left out, with the warnings)."""

    records: tuple[ImageRecord, ...] = ()
    splits: Mapping[str, str] = field(default_factory=dict)
    dropped: tuple[Dropped, ...] = ()
    notes: tuple[str, ...] = ()


def find_listed(
    reader: Reader,
    split_of: Mapping[str, str],
    lists: Mapping[str, str | Sequence[str]],
    images: str | None,
    archive: str | None,
) -> Listed:
    """The entries of `split_of` ({entry: split}, from `lists`) that no annotation of
    `reader` matches (as `ops.assign_from_lists` matches: key, file name, or stem), looked
    up as images under the annotations folder and `images`. An archive of images is not
    searched up front: its entries are reported as not found."""
    files = reader.image_files()
    if files is None:
        return Listed()
    matched: set[str] = set()
    for key, _uri in files:
        base = key.rsplit("/", 1)[-1]
        matched.update((key, base, base.rsplit(".", 1)[0]))
    unmatched = [entry for entry in split_of if entry not in matched]
    if not unmatched:
        return Listed()
    root = _annotations_root(reader, files)
    locator = ImageLocator(images, root)
    records: list[ImageRecord] = []
    splits: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    for entry in unmatched:
        found = None if archive else locator.find(join(root, f"{entry}.xml"), entry)
        list_name = _list_name(lists, split_of[entry])
        if found is None:
            missing.setdefault(list_name, []).append(entry)
            continue
        key = _key(found, images, root)
        records.append(
            make_record(list_name, key=key, filename=key, coords=PIXEL, objects=[], image_uri=found)
        )
        splits[key] = split_of[entry]
    where = f"in {archive} (not searched up front)" if archive else "beside the annotations"
    if images and not archive:
        where += f" or under {images}"
    dropped = tuple(
        Dropped(f"listed in {name} without an annotation or an image", images=len(entries))
        for name, entries in missing.items()
    )
    notes = tuple(
        f"{len(entries)} image(s) listed in {name} have no annotation and no image file "
        f"{where}: {', '.join(entries[:NAMED])}{' ...' if len(entries) > NAMED else ''}"
        for name, entries in missing.items()
    )
    return Listed(tuple(records), splits, dropped, notes)


def _annotations_root(reader: Reader, files: Sequence[tuple[str, str]]) -> str:
    """The folder the reader's keys are relative to."""
    for key, uri in files:
        cut = len(uri) - len(key) - 1
        if cut > 0 and uri.replace("\\", "/").endswith("/" + key):
            return uri[:cut]
    if isinstance(reader.source, str):
        return reader.source
    raise AnnoconvError("split lists: cannot tell where the annotations are")


def _list_name(lists: Mapping[str, str | Sequence[str]], split: str) -> str:
    listing = lists.get(split)
    return listing if isinstance(listing, str) else f"the {split!r} split list"


def _key(found: str, images: str | None, root: str) -> str:
    """A negative image's key: its path below the images folder (or the annotations')."""
    for base in (images, root):
        if base is None or is_remote(base) != is_remote(found):
            continue
        try:
            relative = relative_posix(found, base)
        except ValueError:
            continue
        if not relative.startswith("../"):
            return relative
    return posixpath.basename(found.replace("\\", "/"))


class WithListedImages(Reader):
    """A reader, then the records and counts `find_listed` found (see the module). Hands
    them out with its files, so that an engine's tasks each get their own."""

    def __init__(self, inner: Reader, listed: Listed) -> None:
        super().__init__(inner.source, images=inner.images)
        self.inner = inner
        self.listed = listed

    def __iter__(self) -> Iterator[ReadResult]:
        yield from self.inner
        yield from self.listed.records
        yield from self.listed.dropped

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        yield from self.inner.labels()
        for record in self.listed.records:
            yield record.key, []

    def class_ids(self) -> dict[str, str]:
        return self.inner.class_ids()

    def declared_label_map(self) -> LabelMap | None:
        return self.inner.declared_label_map()

    def parts(self) -> Sequence[Reader]:
        return self.inner.parts()

    def count_hint(self) -> int | None:
        count = self.inner.count_hint()
        added = len(self.listed.records) + len(self.listed.dropped)
        return None if count is None else count + added

    def image_files(self) -> list[tuple[str, str]] | None:
        files = self.inner.image_files()
        if files is None:
            return None
        files = [*files, *((r.key, _LISTED + r.key) for r in self.listed.records)]
        if self.listed.dropped:
            files.append((_MISSING, _MISSING))
        return files

    def only_files(self, files: Sequence[str]) -> Reader:
        wanted = set(files)
        inner = self.inner.only_files([uri for uri in files if not uri.startswith(_LISTED)])
        records = tuple(r for r in self.listed.records if _LISTED + r.key in wanted)
        dropped = self.listed.dropped if _MISSING in wanted else ()
        return WithListedImages(inner, Listed(records, self.listed.splits, dropped))
