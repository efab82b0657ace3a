"""Image bytes handed to the writer together with each record, where that pays.

Two sources, both wired in by `feed_images()`:

* **an archive** given as the images (``--images uspto.tar``): the (small) records are
  settled first, then the archive streams by once and every member that is some record's
  image is written with it at once (see `annoconv.io.archives`). Records therefore reach the
  writer in archive order; records whose image never passes are reported at the end. An
  image the archive holds twice shows only after its record was written: the run then
  starts over once (`AmbiguousImages`), each such record taking the member that matches it
  best (by the folders of its recorded path), or left out when several match equally well
  (under ``on_error="skip"``; under "fail" that ends the run).
* **remote images** (S3 and other object stores): a bounded thread pool fetches the bytes of
  the next records while the writer encodes the current one, keeping their order.

The bytes travel beside the record, not in it: just before a record is yielded its bytes are
offered to an `ImageFeed`, and the `FedWriter` wrapping the real writer takes them when
`run()` hands it that record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial

from annoconv.errors import AnnoconvError, AnnotationError
from annoconv.formats.base import BadItem, Reader, ReadResult, Source, WrappingWriter, Writer
from annoconv.io.archives import (
    ArchiveError,
    MemberMatcher,
    is_archive,
    iter_members,
)
from annoconv.io.fs import is_remote
from annoconv.io.images import (
    RecordImages,
    image_info_of_bytes,
    image_stem,
    read_image_bytes,
)
from annoconv.io.pool import prefetch
from annoconv.report import ErrorPolicy
from annoconv.schema import PIXEL, ImageRecord, with_image_size


class ImageFeed:
    """The bytes of the one record on its way from the item stream to the writer."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._data: bytes | None = None

    def offer(self, key: str, data: bytes) -> None:
        self._key, self._data = key, data

    def take(self, key: str) -> bytes | None:
        data = self._data if key == self._key else None
        self._key = self._data = None
        return data


class FedWriter(WrappingWriter):
    """Wraps a writer that embeds images, passing it each record's bytes from the feed."""

    def __init__(self, inner: Writer, feed: ImageFeed) -> None:
        super().__init__(inner)
        self.feed = feed

    def write(self, record: ImageRecord) -> None:
        data = self.feed.take(record.key)
        if data is None:
            self.inner.write(record)
        else:
            self.inner.write(record, image_data=data)  # type: ignore[call-arg]

    def prepare_job(self, record: ImageRecord) -> Callable[[], object]:
        # The bytes are on their way now; the job runs later, on another thread.
        return partial(self.inner.prepare, record, self.feed.take(record.key))

    def write_prepared(self, record: ImageRecord, prepared: object) -> None:
        self.inner.write_prepared(record, prepared)


def feed_images(
    items: Iterable[ReadResult],
    writer: Writer,
    images: str | None,
    source: Source | Reader,
    *,
    on_error: ErrorPolicy = "fail",
    choices: ArchiveChoices | None = None,
) -> tuple[Iterable[ReadResult], Writer]:
    """The items and writer to run: with image bytes fed from an archive or prefetched from
    remote storage when the writer embeds images (or, for an archive, needs pixel sizes).
    `on_error` and `choices` reach `archive_items`."""
    embeds = writer.capabilities.embeds_images
    if images is not None and is_archive(images):
        if not embeds and writer.capabilities.coords != PIXEL:
            return items, writer
        feed = ImageFeed()
        archive = archive_items(
            items, images, feed, embed=embeds, on_error=on_error, choices=choices
        )
        return archive, FedWriter(writer, feed) if embeds else writer
    if embeds and any(is_remote(uri) for uri in [images or "", *_paths_of(source)]):
        feed = ImageFeed()
        fetched = prefetch_items(items, images, feed)
        return fetched, FedWriter(writer, feed)
    return items, writer


def _paths_of(source: Source | Reader) -> list[str]:
    """The annotation paths a source names (a Reader's own source, if it is one)."""
    if isinstance(source, Reader):
        source = source.source
    if isinstance(source, str):
        return [source]
    return [path for path in source if isinstance(path, str)]


@dataclass(frozen=True)
class ArchiveChoices:
    """What a first pass over an archive settled for the second: the records whose image
    several members match equally well (their errors, by key), and the member each record
    whose first match was not its best must take (by key)."""

    ambiguous: Mapping[str, AnnotationError] = field(default_factory=dict)
    decided: Mapping[str, str] = field(default_factory=dict)


class AmbiguousImages(ArchiveError):
    """Raised at the end of a pass over an archive in which a member matched a record as
    well as, or better than, the member already written with it (see `MemberMatcher`): the
    run starts over, giving `choices` to `archive_items`."""

    def __init__(self, archive: str, choices: ArchiveChoices) -> None:
        super().__init__(
            f"{archive}: {len(choices.ambiguous)} annotation(s) match several members equally "
            f"well, {len(choices.decided)} a later member better than the first"
        )
        self.choices = choices


