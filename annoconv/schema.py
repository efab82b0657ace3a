"""The typed in-memory model every reader produces and every writer consumes.

One source of truth: the pydantic models below define the fields, their types and their
validation, and `arrow_schema()` derives the matching Arrow schema from the same definitions.

Coordinates are kept as the source gave them, in a declared `coords` space (`pixel` or
`normalized`); `ImageRecord.in_space()` converts when a writer needs the other space.
Flags are tri-state: 1 true, 0 false, -1 unknown (never read -1 as true).
"""

from __future__ import annotations

import math
import types
import typing
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from annoconv.errors import AnnotationError

if TYPE_CHECKING:
    import pyarrow as pa

CoordSpace = Literal["pixel", "normalized"]
PIXEL: CoordSpace = "pixel"
NORMALIZED: CoordSpace = "normalized"

Flag = Literal[-1, 0, 1]
UNKNOWN: Flag = -1

# Normalized coordinates may stray this far outside [0, 1] from float rounding in other tools.
NORMALIZED_TOLERANCE = 1e-4
# Pixel coordinates may exceed the image by this much (float noise), never by a pixel.
PIXEL_TOLERANCE = 1e-6

#: The pydantic error type of a box outside its image (see `make_record`).
BOX_OUTSIDE = "box_outside"
# Validation context key that turns the inside-the-image check off (for BoxOutsideError.record).
_CHECK_BOUNDS = "check_bounds"

#: A box's `source` as Arrow and Parquet name it: unlike the image's `source`, so that unnesting
#: the objects beside the image columns (polars `unnest`, DuckDB `UNNEST`) gives unique names.
#: Files written before the rename name it `source`; the Parquet reader takes either.
BOX_SOURCE = "box_source"

FLAG_FIELDS = ("difficult", "truncated", "occluded", "group_of", "depiction", "inside")
BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")


class ArrowType:
    """Field metadata choosing a narrower Arrow type than the default for the Python type."""

    def __init__(self, name: str) -> None:
        self.name = name


#: Sizes are stored as int32 (Arrow, Parquet), so larger values are refused when a record is made.
MAX_INT32 = 2**31 - 1
#: Whole numbers read from text with more significant digits than this are refused before they
#: are converted: none is a size or a coordinate of any image, and Python refuses to convert
#: more than 4,300 digits (in time quadratic in the digits below that).
MAX_NUMBER_DIGITS = 18
Int32 = Annotated[int, ArrowType("int32"), Field(le=MAX_INT32)]


class ObjectAnnotation(BaseModel):
    """One labelled box. Coordinates are in the owning image's `coords` space."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    label: str = Field(min_length=1)
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    difficult: Flag = UNKNOWN
    truncated: Flag = UNKNOWN
    occluded: Flag = UNKNOWN
    group_of: Flag = UNKNOWN
    depiction: Flag = UNKNOWN
    inside: Flag = UNKNOWN
    pose: str | None = None
    confidence: float | None = None
    source: str | None = Field(
        default=None,
        serialization_alias=BOX_SOURCE,
        validation_alias=AliasChoices("source", BOX_SOURCE),
    )

    @field_validator("xmin", "ymin", "xmax", "ymax")
    @classmethod
    def _finite(cls, value: float) -> float:
        problem = _not_finite(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ObjectAnnotation:
        problem = _disordered(self.xmin, self.ymin, self.xmax, self.ymax)
        if problem:
            raise ValueError(problem)
        return self


def _not_finite(value: float) -> str | None:
    return None if math.isfinite(value) else f"coordinate must be a finite number, got {value}"


def _disordered(xmin: float, ymin: float, xmax: float, ymax: float) -> str | None:
    if xmin > xmax:
        return f"xmin {format_number(xmin)} > xmax {format_number(xmax)}"
    if ymin > ymax:
        return f"ymin {format_number(ymin)} > ymax {format_number(ymax)}"
    return None


class ImageLabel(BaseModel):
    """An image-level label (Open Images verified labels); confidence 0 means verified absent."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    label: str = Field(min_length=1)
    confidence: float | None = None


