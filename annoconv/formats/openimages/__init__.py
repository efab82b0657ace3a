"""Open Images bounding-box CSVs (V2-V7), with class descriptions, image URLs and image labels.

A bbox CSV has one row per box, its columns found by name in the header: the 8 of V2/V3 train
(``ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax``), the 13 of V4/V5 (+ the flags
``IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside``), the 21 of V6 train (+ 8 ``XClick*``
columns, not read) or the 7 of the 2018/2019 challenge files
(``ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf``: no `Source`, no `Confidence`).
Coordinates are normalized, so records come in ``coords="normalized"`` space, with
``width``/``height`` unknown (no Open Images CSV holds pixel sizes). Flags are kept as written:
1, 0, or -1 (unknown, never read as true); a flag column the file lacks, or an empty cell, is -1.
`Source` becomes the box's `source` and `Confidence` its `confidence`. Each record is keyed by
its ImageID and names the image ``<ImageID>.jpg``.

Labels: with `class_descriptions` (``class-descriptions-boxable.csv``: ``MID,DisplayName``,
with or without a header row) labels are display names (``"Mobile phone"``) and `class_ids()`
maps them back to MIDs; without it labels are the MIDs themselves. MIDs sharing one display
name (the full 20k-class file has a few) are labelled ``"Name (MID)"`` so that every label
names one class. A box whose MID the descriptions lack makes its image a bad item (under
``on_error="skip"`` the image is skipped and reported): a label would otherwise silently be a
MID among names.

Selection: ``classes=["Camera", "Mobile phone"]`` (display names or MIDs) keeps only those
classes' boxes, testing every parsed batch at once with Arrow (`is_in` on LabelName). Images
left without boxes are dropped, unless `keep_empty` keeps them as images without objects.
Everything left out is counted in one `Dropped("not in --classes")` item per file, so that the
images read (every distinct ImageID) and boxes read (every row) add up to written + skipped.
Rows that are not selected are not checked.

Order and memory. Each file is read on its own (from a folder or glob: the CSVs with a bbox
header). Its records come out in ImageID order (byte order, Google's order), the boxes of an
image in file order; an ImageID in two files makes two records (Open Images' train, validation
and test files never share images). The file is parsed once, as a stream of Arrow batches from
pyarrow's streaming CSV reader. Nothing is yielded before the whole file has been parsed,
because only then is it known whether an ImageID comes back later in an unsorted file;
meanwhile the selected rows go to a store that keeps at most `memory_budget` bytes in memory
and spills the rest, sorted, to Arrow IPC files in a temporary folder, merged back in ImageID
order when records are made (an external merge sort). For a sorted file, the normal case,
every spill is already sorted and the merge only reads them in turn; with a class selection
the store holds just the selected rows, usually well within the budget, so nothing is spilled
at all. An unsorted file (detected as an ImageID smaller than the one before it) costs one
more pass over the rows parsed before that, to learn the ImageIDs without selected boxes.
Either way no record is yielded twice and memory stays bounded.

Bad input. A row whose cells cannot be a box (a coordinate that is empty, not a number or not
finite, XMin > XMax or YMin > YMax, a coordinate outside [0, 1] beyond
`schema.NORMALIZED_TOLERANCE`, a flag other than 1/0/-1, an empty ImageID or LabelName) makes
its image a `BadItem` naming the file, the row and the problem. Rows are numbered from 1 after
the header (pyarrow's count: blank lines are skipped, not counted). A file pyarrow cannot parse
(a row with the wrong number of fields, invalid UTF-8) is one `BadItem` naming the file and
the row, carrying the rows read before the error.

`images_csv` (``image_name,image_url``, or Google's ``ImageID,Subset,OriginalURL,...`` whose
`OriginalURL` is used) sets each record's `image_uri`; `image_labels`
(``ImageID,Source,LabelName,Confidence``, confidence 0 meaning verified absent) sets its
`image_labels`, restricted to the selected classes when there is a selection. Both are
streamed, after the bbox file's pass; with a selection (and no `keep_empty`) only the entries
of the images with selected boxes are kept, otherwise all of them (for the 1.7M URLs of the
full train set, a few hundred MB). The URL is used as is: writers that need the pixels fetch
the image from it.
"""

from __future__ import annotations

# The package's modules, each one job: `reader` (OpenImagesReader), `records` (the record path
# for one file), `columnar` (the columnar path), `checks` (row checks as array operations),
# `order` (ImageID order: the external merge sort), `csvio` (reading the CSVs), `columns`
# (column names, header checks), `classes` (class descriptions, the selection), `sidetables`
# (image URLs, image-level labels), `options` (what a reader was asked for).
from annoconv.formats.base import Format
from annoconv.formats.openimages.classes import read_class_descriptions
from annoconv.formats.openimages.classes import resolve_classes as resolve_classes
from annoconv.formats.openimages.columns import (
    BBOX_COLUMNS,
    CLICK_COLUMNS,
    FLAG_COLUMNS,
    IMAGE_ID,
    LABEL,
)
from annoconv.formats.openimages.columns import COORDINATES as COORDINATES
from annoconv.formats.openimages.columns import LABEL_COLUMNS as LABEL_COLUMNS
from annoconv.formats.openimages.csvio import read_header
from annoconv.formats.openimages.options import BATCH_ROWS as BATCH_ROWS
from annoconv.formats.openimages.options import BLOCK_SIZE as BLOCK_SIZE
from annoconv.formats.openimages.options import MEMORY_BUDGET as MEMORY_BUDGET
from annoconv.formats.openimages.options import OpenImagesReadOptions
from annoconv.formats.openimages.order import MERGE_FAN_IN as MERGE_FAN_IN
from annoconv.formats.openimages.reader import OpenImagesReader
from annoconv.formats.openimages.records import DROPPED_REASON as DROPPED_REASON
from annoconv.io.fs import expand_source

__all__ = [
    "BBOX_COLUMNS",
    "CLICK_COLUMNS",
    "FLAG_COLUMNS",
    "FORMAT",
    "OpenImagesReader",
    "read_class_descriptions",
    "sniff",
]


def sniff(path: str) -> str:
    """``"openimages"`` when the (first) CSV's header has Open Images' ImageID and LabelName
    columns, else ``"csv"`` (the tutorial CSV, which then reports its own problems)."""
    try:
        files = expand_source(path, (".csv",))[0]
        header = read_header(files[0]) if files else []
    except Exception:  # a guess only: the chosen reader reports the real problem when it reads
        return "csv"
    return "openimages" if IMAGE_ID in header and LABEL in header else "csv"


FORMAT = Format(
    "openimages",
    "Open Images bbox CSV (V2-V7 and challenge, 7/8/13/21 columns) with class descriptions",
    (".csv",),
    reader=OpenImagesReader,
    sniff=sniff,
    read_options=OpenImagesReadOptions,
)
