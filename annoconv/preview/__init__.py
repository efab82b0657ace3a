"""`annoconv preview`: see the boxes on their images.

    import annoconv
    annoconv.preview("annotations/", "preview.html", images="images/")
    annoconv.preview("out/train.record", "train.png")       # what training will read
    annoconv.preview("annotations/", images="images/")      # in a notebook: shows the images

From any source annoconv reads (our own outputs included), a seeded sample of images is drawn
in one streaming pass, and only the sampled images are opened. Each is drawn from the bytes
training reads, decoded as TensorFlow decodes them (see `annoconv.io.decode`), with its
boxes in a stable colour per class: as a self-contained HTML page (`.html`: thumbnail grid,
legend with counts, class filter, click to enlarge) and/or a contact-sheet PNG (`.png`).

This module stays light (imported with `annoconv`); the work is in its submodules.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from annoconv.report import ErrorPolicy

if TYPE_CHECKING:
    from annoconv.preview.report import PreviewReport
    from annoconv.schema import ImageRecord

from annoconv.preview.settings import DEFAULT_IMAGE_SIZE as DEFAULT_IMAGE_SIZE
from annoconv.preview.settings import DEFAULT_SAMPLE as DEFAULT_SAMPLE
from annoconv.preview.settings import NOTEBOOK_SAMPLE as NOTEBOOK_SAMPLE


def preview(
    source: Any,
    out: str | None = None,
    *,
    from_format: str | None = None,
    images: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    split: str | Sequence[str] | None = None,
    contact_sheet: str | None = None,
    on_error: ErrorPolicy = "fail",
    storage_options: Mapping[str, Any] | None = None,
    read_options: Mapping[str, Any] | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    title: str | None = None,
) -> PreviewReport:
    """Draw `source`'s boxes on its images into `out`: an HTML page (``.html``) or a contact
    sheet (``.png``); `contact_sheet` names a PNG to write as well. Without `out` nothing is
    written and the returned report shows the images in a notebook.

    `source` is anything `annoconv.read` takes (a file, folder, glob, shard prefix, URL or a
    list of them, of any readable format, `from_format` naming it when its name does not),
    an open Reader, or ImageRecords (an iterable, or one). `images` is where the images are
    (a folder, URL or tar/zip archive) when not beside the annotations; a TFRecord's own
    embedded images are used as they are.

    `sample` images are shown (default `DEFAULT_SAMPLE`, `NOTEBOOK_SAMPLE` without `out`):
    a uniform sample seeded by `seed`, the same images `convert(..., sample=, seed=)` keeps,
    drawn in one pass holding only the sample; the images of the others are never opened.
    `classes` keeps only those classes' boxes (images left without any are left out, as in
    `convert`); `split` keeps only the images of those splits (a record's `split`, e.g. a
    Parquet partition). `on_error="skip"` leaves out images that cannot be read and lists
    them in the report instead of failing. `image_size` is the longer side of the pictures
    a page embeds (the enlarged view shows them too).

    Returns a `PreviewReport`: images and boxes read, shown and left out (they add up), the
    images shown with their boxes in decoded pixels, the outputs, and the sheet's layout.
    """
    from annoconv.preview.run import run_preview

    return run_preview(
        source,
        out,
        from_format=from_format,
        images=images,
        sample=sample,
        seed=seed,
        classes=classes,
        split=[split] if isinstance(split, str) else split,
        contact_sheet=contact_sheet,
        on_error=on_error,
        storage_options=storage_options,
        read_options=read_options,
        image_size=image_size,
        title=title,
    )


def record_html(record: ImageRecord) -> str:
    """One record drawn on its image (found beside its annotation or at its `image_uri`), as
    HTML for a notebook; when the image cannot be had, the boxes on a blank frame and why."""
    from annoconv.preview.run import single_record_report

    return single_record_report(record)._repr_html_()


def show_records_in_notebooks() -> bool:
    """Have a running IPython (Jupyter) show every ImageRecord drawn on its image, as
    `record_html` draws it. Done when annoconv is imported there; the schema knows nothing of
    previews. Returns whether a shell was found."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    from annoconv.schema import ImageRecord

    shell.display_formatter.formatters["text/html"].for_type(ImageRecord, record_html)
    return True


def __getattr__(name: str) -> Any:
    if name in ("PreviewReport", "ShownImage", "ShownBox", "SheetTile"):
        from annoconv.preview import report

        return getattr(report, name)
    raise AttributeError(f"module 'annoconv.preview' has no attribute {name!r}")


show_records_in_notebooks()
