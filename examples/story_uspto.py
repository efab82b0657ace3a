"""Story 1, USPTO patent drawings: labelImg XMLs naming `.jpg` files whose pixels are CCITT G4
TIFFs -> a 70/30 train/test split as CSV summaries and sharded TFRecords (TIFFs transcoded to
PNG, which TensorFlow decodes), one label map shared by both splits.

Run: ``python examples/story_uspto.py [OUT_DIR]`` (default: build/examples/uspto).
"""

from __future__ import annotations

import sys
from pathlib import Path

from annoconv import convert
from annoconv.formats.tfrecord import inspect_tfrecords

DATA = Path(__file__).resolve().parent / "uspto"
SPLIT = {"train": 0.7, "test": 0.3}
SEED = 1  # the same seed gives the same split in every output


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("build/examples/uspto")
    annotations, images = str(DATA / "annotations"), str(DATA / "images")
    # CSV summaries: out/uspto-train.csv and out/uspto-test.csv
    summaries = convert(annotations, str(out / "uspto.csv"), images=images, split=SPLIT, seed=SEED)
    # TFRecords: out/uspto-{train,test}.record-0000N-of-00002, and out/label_map.pbtxt
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
