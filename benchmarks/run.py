"""Time annoconv against plain baselines on the same data, in the same run; report ratios.

Each job runs in its own process, which reports its wall time and peak RSS.

Run: ``python benchmarks/run.py DATA_DIR [--repeat 3]`` (DATA_DIR from make_synthetic.py).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

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


def annoconv_xml_to_tfrecord(data: Path, out: Path) -> None:
    from annoconv import convert

    convert(str(data), str(out), from_format="voc", to_format="tfrecord")


JOBS: dict[str, Callable[[Path, Path], None]] = {
    "baseline_xml_to_csv": baseline_xml_to_csv,
    "annoconv_xml_to_csv": annoconv_xml_to_csv,
    "baseline_read_hash_write": baseline_read_hash_write,
    "baseline_xml_read_hash_write": baseline_xml_read_hash_write,
    "annoconv_xml_to_tfrecord": annoconv_xml_to_tfrecord,
}
COMPARISONS = [
    ("annoconv_xml_to_csv", "baseline_xml_to_csv"),
    ("annoconv_xml_to_tfrecord", "baseline_read_hash_write"),
    ("annoconv_xml_to_tfrecord", "baseline_xml_read_hash_write"),
]


def measure(name: str, data: Path, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, __file__, "--one", name, str(data), str(Path(tmp) / "out")]
        return best_of(command, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", choices=sorted(JOBS), help=argparse.SUPPRESS)
    parser.add_argument("--jobs", nargs="+", choices=sorted(JOBS), default=sorted(JOBS))
    args = parser.parse_args()
    if args.one:
        report_one(lambda: JOBS[args.one](args.data, args.out))
        return
    measured = {name: measure(name, args.data, args.repeat) for name in args.jobs}
    print(f"{'job':<28} {'best s':>8} {'best CPU s':>11} {'peak RSS MB':>12}")
    for name, result in measured.items():
        print(
            f"{name:<28} {result['seconds']:>8.2f} {result['cpu_seconds']:>11.2f}"
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
