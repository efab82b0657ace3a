"""The bundled story data and scripts (examples/), and the example plugin package.

Generators must reproduce the committed data byte for byte; each story script must produce
what an independent reading of the bundled files says it should; the plugin package is
really installed (pip, into a scratch folder) and used by the `annoconv` command.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import math
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq
import pytest
from od_protos import parse_with_protobuf
from PIL import Image, ImageOps
from test_examples import expected_rows, files_under

from annoconv.formats.tfrecord import tfrecord_files
from annoconv.tfexample import Keys, decode_example, iter_tfrecords

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CAMERA, PHONE = "/m/0dv5r", "/m/050k8"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def examples_in(prefix: Path) -> list[dict[str, tuple[str, list[object]]]]:
    return [
        decode_example(payload)
        for uri in tfrecord_files(str(prefix))
        for payload in iter_tfrecords(uri)
    ]


def values(example: dict[str, tuple[str, list[object]]], key: str) -> list[object]:
    return example[key][1] if key in example else []


# --- generated data -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "folder"),
    [("make_openimages_data.py", "openimages"), ("make_links_data.py", "links")],
)
def test_generator_reproduces_the_bundled_data(script: str, folder: str, tmp_path: Path) -> None:
    out = tmp_path / folder
    done = subprocess.run(
        [sys.executable, EXAMPLES / script, out], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert files_under(out) == files_under(EXAMPLES / folder)


def test_links_photos_are_annotated_in_their_displayed_frame() -> None:
    """The data really has the EXIF problem: the XML size is the turned one."""
    turned = 0
    for xml in sorted((EXAMPLES / "links" / "photos").glob("*.xml")):
        root = ET.parse(xml).getroot()
        annotated = (int(root.findtext("size/width", "")), int(root.findtext("size/height", "")))
        with Image.open(xml.with_suffix(".jpg")) as image:
            orientation = image.getexif().get(0x0112, 1)
            assert ImageOps.exif_transpose(image).size == annotated, xml.name
            turned += image.size != annotated
            assert (image.size != annotated) == (orientation in (6, 8)), xml.name
    assert turned >= 4


# --- story scripts ------------------------------------------------------------------------


def shard_contents(prefix: Path) -> list[list[tuple[object, ...]]]:
    """Per shard, its records (every feature, the image as its SHA-256), in a set order."""
    shards = []
    for uri in tfrecord_files(str(prefix)):
        records = []
        for payload in iter_tfrecords(uri):
            example = decode_example(payload)
            encoded = values(example, Keys.ENCODED)[0]
            assert isinstance(encoded, bytes)
            digest = hashlib.sha256(encoded).hexdigest()
            assert values(example, Keys.SHA256) == [digest.encode()]
            features = sorted((k, tuple(v)) for k, (_, v) in example.items() if k != Keys.ENCODED)
            records.append((digest, *features))
        shards.append(sorted(records))
    return shards


def test_story_uspto_from_a_tarball_equals_the_folder_run(tmp_path: Path) -> None:
    story = load_script("story_uspto")
    assert story.main([str(tmp_path), "--images-folder"]) == 0
    assert story.main([str(tmp_path / "tar")]) == 0
    with tarfile.open(tmp_path / "tar" / "grant_yb2_20190101.tar") as tar:
        members = tar.getnames()
    assert len(members) == 12 and all(m.endswith(".TIF") for m in members)
    for split in ("train", "test"):
        from_folder = shard_contents(tmp_path / f"uspto-{split}.record")
        from_tar = shard_contents(tmp_path / "tar" / f"uspto-{split}.record")
        assert from_tar == from_folder, split  # same shards, same records, same image bytes
        assert sum(len(shard) for shard in from_tar) == (8 if split == "train" else 4)
        for name in (f"uspto-{split}.csv", "label_map.pbtxt"):
            assert (tmp_path / "tar" / name).read_bytes() == (tmp_path / name).read_bytes()
    check_uspto_outputs(tmp_path / "tar")


def check_uspto_outputs(out: Path) -> None:
    """The CSV summaries, label map and shards of story_uspto.py in `out`, against the XMLs."""
    rows_by_split = {}
    for split in ("train", "test"):
        with (out / f"uspto-{split}.csv").open(newline="", encoding="utf-8") as handle:
            rows_by_split[split] = list(csv.reader(handle))[1:]
    assert sorted(rows_by_split["train"] + rows_by_split["test"]) == sorted(expected_rows())
    assert {row[0] for row in rows_by_split["train"]} & {
        row[0] for row in rows_by_split["test"]
    } == set()
    images = {row[0] for rows in rows_by_split.values() for row in rows}
    assert len({row[0] for row in rows_by_split["test"]}) == round(0.3 * len(images))
    label_map = parse_with_protobuf((out / "label_map.pbtxt").read_text(encoding="utf-8"))
    assert label_map == [("figure label", 1, None), ("patent image", 2, None)]
    ids = {name: number for name, number, _ in label_map}
    for split, rows in rows_by_split.items():
        examples = examples_in(out / f"uspto-{split}.record")
        assert len(tfrecord_files(str(out / f"uspto-{split}.record"))) == 2
        # the TFRecord split holds the same images as the CSV split of the same seed
        assert {values(e, Keys.FILENAME)[0].decode() for e in examples} == {r[0] for r in rows}
        for example in examples:
            assert values(example, Keys.FORMAT) == [b"png"]  # the G4 TIFFs, transcoded
            texts = [t.decode() for t in values(example, Keys.OBJECT_CLASS_TEXT)]
            assert values(example, Keys.OBJECT_CLASS_LABEL) == [ids[t] for t in texts]


def open_images_subset() -> dict[str, list[tuple[str, float, float, float, float]]]:
    """{ImageID: its Camera / Mobile phone boxes (name, xmin, ymin, xmax, ymax)}, by csv."""
    names = dict(csv.reader((EXAMPLES / "openimages" / "class-descriptions-boxable.csv").open()))
    boxes: dict[str, list[tuple[str, float, float, float, float]]] = {}
    with (EXAMPLES / "openimages" / "train-annotations-bbox.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["LabelName"] in (CAMERA, PHONE):
                box = tuple(float(row[k]) for k in ("XMin", "YMin", "XMax", "YMax"))
                boxes.setdefault(row["ImageID"], []).append((names[row["LabelName"]], *box))
    return boxes


def test_story_openimages(tmp_path: Path) -> None:
    assert load_script("story_openimages").main([str(tmp_path)]) == 0
    subset = open_images_subset()
    prefix = "drive/My Drive/GP/Dataset/train/"
    written: dict[str, set[str]] = {}
    for split in ("train", "test"):
        lines = (tmp_path / f"annotation-{split}.txt").read_text(encoding="utf-8").splitlines()
        written[split] = {line.split(",")[0].removeprefix(prefix)[:-4] for line in lines}
        for image_id in written[split]:
            with Image.open(EXAMPLES / "openimages" / "images" / f"{image_id}.jpg") as image:
                width, height = image.size
            expected = {
                f"{prefix}{image_id}.jpg,"
                + ",".join(
                    str(math.floor(v * scale + 0.5))
                    for v, scale in zip(box[1:], (width, height, width, height), strict=True)
                )
                + f",{box[0]}"
                for box in subset[image_id]
            }
            assert {line for line in lines if image_id in line} == expected
    assert (len(written["train"]), len(written["test"])) == (8, 2)
    assert set(written["train"]).isdisjoint(written["test"])
    label_map = parse_with_protobuf((tmp_path / "label_map.pbtxt").read_text(encoding="utf-8"))
    assert sorted((name, display) for name, _, display in label_map) == [
        (PHONE, "Mobile phone"),
        (CAMERA, "Camera"),
    ]
    for split in ("train", "test"):
        examples = examples_in(tmp_path / f"camera-{split}.record")
        assert {values(e, Keys.SOURCE_ID)[0].decode() for e in examples} == written[split]


def test_story_links_embeds_turned_photos_whose_pixels_match_the_boxes(tmp_path: Path) -> None:
    assert load_script("story_links").main([str(tmp_path)]) == 0
    label_map = parse_with_protobuf((tmp_path / "label_map.pbtxt").read_text(encoding="utf-8"))
    assert label_map == [("http", 1, None)]
    seen, boxes = set(), 0
    for split in ("train", "test"):
        for example in examples_in(tmp_path / f"links-{split}.record"):
            seen.add(values(example, Keys.SOURCE_ID)[0].decode())
            data = values(example, Keys.ENCODED)[0]
            assert isinstance(data, bytes)
            with Image.open(io.BytesIO(data)) as image:
                pixels = image.convert("RGB")
            width, height = pixels.size
            assert [width, height] == values(example, Keys.WIDTH) + values(example, Keys.HEIGHT)
            corners = zip(
                *(values(example, k) for k in (Keys.BBOX_XMIN, Keys.BBOX_YMIN, Keys.BBOX_YMAX)),
                strict=True,
            )
            for xmin, ymin, ymax in corners:
                # the blue link bar starts a few pixels right of the box's left edge, at its
                # vertical middle: blue there means the pixels are in the boxes' frame
                red, _, blue = pixels.getpixel(
                    (int(xmin * width) + 8, int((ymin + ymax) / 2 * height))
                )
                assert blue > 140 and red < 100, (values(example, Keys.SOURCE_ID), red, blue)
                boxes += 1
    assert len(seen) == 10 and boxes == 26


def nearest_rank(values: list[float], fractions: list[float]) -> list[float]:
    ordered = sorted(values)
    return [ordered[max(1, math.ceil(f * len(ordered))) - 1] for f in fractions]


def test_story_look_counts_what_the_files_hold_and_finds_the_planted_copy(tmp_path: Path) -> None:
    assert load_script("story_look").main([str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    # independently, from the XMLs
    classes: dict[str, dict[str, int]] = {}
    images_with: Counter[str] = Counter()
    widths, heights = [], []
    for xml in sorted((EXAMPLES / "uspto" / "annotations").rglob("*.xml")):
        objects = ET.parse(xml).getroot().findall("object")
        images_with[str(len(objects))] += 1
        for name in {o.findtext("name") for o in objects}:
            classes.setdefault(str(name), {"boxes": 0, "images": 0})["images"] += 1
        for obj in objects:
            classes[str(obj.findtext("name"))]["boxes"] += 1
            box = {
                k: float(obj.findtext(f"bndbox/{k}", "")) for k in ("xmin", "ymin", "xmax", "ymax")
            }
            widths.append(box["xmax"] - box["xmin"])
            heights.append(box["ymax"] - box["ymin"])
    assert summary["pandas"] == {"classes": classes, "images_with": dict(images_with)}
    ranks = [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1]
    assert summary["duckdb"]["box_width"] == nearest_rank(widths, ranks)
    assert summary["duckdb"]["box_height"] == nearest_rank(heights, ranks)
    oi_classes: dict[str, dict[str, Any]] = {}
    names = dict(csv.reader((EXAMPLES / "openimages" / "class-descriptions-boxable.csv").open()))
    with (EXAMPLES / "openimages" / "train-annotations-bbox.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            entry = oi_classes.setdefault(names[row["LabelName"]], {"boxes": 0, "images": set()})
            entry["boxes"] += 1
            entry["images"].add(row["ImageID"])
    assert summary["duckdb"]["oi_classes"] == {
        name: {"boxes": entry["boxes"], "images": len(entry["images"])}
        for name, entry in oi_classes.items()
    }
    page = (EXAMPLES / "uspto" / "images" / "10165002" / "00000003.tif").read_bytes()
    assert summary["duplicates"] == [
        {
            "sha256": hashlib.sha256(page).hexdigest(),
            "keys": ["10165002/00000003.xml", "10165003/00000005.xml"],
            "conflicting": False,
        }
    ]
    kept = pq.read_table(tmp_path / "unique.parquet", columns=["key"])["key"].to_pylist()
    assert len(kept) == 12 and "10165003/00000005.xml" not in kept
    with Image.open(tmp_path / "uspto-stats.png") as plot:
        assert (plot.format, plot.size) == ("PNG", (1600, 1000))


# --- the plugin package -------------------------------------------------------------------


PIP_INSTALL = ("-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation")


def install_plugin(tmp_path: Path) -> Path:
    """`pip install` the example plugin (offline, no deps) into a folder, as a user would
    into a virtualenv; its dist-info carries the entry point."""
    source = tmp_path / "plugin-src"
    shutil.copytree(EXAMPLES / "plugin", source)
    site = tmp_path / "site"
    command = [sys.executable, *PIP_INSTALL, "--target", str(site), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return site


def command_with_plugin(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`annoconv ARGS...` run in `tmp_path` with the example plugin installed."""
    site = install_plugin(tmp_path)
    env = {"PYTHONPATH": f"{ROOT}:{site}", "PATH": "/usr/bin:/bin"}

    def annoconv(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "annoconv", *args]
        return subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=tmp_path, check=False
        )

    return annoconv