class ImageRecord(BaseModel):
    """One image and its annotations.

    `key` identifies the record within its dataset (the annotation path relative to the
    source root for VOC, so equal `filename`s in different folders stay apart). `filename` is
    the image name relative to the dataset's image root, in posix form. `image_uri` is where
    the image bytes were found, when they were looked up; `path` is the image path recorded by
    the annotation tool (often a path on the annotator's machine).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    key: str = Field(min_length=1)
    filename: str = Field(min_length=1)
    width: Int32 | None = Field(default=None, ge=1)
    height: Int32 | None = Field(default=None, ge=1)
    depth: Int32 | None = Field(default=None, ge=1)
    coords: CoordSpace = PIXEL
    objects: list[ObjectAnnotation] = Field(default_factory=list)
    image_labels: list[ImageLabel] = Field(default_factory=list)
    split: str | None = None
    path: str | None = None
    image_uri: str | None = None
    sha256: str | None = None
    verified: bool | None = None
    source: str | None = None

    @model_validator(mode="after")
    def _boxes_inside(self, info: ValidationInfo) -> ImageRecord:
        if info.context and not info.context.get(_CHECK_BOUNDS, True):
            return self
        for index, obj in enumerate(self.objects):
            problem = outside_problem(obj, self.coords, self.width, self.height)
            if problem:
                raise PydanticCustomError(
                    BOX_OUTSIDE,
                    "{where}",
                    {"where": f"object[{index + 1}] ({obj.label!r}): {problem}"},
                )
        return self

    @property
    def has_size(self) -> bool:
        return self.width is not None and self.height is not None

    def require_size(self, why: str = "a pixel/normalized conversion") -> tuple[int, int]:
        """(width, height), or an error naming the record when the size is unknown."""
        if self.width is None or self.height is None:
            raise AnnotationError(
                self.source or self.key,
                f"image size is unknown but {why} needs it; "
                "pass the images (--images DIR) so their headers can be read",
            )
        return self.width, self.height

    def in_space(self, space: CoordSpace) -> ImageRecord:
        """This record with its boxes in `space` (a copy; the same record if already there)."""
        if space == self.coords:
            return self
        width, height = self.require_size(f"converting to {space} coordinates")
        scale = _scaler(width, height, to_normalized=space == NORMALIZED)
        objects = [obj.model_copy(update=scale(obj)) for obj in self.objects]
        return self.model_copy(update={"coords": space, "objects": objects})


def _scaler(width: int, height: int, to_normalized: bool) -> Any:
    fx, fy = (1.0 / width, 1.0 / height) if to_normalized else (float(width), float(height))

    def scale(obj: ObjectAnnotation) -> dict[str, float]:
        return {
            "xmin": obj.xmin * fx,
            "xmax": obj.xmax * fx,
            "ymin": obj.ymin * fy,
            "ymax": obj.ymax * fy,
        }

    return scale


def outside_problem(
    obj: ObjectAnnotation, space: CoordSpace, width: int | None, height: int | None
) -> str | None:
    """What puts `obj` outside its image (beyond the tolerances above), or None."""
    if space == NORMALIZED:
        low, high_x, high_y, tol = 0.0, 1.0, 1.0, NORMALIZED_TOLERANCE
    elif width is not None and height is not None:
        low, high_x, high_y, tol = 0.0, float(width), float(height), PIXEL_TOLERANCE
    else:
        return None if min(obj.xmin, obj.ymin) >= -PIXEL_TOLERANCE else _negative(obj)
    for name, limit in (("xmin", high_x), ("xmax", high_x), ("ymin", high_y), ("ymax", high_y)):
        value = getattr(obj, name)
        if value < low - tol or value > limit + tol:
            bounds = "[0, 1]" if space == NORMALIZED else f"[0, {limit:g}] (image {width}x{height})"
            return f"{name} {format_number(value)} is outside {bounds}"
    return None


def _negative(obj: ObjectAnnotation) -> str:
    name = "xmin" if obj.xmin < 0 else "ymin"
    return f"{name} {format_number(getattr(obj, name))} is negative"


# Integral floats at or beyond this print in exponent form, as repr does (1e+16).
_INT_FORMAT_LIMIT = 1e16


def format_number(value: float) -> str:
    """A number as text that parses back to the same float: `829`, `45.70000076293945`."""
    value = float(value)
    if value.is_integer() and abs(value) < _INT_FORMAT_LIMIT:
        return str(int(value))
    return repr(value)


def format_validation_error(error: ValidationError) -> tuple[str, str]:
    """(where, message) of the first problem pydantic found, in our own words."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"].removeprefix("Value error, ")
    if "input" in first and first["type"] not in ("value_error", "assertion_error", BOX_OUTSIDE):
        message = f"{message} (got {first['input']!r})"
    return where or "", message


