"""Image headers (size, channels, format, EXIF orientation) and finding an annotation's image.

Only headers are read here: Pillow's `Image.open` is lazy and parses the header alone, so
asking for the size of a 2560x3300 Group 4 TIFF or a 12 MP JPEG costs a few kilobytes of I/O
and no decoding.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import posixpath
import re
import stat
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from io import BytesIO
from typing import IO, TYPE_CHECKING

from annoconv.errors import AnnotationError, StorageError
from annoconv.io.fs import (
    dirname,
    filesystem,
    is_dir,
    is_remote,
    join,
    list_files,
    open_input,
    os_problem,
    read_bytes,
    relative_posix,
    size_of,
)
from annoconv.schema import ImageRecord

if TYPE_CHECKING:  # imported where used: a parallel run's driver reads no image
    from PIL import Image

#: Extensions of the image files we look for; compare lower-cased (`280.TIF` counts).
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".tif",
    ".tiff",
    ".bmp",
    ".gif",
    ".webp",
)

_EXIF_ORIENTATION_TAG = 0x0112
_TIFF_IMAGE_WIDTH = 256
_TIFF_IMAGE_LENGTH = 257
# Palette images decode to RGB, or RGBA when the palette carries alpha.
_PALETTE_DEPTH = {"P": 3, "PA": 4}
WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")
#: The VOC devkit's folders of annotations and of their images, side by side.
DEVKIT_ANNOTATIONS, DEVKIT_IMAGES = "Annotations", "JPEGImages"


@dataclass(frozen=True)
class ImageInfo:
    """What an image header tells: size as displayed, channels, format, EXIF orientation.

    `width` and `height` are the image's size as viewers and annotation tools show it: the
    stored pixels turned by the EXIF orientation (orientations 5-8 swap them). That is the
    size a record without one gets, as its boxes were drawn on what the tool showed
    (labelImg since 2020, CVAT, browsers), and the frame `io.embed` embeds such a record in:
    a round trip through a format without sizes (Faster R-CNN txt) gives the sizes back.
    `stored_size` is (width, height) of the pixels as stored, for every format (TIFF
    included).
    `depth` is the number of channels a decoder produces: 1 for bilevel and grayscale modes
    ('1', 'L', 'I', 'I;16', 'F'), 2 for grayscale with alpha ('LA'), 3 for 'RGB', 'YCbCr'
    and palette ('P') images, 4 for 'RGBA', 'CMYK' and palette images with alpha ('PA').
    `format` is Pillow's name ('JPEG', 'PNG', 'TIFF', ...), except that the MPO files phones
    write (a JPEG with further pictures appended) are reported as 'JPEG'.
    `exif_orientation` is the EXIF Orientation tag (1-8), 1 when absent.
    """

    width: int
    height: int
    depth: int
    format: str
    exif_orientation: int = 1

    @property
    def stored_size(self) -> tuple[int, int]:
        if self.exif_orientation in _SWAPPING_ORIENTATIONS:
            return self.height, self.width
        return self.width, self.height


#: The EXIF orientations that turn an image by a quarter (its width becomes its height).
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


def is_image_name(name: str) -> bool:
    """Whether `name` ends in one of IMAGE_SUFFIXES, in any case."""
    return name.lower().endswith(IMAGE_SUFFIXES)


def read_image_info(uri: str) -> ImageInfo:
    """The header facts of the image at `uri`, without decoding its pixels.

    Raises AnnotationError naming the image when it is missing, not a regular file (a
    folder, a FIFO, a device) or not a readable image.
    """
    try:
        with open_image(uri) as handle:
            return _header_info(handle, uri)
    except FileNotFoundError:
        raise AnnotationError(uri, "image file not found") from None
    except OSError as exc:
        raise AnnotationError(uri, f"cannot open the image: {os_problem(exc)}") from None


@contextlib.contextmanager
def open_image(uri: str) -> Iterator[IO[bytes]]:
    """An image file for reading, local or remote. A local path must name a regular file:
    it is opened without blocking and checked before any read, so that a FIFO or a device
    an annotation names can neither hang the run nor feed it endless bytes.
    Raises OSError (FileNotFoundError when missing)."""
    if is_remote(uri):
        with open_input(uri) as handle:
            yield handle
        return
    with os.fdopen(_open_regular(uri), "rb") as handle:
        yield handle


def read_image_bytes(uri: str, source: str | None = None) -> bytes:
    """The whole image file at `uri` (see `open_image`); remote reads are retried.

    Raises AnnotationError naming `source` (the annotation) and the image when the image is
    missing, not a regular file or cannot be read.
    """
    try:
        if is_remote(uri):
            return read_bytes(uri)
        with os.fdopen(_open_regular(uri), "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise _read_error(uri, source, "not found") from None
    except OSError as exc:
        raise _read_error(uri, source, f"cannot be read: {os_problem(exc)}") from None


def _open_regular(path: str) -> int:
    """A descriptor of the regular file at the local `path`, opened for reading."""
    descriptor = os.open(path.removeprefix("file://"), os.O_RDONLY | _NONBLOCK)
    try:
        kind = stat.S_IFMT(os.fstat(descriptor).st_mode)
        if kind != stat.S_IFREG:
            raise OSError(f"not a regular file ({_KINDS.get(kind, 'a special file')})")
        if _NONBLOCK:
            os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _read_error(uri: str, source: str | None, problem: str) -> AnnotationError:
    if source is None or source == uri:
        return AnnotationError(uri, f"image {problem}")
    return AnnotationError(source, f"image {uri} {problem}")


def image_info_of_bytes(data: bytes, name: str) -> ImageInfo:
    """`read_image_info` for an image already in memory (an archive member) named `name`."""
    return _header_info(BytesIO(data), name)


def _header_info(handle: IO[bytes], name: str) -> ImageInfo:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(handle) as image:
            width, height = stored_size(image)
            orientation = exif_orientation(image)
            if orientation in _SWAPPING_ORIENTATIONS:
                width, height = height, width
            return ImageInfo(
                width=width,
                height=height,
                depth=_depth(image.mode),
                format=_format_name(image.format),
                exif_orientation=orientation,
            )
    except FileNotFoundError:
        raise
    except UnidentifiedImageError:
        raise AnnotationError(name, "not an image file Pillow can identify") from None
    # Pillow raises all sorts of exceptions on damaged or hostile headers; each one means
    # "this image cannot be read" and must name the file rather than end the run.
    except Exception as exc:
        raise AnnotationError(name, f"cannot read the image header: {exc}") from None


def stored_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as stored; Pillow reports TIFFs with orientation 5-8 already turned."""
    tags = getattr(image, "tag_v2", None)
    if image.format == "TIFF" and tags is not None:
        width, height = tags.get(_TIFF_IMAGE_WIDTH), tags.get(_TIFF_IMAGE_LENGTH)
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    return image.width, image.height


