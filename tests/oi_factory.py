"""Open Images-style files for tests, written the way Google's (and Figure Eight's) files are.

Rows are plain cell texts, so a test can write any value (``"0.500000"``, ``"abc"``, ``"-1"``)
and compute what a reader must return from the written file alone, with the `csv` module
(`expected_boxes`), independently of annoconv.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from factories import draw_image

BASE = ("ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax")
FLAGS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")
CLICKS = tuple(f"XClick{n}{axis}" for axis in "XY" for n in range(1, 5))
HEADERS = {8: BASE, 13: BASE + FLAGS, 21: BASE + FLAGS + CLICKS}
FLAG_FIELDS = ("occluded", "truncated", "group_of", "depiction", "inside")

CAMERA, PHONE, PERSON, CAR = "/m/0dv5r", "/m/050k8", "/m/01g317", "/m/0k4j"
LEMON, FIAT = "/m/0h8n5zk", "/m/0gxl3"
CLASSES = {
    CAMERA: "Camera",
    PHONE: "Mobile phone",
    PERSON: "Person",
    CAR: "Car",
    LEMON: "Lemon, lime and bitters",
    FIAT: 'Fiat 500 "topolino"',
}


@dataclass(frozen=True)
class Row:
    """One bbox CSV row as cell texts; flags and clicks are written only by wider headers."""

    image_id: str
    label: str = CAMERA
    xmin: str = "0.100000"
    xmax: str = "0.500000"
    ymin: str = "0.200000"
    ymax: str = "0.600000"
    source: str = "xclick"
    confidence: str = "1"
    flags: tuple[str, str, str, str, str] = ("0", "1", "0", "-1", "0")
    clicks: tuple[str, ...] = ("-1",) * 8

    def cells(self, header: Sequence[str]) -> list[str]:
        values = dict(zip(BASE, self._base(), strict=True))
        values.update(zip(FLAGS, self.flags, strict=True))
        values.update(zip(CLICKS, self.clicks, strict=True))
        return [values[name] for name in header]

    def _base(self) -> tuple[str, ...]:
        return (
            self.image_id,
            self.source,
            self.label,
            self.confidence,
            self.xmin,
            self.xmax,
            self.ymin,
            self.ymax,
        )


def csv_text(header: Sequence[str] | None, rows: Iterable[Sequence[str]]) -> str:
    """CSV with minimal quoting and ``\\n`` line ends, as Google's files."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def bbox_csv(rows: Iterable[Row], columns: int = 13, header: Sequence[str] | None = None) -> str:
    """A bbox CSV with the 8-, 13- or 21-column header (or `header`, in any order)."""
    names = tuple(header) if header is not None else HEADERS[columns]
    return csv_text(names, (row.cells(names) for row in rows))


def class_descriptions(
    classes: Mapping[str, str] = CLASSES, *, header: tuple[str, str] | None = None
) -> str:
    """``MID,DisplayName`` rows; no header (V4/V5) unless one is given (``LabelName,...``)."""
    return csv_text(header, classes.items())


def images_csv_figure_eight(urls: Mapping[str, str]) -> str:
    """The Figure Eight mirror's ``image_name,image_url`` file (not sorted by ImageID)."""
    rows = [(f"{image_id}.jpg", url) for image_id, url in urls.items()]
    return csv_text(("image_name", "image_url"), reversed(rows))


GOOGLE_IMAGES_HEADER = (
    "ImageID",
    "Subset",
    "OriginalURL",
    "OriginalLandingURL",
    "License",
    "AuthorProfileURL",
    "Author",
    "Title",
    "OriginalSize",
    "OriginalMD5",
    "Thumbnail300KURL",
    "Rotation",
)


def images_csv_google(urls: Mapping[str, str]) -> str:
    """Google's 12-column images file; Titles and Authors hold commas, quotes and newlines."""
    rows = []
    for n, (image_id, url) in enumerate(sorted(urls.items())):
        rows.append(
            (
                image_id,
                "train",
                url,
                f"https://www.flickr.com/photos/x/{n}",
                "https://creativecommons.org/licenses/by/2.0/",
                "https://www.flickr.com/people/x/",
                f'Smith, "Jo" {n}',
                f"Camera, lens\nand phone {n}",
                str(1000 + n),
                "a" * 22 + "==",
                f"https://c1.staticflickr.com/{n}_z.jpg" if n % 2 else "",
                "0.0" if n % 3 else "",
            )
        )
    return csv_text(GOOGLE_IMAGES_HEADER, rows)


