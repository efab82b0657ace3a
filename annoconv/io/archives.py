"""Images inside tar and zip archives, read in one sequential pass, never extracted.

USPTO ships its drawings as weekly tarballs of 6 GB and more: the yellow book
(``grant_yb2_<date>.tar``) holds single-page Group 4 TIFFs in nested folders, the red book
(``I<date>.tar``) one ZIP per patent holding its XML and ``-D00001.TIF`` drawing sheets.
`iter_members` walks such an archive — local or any fsspec URL, plain or compressed tar
(``tarfile`` in stream mode ``r|*``), or a ZIP — and hands out the bytes of the members a
caller wants, one at a time: memory is bounded by the largest wanted member (and by the
largest ZIP nested in a tar, which is read whole to open it).

Member names are posix paths relative to the archive's root. The members of a ZIP inside a
tar are named after the ZIP without its extension: ``I20200107/US1-20200107.ZIP`` holding
``US1-20200107-D00001.TIF`` gives ``I20200107/US1-20200107/US1-20200107-D00001.TIF``.

Hostile archives: names that are absolute or hold ``..``, symbolic and hard links, devices
and members larger than `max_member_size` (a header may lie about the size) are passed over
and reported through `on_skip`, never read; a stream that ends before a member's declared
size is an `ArchiveError`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, cast

from annoconv.errors import AnnoconvError, AnnotationError, StorageError
from annoconv.io.fs import is_dir, open_input
from annoconv.io.images import (
    WINDOWS_ABSOLUTE,
    image_path_key,
    recorded_folders,
    shared_folders,
)

#: Archive file names we stream from, compared lower-cased.
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)
ARCHIVE_SUFFIXES = TAR_SUFFIXES + ZIP_SUFFIXES
#: Default bound on one member's bytes (the largest USPTO sheet is a few MB).
MAX_MEMBER_SIZE = 256 * 2**20
#: Default bound on a ZIP nested in a tar, which is held in memory to be opened.
MAX_NESTED_ZIP_SIZE = 512 * 2**20

SkipCallback = Callable[[str, str], None]


class ArchiveError(AnnoconvError):
    """An archive that cannot be read on (damaged, cut short, not an archive)."""


class AmbiguousMemberError(AnnotationError, ArchiveError):
    """An annotation whose image two archive members match equally well (`MemberMatcher`):
    a problem of that one annotation, which ``on_error="skip"`` leaves out."""


@dataclass(frozen=True)
class Member:
    """One regular file of an archive and its bytes."""

    name: str  # posix path inside the archive (nested ZIPs: see the module doc)
    data: bytes
    uri: str  # an fsspec-style URL naming it, for messages: ``tar://NAME::ARCHIVE``


def is_archive(uri: str) -> bool:
    """Whether `uri` names a tar or zip archive (by its name; a folder never is one)."""
    return uri.lower().rstrip("/").endswith(ARCHIVE_SUFFIXES) and not is_dir(uri)


def safe_name(name: str) -> str | None:
    """`name` as a clean relative posix path, or None when it is absolute or climbs out
    with ``..`` (such a member must never be written or matched)."""
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or WINDOWS_ABSOLUTE.match(cleaned):
        return None
    parts = [part for part in cleaned.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def iter_members(
    uri: str,
    wanted: Callable[[str], bool] = lambda name: True,
    *,
    on_skip: SkipCallback | None = None,
    max_member_size: int = MAX_MEMBER_SIZE,
    max_nested_zip_size: int = MAX_NESTED_ZIP_SIZE,
) -> Iterator[Member]:
    """The regular members of the archive at `uri` whose (safe) name `wanted` accepts, in
    archive order, with their bytes; ZIPs inside a tar are opened and walked in turn.

    Members passed over for safety or size are reported as ``on_skip(name, reason)``.
    """
    limits = _Limits(max_member_size, max_nested_zip_size, on_skip or (lambda name, why: None))
    lowered = uri.lower().rstrip("/")
    try:
        with open_input(uri) as handle:
            if lowered.endswith(ZIP_SUFFIXES):
                yield from _zip_members(handle, uri, "", wanted, limits)
            else:
                yield from _tar_members(handle, uri, wanted, limits)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise ArchiveError(f"{uri}: cannot read the archive on: {exc}") from None


@dataclass(frozen=True)
class _Limits:
    member: int
    nested_zip: int
    skip: SkipCallback


def _tar_members(
    handle: IO[bytes], uri: str, wanted: Callable[[str], bool], limits: _Limits
) -> Iterator[Member]:
    # A large buffer: skipping a 500 MB member reads it through in buffer-sized steps. The
    # stream is inflated here, not by tarfile: tarfile inflates a whole buffer of compressed
    # bytes at once (a gigabyte from 1 MiB of a bomb) and then copies what is left of it on
    # every read, so that a huge member over the limit took minutes and gigabytes to skip.
    with tarfile.open(fileobj=_uncompressed(handle), mode="r|", bufsize=2**20) as tar:
        for info in tar:
            # Stream mode still keeps every header it has read; a tarball of a million
            # members would hold them all.
            tar.members.clear()  # type: ignore[attr-defined]
            name = _checked(info, limits)
            if name is None:
                continue
            is_zip = name.lower().endswith(ZIP_SUFFIXES)
            if not is_zip and not wanted(name):
                continue
            bound = limits.nested_zip if is_zip else limits.member
            if info.size > bound:
                limits.skip(name, f"{info.size} bytes is over the limit of {bound} bytes")
                continue
            data = _read_tar_member(tar, info, uri)
            if is_zip:
                inner_uri = f"tar://{name}::{uri}"
                prefix = name[: -len(posixpath.splitext(name)[1])]
                try:
                    yield from _zip_members(io.BytesIO(data), inner_uri, prefix, wanted, limits)
                except zipfile.BadZipFile as exc:
                    limits.skip(name, f"not a readable ZIP: {exc}")
            else:
                yield Member(name, data, f"tar://{name}::{uri}")


#: The magic bytes that start a compressed stream, and how to open one (what tarfile's "r|*"
#: recognizes).
_COMPRESSED: tuple[tuple[bytes, Callable[[Any], io.BufferedIOBase]], ...] = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", lambda raw: bz2.BZ2File(raw)),
    (b"\xfd7zXZ\x00", lambda raw: lzma.LZMAFile(raw)),  # noqa: SIM115 - closed with the tar
)
_MAGIC_BYTES = max(len(magic) for magic, _ in _COMPRESSED)
#: What a damaged compressed stream raises.
_INFLATE_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


def _uncompressed(handle: IO[bytes]) -> IO[bytes]:
    """The tar stream in `handle`, inflated when it is compressed (gzip, bzip2, xz). Each
    read inflates only what it returns, so memory stays bounded whatever the ratio."""
    head = handle.read(_MAGIC_BYTES)
    raw: Any = io.BufferedReader(_Prefixed(head, handle), buffer_size=2**16)
    for magic, opener in _COMPRESSED:
        if head.startswith(magic):
            return cast(IO[bytes], io.BufferedReader(_Inflated(opener(raw)), buffer_size=2**20))
    return cast(IO[bytes], raw)


class _Prefixed(io.RawIOBase):
    """The bytes `head` already read from `rest`, then the rest."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Inflated(io.RawIOBase):
    """A decompressing reader whose damage shows as tarfile.ReadError."""

    def __init__(self, inflating: io.BufferedIOBase) -> None:
        self._inflating = inflating

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._inflating.read(len(buffer))
        except StorageError:
            raise
        except _INFLATE_ERRORS as exc:
            raise tarfile.ReadError(f"damaged compressed data: {exc}") from None
        buffer[: len(data)] = data
        return len(data)


