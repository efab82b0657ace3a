"""`annoconv preview` against the floor under it, and on a big source.

* photos: a page of N camera-sized JPEGs (every one shown) against the floor, a plain loop
  that does what any preview must per image: read it, decode it (Pillow's JPEG draft, as
  we do), downscale to 320 px and encode a JPEG thumbnail;
* big: a CSV of `--big` images x 4 boxes (only the sampled images exist on disk) sampled to
  100, against a plain `csv` module pass over the same file.

Each job runs in a fresh process (`measuring.best_of`). Run:
``python benchmarks/preview.py /tmp/preview-bench --photos 200 --big 100000 --repeat 3``
(the data is made on the first run and kept).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from pathlib import Path

from measuring import best_of, report_one

SIZE = 320


def make_photos(folder: Path, count: int) -> Path:
    """`count` 1600x1200 JPEGs with textured content (noise, blobs) and a CSV of their boxes."""
    from PIL import Image, ImageDraw, ImageFilter

    table = folder / "photos.csv"
    if table.exists():
        return table
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    rows = [["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"]]
    for index in range(count):
        noise = Image.effect_noise((400, 300), 60).resize((1600, 1200)).convert("RGB")
        tint = Image.new("RGB", (1600, 1200), tuple(rng.randint(40, 200) for _ in range(3)))
        image = Image.blend(noise, tint, 0.5)
        draw = ImageDraw.Draw(image)
        for _ in range(30):
            x, y = rng.randint(0, 1500), rng.randint(0, 1100)
            fill = tuple(rng.randint(0, 255) for _ in range(3))
            draw.ellipse((x, y, x + rng.randint(20, 200), y + rng.randint(20, 200)), fill=fill)
        name = f"photo_{index:04d}.jpg"
        image.filter(ImageFilter.GaussianBlur(1)).save(folder / name, quality=90)
        for _ in range(3):
            x, y = rng.randint(0, 1200), rng.randint(0, 900)
            label = rng.choice(["cat", "dog", "bird"])
            rows.append([name, "1600", "1200", label, str(x), str(y), str(x + 300), str(y + 200)])
    with table.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return table


def make_big(folder: Path, images: int) -> Path:
    """A CSV of `images` x 4 boxes over 64x48 images; only the 100 sampled ones are written."""
    from PIL import Image

    import annoconv

    table = folder / f"big-{images}.csv"
    if table.exists():
        return table
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2)
    with table.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"])
        for index in range(images):
            for _ in range(4):
                x, y = rng.randint(0, 40), rng.randint(0, 30)
                label = rng.choice(["cat", "dog", "bird"])
                out.writerow([f"big_{index:07d}.png", 64, 48, label, x, y, x + 20, y + 15])
    for image in annoconv.preview(str(table), sample=100, on_error="skip").skipped[1:]:
        name = image.reason.split("'")[1]
        Image.new("RGB", (64, 48), (90, 90, 90)).save(folder / name)
    return table


def floor_photos(table: Path) -> None:
    from PIL import Image

    folder = table.parent
    with table.open() as handle:
        names = sorted({row["filename"] for row in csv.DictReader(handle)})
    for name in names:
        with Image.open(io.BytesIO((folder / name).read_bytes())) as image:
            image.draft("RGB", (SIZE, SIZE))
            small = image.convert("RGB")
            small.thumbnail((SIZE, SIZE))
            small.save(io.BytesIO(), "JPEG", quality=75)


def floor_big(table: Path) -> None:
    with table.open(newline="") as handle:
        for _row in csv.reader(handle):
            pass


def preview(table: Path, out: Path, sample: int) -> None:
    import annoconv

    annoconv.preview(str(table), str(out), sample=sample, image_size=SIZE)


JOBS = ("floor_photos", "annoconv_photos", "floor_big", "annoconv_big")


def run_job(name: str, folder: Path, photos: int, big: int) -> None:
    photo_table, big_table = folder / "photos" / "photos.csv", folder / f"big/big-{big}.csv"
    jobs = {
        "floor_photos": lambda: floor_photos(photo_table),
        "annoconv_photos": lambda: preview(photo_table, folder / "photos.html", photos),
        "floor_big": lambda: floor_big(big_table),
        "annoconv_big": lambda: preview(big_table, folder / "big.html", 100),
    }
    report_one(lambda: jobs[name]() and None)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--job", choices=JOBS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        run_job(args.job, args.folder, args.photos, args.big)
        return 0
    make_photos(args.folder / "photos", args.photos)
    make_big(args.folder / "big", args.big)
    base = [sys.executable, __file__, str(args.folder), "--photos", str(args.photos)]
    base += ["--big", str(args.big)]
    print(f"| job | best of {args.repeat}, s | CPU s | peak RSS MB |")
    print("|---|---:|---:|---:|")
    for job in JOBS:
        result = best_of([*base, "--job", job], args.repeat)
        print(
            f"| {job} | {result['seconds']:.2f} | {result['cpu_seconds']:.2f} "
            f"| {result['peak_rss_mb']:.0f} |"
        )
    page = args.folder / "photos.html"
    print(f"page of {args.photos} photos: {page.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
