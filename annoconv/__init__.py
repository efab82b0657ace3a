"""annoconv: object-detection annotations in, training datasets out.

    from annoconv import convert
    report = convert("annotations/", "train.csv", images="images/")

`read` gives any source's records, `write` writes records built in Python to any output.

The names below are imported on first use, so `import annoconv` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported eagerly: a lazy `convert` would be shadowed by the submodule of the same name
# as soon as anything imports `annoconv.convert`; so would `preview` by `annoconv.preview`
# (a light package: its work is imported on first call).
from annoconv.convert import convert, read
from annoconv.preview import preview

if TYPE_CHECKING:
    from annoconv.errors import (
        AnnoconvError,
        AnnotationError,
        FormatError,
        LabelMapError,
        MissingDependencyError,
        OptionError,
        UnknownClassesError,
    )
    from annoconv.labelmap import LabelMap, LabelMapItem
    from annoconv.options import RunOptions
    from annoconv.records import write
    from annoconv.report import Report
    from annoconv.schema import ImageLabel, ImageRecord, ObjectAnnotation

from annoconv.version import __version__

_EXPORTS = {
    "AnnoconvError": "annoconv.errors",
    "AnnotationError": "annoconv.errors",
    "FormatError": "annoconv.errors",
    "LabelMapError": "annoconv.errors",
    "MissingDependencyError": "annoconv.errors",
    "UnknownClassesError": "annoconv.errors",
    "OptionError": "annoconv.errors",
    "RunOptions": "annoconv.options",
    "LabelMap": "annoconv.labelmap",
    "LabelMapItem": "annoconv.labelmap",
    "Report": "annoconv.report",
    "ImageLabel": "annoconv.schema",
    "ImageRecord": "annoconv.schema",
    "ObjectAnnotation": "annoconv.schema",
    "write": "annoconv.records",
}

__all__ = [
    "AnnoconvError",
    "AnnotationError",
    "FormatError",
    "ImageLabel",
    "ImageRecord",
    "LabelMap",
    "LabelMapError",
    "LabelMapItem",
    "MissingDependencyError",
    "ObjectAnnotation",
    "OptionError",
    "Report",
    "RunOptions",
    "UnknownClassesError",
    "__version__",
    "convert",
    "preview",
    "read",
    "write",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'annoconv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