def _checked(info: tarfile.TarInfo, limits: _Limits) -> str | None:
    """The member's safe name if it is a regular file to consider, else None (reported)."""
    if info.isdir():
        return None
    name = safe_name(info.name)
    if name is None:
        limits.skip(info.name, "unsafe name (absolute or with '..')")
        return None
    if info.issym() or info.islnk():
        limits.skip(name, f"a link (to {info.linkname!r}); links are never followed")
        return None
    if not info.isfile():
        limits.skip(name, "not a regular file")
        return None
    return name


def _read_tar_member(tar: tarfile.TarFile, info: tarfile.TarInfo, uri: str) -> bytes:
    stream = tar.extractfile(info)
    assert stream is not None  # a regular file
    try:
        data = stream.read()
    except tarfile.ReadError:
        data = b""
    if len(data) != info.size:
        raise ArchiveError(
            f"{uri}: {info.name}: the archive ends before the {info.size} bytes its header "
            "promises (cut short, or a header that lies)"
        )
    return data


#: What a damaged or hostile ZIP raises besides BadZipFile: offsets out of the file (OSError),
#: bad deflate data, an unknown method or version, encryption, a broken bz2/lzma stream.
_ZIP_DAMAGE = (OSError, EOFError, zlib.error, NotImplementedError, RuntimeError, ValueError)


