"""Label maps: class name -> integer id, as the TF Object Detection API's `StringIntLabelMap`.

A `LabelMap` is built from class names, read from a ``.pbtxt`` file, extended or merged; every
way of making one validates it (ids >= 1, id 0 only for ``background``, unique ids and names).
Reading and writing the protobuf text format is done here, without protobuf: the parser
accepts what protobuf's own text-format parser accepts for this message (single or double
quotes, C escapes, adjacent literals, comments, ``item: {``, ``item < >``, ``,``/``;``
separators, the other `StringIntLabelMapItem` fields, which are checked and skipped) and
`to_pbtxt()` writes the canonical form the Object Detection API ships its own maps in.

Class lookups (`id_of`, ``in``) match an item's ``name`` first, then its ``display_name``,
as the Object Detection API matches class text against either.
"""

from __future__ import annotations

import bisect
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypeVar

from annoconv.errors import LabelMapError, UnknownClassesError

LabelOrder = Literal["sorted", "first-seen"]
LABEL_ORDERS: tuple[LabelOrder, ...] = ("sorted", "first-seen")
BACKGROUND = "background"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class LabelMapItem:
    """One class: its name (what annotations call it), its id, and an optional display name."""

    name: str
    id: int
    display_name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"label map item name must be a str, got {self.name!r}")
        if not isinstance(self.id, int) or isinstance(self.id, bool):
            raise TypeError(f"label map item id must be an int, got {self.id!r}")
        if self.display_name is not None and not isinstance(self.display_name, str):
            raise TypeError(f"display_name must be a str or None, got {self.display_name!r}")

    @property
    def is_background(self) -> bool:
        return BACKGROUND in (self.name, self.display_name)


