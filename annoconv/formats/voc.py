"""Pascal VOC XML, one file per image, as labelImg, CVAT and Roboflow write it.

Reading looks every child up by tag, never by position (CVAT inserts `occluded`, Roboflow
orders the box xmin,xmax,ymin,ymax, `pose` may be missing). Coordinates are kept exactly as
written, as floats in pixel space: no rounding and no 1-based shift. Records are keyed by the
annotation path relative to the source root, so XMLs in different folders that name the same
image file stay apart.

Parsing is hardened against hostile files: documents declaring DTD entities are rejected
before parsing (external entities could read local files, nested ones expand without bound),
external DTDs are never loaded, and nothing is fetched from the network.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, ValidationError

from annoconv.errors import AnnotationError
from annoconv.formats.base import BadItem, Format, Reader, ReadResult, Source, Writer
from annoconv.io.fs import (
    GLOB_CHARS,
    dirname,
    expand_source,
    filesystem,
    is_remote,
    join,
    read_bytes,
    relative_posix,
    write_atomic,
)
from annoconv.io.images import (
    DEVKIT_ANNOTATIONS,
    DEVKIT_IMAGES,
    ImageLocator,
    is_image_name,
    read_image_info,
)
from annoconv.options import FormatOptions
from annoconv.report import OutputFile
from annoconv.schema import (
    BOX_FIELDS,
    MAX_INT32,
    PIXEL,
    PIXEL_TOLERANCE,
    UNKNOWN,
    BoxOutsideError,
    CoordSpace,
    Flag,
    ImageRecord,
    ObjectAnnotation,
    format_number,
    make_object,
    make_record,
    trusted_object,
    trusted_record,
)

if TYPE_CHECKING:
    from lxml import etree

    from annoconv.labelmap import LabelMap

#: Imported where used (a parallel run's driver parses no XML); the processes engine's
#: forkserver imports them before it forks the workers that do.
WORKER_IMPORTS = ("lxml.etree",)

XML_SUFFIXES = (".xml",)


#: The flags VOC files carry, in the order labelImg (and we) write them.
VOC_FLAGS = ("truncated", "difficult", "occluded")
#: labelImg's literal for "no pose"; read as None and written for None.
UNSPECIFIED_POSE = "Unspecified"
#: Top-level folders of a source that name the split of the XMLs in them (Roboflow's VOC
#: export holds train/, valid/ and test/, each with its images and XMLs).
SPLIT_FOLDERS = frozenset({"train", "val", "valid", "test"})

_FLAG_VALUES: dict[str, Flag] = {
    "0": 0,
    "1": 1,
    "0.0": 0,
    "1.0": 1,
    "false": 0,
    "true": 1,
    "no": 0,
    "yes": 1,
    "-1": UNKNOWN,
}
_VERIFIED_VALUES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
# `<!ENTITY` as it appears in ASCII-compatible and UTF-16 documents.
_ENTITY_MARKERS = tuple("<!ENTITY".encode(codec) for codec in ("ascii", "utf-16-le", "utf-16-be"))
# `<object` then whitespace, `>` or `/`, as it appears in ASCII-compatible and UTF-16 documents.
_OBJECT_TAGS = tuple(
    re.compile(
        re.escape("<object".encode(codec))
        + b"(?:"
        + b"|".join(re.escape(char.encode(codec)) for char in " \t\r\n>/")
        + b")"
    )
    for codec in ("ascii", "utf-16-le", "utf-16-be")
)
_XML_CHARS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_SYNTAX_POSITION = re.compile(r", line \d+, column \d+$")
_parsers = threading.local()


# --- reading -----------------------------------------------------------------------------------


#: How an XML names its image: by `<filename>` (labelImg, CVAT, Roboflow), or by the XML's own
#: stem (the VOC devkit's convention, which mmdetection and Datumaro follow).
ImageName = Literal["filename", "stem"]


class VocReadOptions(FormatOptions):
    image_name: ImageName = Field(
        "filename",
        description="pair each XML with the image named by its <filename> (default), or with "
        "the image sharing the XML's file stem, <filename> ignored (the VOC devkit's "
        "Annotations/000001.xml -> JPEGImages/000001.jpg)",
    )


class VocReader(Reader):
    """Reads VOC XML files: a folder (recursively, sorted), a glob, one file or a list of files.

    Yields one ImageRecord per XML file, or a BadItem naming the file and element for one
    that cannot be read. When an XML lacks the image size (no `<size>`, or width/height empty
    or 0), the image is looked up (see `ImageLocator`; `images` is the images folder) and its
    header read; if it cannot be found the size stays unknown.

    `image_name="stem"` names each record's image after the XML's stem, with `<filename>`'s
    extension when it has an image extension (else any image extension is looked for):
    ``000001.xml`` naming ``000002.jpg`` is the record of ``000001.jpg``.
    """

    def __init__(
        self, source: Source, *, images: str | None = None, image_name: ImageName = "filename"
    ) -> None:
        super().__init__(source, images=images)
        self.image_name = image_name
        self._expanded: tuple[list[str], str] | None = None
        self._keyed: list[tuple[str, str]] | None = None

    def __iter__(self) -> Iterator[ReadResult]:
        files, root = self._files()
        locator = ImageLocator(self.images, root)
        for uri in files:
            yield read_voc_file(uri, relative_posix(uri, root), locator, self.image_name)

    def labels(self) -> Iterator[tuple[str, list[str]]]:
        files, root = self._files()
        for uri in files:
            key = relative_posix(uri, root)
            try:
                data = read_bytes(uri)
            except OSError:
                continue
            names = _plain_labels(data)
            if names is None:
                try:
                    xml = parse_voc_xml(data, uri)
                except AnnotationError:
                    continue
                names = _object_labels(xml)
            # A file with an empty <name> is a bad item of the conversion pass: its labels
            # must not reach the label map (where an empty name would fail the whole run).
            if all(names):
                yield key, names

    def count_hint(self) -> int:
        return len(self._files()[0])

    def image_files(self) -> list[tuple[str, str]]:
        # Kept: an engine asks more than once while the driver plans (a key for each of
        # thousands of files costs milliseconds each time).
        if self._keyed is None:
            files, root = self._files()
            self._keyed = [(relative_posix(uri, root), uri) for uri in files]
        return self._keyed

    def only_files(self, files: Sequence[str]) -> VocReader:
        subset = VocReader(self.source, images=self.images, image_name=self.image_name)
        subset._expanded = (list(files), self._files()[1])
        return subset

    def _files(self) -> tuple[list[str], str]:
        if self._expanded is None:
            files, root = expand_source(self.source, XML_SUFFIXES)
            if isinstance(self.source, str) and any(c in self.source for c in GLOB_CHARS):
                # A glob over a folder of images and XMLs side by side matches both.
                files = [f for f in files if f.lower().endswith(XML_SUFFIXES)]
            self._expanded = (files, root)
        return self._expanded


def read_voc_file(
    uri: str, key: str, locator: ImageLocator | None = None, image_name: ImageName = "filename"
) -> ReadResult:
    """The record of one VOC XML file keyed `key`, or a BadItem saying why it cannot be read;
    its image named as `image_name` says (see `VocReader`)."""
    try:
        data = read_bytes(uri)
    except OSError as exc:
        return BadItem(AnnotationError(uri, f"cannot read the file: {exc.strerror or exc}"))
    plain = _plain_document(data)
    if plain is not None:
        record = _plain_record(plain, uri, key)
        if record is not None:
            return _named_by_stem(record, key) if image_name == "stem" else record
    try:
        root = parse_voc_xml(data, uri)
    except AnnotationError as exc:
        return BadItem(exc, boxes=object_tags(data))
    try:
        return _record(root, uri, key, locator, image_name)
    except AnnotationError as exc:
        return BadItem(exc, boxes=_box_count(root))


def _box_count(root: etree._Element) -> int:
    """The boxes of a document's objects, as `_objects` reads them (see `_object_labels`)."""
    return len(_object_labels(root))


