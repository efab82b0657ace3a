"""The format registry: readers and writers found by name, extensible through entry points.

Built-in formats are registered here by name with the module that implements them; the module
is imported only when the format is used, so `import annoconv` stays light and a format whose
optional dependency is missing says what to install instead of vanishing. Other packages add
formats through the entry-point group ``annoconv.formats``: the entry point's name is the
format name and its value a ``module:attribute`` that is an `annoconv.formats.base.Format`.
"""

from __future__ import annotations

import importlib
import posixpath
from dataclasses import dataclass
from importlib.metadata import entry_points

from annoconv.errors import FormatError, MissingDependencyError
from annoconv.formats.base import (
    BadItem,
    BatchesUnavailable,
    BatchResult,
    Dropped,
    Format,
    Reader,
    ReadResult,
    Source,
    Writer,
)
from annoconv.io.fs import SHARD_SUFFIX

__all__ = [
    "BadItem",
    "BatchResult",
    "BatchesUnavailable",
    "Dropped",
    "Format",
    "FormatEntry",
    "ReadResult",
    "Reader",
    "Source",
    "Writer",
    "available_formats",
    "get_format",
    "infer_format",
    "register",
]

ENTRY_POINT_GROUP = "annoconv.formats"
# `train.record-00003-of-00010` is a shard of `train.record`.


@dataclass(frozen=True)
class FormatEntry:
    """A registered format, known by name before its module is imported."""

    name: str
    target: str
    description: str = ""
    extensions: tuple[str, ...] = ()
    extra: str | None = None
    #: Whether a folder of files with these extensions is one source of this format.
    reads_folders: bool = False


_REGISTRY: dict[str, FormatEntry] = {}
_LOADED: dict[str, Format] = {}
_entry_points_scanned = False


def register(entry: FormatEntry | Format, *, replace: bool = False) -> None:
    """Register a format, either lazily (a FormatEntry) or as a ready Format object."""
    if entry.name in _REGISTRY and not replace:
        raise FormatError(f"format {entry.name!r} is already registered")
    if isinstance(entry, Format):
        _LOADED[entry.name] = entry
        entry = FormatEntry(entry.name, "", entry.description, entry.extensions)
    else:
        _LOADED.pop(entry.name, None)
    _REGISTRY[entry.name] = entry


def get_format(name: str) -> Format:
    """The format called `name`; explains what to install when its dependency is missing."""
    _scan_entry_points()
    if name in _LOADED:
        return _LOADED[name]
    entry = _REGISTRY.get(name)
    if entry is None:
        known = ", ".join(sorted(_REGISTRY))
        raise FormatError(f"unknown format {name!r}; known formats: {known}")
    _LOADED[name] = _load(entry)
    return _LOADED[name]


def available_formats() -> list[FormatEntry]:
    _scan_entry_points()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def infer_format(path: Source, *, for_writing: bool = False) -> str:
    """The format name a path implies: a folder of .xml is VOC, `.csv` is CSV, and so on.

    The extension decides when it names a format; otherwise, for reading, a folder is looked
    into. When formats share an extension (our CSV and Open Images' bbox CSV), reading asks
    their sniffers to look at the content (remote files too; a file that cannot be opened
    sniffs as the first format, whose reader then reports why); writing takes the first
    registered. Otherwise remote paths with a known extension are never touched.
    """
    from annoconv.io.fs import is_dir, source_suffixes

    first = path if isinstance(path, str) else (path[0] if path else "")
    candidates = _formats_for_suffixes([_suffix(first)])
    if not candidates and isinstance(path, str) and not for_writing and is_dir(path):
        candidates = _formats_for_suffixes(source_suffixes(path), folders=True)
        first = f"folder {path}"
    if not candidates:
        names = ", ".join(sorted(_REGISTRY))
        flag = "--to" if for_writing else "--from"
        raise FormatError(f"cannot tell the format of {first}; name it with {flag} ({names})")
    if for_writing or len(candidates) == 1 or not isinstance(path, str):
        return candidates[0]
    return _sniffed(candidates, path)


def formats_named_by(path: str) -> list[str]:
    """The formats whose extension ends the name of `path` (a shard suffix such as
    ``-00000-of-00004`` aside); no I/O. Empty when the name names none."""
    return _formats_for_suffixes([_suffix(path)])


