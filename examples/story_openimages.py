"""Story 2, an Open Images subset for camera detection: from the bbox CSV and the class
descriptions, keep `Camera` and `Mobile phone`, sample images with a seed, split 80/20, and
write keras-frcnn txt (pixel coordinates: the image sizes come from the image headers) and
TFRecords with their label map (MIDs as names, class names as display names).

Run: ``python examples/story_openimages.py [OUT_DIR]`` (default: build/examples/openimages).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from annoconv import convert

DATA = Path(__file__).resolve().parent / "openimages"
SAMPLE = 10  # the real run samples 1000 of the 14.6 M-row file's camera images


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("build/examples/openimages")
    common: dict[str, Any] = {
        "images": str(DATA / "images"),
        "read_options": {"class_descriptions": str(DATA / "class-descriptions-boxable.csv")},
        "classes": ["Camera", "Mobile phone"],
        "sample": SAMPLE,
        "seed": 1,
        "split": {"train": 0.8, "test": 0.2},
    }
    bbox = str(DATA / "train-annotations-bbox.csv")
    # out/annotation-train.txt and out/annotation-test.txt, paths as the training notebook wants
    frcnn = convert(
        bbox,
        str(out / "annotation.txt"),
        to_format="frcnn",
        write_options={"path_prefix": "drive/My Drive/GP/Dataset/train/"},
        **common,
    )
    # out/camera-{train,test}.record-00000-of-00001 and out/label_map.pbtxt
    records = convert(
        bbox, str(out / "camera.record"), label_map_output=str(out / "label_map.pbtxt"), **common
    )
    print(frcnn.summary())
    print(records.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
