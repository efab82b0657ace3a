"""Generate an Open Images V6-shaped train bbox CSV and its class descriptions, for benchmarks.

The shape follows the real ``oidv6-train-annotations-bbox.csv`` (GUIDE §3): 21 columns, one row
per box, 14,610,229 rows on 1,743,042 ImageIDs (16 lowercase hex digits, sorted), ~8.4 boxes
per image, 600 MIDs with a Zipf-like skew, coordinates with 6 decimals, flags 1/0 for `xclick`
boxes and some -1 (unknown) for `activemil` ones, whose XClick columns are -1. The real
``/m/0dv5r`` Camera (~5,000 images, as the seed thesis counts) and ``/m/050k8`` Mobile phone
(~12,000 images) are among the classes at roughly their real rarity. The class descriptions
file has no header, as before V6, and a few quoted names with commas and doubled quotes.

Run: ``python benchmarks/make_openimages.py /tmp/oi [--images 1743042] [--seed 1]``. Writes
``OUT/oidv6-train-annotations-bbox.csv`` and ``OUT/class-descriptions-boxable.csv``, streaming
one chunk of images at a time (never the whole file in memory). Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

IMAGES = 1_743_042
ROWS = 14_610_229
CLASSES = 600
CHUNK_IMAGES = 50_000
CLICKS = tuple(f"XClick{n}{axis}" for axis in "XY" for n in range(1, 5))
# Per-box weight of a pinned class over its share of images (boxes of a class cluster).
CLUSTERING = 3.6
HEADER = (
    "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,"
    "IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside,"
    "XClick1X,XClick2X,XClick3X,XClick4X,XClick1Y,XClick2Y,XClick3Y,XClick4Y"
)
# (MID, display name, images per million) for classes whose frequency we pin.
PINNED = (
    ("/m/0dv5r", "Camera", 5037 / IMAGES * 1e6),
    ("/m/050k8", "Mobile phone", 12000 / IMAGES * 1e6),
)
FAMOUS = (
    ("/m/01g317", "Person"),
    ("/m/0dzct", "Human face"),
    ("/m/09j2d", "Clothing"),
    ("/m/04yx4", "Man"),
    ("/m/07j7r", "Tree"),
    ("/m/03bt1vf", "Woman"),
)
QUOTED = (
    ("/m/0gxl3", 'Fiat 500 "topolino"'),
    ("/m/0h8n5zk", "Lemon, lime and bitters"),
    ("/m/0_quoted", 'Pen, "fountain", and ink'),
)


def class_table(rng: np.random.Generator) -> list[tuple[str, str]]:
    """600 (MID, name) pairs: the famous and pinned ones first, then synthetic MIDs."""
    classes = list(FAMOUS) + [(mid, name) for mid, name, _ in PINNED] + list(QUOTED)
    seen = {mid for mid, _ in classes}
    while len(classes) < CLASSES:
        mid = "/m/0" + "".join(rng.choice(list("0123456789bcdfghjklmnpqrstvwxyz"), size=4))
        if mid not in seen:
            seen.add(mid)
            classes.append((mid, f"Class {len(classes)}"))
    return classes


def class_weights(classes: list[tuple[str, str]]) -> np.ndarray:
    """Per-box class probabilities: Zipf-like over rank, with the pinned classes fixed."""
    weights = 1.0 / np.arange(1, len(classes) + 1) ** 1.1
    weights /= weights.sum()
    mean_boxes = ROWS / IMAGES
    pinned_mass = 0.0
    for index, (mid, _name) in enumerate(classes):
        for pinned_mid, _, per_million in PINNED:
            if mid == pinned_mid:
                # Calibrated so that about `per_million` images hold the class.
                weights[index] = per_million * 1e-6 * CLUSTERING / mean_boxes
                pinned_mass += weights[index]
    free = [i for i, (mid, _) in enumerate(classes) if mid not in {p[0] for p in PINNED}]
    weights[free] *= (1 - pinned_mass) / weights[free].sum()
    return weights


def image_ids(rng: np.random.Generator, count: int) -> list[str]:
    values = np.unique(rng.integers(0, 2**63, size=count + count // 100, dtype=np.int64))
    values = np.sort(rng.choice(values, size=count, replace=False))
    return [f"{value:016x}" for value in values.tolist()]


def boxes_per_image(rng: np.random.Generator, count: int) -> np.ndarray:
    """Skewed counts (many images with 1-3 boxes, a long tail) adding up to the real total
    (scaled to `count` images)."""
    raw = rng.lognormal(mean=1.55, sigma=0.85, size=count)
    counts: np.ndarray = np.maximum(1, np.rint(raw * (ROWS / IMAGES) / raw.mean())).astype(np.int64)
    missing = round(ROWS * count / IMAGES) - int(counts.sum())
    # Spread the rounding difference one box at a time over random images (never below 1).
    while missing:
        chosen = rng.choice(count, size=min(abs(missing), count), replace=False)
        if missing < 0:
            chosen = chosen[counts[chosen] > 1]
        counts[chosen] += 1 if missing > 0 else -1
        missing -= len(chosen) if missing > 0 else -len(chosen)
    return counts


def decimals(values: np.ndarray) -> pa.Array:
    """Numbers in [0, 1] with exactly 6 decimals, as Google prints them (`0.012500`)."""
    micros = np.rint(np.clip(values, 0, 1) * 1e6).astype(np.int64)
    whole = pa.array(micros // 1_000_000).cast(pa.string())
    fraction = pc.utf8_lpad(pa.array(micros % 1_000_000).cast(pa.string()), 6, "0")
    return pc.binary_join_element_wise(whole, fraction, ".")


def chunk_table(
    rng: np.random.Generator,
    ids: list[str],
    counts: np.ndarray,
    mids: np.ndarray,
    weights: np.ndarray,
) -> pa.Table:
    rows = int(counts.sum())
    image_of_row = np.repeat(np.arange(len(ids)), counts)
    # Boxes of one image repeat a few classes: draw per image, then per box among them.
    per_image = rng.choice(len(mids), size=(len(ids), 3), p=weights)
    pick = rng.integers(0, 3, size=rows)
    pick[rng.random(rows) < 0.4] = 0
    labels = mids[per_image[image_of_row, pick]]
    xclick = rng.random(rows) < 0.7
    x = np.sort(rng.random((rows, 2)), axis=1)
    y = np.sort(rng.random((rows, 2)), axis=1)
    columns: dict[str, pa.Array] = {
        "ImageID": pa.array(ids).take(pa.array(image_of_row)),
        "Source": pa.array(np.where(xclick, "xclick", "activemil")),
        "LabelName": pa.array(labels),
        "Confidence": pa.array(["1"] * rows),
        "XMin": decimals(x[:, 0]),
        "XMax": decimals(x[:, 1]),
        "YMin": decimals(y[:, 0]),
        "YMax": decimals(y[:, 1]),
    }
    for name, rate in (
        ("IsOccluded", 0.6),
        ("IsTruncated", 0.3),
        ("IsGroupOf", 0.07),
        ("IsDepiction", 0.05),
        ("IsInside", 0.01),
    ):
        flags = (rng.random(rows) < rate).astype(np.int64)
        flags[~xclick & (rng.random(rows) < 0.5)] = -1
        columns[name] = pa.array(flags).cast(pa.string())
    clicks = rng.random((rows, 8))
    clicks[:, :4] = x[:, :1] + clicks[:, :4] * (x[:, 1:] - x[:, :1])
    clicks[:, 4:] = y[:, :1] + clicks[:, 4:] * (y[:, 1:] - y[:, :1])
    missing = pc.if_else(pa.array(xclick), pa.scalar(None, pa.string()), "-1")
    for index, name in enumerate(CLICKS):
        columns[name] = pc.coalesce(missing, decimals(clicks[:, index]))
    return pa.table(columns)


def write_descriptions(path: Path, classes: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=int, default=IMAGES)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    classes = class_table(rng)
    write_descriptions(args.out / "class-descriptions-boxable.csv", classes)
    mids = np.array([mid for mid, _ in classes])
    weights = class_weights(classes)
    ids = image_ids(rng, args.images)
    counts = boxes_per_image(rng, args.images)
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    rows = 0
    with (args.out / "oidv6-train-annotations-bbox.csv").open("wb") as sink:
        sink.write((HEADER + "\n").encode())
        for start in range(0, args.images, CHUNK_IMAGES):
            stop = start + CHUNK_IMAGES
            table = chunk_table(rng, ids[start:stop], counts[start:stop], mids, weights)
            pacsv.write_csv(table, sink, options)
            rows += table.num_rows
    print(f"{args.images} images, {rows} boxes, {len(classes)} classes under {args.out}")


if __name__ == "__main__":
    main()
