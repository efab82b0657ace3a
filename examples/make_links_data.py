"""Generate the bundled links-detector example (story 3: printed links in phone photos).

Phone cameras store the sensor's pixels and say how to turn them with an EXIF Orientation
tag; labelImg (since 2020) shows the photo turned and records the *displayed* size and boxes.
TensorFlow ignores EXIF, so a converter that embeds the file as it is feeds the model boxes
that do not match its pixels. This example has the real mix, under OUT/photos (default:
examples/links/photos), each labelImg XML beside its JPEG:

- ``IMG_0001``..``IMG_0004``: portrait shots stored landscape with orientation 6 or 8;
- ``IMG_0005``: taken upside down (orientation 3: the same size either way);
- ``IMG_0006``: orientation 1 (stored as displayed);
- ``IMG_0007``: a page without links (a negative example, no objects).

Pages hold grey text lines; the links (class ``http``) are blue underlined ones, boxed in
the displayed frame.

Run: ``python examples/make_links_data.py [OUT_DIR]``. The output is deterministic: running
it again gives byte-identical files.
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from annoconv.formats.voc import VocWriter
from annoconv.schema import ImageRecord, ObjectAnnotation

SEED = 20201010
DISPLAYED = (180, 240)  # width, height of a portrait photo as shown (and annotated)
ORIENTATIONS = (6, 8, 6, 8, 3, 1, 6, 8, 6, 6)
LINK_COLOR, TEXT_COLOR = (30, 60, 200), (70, 70, 70)
# How to store a displayed page so that a viewer applying the EXIF tag shows it upright:
# the inverse of the turn the tag asks for.
STORED_TURN = {
    1: None,
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}
EXIF_ORIENTATION = 0x0112


def page(rng: random.Random, with_links: bool) -> tuple[Image.Image, list[tuple[int, ...]]]:
    """A printed page as displayed, and the boxes (xmin, ymin, xmax, ymax) of its links."""
    width, height = DISPLAYED
    paper = tuple(rng.randint(225, 250) for _ in range(3))
    image = Image.new("RGB", DISPLAYED, paper)
    draw = ImageDraw.Draw(image)
    links: list[tuple[int, ...]] = []
    y = 16
    while y < height - 20:
        left, right = 14, rng.randint(width // 2, width - 14)
        if with_links and rng.random() < 0.3:
            draw.rectangle((left, y, right, y + 5), fill=LINK_COLOR)
            draw.line((left, y + 8, right, y + 8), fill=LINK_COLOR, width=1)
            links.append((left - 2, y - 2, right + 2, y + 10))
        else:
            draw.rectangle((left, y, right, y + 5), fill=TEXT_COLOR)
        y += 18
    if with_links and not links:  # every photo but the negative one shows a link
        draw.rectangle((14, y - 18, width // 2, y - 13), fill=LINK_COLOR)
        links.append((12, y - 20, width // 2 + 2, y - 8))
    return image, links


def save_photo(displayed: Image.Image, orientation: int, path: Path) -> None:
    turn = STORED_TURN[orientation]
    stored = displayed if turn is None else displayed.transpose(turn)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    stored.save(path, "JPEG", quality=88, exif=exif.tobytes())


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).parent / "links"
    shutil.rmtree(out, ignore_errors=True)
    photos = out / "photos"
    photos.mkdir(parents=True)
    rng = random.Random(SEED)
    writer = VocWriter(str(photos))
    try:
        for number, orientation in enumerate(ORIENTATIONS, 1):
            stem = f"IMG_{number:04d}"
            displayed, links = page(rng, with_links=number != len(ORIENTATIONS))
            save_photo(displayed, orientation, photos / f"{stem}.jpg")
            writer.write(
                ImageRecord(
                    key=f"{stem}.xml",
                    filename=f"{stem}.jpg",
                    path=f"/home/reader/links/photos/{stem}.jpg",
                    width=DISPLAYED[0],
                    height=DISPLAYED[1],
                    depth=3,
                    objects=[
                        ObjectAnnotation(
                            label="http",
                            xmin=box[0],
                            ymin=box[1],
                            xmax=box[2],
                            ymax=box[3],
                            difficult=0,
                            truncated=0,
                            pose="Unspecified",
                        )
                        for box in links
                    ],
                )
            )
    except BaseException:
        writer.abort()
        raise
    outputs = writer.close()
    print(f"wrote {len(outputs)} annotated photos under {photos}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
