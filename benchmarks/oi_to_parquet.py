"""Time Open Images CSV -> Parquet against pyarrow's own one-shot conversion of the same file.

Jobs, each in its own process reporting wall time and peak RSS:

- ``pyarrow_one_shot``: ``pyarrow.csv.read_csv(path)`` then ``pyarrow.parquet.write_table``
  (pyarrow's defaults: multithreaded parsing, types inferred, snappy), the whole file in memory;
- ``annoconv``: ``annoconv.convert(path, OUT.parquet, read_options={"class_descriptions":
  ...})``, which takes the columnar path: streamed, every row checked, one row per image with
  its boxes as a list of structs, labels as display names, bounded row groups.

Outputs go beside the CSV (``OUT-pyarrow.parquet``, ``OUT-annoconv.parquet``) and are removed
after each run. Run: ``python benchmarks/oi_to_parquet.py /tmp/oi/oidv6-train-annotations-bbox.csv
[--repeat 3]`` (files from make_openimages.py; the class descriptions are looked up beside it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from measuring import best_of, report_one


def _output(path: Path, job: str) -> Path:
    return path.with_name(f"{path.stem}-{job}.parquet")


def pyarrow_one_shot(path: Path, descriptions: Path) -> dict[str, int]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = _output(path, "pyarrow")
    table = pacsv.read_csv(path)
    pq.write_table(table, out)
    size = out.stat().st_size
    os.remove(out)
    return {"rows": table.num_rows, "bytes": size}


def annoconv_convert(path: Path, descriptions: Path) -> dict[str, int]:
    from annoconv import convert

    out = _output(path, "annoconv")
    report = convert(str(path), str(out), read_options={"class_descriptions": str(descriptions)})
    size = out.stat().st_size
    os.remove(out)
    return {"images": report.images_written, "boxes": report.boxes_written, "bytes": size}


JOBS: dict[str, Callable[[Path, Path], dict[str, int]]] = {
    "pyarrow_one_shot": pyarrow_one_shot,
    "annoconv": annoconv_convert,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv", type=Path)
    parser.add_argument("descriptions", type=Path, nargs="?")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--one", choices=sorted(JOBS), help=argparse.SUPPRESS)
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=list(JOBS))
    args = parser.parse_args()
    descriptions = args.descriptions or args.csv.parent / "class-descriptions-boxable.csv"
    if args.one:
        report_one(lambda: JOBS[args.one](args.csv, descriptions))
        return
    print(f"{args.csv} ({args.csv.stat().st_size / 1e9:.2f} GB)")
    print(f"{'job':<20} {'best s':>8} {'peak RSS MB':>12}  counts")
    results = {}
    for name in args.jobs:
        command = [sys.executable, __file__, str(args.csv), str(descriptions), "--one", name]
        result = best_of(command, args.repeat)
        results[name] = result
        counts = {k: v for k, v in result.items() if k not in ("seconds", "peak_rss_mb")}
        print(f"{name:<20} {result['seconds']:>8.2f} {result['peak_rss_mb']:>12.0f}  {counts}")
    if len(results) == len(JOBS):
        ratio = results["annoconv"]["seconds"] / results["pyarrow_one_shot"]["seconds"]
        print(f"annoconv / pyarrow: {ratio:.2f}x")


if __name__ == "__main__":
    main()
