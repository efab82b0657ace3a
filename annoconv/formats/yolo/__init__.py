"""YOLO datasets: Ultralytics (``data.yaml``, ``images/<split>/``, ``labels/<split>/``) and
Darknet (``obj.data``, ``obj.names``, ``train.txt``, labels beside images) layouts.

One label file per image, one line per box: ``class cx cy w h``, normalized to the image,
the class counted from 0 in ``names`` order. Segment lines ``class x1 y1 x2 y2 ...`` are read
as their bounding box. An empty or missing label file is a negative image. Reading:
`YoloReader` (layouts in `layout`); writing: `YoloWriter`.
"""

from __future__ import annotations

from annoconv.formats.base import Format
from annoconv.formats.yolo.layout import is_yolo_folder
from annoconv.formats.yolo.options import YoloReadOptions, YoloWriteOptions
from annoconv.formats.yolo.reader import YoloReader
from annoconv.formats.yolo.writer import YoloWriter

__all__ = ["FORMAT", "YoloReader", "YoloWriter", "is_yolo_folder"]

FORMAT = Format(
    "yolo",
    "YOLO: Ultralytics (data.yaml, images/ and labels/) or Darknet (obj.data) layout",
    (".yaml", ".yml", ".data"),
    reader=YoloReader,
    writer=YoloWriter,
    read_options=YoloReadOptions,
    write_options=YoloWriteOptions,
    claims_folder=is_yolo_folder,
)