def object_tags(data: bytes) -> int:
    """How many `<object>` start tags the bytes of a document hold: the boxes a file that
    cannot be parsed is counted with when it is skipped."""
    return max(len(pattern.findall(data)) for pattern in _OBJECT_TAGS)


# --- the plain-document fast path ---------------------------------------------------------------
#
# Most files are plain labelImg output: UTF-8, no entities, comments, CDATA or namespaces, one
# level of nesting outside the objects, each object laid out as labelImg writes it. For those a
# regular grammar below proves the document well formed and yields its values with one regex
# match per top-level element, with no tree built. Anything else, and any file whose values
# would raise an error, goes through lxml and `_record` instead, so results and error messages
# are the same either way.

_WS = "[ \t\r\n]*"
_TAG = "[A-Za-z_][A-Za-z0-9_.-]*"
_CHARS = "[^<&]*"
_NUMBER = f"{_WS}-?[0-9]+(?:[.][0-9]+)?{_WS}"
_OBJECT = (
    f"(<object>){_WS}<name>({_CHARS})</name>{_WS}"
    + "".join(f"(?:<{tag}>({_CHARS})</{tag}>{_WS})?" for tag in ("pose", *VOC_FLAGS))
    + f"<bndbox>{_WS}"
    + "".join(f"<{name}>({_NUMBER})</{name}>{_WS}" for name in BOX_FIELDS)
    + "</bndbox>"
    + _WS
    + "</object>"
)
_LEAF = f"<(?!object>)(?P<leaf>{_TAG})>({_CHARS})</(?P=leaf)>"
_GROUP = (
    f"<(?!object>)(?P<group>{_TAG})>((?:{_WS}<(?P<inner>{_TAG})>{_CHARS}</(?P=inner)>)*{_WS})"
    "</(?P=group)>"
)
_ITEM = re.compile(f"{_WS}(?:{_OBJECT}|{_LEAF}|{_GROUP})")
_ITEMS = re.compile(f"(?:{_ITEM.pattern})*")
_OBJECT_NAMES = re.compile(f"<object>{_WS}<name>({_CHARS})</name>")
# Indices into the groups of an _ITEM match (None for a group that took no part).
_IS_OBJECT, _NAME, _POSE, _TRUNCATED, _DIFFICULT, _OCCLUDED = range(6)
_XMIN, _YMIN, _XMAX, _YMAX = range(6, 10)
_LEAF_TAG, _LEAF_TEXT, _GROUP_TAG, _GROUP_BODY = 10, 11, 12, 13
_QUOTED = "(?:\"(?P<v1>[^\"<&\t\n\r]*)\"|'(?P<v2>[^'<&\t\n\r]*)')"
_DECLARATION = (
    f"<[?]xml[ \t\r\n]+version{_WS}={_WS}(?:\"1[.]0\"|'1[.]0')"
    f"(?:[ \t\r\n]+encoding{_WS}={_WS}(?:\"(?:UTF|utf)-8\"|'(?:UTF|utf)-8'))?"
    f"(?:[ \t\r\n]+standalone{_WS}={_WS}(?:\"(?:yes|no)\"|'(?:yes|no)'))?{_WS}[?]>"
)
_HEAD = re.compile(
    f"(?:{_DECLARATION})?{_WS}<annotation(?:[ \t\r\n]+verified{_WS}={_WS}{_QUOTED})?{_WS}>"
)
_TAIL = re.compile(f"{_WS}</annotation>{_WS}")
_SIZE_LEAVES = re.compile(f"<({_TAG})>({_CHARS})</\\1>")
# Bytes XML 1.0 does not allow, mapped to NUL (itself not allowed) for a one-pass check.
_NOT_XML = bytes(range(32)).translate(None, b"\t\n\r")
_TO_NUL = bytes(0 if byte in _NOT_XML else byte for byte in range(256))
_PLAIN_LIMIT = 1 << 20  # larger files are rare and go through lxml's own limits
_FLAG_TEXTS: dict[str | None, Flag] = {None: UNKNOWN, "": UNKNOWN, "0": 0, "1": 1}


