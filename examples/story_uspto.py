"""Story 1, USPTO patent drawings: labelImg XMLs naming `.jpg` files whose pixels are CCITT G4
TIFFs inside a yellow-book tarball -> a 70/30 train/test split as CSV summaries and sharded
TFRecords (TIFFs transcoded to PNG, which TensorFlow decodes), one label map shared by both
splits, the tarball never unpacked.

The script first packs the bundled TIFFs into a small tarball shaped like a weekly yellow
book (`grant_yb2_20190101/<patent>/<page>.TIF`) and reads the images from it; with
``--images-folder`` it reads them from the folder `examples/uspto/images` instead (same
shards, same records; only the order within a shard differs).

Run: ``python examples/story_uspto.py [OUT_DIR] [--images-folder]``
(default OUT_DIR: build/examples/uspto).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path

from annoconv import convert
from annoconv.formats.tfrecord import inspect_tfrecords

DATA = Path(__file__).resolve().parent / "uspto"
SPLIT = {"train": 0.7, "test": 0.3}
SEED = 1  # the same seed gives the same split in every output
WEEK = "grant_yb2_20190101"


def pack_yellow_book(images: Path, tarball: Path) -> Path:
    """Pack the page TIFFs under `images` as a yellow book does: one folder per patent
    under the week's folder, upper-case `.TIF` (annoconv ignores the extension's case)."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w") as tar:
        for tif in sorted(images.rglob("*.tif")):
            member = Path(WEEK) / tif.relative_to(images).with_suffix(".TIF")
            tar.add(tif, arcname=member.as_posix())
    return tarball


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="build/examples/uspto")
    parser.add_argument(
        "--images-folder", action="store_true", help="read the TIFFs from the folder, not a tar"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    annotations = str(DATA / "annotations")
    if args.images_folder:
        images = str(DATA / "images")
    else:
        images = str(pack_yellow_book(DATA / "images", out / f"{WEEK}.tar"))
    # CSV summaries: out/uspto-train.csv and out/uspto-test.csv
    summaries = convert(annotations, str(out / "uspto.csv"), images=images, split=SPLIT, seed=SEED)
    # TFRecords: out/uspto-{train,test}.record-0000N-of-00002, and out/label_map.pbtxt;
    # from a tarball the images are taken as its members stream by, in one pass
    records = convert(
        annotations,
        str(out / "uspto.record"),
        images=images,
        split=SPLIT,
        seed=SEED,
        label_map_output=str(out / "label_map.pbtxt"),
        write_options={"shards": 2},
    )
    print(summaries.summary())
    print(records.summary())
    shards = [str(out / "uspto-train.record"), str(out / "uspto-test.record")]
    print(inspect_tfrecords(shards, label_map=str(out / "label_map.pbtxt")).table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
