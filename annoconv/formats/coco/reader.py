"""`CocoReader`: COCO detection JSON (and result files) as image records, file by file.

See the package docstring for what is read and how; `stream` does the parsing and grouping.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from annoconv.errors import AnnotationError, FormatError
from annoconv.formats.base import BadItem, BatchResult, Reader, ReadResult, Source
from annoconv.formats.coco.stream import (
    MEMORY_BUDGET,
    Category,
    CocoScan,
    Images,
    scan,
)
from annoconv.io.fs import GLOB_CHARS, dirname, exists, expand_source, join, relative_posix
from annoconv.io.images import WINDOWS_ABSOLUTE
from annoconv.labelmap import LabelMap
from annoconv.schema import (
    PIXEL,
    PIXEL_TOLERANCE,
    BoxOutsideError,
    ImageRecord,
    ObjectAnnotation,
    make_record,
    trusted_object,
    trusted_record,
)

JSON_SUFFIXES = (".json",)
ROBOFLOW_NAME = "_annotations.coco.json"

# A grouped annotation row: (category_id, x, y, w, h, iscrowd, score, position, ann_id).
Row = tuple[int, float, float, float, float, int, "float | None", int, "str | None"]

#: How the report counts annotations whose segmentation was not carried over (their box was).
SEGMENTATIONS_LEFT = "segmentations not converted (polygons or RLE; their boxes were)"
#: A file_name that is a URL (``http://``, ``s3://``...), not a path under the image root.
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class CocoReader(Reader):
    """Reads COCO detection JSON: one file, a folder of them (Roboflow's split folders, each
    with its ``_annotations.coco.json``), a glob or a list; and COCO result files.

    Records come in the order of each file's ``images``, keyed by the image's file name
    (with the JSON's folder relative to the source folder in front, so that split folders
    stay apart); `filename` is the name as the file gives it, relative to the JSON's folder
    (where Roboflow keeps the images; ``--images`` names another folder, as for COCO's own
    ``train2017/``). `ground_truth` is the COCO file a result file's image and category ids
    refer to; without it, a result file's images are named by their ids and its classes by
    their category ids. `memory_budget` bounds the annotation rows held in memory (the
    rest is spilled to `tmp_dir`).
    """

    def __init__(
        self,
        source: Source,
        *,
        images: str | None = None,
        ground_truth: str | None = None,
        memory_budget: int = MEMORY_BUDGET,
        tmp_dir: str | None = None,
    ) -> None:
        super().__init__(source, images=images)
        self.ground_truth = ground_truth
        self.memory_budget = memory_budget
        self.tmp_dir = tmp_dir
        self._files: tuple[list[str], str] | None = None
        # The scans a first pass made, kept for the next pass (then dropped).
        self._scans: dict[str, CocoScan] = {}
        self._truth: CocoScan | None = None
        #: Annotations with a segmentation, by file read (see `notes`).
        self._segmented: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_scans"], state["_truth"] = {}, None  # scans hold temporary files: not sent
        return state

    # --- the Reader protocol ------------------------------------------------------------

    def __iter__(self) -> Iterator[ReadResult]:
        files, root = self.files()
        for uri in files:
            found = self._take_scan(uri)
            try:
                prefix = self._key_prefix(uri, root)
                folder = self._images_folder(found)
                yield from _FileRecords(found, prefix, self._truth, folder).items()
                self._segmented[uri] = found.rows.segmented
            finally:
                found.rows.close()

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        files, root = self.files()
        for uri in files:
            found = self._scan(uri, keep=True)
            yield from _FileRecords(found, self._key_prefix(uri, root), self._truth).labels()

    def batches(self) -> Iterator[BatchResult]:
        """The columnar path: each file's images as nested Arrow batches built from the
        grouped rows with array operations; the images that may hold a problem (a bad entry
        or annotation, an unknown category, a box outside its image) are read the record
        way, for their exact message, in their place."""
        files, root = self.files()
        for uri in files:
            found = self._take_scan(uri)
            try:
                prefix = self._key_prefix(uri, root)
                folder = self._images_folder(found)
                yield from _FileRecords(found, prefix, self._truth, folder).batches()
                self._segmented[uri] = found.rows.segmented
            finally:
                found.rows.close()

    def adjustments(self) -> Counter[str]:
        count = sum(self._segmented.values())
        return Counter({SEGMENTATIONS_LEFT: count} if count else {})

    def count_hint(self) -> int | None:
        files, _root = self.files()
        if not all(uri in self._scans for uri in files):
            return None
        return sum(_image_count(self._scans[uri], self._truth) for uri in files)

    def declared_label_map(self) -> LabelMap | None:
        """The classes the files declare in ``categories``, with their ids (see
        `declared_categories`) and their supercategories (a `CategoryMap`, which the COCO
        writer writes them from); None when they declare none (a result file without its
        ground truth)."""
        categories = self.categories()
        if not categories:
            return None
        return CategoryMap(declared_categories(categories))

    def categories(self) -> list[Category]:
        """Every file's categories (the first of each id), as the files list them."""
        files, _root = self.files()
        seen: dict[int, Category] = {}
        for uri in files:
            found = self._scan(uri, keep=True)
            source = self._truth if found.is_results and self._truth is not None else found
            for category in source.categories:
                seen.setdefault(category.id, category)
        return list(seen.values())

    # --- files and scans ------------------------------------------------------------------

    def files(self) -> tuple[list[str], str]:
        if self._files is None:
            files, root = expand_source(self.source, JSON_SUFFIXES)
            if isinstance(self.source, str) and (
                any(c in self.source for c in GLOB_CHARS)
                or len(files) != 1
                or files[0] != self.source
            ):
                files = [uri for uri in files if uri.lower().endswith(JSON_SUFFIXES)]
                coco = [uri for uri in files if _looks_like_coco(uri)]
                if files and not coco:
                    listed = ", ".join(posixpath.basename(uri) for uri in files[:3])
                    raise FormatError(
                        f"{self.source}: no COCO JSON in it (images, annotations, categories); "
                        f"{listed}{' ...' if len(files) > 3 else ''} is something else"
                    )
                files = coco
            self._files = (files, root)
        return self._files

    def _key_prefix(self, uri: str, root: str) -> str:
        files, _ = self.files()
        if len(files) == 1:
            return ""
        folder = posixpath.dirname(relative_posix(uri, root))
        return "" if folder in ("", ".") else folder

    def _scan(self, uri: str, *, keep: bool) -> CocoScan:
        found = self._scans.get(uri)
        if found is None:
            found = scan(uri, budget=self.memory_budget, tmp_dir=self.tmp_dir)
            if found.is_results and self.ground_truth is not None and self._truth is None:
                self._truth = scan(self.ground_truth, annotations=False, tmp_dir=self.tmp_dir)
                if self._truth.failure is not None:
                    raise self._truth.failure
            if keep:
                self._scans[uri] = found
        return found

    def _images_folder(self, found: CocoScan) -> str | None:
        """Where the images of a file in an ``annotations/`` folder are, when not beside it
        and no images folder is given: see `images_folder_of`."""
        if self.images is not None or found.is_results or found.failure is not None:
            return None
        return images_folder_of(found.uri, _first_relative_name(found.images))

    def _take_scan(self, uri: str) -> CocoScan:
        found = self._scans.pop(uri, None)
        return found if found is not None else self._scan(uri, keep=False)


