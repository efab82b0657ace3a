"""Filters, renames, boxes outside the image, stratified and list splits, dedup, merge, stats
and the stats plot, through the API and the CLI, on generated data with exact expectations."""

from __future__ import annotations

import json
import math
import random
import shutil
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import Box, draw_image, labelimg_xml, write
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageStat

from annoconv import AnnotationError, convert
from annoconv.cli import main
from annoconv.merge import MergeSource, merge
from annoconv.ops import assign_from_lists, assign_stratified, read_split_lists
from annoconv.report import Report
from annoconv.sources import open_reader
from annoconv.stats import dataset_stats

HEADER = "filename,width,height,class,xmin,ymin,xmax,ymax\n"


def rows(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()[1:]


def reasons(report: Report) -> dict[str, tuple[int, int]]:
    return {item.reason: (item.images, item.boxes) for item in report.skipped}


def balanced(report: Report) -> bool:
    return report.images_read == report.images_written + report.images_skipped and (
        report.boxes_read == report.boxes_written + report.boxes_skipped
    )


# --- filters -------------------------------------------------------------------------------


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    ann = tmp_path / "ann"
    write(
        ann / "1.xml",
        labelimg_xml(
            "1.jpg",
            100,
            80,
            [
                Box("cell phone", 10, 10, 50, 40),
                Box("mobile", 0, 0, 3, 30),  # 3 px wide
                Box("person", 5, 5, 95, 75, difficult=1),
            ],
        ),
    )
    write(ann / "2.xml", labelimg_xml("2.jpg", 100, 80, [Box("person", 1, 1, 9, 9)]))  # 8x8
    write(ann / "3.xml", labelimg_xml("3.jpg", 100, 80, [Box("tree", 20, 20, 40, 40)]))
    write(ann / "4.xml", labelimg_xml("4.jpg", 100, 80, []))
    return ann


def test_drop_rename_min_size_and_difficult(voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    report = convert(
        str(voc),
        str(out),
        exclude_classes=["tree"],
        rename={"cell phone": "phone", "mobile": "phone"},
        min_size=(4, 4),
        min_area=70,
        drop_difficult=True,
        label_map_output=str(tmp_path / "map.pbtxt"),
    )
    assert rows(out) == ["1.jpg,100,80,phone,10,10,50,40", "4.jpg,100,80,,,,,"]
    assert reasons(report) == {
        "in --drop-classes": (1, 1),  # image 3 had only the tree
        "smaller than --min-size 4x4 / --min-area 70": (1, 2),  # the 3 px box; 2's 8x8 = 64
        "difficult (--drop-difficult)": (0, 1),
    }
    assert (report.images_written, report.boxes_written) == (2, 1)
    assert balanced(report)
    assert report.adjusted == {"boxes renamed (--rename)": 2}
    # The label map is built after renaming and filtering.
    assert (tmp_path / "map.pbtxt").read_text(encoding="utf-8") == (
        'item {\n  name: "phone"\n  id: 1\n}\n'
    )


def test_rename_merges_classes_and_keep_empty_keeps_emptied_images(
    voc: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    report = convert(
        str(voc),
        str(out),
        rename={"cell phone": "phone", "mobile": "phone"},
        drop_difficult=True,
        keep_empty=True,
        label_map_output=str(tmp_path / "map.pbtxt"),
    )
    assert Counter(row.split(",")[3] for row in rows(out)) == {
        "phone": 2,
        "person": 1,
        "tree": 1,
        "": 1,
    }
    assert report.classes == {"phone": 2, "person": 1, "tree": 1}
    assert 'name: "phone"\n  id: 2' in (tmp_path / "map.pbtxt").read_text(encoding="utf-8")


# --- boxes outside the image ---------------------------------------------------------------


@pytest.fixture
def roboflow(tmp_path: Path) -> Path:
    """Roboflow's off-by-one exports: xmax = width + 1; one box wholly outside."""
    ann = tmp_path / "rf"
    write(
        ann / "a.xml", labelimg_xml("a.jpg", 50, 40, [("car", 10, 5, 51, 41), ("car", 1, 1, 9, 9)])
    )
    write(ann / "b.xml", labelimg_xml("b.jpg", 50, 40, [("car", 60, 5, 70, 20)]))
    write(ann / "c.xml", labelimg_xml("c.jpg", 50, 40, [("bus", 0, 0, 50, 40)]))
    return ann


def test_boxes_outside_fail_by_default(roboflow: Path, tmp_path: Path) -> None:
    with pytest.raises(
        AnnotationError,
        match=r"a\.xml: line 22, object\[1\]/bndbox/xmax: xmax 51 is outside \[0, 50\]",
    ):
        convert(str(roboflow), str(tmp_path / "x.csv"))
    skipped = convert(str(roboflow), str(tmp_path / "x.csv"), on_error="skip")
    assert (skipped.images_written, skipped.images_skipped) == (1, 2)


def test_boxes_outside_clip(roboflow: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.csv"
    report = convert(str(roboflow), str(out), boxes_outside="clip")
    assert rows(out) == [
        "a.jpg,50,40,car,10,5,50,40",
        "a.jpg,50,40,car,1,1,9,9",
        "c.jpg,50,40,bus,0,0,50,40",
    ]
    assert reasons(report) == {"outside the image (empty when clipped)": (1, 1)}
    assert report.adjusted == {"boxes clipped to the image": 1}
    assert balanced(report) and report.boxes_read == 4


def test_boxes_outside_drop_on_csv_input(tmp_path: Path) -> None:
    source = write(
        tmp_path / "in.csv",
        HEADER + "a.jpg,50,40,car,10,5,51,41\na.jpg,50,40,car,1,1,9,9\nb.jpg,50,40,bus,0,0,5,5\n",
    )
    out = tmp_path / "drop.csv"
    report = convert(str(source), str(out), boxes_outside="drop")
    assert rows(out) == ["a.jpg,50,40,car,1,1,9,9", "b.jpg,50,40,bus,0,0,5,5"]
    assert reasons(report) == {"outside the image": (0, 1)}
    with pytest.raises(AnnotationError, match=r"in\.csv: line 2: .*xmax 51"):
        convert(str(source), str(out))


@pytest.mark.parametrize("policy", ["fail", "clip", "drop"])
def test_boxes_checked_against_a_size_read_from_the_image(policy: str, tmp_path: Path) -> None:
    """Faster R-CNN txt has no image sizes: they come from the image headers, and boxes
    reaching outside are then treated as for an annotated size, never written as they are."""
    draw_image(tmp_path / "im0.jpg", 64, 48)
    draw_image(tmp_path / "im1.jpg", 64, 48)
    source = write(tmp_path / "a.txt", "im0.jpg,1,2,70,40,dog\nim1.jpg,1,2,30,40,cat\n")
    out = tmp_path / "o.csv"
    if policy == "fail":
        with pytest.raises(AnnotationError, match=r"a\.txt: .*xmax 70 is outside \[0, 64\]"):
            convert(str(source), str(out))
        assert not out.exists()
        return
    expected = {
        "clip": ["im0.jpg,64,48,dog,1,2,64,40", "im1.jpg,64,48,cat,1,2,30,40"],
        "drop": ["im1.jpg,64,48,cat,1,2,30,40"],
    }
    report = convert(str(source), str(out), boxes_outside=policy)  # type: ignore[arg-type]
    assert rows(out) == expected[policy]
    assert report.balanced
    archive = tmp_path / "images.tar"  # the same with the images streamed from an archive
    with tarfile.open(archive, "w") as tar:
        for name in ("im0.jpg", "im1.jpg"):
            tar.add(tmp_path / name, arcname=f"pages/{name}")
    from_tar = tmp_path / "from-tar.csv"
    convert(str(source), str(from_tar), images=str(archive), boxes_outside=policy)  # type: ignore[arg-type]
    assert sorted(rows(from_tar)) == expected[policy]


# --- splits --------------------------------------------------------------------------------


def stratified_labels() -> dict[str, list[str]]:
    """300 images: common classes, a class on 3 images, one on 4, one on a single image,
    multi-label images and negatives."""
    rng = random.Random(7)
    labels: dict[str, list[str]] = {}
    for index in range(300):
        key = f"img{index:03d}"
        if index % 10 == 0:
            labels[key] = []
        else:
            labels[key] = rng.sample(["a", "b", "c", "d"], rng.randint(1, 2))
    for index, rare in enumerate(["r3"] * 3 + ["r4"] * 4 + ["solo"]):
        labels[f"img{index * 7 + 1:03d}"].append(rare)
    return labels


def test_stratified_split_covers_every_class_with_exact_sizes() -> None:
    labels = stratified_labels()
    fractions = {"train": 0.7, "val": 0.2, "test": 0.1}
    first = assign_stratified(labels, fractions, seed=3)
    assert set(first) == set(labels)  # each image in exactly one split
    assert Counter(first.values()) == {"train": 210, "val": 60, "test": 30}
    per_split: dict[str, Counter[str]] = {name: Counter() for name in fractions}
    for key, name in first.items():
        per_split[name].update(labels[key])
    totals = Counter(label for names in labels.values() for label in names)
    for label, total in totals.items():
        present = [name for name in fractions if per_split[name][label]]
        if total >= len(fractions):
            assert present == list(fractions), (label, per_split)
        if total >= 30:  # common classes follow the fractions closely
            for name, share in fractions.items():
                assert abs(per_split[name][label] - total * share) <= 0.1 * total, label
    assert assign_stratified(dict(reversed(labels.items())), fractions, seed=3) == first
    assert assign_stratified(labels, fractions, seed=4) != first


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from("abcdef"), max_size=3), min_size=1, max_size=60),
    st.sampled_from([(0.7, 0.3), (0.8, 0.1, 0.1), (0.5, 0.5)]),
    st.integers(0, 5),
)
def test_stratified_split_properties(
    image_labels: list[list[str]], shares: tuple[float, ...], seed: int
) -> None:
    labels = {f"k{index}": names for index, names in enumerate(image_labels)}
    fractions = {f"s{index}": share for index, share in enumerate(shares)}
    assignment = assign_stratified(labels, fractions, seed)
    assert set(assignment) == set(labels)
    sizes = Counter(assignment.values())
    for name, share in fractions.items():
        assert abs(sizes[name] - len(labels) * share) < 1
    holders = Counter(label for names in labels.values() for label in set(names))
    for label, count in holders.items():
        splits = {assignment[key] for key, names in labels.items() if label in names}
        if count >= len(fractions) and len(labels) >= 4 * len(fractions) * len(holders):
            assert splits == set(fractions), label  # room enough: every class everywhere
    assert assign_stratified(dict(reversed(labels.items())), fractions, seed) == assignment


def test_split_lists_match_keys_names_and_stems(tmp_path: Path) -> None:
    train = write(tmp_path / "train.txt", "# VOC style\n000001\n000002  1\n\n")
    split_of = read_split_lists({"train": str(train), "test": ["sub/000003.xml", "x.xml"]})
    assert split_of == {
        "000001": "train",
        "000002": "train",
        "sub/000003.xml": "test",
        "x.xml": "test",
    }
    keys = ["000001.xml", "a/000002.xml", "sub/000003.xml", "000004.xml", "b/x.xml"]
    assert assign_from_lists(keys, split_of) == {
        "000001.xml": "train",
        "a/000002.xml": "train",
        "sub/000003.xml": "test",
        "b/x.xml": "test",
    }
    with pytest.raises(Exception, match="'000001' is listed in both 'train' and 'val'"):
        read_split_lists({"train": str(train), "val": ["000001"]})


def test_voc_imagesets_split_through_the_cli(tmp_path: Path) -> None:
    voc = tmp_path / "VOC2007"
    for index in range(1, 6):
        write(
            voc / "Annotations" / f"00000{index}.xml",
            labelimg_xml(f"00000{index}.jpg", 10, 10, [("a", 1, 1, 5, 5)]),
        )
    write(voc / "ImageSets" / "Main" / "train.txt", "000001\n000003\n000004\n")
    write(voc / "ImageSets" / "Main" / "val.txt", "000002\n")
    out = tmp_path / "out" / "voc.csv"
    report_json = tmp_path / "report.json"
    code = main(
        [
            "convert",
            str(voc / "Annotations"),
            str(out),
            "--voc-imagesets",
            str(voc),
            "--report-json",
            str(report_json),
            "-q",
        ]
    )
    assert code == 0
    assert [row.split(",")[0] for row in rows(tmp_path / "out" / "voc-train.csv")] == [
        "000001.jpg",
        "000003.jpg",
        "000004.jpg",
    ]
    assert [row.split(",")[0] for row in rows(tmp_path / "out" / "voc-val.csv")] == ["000002.jpg"]
    saved = json.loads(report_json.read_text(encoding="utf-8"))
    assert saved["images"] == {"read": 5, "written": 4, "skipped": 1}
    assert saved["skipped"][0]["reason"] == "not in any split list"


def test_stratified_split_and_sample_through_convert(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    for index in range(40):
        boxes = [("common", 1, 1, 5, 5)] + ([("rare", 2, 2, 6, 6)] if index < 4 else [])
        write(ann / f"{index:02d}.xml", labelimg_xml(f"{index:02d}.jpg", 10, 10, boxes))
    out = tmp_path / "s.csv"
    report = convert(str(ann), str(out), split="train=0.75,test=0.25", stratify=True, seed=1)
    train, test = rows(tmp_path / "s-train.csv"), rows(tmp_path / "s-test.csv")
    assert not {r.split(",")[0] for r in train} & {r.split(",")[0] for r in test}
    assert (
        len({r.split(",")[0] for r in train}) == 30 and len({r.split(",")[0] for r in test}) == 10
    )
    assert sum("rare" in r for r in train) == 3 and sum("rare" in r for r in test) == 1
    sampled = convert(
        str(ann), str(tmp_path / "t.csv"), sample=20, split="train=0.5,test=0.5", stratify=True
    )
    written = rows(tmp_path / "t-train.csv") + rows(tmp_path / "t-test.csv")
    assert sampled.images_written == 20 and sampled.boxes_written == len(written)
    assert reasons(sampled) == {"not in the sample of 20": (20, 44 - len(written))}
    assert balanced(report) and balanced(sampled)


# --- dedup ---------------------------------------------------------------------------------


@pytest.fixture
def with_duplicates(tmp_path: Path) -> Path:
    """Six distinct images, and three planted duplicates under other names (one annotated
    differently from its original)."""
    ann = tmp_path / "dup"
    for index in range(6):
        draw_image(ann / f"img{index}.png", 20 + index, 20)
        write(
            ann / f"img{index}.xml",
            labelimg_xml(f"img{index}.png", 20 + index, 20, [("a", 1, 1, 5, 5)]),
        )
    for copy, original, boxes in [
        ("copy0", 0, [("a", 1, 1, 5, 5)]),
        ("zz0", 0, [("a", 1, 1, 5, 5)]),
        ("copy3", 3, [("b", 2, 2, 9, 9)]),
    ]:
        shutil.copy(ann / f"img{original}.png", ann / f"{copy}.png")
        write(ann / f"{copy}.xml", labelimg_xml(f"{copy}.png", 20 + original, 20, boxes))
    return ann


def test_dedup_finds_planted_duplicates(with_duplicates: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.csv"
    report = convert(str(with_duplicates), str(out), dedup=True)
    kept = ["copy0.png", "copy3.png", "img1.png", "img2.png", "img4.png", "img5.png"]
    assert sorted(row.split(",")[0] for row in rows(out)) == kept
    assert [(g.keys, g.conflicting) for g in report.duplicates] == [
        (["copy0.xml", "img0.xml", "zz0.xml"], False),
        (["copy3.xml", "img3.xml"], True),
    ]
    assert [len(g.sha256) for g in report.duplicates] == [64, 64]
    # The smallest key is kept: copy0 and copy3 stand in for img0 and img3.
    assert reasons(report) == {"duplicate image (same SHA-256 as a kept one)": (3, 3)}
    saved = json.loads(report.to_json())
    assert saved["duplicates"][1]["keys"] == ["copy3.xml", "img3.xml"]
    assert "duplicate images (CONFLICT: different annotations): kept copy3.xml" in report.summary()


def test_dedup_writes_each_kept_images_sha256_to_parquet(
    with_duplicates: Path, tmp_path: Path
) -> None:
    import hashlib

    import pyarrow.parquet as pq

    out = tmp_path / "d.parquet"
    assert convert(str(with_duplicates), str(out), dedup=True).images_written == 6
    table = pq.read_table(out).to_pylist()
    assert len(table) == 6
    for row in table:
        data = (with_duplicates / row["filename"]).read_bytes()
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
    convert(str(with_duplicates), str(tmp_path / "plain.parquet"))
    plain = pq.read_table(tmp_path / "plain.parquet")
    assert set(plain.column("sha256").to_pylist()) == {None}  # not hashed unless asked


def test_dedup_then_sample_and_missing_images(with_duplicates: Path, tmp_path: Path) -> None:
    report = convert(str(with_duplicates), str(tmp_path / "s.csv"), dedup=True, sample=4, seed=2)
    assert report.images_written == 4 and balanced(report)
    assert reasons(report) == {
        "duplicate image (same SHA-256 as a kept one)": (3, 3),
        "not in the sample of 4": (2, 2),
    }
    (with_duplicates / "img5.png").unlink()
    with pytest.raises(AnnotationError, match=r"img5\.xml: cannot hash the image for --dedup"):
        convert(str(with_duplicates), str(tmp_path / "m.csv"), dedup=True)


# --- merge ---------------------------------------------------------------------------------


def test_merge_voc_and_csv_into_tfrecord_with_one_label_map(tmp_path: Path) -> None:
    import tensorflow as tf
    from test_tfrecord import read_examples

    voc = tmp_path / "voc"
    draw_image(voc / "1.jpg", 40, 30)
    draw_image(voc / "2.jpg", 40, 30)
    write(voc / "1.xml", labelimg_xml("1.jpg", 40, 30, [("dog", 0, 0, 20, 15)]))
    write(voc / "2.xml", labelimg_xml("2.jpg", 40, 30, [("cat", 20, 15, 40, 30)]))
    csv_dir = tmp_path / "csv"
    draw_image(csv_dir / "2.jpg", 40, 30)  # the same file name as a VOC image, other boxes
    draw_image(csv_dir / "3.jpg", 40, 30)
    write(
        csv_dir / "boxes.csv", HEADER + "2.jpg,40,30,bird,0,0,10,10\n3.jpg,40,30,dog,10,0,40,30\n"
    )
    out = tmp_path / "out" / "merged.record"
    code = main(
        [
            "merge",
            str(voc),
            str(csv_dir / "boxes.csv"),
            str(out),
            "--report-json",
            str(tmp_path / "r.json"),
            "-q",
        ]
    )
    assert code == 0
    label_map = (tmp_path / "out" / "label_map.pbtxt").read_text(encoding="utf-8")
    ids = {"bird": 1, "cat": 2, "dog": 3}
    for name, ident in ids.items():
        assert f'name: "{name}"\n  id: {ident}\n' in label_map
    examples = read_examples(sorted((tmp_path / "out").glob("merged.record*")))
    seen = []
    for example in examples:
        texts = [t.decode() for t in example["image/object/class/text"]]
        labels = list(example["image/object/class/label"])
        assert labels == [ids[t] for t in texts]
        seen.append((example["image/filename"].decode().rsplit("/", 1)[-1], texts))
    assert len(examples) == 4
    by_name = Counter((name, tuple(texts)) for name, texts in seen)
    assert by_name == {
        ("1.jpg", ("dog",)): 1,
        ("2.jpg", ("cat",)): 1,
        ("2.jpg", ("bird",)): 1,
        ("3.jpg", ("dog",)): 1,
    }
    saved = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert saved["images"]["written"] == 4 and saved["boxes"]["written"] == 4
    assert any("conflict: image '2.jpg'" in text for text in saved["warnings"])
    del tf


def test_merge_makes_colliding_keys_unique(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "boxes.csv", HEADER + "x.jpg,10,10,a,1,1,5,5\n")
    second = write(
        tmp_path / "b" / "boxes.csv", HEADER + "x.jpg,10,10,a,1,1,5,5\ny.jpg,10,10,b,1,1,5,5\n"
    )
    out = tmp_path / "m.csv"
    report = merge(
        [MergeSource(str(first), name="left"), MergeSource(str(second), name="right")],
        str(out),
        split="train=0.5,test=0.5",
    )
    assert report.images_written == 3 and balanced(report)
    assert report.warnings == []  # same annotations: a duplicate, not a conflict
    written = rows(tmp_path / "m-train.csv") + rows(tmp_path / "m-test.csv")
    assert sorted(written) == sorted(
        ["x.jpg,10,10,a,1,1,5,5", "x.jpg,10,10,a,1,1,5,5", "y.jpg,10,10,b,1,1,5,5"]
    )


# --- stats ---------------------------------------------------------------------------------


def stats_dataset(tmp_path: Path) -> tuple[Path, list[tuple[str, float, float, float, float]], int]:
    """A CSV of 60 images with random boxes (some tiny, one zero-area) and 5 negatives."""
    rng = random.Random(11)
    lines, boxes = [HEADER], []
    for index in range(60):
        name = f"i{index}.jpg"
        count = rng.randint(0, 4)
        if not count:
            lines.append(f"{name},200,100,,,,,\n")
        for _ in range(count):
            x, y = rng.uniform(0, 150), rng.uniform(0, 100)
            w, h = rng.choice([0.0, 2.0, rng.uniform(1, 50)]), rng.uniform(1, 99 - y)
            label = rng.choice(["a", "b", "c"])
            boxes.append((name, x, y, x + w, y + h))
            lines.append(f"{name},200,100,{label},{x},{y},{x + w},{y + h}\n")
    for index in range(60, 65):
        lines.append(f"i{index}.jpg,200,100,,,,,\n")
    return write(tmp_path / "stats.csv", "".join(lines)), boxes, 65


def nearest_rank(values: list[float]) -> dict[str, float]:
    data = np.asarray(values)
    return {
        f"p{p}": float(np.percentile(data, p, method="inverted_cdf"))
        for p in (0, 5, 25, 50, 75, 95, 100)
    }


def test_stats_match_an_independent_computation(tmp_path: Path) -> None:
    source, boxes, images = stats_dataset(tmp_path)
    result = dataset_stats(open_reader(str(source))).to_dict()
    assert result["images"] == images and result["boxes"] == len(boxes)
    per_image = Counter(name for name, *_ in boxes)
    counts = [per_image.get(f"i{i}.jpg", 0) for i in range(images)]
    assert result["negative_images"] == counts.count(0)
    assert result["boxes_per_image"]["images_with"] == {
        str(n): counts.count(n) for n in sorted(set(counts))
    }
    assert result["boxes_per_image"]["percentiles"] == nearest_rank(counts)
    widths = [x2 - x1 for _, x1, _, x2, _ in boxes]
    heights = [y2 - y1 for _, _, y1, _, y2 in boxes]
    assert result["box_width"]["percentiles"] == pytest.approx(nearest_rank(widths))
    assert result["box_height"]["percentiles"] == pytest.approx(nearest_rank(heights))
    positive = [w for w in widths if w > 0]
    edges = 2.0 ** np.arange(
        math.floor(math.log2(min(positive))), math.ceil(math.log2(max(positive))) + 2
    )
    expected_hist, _ = np.histogram(positive, bins=edges)
    got = {entry["from"]: entry["count"] for entry in result["box_width"]["histogram"]}
    assert {float(e): int(c) for e, c in zip(edges[:-1], expected_hist, strict=True) if c} == got
    assert result["box_width"]["zeros"] == widths.count(0.0)
    aspects = [w / h for w, h in zip(widths, heights, strict=True)]
    assert result["box_aspect"]["percentiles"] == pytest.approx(nearest_rank(aspects))
    suspicious = result["suspicious"]
    assert suspicious["zero_area"] == sum(
        w == 0 or h == 0 for w, h in zip(widths, heights, strict=True)
    )
    assert suspicious["tiny"] == sum(
        0 < min(w, h) < 4 for w, h in zip(widths, heights, strict=True)
    )
    assert suspicious["zero_area"] > 0 and suspicious["tiny"] > 0


def test_stats_cli_counts_boxes_outside_and_plots(
    roboflow: Path, tmp_path: Path, capsys: Any
) -> None:
    plot = tmp_path / "stats.png"
    assert main(["stats", str(roboflow), "--json", "--plot", str(plot), "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 3 and result["boxes"] == 4
    assert result["suspicious"]["outside"] == 2
    assert result["suspicious"]["examples"]["outside"] == ["a.xml: car", "b.xml: car"]
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size == (1600, 1000)
        spread = ImageStat.Stat(image.convert("L")).var[0]
    assert spread > 100  # drawn, not blank


def test_class_names_that_differ_only_in_case_or_spacing(tmp_path: Path, capsys: Any) -> None:
    from annoconv.labelmap import similar_classes

    assert similar_classes(
        {"Dog": 1, "dog": 2, "cat": 5, "mobile_phone": 1, "Mobile Phone": 1}
    ) == [
        ["Mobile Phone", "mobile_phone"],
        ["dog", "Dog"],
    ]
    assert similar_classes({"car": 1, "cart": 1, "Car-1": 1}) == []
    boxes = "a.jpg,10,10,Dog,1,1,5,5\nb.jpg,10,10,dog,1,1,5,5\nb.jpg,10,10,dog,2,2,6,6\n"
    source = write(tmp_path / "s.csv", HEADER + boxes + "c.jpg,10,10,cat,1,1,5,5\n")
    note = (
        "class names that differ only in case or spacing: 'dog' (2), 'Dog' (1); "
        "to merge them: --rename Dog=dog"
    )
    report = convert(str(source), str(tmp_path / "o.csv"))
    assert report.warnings == [note]
    assert main(["stats", str(source)]) == 0
    assert f"suspicious: {note}" in capsys.readouterr().out.splitlines()
    merged = convert(str(source), str(tmp_path / "m.csv"), rename={"Dog": "dog"})
    assert merged.warnings == [] and merged.classes == {"dog": 3, "cat": 1}


def test_stats_plot_without_matplotlib_names_the_extra(
    roboflow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    code = main(["stats", str(roboflow), "--plot", str(tmp_path / "p.png"), "-q"])
    assert code == 1
    assert "pip install 'annoconv[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


# --- the CLI flags -------------------------------------------------------------------------


def test_cli_operation_flags(voc: Path, roboflow: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "cli.csv"
    report_json = tmp_path / "r.json"
    code = main(
        [
            "convert",
            str(voc),
            str(out),
            "--drop-classes",
            "tree",
            "--rename",
            "cell phone=phone",
            "--rename",
            "mobile=phone",
            "--min-size",
            "4",
            "--min-area",
            "70",
            "--drop-difficult",
            "--report-json",
            str(report_json),
            "-q",
        ]
    )
    assert code == 0
    assert rows(out) == ["1.jpg,100,80,phone,10,10,50,40", "4.jpg,100,80,,,,,"]
    saved = json.loads(report_json.read_text(encoding="utf-8"))
    assert saved["images"] == {"read": 4, "written": 2, "skipped": 2}
    assert saved["boxes"] == {"read": 5, "written": 1, "skipped": 4}
    clipped = tmp_path / "clip.csv"
    assert main(["convert", str(roboflow), str(clipped), "--boxes-outside", "clip", "-q"]) == 0
    assert rows(clipped)[0] == "a.jpg,50,40,car,10,5,50,40"
    for bad, message in [
        (["--rename", "nothing"], "rename 'nothing' is not OLD=NEW"),
        (["--min-size", "4x"], "min size '4x' is not N or WxH"),
        (["--split-lists", "train"], "'train' is not NAME=FILE"),
    ]:
        with pytest.raises(SystemExit) as info:
            main(["convert", str(voc), str(tmp_path / "bad.csv"), *bad, "-q"])
        assert info.value.code == 2 and message in capsys.readouterr().err
    assert main(["convert", str(voc), str(tmp_path / "bad.csv"), "--stratify", "-q"]) == 2
    assert "stratify needs a split by ratio" in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()


def test_merge_open_images_and_csv_with_rename_through_the_cli(tmp_path: Path) -> None:
    from oi_factory import CAMERA, PHONE, Row, bbox_csv, class_descriptions

    oi = tmp_path / "oi"
    write(oi / "bbox.csv", bbox_csv([Row("000a1", CAMERA), Row("000b2", PHONE)]))
    write(oi / "classes.csv", class_descriptions())
    draw_image(oi / "images" / "000a1.jpg", 100, 50)
    draw_image(oi / "images" / "000b2.jpg", 200, 100)
    ours = write(tmp_path / "ours" / "boxes.csv", HEADER + "p.jpg,40,30,cell phone,1,2,30,20\n")
    out = tmp_path / "merged.csv"
    code = main(
        [
            "merge",
            str(oi / "bbox.csv"),
            str(ours),
            str(out),
            "--class-descriptions",
            str(oi / "classes.csv"),
            "--images",
            str(oi / "images"),
            "--rename",
            "cell phone=Mobile phone",
            "-q",
        ]
    )
    assert code == 0
    # Open Images boxes (x 0.1-0.5, y 0.2-0.6) in pixels of their images; one class name for both.
    assert rows(out) == [
        "000a1.jpg,100,50,Camera,10,10,50,30",
        "000b2.jpg,200,100,Mobile phone,20,20,100,60",
        "p.jpg,40,30,Mobile phone,1,2,30,20",
    ]


def test_merge_with_an_images_folder_per_source(tmp_path: Path) -> None:
    """Each source's images are found in its own folder (`--images N=DIR`); the embedded
    bytes are the right files, boxes normalized by the right sizes."""
    import hashlib

    from oi_factory import CAMERA, Row, bbox_csv, class_descriptions
    from test_tfrecord import read_examples

    voc = tmp_path / "voc"
    write(voc / "p1.xml", labelimg_xml("p1.png", 40, 30, [("figure", 4, 3, 20, 15)]))
    draw_image(tmp_path / "drawings" / "p1.png", 40, 30)
    oi = tmp_path / "oi"
    write(oi / "bbox.csv", bbox_csv([Row("000a1", CAMERA)]))
    write(oi / "classes.csv", class_descriptions())
    draw_image(oi / "images" / "000a1.jpg", 100, 50)
    out = tmp_path / "out" / "all.record"
    args = ["merge", str(voc), str(oi / "bbox.csv"), str(out), "-q"]
    args += ["--images", f"1={tmp_path / 'drawings'}", "--images", f"2={oi / 'images'}"]
    args += ["--class-descriptions", str(oi / "classes.csv")]
    assert main(args) == 0

    examples = {
        e["image/filename"].decode(): e
        for e in read_examples([out.with_name(out.name + "-00000-of-00001")])
    }
    assert sorted(examples) == ["000a1.jpg", "p1.png"]
    drawing, photo = examples["p1.png"], examples["000a1.jpg"]
    assert drawing["decoded_shape"] == (30, 40, 3) and photo["decoded_shape"] == (50, 100, 3)
    for example, image in (
        (drawing, tmp_path / "drawings" / "p1.png"),
        (photo, oi / "images" / "000a1.jpg"),
    ):
        assert example["image/encoded"] == image.read_bytes()
        assert (
            example["image/key/sha256"].decode() == hashlib.sha256(image.read_bytes()).hexdigest()
        )
    assert [t.decode() for t in drawing["image/object/class/text"]] == ["figure"]
    assert list(drawing["image/object/bbox/xmin"]) == pytest.approx([0.1])
    assert list(drawing["image/object/bbox/ymax"]) == pytest.approx([0.5])
    assert [t.decode() for t in photo["image/object/class/text"]] == ["Camera"]
    assert list(photo["image/object/bbox/xmax"]) == pytest.approx([0.5])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--images", "3=x"], "--images 3=x: there are sources 1 to 2"),
        (["--from", "1=voc", "--from", "1=csv"], "--from for source 1 is given twice"),
        (["--images", "a", "--images", "b"], "--images for every source is given twice"),
        (["--images", "1="], "--images 1=: no value for source 1"),
        (["--images", "2=x.tar"], "images of source 2, x.tar: an archive of images is read once"),
        (["--images", "x.zip", "--images", "1=d"], "images x.zip is an archive, read for"),
    ],
)
def test_merge_per_source_option_errors(
    tmp_path: Path, flags: list[str], message: str, capsys: Any
) -> None:
    sources = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    assert main(["merge", *sources, str(tmp_path / "out.csv"), *flags]) == 2
    assert message in capsys.readouterr().err


def test_clip_normalized_boxes_from_a_rejected_record() -> None:
    """Normalized records (TFRecord's) are checked against [0, 1]: the schema rejects the
    record with a BoxOutsideError carrying it, and the clip policy takes it back."""
    from annoconv.filters import BoxesOutside
    from annoconv.formats import BadItem
    from annoconv.schema import BoxOutsideError, make_object, make_record

    objects = [
        make_object("x", None, label="a", xmin=0.1, ymin=0.2, xmax=1.02, ymax=0.6),
        make_object("x", None, label="a", xmin=-0.5, ymin=0.2, xmax=-0.1, ymax=0.6),
    ]
    with pytest.raises(BoxOutsideError) as info:
        make_record(
            "x.record", "record 0", key="k", filename="k.jpg", coords="normalized", objects=objects
        )
    assert str(info.value) == "x.record: record 0: object[1] ('a'): xmax 1.02 is outside [0, 1]"
    error = info.value
    items = list(BoxesOutside("clip").apply([BadItem(error, boxes=2)]))
    assert [type(item).__name__ for item in items] == ["Dropped", "ImageRecord"]
    assert (items[0].reason, items[0].images, items[0].boxes) == (  # type: ignore[union-attr]
        "outside the image (empty when clipped)",
        0,
        1,
    )
    (box,) = items[1].objects  # type: ignore[union-attr]
    assert (box.xmin, box.xmax, box.ymin, box.ymax) == (0.1, 1.0, 0.2, 0.6)
