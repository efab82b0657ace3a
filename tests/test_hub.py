"""Our Parquet in Hugging Face `datasets`, polars and DuckDB: a split output is a dataset folder
that `load_dataset` reads with its splits, an Image feature and ClassLabel names; both levels
of the nested layout unnest without renaming."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import datasets
import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from detection_data import Dataset, voc_dataset
from factories import write
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from annoconv import LabelMap, convert
from annoconv.formats import parquet_hub as hub


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the Hub; the cache in the test's folder."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


@pytest.fixture
def voc(tmp_path: Path) -> Dataset:
    return voc_dataset(tmp_path / "voc", images=12)


SPLIT = "train=0.5,validation=0.25,test=0.25"


def split_output(voc: Dataset, out: Path, **options: Any) -> None:
    convert(
        str(voc.root),
        str(out),
        to_format="parquet",
        split=SPLIT,
        seed=3,
        write_options={"embed_images": True},
        **options,
    )


def boxes_of(row: dict[str, Any]) -> list[tuple[str, float, float, float, float]]:
    return [(o["label"], o["xmin"], o["ymin"], o["xmax"], o["ymax"]) for o in row["objects"]]


def item_of(feature: Any) -> Any:
    """The feature of a list's items (`datasets` 4+: `List`; earlier: a Python list)."""
    return feature.feature if hasattr(feature, "feature") else feature[0]


def check_loaded(loaded: Any, voc: Dataset, out: Path, names: list[str]) -> None:
    """Splits as the files hold them, images decoded at the annotated size, the boxes of
    the source, and each box's ClassLabel naming its label."""
    expected = {
        split: pq.read_table(out / "data" / split).column("key").to_pylist()
        for split in ("train", "validation", "test")
    }
    assert list(loaded) == ["train", "validation", "test"]
    assert {split: loaded[split]["key"] for split in loaded} == expected
    features = loaded["train"].features
    assert isinstance(features["image"], datasets.Image)
    category = item_of(features["objects"])["category"]
    assert isinstance(category, datasets.ClassLabel) and category.names == names
    for split in loaded:
        for row in loaded[split]:
            assert row["image"].size == voc.sizes[row["key"]]
            assert boxes_of(row) == voc.boxes[row["key"]]
            assert [category.int2str(o["category"]) for o in row["objects"]] == [
                o["label"] for o in row["objects"]
            ]


