"""JSON Lines annotations: one JSON object per line, one line per image, as annoconv's
`ImageRecord` fields (``{"key": ..., "filename": ..., "width": ..., "objects": [...]}``).

A complete annoconv format outside annoconv: a reader, a writer, the writer's options and
the `FORMAT` the ``annoconv.formats`` entry point (see pyproject.toml) points at. It reuses
annoconv's building blocks: `PerFileReader` walks files, folders and globs; `SingleFileWriter`
writes one file atomically; `make_record` validates and turns errors into messages naming
file and line. The options model is all it takes for ``annoconv convert`` to have an
``--ascii`` flag (see ``annoconv convert --help``, "jsonl output").
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from pydantic import Field

from annoconv.errors import AnnotationError
from annoconv.formats.base import BadItem, Format, PerFileReader, ReadResult, SingleFileWriter
from annoconv.io.fs import decode_line, open_input
from annoconv.labelmap import LabelMap
from annoconv.options import FormatOptions
from annoconv.schema import ImageRecord, make_record

__all__ = ["FORMAT", "JsonlReader", "JsonlWriteOptions", "JsonlWriter"]

# Where a record came from is not part of the data written.
_NOT_WRITTEN = {"source", "image_uri"}


class JsonlReader(PerFileReader):
    extensions = (".jsonl",)

    def read_file(self, uri: str) -> Iterator[ReadResult]:
        with open_input(uri) as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    record = self._record(uri, number, decode_line(uri, raw, number))
                except AnnotationError as error:
                    yield BadItem(error)
                    continue
                if record is not None:
                    yield record

    @staticmethod
    def _record(uri: str, number: int, line: str) -> ImageRecord | None:
        if not line.strip():
            return None
        where = f"line {number}"
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as error:
            raise AnnotationError(uri, f"not JSON ({error.msg})", where) from None
        if not isinstance(fields, dict):
            raise AnnotationError(uri, "expected a JSON object", where)
        fields.pop("source", None)
        return make_record(uri, where, **fields)


class JsonlWriteOptions(FormatOptions):
    """The writer's options: each field is a keyword of `JsonlWriter` and a flag of the CLI."""

    ascii: bool = Field(False, description="escape non-ASCII characters as \\uXXXX")


class JsonlWriter(SingleFileWriter):
    kind = "jsonl"

    def __init__(
        self,
        destination: str,
        *,
        label_map: LabelMap | None = None,
        images: str | None = None,
        ascii: bool = False,
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        self.ascii = ascii

    def write(self, record: ImageRecord) -> None:
        fields = record.model_dump(mode="json", exclude_none=True, exclude=_NOT_WRITTEN)
        line = json.dumps(fields, ensure_ascii=self.ascii, sort_keys=True) + "\n"
        self.output().write(line.encode("utf-8"))


FORMAT = Format(
    "jsonl",
    "JSON Lines, one image per line (example plugin)",
    (".jsonl",),
    reader=JsonlReader,
    writer=JsonlWriter,
    write_options=JsonlWriteOptions,
)
