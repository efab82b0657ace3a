"""Time COCO JSON -> YOLO labels and COCO JSON -> Parquet against pycocotools' and json's load.

Jobs, each in its own process reporting wall time, CPU time and peak RSS (measuring.py),
run in interleaved rounds (``--repeat`` of them; best time, lowest CPU, highest RSS kept):

- ``json_load``: ``json.load`` of the file, the floor of every tool that loads it whole;
- ``pycocotools``: ``pycocotools.coco.COCO(path)``, the load (json.load + index) every
  COCO user runs;
- ``annoconv_yolo``: ``annoconv.convert(path, OUT, to_format="yolo",
  write_options={"images_mode": "none"})``: every image's label file and data.yaml, no image
  files (the generated file has none); the label map is COCO's categories, as declared;
- ``annoconv_parquet``: ``annoconv.convert(path, OUT.parquet)``, one row per image;
- ``files_floor``: one small file written per image (plain ``open``/``write`` into a new
  folder, as the YOLO writer does): what the file system alone costs for YOLO's label files.

Outputs go beside the JSON (or into ``--out DIR``) and are removed after each run. Run:
``python benchmarks/coco.py /tmp/coco/instances_train2017.json [--repeat 3] [--out DIR]``
(the file from make_coco.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from measuring import interleaved, report_one

#: Where the jobs write (`--out`); None: beside the JSON.
OUT: Path | None = None


def _output(path: Path, suffix: str) -> Path:
    return (OUT or path.parent) / f"{path.stem}{suffix}"


def json_load(path: Path) -> dict[str, int]:
    with path.open("rb") as handle:
        document = json.load(handle)
    return {"images": len(document["images"]), "boxes": len(document["annotations"])}


def pycocotools_load(path: Path) -> dict[str, int]:
    import contextlib
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    return {"images": len(coco.imgs), "boxes": len(coco.anns)}


def annoconv_yolo(path: Path) -> dict[str, int]:
    from annoconv import convert
    from annoconv.formats.coco import CocoReader

    out = _output(path, "-yolo")
    reader = CocoReader(str(path))
    report = convert(
        reader,
        str(out),
        to_format="yolo",
        label_map=reader.declared_label_map(),
        write_options={"images_mode": "none"},
    )
    shutil.rmtree(out)
    return {"images": report.images_written, "boxes": report.boxes_written}


def annoconv_parquet(path: Path) -> dict[str, int]:
    from annoconv import convert

    out = _output(path, "-annoconv.parquet")
    report = convert(str(path), str(out))
    size = out.stat().st_size
    out.unlink()
    return {"images": report.images_written, "boxes": report.boxes_written, "bytes": size}


def files_floor(path: Path) -> dict[str, int]:
    out = _output(path, "-floor")
    count = _image_count(path)
    out.mkdir()
    line = b"0 0.5 0.5 0.25 0.25\n"
    for index in range(count):
        with open(out / f"{index:012d}.txt", "wb") as handle:
            handle.write(line)
    shutil.rmtree(out)
    return {"images": count}


def _image_count(path: Path) -> int:
    """The images of a make_coco.py file: its first line says (written beside the JSON)."""
    return int(path.with_suffix(".images").read_text())


JOBS: dict[str, Callable[[Path], dict[str, int]]] = {
    "json_load": json_load,
    "pycocotools": pycocotools_load,
    "annoconv_yolo": annoconv_yolo,
    "annoconv_parquet": annoconv_parquet,
    "files_floor": files_floor,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, help="folder for the outputs (default: the JSON's)")
    parser.add_argument("--one", choices=sorted(JOBS), help=argparse.SUPPRESS)
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=list(JOBS))
    parser.add_argument(
        "--annoconv-python",
        metavar="PYTHON",
        help="run annoconv's jobs with this interpreter (e.g. a venv holding only "
        "`pip install .`: the test extras bring pandas, which pyarrow then imports)",
    )
    args = parser.parse_args()
    global OUT
    OUT = args.out
    if OUT is not None:
        OUT.mkdir(parents=True, exist_ok=True)
    if args.one:
        report_one(lambda: JOBS[args.one](args.json))
        return
    print(f"{args.json} ({args.json.stat().st_size / 1e6:.0f} MB)")
    commands = {}
    for name in args.jobs:
        python = args.annoconv_python if name.startswith("annoconv") else None
        commands[name] = [python or sys.executable, __file__, str(args.json), "--one", name]
        if OUT is not None:
            commands[name] += ["--out", str(OUT)]
    # Rounds of every job in turn: the shared machine's load (and its disk's) falls on all.
    results = interleaved(commands, args.repeat, quiet=True)
    print(f"{'job':<18} {'best s':>8} {'cpu s':>8} {'peak RSS MB':>12}  runs s / counts")
    for name, result in results.items():
        counts = {k: v for k, v in result.items() if k in ("images", "boxes", "bytes")}
        runs = " ".join(f"{seconds:.1f}" for seconds in result["runs"])
        print(
            f"{name:<18} {result['seconds']:>8.2f} {result['cpu_seconds']:>8.2f} "
            f"{result['peak_rss_mb']:>12.0f}  [{runs}] {counts}"
        )
    if "pycocotools" in results:
        base = results["pycocotools"]
        for name in ("annoconv_yolo", "annoconv_parquet"):
            if name in results:
                time_ratio = results[name]["seconds"] / base["seconds"]
                memory_ratio = results[name]["peak_rss_mb"] / base["peak_rss_mb"]
                print(f"{name} / pycocotools: {time_ratio:.2f}x time, {memory_ratio:.2f}x memory")


if __name__ == "__main__":
    main()
