"""`annoconv.torch`: DataLoaders with worker processes over TFRecord shards and over Parquet
give every example exactly once, in torchvision's (image, target) shape, boxes equal to the
source's; without TensorFlow."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch
from detection_data import CLASSES, Dataset, voc_dataset
from factories import Box, draw_image, labelimg_xml, write
from PIL import Image
from torch.utils.data import DataLoader

import annoconv.torch as atorch
from annoconv import AnnotationError, convert

#: float32 normalized coordinates (TFRecords) times the size, against float64 pixels.
TOLERANCE = 1e-3
IDS = {name: index + 1 for index, name in enumerate(sorted(CLASSES))}


@pytest.fixture(scope="module")
def voc(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return voc_dataset(tmp_path_factory.mktemp("voc"), images=15, seed=7)


def batches(dataset: Any, **options: Any) -> list[tuple[Any, dict[str, Any]]]:
    """Every (image, target) a DataLoader with two worker processes yields."""
    loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=atorch.collate, **options)
    return [pair for images, targets in loader for pair in zip(images, targets, strict=True)]


def check(samples: list[tuple[Any, dict[str, Any]]], voc: Dataset, keys: set[str]) -> None:
    """Each of `keys` exactly once; images at the annotated size; the source's boxes."""
    counts = Counter(target["key"] for _, target in samples)
    assert set(counts) == keys and set(counts.values()) == {1}
    for image, target in samples:
        key = target["key"]
        width, height = voc.sizes[key]
        assert image.shape == (3, height, width) and image.dtype == torch.float32
        assert float(image.min()) >= 0 and float(image.max()) <= 1
        truth = voc.boxes[key]
        boxes = target["boxes"]
        assert boxes.dtype == torch.float32 and boxes.shape == (len(truth), 4)
        for got, want in zip(boxes.tolist(), truth, strict=True):
            assert got == pytest.approx(want[1:], abs=TOLERANCE)
        assert target["labels"].dtype == torch.int64
        assert target["labels"].tolist() == [IDS[box[0]] for box in truth]


