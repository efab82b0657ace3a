"""What every benchmark runner shares: run one job in this process and report its time and
peak RSS as a JSON line; run it in fresh processes and keep the best time."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def report_one(job: Callable[[], dict[str, Any] | None]) -> None:
    """Run `job` here and print one JSON line: seconds; cpu_seconds, user + system of this
    process and of the worker processes it waited for (what the job cost, less disturbed than
    wall time by other jobs on a shared machine); driver_cpu_seconds, this process's alone;
    peak_rss_mb of this process; children_peak_rss_mb, the largest of its ended child
    processes (a pool's workers); and what the job returns."""
    start, cpu_start, driver_start = time.perf_counter(), _cpu_seconds(), time.process_time()
    extra = job() or {}
    seconds = time.perf_counter() - start
    _stop_forkserver()
    cpu_seconds, driver_seconds = _cpu_seconds() - cpu_start, time.process_time() - driver_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    line = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "driver_cpu_seconds": driver_seconds,
        "peak_rss_mb": peak_mb,
        "children_peak_rss_mb": children_mb,
    }
    print(json.dumps({**line, **extra}))


def fresh_folder(folder: Path) -> None:
    """Empty `folder` (made if missing) before a timed run: replacing the last round's
    outputs frees their disk blocks, which is not the conversion's work (0.1 s for 90 MB)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.sync()


def _stop_forkserver() -> None:
    """The processes engine's workers are children of a multiprocessing forkserver, not of
    this process: stop the server (it reaped them) and wait for it, so that their CPU time
    counts in this process's children's."""
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # type: ignore[attr-defined]


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have ended (a pool's
    processes, a LocalCluster's nannies and their workers)."""
    used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(usage.ru_utime + usage.ru_stime for usage in used)


def best_of(command: Sequence[str], repeat: int, *, cold: bool = False) -> dict[str, Any]:
    """Run `command` (which ends in `report_one`) `repeat` times, each in a fresh process: the
    fastest run's line, with the highest peak RSS seen over all runs. `cold` empties the
    page cache before every run, so each reads its data (and Python its modules) from disk."""
    results = []
    for _ in range(repeat):
        if cold:
            drop_page_cache()
        done = subprocess.run(list(command), check=True, capture_output=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = min(results, key=lambda result: result["seconds"])
    return {
        **best,
        "cpu_seconds": min(result["cpu_seconds"] for result in results),
        "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
    }


def idle_fraction(seconds: float = 1.0) -> float:
    """The share of the machine's CPU time that was idle over the next `seconds` (Linux)."""

    def sample() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, all

    idle_before, total_before = sample()
    time.sleep(seconds)
    idle_after, total_after = sample()
    return (idle_after - idle_before) / max(1, total_after - total_before)


def wait_for_quiet(threshold: float, patience: float) -> float:
    """Wait (at most `patience` seconds) until the machine is idle at least `threshold` of a
    second; the idle share last seen. On a machine shared with other jobs, rounds run in
    their quiet moments."""
    deadline = time.monotonic() + patience
    idle = idle_fraction()
    while idle < threshold and time.monotonic() < deadline:
        idle = idle_fraction()
    return idle


def interleaved(
    commands: Mapping[str, Sequence[str]],
    repeat: int,
    *,
    quiet: bool = False,
    idle: float = 0.0,
    patience: float = 120.0,
) -> dict[str, dict[str, Any]]:
    """Run every command once per round, `repeat` rounds, each run in a fresh process (each
    command ends in `report_one`): per command, the fastest run's line with the lowest CPU
    time and the highest peak RSS seen. Interleaving spreads a shared machine's changing load
    over all the jobs alike, so their ratios compare like with like. With `idle`, each run
    waits (up to `patience` s) for a second in which that share of the machine was idle."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in commands}
    for round_number in range(repeat):
        for name, command in commands.items():
            if idle:
                seen = wait_for_quiet(idle, patience)
                if not quiet:
                    print(f"  idle {seen:.0%} before {name}", file=sys.stderr)
            done = subprocess.run(list(command), check=True, capture_output=True, text=True)
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            if not quiet:
                seconds = results[name][-1]["seconds"]
                print(f"  round {round_number + 1}: {name} {seconds:.2f} s", file=sys.stderr)
    best = {}
    for name, runs in results.items():
        fastest = min(runs, key=lambda result: result["seconds"])
        best[name] = {
            **fastest,
            "cpu_seconds": min(result["cpu_seconds"] for result in runs),
            "peak_rss_mb": max(result["peak_rss_mb"] for result in runs),
            "runs": [result["seconds"] for result in runs],
        }
    return best


def drop_page_cache() -> None:
    """Write back dirty pages, then drop the clean ones (Linux, as root)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as error:
        raise SystemExit(f"a cold run needs root to drop the page cache: {error}") from None


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