def image_labels_csv(rows: Iterable[tuple[str, str, str, str]]) -> str:
    """``ImageID,Source,LabelName,Confidence`` rows (confidence 0 = verified absent)."""
    return csv_text(("ImageID", "Source", "LabelName", "Confidence"), rows)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def write_dataset(
    root: Path,
    rows: Sequence[Row],
    *,
    columns: int = 13,
    bbox_name: str = "train-annotations-bbox.csv",
    descriptions_name: str = "class-descriptions-boxable.csv",
    image_size: Callable[[int], tuple[int, int]] = lambda index: (64, 48),
) -> tuple[Path, Path, Path]:
    """An Open Images subset under `root`: the bbox CSV of `rows`, the class descriptions, and
    in `root/images` one drawn JPEG per image id (the n-th id, sorted, of `image_size(n)`)."""
    bbox, descriptions, images = root / bbox_name, root / descriptions_name, root / "images"
    write(bbox, bbox_csv(rows, columns=columns))
    write(descriptions, class_descriptions())
    for index, image_id in enumerate(sorted({row.image_id for row in rows})):
        draw_image(images / f"{image_id}.jpg", *image_size(index))
    return bbox, descriptions, images


def image_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def number(rng: random.Random, low: float = 0.0, high: float = 1.0) -> str:
    """A coordinate as the files print it: mostly 6 decimals, sometimes other spellings."""
    value = rng.uniform(low, high)
    style = rng.random()
    if style < 0.8:
        return f"{value:.6f}"
    if style < 0.9:
        return repr(value)
    return f"{value:.3g}"


def random_rows(
    rng: random.Random,
    images: int,
    *,
    labels: Sequence[str] = tuple(CLASSES),
    max_boxes: int = 6,
) -> list[Row]:
    """Rows of `images` distinct random ImageIDs, sorted by ImageID as Google's files are."""
    ids = sorted({image_id(rng) for _ in range(images)})
    rows = []
    for key in ids:
        for _ in range(rng.randint(1, max_boxes)):
            x0, y0 = sorted((number(rng), number(rng)), key=float)
            x1, y1 = number(rng, float(x0)), number(rng, float(y0))
            x1 = x1 if float(x1) >= float(x0) else x0
            y1 = y1 if float(y1) >= float(y0) else y0
            flags = tuple(rng.choice(("0", "1", "-1")) for _ in FLAGS)
            rows.append(
                Row(
                    key,
                    rng.choice(labels),
                    x0,
                    x1,
                    y0,
                    y1,
                    rng.choice(("xclick", "activemil", "freeform")),
                    "1",
                    flags,  # type: ignore[arg-type]
                    tuple(number(rng) for _ in CLICKS),
                )
            )
    return rows


def shuffled(rows: Sequence[Row], rng: random.Random) -> list[Row]:
    copy = list(rows)
    rng.shuffle(copy)
    return copy


def with_cells(row: Row, **cells: str) -> Row:
    return replace(row, **cells)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ExpectedBox:
    """A box as a reader must return it, computed from the file's text with `csv` only."""

    label: str
    xmin: float
    xmax: float
    ymin: float
    ymax: float
    flags: tuple[int, ...]
    confidence: float | None
    source: str | None


def expected_boxes(
    path: str, names: Mapping[str, str] | None = None, classes: Iterable[str] | None = None
) -> dict[str, list[ExpectedBox]]:
    """{ImageID: boxes in file order} of a bbox CSV, read with `csv.DictReader`, keeping only
    the boxes of `classes` (MIDs) if given; labels are display names when `names` are."""
    wanted = None if classes is None else set(classes)
    boxes: dict[str, list[ExpectedBox]] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for cells in csv.DictReader(handle):
            mid = cells["LabelName"]
            if wanted is not None and mid not in wanted:
                continue
            flags = tuple(int(cells.get(name) or "-1") for name in FLAGS)
            boxes.setdefault(cells["ImageID"], []).append(
                ExpectedBox(
                    label=names[mid] if names else mid,
                    xmin=float(cells["XMin"]),
                    xmax=float(cells["XMax"]),
                    ymin=float(cells["YMin"]),
                    ymax=float(cells["YMax"]),
                    flags=flags,
                    confidence=float(cells["Confidence"]) if cells["Confidence"] else None,
                    source=cells["Source"] or None,
                )
            )
    return boxes


def all_image_ids(path: str) -> set[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return {cells["ImageID"] for cells in csv.DictReader(handle)}