class CategoryMap(LabelMap):
    """The label map a COCO source declares, carrying each category's supercategory (by
    name) to a COCO writer: COCO -> COCO keeps them. Any other writer sees a label map."""

    __slots__ = ("supercategories",)

    def __init__(self, categories: Sequence[Category]) -> None:
        from annoconv.labelmap import LabelMapItem

        super().__init__(LabelMapItem(c.name, c.id) for c in categories)
        self.supercategories = {c.name: c.supercategory for c in categories if c.supercategory}


def images_folder_of(uri: str, first_image: str | None) -> str | None:
    """The folder of a COCO file's images, for a file kept in an ``annotations/`` folder
    whose first image is not beside it: ``images/<split>/`` (CVAT's newer "COCO 1.0"
    exports: ``images/default/``), ``images/`` (CVAT's older ones), ``<split>/`` (COCO's own
    ``annotations/instances_val2017.json`` and ``val2017/``), or the folder holding
    ``annotations/``, whichever holds the first image (`first_image`, its file name); None
    when the first image is beside the file, or in none of them (the image lookup then
    names where it looked and asks for ``--images``)."""
    folder = dirname(uri)
    if first_image is None or posixpath.basename(folder.replace("\\", "/")) != "annotations":
        return None
    parts = first_image.split("/")
    if exists(join(folder, *parts)):
        return None
    parent = dirname(folder) or "."
    split = _split_of(uri)
    candidates = [join(parent, "images", split)] if split else []
    candidates.append(join(parent, "images"))
    if split:
        candidates.append(join(parent, split))
    candidates.append(parent)
    return next((c for c in candidates if exists(join(c, *parts))), None)