def test_a_split_output_loads_with_its_splits_images_and_class_labels(
    voc: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    split_output(voc, out)
    names = ["cat", "dog", "mobile phone"]  # the label map, by id
    check_loaded(datasets.load_dataset(str(out)), voc, out, names)
    check_loaded(datasets.load_dataset("parquet", data_dir=str(out)), voc, out, names)
    # The card's front matter, as the Hub reads it.
    front = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    splits = ("train", "validation", "test")
    assert front["configs"][0]["data_files"] == [
        {"split": name, "path": f"data/{name}/*.parquet"} for name in splits
    ]
    assert front["task_categories"] == ["object-detection"]
    assert "| validation | 3 |" in (out / "README.md").read_text()


def test_class_labels_follow_the_label_map_ids_and_display_names(
    voc: Dataset, tmp_path: Path
) -> None:
    """A given map with gaps in its ids and display names (as the OD API's COCO map): the
    category is the position by id, the ClassLabel name the display name the data uses."""
    label_map = tmp_path / "map.pbtxt"
    items = [("/m/dog", 7, "dog"), ("/m/cat", 2, "cat"), ("mobile phone", 4, None), ("x", 9, "y")]
    LabelMap.parse(
        "".join(
            f"item {{ name: '{n}' id: {i}" + (f" display_name: '{d}'" if d else "") + " }\n"
            for n, i, d in items
        )
    ).write(str(label_map))
    out = tmp_path / "ds"
    split_output(voc, out, label_map=str(label_map))
    names = ["cat", "mobile phone", "dog", "y"]
    check_loaded(datasets.load_dataset(str(out)), voc, out, names)
    table = pq.read_table(out / "data" / "train")
    first = [o for row in table.column("objects").to_pylist() for o in row]
    assert {(o["label"], o["category"]) for o in first} <= {
        ("cat", 0),
        ("mobile phone", 1),
        ("dog", 2),
    }


def test_a_single_file_loads_its_image_column_as_images(voc: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "one.parquet"
    convert(str(voc.root), str(out), write_options={"embed_images": True})
    loaded = datasets.load_dataset("parquet", data_files=str(out))["train"]
    assert isinstance(loaded.features["image"], datasets.Image)
    assert {row["key"]: row["image"].size for row in loaded} == voc.sizes
    assert {row["key"]: boxes_of(row) for row in loaded} == voc.boxes


def test_other_split_names_load_from_the_card(voc: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = convert(str(voc.root), str(out), to_format="parquet", split="train=0.5,holdout=0.5")
    loaded = datasets.load_dataset(str(out))
    assert list(loaded) == ["train", "holdout"]
    assert sum(len(loaded[name]) for name in loaded) == report.images_written == 12
    assert "image" not in loaded["train"].features  # not embedded
    bad = tmp_path / "bad"
    report = convert(str(voc.root), str(bad), to_format="parquet", split="train=0.5,hold-out=0.5")
    assert any("'hold-out' is not a name Hugging Face" in text for text in report.warnings)
    assert list(datasets.load_dataset(str(bad))) == ["train"]


def test_polars_and_duckdb_unnest_both_levels_without_renaming(
    voc: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    split_output(voc, out)
    single = tmp_path / "one.parquet"
    convert(str(voc.root), str(single))
    expected = sorted((key, *box) for key, boxes in voc.boxes.items() for box in boxes)
    for path in (single, out / "data" / "train" / "part-00000.parquet"):
        boxes = pl.read_parquet(path).explode("objects").unnest("objects")
        assert {"source", "box_source", "label", "key"} <= set(boxes.columns)
        assert len(boxes.columns) == len(set(boxes.columns))
        assert set(boxes["source"].drop_nulls()) <= {str(voc.root / key) for key in voc.boxes}
    flat = (
        pl.read_parquet(single)
        .explode("objects")
        .unnest("objects")
        .drop_nulls("label")
        .select("key", "label", "xmin", "ymin", "xmax", "ymax")
    )
    assert sorted(flat.iter_rows()) == expected
    query = (
        "CREATE TABLE boxes AS SELECT * EXCLUDE (objects), UNNEST(objects, recursive := true) "
        f"FROM '{out}/**/*.parquet'"
    )
    duckdb.sql(query)
    columns = [row[0] for row in duckdb.sql("DESCRIBE boxes").fetchall()]
    assert "source_1" not in columns and {"source", "box_source", "category"} <= set(columns)
    found = duckdb.sql("SELECT key, label, xmin, ymin, xmax, ymax FROM boxes").fetchall()
    assert sorted(found) == expected


def test_a_readme_that_is_not_ours_is_left_alone(voc: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    write(out / "README.md", "# my own notes\n")
    report = convert(str(voc.root), str(out), to_format="parquet", split="train=0.5,test=0.5")
    assert (out / "README.md").read_text() == "# my own notes\n"
    assert any("is not an annoconv dataset card" in text for text in report.warnings)
    # Ours is written again by the next run.
    (out / "README.md").unlink()
    convert(str(voc.root), str(out), to_format="parquet", split="train=0.5,test=0.5")
    first = (out / "README.md").read_text()
    convert(str(voc.root), str(out), to_format="parquet", split="train=0.5,test=0.5", seed=9)
    assert (out / "README.md").read_text() == first  # same splits, same counts


def test_write_card_makes_an_older_hive_layout_loadable(voc: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "old"
    for split in ("train", "test"):
        convert(str(voc.root), str(out / f"split={split}" / "part-00000.parquet"))
    assert hub.write_card(str(out)) == []
    loaded = datasets.load_dataset(str(out))
    assert list(loaded) == ["train", "test"]
    assert len(loaded["test"]) == 12


NAMES = st.lists(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12),
    min_size=1,
    max_size=5,
    unique=True,
)


@settings(max_examples=60, deadline=None)
@given(NAMES)
def test_the_card_yaml_reads_back_any_class_name(names: list[str]) -> None:
    features = {"objects": [{"category": {"names": names, "_type": "ClassLabel"}}]}
    text = hub._yaml({"dataset_info": {"features": hub._yaml_features(features)}})
    back = yaml.safe_load(io.StringIO(text))
    labels = back["dataset_info"]["features"][0]["list"][0]["dtype"]["class_label"]["names"]
    assert labels == {str(index): name for index, name in enumerate(names)}
    parsed = datasets.Features._from_yaml_list(back["dataset_info"]["features"])
    assert item_of(parsed["objects"])["category"].names == names


def test_image_bytes_are_the_files(voc: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    split_output(voc, out)
    row = pq.read_table(out / "data" / "test").to_pylist()[0]
    image = row["image"]
    assert image["path"] == row["filename"]
    assert image["bytes"] == (voc.root / row["filename"]).read_bytes()
    assert Image.open(io.BytesIO(image["bytes"])).size == voc.sizes[row["key"]]


def test_a_split_run_into_the_earlier_layout_replaces_it(voc: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    for split in ("train", "test"):
        convert(str(voc.root), str(out / f"split={split}" / "part-00000.parquet"))
    keep = write(out / "split=train" / "notes.parquet", b"not ours")
    report = convert(str(voc.root), str(out), to_format="parquet", split="train=0.5,test=0.5")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == [
        "data/test/part-00000.parquet",
        "data/train/part-00000.parquet",
        "split=train/notes.parquet",
    ]
    assert keep.exists() and any("removed 2 file(s)" in text for text in report.warnings)
    loaded = datasets.load_dataset(str(out))
    assert sorted([*loaded["train"]["key"], *loaded["test"]["key"]]) == sorted(voc.boxes)


def test_the_card_says_in_which_space_the_boxes_are(voc: Dataset, tmp_path: Path) -> None:
    """The card names the box format: corners, in pixels or normalized (from TFRecords),
    as the rows' `coords` say; a Hub reader has nothing else to go by."""
    pixels = tmp_path / "pixels"
    split_output(voc, pixels)
    record = tmp_path / "all.record"
    convert(str(voc.root), str(record))
    normalized = tmp_path / "normalized"
    convert(str(record), str(normalized), to_format="parquet", split=SPLIT, seed=3)
    corners = "Boxes: `xmin`, `ymin`, `xmax`, `ymax` of `objects`, corners from the top left"
    for folder, space in ((pixels, "pixel"), (normalized, "normalized")):
        coords = pq.read_table(folder / "data" / "train").column("coords").to_pylist()
        assert set(coords) == {space}
        card = (folder / "README.md").read_text(encoding="utf-8")
        said = {"pixel": "in pixels.", "normalized": "normalized: fractions of the image's"}
        assert f"{corners}, {said[space]}" in card
