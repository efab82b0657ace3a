"""Operations over streams of records: splits (by ratio, stratified, from lists), shard
assignment and sampling. Filters are in `filters`, dedup in `dedup`, statistics in `stats`."""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from annoconv.errors import AnnoconvError
from annoconv.io.fs import (
    decode_line,
    exists,
    is_dir,
    join,
    list_files,
    read_bytes,
    relative_posix,
)

# --- splits and shards ---------------------------------------------------------------------
#
# Both are decided from the set of image keys alone, never from the order records arrive in:
# keys are ranked by a SHA-256 of (seed, key), so the same images give the same assignment
# however the input is listed, and a different seed gives an independent shuffle.


def parse_split(text: str) -> dict[str, float]:
    """`train=0.7,test=0.3` -> {"train": 0.7, "test": 0.3}; fractions must sum to 1."""
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"split {part.strip()!r} is not NAME=FRACTION (e.g. train=0.7)")
        if name in fractions:
            raise ValueError(f"split {name!r} is given twice")
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"split {name!r}: {value.strip()!r} is not a number") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"split {name!r}: fraction {fraction} is not in (0, 1]")
        fractions[name] = fraction
    check_split(fractions)
    return fractions


def check_split(fractions: Mapping[str, float]) -> None:
    if not fractions:
        raise ValueError("a split needs at least one NAME=FRACTION")
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions sum to {total:g}, not 1")


