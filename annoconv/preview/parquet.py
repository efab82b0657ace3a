"""The embedded images of a Parquet source (``convert(..., write_options={"embed_images":
True})``: an `image` column of {bytes, path} beside each image's row), for the sampled keys."""

from __future__ import annotations

from collections.abc import Iterator, Set

import pyarrow as pa
import pyarrow.parquet as pq

from annoconv.formats.base import Reader
from annoconv.formats.parquet import EXTENSIONS
from annoconv.io.fs import expand_source, filesystem, is_remote
from annoconv.schema import IMAGE_COLUMN

#: Rows read at a time: the image column is the heavy one.
_BATCH_ROWS = 64


def embedded_images(reader: Reader, keys: Set[str]) -> dict[str, tuple[str, bytes]]:
    """key -> (a name for the image, its bytes) for the `keys` whose rows carry image bytes.
    Only the `key` and `image` columns are read, a few rows at a time; files without an
    image column are passed over."""
    found: dict[str, tuple[str, bytes]] = {}
    files, _root = expand_source(reader.source, EXTENSIONS)
    for uri in files:
        for key, name, data in _rows(uri, keys):
            found.setdefault(key, (name, data))
        if len(found) == len(keys):
            break
    return found


def _rows(uri: str, keys: Set[str]) -> Iterator[tuple[str, str, bytes]]:
    parquet = _open(uri)
    if parquet is None:
        return
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=["key", IMAGE_COLUMN]):
        row_keys = batch.column("key").to_pylist()
        wanted = [index for index, key in enumerate(row_keys) if key in keys]
        if not wanted:
            continue
        images = batch.column(IMAGE_COLUMN).take(pa.array(wanted)).to_pylist()
        for index, image in zip(wanted, images, strict=True):
            if image and image.get("bytes"):
                name = f"{uri} (image column: {image.get('path') or row_keys[index]})"
                yield row_keys[index], name, image["bytes"]


def _open(uri: str) -> pq.ParquetFile | None:
    """The file when it has a `key` and an `image` column; unreadable files were reported
    by the reader already."""
    try:
        if is_remote(uri):
            fs, path = filesystem(uri)
            parquet = pq.ParquetFile(fs.open(path, "rb"))
        else:
            parquet = pq.ParquetFile(uri)
    except (OSError, pa.ArrowException):
        return None
    names = set(parquet.schema_arrow.names)
    return parquet if {"key", IMAGE_COLUMN} <= names else None
