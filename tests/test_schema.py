"""The typed model: validation that names where, coordinate spaces, and the Arrow schema
derived from the same definitions."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import annoconv
from annoconv.errors import AnnotationError
from annoconv.schema import (
    ImageLabel,
    ImageRecord,
    ObjectAnnotation,
    arrow_schema,
    make_object,
    make_record,
    trusted_object,
    trusted_record,
)


def box(label: str = "dog", **coords: float) -> ObjectAnnotation:
    values = {"xmin": 10.0, "ymin": 20.0, "xmax": 110.0, "ymax": 220.0, **coords}
    return ObjectAnnotation(label=label, **values)


def test_flags_default_to_unknown_and_stay_unknown() -> None:
    obj = box()
    assert (obj.difficult, obj.truncated, obj.occluded, obj.group_of) == (-1, -1, -1, -1)
    assert (obj.depiction, obj.inside) == (-1, -1)
    record = ImageRecord(key="k", filename="a.jpg", width=640, height=480, objects=[obj])
    assert record.in_space("normalized").objects[0].difficult == -1


@pytest.mark.parametrize(
    ("coords", "where", "message"),
    [
        ({"xmin": 200.0}, "object[3]", "xmin 200 > xmax 110"),
        ({"ymax": 10.5}, "object[3]", "ymin 20 > ymax 10.5"),
        ({"xmin": math.inf}, "object[3]/xmin", "coordinate must be a finite number, got inf"),
        ({"ymin": math.nan}, "object[3]/ymin", "coordinate must be a finite number, got nan"),
    ],
)
def test_object_errors_name_file_and_element(
    coords: dict[str, float], where: str, message: str
) -> None:
    fields = {"label": "dog", "xmin": 10.0, "ymin": 20.0, "xmax": 110.0, "ymax": 220.0, **coords}
    with pytest.raises(AnnotationError) as info:
        make_object("ann/1.xml", "object[3]", **fields)
    assert str(info.value) == f"ann/1.xml: {where}: {message}"


def test_boxes_must_lie_inside_a_known_image() -> None:
    objects = [box(), box("cat", xmax=641.0)]
    with pytest.raises(AnnotationError) as info:
        make_record("ann/1.xml", key="k", filename="a.jpg", width=640, height=480, objects=objects)
    assert str(info.value) == (
        "ann/1.xml: object[2] ('cat'): xmax 641 is outside [0, 640] (image 640x480)"
    )
    # Without a size only negative coordinates can be told wrong.
    assert make_record("a.xml", key="k", filename="a.jpg", objects=objects).width is None
    with pytest.raises(AnnotationError, match="xmin -1 is negative"):
        make_record("a.xml", key="k", filename="a.jpg", objects=[box(xmin=-1.0)])


def test_normalized_coordinates_within_unit_square_with_tolerance() -> None:
    inside = box(xmin=0.0, ymin=0.0, xmax=1.00005, ymax=1.0)
    record = make_record("oi.csv", key="k", filename="k.jpg", coords="normalized", objects=[inside])
    assert record.objects[0].xmax == 1.00005
    with pytest.raises(AnnotationError, match=r"xmax 1.001 is outside \[0, 1\]"):
        outside = box(xmin=0.5, ymin=0.5, xmax=1.001, ymax=0.9)
        make_record("oi.csv", key="k", filename="k.jpg", coords="normalized", objects=[outside])


def test_space_conversion_is_exact_where_floats_allow() -> None:
    record = ImageRecord(key="k", filename="a.jpg", width=640, height=480, objects=[box()])
    normalized = record.in_space("normalized")
    assert normalized.coords == "normalized"
    obj = normalized.objects[0]
    assert (obj.xmin, obj.ymin, obj.xmax, obj.ymax) == (10 / 640, 20 / 480, 110 / 640, 220 / 480)
    back = normalized.in_space("pixel").objects[0]
    assert (back.xmin, back.ymin, back.xmax, back.ymax) == (10.0, 20.0, 110.0, 220.0)
    assert record.in_space("pixel") is record


def test_conversion_without_size_names_the_annotation() -> None:
    record = ImageRecord(key="k", filename="a.jpg", objects=[box()], source="ann/a.xml")
    with pytest.raises(AnnotationError) as info:
        record.in_space("normalized")
    assert str(info.value).startswith("ann/a.xml: image size is unknown but converting to")
    assert "--images" in str(info.value)


def test_arrow_schema_matches_the_models() -> None:
    schema = arrow_schema()
    assert schema.names == list(ImageRecord.model_fields)
    assert schema.field("width").type == pa.int32() and schema.field("width").nullable
    assert schema.field("key").type == pa.string() and not schema.field("key").nullable
    objects = schema.field("objects").type
    assert isinstance(objects, pa.ListType)
    struct = objects.value_type
    # A box's source is `box_source`, not the image's `source`: unnesting keeps names unique.
    assert [struct.field(i).name for i in range(struct.num_fields)] == [
        "box_source" if name == "source" else name for name in ObjectAnnotation.model_fields
    ]
    assert not set(struct.names) & (set(schema.names) - {"objects"})
    assert struct.field("difficult").type == pa.int8()
    assert struct.field("xmin").type == pa.float64()
    assert schema.field("image_labels").type == pa.list_(
        pa.struct(
            [
                pa.field("label", pa.string(), nullable=False),
                pa.field("confidence", pa.float64()),
            ]
        )
    )


finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def records(draw: st.DrawFn) -> ImageRecord:
    objects = []
    for _ in range(draw(st.integers(0, 4))):
        x0, x1 = sorted((draw(finite), draw(finite)))
        y0, y1 = sorted((draw(finite), draw(finite)))
        objects.append(
            ObjectAnnotation(
                label=draw(st.text(min_size=1, max_size=12)),
                xmin=x0,
                ymin=y0,
                xmax=x1,
                ymax=y1,
                difficult=draw(st.sampled_from([-1, 0, 1])),
                pose=draw(st.none() | st.text(max_size=5)),
                source=draw(st.none() | st.text(max_size=5)),
            )
        )
    labels = [ImageLabel(label="x", confidence=draw(st.none() | st.just(0.0)))]
    return ImageRecord(
        key=draw(st.text(min_size=1, max_size=10)),
        filename="a.jpg",
        width=draw(st.none() | st.integers(1_000_001, 2_000_000)),
        height=draw(st.none() | st.integers(1_000_001, 2_000_000)),
        objects=objects,
        image_labels=labels,
        verified=draw(st.none() | st.booleans()),
    )


@given(st.lists(records(), max_size=4))
def test_records_round_trip_through_arrow(items: list[ImageRecord]) -> None:
    rows = [item.model_dump(by_alias=True) for item in items]
    table = pa.Table.from_pylist(rows, schema=arrow_schema())
    assert [ImageRecord(**row) for row in table.to_pylist()] == items


def test_public_api_is_lazy_and_complete() -> None:
    assert annoconv.ImageRecord is ImageRecord
    for name in annoconv.__all__:
        assert getattr(annoconv, name) is not None
    with pytest.raises(AttributeError):
        _ = annoconv.no_such_name


def test_trusted_models_equal_validated_ones() -> None:
    fields = dict(label="dog", pose="Left", truncated=0, difficult=1, occluded=-1)
    box = dict(xmin=1.0, ymin=2.5, xmax=3.0, ymax=4.0)
    trusted = trusted_object(**fields, **box)
    validated = ObjectAnnotation(**fields, **box)
    assert trusted == validated
    assert trusted.model_fields_set == validated.model_fields_set
    assert trusted.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    record = dict(key="a.xml", filename="a.jpg", width=10, height=8, objects=[trusted])
    made = trusted_record(**record)
    assert made == ImageRecord(**record)
    assert made.model_fields_set == ImageRecord(**record).model_fields_set
    # Defaults are fresh per record, never shared.
    assert made.image_labels == []
    assert made.image_labels is not trusted_record(**record).image_labels
    with pytest.raises(ValidationError):
        made.key = "b"  # type: ignore[misc]  # still frozen
