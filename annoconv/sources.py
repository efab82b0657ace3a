"""Opening a run's ends: the reader of a source and the writer class of an output, their
formats named or inferred from the paths, their options checked against the format's own
option models (`Format.read_options` / `Format.write_options`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from annoconv.errors import AnnoconvError, FormatError
from annoconv.formats import Format, Reader, Source, get_format, infer_format
from annoconv.io.fs import GLOB_CHARS, exists, shards_of
from annoconv.options import checked, given_fields


def open_reader(
    source: Source,
    *,
    from_format: str | None = None,
    images: str | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> Reader:
    """The reader for `source`, its format named or inferred from the path; `read_options`
    are checked against the format's read options first (an OptionError names the wrong one)."""
    name = source_format(source, from_format)
    fmt = get_format(name)
    if fmt.reader is None:
        raise FormatError(f"format {name!r} can be written but not read")
    options = checked(fmt.read_options, read_options or {}, f"the {name} reader")
    return fmt.reader(source, images=images, **given_fields(options))


def source_format(source: Source, from_format: str | None = None) -> str:
    """The format `source` is read as: the one named, else inferred once it is known to exist
    (an archive is not inferred: no built-in format reads its annotations from inside one)."""
    _check_exists(source)
    if from_format is None and isinstance(source, str) and _is_archive(source):
        raise FormatError(
            f"{source}: an archive; annotations are read from a folder or a file, not from "
            f"inside an archive (images are, with --images {source}): unpack it and pass "
            "the folder"
        )
    return from_format or infer_format(source)


def output_format(output: str, to_format: str | None = None) -> Format:
    """The format `output` is written in (named, or inferred from the path); one that can
    be written."""
    fmt = get_format(to_format or infer_format(output, for_writing=True))
    if fmt.writer is None:
        raise FormatError(f"format {fmt.name!r} can be read but not written")
    return fmt


def selects_classes(fmt: Format) -> bool:
    """Whether the format's reader makes a class selection itself (it declares a `classes`
    read option), faster than a filter after it can."""
    return "classes" in fmt.read_options.model_fields


def _is_archive(path: str) -> bool:
    from annoconv.io.archives import is_archive  # (light paths need not import it)

    return is_archive(path)


def _check_exists(source: Source) -> None:
    paths = [source] if isinstance(source, str) else list(source)
    for path in paths:
        if any(char in path for char in GLOB_CHARS) or exists(path) or shards_of(path):
            continue
        raise AnnoconvError(f"{path}: no such file or folder")
