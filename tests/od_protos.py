"""The Object Detection API's label map messages, built at test time from a descriptor.

Mirrors ``research/object_detection/protos/string_int_label_map.proto`` (proto2, package
``object_detection.protos``) so tests can check our label maps against protobuf's own
text-format parser and printer without installing the Object Detection API.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

PACKAGE = "object_detection.protos"
_F = descriptor_pb2.FieldDescriptorProto


def _field(
    message: Any, name: str, number: int, kind: int, label: int = _F.LABEL_OPTIONAL, **extra: str
) -> None:
    field = message.field.add(name=name, number=number, type=kind, label=label)
    for key, value in extra.items():
        setattr(field, key, value)


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="object_detection/protos/string_int_label_map.proto",
        package=PACKAGE,
        syntax="proto2",
    )
    item = proto.message_type.add(name="StringIntLabelMapItem")
    _field(item, "name", 1, _F.TYPE_STRING)
    _field(item, "id", 2, _F.TYPE_INT32)
    _field(item, "display_name", 3, _F.TYPE_STRING)

    keypoint = item.nested_type.add(name="KeypointMap")
    _field(keypoint, "id", 1, _F.TYPE_INT32)
    _field(keypoint, "label", 2, _F.TYPE_STRING)
    item_type = f".{PACKAGE}.StringIntLabelMapItem"
    _field(
        item,
        "keypoints",
        4,
        _F.TYPE_MESSAGE,
        _F.LABEL_REPEATED,
        type_name=f"{item_type}.KeypointMap",
    )
    _field(item, "ancestor_ids", 5, _F.TYPE_INT32, _F.LABEL_REPEATED)
    _field(item, "descendant_ids", 6, _F.TYPE_INT32, _F.LABEL_REPEATED)

    frequency = item.enum_type.add(name="LVISFrequency")
    for number, name in enumerate(("UNSPECIFIED", "FREQUENT", "COMMON", "RARE")):
        frequency.value.add(name=name, number=number)
    _field(item, "frequency", 7, _F.TYPE_ENUM, type_name=f"{item_type}.LVISFrequency")
    _field(item, "instance_count", 8, _F.TYPE_INT32)

    label_map = proto.message_type.add(name="StringIntLabelMap")
    _field(label_map, "item", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, type_name=item_type)
    return proto


def _message_class(pool: descriptor_pool.DescriptorPool, name: str) -> Any:
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))


# A private pool, so nothing clashes with an installed Object Detection API.
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_descriptor())

StringIntLabelMap: Any = _message_class(_POOL, "StringIntLabelMap")
StringIntLabelMapItem: Any = _message_class(_POOL, "StringIntLabelMapItem")

Item = tuple[str, int, "str | None"]


def parse_with_protobuf(text: str) -> list[Item]:
    """(name, id, display_name) of every item, as protobuf's text-format parser reads `text`."""
    message = text_format.Parse(text, StringIntLabelMap())
    return [
        (item.name, item.id, item.display_name if item.HasField("display_name") else None)
        for item in message.item
    ]


def to_protobuf_text(items: list[Item], *, as_utf8: bool) -> str:
    """The text protobuf's own printer writes for a map of `items`."""
    message = StringIntLabelMap()
    for name, number, display_name in items:
        item = message.item.add(name=name, id=number)
        if display_name is not None:
            item.display_name = display_name
    return str(text_format.MessageToString(message, as_utf8=as_utf8))
