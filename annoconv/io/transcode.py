"""`annoconv images transcode`: every TIFF of a folder tree or archive -> PNG or JPEG.

The first step of the USPTO story: labelImg cannot open Group 4 TIFFs, so the drawings are
turned into PNGs (lossless, tiny for bilevel pages) or JPEGs to annotate, keeping their
relative layout: ``SRC/a/b/280.TIF`` -> ``DST/a/b/280.png``. An archive source (tar, also
compressed, or zip, ZIPs inside a tar included) is streamed once, never unpacked.

Outputs that exist are left alone (so an interrupted run resumes), each output is written
atomically, and the decoding and encoding run in a bounded pool of threads (Pillow releases
the GIL while it codes), holding at most a few images per thread in memory.

Archive members are untrusted: a name that is absolute or climbs out with ``..``, a link,
and a member over the size limit are skipped and reported, never written; every output path
is checked to lie under DST (a symbolic link inside DST cannot redirect it).
"""

from __future__ import annotations

import json
import os
import posixpath
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Literal

from PIL import Image

from annoconv.errors import AnnotationError, NotFoundError, OptionError
from annoconv.io.archives import MAX_MEMBER_SIZE, is_archive, iter_members, safe_name
from annoconv.io.embed import DEFAULT_PNG_LEVEL
from annoconv.io.fs import (
    applies_storage_options,
    exists,
    in_this_context,
    is_remote,
    join,
    list_files,
    read_bytes,
    relative_posix,
    write_atomic,
)
from annoconv.report import ErrorPolicy

TargetFormat = Literal["png", "jpeg"]
TIFF_SUFFIXES = (".tif", ".tiff")
_EXTENSION = {"png": ".png", "jpeg": ".jpg"}


@dataclass
class TranscodeReport:
    """What a transcode run did; `skipped` holds (name, reason) pairs."""

    written: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    bytes_written: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "written": self.written,
                "existing": self.existing,
                "skipped": [{"name": name, "reason": why} for name, why in self.skipped],
                "bytes_written": self.bytes_written,
            },
            indent=2,
            ensure_ascii=False,
        )

    def summary(self) -> str:
        lines = [
            f"transcoded {len(self.written)} images ({self.bytes_written} bytes), "
            f"{len(self.existing)} already there, {len(self.skipped)} skipped"
        ]
        lines += [f"skipped {name}: {why}" for name, why in self.skipped]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Job:
    name: str  # relative posix path of the source image
    target: str  # where its output goes
    load: Callable[[], bytes]