class LabelMap:
    """An immutable, validated label map; every method that changes it returns a new map.

    `items` keep the order they were given in (file order for a parsed map, id order for one
    built by `from_classes`); ids of existing items never change when a map is extended or
    merged.
    """

    __slots__ = ("_by_display", "_by_name", "_items", "_source")

    def __init__(self, items: Iterable[LabelMapItem] = (), *, source: str | None = None) -> None:
        checked = tuple(items)
        _validate(checked, _Locator(source))
        self._setup(checked, source)

    def _setup(self, items: tuple[LabelMapItem, ...], source: str | None) -> None:
        self._items = items
        self._source = source
        self._by_name = {item.name: item for item in items}
        self._by_display: dict[str, LabelMapItem] = {}
        for item in items:
            if item.display_name is not None:
                self._by_display.setdefault(item.display_name, item)

    @classmethod
    def _parsed(
        cls, items: Sequence[LabelMapItem], lines: Sequence[int], source: str | None
    ) -> LabelMap:
        """A map of parsed items, whose errors name the line each item starts on."""
        checked = tuple(items)
        _validate(checked, _Locator(source or _NO_SOURCE, lines))
        new = cls.__new__(cls)
        new._setup(checked, source)
        return new

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def from_classes(
        cls,
        names: Iterable[str],
        *,
        order: LabelOrder = "sorted",
        start: int = 1,
        source: str | None = None,
    ) -> LabelMap:
        """A map giving ids ``start, start+1, ...`` to the distinct `names`.

        ``order="sorted"`` sorts by plain Unicode code point (``str`` ordering: ``"B" < "a"``,
        ``"10" < "9"``), so the same classes always get the same ids; ``"first-seen"`` keeps
        the order of `names` (a Counter or dict iterates in first-seen order).
        """
        unique = ordered_unique(names, order)
        return cls(
            (LabelMapItem(name, start + offset) for offset, name in enumerate(unique)),
            source=source,
        )

    @classmethod
    def parse(cls, text: str, source: str | None = None) -> LabelMap:
        """Parse protobuf text format; errors read ``source:line:col: message``."""
        items, lines = _Parser(text, source).label_map_items()
        return cls._parsed(items, lines, source)

    @classmethod
    def read(cls, uri: str) -> LabelMap:
        """Read a ``.pbtxt`` file from a local path or any fsspec URL."""
        from annoconv.io.fs import read_bytes

        try:
            data = read_bytes(uri)
        except OSError as exc:
            raise LabelMapError(f"{uri}: cannot read the label map: {exc}") from exc
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LabelMapError(
                f"{uri}: not UTF-8 text (invalid byte at offset {exc.start}); "
                "a label map is a text .pbtxt file"
            ) from None
        return cls.parse(text, uri)

    def extend(self, names: Iterable[str], *, order: LabelOrder = "sorted") -> LabelMap:
        """This map plus the `names` it lacks, with ids after `max_id`."""
        new = [name for name in ordered_unique(names, order) if name not in self]
        if not new:
            return self
        start = self.max_id + 1
        added = (LabelMapItem(name, start + offset) for offset, name in enumerate(new))
        return LabelMap((*self._items, *added), source=self._source)

    def merge(self, other: LabelMap) -> LabelMap:
        """This map plus the classes of `other` it lacks, appended in `other`'s id order.

        Ids of this map are kept; appended items get new ids after `max_id`, except that a
        ``background`` item keeps id 0 when this map has no id 0. A class counts as present
        when its name is a name or display name here. The same name with two different
        display names is an error; a display name missing on one side is not a conflict.
        """
        used_ids = {item.id for item in self._items}
        next_id = self.max_id + 1
        added: list[LabelMapItem] = []
        for item in sorted(other, key=lambda each: each.id):
            mine = self._by_name.get(item.name)
            if mine is not None:
                _check_same_display(mine, item, self, other)
                continue
            if item.name in self:
                continue
            if item.id == 0 and item.is_background and 0 not in used_ids:
                added.append(item)
                continue
            added.append(LabelMapItem(item.name, next_id, item.display_name))
            next_id += 1
        if not added:
            return self
        return LabelMap((*self._items, *added), source=self._source)

    # --- checking data against the map ---------------------------------------------------------

    def unknown(self, counts: Mapping[str, int]) -> dict[str, int]:
        """The classes in `counts` this map lacks, with their counts, in `counts` order."""
        return {name: count for name, count in counts.items() if name not in self}

    def check_covers(
        self, counts: Mapping[str, int], *, extend: bool = False, order: LabelOrder = "sorted"
    ) -> LabelMap:
        """This map if it has every class in `counts`; else the extended map when `extend`,
        or UnknownClassesError listing every missing class with its count."""
        missing = self.unknown(counts)
        if not missing:
            return self
        if extend:
            return self.extend(missing, order=order)
        raise UnknownClassesError(missing, self._source)

    # --- lookups ------------------------------------------------------------------------------

    @property
    def items(self) -> tuple[LabelMapItem, ...]:
        return self._items

    @property
    def source(self) -> str | None:
        """Where the map was read from, if it was."""
        return self._source

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self._items)

    @property
    def max_id(self) -> int:
        """The largest id, 0 for an empty map."""
        return max((item.id for item in self._items), default=0)

    def get(self, label: str) -> LabelMapItem | None:
        """The item a class label refers to: by name first, then by display name."""
        return self._by_name.get(label) or self._by_display.get(label)

    def id_of(self, label: str) -> int:
        """The id of a class label (name first, then display name); LabelMapError if absent."""
        item = self.get(label)
        if item is None:
            where = f" {self._source}" if self._source else ""
            raise LabelMapError(f"class {label!r} is not in the label map{where}")
        return item.id

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and (label in self._by_name or label in self._by_display)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[LabelMapItem]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        """Maps are equal when their items are (in order); where they came from does not count."""
        if not isinstance(other, LabelMap):
            return NotImplemented
        return self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        source = f", source={self._source!r}" if self._source else ""
        return f"LabelMap({list(self._items)!r}{source})"

    # --- writing ------------------------------------------------------------------------------

    def to_pbtxt(self) -> str:
        """The canonical text form: one ``item { ... }`` block per item, no blank lines between
        them (as the Object Detection API's own maps), ``display_name`` only when set."""
        return "".join(_item_pbtxt(item) for item in self._items)

    def write(self, uri: str) -> int:
        """Write `to_pbtxt()` atomically (UTF-8) to a local path or fsspec URL; returns bytes."""
        from annoconv.io.fs import write_atomic

        return write_atomic(uri, self.to_pbtxt().encode("utf-8"))


