"""The columns of Open Images CSVs, and the header checks of a bbox CSV."""

from __future__ import annotations

from annoconv.errors import AnnotationError
from annoconv.formats.openimages.csvio import read_header

IMAGE_ID = "ImageID"
LABEL = "LabelName"
#: The columns every bbox CSV has (V2/V3 train has only these), in the files' order.
BBOX_COLUMNS = (IMAGE_ID, "Source", LABEL, "Confidence", "XMin", "XMax", "YMin", "YMax")
#: The flag columns of V2/V3 validation/test and V4 on, with the ObjectAnnotation field of each.
FLAG_COLUMNS = {
    "IsOccluded": "occluded",
    "IsTruncated": "truncated",
    "IsGroupOf": "group_of",
    "IsDepiction": "depiction",
    "IsInside": "inside",
}
#: The extreme-click columns of V6 train: recognized, not read.
CLICK_COLUMNS = tuple(f"XClick{n}{axis}" for axis in "XY" for n in range(1, 5))
COORDINATES = ("XMin", "XMax", "YMin", "YMax")
LABEL_COLUMNS = (IMAGE_ID, "Source", LABEL, "Confidence")


def bbox_columns(uri: str) -> tuple[str, ...]:
    """The columns to read from a bbox CSV: the 8 base ones and the flags it has."""
    header = read_header(uri)
    check_unique(uri, header)
    missing = [name for name in BBOX_COLUMNS if name not in header]
    if missing:
        raise AnnotationError(uri, _not_bbox(header, missing), "line 1")
    return (*BBOX_COLUMNS, *(name for name in FLAG_COLUMNS if name in header))


def is_bbox(uri: str) -> bool:
    try:
        return set(read_header(uri)) >= set(BBOX_COLUMNS)
    except AnnotationError:
        return False


def _not_bbox(header: list[str], missing: list[str]) -> str:
    if not header:
        return f"empty file: expected the header {','.join(BBOX_COLUMNS)},..."
    if set(header) >= set(LABEL_COLUMNS) and not set(header) & set(COORDINATES):
        return (
            f"this is an image-level labels file ({','.join(header)}), not a bbox CSV: "
            "pass it as image_labels (--image-labels) next to a bbox CSV"
        )
    return (
        f"not an Open Images bbox CSV: missing column(s) {', '.join(missing)}; expected "
        f"{','.join(BBOX_COLUMNS)} (8 columns), + {','.join(FLAG_COLUMNS)} (13) "
        f"and + XClick1X...XClick4Y (21); the header has: {','.join(header)}"
    )


def check_unique(uri: str, header: list[str]) -> None:
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise AnnotationError(
            uri, f"column(s) given more than once: {', '.join(repeated)}", "line 1"
        )