@applies_storage_options
def transcode_images(
    source: str,
    output: str,
    *,
    to: TargetFormat,
    workers: int | None = None,
    jpeg_quality: int = 95,
    png_level: int = DEFAULT_PNG_LEVEL,
    overwrite: bool = False,
    on_error: ErrorPolicy = "fail",
    max_member_size: int = MAX_MEMBER_SIZE,
    storage_options: Mapping[str, Any] | None = None,
) -> TranscodeReport:
    """Transcode every TIFF under `source` (a folder, local or remote, or an archive) into
    `output` as `to` ("png" or "jpeg"), keeping relative paths; see the module doc.
    PNGs are written at zlib level `png_level` (0-9; lower is faster, higher smaller).

    An image that cannot be decoded raises AnnotationError under ``on_error="fail"`` and is
    reported in `skipped` under "skip"; unsafe archive members are always skipped.
    `storage_options` apply to remote sources and outputs (see `io.fs.using_storage_options`).
    """
    if to not in _EXTENSION:
        raise OptionError(f"the target format must be png or jpeg, not {to!r}")
    if not 0 <= png_level <= 9:
        raise OptionError(f"png_level must be 0-9, got {png_level}")
    if not 0 <= jpeg_quality <= 100:  # Pillow's scale; it took 500 or -3 without a word
        raise OptionError(f"jpeg_quality must be 0-100, got {jpeg_quality}")
    if workers is not None and workers < 1:
        raise OptionError(f"workers must be at least 1, got {workers}")
    if not exists(source):
        raise NotFoundError(source, "no such file or folder")
    report = TranscodeReport()
    workers = max(1, workers or os.cpu_count() or 1)
    jobs = _jobs(source, output, to, report, max_member_size)
    pending: deque[tuple[_Job, Future[int]]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for job in jobs:
                if not overwrite and exists(job.target):
                    report.existing.append(job.target)
                    continue
                pending.append(
                    (
                        job,
                        pool.submit(
                            in_this_context(_convert_one), job, to, jpeg_quality, png_level
                        ),
                    )
                )
                while len(pending) >= 2 * workers:
                    _collect(*pending.popleft(), report, on_error)
            while pending:
                _collect(*pending.popleft(), report, on_error)
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
    return report


def _jobs(
    source: str, output: str, to: TargetFormat, report: TranscodeReport, max_member_size: int
) -> Iterator[_Job]:
    def skip(name: str, why: str) -> None:
        report.skipped.append((name, why))

    if is_archive(source):
        for member in iter_members(source, _is_tiff, on_skip=skip, max_member_size=max_member_size):
            target = _target(output, member.name, to)
            if target is None:
                skip(member.name, f"its output would lie outside {output} (a symbolic link)")
                continue
            data = member.data
            yield _Job(member.name, target, lambda data=data: data)  # type: ignore[misc]
        return
    for uri in list_files(source, TIFF_SUFFIXES):
        name = safe_name(relative_posix(uri, source))
        target = _target(output, name, to) if name is not None else None
        if name is None or target is None:
            skip(uri, f"its output would lie outside {output}")
            continue
        yield _Job(name, target, lambda uri=uri: read_bytes(uri))  # type: ignore[misc]


def _is_tiff(name: str) -> bool:
    return name.lower().endswith(TIFF_SUFFIXES)


def _target(output: str, name: str, to: TargetFormat) -> str | None:
    """Where `name` (a safe relative name) goes under `output`; None if that would resolve
    outside it (a symbolic link inside `output`)."""
    stem = posixpath.splitext(name)[0]
    target = join(output, *f"{stem}{_EXTENSION[to]}".split("/"))
    if not is_remote(output):
        root = os.path.realpath(output)
        if os.path.commonpath([root, os.path.realpath(target)]) != root:
            return None
    return target


def _convert_one(job: _Job, to: TargetFormat, jpeg_quality: int, png_level: int) -> int:
    encoded = encode_as(job.load(), to, jpeg_quality, job.name, png_level)
    return write_atomic(job.target, encoded)


def _collect(job: _Job, future: Future[int], report: TranscodeReport, policy: ErrorPolicy) -> None:
    try:
        size = future.result()
    except AnnotationError as error:
        if policy == "fail":
            raise
        report.skipped.append((job.name, error.message))
        return
    report.written.append(job.target)
    report.bytes_written += size


def encode_as(
    data: bytes, to: TargetFormat, jpeg_quality: int, name: str, png_level: int = DEFAULT_PNG_LEVEL
) -> bytes:
    """The first frame of the image in `data` encoded as PNG or JPEG, without metadata.

    Bilevel pages stay 1-bit in a PNG (a few KB for a USPTO sheet); JPEG takes grayscale
    or RGB, so bilevel and grayscale become 8-bit gray and everything else RGB.
    """
    try:
        with Image.open(BytesIO(data)) as image:
            image.load()
            pixels = _for_target(image, to)
            buffer = BytesIO()
            if to == "jpeg":
                pixels.save(buffer, "JPEG", quality=jpeg_quality, optimize=True)
            else:
                pixels.save(buffer, "PNG", compress_level=png_level)
            return buffer.getvalue()
    # Pillow raises many kinds of exceptions on damaged or hostile files (decompression
    # bombs included); each one means "this image cannot be transcoded".
    except Exception as exc:
        raise AnnotationError(name, f"cannot be transcoded: {exc}") from None


def _for_target(image: Image.Image, to: TargetFormat) -> Image.Image:
    mode = image.mode
    if to == "jpeg":
        wanted = "L" if mode in ("1", "L", "I;16", "I", "F") else "RGB"
    elif mode in ("1", "L", "LA", "RGB", "RGBA", "P", "I;16"):
        wanted = mode
    else:
        wanted = "RGBA" if "A" in image.getbands() else "RGB"
    converted = image if mode == wanted else image.convert(wanted)
    converted.info = {}
    return converted
