"""Duplicate images: byte-identical files found by the SHA-256 of their bytes.

The first pass over the source hashes every image (found like any other image lookup, through
`RecordImages`) on a bounded thread pool and keeps one small fact per image: its hash and a
digest of its annotations. `find_duplicates()` then groups the keys by hash; in each group the
smallest key is kept (an order that does not depend on how the source lists its files) and
the others are dropped by `Dedup` in the writing pass, with a reason, while the groups go into
the run's report (a group whose annotations differ is marked conflicting).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial

from annoconv.errors import AnnotationError
from annoconv.filters import Transform
from annoconv.formats import BadItem, Dropped, ReadResult
from annoconv.io.images import RecordImages, open_image
from annoconv.io.pool import prefetch
from annoconv.report import DuplicateGroup, Report
from annoconv.schema import NORMALIZED, ImageRecord

DUPLICATE_REASON = "duplicate image (same SHA-256 as a kept one)"
_CHUNK = 1 << 20


def file_sha256(uri: str) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open_image(uri) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise AnnotationError(uri, "image file not found") from None
    except OSError as error:
        raise AnnotationError(uri, f"cannot read the image: {error}") from None
    return digest.hexdigest()


def annotation_digest(record: ImageRecord) -> str:
    """A digest of the record's boxes (labels and coordinates, normalized when the size is
    known, rounded to 1e-4), equal for two records annotating an image the same way."""
    if record.coords != NORMALIZED and record.has_size:
        record = record.in_space(NORMALIZED)
    boxes = sorted(
        (obj.label, *(round(value, 4) for value in (obj.xmin, obj.ymin, obj.xmax, obj.ymax)))
        for obj in record.objects
    )
    return hashlib.sha256(repr(boxes).encode()).hexdigest()[:16]


@dataclass
class ImageHashes:
    """What the first pass learns for dedup: each key's image hash and annotation digest,
    and the images that could not be hashed."""

    hashes: dict[str, tuple[str, str]] = field(default_factory=dict)
    failed: dict[str, AnnotationError] = field(default_factory=dict)

    def scan(
        self,
        records: Iterable[ImageRecord],
        images: str | None,
        *,
        threads: int = 8,
    ) -> Iterator[ImageRecord]:
        """The records, unchanged, hashing each one's image on the way (a record that
        already carries its image's SHA-256, as TFRecord's do, is taken at its word)."""
        finder = RecordImages(images)

        def job(record: ImageRecord) -> Callable[[], str] | None:
            return None if record.sha256 else partial(_hash, finder, record)

        for record, future in prefetch(records, job, threads=threads):
            try:
                sha = future.result() if future is not None else str(record.sha256)
                self.hashes[record.key] = (sha, annotation_digest(record))
            except AnnotationError as error:
                source = record.source or record.key
                self.failed[record.key] = AnnotationError(
                    source, f"cannot hash the image for --dedup: {error}"
                )
            yield record


def _hash(finder: RecordImages, record: ImageRecord) -> str:
    return file_sha256(finder.find(record))


def find_duplicates(hashes: Mapping[str, tuple[str, str]]) -> list[DuplicateGroup]:
    """Groups of keys whose images hash the same, each sorted (the first is kept), ordered
    by their first key."""
    by_hash: dict[str, list[str]] = {}
    for key, (sha, _) in hashes.items():
        by_hash.setdefault(sha, []).append(key)
    groups = []
    for sha, keys in by_hash.items():
        if len(keys) > 1:
            keys.sort()
            digests = {hashes[key][1] for key in keys}
            groups.append(DuplicateGroup(sha, keys, conflicting=len(digests) > 1))
    return sorted(groups, key=lambda group: group.keys[0])


class Dedup(Transform):
    """The writing pass of dedup: drops the duplicates the first pass found, turns the
    images that could not be hashed into BadItems, and gives the records it keeps their
    image's SHA-256 (the `sha256` field, a column of the Parquet output)."""

    def __init__(self, hashes: ImageHashes) -> None:
        self.groups = find_duplicates(hashes.hashes)
        self.dropped = {key for group in self.groups for key in group.keys[1:]}
        self.failed = hashes.failed
        self.sha256 = {key: sha for key, (sha, _digest) in hashes.hashes.items()}

    def apply(self, items: Iterable[ReadResult]) -> Iterator[ReadResult]:
        for item in items:
            if not isinstance(item, ImageRecord):
                yield item
            elif item.key in self.dropped:
                yield Dropped(DUPLICATE_REASON, images=1, boxes=len(item.objects))
            elif item.key in self.failed:
                yield BadItem(self.failed[item.key], images=1, boxes=len(item.objects))
            elif item.sha256 is None and item.key in self.sha256:
                yield item.model_copy(update={"sha256": self.sha256[item.key]})
            else:
                yield item

    def finish(self, report: Report) -> None:
        report.duplicates.extend(self.groups)