@dataclass(frozen=True)
class _PlainDocument:
    """A plain document's top-level items (groups of _ITEM matches) and `verified` attribute."""

    items: list[tuple[str | None, ...]]
    verified: str | None


def _plain_document(data: bytes) -> _PlainDocument | None:
    """The items of a document the fast path can read, or None to use lxml instead."""
    start = _plain_start(data)
    if start is None:
        return None
    text, head = start
    items = []
    position = head.end()
    match = _ITEM.match
    while (item := match(text, position)) is not None:
        items.append(item.groups())
        position = item.end()
    if _TAIL.fullmatch(text, position) is None:
        return None
    verified = head.group("v1")
    return _PlainDocument(items, verified if verified is not None else head.group("v2"))


def _object_labels(root: etree._Element) -> list[str]:
    """Each box's label, as `_record` reads the boxes (an object's first `<name>`, once per
    `<bndbox>` when it holds several)."""
    labels = []
    for element in root.iterfind("object"):
        name = element.find("name")
        label = (name.text or "").strip() if name is not None else ""
        labels += [label] * max(1, len(element.findall("bndbox")))
    return labels


def _plain_labels(data: bytes) -> list[str] | None:
    """The object names of a document the fast path can read (as `labels()` gives them),
    or None to use lxml instead. The grammar is checked in one call, the items not kept."""
    start = _plain_start(data)
    if start is None:
        return None
    text, head = start
    items = _ITEMS.match(text, head.end())
    if items is None or _TAIL.fullmatch(text, items.end()) is None:
        return None
    return [name.strip() for name in _OBJECT_NAMES.findall(text, head.end())]


