"""One big sorted Open Images bbox CSV -> Parquet on the local and the processes engine.

The processes engine cuts the CSV into byte ranges (two per worker) and writes one Parquet
part per range (docs/engines.md); the local engine writes one file. Each job runs in a fresh
process (`measuring.best_of`); the rows of the parts, in part order, are checked against the
local file's.

Run: ``python benchmarks/engines_csv.py BBOX_CSV [--workers 2] [--repeat 3]``; a 2M-row slice
of make_openimages.py's file: ``head -n 2000001 /tmp/oi/oidv6-train-annotations-bbox.csv``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from measuring import best_of, report_one

ENGINES = ("local", "processes")


def convert_on(engine: str, source: str, out: str, workers: int) -> None:
    from annoconv import convert

    if engine == "local":
        convert(source, out)
    else:
        convert(source, out, engine=engine, workers=workers)


def same_rows(local: Path, parted: Path) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted(parted.glob("part-*.parquet")) if parted.is_dir() else [parted]
    joined = pa.concat_tables([pq.read_table(part) for part in parts])
    return bool(joined.equals(pq.read_table(local)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source")
    parser.add_argument("out", nargs="?")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        report_one(lambda: convert_on(args.one, args.source, args.out, args.workers))
        return
    columns = f"{'best s':>8} {'driver CPU s':>12} {'peak RSS MB':>12} {'parts':>6} {'same':>5}"
    print(f"{'engine':<10} {columns}")
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ENGINES:
            out = Path(tmp) / engine / "oi.parquet"
            command = [sys.executable, __file__, "--one", engine, args.source, str(out)]
            result = best_of([*command, "--workers", str(args.workers)], args.repeat)
            parts = len(list(out.glob("part-*.parquet"))) if out.is_dir() else 1
            same = (
                "-"
                if engine == "local"
                else str(same_rows(Path(tmp) / "local" / "oi.parquet", out))
            )
            print(
                f"{engine:<10} {result['seconds']:>8.2f} {result['driver_cpu_seconds']:>12.2f} "
                f"{result['peak_rss_mb']:>12.0f} {parts:>6} {same:>5}"
            )


if __name__ == "__main__":
    main()