def split_counts(total: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Images per split: floor of each share, the remainder going to the largest fractional
    parts (ties to the split named first), so the counts always add up to `total`."""
    exact = {name: total * fraction for name, fraction in fractions.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(fractions, key=lambda name: -(exact[name] - counts[name]))
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def rank_keys(keys: Iterable[str], seed: int | str = "") -> list[str]:
    """The keys in a pseudo-random order that depends only on the keys and the seed."""
    prefix = f"{seed}\x00".encode()
    return sorted(set(keys), key=lambda key: (hashlib.sha256(prefix + key.encode()).digest(), key))


def assign_splits(keys: Iterable[str], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Each image key's split: exact proportions (see `split_counts`), reproducible by seed."""
    check_split(fractions)
    ranked = rank_keys(keys, seed)
    assignment: dict[str, str] = {}
    start = 0
    for name, count in split_counts(len(ranked), fractions).items():
        assignment.update((key, name) for key in ranked[start : start + count])
        start += count
    return assignment


def assign_shards(keys: Iterable[str], num_shards: int) -> dict[str, int]:
    """Each key's shard: keys dealt round-robin in hash order, so shard sizes differ by at
    most one image and do not depend on the input order."""
    if num_shards < 1:
        raise ValueError(f"the number of shards must be at least 1, got {num_shards}")
    return {key: rank % num_shards for rank, key in enumerate(rank_keys(keys, "shard"))}


def shard_of(key: str, num_shards: int) -> int:
    """A key's shard when the set of keys is not known in advance (hash modulo)."""
    digest = hashlib.sha256(b"shard\x00" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


_T = TypeVar("_T")


def sample_keys(items: Iterable[_T], size: int, seed: int, *, key: Callable[[_T], str]) -> list[_T]:
    """A uniform sample of `size` items in one pass, holding at most `size` of them.

    Each item is ranked by a SHA-256 of (seed, key) and the `size` lowest ranks are kept (a
    bottom-k sketch: every subset of that size is equally likely, as with reservoir sampling,
    and the sample depends only on the seed and the keys, not on their order).
    """
    if size < 0:
        raise ValueError(f"the sample size must be >= 0, got {size}")
    prefix = f"{seed}\x00".encode()

    def rank(item: _T) -> tuple[bytes, str]:
        name = key(item)
        return hashlib.sha256(prefix + name.encode()).digest(), name

    return heapq.nsmallest(size, items, key=rank)


def assign_stratified(
    labels: Mapping[str, Iterable[str]], fractions: Mapping[str, float], seed: int
) -> dict[str, str]:
    """Like `assign_splits` (the same exact split sizes, reproducible by seed, independent
    of input order), but each class is spread over the splits in proportion, and every class
    held by at least as many images as there are splits appears in every split.

    Classes are placed rarest first: each image of the class not placed yet goes to the
    split that most lacks that class and still has room; images without classes fill what
    room is left.
    """
    check_split(fractions)
    ranked = rank_keys(labels, seed)
    room = split_counts(len(ranked), fractions)
    holders: dict[str, list[str]] = {}
    for key in ranked:
        for label in sorted(set(labels[key])):
            holders.setdefault(label, []).append(key)
    assignment: dict[str, str] = {}
    for label in sorted(holders, key=lambda name: (len(holders[name]), name)):
        keys = holders[label]
        lacking = _class_targets(len(keys), fractions)
        for key in keys:
            if key in assignment:
                lacking[assignment[key]] -= 1
        for key in keys:
            if key not in assignment:
                open_splits = [name for name in fractions if room[name] > 0]
                name = max(open_splits, key=lambda split: (lacking[split], room[split]))
                assignment[key] = name
                lacking[name] -= 1
                room[name] -= 1
    for key in ranked:
        if key not in assignment:
            name = max(fractions, key=lambda split: room[split])
            assignment[key] = name
            room[name] -= 1
    return assignment


def _class_targets(count: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """How many of a class's `count` images each split should get: its share, but at least
    one in every split when there are enough images."""
    targets = split_counts(count, fractions)
    if count >= len(fractions):
        for name in fractions:
            if targets[name] == 0:
                targets[max(targets, key=lambda other: targets[other])] -= 1
                targets[name] = 1
    return targets


# --- splits from given lists -------------------------------------------------------------

#: The files of a VOC `ImageSets/Main` folder that name a split (trainval is train + val).
VOC_IMAGESETS = ("train", "val", "test")


def read_split_lists(lists: Mapping[str, str | Iterable[str]]) -> dict[str, str]:
    """{entry: split} from {split: file path or entries}. A file has one image id, key or
    stem per line (the first word: VOC's per-class lists add a column); blank lines and
    `#` comments are skipped. An entry listed under two splits is an error."""
    split_of: dict[str, str] = {}
    for name, listing in lists.items():
        if isinstance(listing, str):
            raw = read_bytes(listing).splitlines()
            entries = [decode_line(listing, line, number) for number, line in enumerate(raw, 1)]
        else:
            entries = list(listing)
        for entry in entries:
            words = entry.split("#", 1)[0].split()
            if not words:
                continue
            other = split_of.setdefault(words[0], name)
            if other != name:
                raise AnnoconvError(f"image {words[0]!r} is listed in both {other!r} and {name!r}")
    return split_of


def voc_imagesets(folder: str) -> dict[str, str]:
    """{split: list file} of a VOC dataset: `ImageSets/Main/{train,val,test}.txt` under
    `folder` (the VOC root, its ImageSets folder, or the Main folder itself)."""
    candidates = (join(folder, "ImageSets", "Main"), join(folder, "Main"), folder)
    for candidate in candidates:
        found = {
            name: join(candidate, f"{name}.txt")
            for name in VOC_IMAGESETS
            if exists(join(candidate, f"{name}.txt"))
        }
        if found:
            return found
    message = f"{folder}: no ImageSets/Main/{{train,val,test}}.txt found"
    for candidate in candidates:
        lists = _list_files_in(candidate)
        if lists:
            # CVAT's export names its lists after the task's subsets (default.txt, Train.txt).
            shown = ", ".join(lists[:8]) + (", ..." if len(lists) > 8 else "")
            message += (
                f"; {candidate} has {shown}: name the splits' lists with "
                "--split-lists NAME=FILE,..."
            )
            break
    raise AnnoconvError(message)


def _list_files_in(folder: str) -> list[str]:
    """The names of the `.txt` files directly in `folder` (none when it is no folder)."""
    if not is_dir(folder):
        return []
    names = (relative_posix(path, folder) for path in list_files(folder, (".txt",)))
    return sorted(name for name in names if "/" not in name)


def assign_from_lists(keys: Iterable[str], split_of: Mapping[str, str]) -> dict[str, str]:
    """Each key's split by the lists: a list entry matches a key itself, its file name, or
    its file name without extension (`000005` matches `VOC2007/Annotations/000005.xml`).
    Keys matching no entry are left out."""
    assignment: dict[str, str] = {}
    for key in keys:
        base = key.rsplit("/", 1)[-1]
        for candidate in (key, base, base.rsplit(".", 1)[0]):
            name = split_of.get(candidate)
            if name is not None:
                assignment[key] = name
                break
    return assignment
