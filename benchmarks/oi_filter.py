"""Time the Open Images class selection (the camera story) against pyarrow on the same file.

Jobs, each in its own process reporting wall time and peak RSS:

- ``pyarrow_read_csv``: ``pyarrow.csv.read_csv(path)``, pyarrow's plain whole-file read;
- ``pyarrow_stream_filter``: the least a streaming selection must do, by hand: pyarrow's
  streaming reader over the 13 columns annoconv reads, `is_in` on LabelName, count the rows;
- ``annoconv_filter``: ``OpenImagesReader(path, class_descriptions=...,
  classes=["Camera", "Mobile phone"])`` iterated to the end, counting images and boxes.

Run: ``python benchmarks/oi_filter.py /tmp/oi/oidv6-train-annotations-bbox.csv [--repeat 1]``
(files from make_openimages.py; the class descriptions are looked up beside the CSV).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from measuring import run_open_images_jobs

CLASSES = ["Camera", "Mobile phone"]
MIDS = ["/m/0dv5r", "/m/050k8"]
COLUMNS = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax"]
COLUMNS += ["IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]


def pyarrow_read_csv(path: Path, descriptions: Path) -> dict[str, int]:
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(path)
    return {"rows": table.num_rows}


def pyarrow_stream_filter(path: Path, descriptions: Path) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(COLUMNS, pa.string()), include_columns=COLUMNS
        ),
    )
    wanted = pa.array(MIDS)
    rows = boxes = 0
    for batch in reader:
        rows += batch.num_rows
        boxes += pc.sum(pc.is_in(batch.column("LabelName"), value_set=wanted)).as_py() or 0
    return {"rows": rows, "boxes": boxes}


def annoconv_filter(path: Path, descriptions: Path) -> dict[str, int]:
    from annoconv.formats.base import BadItem, Dropped
    from annoconv.formats.openimages import OpenImagesReader
    from annoconv.schema import ImageRecord

    reader = OpenImagesReader(str(path), class_descriptions=str(descriptions), classes=CLASSES)
    counts = dict.fromkeys(("images", "boxes", "dropped_images", "dropped_boxes", "bad"), 0)
    for item in reader:
        if isinstance(item, ImageRecord):
            counts["images"] += 1
            counts["boxes"] += len(item.objects)
        elif isinstance(item, Dropped):
            counts["dropped_images"] += item.images
            counts["dropped_boxes"] += item.boxes
        elif isinstance(item, BadItem):
            counts["bad"] += 1
    return counts


JOBS: dict[str, Callable[[Path, Path], dict[str, int]]] = {
    "pyarrow_read_csv": pyarrow_read_csv,
    "pyarrow_stream_filter": pyarrow_stream_filter,
    "annoconv_filter": annoconv_filter,
}


def main() -> None:
    run_open_images_jobs(__file__, __doc__, JOBS)


if __name__ == "__main__":
    main()
