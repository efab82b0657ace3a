"""The same conversion on every engine: local (one process), processes and Dask.

VOC -> TFRecord (the image-heavy conversion) and VOC -> CSV, each engine writing the same
number of shards (`--shards`, default 4: the parallel engines give each shard to one task).
Each job runs in a fresh process and reports its wall time and the peak RSS of that (driver)
process (worker processes not included) and the CPU seconds of the whole job, workers
included, which say what the parallel engines cost in work when a busy machine hides the
wall-time gain. ``dask`` starts its LocalCluster inside the timed
run; ``dask_running`` starts it first and times only the conversion (a cluster already up).
Every parallel output is checked byte for byte against the local engine's. The engines run
interleaved: round after round, each engine once per round, each run in a fresh process.

``split_local`` is the floor of the parallel engines: the local engine run `--workers` times at
once, each process on its share of the annotation files (consecutive runs of the sorted
list) writing its share of the shards, timed as the local engine is; its time is the slowest
share's. That is what this machine gives the job split perfectly, with no engine at all: two
cores running at once are each slower than one alone (caches, the host's other guests), and
every process pays its own start. A parallel engine's time against it says what the engine
itself costs.

Run: ``python benchmarks/engines.py DATA_DIR [--workers 2] [--repeat 3] [--label-map PBTXT]``
(DATA_DIR from make_synthetic.py; with a label map, TFRecord runs read their source once).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from measuring import fresh_folder, interleaved, report_one

ENGINES = ("local", "processes", "dask", "dask_running", "split_local")
OUTPUTS = {"tfrecord": "out.record", "csv": "out.csv"}


def convert_on(
    engine: str,
    data: Path,
    out: Path,
    to: str,
    workers: int,
    shards: int,
    label_map: str | None = None,
    share: tuple[int, int] | None = None,
) -> dict[str, Any]:
    from annoconv import convert

    options: dict[str, Any] = {"write_options": {"shards": shards}} if to == "tfrecord" else {}
    if label_map is not None:  # known up front: a TFRecord run reads its source once
        options["label_map"] = label_map
    if engine == "local":
        source: str | list[str] = str(data) if share is None else files_of_share(data, *share)
        convert(source, str(out), to_format=to, **options)
        return {}
    if engine != "dask_running":
        convert(str(data), str(out), to_format=to, engine=engine, workers=workers, **options)
        return {}
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0")
    with cluster, Client(cluster) as client:
        start = time.perf_counter()
        convert(str(data), str(out), to_format=to, engine="dask", scheduler=client, **options)
        return {"convert_seconds": time.perf_counter() - start}


def files_of_share(data: Path, index: int, count: int) -> list[str]:
    """Share `index` of `count` of the annotation files under `data`: a run of the sorted list."""
    files = sorted(str(path) for path in data.rglob("*.xml"))
    return files[len(files) * index // count : len(files) * (index + 1) // count]


def split_local(args: argparse.Namespace) -> dict[str, Any]:
    """The local engine on each of `args.workers` shares of the files at once, each writing
    its share of the shards into a folder of its own: the slowest share's line, with the
    shares' CPU summed and their highest peak RSS."""
    command = [sys.executable, __file__, "--one", "local", str(args.data)]
    options = ["--to", args.to[0], "--shards", str(max(1, args.shards // args.workers))]
    if args.label_map:
        options += ["--label-map", args.label_map]
    shares = [
        subprocess.Popen(
            [
                *command,
                str(args.out.parent / f"share{index}" / args.out.name),
                *options,
                "--share",
                f"{index}/{args.workers}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(args.workers)
    ]
    lines = []
    for process in shares:
        stdout, _ = process.communicate()
        if process.returncode:
            raise SystemExit(f"a share of split_local failed with status {process.returncode}")
        lines.append(json.loads(stdout.strip().splitlines()[-1]))
    slowest = max(lines, key=lambda line: line["seconds"])
    return {
        **slowest,
        "cpu_seconds": sum(line["cpu_seconds"] for line in lines),
        "peak_rss_mb": max(line["peak_rss_mb"] for line in lines),
    }


def median_ratios(measured: dict[str, dict[str, Any]], engine: str) -> str:
    """The median of the rounds' ratios of the local engine's and split_local's time to
    `engine`'s (each round's runs ran one after the other, on the same moment's machine)."""
    notes = []
    for other in ("local", "split_local"):
        if other in measured and engine not in ("local", other):
            pairs = zip(measured[other]["runs"], measured[engine]["runs"], strict=True)
            ratio = statistics.median(mine / theirs for mine, theirs in pairs)
            notes.append(f"{ratio:.2f}x {other}")
    return f"  (median of rounds: {', '.join(notes)})" if notes else ""


def same_files(one: Path, other: Path) -> bool:
    names = sorted(p.name for p in one.iterdir())
    if names != sorted(p.name for p in other.iterdir()):
        return False
    return all(filecmp.cmp(one / name, other / name, shallow=False) for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument(
        "--to", choices=sorted(OUTPUTS), nargs="+", default=sorted(OUTPUTS, reverse=True)
    )
    parser.add_argument("--engines", choices=ENGINES, nargs="+", default=list(ENGINES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--label-map", help="a label map to give every run (one pass)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--idle",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="before each run, wait for a second this idle (e.g. 0.9; a shared machine)",
    )
    parser.add_argument("--one", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--share", help=argparse.SUPPRESS)  # K/N: a share of split_local
    args = parser.parse_args()
    if args.one == "split_local":
        fresh_folder(args.out.parent)
        print(json.dumps(split_local(args)))
        return
    if args.one:
        to = args.to[0]
        share = tuple(int(part) for part in args.share.split("/")) if args.share else None
        fresh_folder(args.out.parent)  # the last round's outputs: not this run's work
        report_one(
            lambda: convert_on(
                args.one,
                args.data,
                args.out,
                to,
                args.workers,
                args.shards,
                args.label_map,
                share,  # type: ignore[arg-type]
            )
        )
        return
    columns = ("best s", "convert s", "CPU s", "peak RSS MB", "same")
    print(f"load average before: {os.getloadavg()}", flush=True)
    print(f"{'conversion':<10} {'engine':<14} " + " ".join(f"{c:>11}" for c in columns))
    for to in args.to:
        with tempfile.TemporaryDirectory() as tmp:
            commands = {
                engine: [
                    sys.executable,
                    __file__,
                    "--one",
                    engine,
                    str(args.data),
                    str(Path(tmp) / engine / OUTPUTS[to]),
                    "--to",
                    to,
                    "--workers",
                    str(args.workers),
                    "--shards",
                    str(args.shards),
                    *(["--label-map", args.label_map] if args.label_map else []),
                ]
                for engine in args.engines
            }
            # Round after round, every engine once per round: a shared machine's changing
            # load falls on all of them alike.
            measured = interleaved(commands, args.repeat, quiet=True, idle=args.idle)
            local = Path(tmp) / "local"
            local_best = measured.get("local", {}).get("seconds")
            for engine, result in measured.items():
                folder = Path(tmp) / engine
                compared = local.is_dir() and engine not in ("local", "split_local")
                same = str(same_files(local, folder)) if compared else "-"
                converting = result.get("convert_seconds", result["seconds"])
                speedup = (
                    f"  ({local_best / converting:.2f}x local)"
                    if local_best and engine != "local"
                    else ""
                )
                floor = measured.get("split_local", {}).get("seconds")
                if floor and engine not in ("local", "split_local"):
                    speedup += f", {floor / converting:.2f}x split_local"
                print(
                    f"{to:<10} {engine:<14} {result['seconds']:>11.2f} {converting:>11.2f} "
                    f"{result['cpu_seconds']:>11.2f} "
                    f"{result['peak_rss_mb']:>11.0f} {same:>11}{speedup}",
                    flush=True,
                )
                rounds = ", ".join(f"{seconds:.2f}" for seconds in result["runs"])
                print(f"{'':<25} rounds: {rounds}{median_ratios(measured, engine)}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
