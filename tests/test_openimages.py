"""The Open Images reader: exact records from every CSV version, selection, unsorted input,
batch and spill boundaries, side files, bad input, sniffing.

Expected values come from the generated files themselves, read with the `csv` module
(`oi_factory.expected_boxes`), never from annoconv.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oi_factory import (
    CAMERA,
    CAR,
    CLASSES,
    FIAT,
    LEMON,
    PERSON,
    PHONE,
    Row,
    all_image_ids,
    bbox_csv,
    class_descriptions,
    csv_text,
    expected_boxes,
    image_labels_csv,
    images_csv_figure_eight,
    images_csv_google,
    random_rows,
    shuffled,
    with_cells,
    write,
)

from annoconv import formats
from annoconv.convert import convert
from annoconv.errors import AnnotationError, FormatError
from annoconv.formats import get_format, infer_format, register
from annoconv.formats.base import BadItem, Dropped, ReadResult, Writer
from annoconv.formats.openimages import FORMAT, OpenImagesReader, read_class_descriptions, sniff
from annoconv.formats.openimages import order as oi_order
from annoconv.formats.openimages.checks import floats
from annoconv.pipeline import run
from annoconv.report import ErrorPolicy, OutputFile, Report
from annoconv.schema import ImageLabel, ImageRecord

SELECTED = {CAMERA: "Camera", PHONE: "Mobile phone"}


class Collect(Writer):
    """Keeps what it is given, for `run()`."""

    def __init__(self) -> None:
        super().__init__("memory")
        self.records: list[ImageRecord] = []

    def write(self, record: ImageRecord) -> None:
        self.records.append(record)

    def close(self) -> list[OutputFile]:
        return []

    def abort(self) -> None:
        pass


def run_reader(
    reader: OpenImagesReader, on_error: ErrorPolicy = "fail"
) -> tuple[list[ImageRecord], Report]:
    writer = Collect()
    report = run(reader, writer, on_error=on_error)
    return writer.records, report


def records_of(items: Iterable[ReadResult]) -> list[ImageRecord]:
    return [item for item in items if isinstance(item, ImageRecord)]


def boxes_of(records: Iterable[ImageRecord]) -> dict[str, list[tuple[Any, ...]]]:
    """{key: boxes} in the shape of `oi_factory.ExpectedBox`, for comparing exactly."""
    return {
        record.key: [
            (
                obj.label,
                obj.xmin,
                obj.xmax,
                obj.ymin,
                obj.ymax,
                (obj.occluded, obj.truncated, obj.group_of, obj.depiction, obj.inside),
                obj.confidence,
                obj.source,
            )
            for obj in record.objects
        ]
        for record in records
    }


def expected(path: str, **options: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {
        key: [
            (b.label, b.xmin, b.xmax, b.ymin, b.ymax, b.flags, b.confidence, b.source)
            for b in boxes
        ]
        for key, boxes in sorted(expected_boxes(path, **options).items())
    }


def errors_of(items: Iterable[ReadResult]) -> list[tuple[str, int, int]]:
    return [(str(i.error), i.images, i.boxes) for i in items if isinstance(i, BadItem)]


def drops_of(items: Iterable[ReadResult]) -> tuple[int, int]:
    drops = [item for item in items if isinstance(item, Dropped)]
    assert all(drop.reason == "not in --classes" for drop in drops)
    return sum(d.images for d in drops), sum(d.boxes for d in drops)


@pytest.fixture
def registered() -> Iterator[None]:
    """The format in the registry, for this test only (a no-op once the package has it)."""
    saved = dict(formats._REGISTRY), dict(formats._LOADED)
    try:
        get_format("openimages")
    except FormatError:
        register(FORMAT)
    yield
    formats._REGISTRY.clear()
    formats._REGISTRY.update(saved[0])
    formats._LOADED.clear()
    formats._LOADED.update(saved[1])


@pytest.fixture
def descriptions(tmp_path: Path) -> str:
    return write(tmp_path / "class-descriptions-boxable.csv", class_descriptions())


@pytest.fixture
def rows() -> list[Row]:
    return random_rows(random.Random(7), 60)


# --- exact records ----------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [8, 13, 21])
def test_every_version_reads_exactly(tmp_path: Path, rows: list[Row], columns: int) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows, columns))
    records = list(OpenImagesReader(path))
    assert all(isinstance(record, ImageRecord) for record in records)
    assert boxes_of(records_of(records)) == expected(path)
    keys = [record.key for record in records_of(records)]
    assert keys == sorted(all_image_ids(path))
    for record in records_of(records):
        assert record.filename == f"{record.key}.jpg"
        assert record.coords == "normalized"
        assert (record.width, record.height) == (None, None)
        assert record.source == path
        assert record.image_labels == [] and record.image_uri is None


def test_crlf_line_ends(tmp_path: Path, rows: list[Row]) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows, 21).replace("\n", "\r\n"))
    assert boxes_of(records_of(OpenImagesReader(path))) == expected(path)


def test_8_column_files_have_unknown_flags(tmp_path: Path, rows: list[Row]) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows, 8))
    for record in records_of(OpenImagesReader(path)):
        for obj in record.objects:
            assert {obj.occluded, obj.truncated, obj.group_of, obj.depiction, obj.inside} == {-1}
            assert obj.difficult == -1


def test_columns_are_found_by_name_and_flags_kept_as_written(tmp_path: Path) -> None:
    cells = {
        "IsInside": "0",
        "XMax": "1",
        "LabelName": PHONE,
        "YMax": "0.75",
        "ImageID": "000a",
        "Confidence": "",
        "Source": "activemil",
        "IsGroupOf": "1",
        "XMin": "0",
        "YMin": "0.25",
        "IsOccluded": "",
        "Extra": "x",
    }
    path = write(tmp_path / "bbox.csv", "\ufeff" + csv_text(list(cells), [list(cells.values())]))
    (record,) = records_of(OpenImagesReader(path))
    (obj,) = record.objects
    assert (obj.label, obj.xmin, obj.xmax, obj.ymin, obj.ymax) == (PHONE, 0.0, 1.0, 0.25, 0.75)
    # IsOccluded is empty, IsTruncated and IsDepiction are not in the header: unknown.
    flags = (obj.occluded, obj.truncated, obj.group_of, obj.depiction, obj.inside)
    assert flags == (-1, -1, 1, -1, 0)
    assert (obj.confidence, obj.source) == (None, "activemil")


def test_display_names_from_class_descriptions(
    tmp_path: Path, rows: list[Row], descriptions: str
) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows, 21))
    reader = OpenImagesReader(path, class_descriptions=descriptions)
    assert boxes_of(records_of(reader)) == expected(path, names=CLASSES)
    assert reader.class_ids() == {name: mid for mid, name in CLASSES.items()}
    assert OpenImagesReader(path).class_ids() == {}


@pytest.mark.parametrize("header", [None, ("LabelName", "DisplayName"), ("MID", "class")])
def test_class_descriptions_with_or_without_header(
    tmp_path: Path, header: tuple[str, str] | None
) -> None:
    path = write(tmp_path / "d.csv", "\ufeff" + class_descriptions(header=header))
    assert read_class_descriptions(path) == CLASSES
    assert CLASSES[LEMON] == "Lemon, lime and bitters" and CLASSES[FIAT] == 'Fiat 500 "topolino"'


def test_class_descriptions_sharing_a_name_get_their_mid(tmp_path: Path) -> None:
    text = class_descriptions({"/m/01": "Jaguar", "/m/02": "Jaguar", "/m/03": "Car"})
    path = write(tmp_path / "d.csv", text)
    assert read_class_descriptions(path) == {
        "/m/01": "Jaguar (/m/01)",
        "/m/02": "Jaguar (/m/02)",
        "/m/03": "Car",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/m/01,Car,extra\n", "d.csv: line 1: expected 2 fields (MID,DisplayName), got 3"),
        ("/m/01,Car\n/m/02,\n", "d.csv: line 2: empty DisplayName"),
        ("/m/01,Car\n/m/01,Truck\n", "d.csv: line 2: MID /m/01 is described twice"),
        ("LabelName,DisplayName\n", "d.csv: no classes: expected rows of MID,DisplayName"),
    ],
)
def test_bad_class_descriptions(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "d.csv", text)
    with pytest.raises(AnnotationError) as caught:
        read_class_descriptions(path)
    assert str(caught.value) == message.replace("d.csv", path)


def test_unknown_mid_with_descriptions_is_a_bad_image(tmp_path: Path, descriptions: str) -> None:
    rows = [Row("000a", CAMERA), Row("000b", "/m/0new"), Row("000b", CAMERA), Row("000c", CAR)]
    path = write(tmp_path / "bbox.csv", bbox_csv(rows))
    items = list(OpenImagesReader(path, class_descriptions=descriptions))
    assert [r.key for r in records_of(items)] == ["000a", "000c"]
    assert errors_of(items) == [
        (f"{path}: row 2: image 000b: LabelName /m/0new is not in {descriptions}", 1, 2)
    ]
    # Without descriptions a MID is just a label.
    assert [r.key for r in records_of(OpenImagesReader(path))] == ["000a", "000b", "000c"]


# --- selection --------------------------------------------------------------------------------


def test_selection_by_name_or_mid_and_the_counts_add_up(
    tmp_path: Path, rows: list[Row], descriptions: str
) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows, 21))
    by_name = OpenImagesReader(
        path, class_descriptions=descriptions, classes=["Camera", "Mobile phone"]
    )
    by_mid = OpenImagesReader(path, class_descriptions=descriptions, classes=[CAMERA, PHONE])
    records, report = run_reader(by_name)
    same, _ = run_reader(by_mid)
    assert records == same
    wanted = expected(path, names=CLASSES, classes=SELECTED)
    assert boxes_of(records) == wanted
    assert {obj.label for r in records for obj in r.objects} == {"Camera", "Mobile phone"}
    assert report.images_read == len(all_image_ids(path))
    assert report.boxes_read == len(rows)
    assert report.images_written == len(wanted)
    assert report.boxes_written == sum(len(boxes) for boxes in wanted.values())
    (skipped,) = report.skipped
    assert (skipped.reason, skipped.images, skipped.boxes) == (
        "not in --classes",
        report.images_read - report.images_written,
        report.boxes_read - report.boxes_written,
    )
    assert by_name.class_ids() == {"Camera": CAMERA, "Mobile phone": PHONE}


def test_selection_by_mid_without_descriptions(tmp_path: Path, rows: list[Row]) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows))
    records = records_of(OpenImagesReader(path, classes=[CAMERA, PHONE]))
    assert boxes_of(records) == expected(path, classes=SELECTED)


def test_keep_empty_keeps_images_left_without_boxes(
    tmp_path: Path, rows: list[Row], descriptions: str
) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows))
    reader = OpenImagesReader(
        path, class_descriptions=descriptions, classes=["Camera"], keep_empty=True, batch_rows=3
    )
    records, report = run_reader(reader)
    wanted = expected(path, names=CLASSES, classes=[CAMERA])
    assert [r.key for r in records] == sorted(all_image_ids(path))
    assert {k: v for k, v in boxes_of(records).items() if v} == wanted
    assert report.images_written == report.images_read
    assert report.boxes_skipped == len(rows) - sum(len(v) for v in wanted.values())


def test_unknown_classes_are_listed_with_near_matches(descriptions: str, tmp_path: Path) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv([Row("000a")]))
    with pytest.raises(AnnotationError) as caught:
        OpenImagesReader(
            path,
            class_descriptions=descriptions,
            classes=["Camra", "camera", "Mobile phone", "Xyz"],
        )
    assert str(caught.value) == (
        f"{descriptions}: unknown class(es): 'Camra' is not in the class descriptions "
        "(did you mean 'Camera', 'Car'?); 'camera' is not in the class descriptions "
        "(did you mean 'Camera'?); 'Xyz' is not in the class descriptions"
    )
    with pytest.raises(ValueError, match="without class descriptions the labels are MIDs"):
        OpenImagesReader(path, classes=["Camera"])
    with pytest.raises(ValueError, match="classes is empty"):
        OpenImagesReader(path, classes=[])


@pytest.mark.usefixtures("registered")
def test_convert_selects_through_the_reader(
    tmp_path: Path, rows: list[Row], descriptions: str
) -> None:
    """The camera story, end to end: select, sample and split, written as pixel CSVs."""
    from factories import draw_image

    path = write(tmp_path / "oi" / "train-annotations-bbox.csv", bbox_csv(rows, 21))
    wanted = expected(path, names=CLASSES, classes=SELECTED)
    for key in wanted:
        draw_image(tmp_path / "images" / f"{key}.jpg", 64, 48)
    assert infer_format(path) == "openimages"
    report = convert(
        path,
        str(tmp_path / "out" / "boxes.csv"),
        classes=["Camera", "Mobile phone"],
        sample=5,
        seed=3,
        split={"train": 0.8, "test": 0.2},
        images=str(tmp_path / "images"),
        read_options={"class_descriptions": descriptions},
    )
    assert report.images_read == len(all_image_ids(path))
    assert report.images_written == 5
    assert report.boxes_read == len(rows)
    assert report.classes.keys() <= {"Camera", "Mobile phone"}
    written = [
        line.split(",")
        for name in ("boxes-train.csv", "boxes-test.csv")
        for line in (tmp_path / "out" / name).read_text().splitlines()[1:]
    ]
    assert {cells[0].removesuffix(".jpg") for cells in written} <= wanted.keys()
    assert len(written) == report.boxes_written


# --- order, unsorted input, batches and spills ------------------------------------------------


def test_unsorted_input_gives_the_sorted_files_records(tmp_path: Path, rows: list[Row]) -> None:
    sorted_path = write(tmp_path / "sorted.csv", bbox_csv(rows))
    mixed = shuffled(rows, random.Random(1))
    unsorted_path = write(tmp_path / "unsorted.csv", bbox_csv(mixed))
    baseline = records_of(OpenImagesReader(sorted_path))
    settings: list[dict[str, Any]] = [{}, {"batch_rows": 4, "memory_budget": 2000}]
    for options in settings:
        records = records_of(OpenImagesReader(unsorted_path, **options))
        assert [r.key for r in records] == [r.key for r in baseline]
        # Boxes of one image keep the unsorted file's order.
        assert boxes_of(records) == expected(unsorted_path)
        assert {k: sorted(v) for k, v in boxes_of(records).items()} == {
            k: sorted(v) for k, v in boxes_of(baseline).items()
        }


@pytest.mark.parametrize("keep_empty", [False, True])
def test_unsorted_selection_counts_every_image_once(
    tmp_path: Path, rows: list[Row], keep_empty: bool
) -> None:
    # Sorted for a while, then an ImageID goes back: the first rows are re-read for markers.
    mixed = rows[:50] + shuffled(rows[50:], random.Random(2))
    path = write(tmp_path / "bbox.csv", bbox_csv(mixed))
    wanted = expected(path, classes=[CAMERA])
    reports = []
    settings: list[dict[str, Any]] = [{}, {"batch_rows": 3, "memory_budget": 1500}]
    for options in settings:
        reader = OpenImagesReader(path, classes=[CAMERA], keep_empty=keep_empty, **options)
        records, report = run_reader(reader)
        assert {k: v for k, v in boxes_of(records).items() if v} == wanted
        assert report.images_read == len(all_image_ids(path))
        assert report.boxes_read == len(rows)
        images = report.images_read if keep_empty else len(wanted)
        assert report.images_written == images
        reports.append(report.to_dict())
    assert reports[0] == reports[1]


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 7])
def test_images_split_across_batches(
    tmp_path: Path, rows: list[Row], descriptions: str, batch_rows: int
) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows, 21))
    options: dict[str, Any] = {"class_descriptions": descriptions, "classes": ["Camera", "Car"]}
    whole = run_reader(OpenImagesReader(path, **options))
    pieces = run_reader(OpenImagesReader(path, batch_rows=batch_rows, **options))
    assert pieces[0] == whole[0]
    assert pieces[1].to_dict() == whole[1].to_dict()


def test_small_blocks_and_spills_change_nothing(
    tmp_path: Path, rows: list[Row], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(shuffled(rows, random.Random(3)), 21))
    baseline = records_of(OpenImagesReader(path))
    # Every batch its own run, merged two at a time in several rounds.
    monkeypatch.setattr(oi_order, "MERGE_FAN_IN", 2)
    spill = tmp_path / "spill"
    spill.mkdir()
    reader = OpenImagesReader(
        path, block_size=400, batch_rows=5, memory_budget=1, tmp_dir=str(spill)
    )
    assert records_of(reader) == baseline
    assert os.listdir(spill) == []


def test_spills_are_removed_when_reading_stops_early(tmp_path: Path, rows: list[Row]) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows))
    spill = tmp_path / "spill"
    spill.mkdir()
    items = iter(OpenImagesReader(path, batch_rows=10, memory_budget=1, tmp_dir=str(spill)))
    next(items)
    assert os.listdir(spill) != []
    items.close()  # type: ignore[attr-defined]
    assert os.listdir(spill) == []


def test_several_files_are_read_in_turn(tmp_path: Path, rows: list[Row]) -> None:
    first = write(tmp_path / "a" / "validation-annotations-bbox.csv", bbox_csv(rows[:30], 13))
    second = write(tmp_path / "b" / "test-annotations-bbox.csv", bbox_csv(rows[30:], 8))
    records = records_of(OpenImagesReader([second, first]))
    assert [r.source for r in records] == (
        [first] * len(expected(first)) + [second] * len(expected(second))
    )
    assert boxes_of(records) == {**expected(first), **expected(second)}


def test_a_folder_reads_only_its_bbox_csvs(tmp_path: Path, rows: list[Row]) -> None:
    folder = tmp_path / "oi"
    bbox = write(folder / "train-annotations-bbox.csv", bbox_csv(rows))
    names = write(folder / "class-descriptions-boxable.csv", class_descriptions())
    write(folder / "train-images-boxable.csv", images_csv_figure_eight({"000a": "u"}))
    assert boxes_of(records_of(OpenImagesReader(str(folder)))) == expected(bbox)
    assert boxes_of(records_of(OpenImagesReader(str(folder / "*.csv")))) == expected(bbox)
    # A file named on its own must be a bbox CSV.
    ((message, _, _),) = errors_of(OpenImagesReader([bbox, names]))
    assert message.startswith(f"{names}: line 1: not an Open Images bbox CSV: missing column(s) ")


# --- labels(), class ids, count hint ----------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"classes": ["Camera", "Mobile phone"]},
        {"classes": ["Camera"], "keep_empty": True},
        {"classes": [CAR, "Camera"], "batch_rows": 2, "memory_budget": 500},
    ],
)
def test_labels_match_the_records(
    tmp_path: Path, rows: list[Row], descriptions: str, options: dict[str, Any]
) -> None:
    bad = with_cells(rows[10], label=CAMERA, xmin="0.9", xmax="0.1")
    mixed = shuffled([*rows[:10], bad, *rows[11:]], random.Random(4))
    path = write(tmp_path / "bbox.csv", bbox_csv(mixed))
    reader = OpenImagesReader(path, class_descriptions=descriptions, **options)
    from_records = [(r.key, [o.label for o in r.objects]) for r in records_of(reader)]
    assert list(reader.labels()) == from_records
    assert bad.image_id not in dict(reader.labels())
    assert reader.count_hint() == len(from_records) + 1


def test_count_hint_is_unknown_before_a_pass(tmp_path: Path, rows: list[Row]) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv(rows))
    reader = OpenImagesReader(path)
    assert reader.count_hint() is None
    assert sum(1 for _ in reader) == reader.count_hint() == len(all_image_ids(path))


# --- image URLs and image-level labels --------------------------------------------------------


@pytest.mark.parametrize("form", [images_csv_figure_eight, images_csv_google])
def test_image_uris_from_either_images_csv(
    tmp_path: Path, rows: list[Row], descriptions: str, form: Any
) -> None:
    ids = sorted(all_image_ids(write(tmp_path / "bbox.csv", bbox_csv(rows))))
    urls = {key: f"https://farm{n}.staticflickr.com/{key}_o.jpg" for n, key in enumerate(ids)}
    urls["ffffffffffffffff"] = "https://elsewhere/x.jpg"
    images = write(tmp_path / "images.csv", form(urls))
    reader = OpenImagesReader(
        str(tmp_path / "bbox.csv"),
        class_descriptions=descriptions,
        images_csv=images,
        classes=["Camera"],
    )
    records = records_of(reader)
    assert records
    assert {r.key: r.image_uri for r in records} == {r.key: urls[r.key] for r in records}


def test_image_labels_keep_verified_negatives_and_follow_the_selection(
    tmp_path: Path, descriptions: str
) -> None:
    bbox = write(tmp_path / "bbox.csv", bbox_csv([Row("000a"), Row("000b", CAR)]))
    labels = [
        write(
            tmp_path / "human.csv",
            image_labels_csv(
                [
                    ("000a", "verification", CAMERA, "1"),
                    ("000a", "verification", PHONE, "0"),
                    ("000a", "verification", PERSON, "1"),
                    ("000b", "verification", CAMERA, "0"),
                    ("000c", "verification", CAMERA, "1"),
                ]
            ),
        ),
        write(
            tmp_path / "machine.csv",
            image_labels_csv(
                [("000a", "machine", "/m/0unboxable", "0.7"), ("000a", "m", PHONE, "")]
            ),
        ),
    ]
    every = records_of(OpenImagesReader(bbox, class_descriptions=descriptions, image_labels=labels))
    assert {r.key: r.image_labels for r in every} == {
        "000a": [
            ImageLabel(label="Camera", confidence=1.0),
            ImageLabel(label="Mobile phone", confidence=0.0),
            ImageLabel(label="Person", confidence=1.0),
            ImageLabel(label="/m/0unboxable", confidence=0.7),
            ImageLabel(label="Mobile phone", confidence=None),
        ],
        "000b": [ImageLabel(label="Camera", confidence=0.0)],
    }
    selected = records_of(
        OpenImagesReader(
            bbox,
            class_descriptions=descriptions,
            image_labels=labels,
            classes=["Camera", "Mobile phone"],
        )
    )
    assert {r.key: r.image_labels for r in selected} == {
        "000a": [
            ImageLabel(label="Camera", confidence=1.0),
            ImageLabel(label="Mobile phone", confidence=0.0),
            ImageLabel(label="Mobile phone", confidence=None),
        ]
    }


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "images_csv",
            "id,url\nx,y\n",
            "line 1: not an Open Images images CSV: expected the columns image_name,image_url "
            "or ImageID,Subset,OriginalURL,...; the header has: id,url",
        ),
        (
            "image_labels",
            "ImageID,Source,LabelName\nx,y,z\n",
            "line 1: not an Open Images image-level labels CSV: missing column(s) Confidence; "
            "expected ImageID,Source,LabelName,Confidence; "
            "the header has: ImageID,Source,LabelName",
        ),
    ],
)
def test_bad_side_files_fail_at_once(tmp_path: Path, name: str, text: str, message: str) -> None:
    bbox = write(tmp_path / "bbox.csv", bbox_csv([Row("000a")]))
    side = write(tmp_path / "side.csv", text)
    options: dict[str, Any] = {name: side}
    with pytest.raises(AnnotationError) as caught:
        OpenImagesReader(bbox, **options)
    assert str(caught.value) == f"{side}: {message}"


def test_bad_confidence_in_image_labels(tmp_path: Path) -> None:
    bbox = write(tmp_path / "bbox.csv", bbox_csv([Row("000a")]))
    side = write(
        tmp_path / "l.csv",
        image_labels_csv([("000a", "v", CAMERA, "1"), ("000a", "v", PHONE, "yes")]),
    )
    with pytest.raises(AnnotationError) as caught:
        list(OpenImagesReader(bbox, image_labels=side))
    assert str(caught.value) == f"{side}: row 2: Confidence 'yes' is not a number"


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ({"xmin": "abc"}, "XMin 'abc' is not a number"),
        ({"ymax": ""}, "YMax is empty"),
        ({"xmax": " 0.5"}, "XMax ' 0.5' is not a number"),
        ({"xmin": "nan"}, "XMin nan is not a finite number"),
        ({"ymin": "-inf"}, "YMin -inf is not a finite number"),
        ({"xmin": "0.7", "xmax": "0.3"}, "XMin 0.7 > XMax 0.3"),
        ({"ymin": "0.9"}, "YMin 0.9 > YMax 0.600000"),
        ({"xmax": "1.0002"}, "XMax 1.0002 is outside [0, 1]"),
        ({"xmin": "-0.001"}, "XMin -0.001 is outside [0, 1]"),
        ({"confidence": "high"}, "Confidence 'high' is not a number"),
        ({"flags": ("0", "2", "0", "0", "0")}, "IsTruncated '2' is not 1, 0 or -1"),
        ({"flags": ("0", "0", "0", "0", "true")}, "IsInside 'true' is not 1, 0 or -1"),
        ({"label": ""}, "LabelName is empty"),
    ],
)
def test_bad_rows_make_their_image_a_bad_item(
    tmp_path: Path, cells: dict[str, Any], message: str
) -> None:
    rows = [Row("000a"), Row("000b"), Row("000b", PHONE), Row("000b"), Row("000c")]
    rows[2] = with_cells(rows[2], **cells)
    path = write(tmp_path / "bbox.csv", bbox_csv(rows))
    items = list(OpenImagesReader(path, batch_rows=2))
    assert [r.key for r in records_of(items)] == ["000a", "000c"]
    assert errors_of(items) == [(f"{path}: row 3: image 000b: {message}", 1, 3)]
    _, report = run_reader(OpenImagesReader(path), on_error="skip")
    assert (report.images_read, report.images_written, report.boxes_read) == (3, 2, 5)
    with pytest.raises(AnnotationError, match="row 3: image 000b"):
        run_reader(OpenImagesReader(path))


def test_tolerance_and_odd_spellings_are_accepted(tmp_path: Path) -> None:
    row = Row("000a", xmin="-0.0001", xmax="1.0001", ymin=".25", ymax="6E-1", confidence="+1.")
    path = write(tmp_path / "bbox.csv", bbox_csv([row]))
    (record,) = records_of(OpenImagesReader(path))
    (obj,) = record.objects
    assert (obj.xmin, obj.xmax, obj.ymin, obj.ymax, obj.confidence) == (
        -0.0001,
        1.0001,
        0.25,
        0.6,
        1.0,
    )


def test_unselected_rows_are_not_checked(tmp_path: Path) -> None:
    rows = [Row("000a"), Row("000a", CAR, xmin="junk"), Row("000b", CAR, xmin="0.9")]
    path = write(tmp_path / "bbox.csv", bbox_csv(rows))
    items = list(OpenImagesReader(path, classes=[CAMERA]))
    assert [len(r.objects) for r in records_of(items)] == [1]
    assert drops_of(items) == (1, 2)


def test_empty_image_id_is_a_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path / "bbox.csv", bbox_csv([Row(""), Row("000a")]))
    items = list(OpenImagesReader(path))
    assert errors_of(items) == [(f"{path}: row 1: image : ImageID is empty", 1, 1)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "line 1: empty file: expected the header ImageID,Source,LabelName,Confidence,"
            "XMin,XMax,YMin,YMax,...",
        ),
        (
            "ImageID,Source,LabelName,Confidence,XMin,YMin\nx,y,z,1,0,0\n",
            "line 1: not an Open Images bbox CSV: missing column(s) XMax, YMax; expected "
            "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax (8 columns), + "
            "IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside (13) and + "
            "XClick1X...XClick4Y (21), or the challenge's "
            "ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf (7); the header has: "
            "ImageID,Source,LabelName,Confidence,XMin,YMin",
        ),
        (
            "ImageID,Source,LabelName,Confidence\nx,y,z,1\n",
            "line 1: this is an image-level labels file (ImageID,Source,LabelName,Confidence), "
            "not a bbox CSV: pass it as image_labels (--image-labels) next to a bbox CSV",
        ),
        (
            "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,XMin\n",
            "line 1: column(s) given more than once: XMin",
        ),
    ],
)
def test_bad_headers(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bbox.csv", text)
    items = list(OpenImagesReader(path))
    assert errors_of(items) == [(f"{path}: {message}", 0, 0)]


@pytest.mark.parametrize("block_size", [1 << 20, 500])
def test_a_file_pyarrow_cannot_parse_is_one_bad_item(
    tmp_path: Path, rows: list[Row], block_size: int
) -> None:
    lines = bbox_csv(rows[:20], 13).splitlines(keepends=True)
    lines[15] = lines[15].rsplit(",", 2)[0] + "\n"
    path = write(tmp_path / "bbox.csv", "".join(lines))
    items = list(OpenImagesReader(path, block_size=block_size))
    ((message, images, boxes),) = errors_of(items)
    assert message == (
        f"{path}: row 15: malformed CSV: Expected 13 columns, got 11: {lines[15].strip()}"
    )
    assert len(items) == 1
    # The rows pyarrow delivered before the block holding the error.
    assert boxes < 15
    assert images == len({row.image_id for row in rows[:boxes]})


def test_invalid_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bbox.csv"
    path.write_bytes(
        bbox_csv([Row("000a")]).encode() + b"000b,xclick,/m/\xff,1,0,1,0,1,0,0,0,0,0\n"
    )
    ((message, _, _),) = errors_of(OpenImagesReader(str(path)))
    assert message.startswith(f"{path}: row 2: malformed CSV: ")
    assert "UTF8" in message


# --- sniffing and the registry ----------------------------------------------------------------


@pytest.mark.usefixtures("registered")
def test_sniff_tells_the_csvs_apart(tmp_path: Path) -> None:
    oi_path = write(
        tmp_path / "a" / "oidv6-train-annotations-bbox.csv", bbox_csv([Row("000a")], 21)
    )
    labels = write(tmp_path / "b" / "labels.csv", image_labels_csv([("000a", "v", CAMERA, "1")]))
    tutorial = write(
        tmp_path / "c" / "boxes.csv", "filename,width,height,class,xmin,ymin,xmax,ymax\n"
    )
    assert sniff(oi_path) == "openimages"
    assert sniff(labels) == "openimages"
    assert sniff(tutorial) == "csv"
    assert sniff(str(tmp_path / "a" / "*.csv")) == "openimages"
    assert sniff(str(tmp_path / "missing.csv")) == "csv"
    assert infer_format(oi_path) == "openimages"
    assert infer_format(tutorial) == "csv"
    assert get_format("openimages").reader is OpenImagesReader


# --- properties -------------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32),
    images=st.integers(1, 25),
    columns=st.sampled_from([8, 13, 21]),
    unsorted=st.booleans(),
    batch_rows=st.integers(1, 40),
    memory_budget=st.sampled_from([1, 700, 1 << 20]),
    classes=st.sampled_from([None, [CAMERA], [PHONE, CAR]]),
)
def test_any_file_reads_as_the_csv_module_says(
    tmp_path: Path,
    seed: int,
    images: int,
    columns: int,
    unsorted: bool,
    batch_rows: int,
    memory_budget: int,
    classes: list[str] | None,
) -> None:
    rng = random.Random(seed)
    rows = random_rows(rng, images)
    if unsorted:
        rows = shuffled(rows, rng)
    path = write(tmp_path / f"{seed}.csv", bbox_csv(rows, columns))
    reader = OpenImagesReader(
        path, classes=classes, batch_rows=batch_rows, memory_budget=memory_budget
    )
    records, report = run_reader(reader)
    assert boxes_of(records) == expected(path, classes=classes)
    assert [r.key for r in records] == sorted(r.key for r in records)
    assert report.images_read == len(all_image_ids(path))
    assert report.boxes_read == len(rows)


@given(st.floats(0, 1), st.sampled_from(["{:.6f}", "{!r}", "{:.3g}", "{:.12e}", "{:.17f}"]))
@settings(max_examples=300, deadline=None)
def test_numbers_parse_exactly_as_python_floats(value: float, style: str) -> None:
    text = style.format(value)
    (parsed,), _ = floats(pa.array([text]))
    assert parsed.as_py() == float(text)


def test_float_parsing_slow_path_agrees(tmp_path: Path) -> None:
    texts = ["0.1", "abc", "1e-7", "", ".5", "nan", "0x1", "7."]
    values, failing = floats(pa.array(texts))
    assert values.to_pylist()[:5] == [0.1, None, 1e-7, None, 0.5]
    assert values.to_pylist()[7] == 7.0
    assert failing.to_pylist() == [False, True, False, True, False, False, True, False]
