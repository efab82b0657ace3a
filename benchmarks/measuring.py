"""What every benchmark runner shares: run one job in this process and report its time and
peak RSS as a JSON line; run it in fresh processes and keep the best time."""

from __future__ import annotations

import json
import resource
import subprocess
import time
from collections.abc import Callable, Sequence
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
