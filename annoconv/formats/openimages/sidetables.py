"""The per-image side tables: image URLs (``images_csv``) and image-level labels
(``image_labels``), each streamed once after the bbox file's pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from annoconv.errors import AnnotationError
from annoconv.formats.openimages.checks import floats
from annoconv.formats.openimages.columns import IMAGE_ID, LABEL, LABEL_COLUMNS, check_unique
from annoconv.formats.openimages.csvio import read_csv, read_header
from annoconv.formats.openimages.options import Options
from annoconv.io.images import trust_listed_urls
from annoconv.schema import ImageLabel


@dataclass(frozen=True)
class SideTables:
    urls: Mapping[str, str]
    labels: Mapping[str, list[ImageLabel]]


def url_columns(uri: str) -> tuple[str, str]:
    """(ImageID column, URL column) of an images CSV in either known form."""
    header = read_header(uri)
    if IMAGE_ID in header and "OriginalURL" in header:
        return IMAGE_ID, "OriginalURL"
    if "image_name" in header and "image_url" in header:
        return "image_name", "image_url"
    raise AnnotationError(
        uri,
        "not an Open Images images CSV: expected the columns image_name,image_url or "
        f"ImageID,Subset,OriginalURL,...; the header has: {','.join(header)}",
        "line 1",
    )


def read_urls(uri: str, wanted: pa.Array | None, options: Options, urls: dict[str, str]) -> None:
    """Adds {ImageID: URL} of the wanted images (all if None) to `urls`; the first wins."""
    key_column, url_column = url_columns(uri)
    for batch in read_csv(uri, (key_column, url_column), options, quoted_newlines=True):
        keys = batch.column(key_column)
        if key_column == "image_name":
            keys = pc.replace_substring_regex(keys, r"\.[jJ][pP][eE]?[gG]$", "")
        keep = pc.not_equal(batch.column(url_column), "")
        if wanted is not None:
            keep = pc.and_(keep, pc.is_in(keys, value_set=wanted))
        found = batch.column(url_column).filter(keep).to_pylist()
        for key, url in zip(keys.filter(keep).to_pylist(), found, strict=True):
            urls.setdefault(key, url)
        # The user gave this list of image URLs to be opened.
        trust_listed_urls(found)


def label_columns(uri: str) -> tuple[str, ...]:
    header = read_header(uri)
    check_unique(uri, header)
    missing = [name for name in (IMAGE_ID, LABEL, "Confidence") if name not in header]
    if missing:
        raise AnnotationError(
            uri,
            f"not an Open Images image-level labels CSV: missing column(s) {', '.join(missing)}; "
            f"expected {','.join(LABEL_COLUMNS)}; the header has: {','.join(header)}",
            "line 1",
        )
    return IMAGE_ID, LABEL, "Confidence"


def read_image_labels(
    uri: str, wanted: pa.Array | None, options: Options, labels: dict[str, list[ImageLabel]]
) -> None:
    """Adds the image-level labels of the wanted images (all if None), of the selected classes
    when there is a selection, to `labels`, in file order."""
    selected = options.selected_mids
    start = 1
    for batch in read_csv(uri, label_columns(uri), options):
        keep = pc.not_equal(batch.column(LABEL), "")
        if wanted is not None:
            keep = pc.and_(keep, pc.is_in(batch.column(IMAGE_ID), value_set=wanted))
        if selected is not None:
            keep = pc.and_(keep, pc.is_in(batch.column(LABEL), value_set=selected))
        chosen = pc.indices_nonzero(keep)
        kept = batch.take(chosen)
        texts = kept.column("Confidence")
        confidence, failing = floats(pc.if_else(pc.equal(texts, ""), None, texts))
        bad = pc.indices_nonzero(pc.fill_null(failing, False))
        if len(bad):
            first = bad[0].as_py()
            row = start + chosen[first].as_py()
            text = texts[first].as_py()
            raise AnnotationError(uri, f"Confidence {text!r} is not a number", f"row {row}")
        rows = zip(
            kept.column(IMAGE_ID).to_pylist(),
            kept.column(LABEL).to_pylist(),
            confidence.to_pylist(),
            strict=True,
        )
        for key, mid, value in rows:
            labels.setdefault(key, []).append(
                ImageLabel(label=options.image_label(mid), confidence=value)
            )
        start += batch.num_rows