def archive_items(
    items: Iterable[ReadResult],
    archive: str,
    feed: ImageFeed,
    *,
    embed: bool,
    on_error: ErrorPolicy = "fail",
    choices: ArchiveChoices | None = None,
) -> Iterator[ReadResult]:
    """The items, records in archive order once their member has passed (its bytes offered
    to `feed` when `embed`, else a missing pixel size read from its header), then a BadItem
    for every record whose image is not in the archive.

    A member that matches a record as well as (or better than) the one already written with
    it shows after that record went out (see `MemberMatcher`). The rest of the archive is
    then matched by name only, and the matcher decides: each such record's best member, or
    its ambiguity when several match equally well. Under ``on_error="fail"`` an ambiguity
    ends the run (the first found); otherwise `AmbiguousImages` is raised with the
    `choices`, and the run starts over with them: each ambiguous record is a BadItem in its
    place, each decided one takes its member.
    """
    records: list[ImageRecord | None] = []
    for item in items:
        if isinstance(item, ImageRecord):
            records.append(item)
        else:
            yield item
    if not embed and all(record is not None and record.has_size for record in records):
        yield from (record for record in records if record is not None)
        return  # nothing to take from the archive
    present = [record for record in records if record is not None]
    keys = [record.key for record in present]
    known = dict(choices.ambiguous) if choices is not None else {}
    decided = dict(choices.decided) if choices is not None else {}
    matcher = MemberMatcher(
        [record.filename for record in present],
        [record.source or record.key for record in present],
        [record.path for record in present],
        {index: decided[key] for index, key in enumerate(keys) if key in decided},
    )
    wanted = _Wanted(matcher)
    passed_over: dict[str, str] = {}
    for member in iter_members(archive, wanted, on_skip=passed_over.__setitem__):
        seen = len(matcher.contested)
        chosen = matcher.match(member.name)
        new = [i for i in list(matcher.contested)[seen:] if keys[i] not in known]
        if new and choices is not None:  # the archive changed since the first pass
            raise matcher.ambiguity(new[0])
        if new:
            wanted.names_only = True  # what went to the writer is void: names will do
            continue
        for index in chosen:
            record = records[index]
            assert record is not None
            records[index] = None  # written: let it go
            if record.key in known:
                yield BadItem(known[record.key], boxes=len(record.objects))
            else:
                yield _with_member(record, member.uri, member.data, feed, embed)
    if wanted.names_only:
        settled, ambiguous = matcher.decide()
        if ambiguous and on_error == "fail":
            raise next(iter(ambiguous.values()))
        found = ArchiveChoices(
            {keys[index]: error for index, error in ambiguous.items()},
            {keys[index]: member for index, member in settled.items()},
        )
        raise AmbiguousImages(archive, found)
    for index in matcher.unmatched():
        record = records[index]
        assert record is not None
        yield BadItem(_not_in_archive(record, archive, passed_over), boxes=len(record.objects))


class _Wanted:
    """Which members `iter_members` reads: those some record wants, or none once only their
    names matter (then each name goes to the matcher as it passes)."""

    def __init__(self, matcher: MemberMatcher) -> None:
        self.matcher = matcher
        self.names_only = False

    def __call__(self, name: str) -> bool:
        if not self.matcher.wants(name):
            return False
        if self.names_only:
            self.matcher.match(name)
            return False
        return True


def _with_member(
    record: ImageRecord, uri: str, data: bytes, feed: ImageFeed, embed: bool
) -> ReadResult:
    # An embedding writer reads the size from the bytes itself (and checks the boxes fit).
    if not embed and not record.has_size:
        try:
            info = image_info_of_bytes(data, uri)
        except AnnotationError as error:
            problem = f"image size is unknown and image {uri} cannot be read: {error.message}"
            return BadItem(
                AnnotationError(record.source or record.key, problem), boxes=len(record.objects)
            )
        try:
            record = with_image_size(record, info.width, info.height, record.depth or info.depth)
        except AnnotationError as error:
            return BadItem(error, boxes=len(record.objects))
    if embed:
        feed.offer(record.key, data)
    return record.model_copy(update={"image_uri": uri})


def _not_in_archive(
    record: ImageRecord, archive: str, passed_over: dict[str, str]
) -> AnnotationError:
    reasons = [
        f"{name} was passed over: {why}"
        for name, why in passed_over.items()
        if image_stem(name) == image_stem(record.filename)
    ]
    detail = (
        f" ({'; '.join(reasons)})"
        if reasons
        else " (matched by path and by stem, any image extension)"
    )
    return AnnotationError(
        record.source or record.key, f"image {record.filename!r} not found in {archive}{detail}"
    )


def prefetch_items(
    items: Iterable[ReadResult],
    images: str | None,
    feed: ImageFeed,
    *,
    threads: int = 8,
    window: int = 32,
) -> Iterator[ReadResult]:
    """The items in their order, each record's image bytes fetched ahead by a pool of
    `threads` (at most `window` records in flight) and offered to `feed` as it is yielded.
    A fetch that fails offers nothing: the writer then looks for the image itself and
    reports the problem against the record."""
    finder = RecordImages(images)

    def job(item: ReadResult) -> Callable[[], tuple[str, bytes]] | None:
        return partial(_fetch, finder, item) if isinstance(item, ImageRecord) else None

    for item, future in prefetch(items, job, threads=threads, window=window):
        yield _handed_over(item, future, feed)


def _fetch(finder: RecordImages, record: ImageRecord) -> tuple[str, bytes]:
    uri = finder.find(record)
    return uri, read_image_bytes(uri, record.source or record.key)


def _handed_over(
    item: ReadResult, job: Future[tuple[str, bytes]] | None, feed: ImageFeed
) -> ReadResult:
    if job is None or not isinstance(item, ImageRecord):
        return item
    try:
        uri, data = job.result()
    except (AnnoconvError, OSError):
        return item
    feed.offer(item.key, data)
    return item.model_copy(update={"image_uri": uri})
