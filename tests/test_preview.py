"""`annoconv preview` without a browser: what it draws (pixels under the boxes, the contact
sheet's pixels), which images it opens, every source kind, the report, the CLI, notebooks.
The page in a real browser: tests/test_preview_browser.py."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from factories import Box, labelimg_xml
from PIL import Image
from preview_data import BLUE, GREEN, RED, Expected, close, make_dataset

import annoconv
from annoconv.cli import main
from annoconv.errors import AnnotationError, FormatError, OptionError
from annoconv.preview import PreviewReport, ShownImage, record_html, show_records_in_notebooks
from annoconv.preview.colors import PALETTE, class_color, class_colors
from annoconv.schema import ImageRecord, ObjectAnnotation


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, dict[str, Expected]]:
    folder = tmp_path / "data"
    return folder, make_dataset(folder)


def picture(image: ShownImage) -> Image.Image:
    assert image.picture is not None
    return Image.open(io.BytesIO(image.picture)).convert("RGB")


def under(image: ShownImage, box: tuple[str, float, float, float, float]) -> tuple[int, ...]:
    """The picture's colour at the centre of `box` (decoded pixels scaled to the picture)."""
    shown = picture(image)
    sx, sy = shown.width / image.width, shown.height / image.height
    _label, x0, y0, x1, y1 = box
    return shown.getpixel((int((x0 + x1) / 2 * sx), int((y0 + y1) / 2 * sy)))  # type: ignore[return-value]


