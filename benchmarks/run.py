"""Time annoconv against plain baselines on the same data, in the same run; report ratios.

Each job runs in its own process, which reports its wall time and peak RSS.

Run: ``python benchmarks/run.py DATA_DIR [--repeat 3] [--cold] [--jobs ...]`` (DATA_DIR from
make_synthetic.py; `--cold` empties the page cache before every run and needs root).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import re
import struct
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path

import google_crc32c
from measuring import best_of, report_one


def baseline_xml_to_csv(data: Path, out: Path) -> None:
    """The least a VOC -> CSV conversion must do: parse every XML, write one row per box."""
    with out.open("w", newline="", encoding="utf-8") as handle:
        rows = csv.writer(handle)
        rows.writerow(["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"])
        for xml in sorted(data.rglob("*.xml")):
            root = ET.parse(xml).getroot()
            size = [root.findtext("size/width"), root.findtext("size/height")]
            for obj in root.iter("object"):
                box = [obj.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
                rows.writerow([root.findtext("filename"), *size, obj.findtext("name"), *box])


def annoconv_xml_to_csv(data: Path, out: Path) -> None:
    from annoconv import convert

    convert(str(data), str(out), from_format="voc", to_format="csv")


def baseline_read_hash_write(data: Path, out: Path) -> None:
    """The least VOC -> TFRecord must do with the images: read, hash and write their bytes."""
    suffixes = {".jpg", ".jpeg", ".png"}
    with out.open("wb") as sink:
        for image in sorted(p for p in data.rglob("*") if p.suffix.lower() in suffixes):
            data_bytes = image.read_bytes()
            hashlib.sha256(data_bytes).hexdigest()
            sink.write(data_bytes)


def baseline_xml_read_hash_write(data: Path, out: Path) -> None:
    """The least any VOC -> TFRecord tool must do: parse every XML (stdlib ElementTree, no
    checks) and read, hash and write the image it names."""
    with out.open("wb") as sink:
        for xml in sorted(data.rglob("*.xml")):
            root = ET.parse(xml).getroot()
            [(obj.findtext("name"), obj.find("bndbox")) for obj in root.iter("object")]
            data_bytes = (xml.parent / str(root.findtext("filename"))).read_bytes()
            hashlib.sha256(data_bytes).hexdigest()
            sink.write(data_bytes)


_NAME = re.compile(rb"<name>([^<]*)</name>")
_IMAGE = re.compile(
    rb"<filename>([^<]*)</filename>.*?<width>(\d+)</width>\s*<height>(\d+)</height>", re.S
)
_BOX = re.compile(
    rb"<name>([^<]*)</name>.*?<difficult>(\d+)</difficult>.*?<xmin>([\d.]+)</xmin>\s*"
    rb"<ymin>([\d.]+)</ymin>\s*<xmax>([\d.]+)</xmax>\s*<ymax>([\d.]+)</ymax>",
    re.S,
)


def baseline_minimal_tfrecord(data: Path, out: Path) -> None:
    """A floor for any Python VOC -> TFRecord: the same two passes (class names for the label
    map, then one Example per XML) with none of the checks. Regex scans of labelImg's layout,
    the image beside its XML, the core OD features, framing with the same CRC32C library.
    Wrong on any XML that is not laid out exactly as labelImg writes it."""
    xmls = sorted(str(path) for path in data.rglob("*.xml"))
    names: set[bytes] = set()
    for xml in xmls:
        with open(xml, "rb") as handle:
            names.update(_NAME.findall(handle.read()))
    ids = {name: index for index, name in enumerate(sorted(names), 1)}
    with out.open("wb") as sink:
        for xml in xmls:
            with open(xml, "rb") as handle:
                document = handle.read()
            found = _IMAGE.search(document)
            assert found is not None, xml
            filename, width, height = found[1], int(found[2]), int(found[3])
            with open(os.path.join(os.path.dirname(xml), filename.decode()), "rb") as handle:
                image = handle.read()
            boxes = _BOX.findall(document)
            payload = _example(filename, width, height, image, boxes, ids)
            length = struct.pack("<Q", len(payload))
            sink.write(length + _crc(length) + payload + _crc(payload))


def _example(
    filename: bytes,
    width: int,
    height: int,
    image: bytes,
    boxes: list[tuple[bytes, ...]],
    ids: dict[bytes, int],
) -> bytes:
    def floats(column: int, scale: int) -> bytes:
        values = [float(box[column]) / scale for box in boxes]
        return _len_field(struct.pack(f"<{len(values)}f", *values))

    sha256 = hashlib.sha256(image).hexdigest().encode()
    features = {
        b"image/encoded": (b"\x0a", _len_field(image)),
        b"image/filename": (b"\x0a", _len_field(filename)),
        b"image/format": (b"\x0a", _len_field(b"jpeg" if image[:2] == b"\xff\xd8" else b"png")),
        b"image/height": (b"\x1a", _len_field(_varint(height))),
        b"image/key/sha256": (b"\x0a", _len_field(sha256)),
        b"image/object/bbox/xmax": (b"\x12", floats(4, width)),
        b"image/object/bbox/xmin": (b"\x12", floats(2, width)),
        b"image/object/bbox/ymax": (b"\x12", floats(5, height)),
        b"image/object/bbox/ymin": (b"\x12", floats(3, height)),
        b"image/object/class/label": (b"\x1a", _len_field(_varints(ids[b[0]] for b in boxes))),
        b"image/object/class/text": (b"\x0a", b"".join(_len_field(b[0]) for b in boxes)),
        b"image/object/difficult": (b"\x1a", _len_field(_varints(int(b[1]) for b in boxes))),
        b"image/source_id": (b"\x0a", _len_field(filename)),
        b"image/width": (b"\x1a", _len_field(_varint(width))),
    }
    entries = b"".join(_map_entry(key, tag, body) for key, (tag, body) in features.items())
    return _len_field(entries)


def _map_entry(key: bytes, tag: bytes, body: bytes) -> bytes:
    """Features.feature entry: key = 1, value = 2 (a Feature holding its list as field `tag`)."""
    value = tag + _varint(len(body)) + body
    return _len_field(_len_field(key) + b"\x12" + _varint(len(value)) + value)


def _len_field(body: bytes) -> bytes:
    """Field 1, length-delimited: tag, varint length, body."""
    return b"\x0a" + _varint(len(body)) + body


def _varints(values: Iterable[int]) -> bytes:
    return b"".join(map(_varint, values))


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def annoconv_xml_to_tfrecord(data: Path, out: Path) -> None:
    from annoconv import convert

    convert(str(data), str(out), from_format="voc", to_format="tfrecord")


def annoconv_xml_to_tfrecord_processes(data: Path, out: Path) -> None:
    """The same on two worker processes; one task per shard, so four shards."""
    from annoconv import convert

    shards = {"shards": 4}
    convert(
        str(data),
        str(out),
        to_format="tfrecord",
        write_options=shards,
        engine="processes",
        workers=2,
    )


JOBS: dict[str, Callable[[Path, Path], None]] = {
    "baseline_xml_to_csv": baseline_xml_to_csv,
    "annoconv_xml_to_csv": annoconv_xml_to_csv,
    "baseline_read_hash_write": baseline_read_hash_write,
    "baseline_xml_read_hash_write": baseline_xml_read_hash_write,
    "baseline_minimal_tfrecord": baseline_minimal_tfrecord,
    "annoconv_xml_to_tfrecord": annoconv_xml_to_tfrecord,
    "annoconv_xml_to_tfrecord_processes": annoconv_xml_to_tfrecord_processes,
}
COMPARISONS = [
    ("annoconv_xml_to_csv", "baseline_xml_to_csv"),
    ("annoconv_xml_to_tfrecord", "baseline_read_hash_write"),
    ("annoconv_xml_to_tfrecord", "baseline_xml_read_hash_write"),
    ("annoconv_xml_to_tfrecord", "baseline_minimal_tfrecord"),
    ("annoconv_xml_to_tfrecord_processes", "baseline_read_hash_write"),
    ("baseline_minimal_tfrecord", "baseline_read_hash_write"),
]


def measure(name: str, data: Path, repeat: int, cold: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, __file__, "--one", name, str(data), str(Path(tmp) / "out")]
        return best_of(command, repeat, cold=cold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cold", action="store_true", help="drop the page cache before every run (root)"
    )
    parser.add_argument("--one", choices=sorted(JOBS), help=argparse.SUPPRESS)
    parser.add_argument("--jobs", nargs="+", choices=sorted(JOBS), default=sorted(JOBS))
    args = parser.parse_args()
    if args.one:
        report_one(lambda: JOBS[args.one](args.data, args.out))
        return
    measured = {name: measure(name, args.data, args.repeat, args.cold) for name in args.jobs}
    print(f"{'job':<36} {'best s':>8} {'best CPU s':>11} {'peak RSS MB':>12}")
    for name, result in measured.items():
        print(
            f"{name:<36} {result['seconds']:>8.2f} {result['cpu_seconds']:>11.2f}"
            f" {result['peak_rss_mb']:>12.0f}"
        )
    for ours, baseline in COMPARISONS:
        if ours not in measured or baseline not in measured:
            continue
        ratio = measured[ours]["seconds"] / measured[baseline]["seconds"]
        cpu_ratio = measured[ours]["cpu_seconds"] / measured[baseline]["cpu_seconds"]
        print(f"{ours} / {baseline}: {ratio:.2f}x (CPU time {cpu_ratio:.2f}x)")


if __name__ == "__main__":
    main()