def _depth(mode: str) -> int:
    from PIL import Image

    return _PALETTE_DEPTH.get(mode) or Image.getmodebands(mode)


def _format_name(name: str | None) -> str:
    if name == "MPO":
        return "JPEG"
    return name or "unknown"


def exif_orientation(image: Image.Image) -> int:
    # A PNG's eXIf chunk may follow the pixel data; Pillow would decode the image to reach it.
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:
        # A damaged EXIF block only loses the orientation, not the image.
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# --- which paths an annotation may make us open ------------------------------------------------
#
# An annotation names its image: VOC's <filename> and <path>, a Parquet table's image_uri.
# Annotations may come from untrusted uploads, so a URL (s3://, http://, ...) that an annotation
# names is opened only under a place the user gave (the images folder or the annotations'
# own folder, when remote; the origins of an images list given for that purpose), or when the
# user allows it (the run option `allow_remote_paths`): otherwise one annotation could make
# the tool send requests anywhere (to cloud metadata endpoints, to internal services) and
# embed the answer.
# Local paths must name regular files: a FIFO or a device would hang the run or never end.


@dataclass
class RemotePathPolicy:
    """A run's rule for URLs that annotations name: `allow` them all (the user trusts the
    annotations), or only under the places the user gave, and on the `listed` origins
    (``scheme://host`` of image URLs the user listed for that purpose: Open Images' images
    CSV, given as its own option)."""

    allow: bool = False
    listed: set[str] = field(default_factory=set)
    #: Folders the user gave as a source (a YOLO dataset whose listed images are opened).
    folders: set[str] = field(default_factory=set)


_policy: contextvars.ContextVar[RemotePathPolicy | None] = contextvars.ContextVar(
    "annoconv_remote_paths", default=None
)