def boxes_of(image: ShownImage) -> list[tuple[str, float, float, float, float]]:
    return [(b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in image.boxes]


def same_boxes(image: ShownImage, wanted: Expected, tolerance: float = 1e-9) -> bool:
    """The image's boxes are the wanted ones: same labels, corners within `tolerance`."""
    shown = boxes_of(image)
    return len(shown) == len(wanted.boxes) and all(
        a[0] == b[0] and all(abs(x - y) <= tolerance for x, y in zip(a[1:], b[1:], strict=True))
        for a, b in zip(shown, wanted.boxes, strict=True)
    )


def test_every_image_shown_with_its_boxes_on_its_objects(
    dataset: tuple[Path, dict[str, Expected]], tmp_path: Path
) -> None:
    folder, expected = dataset
    report = annoconv.preview(str(folder), str(tmp_path / "p.html"))
    assert [image.key for image in report.shown] == sorted(expected)
    for image in report.shown:
        want = expected[image.key]
        assert (image.width, image.height) == (want.width, want.height), image.key
        assert same_boxes(image, want), image.key
        for box, color in zip(want.boxes, want.colors, strict=True):
            assert close(under(image, box), color), (image.key, box, under(image, box))
    total = sum(len(item.boxes) for item in expected.values())
    assert (report.images_read, report.images_written, report.images_skipped) == (5, 5, 0)
    assert (report.boxes_read, report.boxes_written) == (total, total)
    assert report.classes == {"cup": 3, "phone": 2, "figure": 1}
    assert [(out.path, out.kind) for out in report.outputs] == [
        (str(tmp_path / "p.html"), "preview_page")
    ]


def test_exif_rotated_photo_is_shown_as_displayed_like_the_tfrecord(
    dataset: tuple[Path, dict[str, Expected]], tmp_path: Path
) -> None:
    """The photo is stored 160x120 with orientation 6; the page shows the 120x160 frame the
    annotation describes, and previewing the TFRecord made from it shows the same."""
    folder, expected = dataset
    want = expected["phone.xml"]
    stored = Image.open(folder / "phone.jpg")
    assert stored.size == (160, 120)
    from_voc = annoconv.preview(str(folder / "phone.xml"), sample=1).shown[0]
    annoconv.convert(str(folder / "phone.xml"), str(tmp_path / "phone.record"))
    from_tfrecord = annoconv.preview(str(tmp_path / "phone.record-00000-of-00001")).shown[0]
    for image in (from_voc, from_tfrecord):
        assert (image.width, image.height) == (120, 160)
        assert same_boxes(image, want, 1e-3)
        assert picture(image).size == (120, 160)
        assert close(under(image, want.boxes[0]), RED)
        assert close(under(image, want.boxes[1]), BLUE)
    assert "EXIF orientation 6" in from_voc.notes[0]


def test_png_alpha_is_dropped_as_tensorflow_drops_it(
    dataset: tuple[Path, dict[str, Expected]],
) -> None:
    folder, _expected = dataset
    image = annoconv.preview(str(folder / "alpha.xml")).shown[0]
    shown = picture(image)
    assert image.picture_format == "png"  # few colours: kept exact
    assert shown.getpixel((150, 90)) == GREEN  # transparent, RGB kept
    assert shown.getpixel((30, 30)) == RED


def test_tiff_page_is_transcoded_and_drawn(dataset: tuple[Path, dict[str, Expected]]) -> None:
    folder, expected = dataset
    image = annoconv.preview(str(folder / "page.xml")).shown[0]
    assert (image.width, image.height) == (200, 260)
    assert image.origin is not None and image.origin.endswith("page.tif")
    shown = picture(image)
    assert shown.getpixel((90, 80)) == (0, 0, 0)  # under the box
    assert shown.getpixel((10, 10)) == (255, 255, 255)
    assert same_boxes(image, expected["page.xml"])


def test_pictures_are_downscaled_to_image_size(dataset: tuple[Path, dict[str, Expected]]) -> None:
    folder, expected = dataset
    image = annoconv.preview(str(folder / "page.xml"), image_size=65).shown[0]
    assert picture(image).size == (50, 65)
    assert (image.width, image.height) == (200, 260)  # boxes stay in decoded pixels
    assert same_boxes(image, expected["page.xml"])


def test_contact_sheet_pixels(dataset: tuple[Path, dict[str, Expected]], tmp_path: Path) -> None:
    """Each box is outlined in its class colour at its coordinates scaled into its tile, and
    its object lies inside that outline; one tile per image."""
    folder, expected = dataset
    sheet_path = tmp_path / "sheet.png"
    report = annoconv.preview(str(folder), str(sheet_path))
    sheet = Image.open(sheet_path).convert("RGB")
    assert [tile.key for tile in report.tiles] == sorted(expected)
    for tile in report.tiles:
        want = expected[tile.key]
        assert tile.width / tile.height == pytest.approx(want.width / want.height, rel=0.02)
        sx, sy = tile.width / want.width, tile.height / want.height
        for (label, x0, y0, x1, y1), color in zip(want.boxes, want.colors, strict=True):
            left, top = tile.x + round(x0 * sx), tile.y + round(y0 * sy)
            right, bottom = tile.x + round(x1 * sx) - 1, tile.y + round(y1 * sy) - 1
            middle_x, middle_y = (left + right) // 2, (top + bottom) // 2
            outline = report.class_colors()[label]
            for point in ((left, middle_y), (right, middle_y), (middle_x, bottom)):
                assert sheet.getpixel(point) == outline, (tile.key, label, point)
            # inside the outline: the object
            assert close(sheet.getpixel((middle_x, middle_y)), color), (tile.key, label)  # type: ignore[arg-type]
    # the legend's swatches are the class colours
    assert report.outputs[0].kind == "contact_sheet"


def test_page_is_self_contained(dataset: tuple[Path, dict[str, Expected]], tmp_path: Path) -> None:
    folder, expected = dataset
    page = tmp_path / "p.html"
    annoconv.preview(str(folder), str(page))
    text = page.read_text(encoding="utf-8")
    assert "<link" not in text
    assert 'src="http' not in text and "url(" not in text
    assert text.count('<figure class="card"') == len(expected)
    assert text.count('class="box') == sum(len(item.boxes) for item in expected.values())
    assert text.count("data:image/") == len(expected)
    data = text.split('<script type="application/json" id="annoconv-data">')[1].split("</script>")[
        0
    ]
    facts = json.loads(data)
    assert {image["key"]: image["boxes"] for image in facts["images"]} == {
        key: [list(box) for box in item.boxes] for key, item in expected.items()
    }


def test_class_colours_are_stable_and_distinct() -> None:
    """A class's colour comes from its name alone, unless a class before it (by name) on the
    same page took it; up to the palette's size, the classes of a page all differ."""
    names = [f"class {index}" for index in range(len(PALETTE))]
    together = class_colors(names)
    assert len(set(together.values())) == len(PALETTE)
    assert together == class_colors(reversed(names))
    first = min(names)
    assert together[first] == class_color(first) == class_colors([first, "zzz"])[first]
    # a class whose own colour no earlier class took keeps it
    for name in names:
        if class_color(name) not in {together[other] for other in names if other < name}:
            assert together[name] == class_color(name)
    many = class_colors(f"n{index}" for index in range(30))
    assert len(set(many.values())) == 30


def write_big_csv(path: Path, images: int, boxes_per_image: int) -> dict[str, int]:
    """A CSV of `images` x `boxes_per_image` rows over 64x48 images (none written here)."""
    rng = random.Random(3)
    counts = {}
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"])
        for index in range(images):
            name = f"img_{index:05d}.png"
            counts[name] = boxes_per_image
            for _ in range(boxes_per_image):
                x, y = rng.randint(0, 40), rng.randint(0, 30)
                label = rng.choice(["cat", "dog", "bird"])
                out.writerow([name, 64, 48, label, x, y, x + 20, y + 15])
    return counts


def test_ten_thousand_annotations_sampled_to_100_open_only_the_sample(tmp_path: Path) -> None:
    """10,000 boxes on 2,500 images; the sample of 100 is the one convert() draws, and only
    its images exist on disk: a preview that opened any other image would fail."""
    table = tmp_path / "boxes.csv"
    counts = write_big_csv(table, 2500, 4)
    annoconv.convert(str(table), str(tmp_path / "sampled.csv"), sample=100, seed=7)
    with (tmp_path / "sampled.csv").open() as handle:
        sampled = sorted({row["filename"] for row in csv.DictReader(handle)})
    assert len(sampled) == 100

    missing = annoconv.preview(
        str(table), str(tmp_path / "none.html"), sample=100, seed=7, on_error="skip"
    )
    assert missing.images_written == 0
    assert len(missing.skipped) == 1 + 100  # the sample's drop entry + each sampled image
    assert sorted(item.reason.split("'")[1] for item in missing.skipped[1:]) == sampled

    for name in sampled:
        Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / name)
    report = annoconv.preview(str(table), str(tmp_path / "page.html"), sample=100, seed=7)
    assert sorted(image.filename for image in report.shown) == sampled
    assert report.images_read == 2500 and report.boxes_read == 10_000
    assert report.images_written == 100
    assert report.boxes_written == sum(counts[name] for name in sampled) == 400
    assert report.selected_images == 2500
    dropped = [item for item in report.skipped if item.reason.startswith("not in the sample")]
    assert [(item.images, item.boxes) for item in dropped] == [(2400, 9600)]
    # The CSV was sampled from its Arrow batches; records take the record path: same sample.
    as_records = annoconv.preview(annoconv.read(str(table)), sample=100, seed=7)
    assert [image.key for image in as_records.shown] == [image.key for image in report.shown]
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert page.count('<figure class="card"') == 100
    assert page.count('class="box') == 400
    assert "100 of 2500 images (a sample of 100, seed 7)" in page


