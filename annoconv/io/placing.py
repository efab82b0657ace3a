"""Images placed beside written annotations (YOLO's ``images/``, COCO's ``--copy-images``):
copied, hard-linked or symlinked, with the bytes TFRecords embed (`annoconv.io.embed`):
JPEG and PNG byte for byte, other formats transcoded to PNG or JPEG."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Literal

from annoconv.errors import AnnotationError
from annoconv.io.embed import SizePolicy, embed_image
from annoconv.io.fs import is_remote, join, remove_file, write_atomic
from annoconv.io.images import RecordImages, read_image_info
from annoconv.schema import ImageRecord

#: How images reach the output: copied, hard-linked, symlinked, or not at all (labels only).
ImagesMode = Literal["copy", "link", "symlink", "none"]
IMAGES_MODES: tuple[ImagesMode, ...] = ("copy", "link", "symlink", "none")
_KEPT_FORMATS = ("JPEG", "PNG")
_EXTENSIONS = {"jpeg": ".jpg", "png": ".png"}


@dataclass(frozen=True)
class PlacedImage:
    """An image as the output has it: its name (relative to the images folder, posix), its
    size in pixels, the bytes written (0 for a link or nothing), and, when the annotation's
    size disagreed under size policy "warn", the scale to apply to pixel boxes."""

    name: str
    width: int
    height: int
    written: int
    uri: str | None
    scale: tuple[float, float] | None = None
    note: str | None = None


class ImagePlacer:
    """Places each record's image under `folder` as `name` (its extension changed when the
    image is transcoded). `images` is the run's images folder, where images are looked for."""

    def __init__(
        self,
        folder: str,
        images: str | None,
        *,
        mode: ImagesMode = "copy",
        size_policy: SizePolicy = "fail",
        jpeg_quality: int = 95,
    ) -> None:
        if mode not in IMAGES_MODES:
            raise ValueError(f"images_mode must be one of {', '.join(IMAGES_MODES)}, got {mode!r}")
        self.folder = folder
        self.mode = mode
        self.size_policy = size_policy
        self.jpeg_quality = jpeg_quality
        self._finder = RecordImages(images)

    def place(self, record: ImageRecord, name: str, data: bytes | None = None) -> PlacedImage:
        """Place the image of `record` (its bytes `data` when the caller has them)."""
        uri = record.image_uri if data is not None and record.image_uri else None
        uri = uri or self._finder.find(record)
        if self.mode == "none":
            width, height = self._size(record, uri)
            return PlacedImage(name, width, height, 0, None)
        if self.mode in ("link", "symlink") and data is None:
            linked = self._link(record, uri, name)
            if linked is not None:
                return linked
        return self._copy(record, uri, name, data)

    def _size(self, record: ImageRecord, uri: str) -> tuple[int, int]:
        if record.width is not None and record.height is not None:
            return record.width, record.height
        info = read_image_info(uri)
        return info.width, info.height

    def _link(self, record: ImageRecord, uri: str, name: str) -> PlacedImage | None:
        """A link to a JPEG or PNG image; None for another format (transcoded instead)."""
        if is_remote(uri) or is_remote(self.folder):
            raise AnnotationError(
                record.source or record.key,
                f"images_mode {self.mode} needs local images and a local output ({uri})",
            )
        info = read_image_info(uri)
        if info.format not in _KEPT_FORMATS or info.exif_orientation != 1:
            return None
        width, height = info.width, info.height
        if record.has_size and (record.width, record.height) != (width, height):
            return None  # the size policy decides, on the copy path
        target = join(self.folder, *name.split("/"))
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        remove_file(target)
        if self.mode == "link":
            os.link(uri, target)
        else:
            os.symlink(os.path.abspath(uri), target)
        return PlacedImage(name, width, height, 0, target)

    def _copy(self, record: ImageRecord, uri: str, name: str, data: bytes | None) -> PlacedImage:
        size = (record.width, record.height) if record.has_size else None
        image = embed_image(
            uri,
            annotated_size=size,  # type: ignore[arg-type]
            size_policy=self.size_policy,
            jpeg_quality=self.jpeg_quality,
            source=record.source or record.key,
            data=data,
        )
        if image.transcoded:
            name = posixpath.splitext(name)[0] + _EXTENSIONS[image.format]
        target = join(self.folder, *name.split("/"))
        written = write_atomic(target, image.data)
        return PlacedImage(
            name, image.width, image.height, written, target, image.scale, image.note
        )
