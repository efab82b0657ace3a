"""What each command does once its flags are parsed: call the API, print the outcome."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from annoconv.cli.common import EXIT_FAILED, EXIT_OK, UsageError
from annoconv.cli.flags import format_options
from annoconv.cli.parser import build_parser
from annoconv.report import Report

if TYPE_CHECKING:
    from annoconv.options import RunOptions


def _run_convert(args: argparse.Namespace) -> int:
    from annoconv.convert import convert

    report = convert(args.source, args.output, _run_options_of(args))
    _finish(report, args)
    return EXIT_OK


def _run_merge(args: argparse.Namespace) -> int:
    from annoconv.merge import MergeSource, merge

    sources = args.sources
    if len(sources) < 2:
        raise UsageError("merge needs at least two sources, then the output")
    args.from_format, formats = _per_source(args.from_format, len(sources), "--from")
    args.images, images = _per_source(args.images, len(sources), "--images")
    specs = [
        MergeSource(
            source,
            from_format=formats.get(index, args.from_format),
            images=images.get(index),
        )
        for index, source in enumerate(sources, 1)
    ]
    report = merge(specs, args.output, _run_options_of(args).replaced(from_format=None))
    _finish(report, args)
    return EXIT_OK


def _run_options_of(args: argparse.Namespace) -> RunOptions:
    """The run's settings as the command line gives them, checked by the library."""
    from annoconv.options import RunOptions
    from annoconv.plan import label_map_beside

    keywords: dict[str, Any] = {
        "from_format": args.from_format,
        "to_format": args.to_format,
        "images": args.images,
        "label_map": args.label_map,
        "extend_label_map": args.extend_label_map,
        "label_map_order": args.label_map_order,
        "label_map_names": args.label_map_names,
        "overwrite": args.overwrite,
        "split": args.split,
        "keep_splits": args.keep_splits,
        "classes": args.classes,
        "keep_empty": args.keep_empty,
        "sample": args.sample,
        "seed": args.seed,
        "on_error": args.on_error,
        "progress": not args.quiet,
        "read_options": format_options(args, "read"),
        "write_options": format_options(args, "write"),
        "exclude_classes": args.drop_classes,
        "rename": dict(args.rename) if args.rename else None,
        "min_size": args.min_size,
        "min_area": args.min_area,
        "drop_difficult": args.drop_difficult,
        "boxes_outside": args.boxes_outside,
        "dedup": args.dedup,
        "allow_remote_paths": args.allow_remote_paths,
        "stratify": args.stratify,
        "split_lists": _split_lists(args),
        **_engine(args),
    }
    keywords["label_map_output"] = label_map_beside(
        args.output, args.to_format, args.label_map, extend=args.extend_label_map
    )
    return RunOptions.of(keywords)


def _split_lists(args: argparse.Namespace) -> Mapping[str, Any] | None:
    if args.voc_imagesets:
        from annoconv.ops import voc_imagesets

        return voc_imagesets(args.voc_imagesets)
    lists: Mapping[str, Any] | None = args.split_lists
    return lists


def _engine(args: argparse.Namespace) -> dict[str, Any]:
    """The engine flags, for the commands that have them."""
    if not hasattr(args, "engine"):
        return {}
    return {"engine": args.engine, "workers": args.workers, "scheduler": args.scheduler}


def _run_preview_command(args: argparse.Namespace) -> int:
    from annoconv.io.fs import write_atomic
    from annoconv.preview.run import run_preview

    read_options = format_options(args, "read")
    if args.label_map is not None:
        read_options["label_map"] = args.label_map
    split = [name.strip() for name in args.split.split(",") if name.strip()] if args.split else None
    report = run_preview(
        args.source,
        args.output,
        from_format=args.from_format,
        images=args.images,
        sample=args.sample,
        seed=args.seed,
        classes=args.classes,
        split=split,
        contact_sheet=args.contact_sheet,
        on_error=args.on_error,
        storage_options=None,  # main() applies --storage-option to the whole command
        read_options=read_options,
        image_size=args.image_size,
        title=args.title,
        how=_preview_call(args),
    )
    if args.report_json:
        write_atomic(args.report_json, (report.to_json() + "\n").encode("utf-8"))
    if not args.quiet:
        print(report.summary(), file=sys.stderr)
    return 0