def _first_relative_name(images: Images) -> str | None:
    """The first image's file name relative to the images folder; None when it is absolute
    or escapes it (its recorded path is then looked at instead)."""
    for _id, raw, _width, _height, problem in images.rows():
        if problem or not raw:
            continue
        filename, path = _relative_name(raw)
        return filename if _is_relative(filename, path) else None
    return None


def _is_relative(filename: str, path: str | None) -> bool:
    """Whether an image's file_name is relative to the images folder (Windows separators
    or not): not absolute, not escaping it (then `path` keeps it as written)."""
    return path is None or path.replace("\\", "/").strip("/") == filename


def _looks_like_coco(uri: str) -> bool:
    from annoconv.formats.coco.detect import is_coco

    return is_coco(uri)


def declared_categories(categories: Sequence[Category]) -> list[Category]:
    """The classes among `categories`, ids ready for a label map: without Roboflow's
    workspace category (one whose name is the supercategory of the others, which it never
    labels), and with every id moved up by one when an id 0 remains (files numbering their
    classes from 0, as supervision writes them), since a label map's ids start at 1. The
    first category of each name is kept."""
    supers = {c.supercategory for c in categories if c.supercategory}
    kept = [c for c in categories if not (c.name in supers and _is_workspace(c, categories))]
    shift = 1 if any(c.id <= 0 for c in kept) and min(c.id for c in kept) == 0 else 0
    names: dict[str, Category] = {}
    for category in kept:
        names.setdefault(
            category.name, Category(category.id + shift, category.name, category.supercategory)
        )
    return sorted(names.values(), key=lambda c: c.id)


def _is_workspace(category: Category, categories: Sequence[Category]) -> bool:
    others = [c for c in categories if c is not category]
    return bool(others) and all(c.supercategory == category.name for c in others)


def _image_count(found: CocoScan, truth: CocoScan | None) -> int:
    if found.is_results:
        return len(truth.images) if truth is not None else 0
    return len(found.images)


@dataclass
class _ImageFacts:
    """What one record is built from."""

    index: int
    key: str
    filename: str
    path: str | None
    width: int | None
    height: int | None
    problem: AnnotationError | None


@dataclass
class _Opened:
    """A scanned file opened for reading its images (`_FileRecords._open`)."""

    images: Images
    bad_by_image: dict[int, tuple[AnnotationError, int]]
    orphans: list[BadItem]
    unknown: list[BadItem]
    grouped: Iterator[pa.RecordBatch]