@contextlib.contextmanager
def remote_paths(allow: bool = False) -> Iterator[RemotePathPolicy]:
    """Inside the block (one run, and the threads it hands work to), URLs that annotations
    name follow a policy of its own: all of them allowed when `allow`, else only where
    `remote_allowed` says so. Outside any block nothing is allowed."""
    token = _policy.set(RemotePathPolicy(allow))
    try:
        yield _current_policy()
    finally:
        _policy.reset(token)


def _current_policy() -> RemotePathPolicy:
    policy = _policy.get()
    if policy is None:  # outside a run: a policy for this context that allows nothing more
        policy = RemotePathPolicy()
        _policy.set(policy)
    return policy


def trust_listed_urls(urls: Iterable[str]) -> None:
    """Lets this run open images from the origins (``scheme://host``) of `urls`: image URLs
    the user listed for that purpose, opened like a remote images folder the user gave."""
    _current_policy().listed.update(_origin(url) for url in urls if is_remote(url))


def trust_source_folder(folder: str) -> None:
    """Lets this run open images under `folder`, a dataset folder the user gave as the source,
    whose files a reader lists itself (not URLs an annotation names)."""
    if is_remote(folder):
        _current_policy().folders.add(folder.rstrip("/"))


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def remote_allowed(uri: str, roots: Iterable[str | None]) -> bool:
    """Whether the URL `uri`, named by an annotation, may be opened: when the run allows
    every such URL, when it lies under one of the remote `roots` (places the user gave) or on
    an origin the user listed."""
    policy = _current_policy()
    if policy.allow:
        return True
    parts = uri.split("://", 1)[1].split("/")
    if ".." in parts or "." in parts or "%2e" in uri.lower():
        return False  # (nothing climbs out of a root, spelled plainly or percent-encoded)
    for root in [*roots, *policy.folders]:
        if root and is_remote(root):
            base = root.rstrip("/")
            if uri == base or uri.startswith(base + "/"):
                return True
    return "::" not in uri and _origin(uri) in policy.listed


def _refused_url(source: str, field: str, uri: str) -> AnnotationError:
    return AnnotationError(
        source,
        f"{field} {uri!r} is a URL the annotation names; annoconv opens only the URLs the user "
        "gives (the images folder, the annotations' folder), unless remote paths in "
        "annotations are allowed (--allow-remote-paths)",
    )


