"""Story 4, look before you train: the bundled USPTO pages and Open Images subset -> stats and a
plot, flat Parquet tables queried with pandas and DuckDB (class counts, boxes per image, box
size percentiles), and dedup by SHA-256 finding a duplicate page planted in a scratch copy.

Writes OUT/summary.json with what the queries found. Needs the `plot` extra (matplotlib),
pandas and duckdb.

Run: ``python examples/story_look.py [OUT_DIR]`` (default: build/examples/look).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from annoconv import convert
from annoconv.plot import plot_stats
from annoconv.sources import open_reader
from annoconv.stats import dataset_stats

EXAMPLES = Path(__file__).resolve().parent
USPTO, OPEN_IMAGES = EXAMPLES / "uspto", EXAMPLES / "openimages"
RANKS = "[0, 0.05, 0.25, 0.5, 0.75, 0.95, 1]"  # the percentiles `annoconv stats` reports
# the page copied under a new name, as (patent folder, page) of the original and the copy
ORIGINAL, COPY = ("10165002", "00000003"), ("10165003", "00000005")


def to_parquet(out: Path) -> tuple[Path, Path]:
    """The VOC pages (pixels) and the Open Images CSV (normalized) as flat Parquet tables."""
    pages, oi = out / "uspto-boxes.parquet", out / "oi-boxes.parquet"
    convert(
        str(USPTO / "annotations"),
        str(pages),
        images=str(USPTO / "images"),
        write_options={"flat": True},
    )
    convert(
        str(OPEN_IMAGES / "train-annotations-bbox.csv"),
        str(oi),
        read_options={"class_descriptions": str(OPEN_IMAGES / "class-descriptions-boxable.csv")},
        write_options={"flat": True},
    )
    return pages, oi


def look_with_pandas(table: Path) -> dict[str, Any]:
    boxes = pd.read_parquet(table)
    labelled = boxes[boxes["class"].notna()]
    by_class = labelled.groupby("class").agg(boxes=("key", "size"), images=("key", "nunique"))
    per_image = boxes.groupby("key")["class"].count()  # nulls (negative images) count 0
    return {
        "classes": {
            name: {k: int(v) for k, v in row.items()}
            for name, row in by_class.to_dict("index").items()
        },
        "images_with": {str(k): int(v) for k, v in per_image.value_counts().items()},
    }


def look_with_duckdb(pages: Path, oi: Path) -> dict[str, Any]:
    [(widths, heights)] = duckdb.sql(
        f"SELECT quantile_disc(xmax - xmin, {RANKS}), quantile_disc(ymax - ymin, {RANKS}) "
        f"FROM '{pages}' WHERE class IS NOT NULL"
    ).fetchall()
    oi_classes = duckdb.sql(
        "SELECT class, count(*), count(DISTINCT key) "
        f"FROM '{oi}' WHERE class IS NOT NULL GROUP BY class ORDER BY class"
    ).fetchall()
    return {
        "box_width": widths,
        "box_height": heights,
        "oi_classes": {name: {"boxes": n, "images": i} for name, n, i in oi_classes},
    }


def plant_duplicate(scratch: Path) -> Path:
    """A copy of the USPTO set in which one page and its XML are there twice, under two names."""
    shutil.copytree(USPTO, scratch, dirs_exist_ok=True)
    (folder, page), (copy_folder, copy_page) = ORIGINAL, COPY
    shutil.copyfile(
        scratch / "images" / folder / f"{page}.tif",
        scratch / "images" / copy_folder / f"{copy_page}.tif",
    )
    xml = (scratch / "annotations" / folder / f"{page}.xml").read_text(encoding="utf-8")
    renamed = xml.replace(folder, copy_folder).replace(page, copy_page)
    (scratch / "annotations" / copy_folder / f"{copy_page}.xml").write_text(renamed, "utf-8")
    return scratch


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("build/examples/look")
    out.mkdir(parents=True, exist_ok=True)
    stats = dataset_stats(open_reader(str(USPTO / "annotations"), images=str(USPTO / "images")))
    print(stats.table())
    plot_stats(stats, str(out / "uspto-stats.png"))
    pages, oi = to_parquet(out)
    summary = {"pandas": look_with_pandas(pages), "duckdb": look_with_duckdb(pages, oi)}
    planted = plant_duplicate(out / "planted")
    dedup = convert(
        str(planted / "annotations"),
        str(out / "unique.parquet"),
        images=str(planted / "images"),
        dedup=True,
    )
    print(dedup.summary())
    summary["duplicates"] = [group.__dict__ for group in dedup.duplicates]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