class _FileRecords:
    """The records of one scanned file, in the order of its images."""

    def __init__(
        self, found: CocoScan, prefix: str, truth: CocoScan | None, images: str | None = None
    ) -> None:
        self.found = found
        # The folder the images were found in, when not beside the file: each record of a
        # relative file_name then names its image there (`image_uri`).
        self.images = images
        self.uri = found.uri
        self.prefix = prefix
        self.truth = truth if found.is_results else None
        source = self.truth if self.truth is not None else found
        self.categories = {c.id: c.name for c in source.categories}
        self.split = _split_of(found.uri)

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        """(key, labels) of every image `items()` would make a record of, without building
        the records (boxes reaching outside their image are not looked at)."""
        if self.found.failure is not None:
            return
        opened = self._open()
        grouped = _Grouped(opened.grouped)
        names = self.categories
        for facts in self._facts(opened.images):
            rows = grouped.rows_of(facts.index)
            if facts.problem is not None or facts.index in opened.bad_by_image:
                continue
            labels = [names.get(row[0]) for row in rows] if names else [str(r[0]) for r in rows]
            if None not in labels:
                yield facts.key, labels  # type: ignore[misc]

    def items(self) -> Iterator[ReadResult]:
        if self.found.failure is not None:
            yield BadItem(self.found.failure, images=0)
            return
        opened = self._open()
        yield from opened.orphans
        grouped = _Grouped(opened.grouped)
        for facts in self._facts(opened.images):
            rows = grouped.rows_of(facts.index)
            yield self._item(facts, rows, opened.bad_by_image.get(facts.index))
        yield from opened.unknown

    def batches(self) -> Iterator[BatchResult]:
        if self.found.failure is not None:
            yield BadItem(self.found.failure, images=0)
            return
        opened = self._open()
        yield from opened.orphans
        images, bad_by_image = opened.images, opened.bad_by_image
        facts_of = self._facts(images)
        chunks = _ImageChunks(opened.grouped)
        for start in range(0, len(images), _CHUNK_IMAGES):
            stop = min(start + _CHUNK_IMAGES, len(images))
            facts = [next(facts_of) for _ in range(start, stop)]
            suspect = {f.index for f in facts if f.problem is not None} | set(bad_by_image)
            rows, offsets = chunks.take(start, stop)
            batch, flagged = self._chunk_batch(facts, rows, offsets, suspect)
            at = 0
            for index in flagged:
                if index > at:
                    yield batch.slice(at, index - at)
                fact = facts[index]
                yield self._item(fact, _rows_of(rows, offsets, index), bad_by_image.get(fact.index))
                at = index + 1
            if at < batch.num_rows:
                yield batch.slice(at) if at else batch
        yield from opened.unknown

    def _open(self) -> _Opened:
        """The file's images, its bad annotations (by image, and those of no image), and its
        rows grouped by image, read as they are asked for; rows of an unknown image become
        BadItems in `unknown` as the grouping meets them."""
        images = self._images()
        bad_by_image, orphans = self._bad_annotations(images)
        unknown: list[BadItem] = []
        results = self.found.is_results
        grouped = self.found.rows.grouped(
            images.ids(),
            lambda rows: unknown.extend(_unknown_image_items(self.uri, rows, results)),
        )
        return _Opened(images, bad_by_image, orphans, unknown, grouped)

    def _chunk_batch(
        self,
        facts: list[_ImageFacts],
        rows: pa.Table,
        offsets: pa.Array,
        suspect: set[int],
    ) -> tuple[pa.RecordBatch, list[int]]:
        """The nested batch of a run of images, and the positions in it of the images to
        read the record way instead."""
        from annoconv.columnar import assemble

        count = len(facts)
        widths = pa.array([f.width for f in facts], pa.int32())
        heights = pa.array([f.height for f in facts], pa.int32())
        parents = pc.list_parent_indices(
            pa.ListArray.from_arrays(offsets, pa.nulls(rows.num_rows, pa.int8()))
        )
        x, y = rows.column("x").combine_chunks(), rows.column("y").combine_chunks()
        xmax = pc.add(x, rows.column("w").combine_chunks())
        ymax = pc.add(y, rows.column("h").combine_chunks())
        category = rows.column("category_id").combine_chunks()
        if self.categories:
            known = pa.array(list(self.categories), pa.int64())
            names = pa.array(list(self.categories.values()), pa.string())
            labels = pc.take(names, pc.index_in(category, value_set=known))
        else:
            labels = pc.cast(category, pa.string())
        tolerance = 1e-6
        box_width = pc.take(widths, parents).cast(pa.float64())
        box_height = pc.take(heights, parents).cast(pa.float64())
        outside = pc.or_(
            pc.or_(pc.less(x, -tolerance), pc.less(y, -tolerance)),
            pc.or_(
                pc.fill_null(pc.greater(xmax, pc.add(box_width, tolerance)), False),
                pc.fill_null(pc.greater(ymax, pc.add(box_height, tolerance)), False),
            ),
        )
        bad_boxes = pc.or_(outside, pc.is_null(labels))
        flagged = set(pc.unique(pc.filter(parents, bad_boxes)).to_pylist())
        flagged |= {i for i, f in enumerate(facts) if f.index in suspect}
        unknown_flag = pa.array([-1] * rows.num_rows, pa.int8())
        boxes = {
            "class": pc.fill_null(labels, ""),
            "xmin": x,
            "ymin": y,
            "xmax": xmax,
            "ymax": ymax,
            "difficult": unknown_flag,
            "truncated": unknown_flag,
            "occluded": unknown_flag,
            "group_of": rows.column("iscrowd").combine_chunks(),
            "depiction": unknown_flag,
            "inside": unknown_flag,
            "pose": pa.nulls(rows.num_rows, pa.string()),
            "confidence": rows.column("score").combine_chunks(),
            "box_source": pa.nulls(rows.num_rows, pa.string()),
        }
        image_columns = {
            "key": pa.array([f.key for f in facts], pa.string()),
            "filename": pa.array([f.filename for f in facts], pa.string()),
            "width": widths,
            "height": heights,
            "depth": pa.nulls(count, pa.int32()),
            "coords": pa.array(["pixel"] * count, pa.string()),
            "image_labels": _empty_lists(count),
            "split": pa.array([self.split] * count, pa.string()),
            "path": pa.array([f.path for f in facts], pa.string()),
            "image_uri": pa.array([self._image_uri(f) for f in facts], pa.string()),
            "sha256": pa.nulls(count, pa.string()),
            "verified": pa.nulls(count, pa.bool_()),
            "source": pa.array([self.uri] * count, pa.string()),
        }
        return assemble(image_columns, boxes, offsets), sorted(flagged)

    def _images(self) -> Images:
        if self.found.is_results:
            if self.truth is not None:
                return self.truth.images
            return _images_of_results(self.found)
        return self.found.images

    def _bad_annotations(
        self, images: Images
    ) -> tuple[dict[int, tuple[AnnotationError, int]], list[BadItem]]:
        """Bad annotations by image position: (first error, how many); those of no known
        image as BadItems of their own."""
        bad_ids = pa.array([bad.image_id for bad in self.found.bad], pa.string())
        positions = pc.index_in(bad_ids, value_set=images.ids()).to_pylist()
        by_image: dict[int, tuple[AnnotationError, int]] = {}
        orphans = []
        for bad, index in zip(self.found.bad, positions, strict=True):
            if index is None:
                orphans.append(BadItem(bad.error, images=0, boxes=1))
                continue
            first, count = by_image.get(index, (bad.error, 0))
            by_image[index] = (first, count + 1)
        return by_image, orphans

    def _facts(self, images: Images) -> Iterator[_ImageFacts]:
        # Repeated ids are found by Arrow; only they are remembered (with their first image).
        ids = images.ids()
        counts = pc.value_counts(ids)
        repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        seen_ids: dict[str, int] = {}
        repeated_ids = set(repeated.to_pylist())
        seen_keys: dict[str, int] = {}
        rows = images.rows()
        for index, (image_id, raw, width, height, problem_text) in enumerate(rows):
            raw_name = raw or image_id
            filename, path = _relative_name(raw_name)
            key = posixpath.join(self.prefix, filename) if self.prefix else filename
            where = f"images[{index}] (id {image_id})"
            problem = (
                AnnotationError(self.uri, problem_text.split(": ", 1)[1])
                if (problem_text)
                else None
            )
            if problem is not None:
                problem = AnnotationError(self.uri, problem.message, where)
            elif image_id in seen_ids:
                problem = AnnotationError(
                    self.uri, f"id {image_id} is also the id of images[{seen_ids[image_id]}]", where
                )
            elif key in seen_keys:
                problem = AnnotationError(
                    self.uri, f"file_name {raw_name!r} is also images[{seen_keys[key]}]'s", where
                )
            if image_id in repeated_ids:
                seen_ids.setdefault(image_id, index)
            seen_keys.setdefault(key, index)
            yield _ImageFacts(index, key, filename, path, width, height, problem)

    def _item(
        self,
        facts: _ImageFacts,
        rows: list[Row],
        bad: tuple[AnnotationError, int] | None,
    ) -> ReadResult:
        boxes = len(rows) + (bad[1] if bad else 0)
        if facts.problem is not None:
            return BadItem(facts.problem, boxes=boxes)
        if bad is not None:
            return BadItem(bad[0], boxes=boxes)
        try:
            objects = [self._object(row) for row in rows]
            return self._record(facts, objects, rows)
        except AnnotationError as error:
            return BadItem(error, boxes=boxes)

    def _object(self, row: Row) -> ObjectAnnotation:
        category, x, y, w, h, crowd, score, position, ann_id = row
        label = self.categories.get(category) if self.categories else str(category)
        if label is None:
            section = "" if self.found.is_results else "annotations"
            where = f"{section}[{position}]" + (f" (id {ann_id})" if ann_id is not None else "")
            raise AnnotationError(
                self.uri, f"category_id {category} is not one of the categories", where
            )
        return trusted_object(
            label=label,
            xmin=x,
            ymin=y,
            xmax=x + w,
            ymax=y + h,
            group_of=crowd,
            confidence=score,
        )

    def _image_uri(self, facts: _ImageFacts) -> str | None:
        return _image_uri_in(self.images, facts)

    def _record(
        self, facts: _ImageFacts, objects: list[ObjectAnnotation], rows: list[Row]
    ) -> ImageRecord:
        fields: dict[str, Any] = {
            "key": facts.key,
            "filename": facts.filename,
            "width": facts.width,
            "height": facts.height,
            "coords": PIXEL,
            "objects": objects,
            "split": self.split,
            "path": facts.path,
            "image_uri": self._image_uri(facts),
        }
        if _inside(objects, facts.width, facts.height):
            return trusted_record(source=self.uri, **fields)
        try:
            return make_record(self.uri, None, **fields)
        except BoxOutsideError as error:
            raise _box_outside(self.uri, error, objects, rows, facts) from None


