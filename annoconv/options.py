"""Typed options: the settings of a run (`RunOptions`) and the base of every format's own
read and write options (`FormatOptions`).

Both are pydantic models, checked as a whole before anything is read or written; what fails is
an `OptionError` of one line (the command line exits 2 on it). A format declares its options as
a `FormatOptions` model whose fields are its reader's or writer's keyword arguments; the
command line makes a flag of every field (see `annoconv.cli`), with the field's description as
help. A field's ``json_schema_extra`` may tune its flag: ``{"cli": False}`` keeps it an API
option only, ``{"separator": ","}`` takes a list as one comma-separated value,
``{"nargs": "+"}`` as several words, ``{"metavar": "N"}`` names the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from annoconv.errors import OptionError
from annoconv.labelmap import LabelMap

ErrorPolicyName = Literal["fail", "skip"]
EngineName = Literal["local", "processes", "dask"]
LabelOrderName = Literal["sorted", "first-seen"]
OutsidePolicyName = Literal["fail", "clip", "drop"]

M = TypeVar("M", bound=BaseModel)


class FormatOptions(BaseModel):
    """The options a format's reader or writer takes (subclass it, one field per option)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class NoOptions(FormatOptions):
    """A reader or writer that takes no options."""


def checked(model: type[M], given: Mapping[str, Any], what: str) -> M:
    """`given` as an instance of `model`, or an OptionError of one line naming `what` (e.g.
    "the tfrecord writer") and, for unknown names, the options it does take."""
    try:
        return model.model_validate(dict(given))
    except ValidationError as error:
        raise OptionError(_one_line(error, model, what)) from None


def given_fields(options: BaseModel) -> dict[str, Any]:
    """The fields of `options` that were given (not defaulted), as keyword arguments."""
    return {name: getattr(options, name) for name in options.model_fields_set}


def _one_line(error: ValidationError, model: type[BaseModel], what: str) -> str:
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "options"
        if item["type"] == "extra_forbidden":
            takes = ", ".join(sorted(model.model_fields)) or "none"
            problems.append(f"{what} does not take option {name!r}; it takes: {takes}")
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["loc"]:
            problems.append(f"{name}: {message} (got {_shown(item.get('input'))})")
        else:
            problems.append(message)
    return "; ".join(problems)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class RunOptions(BaseModel):
    """Everything a conversion is asked to do besides its source and output: the keyword
    arguments of `annoconv.convert()`, which `merge()`, `write()` and the command line pass on.
    Checked as a whole before the run starts; see `convert()` for what each one does."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    from_format: str | None = None
    to_format: str | None = None
    images: str | None = None
    label_map: str | LabelMap | None = None
    extend_label_map: bool = False
    label_map_order: LabelOrderName = "sorted"
    label_map_output: str | None = None
    overwrite: bool = False
    label_map_names: Literal["ids", "labels"] = "ids"
    split: Mapping[str, float] | None = None
    keep_splits: bool = False
    classes: Sequence[str] | None = None
    keep_empty: bool = False
    sample: int | None = Field(None, ge=1)
    seed: int = 0
    on_error: ErrorPolicyName = "fail"
    progress: bool = False
    read_options: Mapping[str, Any] = Field(default_factory=dict)
    write_options: Mapping[str, Any] = Field(default_factory=dict)
    stratify: bool = False
    split_lists: Mapping[str, str | Sequence[str]] | None = None
    exclude_classes: Sequence[str] | None = None
    rename: Mapping[str, str] | None = None
    min_size: float | tuple[float, float] | None = None
    min_area: float | None = Field(None, ge=0)
    drop_difficult: bool = False
    boxes_outside: OutsidePolicyName = "fail"
    dedup: bool = False
    allow_remote_paths: bool = False
    storage_options: Mapping[str, Any] = Field(default_factory=dict)
    engine: EngineName = "local"
    workers: int | None = Field(None, ge=1)
    scheduler: Any = None

    @field_validator("read_options", "write_options", "storage_options", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("split", mode="before")
    @classmethod
    def _parse_split(cls, value: Any) -> Any:
        from annoconv.ops import check_split, parse_split

        if isinstance(value, str):
            return parse_split(value)
        if isinstance(value, Mapping):
            check_split(value)
        return value

    @field_validator("split_lists", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        if isinstance(value, Mapping):  # a list of keys, or a file holding one
            return {
                name: keys if isinstance(keys, str) else list(keys) for name, keys in value.items()
            }
        return value

    @field_validator("min_size", mode="before")
    @classmethod
    def _min_size(cls, value: Any) -> Any:
        sizes = value if isinstance(value, (tuple, list)) else [value]
        if value is not None and any(isinstance(size, (int, float)) and size < 0 for size in sizes):
            raise ValueError("a minimum size cannot be negative")
        return value

    @field_validator("classes", "exclude_classes", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("give a list of class names, not one string")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> RunOptions:
        if self.split and self.split_lists:
            raise ValueError("give either a split by ratio or split lists, not both")
        if self.keep_splits and (self.split or self.split_lists):
            raise ValueError(
                "keep_splits keeps the source's own splits: give it without a split or split lists"
            )
        if self.stratify and not self.split:
            raise ValueError("stratify needs a split by ratio (split=...)")
        problem = engine_problem(self.engine, self.workers, self.scheduler)
        if problem:
            raise ValueError(problem)
        return self

    @classmethod
    def of(cls, given: Mapping[str, Any]) -> RunOptions:
        """The options in `given` (keyword arguments), checked; an OptionError otherwise."""
        return checked(cls, given, "convert()")

    def replaced(self, **changes: Any) -> RunOptions:
        """A copy with `changes`, checked again."""
        return RunOptions.of({**given_fields(self), **changes})


def engine_problem(engine: str, workers: int | None, scheduler: Any) -> str | None:
    """What is wrong with this combination of engine settings, if anything."""
    if engine not in get_args(EngineName):
        return f"unknown engine {engine!r}; engines: {', '.join(get_args(EngineName))}"
    if workers is not None and workers < 1:
        return f"workers must be at least 1, got {workers}"
    if scheduler is not None and engine != "dask":
        return "a scheduler is only used with engine 'dask'"
    if workers is not None and engine == "local":
        return "workers needs engine 'processes' or 'dask'"
    if workers is not None and scheduler is not None:
        return "workers sizes a LocalCluster; a running scheduler has its own"
    return None


def cli_fields(model: type[BaseModel]) -> Iterable[tuple[str, Any]]:
    """The fields of a format's options model that the command line makes flags of."""
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("cli", True):
            yield name, info