def _zip_members(
    handle: IO[bytes], uri: str, prefix: str, wanted: Callable[[str], bool], limits: _Limits
) -> Iterator[Member]:
    try:
        opened = zipfile.ZipFile(handle)
    except _ZIP_DAMAGE as exc:
        raise zipfile.BadZipFile(str(exc)) from None
    with opened as archive:
        # In the order the bytes lie, so a remote ZIP is read front to back.
        for info in sorted(archive.infolist(), key=lambda i: i.header_offset):
            if info.filename and info.is_dir():  # (a damaged directory can give no name)
                continue
            safe = safe_name(info.filename)
            name = safe if safe is None or not prefix else f"{prefix}/{safe}"
            if name is None:
                limits.skip(f"{prefix}/{info.filename}" if prefix else info.filename, "unsafe name")
                continue
            if _zip_is_link(info):
                limits.skip(name, "a symbolic link; links are never followed")
                continue
            if not wanted(name):
                continue
            if info.file_size > limits.member:
                limits.skip(name, f"{info.file_size} bytes is over the limit of {limits.member}")
                continue
            yield Member(
                name, _read_zip_member(archive, info, limits.member), f"zip://{safe}::{uri}"
            )


def _zip_is_link(info: zipfile.ZipInfo) -> bool:
    unix_mode = info.external_attr >> 16
    return (unix_mode & 0o170000) == 0o120000


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    # zipfile stops at the declared size and checks the CRC, so a member that inflates to
    # more than it declares fails here instead of filling memory.
    try:
        with archive.open(info) as stream:
            data = stream.read(limit + 1)
    except _ZIP_DAMAGE as exc:
        raise zipfile.BadZipFile(f"{info.filename}: {exc}") from None
    if len(data) > limit:
        raise zipfile.BadZipFile(f"{info.filename} inflates to more than {limit} bytes")
    return data


# --- matching annotations to members ---------------------------------------------------------

#: How well a member matches an annotation: (by path, folders shared with the recorded path).
Score = tuple[bool, int]


@dataclass(frozen=True)
class _Choice:
    member: str
    score: Score


@dataclass
class _Best:
    score: Score
    members: list[str]


