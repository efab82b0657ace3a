"""Where a YOLO dataset keeps its images, labels and class names, in either layout.

**Ultralytics**: ``data.yaml`` with ``path`` (the root; a relative one beside the yaml, else
from the working folder, else the yaml's folder when ``train`` is there; the yaml's folder
when absent), ``train``, ``val``, ``test`` (each a folder of images, a ``.txt`` list of image
paths, or a list of those; relative to the root; ``../x`` that does not exist is tried as
``x``, as Ultralytics does for Roboflow's exports; a ``test`` that does not exist is no
split, as for Ultralytics, which checks only ``val``: Roboflow's yaml names
``../test/images`` whether or not it exported a test split) and ``names`` (a list, or a map
from index to name); a pose dataset's ``kpt_shape: [N, D]`` says that each label line holds
N keypoints of D values after its box. A label file sits where the image is with the last
``/images/`` of its path replaced by ``/labels/`` and the extension by ``.txt``; an image
whose path has no ``images`` folder has its label beside it.

**Darknet** (AlexeyAB): ``obj.data`` (``classes=``, ``train=``, ``valid=``, ``names=``),
``obj.names`` (one class per line), ``train.txt`` (image paths), each label beside its
image. Paths in these files are relative to where darknet runs: they are tried relative to
the ``.data`` file's folder, its parent, then the working folder, and, since darknet keeps
its datasets in ``data/``, without their first folder relative to the ``.data`` file's
folder (CVAT's "YOLO 1.1" export says ``names = data/obj.names`` and lists
``data/obj_train_data/x.jpg`` for files at the root of its archive).

A folder without either file is read as a folder of images with labels in a ``labels``
mirror or beside them, class names from ``classes.txt`` or ``obj.names`` when present, else
from the ``categories`` of Label Studio's ``notes.json`` (ids 0..n-1).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

from annoconv.errors import AnnotationError, FormatError
from annoconv.io.fs import dirname, exists, is_dir, join, list_files, read_bytes
from annoconv.io.images import IMAGE_SUFFIXES, is_image_name

DATA_YAML = "data.yaml"
OBJ_DATA = "obj.data"
NAMES_FILES = ("obj.names", "classes.txt", "classes.names")
#: Label Studio's YOLO export: its classes as ``categories``.
NOTES_JSON = "notes.json"
#: data.yaml keys of the splits, in the order they are read.
SPLIT_KEYS = ("train", "val", "test")
#: Darknet's obj.data keys of the splits.
DARKNET_SPLITS = {"train": "train", "valid": "val", "test": "test"}


@dataclass
class YoloDataset:
    """A YOLO dataset found on disk: its root, each split's image files, its class names."""

    layout: str  # "ultralytics", "darknet" or "folder"
    root: str
    config: str | None
    splits: dict[str, list[str]] = field(default_factory=dict)
    names: list[str] | None = None
    #: Each split's image folders (a split given as folders): image names are relative to them.
    folders: dict[str, list[str]] = field(default_factory=dict)
    #: A pose dataset's keypoint values after each line's box (``kpt_shape`` N x D).
    keypoint_values: int | None = None


def label_path(image: str) -> str:
    """The label file of an image (Ultralytics' rule, which Darknet's folders satisfy)."""
    path = image.replace("\\", "/") if "\\" in image and "/" not in image else image
    marker = "/images/"
    cut = path.rfind(marker)
    if cut >= 0:
        path = path[:cut] + "/labels/" + path[cut + len(marker) :]
    stem, _suffix = posixpath.splitext(path)
    return stem + ".txt"


def find_dataset(source: str) -> YoloDataset:
    """The dataset a source names: a ``data.yaml`` (or other ``.yaml``), an ``obj.data``
    (or other ``.data``), or a folder holding one of them, or images and labels."""
    lowered = source.lower()
    if lowered.endswith((".yaml", ".yml")):
        return read_data_yaml(source)
    if lowered.endswith(".data"):
        return read_obj_data(source)
    if not is_dir(source):
        unpack = ": unpack it and pass its folder" if _is_archive_name(lowered) else ""
        raise FormatError(
            f"{source}: not a YOLO dataset (a data.yaml, an obj.data or a folder){unpack}"
        )
    for name in (DATA_YAML, "data.yml", "dataset.yaml"):
        if exists(join(source, name)):
            return read_data_yaml(join(source, name))
    if exists(join(source, OBJ_DATA)):
        return read_obj_data(join(source, OBJ_DATA))
    return _plain_folder(source)


