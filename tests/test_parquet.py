"""Parquet out and in: both layouts, read back by pyarrow, pandas and DuckDB; exact round
trips; the columnar path writing the same bytes and raising the same errors as records."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from factories import Box, draw_image, labelimg_xml, write
from od_protos import parse_with_protobuf
from oi_factory import (
    CAMERA,
    CAR,
    CLASSES,
    HEADERS,
    PERSON,
    PHONE,
    Row,
    bbox_csv,
    class_descriptions,
    expected_boxes,
    random_rows,
    shuffled,
    write_dataset,
)
from oi_factory import write as write_text

from annoconv import AnnotationError, convert, read
from annoconv.cli import main
from annoconv.formats.csv import CsvReader, CsvWriter
from annoconv.formats.openimages import OpenImagesReader
from annoconv.formats.parquet import ParquetReader, ParquetWriter
from annoconv.pipeline import run, run_batches
from annoconv.schema import ImageRecord, arrow_schema, make_record

# Floats as labelImg and CVAT write them; the last one is float32 noise.
CAT = Box("cat", 10, 20.5, 100, 45.70000076293945)
DOG = Box("dog", 257.0, 2, 300.25, 4, difficult=1, truncated=None, pose="Left")
SIZES = {"a": (640, 480), "sub/b": (320, 200), "c": (100, 100)}


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    root = tmp_path / "voc"
    write(root / "a.xml", labelimg_xml("a.jpg", 640, 480, [CAT, DOG]))
    write(root / "sub" / "b.xml", labelimg_xml("b.jpg", 320, 200, []))  # a negative image
    write(root / "c.xml", labelimg_xml("c,1.png", 100, 100, [Box('a "b"', 0, 0, 100, 100)]))
    draw_image(root / "a.jpg", 640, 480)
    draw_image(root / "sub" / "b.jpg", 320, 200)
    draw_image(root / "c,1.png", 100, 100)
    return root


def metadata(path: Path) -> dict[str, str]:
    found = pq.read_metadata(path).metadata
    return {k.decode(): v.decode() for k, v in found.items() if k.startswith(b"annoconv.")}


def boxes_of(records: list[ImageRecord]) -> dict[str, list[tuple[object, ...]]]:
    return {
        r.key: [(o.label, o.xmin, o.ymin, o.xmax, o.ymax, o.difficult, o.pose) for o in r.objects]
        for r in records
    }


def test_voc_round_trip_is_exact_and_pyarrow_reads_the_values(voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds.parquet"
    report = convert(str(voc), str(out))
    assert (report.images_written, report.boxes_written) == (3, 3)
    table = pq.read_table(out)
    assert table.schema.names == arrow_schema().names
    rows = {row["key"]: row for row in table.to_pylist()}
    cat, dog = rows["a.xml"]["objects"]
    assert (cat["label"], cat["xmin"], cat["ymin"], cat["ymax"]) == ("cat", 10, 20.5, CAT.ymax)
    assert (dog["xmin"], dog["xmax"], dog["difficult"], dog["truncated"], dog["pose"]) == (
        257.0,
        300.25,
        1,
        -1,
        "Left",
    )
    assert (rows["sub/b.xml"]["objects"], rows["sub/b.xml"]["width"]) == ([], 320)
    assert rows["c.xml"]["filename"] == "c,1.png"
    meta = metadata(out)
    assert (meta["annoconv.layout"], meta["annoconv.coords"]) == ("nested", "pixel")
    assert parse_with_protobuf(meta["annoconv.label_map"]) == [
        ('a "b"', 1, None),
        ("cat", 2, None),
        ("dog", 3, None),
    ]
    back = tmp_path / "back"
    convert(str(out), str(back), to_format="voc")
    assert boxes_of(list(read(str(back)))) == boxes_of(list(read(str(voc))))
    for name in ("a.xml", "c.xml", "sub/b.xml"):
        original, again = (voc / name).read_text(), (back / name).read_text()
        assert again.count("45.70000076293945") == original.count("45.70000076293945")
    # -> CSV through Parquet gives the very bytes of VOC -> CSV.
    convert(str(voc), str(tmp_path / "direct.csv"))
    convert(str(out), str(tmp_path / "via.csv"))
    assert (tmp_path / "via.csv").read_bytes() == (tmp_path / "direct.csv").read_bytes()


def test_flat_layout_for_pandas_and_duckdb(voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "flat.parquet"
    assert main(["convert", str(voc), str(out), "--flat", "-q"]) == 0
    frame = pd.read_parquet(out)
    assert list(frame.columns[:8]) == [
        "filename",
        "width",
        "height",
        "class",
        "xmin",
        "ymin",
        "xmax",
        "ymax",
    ]
    assert len(frame) == 4  # three boxes and the negative image's row
    negative = frame[frame["filename"] == "sub/b.jpg"].iloc[0]
    assert pd.isna(negative["class"]) and pd.isna(negative["xmin"]) and negative["width"] == 320
    assert frame[frame["class"] == "cat"]["ymax"].tolist() == [CAT.ymax]
    counts = duckdb.sql(
        f"SELECT class, count(*) AS n FROM read_parquet('{out}') "
        "WHERE class IS NOT NULL GROUP BY class ORDER BY class"
    ).fetchall()
    assert counts == [('a "b"', 1), ("cat", 1), ("dog", 1)]
    assert metadata(out)["annoconv.layout"] == "flat"
    kv = duckdb.sql(f"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{out}')")
    assert dict(kv.fetchall())["annoconv.coords"] == "pixel"
    assert boxes_of(list(read(str(out)))) == boxes_of(list(read(str(voc))))


def test_split_as_a_dataset_folder(voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = convert(str(voc), str(out), to_format="parquet", split="train=0.67,test=0.33")
    assert sorted(Path(o.path).relative_to(out).as_posix() for o in report.outputs) == [
        "README.md",
        "data/test/part-00000.parquet",
        "data/train/part-00000.parquet",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data"]
    maps = {metadata(part)["annoconv.label_map"] for part in out.glob("data/*/*.parquet")}
    assert [parse_with_protobuf(text) for text in maps] == [  # one map, all the classes
        [('a "b"', 1, None), ("cat", 2, None), ("dog", 3, None)]
    ]
    # Each file holds its split: no partition folder needed.
    by_duckdb = dict(duckdb.sql(f"SELECT key, split FROM '{out}/**/*.parquet'").fetchall())
    by_pandas = pd.read_parquet(out / "data")
    assert dict(zip(by_pandas["key"], by_pandas["split"], strict=True)) == by_duckdb
    assert sorted(by_duckdb.values()) == ["test", "train", "train"]
    train = pq.read_table(out / "data" / "train" / "part-00000.parquet")
    assert set(train.column("split").to_pylist()) == {"train"}
    records = list(read(str(out)))
    assert {r.key: r.split for r in records} == by_duckdb
    assert boxes_of(records) == boxes_of(list(read(str(voc))))


def test_the_hive_layout_of_earlier_versions_still_reads(voc: Path, tmp_path: Path) -> None:
    """Files of the layout split runs wrote before dataset folders, ``OUT/split=NAME/``,
    without a `split` column and with a box's source named `source`: read as they were."""
    rows = [r.model_dump(by_alias=True) for r in read(str(voc))]
    for row in rows:
        for obj in row["objects"]:
            obj["source"] = f"tool-{obj.pop('box_source')}"
    old_objects = pa.list_(
        pa.struct(
            [
                pa.field("source" if f.name == "box_source" else f.name, f.type, f.nullable)
                for f in arrow_schema().field("objects").type.value_type
            ]
        )
    )
    schema = arrow_schema().remove(arrow_schema().get_field_index("split"))
    schema = schema.set(schema.get_field_index("objects"), pa.field("objects", old_objects, False))
    for split, keys in {"train": ["a.xml", "c.xml"], "test": ["sub/b.xml"]}.items():
        part = [{k: v for k, v in r.items() if k != "split"} for r in rows if r["key"] in keys]
        (tmp_path / "old" / f"split={split}").mkdir(parents=True)
        table = pa.Table.from_pylist(part, schema=schema)
        pq.write_table(table, tmp_path / "old" / f"split={split}" / "part-00000.parquet")
    back = {r.key: r for r in read(str(tmp_path / "old"))}
    assert {key: r.split for key, r in back.items()} == {
        "a.xml": "train",
        "c.xml": "train",
        "sub/b.xml": "test",
    }
    assert [o.source for o in back["a.xml"].objects] == ["tool-None", "tool-None"]
    assert boxes_of(list(back.values())) == boxes_of(list(read(str(voc))))