def _preview_call(args: argparse.Namespace) -> str:
    """The command line that makes the same page (shown on it), options in a fixed order."""
    import shlex

    words = ["annoconv", "preview", args.source, args.output]
    read_options = format_options(args, "read")
    for option, value in (
        ("--from", args.from_format),
        ("--images", args.images),
        ("--sample", args.sample),
        ("--seed", args.seed or None),
        ("--split", args.split),
        ("--contact-sheet", args.contact_sheet),
        ("--label-map", args.label_map),
        *(("--" + name.replace("_", "-"), value) for name, value in read_options.items()),
    ):
        if isinstance(value, list):
            words += [option, *map(str, value)]
        elif value is not None:
            words += [option, str(value)]
    if args.classes:
        words += ["--classes", *args.classes]
    return shlex.join(words)


def _run_labelmap(args: argparse.Namespace) -> int:
    from annoconv.labelmap import LabelMap
    from annoconv.sources import open_reader
    from annoconv.survey import class_counts

    sources, output = args.sources, args.output
    if not sources and not args.classes:
        raise UsageError("labelmap needs at least one source or --classes, then OUT.pbtxt")
    result: LabelMap | None = None
    for source in sources:
        if source.lower().endswith(".pbtxt"):
            part = LabelMap.read(source)
        else:
            reader = open_reader(
                source,
                from_format=args.from_format,
                images=args.images,
                read_options=format_options(args, "read"),
            )
            part = LabelMap.from_classes(class_counts(reader), order=args.order)
        result = part if result is None else result.merge(part)
    if args.classes:
        listed = LabelMap.from_classes(args.classes, order=args.order)
        result = listed if result is None else result.merge(listed)
    assert result is not None
    size = result.write(output)
    if not args.quiet:
        print(f"wrote {output} ({len(result)} classes, {size} bytes)", file=sys.stderr)
    return EXIT_OK


def _run_stats(args: argparse.Namespace) -> int:
    from annoconv.sources import open_reader
    from annoconv.stats import dataset_stats

    reader = open_reader(
        args.source,
        from_format=args.from_format,
        images=args.images,
        read_options=format_options(args, "read"),
    )
    stats = dataset_stats(
        reader,
        on_error=args.on_error,
        tiny=args.tiny,
        image_sizes=args.image_sizes,
        images=args.images,
    )
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(stats.table())
        for item in stats.report.skipped:
            print(f"skipped {item.source}: {item.reason}", file=sys.stderr)
    if args.plot:
        from annoconv.plot import plot_stats

        plot_stats(stats, args.plot)
        if not args.quiet:
            print(f"wrote {args.plot}", file=sys.stderr)
    return EXIT_OK


def _run_inspect(args: argparse.Namespace) -> int:
    from annoconv.formats.tfrecord import inspect_tfrecords

    result = inspect_tfrecords(args.files, label_map=args.label_map)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(result.table())
    for problem in result.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return EXIT_FAILED if result.problems else EXIT_OK


def _run_transcode(args: argparse.Namespace) -> int:
    from annoconv.io.transcode import transcode_images

    result = transcode_images(
        args.source,
        args.output,
        to=args.to_format,
        workers=args.workers,
        jpeg_quality=args.jpeg_quality,
        **({} if args.png_level is None else {"png_level": args.png_level}),
        overwrite=args.overwrite,
        on_error=args.on_error,
    )
    if args.report_json:
        from annoconv.io.fs import write_atomic

        write_atomic(args.report_json, (result.to_json() + "\n").encode("utf-8"))
    if not args.quiet:
        print(result.summary(), file=sys.stderr)
    return EXIT_OK


