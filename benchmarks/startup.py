"""How fast annoconv starts: `import annoconv`, `annoconv --help`, `annoconv --version`,
against a bare interpreter, each the best of N runs in a fresh process, interleaved; and the
modules `import annoconv` loads, from ``python -X importtime``.

Run: ``python benchmarks/startup.py [--repeat 5]`` (with the Python that has annoconv).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

COMMAND = str(Path(sys.executable).parent / "annoconv")
JOBS = {
    "python -c pass (the floor)": [sys.executable, "-c", "pass"],
    "python -c 'import annoconv'": [sys.executable, "-c", "import annoconv"],
    "annoconv --help": [COMMAND, "--help"],
    "annoconv --version": [COMMAND, "--version"],
}


def timed(command: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one run of `command`."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command} exited {child.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def import_times() -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest imports of `import annoconv`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import annoconv"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative), name.rstrip()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in JOBS}
    for _ in range(args.repeat):
        for name, command in JOBS.items():
            runs[name].append(timed(command))
    print(f"load average after: {os.getloadavg()}")
    print(f"{'command':<30} {'best s':>8} {'CPU s':>8} {'peak RSS MB':>12}")
    for name, measured in runs.items():
        wall = min(run[0] for run in measured)
        cpu = min(run[1] for run in measured)
        peak = max(run[2] for run in measured)
        print(f"{name:<30} {wall:>8.3f} {cpu:>8.3f} {peak:>12.0f}")
    rows = import_times()
    total = next((us for us, name in rows if name.strip() == "annoconv"), 0)
    print(f"\n-X importtime: import annoconv {total / 1e6:.3f} s; the slowest imports:")
    for cumulative, name in sorted(rows, reverse=True)[:8]:
        print(f"  {cumulative / 1e3:8.1f} ms  {name.strip()}")


if __name__ == "__main__":
    main()
