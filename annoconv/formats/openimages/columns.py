"""The columns of Open Images CSVs, and the header checks of a bbox CSV."""

from __future__ import annotations

from annoconv.errors import AnnotationError
from annoconv.formats.openimages.csvio import read_header

IMAGE_ID = "ImageID"
LABEL = "LabelName"
#: The columns of every release's bbox CSV (V2/V3 train has only these), in the files' order.
BBOX_COLUMNS = (IMAGE_ID, "Source", LABEL, "Confidence", "XMin", "XMax", "YMin", "YMax")
#: Those the challenge files lack (``ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf``, the
#: 2018/2019 challenge's validation boxes): a box then has no source and no confidence.
OPTIONAL_COLUMNS = ("Source", "Confidence")
#: The columns a bbox CSV must have.
REQUIRED_COLUMNS = tuple(name for name in BBOX_COLUMNS if name not in OPTIONAL_COLUMNS)
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
    """The columns to read from a bbox CSV: the base ones it has (all 8 but in the challenge
    files) and the flags it has."""
    header = read_header(uri)
    check_unique(uri, header)
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise AnnotationError(uri, _not_bbox(header, missing), "line 1")
    return (
        *(name for name in BBOX_COLUMNS if name in header),
        *(name for name in FLAG_COLUMNS if name in header),
    )


def is_bbox(uri: str) -> bool:
    try:
        return set(read_header(uri)) >= set(REQUIRED_COLUMNS)
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
        f"and + XClick1X...XClick4Y (21), or the challenge's "
        f"{','.join(REQUIRED_COLUMNS)},IsGroupOf (7); the header has: {','.join(header)}"
    )


def check_unique(uri: str, header: list[str]) -> None:
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise AnnotationError(
            uri, f"column(s) given more than once: {', '.join(repeated)}", "line 1"
        )