class ImageLocator:
    """Finds the image file an annotation names, looking where users keep their images.

    `find()` tries, in order, and returns the first hit:

    1. beside the annotation (the annotation's folder + `filename`);
    2. under `images_root`, at the annotation's folder relative to `annotations_root`
       (annotations `ann/1/280.xml` -> `images/1/280.jpg`); for an annotation in a folder
       named `Annotations`, then in `JPEGImages` beside that folder (the VOC devkit's layout);
       in both places, when `filename` has no image extension, also the file name of the
       recorded `path` when it is `filename` with more after a dot (labelImg's own test
       file names `test` and records `tests/test.512.512.bmp`);
    3. in those two folders, a file with the same stem and another image extension
       (`280.jpg` annotated, `280.tif` stored; old labelImg files name `280` without
       extension) — before looking elsewhere, so that another folder's `280.jpg` is never
       taken for this annotation's `280.tif`;
    4. unless the images mirror the annotation's folder (step 2's folder exists), by file
       name anywhere under `images_root` (the tree is listed once, on first need,
       and matched case-insensitively);
    5. the path the annotation tool recorded, if it exists on this machine;
    6. by stem anywhere under `images_root` (again unless mirrored), then by stem beside
       the recorded path.

    Several files under `images_root` matching in one step are told apart by the annotation's
    own subfolders, then by the longest trailing run of folders they share with the recorded
    path (`/Volumes/LaCie/grant/165/1/280.jpg` picks `165/1/280.tif` over `166/1/280.tif`);
    several left holding the same bytes are copies of one image (the first is taken);
    several that differ, or several candidates in one folder, are ambiguous: AnnotationError listing
    them and what would decide. `searched()` says where `find()` looks, in its order.

    Paths may be local or any fsspec URL. Folder listings are cached, so looking up many
    images in the same folders lists each folder once.
    """

    def __init__(self, images_root: str | None, annotations_root: str) -> None:
        self.images_root = images_root
        self.annotations_root = annotations_root
        self._index: _TreeIndex | None = None
        self._listings: dict[str, dict[str, list[str]]] = {}
        self._mirrors: dict[str, bool] = {}

    def find(self, annotation_uri: str, filename: str, path: str | None = None) -> str | None:
        """The image for `annotation_uri`, or None when it is nowhere to be found.

        `filename` is the image name as the annotation gives it, relative to the annotation's
        folder (VOC `<filename>`); `path` is the path the annotation tool recorded, if any.
        An OS error on the way (a recorded path too long for this filesystem) is an
        AnnotationError naming the annotation; a remote images folder that cannot be listed
        stays a StorageError (the run's problem, not the annotation's).
        """
        try:
            for _where, look in self._looks(annotation_uri, filename, path):
                found = look()
                if found:
                    return found
            return None
        except (AnnotationError, StorageError):
            raise
        except OSError as exc:
            problem = f"image {filename!r} cannot be looked up: {os_problem(exc)}"
            raise AnnotationError(annotation_uri, problem) from None

    def searched(self, annotation_uri: str, filename: str, path: str | None = None) -> list[str]:
        """Where `find()` looks for this image, in the order it looks (for messages)."""
        return [where for where, _look in self._looks(annotation_uri, filename, path)]

    def _looks(
        self, annotation_uri: str, filename: str, path: str | None
    ) -> Iterator[tuple[str, Callable[[], str | None]]]:
        """(where, a look there) for each step of `find()`, lazily: a step's places are
        worked out only when the steps before found nothing."""
        name = _relative_name(filename)
        if not name:
            return
        folders = self._folders(annotation_uri)
        places = folders + _devkit_images(folders[0])
        recorded = _usable_path(path, annotation_uri)
        if recorded is not None and is_remote(recorded) and not self.remote_allowed(recorded):
            recorded = None  # a URL the annotation names is not even asked about
        names = [name]
        from_path = _basename_of(path)
        stem = folded(posixpath.basename(name))
        if not is_image_name(name) and folded(from_path).startswith(stem + "."):
            # `<filename>test</filename>` and `<path>tests/test.512.512.bmp</path>`
            names.append(from_path)
        for folder in places:
            for each in names:
                candidate = join(folder, *each.split("/"))
                yield candidate, partial(_file_or_none, candidate)
        # Another extension in the annotation's own place beats the same name elsewhere:
        # `1/280.tif` is the image of `1/280.xml`, not some other patent's `2/280.jpg`.
        for folder in places:
            wanted = join(folder, *name.split("/"))
            where = f"{dirname(wanted) or '.'} for {image_stem(name)}.* (any image extension)"
            yield where, partial(self._search_folder, annotation_uri, filename, wanted)
        searchable = self.images_root is not None and not self._mirrored(folders)
        if searchable:
            for each in names:
                where = f"anywhere under {self.images_root} for {posixpath.basename(each)}"
                search = partial(self._search_index, annotation_uri, filename, each, path)
                yield where, partial(search, by_stem=False)
        if recorded:
            yield f"{recorded} (the recorded <path>)", partial(_file_or_none, recorded)
        if searchable:
            where = f"anywhere under {self.images_root} for {image_stem(name)}.*"
            search = partial(self._search_index, annotation_uri, filename, name, path)
            yield where, partial(search, by_stem=True)
        if recorded:
            where = f"{dirname(recorded) or '.'} for {image_stem(recorded)}.*"
            yield where, partial(self._search_folder, annotation_uri, filename, recorded)

    def remote_allowed(self, uri: str) -> bool:
        """Whether a URL an annotation names may be opened (see `remote_allowed`)."""
        return remote_allowed(uri, (self.images_root, self.annotations_root))

    def _folders(self, annotation_uri: str) -> list[str]:
        """The folders of steps 1 and 2: beside the annotation, then its mirror under images."""
        folders = [dirname(annotation_uri)]
        relative = self._relative_folder(annotation_uri)
        if self.images_root is not None and relative is not None:
            mirror = join(self.images_root, *relative.split("/")) if relative else self.images_root
            if mirror not in folders:
                folders.append(mirror)
        return folders

    def _mirrored(self, folders: list[str]) -> bool:
        """Whether the images mirror this annotation's (non-root) folder: then its image
        belongs there and a same-named file elsewhere under the images is someone else's."""
        if len(folders) < 2 or folders[1] == self.images_root:
            return False
        if folders[1] not in self._mirrors:
            self._mirrors[folders[1]] = is_dir(folders[1])
        return self._mirrors[folders[1]]

    def _relative_folder(self, annotation_uri: str) -> str | None:
        if is_remote(annotation_uri) != is_remote(self.annotations_root):
            return None
        try:
            relative = relative_posix(annotation_uri, self.annotations_root)
        except ValueError:  # different drives on Windows
            return None
        if relative.startswith("../") or relative == "..":
            return None
        folder = posixpath.dirname(relative)
        return "" if folder == "." else folder

    def _search_index(
        self, annotation_uri: str, filename: str, name: str, path: str | None, *, by_stem: bool
    ) -> str | None:
        root = self.images_root
        if root is None:
            return None
        index = self._tree_index(root)
        table = index.by_stem if by_stem else index.by_name
        key = image_stem(name) if by_stem else folded(posixpath.basename(name))
        candidates = _prefer_suffix(table.get(key, []), root, name, by_stem)
        candidates = prefer_recorded_folders(candidates, path, lambda c: relative_posix(c, root))
        if len(candidates) > 1 and _identical_files(candidates):
            candidates = candidates[:1]
        if len(candidates) > 1:
            listed = [relative_posix(c, root) for c in candidates]
            raise _ambiguous(annotation_uri, filename, f"under {root}", listed, path)
        return candidates[0] if candidates else None

    def _search_folder(self, annotation_uri: str, filename: str, wanted: str) -> str | None:
        """A file beside `wanted` with the same stem and an image extension (step 5)."""
        folder = dirname(wanted)
        candidates = self._listing(folder).get(image_stem(wanted), [])
        if len(candidates) > 1:
            listed = [posixpath.basename(c.replace("\\", "/")) for c in candidates]
            raise _ambiguous(annotation_uri, filename, f"in {folder}", listed, None, index=False)
        return candidates[0] if candidates else None

    def _tree_index(self, root: str) -> _TreeIndex:
        if self._index is None:
            self._index = _TreeIndex(_image_tree(root))
        return self._index

    def _listing(self, folder: str) -> dict[str, list[str]]:
        """Image files directly in `folder`, by lower-cased stem (cached)."""
        if folder not in self._listings:
            by_stem: dict[str, list[str]] = {}
            for uri in _image_files_in(folder):
                by_stem.setdefault(image_stem(uri), []).append(uri)
            self._listings[folder] = by_stem
        return self._listings[folder]