def build_models() -> None:
    """Build the models' validators now. They are built when first used (``defer_build``:
    a parallel run's driver makes no record, and building costs ~17 ms); the processes
    engine's forkserver calls this so that every worker it forks has them built."""
    for model in (ObjectAnnotation, ImageLabel, ImageRecord):
        model.model_rebuild()


def make_object(source: str | None, where: str | None, **fields: Any) -> ObjectAnnotation:
    """Build an ObjectAnnotation, turning validation errors into AnnotationErrors at `where`."""
    try:
        return ObjectAnnotation(**fields)
    except ValidationError as exc:
        field, message = format_validation_error(exc)
        location = "/".join(part for part in (where, field) if part) or None
        raise AnnotationError(source, message, location) from None


class BoxOutsideError(AnnotationError):
    """A record whose boxes reach outside its image; `record` is the record as read (built
    without that check), for the `boxes_outside` policies that clip or drop such boxes."""

    def __init__(
        self,
        source: str | None,
        message: str,
        where: str | None = None,
        *,
        record: ImageRecord | None = None,
    ) -> None:
        super().__init__(source, message, where)
        self.record = record

    def with_source(self, source: str) -> AnnotationError:
        return (
            self
            if self.source
            else BoxOutsideError(source, self.message, self.where, record=self.record)
        )

    def relocated(self, where: str | None) -> BoxOutsideError:
        return BoxOutsideError(self.source, self.message, where, record=self.record)


def make_record(source: str | None, where: str | None = None, **fields: Any) -> ImageRecord:
    """Build an ImageRecord, turning validation errors into AnnotationErrors naming `source`.

    A record whose only fault is a box outside the image raises BoxOutsideError, which
    carries the record as read, so that a `boxes_outside="clip"` or `"drop"` policy can
    repair it later while readers stay strict by default.
    """
    try:
        return ImageRecord(source=source, **fields)
    except ValidationError as exc:
        field, message = format_validation_error(exc)
        location = "/".join(part for part in (where, field) if part) or None
        if exc.errors()[0]["type"] == BOX_OUTSIDE:
            record = ImageRecord.model_validate(
                {"source": source, **fields}, context={_CHECK_BOUNDS: False}
            )
            raise BoxOutsideError(source, message, location, record=record) from None
        raise AnnotationError(source, message, location) from None


def with_image_size(record: ImageRecord, width: int, height: int, depth: int | None) -> ImageRecord:
    """`record` with the size read from its image, its boxes checked against that size as a
    reader checks an annotated one: a box outside raises BoxOutsideError, carrying the sized
    record for the `boxes_outside` policies."""
    size = {"width": width, "height": height, "depth": depth}
    sized = record.model_copy(update=size)
    if not any(outside_problem(obj, sized.coords, width, height) for obj in sized.objects):
        return sized
    # Built again through validation only to fail with the reader's own message.
    fields = {**record.model_dump(exclude={"source"}), **size}
    try:
        return make_record(record.source, None, **fields)
    except BoxOutsideError as error:
        message = f"{error.message}, a size read from the image file"
        raise BoxOutsideError(error.source, message, error.where, record=error.record) from None


def trusted_object(**fields: Any) -> ObjectAnnotation:
    """An ObjectAnnotation from values the caller has already checked as its validators
    would (a non-empty label, finite and ordered coordinates, flags in -1/0/1), built without
    validating them again: for readers' hot paths, which fall back to `make_object` for
    anything they have not checked."""
    return _construct(ObjectAnnotation, _OBJECT_DEFAULTS, fields)


def trusted_record(**fields: Any) -> ImageRecord:
    """An ImageRecord from checked values (see `trusted_object`; the boxes must lie inside the
    image), built without validation. `objects` must be given; `image_labels` defaults to
    a new empty list."""
    values = {**_RECORD_DEFAULTS, "image_labels": [], **fields}
    return _construct(ImageRecord, values, {}, set(fields))