def test_plugin_package_registers_a_format_used_by_the_command(tmp_path: Path) -> None:
    annoconv = command_with_plugin(tmp_path)

    listed = annoconv("formats")
    assert listed.returncode == 0, listed.stderr
    table = listed.stdout.splitlines()
    assert [line.split(None, 3) for line in table if line.startswith("jsonl")] == [
        ["jsonl", ".jsonl", "read/write", "JSON Lines, one image per line (example plugin)"]
    ]
    assert any(line.strip() == "(plugin annoconv_jsonl)" for line in table)
    assert max(len(line) for line in table) <= 100
    uspto = EXAMPLES / "uspto"
    done = annoconv(
        "convert", str(uspto / "annotations"), "u.jsonl", "--images", str(uspto / "images")
    )
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "u.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    # back through the plugin's reader into the tutorial CSV: the XMLs' numbers, unchanged
    done = annoconv("convert", "u.jsonl", "back.csv", "-q")
    assert done.returncode == 0, done.stderr
    with (tmp_path / "back.csv").open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle))[1:] == expected_rows()
    # a broken line is reported naming the file and line, as annoconv's own readers do
    (tmp_path / "bad.jsonl").write_text(lines[0] + "\n{oops\n", encoding="utf-8")
    done = annoconv("convert", "bad.jsonl", "bad.csv")
    assert done.returncode == 1
    assert "bad.jsonl: line 2: not JSON" in done.stderr
    assert not (tmp_path / "bad.csv").exists()