def similar_classes(counts: Mapping[str, int]) -> list[list[str]]:
    """Groups of class names that differ only in case, spacing, ``_`` or ``-`` (``Dog``,
    ``dog``, ``mobile_phone``, ``Mobile phone``): usually one class labelled two ways. Each
    group with its most frequent name first; groups ordered by that name."""
    groups: dict[str, list[str]] = {}
    for name in counts:
        groups.setdefault(_SPACING.sub(" ", name.casefold()).strip(), []).append(name)
    similar = [
        sorted(names, key=lambda name: (-counts[name], name))
        for names in groups.values()
        if len(names) > 1
    ]
    return sorted(similar, key=lambda names: names[0])


def similar_classes_note(counts: Mapping[str, int]) -> str | None:
    """One line naming the `similar_classes` of `counts` with their counts and the
    `--rename` that merges them; None when there are none."""
    groups = similar_classes(counts)
    if not groups:
        return None
    shown = "; ".join(", ".join(f"{name!r} ({counts[name]})" for name in group) for group in groups)
    renames = " ".join(
        f"--rename {shlex.quote(f'{name}={group[0]}')}" for group in groups for name in group[1:]
    )
    return f"class names that differ only in case or spacing: {shown}; to merge them: {renames}"


_SPACING = re.compile(r"[\s_\-]+")


def ordered_unique(names: Iterable[str], order: LabelOrder) -> list[str]:
    """The distinct `names`, sorted by code point or in first-seen order."""
    check_order(order)
    unique = list(dict.fromkeys(names))
    return sorted(unique) if order == "sorted" else unique


def check_order(order: str) -> None:
    if order not in LABEL_ORDERS:
        raise ValueError(f"unknown label order {order!r}; use one of {', '.join(LABEL_ORDERS)}")


def _check_same_display(
    mine: LabelMapItem, theirs: LabelMapItem, self_map: LabelMap, other: LabelMap
) -> None:
    if mine.display_name is None or theirs.display_name is None:
        return
    if mine.display_name != theirs.display_name:
        raise LabelMapError(
            f"cannot merge label maps: {mine.name!r} has display_name {mine.display_name!r} in "
            f"{self_map.source or 'the first map'} but {theirs.display_name!r} in "
            f"{other.source or 'the second map'}"
        )


# --- validation ---------------------------------------------------------------------------------

_NO_SOURCE = "<string>"


@dataclass(frozen=True)
class _Locator:
    """Names an item in messages: by its line in a parsed file, else by its position."""

    source: str | None
    lines: Sequence[int] | None = None

    def at(self, index: int) -> str:
        if self.lines is not None:
            return f"{self.source}:{self.lines[index]}"
        prefix = f"{self.source}: " if self.source else "label map "
        return f"{prefix}item {index + 1}"

    def ref(self, index: int) -> str:
        return f"line {self.lines[index]}" if self.lines is not None else f"item {index + 1}"


def _validate(items: Sequence[LabelMapItem], locator: _Locator) -> None:
    first_with_id: dict[int, int] = {}
    first_with_name: dict[str, int] = {}
    for index, item in enumerate(items):
        problem = _item_problem(item)
        if problem is None and item.id in first_with_id:
            first = first_with_id[item.id]
            problem = (
                f"id {item.id} of {item.name!r} is already used by "
                f"{items[first].name!r} ({locator.ref(first)})"
            )
        if problem is None and item.name in first_with_name:
            first = first_with_name[item.name]
            problem = f"name {item.name!r} is already used ({locator.ref(first)})"
        if problem is not None:
            raise LabelMapError(f"{locator.at(index)}: {problem}")
        first_with_id[item.id] = index
        first_with_name[item.name] = index


def _item_problem(item: LabelMapItem) -> str | None:
    if not item.name:
        return "item has an empty name"
    if item.id < 0:
        return f"{item.name!r} has a negative id ({item.id}); ids start at 1"
    if item.id == 0 and not item.is_background:
        return f"{item.name!r} has id 0, which is reserved for {BACKGROUND!r}; ids start at 1"
    if item.id > INT32_MAX:
        return f"id {item.id} of {item.name!r} does not fit in an int32"
    for text in (item.name, item.display_name):
        if text is not None and not _encodable(text):
            return f"{text!r} is not valid Unicode (it holds a lone surrogate)"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- writing pbtxt ------------------------------------------------------------------------------