def _plain_start(data: bytes) -> tuple[str, re.Match[str]] | None:
    """A document's text (line ends normalized) and its matched start up to the root's
    start tag, when the bytes can be plain; None when they cannot."""
    if len(data) > _PLAIN_LIMIT or b"&" in data or 0 in data.translate(_TO_NUL):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text:  # XML's end-of-line handling, as the parser applies it
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\ufffe" in text or "\uffff" in text or "]]>" in text:
        return None
    head = _HEAD.match(text)
    return None if head is None else (text, head)


def _plain_record(document: _PlainDocument, uri: str, key: str) -> ImageRecord | None:
    """The record of a plain document, or None when `_record` must build it (for its checks,
    its messages, or an image lookup when the size is missing)."""
    first: dict[str | None, tuple[str | None, ...]] = {}
    objects = []
    for item in document.items:
        if item[_IS_OBJECT]:
            objects.append(item)
        else:
            first.setdefault(item[_LEAF_TAG] or item[_GROUP_TAG], item)
    verified = None
    if document.verified is not None:
        verified = _VERIFIED_VALUES.get(document.verified.strip().lower())
        if verified is None:
            return None
    filename, path, size = first.get("filename"), first.get("path"), first.get("size")
    if any(item is not None and item[_GROUP_TAG] for item in (filename, path)):
        return None
    size_body = size[_GROUP_BODY] if size is not None else None
    if size_body is None:
        return None
    recorded = (path[_LEAF_TEXT] or "").strip() if path else ""
    image_name = ((filename[_LEAF_TEXT] or "").strip() if filename else "") or _basename(recorded)
    dimensions = _plain_size(size_body)
    if not image_name or dimensions is None:
        return None
    width, height, depth = dimensions
    built = _plain_objects(objects, width, height)
    if built is None:
        return None
    filename_in_key = posixpath.join(image_folder(key), _basename(image_name))
    if not filename_in_key:
        return None
    return trusted_record(
        source=uri,
        key=key,
        filename=filename_in_key,
        width=width,
        height=height,
        depth=depth,
        coords=PIXEL,
        objects=built,
        path=recorded or None,
        image_uri=None,
        verified=verified,
        split=folder_split(key),
    )


def _plain_size(body: str) -> tuple[int, int, int | None] | None:
    """(width, height, depth) of a `<size>` body, as `_size` reads it; None unless both
    width and height are given, non-zero and valid."""
    values: dict[str, str] = {}
    for tag, text in _SIZE_LEAVES.findall(body):
        values.setdefault(tag, text)
    dimensions = []
    for name in ("width", "height", "depth"):
        text = values.get(name, "").strip()
        value = _number(text) if text else None
        if text and (value is None or not 0 <= value <= MAX_INT32 or not value.is_integer()):
            return None
        dimensions.append(None if value is None else int(value) or None)
    width, height, depth = dimensions
    if width is None or height is None:
        return None
    return width, height, depth


def _plain_objects(
    items: list[tuple[str | None, ...]], width: int, height: int
) -> list[ObjectAnnotation] | None:
    """The objects of plain `<object>` items, or None where `_object` or the record's checks
    would raise for any of them (the slow path then raises with its message)."""
    objects = []
    low, x_limit, y_limit = -PIXEL_TOLERANCE, width + PIXEL_TOLERANCE, height + PIXEL_TOLERANCE
    flag_texts = _FLAG_TEXTS
    for item in items:
        label = (item[_NAME] or "").strip()
        # The usual texts ("0", "1", absent) looked up directly, the rest as `_flag` reads them.
        text = item[_TRUNCATED]
        truncated = flag_texts[text] if text in flag_texts else _plain_flag(text)
        text = item[_DIFFICULT]
        difficult = flag_texts[text] if text in flag_texts else _plain_flag(text)
        text = item[_OCCLUDED]
        occluded = flag_texts[text] if text in flag_texts else _plain_flag(text)
        # The grammar admits only plain decimals here, which float() always takes.
        xmin, ymin = float(item[_XMIN]), float(item[_YMIN])  # type: ignore[arg-type]
        xmax, ymax = float(item[_XMAX]), float(item[_YMAX])  # type: ignore[arg-type]
        if (
            not label
            or truncated is None
            or difficult is None
            or occluded is None
            or not low <= xmin <= xmax <= x_limit
            or not low <= ymin <= ymax <= y_limit
        ):
            return None
        pose = item[_POSE]
        if pose is not None:
            pose = pose.strip()
        objects.append(
            trusted_object(
                label=label,
                pose=pose if pose and pose != UNSPECIFIED_POSE else None,
                truncated=truncated,
                difficult=difficult,
                occluded=occluded,
                xmin=xmin,
                ymin=ymin,
                xmax=xmax,
                ymax=ymax,
            )
        )
    return objects


