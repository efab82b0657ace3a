"""Splits and shard assignment: exact proportions, reproducible, independent of input order."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from factories import labelimg_xml, write
from hypothesis import given
from hypothesis import strategies as st

from annoconv import convert
from annoconv.ops import assign_shards, assign_splits, parse_split, sample_keys, split_counts
from annoconv.pipeline import split_destination


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


def test_sample_is_reproducible_order_independent_and_bounded() -> None:
    keys = [f"{i:016x}" for i in range(1000)]
    first = sample_keys(keys, 100, seed=1, key=str)
    assert len(first) == 100 and len(set(first)) == 100
    assert sorted(sample_keys(reversed(keys), 100, seed=1, key=str)) == sorted(first)
    assert sorted(sample_keys(keys, 100, seed=2, key=str)) != sorted(first)
    assert sorted(sample_keys(keys, 5000, seed=1, key=str)) == sorted(keys)


def test_sample_is_uniform_over_many_seeds() -> None:
    """Every key is equally likely to be picked: inclusion counts over 3,000 seeds pass a
    chi-square test (df = 19, the 0.999 quantile is 43.8), and every pair of keys is about
    as likely together as independence predicts."""
    keys = [f"img{i}" for i in range(20)]
    seeds, size = 3000, 5
    picked: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for seed in range(seeds):
        chosen = sorted(sample_keys(keys, size, seed=seed, key=str))
        picked.update(chosen)
        pairs.update((a, b) for i, a in enumerate(chosen) for b in chosen[i + 1 :])
    expected = seeds * size / len(keys)
    chi_square = sum((picked[key] - expected) ** 2 / expected for key in keys)
    assert chi_square < 43.8
    pair_expected = seeds * (size * (size - 1)) / (len(keys) * (len(keys) - 1))
    assert all(abs(count - pair_expected) < 6 * pair_expected**0.5 for count in pairs.values())


def test_csv_without_sizes_reads_image_headers(tmp_path: Path) -> None:
    from factories import draw_image

    images = tmp_path / "images"
    draw_image(images / "a.jpg", 64, 48)
    draw_image(images / "sub" / "b.png", 30, 20)
    source = write(
        tmp_path / "in" / "boxes.csv",
        "filename,width,height,class,xmin,ymin,xmax,ymax\n"
        "a.jpg,,,dog,1,2,30,40\nsub/b.png,,,cat,0,0,30,20\n",
    )
    out = tmp_path / "out.csv"
    report = convert(str(source), str(out), images=str(images))
    assert out.read_text(encoding="utf-8") == (
        "filename,width,height,class,xmin,ymin,xmax,ymax\n"
        "a.jpg,64,48,dog,1,2,30,40\nsub/b.png,30,20,cat,0,0,30,20\n"
    )
    assert report.images_written == 2


def test_sampling_in_convert_counts_what_it_leaves_out(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    for i in range(20):
        write(ann / f"{i}.xml", labelimg_xml(f"{i}.jpg", 10, 10, [("a", 1, 1, 5, 5)]))
    report = convert(str(ann), str(tmp_path / "s.csv"), sample=7, seed=4)
    assert (report.images_read, report.images_written, report.images_skipped) == (20, 7, 13)
    assert [(item.reason, item.images, item.boxes) for item in report.skipped] == [
        ("not in the sample of 7", 13, 13)
    ]
    again = convert(str(ann), str(tmp_path / "t.csv"), sample=7, seed=4)
    assert again.images_written == 7
    assert (tmp_path / "s.csv").read_bytes() == (tmp_path / "t.csv").read_bytes()


def test_class_selection_on_voc_counts_every_drop(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    write(ann / "1.xml", labelimg_xml("1.jpg", 10, 10, [("cat", 1, 1, 5, 5), ("dog", 2, 2, 6, 6)]))
    write(ann / "2.xml", labelimg_xml("2.jpg", 10, 10, [("dog", 1, 1, 5, 5)]))
    write(ann / "3.xml", labelimg_xml("3.jpg", 10, 10, []))
    out = tmp_path / "cats.csv"
    report = convert(
        str(ann), str(out), classes=["cat"], label_map_output=str(tmp_path / "l.pbtxt")
    )
    assert out.read_text(encoding="utf-8") == (
        "filename,width,height,class,xmin,ymin,xmax,ymax\n1.jpg,10,10,cat,1,1,5,5\n3.jpg,10,10,,,,,\n"
    )
    assert (report.images_read, report.images_written, report.images_skipped) == (3, 2, 1)
    assert (report.boxes_read, report.boxes_written, report.boxes_skipped) == (3, 1, 2)
    assert [(s.reason, s.images, s.boxes) for s in report.skipped] == [("not in --classes", 1, 2)]
    assert (tmp_path / "l.pbtxt").read_text(
        encoding="utf-8"
    ) == 'item {\n  name: "cat"\n  id: 1\n}\n'
    kept = convert(str(ann), str(tmp_path / "k.csv"), classes=["cat"], keep_empty=True)
    assert (kept.images_written, kept.boxes_written) == (3, 1)
