"""Splits and shard assignment: exact proportions, reproducible, independent of input order."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from factories import labelimg_xml, write
from hypothesis import given
from hypothesis import strategies as st

from annoconv import convert
from annoconv.convert import split_destination
from annoconv.ops import assign_shards, assign_splits, parse_split, split_counts


def test_parse_split() -> None:
    assert parse_split("train=0.7,test=0.3") == {"train": 0.7, "test": 0.3}
    assert parse_split(" train = 0.8 , val=0.1,test=0.1") == {"train": 0.8, "val": 0.1, "test": 0.1}
    for bad, message in [
        ("train=0.7", "sum to 0.7, not 1"),
        ("train=0.7,train=0.3", "'train' is given twice"),
        ("train", "is not NAME=FRACTION"),
        ("train=x,test=1", "'x' is not a number"),
        ("train=0,test=1", "not in (0, 1]"),
    ]:
        with pytest.raises(ValueError) as info:
            parse_split(bad)
        assert message in str(info.value)


@given(st.integers(0, 10_000), st.sampled_from([(0.7, 0.3), (0.8, 0.2), (0.5, 0.25, 0.25)]))
def test_split_counts_add_up_and_follow_the_fractions(
    total: int, shares: tuple[float, ...]
) -> None:
    fractions = {f"s{i}": share for i, share in enumerate(shares)}
    counts = split_counts(total, fractions)
    assert sum(counts.values()) == total
    for name, share in fractions.items():
        assert abs(counts[name] - total * share) < 1


def test_splits_are_exact_reproducible_and_order_independent() -> None:
    keys = [f"patent{i}/page.xml" for i in range(500)]
    fractions = {"train": 0.7, "test": 0.3}
    first = assign_splits(keys, fractions, seed=1)
    assert Counter(first.values()) == {"train": 350, "test": 150}
    assert assign_splits(reversed(keys), fractions, seed=1) == first
    other = assign_splits(keys, fractions, seed=2)
    assert other != first and Counter(other.values()) == {"train": 350, "test": 150}


def test_shards_are_even_and_order_independent() -> None:
    keys = [f"img{i}" for i in range(1003)]
    shards = assign_shards(keys, 10)
    assert sorted(Counter(shards.values()).values()) == [100] * 7 + [101] * 3
    assert assign_shards(reversed(keys), 10) == shards
    with pytest.raises(ValueError, match="at least 1"):
        assign_shards(keys, 0)


def test_split_destination() -> None:
    assert split_destination("out/uspto.record", "train") == "out/uspto-train.record"
    assert split_destination("boxes.csv", "test") == "boxes-test.csv"
    assert split_destination("s3://b/x/data", "val") == "s3://b/x/data-val"


def test_csv_split_keeps_each_image_whole(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    for i in range(10):
        boxes = [("a", 1, 1, 5, 5), ("b", 2, 2, 6, 6)]
        write(ann / f"{i}.xml", labelimg_xml(f"{i}.jpg", 10, 10, boxes))
    report = convert(str(ann), str(tmp_path / "boxes.csv"), split="train=0.7,test=0.3", seed=3)
    train = (tmp_path / "boxes-train.csv").read_text(encoding="utf-8").splitlines()[1:]
    test = (tmp_path / "boxes-test.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert (len(train), len(test)) == (14, 6)
    train_images = {row.split(",")[0] for row in train}
    test_images = {row.split(",")[0] for row in test}
    assert not train_images & test_images and len(train_images | test_images) == 10
    assert report.images_written == 10 and report.boxes_written == 20
    assert [Path(o.path).name for o in report.outputs] == ["boxes-train.csv", "boxes-test.csv"]