def _plain_flag(text: str | None) -> Flag | None:
    """A flag as `_flag` reads it; None where `_flag` raises."""
    text = (text or "").strip()
    return _FLAG_VALUES.get(text.lower()) if text else UNKNOWN


def parse_voc_xml(data: bytes, source: str) -> etree._Element:
    """The root element of an XML document, parsed safely; AnnotationError if malformed."""
    from lxml import etree

    if not data.strip():
        raise AnnotationError(source, "the file is empty")
    if any(marker in data for marker in _ENTITY_MARKERS):
        raise AnnotationError(source, "DTD entity declarations are not allowed")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        message = " ".join(_SYNTAX_POSITION.sub("", exc.msg).split())
        raise AnnotationError(
            source, f"malformed XML: {message} (column {column})", f"line {line}"
        ) from None
    _reject_entities(root, source)
    return root


def _parser() -> etree.XMLParser:
    """This thread's parser (lxml parsers must not be shared between threads)."""
    from lxml import etree

    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        _parsers.parser = parser
    return parser


def _reject_entities(root: etree._Element, source: str) -> None:
    """Second line of defence behind the byte scan: no entity may survive into the tree."""
    from lxml import etree

    docinfo = root.getroottree().docinfo
    if not docinfo.doctype:  # type: ignore[attr-defined]  # missing from lxml-stubs
        return  # without a DOCTYPE an undeclared entity is a syntax error already
    dtd = docinfo.internalDTD
    if dtd is not None and dtd.entities():  # type: ignore[attr-defined]  # missing from lxml-stubs
        raise AnnotationError(source, "DTD entity declarations are not allowed")
    for entity in root.iter(etree.Entity):
        raise AnnotationError(
            source,
            f"entity reference {entity.text} is not allowed (external DTDs are not loaded)",
            f"line {entity.sourceline}",
        )


def _record(
    root: etree._Element,
    uri: str,
    key: str,
    locator: ImageLocator | None,
    naming: ImageName = "filename",
) -> ImageRecord:
    if root.tag != "annotation":
        raise AnnotationError(
            uri, f"root element is <{root.tag}>, expected <annotation>", _at(root, "")
        )
    if naming == "stem":
        image_name = _stem_name(key, _text(root.find("filename")))
    else:
        image_name = _image_name(root, uri)
    path = _text(root.find("path")) or None
    width, height, depth = _size(root, uri)
    image_uri = None
    if (width is None or height is None) and locator is not None:
        image_uri = locator.find(uri, image_name, path)
        if image_uri is not None:
            width, height, depth = _size_from_image(image_uri, root, uri)
    boxes = [
        box
        for index, element in enumerate(root.findall("object"), 1)
        for box in _objects(element, index, uri)
    ]
    objects = [obj for obj, _box, _path in boxes]
    try:
        return make_record(
            uri,
            None,
            key=key,
            filename=posixpath.join(image_folder(key), _basename(image_name)),
            width=width,
            height=height,
            depth=depth,
            coords=PIXEL,
            objects=objects,
            path=path,
            image_uri=image_uri,
            verified=_verified(root, uri),
            split=folder_split(key),
        )
    except BoxOutsideError as error:
        raise _outside_at(error, boxes) from None


def _outside_at(
    error: BoxOutsideError, boxes: list[tuple[ObjectAnnotation, etree._Element, str]]
) -> BoxOutsideError:
    """The error at the line of the coordinate that lies outside (`object[2]/bndbox/xmax`),
    rather than the record's: the schema's message names the object and the coordinate."""
    for index, (obj, box, path) in enumerate(boxes, 1):
        prefix = f"object[{index}] ({obj.label!r}): "
        if error.message.startswith(prefix):
            problem = error.message[len(prefix) :]
            where = _coordinate_at(box, path, problem)
            if where is not None:
                return BoxOutsideError(error.source, problem, where, record=error.record)
    return error


def _coordinate_at(box: etree._Element, path: str, message: str) -> str | None:
    """The `where` of the child of the `<bndbox>` at `path` a message about its box starts
    with ("xmin 50 > xmax 10" is about `<xmin>`), or None when the message names none."""
    name = message.split(" ", 1)[0]
    child = _children(box).get(name) if name in BOX_FIELDS else None
    return _at(child, f"{path}/{name}") if child is not None else None


