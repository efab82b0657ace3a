"""`write()`: records built in Python to any output, iterated once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import draw_image
from od_protos import parse_with_protobuf
from test_tfrecord import read_examples

from annoconv import AnnoconvError, ImageRecord, ObjectAnnotation, convert, write
from annoconv.formats.tfrecord import shard_name

SIZES = {"a.jpg": (40, 30), "b.png": (64, 48), "c.jpg": (50, 50)}
BOXES = {
    "a.jpg": [("dog", 4, 3, 20, 15), ("cat", 0, 0, 40, 30)],
    "b.png": [("cat", 8, 12, 32, 48)],
    "c.jpg": [],
}


class Detections:
    """A generator of records that counts how often it is iterated."""

    def __init__(self) -> None:
        self.passes = 0

    def __iter__(self) -> Iterator[ImageRecord]:
        self.passes += 1
        for name, (width, height) in SIZES.items():
            objects = [
                ObjectAnnotation(label=label, xmin=x0, ymin=y0, xmax=x1, ymax=y1)
                for label, x0, y0, x1, y1 in BOXES[name]
            ]
            yield ImageRecord(
                key=f"cam1/{name}", filename=name, width=width, height=height, objects=objects
            )


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    for name, (width, height) in SIZES.items():
        draw_image(tmp_path / "photos" / name, width, height)
    return tmp_path / "photos"


def test_records_to_split_tfrecords_in_one_pass(photos: Path, tmp_path: Path) -> None:
    records = Detections()
    out = tmp_path / "out" / "cams.record"
    report = write(
        iter(records),
        str(out),
        images=str(photos),
        split="train=0.5,test=0.5",
        seed=3,
        write_options={"shards": 2},
        label_map_output=str(tmp_path / "out" / "label_map.pbtxt"),
    )
    assert records.passes == 1
    assert (report.images_written, report.boxes_written, report.balanced) == (3, 3, True)
    ids = {"cat": 1, "dog": 2}
    label_map = (tmp_path / "out" / "label_map.pbtxt").read_text(encoding="utf-8")
    assert parse_with_protobuf(label_map) == [("cat", 1, None), ("dog", 2, None)]
    shards = [
        Path(shard_name(str(tmp_path / "out" / f"cams-{split}.record"), index, 2))
        for split in ("train", "test")
        for index in range(2)
    ]
    examples = {e["image/source_id"].decode(): e for e in read_examples(shards)}
    assert sorted(examples) == ["cam1/a.jpg", "cam1/b.png", "cam1/c.jpg"]
    for name, (width, height) in SIZES.items():
        example = examples[f"cam1/{name}"]
        data = (photos / name).read_bytes()
        assert example["image/encoded"] == data
        assert example["image/key/sha256"].decode() == hashlib.sha256(data).hexdigest()
        assert example["decoded_shape"] == (height, width, 3)
        boxes = BOXES[name]
        assert [t.decode() for t in example["image/object/class/text"]] == [b[0] for b in boxes]
        assert list(example["image/object/class/label"]) == [ids[b[0]] for b in boxes]
        assert list(example["image/object/bbox/xmin"]) == pytest.approx(
            [b[1] / width for b in boxes]
        )
        assert list(example["image/object/bbox/ymax"]) == pytest.approx(
            [b[4] / height for b in boxes]
        )


def test_records_to_csv_as_the_same_records_through_voc(photos: Path, tmp_path: Path) -> None:
    write(Detections(), str(tmp_path / "voc"), to_format="voc")
    convert(str(tmp_path / "voc"), str(tmp_path / "via-voc.csv"))
    write(Detections(), str(tmp_path / "direct.csv"))
    direct = (tmp_path / "direct.csv").read_text(encoding="utf-8").splitlines()
    assert direct[1:] == [
        "a.jpg,40,30,dog,4,3,20,15",
        "a.jpg,40,30,cat,0,0,40,30",
        "b.png,64,48,cat,8,12,32,48",
        "c.jpg,50,50,,,,,",
    ]
    via_voc = (tmp_path / "via-voc.csv").read_text(encoding="utf-8").splitlines()
    assert via_voc[0] == direct[0] and sorted(via_voc[1:]) == sorted(direct[1:])


def test_a_missing_image_is_skipped_and_named(photos: Path, tmp_path: Path) -> None:
    (photos / "b.png").unlink()
    report = write(Detections(), str(tmp_path / "x.record"), images=str(photos), on_error="skip")
    assert (report.images_written, report.boxes_written) == (2, 2)
    [skipped] = report.skipped
    assert (skipped.source, skipped.boxes) == ("cam1/b.png", 1)
    assert "image 'b.png' not found" in skipped.reason


def test_what_is_not_a_record_or_repeats_a_key_fails(tmp_path: Path) -> None:
    record = next(iter(Detections()))
    with pytest.raises(AnnoconvError, match=r"<records>: item 1: key 'cam1/a.jpg' twice"):
        write([record, record], str(tmp_path / "x.csv"))
    with pytest.raises(AnnoconvError, match=r"<records>: item 0 is a dict, not an ImageRecord"):
        write([{"key": "k"}], str(tmp_path / "x.csv"))  # type: ignore[list-item]
    with pytest.raises(AnnoconvError, match="local engine"):
        write([record], str(tmp_path / "x.csv"), engine="processes")
    assert not (tmp_path / "x.csv").exists()
    assert write([record], str(tmp_path / "x.csv"), engine="local").images_written == 1
