"""Image bytes handed to the writer together with each record, where that pays.

Two sources, both wired in by `feed_images()`:

* **an archive** given as the images (``--images uspto.tar``): the (small) records are
  settled first, then the archive streams by once and every member that is some record's
  image is written with it at once (see `annoconv.io.archives`). Records therefore reach the
  writer in archive order; records whose image never passes are reported at the end.
* **remote images** (S3 and other object stores): a bounded thread pool fetches the bytes of
  the next records while the writer encodes the current one, keeping their order.

The bytes travel beside the record, not in it: just before a record is yielded its bytes are
offered to an `ImageFeed`, and the `FedWriter` wrapping the real writer takes them when
`run()` hands it that record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from functools import partial
from typing import Any

from annoconv.errors import AnnoconvError, AnnotationError
from annoconv.formats.base import BadItem, Reader, ReadResult, Source, Writer
from annoconv.io.archives import MemberMatcher, is_archive, iter_members
from annoconv.io.fs import is_remote, read_bytes
from annoconv.io.images import RecordImages, image_info_of_bytes, image_stem
from annoconv.io.pool import prefetch
from annoconv.report import OutputFile
from annoconv.schema import PIXEL, ImageRecord


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


class FedWriter(Writer):
    """Wraps a writer that embeds images, passing it each record's bytes from the feed."""

    def __init__(self, inner: Writer, feed: ImageFeed) -> None:
        super().__init__(inner.destination, label_map=inner.label_map, images=inner.images)
        self.coords = inner.coords  # type: ignore[misc]
        self.inner = inner
        self.feed = feed

    def write(self, record: ImageRecord) -> None:
        data = self.feed.take(record.key)
        if data is None:
            self.inner.write(record)
        else:
            self.inner.write(record, image_data=data)  # type: ignore[call-arg]

    def close(self) -> list[OutputFile]:
        outputs = self.inner.close()
        self.warnings = self.inner.warnings
        return outputs

    def abort(self) -> None:
        self.inner.abort()


def embeds_images(writer: Writer) -> bool:
    """Whether the writer's `write()` takes the image bytes (`image_data=`)."""
    return bool(getattr(writer, "embeds_images", False))


def feed_images(
    items: Iterable[ReadResult], writer: Writer, images: str | None, source: Source | Reader
) -> tuple[Iterable[ReadResult], Writer]:
    """The items and writer to run: with image bytes fed from an archive or prefetched from
    remote storage when the writer embeds images (or, for an archive, needs pixel sizes)."""
    embeds = embeds_images(writer)
    if images is not None and is_archive(images):
        if not embeds and writer.coords != PIXEL:
            return items, writer
        feed = ImageFeed()
        archive = archive_items(items, images, feed, embed=embeds)
        return archive, FedWriter(writer, feed) if embeds else writer
    if embeds and any(is_remote(uri) for uri in [images or "", *_paths_of(source)]):
        feed = ImageFeed()
        return prefetch_items(items, images, feed), FedWriter(writer, feed)
    return items, writer


def _paths_of(source: Source | Reader) -> list[str]:
    """The annotation paths a source names (a Reader's own source, if it is one)."""
    if isinstance(source, Reader):
        source = source.source
    if isinstance(source, str):
        return [source]
    return [path for path in source if isinstance(path, str)]


def archive_items(
    items: Iterable[ReadResult], archive: str, feed: ImageFeed, *, embed: bool
) -> Iterator[ReadResult]:
    """The items, records in archive order once their member has passed (its bytes offered
    to `feed` when `embed`, else a missing pixel size read from its header), then a BadItem
    for every record whose image is not in the archive."""
    records: list[ImageRecord | None] = []
    for item in items:
        if isinstance(item, ImageRecord):
            records.append(item)
        else:
            yield item
    if not embed and all(record is not None and record.has_size for record in records):
        yield from (record for record in records if record is not None)
        return  # nothing to take from the archive
    matcher = MemberMatcher(
        [record.filename for record in records if record is not None],
        [record.source or record.key for record in records if record is not None],
    )
    passed_over: dict[str, str] = {}
    for member in iter_members(archive, matcher.wants, on_skip=passed_over.__setitem__):
        for index in matcher.match(member.name):
            record = records[index]
            assert record is not None
            records[index] = None  # written: let it go
            yield _with_member(record, member.uri, member.data, feed, embed)
    for index in matcher.unmatched():
        record = records[index]
        assert record is not None
        yield BadItem(_not_in_archive(record, archive, passed_over), boxes=len(record.objects))


def _with_member(
    record: ImageRecord, uri: str, data: bytes, feed: ImageFeed, embed: bool
) -> ReadResult:
    update: dict[str, Any] = {"image_uri": uri}
    # An embedding writer reads the size from the bytes itself (and checks the boxes fit).
    if not embed and not record.has_size:
        try:
            info = image_info_of_bytes(data, uri)
        except AnnotationError as error:
            problem = f"image size is unknown and image {uri} cannot be read: {error.message}"
            return BadItem(
                AnnotationError(record.source or record.key, problem), boxes=len(record.objects)
            )
        update.update(width=info.width, height=info.height, depth=record.depth or info.depth)
    if embed:
        feed.offer(record.key, data)
    return record.model_copy(update=update)


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
    return uri, read_bytes(uri)


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