def image_folder(key: str) -> str:
    """The folder of a record's image, relative to the source: the XML's own, except for the
    VOC devkit's layout (CVAT's "PASCAL VOC" export too), whose XMLs are in `Annotations/` and
    images in `JPEGImages/` beside it (`Annotations/1.xml` -> `JPEGImages`)."""
    folder = posixpath.dirname(key)
    parent, name = posixpath.split(folder)
    return posixpath.join(parent, DEVKIT_IMAGES) if name == DEVKIT_ANNOTATIONS else folder


def folder_split(key: str) -> str | None:
    """The split the top-level folder of a record's key names (`valid/a.xml` -> `valid`,
    see `SPLIT_FOLDERS`), else None (`10165001/a.xml`, `a.xml`)."""
    folder, separator, _rest = key.partition("/")
    return folder if separator and folder in SPLIT_FOLDERS else None


def _stem_name(key: str, filename: str) -> str:
    """The image name of `image_name="stem"`: the XML's stem, with `filename`'s extension when
    that is an image extension (`000001.xml` naming `000002.jpg` -> `000001.jpg`)."""
    stem = posixpath.splitext(posixpath.basename(key))[0]
    extension = posixpath.splitext(_basename(filename))[1]
    return stem + extension if is_image_name(extension) else stem


def _named_by_stem(record: ImageRecord, key: str) -> ImageRecord:
    """A record the fast path read by `<filename>`, named by the XML's stem instead."""
    name = _stem_name(key, record.filename)
    return record.model_copy(update={"filename": posixpath.join(image_folder(key), name)})


def _image_name(root: etree._Element, uri: str) -> str:
    """`<filename>` as written (old labelImg omits the extension), else `<path>`'s basename."""
    element = root.find("filename")
    name = _text(element)
    if name:
        return name
    from_path = _basename(_text(root.find("path")))
    if from_path:
        return from_path
    if element is not None:  # the error points at the element's own line
        problem, where = "empty <filename>", _at(element, "filename")
    else:
        problem, where = "missing <filename>", _at(root, "")
    raise AnnotationError(uri, f"{problem} (and no <path> to take the image name from)", where)


def _size(root: etree._Element, uri: str) -> tuple[int | None, int | None, int | None]:
    """(width, height, depth); width and height both None unless both are given and non-zero."""
    size = root.find("size")
    if size is None:
        return None, None, None
    width, height, depth = (_dimension(size, name, uri) for name in ("width", "height", "depth"))
    if width is None or height is None:
        return None, None, depth
    return width, height, depth


def _dimension(size: etree._Element, name: str, uri: str) -> int | None:
    """A size value in whole pixels; empty or 0 (as CVAT and broken labelImg runs write) is None."""
    element = size.find(name)
    if element is None:
        return None
    text = _text(element)
    if not text:
        return None
    value = _number(text)
    if value is None or value < 0 or not value.is_integer():
        raise AnnotationError(
            uri, f"expected a whole number of pixels, got {text!r}", _at(element, f"size/{name}")
        )
    return int(value) or None


def _size_from_image(
    image_uri: str, root: etree._Element, uri: str
) -> tuple[int | None, int | None, int | None]:
    """Width, height and depth from the image header (the XML's size block is unreliable)."""
    try:
        info = read_image_info(image_uri)
    except AnnotationError as exc:
        size = root.find("size")
        raise AnnotationError(
            uri,
            f"the image size is missing and the image {image_uri} cannot be read: {exc.message}",
            _at(size, "size") if size is not None else None,
        ) from None
    return info.width, info.height, info.depth


def _verified(root: etree._Element, uri: str) -> bool | None:
    value = root.get("verified")
    if value is None:
        return None
    verified = _VERIFIED_VALUES.get(value.strip().lower())
    if verified is None:
        raise AnnotationError(
            uri, f"verified must be 'yes' or 'no', got {value!r}", _at(root, "annotation/@verified")
        )
    return verified


def _objects(
    element: etree._Element, index: int, uri: str
) -> list[tuple[ObjectAnnotation, etree._Element, str]]:
    """The boxes of `<object>` number `index`, each with its `<bndbox>` and that element's
    path: one, or one per `<bndbox>` of an object that holds several (some tools write
    the cars of an image as one object with a box for each)."""
    at = f"object[{index}]"
    children = _children(element)
    name = children.get("name")
    if name is None:
        raise AnnotationError(uri, "missing <name>", _at(element, at))
    label = _text(name)
    if not label:
        raise AnnotationError(uri, "empty <name>", _at(name, f"{at}/name"))
    boxes = element.findall("bndbox")
    if not boxes:
        raise AnnotationError(uri, "missing <bndbox>", _at(element, at))
    flags = {flag: _flag(children.get(flag), at, uri) for flag in VOC_FLAGS}
    pose = _pose(children.get("pose"))
    paths = (
        [f"{at}/bndbox"]
        if len(boxes) == 1
        else [f"{at}/bndbox[{number}]" for number in range(1, len(boxes) + 1)]
    )
    return [
        (_object(element, box, path, uri, label, pose, flags), box, path)
        for box, path in zip(boxes, paths, strict=True)
    ]


