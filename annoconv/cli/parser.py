"""The ``annoconv`` parser: commands, the flags of a run, the generated format flags.

Parsing only: each command names its handler (`annoconv.cli.commands.HANDLERS`)."""

from __future__ import annotations

import argparse

from annoconv.cli.common import Parser, argument_type
from annoconv.cli.flags import format_flags
from annoconv.report import ERROR_POLICIES

CONVERT_EXAMPLES = """examples:
  annoconv convert annotations/ train.csv --images images/
  annoconv convert annotations/ out/data.record --images images/ \\
      --split train=0.8,test=0.2 --shards 4
  annoconv convert oidv6-train-annotations-bbox.csv cams.parquet \\
      --class-descriptions class-descriptions-boxable.csv --classes Camera "Mobile phone"
  annoconv convert s3://bucket/voc/ s3://bucket/out.record --storage-option endpoint_url=http://...
"""


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

    return argument_type(parse_storage_option)(text)


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


def _format_names(listed: bool) -> str:
    """ ": NAME, NAME..." of the registered formats, for the help of the command being run
    (`listed`): naming them loads the plugins' entry points, which other commands skip."""
    if not listed:
        return ""
    from annoconv.formats import available_formats

    return ": " + ", ".join(entry.name for entry in available_formats())


def _reading(parser: argparse.ArgumentParser, *, listed: bool = True) -> None:
    parser.add_argument(
        "--from",
        dest="from_format",
        metavar="FORMAT",
        help=f"source format{_format_names(listed)}",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="folder, URL or tar/zip archive holding the images, for sizes missing from the "
        "annotations",
    )


def _merge_reading(parser: argparse.ArgumentParser, *, listed: bool = True) -> None:
    """--from and --images for every source, or per source as N=VALUE (repeatable)."""
    parser.add_argument(
        "--from",
        dest="from_format",
        metavar="[N=]FORMAT",
        action="append",
        default=[],
        help="source format, of every source or, as N=FORMAT, of the Nth source "
        f"(repeatable){_format_names(listed)}",
    )
    parser.add_argument(
        "--images",
        metavar="[N=]DIR",
        action="append",
        default=[],
        help="folder, URL or tar/zip archive holding the images of every source or, as "
        "N=DIR, a folder or URL holding the Nth source's (repeatable)",
    )


def _writing(parser: argparse.ArgumentParser, *, listed: bool = True) -> None:
    parser.add_argument(
        "--to", dest="to_format", metavar="FORMAT", help=f"output format{_format_names(listed)}"
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
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a different label_map.pbtxt already beside the outputs, or write over a "
        "file or non-empty folder at DST that does not read as DST's format (default: refuse)",
    )
    parser.add_argument(
        "--label-map-names",
        choices=("ids", "labels"),
        default="ids",
        help="label map item names, for datasets with class ids (Open Images MIDs): the ids "
        "(the OD API convention, default) or the class names",
    )


