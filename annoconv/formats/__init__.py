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
from annoconv.io.fs import SHARD_SUFFIX, exists, join

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
    "loadable_formats",
    "register",
    "unregister",
]

ENTRY_POINT_GROUP = "annoconv.formats"

#: The built-in formats: name -> where the format lives, in the order inference prefers them
#: (like fsspec's `known_implementations`). Everything else about a format (description,
#: extensions, options, reader, writer) is read from the format itself.
KNOWN_FORMATS: dict[str, str] = {
    "voc": "annoconv.formats.voc:FORMAT",
    "csv": "annoconv.formats.csv:FORMAT",
    "openimages": "annoconv.formats.openimages:FORMAT",
    "frcnn": "annoconv.formats.frcnn:FORMAT",
    "tfrecord": "annoconv.formats.tfrecord:FORMAT",
    "parquet": "annoconv.formats.parquet:FORMAT",
    "coco": "annoconv.formats.coco:FORMAT",
    "yolo": "annoconv.formats.yolo:FORMAT",
    "pbtxt": "annoconv.formats.pbtxt:FORMAT",
}


@dataclass(frozen=True)
class _Hint:
    """What inference asks of a built-in format (`Format.extensions`, `reads_folders`, and
    whether it has `claims_folder`), known without importing the format's module."""

    extensions: tuple[str, ...]
    reads_folders: bool = False
    claims_folders: bool = False
    #: Names in a folder that make a claiming format worth asking before the folder's file
    #: extensions decide (a YOLO folder's ``labels/`` beside ``images/``, its ``data.yaml``).
    markers: tuple[str, ...] = ()


#: The hints of the built-in formats, so that inferring a run's formats imports only the two
#: it uses (importing them all, pyarrow among them, cost a conversion 0.25 s and 50 MB). The
#: formats' modules hold the truth: tests/test_registry.py checks every hint against them. A
#: format without a hint (a plugin's, a new one) is imported to be asked, as before.
_HINTS: dict[str, _Hint] = {
    "voc": _Hint((".xml",), reads_folders=True),
    "csv": _Hint(
        (".csv",),
        claims_folders=True,
        # Roboflow's "Tensorflow Object Detection CSV" export (any other folder of CSVs
        # could be a run's summaries beside its TFRecords: named with --from csv).
        markers=(
            "_annotations.csv",
            "train/_annotations.csv",
            "valid/_annotations.csv",
            "test/_annotations.csv",
        ),
    ),
    "openimages": _Hint((".csv",)),
    "frcnn": _Hint((".txt",)),
    "tfrecord": _Hint((".tfrecord", ".record", ".tfrecords", ".tfrec")),
    "parquet": _Hint((".parquet",), reads_folders=True),
    "coco": _Hint((".json",), reads_folders=True),
    "yolo": _Hint(
        (".yaml", ".yml", ".data"),
        claims_folders=True,
        markers=("data.yaml", "data.yml", "obj.data", "labels"),
    ),
    "pbtxt": _Hint((".pbtxt",)),
}


@dataclass(frozen=True)
class FormatEntry:
    """A registered format, known by name before its module is imported: where it lives
    (``module:attribute``) and the annoconv extra that installs what it needs."""

    name: str
    target: str
    extra: str | None = None


_REGISTRY: dict[str, FormatEntry] = {}
_LOADED: dict[str, Format] = {}
_entry_points_scanned = False


def register(entry: FormatEntry | Format, *, replace: bool = False) -> None:
    """Register a format, either lazily (a FormatEntry) or as a ready Format object."""
    if entry.name in _REGISTRY and not replace:
        raise FormatError(f"format {entry.name!r} is already registered")
    if isinstance(entry, Format):
        _LOADED[entry.name] = entry
        entry = FormatEntry(entry.name, "")
    else:
        _LOADED.pop(entry.name, None)
    _REGISTRY[entry.name] = entry


def unregister(name: str) -> None:
    """Forget the format `name` (a format registered for a while, e.g. by a test)."""
    _REGISTRY.pop(name, None)
    _LOADED.pop(name, None)


def get_format(name: str) -> Format:
    """The format called `name`; explains what to install when its dependency is missing."""
    if name not in _REGISTRY:  # plugins are looked for only when the name is not known
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


def loadable_formats() -> list[Format]:
    """Every registered format whose module and dependencies can be imported, in
    registration order (built-ins first): what the command line makes flags of."""
    _scan_entry_points()
    found = []
    for name in _REGISTRY:
        try:
            found.append(get_format(name))
        except FormatError:
            continue
    return found