def test_embedded_images_are_the_files_bytes(voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "img.parquet"
    assert main(["convert", str(voc), str(out), "--embed-images", "-q"]) == 0
    table = pq.read_table(out)
    assert table.schema.field("image").type == pa.struct(
        [pa.field("bytes", pa.binary()), pa.field("path", pa.string())]
    )
    for row in table.to_pylist():
        image = voc / Path(row["source"]).relative_to(voc).parent / Path(row["filename"]).name
        assert row["image"] == {"bytes": image.read_bytes(), "path": row["filename"]}
    with pytest.raises(ValueError, match="nested layout"):
        ParquetWriter(str(tmp_path / "x.parquet"), flat=True, embed_images=True)


def test_truncated_images_are_not_embedded(tmp_path: Path) -> None:
    """A JPEG or PNG cut short is refused as the TFRecord writer refuses it (no end marker),
    not embedded for `datasets` or annoconv.torch to fail on in the middle of training; with
    `on_error="skip"` it is a counted skip and the whole images stay the files' bytes."""
    root = tmp_path / "voc"
    for name in ("cut.jpg", "cut.png", "whole.jpg"):
        image = draw_image(root / name, 300, 200)
        if name.startswith("cut"):
            image.write_bytes(image.read_bytes()[:-400])
        xml = labelimg_xml(name, 300, 200, [Box("cat", 1, 2, 50, 60)])
        write(root / f"{Path(name).stem}-{Path(name).suffix[1:]}.xml", xml)
    out = tmp_path / "images.parquet"
    embed = {"embed_images": True}
    with pytest.raises(AnnotationError, match=r"cut-jpg.xml: image .*cut.jpg is truncated"):
        convert(str(root), str(out), write_options=embed)
    assert not out.exists()
    report = convert(str(root), str(out), on_error="skip", write_options=embed)
    assert (report.images_written, report.images_skipped) == (1, 2)
    reasons = {Path(item.source).name: item.reason for item in report.skipped}
    assert reasons.keys() == {"cut-jpg.xml", "cut-png.xml"}
    assert reasons["cut-jpg.xml"].endswith("cut.jpg is truncated: no JPEG end-of-image marker")
    assert reasons["cut-png.xml"].endswith("cut.png is truncated: no PNG IEND chunk")
    [row] = pq.read_table(out).to_pylist()
    assert row["key"] == "whole-jpg.xml"
    assert row["image"]["bytes"] == (root / "whole.jpg").read_bytes()


def test_embedded_images_bound_the_row_groups(
    voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import annoconv.formats.parquet as parquet_module

    monkeypatch.setattr(parquet_module, "EMBEDDED_CHUNK_BYTES", 1)
    monkeypatch.setattr(parquet_module, "EMBEDDED_GROUP_BYTES", 1)
    out = tmp_path / "small-groups.parquet"
    convert(str(voc), str(out), write_options={"embed_images": True})
    assert pq.ParquetFile(out).metadata.num_row_groups == 3  # one image each
    images = pq.read_table(out).column("image").to_pylist()
    assert images[0]["bytes"] == (voc / "a.jpg").read_bytes()


def test_row_groups_are_bounded_and_images_may_span_them(voc: Path, tmp_path: Path) -> None:
    records = list(read(str(voc)))
    for flat in (False, True):
        out = tmp_path / f"small-{flat}.parquet"
        writer = ParquetWriter(str(out), flat=flat, row_group_size=1)
        for record in records:
            writer.write(record)
        writer.close()
        assert pq.ParquetFile(out).metadata.num_row_groups == (4 if flat else 3)
        back = list(ParquetReader(str(out), batch_rows=1))
        assert [r.key for r in back] == [r.key for r in records]
        assert boxes_of(back) == boxes_of(records)  # a.xml's two boxes sit in two row groups


# --- Open Images and the columnar path ---------------------------------------------------------


@pytest.fixture
def open_images(tmp_path: Path) -> tuple[Path, Path, Path]:
    # Faster R-CNN txt cannot hold a class name with a comma.
    rows = random_rows(random.Random(5), 60, labels=(CAMERA, PHONE, PERSON, CAR))
    return write_dataset(
        tmp_path / "oi",
        rows,
        bbox_name="bbox.csv",
        descriptions_name="classes.csv",
        image_size=lambda index: (40 + index, 30 + index % 7),
    )


def test_open_images_to_frcnn_through_parquet_is_byte_identical(
    open_images: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    bbox, descriptions, images = open_images
    direct, via, cache = tmp_path / "direct.txt", tmp_path / "via.txt", tmp_path / "oi.parquet"
    common = ["--class-descriptions", str(descriptions), "-q"]
    assert main(["convert", str(bbox), str(direct), "--images", str(images), *common]) == 0
    assert main(["convert", str(bbox), str(cache), *common]) == 0
    assert main(["convert", str(cache), str(via), "--to", "frcnn", "--images", str(images)]) == 0
    assert via.read_bytes() == direct.read_bytes() and direct.stat().st_size > 1000
    expected = expected_boxes(str(bbox), CLASSES)
    rows = {row["key"]: row for row in pq.read_table(cache).to_pylist()}
    assert set(rows) == set(expected)
    for key, found in expected.items():
        objects = rows[key]["objects"]
        assert [(o["label"], o["xmin"], o["ymax"]) for o in objects] == [
            (b.label, b.xmin, b.ymax) for b in found
        ]
        assert [o["occluded"] for o in objects] == [b.flags[0] for b in found]
    assert metadata(cache)["annoconv.coords"] == "normalized"


def both_paths(reader: object, make_writer: object, policy: str = "skip") -> tuple[object, ...]:
    """(record-path report or error, batch-path report or error), from fresh readers."""
    results = []
    for batch in (False, True):
        source = reader()  # type: ignore[operator]
        writer = make_writer(batch)  # type: ignore[operator]
        try:
            if batch:
                results.append(run_batches(source.batches(), writer, on_error=policy))
            else:
                results.append(run(source, writer, on_error=policy))
        except AnnotationError as error:
            results.append(str(error))
    return tuple(results)


def test_batch_and_record_paths_write_the_same_bytes_and_errors(tmp_path: Path) -> None:
    rows = random_rows(random.Random(9), 200)
    bad_id = rows[40].image_id
    rows.insert(41, Row(bad_id, xmin="0.9", xmax="0.1"))
    rows.insert(90, Row(rows[90].image_id, label="/m/unknown"))
    bbox = write_text(tmp_path / "bbox.csv", bbox_csv(rows))
    descriptions = write_text(tmp_path / "classes.csv", class_descriptions())

    def reader() -> OpenImagesReader:
        return OpenImagesReader(bbox, class_descriptions=descriptions, batch_rows=64)

    def parquet(batch: bool) -> ParquetWriter:
        return ParquetWriter(str(tmp_path / f"oi-{batch}.parquet"), row_group_size=50)

    by_records, by_batches = both_paths(reader, parquet)
    assert by_records.to_dict() == by_batches.to_dict() | {  # type: ignore[attr-defined]
        "outputs": by_records.to_dict()["outputs"]  # type: ignore[attr-defined]
    }
    assert by_records.images_skipped == 2  # type: ignore[attr-defined]
    assert (tmp_path / "oi-True.parquet").read_bytes() == (
        tmp_path / "oi-False.parquet"
    ).read_bytes()
    failed = both_paths(reader, parquet, "fail")
    assert failed[0] == failed[1]
    assert f"row 42: image {bad_id}: XMin 0.9 > XMax 0.1" in str(failed[0])
    assert not list(tmp_path.glob(".oi-*"))  # the failed runs left no partial file

    # Parquet -> CSV (with every extra column) and Parquet -> split Parquet, both paths.
    images = {r.image_id for r in rows}
    cache = tmp_path / "oi-False.parquet"
    sized = tmp_path / "sized.parquet"
    writer = ParquetWriter(str(sized))
    for index, record in enumerate(read(str(cache))):
        writer.write(record.model_copy(update={"width": 50 + index, "height": 40}))
    writer.close()
    columns = ["difficult", "occluded", "pose", "confidence", "key", "verified", "xmax_norm"]

    def csv(batch: bool) -> CsvWriter:
        return CsvWriter(str(tmp_path / f"oi-{batch}.csv"), columns=columns)

    both_paths(lambda: ParquetReader(str(sized)), csv)
    text = (tmp_path / "oi-True.csv").read_text()
    assert text == (tmp_path / "oi-False.csv").read_text()
    lines = text.splitlines()
    assert len(lines) == 1 + by_records.boxes_written  # type: ignore[attr-defined]
    assert {line.split(",")[0] for line in lines[1:]} == {
        f"{key}.jpg" for key in images - {bad_id, rows[90].image_id}
    }
    assert lines[1].split(",")[1:3] == ["50", "40"]


def test_the_same_rows_make_the_same_bytes_whatever_batches_bring_them(tmp_path: Path) -> None:
    """Parquet cuts its pages where the chunks it is handed allow: the writer cuts every row
    group into chunks at fixed rows, so batches of any size give one file. Here columns span
    several pages (Parquet's page is 1 MB) and row groups end inside the batches."""
    rng = random.Random(11)
    lines = [",".join(HEADERS[13])]
    for image in range(40_000):
        for _ in range(rng.randint(1, 15)):
            x0, x1, y0, y1 = rng.random() / 2, 0.5 + rng.random() / 2, rng.random() / 2, 0.6
            lines.append(f"{image:09d},xclick,{CAMERA},1,{x0!r},{x1!r},{y0!r},{y1},0,0,0,0,0")
    bbox = write_text(tmp_path / "bbox.csv", "\n".join(lines) + "\n")
    descriptions = write_text(tmp_path / "classes.csv", class_descriptions())
    reader = OpenImagesReader(bbox, class_descriptions=descriptions, batch_rows=1 << 20)
    batches = [b for b in reader.batches() if isinstance(b, pa.RecordBatch)]
    source = pa.Table.from_batches(batches).combine_chunks()
    assert source.num_rows == 40_000
    for flat, group in ((False, 30_000), (True, 200_000)):
        written = []
        for batch in (1 << 20, 9_001, 1_234):
            out = tmp_path / f"{flat}-{batch}.parquet"
            writer = ParquetWriter(str(out), flat=flat, row_group_size=group)
            for part in source.to_batches(max_chunksize=batch):
                writer.write_batch(part)
            writer.close()
            written.append(out.read_bytes())
        assert written[0] == written[1] == written[2]
        meta = pq.ParquetFile(out).metadata
        assert meta.num_row_groups == 2
        group_sizes = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
        assert max(column.total_uncompressed_size for column in group_sizes) > 1 << 20
        back = pq.read_table(out)
        expected = [float(line.split(",")[4]) for line in lines[1:]]
        if flat:
            assert back.column("xmin").to_pylist() == expected
        else:
            objects = back.column("objects").to_pylist()
            assert [box["xmin"] for boxes in objects for box in boxes] == expected


def test_parquet_reader_errors_name_the_file_and_row_on_both_paths(tmp_path: Path) -> None:
    good = make_record("x", key="a", filename="a.jpg", width=10, height=10)
    rows = [good.model_dump(by_alias=True) for _ in range(3)]
    rows[1]["key"] = "b"
    rows[1]["objects"] = [
        {**dict.fromkeys(("difficult", "truncated", "occluded"), 0), "label": "cat"}
        | {"xmin": 5.0, "ymin": 1.0, "xmax": 3.0, "ymax": 2.0, "group_of": 0}
        | {"depiction": 0, "inside": 0, "pose": None, "confidence": None, "box_source": None}
    ]
    rows[2]["key"] = "c"
    rows[2]["width"] = 0
    path = tmp_path / "user.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), path, row_group_size=2)

    def parquet(batch: bool) -> ParquetWriter:
        return ParquetWriter(str(tmp_path / f"out-{batch}.parquet"))

    by_records, by_batches = both_paths(lambda: ParquetReader(str(path)), parquet)
    skipped = [(s.source, s.reason) for s in by_records.skipped]  # type: ignore[attr-defined]
    assert skipped == [(s.source, s.reason) for s in by_batches.skipped]  # type: ignore[attr-defined]
    assert skipped == [
        (str(path), "row 2 (row group 0)/objects.0: xmin 5 > xmax 3"),
        (
            str(path),
            "row 3 (row group 1)/width: Input should be greater than or equal to 1 (got 0)",
        ),
    ]
    assert by_batches.images_written == 1 and by_batches.boxes_skipped == 1  # type: ignore[attr-defined]
    failed = both_paths(lambda: ParquetReader(str(path)), parquet, "fail")
    assert failed[0] == failed[1] == f"{path}: row 2 (row group 0)/objects.0: xmin 5 > xmax 3"
    not_parquet = write(tmp_path / "bad.parquet", "not parquet")
    with pytest.raises(AnnotationError, match=r"bad\.parquet: not a readable Parquet file"):
        list(read(str(not_parquet)))


def test_flat_tables_from_elsewhere(tmp_path: Path) -> None:
    """A flat table made by pandas: only the CSV's columns, ints as int64, rows of one image
    apart from each other (an error naming the row)."""
    frame = pd.DataFrame(
        {
            "filename": ["a.jpg", "a.jpg", "b.jpg", "a.jpg"],
            "width": [64, 64, 32, 64],
            "height": [48, 48, 32, 48],
            "class": ["cat", "dog", None, "cat"],
            "xmin": [1.5, 2, None, 3],
            "ymin": [1, 2, None, 3],
            "xmax": [4, 5, None, 6],
            "ymax": [4, 5, None, 6],
        }
    )
    path = tmp_path / "pandas.parquet"
    frame.to_parquet(path)
    report = convert(str(path), str(tmp_path / "out.csv"), on_error="skip")
    assert [s.reason for s in report.skipped] == [
        "row 4 (row group 0): the rows of image 'a.jpg' are not consecutive: it appears again "
        "here after other images (sort the table by key, or by filename)"
    ]
    assert (tmp_path / "out.csv").read_text().splitlines()[1:] == [
        "a.jpg,64,48,cat,1.5,1,4,4",
        "a.jpg,64,48,dog,2,2,5,5",
        "b.jpg,32,32,,,,,",
    ]


def test_flat_errors_name_every_row_of_the_image(tmp_path: Path) -> None:
    """An image's rows counted as they lie in the file: a.jpg has a row marking it besides
    its two boxes (three rows), c.jpg spans two row groups."""
    table = pa.table(
        {
            "filename": ["a.jpg", "a.jpg", "a.jpg", "b.jpg", "c.jpg", "c.jpg", "c.jpg", "d.jpg"],
            "width": [64, 64, 64, 32, 0, 0, 0, 16],
            "height": [48, 48, 48, 32, 40, 40, 40, 12],
            "class": ["cat", None, "dog", "cat", None, "cat", "dog", "dog"],
            "xmin": [1.0, None, 2.0, 5.0, None, 1.0, 2.0, 3.0],
            "ymin": [2.0, None, 2.0, 1.0, None, 1.0, 2.0, 4.0],
            "xmax": [3.0, None, 5.0, 3.0, None, 4.0, 5.0, 9.0],
            "ymax": [4.0, None, 5.0, 2.0, None, 4.0, 5.0, 10.0],
        }
    )
    path = tmp_path / "flat.parquet"
    pq.write_table(table, path, row_group_size=3)

    def csv(batch: bool) -> CsvWriter:
        return CsvWriter(str(tmp_path / f"out-{batch}.csv"))

    by_records, by_batches = both_paths(lambda: ParquetReader(str(path)), csv)
    assert by_batches is not None
    for report in (by_records, by_batches):
        assert [(s.source, s.reason, s.boxes) for s in report.skipped] == [  # type: ignore[attr-defined]
            (str(path), "row 4 (row group 1)/objects.0: xmin 5 > xmax 3", 1),
            (
                str(path),
                "rows 5-7 (row groups 1-2)/width: Input should be greater than or equal to 1 "
                "(got 0)",
                2,
            ),
        ]
        assert (report.images_written, report.boxes_written) == (2, 3)  # type: ignore[attr-defined]
    for batch in (False, True):
        assert (tmp_path / f"out-{batch}.csv").read_text().splitlines()[1:] == [
            "a.jpg,64,48,cat,1,2,3,4",
            "a.jpg,64,48,dog,2,2,5,5",
            "d.jpg,16,12,dog,3,4,9,10",
        ]
    failed = both_paths(lambda: ParquetReader(str(path)), csv, "fail")
    assert failed == (f"{path}: row 4 (row group 1)/objects.0: xmin 5 > xmax 3",) * 2


def test_unsorted_open_images_falls_back_to_records(tmp_path: Path) -> None:
    rows = random_rows(random.Random(2), 80)
    sorted_csv = write_text(tmp_path / "sorted" / "bbox.csv", bbox_csv(rows))
    mixed = write_text(tmp_path / "mixed" / "bbox.csv", bbox_csv(shuffled(rows, random.Random(1))))
    for source in (sorted_csv, mixed):
        out = Path(source).with_suffix(".parquet")
        report = convert(source, str(out), read_options={"batch_rows": 16})
        assert (report.images_written, report.boxes_written) == (80, len(rows))
        keys = pq.read_table(out).column("key").to_pylist()
        assert keys == sorted({r.image_id for r in rows})
    # The sorted file took the batch path, the other fell back: each gives what records give.
    for source in (sorted_csv, mixed):
        by_records = Path(source).with_suffix(".records.parquet")
        run(OpenImagesReader(source), ParquetWriter(str(by_records)))
        assert by_records.read_bytes() == Path(source).with_suffix(".parquet").read_bytes()


# --- our CSV on the columnar path --------------------------------------------------------------

HEADER = "filename,width,height,class,xmin,ymin,xmax,ymax"
CSV_CASES = {
    # images in first-seen order, rows of one image apart, a negative image
    "plain": f"{HEADER}\na.jpg,64,48,cat,1,2,3,4\nb.jpg,32,32,,,,,\na.jpg,64,48,dog,1.5,2,3.25,4\n",
    "extras": "key,filename,width,height,depth,class,xmin,ymin,xmax,ymax,difficult,truncated,"
    "pose,confidence,split,verified,other\n"
    "k1,a.jpg,64,48,3,cat,1,2,3,4,1,,Left,0.5,train,TRUE,q\n"
    "k1,a.jpg,64,48,3,dog,1e-5,2,3,4,0,-1,,,train,true,r\nk2,a.jpg,64,48,,,,,,,,,,,,,s\n",
    "bad cells": f"{HEADER},occluded\na.jpg,64,48,cat,1,2,3,4,1\nb.jpg,64,48,cat,x,2,3,4,0\n"
    "c.jpg,64,48,cat,1,2,300,4,0\nd.jpg,64,48,cat,1,2,3,4,7\ne.jpg,64,48,,1,2,3,4,0\n"
    "f.jpg,99999999999,48,cat,1,2,3,4,0\ng.jpg,64,48,cat,1e999,2,3,4,0\n,64,48,cat,1,2,3,4,0\n",
    "odd spellings": f"{HEADER},difficult\r\na.jpg,640.0,480,cat,1,2,3,4,1.0\r\n"
    "a.jpg,640,480,cat,1,2,3,4,0\r\nb.jpg,0,,cat, 1,2,3,4,0\r\nc.jpg,64,48,cat,1,2,3,4,0\r\n"
    "c.jpg,65,48,cat,1,2,3,4,0\r\n",
    "normalized": "filename,width,height,class,xmin_norm,ymin_norm,xmax_norm,ymax_norm\n"
    "a.jpg,64,48,cat,0.1,0.2,0.3,0.4\n",
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_csv_batches_match_records(case: str, tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", CSV_CASES[case])

    def parquet(batch: bool) -> ParquetWriter:
        return ParquetWriter(str(tmp_path / f"out-{batch}.parquet"))

    for policy in ("skip", "fail"):
        by_records, by_batches = both_paths(lambda: CsvReader(str(path)), parquet, policy)
        assert by_batches is not None  # the columnar path did not fall back
        assert summary(by_records) == summary(by_batches)
        if policy == "skip":
            files = [(tmp_path / f"out-{batch}.parquet").read_bytes() for batch in (False, True)]
            assert files[0] == files[1]


def summary(result: object) -> object:
    """A report without its output paths (which differ), or an error message."""
    if isinstance(result, str):
        return result
    return {k: v for k, v in result.to_dict().items() if k != "outputs"}  # type: ignore[attr-defined]


def test_csv_batch_reasons_and_fallbacks(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", CSV_CASES["bad cells"])
    report = convert(str(path), str(tmp_path / "out.csv"), on_error="skip")
    assert [s.reason for s in report.skipped] == [
        "line 3: xmin: expected a number, got 'x'",
        "line 4: object[1] ('cat'): xmax 300 is outside [0, 64] (image 64x48)",
        "line 5: occluded: expected -1, 0 or 1, got '7'",
        "line 6: class: empty on a row with coordinates (only a row with neither marks an image "
        "without objects)",
        "line 7: Input should be less than or equal to 2147483647 (got 99999999999)",
        "line 8/xmin: coordinate must be a finite number, got inf",
        "line 9: filename: empty",
    ]
    assert (tmp_path / "out.csv").read_text().splitlines() == [HEADER, "a.jpg,64,48,cat,1,2,3,4"]
    # Quotes and rows of the wrong length are left to the CSV module: same results.
    quoted = write(tmp_path / "q.csv", f'{HEADER}\n"a,b.jpg",64,48,cat,1,2,3,4\nc.jpg,1\n')
    assert CsvReader(str(quoted)).batches() is not None
    report = convert(str(quoted), str(tmp_path / "q.parquet"), on_error="skip")
    assert [s.reason for s in report.skipped] == [
        "line 3: expected 8 fields as in the header, got 2"
    ]
    assert pq.read_table(tmp_path / "q.parquet").column("filename").to_pylist() == ["a,b.jpg"]


def test_convert_takes_the_columnar_path_only_when_nothing_needs_records(
    open_images: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    module = sys.modules["annoconv.pipeline"]
    taken: list[bool] = []
    real = module.run_batches

    def spy(*args: object, **kwargs: object) -> object:
        report = real(*args, **kwargs)  # type: ignore[arg-type]
        taken.append(report is not None)
        return report

    monkeypatch.setattr(module, "run_batches", spy)
    bbox, descriptions, _ = open_images
    cache = tmp_path / "oi.parquet"
    convert(str(bbox), str(cache), read_options={"class_descriptions": str(descriptions)})
    assert taken == [True]
    convert(str(cache), str(tmp_path / "split"), to_format="parquet", split="a=0.5,b=0.5")
    assert taken == [True, True]
    renamed = convert(str(cache), str(tmp_path / "renamed.parquet"), rename={"Camera": "cam"})
    assert taken == [True, True]  # a filter works on records
    assert renamed.classes["cam"] > 0
    assert "Camera" not in renamed.classes


def test_many_small_row_groups_are_read_as_few_batches(tmp_path: Path) -> None:
    """One-row groups: one reader over them all gives batches of `batch_rows` rows (a reader
    per row group took 5 ms each, 15 s for 3,000, and the columnar path then worked one row
    at a time); errors still name each image's row group."""
    rows = "".join(f"i{i}.jpg,100,100,c{i % 5},1,1,5,5\n" for i in range(600))
    source = write(
        tmp_path / "rows.csv", "filename,width,height,class,xmin,ymin,xmax,ymax\n" + rows
    )
    whole = tmp_path / "whole.parquet"
    convert(str(source), str(whole))
    table = pq.read_table(whole)
    parquet = tmp_path / "groups.parquet"
    pq.write_table(table, parquet, row_group_size=1)
    assert pq.ParquetFile(parquet).num_row_groups == 600
    batches = list(ParquetReader(str(parquet), batch_rows=250).batches())
    assert [batch.num_rows for batch in batches] == [250, 250, 100]  # type: ignore[union-attr]
    out = tmp_path / "out.csv"
    convert(str(parquet), str(out))
    assert out.read_text(encoding="utf-8") == source.read_text(encoding="utf-8")
    width = table.schema.get_field_index("width")
    bad = table.set_column(width, "width", pa.array([100] * 599 + [0], pa.int32()))
    pq.write_table(bad, tmp_path / "bad.parquet", row_group_size=1)
    found = ParquetReader(str(tmp_path / "bad.parquet")).batches()
    (item,) = [x for x in found if not isinstance(x, pa.RecordBatch)]
    assert item.error.where == "row 600 (row group 599)/width"  # type: ignore[union-attr]
