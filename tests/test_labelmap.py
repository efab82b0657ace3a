"""LabelMap and the pbtxt writer, checked against protobuf's own text-format parser/printer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from google.protobuf import text_format
from hypothesis import given, settings
from hypothesis import strategies as st
from od_protos import Item, parse_with_protobuf, to_protobuf_text

from annoconv.errors import LabelMapError, StorageError, UnknownClassesError
from annoconv.formats import get_format
from annoconv.formats.pbtxt import FORMAT, LabelMapWriter
from annoconv.labelmap import LabelMap, LabelMapItem
from annoconv.schema import CoordSpace, ImageRecord, ObjectAnnotation


def items_of(label_map: LabelMap) -> list[Item]:
    return [(item.name, item.id, item.display_name) for item in label_map]


def make_map(*items: Item) -> LabelMap:
    return LabelMap(LabelMapItem(name, number, display) for name, number, display in items)


# --- writing ------------------------------------------------------------------------------------


def test_to_pbtxt_is_the_canonical_form() -> None:
    label_map = make_map(("/m/0dv5r", 1, "Camera"), ("patent image", 2, None))
    assert label_map.to_pbtxt() == (
        "item {\n"
        '  name: "/m/0dv5r"\n'
        "  id: 1\n"
        '  display_name: "Camera"\n'
        "}\n"
        "item {\n"
        '  name: "patent image"\n'
        "  id: 2\n"
        "}\n"
    )


def test_to_pbtxt_escapes_quotes_backslashes_and_controls_but_keeps_utf8_raw() -> None:
    label_map = make_map(('a "b" \\ c\nd\te\rf\x01\x7f', 1, "Schrödinger's 猫\u2028"))
    assert label_map.to_pbtxt() == (
        "item {\n"
        '  name: "a \\"b\\" \\\\ c\\nd\\te\\rf\\001\\177"\n'
        "  id: 1\n"
        '  display_name: "Schrödinger\'s 猫\\342\\200\\250"\n'
        "}\n"
    )


TRICKY_ITEMS: list[Item] = [
    ("patent image", 1, None),
    ('say "cheese"', 2, "it's"),
    ("back\\slash", 3, "C:\\path\\"),
    ("comma, semicolon; colon:", 4, "# not a comment"),
    ("new\nline", 5, "tab\there"),
    ("Schrödinger's 猫", 6, "Katze 🐈"),
    ("\\u00e9 stays literal", 7, "\\303 too"),
    ("{brace} <angle> [list]", 8, ""),
    ("background", 0, None),
]


def test_protobuf_parses_our_output_to_the_same_items() -> None:
    label_map = make_map(*TRICKY_ITEMS)
    assert parse_with_protobuf(label_map.to_pbtxt()) == TRICKY_ITEMS
    assert LabelMap.parse(label_map.to_pbtxt()) == label_map


def test_empty_map_is_an_empty_file_and_an_empty_file_is_an_empty_map() -> None:
    assert LabelMap().to_pbtxt() == ""
    assert len(LabelMap.parse("")) == 0
    assert len(LabelMap.parse("  # only a comment\n\n")) == 0
    assert parse_with_protobuf("") == []


# Any text protobuf can hold: every code point but surrogates, so quotes, backslashes, control
# characters, line separators and astral characters all appear.
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@st.composite
def valid_maps(draw: st.DrawFn) -> list[Item]:
    names = draw(st.lists(any_text.filter(bool), unique=True, max_size=6))
    size = len(names)
    ids = draw(st.lists(st.integers(1, 2**31 - 1), unique=True, min_size=size, max_size=size))
    displays = draw(st.lists(st.none() | any_text, min_size=size, max_size=size))
    return list(zip(names, ids, displays, strict=True))


@settings(max_examples=300, deadline=None)
@given(valid_maps())
def test_protobuf_and_our_parser_agree_on_any_valid_map(items: list[Item]) -> None:
    ours = make_map(*items)
    assert parse_with_protobuf(ours.to_pbtxt()) == items
    for as_utf8 in (False, True):
        assert items_of(LabelMap.parse(to_protobuf_text(items, as_utf8=as_utf8))) == items


# --- reading what people write by hand ------------------------------------------------------------

HAND_WRITTEN = {
    "single quotes and comments": (
        "# label map for the links detector\n"
        "item {\n"
        "  name: 'patent image'  # the whole page\n"
        "  id: 1\n"
        "}\n"
        "item {\n"
        "  id: 2\n"
        "  name: 'it\\'s \"quoted\"'\n"
        "}\n",
        [("patent image", 1, None), ('it\'s "quoted"', 2, None)],
    ),
    "colon, angle brackets, separators": (
        'item: { name: "a", id: 1; display_name: "A" }\n'
        'item < name: "b"; id: 2, >\n'
        "item{name:'c' id:3}",
        [("a", 1, "A"), ("b", 2, None), ("c", 3, None)],
    ),
    "escapes": (
        'item { name: "\\303\\251\\x41\\x4\\u00e9\\U0001F600\\n\\t\\\\\\"\\a" id: 1 }',
        [('éA\x04é😀\n\t\\"\x07', 1, None)],
    ),
    "adjacent literals and raw utf-8": (
        'item {\n  name: "Schr" \'ö\' "dinger"\n    "\'s 猫"\n  id: 0x10\n}',
        [("Schrödinger's 猫", 16, None)],
    ),
    "octal and negative-free integers": (
        "item { name: 'a' id: 010 } item { name: 'b' id: +9 }",
        [("a", 8, None), ("b", 9, None)],
    ),
    "the other StringIntLabelMapItem fields are skipped": (
        "item {\n"
        "  name: '/m/01g317'\n"
        "  id: 1\n"
        "  display_name: 'person'\n"
        "  keypoints { id: 0 label: 'nose' }\n"
        "  keypoints: < id: 1, label: 'left_eye' >\n"
        "  ancestor_ids: 7\n"
        "  ancestor_ids: [8, 9]\n"
        "  descendant_ids: []\n"
        "  frequency: FREQUENT\n"
        "  instance_count: 257253\n"
        "}\n"
        "item { name: 'x' id: 2 frequency: 3 keypoints: [{id: 1}, {label: 'l'}] }\n",
        [("/m/01g317", 1, "person"), ("x", 2, None)],
    ),
    "repeated items as a list": (
        "item: [{name: 'a' id: 1}, <name: 'b' id: 2>]",
        [("a", 1, None), ("b", 2, None)],
    ),
    "background at id 0 and windows line ends": (
        "item {\r\n  name: 'background'\r\n  id: 0\r\n}\r\n"
        "item {\r\n  name: 'bg'\r\n  display_name: 'background'\r\n  id: 1\r\n}\r\n",
        [("background", 0, None), ("bg", 1, "background")],
    ),
}


@pytest.mark.parametrize("case", list(HAND_WRITTEN))
def test_our_parser_agrees_with_protobuf_on_hand_written_files(case: str) -> None:
    text, expected = HAND_WRITTEN[case]
    assert parse_with_protobuf(text) == expected
    assert items_of(LabelMap.parse(text)) == expected


# --- errors -------------------------------------------------------------------------------------

SYNTAX_ERRORS = {
    "unknown field": (
        "item {\n  name: 'a'\n  nmae: 'b'\n}\n",
        "map.pbtxt:3:3: unknown field 'nmae' in item (known: name, id, display_name, "
        "keypoints, ancestor_ids, descendant_ids, frequency, instance_count)",
    ),
    "unknown top-level field": (
        "items { name: 'a' id: 1 }",
        "map.pbtxt:1:1: unknown field 'items' in label map (known: item)",
    ),
    "unterminated string": (
        "item {\n  name: 'patent image\n  id: 1\n}\n",
        "map.pbtxt:2:9: unterminated string (no closing ')",
    ),
    "missing closing brace": (
        "item {\n  name: 'a'\n  id: 1\n",
        "map.pbtxt:4:1: expected '}' to close the item opened at line 1, found end of file",
    ),
    "missing colon before a value": (
        "item { name 'a' id: 1 }",
        "map.pbtxt:1:13: expected ':' after 'name', found \"'a'\"",
    ),
    "unquoted string": (
        "item { name: cat id: 1 }",
        "map.pbtxt:1:14: expected a quoted string, found 'cat'",
    ),
    "not an integer": (
        "item { name: 'a' id: 1.5 }",
        "map.pbtxt:1:22: expected an integer, found '1.5'",
    ),
    "integer out of int32": (
        "item { name: 'a' id: 2147483648 }",
        "map.pbtxt:1:22: integer 2147483648 is out of the int32 range",
    ),
    "field given twice": (
        "item { name: 'a' id: 1 id: 2 }",
        "map.pbtxt:1:24: item has more than one 'id'",
    ),
    "unknown escape": (
        "item { name: 'a\\qb' id: 1 }",
        "map.pbtxt:1:16: unknown escape \\q",
    ),
    "octal escape over a byte": (
        "item { name: '\\400' id: 1 }",
        "map.pbtxt:1:15: octal escape \\400 is larger than a byte (\\377)",
    ),
    "bytes that are not utf-8": (
        "item { name: 'caf\\351' id: 1 }",
        "map.pbtxt:1:14: string is not valid UTF-8",
    ),
    "unknown frequency": (
        "item { name: 'a' id: 1 frequency: OFTEN }",
        "map.pbtxt:1:35: expected a frequency (UNSPECIFIED, FREQUENT, COMMON, RARE), found 'OFTEN'",
    ),
    "stray closing brace": (
        "item { name: 'a' id: 1 } }",
        "map.pbtxt:1:26: expected a field name of label map, found '}'",
    ),
    "two separators": (
        "item { name: 'a',, id: 1 }",
        "map.pbtxt:1:18: expected a field name of item, found ','",
    ),
}


# Python protobuf keeps an unknown escape as the two characters (with a DeprecationWarning from
# the codec it borrows); C++ protobuf rejects it, and so do we.
PYTHON_PROTOBUF_ACCEPTS = {"unknown escape"}


@pytest.mark.filterwarnings("ignore:invalid .*escape sequence:DeprecationWarning")
@pytest.mark.parametrize("case", list(SYNTAX_ERRORS))
def test_syntax_errors_name_file_line_and_column(case: str) -> None:
    text, message = SYNTAX_ERRORS[case]
    with pytest.raises(LabelMapError) as caught:
        LabelMap.parse(text, "map.pbtxt")
    assert str(caught.value) == message
    if case not in PYTHON_PROTOBUF_ACCEPTS:
        with pytest.raises(text_format.ParseError):
            parse_with_protobuf(text)


VALIDATION_ERRORS = {
    "id 0 for a class": (
        "item {\n  name: 'background'\n  id: 0\n}\nitem {\n  name: 'cat'\n  id: 0\n}\n",
        "map.pbtxt:5: 'cat' has id 0, which is reserved for 'background'; ids start at 1",
    ),
    "negative id": (
        "item { name: 'cat' id: -1 }",
        "map.pbtxt:1: 'cat' has a negative id (-1); ids start at 1",
    ),
    "duplicate id": (
        "item { name: 'cat' id: 1 }\n\nitem { name: 'dog' id: 1 }\n",
        "map.pbtxt:3: id 1 of 'dog' is already used by 'cat' (line 1)",
    ),
    "duplicate name": (
        "item { name: 'cat' id: 1 }\nitem {\n  name: 'cat'\n  id: 2\n}\n",
        "map.pbtxt:2: name 'cat' is already used (line 1)",
    ),
    "empty name": ("item { name: '' id: 1 }", "map.pbtxt:1: item has an empty name"),
    "missing name": ("item { id: 1 }", "map.pbtxt:1: item has no name"),
    "missing id": ("\nitem { name: 'cat' }", "map.pbtxt:2: item 'cat' has no id"),
}


@pytest.mark.parametrize("case", list(VALIDATION_ERRORS))
def test_invalid_maps_are_rejected_naming_file_and_line(case: str) -> None:
    text, message = VALIDATION_ERRORS[case]
    with pytest.raises(LabelMapError) as caught:
        LabelMap.parse(text, "map.pbtxt")
    assert str(caught.value) == message


def test_parse_without_a_source_names_the_string() -> None:
    assert LabelMap.parse("item { name: 'a' id: 1 }").source is None
    with pytest.raises(LabelMapError, match=r"^<string>:1:8: unknown field 'nam' in item"):
        LabelMap.parse("item { nam: 'a' }")


def test_built_maps_are_validated_naming_the_item() -> None:
    with pytest.raises(LabelMapError) as caught:
        make_map(("cat", 1, None), ("dog", 2, None), ("cow", 2, None))
    assert str(caught.value) == "label map item 3: id 2 of 'cow' is already used by 'dog' (item 2)"
    with pytest.raises(LabelMapError) as caught:
        LabelMap([LabelMapItem("cat", 0)], source="classes.txt")
    assert str(caught.value) == (
        "classes.txt: item 1: 'cat' has id 0, which is reserved for 'background'; ids start at 1"
    )
    with pytest.raises(LabelMapError, match="lone surrogate"):
        LabelMap.from_classes(["\ud800"])
    with pytest.raises(TypeError, match="id must be an int"):
        LabelMapItem("cat", "1")  # type: ignore[arg-type]


# --- building -----------------------------------------------------------------------------------


def test_from_classes_sorts_by_code_point_or_keeps_first_seen_order() -> None:
    names = ["dog", "Cat", "ant", "dog", "10", "9", "été", "Zebra"]
    sorted_map = LabelMap.from_classes(names)
    assert items_of(sorted_map) == [
        ("10", 1, None),
        ("9", 2, None),
        ("Cat", 3, None),
        ("Zebra", 4, None),
        ("ant", 5, None),
        ("dog", 6, None),
        ("été", 7, None),
    ]
    first_seen = LabelMap.from_classes(names, order="first-seen", start=5)
    assert first_seen.names == ("dog", "Cat", "ant", "10", "9", "été", "Zebra")
    assert [item.id for item in first_seen] == [5, 6, 7, 8, 9, 10, 11]
    with pytest.raises(ValueError, match="unknown label order 'random'"):
        LabelMap.from_classes(names, order="random")  # type: ignore[arg-type]


def test_lookups_match_name_first_then_display_name() -> None:
    label_map = make_map(("/m/0dv5r", 1, "Camera"), ("Camera", 2, "camera body"), ("b", 5, None))
    assert label_map.id_of("/m/0dv5r") == 1
    assert label_map.id_of("Camera") == 2
    assert label_map.id_of("camera body") == 2
    assert "camera body" in label_map
    assert "Mobile phone" not in label_map
    assert 1 not in label_map
    assert len(label_map) == 3
    assert label_map.names == ("/m/0dv5r", "Camera", "b")
    assert label_map.max_id == 5
    assert [item.name for item in label_map] == ["/m/0dv5r", "Camera", "b"]
    assert LabelMap().max_id == 0
    with pytest.raises(LabelMapError) as caught:
        LabelMap.parse("item { name: 'a' id: 1 }", "m.pbtxt").id_of("Mobile phone")
    assert str(caught.value) == "class 'Mobile phone' is not in the label map m.pbtxt"


def test_extend_appends_new_classes_after_max_id_keeping_ids() -> None:
    base = make_map(("background", 0, None), ("dog", 7, None), ("cat", 3, None))
    extended = base.extend(["zebra", "cat", "ant", "zebra"])
    assert items_of(extended) == [
        ("background", 0, None),
        ("dog", 7, None),
        ("cat", 3, None),
        ("ant", 8, None),
        ("zebra", 9, None),
    ]
    assert base.extend(["zebra", "ant"], order="first-seen").names[-2:] == ("zebra", "ant")
    assert base.extend(["cat"]) is base
    assert items_of(make_map(("background", 0, None)).extend(["a"])) == [
        ("background", 0, None),
        ("a", 1, None),
    ]


def test_extend_treats_display_names_as_present() -> None:
    base = make_map(("/m/0dv5r", 1, "Camera"))
    assert base.extend(["Camera", "Mobile phone"]).names == ("/m/0dv5r", "Mobile phone")


def test_merge_keeps_own_ids_and_appends_the_others_in_their_id_order() -> None:
    ours = make_map(("cat", 2, "Cat"), ("dog", 1, None))
    theirs = make_map(("zebra", 9, None), ("dog", 4, "Dog"), ("ant", 3, None), ("Cat", 1, None))
    assert items_of(ours.merge(theirs)) == [
        ("cat", 2, "Cat"),
        ("dog", 1, None),
        ("ant", 3, None),
        ("zebra", 4, None),
    ]
    assert ours.merge(make_map(("cat", 5, None))) is ours


def test_merge_keeps_background_at_zero_when_free() -> None:
    merged = make_map(("cat", 1, None)).merge(make_map(("background", 0, None), ("dog", 1, None)))
    assert items_of(merged) == [("cat", 1, None), ("background", 0, None), ("dog", 2, None)]
    ours = make_map(("bg", 0, "background"))
    assert ours.merge(make_map(("background", 0, None))) is ours


def test_merge_rejects_one_name_with_two_display_names() -> None:
    ours = LabelMap.parse("item { name: '/m/0dv5r' id: 1 display_name: 'Camera' }", "a.pbtxt")
    theirs = LabelMap.parse("item { name: '/m/0dv5r' id: 1 display_name: 'Kamera' }", "b.pbtxt")
    with pytest.raises(LabelMapError) as caught:
        ours.merge(theirs)
    assert str(caught.value) == (
        "cannot merge label maps: '/m/0dv5r' has display_name 'Camera' in a.pbtxt "
        "but 'Kamera' in b.pbtxt"
    )


def test_check_covers_lists_every_unknown_class_with_its_count() -> None:
    label_map = LabelMap.parse("item { name: 'cat' id: 1 }", "classes.pbtxt")
    counts = {"zebra": 2, "cat": 10, "dog": 3}
    assert label_map.unknown(counts) == {"zebra": 2, "dog": 3}
    with pytest.raises(UnknownClassesError) as caught:
        label_map.check_covers(counts)
    assert caught.value.unknown == {"dog": 3, "zebra": 2}
    assert str(caught.value) == (
        "2 class(es) not in the label map classes.pbtxt: 'dog' (3), 'zebra' (2); "
        "add them to the map or pass --extend-label-map"
    )
    assert label_map.check_covers({"cat": 1}) is label_map
    assert items_of(label_map.check_covers(counts, extend=True)) == [
        ("cat", 1, None),
        ("dog", 2, None),
        ("zebra", 3, None),
    ]
    first_seen = label_map.check_covers(counts, extend=True, order="first-seen")
    assert first_seen.names == ("cat", "zebra", "dog")


# --- files --------------------------------------------------------------------------------------


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    label_map = make_map(*TRICKY_ITEMS)
    target = tmp_path / "sub" / "label_map.pbtxt"
    size = label_map.write(str(target))
    assert target.read_bytes() == label_map.to_pbtxt().encode("utf-8")
    assert size == target.stat().st_size
    assert os.listdir(target.parent) == ["label_map.pbtxt"]
    again = LabelMap.read(str(target))
    assert again == label_map
    assert again.source == str(target)


def test_read_accepts_a_byte_order_mark_and_rejects_binary(tmp_path: Path) -> None:
    with_bom = tmp_path / "bom.pbtxt"
    with_bom.write_bytes(b"\xef\xbb\xbfitem { name: 'caf\xc3\xa9' id: 1 }")
    assert items_of(LabelMap.read(str(with_bom))) == [("café", 1, None)]
    binary = tmp_path / "map.pb"
    binary.write_bytes(b"\n\x07\n\x03cat\x10\x01\xff")
    with pytest.raises(LabelMapError) as caught:
        LabelMap.read(str(binary))
    assert str(caught.value) == (
        f"{binary}: not UTF-8 text (invalid byte at offset 9); a label map is a text .pbtxt file"
    )
    with pytest.raises(LabelMapError, match=r"missing\.pbtxt: cannot read the label map"):
        LabelMap.read(str(tmp_path / "missing.pbtxt"))


# --- the pbtxt writer ---------------------------------------------------------------------------


def record(key: str, *labels: str, coords: CoordSpace = "pixel") -> ImageRecord:
    high = 1.0 if coords == "normalized" else 10.0
    objects = [
        ObjectAnnotation(label=label, xmin=0, ymin=0, xmax=high, ymax=high) for label in labels
    ]
    return ImageRecord(key=key, filename=f"{key}.jpg", coords=coords, objects=objects)


def test_pbtxt_format_is_registered_with_a_writer_only() -> None:
    assert get_format("pbtxt") is FORMAT
    assert FORMAT.writer is LabelMapWriter
    assert FORMAT.reader is None
    assert FORMAT.extensions == (".pbtxt",)


def test_writer_collects_classes_from_records_in_either_space(tmp_path: Path) -> None:
    target = tmp_path / "label_map.pbtxt"
    writer = LabelMapWriter(str(target))
    writer.write(record("a", "dog", "cat", "dog"))
    writer.write(record("b"))
    writer.write(record("c", "ant", coords="normalized"))
    assert dict(writer.counts) == {"dog": 2, "cat": 1, "ant": 1}
    assert not target.exists()
    outputs = writer.close()
    assert [(o.path, o.size, o.kind) for o in outputs] == [
        (str(target), target.stat().st_size, "label_map")
    ]
    assert parse_with_protobuf(target.read_text("utf-8")) == [
        ("ant", 1, None),
        ("cat", 2, None),
        ("dog", 3, None),
    ]
    with pytest.raises(RuntimeError, match="already closed"):
        writer.write(record("d", "cow"))


def test_writer_first_seen_order_and_base_map(tmp_path: Path) -> None:
    first_seen = LabelMapWriter(str(tmp_path / "first.pbtxt"), order="first-seen")
    first_seen.write(record("a", "dog", "cat"))
    first_seen.close()
    assert LabelMap.read(str(tmp_path / "first.pbtxt")).names == ("dog", "cat")

    base = make_map(("/m/0dv5r", 4, "Camera"))
    extended = LabelMapWriter(str(tmp_path / "base.pbtxt"), label_map=base)
    extended.write(record("a", "Camera", "Mobile phone"))
    extended.close()
    assert parse_with_protobuf((tmp_path / "base.pbtxt").read_text("utf-8")) == [
        ("/m/0dv5r", 4, "Camera"),
        ("Mobile phone", 5, None),
    ]


def test_writer_abort_leaves_nothing(tmp_path: Path) -> None:
    writer = LabelMapWriter(str(tmp_path / "label_map.pbtxt"))
    writer.write(record("a", "dog"))
    writer.abort()
    assert os.listdir(tmp_path) == []


def test_writer_failing_to_publish_leaves_no_partial_file(tmp_path: Path) -> None:
    (tmp_path / "label_map.pbtxt").mkdir()  # refused when the file is opened, one line
    writer = LabelMapWriter(str(tmp_path / "label_map.pbtxt"))
    writer.write(record("a", "dog"))
    with pytest.raises(StorageError, match=r"label_map\.pbtxt: names a folder; name the file"):
        writer.close()
    assert os.listdir(tmp_path) == ["label_map.pbtxt"]
