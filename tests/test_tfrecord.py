"""VOC + images -> TFRecord shards, read back by TensorFlow itself with the OD API's spec."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf
from factories import Box, draw_image, labelimg_xml, write
from od_protos import parse_with_protobuf
from PIL import Image

from annoconv import convert
from annoconv.cli import main
from annoconv.engines import run_job
from annoconv.formats.tfrecord import TFRecordShardWriter, shard_name
from annoconv.formats.voc import VocReader
from annoconv.labelmap import LabelMap
from annoconv.options import RunOptions
from annoconv.pipeline import PreparingWriter
from annoconv.pipeline import run as run_pipeline
from annoconv.plan import make_plan

# The TF Object Detection API decoder's keys_to_features (tf_example_decoder.py).
OD_API_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature((), tf.string, default_value="jpeg"),
    "image/filename": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/key/sha256": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/source_id": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=1),
    "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=1),
    "image/class/text": tf.io.VarLenFeature(tf.string),
    "image/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/class/text": tf.io.VarLenFeature(tf.string),
    "image/object/area": tf.io.VarLenFeature(tf.float32),
    "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
    "image/object/difficult": tf.io.VarLenFeature(tf.int64),
    "image/object/group_of": tf.io.VarLenFeature(tf.int64),
    "image/object/weight": tf.io.VarLenFeature(tf.float32),
}

# (relative xml path, image file written, image size, xml size, boxes)
IMAGES: list[tuple[str, str, tuple[int, int], list[Box]]] = [
    (
        "p1/1.xml",
        "p1/1.jpg",
        (640, 480),
        [Box("figure", 10, 20, 110, 220), Box("label", 300.5, 40.25, 400, 300)],
    ),
    ("p1/2.xml", "p1/2.png", (320, 240), [Box("figure", 1, 2, 320, 240, difficult=1)]),
    ("p2/1.xml", "p2/1.tif", (256, 330), [Box("figure", 5, 6, 200, 300)]),
    ("p2/2.xml", "p2/2.jpg", (200, 100), []),
    ("p3/1.xml", "p3/1.bmp", (64, 48), [Box("label", 0, 0, 64, 48)]),
]


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    ann, images = tmp_path / "ann", tmp_path / "images"
    for xml, image, (width, height), boxes in IMAGES:
        stem_jpg = Path(xml).with_suffix(".jpg").name  # XMLs name .jpg, as in USPTO
        write(ann / xml, labelimg_xml(stem_jpg, width, height, boxes, depth=3))
        if image.endswith(".tif"):
            draw_image(images / image, width, height, mode="1", compression="group4")
        else:
            draw_image(images / image, width, height)
    return ann, images


def read_examples(paths: list[Path], compression: str = "") -> list[dict[str, Any]]:
    dataset = tf.data.TFRecordDataset([str(p) for p in paths], compression_type=compression)
    examples = []
    for serialized in dataset:
        parsed = tf.io.parse_single_example(serialized, OD_API_SPEC)
        example = {
            key: (
                tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value
            ).numpy()
            for key, value in parsed.items()
        }
        decoded = tf.io.decode_image(example["image/encoded"], channels=3)
        example["decoded_shape"] = tuple(decoded.shape)
        examples.append(example)
    return examples


def expected_by_key() -> dict[str, dict[str, Any]]:
    ids = {"figure": 1, "label": 2}
    expected = {}
    for xml, _image, (width, height), boxes in IMAGES:
        expected[xml] = {
            "size": (height, width),
            "xmin": [b.xmin / width for b in boxes],
            "ymin": [b.ymin / height for b in boxes],
            "xmax": [b.xmax / width for b in boxes],
            "ymax": [b.ymax / height for b in boxes],
            "labels": [ids[b.label] for b in boxes],
            "texts": [b.label.encode() for b in boxes],
            "difficult": [b.difficult for b in boxes],
        }
    return expected


def check_examples(examples: list[dict[str, Any]]) -> None:
    expected = expected_by_key()
    for example in examples:
        want = expected[example["image/source_id"].decode()]
        height, width = want["size"]
        assert (example["image/height"], example["image/width"]) == (height, width)
        assert example["decoded_shape"] == (height, width, 3)
        for name in ("xmin", "ymin", "xmax", "ymax"):
            got = example[f"image/object/bbox/{name}"].tolist()
            assert got == pytest.approx(want[name], abs=1e-6)
        assert example["image/object/class/label"].tolist() == want["labels"]
        assert example["image/object/class/text"].tolist() == want["texts"]
        assert example["image/object/difficult"].tolist() == want["difficult"]
        assert example["image/format"] in (b"jpeg", b"png")
        import hashlib

        digest = hashlib.sha256(example["image/encoded"]).hexdigest().encode()
        assert example["image/key/sha256"] == digest


def test_xml2tfrecord_split_shards_read_by_tensorflow(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    ann, images = dataset
    out = tmp_path / "out" / "uspto.record"
    args = ["xml2tfrecord", ann, out, "--images", images, "--split", "train=0.6,test=0.4"]
    assert main([str(a) for a in [*args, "--shards", "2", "--seed", "1", "-q"]]) == 0
    train = [Path(shard_name(str(tmp_path / "out" / "uspto-train.record"), i, 2)) for i in range(2)]
    test = [Path(shard_name(str(tmp_path / "out" / "uspto-test.record"), i, 2)) for i in range(2)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [p.name for p in train + test] + ["label_map.pbtxt"]
    )
    train_examples, test_examples = read_examples(train), read_examples(test)
    assert (len(train_examples), len(test_examples)) == (3, 2)
    keys = {e["image/source_id"].decode() for e in train_examples + test_examples}
    assert keys == {xml for xml, *_ in IMAGES}
    check_examples(train_examples + test_examples)
    label_map = (tmp_path / "out" / "label_map.pbtxt").read_text(encoding="utf-8")
    assert parse_with_protobuf(label_map) == [("figure", 1, None), ("label", 2, None)]


def test_tiff_becomes_png_and_jpeg_is_embedded_unchanged(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    ann, images = dataset
    out = tmp_path / "all.record"
    convert(str(ann), str(out), images=str(images))
    examples = {
        e["image/source_id"].decode(): e for e in read_examples([Path(f"{out}-00000-of-00001")])
    }
    assert examples["p2/1.xml"]["image/format"] == b"png"
    assert examples["p1/1.xml"]["image/encoded"] == (images / "p1" / "1.jpg").read_bytes()
    assert examples["p1/2.xml"]["image/encoded"] == (images / "p1" / "2.png").read_bytes()
    assert examples["p2/2.xml"]["image/object/bbox/xmin"].tolist() == []


def test_png_level_changes_only_the_transcoded_bytes(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    ann, images = dataset
    runs = {}
    for level in ("1", "9"):
        out = tmp_path / level / "all.record"
        args = ["xml2tfrecord", ann, out, "--images", images, "--png-level", level, "-q"]
        assert main([str(a) for a in args]) == 0
        runs[level] = {
            e["image/source_id"].decode(): e for e in read_examples([Path(f"{out}-00000-of-00001")])
        }
    fast, small = runs["1"], runs["9"]
    for key in ("p1/1.xml", "p1/2.xml", "p2/2.xml"):  # JPEG and PNG: embedded as they are
        assert fast[key]["image/encoded"] == small[key]["image/encoded"]
    page = "p2/1.xml"  # the bilevel G4 TIFF: a 1-bit PNG at either level, the same pixels
    assert fast[page]["image/encoded"] != small[page]["image/encoded"]
    pixels = [tf.io.decode_png(run[page]["image/encoded"]).numpy() for run in (fast, small)]
    assert (pixels[0] == pixels[1]).all() and set(pixels[0].ravel()) == {0, 255}
    for run in (fast, small):
        assert Image.open(io.BytesIO(run[page]["image/encoded"])).mode == "1"
    check_examples([*fast.values(), *small.values()])


@pytest.mark.parametrize("from_archive", [False, True])
def test_bytes_do_not_depend_on_the_threads_preparing_images(
    dataset: tuple[Path, Path], tmp_path: Path, from_archive: bool
) -> None:
    """The local engine transcodes a window of records ahead on every core (`prepare_threads`,
    `pipeline.PreparingWriter`): the shards, the report and its warnings are those of
    preparing each record as it is written, also with bad items (skipped) in the stream and
    images fed from an archive."""
    ann, images = dataset
    for index in range(12):  # more pages than threads and window, so the window turns over
        xml = f"p4/{index}.xml"
        size = (330, 256) if index == 5 else (256, 330)  # one disagrees: a warning
        write(ann / xml, labelimg_xml(f"{index}.jpg", *size, [Box("figure", 5, 6, 200, 250)]))
        draw_image(images / f"p4/{index}.tif", 256, 330, mode="1", compression="group4")
    write(images / "p4" / "3.tif", b"II*\x00 not a tiff")  # a bad item in the window
    (images / "p4" / "7.tif").unlink()  # and a missing one
    source = str(images)
    if from_archive:
        source = str(tmp_path / "pages.tar")
        with tarfile.open(source, "w") as tar:
            for path in sorted(images.rglob("*.*")):
                tar.add(path, arcname=path.relative_to(images).as_posix())
    results = {}
    for threads in (1, 2, 5):
        out = tmp_path / str(threads) / "x.record"
        options = RunOptions.of(
            {
                "images": source,
                "split": "train=0.5,test=0.5",
                "seed": 3,
                "on_error": "skip",
                "write_options": {"shards": 2, "size_policy": "warn"},
            }
        )
        plan = make_plan(str(ann), str(out), options)
        report = run_job(replace(plan.job, prepare_threads=threads), plan.reader, None)
        shards = sorted(out.parent.glob("x-*.record-*"))
        results[threads] = (
            [shard.read_bytes() for shard in shards],
            [(o.path.replace(str(out.parent), ""), o.size) for o in report.outputs],
            (report.images_read, report.images_written, report.boxes_written),
            report.skipped,  # in stream order, as are the warnings
            report.warnings,
        )
    assert results[1][2] == (17, 15, 15)
    assert len(results[1][0]) == 4
    assert [(item.source, item.images) for item in results[1][3]] == [
        (str(ann / "p4" / "3.xml"), 1),
        (str(ann / "p4" / "7.xml"), 1),
    ]
    assert any("boxes scaled" in text for text in results[1][4])
    assert results[1] == results[2] == results[5]


@pytest.mark.parametrize(("pages", "costly"), [(False, False), (True, True)])
def test_preparing_threads_are_used_only_for_costly_work(
    tmp_path: Path, pages: bool, costly: bool
) -> None:
    """Small JPEGs are embedded as they are (cheap: each is prepared when written, on the
    writing thread); USPTO-size G4 pages are transcoded (costly: prepared on the pool). Either
    way the bytes are those of the plain writer. (Both sides are far from `Pace`'s 2 ms: a
    small JPEG takes a fraction of a millisecond, a page tens of milliseconds.)"""
    ann, images = tmp_path / "ann", tmp_path / "images"
    count = 12 if pages else 40
    for index in range(count):
        size = (2560, 3300) if pages else (64, 48)
        write(ann / f"{index}.xml", labelimg_xml(f"{index}.jpg", *size, [Box("a", 1, 2, 30, 40)]))
        if pages:
            draw_image(images / f"{index}.tif", *size, mode="1", compression="group4")
        else:
            draw_image(images / f"{index}.jpg", *size)
    records = list(VocReader(str(ann), images=str(images)))
    label_map = LabelMap.parse("item { name: 'a' id: 1 }")
    outputs = {}
    for threads in (1, 3):
        destination = str(tmp_path / f"{threads}.record")
        writer = TFRecordShardWriter(destination, label_map=label_map, images=str(images))
        if threads > 1:
            writer = PreparingWriter(writer, threads)
            items = writer.stage(records)
        else:
            items = iter(records)
        report = run_pipeline(items, writer)
        assert report.images_written == count
        outputs[threads] = Path(report.outputs[0].path).read_bytes()
        if isinstance(writer, PreparingWriter):
            assert writer.pace.costly is costly, writer.pace.average
    assert outputs[1] == outputs[3]


def test_two_runs_are_byte_identical_and_gzip_reads(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    ann, images = dataset
    first, second = tmp_path / "a" / "x.record", tmp_path / "b" / "x.record"
    for out in (first, second):
        convert(str(ann), str(out), images=str(images), write_options={"shards": 3})
    for index in range(3):
        a = Path(shard_name(str(first), index, 3)).read_bytes()
        assert a == Path(shard_name(str(second), index, 3)).read_bytes()
    gz = tmp_path / "gz" / "x.record"
    convert(str(ann), str(gz), images=str(images), write_options={"compression": "GZIP"})
    check_examples(read_examples([Path(shard_name(str(gz), 0, 1))], "GZIP"))


@pytest.mark.parametrize("engine", ["local", "processes"])
def test_a_rerun_with_other_shards_removes_the_earlier_set(
    dataset: tuple[Path, Path], tmp_path: Path, engine: str
) -> None:
    """A glob over the prefix (a training config's ``x.record-*``) must not read the
    earlier run's shards with the new ones; another prefix's shards stay."""
    ann, images = dataset
    out = tmp_path / "out" / "x.record"
    convert(str(ann), str(out), images=str(images), write_options={"shards": 4})
    for other_prefix in ("xy.record", "x.record-old"):
        keep = tmp_path / "out" / f"{other_prefix}-00000-of-00004"
        keep.write_bytes(Path(shard_name(str(out), 0, 4)).read_bytes())
    parallel: dict[str, Any] = {"engine": engine, "workers": 2} if engine != "local" else {}
    report = convert(
        str(ann), str(out), images=str(images), write_options={"shards": 2}, **parallel
    )
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "x.record-00000-of-00002",
        "x.record-00001-of-00002",
        "x.record-old-00000-of-00004",
        "xy.record-00000-of-00004",
    ]
    assert report.warnings == [
        "removed 4 file(s) an earlier run left beside the new output: "
        + ", ".join(shard_name(str(out), i, 4) for i in range(3))
        + " and 1 more"
    ]
    check_examples(read_examples([Path(shard_name(str(out), i, 2)) for i in range(2)]))
    assert convert(str(out), str(tmp_path / "back.csv")).images_written == 5  # by its prefix


def test_cli_prints_the_pipeline_config_paths_tensorflow_globs(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, images = dataset
    out = tmp_path / "x.record"
    args = ["xml2tfrecord", str(ann), str(out), "--images", str(images)]
    assert main([*args, "--split", "train=0.6,test=0.4", "--shards", "2"]) == 0
    lines = capsys.readouterr().err.splitlines()
    start = lines.index("for the TF Object Detection API's pipeline.config:")
    paths = [line.split('"')[1] for line in lines[start + 1 : -1]]
    assert [line.split(":")[0].strip() for line in lines[start + 1 :]] == [
        "input_path",
        "input_path",
        "label_map_path",
        "num_classes",
    ]
    assert lines[-1] == "  num_classes: 2"
    for pattern, split in zip(paths[:2], ("train", "test"), strict=True):
        expected = [shard_name(str(tmp_path / f"x-{split}.record"), i, 2) for i in range(2)]
        assert sorted(tf.io.gfile.glob(pattern)) == expected
    assert parse_with_protobuf(Path(paths[2]).read_text(encoding="utf-8")) == [
        ("figure", 1, None),
        ("label", 2, None),
    ]


def test_shard_assignment_ignores_input_order(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = dataset
    xmls = sorted(str(p) for p in ann.rglob("*.xml"))
    forward, backward = tmp_path / "f" / "x.record", tmp_path / "b" / "x.record"
    convert(xmls, str(forward), images=str(images), write_options={"shards": 2})
    convert(list(reversed(xmls)), str(backward), images=str(images), write_options={"shards": 2})
    for index in range(2):
        ours = read_examples([Path(shard_name(str(forward), index, 2))])
        theirs = read_examples([Path(shard_name(str(backward), index, 2))])
        assert sorted(e["image/source_id"] for e in ours) == sorted(
            e["image/source_id"] for e in theirs
        )


def test_inspect_and_tfrecord_to_csv(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, images = dataset
    out = tmp_path / "x.record"
    convert(str(ann), str(out), images=str(images), label_map_output=str(tmp_path / "lm.pbtxt"))
    assert main(["inspect", str(out), "--label-map", str(tmp_path / "lm.pbtxt"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["records"], shown["boxes"], shown["problems"]) == (5, 5, [])
    assert shown["classes"] == {"figure": 3, "label": 2}
    back = tmp_path / "back.csv"
    convert(str(out), str(back))
    with back.open(encoding="utf-8", newline="") as handle:
        rows = {(r["filename"], r["class"]): r for r in csv.DictReader(handle)}
    # Coordinates come back through float32, as TensorFlow stores them.
    label = rows[("p1/1.jpg", "label")]
    assert float(label["xmin"]) == pytest.approx(300.5, abs=1e-3)
    assert float(label["ymax"]) == pytest.approx(300, abs=1e-3)
    assert (label["width"], label["height"]) == ("640", "480")
    assert rows[("p2/2.jpg", "")]["xmin"] == ""  # the negative image survives


def test_a_folder_of_outputs_reads_its_tfrecords_only(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The label map, a CSV, Finder's .DS_Store and a staging folder beside the shards are
    not taken for TFRecords; with no TFRecord-named file, files named as no format are."""
    ann, images = dataset
    out = tmp_path / "out"
    convert(
        str(ann),
        str(out / "x.record"),
        images=str(images),
        split="a=0.5,b=0.5",
        label_map_output=str(out / "lm.pbtxt"),
    )
    convert(str(ann), str(out / "boxes.csv"), images=str(images))
    write(out / ".DS_Store", "\x00\x01junk")
    write(out / ".x.record.annoconv-0a1b2c3d" / "x-a.record-00000-of-00001", "partial")
    assert main(["inspect", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(Path(f["path"]).name for f in shown["files"]) == [
        "x-a.record-00000-of-00001",
        "x-b.record-00000-of-00001",
    ]
    assert (shown["records"], shown["boxes"], shown["problems"]) == (5, 5, [])
    back = tmp_path / "back.csv"
    assert convert(str(out), str(back), from_format="tfrecord").images_written == 5

    bare = tmp_path / "bare"  # TFRecords named as no format at all
    bare.mkdir()
    for shard in sorted(out.glob("x-*.record-*")):
        (bare / shard.name.split(".")[0]).write_bytes(shard.read_bytes())
    assert (
        convert(str(bare), str(tmp_path / "bare.csv"), from_format="tfrecord").images_written == 5
    )
    assert (tmp_path / "bare.csv").read_bytes() == back.read_bytes()


def test_a_rerun_onto_its_own_input_prefix_keeps_the_input(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    ann, images = dataset
    out = tmp_path / "o" / "train.record"
    convert(str(ann), str(out), images=str(images), write_options={"shards": 4})
    inputs = {p.name: p.read_bytes() for p in out.parent.glob("train.record-*")}
    report = convert(str(out), str(out), images=str(images), write_options={"shards": 2})
    assert report.images_written == 5
    assert {p.name: p.read_bytes() for p in out.parent.glob("train.record-*-of-00004")} == inputs
    assert report.warnings == [
        "kept 4 file(s) of another shard set under the output's prefix: this run read them "
        f"({shard_name(str(out), 0, 4)} ...)"
    ]


def test_shards_named_by_other_tools_read_by_prefix(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """TFDS-style names with an extension after the shard numbers, gzip copies, our own
    shards under a prefix ending in another format's extension, a file:// folder with a
    hidden copy, an empty folder."""
    ann, images = dataset
    ours = tmp_path / "ours" / "boxes.txt"  # a prefix that says frcnn, holding TFRecords
    convert(
        str(ann), str(ours), to_format="tfrecord", images=str(images), write_options={"shards": 2}
    )
    assert main(["inspect", str(ours), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 5
    other = tmp_path / "other"
    other.mkdir()
    for index in range(2):
        data = Path(shard_name(str(ours), index, 2)).read_bytes()
        (other / f"train-0000{index}-of-00002.tfrecord").write_bytes(data)
        (other / f"val.record-0000{index}-of-00002.gz").write_bytes(gzip.compress(data))
    (other / ".hidden").mkdir()
    (other / ".hidden" / "copy.tfrecord").write_bytes(data)
    for prefix in ("train", "val.record"):
        read = convert(str(other / prefix), str(tmp_path / f"{prefix}.csv"), from_format="tfrecord")
        assert read.images_written == 5
    folder = convert(f"file://{other}", str(tmp_path / "all.csv"), from_format="tfrecord")
    assert folder.images_written == 10  # the hidden copy is not read
    (tmp_path / "empty").mkdir()
    assert (
        convert(
            str(tmp_path / "empty"), str(tmp_path / "e.csv"), from_format="tfrecord"
        ).images_read
        == 0
    )


def test_inspect_says_what_is_not_a_tfrecord(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, images = dataset
    assert main(["inspect", str(ann)]) == 1
    assert f"{ann}: no TFRecord files in this folder" in capsys.readouterr().err
    csv_file = tmp_path / "boxes.csv"
    convert(str(ann), str(csv_file), images=str(images))
    assert main(["inspect", str(csv_file)]) == 1
    assert f"{csv_file}: named as a csv file, not a TFRecord; not read" in capsys.readouterr().err


def test_corrupt_shard_is_reported_by_inspect(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, images = dataset
    out = tmp_path / "x.record"
    convert(str(ann), str(out), images=str(images))
    shard = Path(shard_name(str(out), 0, 1))
    data = bytearray(shard.read_bytes())
    data[40] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert main(["inspect", str(shard)]) == 1
    assert str(shard) in capsys.readouterr().err


def test_missing_image_names_the_annotation(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, images = dataset
    (images / "p3" / "1.bmp").unlink()
    out = tmp_path / "x.record"
    assert main(["xml2tfrecord", str(ann), str(out), "--images", str(images), "-q"]) == 1
    err = capsys.readouterr().err
    assert str(ann / "p3" / "1.xml") in err and "not found" in err
    assert list(tmp_path.glob("x.record*")) == []
    report = tmp_path / "r.json"
    args = ["xml2tfrecord", str(ann), str(out), "--images", str(images), "--on-error", "skip"]
    assert main([*args, "-q", "--report-json", str(report)]) == 0
    counts = json.loads(report.read_text(encoding="utf-8"))
    assert counts["images"] == {"read": 5, "written": 4, "skipped": 1}
    assert counts["boxes"] == {"read": 5, "written": 4, "skipped": 1}


def test_a_whole_run_never_imports_tensorflow(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = dataset
    script = (
        "import sys\nfrom annoconv.cli import main\n"
        f"code = main(['xml2tfrecord', {str(ann)!r}, {str(tmp_path / 'o.record')!r}, "
        f"'--images', {str(images)!r}, '-q'])\n"
        "print(code, 'tensorflow' in sys.modules, 'google.protobuf' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["0", "False", "False"], done.stderr


def mismatched(tmp_path: Path) -> tuple[Path, Path]:
    """One XML claiming 640x480 for a 320x240 image (a resized copy), one fine."""
    ann, images = tmp_path / "ann", tmp_path / "images"
    write(ann / "big.xml", labelimg_xml("big.jpg", 640, 480, [Box("figure", 64, 48, 320, 240)]))
    draw_image(images / "big.jpg", 320, 240)
    write(ann / "ok.xml", labelimg_xml("ok.jpg", 100, 100, [Box("label", 10, 10, 50, 50)]))
    draw_image(images / "ok.jpg", 100, 100)
    return ann, images


def test_size_policy_fail_warn_skip(tmp_path: Path) -> None:
    ann, images = mismatched(tmp_path)
    out = tmp_path / "x.record"
    with pytest.raises(Exception, match=r"big.xml: image .*big.jpg is 320x240 but the annotation"):
        convert(str(ann), str(out), images=str(images))
    warned = convert(str(ann), str(out), images=str(images), write_options={"size_policy": "warn"})
    assert warned.images_written == 2 and len(warned.warnings) == 1
    assert "trusting the image: boxes scaled by 0.5, 0.5" in warned.warnings[0]
    examples = {
        e["image/source_id"].decode(): e for e in read_examples([Path(shard_name(str(out), 0, 1))])
    }
    big = examples["big.xml"]
    assert (big["image/width"], big["image/height"]) == (320, 240)
    assert big["decoded_shape"] == (240, 320, 3)
    # Normalized boxes are the same whichever size they are measured in.
    assert big["image/object/bbox/xmin"].tolist() == pytest.approx([0.1])
    assert big["image/object/bbox/xmax"].tolist() == pytest.approx([0.5])
    skipped = convert(str(ann), str(out), images=str(images), write_options={"size_policy": "skip"})
    assert (skipped.images_written, skipped.images_skipped, skipped.boxes_skipped) == (1, 1, 1)
    assert "320x240 but the annotation says 640x480" in skipped.skipped[0].reason


def test_exif_rotated_photo_is_embedded_upright(tmp_path: Path) -> None:
    """labelImg >= 2020 annotates the displayed frame of a phone photo (EXIF orientation 6):
    the embedded pixels must be that frame, since TensorFlow ignores EXIF."""
    ann, images = tmp_path / "ann", tmp_path / "images"
    draw_image(images / "phone.jpg", 200, 100, exif_orientation=6)  # stored 200x100
    box = Box("label", 10, 20, 90, 180)
    write(ann / "phone.xml", labelimg_xml("phone.jpg", 100, 200, [box]))  # displayed 100x200
    out = tmp_path / "x.record"
    convert(str(ann), str(out), images=str(images))
    (example,) = read_examples([Path(shard_name(str(out), 0, 1))])
    assert (example["image/width"], example["image/height"]) == (100, 200)
    assert example["decoded_shape"] == (200, 100, 3)
    assert example["image/object/bbox/ymax"].tolist() == pytest.approx([0.9])


def test_reads_records_written_by_tensorflow(tmp_path: Path) -> None:
    """Another tool's OD API records: class ids only (text missing), no sha256, no size."""
    path = tmp_path / "other.tfrecord"
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a.jpg"])),
                "image/object/bbox/xmin": tf.train.Feature(
                    float_list=tf.train.FloatList(value=[0.25])
                ),
                "image/object/bbox/xmax": tf.train.Feature(
                    float_list=tf.train.FloatList(value=[0.5])
                ),
                "image/object/bbox/ymin": tf.train.Feature(
                    float_list=tf.train.FloatList(value=[0.125])
                ),
                "image/object/bbox/ymax": tf.train.Feature(
                    float_list=tf.train.FloatList(value=[1.0])
                ),
                "image/object/class/label": tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[2])
                ),
            }
        )
    )
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(example.SerializeToString())
    label_map = write(
        tmp_path / "lm.pbtxt", "item { name: 'cat' id: 1 } item { name: 'dog' id: 2 }"
    )
    out = tmp_path / "out.csv"
    report = convert(
        str(path),
        str(tmp_path / "normalized.csv"),
        read_options={"label_map": str(label_map)},
        write_options={"columns": ["xmin_norm"]},
        on_error="skip",
    )
    # Without a size the pixel CSV cannot be written: skipped, and said so.
    assert report.images_skipped == 1 and "image size is unknown" in report.skipped[0].reason
    from annoconv import read

    (record,) = list(read(str(path), read_options={"label_map": str(label_map)}))
    assert record.filename == "a.jpg" and record.coords == "normalized"
    obj = record.objects[0]
    assert (obj.label, obj.xmin, obj.ymin, obj.xmax, obj.ymax) == ("dog", 0.25, 0.125, 0.5, 1.0)
    assert not out.exists()