def _is_archive_name(lowered: str) -> bool:
    return lowered.endswith((".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def is_yolo_folder(path: str) -> bool:
    """Whether a folder holds a YOLO dataset: a data.yaml or obj.data, or a ``labels/``
    folder beside ``images/`` or a class names file (Ultralytics' layout without its yaml,
    Label Studio's export, with or without its images)."""
    try:
        if not is_dir(path):
            return False
        if any(exists(join(path, name)) for name in (DATA_YAML, "data.yml", OBJ_DATA)):
            return True
        if not is_dir(join(path, "labels")):
            return False
        beside = ("images", *NAMES_FILES, NOTES_JSON)
        return any(exists(join(path, name)) for name in beside)
    except Exception:  # a guess only: the reader says what is wrong
        return False


# --- Ultralytics ----------------------------------------------------------------------------


def read_data_yaml(uri: str) -> YoloDataset:
    import yaml

    try:
        data = yaml.safe_load(read_bytes(uri).decode("utf-8-sig"))
    except FileNotFoundError:
        raise AnnotationError(uri, "no such file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        message = " ".join(str(error).split())
        raise AnnotationError(uri, f"not valid YAML: {message}") from None
    if not isinstance(data, dict):
        raise AnnotationError(uri, "expected a mapping with train/val/test and names")
    folder = dirname(uri) or "."
    root = _yaml_root(data.get("path"), folder, data.get("train"))
    dataset = YoloDataset("ultralytics", root, uri, names=_names(data.get("names"), uri))
    dataset.keypoint_values = _keypoint_values(data.get("kpt_shape"), uri)
    for key in SPLIT_KEYS:
        value = data.get(key)
        if key == "test" and isinstance(value, str) and not exists(_located(value, root)):
            continue  # optional (see the module's docstring)
        if value:
            dataset.splits[key] = _split_images(value, root, uri, key)
            dataset.folders[key] = _split_folders(value, root)
    if not dataset.splits:
        raise AnnotationError(uri, "names no split (train, val or test)")
    return dataset


def _yaml_root(value: Any, folder: str, train: Any = None) -> str:
    """The dataset root: `path` beside the yaml, else from the working folder; the yaml's
    folder without one, or when a relative `path` is in neither place but the ``train``
    split is beside the yaml (Ultralytics reads a relative `path` from its own datasets
    folder: ``path: coco8`` in a yaml kept inside the dataset)."""
    if not isinstance(value, str) or not value.strip():
        return folder
    path: str = value.strip()
    if os.path.isabs(path) or "://" in path:
        return path
    beside = join(folder, path)
    if is_dir(beside):
        return beside
    if is_dir(path):
        return path
    if isinstance(train, str) and train.strip() and exists(join(folder, train.strip())):
        return folder
    return beside


def _keypoint_values(value: Any, uri: str) -> int | None:
    """The values of a label line's keypoints, from Ultralytics' ``kpt_shape: [N, D]`` (N
    keypoints of x, y and, when D is 3, visibility); None for a detection dataset."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(type(number) is int for number in value)
        or value[0] < 1
        or value[1] not in (2, 3)
    ):
        raise AnnotationError(
            uri, f"expected [keypoints, 2 or 3] (e.g. [17, 3]), got {value!r}", "kpt_shape"
        )
    return int(value[0] * value[1])


def _names(value: Any, uri: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        names = [str(name) for name in value]
    elif isinstance(value, dict):
        try:
            indexed = {int(index): str(name) for index, name in value.items()}
        except (TypeError, ValueError):
            raise AnnotationError(
                uri, "names: the keys of a names map must be class indices"
            ) from None
        if sorted(indexed) != list(range(len(indexed))):
            raise AnnotationError(uri, f"names: indices must be 0..{len(indexed) - 1}", "names")
        names = [indexed[index] for index in range(len(indexed))]
    else:
        raise AnnotationError(uri, "names must be a list or a map of index: name", "names")
    empty = [index for index, name in enumerate(names) if not name.strip()]
    if empty:
        raise AnnotationError(uri, f"class {empty[0]} has an empty name", "names")
    return [name.strip() for name in names]


def _split_images(value: Any, root: str, uri: str, key: str) -> list[str]:
    entries = value if isinstance(value, list) else [value]
    images: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise AnnotationError(uri, f"expected a folder or a .txt list, got {entry!r}", key)
        images += _images_at(_located(entry, root), root, uri, key)
    return images


def _split_folders(value: Any, root: str) -> list[str]:
    entries = value if isinstance(value, list) else [value]
    located = [_located(entry, root) for entry in entries if isinstance(entry, str)]
    return [path for path in located if not path.lower().endswith(".txt")]


def _located(entry: str, root: str) -> str:
    if os.path.isabs(entry) or "://" in entry:
        return entry
    path = join(root, entry)
    if not exists(path) and entry.startswith("../"):
        shorter = join(root, entry[3:])  # Roboflow's exports, as Ultralytics reads them
        if exists(shorter):
            return shorter
    return path


def _images_at(path: str, root: str, uri: str, key: str) -> list[str]:
    if path.lower().endswith(".txt"):
        if not exists(path):
            raise AnnotationError(uri, f"the list {path} does not exist", key)
        return _listed_images(path, [dirname(path) or ".", root])
    if not is_dir(path):
        raise AnnotationError(uri, f"the folder {path} does not exist", key)
    return [image for image in list_files(path, IMAGE_SUFFIXES)]


def _listed_images(list_uri: str, bases: list[str]) -> list[str]:
    """The image paths of a list file, each resolved against the first of `bases` (or the
    working folder) where the list's first existing image is."""
    lines = [
        line.strip()
        for line in read_bytes(list_uri).decode("utf-8-sig").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    if not lines:
        return []
    resolve = _resolver(lines, bases)
    return [resolve(line) for line in lines]


def _resolver(lines: list[str], bases: list[str]) -> Any:
    """How the lines of a list are resolved: against the first of `bases` (then the working
    folder) where one of the first lines exists, or, failing that, without their first
    folder against the first base (Darknet's ``data/``); where no image exists, where the
    label file of one does."""

    def absolute(line: str) -> bool:
        return os.path.isabs(line) or "://" in line

    chosen: str | None = None
    strip = False
    # The images decide; an export without its images (CVAT's option) by its label files.
    for found in (exists, lambda image: exists(label_path(image))):
        for line in lines[:16]:
            if absolute(line):
                continue
            for base in [*bases, ""]:
                candidate = join(base, line) if base else line
                if found(candidate):
                    chosen = base
                    break
            shorter = _without_first_folder(line)
            if chosen is None and shorter is not None and found(join(bases[0], shorter)):
                chosen, strip = bases[0], True
            if chosen is not None:
                break
        if chosen is not None:
            break

    def resolve(line: str) -> str:
        if absolute(line):
            return line
        base = chosen if chosen is not None else bases[0]
        if strip:
            line = _without_first_folder(line) or line
        return join(base, line) if base else line

    return resolve


def _without_first_folder(path: str) -> str | None:
    """``data/obj.names`` -> ``obj.names``; None for a path without a folder."""
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(parts[1:]) if len(parts) > 1 and parts[0] != ".." else None


# --- Darknet --------------------------------------------------------------------------------


def read_obj_data(uri: str) -> YoloDataset:
    values = _key_values(uri)
    folder = dirname(uri) or "."
    bases = [folder, dirname(folder) or "."]
    names_path = values.get("names")
    names = None
    if names_path:
        located = _first_existing(names_path, bases)
        if located is None:
            raise AnnotationError(uri, f"names file {names_path} not found", "names")
        names = read_names(located)
    else:
        names = _names_beside(folder)
    dataset = YoloDataset("darknet", folder, uri, names=names)
    for key, split in DARKNET_SPLITS.items():
        listed = values.get(key)
        if not listed:
            continue
        located = _first_existing(listed, bases)
        if located is None:
            raise AnnotationError(uri, f"list {listed} not found", key)
        dataset.splits[split] = _listed_images(located, bases)
        dataset.folders[split] = _common_folder(dataset.splits[split])
    if not dataset.splits:
        dataset.splits["train"] = _folder_images(folder)
    classes = values.get("classes")
    if names is not None and classes and classes.isdigit() and int(classes) != len(names):
        raise AnnotationError(
            uri, f"classes={classes} but {names_path or 'the names file'} has {len(names)} names"
        )
    return dataset


def _common_folder(images: list[str]) -> list[str]:
    """The folder all listed images are in (Darknet's ``data/obj``), if they share one."""
    if not images:
        return []
    try:
        return [os.path.commonpath([posixpath.dirname(image) for image in images])]
    except ValueError:  # absolute and relative paths mixed
        return []


def _key_values(uri: str) -> dict[str, str]:
    values = {}
    for number, raw in enumerate(read_bytes(uri).decode("utf-8-sig").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise AnnotationError(uri, f"expected key = value, got {raw!r}", f"line {number}")
        values[key.strip().lower()] = value.strip()
    return values


def _first_existing(path: str, bases: list[str]) -> str | None:
    if os.path.isabs(path) or "://" in path:
        return path if exists(path) else None
    for base in [*bases, ""]:
        candidate = join(base, path) if base else path
        if exists(candidate):
            return candidate
    shorter = _without_first_folder(path)
    if shorter is not None and exists(join(bases[0], shorter)):
        return join(bases[0], shorter)
    return None


def read_names(uri: str) -> list[str]:
    """Class names, one per line (blank lines at the end ignored)."""
    lines = read_bytes(uri).decode("utf-8-sig").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    empty = [number for number, name in enumerate(names, 1) if not name]
    if empty:
        raise AnnotationError(uri, "empty class name", f"line {empty[0]}")
    return names


def _names_beside(folder: str) -> list[str] | None:
    for name in NAMES_FILES:
        if exists(join(folder, name)):
            return read_names(join(folder, name))
    if exists(join(folder, NOTES_JSON)):
        return read_notes(join(folder, NOTES_JSON))
    return None


def read_notes(uri: str) -> list[str]:
    """Class names from Label Studio's ``notes.json``: ``categories`` ``[{id, name}]``,
    ids 0..n-1, in id order."""
    import json

    try:
        document = json.loads(read_bytes(uri).decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as error:
        raise AnnotationError(uri, f"not valid JSON: {error}") from None
    categories = document.get("categories") if isinstance(document, dict) else None
    if not isinstance(categories, list):
        raise AnnotationError(uri, "expected a 'categories' list of {id, name}")
    names: dict[int, str] = {}
    for position, category in enumerate(categories):
        where = f"categories[{position}]"
        if not isinstance(category, dict):
            raise AnnotationError(uri, "expected an object with id and name", where)
        index, name = category.get("id"), category.get("name")
        if isinstance(index, bool) or not isinstance(index, int) or not isinstance(name, str):
            raise AnnotationError(uri, "expected an integer id and a string name", where)
        if not name.strip():
            raise AnnotationError(uri, "empty class name", where)
        names[index] = name.strip()
    if sorted(names) != list(range(len(names))):
        raise AnnotationError(uri, f"category ids must be 0..{len(names) - 1}", "categories")
    return [names[index] for index in range(len(names))]


# --- a folder of images and labels ------------------------------------------------------------


def _plain_folder(folder: str) -> YoloDataset:
    dataset = YoloDataset("folder", folder, None, names=_names_beside(folder))
    images_folder = join(folder, "images")
    if is_dir(images_folder):
        subfolders = sorted(
            name
            for name in {
                posixpath.relpath(path.replace("\\", "/"), images_folder.replace("\\", "/")).split(
                    "/"
                )[0]
                for path in list_files(images_folder, IMAGE_SUFFIXES)
            }
            if not is_image_name(name)
        )
        splits = [name for name in subfolders if name in ("train", "val", "valid", "test")]
        if splits:
            for name in splits:
                dataset.splits[name] = list_files(join(images_folder, name), IMAGE_SUFFIXES)
                dataset.folders[name] = [join(images_folder, name)]
            return dataset
        dataset.splits["train"] = list_files(images_folder, IMAGE_SUFFIXES)
        dataset.folders["train"] = [images_folder]
        return dataset
    dataset.splits["train"] = _folder_images(folder)
    if is_dir(join(folder, "labels")):  # labels without their images/: each one is reported
        dataset.folders["train"] = [images_folder]
    return dataset


def _folder_images(folder: str) -> list[str]:
    return list_files(folder, IMAGE_SUFFIXES)