class RecordImages:
    """Finds the image of any record, wherever its annotation came from.

    A record that already knows its `image_uri` keeps it. Otherwise the record's annotation
    is located relative to the folder its key is relative to (for VOC: the XML folder tree;
    for CSV and similar: the CSV's folder, with `filename` relative to it), and an
    `ImageLocator` looks in the usual places, `images_root` included.
    """

    def __init__(self, images_root: str | None) -> None:
        self.images_root = images_root
        self._locators: dict[str, ImageLocator] = {}
        self._lock = threading.Lock()

    def find(self, record: ImageRecord) -> str:
        """The image's URI, or an AnnotationError naming the annotation and where it looked.

        A URL the record names (`image_uri`, `path`) is taken only where `remote_allowed`
        says so; a local `image_uri` must not be a folder, a FIFO or a device. An OS error
        while looking (a name too long for the filesystem) names the annotation."""
        source = record.source or record.key
        # A local copy under --images beats a download URL the annotations name.
        prefer_local = self.images_root is not None and is_remote(record.image_uri or "")
        root, anchor, name = self._anchor(record, source)
        if record.image_uri and not prefer_local:
            return self._named(record.image_uri, source, root)
        locator = self._locator(root)
        try:
            found = locator.find(anchor, name, record.path)
        except AnnotationError as error:
            raise AnnotationError(source, error.message, error.where) from None
        if found is None and record.image_uri:
            return self._named(record.image_uri, source, root)
        if found is None:
            looked = "; ".join(locator.searched(anchor, name, record.path))
            if record.path and is_remote(record.path) and not locator.remote_allowed(record.path):
                looked += (
                    f"; not at {record.path}, a URL the annotation names (see --allow-remote-paths)"
                )
            hint = "" if self.images_root else "; pass the images folder with --images"
            raise AnnotationError(
                source, f"image {record.filename!r} not found; looked at, in order: {looked}{hint}"
            )
        return found

    def _locator(self, root: str) -> ImageLocator:
        with self._lock:  # (finds run on pool threads)
            locator = self._locators.get(root)
            if locator is None:
                locator = self._locators[root] = ImageLocator(self.images_root, root)
            return locator

    def info(self, record: ImageRecord) -> ImageInfo:
        """The header facts (size, depth, format) of the record's image (see `find`)."""
        return read_image_info(self.find(record))

    def _named(self, uri: str, source: str, root: str) -> str:
        """The `image_uri` a record names, if it may be opened."""
        if is_remote(uri):
            if not remote_allowed(uri, (self.images_root, root)):
                raise _refused_url(source, "image_uri", uri)
            return uri
        try:
            mode = os.stat(uri.removeprefix("file://")).st_mode
        except FileNotFoundError:
            return uri  # reported as not found where it is read
        except OSError as exc:
            raise AnnotationError(source, f"image_uri {uri}: {os_problem(exc)}") from None
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
            raise AnnotationError(source, f"image_uri {uri} is not a regular file ({kind})")
        return uri

    @staticmethod
    def _anchor(record: ImageRecord, source: str) -> tuple[str, str, str]:
        """(annotations root, a path standing for the annotation, image name beside it)."""
        normalized = source.replace("\\", "/")
        if record.key and normalized.endswith("/" + record.key):
            root = source[: len(source) - len(record.key) - 1]
            return root, source, posixpath.basename(record.filename)
        root = dirname(source) or "."
        name = posixpath.basename(record.filename)
        if not is_remote(record.filename) and os.path.isabs(record.filename):
            # keras-frcnn txt and CSVs often name images by absolute path: look there first.
            return root, record.filename, name
        return root, join(root, *record.filename.split("/")), name


