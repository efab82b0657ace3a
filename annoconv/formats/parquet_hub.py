"""Our Parquet as a Hugging Face dataset: the metadata `datasets` reads, and the dataset card.

`datasets.load_dataset` takes a Parquet file's columns from its Arrow schema unless the file's
key-value metadata holds ``huggingface`` (``{"info": {"features": ...}}``, the JSON form of
`datasets.Features`); a feature is taken from there only when its Arrow type, nullability
included, is exactly the column's. Every Parquet file we write holds that key, so:

* the ``image`` column (``--embed-images``, ``{bytes, path}``) loads as an `Image` feature;
* in a **dataset folder** (a split run, see below) each box also gets ``category``, the
  position of its class in the label map ordered by id (``id - 1`` for ids 1..N), declared a
  `ClassLabel` whose names are the label map's (display names where the map has them); the
  objects column is then written nullable, as `datasets` types every feature;
* ``objects`` is a list of structs (`datasets`' ``List`` of a dict, the layout the Hub's
  object-detection datasets use), the ``label`` text beside ``category``.

**Dataset folder.** A split run writes ``OUT/data/NAME/part-00000.parquet`` per split (the
parallel engines ``part-0000N``) and ``OUT/README.md``, a dataset card whose front matter
(``configs``: each split's files; ``dataset_info``: the features) `datasets` and the Hub read.
So the folder loads with ``load_dataset(OUT)`` (every split, under its own name) or
``load_dataset("parquet", data_dir=OUT)`` (splits from folder names: `datasets` knows
train, validation/valid/val/dev and test/eval; it names ``val`` ``validation``), and can be
pushed to the Hub as it is. pandas and pyarrow read the data from ``OUT/data`` (the card
is not a Parquet file); DuckDB ``'OUT/**/*.parquet'``.

`write_card(folder)` writes the card of any folder of our Parquet files (a split run on a
parallel engine, whose card the run does not write yet, or a folder of an older layout).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from annoconv.io.fs import dirname, exists, join, list_files, read_bytes, write_atomic
from annoconv.schema import BOX_SOURCE, IMAGE_COLUMN, image_arrow_type

if TYPE_CHECKING:
    from annoconv.labelmap import LabelMap

__all__ = [
    "CARD",
    "CATEGORY",
    "DATA",
    "HF_METADATA_KEY",
    "class_names",
    "conform_objects",
    "dataset_split",
    "features",
    "hub_objects_type",
    "with_categories",
    "write_card",
]

#: The folder of a dataset folder's data, and its card.
DATA = "data"
CARD = "README.md"
#: Where our Parquet files keep their label map (`parquet.META_PREFIX` + ``label_map``).
LABEL_MAP_KEY = b"annoconv.label_map"
#: Where they keep the space of their coordinates (`parquet.META_PREFIX` + ``coords``).
COORDS_KEY = b"annoconv.coords"
#: The per-box field holding the ClassLabel (dataset folders only).
CATEGORY = "category"
HF_METADATA_KEY = b"huggingface"
#: The first line of the card's body: a card without it is not ours and is never replaced.
CARD_MARKER = "<!-- annoconv dataset card: written by annoconv, rewritten by its next run -->"
_PART = re.compile(r"part-\d{5}\.parquet")
#: The split names `datasets` accepts.
_HF_SPLIT = re.compile(r"^\w+(\.\w+)*$")
_HIVE_SPLIT = re.compile(r"^split=(.+)$")
#: Splits in the card: these first, as `datasets` orders them; the others by name.
_USUAL_ORDER = {"train": 0, "validation": 1, "test": 2}
#: Strings written as plain YAML scalars; the others are quoted.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


# --- the dataset folder layout -------------------------------------------------------------


def dataset_split(destination: str) -> str | None:
    """The split NAME of a file of a dataset folder, ``OUT/data/NAME/part-NNNNN.parquet``;
    None for any other file."""
    parts = destination.replace("\\", "/").rsplit("/", 3)
    if len(parts) == 4 and parts[1] == DATA and _PART.fullmatch(parts[3]) and parts[2]:
        return parts[2]
    return None


def dataset_root(destination: str) -> str:
    """The dataset folder (``OUT``) of one of its files."""
    return dirname(dirname(dirname(destination)))


def replaced_parts(destination: str) -> list[str]:
    """For a dataset folder's file of split NAME: the part files of the same split in the
    layout of earlier annoconv versions, ``OUT/split=NAME/part-NNNNN.parquet``."""
    split = dataset_split(destination)
    if split is None:
        return []
    folder = join(dataset_root(destination), f"split={split}")
    if not exists(folder):
        return []
    return [path for path in list_files(folder, [".parquet"]) if _PART.fullmatch(_basename(path))]


def _basename(path: str) -> str:
    return posixpath.basename(path.replace("\\", "/"))


# --- class labels --------------------------------------------------------------------------


def class_names(label_map: LabelMap) -> list[str]:
    """The ClassLabel names: the label map's items by id, each by its display name when it
    has one (all of them by `name` if display names would repeat)."""
    items = sorted(label_map, key=lambda item: item.id)
    shown = [item.display_name or item.name for item in items]
    return shown if len(set(shown)) == len(shown) else [item.name for item in items]


def hub_objects_type(objects: pa.DataType) -> pa.DataType:
    """The objects type of a dataset folder's files: `category` after `label`, and every
    field nullable (as `datasets` types its features, so that it takes ours)."""
    fields = []
    for field in objects.value_type:
        fields.append(pa.field(field.name, field.type))
        if field.name == "label":
            fields.append(pa.field(CATEGORY, pa.int64()))
    return pa.list_(pa.struct(fields))


def with_categories(
    objects: pa.Array, label_map: LabelMap, hub_type: pa.DataType
) -> tuple[pa.Array, list[str]]:
    """(`objects` in `hub_type` with each box's category, labels the map lacks): a label
    matches an item's name first, then its display name, as `LabelMap.get` does; a label
    the map lacks gets a null category."""
    items = sorted(label_map, key=lambda item: item.id)
    keys, positions = _lookup_keys(items)
    children = _children(objects)
    labels = children["label"]
    found = pc.index_in(labels, value_set=pa.array(keys, pa.string()))
    children[CATEGORY] = pc.take(pa.array(positions, pa.int64()), found)
    unknown = pc.unique(pc.filter(labels, pc.is_null(found))).to_pylist()
    return _list_of(objects, children, hub_type), sorted(unknown)


def _children(objects: pa.Array) -> dict[str, pa.Array]:
    """The fields of the boxes under a list array (all of them, slice or not: its offsets
    index them)."""
    values = objects.values
    return dict(zip([f.name for f in values.type], values.flatten(), strict=True))


def _lookup_keys(items: Sequence[Any]) -> tuple[list[str], list[int]]:
    keys = [item.name for item in items]
    positions = list(range(len(items)))
    names = set(keys)
    for position, item in enumerate(items):
        shown = item.display_name
        if shown is not None and shown not in names and shown not in keys:
            keys.append(shown)
            positions.append(position)
    return keys, positions


def conform_objects(objects: pa.Array, target: pa.DataType) -> pa.Array:
    """An objects column of any layout we wrote (a box's source named `source` before it
    was `box_source`; a dataset folder's `category` and nullable fields) in `target`."""
    if objects.type == target:
        return objects
    children = _children(objects)
    if BOX_SOURCE not in children and "source" in children:
        children[BOX_SOURCE] = children.pop("source")
    return _list_of(objects, children, target)


def _list_of(objects: pa.Array, children: Mapping[str, pa.Array], target: pa.DataType) -> pa.Array:
    """`objects`' lists (offsets and nulls kept) over a struct of `children` in `target`'s
    fields: cast to their types, missing ones null."""
    fields = list(target.value_type)
    length = len(objects.values)
    arrays = [
        children[f.name].cast(f.type) if f.name in children else pa.nulls(length, f.type)
        for f in fields
    ]
    struct = pa.StructArray.from_arrays(arrays, fields=fields)
    mask = objects.is_null() if objects.null_count else None
    return pa.ListArray.from_arrays(objects.offsets, struct, type=target, mask=mask)


# --- features ------------------------------------------------------------------------------


def features(schema: pa.Schema, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The `datasets.Features` of a table, in their JSON form (`Features.to_dict()`): Arrow
    types as `Value`s, lists of structs as a list of a dict, the image column an `Image`,
    and the `category` of the objects a `ClassLabel` of `names`."""
    return {field.name: _feature(field.name, field.type, names, top=True) for field in schema}


def _feature(name: str, kind: pa.DataType, names: Sequence[str] | None, top: bool = False) -> Any:
    if top and name == IMAGE_COLUMN and kind == image_arrow_type():
        return {"decode": True, "_type": "Image"}
    if name == CATEGORY and names is not None:
        return {"names": list(names), "_type": "ClassLabel"}
    if pa.types.is_struct(kind):
        return {field.name: _feature(field.name, field.type, names) for field in kind}
    if pa.types.is_list(kind):
        # A list of one feature: what every version of `datasets` reads as a list.
        return [_feature("", kind.value_type, names)]
    return {"dtype": _dtype(kind), "_type": "Value"}


def _dtype(kind: pa.DataType) -> str:
    """`datasets`' name of an Arrow type (`Value.dtype`)."""
    return _DTYPES.get(str(kind), str(kind))


_DTYPES = {"bool": "bool", "halffloat": "float16", "float": "float32", "double": "float64"}


def features_metadata(schema: pa.Schema, names: Sequence[str] | None = None) -> bytes:
    """The value of a Parquet file's ``huggingface`` key-value metadata."""
    return json.dumps(
        {"info": {"features": features(schema, names)}}, ensure_ascii=False, sort_keys=False
    ).encode("utf-8")


def _yaml_features(table_features: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Features as the card's ``dataset_info.features`` list (`Features._to_yaml_list()`)."""
    return [{"name": name, **_yaml_feature(value)} for name, value in table_features.items()]


def _yaml_feature(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        inner = _yaml_feature(value[0])
        if "struct" in inner:
            return {"list": inner["struct"]}
        return {"list": inner["dtype"]} if list(inner) == ["dtype"] else {"list": inner}
    kind = value.get("_type")
    if kind == "Value":
        return {"dtype": value["dtype"]}
    if kind == "Image":
        return {"dtype": "image"}
    if kind == "ClassLabel":
        labels = {str(index): name for index, name in enumerate(value["names"])}
        return {"dtype": {"class_label": {"names": labels}}}
    return {"struct": _yaml_features(value)}


# --- the dataset card ----------------------------------------------------------------------


def write_card(folder: str) -> list[str]:
    """Write ``FOLDER/README.md``, the dataset card of a folder of our Parquet files: a split
    per ``data/NAME`` folder (or ``split=NAME``, our older layout; or one `train` split of
    every file), the features of its first file. Returns warnings: a README that is not
    ours is left alone, and a split whose name `datasets` refuses is left out."""
    card = join(folder, CARD)
    if exists(card) and CARD_MARKER not in read_bytes(card).decode("utf-8", "replace"):
        return [f"{card} is not an annoconv dataset card: left as it is"]
    splits, warnings = _splits(folder)
    if not splits:
        return warnings
    footers = {name: [_footer(path) for path in files] for name, (_, files) in splits.items()}
    first = next(iter(footers.values()))[0]
    table_features = _file_features(first)
    label_map = _label_map_text(first)
    counts = {name: sum(footer.num_rows for footer in found) for name, found in footers.items()}
    spaces = {_coords(footer) for found in footers.values() for footer in found} - {"none"}
    front = {
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": name, "path": pattern} for name, (pattern, _) in splits.items()
                ],
            }
        ],
        "dataset_info": {"features": _yaml_features(table_features)},
        "task_categories": ["object-detection"],
        "tags": ["annoconv"],
    }
    body = _body(folder, counts, table_features, label_map, spaces)
    text = "---\n" + _yaml(front) + "---\n" + body
    write_atomic(card, text.encode("utf-8"))
    return warnings


def _splits(folder: str) -> tuple[dict[str, tuple[str, list[str]]], list[str]]:
    """{split: (its files' pattern relative to `folder`, its files)}, and warnings."""
    dataset: dict[str, tuple[str, list[str]]] = {}
    hive: dict[str, tuple[str, list[str]]] = {}
    warnings = []
    files = [path for path in list_files(folder, [".parquet"]) if not _hidden(path, folder)]
    for path in files:
        parts = _relative(path, folder).split("/")
        if len(parts) == 3 and parts[0] == DATA:
            pattern = f"{DATA}/{_glob_escaped(parts[1])}/*.parquet"
            dataset.setdefault(parts[1], (pattern, []))[1].append(path)
        elif len(parts) == 2 and _HIVE_SPLIT.match(parts[0]):
            pattern = f"{_glob_escaped(parts[0])}/*.parquet"
            hive.setdefault(parts[0][len("split=") :], (pattern, []))[1].append(path)
    # Our layout if the folder has it (an earlier layout's files beside it are a rerun's
    # leftovers, which the run removes), else the earlier one, else every file as `train`.
    found = dataset or hive or ({"train": ("**/*.parquet", files)} if files else {})
    for name in list(found):
        if not _HF_SPLIT.match(name):
            del found[name]
            warnings.append(
                f"split {name!r} is not a name Hugging Face datasets accepts (letters, "
                f"digits, _ and .): the dataset card of {folder} leaves it out"
            )
    ordered = sorted(found, key=lambda name: (_USUAL_ORDER.get(name, len(_USUAL_ORDER)), name))
    return {name: found[name] for name in ordered}, warnings


def _hidden(path: str, folder: str) -> bool:
    return any(part.startswith(".") for part in _relative(path, folder).split("/"))


def _relative(path: str, folder: str) -> str:
    from annoconv.io.fs import relative_posix

    return relative_posix(path, folder)


def _glob_escaped(name: str) -> str:
    return re.sub(r"([*?\[\]])", r"[\1]", name)


def _footer(path: str) -> pq.FileMetaData:
    from annoconv.io.fs import filesystem, is_remote

    if is_remote(path):
        fs, inner = filesystem(path)
        with fs.open(inner, "rb") as handle:
            return pq.read_metadata(handle)
    return pq.read_metadata(path)


def _file_features(footer: pq.FileMetaData) -> dict[str, Any]:
    metadata = footer.metadata or {}
    if HF_METADATA_KEY in metadata:
        found: dict[str, Any] = json.loads(metadata[HF_METADATA_KEY])["info"]["features"]
        return found
    return features(footer.schema.to_arrow_schema())


def _coords(footer: pq.FileMetaData) -> str:
    """The space of a file's coordinates (`pixel`, `normalized`, `mixed`, `none`)."""
    raw = (footer.metadata or {}).get(COORDS_KEY)
    return raw.decode("utf-8") if raw else "mixed"


def _boxes_line(spaces: set[str]) -> str:
    corners = "Boxes: `xmin`, `ymin`, `xmax`, `ymax` of `objects`, corners from the top left"
    if spaces == {"pixel"}:
        return f"{corners}, in pixels."
    if spaces == {"normalized"}:
        return f"{corners}, normalized: fractions of the image's width and height (0 to 1)."
    return f"{corners}, in pixels or normalized (0 to 1) as each row's `coords` says."


def _label_map_text(footer: pq.FileMetaData) -> str | None:
    raw = (footer.metadata or {}).get(LABEL_MAP_KEY)
    return raw.decode("utf-8") if raw else None


def _body(
    folder: str,
    counts: Mapping[str, int],
    table_features: Mapping[str, Any],
    label_map: str | None,
    spaces: set[str],
) -> str:
    from annoconv.labelmap import LabelMap
    from annoconv.version import __version__

    title = posixpath.basename(folder.replace("\\", "/").rstrip("/")) or "dataset"
    lines = [
        CARD_MARKER,
        "",
        f"# {title}",
        "",
        f"Object-detection annotations written by annoconv {__version__}: one row per image, "
        "its boxes in `objects` (a list of structs).",
        "",
        "| split | images |",
        "|---|---|",
        *(f"| {name} | {count} |" for name, count in counts.items()),
        "",
        _boxes_line(spaces),
        "",
    ]
    if label_map:
        parsed = LabelMap.parse(label_map)
        names = class_names(parsed)
        items = sorted(parsed, key=lambda item: item.id)
        lines += [
            "Classes: `objects.category` is the position in this list, `objects.label` the "
            "class as annotated; the label map id is what TFRecords and torch loaders use.",
            "",
            "| category | label map id | name |",
            "|---|---|---|",
            *(
                f"| {index} | {item.id} | {_cell(names[index])} |"
                for index, item in enumerate(items)
            ),
            "",
        ]
    image = IMAGE_COLUMN in table_features
    lines += [
        "```python",
        "from datasets import load_dataset",
        "",
        f'dataset = load_dataset("{title}")  # the path of this folder, or its Hub repository id',
        "```",
        "",
        "Images are embedded (`image`, an Image feature)."
        if image
        else "Images are not embedded: `filename` (and `image_uri`) name them.",
        "",
    ]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- a small YAML writer (the card's front matter) -----------------------------------------


def _yaml(value: Mapping[str, Any], indent: str = "") -> str:
    lines: list[str] = []
    _yaml_mapping(value, indent, lines)
    return "".join(line + "\n" for line in lines)


def _yaml_mapping(value: Mapping[str, Any], indent: str, lines: list[str]) -> None:
    for key, item in value.items():
        _yaml_entry(f"{indent}{_yaml_scalar(key)}:", item, indent, lines)


def _yaml_entry(head: str, item: Any, indent: str, lines: list[str]) -> None:
    if isinstance(item, Mapping) and item:
        lines.append(head)
        _yaml_mapping(item, indent + "  ", lines)
    elif isinstance(item, list) and item:
        lines.append(head)
        _yaml_sequence(item, indent, lines)
    else:
        lines.append(f"{head} {_yaml_scalar(item)}")


def _yaml_sequence(items: list[Any], indent: str, lines: list[str]) -> None:
    for item in items:
        if isinstance(item, Mapping) and item:
            start = len(lines)
            _yaml_mapping(item, indent + "  ", lines)
            lines[start] = f"{indent}- " + lines[start][len(indent) + 2 :]
        else:
            _yaml_entry(f"{indent}-", item, indent + "  ", lines)


def _yaml_scalar(value: Any) -> str:
    """A scalar as YAML reads it back: numbers and booleans plain, every string double-quoted
    with escapes for what YAML would not take as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return '"' + "".join(_yaml_char(char) for char in text) + '"'


def _yaml_char(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    code = ord(char)
    # Printable as YAML 1.1 and 1.2 both read it (no C0/C1 controls, line separators, BOM).
    if char.isprintable() and code not in (0xFEFF,) and not 0xD800 <= code <= 0xDFFF:
        return char
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