def _image_uri_in(folder: str | None, facts: _ImageFacts) -> str | None:
    if folder is None or not _is_relative(facts.filename, facts.path):
        return None
    return join(folder, *facts.filename.split("/"))


def _inside(objects: list[ObjectAnnotation], width: int | None, height: int | None) -> bool:
    low = -PIXEL_TOLERANCE
    if width is None or height is None:
        return all(obj.xmin >= low and obj.ymin >= low for obj in objects)
    x_limit, y_limit = width + PIXEL_TOLERANCE, height + PIXEL_TOLERANCE
    return all(
        obj.xmin >= low and obj.ymin >= low and obj.xmax <= x_limit and obj.ymax <= y_limit
        for obj in objects
    )


def _box_outside(
    uri: str,
    error: BoxOutsideError,
    objects: list[ObjectAnnotation],
    rows: list[Row],
    facts: _ImageFacts,
) -> BoxOutsideError:
    """The error naming the annotation (not the record's object number)."""
    from annoconv.schema import outside_problem

    for obj, row in zip(objects, rows, strict=True):
        problem = outside_problem(obj, PIXEL, facts.width, facts.height)
        if problem:
            position, ann_id = row[7], row[8]
            where = f"annotations[{position}]" + (f" (id {ann_id})" if ann_id is not None else "")
            return BoxOutsideError(uri, f"{obj.label!r}: {problem}", where, record=error.record)
    return error


