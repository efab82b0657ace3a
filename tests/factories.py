"""Test fixtures written the way real tools write them: VOC XML from labelImg, CVAT, Roboflow,
and real images drawn with Pillow.

The XML helpers return text, so a test can tweak it before `write()`-ing it to disk. Objects
are `Box` values or plain tuples `(label, xmin, ymin, xmax, ymax)`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw


@dataclass(frozen=True)
class Box:
    """One object as an annotation tool stores it. `None` flags/pose are left out of the XML."""

    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    difficult: int | None = 0
    truncated: int | None = 0
    occluded: int | None = None
    pose: str | None = "Unspecified"


BoxLike = Box | Sequence[object]


def as_box(obj: BoxLike) -> Box:
    """A Box from a Box or a `(label, xmin, ymin, xmax, ymax[, difficult, truncated])` tuple."""
    return obj if isinstance(obj, Box) else Box(*obj)  # type: ignore[arg-type]


def number(value: float) -> str:
    """A coordinate as labelImg writes it: whole values as integers, others as repr."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def labelimg_xml(
    filename: str,
    width: int | None,
    height: int | None,
    objects: Iterable[BoxLike] = (),
    *,
    depth: int | None = 3,
    folder: str = "images",
    path: str | None = None,
    verified: bool = False,
    extension_less: bool = False,
) -> str:
    """A labelImg annotation: tab-indented, no XML declaration, fields in labelImg's order.

    `path` defaults to `/home/user/<folder>/<filename>`; `extension_less` writes the
    filename without its extension as labelImg did before 2017. `width=None` omits `<size>`.
    """
    shown = posixpath.splitext(filename)[0] if extension_less else filename
    path = path if path is not None else f"/home/user/{folder}/{filename}"
    root = '<annotation verified="yes">' if verified else "<annotation>"
    lines = [
        root,
        f"\t<folder>{escape(folder)}</folder>",
        f"\t<filename>{escape(shown)}</filename>",
        f"\t<path>{escape(path)}</path>",
        "\t<source>",
        "\t\t<database>Unknown</database>",
        "\t</source>",
    ]
    if width is not None:
        lines += [
            "\t<size>",
            f"\t\t<width>{width}</width>",
            f"\t\t<height>{height}</height>",
            f"\t\t<depth>{'' if depth is None else depth}</depth>",
            "\t</size>",
        ]
    lines.append("\t<segmented>0</segmented>")
    for box in map(as_box, objects):
        lines += ["\t<object>", f"\t\t<name>{escape(box.label)}</name>"]
        lines += _optional("\t\t", "pose", box.pose)
        lines += _optional("\t\t", "truncated", box.truncated)
        lines += _optional("\t\t", "difficult", box.difficult)
        lines += _optional("\t\t", "occluded", box.occluded)
        lines += _bndbox("\t\t", "\t", box, ("xmin", "ymin", "xmax", "ymax"), number)
        lines.append("\t</object>")
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def cvat_xml(
    filename: str,
    width: int | None,
    height: int | None,
    objects: Iterable[BoxLike] = (),
    *,
    folder: str = "",
) -> str:
    """A CVAT (Datumaro) VOC export: no `<path>`, empty `<depth>`, `<occluded>` inserted
    between truncated and difficult, float coordinates (`257.0`), pose only when known,
    two-space indentation; `<size>` omitted when width is None."""
    lines = [
        "<annotation>",
        f"  <folder>{escape(folder)}</folder>",
        f"  <filename>{escape(filename)}</filename>",
        "  <source>",
        "    <database>Unknown</database>",
        "    <annotation>Unknown</annotation>",
        "    <image>Unknown</image>",
        "  </source>",
    ]
    if width is not None:
        lines += [
            "  <size>",
            f"    <width>{width}</width>",
            f"    <height>{height}</height>",
            "    <depth></depth>",
            "  </size>",
        ]
    lines.append("  <segmented>0</segmented>")
    for box in map(as_box, objects):
        lines += ["  <object>", f"    <name>{escape(box.label)}</name>"]
        if box.pose not in (None, "Unspecified"):
            lines += _optional("    ", "pose", box.pose)
        lines += _optional("    ", "truncated", box.truncated or 0)
        lines += _optional("    ", "occluded", box.occluded or 0)
        lines += _optional("    ", "difficult", box.difficult or 0)
        order = ("xmin", "ymin", "xmax", "ymax")
        lines += _bndbox("    ", "  ", box, order, lambda v: str(float(v)))
        lines.append("  </object>")
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def roboflow_xml(
    filename: str,
    width: int,
    height: int,
    objects: Iterable[BoxLike] = (),
) -> str:
    """A Roboflow VOC export: empty folder, path = filename, database `roboflow.ai`,
    `<occluded>` after difficult, and bndbox children in the order xmin, xmax, ymin, ymax."""
    lines = [
        "<annotation>",
        "\t<folder></folder>",
        f"\t<filename>{escape(filename)}</filename>",
        f"\t<path>{escape(filename)}</path>",
        "\t<source>",
        "\t\t<database>roboflow.ai</database>",
        "\t</source>",
        "\t<size>",
        f"\t\t<width>{width}</width>",
        f"\t\t<height>{height}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>0</segmented>",
    ]
    for box in map(as_box, objects):
        lines += ["\t<object>", f"\t\t<name>{escape(box.label)}</name>"]
        lines += _optional("\t\t", "pose", box.pose)
        lines += _optional("\t\t", "truncated", box.truncated)
        lines += _optional("\t\t", "difficult", box.difficult)
        lines += _optional("\t\t", "occluded", box.occluded or 0)
        lines += _bndbox("\t\t", "\t", box, ("xmin", "xmax", "ymin", "ymax"), number)
        lines.append("\t</object>")
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _optional(indent: str, tag: str, value: object) -> list[str]:
    return [] if value is None else [f"{indent}<{tag}>{escape(str(value))}</{tag}>"]


def _bndbox(
    indent: str, step: str, box: Box, order: Sequence[str], fmt: Callable[[float], str]
) -> list[str]:
    inner = indent + step
    values = [f"{inner}<{name}>{fmt(getattr(box, name))}</{name}>" for name in order]
    return [f"{indent}<bndbox>", *values, f"{indent}</bndbox>"]


def draw_image(
    path: str | Path,
    width: int,
    height: int,
    mode: str = "RGB",
    format: str | None = None,
    *,
    compression: str | None = None,
    exif_orientation: int | None = None,
) -> Path:
    """A real image file with a rectangle drawn on it; the format follows the suffix.

    Bilevel (`mode="1"`) TIFFs can use `compression="group4"`, as USPTO drawings do.
    `exif_orientation` writes an EXIF Orientation tag (JPEG, PNG, TIFF, WebP).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new(mode, (width, height), color=_white(mode))
    ImageDraw.Draw(image).rectangle((width // 4, height // 4, width // 2, height // 2), fill=0)
    options: dict[str, object] = {}
    if compression:
        options["compression"] = compression
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif
    image.save(path, format=format, **options)
    return path


def _white(mode: str) -> int | tuple[int, ...]:
    bands = Image.getmodebands(mode)
    return 255 if bands == 1 else (255,) * bands


def write(path: str | Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    """Write `text` (encoded with `encoding`) or raw bytes to `path`, creating its folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path
