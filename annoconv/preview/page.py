"""The preview as one self-contained HTML page (and as a notebook cell's HTML).

Everything is inline: the pictures as data URIs, the style sheet (`page.css`), the script
(`page.js`) and the images' facts as a JSON block, so the page works from a file URL with no
network. Boxes are absolutely placed elements sized in percent of the image frame, whose
aspect ratio is the decoded image's: on screen a box lands at its coordinates scaled to the
image as rendered, at any size.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Mapping
from functools import cache
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any

from annoconv.preview.colors import Rgb, hex_color, text_color
from annoconv.report import DROPPED

if TYPE_CHECKING:  # the report renders itself with this module (`_repr_html_`)
    from annoconv.preview.report import PreviewReport, ShownBox, ShownImage

#: A box whose top is this close to the image's top (as a fraction of its height) has its
#: label inside it: above it, the label would be cut off.
_LABEL_INSIDE_BELOW = 0.08
_MAX_SKIPPED_LISTED = 20


def page_html(report: PreviewReport, how: str) -> str:
    """The whole page: header, legend and filter, the grid, the enlarged view, the script.
    `how` says how the page was made (the command or call), shown under the summary."""
    shown = report.shown
    colors = report.class_colors()
    script = _asset("page.js")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="annoconv preview">
<title>{escape(report.title)} · annoconv preview</title>
<style>
body {{ margin: 16px; background: #fafbfc; }}
{_asset("page.css")}
</style>
</head>
<body>
<div class="annoconv-preview">
{_header(report, how, interactive=True)}
<main class="grid">
{"".join(_card(index, image, colors) for index, image in enumerate(shown))}
</main>
{_viewer()}
</div>
<script type="application/json" id="annoconv-data">{_json_for_script(_data(report))}</script>
<script>
{script}
</script>
</body>
</html>
"""


def gallery_html(report: PreviewReport) -> str:
    """The images and their boxes as an HTML fragment for a notebook cell (no script)."""
    scope = f"annoconv-{uuid.uuid4().hex[:8]}"
    colors = report.class_colors()
    cards = "".join(_card(index, image, colors) for index, image in enumerate(report.shown))
    return (
        f'<div class="annoconv-preview" id="{scope}">'
        f"<style>{_asset('page.css')}</style>"
        f"{_header(report, '', interactive=False)}"
        f'<div class="grid">{cards}</div></div>'
    )


@cache
def _asset(name: str) -> str:
    return resources.files("annoconv.preview").joinpath(name).read_text(encoding="utf-8")


# --- header ----------------------------------------------------------------------------------


def _header(report: PreviewReport, how: str, *, interactive: bool) -> str:
    parts = [
        f"<header><h1>{escape(report.title)}</h1>",
        f'<p class="summary">{escape(summary_line(report))}</p>',
        '<p class="how">Pixels as TensorFlow decodes the bytes training reads (TIFF and EXIF '
        "orientation settled as the TFRecord writer does); boxes in a colour per class."
        + (f" Made by <code>{escape(how)}</code>." if how else "")
        + "</p>",
        _legend(report, interactive=interactive),
    ]
    if interactive:
        parts.append(_controls())
    parts.append(_skipped(report))
    parts.append("</header>")
    return "\n".join(part for part in parts if part)


def summary_line(report: PreviewReport) -> str:
    """`12 of 340 images (a sample, seed 0) · 31 boxes shown of 902`, and what was skipped."""
    shown, selected = report.images_written, report.selected_images
    line = f"{shown} of {selected} images"
    if selected > report.sample:
        line += f" (a sample of {report.sample}, seed {report.seed})"
    total_boxes = sum(report.selected_classes.values())
    line += f" · {report.boxes_written} of {total_boxes} boxes"
    selection = [item for item in report.skipped if item.source == DROPPED]
    left_out = sum(item.images for item in selection if not item.reason.startswith("not in the s"))
    if left_out:
        line += f" · {left_out} images left out by the selection"
    errors = report.images_skipped - sum(item.images for item in selection)
    if errors:
        line += f" · {errors} skipped (unreadable)"
    return line


def _legend(report: PreviewReport, *, interactive: bool) -> str:
    counts = class_counts(report)
    if not counts:
        return '<div class="legend"><span class="n">no boxes</span></div>'
    colors = report.class_colors()
    items = []
    for label, (shown, total) in counts.items():
        swatch = f'<span class="swatch" style="background:{hex_color(colors[label])}"></span>'
        name = escape(label)
        count = f'<span class="n">{shown} shown · {total} in all</span>'
        if interactive:
            attr = escape(label, quote=True)
            items.append(
                f'<label class="class"><input type="checkbox" checked data-class="{attr}">'
                f'{swatch}<span class="name">{name}</span> {count}</label>'
                f'<button type="button" class="only" data-class="{attr}" '
                f'title="show only {attr}">only</button>'
            )
        else:
            items.append(
                f'<span class="class">{swatch}<span class="name">{name}</span> {count}</span>'
            )
    extra = '<button type="button" id="all-classes">all classes</button>' if interactive else ""
    return f'<div class="legend">{"".join(items)}{extra}</div>'


