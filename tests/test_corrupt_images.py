"""Corrupt images where a conversion needs the pixels or the header: VOC -> TFRecord (the bytes
are embedded) and size filling for pixel writers (CSV from Faster R-CNN txt, VOC without
<size>).

Under `fail` the run stops with one error naming the image and publishes nothing; under `skip`
the image is left out and reported with that reason, the others are written, and the counts
add up (the suite's ledger checks every run too). A PNG named `.jpg` is no corruption: the
format comes from the bytes.
"""

from __future__ import annotations

import io
import random
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from factories import draw_image, labelimg_xml, write
from PIL import Image

from annoconv import convert
from annoconv.errors import AnnotationError
from annoconv.formats.tfrecord import TFRecordReader
from annoconv.tfexample import decode_example, iter_tfrecords

pytestmark = pytest.mark.timeout(60)

WIDTH, HEIGHT = 40, 30
BOXES = [("cat", 1, 2, 20, 25), ("dog", 5, 5, 39, 29)]


def jpeg() -> bytes:
    """A noisy photo, so that most of the file is scan data after the header."""
    pixels = random.Random(3).randbytes(WIDTH * HEIGHT * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (WIDTH, HEIGHT), pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (WIDTH, HEIGHT), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png_header() -> bytes:
    """A valid little PNG file whose header claims 60000 x 60000 pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


#: name -> the bytes of a broken image file named `<name>.jpg`.
CORRUPT: dict[str, Callable[[], bytes]] = {
    "truncated-jpeg": lambda: jpeg()[: len(jpeg()) // 2],
    "jpeg-header-only": lambda: jpeg()[:40],
    "truncated-png-named-jpg": lambda: png()[:-20],
    "zero-bytes": lambda: b"",
    "random-bytes": lambda: random.Random(7).randbytes(3000),
    "text": lambda: b"this is not an image\n",
    "decompression-bomb": huge_png_header,
}
#: Problems found from the header alone (size filling reads only that); the rest need the
#: whole file, which the TFRecord writer checks before embedding it.
BAD_HEADERS = {"jpeg-header-only", "zero-bytes", "random-bytes", "text", "decompression-bomb"}


def dataset(root: Path, *, with_size: bool = True) -> Path:
    """A good JPEG, a PNG named .jpg, and every corrupt file, each with a VOC XML of 2 boxes."""
    files = {"good": jpeg(), "png-named-jpg": png()}
    files.update({name: make() for name, make in CORRUPT.items()})
    for name, data in files.items():
        write(root / f"{name}.jpg", data)
        width = WIDTH if with_size else None
        write(root / f"{name}.xml", labelimg_xml(f"{name}.jpg", width, HEIGHT, BOXES))
    return root


# --- VOC -> TFRecord ----------------------------------------------------------------------------


def test_tfrecord_skip_leaves_out_each_corrupt_image_naming_it(tmp_path: Path) -> None:
    ann = dataset(tmp_path / "ann")
    out = tmp_path / "out" / "train.record"
    report = convert(str(ann), str(out), on_error="skip")
    skipped = {Path(item.source).stem: item for item in report.skipped}
    assert sorted(skipped) == sorted(CORRUPT)
    for name, item in skipped.items():
        assert f"image {ann / name}.jpg " in item.reason, item
        assert (item.images, item.boxes) == (1, 2)
    assert (report.images_read, report.images_written) == (len(CORRUPT) + 2, 2)
    assert (report.boxes_read, report.boxes_written) == (2 * (len(CORRUPT) + 2), 4)

    records = list(TFRecordReader(f"{out}-00000-of-00001"))
    assert sorted(r.key for r in records) == ["good.xml", "png-named-jpg.xml"]  # type: ignore[union-attr]
    for payload in iter_tfrecords(f"{out}-00000-of-00001"):
        features = decode_example(payload)
        name = features["image/filename"][1][0].decode()
        encoded = features["image/encoded"][1][0]
        assert encoded == (ann / name).read_bytes()  # embedded byte for byte
        assert features["image/format"][1] == [b"png" if name.startswith("png") else b"jpeg"]
        with Image.open(io.BytesIO(encoded)) as image:
            image.load()  # decodes in full
            assert image.size == (WIDTH, HEIGHT)


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_tfrecord_fail_names_the_image_and_publishes_nothing(name: str, tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    write(ann / "a.jpg", jpeg())
    write(ann / "a.xml", labelimg_xml("a.jpg", WIDTH, HEIGHT, BOXES))
    write(ann / f"{name}.jpg", CORRUPT[name]())
    write(ann / f"{name}.xml", labelimg_xml(f"{name}.jpg", WIDTH, HEIGHT, BOXES))
    out = tmp_path / "out" / "train.record"
    with pytest.raises(AnnotationError) as error:
        convert(str(ann), str(out), label_map_output=str(tmp_path / "out" / "map.pbtxt"))
    assert str(error.value).startswith(f"{ann / name}.xml: image {ann / name}.jpg ")
    assert "\n" not in str(error.value)
    assert not out.parent.exists() or sorted(out.parent.iterdir()) == []


# --- size filling for pixel writers -------------------------------------------------------------


def test_csv_size_filling_from_frcnn_txt_skips_and_names_each_bad_header(tmp_path: Path) -> None:
    images = dataset(tmp_path / "images")
    lines = [
        f"{name}.jpg,{x1},{y1},{x2},{y2},{label}"
        for name in ["good", "png-named-jpg", *sorted(CORRUPT)]
        for label, x1, y1, x2, y2 in BOXES
    ]
    txt = write(tmp_path / "boxes.txt", "\n".join(lines) + "\n")
    out = tmp_path / "boxes.csv"
    report = convert(str(txt), str(out), images=str(images), on_error="skip")
    bad = {f"{images / name}.jpg" for name in BAD_HEADERS}
    assert {item.source for item in report.skipped} == {str(txt)}
    assert len(report.skipped) == len(BAD_HEADERS), report.skipped
    for item in report.skipped:
        named = [path for path in bad if path in item.reason]
        assert len(named) == 1, item
        assert item.reason.startswith(f"image size is unknown and image {named[0]} cannot be read:")
        assert (item.images, item.boxes) == (1, 2)
    written = len(CORRUPT) + 2 - len(BAD_HEADERS)
    assert (report.images_written, report.boxes_written) == (written, 2 * written)
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[1:3] == ["good.jpg,40,30,cat,1,2,20,25", "good.jpg,40,30,dog,5,5,39,29"]
    # Truncated files still have a whole header: their size is known, and a CSV needs no more.
    assert "truncated-jpeg.jpg,40,30,cat,1,2,20,25" in rows
    assert "png-named-jpg.jpg,40,30,cat,1,2,20,25" in rows


@pytest.mark.parametrize("name", sorted(BAD_HEADERS))
def test_csv_size_filling_fail_names_the_image(name: str, tmp_path: Path) -> None:
    write(tmp_path / f"{name}.jpg", CORRUPT[name]())
    txt = write(tmp_path / "boxes.txt", f"{name}.jpg,1,2,3,4,cat\n")
    with pytest.raises(AnnotationError) as error:
        convert(str(txt), str(tmp_path / "out.csv"))
    message = str(error.value)
    assert message.startswith(
        f"{txt}: image size is unknown and image {tmp_path / name}.jpg cannot be read: "
    )
    assert "\n" not in message
    assert not (tmp_path / "out.csv").exists()


def test_voc_without_size_reports_the_unreadable_image(tmp_path: Path) -> None:
    ann = dataset(tmp_path / "ann", with_size=False)
    report = convert(str(ann), str(tmp_path / "out.csv"), on_error="skip")
    reasons = {Path(item.source).stem: item.reason for item in report.skipped}
    assert sorted(reasons) == sorted(BAD_HEADERS)
    for name, reason in reasons.items():
        assert f"the image {ann / name}.jpg cannot be read" in reason
    assert report.images_written == len(CORRUPT) + 2 - len(BAD_HEADERS)


def test_a_real_image_drawn_by_pillow_is_not_mistaken_for_corrupt(tmp_path: Path) -> None:
    """The control: the same pipeline accepts a real image of every embeddable kind."""
    for suffix in ("jpg", "png", "gif", "bmp"):
        draw_image(tmp_path / f"ok-{suffix}.{suffix}", WIDTH, HEIGHT)
        xml = labelimg_xml(f"ok-{suffix}.{suffix}", WIDTH, HEIGHT, BOXES)
        write(tmp_path / f"ok-{suffix}.xml", xml)
    report = convert(str(tmp_path), str(tmp_path / "out" / "a.record"))
    assert (report.images_written, report.boxes_written, report.skipped) == (4, 8, [])


def test_images_in_an_archive_name_the_unreadable_member(tmp_path: Path) -> None:
    """Size filling from a tar archive's members: the same verdicts, naming the member."""
    ann = dataset(tmp_path / "ann", with_size=False)
    archive = tmp_path / "images.tar"
    with tarfile.open(archive, "w") as tar:
        for image in sorted(ann.glob("*.jpg")):
            tar.add(image, arcname=f"scans/{image.name}")
            image.unlink()
    report = convert(str(ann), str(tmp_path / "out.csv"), images=str(archive), on_error="skip")
    reasons = {Path(item.source).stem: item.reason for item in report.skipped}
    assert sorted(reasons) == sorted(BAD_HEADERS)
    for name, reason in reasons.items():
        member = f"tar://scans/{name}.jpg::{archive}"  # fsspec's URL of an archive member
        assert reason.startswith(f"image size is unknown and image {member} cannot be read: ")
    assert report.images_written == len(CORRUPT) + 2 - len(BAD_HEADERS)
