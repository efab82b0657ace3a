"""Story 3, the links detector: labelImg VOC of phone photos, some with an EXIF orientation,
-> TFRecords and a label map for the TF2 Object Detection API. Photos whose XML records the
displayed (turned) size are embedded turned, so the pixels TensorFlow decodes match the boxes;
this script checks that for every record it wrote.

Run: ``python examples/story_links.py [OUT_DIR]`` (default: build/examples/links).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image

from annoconv import convert
from annoconv.formats.tfrecord import tfrecord_files
from annoconv.tfexample import Keys, decode_example, iter_tfrecords

PHOTOS = Path(__file__).resolve().parent / "links" / "photos"


def decoded_sizes(prefix: str) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    """{source_id: (size the Example declares, size of its embedded pixels)}."""
    sizes = {}
    for uri in tfrecord_files(prefix):
        for payload in iter_tfrecords(uri):
            example = decode_example(payload)
            declared = (example[Keys.WIDTH][1][0], example[Keys.HEIGHT][1][0])
            with Image.open(io.BytesIO(example[Keys.ENCODED][1][0])) as pixels:
                sizes[example[Keys.SOURCE_ID][1][0].decode()] = (declared, pixels.size)
    return sizes


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("build/examples/links")
    report = convert(
        str(PHOTOS),
        str(out / "links.record"),
        from_format="voc",
        split={"train": 0.8, "test": 0.2},
        seed=1,
        label_map_output=str(out / "label_map.pbtxt"),
    )
    print(report.summary())
    for split in ("train", "test"):
        for key, (declared, pixels) in sorted(
            decoded_sizes(str(out / f"links-{split}.record")).items()
        ):
            print(f"{split:5} {key}: declared {declared}, embedded pixels {pixels}")
            if declared != pixels:
                raise SystemExit(f"{key}: the embedded pixels do not match the boxes' frame")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