def class_counts(report: PreviewReport) -> dict[str, tuple[int, int]]:
    """class -> (boxes shown, boxes in the selection), most frequent first."""
    total: Counter[str] = Counter(report.selected_classes)
    for label, count in report.classes.items():
        total[label] = max(total[label], count)
    ordered = sorted(total.items(), key=lambda item: (-item[1], item[0]))
    return {label: (report.classes[label], count) for label, count in ordered}


def _controls() -> str:
    return (
        '<div class="controls">'
        '<label><input type="checkbox" id="hide-empty"> hide images without shown boxes</label>'
        '<label><input type="checkbox" id="show-tags" checked> labels</label>'
        '<label>size <input type="range" id="tile-size" min="120" max="600" value="220"></label>'
        "<span>click an image to enlarge it</span>"
        "</div>"
    )


def _skipped(report: PreviewReport) -> str:
    errors = [item for item in report.skipped if item.source != DROPPED]
    if not errors:
        return ""
    lines = [f"skipped {item.source}: {item.reason}" for item in errors[:_MAX_SKIPPED_LISTED]]
    if len(errors) > _MAX_SKIPPED_LISTED:
        lines.append(f"... and {len(errors) - _MAX_SKIPPED_LISTED} more (in the run report)")
    return '<div class="skipped">' + "<br>".join(escape(line) for line in lines) + "</div>"


# --- the grid ----------------------------------------------------------------------------------


def _card(index: int, image: ShownImage, colors: Mapping[str, Rgb]) -> str:
    count = len(image.boxes)
    notes = (
        f'<span class="note" title="{escape(" / ".join(image.notes), quote=True)}">i</span>'
        if image.notes
        else ""
    )
    return (
        f'<figure class="card" data-index="{index}" data-key="{escape(image.key, quote=True)}">'
        f'<div class="cell">{frame_html(image, colors)}</div>'
        f'<figcaption><span class="name" title="{escape(image.key, quote=True)}">'
        f"{escape(image.filename)}</span>"
        f'<span class="count">{count} box{"" if count == 1 else "es"}</span>{notes}'
        "</figcaption></figure>\n"
    )


def frame_html(image: ShownImage, colors: Mapping[str, Rgb]) -> str:
    """The image (its picture stretched over a frame of the decoded image's aspect ratio)
    and its boxes on top, placed in percent of the frame."""
    shape = "wide" if image.width >= image.height else "tall"
    picture = ""
    if image.picture is not None:
        encoded = base64.b64encode(image.picture).decode("ascii")
        picture = (
            f'<img src="data:image/{image.picture_format};base64,{encoded}" '
            f'alt="{escape(image.filename, quote=True)}" draggable="false">'
        )
    boxes = "".join(
        _box_html(index, box, image, colors[box.label]) for index, box in enumerate(image.boxes)
    )
    return (
        f'<div class="frame {shape}" tabindex="0" '
        f'style="aspect-ratio: {image.width} / {image.height}">{picture}{boxes}</div>'
    )


def _box_html(index: int, box: ShownBox, image: ShownImage, color: Rgb) -> str:
    width, height = image.width, image.height
    left, top = 100 * box.xmin / width, 100 * box.ymin / height
    box_width = 100 * (box.xmax - box.xmin) / width
    box_height = 100 * (box.ymax - box.ymin) / height
    where = " top" if box.ymin / height < _LABEL_INSIDE_BELOW else ""
    label = escape(box.label)
    return (
        f'<div class="box{where}" data-class="{escape(box.label, quote=True)}" '
        f'data-index="{index}" title="{label}" style="left:{left:.5f}%;top:{top:.5f}%;'
        f"width:{box_width:.5f}%;height:{box_height:.5f}%;"
        f'--c:{hex_color(color)};--t:{hex_color(text_color(color))}">'
        f'<span class="tag">{label}</span></div>'
    )


def _viewer() -> str:
    return (
        '<div class="viewer" id="viewer" hidden role="dialog" aria-modal="true">'
        '<div class="viewer-stage"></div>'
        '<aside class="viewer-side"><h2 id="viewer-name"></h2>'
        '<p id="viewer-meta"></p><p id="viewer-origin" class="keys"></p>'
        '<ul id="viewer-notes" class="notes"></ul>'
        "<table><thead><tr><th>class</th><th>xmin</th><th>ymin</th><th>xmax</th><th>ymax</th>"
        '</tr></thead><tbody id="viewer-boxes"></tbody></table>'
        '<p class="keys">pixels of the image as decoded · ← → next image · Esc closes</p>'
        "</aside>"
        '<button type="button" class="close" aria-label="close">&times;</button>'
        "</div>"
    )


# --- data for the script -------------------------------------------------------------------------


def _data(report: PreviewReport) -> dict[str, Any]:
    counts = class_counts(report)
    return {
        "classes": [
            {"name": label, "shown": shown, "total": total}
            for label, (shown, total) in counts.items()
        ],
        "colors": {label: hex_color(color) for label, color in report.class_colors().items()},
        "images": [
            {
                "key": image.key,
                "filename": image.filename,
                "width": image.width,
                "height": image.height,
                "split": image.split,
                "origin": image.origin,
                "notes": list(image.notes),
                "boxes": [[b.label, b.xmin, b.ymin, b.xmax, b.ymax] for b in image.boxes],
            }
            for image in report.shown
        ],
    }


def _json_for_script(value: Any) -> str:
    """JSON that cannot end its <script> element early."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
