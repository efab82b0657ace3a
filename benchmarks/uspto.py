"""USPTO-like pages -> TFRecord against the floors under it, measured in the same run.

The set comes from make_uspto.py (bilevel 2560x3300 G4 TIFF pages, labelImg XMLs naming
``NNN.jpg``, the same pages in a yellow-book-style tar). Nearly all of a conversion's time is
decoding the TIFFs and encoding PNGs, so the floors are plain loops doing just that with
Pillow, reading each page's file and writing the PNGs to one file:

- ``loop_level6_1core``: Pillow's default PNG level (6) on one core, what a plain script does,
  and ``loop_level6_threads``, the same on every core;
- ``loop_levelL_1core``: the level annoconv writes (``--level``, default: annoconv's default);
- ``loop_levelL_threads``: the same on every core (threads: Pillow's codecs release the GIL),
  pages in order, a bounded number in flight: **the floor** for annoconv's default run;

and the runs, each through the ``annoconv`` command line (``main()`` in the timed process):

- ``annoconv_folder``: ``annoconv xml2tfrecord ANN OUT --images PAGES``, no engine flags;
- ``annoconv_tar``: the same with ``--images grant_yb2_20190101.tar``;
- ``annoconv_processes``: ``--engine processes --workers N --shards N`` from the folder;
- ``annoconv_folder_level6``: no engine flags, ``--png-level 6`` (size as before).

Jobs run interleaved (round after round, each job once per round, in a fresh process) so a
shared machine's changing load falls on all of them alike; each job's best round is shown.
``--levels`` instead times decode + encode at every zlib level (in this process, each page
encoded at every level in turn) and shows the sizes.

Run: ``python benchmarks/uspto.py DATA_DIR [--repeat 3] [--jobs ...] [--workers 2]`` or
``python benchmarks/uspto.py DATA_DIR --levels [--pages 200]``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from measuring import fresh_folder, interleaved, report_one
from PIL import Image

ARCHIVE = "grant_yb2_20190101.tar"


def pages_of(data: Path) -> list[Path]:
    return sorted((data / "pages").rglob("*.tif"))


def transcode(path: Path, level: int) -> bytes:
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        image.load()
        buffer = io.BytesIO()
        image.save(buffer, "PNG", compress_level=level)
        return buffer.getvalue()


def in_order(
    pool: ThreadPoolExecutor, work: Callable[[Path], bytes], paths: list[Path], window: int
) -> Iterator[bytes]:
    """`work` of every path on the pool, at most `window` in flight, results in order."""
    pending: deque[Future[bytes]] = deque()
    for path in paths:
        pending.append(pool.submit(work, path))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def loop(data: Path, out: Path, level: int, threads: int) -> dict[str, Any]:
    """Decode every page and encode it as a PNG at `level`, on `threads` threads."""
    paths = pages_of(data)
    written = 0
    with out.open("wb") as sink, ThreadPoolExecutor(threads) as pool:
        for encoded in in_order(pool, lambda path: transcode(path, level), paths, 2 * threads):
            sink.write(encoded)
            written += len(encoded)
    return {"pages": len(paths), "kb_per_page": written / len(paths) / 1e3}


def annoconv(data: Path, out: Path, *flags: str) -> dict[str, Any]:
    from annoconv.cli import main

    images = data / ARCHIVE if "--tar" in flags else data / "pages"
    flags = tuple(flag for flag in flags if flag != "--tar")
    args = ["xml2tfrecord", str(data / "annotations"), str(out / "uspto.record")]
    code = main([*args, "--images", str(images), "-q", *flags])
    if code != 0:
        raise SystemExit(f"annoconv exited {code}")
    shards = list(out.glob("uspto.record-*"))
    pages = len(pages_of(data))
    size = sum(shard.stat().st_size for shard in shards)
    return {"pages": pages, "kb_per_page": size / pages / 1e3, "shards": len(shards)}


def jobs(level: int, workers: int) -> dict[str, Callable[[Path, Path], dict[str, Any]]]:
    threads = len(os.sched_getaffinity(0))
    return {
        "loop_level6_1core": lambda data, out: loop(data, out / "pages.bin", 6, 1),
        "loop_level6_threads": lambda data, out: loop(data, out / "pages.bin", 6, threads),
        f"loop_level{level}_1core": lambda data, out: loop(data, out / "pages.bin", level, 1),
        f"loop_level{level}_threads": (
            lambda data, out: loop(data, out / "pages.bin", level, threads)
        ),
        "annoconv_folder": lambda data, out: annoconv(data, out),
        "annoconv_tar": lambda data, out: annoconv(data, out, "--tar"),
        "annoconv_processes": lambda data, out: annoconv(
            data, out, "--engine", "processes", "--workers", str(workers), "--shards", str(workers)
        ),
        "annoconv_folder_level6": lambda data, out: annoconv(data, out, "--png-level", "6"),
    }


def levels(data: Path, count: int) -> None:
    """Decode + encode CPU time a page, and size, at every zlib level."""
    paths = pages_of(data)[:count]
    decode = 0.0
    encode = dict.fromkeys(range(10), 0.0)
    size = dict.fromkeys(range(10), 0)
    for path in paths:
        raw = path.read_bytes()
        start = time.thread_time()
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            decode += time.thread_time() - start
            for level in range(10):
                buffer = io.BytesIO()
                start = time.thread_time()
                image.save(buffer, "PNG", compress_level=level)
                encode[level] += time.thread_time() - start
                size[level] += len(buffer.getvalue())
    pages = len(paths)
    print(f"{pages} pages; decode {decode / pages * 1e3:.1f} ms a page (CPU)")
    print(f"{'level':>5} {'decode+encode ms':>17} {'vs 6':>6} {'KB/page':>8} {'vs 6':>6}")
    for level in range(10):
        total = (decode + encode[level]) / pages * 1e3
        ratio = (decode + encode[level]) / (decode + encode[6])
        print(
            f"{level:>5} {total:>17.1f} {ratio:>5.2f}x {size[level] / pages / 1e3:>8.1f} "
            f"{size[level] / size[6]:>5.2f}x"
        )


def default_level() -> int:
    from annoconv.io.embed import DEFAULT_PNG_LEVEL

    return DEFAULT_PNG_LEVEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--idle",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="before each run, wait for a second this idle (e.g. 0.9; a shared machine)",
    )
    parser.add_argument("--level", type=int, default=None, help="default: annoconv's")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--levels", action="store_true", help="time and size every level")
    parser.add_argument("--pages", type=int, default=200, help="pages for --levels")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", nargs="+", default=None)
    args = parser.parse_args()
    if args.levels:
        levels(args.data, args.pages)
        return
    level = default_level() if args.level is None else args.level
    table = jobs(level, args.workers)
    if args.one:
        fresh_folder(args.out)  # the last round's outputs: not this run's work
        report_one(lambda: table[args.one](args.data, args.out))
        return
    chosen = args.jobs or list(table)
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        commands = {}
        for name in chosen:
            out = Path(tmp) / name
            out.mkdir()
            common = ["--level", str(level), "--workers", str(args.workers)]
            commands[name] = [
                sys.executable,
                __file__,
                str(args.data),
                str(out),
                "--one",
                name,
                *common,
            ]
        measured = interleaved(commands, args.repeat, idle=args.idle)
    print(f"load average after: {os.getloadavg()}")
    floor = measured.get(f"loop_level{level}_threads")
    plain = measured.get("loop_level6_1core")
    header = ("best s", "CPU s", "peak MB", "workers MB", "KB/page", "/floor", "/level-6 loop")
    print(f"{'job':<26} " + " ".join(f"{column:>13}" for column in header))
    for name, result in measured.items():
        ratios = [
            f"{result['seconds'] / base['seconds']:.2f}x" if base else "-"
            for base in (floor, plain)
        ]
        print(
            f"{name:<26} {result['seconds']:>13.2f} {result['cpu_seconds']:>13.2f} "
            f"{result['peak_rss_mb']:>13.0f} {result.get('children_peak_rss_mb', 0):>13.0f} "
            f"{result['kb_per_page']:>13.1f} {ratios[0]:>13} {ratios[1]:>13}"
        )
        print(f"{'':<26} rounds: {', '.join(f'{s:.2f}' for s in result['runs'])}")


if __name__ == "__main__":
    main()
