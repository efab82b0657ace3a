"""The `annoconv` command: a thin layer over the Python API.

Every flag of a format option is made from the format's own option models
(`Format.read_options` / `Format.write_options`), grouped by format in `--help`, so a format,
built in or a plugin, brings its flags with it. Checks live in the library: the command line
only parses, calls the API and prints.

Exit codes: 0 success, 1 conversion error (bad input, unknown classes, I/O), 2 usage error
(a bad flag or option, raised before anything is written). Errors print as one line on
stderr; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, Union, get_args, get_origin

from annoconv.errors import AnnoconvError, MissingDependencyError, OptionError
from annoconv.report import ERROR_POLICIES, Report

if TYPE_CHECKING:
    from annoconv.options import RunOptions

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
Direction = Literal["read", "write"]

CONVERT_EXAMPLES = """examples:
  annoconv convert annotations/ train.csv --images images/
  annoconv convert annotations/ out/data.record --images images/ \\
      --split train=0.8,test=0.2 --shards 4
  annoconv convert oidv6-train-annotations-bbox.csv cams.parquet \\
      --class-descriptions class-descriptions-boxable.csv --classes Camera "Mobile phone"
  annoconv convert s3://bucket/voc/ s3://bucket/out.record --storage-option endpoint_url=http://...
