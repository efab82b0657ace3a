"""Class descriptions (``MID,DisplayName``) and the selection of classes by name or MID."""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Mapping, Sequence

from annoconv.errors import AnnotationError
from annoconv.io.fs import open_input

_MID_PREFIXES = ("/m/", "/g/")


def read_class_descriptions(uri: str) -> dict[str, str]:
    """{MID: label} from a ``MID,DisplayName`` CSV, with or without a header row (row 1 is a
    header unless it starts with a MID). Display names shared by several MIDs become
    ``"Name (MID)"`` so that every label names one class."""
    names: dict[str, str] = {}
    with open_input(uri) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        rows = csv.reader(text, strict=True)
        try:
            for row in rows:
                line = rows.line_num
                if not row or (line == 1 and not row[0].startswith(_MID_PREFIXES)):
                    continue
                mid, name = _description(uri, row, line)
                if names.setdefault(mid, name) != name:
                    raise AnnotationError(uri, f"MID {mid} is described twice", f"line {line}")
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AnnotationError(uri, f"malformed CSV: {exc}", f"line {rows.line_num}") from None
    if not names:
        raise AnnotationError(uri, "no classes: expected rows of MID,DisplayName")
    shared = _shared_names(names)
    return {mid: f"{name} ({mid})" if name in shared else name for mid, name in names.items()}


def _description(uri: str, row: list[str], line: int) -> tuple[str, str]:
    if len(row) != 2:
        raise AnnotationError(
            uri, f"expected 2 fields (MID,DisplayName), got {len(row)}", f"line {line}"
        )
    mid, name = row
    if not mid or not name:
        raise AnnotationError(uri, f"empty {'MID' if not mid else 'DisplayName'}", f"line {line}")
    return mid, name


def _shared_names(names: Mapping[str, str]) -> set[str]:
    seen: set[str] = set()
    shared: set[str] = set()
    for name in names.values():
        (shared if name in seen else seen).add(name)
    return shared


def resolve_classes(
    classes: Sequence[str], names: Mapping[str, str] | None, descriptions: str | None
) -> dict[str, str]:
    """{MID: label} of the selected classes, given as labels or MIDs. Anything else is an
    error listing all the unknown names with their near matches."""
    if isinstance(classes, str):
        raise ValueError(f"classes must be a list of class names, not the string {classes!r}")
    if not classes:
        raise ValueError("classes is empty: name at least one class to keep")
    if names is None:
        return _resolve_mids(classes)
    mids = {label: mid for mid, label in names.items()}
    selected = {}
    unknown = []
    for name in classes:
        mid = name if name in names else mids.get(name)
        if mid is None:
            unknown.append(_unknown_class(name, mids))
        else:
            selected[mid] = names[mid]
    if unknown:
        raise AnnotationError(descriptions, f"unknown class(es): {'; '.join(unknown)}")
    return selected


def _resolve_mids(classes: Sequence[str]) -> dict[str, str]:
    names = [name for name in classes if not name.startswith(_MID_PREFIXES)]
    if names:
        listed = ", ".join(repr(name) for name in names)
        raise ValueError(
            f"without class descriptions the labels are MIDs (like /m/0dv5r), and {listed} "
            "is not one: pass class_descriptions (--class-descriptions) to select by name"
        )
    return {mid: mid for mid in classes}


def _unknown_class(name: str, mids: Mapping[str, str]) -> str:
    lowered = {label.lower(): label for label in mids}
    close = [lowered[name.lower()]] if name.lower() in lowered else []
    close += difflib.get_close_matches(name, [label for label in mids if label not in close], 3)
    hint = f" (did you mean {', '.join(repr(label) for label in close)}?)" if close else ""
    return f"{name!r} is not in the class descriptions{hint}"
