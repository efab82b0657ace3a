"""COCO detection JSON, read and written streaming.

A COCO file holds ``images`` (``id`` int or string, ``file_name`` possibly with folders or
Windows separators, ``width``, ``height``), ``annotations`` (``image_id``, ``category_id``,
``bbox`` = [x, y, width, height] in pixels from the top-left corner, ``iscrowd``, ``area``,
``segmentation`` as polygons or RLE) and ``categories`` (``id``, not contiguous: COCO's 80
classes use 1-90; ``name``; ``supercategory``). Roboflow writes one
``_annotations.coco.json`` per split folder, whose category 0 is the workspace (the
supercategory of the others, labelling nothing). A result file is a bare list of
``{image_id, category_id, bbox, score}``.

Reading. Records come in ``images`` order, one per image (an image without annotations is a
negative), keyed by its file name (see `CocoReader`). A box is ``bbox`` as written
(``xmax = x + width``), in pixels; ``iscrowd`` is the box's `group_of` (missing: unknown);
``score`` its confidence. Segmentations are not kept: a box is derived from the polygons
only when ``bbox`` is missing. An annotation whose ``image_id`` is not among the images is
an error of its own; one whose ``category_id`` is not among the categories, whose box has no
positive width and height, or that is malformed, makes its image's record an error naming
the annotation (``instances_val.json: annotations[1523] (id 91234): bbox width is -3``), as
a malformed image entry does; under ``on_error="skip"`` the image is skipped and reported.
The file is parsed incrementally and the annotations grouped in bounded memory (`stream`).

Writing. One JSON per destination (a split's, ``instances_<split>.json`` in an output
folder): ``images`` with ids 1, 2, ... in write order, ``annotations`` with ids 1, 2, ...,
``bbox`` in pixels written so that x + width gives back the source's xmax exactly,
``area`` = width x height, ``iscrowd`` from `group_of` (unknown: 0), ``score`` when the box
has a confidence, ``segmentation`` empty; ``categories`` from the run's label map (ids
kept), with supercategories from `supercategories_from`. See `CocoWriter`.
"""

from __future__ import annotations

from annoconv.formats.base import Format
from annoconv.formats.coco.detect import is_coco
from annoconv.formats.coco.options import CocoReadOptions, CocoWriteOptions
from annoconv.formats.coco.reader import JSON_SUFFIXES, CocoReader
from annoconv.formats.coco.writer import CocoWriter
from annoconv.io.fs import is_dir, list_files

__all__ = ["FORMAT", "CocoReader", "CocoWriter", "is_coco", "sniff"]


def holds_coco(path: str) -> bool:
    """Whether `path` is a COCO file, or a folder holding one, as the reader takes them (see
    `Format.recognizes`: the reader reads a file to its end before its first image)."""
    if not is_dir(path):
        return is_coco(path)
    return any(is_coco(file) for file in list_files(path, JSON_SUFFIXES))


def sniff(path: str) -> str:
    """``"coco"``: the only format of ``.json`` files (the COCO reader says what is wrong)."""
    return "coco"


FORMAT = Format(
    "coco",
    "COCO detection JSON (images, annotations, categories; result files), streamed",
    (".json",),
    reader=CocoReader,
    writer=CocoWriter,
    sniff=sniff,
    read_options=CocoReadOptions,
    write_options=CocoWriteOptions,
    reads_folders=True,
    recognizes=holds_coco,
)
