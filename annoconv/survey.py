"""The survey: the first pass over a source, keeping only small per-image facts (classes,
keys with weights, labels for a stratified split, image hashes for dedup) from which the plan
settles the label map, the sample, the splits and the shards before anything is written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from annoconv.dedup import Dedup, ImageHashes
from annoconv.filters import ClassSelection, Transform, apply_all
from annoconv.formats import Reader
from annoconv.ops import sample_keys
from annoconv.schema import ImageRecord


def class_counts(reader: Reader) -> Counter[str]:
    """Boxes per class over the readable records, in first-seen order (bad items are ignored
    here; the conversion pass reports them)."""
    return survey(reader).counts


@dataclass
class Survey:
    """What a first pass over the source learns: classes, and the image keys with weights."""

    counts: Counter[str] = field(default_factory=Counter)
    weights: dict[str, int] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)
    #: Each image's split as the source gives it (None: it gives none), when asked for.
    splits: dict[str, str | None] = field(default_factory=dict)
    hashes: ImageHashes | None = None
    dedup: Dedup | None = None


def survey(
    reader: Reader,
    weigh: Callable[[ImageRecord], int] | None = None,
    *,
    sample: int | None = None,
    seed: int = 0,
    selection: ClassSelection | None = None,
    transforms: Sequence[Transform] = (),
    dedup: bool = False,
    keep_labels: bool = False,
    keep_splits: bool = False,
    label_pairs: Callable[[], Iterable[tuple[str, list[str]]] | None] | None = None,
) -> Survey:
    """One pass over the readable records, keeping only small per-image facts, as the
    `transforms` leave them; with `dedup`, every image is hashed and only the first of each
    set of duplicates is kept; with `sample`, only a uniform sample of that many images
    (see `ops.sample_keys`); with `keep_labels`, each image's labels are kept too, with
    `keep_splits` the split the source gives it.
    `label_pairs` gives what `reader.labels()` would, when an engine reads them in parallel."""
    steps = [*([selection] if selection is not None else []), *transforms]
    result = Survey()
    entries: Iterable[tuple[str, list[str], int]]
    if weigh is None and not dedup and not keep_splits and all(step.on_labels for step in steps):
        pairs = label_pairs() if label_pairs is not None else None
        if pairs is None:
            pairs = reader.labels()
        entries = ((key, labels, 1) for key, labels in pairs)
        for step in steps:
            entries = step.survey(entries)
    else:
        records: Iterable[ImageRecord] = (
            item for item in apply_all(steps, reader) if isinstance(item, ImageRecord)
        )
        if dedup:
            result.hashes = ImageHashes()
            records = result.hashes.scan(records, reader.images)
        if keep_splits:
            records = _noting_splits(records, result.splits)
        entries = (
            (item.key, [obj.label for obj in item.objects], weigh(item) if weigh else 1)
            for item in records
        )
    if result.hashes is not None:
        entries = list(entries)  # every image hashed before duplicates can be told apart
        result.dedup = Dedup(result.hashes)
        entries = [entry for entry in entries if entry[0] not in result.dedup.dropped]
    if sample is not None:
        entries = sample_keys(entries, sample, seed, key=lambda entry: entry[0])
    for key, labels, weight in entries:
        result.counts.update(labels)
        result.weights[key] = weight
        if keep_labels:
            result.labels[key] = labels
    return result


def _noting_splits(
    records: Iterable[ImageRecord], splits: dict[str, str | None]
) -> Iterator[ImageRecord]:
    for record in records:
        splits[record.key] = record.split
        yield record