"""


class UsageError(OptionError):
    """A command line that cannot be run as given."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and where to look, not the whole usage block."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` as an argparse type: its ValueError becomes a usage error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


# --- flags made from the formats' option models ------------------------------------------


class FormatFlag:
    """One flag of a format option: the option's name, which side it is given to (the reader
    or the writer) and the formats that declare it (formats declaring an option of the same
    name share its flag; the format in use checks the value)."""

    def __init__(self, flag: str, option: str, direction: Direction) -> None:
        self.flag = flag
        self.option = option
        self.direction = direction
        self.formats: list[str] = []

    @property
    def dest(self) -> str:
        return f"{self.direction}_option.{self.option}"


def format_flags(
    parser: argparse.ArgumentParser,
    direction: Direction,
    only: Sequence[str] | None = None,
) -> None:
    """Add a flag for every command-line option of the formats' `direction` option models
    (of the formats in `only`, or every loadable one), in a group per format."""
    from annoconv.formats import get_format, loadable_formats
    from annoconv.options import cli_fields

    formats = [get_format(name) for name in only] if only else loadable_formats()
    taken = {flag for action in parser._actions for flag in action.option_strings}
    shared: dict[str, tuple[FormatFlag, argparse.Action]] = getattr(parser, "_format_flags", {})
    for fmt in formats:
        model = fmt.read_options if direction == "read" else fmt.write_options
        fields = list(cli_fields(model))
        if not fields:
            continue
        side = "input" if direction == "read" else "output"
        group = parser.add_argument_group(f"{fmt.name} {side}", fmt.description)
        for name, info in fields:
            flag = "--" + name.replace("_", "-")
            if flag in shared and shared[flag][0].direction == direction:
                shared[flag][0].formats.append(fmt.name)
                _note_sharing(*shared[flag], _argparse_kind(name, info))
                continue
            if flag in taken:
                flag = f"--{fmt.name}-{name.replace('_', '-')}"
            spec = FormatFlag(flag, name, direction)
            spec.formats.append(fmt.name)
            action = group.add_argument(flag, dest=spec.dest, **_argparse_kind(name, info))
            shared[flag] = (spec, action)
            taken.add(flag)
    parser._format_flags = shared  # type: ignore[attr-defined]


def _note_sharing(spec: FormatFlag, action: argparse.Action, other: Mapping[str, Any]) -> None:
    """A flag several formats declare takes any value one of their models accepts (the
    format in use checks it): the choices of both, the type they share (else text), and the
    help names the formats."""
    if action.choices is not None and "choices" in other:
        action.choices = list(dict.fromkeys([*action.choices, *other["choices"]]))
    else:
        action.choices = None
        action.metavar = action.metavar or spec.option.upper()
    if action.type is not other.get("type"):
        action.type = None
    action.help = f"{(action.help or '').split(' [')[0]} [{', '.join(spec.formats)}]"


def _argparse_kind(name: str, info: Any) -> dict[str, Any]:
    """The argparse keywords of a pydantic field: its type, choices, help and metavar."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    annotation = _without_none(info.annotation)
    kind: dict[str, Any] = {"default": argparse.SUPPRESS, "help": _field_help(info)}
    if annotation is bool:
        kind["action"] = "store_true"
        return kind
    if get_origin(annotation) is Literal:
        kind["choices"] = [value for value in get_args(annotation) if value is not None]
    elif annotation in (int, float):
        kind["type"] = annotation
    if "separator" in extra:
        separator = str(extra["separator"])
        kind["type"] = lambda text: [part.strip() for part in text.split(separator) if part.strip()]
    if "nargs" in extra:
        kind["nargs"] = extra["nargs"]
    kind["metavar"] = extra.get("metavar", None if "choices" in kind else name.upper())
    return kind


def _without_none(annotation: Any) -> Any:
    """`X` of ``X | None``; a union of several types stays as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [arg for arg in get_args(annotation) if arg is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def _field_help(info: Any) -> str:
    text = (info.description or "").replace("%", "%%")
    default = info.get_default(call_default_factory=True)
    if default not in (None, False, [], ()) and "default" not in text:
        text += f" (default {default})"
    return text


def format_options(args: argparse.Namespace, direction: Direction) -> dict[str, Any]:
    """The format options of `direction` given on the command line, by option name."""
    prefix = f"{direction}_option."
    return {
        dest[len(prefix) :]: value for dest, value in vars(args).items() if dest.startswith(prefix)
    }


# --- the options of a run -------------------------------------------------------------------


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
        help="replace a different label_map.pbtxt already beside the outputs (default: refuse)",
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

    parser = _Parser(
        prog="annoconv",
        description="Convert object-detection annotations into training datasets.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
    convert.set_defaults(handler=_run_convert)

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
    merge.set_defaults(handler=_run_merge)

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
    _run_options(xml2tfrecord)
    _common(xml2tfrecord)
    if wants_formats("xml2tfrecord"):
        format_flags(xml2tfrecord, "read", only=["voc"])
        format_flags(xml2tfrecord, "write", only=["tfrecord"])
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
    _reading(stats, listed=wants_formats("stats"))
    _common(stats)
    if wants_formats("stats"):
        format_flags(stats, "read")
    stats.set_defaults(handler=_run_stats)

    _images_commands(commands)
    _preview_command(commands, with_formats=wants_formats("preview"))

    formats = commands.add_parser("formats", help="list the formats annoconv reads and writes")
    formats.set_defaults(handler=_run_formats, debug=False)

    completion = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description='Print a completion script: eval "$(annoconv completion bash)" in '
        '~/.bashrc, or eval "$(annoconv completion zsh)" in ~/.zshrc after compinit.',
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell")
    completion.set_defaults(handler=_run_completion, debug=False)
    return parser


def _version() -> str:
    from annoconv.version import __version__

    return f"annoconv {__version__}"


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
    transcode.set_defaults(handler=_run_transcode)


# --- `annoconv preview` (annoconv/preview/) ----------------------------------------------------


def _preview_command(
    commands: argparse._SubParsersAction[_Parser], *, with_formats: bool = True
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
    preview.set_defaults(handler=_run_preview_command)


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


def _engine_named(words: Sequence[str]) -> str | None:
    """The value of ``--engine`` among the command-line words, before they are parsed."""
    for index, word in enumerate(words):
        if word == "--engine" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--engine="):
            return word.partition("=")[2]
    return None


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


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv` (its first word that is not a flag)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if _engine_named(words) == "processes":
        from annoconv.forkserver import start_early

        start_early()  # the workers' server imports annoconv while the flags are made
    try:
        parser = build_parser(_command(words) or "")
    except AnnoconvError as error:  # a plugin format whose options cannot be made flags
        print(f"annoconv: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    args = parser.parse_args(words)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        from annoconv.io.fs import merge_storage_options, using_storage_options

        with using_storage_options(merge_storage_options(getattr(args, "storage_options", []))):
            return handler(args)
    except MissingDependencyError as error:
        return _fail(args, error, EXIT_FAILED)
    except OptionError as error:
        return _fail(args, error, EXIT_USAGE)
    except AnnoconvError as error:
        return _fail(args, error, EXIT_FAILED)
    except OSError as error:
        return _fail(args, error, EXIT_FAILED)
    except KeyboardInterrupt:
        print("annoconv: interrupted; no output was published", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """The `annoconv` command: `main()`, then an exit that skips the interpreter's teardown
    once the output streams are flushed. Every resource of a run is closed by then; the
    teardown could still abort in Arrow's C++ thread pool (`terminate called without an
    active exception`, exit 134, about 1 run in 40 after an Open Images run failed:
    apache/arrow#34314), turning a reported error or a success into a crash."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _fail(args: argparse.Namespace, error: BaseException, code: int) -> int:
    if getattr(args, "debug", False):
        raise error
    message = " ".join(str(error).split()) or type(error).__name__
    hint = f" (see annoconv {args.command} --help)" if code == EXIT_USAGE else ""
    print(f"annoconv: error: {message}{hint}", file=sys.stderr)
    return code


if __name__ == "__main__":
    run()