def infer_format(path: Source, *, for_writing: bool = False) -> str:
    """The format name a path implies: a folder of .xml is VOC, `.csv` is CSV, and so on.

    The extension decides when it names a format; otherwise, for reading, a folder is looked
    into. When formats share an extension (our CSV and Open Images' bbox CSV), reading asks
    their sniffers to look at the content (remote files too; a file that cannot be opened
    sniffs as the first format, whose reader then reports why); writing takes the first
    registered. Otherwise remote paths with a known extension are never touched.
    """
    first = path if isinstance(path, str) else (path[0] if path else "")
    # The formats known without looking for plugins decide first; plugins (entry points:
    # importlib.metadata and a scan of the installed distributions, ~25 ms) only when none of
    # them recognises the path.
    candidates = _candidates(path, for_writing) or _candidates(path, for_writing, plugins=True)
    if not candidates:
        from annoconv.io.fs import is_dir

        if isinstance(path, str) and not for_writing and is_dir(path):
            first = f"folder {path}"
        names = ", ".join(sorted(_REGISTRY))
        flag = "--to" if for_writing else "--from"
        raise FormatError(f"cannot tell the format of {first}; name it with {flag} ({names})")
    if for_writing or len(candidates) == 1 or not isinstance(path, str):
        return candidates[0]
    return _sniffed(candidates, path)


def _candidates(path: Source, for_writing: bool, *, plugins: bool = False) -> list[str]:
    """The formats that may have written `path`, among those registered (with `plugins`,
    after looking for plugin formats; none when that finds no new format)."""
    from annoconv.io.fs import is_dir, source_suffixes

    if plugins and not _scan_entry_points():
        return []
    first = path if isinstance(path, str) else (path[0] if path else "")
    candidates = _formats_for_suffixes([_suffix(first)])
    if not candidates and isinstance(path, str) and not for_writing and is_dir(path):
        # A format whose markers the folder holds looks first (a Label Studio YOLO export's
        # notes.json must not make it a COCO folder); then the files a folder format reads
        # decide; only then are the other formats that recognise a folder imported to look.
        candidates = (
            _formats_claiming(path, marked=True)
            or _formats_for_suffixes(source_suffixes(path), folders=True)
            or _formats_claiming(path)
        )
    return candidates


def formats_named_by(path: str) -> list[str]:
    """The formats whose extension ends the name of `path` (a shard suffix such as
    ``-00000-of-00004`` aside); no I/O. Empty when the name names none."""
    return _formats_for_suffixes([_suffix(path)])


def _formats_for_suffixes(suffixes: list[str], *, folders: bool = False) -> list[str]:
    """The formats claiming the first of `suffixes` that any format claims."""
    known = [hint for hint in _inference_hints() if hint[1].reads_folders or not folders]
    for suffix in suffixes:
        found = [name for name, hint in known if suffix and suffix in hint.extensions]
        if found:
            return found
    return []


def _formats_claiming(folder: str, *, marked: bool = False) -> list[str]:
    """The formats that recognise `folder` as one of their datasets by looking into it
    (with `marked`, only those whose hint's markers are in it: no other is imported)."""
    claiming = []
    for name, hint in _inference_hints():
        if not hint.claims_folders:
            continue
        if marked and not any(exists(join(folder, marker)) for marker in hint.markers):
            continue
        claims = get_format(name).claims_folder
        if claims is not None and claims(folder):
            claiming.append(name)
    return claiming


def _inference_hints() -> list[tuple[str, _Hint]]:
    """(name, hint) of every registered format that can be loaded, in registration order:
    a built-in's from `_HINTS`, any other's from the format itself (imported)."""
    hints = []
    for name, entry in _REGISTRY.items():
        hint = _HINTS.get(name) if entry.target == KNOWN_FORMATS.get(name) else None
        if hint is None:
            try:
                fmt = get_format(name)
            except FormatError:
                continue
            hint = _Hint(fmt.extensions, fmt.reads_folders, fmt.claims_folder is not None)
        hints.append((name, hint))
    return hints


def _sniffed(candidates: list[str], path: str) -> str:
    for name in candidates:
        try:
            sniff = get_format(name).sniff
        except FormatError:
            continue
        if sniff is not None:
            return sniff(path)
    return candidates[0]


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


def _scan_entry_points() -> bool:
    """Register the plugin formats of installed distributions, once; whether that found any
    format not registered before."""
    global _entry_points_scanned
    if _entry_points_scanned:
        return False
    _entry_points_scanned = True
    from importlib.metadata import entry_points

    found = False
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name not in _REGISTRY:
            _REGISTRY[point.name] = FormatEntry(point.name, point.value)
            found = True
    return found


def _register_builtins() -> None:
    for name, target in KNOWN_FORMATS.items():
        register(FormatEntry(name, target))


_register_builtins()