def test_tfrecord_shards_through_a_dataloader_with_workers(voc: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "ds.record"
    convert(str(voc.root), str(out), write_options={"shards": 4})
    dataset = atorch.TFRecordDetection(str(out))
    assert len(dataset.files) == 4
    check(batches(dataset), voc, set(voc.boxes))
    # Two ranks of two workers each: four readers, a shard each, nothing read twice.
    per_rank = [
        batches(atorch.TFRecordDetection(str(out), rank=rank, world_size=2)) for rank in (0, 1)
    ]
    assert not {t["key"] for _, t in per_rank[0]} & {t["key"] for _, t in per_rank[1]}
    check(per_rank[0] + per_rank[1], voc, set(voc.boxes))
    # A new shard order each epoch, dealt from the same order to every reader.
    shuffled = atorch.TFRecordDetection(str(out), shuffle_shards=True, seed=3)
    orders = set()
    for epoch in range(4):
        shuffled.set_epoch(epoch)
        halves = [shuffled.shards(reader, 2) for reader in (0, 1)]
        assert sorted(halves[0] + halves[1]) == sorted(dataset.files)
        orders.add(tuple(shuffled.shards(0, 1)))
    assert len(orders) > 1
    check(batches(shuffled), voc, set(voc.boxes))


def test_gzip_shards_and_a_corrupt_record(voc: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "gz.record"
    convert(str(voc.root), str(out), write_options={"shards": 2, "compression": "GZIP"})
    check(batches(atorch.TFRecordDetection(str(out))), voc, set(voc.boxes))
    convert(str(voc.root), str(tmp_path / "plain.record"))
    [plain] = tmp_path.glob("plain.record-*")
    data = bytearray(plain.read_bytes())
    data[40] ^= 0xFF  # a byte of the first payload: its CRC no longer matches
    plain.write_bytes(bytes(data))
    with pytest.raises(AnnotationError, match=r"plain.record-00000-of-00001: record 0 .*CRC"):
        list(atorch.TFRecordDetection(str(plain)))


def test_parquet_dataset_folder_by_split_with_workers(voc: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    convert(
        str(voc.root),
        str(out),
        to_format="parquet",
        split="train=0.6,test=0.4",
        seed=2,
        write_options={"embed_images": True},
    )
    keys = {
        split: set(pq.read_table(out / "data" / split).column("key").to_pylist())
        for split in ("train", "test")
    }
    train = atorch.ParquetDetection(str(out), split="train")
    assert len(train) == len(keys["train"])
    check(batches(train, shuffle=True), voc, keys["train"])
    everything = atorch.ParquetDetection(str(out))
    check(batches(everything), voc, set(voc.boxes))
    # Pixel boxes come back as written: exactly, up to float32.
    _image, target = train[0]
    truth = voc.boxes[target["key"]]
    assert target["boxes"].tolist() == [
        [float(torch.tensor(v, dtype=torch.float32)) for v in box[1:]] for box in truth
    ]
    with pytest.raises(IndexError):
        train[len(train)]


def test_parquet_without_embedded_images_and_a_transform(voc: Dataset, tmp_path: Path) -> None:
    single = tmp_path / "one.parquet"
    convert(str(voc.root), str(single))
    with pytest.raises(AnnotationError, match="no image for"):
        atorch.ParquetDetection(str(single))[0]
    # An image missing from `images`: the file, row and path, not a bare FileNotFoundError.
    nowhere = atorch.ParquetDetection(str(single), images=str(tmp_path / "nowhere"))
    first = pq.read_table(single).column("filename")[0].as_py()
    where = rf"one.parquet: row 1: image .*nowhere/{first} not found"
    with pytest.raises(AnnotationError, match=where):
        nowhere[0]

    def flip(image: Any, target: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        width = image.shape[-1]
        boxes = target["boxes"].clone()
        boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
        return image.flip(-1), {**target, "boxes": boxes}

    flipped = atorch.ParquetDetection(
        str(single), images=str(voc.root), transforms=flip, dtype=torch.uint8
    )
    plain = atorch.ParquetDetection(str(single), images=str(voc.root), dtype=torch.uint8)
    assert len(flipped) == len(voc.boxes)
    for index in range(len(plain)):
        (image, target), (turned, moved) = plain[index], flipped[index]
        assert image.dtype == torch.uint8 and torch.equal(turned, image.flip(-1))
        width = voc.sizes[target["key"]][0]
        expected = [[width - x1, y0, width - x0, y1] for x0, y0, x1, y1 in target["boxes"].tolist()]
        assert moved["boxes"].tolist() == expected  # quarter pixels: exact in float32
    check(batches(flipped.__class__(str(single), images=str(voc.root))), voc, set(voc.boxes))


def test_normalized_boxes_exif_photos_and_an_older_layout(tmp_path: Path) -> None:
    """A photo stored 60x40 with EXIF orientation 6, annotated as displayed (40x60): the
    image comes turned, as the annotation sees it; Open-Images-like normalized boxes are
    scaled to pixels; files of the older hive layout read by split."""
    root = tmp_path / "voc"
    draw_image(root / "photo.jpg", 60, 40, exif_orientation=6)
    write(root / "photo.xml", labelimg_xml("photo.jpg", 40, 60, [Box("cat", 4, 6, 20, 30)]))
    old = tmp_path / "old"
    embed = {"embed_images": True}
    convert(str(root), str(old / "split=val" / "part-00000.parquet"), write_options=embed)
    [(image, target)] = list(atorch.ParquetDetection(str(old), split="val"))
    assert image.shape == (3, 60, 40)
    assert target["boxes"].tolist() == [[4.0, 6.0, 20.0, 30.0]]
    with pytest.raises(ValueError, match=r"no split 'train' in .*; its splits: val$"):
        atorch.ParquetDetection(str(old), split="train")
    # Normalized coordinates (a Parquet from TFRecords) come back in pixels.
    record = tmp_path / "photo.record"
    convert(str(root), str(record))
    normalized = tmp_path / "normalized.parquet"
    convert(str(record), str(normalized), from_format="tfrecord")
    assert pq.read_table(normalized).column("coords").to_pylist() == ["normalized"]
    [(image, target)] = list(atorch.ParquetDetection(str(normalized), images=str(root)))
    assert target["boxes"][0].tolist() == pytest.approx([4.0, 6.0, 20.0, 30.0], abs=TOLERANCE)
    assert target["labels"].tolist() == [1]


def test_sixteen_bit_and_palette_pngs_decoded_as_tensorflow_decodes_them(tmp_path: Path) -> None:
    """A 16-bit grey PNG (embedded byte for byte in the TFRecord) gives the high byte of each
    sample, as tf.io.decode_image does, not Pillow's clip to 255; a palette PNG's transparent
    index keeps its colour, and so does a GIF's (the TFRecord writer transcodes it to PNG;
    the Parquet holds the GIF, decoded to the same pixels)."""
    root = tmp_path / "voc"
    samples = [0x0000, 0x00FF, 0x1234, 0x8000, 0xFF00, 0xFFFF]
    wide = Image.new("I;16", (6, 2))
    wide.putdata(samples * 2)
    root.mkdir()
    wide.save(root / "depth.png")
    palette = Image.new("P", (6, 2), 0)
    palette.putpalette([250, 240, 230, 10, 20, 30] + [0] * 762)
    palette.paste(1, (0, 0, 3, 2))
    palette.save(root / "pal.png", transparency=1)
    palette.save(root / "gif.gif", transparency=1)
    for name in ("depth.png", "pal.png", "gif.gif"):
        xml = labelimg_xml(name, 6, 2, [Box("cat", 1, 0, 4, 2)])
        write(root / f"{Path(name).stem}.xml", xml)
    record = tmp_path / "kinds.record"
    convert(str(root), str(record))
    parquet = tmp_path / "kinds.parquet"
    convert(str(root), str(parquet), write_options={"embed_images": True})
    for dataset in (
        atorch.TFRecordDetection(str(record), dtype=torch.uint8),
        atorch.ParquetDetection(str(parquet), dtype=torch.uint8),
    ):
        images = {target["key"]: image for image, target in dataset}
        assert images["depth.xml"].shape == (3, 2, 6)
        assert images["depth.xml"][:, 0, :].tolist() == [[0, 0, 0x12, 0x80, 0xFF, 0xFF]] * 3
        for key in ("pal.xml", "gif.xml"):
            assert images[key][:, 1, :].tolist() == [
                [10, 10, 10, 250, 250, 250],
                [20, 20, 20, 240, 240, 240],
                [30, 30, 30, 230, 230, 230],
            ]


def test_outputs_in_a_folder_named_with_glob_characters(tmp_path: Path) -> None:
    """`run [1]?/` is a folder, not a glob: its shards and Parquet file are read."""
    root = tmp_path / "run [1]?"
    draw_image(root / "photo.jpg", 60, 40)
    write(root / "photo.xml", labelimg_xml("photo.jpg", 60, 40, [Box("cat", 4, 6, 20, 30)]))
    convert(str(root), str(root / "out.record"), write_options={"shards": 2})
    convert(str(root), str(root / "out.parquet"))
    shards = atorch.TFRecordDetection(str(root / "out.record"))
    assert [Path(uri).name for uri in shards.files] == [
        "out.record-00000-of-00002",
        "out.record-00001-of-00002",
    ]
    parquet = atorch.ParquetDetection(str(root / "out.parquet"), images=str(root))
    for image, target in [*shards, *parquet]:
        assert image.shape == (3, 40, 60) and target["key"] == "photo.xml"
        assert target["boxes"].tolist() == [[4.0, 6.0, 20.0, 30.0]]


def test_parquet_image_of_another_size_than_its_annotation(tmp_path: Path) -> None:
    """An image stored at 200x160 whose XML says 100x80 (the Parquet writer embeds it as it
    is): by default an error naming the file and row, not boxes off their objects; with
    size_policy="warn" the boxes are scaled to the decoded image, as `--size-policy warn`
    writes TFRecords, and sit on the object draw_image made (its middle quarter)."""
    root = tmp_path / "voc"
    draw_image(root / "big.jpg", 200, 160)
    write(root / "big.xml", labelimg_xml("big.jpg", 100, 80, [Box("cat", 25, 20, 50, 40)]))
    out = tmp_path / "big.parquet"
    convert(str(root), str(out), write_options={"embed_images": True})
    with pytest.raises(AnnotationError, match=r"big.parquet: row 1: .*200x160.* says 100x80"):
        atorch.ParquetDetection(str(out))[0]
    dataset = atorch.ParquetDetection(str(out), size_policy="warn", dtype=torch.uint8)
    with pytest.warns(UserWarning, match="200x160"):
        image, target = dataset[0]
    assert image.shape == (3, 160, 200)
    assert target["boxes"].tolist() == [[50.0, 40.0, 100.0, 80.0]]
    assert int(image[:, 45:75, 55:95].max()) < 40 and int(image[:, 90:, :].min()) > 215


def test_a_split_the_dataset_lacks_is_an_error_naming_those_it_has(
    voc: Dataset, tmp_path: Path
) -> None:
    """`split="validation"` on a folder whose split is `val` (the name `datasets` gives it)
    or a misspelt split was an empty dataset, and a training loop over nothing."""
    out = tmp_path / "ds"
    split = "train=0.6,val=0.4"
    convert(str(voc.root), str(out), to_format="parquet", split=split, seed=2)
    single = tmp_path / "one.parquet"
    convert(str(out), str(single))  # one file, the split a column
    for source in (out, single):
        val = atorch.ParquetDetection(str(source), split="val", images=str(voc.root))
        assert 0 < len(val) < len(voc.boxes)
        assert {target["key"] for _, target in val} < set(voc.boxes)
        for wrong in ("validation", "trian"):
            message = rf"no split '{wrong}' in .*; its splits: train, val$"
            with pytest.raises(ValueError, match=message):
                atorch.ParquetDetection(str(source), split=wrong)


def test_shard_order_changes_each_epoch_with_persistent_workers(
    voc: Dataset, tmp_path: Path
) -> None:
    """`set_epoch` reaches DataLoader workers that persist between epochs: each epoch reads
    the shards in its own order, the one a fresh loader of that epoch reads (the workers'
    copies of the dataset kept epoch 0's order before)."""
    out = tmp_path / "ds.record"
    convert(str(voc.root), str(out), write_options={"shards": 4})

    def orders(persistent: bool) -> list[list[str]]:
        dataset = atorch.TFRecordDetection(str(out), shuffle_shards=True, seed=3)
        loader = DataLoader(
            dataset,
            batch_size=2,
            num_workers=2,
            collate_fn=atorch.collate,
            persistent_workers=persistent,
        )
        found = []
        for epoch in range(4):
            dataset.set_epoch(epoch)
            found.append([target["key"] for _, targets in loader for target in targets])
        return found

    persistent = orders(persistent=True)
    assert persistent == orders(persistent=False)
    assert len({tuple(order) for order in persistent}) > 1
    assert all(sorted(order) == sorted(voc.boxes) for order in persistent)