def _escape_table() -> dict[int, str]:
    # Control characters (C0, DEL, C1) and the Unicode line/paragraph separators become octal
    # escapes of their UTF-8 bytes, so every item stays on its own lines in any editor; other
    # non-ASCII is left as raw UTF-8, which protobuf's parsers accept.
    controls = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
    table = {code: "".join(f"\\{byte:03o}" for byte in chr(code).encode()) for code in controls}
    table.update({ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n"})
    table.update({ord("\r"): "\\r", ord("\t"): "\\t"})
    return table


_ESCAPES = _escape_table()


def quote(text: str) -> str:
    """`text` as a double-quoted protobuf text-format string literal."""
    return '"' + text.translate(_ESCAPES) + '"'


def _item_pbtxt(item: LabelMapItem) -> str:
    lines = ["item {", f"  name: {quote(item.name)}", f"  id: {item.id}"]
    if item.display_name is not None:
        lines.append(f"  display_name: {quote(item.display_name)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- parsing pbtxt ------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
      (?P<skip>(?:\s|\#[^\n]*)+)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>[-+]?\.?[0-9][0-9A-Za-z_.+-]*)
    | (?P<string>"(?:[^"\\\n]|\\[^\n])*"|'(?:[^'\\\n]|\\[^\n])*')
    | (?P<open_string>["'])
    | (?P<punct>[{}<>\[\]:,;])
    """,
    re.VERBOSE,
)
_INTEGER_RE = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_ESCAPE_RE = re.compile(
    r"\\(?:(?P<octal>[0-7]{1,3})|x(?P<hex>[0-9a-fA-F]{1,2})"
    r"|u(?P<u4>[0-9a-fA-F]{4})|U(?P<u8>[0-9a-fA-F]{8})|(?P<other>.))"
)
_SIMPLE_ESCAPES = {
    "n": b"\n",
    "t": b"\t",
    "r": b"\r",
    "\\": b"\\",
    '"': b'"',
    "'": b"'",
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "v": b"\v",
}
_HEX_DIGITS_NEEDED = {"x": "1 or 2", "u": "4", "U": "8"}
_CLOSING = {"{": "}", "<": ">"}


@dataclass(frozen=True)
class _Token:
    kind: str  # ident, number, string, punct or end
    text: str
    offset: int

    def describe(self) -> str:
        return "end of file" if self.kind == "end" else repr(self.text)


@dataclass(frozen=True)
class _FieldType:
    kind: Literal["string", "int32", "enum", "message"]
    repeated: bool = False
    message: str = ""


@dataclass(frozen=True)
class _MessageType:
    label: str  # how messages name it: "item", not "StringIntLabelMapItem"
    fields: Mapping[str, _FieldType]


_MESSAGES: dict[str, _MessageType] = {
    "StringIntLabelMap": _MessageType(
        "label map", {"item": _FieldType("message", True, "StringIntLabelMapItem")}
    ),
    "StringIntLabelMapItem": _MessageType(
        "item",
        {
            "name": _FieldType("string"),
            "id": _FieldType("int32"),
            "display_name": _FieldType("string"),
            "keypoints": _FieldType("message", True, "KeypointMap"),
            "ancestor_ids": _FieldType("int32", True),
            "descendant_ids": _FieldType("int32", True),
            "frequency": _FieldType("enum"),
            "instance_count": _FieldType("int32"),
        },
    ),
    "KeypointMap": _MessageType(
        "keypoints", {"id": _FieldType("int32"), "label": _FieldType("string")}
    ),
}
# The only enum: StringIntLabelMapItem.LVISFrequency.
_FREQUENCIES = {"UNSPECIFIED": 0, "FREQUENT": 1, "COMMON": 2, "RARE": 3}


@dataclass
class _Message:
    offset: int
    fields: dict[str, list[_Value]] = field(default_factory=dict)


_Value: TypeAlias = "str | int | _Message"
_T = TypeVar("_T", str, int)


class _Parser:
    """A recursive-descent parser for the text format of the label map messages."""

    def __init__(self, text: str, source: str | None) -> None:
        self._text = text
        self._source = source or _NO_SOURCE
        self._line_starts = [0, *(match.end() for match in re.finditer("\n", text))]
        self._tokens = self._scan()
        self._token = next(self._tokens)

    def label_map_items(self) -> tuple[list[LabelMapItem], list[int]]:
        """The items in file order, with the line each starts on."""
        root = self._message_body(_MESSAGES["StringIntLabelMap"], 0, closing=None)
        items: list[LabelMapItem] = []
        lines: list[int] = []
        for value in root.fields.get("item", []):
            assert isinstance(value, _Message)
            items.append(self._item(value))
            lines.append(self._position(value.offset)[0])
        return items, lines

    def _item(self, message: _Message) -> LabelMapItem:
        name = _single(message, "name", str)
        number = _single(message, "id", int)
        where = f"{self._source}:{self._position(message.offset)[0]}"
        if name is None:
            raise LabelMapError(f"{where}: item has no name")
        if number is None:
            raise LabelMapError(f"{where}: item {name!r} has no id")
        return LabelMapItem(name, number, _single(message, "display_name", str))

    # --- grammar ------------------------------------------------------------------------------

    def _message_body(self, mtype: _MessageType, offset: int, closing: str | None) -> _Message:
        message = _Message(offset)
        while not self._at_end_of(mtype, message, closing):
            self._field(mtype, message)
        return message

    def _at_end_of(self, mtype: _MessageType, message: _Message, closing: str | None) -> bool:
        token = self._token
        if token.kind == "end":
            if closing is None:
                return True
            line = self._position(message.offset)[0]
            raise self._expected(
                token, f"{closing!r} to close the {mtype.label} opened at line {line}"
            )
        return closing is not None and self._accept(closing)

    def _field(self, mtype: _MessageType, message: _Message) -> None:
        token = self._token
        if token.kind != "ident":
            raise self._expected(token, f"a field name of {mtype.label}")
        ftype = mtype.fields.get(token.text)
        if ftype is None:
            known = ", ".join(mtype.fields)
            raise self._error_at(
                token.offset, f"unknown field {token.text!r} in {mtype.label} (known: {known})"
            )
        if not ftype.repeated and token.text in message.fields:
            raise self._error_at(token.offset, f"{mtype.label} has more than one {token.text!r}")
        self._advance()
        if ftype.kind == "message":
            self._accept(":")
        else:
            self._expect(":", f"after {token.text!r}")
        values = message.fields.setdefault(token.text, [])
        if ftype.repeated and self._accept("["):
            values.extend(self._list(ftype))
        else:
            values.append(self._value(ftype, start=token.offset))
        if not self._accept(","):
            self._accept(";")

    def _list(self, ftype: _FieldType) -> list[_Value]:
        values: list[_Value] = []
        if self._accept("]"):
            return values
        values.append(self._value(ftype))
        while not self._accept("]"):
            self._expect(",", "between list values")
            values.append(self._value(ftype))
        return values

    def _value(self, ftype: _FieldType, start: int | None = None) -> _Value:
        """One value; a message starts at `start` (its field name) or else at its brace."""
        if ftype.kind == "message":
            return self._message(_MESSAGES[ftype.message], start)
        if ftype.kind == "string":
            return self._string()
        if ftype.kind == "enum":
            return self._enum()
        return self._integer()

    def _message(self, mtype: _MessageType, start: int | None) -> _Message:
        token = self._token
        if token.kind != "punct" or token.text not in _CLOSING:
            raise self._expected(token, f"'{{' or '<' to open {mtype.label}")
        self._advance()
        offset = token.offset if start is None else start
        return self._message_body(mtype, offset, closing=_CLOSING[token.text])

    def _string(self) -> str:
        first = self._token
        if first.kind != "string":
            raise self._expected(first, "a quoted string")
        data = bytearray()
        while self._token.kind == "string":
            data += self._unescape(self._token)
            self._advance()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self._error_at(first.offset, "string is not valid UTF-8") from None

    def _integer(self) -> int:
        token = self._token
        if not _is_integer(token):
            raise self._expected(token, "an integer")
        value = _int_literal(token.text)
        if not INT32_MIN <= value <= INT32_MAX:
            raise self._error_at(
                token.offset, f"integer {_shortened(token.text)} is out of the int32 range"
            )
        self._advance()
        return value

    def _enum(self) -> int:
        token = self._token
        if token.kind == "ident" and token.text in _FREQUENCIES:
            self._advance()
            return _FREQUENCIES[token.text]
        number = _int_literal(token.text) if _is_integer(token) else None
        if number is not None and number in _FREQUENCIES.values():
            self._advance()
            return number
        known = ", ".join(_FREQUENCIES)
        raise self._expected(token, f"a frequency ({known})")

    # --- strings ------------------------------------------------------------------------------

    def _unescape(self, token: _Token) -> bytes:
        """The bytes a string literal stands for: octal and hex escapes are bytes, \\u and
        \\U escapes and raw characters are UTF-8, as in protobuf."""
        body = token.text[1:-1]
        out = bytearray()
        position = 0
        for match in _ESCAPE_RE.finditer(body):
            out += body[position : match.start()].encode("utf-8", "surrogatepass")
            problem = _escape_bytes(match, out)
            if problem is not None:
                raise self._error_at(token.offset + 1 + match.start(), problem)
            position = match.end()
        out += body[position:].encode("utf-8", "surrogatepass")
        return bytes(out)

    # --- tokens -------------------------------------------------------------------------------

    def _scan(self) -> Iterator[_Token]:
        text = self._text
        position = 0
        while position < len(text):
            match = _TOKEN_RE.match(text, position)
            if match is None:
                raise self._error_at(position, f"unexpected character {text[position]!r}")
            kind = match.lastgroup or ""
            if kind == "open_string":
                raise self._error_at(position, f"unterminated string (no closing {match.group()})")
            if kind != "skip":
                yield _Token(kind, match.group(), position)
            position = match.end()
        yield _Token("end", "", len(text))

    def _advance(self) -> None:
        self._token = next(self._tokens)

    def _accept(self, punct: str) -> bool:
        if self._token.kind == "punct" and self._token.text == punct:
            self._advance()
            return True
        return False

    def _expect(self, punct: str, context: str) -> None:
        if not self._accept(punct):
            raise self._expected(self._token, f"{punct!r} {context}")

    def _position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def _expected(self, token: _Token, what: str) -> LabelMapError:
        return self._error_at(token.offset, f"expected {what}, found {token.describe()}")

    def _error_at(self, offset: int, message: str) -> LabelMapError:
        line, column = self._position(offset)
        return LabelMapError(f"{self._source}:{line}:{column}: {message}")


def _escape_bytes(match: re.Match[str], out: bytearray) -> str | None:
    """Append the bytes of one escape to `out`; or say what is wrong with it."""
    if match["octal"] is not None:
        value = int(match["octal"], 8)
        if value > 0xFF:
            return f"octal escape \\{match['octal']} is larger than a byte (\\377)"
        out.append(value)
    elif match["hex"] is not None:
        out.append(int(match["hex"], 16))
    elif match["u4"] is not None or match["u8"] is not None:
        code = int(match["u4"] or match["u8"], 16)
        if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            return f"escape {match.group()} is not a Unicode character"
        out += chr(code).encode("utf-8")
    else:
        char = match["other"]
        if char in _HEX_DIGITS_NEEDED:
            return f"escape \\{char} needs {_HEX_DIGITS_NEEDED[char]} hex digits"
        if char not in _SIMPLE_ESCAPES:
            return f"unknown escape {match.group()}"
        out += _SIMPLE_ESCAPES[char]
    return None


def _is_integer(token: _Token) -> bool:
    return token.kind == "number" and _INTEGER_RE.fullmatch(token.text) is not None


#: Significant digits past which an integer literal is far beyond any id, and is not converted
#: (Python refuses to convert more than 4,300 digits; it would also cost quadratic time).
_MAX_LITERAL_DIGITS = 30


def _int_literal(text: str) -> int:
    """A C integer literal (decimal, 0x hex, 0-prefixed octal), as protobuf reads it; a
    literal of more than `_MAX_LITERAL_DIGITS` significant digits as +-2**64 (out of range)."""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if len(digits.lower().removeprefix("0x").lstrip("0")) > _MAX_LITERAL_DIGITS:
        return sign * 2**64
    if digits[:2].lower() == "0x":
        return sign * int(digits[2:], 16)
    if len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits, 8)
    return sign * int(digits)


def _shortened(text: str, limit: int = 40) -> str:
    """`text` for a message: a long one cut, with its length said."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _single(message: _Message, name: str, kind: type[_T]) -> _T | None:
    values = message.fields.get(name)
    if not values:
        return None
    value = values[0]
    assert isinstance(value, kind)
    return value