def _object(
    element: etree._Element,
    box: etree._Element,
    path: str,
    uri: str,
    label: str,
    pose: str | None,
    flags: dict[str, Flag],
) -> ObjectAnnotation:
    coordinates = _coordinates(box, path, uri)
    try:
        return ObjectAnnotation(label=label, pose=pose, **flags, **coordinates)
    except ValidationError:
        pass
    # Rare: build it again through make_object, which says what is wrong and where.
    at = path.rsplit("/", 1)[0]
    try:
        return make_object(uri, _at(element, at), label=label, pose=pose, **flags, **coordinates)
    except AnnotationError as error:
        where = _coordinate_at(box, path, error.message)
        if where is None:
            raise
        raise AnnotationError(uri, error.message, where) from None


def _children(element: etree._Element) -> dict[str, etree._Element]:
    """The element's children by tag, the first of each (comments are removed when parsing)."""
    children: dict[str, etree._Element] = {}
    for child in element:
        children.setdefault(child.tag, child)
    return children


def _pose(element: etree._Element | None) -> str | None:
    pose = _text(element)
    return None if not pose or pose == UNSPECIFIED_POSE else pose


def _flag(element: etree._Element | None, at: str, uri: str) -> Flag:
    """0 or 1 as written (also 0.0/1.0, true/false, yes/no); absent or empty is unknown (-1)."""
    if element is None:
        return UNKNOWN
    text = _text(element)
    value = _FLAG_VALUES.get(text.lower()) if text else UNKNOWN
    if value is None:
        where = _at(element, f"{at}/{element.tag}")
        raise AnnotationError(uri, f"expected 0 or 1, got {text!r}", where)
    return value


def _coordinates(box: etree._Element, path: str, uri: str) -> dict[str, float]:
    """The coordinates of the `<bndbox>` at `path` (`object[2]/bndbox`)."""
    children = _children(box)
    coordinates = {}
    for name in BOX_FIELDS:
        element = children.get(name)
        if element is None:
            raise AnnotationError(uri, f"missing <{name}>", _at(box, path))
        value = _number(element.text)
        if value is None:
            where = _at(element, f"{path}/{name}")
            raise AnnotationError(uri, f"expected a number, got {_text(element)!r}", where)
        coordinates[name] = value
    return coordinates


def _number(text: str | None) -> float | None:
    """A finite decimal number (surrounding whitespace allowed), or None."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    # float() also takes 'nan', 'inf' and '1_000', which are no coordinates.
    return value if math.isfinite(value) and "_" not in (text or "") else None


def _text(element: etree._Element | None) -> str:
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def _at(element: etree._Element, path: str) -> str:
    """A `where` naming the element's line and its path, e.g. 'line 14, object[2]/bndbox/xmin'."""
    return f"line {element.sourceline}, {path}" if path else f"line {element.sourceline}"


def _basename(path: str) -> str:
    """Basename of a path from any OS (labelImg records Windows paths with back-slashes)."""
    return posixpath.basename(path.replace("\\", "/").rstrip("/"))


# --- writing -----------------------------------------------------------------------------------


