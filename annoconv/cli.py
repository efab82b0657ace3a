"""The `annoconv` command: a thin layer over the Python API.

Exit codes: 0 success, 1 conversion error (bad input, unknown classes, I/O), 2 usage error.
Errors print as one line on stderr; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from annoconv.errors import AnnoconvError, FormatError, MissingDependencyError
from annoconv.report import ERROR_POLICIES, Report

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot be run as given."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--on-error",
        choices=ERROR_POLICIES,
        default="fail",
        help="fail on the first bad item (default), or skip it, go on and report it",
    )
    parser.add_argument("--report-json", metavar="PATH", help="also save the run report as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    _storage_options(parser)


def _storage_option(text: str) -> tuple[str, object]:
    from annoconv.io.fs import parse_storage_option

    return _argument_type(parse_storage_option)(text)


def _storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage-option",
        dest="storage_options",
        metavar="KEY=VALUE",
        type=_storage_option,
        action="append",
        default=[],
        help="fsspec option for every remote path, repeatable (e.g. endpoint_url=http://..., "
        "anon=true, client_kwargs.region_name=eu-west-1)",
    )


def _reading(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="from_format", metavar="FORMAT", help="source format")
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="folder, URL or tar/zip archive holding the images, for sizes missing from the "
        "annotations",
    )


def _merge_reading(parser: argparse.ArgumentParser) -> None:
    """--from and --images for every source, or per source as N=VALUE (repeatable)."""
    parser.add_argument(
        "--from",
        dest="from_format",
        metavar="[N=]FORMAT",
        action="append",
        default=[],
        help="source format, of every source or, as N=FORMAT, of the Nth source (repeatable)",
    )
    parser.add_argument(
        "--images",
        metavar="[N=]DIR",
        action="append",
        default=[],
        help="folder, URL or tar/zip archive holding the images of every source or, as "
        "N=DIR, a folder or URL holding the Nth source's (repeatable)",
    )


def _label_map_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--label-map", metavar="PBTXT", help="use this label map; unknown classes fail the run"
    )
    parser.add_argument(
        "--extend-label-map",
        action="store_true",
        help="add classes missing from --label-map instead of failing",
    )
    parser.add_argument(
        "--label-map-order",
        choices=("sorted", "first-seen"),
        default="sorted",
        help="id order of a label map built from the data (default: sorted by name)",
    )


def _columns(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--columns",
        metavar="COLS",
        help="extra CSV columns, comma separated (e.g. difficult,truncated,xmin_norm)",
    )


def _argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` as an argparse type: its ValueError becomes a usage error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _split_spec(text: str) -> dict[str, float]:
    from annoconv.ops import parse_split

    return _argument_type(parse_split)(text)


def _size_spec(text: str) -> int:
    from annoconv.formats.tfrecord import parse_size

    return _argument_type(parse_size)(text)


def _split_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split",
        metavar="SPEC",
        type=_split_spec,
        help="write one output per split, e.g. train=0.7,test=0.3 (by image, one label map)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the split assignment (default 0)"
    )


def _tfrecord_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TFRecord output")
    shards = group.add_mutually_exclusive_group()
    shards.add_argument("--shards", type=int, metavar="N", help="number of shards (default 1)")
    shards.add_argument(
        "--shard-size",
        metavar="SIZE",
        type=_size_spec,
        help="pick the shard count from image bytes, e.g. 100MB",
    )
    group.add_argument("--compression", choices=("GZIP", "ZLIB"), help="compress the shards")
    group.add_argument(
        "--size-policy",
        choices=("fail", "warn", "skip"),
        default=None,
        help="when an annotation's size disagrees with its image: fail (default), "
        "warn and trust the image (boxes rescaled), or skip the image",
    )
    group.add_argument(
        "--jpeg-quality", type=int, metavar="Q", help="quality of transcoded photos (default 95)"
    )


def _selection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection")
    group.add_argument(
        "--classes", nargs="+", metavar="NAME", help="keep only these classes (names or MIDs)"
    )
    group.add_argument(
        "--keep-empty",
        action="store_true",
        help="keep images left without boxes by --classes (as negative images)",
    )
    group.add_argument(
        "--sample", type=int, metavar="N", help="a uniform sample of N images (with --seed)"
    )


def _rename_spec(text: str) -> tuple[str, str]:
    from annoconv.filters import parse_rename

    return _argument_type(parse_rename)(text)


def _min_size_spec(text: str) -> tuple[float, float]:
    from annoconv.filters import parse_min_size

    return _argument_type(parse_min_size)(text)


def _lists_spec(text: str) -> dict[str, str]:
    """`train=train.txt,test=test.txt` -> {"train": "train.txt", "test": "test.txt"}."""
    lists: dict[str, str] = {}
    for part in text.split(","):
        name, sep, path = (piece.strip() for piece in part.partition("="))
        if not sep or not name or not path:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not NAME=FILE")
        lists[name] = path
    return lists


def _operation_options(parser: argparse.ArgumentParser) -> None:
    """Filters, renames, dedup and the other splits (docs/operations.md)."""
    group = parser.add_argument_group("operations")
    group.add_argument("--drop-classes", nargs="+", metavar="NAME", help="drop these classes")
    group.add_argument(
        "--rename",
        action="append",
        type=_rename_spec,
        metavar="OLD=NEW",
        help="rename a class (repeatable; two classes renamed to one are merged)",
    )
    group.add_argument(
        "--min-size",
        type=_min_size_spec,
        metavar="N|WxH",
        help="drop boxes narrower/lower than this (pixels, or fractions for normalized data)",
    )
    group.add_argument(
        "--min-area", type=float, metavar="A", help="drop boxes smaller than this area"
    )
    group.add_argument("--drop-difficult", action="store_true", help="drop `difficult` boxes")
    group.add_argument(
        "--boxes-outside",
        choices=("fail", "clip", "drop"),
        default="fail",
        help="boxes reaching outside the image: fail (default), clip them to it, or drop them",
    )
    group.add_argument(
        "--dedup", action="store_true", help="drop byte-identical images (SHA-256), keep one"
    )
    group.add_argument(
        "--stratify",
        action="store_true",
        help="with --split: spread every class over every split where possible",
    )
    lists = group.add_mutually_exclusive_group()
    lists.add_argument(
        "--split-lists",
        type=_lists_spec,
        metavar="NAME=FILE,...",
        help="split by lists of image ids/keys/stems, e.g. train=train.txt,test=test.txt",
    )
    lists.add_argument(
        "--voc-imagesets",
        metavar="DIR",
        help="split by a VOC dataset's ImageSets/Main/{train,val,test}.txt",
    )


def _openimages_input(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    group = parser.add_argument_group("Open Images input")
    group.add_argument(
        "--class-descriptions", metavar="CSV", help="class-descriptions-boxable.csv (MID,name)"
    )
    group.add_argument("--images-csv", metavar="CSV", help="image URLs (image_name,image_url)")
    group.add_argument(
        "--image-labels", metavar="CSV", nargs="+", help="image-level label CSVs to attach"
    )
    return group


def _openimages_options(parser: argparse.ArgumentParser) -> None:
    group = _openimages_input(parser)
    group.add_argument(
        "--label-map-names",
        choices=("ids", "labels"),
        default="ids",
        help="label map item names: dataset ids (MIDs, the OD API convention) or class names",
    )


def _frcnn_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument_group("Faster R-CNN txt output").add_argument(
        "--path-prefix", metavar="PREFIX", help="prepended to every image path in the txt"
    )


def _engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine (docs/engines.md)")
    group.add_argument(
        "--engine",
        choices=("local", "processes", "dask"),
        default="local",
        help="run in this process (default), on --workers local processes, or on Dask",
    )
    group.add_argument(
        "--workers", type=int, metavar="N", help="processes (or LocalCluster workers) to use"
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler (tcp://host:8786); without it --engine dask starts "
        "a LocalCluster of --workers processes",
    )


def _parquet_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Parquet output")
    group.add_argument(
        "--flat",
        action="store_true",
        default=None,
        help="one row per box (the CSV's columns) instead of one row per image",
    )
    group.add_argument(
        "--embed-images",
        action="store_true",
        default=None,
        help="add an image column {bytes, path} with each image file's bytes",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="annoconv",
        description="Convert object-detection annotations into training datasets.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    convert = commands.add_parser(
        "convert", help="convert SRC into DST (formats inferred from the paths)"
    )
    convert.add_argument("source", metavar="SRC", help="file, folder, glob or URL to read")
    convert.add_argument("output", metavar="DST", help="file or folder to write")
    convert.add_argument("--to", dest="to_format", metavar="FORMAT", help="output format")
    _reading(convert)
    _label_map_options(convert)
    _split_options(convert)
    _selection_options(convert)
    _operation_options(convert)
    _openimages_options(convert)
    _columns(convert)
    _tfrecord_options(convert)
    _frcnn_options(convert)
    _engine_options(convert)
    _parquet_options(convert)
    _common(convert)
    convert.set_defaults(handler=_run_convert)

    merge = commands.add_parser(
        "merge", help="merge several sources (any formats) into one dataset, one label map"
    )
    merge.add_argument(
        "paths", metavar="SRC... DST", nargs="+", help="two or more sources, then the output"
    )
    merge.add_argument("--to", dest="to_format", metavar="FORMAT", help="output format")
    _merge_reading(merge)
    _label_map_options(merge)
    _split_options(merge)
    _selection_options(merge)
    _operation_options(merge)
    _openimages_options(merge)
    _columns(merge)
    _tfrecord_options(merge)
    _frcnn_options(merge)
    _common(merge)
    merge.set_defaults(handler=_run_merge)

    xml2csv = commands.add_parser(
        "xml2csv", help="labelImg VOC XML folder -> CSV (filename,width,height,class,...)"
    )
    xml2csv.add_argument("source", metavar="XML_DIR", help="folder (searched recursively) or glob")
    xml2csv.add_argument("output", metavar="OUT.csv")
    xml2csv.add_argument("--images", metavar="DIR", help="images, for sizes missing from XMLs")
    _label_map_options(xml2csv)
    _split_options(xml2csv)
    _selection_options(xml2csv)
    _operation_options(xml2csv)
    _columns(xml2csv)
    _common(xml2csv)
    xml2csv.set_defaults(handler=_run_convert, from_format="voc", to_format="csv")

    xml2tfrecord = commands.add_parser(
        "xml2tfrecord",
        help="labelImg VOC XML folder + images -> TFRecord shards and a label map",
    )
    xml2tfrecord.add_argument("source", metavar="XML_DIR", help="folder (recursive) or glob")
    xml2tfrecord.add_argument(
        "output",
        metavar="OUT_PREFIX",
        help="shards are OUT_PREFIX-00000-of-0000N (with --split: PREFIX-train..., PREFIX-test...)",
    )
    xml2tfrecord.add_argument(
        "--images",
        metavar="DIR",
        help="images folder, URL or tar/zip archive (streamed once, never unpacked; "
        "default: beside the XMLs)",
    )
    _label_map_options(xml2tfrecord)
    _split_options(xml2tfrecord)
    _selection_options(xml2tfrecord)
    _operation_options(xml2tfrecord)
    _tfrecord_options(xml2tfrecord)
    _engine_options(xml2tfrecord)
    _common(xml2tfrecord)
    xml2tfrecord.set_defaults(handler=_run_convert, from_format="voc", to_format="tfrecord")

    inspect = commands.add_parser(
        "inspect", help="check TFRecord files (CRCs, keys, classes) without TensorFlow"
    )
    inspect.add_argument("files", metavar="FILE", nargs="+", help="TFRecord files or prefixes")
    inspect.add_argument("--label-map", metavar="PBTXT", help="check class ids against it")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    _storage_options(inspect)
    inspect.set_defaults(handler=_run_inspect)

    labelmap = commands.add_parser(
        "labelmap", help="write a label map (.pbtxt) from data, class names or other maps"
    )
    labelmap.add_argument(
        "paths",
        metavar="SRC... OUT.pbtxt",
        nargs="+",
        help="sources (data or .pbtxt maps, merged in order) and the output path last",
    )
    labelmap.add_argument("--classes", nargs="+", metavar="NAME", help="class names to include")
    labelmap.add_argument(
        "--order",
        choices=("sorted", "first-seen"),
        default="sorted",
        help="id order of classes taken from data or --classes (default: sorted by name)",
    )
    _reading(labelmap)
    _common(labelmap)
    labelmap.set_defaults(handler=_run_labelmap)

    stats = commands.add_parser("stats", help="classes, images and boxes of a dataset")
    stats.add_argument("source", metavar="SRC")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.add_argument(
        "--plot", metavar="PNG", help="also draw class counts and box size histograms"
    )
    stats.add_argument(
        "--tiny",
        type=float,
        default=4.0,
        metavar="PX",
        help="boxes below this width or height in pixels count as tiny (default 4)",
    )
    _reading(stats)
    _openimages_input(stats)
    _common(stats)
    stats.set_defaults(handler=_run_stats)

    _images_commands(commands)
    _preview_command(commands)

    formats = commands.add_parser("formats", help="list the formats annoconv reads and writes")
    formats.set_defaults(handler=_run_formats, debug=False)
    return parser


def _images_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    images = commands.add_parser("images", help="work on image files: transcode")
    actions = images.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    transcode = actions.add_parser(
        "transcode",
        help="every TIFF in a folder tree or archive -> JPEG/PNG, keeping the relative layout",
    )
    transcode.add_argument("source", metavar="SRC", help="folder, tar/zip archive, or URL")
    transcode.add_argument("output", metavar="DST", help="folder to write into")
    transcode.add_argument("--to", dest="to_format", choices=("png", "jpeg"), required=True)
    transcode.add_argument(
        "--workers", type=int, default=None, metavar="N", help="parallel encoders (default: CPUs)"
    )
    transcode.add_argument(
        "--jpeg-quality", type=int, default=95, metavar="Q", help="JPEG quality (default 95)"
    )
    transcode.add_argument(
        "--overwrite", action="store_true", help="replace outputs that exist (default: skip)"
    )
    _common(transcode)
    transcode.set_defaults(handler=_run_transcode)


# --- `annoconv preview` (annoconv/preview/): self-contained, uses argparse and the API only ---


def _preview_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """The `preview` subcommand: SRC's boxes drawn on its images, as a page or a PNG."""
    from annoconv.preview import DEFAULT_IMAGE_SIZE, DEFAULT_SAMPLE
    from annoconv.report import ERROR_POLICIES as policies

    preview = commands.add_parser(
        "preview",
        help="draw the boxes on their images: a self-contained HTML page or a contact-sheet PNG",
        description="Draw a sample of SRC's images with their boxes, from the bytes training "
        "reads (as TensorFlow decodes them), into OUT.html (a page: grid, legend, class filter, "
        "click to enlarge) or OUT.png (a contact sheet). Any readable source, our outputs "
        "included; only the sampled images are opened.",
    )
    preview.add_argument("source", metavar="SRC", help="file, folder, glob, shard prefix or URL")
    preview.add_argument("output", metavar="OUT", help="OUT.html (a page) or OUT.png (a sheet)")
    preview.add_argument("--from", dest="from_format", metavar="FORMAT", help="source format")
    preview.add_argument(
        "--images", metavar="DIR", help="folder, URL or tar/zip archive holding the images"
    )
    preview.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help=f"show a seeded sample of N images (default {DEFAULT_SAMPLE}; all when fewer)",
    )
    preview.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    preview.add_argument(
        "--classes", nargs="+", metavar="NAME", help="show only these classes' boxes and images"
    )
    preview.add_argument(
        "--split", metavar="NAME[,NAME]", help="show only the images of these splits"
    )
    preview.add_argument(
        "--contact-sheet", metavar="PNG", help="also draw the sample as a contact-sheet PNG"
    )
    preview.add_argument(
        "--image-size",
        type=int,
        default=DEFAULT_IMAGE_SIZE,
        metavar="PX",
        help=f"longer side of the pictures a page embeds (default {DEFAULT_IMAGE_SIZE})",
    )
    preview.add_argument("--title", help="the page's title (default: SRC)")
    preview.add_argument(
        "--label-map", metavar="PBTXT", help="class names for TFRecords that hold only ids"
    )
    preview.add_argument(
        "--class-descriptions", metavar="CSV", help="Open Images class names (MID,name)"
    )
    preview.add_argument(
        "--on-error",
        choices=policies,
        default="fail",
        help="fail on the first unreadable image (default), or skip it and report it",
    )
    preview.add_argument("--report-json", metavar="PATH", help="also save the report as JSON")
    preview.add_argument("-q", "--quiet", action="store_true", help="no summary")
    preview.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    preview.add_argument(
        "--storage-option",
        dest="storage_options",
        metavar="KEY=VALUE",
        type=_storage_option,
        action="append",
        default=[],
        help="fsspec option for every remote path, repeatable",
    )
    preview.set_defaults(handler=_run_preview_command)