class _TreeIndex:
    """Every image under a root, by lower-cased basename and by lower-cased stem."""

    def __init__(self, files: list[str]) -> None:
        self.by_name: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        for uri in files:
            base = posixpath.basename(uri.replace("\\", "/"))
            self.by_name.setdefault(folded(base), []).append(uri)
            self.by_stem.setdefault(image_stem(base), []).append(uri)


def _devkit_images(folder: str) -> list[str]:
    """`[JPEGImages beside folder]` when `folder` is a VOC devkit's `Annotations`, else []."""
    name = posixpath.basename(folder.replace("\\", "/").rstrip("/"))
    return [join(dirname(folder), DEVKIT_IMAGES)] if name == DEVKIT_ANNOTATIONS else []


def _identical_files(uris: Sequence[str]) -> bool:
    """Whether the files hold the same bytes: copies of one image, whichever is taken
    (OIDv4_ToolKit saves an image in the folder of each class it holds). Empty files are
    no image, whatever their number."""
    sizes = {size_of(uri) for uri in uris}
    if len(sizes) > 1 or 0 in sizes:
        return False
    first = read_bytes(uris[0])
    return all(read_bytes(uri) == first for uri in uris[1:])


def _file_or_none(uri: str) -> str | None:
    return uri if _is_file(uri) else None


def _basename_of(path: str | None) -> str:
    """The file name of a recorded path from any OS."""
    return posixpath.basename((path or "").strip().replace("\\", "/"))


def _is_file(uri: str) -> bool:
    if not is_remote(uri):
        return os.path.isfile(uri)
    fs, path = filesystem(uri)
    return bool(fs.isfile(path))


def _image_tree(root: str) -> list[str]:
    """Every image file under `root`, spelled as `root` is (fsspec may add a leading '/')."""
    if not is_remote(root):
        return list_files(root, IMAGE_SUFFIXES)
    fs, path = filesystem(root)
    found = (posixpath.relpath(p, path) for p in fs.find(path))
    return sorted(join(root, relative) for relative in found if is_image_name(relative))


def _image_files_in(folder: str) -> list[str]:
    if is_remote(folder):
        fs, path = filesystem(folder)
        try:
            entries = fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        names = [posixpath.basename(e["name"]) for e in entries if e.get("type") == "file"]
        return sorted(join(folder, name) for name in names if is_image_name(name))
    try:
        with os.scandir(folder or ".") as entries:
            return sorted(
                os.path.join(folder, e.name)
                for e in entries
                if is_image_name(e.name) and e.is_file()
            )
    except (FileNotFoundError, NotADirectoryError):
        return []