def _split_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split",
        metavar="SPEC",
        help="write one output per split, e.g. train=0.7,test=0.3 (by image, one label map)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the split assignment (default 0)"
    )
    parser.add_argument(
        "--keep-splits",
        action="store_true",
        help="write one output per split the source gives (Roboflow's train/valid/test "
        "folders, a data.yaml's splits, instances_<split>.json files, a split column)",
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

    return argument_type(parse_rename)(text)


def _min_size_spec(text: str) -> tuple[float, float]:
    from annoconv.filters import parse_min_size

    return argument_type(parse_min_size)(text)


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
        "--allow-remote-paths",
        action="store_true",
        help="open image URLs the annotations name (a VOC <path>, a Parquet image_uri) "
        "anywhere; by default only under --images or the annotations' own remote folder, "
        "so that untrusted annotations cannot make the run fetch URLs",
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


def _run_options(parser: argparse.ArgumentParser, *, engine: bool = True) -> None:
    """The flags of `RunOptions` that the conversion commands share."""
    _label_map_options(parser)
    _split_options(parser)
    _selection_options(parser)
    _operation_options(parser)
    if engine:
        _engine_options(parser)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `annoconv` parser. With `command` (what `main` does, "" for none), the flags of
    format options and the format lists are made for that command only, so that a run loads
    only what it uses; without it, for every command (the docs' reference)."""

    def wants_formats(name: str) -> bool:
        return command is None or command == name

    parser = Parser(
        prog="annoconv",
        description="Convert object-detection annotations into training datasets.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    convert = commands.add_parser(
        "convert",
        help="convert SRC into DST (formats inferred from the paths)",
        description="Convert SRC into DST; formats are inferred from the paths unless named.",
        epilog=CONVERT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("source", metavar="SRC", help="file, folder, glob or URL to read")
    convert.add_argument("output", metavar="DST", help="file or folder to write")
    _writing(convert, listed=wants_formats("convert"))
    _reading(convert, listed=wants_formats("convert"))
    _run_options(convert)
    _common(convert)
    if wants_formats("convert"):
        format_flags(convert, "read")
        format_flags(convert, "write")
    convert.set_defaults(handler="convert")

    merge = commands.add_parser(
        "merge",
        help="merge several sources (any formats) into one dataset, one label map",
        usage="annoconv merge SRC SRC [SRC ...] DST [options]",
        description="Merge two or more sources (files, folders, globs or URLs, of any formats) "
        "into DST, keys made unique, one label map.",
    )
    merge.add_argument(
        "sources", metavar="SRC", nargs="+", help="two or more sources, merged in this order"
    )
    merge.add_argument("output", metavar="DST", help="file or folder to write")
    _writing(merge, listed=wants_formats("merge"))
    _merge_reading(merge, listed=wants_formats("merge"))
    _run_options(merge, engine=False)
    _common(merge)
    if wants_formats("merge"):
        format_flags(merge, "read")
        format_flags(merge, "write")
    merge.set_defaults(handler="merge")

    xml2csv = commands.add_parser(
        "xml2csv", help="labelImg VOC XML folder -> CSV (filename,width,height,class,...)"
    )
    xml2csv.add_argument("source", metavar="XML_DIR", help="folder (searched recursively) or glob")
    xml2csv.add_argument("output", metavar="OUT.csv")
    xml2csv.add_argument("--images", metavar="DIR", help="images, for sizes missing from XMLs")
    _run_options(xml2csv, engine=False)
    _common(xml2csv)
    if wants_formats("xml2csv"):
        format_flags(xml2csv, "read", only=["voc"])
        format_flags(xml2csv, "write", only=["csv"])
    xml2csv.set_defaults(handler="convert", from_format="voc", to_format="csv")

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
    _run_options(xml2tfrecord)
    _common(xml2tfrecord)
    if wants_formats("xml2tfrecord"):
        format_flags(xml2tfrecord, "read", only=["voc"])
        format_flags(xml2tfrecord, "write", only=["tfrecord"])
    xml2tfrecord.set_defaults(handler="convert", from_format="voc", to_format="tfrecord")

    inspect = commands.add_parser(
        "inspect", help="check TFRecord files (CRCs, keys, classes) without TensorFlow"
    )
    inspect.add_argument("files", metavar="FILE", nargs="+", help="TFRecord files or prefixes")
    inspect.add_argument("--label-map", metavar="PBTXT", help="check class ids against it")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    _storage_options(inspect)
    inspect.set_defaults(handler="inspect")

    labelmap = commands.add_parser(
        "labelmap",
        help="write a label map (.pbtxt) from data, class names or other maps",
        usage="annoconv labelmap [SRC ...] OUT.pbtxt [--classes NAME ...] [options]",
        description="Write OUT.pbtxt from the classes of data sources, of other .pbtxt maps "
        "and of --classes, merged in that order (at least one of them).",
    )
    labelmap.add_argument(
        "sources",
        metavar="SRC",
        nargs="*",
        help="data (any format) or .pbtxt maps, merged in this order",
    )
    labelmap.add_argument("output", metavar="OUT.pbtxt", help="the label map to write")
    labelmap.add_argument("--classes", nargs="+", metavar="NAME", help="class names to include")
    labelmap.add_argument(
        "--order",
        choices=("sorted", "first-seen"),
        default="sorted",
        help="id order of classes taken from data or --classes (default: sorted by name)",
    )
    _reading(labelmap, listed=wants_formats("labelmap"))
    _common(labelmap)
    if wants_formats("labelmap"):
        format_flags(labelmap, "read")
    labelmap.set_defaults(handler="labelmap")

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
    stats.add_argument(
        "--no-image-sizes",
        dest="image_sizes",
        action="store_false",
        help="do not read image headers for the pixel size of records without one (YOLO, "
        "Open Images): their boxes then have no pixel size",
    )
    _reading(stats, listed=wants_formats("stats"))
    _common(stats)
    if wants_formats("stats"):
        format_flags(stats, "read")
    stats.set_defaults(handler="stats")

    _images_commands(commands)
    _preview_command(commands, with_formats=wants_formats("preview"))

    formats = commands.add_parser("formats", help="list the formats annoconv reads and writes")
    formats.set_defaults(handler="formats", debug=False)

    completion = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description='Print a completion script: eval "$(annoconv completion bash)" in '
        '~/.bashrc, or eval "$(annoconv completion zsh)" in ~/.zshrc after compinit.',
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell")
    completion.set_defaults(handler="completion", debug=False)
    return parser


def _version() -> str:
    from annoconv.version import __version__

    return f"annoconv {__version__}"


def _images_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    images = commands.add_parser("images", help="work on image files: transcode")
    actions = images.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
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
        "--png-level",
        type=int,
        choices=range(10),
        default=None,
        metavar="L",
        help="zlib level of PNGs, 0-9 (default 1: fast; 9: smallest, slowest)",
    )
    transcode.add_argument(
        "--overwrite", action="store_true", help="replace outputs that exist (default: skip)"
    )
    _common(transcode)
    transcode.set_defaults(handler="transcode")


def _preview_command(
    commands: argparse._SubParsersAction[Parser], *, with_formats: bool = True
) -> None:
    """The `preview` subcommand: SRC's boxes drawn on its images, as a page or a PNG."""
    from annoconv.preview.settings import DEFAULT_IMAGE_SIZE, DEFAULT_SAMPLE

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
    _common(preview)
    if with_formats:
        format_flags(preview, "read")
    preview.set_defaults(handler="preview")
