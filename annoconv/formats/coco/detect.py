"""Telling a COCO file by its first bytes (used by the registry and by the reader)."""

from __future__ import annotations

from annoconv.io.fs import is_dir, open_input

# COCO keys one of which appears early in any COCO file (or a result file's first item).
_COCO_KEYS = (b'"images"', b'"annotations"', b'"categories"')
_RESULT_KEYS = (b'"image_id"', b'"bbox"')
_SNIFF_BYTES = 1 << 16


def is_coco(path: str) -> bool:
    """Whether the file at `path` looks like COCO JSON: an object with one of COCO's keys
    within its first 64 KiB, or a list whose first items have ``image_id`` and ``bbox``. A
    whole file with ``categories`` but neither ``images`` nor ``annotations`` is not one (it
    lists classes only: Label Studio's ``notes.json`` beside a YOLO export)."""
    try:
        if is_dir(path):
            return False
        with open_input(path) as handle:
            head = handle.read(_SNIFF_BYTES)
    except (OSError, ValueError):
        return False
    start = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    if start.startswith(b"{"):
        if len(head) < _SNIFF_BYTES:  # the whole file: a dataset has images or annotations
            return any(key in head for key in _COCO_KEYS[:2])
        return any(key in head for key in _COCO_KEYS)
    if start.startswith(b"["):
        return start[1:].lstrip().startswith(b"]") or all(key in head for key in _RESULT_KEYS)
    return False
