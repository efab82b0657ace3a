"""What every benchmark runner shares: run one job in this process and report its time and
peak RSS as a JSON line; run it in fresh processes and keep the best time."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def report_one(job: Callable[[], dict[str, Any] | None]) -> None:
    """Run `job` here and print one JSON line: seconds, cpu_seconds (user + system: what the
    job cost this process, less disturbed than wall time by other jobs on a shared machine),
    peak_rss_mb and what the job returns."""
    start, cpu_start = time.perf_counter(), time.process_time()
    extra = job() or {}
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": peak_mb, **extra}
        )
    )


def best_of(command: Sequence[str], repeat: int) -> dict[str, Any]:
    """Run `command` (which ends in `report_one`) `repeat` times, each in a fresh process: the
    fastest run's line, with the highest peak RSS seen over all runs."""
    results = []
    for _ in range(repeat):
        done = subprocess.run(list(command), check=True, capture_output=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = min(results, key=lambda result: result["seconds"])
    return {
        **best,
        "cpu_seconds": min(result["cpu_seconds"] for result in results),
        "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
    }


OpenImagesJob = Callable[[Path, Path], "dict[str, int]"]


def run_open_images_jobs(
    script: str, description: str | None, jobs: Mapping[str, OpenImagesJob]
) -> dict[str, dict[str, Any]]:
    """The command line of the Open Images runners: `CSV [DESCRIPTIONS] [--repeat N]
    [--jobs ...]`. Each job runs `--repeat` times in a fresh process of `script` (which calls
    this again with the hidden `--one JOB`); prints a table and returns each job's best run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("csv", type=Path)
    parser.add_argument("descriptions", type=Path, nargs="?")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--one", choices=sorted(jobs), help=argparse.SUPPRESS)
    parser.add_argument("--jobs", nargs="+", choices=list(jobs), default=list(jobs))
    args = parser.parse_args()
    descriptions = args.descriptions or args.csv.parent / "class-descriptions-boxable.csv"
    if args.one:
        report_one(lambda: jobs[args.one](args.csv, descriptions))
        return {}
    print(f"{args.csv} ({args.csv.stat().st_size / 1e9:.2f} GB)")
    print(f"{'job':<24} {'best s':>8} {'peak RSS MB':>12}  counts")
    results = {}
    for name in args.jobs:
        command = [sys.executable, script, str(args.csv), str(descriptions), "--one", name]
        result = results[name] = best_of(command, args.repeat)
        counts = {k: v for k, v in result.items() if k not in ("seconds", "peak_rss_mb")}
        print(f"{name:<24} {result['seconds']:>8.2f} {result['peak_rss_mb']:>12.0f}  {counts}")
    return results
