"""Flags made from the formats' option models: a format, built in or a plugin, brings its
flags with it, grouped under its name in ``--help``."""

from __future__ import annotations

import argparse
import types
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from annoconv.cli.common import Direction


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