def _formats_for_suffixes(suffixes: list[str], *, folders: bool = False) -> list[str]:
    """The formats claiming the first of `suffixes` that any format claims."""
    entries = [e for e in available_formats() if e.reads_folders or not folders]
    for suffix in suffixes:
        found = [e.name for e in entries if suffix and suffix in _extensions(e)]
        if found:
            return sorted(found, key=list(_REGISTRY).index)
    return []


def _sniffed(candidates: list[str], path: str) -> str:
    for name in candidates:
        try:
            sniff = get_format(name).sniff
        except FormatError:
            continue
        if sniff is not None:
            return sniff(path)
    return candidates[0]


def _extensions(entry: FormatEntry) -> tuple[str, ...]:
    """Built-ins declare their extensions up front; plug-ins are loaded to learn theirs."""
    if entry.extensions or not entry.target:
        return entry.extensions
    try:
        return get_format(entry.name).extensions
    except FormatError:
        return ()


def _suffix(path: str) -> str:
    name = posixpath.basename(path.rstrip("/").replace("\\", "/"))
    lowered = SHARD_SUFFIX.sub("", name.lower())
    for double in (".tar.gz", ".tfrecord.gz"):
        if lowered.endswith(double):
            return double
    return posixpath.splitext(lowered)[1]


def _load(entry: FormatEntry) -> Format:
    module_name, _, attribute = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] != "annoconv":
            hint = (
                f"pip install 'annoconv[{entry.extra}]'"
                if entry.extra
                else f"pip install {exc.name}"
            )
            raise MissingDependencyError(
                f"format {entry.name!r} needs the package {exc.name!r}, which is not installed; "
                f"run: {hint}"
            ) from None
        raise
    fmt = getattr(module, attribute or "FORMAT")
    if not isinstance(fmt, Format):
        raise FormatError(f"{entry.target} is not an annoconv Format")
    return fmt


def _scan_entry_points() -> None:
    global _entry_points_scanned
    if _entry_points_scanned:
        return
    _entry_points_scanned = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name not in _REGISTRY:
            _REGISTRY[point.name] = FormatEntry(point.name, point.value, f"from {point.value}")


def _register_builtins() -> None:
    builtins = [
        FormatEntry(
            "voc",
            "annoconv.formats.voc:FORMAT",
            "Pascal VOC XML as written by labelImg, CVAT and Roboflow (one file per image)",
            (".xml",),
            reads_folders=True,
        ),
        FormatEntry(
            "csv",
            "annoconv.formats.csv:FORMAT",
            "CSV with filename,width,height,class,xmin,ymin,xmax,ymax (one row per box)",
            (".csv",),
        ),
        FormatEntry(
            "openimages",
            "annoconv.formats.openimages:FORMAT",
            "Open Images bbox CSV (V2-V7, 8/13/21 columns) with class descriptions",
            (".csv",),
        ),
        FormatEntry(
            "frcnn",
            "annoconv.formats.frcnn:FORMAT",
            "keras-frcnn simple txt: filepath,x1,y1,x2,y2,class_name (no header)",
            (".txt",),
        ),
        FormatEntry(
            "tfrecord",
            "annoconv.formats.tfrecord:FORMAT",
            "TFRecord shards of TF Object Detection API tf.train.Examples (no TensorFlow needed)",
            (".tfrecord", ".record", ".tfrecords", ".tfrec"),
        ),
        FormatEntry(
            "parquet",
            "annoconv.formats.parquet:FORMAT",
            "Parquet: one row per image (objects as a list of structs) or per box (--flat)",
            (".parquet",),
            reads_folders=True,
        ),
        FormatEntry(
            "coco",
            "annoconv.formats.coco:FORMAT",
            "COCO detection JSON (images, annotations, categories; result files), streamed",
            (".json",),
            reads_folders=True,
        ),
        FormatEntry(
            "yolo",
            "annoconv.formats.yolo:FORMAT",
            "YOLO: Ultralytics (data.yaml, images/ and labels/) or Darknet (obj.data) layout",
            (".yaml", ".yml", ".data"),
        ),
        FormatEntry(
            "pbtxt",
            "annoconv.formats.pbtxt:FORMAT",
            "TF Object Detection API label map (StringIntLabelMap text format)",
            (".pbtxt",),
        ),
    ]
    for entry in builtins:
        register(entry)


_register_builtins()