class _Grouped:
    """Grouped rows handed out image by image, in image order."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self._pending: list[tuple[int, Row]] = []
        self._at = 0
        self._done = False

    def rows_of(self, index: int) -> list[Row]:
        rows: list[Row] = []
        while True:
            while self._at < len(self._pending):
                image, row = self._pending[self._at]
                if image > index:
                    return rows
                self._at += 1
                if image == index:
                    rows.append(row)
            if self._done or not self._refill():
                return rows

    def _refill(self) -> bool:
        batch = next(self._batches, None)
        if batch is None:
            self._done = True
            return False
        columns = [
            batch.column(name).to_pylist()
            for name in ("image", "category_id", "x", "y", "w", "h", "iscrowd", "score")
        ]
        columns += [batch.column("position").to_pylist(), batch.column("ann_id").to_pylist()]
        images = columns[0]
        self._pending = list(zip(images, zip(*columns[1:], strict=True), strict=True))
        self._at = 0
        return True


#: Images per batch of the columnar path.
_CHUNK_IMAGES = 8192


class _ImageChunks:
    """The grouped rows cut at image boundaries: `take(start, stop)` gives the rows of
    images start..stop-1 and each image's offset among them."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self._rows: pa.Table | None = None
        self._done = False

    def take(self, start: int, stop: int) -> tuple[pa.Table, pa.Array]:
        while not self._done and (self._rows is None or self._last_image() < stop):
            batch = next(self._batches, None)
            if batch is None:
                self._done = True
                break
            table = pa.Table.from_batches([batch])
            self._rows = table if self._rows is None else pa.concat_tables([self._rows, table])
        rows = self._rows if self._rows is not None else _EMPTY_ROWS()
        images = rows.column("image").combine_chunks()
        cut = pc.search_sorted(images, pa.array(range(start, stop + 1), pa.int64())).cast(
            pa.int32()
        )
        end = cut[len(cut) - 1].as_py()
        taken, self._rows = rows.slice(0, end), rows.slice(end)
        return taken, cut

    def _last_image(self) -> int:
        assert self._rows is not None
        images = self._rows.column("image")
        return int(images[len(images) - 1].as_py()) if len(images) else -1