def _prefer_suffix(candidates: list[str], root: str, name: str, by_stem: bool) -> list[str]:
    """Among same-named files, those whose path ends with the annotation's own subfolders."""
    if len(candidates) < 2 or "/" not in name:
        return candidates
    wanted = folded(name)
    if by_stem:
        wanted = posixpath.join(posixpath.dirname(wanted), image_stem(wanted))
    matching = []
    for candidate in candidates:
        relative = folded(relative_posix(candidate, root))
        if by_stem:
            relative = posixpath.join(posixpath.dirname(relative), image_stem(relative))
        if relative == wanted or relative.endswith("/" + wanted):
            matching.append(candidate)
    return matching or candidates


def _relative_name(filename: str) -> str:
    """`filename` as a relative posix path; absolute or escaping names keep their basename."""
    name = filename.strip().replace("\\", "/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or WINDOWS_ABSOLUTE.match(name) or ".." in parts:
        return parts[-1] if parts and parts[-1] != ".." else ""
    return "/".join(parts)


def _usable_path(path: str | None, annotation_uri: str) -> str | None:
    """The recorded image path as something this machine can check, or None.

    Paths from another OS (a Windows path read on Linux) cannot exist here; relative paths
    are taken relative to the annotation's folder.
    """
    if not path or not path.strip():
        return None
    path = path.strip()
    if is_remote(path):
        return path
    if os.sep == "/" and ("\\" in path or WINDOWS_ABSOLUTE.match(path)):
        return None
    if os.path.isabs(path):
        return path
    return join(dirname(annotation_uri), path)


def folded(name: str) -> str:
    """`name` in the form file names are compared in: lower case, and composed (NFC): macOS
    hands out names decomposed (``e`` + a combining accent) where annotation tools write them
    composed (``é``), and the two must match as the same name."""
    return (name if name.isascii() else unicodedata.normalize("NFC", name)).lower()


def image_path_key(name: str) -> str:
    """Folded posix path without its image extension (other extensions are kept), how an
    annotation's image name and a found file are compared: `P1/280.TIF` -> `p1/280`."""
    path = folded(name.replace("\\", "/")).removeprefix("./")
    root, extension = posixpath.splitext(path)
    return root if extension in IMAGE_SUFFIXES else path


def image_stem(name: str) -> str:
    """The file name part of `image_path_key`: `P1/280.TIF` -> `280`."""
    return posixpath.basename(image_path_key(name))


def _ambiguous(
    annotation_uri: str,
    filename: str,
    where: str,
    candidates: list[str],
    path: str | None,
    *,
    index: bool = True,
) -> AnnotationError:
    """The error of several files matching one image: found in one folder by stem, or
    anywhere under the images folder (`index`), with what would decide."""
    folders = "; its recorded <path>'s folders do not tell them apart" if path else ""
    decide = (
        "keep the image beside its annotation, mirror the annotation folders under the images "
        "folder, or record the image's folders in <path>"
        if index
        else "name the image with its extension, or keep one image of that stem there"
    )
    return AnnotationError(
        annotation_uri,
        f"image {filename!r} is ambiguous: {len(candidates)} files {where} match it "
        f"({', '.join(candidates)}){folders}; {decide}",
    )


def recorded_folders(path: str | None) -> list[str]:
    """The folders of a recorded image path from any OS, lower-cased: `C:\\data\\165\\1\\280.jpg`
    -> `["c:", "data", "165", "1"]`."""
    if not path:
        return []
    parts = folded(path.strip().replace("\\", "/")).split("/")[:-1]
    return [part for part in parts if part not in ("", ".")]


def shared_folders(recorded: Sequence[str], relative: str) -> int:
    """How many folders, counted from the file up, `relative` (a posix path) shares with the
    `recorded` folders: `165/1/280.tif` shares 2 with `[..., "165", "1"]`."""
    own = [part for part in folded(relative).split("/")[:-1] if part not in ("", ".")]
    count = 0
    for mine, theirs in zip(reversed(own), reversed(recorded), strict=False):
        if mine != theirs:
            break
        count += 1
    return count


def prefer_recorded_folders(
    candidates: list[str], path: str | None, relative: Callable[[str], str]
) -> list[str]:
    """Among several candidates, those sharing the longest trailing run of folders with the
    recorded `path` (`relative` gives a candidate's path below the root searched)."""
    folders = recorded_folders(path)
    if len(candidates) < 2 or not folders:
        return candidates
    depths = [shared_folders(folders, relative(candidate)) for candidate in candidates]
    deepest = max(depths)
    return [c for c, depth in zip(candidates, depths, strict=True) if depth == deepest]
