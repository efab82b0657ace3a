"""Images inside tar/zip archives (USPTO yellow and red book), matching, transcoding, attacks."""

from __future__ import annotations

import csv
import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from factories import Box, draw_image, labelimg_xml, write
from PIL import Image, ImageChops

from annoconv import convert
from annoconv.cli import main
from annoconv.errors import AnnotationError, NotFoundError
from annoconv.io.archives import ArchiveError, iter_members
from annoconv.io.transcode import transcode_images
from annoconv.report import Report
from annoconv.tfexample import decode_example, iter_tfrecords


def tiff_bytes(width: int, height: int, tmp: Path, name: str = "sheet.tif") -> bytes:
    """A bilevel Group 4 TIFF, as USPTO drawings are."""
    return draw_image(tmp / name, width, height, mode="1", compression="group4").read_bytes()


def add(tar: tarfile.TarFile, name: str, data: bytes, **fields: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- USPTO layouts into TFRecords -------------------------------------------------------------

YELLOW = "grant_yb2_20200107/UTIL0872/USD0872345-20200107/USD0872345-20200107-D00003.TIF"
RED_ZIP = "I20200107/UTIL0531/US10531234-20200107.ZIP"
RED_SHEET = "US10531234-20200107-D00001.TIF"


def uspto_dataset(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """Annotations as labelImg wrote them (naming `.jpg`) and the archive members."""
    ann = tmp_path / "ann"
    write(
        ann / "USD0872345-20200107-D00003.xml",
        labelimg_xml(
            "USD0872345-20200107-D00003.jpg", 256, 330, [Box("patent image", 10, 20, 200, 300)]
        ),
    )
    write(
        ann / "US10531234-20200107-D00001.xml",
        labelimg_xml(
            "US10531234-20200107-D00001.jpg",
            300,
            200,
            [Box("65", 1, 2, 100, 150), Box("AB1", 150, 10, 290, 190)],
        ),
    )
    red = zip_of(
        {
            "US10531234-20200107.XML": b"<us-patent-grant/>",
            RED_SHEET: tiff_bytes(300, 200, tmp_path, "red.tif"),
            "US10531234-20200107-D00002.TIF": tiff_bytes(64, 64, tmp_path, "red2.tif"),
        }
    )
    members = {
        "grant_yb2_20200107/UTIL0872/USD0872345-20200107/USD0872345-20200107-D00001.TIF": (
            tiff_bytes(50, 60, tmp_path, "other.tif")
        ),
        YELLOW: tiff_bytes(256, 330, tmp_path, "yellow.tif"),
        RED_ZIP: red,
    }
    return ann, members


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_yellow_and_red_book_tarballs_to_tfrecords(tmp_path: Path, suffix: str) -> None:
    from test_tfrecord import read_examples

    ann, members = uspto_dataset(tmp_path)
    archive = tmp_path / f"uspto{suffix}"
    with tarfile.open(archive, "w:gz" if suffix == ".tar.gz" else "w") as tar:
        for name, data in members.items():
            add(tar, name, data)
    report = convert(str(ann), str(tmp_path / "out.record"), images=str(archive))
    assert (report.images_written, report.boxes_written, report.images_skipped) == (2, 3, 0)
    examples = {
        e["image/filename"].decode(): e
        for e in read_examples([tmp_path / "out.record-00000-of-00001"])
    }
    yellow = examples["USD0872345-20200107-D00003.jpg"]
    assert (yellow["image/width"], yellow["image/height"]) == (256, 330)
    assert yellow["decoded_shape"] == (330, 256, 3)
    assert yellow["image/format"] == b"png"  # TIFF transcoded: TensorFlow cannot decode it
    assert yellow["image/object/bbox/xmax"].tolist() == pytest.approx([200 / 256])
    red = examples["US10531234-20200107-D00001.jpg"]
    assert red["decoded_shape"] == (200, 300, 3)
    assert red["image/object/class/text"].tolist() == [b"65", b"AB1"]
    assert red["image/object/bbox/ymax"].tolist() == pytest.approx([150 / 200, 190 / 200])


def test_zip_archive_and_sizes_for_pixel_writers(tmp_path: Path) -> None:
    """A top-level ZIP works too; a CSV (pixels) takes sizes missing from the XML from the
    member's header."""
    ann = tmp_path / "ann"
    write(ann / "a" / "7.xml", labelimg_xml("7.jpg", None, None, [Box("x", 1, 2, 3, 4)]))
    archive = tmp_path / "drawings.zip"
    archive.write_bytes(zip_of({"scans/A/7.Tiff": tiff_bytes(120, 90, tmp_path)}))
    convert(str(ann), str(tmp_path / "boxes.csv"), images=str(archive))
    with open(tmp_path / "boxes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["filename"], r["width"], r["height"], r["xmax"]) for r in rows] == [
        ("a/7.jpg", "120", "90", "3")
    ]


# --- matching rules ---------------------------------------------------------------------------


def two_folder_dataset(tmp_path: Path, order: list[str]) -> tuple[Path, Path]:
    ann = tmp_path / "ann"
    write(ann / "p1" / "1.xml", labelimg_xml("1.jpg", 40, 30, [Box("a", 1, 1, 10, 10)]))
    write(ann / "p2" / "1.xml", labelimg_xml("1.jpg", 50, 20, [Box("b", 2, 2, 20, 12)]))
    sizes = {"p1/1.TIF": (40, 30), "p2/1.tif": (50, 20), "elsewhere/1.tif": (8, 8)}
    archive = tmp_path / "images.tar"
    with tarfile.open(archive, "w") as tar:
        for name in order:
            add(tar, f"top/{name}", tiff_bytes(*sizes[name], tmp_path))
    return ann, archive


def test_path_match_wins_over_a_later_stem_match(tmp_path: Path) -> None:
    from test_tfrecord import read_examples

    ann, archive = two_folder_dataset(tmp_path, ["p2/1.tif", "p1/1.TIF", "elsewhere/1.tif"])
    convert(str(ann), str(tmp_path / "out.record"), images=str(archive))
    examples = read_examples([tmp_path / "out.record-00000-of-00001"])
    sizes = {e["image/source_id"].decode(): e["decoded_shape"] for e in examples}
    assert sizes == {"p1/1.xml": (30, 40, 3), "p2/1.xml": (20, 50, 3)}


def test_an_archive_run_is_byte_for_byte_repeatable(tmp_path: Path) -> None:
    ann, archive = two_folder_dataset(tmp_path, ["p2/1.tif", "p1/1.TIF", "elsewhere/1.tif"])
    outputs = []
    for run in ("first", "second"):
        convert(
            str(ann),
            str(tmp_path / run / "out.record"),
            images=str(archive),
            write_options={"shards": 2},
        )
        outputs.append([p.read_bytes() for p in sorted((tmp_path / run).glob("out.record-*"))])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 2 and all(outputs[0])


def test_archive_with_splits_writes_each_record_to_its_split(tmp_path: Path) -> None:
    ann, archive = two_folder_dataset(tmp_path, ["p2/1.tif", "p1/1.TIF"])
    report = convert(
        str(ann), str(tmp_path / "out.record"), images=str(archive), split="train=0.5,test=0.5"
    )
    assert report.images_written == 2
    keys = {}
    for split in ("train", "test"):
        [shard] = tmp_path.glob(f"out-{split}.record-*")
        [payload] = iter_tfrecords(str(shard))
        keys[split] = decode_example(payload)["image/source_id"][1][0]
    assert sorted(keys.values()) == [b"p1/1.xml", b"p2/1.xml"]


def test_a_stem_match_before_the_path_match_gives_way_to_it(tmp_path: Path) -> None:
    """The stem match was written as it passed; the path match after it is better: the run
    starts over and takes it (a black page of the same size stands for the wrong one)."""
    ann = tmp_path / "ann"
    write(ann / "p1" / "1.xml", labelimg_xml("1.jpg", 40, 30, [Box("a", 1, 1, 10, 10)]))
    black = io.BytesIO()
    Image.new("1", (40, 30), 0).save(black, "TIFF", compression="group4")
    archive = tmp_path / "images.tar"
    with tarfile.open(archive, "w") as tar:
        add(tar, "top/elsewhere/1.tif", black.getvalue())
        add(tar, "top/p1/1.TIF", tiff_bytes(40, 30, tmp_path))
    report = convert(str(ann), str(tmp_path / "out.record"), images=str(archive))
    assert report.images_written == 1
    (payload,) = iter_tfrecords(str(tmp_path / "out.record-00000-of-00001"))
    encoded = decode_example(payload)["image/encoded"][1][0]
    assert (
        ImageChops.difference(
            Image.open(io.BytesIO(encoded)).convert("1"), Image.open(tmp_path / "sheet.tif")
        ).getbbox()
        is None
    )


def test_same_stem_in_two_folders_is_ambiguous_for_a_flat_annotation(tmp_path: Path) -> None:
    write(tmp_path / "ann" / "280.xml", labelimg_xml("280.jpg", 8, 8, [Box("a", 1, 1, 4, 4)]))
    archive = tmp_path / "images.tar"
    with tarfile.open(archive, "w") as tar:
        add(tar, "USD1/280.TIF", tiff_bytes(8, 8, tmp_path))
        add(tar, "USD2/280.tif", tiff_bytes(8, 8, tmp_path))
    with pytest.raises(ArchiveError, match=r"280\.xml.*USD1/280\.TIF.*USD2/280\.tif"):
        convert(str(tmp_path / "ann"), str(tmp_path / "out.record"), images=str(archive))


#: Members of `ambiguous_pages` in archive order, with their sizes. 280 and 283 are there
#: twice, in folders the flat annotations do not name: 281 is written before the second 280
#: shows the first ambiguity, 282 and 283 pass after it.
AMBIGUOUS_PAGES = {
    "a/280.jpg": (40, 30),
    "a/281.png": (32, 24),
    "b/280.jpg": (40, 30),
    "c/283.jpg": (12, 10),
    "b/282.jpg": (20, 16),
    "d/283.jpg": (12, 10),
}


def ambiguity(stem: str, first: str, second: str) -> str:
    return (
        f"image '{stem}.jpg' is ambiguous in the archive: 2 members match it equally well "
        f"({first}/{stem}.jpg, {second}/{stem}.jpg; matched by path); to tell them apart, "
        "mirror the archive's folders under the annotations folder, or record the image's "
        f"folders in <path> (e.g. .../{first}/{stem}.jpg)"
    )


def ambiguous_pages(tmp_path: Path) -> tuple[Path, Path]:
    """Annotations 280-283 without a size (so a CSV needs the members' headers too) and a tar
    of `AMBIGUOUS_PAGES`."""
    ann = tmp_path / "ann"
    boxes = {
        "280": [Box("figure", 1, 1, 4, 4), Box("label", 2, 2, 6, 6)],
        "281": [Box("figure", 2, 3, 30, 20)],
        "282": [Box("label", 5, 6, 10, 12)],
        "283": [Box("figure", 1, 1, 5, 5)],
    }
    for stem, objects in boxes.items():
        write(ann / f"{stem}.xml", labelimg_xml(f"{stem}.jpg", None, None, objects))
    archive = tmp_path / "pages.tar"
    with tarfile.open(archive, "w") as tar:
        for name, size in AMBIGUOUS_PAGES.items():
            add(tar, name, draw_image(tmp_path / "drawn" / name, *size).read_bytes())
    return ann, archive


@pytest.mark.parametrize("output", ["boxes.csv", "pages.record"])
def test_an_ambiguous_image_fails_the_run_naming_both_members(tmp_path: Path, output: str) -> None:
    ann, archive = ambiguous_pages(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ArchiveError) as error:
        convert(str(ann), str(out / output), images=str(archive))
    assert str(error.value) == f"{ann / '280.xml'}: {ambiguity('280', 'a', 'b')}"
    assert list(out.iterdir()) == []


def assert_ambiguous_skipped(report: Report, ann: Path) -> None:
    assert (report.images_read, report.images_written, report.images_skipped) == (4, 2, 2)
    assert (report.boxes_read, report.boxes_written, report.boxes_skipped) == (5, 2, 3)
    assert [(s.source, s.reason, s.images, s.boxes) for s in report.skipped] == [
        (str(ann / "280.xml"), ambiguity("280", "a", "b"), 1, 2),
        (str(ann / "283.xml"), ambiguity("283", "c", "d"), 1, 1),
    ]
    assert report.classes == {"figure": 1, "label": 1}


def test_an_ambiguous_image_is_skipped_and_the_others_written_to_csv(tmp_path: Path) -> None:
    ann, archive = ambiguous_pages(tmp_path)
    out = tmp_path / "boxes.csv"
    report = convert(str(ann), str(out), images=str(archive), on_error="skip")
    assert_ambiguous_skipped(report, ann)
    assert out.read_text().splitlines() == [
        "filename,width,height,class,xmin,ymin,xmax,ymax",
        "281.jpg,32,24,figure,2,3,30,20",
        "282.jpg,20,16,label,5,6,10,12",
    ]


def test_an_ambiguous_image_is_skipped_and_the_others_written_to_tfrecords(
    tmp_path: Path,
) -> None:
    from test_tfrecord import read_examples

    ann, archive = ambiguous_pages(tmp_path)
    report = convert(str(ann), str(tmp_path / "pages.record"), images=str(archive), on_error="skip")
    assert_ambiguous_skipped(report, ann)
    examples = read_examples([tmp_path / "pages.record-00000-of-00001"])
    got = [
        (e["image/filename"], e["decoded_shape"], e["image/object/class/text"].tolist())
        for e in examples
    ]
    assert got == [(b"281.jpg", (24, 32, 3), [b"figure"]), (b"282.jpg", (16, 20, 3), [b"label"])]
    boxes = [
        [e[f"image/object/bbox/{c}"][0] for c in ("xmin", "ymin", "xmax", "ymax")] for e in examples
    ]
    assert boxes == [
        pytest.approx([2 / 32, 3 / 24, 30 / 32, 20 / 24]),
        pytest.approx([5 / 20, 6 / 16, 10 / 20, 12 / 16]),
    ]


def test_annotations_without_image_are_reported(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    write(ann / "1.xml", labelimg_xml("1.jpg", 8, 8, [Box("a", 1, 1, 4, 4)]))
    write(ann / "2.xml", labelimg_xml("2.jpg", 8, 8, [Box("a", 1, 1, 4, 4), Box("b", 2, 2, 5, 5)]))
    archive = tmp_path / "images.tar"
    with tarfile.open(archive, "w") as tar:
        add(tar, "x/1.tif", tiff_bytes(8, 8, tmp_path))
    out = str(tmp_path / "out.record")
    report = convert(str(ann), out, images=str(archive), on_error="skip")
    assert (report.images_read, report.images_written, report.images_skipped) == (2, 1, 1)
    assert (report.boxes_read, report.boxes_written, report.boxes_skipped) == (3, 1, 2)
    [skipped] = report.skipped
    assert skipped.source.endswith("2.xml") and f"'2.jpg' not found in {archive}" in skipped.reason
    with pytest.raises(AnnotationError, match=r"2\.xml: image '2\.jpg' not found in"):
        convert(str(ann), out, images=str(archive))


# --- transcode --------------------------------------------------------------------------------


def test_transcode_a_folder_tree_keeps_layout_and_skips_existing(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    first = draw_image(src / "a" / "b" / "1.tif", 64, 48, mode="1", compression="group4")
    second = draw_image(src / "c" / "2.TIFF", 30, 20, mode="L")
    draw_image(src / "c" / "3.png", 5, 5)  # not a TIFF: left alone
    write(dst / "c" / "2.png", b"already there")
    assert main(["images", "transcode", str(src), str(dst), "--to", "png", "-q"]) == 0
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.*")) == [
        "a/b/1.png",
        "c/2.png",
    ]
    assert (dst / "c" / "2.png").read_bytes() == b"already there"
    with Image.open(dst / "a" / "b" / "1.png") as out, Image.open(first) as original:
        assert out.mode == "1" and out.size == (64, 48)
        assert ImageChops.difference(out.convert("L"), original.convert("L")).getbbox() is None
    report = transcode_images(str(src), str(dst), to="jpeg", workers=2)
    with pytest.raises(NotFoundError, match=r"nowhere: no such file or folder"):
        transcode_images(str(tmp_path / "nowhere"), str(dst), to="png")
    assert sorted(Path(p).name for p in report.written) == ["1.jpg", "2.jpg"]
    with Image.open(dst / "c" / "2.jpg") as out, Image.open(second) as original:
        assert out.format == "JPEG" and out.mode == "L" and out.size == original.size


def test_transcode_png_level_keeps_the_pixels(tmp_path: Path) -> None:
    src = tmp_path / "src"
    page = draw_image(src / "280.TIF", 640, 480, mode="1", compression="group4")
    sizes = {}
    for level in ("0", "9"):
        dst = tmp_path / level
        args = ["images", "transcode", str(src), str(dst), "--to", "png", "--png-level", level]
        assert main([*args, "-q"]) == 0
        sizes[level] = (dst / "280.png").stat().st_size
        with Image.open(dst / "280.png") as out, Image.open(page) as original:
            assert out.mode == "1"
            assert ImageChops.difference(out.convert("L"), original.convert("L")).getbbox() is None
    assert sizes["0"] > 640 * 480 // 8 > sizes["9"]  # level 0 stores, 9 compresses
    with pytest.raises(SystemExit):  # argparse: one line, exit 2
        main(
            [
                "images",
                "transcode",
                str(src),
                str(tmp_path / "x"),
                "--to",
                "png",
                "--png-level",
                "10",
            ]
        )


def test_transcode_hostile_tar_never_writes_outside(tmp_path: Path) -> None:
    good = tiff_bytes(16, 16, tmp_path)
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        add(tar, "../escaped.tif", good)
        add(tar, "a/../../escaped2.tif", good)
        add(tar, str(tmp_path / "absolute.tif"), good)
        add(tar, "link.tif", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add(tar, "hard.tif", b"", type=tarfile.LNKTYPE, linkname="good.tif")
        add(tar, "sub/through-link/x.tif", good)
        add(tar, "huge.tif", good * 8)
        add(tar, "good.tif", good)
    dst, outside = tmp_path / "dst", tmp_path / "outside"
    outside.mkdir()
    (dst / "sub").mkdir(parents=True)
    os.symlink(outside, dst / "sub" / "through-link")  # planted inside DST, points out
    before = sorted(p.name for p in tmp_path.iterdir())
    report = transcode_images(str(archive), str(dst), to="png", max_member_size=len(good) * 4)
    assert [Path(p).relative_to(dst).as_posix() for p in report.written] == ["good.png"]
    reasons = dict(report.skipped)
    assert set(reasons) == {
        "../escaped.tif",
        "a/../../escaped2.tif",
        str(tmp_path / "absolute.tif"),
        "link.tif",
        "hard.tif",
        "sub/through-link/x.tif",
        "huge.tif",
    }
    assert "links are never followed" in reasons["link.tif"]
    assert "links are never followed" in reasons["hard.tif"]
    assert "over the limit" in reasons["huge.tif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in dst.rglob("*") if p.is_file()) == ["good.png"]


def test_tar_member_cut_short_is_an_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        add(tar, "a.tif", tiff_bytes(16, 16, tmp_path))
        add(tar, "b.tif", os.urandom(100_000))
    archive = tmp_path / "cut.tar"
    archive.write_bytes(buffer.getvalue()[:60_000])  # b.tif's header promises 100 000 bytes
    with pytest.raises(ArchiveError, match=r"cut\.tar: b\.tif: the archive ends before"):
        list(iter_members(str(archive)))


def test_zip_member_that_lies_about_its_size_is_an_error(tmp_path: Path) -> None:
    data = bytearray(zip_of({"page.tif": b"\0" * 1_000_000}))
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1000).to_bytes(4, "little")  # uncompressed size
    archive = tmp_path / "lying.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"lying\.zip"):
        list(iter_members(str(archive)))


# --- a 2 GB tarball at bounded memory ---------------------------------------------------------

# The peak is read from /proc (VmHWM, this process's own memory): on Linux, getrusage's
# ru_maxrss of a forked child starts from the parent's peak, here a pytest holding TensorFlow.
_RSS_SCRIPT = """
import json, re, resource, sys
from annoconv import convert
report = convert(sys.argv[1], sys.argv[2], images=sys.argv[3], write_options={"shards": 2})
try:
    status = open("/proc/self/status").read()
    peak_kib = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
except OSError:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"written": report.images_written, "boxes": report.boxes_written,
                  "skipped": report.images_skipped, "peak_kib": peak_kib}))
"""
_FILLER = 400 * 2**20  # five of them: 2 GiB of members nobody annotated


def _append(handle: Any, name: str, size: int, chunks: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    handle.write(info.tobuf(format=tarfile.PAX_FORMAT))
    for chunk in chunks:
        handle.write(chunk)
    handle.write(b"\0" * (-size % tarfile.BLOCKSIZE))


def test_members_from_a_2gb_tarball_at_bounded_memory(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from test_tfrecord import read_examples

    ann, members = uspto_dataset(tmp_path)
    png = draw_image(tmp_path / "photo.png", 80, 60).read_bytes()
    write(ann / "scan-7.xml", labelimg_xml("scan-7.jpg", 80, 60, [Box("figure", 4, 5, 70, 50)]))
    members["late/scans/scan-7.PNG"] = png
    block = os.urandom(2**20)  # incompressible, repeated: cheap to write
    archive = tmp_path / "grant_yb2_20200107.tar"
    with open(archive, "wb") as handle:
        for index, (name, data) in enumerate(members.items()):
            filler = f"grant_yb2_20200107/bulk/part-{index}.bin"
            _append(handle, filler, _FILLER, (block for _ in range(_FILLER // len(block))))
            _append(handle, name, len(data), [data])
        _append(handle, "grant_yb2_20200107/bulk/last.bin", _FILLER, (block,) * (_FILLER >> 20))
        handle.write(b"\0" * 2 * tarfile.BLOCKSIZE)
    assert archive.stat().st_size > 2 * 10**9
    out = tmp_path / "out.record"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(ann), str(out), str(archive)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    archive.unlink()
    stats = json.loads(result.stdout)
    assert (stats["written"], stats["boxes"], stats["skipped"]) == (3, 4, 0)
    assert stats["peak_kib"] < 300 * 1024, f"peak RSS {stats['peak_kib'] // 1024} MB"
    examples = read_examples(sorted(tmp_path.glob("out.record-*-of-00002")))
    shapes = {e["image/filename"].decode(): e["decoded_shape"] for e in examples}
    assert shapes == {
        "USD0872345-20200107-D00003.jpg": (330, 256, 3),
        "US10531234-20200107-D00001.jpg": (200, 300, 3),
        "scan-7.jpg": (60, 80, 3),
    }


class _Zeros(io.RawIOBase):
    """`size` zero bytes, produced as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


@pytest.mark.timeout(60)
@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_a_compressed_tar_bomb_is_passed_over_at_bounded_memory(
    compression: str, tmp_path: Path
) -> None:
    """A member that inflates to 64 MiB from a few kB, over a 1 MiB limit: passed over and
    reported, the member after it read, without ever holding more than a few MiB (tarfile
    inflated a whole 1 MiB buffer of a bomb at once, a gigabyte, and copied the rest of it
    on every read: a 300 MiB member took 36 s and 942 MB)."""
    import tracemalloc

    archive = tmp_path / f"bomb.tar.{compression}"
    size = 64 * 2**20
    with tarfile.open(archive, f"w:{compression}") as tar:
        info = tarfile.TarInfo("bomb.jpg")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros(size), 2**20))
        add(tar, "after.jpg", b"the next member")
    assert archive.stat().st_size < 200_000
    skipped: list[tuple[str, str]] = []
    tracemalloc.start()
    try:
        members = list(
            iter_members(
                str(archive),
                on_skip=lambda name, why: skipped.append((name, why)),
                max_member_size=2**20,
            )
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(member.name, member.data) for member in members] == [("after.jpg", b"the next member")]
    assert skipped == [("bomb.jpg", f"{size} bytes is over the limit of {2**20} bytes")]
    assert peak < 24 * 2**20, peak


def test_a_damaged_compressed_tar_is_an_archive_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        add(tar, "a.tif", os.urandom(50_000))
    data = bytearray(buffer.getvalue())
    data[len(data) // 2] ^= 0xFF
    archive = tmp_path / "damaged.tar.gz"
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"damaged\.tar\.gz: cannot read the archive on: "):
        list(iter_members(str(archive)))