class MemberMatcher:
    """Decides, as members stream by, which annotations a member is the image of.

    Each annotation names its image by a relative path (`wanted`, e.g. ``p1/280.jpg``).
    A member matches **by path** when its path, extensions ignored and case-insensitively,
    ends with that relative path (``grant/P1/280.TIF``), and **by stem** when only the file
    stems agree. A member that matches some annotation by path is that annotation's and no
    other's. Among members matching alike, the one sharing the longest trailing run of
    folders with the annotation's recorded path (`recorded`, VOC ``<path>``:
    ``/Volumes/LaCie/grant_yb2_20190101/2019-01/10/165/1/280.jpg`` shares ``165/1`` with
    ``.../165/1/280.tif``, ``1`` with ``.../166/1/280.tif``) matches best.

    A member is written the moment it passes, so the first member to match an annotation is
    taken (`match`). A later one matching it at least as well makes it `contested`; once the
    whole archive has passed, `decide()` says which member each contested annotation must
    take on a second pass (its best, when that is one member), and which annotations stay
    ambiguous (several members match equally well). `decided` (by index) are such choices
    from a first pass: those annotations take only their decided member.
    """

    def __init__(
        self,
        wanted: list[str],
        sources: list[str],
        recorded: Sequence[str | None] = (),
        decided: Mapping[int, str] | None = None,
    ) -> None:
        self._wanted = [image_path_key(name) for name in wanted]
        self._sources = sources
        self._names = wanted
        self._folders = [recorded_folders(path) for path in recorded] or [[] for _ in wanted]
        self._by_stem: dict[str, list[int]] = {}
        for index, key in enumerate(self._wanted):
            self._by_stem.setdefault(posixpath.basename(key), []).append(index)
        self._decided = dict(decided or {})
        self._first: dict[int, _Choice] = {}
        self._best: dict[int, _Best] = {}
        #: Annotations (indexes) whose first member a later one matched at least as well,
        #: in the order found.
        self.contested: dict[int, None] = {}

    def wants(self, name: str) -> bool:
        return posixpath.basename(image_path_key(name)) in self._by_stem

    def match(self, name: str) -> list[int]:
        """The annotations (indexes) to write with member `name` now: those it is the first
        (or the decided) member of. Those it contests are added to `contested`."""
        key = image_path_key(name)
        candidates = self._by_stem.get(posixpath.basename(key), [])
        by_path = [
            i for i in candidates if key == self._wanted[i] or key.endswith("/" + self._wanted[i])
        ]
        chosen = []
        for index in by_path or candidates:
            decided = self._decided.get(index)
            if decided is not None:
                if decided == name and index not in self._first:
                    self._first[index] = _Choice(name, (True, 0))
                    chosen.append(index)
                continue
            score = (bool(by_path), shared_folders(self._folders[index], name))
            best = self._best.get(index)
            if best is None or score > best.score:
                self._best[index] = _Best(score, [name])
            elif score == best.score:
                best.members.append(name)
            first = self._first.get(index)
            if first is None:
                self._first[index] = _Choice(name, score)
                chosen.append(index)
            elif score >= first.score:
                self.contested.setdefault(index)
        return chosen

    def unmatched(self) -> list[int]:
        return [index for index in range(len(self._wanted)) if index not in self._first]

    def decide(self) -> tuple[dict[int, str], dict[int, AmbiguousMemberError]]:
        """Once every member has passed: the member each contested annotation must take
        (its one best member), and the ambiguity of those that several match equally well."""
        decided: dict[int, str] = {}
        ambiguous: dict[int, AmbiguousMemberError] = {}
        for index in self.contested:
            best = self._best[index]
            if len(best.members) > 1:
                ambiguous[index] = self.ambiguity(index)
            elif best.members[0] != self._first[index].member:
                decided[index] = best.members[0]
        return decided, ambiguous

    def ambiguity(self, index: int) -> AmbiguousMemberError:
        """The error of annotation `index`, naming the members that match it best."""
        best = self._best[index]
        how = "by path" if best.score[0] else "by stem"
        shared = best.score[1]
        folders = f", each sharing {shared} folder(s) with its <path>" if shared else ""
        return AmbiguousMemberError(
            self._sources[index],
            f"image {self._names[index]!r} is ambiguous in the archive: "
            f"{len(best.members)} members match it equally well ({', '.join(best.members)}; "
            f"matched {how}{folders}); to tell them apart, mirror the archive's folders under "
            f"the annotations folder, or record the image's folders in <path> (e.g. "
            f".../{best.members[0]})",
        )
