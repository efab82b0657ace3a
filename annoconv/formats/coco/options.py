"""The COCO format's options, as typed models (field names are the reader's and writer's
keyword arguments)."""

from __future__ import annotations

from pydantic import Field

from annoconv.formats.coco.stream import MEMORY_BUDGET
from annoconv.io.embed import SizePolicy
from annoconv.io.placing import ImagesMode
from annoconv.options import FormatOptions


class CocoReadOptions(FormatOptions):
    ground_truth: str | None = Field(
        None,
        description="for a result file (a list of detections): the COCO file whose images "
        "and categories its ids refer to",
    )
    memory_budget: int = Field(
        MEMORY_BUDGET,
        ge=1 << 20,
        description="bytes of annotation rows held in memory while grouping them by image; "
        "the rest is spilled to tmp_dir",
        json_schema_extra={"cli": False},
    )
    tmp_dir: str | None = Field(
        None, description="folder for the spilled rows", json_schema_extra={"cli": False}
    )


class CocoWriteOptions(FormatOptions):
    copy_images: str | None = Field(
        None,
        description="copy (or link, see images_mode) every image into this folder, so that "
        "the dataset stands on its own; file_name is then relative to it",
    )
    images_mode: ImagesMode = Field(
        "copy",
        description="with copy_images: copy the files, hard-link them (link) or symlink them; "
        "JPEG and PNG go byte for byte, other formats are transcoded (to PNG or JPEG)",
    )
    supercategories_from: str | None = Field(
        None,
        description="a COCO file whose categories' supercategories are written for the "
        "classes of the same name",
    )
    size_policy: SizePolicy = Field(
        "fail",
        description="with copy_images, when an annotation's size disagrees with its image: "
        "fail, warn (trust the image, scale the boxes) or skip the image",
    )
    jpeg_quality: int = Field(95, ge=1, le=100, description="quality of transcoded photos")