_Model = typing.TypeVar("_Model", bound=BaseModel)


def _construct(
    model: type[_Model],
    defaults: dict[str, Any],
    fields: dict[str, Any],
    fields_set: set[str] | None = None,
) -> _Model:
    # What pydantic's model_construct does for these plain models (no extras, no private
    # attributes), minus its per-field bookkeeping; test_schema checks the result equals
    # a validated model.
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", {**defaults, **fields})
    object.__setattr__(instance, "__pydantic_fields_set__", fields_set or set(fields))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


_OBJECT_DEFAULTS = {name: info.default for name, info in ObjectAnnotation.model_fields.items()}
_RECORD_DEFAULTS = {
    name: info.default
    for name, info in ImageRecord.model_fields.items()
    if name not in ("objects", "image_labels")
}


# --- Arrow schema, derived from the models above -------------------------------------------


@cache
def arrow_schema() -> pa.Schema:
    """The Arrow schema of a table with one row per ImageRecord (objects as a list of structs).

    Fields are named as the models' fields, or their serialization alias (a box's `source` is
    `box_source`); `model_dump(by_alias=True)` gives a record in these names."""
    import pyarrow as pa

    return pa.schema(_arrow_fields(ImageRecord))


def _arrow_fields(model: type[BaseModel]) -> list[pa.Field]:
    import pyarrow as pa

    fields = []
    for field_name, info in model.model_fields.items():
        name = info.serialization_alias or field_name
        annotation, nullable = _strip_optional(info.annotation)
        override = next((m.name for m in info.metadata if isinstance(m, ArrowType)), None)
        arrow_type = getattr(pa, override)() if override else _arrow_type(annotation)
        fields.append(pa.field(name, arrow_type, nullable=nullable))
    return fields


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])[0], True
    return annotation, False


def _arrow_type(annotation: Any) -> pa.DataType:
    import pyarrow as pa

    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        override = next((m.name for m in extra if isinstance(m, ArrowType)), None)
        return getattr(pa, override)() if override else _arrow_type(base)
    if origin is typing.Literal:
        values = get_args(annotation)
        return pa.int8() if all(isinstance(v, int) for v in values) else pa.string()
    if origin is list:
        return pa.list_(_arrow_type(get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct(_arrow_fields(annotation))
    simple = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
    if annotation in simple:
        return simple[annotation]
    raise TypeError(f"no Arrow type for {annotation!r}")


#: Columns of the flat (one row per box) table that differ from the object's Arrow field
#: name: the label is the CSV's `class`.
FLAT_RENAMES = {"label": "class"}
#: The flat table's leading columns: the shape of the CSV every tutorial uses.
FLAT_LEADING = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")
#: The optional column of embedded image bytes, in the layout dataset libraries load as images.
IMAGE_COLUMN = "image"


@cache
def flat_arrow_schema() -> pa.Schema:
    """The Arrow schema of a table with one row per box, derived from `arrow_schema()`.

    The CSV's columns come first (`class` is the label), then the other object fields (null,
    like the box, on the one row of an image without objects), then the image fields, which
    every row of an image repeats.
    """
    import pyarrow as pa

    nested = arrow_schema()
    box_fields = [
        pa.field(FLAT_RENAMES.get(f.name, f.name), f.type, nullable=True)
        for f in nested.field("objects").type.value_type
    ]
    image_fields = [f for f in nested if f.name != "objects"]
    by_name = {f.name: f for f in (*box_fields, *image_fields)}
    rest = [f.name for f in (*box_fields, *image_fields) if f.name not in FLAT_LEADING]
    return pa.schema([by_name[name] for name in (*FLAT_LEADING, *rest)])


def arrow_image_labels_type() -> pa.DataType:
    """The type of the `image_labels` column."""
    return arrow_schema().field("image_labels").type


def image_arrow_type() -> pa.DataType:
    """The type of the `image` column: ``{bytes, path}``, as Hugging Face `datasets` stores
    its Image feature (the file's bytes as they are, and its name)."""
    import pyarrow as pa

    return pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