def test_plugin_write_option_is_a_flag_that_takes_effect(tmp_path: Path) -> None:
    """The plugin declares one write option (`ascii`): `convert --help` lists it in the
    plugin's own group, and the flag reaches the plugin's writer."""
    annoconv = command_with_plugin(tmp_path)
    helped = annoconv("convert", "--help")
    assert helped.returncode == 0, helped.stderr
    group = helped.stdout.split("jsonl output:")[1]
    assert "--ascii" in group.split("\n\n")[1]
    (tmp_path / "in.csv").write_text(
        "filename,width,height,class,xmin,ymin,xmax,ymax\nb.jpg,10,10,café,1,1,5,5\n",
        encoding="utf-8",
    )
    assert annoconv("convert", "in.csv", "plain.jsonl", "-q").returncode == 0
    done = annoconv("convert", "in.csv", "ascii.jsonl", "--ascii", "-q")
    assert done.returncode == 0, done.stderr
    plain = json.loads((tmp_path / "plain.jsonl").read_text(encoding="utf-8"))
    escaped = (tmp_path / "ascii.jsonl").read_text(encoding="utf-8")
    assert '"label": "caf\\u00e9"' in escaped and "café" not in escaped
    assert json.loads(escaped) == plain
    refused = annoconv("convert", "in.csv", "x.csv", "--ascii", "-q")
    assert refused.returncode == 2
    assert "the csv writer does not take option 'ascii'" in refused.stderr
    assert not (tmp_path / "x.csv").exists()