def test_records_in_reading_order_and_sample_is_seeded(
    dataset: tuple[Path, dict[str, Expected]],
) -> None:
    folder, _expected = dataset
    first = annoconv.preview(str(folder), sample=3, seed=1)
    again = annoconv.preview(str(folder), sample=3, seed=1)
    other = [annoconv.preview(str(folder), sample=3, seed=seed) for seed in range(2, 8)]
    keys = [image.key for image in first.shown]
    assert keys == [image.key for image in again.shown]
    assert keys == sorted(keys)  # shown in reading order
    assert any([image.key for image in run.shown] != keys for run in other)


def test_class_and_split_selection(tmp_path: Path) -> None:
    records = [
        ImageRecord(
            key=f"r{index}",
            filename=f"r{index}.png",
            width=40,
            height=30,
            split="train" if index % 2 else "val",
            image_uri=str(tmp_path / f"r{index}.png"),
            objects=[
                ObjectAnnotation(label=label, xmin=1, ymin=1, xmax=10, ymax=10)
                for label in (["cat", "dog"] if index % 3 else ["dog"])
            ],
        )
        for index in range(6)
    ]
    for record in records:
        Image.new("RGB", (40, 30), (20, 20, 20)).save(record.image_uri or "")
    cats = annoconv.preview(records, classes=["cat"])
    assert [image.key for image in cats.shown] == ["r1", "r2", "r4", "r5"]
    assert {box.label for image in cats.shown for box in image.boxes} == {"cat"}
    assert cats.images_read == 6 and cats.images_skipped == 2  # left out by the selection
    train = annoconv.preview(records, split="train")
    assert [image.key for image in train.shown] == ["r1", "r3", "r5"]
    with pytest.raises(annoconv.AnnoconvError, match="no image is in split test: its splits"):
        annoconv.preview(records, split="test")