def _EMPTY_ROWS() -> pa.Table:
    from annoconv.formats.coco.stream import GROUPED_SCHEMA

    return GROUPED_SCHEMA.empty_table()


def _empty_lists(count: int) -> pa.Array:
    from annoconv.schema import arrow_image_labels_type

    kind = arrow_image_labels_type()
    values = pa.array([], kind.value_type)
    return pa.ListArray.from_arrays(pa.array([0] * (count + 1), pa.int32()), values, type=kind)


def _rows_of(rows: pa.Table, offsets: pa.Array, index: int) -> list[Row]:
    start, stop = offsets[index].as_py(), offsets[index + 1].as_py()
    part = rows.slice(start, stop - start)
    names = ("category_id", "x", "y", "w", "h", "iscrowd", "score", "position", "ann_id")
    columns = [part.column(name).to_pylist() for name in names]
    return list(zip(*columns, strict=True))


def _unknown_image_items(uri: str, rows: pa.RecordBatch, results: bool) -> list[BadItem]:
    section = "" if results else "annotations"
    items = []
    for image_id, position, ann_id in zip(
        rows.column("image_id").to_pylist(),
        rows.column("position").to_pylist(),
        rows.column("ann_id").to_pylist(),
        strict=True,
    ):
        where = f"{section}[{position}]" + (f" (id {ann_id})" if ann_id is not None else "")
        error = AnnotationError(uri, f"image_id {image_id} is not one of the images", where)
        items.append(BadItem(error, images=0, boxes=1))
    return items


def _images_of_results(found: CocoScan) -> Images:
    """The images of a result file without its ground truth: each image id, first seen
    first, named by its id, size unknown."""
    uniques: list[pa.Array] = []
    for batch in found.rows.raw():
        uniques.append(pc.unique(batch.column("image_id")))
    ids: list[str] = pc.unique(pa.concat_arrays(uniques)).to_pylist() if uniques else []
    for bad in found.bad:
        if bad.image_id is not None and bad.image_id not in ids:
            ids.append(bad.image_id)
    images = Images()
    for image_id in ids:
        images.add(image_id, image_id, None, None, None)
    return images


def _relative_name(raw: str) -> tuple[str, str | None]:
    """(image path relative to the image root, posix; the name as written when it is not
    one: absolute, Windows, escaping names and URLs keep their base name)."""
    if URL_SCHEME.match(raw):  # Label Studio's upload URLs, cloud-storage tasks
        base = posixpath.basename(raw.split("?", 1)[0].split("#", 1)[0].rstrip("/"))
        return (base or raw), raw
    name = raw.replace("\\", "/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or WINDOWS_ABSOLUTE.match(raw) or ".." in parts:
        return (parts[-1] if parts and parts[-1] != ".." else raw), raw
    return "/".join(parts) or raw, (raw if raw != "/".join(parts) else None)


def _split_of(uri: str) -> str | None:
    """The split a COCO file holds, by its name: Roboflow's ``train/_annotations.coco.json``,
    COCO's ``instances_val2017.json``."""
    name = posixpath.basename(uri.replace("\\", "/"))
    if name == ROBOFLOW_NAME:
        folder = posixpath.basename(posixpath.dirname(uri.replace("\\", "/")))
        return folder or None
    stem = name[: -len(".json")] if name.lower().endswith(".json") else name
    if stem.startswith("instances_") and len(stem) > len("instances_"):
        return stem[len("instances_") :]
    return None
