"""The YOLO format's options, as typed models (field names are the writer's keyword
arguments; the reader takes none)."""

from __future__ import annotations

from pydantic import Field

from annoconv.formats.yolo.writer import Layout
from annoconv.io.embed import SizePolicy
from annoconv.io.placing import ImagesMode
from annoconv.options import FormatOptions


class YoloReadOptions(FormatOptions):
    """The YOLO reader takes no options."""


class YoloWriteOptions(FormatOptions):
    layout: Layout = Field(
        "ultralytics",
        description="ultralytics: data.yaml, images/ and labels/; darknet: obj.data, "
        "obj.names, train.txt, labels beside the images in obj/",
    )
    images_mode: ImagesMode = Field(
        "copy",
        description="copy the images (JPEG and PNG byte for byte, others transcoded), "
        "hard-link them (link), symlink them, or write labels only (none)",
    )
    size_policy: SizePolicy = Field(
        "fail",
        description="when an annotation's size disagrees with its image: fail, warn (trust "
        "the image) or skip the image",
    )
    jpeg_quality: int = Field(95, ge=1, le=100, description="quality of transcoded photos")