def test_missing_and_damaged_images_fail_or_are_skipped(
    dataset: tuple[Path, dict[str, Expected]], tmp_path: Path
) -> None:
    folder, _expected = dataset
    (folder / "negative.jpg").unlink()
    (folder / "alpha.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(AnnotationError, match="alpha"):
        annoconv.preview(str(folder), str(tmp_path / "p.html"))
    assert not (tmp_path / "p.html").exists()
    report = annoconv.preview(str(folder), str(tmp_path / "p.html"), on_error="skip")
    assert [image.key for image in report.shown] == ["edges.xml", "page.xml", "phone.xml"]
    assert sorted(item.source.rsplit("/", 1)[-1] for item in report.skipped) == [
        "alpha.xml",
        "negative.xml",
    ]
    assert report.balanced
    page = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "skipped " in page and "negative.jpg" in page


def test_a_folder_named_with_glob_characters(tmp_path: Path) -> None:
    """`photos [v2]?` is read as the folder it is (as a glob it matched nothing: an empty
    page, exit 0); the images' odd names are shown as they are."""
    folder = tmp_path / "photos [v2]?"
    name = "my 100% #1 ?.png"
    folder.mkdir()
    Image.new("RGB", (40, 30), GREEN).save(folder / name)
    (folder / "a.xml").write_text(
        labelimg_xml(name, 40, 30, [Box("<b>&amp;", 2, 3, 20, 25)]), encoding="utf-8"
    )
    report = annoconv.preview(str(folder), str(tmp_path / "p.html"))
    assert report.images_read == report.images_written == 1
    [shown] = report.shown
    assert shown.filename == name and boxes_of(shown) == [("<b>&amp;", 2, 3, 20, 25)]
    page = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "my 100% #1 ?.png" in page and "&lt;b&gt;&amp;amp;" in page and "<b>&amp;" not in page


def test_images_from_an_archive(dataset: tuple[Path, dict[str, Expected]], tmp_path: Path) -> None:
    folder, expected = dataset
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    with tarfile.open(tmp_path / "images.tar", "w") as archive:
        for path in sorted(folder.iterdir()):
            if path.suffix == ".xml":
                (annotations / path.name).write_bytes(path.read_bytes())
            else:
                archive.add(path, arcname=f"pictures/{path.name}")
    report = annoconv.preview(str(annotations), images=str(tmp_path / "images.tar"))
    assert [image.key for image in report.shown] == sorted(expected)
    phone = report.shown[-1]
    assert close(under(phone, expected["phone.xml"].boxes[0]), RED)


def test_parquet_with_embedded_images(
    dataset: tuple[Path, dict[str, Expected]], tmp_path: Path
) -> None:
    """A Parquet file that embeds its images previews without the image files."""
    folder, expected = dataset
    table = tmp_path / "data.parquet"
    annoconv.convert(str(folder), str(table), write_options={"embed_images": True})
    for path in folder.iterdir():
        if path.suffix != ".xml":
            path.unlink()
    report = annoconv.preview(str(table))
    assert [image.key for image in report.shown] == sorted(expected)
    phone = report.shown[-1]
    assert (phone.width, phone.height) == (120, 160)
    assert close(under(phone, expected["phone.xml"].boxes[0]), RED)
    assert "image column" in (phone.origin or "")


def test_tfrecord_boxes_are_placed_on_the_decoded_image(
    dataset: tuple[Path, dict[str, Expected]], tmp_path: Path
) -> None:
    folder, expected = dataset
    annoconv.convert(str(folder), str(tmp_path / "all.record"), write_options={"shards": 2})
    report = annoconv.preview(str(tmp_path / "all.record"), sample=10)
    assert sorted(image.key for image in report.shown) == sorted(expected)
    for image in report.shown:
        want = expected[image.key]
        assert (image.width, image.height) == (want.width, want.height)
        assert same_boxes(image, want, 1e-3)
        for box, color in zip(want.boxes, want.colors, strict=True):
            assert close(under(image, box), color), image.key


def test_outputs_are_checked_before_reading(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"\.html \(a page\) or \.png"):
        annoconv.preview(str(tmp_path / "nothing"), str(tmp_path / "out.jpg"))
    with pytest.raises(OptionError, match="at least 1"):
        annoconv.preview(str(tmp_path / "nothing"), str(tmp_path / "out.html"), sample=0)


def test_command_line(
    dataset: tuple[Path, dict[str, Expected]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _expected = dataset
    page, sheet, report_json = tmp_path / "p.html", tmp_path / "s.png", tmp_path / "r.json"
    code = main(
        [
            "preview",
            str(folder),
            str(page),
            "--contact-sheet",
            str(sheet),
            "--sample",
            "3",
            "--seed",
            "4",
            "--report-json",
            str(report_json),
        ]
    )
    assert code == 0
    assert page.exists() and Image.open(sheet).format == "PNG"
    saved = json.loads(report_json.read_text())
    assert saved["images"] == {"read": 5, "written": 3, "skipped": 2}
    assert len(saved["preview"]["shown"]) == 3
    text = page.read_text(encoding="utf-8")
    assert f"annoconv preview {folder} {page} --sample 3 --seed 4" in text
    assert "wrote " in capsys.readouterr().err

    assert main(["preview", str(folder), str(tmp_path / "p.txt")]) == 2
    assert "written as .html (a page) or .png" in capsys.readouterr().err
    (folder / "edges.png").unlink()
    assert main(["preview", str(folder), str(page)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "edges.xml" in error[0] and "not found" in error[0]


def test_notebook_views(dataset: tuple[Path, dict[str, Expected]]) -> None:
    folder, _expected = dataset
    report = annoconv.preview(str(folder))
    assert isinstance(report, PreviewReport) and report.outputs == []
    html = report._repr_html_()
    assert html.count('<figure class="card"') == 5 and "<script" not in html
    record = next(annoconv.read(str(folder / "phone.xml")))
    shown = record_html(record)
    assert shown.count('class="box') == 2 and "data:image/jpeg;base64," in shown
    lost = ImageRecord(
        key="lost.xml",
        filename="lost.jpg",
        width=50,
        height=40,
        objects=[ObjectAnnotation(label="cup", xmin=5, ymin=5, xmax=25, ymax=20)],
    )
    blank = record_html(lost)
    assert "no pixels: image &#x27;lost.jpg&#x27; not found" in blank
    assert "left:10.00000%;top:12.50000%;width:40.00000%;height:37.50000%" in blank


def test_ipython_shows_records_drawn(dataset: tuple[Path, dict[str, Expected]]) -> None:
    """In a running IPython shell (Jupyter's kernel runs one), a record displays as its image
    with its boxes."""
    from IPython.core.interactiveshell import InteractiveShell

    folder, _expected = dataset
    shell = InteractiveShell.instance()
    try:
        assert show_records_in_notebooks()
        record = next(annoconv.read(str(folder / "phone.xml")))
        shown, _metadata = shell.display_formatter.format(record)
        scoped = re.compile(r"annoconv-[0-9a-f]{8}")  # each drawing scopes its own style
        assert scoped.sub("", shown["text/html"]) == scoped.sub("", record_html(record))
        assert shown["text/html"].count('class="box') == 2
    finally:
        InteractiveShell.clear_instance()


def test_preview_stays_callable_after_its_modules_are_imported() -> None:
    import annoconv.preview.page

    assert callable(annoconv.preview)
    assert annoconv.preview.__module__ == "annoconv.preview"


def test_source_and_images_on_s3(
    dataset: tuple[Path, dict[str, Expected]],
    tmp_path: Path,
    s3: Any,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
) -> None:
    """Annotations and images in a bucket (a real moto_server), the page written locally."""
    folder, expected = dataset
    s3.put(str(folder), f"{s3_bucket}/data", recursive=True)
    report = annoconv.preview(
        f"s3://{s3_bucket}/data",
        str(tmp_path / "p.html"),
        storage_options=s3_storage_options,
    )
    assert [image.key for image in report.shown] == sorted(expected)
    phone = report.shown[-1]
    assert phone.origin == f"s3://{s3_bucket}/data/phone.jpg"
    assert close(under(phone, expected["phone.xml"].boxes[0]), RED)