class VocWriter(Writer):
    """Writes one labelImg-style XML per record under the destination folder.

    A record keyed `1/280.xml` (as VocReader keys them) is written to `<dest>/1/280.xml`;
    other records to `<dest>/<filename without extension>.xml`. Each file is written
    atomically; `abort()` removes the files written so far. Only what VOC can hold is
    written: image-level labels, split, sha256, confidences and the Open Images flags
    (group_of, depiction, inside) are dropped.
    """

    coords: ClassVar[CoordSpace | None] = PIXEL

    def __init__(
        self, destination: str, *, label_map: LabelMap | None = None, images: str | None = None
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        self._outputs: list[OutputFile] = []
        self._names: set[str] = set()
        self._state = "open"

    def write(self, record: ImageRecord) -> None:
        if self._state != "open":
            raise RuntimeError(f"VocWriter.write() after {self._state}")
        name = output_name(record)
        if name in self._names:
            raise AnnotationError(
                record.source or record.key, f"another record was already written to {name}"
            )
        data = to_voc_xml(record)
        uri = join(self.destination, *name.split("/"))
        size = write_atomic(uri, data)
        self._names.add(name)
        self._outputs.append(OutputFile(uri, size, "voc"))

    def close(self) -> list[OutputFile]:
        self._state = "close()"
        return list(self._outputs)

    def abort(self) -> None:
        """Removes the files written so far (nothing once close() has published them)."""
        if self._state == "close()":
            return
        self._state = "abort()"
        for output in self._outputs:
            _remove(output.path, self.destination)
        self._outputs.clear()


def output_name(record: ImageRecord) -> str:
    """The XML's path relative to the destination folder, in posix form."""
    key = record.key.replace("\\", "/")
    if key.lower().endswith(XML_SUFFIXES):
        name = key
    else:
        name = posixpath.splitext(record.filename.replace("\\", "/"))[0] + ".xml"
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or name.startswith("/") or ".." in parts or ":" in parts[0]:
        raise AnnotationError(
            record.source or record.key,
            f"cannot write {name!r}: the name must stay inside the destination folder",
        )
    return "/".join(parts)


def to_voc_xml(record: ImageRecord) -> bytes:
    """The record as labelImg writes it: tab-indented UTF-8, no XML declaration.

    Raises AnnotationError, before anything is written, for records VOC cannot hold.
    """
    from lxml import etree

    source = record.source or record.key
    if record.coords != PIXEL:
        raise AnnotationError(source, "VOC needs pixel coordinates; convert the record first")
    path = _xml_safe(record.path or record.filename, source, "path")
    root = etree.Element("annotation")
    if record.verified is not None:
        # labelImg writes only "yes"; it takes any other value as not verified.
        root.set("verified", "yes" if record.verified else "no")
    _add(root, "folder", _basename(posixpath.dirname(path.replace("\\", "/"))))
    _add(root, "filename", _xml_safe(_basename(record.filename), source, "filename"))
    _add(root, "path", path)
    _add(_add(root, "source"), "database", "Unknown")
    if record.width is not None and record.height is not None:
        size = _add(root, "size")
        _add(size, "width", str(record.width))
        _add(size, "height", str(record.height))
        _add(size, "depth", str(record.depth or 3))
    _add(root, "segmented", "0")
    for index, obj in enumerate(record.objects, 1):
        _add_object(root, obj, source, f"object[{index}]")
    etree.indent(root, space="\t")
    return etree.tostring(root, encoding="utf-8", pretty_print=True)


def _add_object(root: etree._Element, obj: ObjectAnnotation, source: str, at: str) -> None:
    element = _add(root, "object")
    _add(element, "name", _xml_safe(obj.label, source, f"{at}/name"))
    _add(element, "pose", _xml_safe(obj.pose or UNSPECIFIED_POSE, source, f"{at}/pose"))
    for flag in VOC_FLAGS:
        value: int = getattr(obj, flag)
        if value != UNKNOWN:
            _add(element, flag, str(value))
    box = _add(element, "bndbox")
    for name in BOX_FIELDS:
        _add(box, name, format_number(getattr(obj, name)))


def _add(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    """A new last child `tag` of `parent`, holding `text`. Made through the parent, as lxml
    is imported where used only: an import here would cost every box's fields ~0.3 us each."""
    child = parent.makeelement(tag)
    child.text = text
    parent.append(child)
    return child


def _xml_safe(text: str, source: str, field: str) -> str:
    """`text`, or an error naming `field` when it holds characters XML 1.0 cannot carry."""
    if not _XML_CHARS.fullmatch(text):
        bad = next(char for char in text if not _XML_CHARS.fullmatch(char))
        raise AnnotationError(source, f"{bad!r} cannot be written in XML", field)
    return text


def _remove(uri: str, destination: str) -> None:
    """Removes a written file, and the folders below `destination` that it leaves empty."""
    if is_remote(uri):
        fs, path = filesystem(uri)
        if fs.exists(path):
            fs.rm(path)
        return
    if os.path.exists(uri):
        os.remove(uri)
    stop = os.path.abspath(destination)
    folder = os.path.abspath(dirname(uri))
    while folder.startswith(stop + os.sep) and not os.listdir(folder):
        os.rmdir(folder)
        folder = os.path.dirname(folder)


FORMAT = Format(
    "voc",
    "Pascal VOC XML as written by labelImg, CVAT and Roboflow (one file per image)",
    XML_SUFFIXES,
    reader=VocReader,
    writer=VocWriter,
    read_options=VocReadOptions,
    reads_folders=True,
)