def _per_source(values: list[str], sources: int, option: str) -> tuple[str | None, dict[int, str]]:
    """The value for every source (or None) and the per-source ones (1-based) of an option
    given as VALUE or N=VALUE."""
    common: str | None = None
    own: dict[int, str] = {}
    for value in values:
        number, separator, rest = value.partition("=")
        if not (separator and number.isdigit()):
            if common is not None:
                raise UsageError(f"{option} for every source is given twice")
            common = value
            continue
        index = int(number)
        if not rest:
            raise UsageError(f"{option} {value}: no value for source {index}")
        if not 1 <= index <= sources:
            raise UsageError(f"{option} {value}: there are sources 1 to {sources}")
        if index in own:
            raise UsageError(f"{option} for source {index} is given twice")
        own[index] = rest
    return common, own


#: The width `annoconv formats` keeps to.
FORMATS_WIDTH = 100


def _run_formats(args: argparse.Namespace) -> int:
    for line in formats_table(FORMATS_WIDTH):
        print(line)
    return EXIT_OK


def formats_table(width: int) -> list[str]:
    """Every registered format (plugins included: their module is named) as a table of
    `width` columns: name, extensions, what it reads and writes, description, wrapped."""
    import textwrap

    from annoconv.errors import FormatError
    from annoconv.formats import KNOWN_FORMATS, available_formats, get_format

    rows = []
    for entry in available_formats():
        origin = ""
        if entry.name not in KNOWN_FORMATS:
            module = entry.target.split(":", 1)[0]
            origin = f"(plugin{' ' + module if module else ''})"
        try:
            fmt = get_format(entry.name)
        except FormatError as error:
            rows.append((entry.name, "", "", f"cannot be loaded: {error}", origin))
            continue
        sides = "/".join(
            side for side, there in (("read", fmt.reader), ("write", fmt.writer)) if there
        )
        rows.append((entry.name, " ".join(fmt.extensions), sides, fmt.description, origin))
    name_width = min(max([len("FORMAT"), *(len(row[0]) for row in rows)]) + 2, 24)
    widths = [name_width, 20, 12]
    text_width = max(width - sum(widths), 30)
    lines = [_table_line(("FORMAT", "EXTENSIONS", "READ/WRITE", "DESCRIPTION"), widths)]
    for name, extensions, sides, description, origin in rows:
        cells = [
            [name],
            textwrap.wrap(extensions, widths[1] - 2) or [""],
            [sides],
            [*textwrap.wrap(description, text_width), *([origin] if origin else [])] or [""],
        ]
        for index in range(max(len(cell) for cell in cells)):
            parts = tuple(cell[index] if index < len(cell) else "" for cell in cells)
            lines.append(_table_line(parts, widths))
    return lines


def _table_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    *fixed, last = cells
    line = "".join(cell.ljust(size) for cell, size in zip(fixed, widths, strict=True)) + last
    return line.rstrip()


def _run_completion(args: argparse.Namespace) -> int:
    from annoconv.completion import script
    from annoconv.formats import available_formats

    names = [entry.name for entry in available_formats()]
    print(script(build_parser(), args.shell, names), end="")
    return EXIT_OK


def _finish(report: Report, args: argparse.Namespace) -> None:
    if args.report_json:
        from annoconv.io.fs import write_atomic

        write_atomic(args.report_json, (report.to_json() + "\n").encode("utf-8"))
    if not args.quiet:
        print(report.summary(), file=sys.stderr)
        for line in _usage_notes(report, args):
            print(line, file=sys.stderr)
    elif report.images_written == 0:  # said even when quiet: nothing else would say it
        print(f"annoconv: warning: {report.empty_note()}", file=sys.stderr)


def _usage_notes(report: Report, args: argparse.Namespace) -> Iterator[str]:
    """What the writer tells the user about using its outputs (e.g. the lines a TF Object
    Detection API pipeline.config takes for TFRecord shards)."""
    from annoconv.sources import output_format

    writer = output_format(args.output, args.to_format).writer
    if writer is not None:
        yield from writer.usage_notes(report.outputs, getattr(args, "label_map", None))


#: The handler of each command, by the name its parser gives.
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "convert": _run_convert,
    "merge": _run_merge,
    "inspect": _run_inspect,
    "labelmap": _run_labelmap,
    "stats": _run_stats,
    "transcode": _run_transcode,
    "preview": _run_preview_command,
    "formats": _run_formats,
    "completion": _run_completion,
}
