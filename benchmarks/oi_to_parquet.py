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

import os
from collections.abc import Callable
from pathlib import Path

from measuring import run_open_images_jobs


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
    results = run_open_images_jobs(__file__, __doc__, JOBS)
    if len(results) == len(JOBS):
        ratio = results["annoconv"]["seconds"] / results["pyarrow_one_shot"]["seconds"]
        print(f"annoconv / pyarrow: {ratio:.2f}x")


if __name__ == "__main__":
    main()