def _run_preview_command(args: argparse.Namespace) -> int:
    from annoconv.io.fs import write_atomic
    from annoconv.preview.run import run_preview

    read_options = {
        name: value
        for name, value in (
            ("label_map", args.label_map),
            ("class_descriptions", args.class_descriptions),
        )
        if value is not None
    }
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
    for option, value in (
        ("--from", args.from_format),
        ("--images", args.images),
        ("--sample", args.sample),
        ("--seed", args.seed or None),
        ("--split", args.split),
        ("--contact-sheet", args.contact_sheet),
        ("--label-map", args.label_map),
        ("--class-descriptions", args.class_descriptions),
    ):
        if value is not None:
            words += [option, str(value)]
    if args.classes:
        words += ["--classes", *args.classes]
    return shlex.join(words)


def _version() -> str:
    from annoconv import __version__

    return f"annoconv {__version__}"


def _split_columns(text: str | None) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()] if text else []


_WRITE_OPTIONS = (
    "shards",
    "shard_size",
    "compression",
    "size_policy",
    "jpeg_quality",
    "path_prefix",
    "flat",
    "embed_images",
)
_READ_OPTIONS = ("class_descriptions", "images_csv", "image_labels")


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, object]:
    """The options among `names` that were given on the command line."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _run_convert(args: argparse.Namespace) -> int:
    from annoconv.convert import convert
    from annoconv.formats import infer_format

    to_format = args.to_format or infer_format(args.output, for_writing=True)
    report = convert(
        args.source,
        args.output,
        from_format=args.from_format,
        read_options=_given(args, _READ_OPTIONS),
        **_convert_options(args, to_format),
    )
    _finish(report, args)
    return EXIT_OK


def _run_merge(args: argparse.Namespace) -> int:
    from annoconv.formats import infer_format
    from annoconv.merge import MergeSource, merge

    *sources, args.output = args.paths
    if len(sources) < 2:
        raise UsageError("merge needs at least two sources, then the output")
    to_format = args.to_format or infer_format(args.output, for_writing=True)
    args.from_format, formats = _per_source(args.from_format, len(sources), "--from")
    args.images, images = _per_source(args.images, len(sources), "--images")
    _check_archives(args.images, images)
    specs = [
        MergeSource(
            source,
            from_format=formats.get(index, args.from_format),
            images=images.get(index),
        )
        for index, source in enumerate(sources, 1)
    ]
    read_options = _given(args, _READ_OPTIONS)
    report = merge(
        specs, args.output, read_options=read_options, **_convert_options(args, to_format)
    )
    _finish(report, args)
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


def _check_archives(common: str | None, own: Mapping[int, str]) -> None:
    """An archive of images is streamed once for the whole run, so it serves every source."""
    from annoconv.io.archives import is_archive

    for index, images in sorted(own.items()):
        if is_archive(images):
            raise UsageError(
                f"--images {index}={images}: an archive of images is read once for the whole "
                f"run; give it for every source (--images {images})"
            )
    if common is not None and own and is_archive(common):
        raise UsageError(
            f"--images {common} is an archive, read for every source; "
            "per-source image folders cannot be added to it"
        )


def _convert_options(args: argparse.Namespace, to_format: str) -> dict[str, Any]:
    """The convert() options the command line gives (all but the source and its reading)."""
    write_options = _given(args, _WRITE_OPTIONS)
    columns = _split_columns(getattr(args, "columns", None))
    if columns:
        write_options["columns"] = columns
    return {
        "to_format": to_format,
        "images": args.images,
        "label_map": args.label_map,
        "extend_label_map": args.extend_label_map,
        "label_map_order": args.label_map_order,
        "label_map_output": _label_map_beside(args, to_format),
        "label_map_names": getattr(args, "label_map_names", "ids"),
        "split": args.split,
        "classes": getattr(args, "classes", None),
        "keep_empty": getattr(args, "keep_empty", False),
        "sample": getattr(args, "sample", None),
        "seed": args.seed,
        "on_error": args.on_error,
        "progress": not args.quiet,
        "write_options": write_options,
        **_operations(args),
        **_engine(args),
    }


def _engine(args: argparse.Namespace) -> dict[str, Any]:
    """The options of `_engine_options`, for the commands that have them."""
    if not hasattr(args, "engine"):
        return {}
    return {"engine": args.engine, "workers": args.workers, "scheduler": args.scheduler}


def _operations(args: argparse.Namespace) -> dict[str, Any]:
    """The options of `_operation_options`, as convert() takes them."""
    if not hasattr(args, "boxes_outside"):
        return {}
    split_lists = args.split_lists
    if args.voc_imagesets:
        from annoconv.ops import voc_imagesets

        split_lists = voc_imagesets(args.voc_imagesets)
    if args.stratify and not args.split:
        raise UsageError("--stratify needs --split NAME=FRACTION,...")
    if split_lists and args.split:
        raise UsageError("give --split or split lists (--split-lists, --voc-imagesets), not both")
    return {
        "exclude_classes": args.drop_classes,
        "rename": dict(args.rename) if args.rename else None,
        "min_size": args.min_size,
        "min_area": args.min_area,
        "drop_difficult": args.drop_difficult,
        "boxes_outside": args.boxes_outside,
        "dedup": args.dedup,
        "stratify": args.stratify,
        "split_lists": split_lists,
    }


def _label_map_beside(args: argparse.Namespace, to_format: str) -> str | None:
    """TFRecords come with their label map, written next to the shards unless one is given
    (or when the given one was extended)."""
    if to_format != "tfrecord" or (args.label_map and not args.extend_label_map):
        return None
    from annoconv.io.fs import dirname, join

    return join(dirname(args.output) or ".", "label_map.pbtxt")


def _run_labelmap(args: argparse.Namespace) -> int:
    from annoconv.convert import class_counts, open_reader
    from annoconv.labelmap import LabelMap

    *sources, output = args.paths
    if not sources and not args.classes:
        raise UsageError("labelmap needs at least one source or --classes, then OUT.pbtxt")
    result: LabelMap | None = None
    for source in sources:
        if source.lower().endswith(".pbtxt"):
            part = LabelMap.read(source)
        else:
            reader = open_reader(source, from_format=args.from_format, images=args.images)
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
    from annoconv.convert import open_reader
    from annoconv.stats import dataset_stats

    reader = open_reader(
        args.source,
        from_format=args.from_format,
        images=args.images,
        read_options=_given(args, _READ_OPTIONS),
    )
    stats = dataset_stats(reader, on_error=args.on_error, tiny=args.tiny)
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
        overwrite=args.overwrite,
        on_error=args.on_error,
    )
    if args.report_json:
        from annoconv.io.fs import write_atomic

        write_atomic(args.report_json, (result.to_json() + "\n").encode("utf-8"))
    if not args.quiet:
        print(result.summary(), file=sys.stderr)
    return EXIT_OK


def _run_formats(args: argparse.Namespace) -> int:
    from annoconv.formats import available_formats

    for entry in available_formats():
        suffixes = " ".join(entry.extensions)
        print(f"{entry.name:<10} {suffixes:<14} {entry.description}")
    return EXIT_OK


def _finish(report: Report, args: argparse.Namespace) -> None:
    if args.report_json:
        from annoconv.io.fs import write_atomic

        write_atomic(args.report_json, (report.to_json() + "\n").encode("utf-8"))
    if not args.quiet:
        print(report.summary(), file=sys.stderr)
        given = getattr(args, "label_map", None)
        for line in _pipeline_config_lines(report, given):
            print(line, file=sys.stderr)


def _pipeline_config_lines(report: Report, given_label_map: str | None) -> list[str]:
    """What the TF Object Detection API's pipeline.config takes for TFRecord outputs: each
    shard set as the glob `input_path` takes, the label map, and `num_classes` (its top id)."""
    from annoconv.formats.tfrecord import shard_sets
    from annoconv.labelmap import LabelMap, quote

    sets = shard_sets(report.outputs)
    if not sets:
        return []
    lines = ["for the TF Object Detection API's pipeline.config:"]
    for (prefix, count), shards in sets.items():
        if any(char in prefix for char in _GLOB_SPECIAL):  # the glob would not find them
            lines += [f"  input_path: {quote(shard)}" for shard in shards]
        else:
            lines.append(f"  input_path: {quote(f'{prefix}-?????-of-{count:05d}')}")
    written = [out.path for out in report.outputs if out.kind == "label_map"]
    for path in written or ([given_label_map] if given_label_map else []):
        lines.append(f"  label_map_path: {quote(path)}")
        lines.append(f"  num_classes: {LabelMap.read(path).max_id}")
    return lines


#: What tf.io.gfile.glob reads as a pattern in a path.
_GLOB_SPECIAL = "*?[]{}\\"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        from annoconv.io.fs import merge_storage_options, using_storage_options

        with using_storage_options(merge_storage_options(getattr(args, "storage_options", []))):
            return handler(args)
    except MissingDependencyError as error:
        return _fail(args, error, EXIT_FAILED)
    except (UsageError, FormatError) as error:
        return _fail(args, error, EXIT_USAGE)
    except AnnoconvError as error:
        return _fail(args, error, EXIT_FAILED)
    except OSError as error:
        return _fail(args, error, EXIT_FAILED)
    except KeyboardInterrupt:
        print("annoconv: interrupted; no output was published", file=sys.stderr)
        return 130


def _fail(args: argparse.Namespace, error: BaseException, code: int) -> int:
    if getattr(args, "debug", False):
        raise error
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"annoconv: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
