"""The plan: what a run will do, decided and checked before anything is written.

`make_plan` opens the source, finds the output's format, checks every option against the
format's option models and the combinations that cannot work (an `OptionError` of one line),
runs the survey when the run needs one (label map, splits, sample, shards, dedup) and settles
the label map and each image's split. What it settles is a `pipeline.Job`, which an engine runs.

A run whose label map is known up front (given, or declared by the source) and that needs
nothing else of the whole dataset reads its source once: no survey (`_one_pass`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from annoconv.errors import AnnoconvError, OptionError
from annoconv.filters import ClassSelection, build_filters, selection_check
from annoconv.formats import BadItem, Format, Reader, Source, Writer, get_format
from annoconv.formats.base import Capabilities, SingleFileWriter
from annoconv.io.archives import is_archive
from annoconv.io.fs import (
    GLOB_CHARS,
    comparable_path,
    current_storage_options,
    dirname,
    exists,
    is_dir,
    join,
    list_files,
)
from annoconv.labelmap import LabelMap, LabelMapItem, LabelOrder
from annoconv.listed import WithListedImages, find_listed
from annoconv.ops import assign_from_lists, assign_splits, assign_stratified, read_split_lists
from annoconv.options import RunOptions, checked, given_fields
from annoconv.pipeline import Job
from annoconv.sources import open_reader, output_format, selects_classes, source_format
from annoconv.survey import Survey, survey

#: Reads `reader.labels()` on an engine's workers; None when it cannot (see `engines`).
ParallelLabels = Callable[[Reader], Iterable[tuple[str, list[str]]] | None]


@dataclass(frozen=True)
class Plan:
    """A run, settled: the job for an engine, the reader it reads, and where the run's label
    map is saved besides (`label_map_output`)."""

    job: Job
    reader: Reader
    label_map_output: str | None
    #: What the plan found worth saying (a class selection partly absent, an empty split),
    #: for the run report's warnings.
    notes: tuple[str, ...] = ()


def make_plan(
    source: Source | Reader,
    output: str,
    options: RunOptions,
    parallel_labels: ParallelLabels | None = None,
) -> Plan:
    """Decide and check the run of `options` from `source` to `output` (see module)."""
    fmt = output_format(output, options.to_format)
    writer_class = _writer_class(fmt)
    write_options = given_fields(checked(fmt.write_options, options.write_options, _writer(fmt)))
    # An archive of images is streamed by `feed_images`; readers and writers see no folder.
    archive, images = _images(options.images)
    _check_combinations(options, write_options, archive)
    if issubclass(writer_class, SingleFileWriter) and (
        output.endswith(("/", os.sep)) or is_dir(output)
    ):
        raise OptionError(f"{output}: names a folder; name the file to write")
    if not (options.overwrite or writer_class.capabilities.sharded or _splits(options)):
        check_replaced_file(output, fmt)
    reader, from_format, read_options, selects = _open_source(source, options, images)
    if not isinstance(source, Reader):
        # A shard prefix read and written keeps the input when the shard count differs
        # (a set of other names, see `stale_outputs`): not refused here.
        same = not writer_class.capabilities.sharded
        check_output_apart([source], output, inside=from_format == fmt.name, same=same)
    # Each pass gets its own filters (they count what they change).
    make_filters = partial(
        build_filters,
        classes=None if selects else options.classes,
        exclude_classes=options.exclude_classes,
        rename=options.rename,
        min_size=options.min_size,
        min_area=options.min_area,
        drop_difficult=options.drop_difficult,
        boxes_outside=options.boxes_outside,
        keep_empty=options.keep_empty,
    )
    capabilities = writer_class.capabilities
    needs_map = capabilities.needs_label_map or options.label_map_output is not None
    weigh = (
        writer_class.weigher(images=images, **write_options) if capabilities.needs_keys else None
    )
    one_pass = _one_pass(options, capabilities, reader, weigh is not None)
    facts = None
    transforms = make_filters()
    # A selection the reader does not make itself is checked against the data up front.
    selection = next((step for step in transforms if isinstance(step, ClassSelection)), None)
    surveyed = one_pass is None and _needs_survey(options, needs_map, capabilities.needs_keys)
    if surveyed or selection is not None:
        facts = survey(
            reader,
            weigh,
            sample=options.sample,
            seed=options.seed,
            transforms=transforms,
            dedup=options.dedup,
            keep_labels=bool(options.split and options.stratify),
            keep_splits=options.keep_splits,
            label_pairs=partial(parallel_labels, reader) if parallel_labels else None,
        )
    notes = _selection_notes(options.classes, selection)
    label_map = one_pass or settle_label_map(
        facts.counts if facts else Counter(),
        options.label_map,
        needed=needs_map or (facts is not None and capabilities.label_map_from_survey),
        extend=options.extend_label_map,
        order=options.label_map_order,
        class_ids=reader.class_ids() if options.label_map_names == "ids" else None,
        declared=reader.declared_label_map,
        classes_changed=bool(options.classes or options.exclude_classes or options.rename),
    )
    assignment = _assign(facts, options) if facts is not None else None
    weights = facts.weights if facts is not None else None
    if options.split_lists and assignment is not None and weights is not None:
        # Images the lists name without an annotation: negatives, or reported as missing.
        split_of = read_split_lists(options.split_lists)
        listed = find_listed(reader, split_of, options.split_lists, images, archive)
        if listed.records or listed.dropped:
            reader = source = WithListedImages(reader, listed)
            assignment = {**assignment, **listed.splits}
            weights = {**weights, **{r.key: weigh(r) if weigh else 1 for r in listed.records}}
            notes += listed.notes
    split_names = _split_names(options, assignment)
    job = Job(
        source=source,
        from_format=from_format,
        images=images,
        archive=archive,
        storage_options=current_storage_options(),
        allow_remote_paths=options.allow_remote_paths,
        read_options=read_options,
        output=output,
        writer_class=writer_class,
        write_options=write_options,
        label_map=label_map,
        weights=weights,
        splits=assignment,
        split_names=split_names,
        by_lists=bool(options.split_lists),
        make_filters=make_filters,
        dedup=facts.dedup if facts is not None else None,
        sample=options.sample,
        on_error=options.on_error,
        progress=options.progress,
        check_classes=one_pass is not None,
    )
    notes += _empty_splits(split_names, assignment)
    label_map_output = options.label_map_output if label_map is not None else None
    if label_map_output is not None and label_map is not None and not options.overwrite:
        check_label_map_output(label_map_output, label_map)
    return Plan(job, reader, label_map_output, tuple(notes))


def check_label_map_output(path: str, label_map: LabelMap) -> None:
    """Refuse to replace a different label map at `path`: the outputs an earlier run wrote
    beside it hold its ids, and would no longer match (`overwrite` replaces it)."""
    if not exists(path):
        return
    try:
        there = LabelMap.read(path)
    except (AnnoconvError, OSError):
        there = None
    if there is not None and set(there) == set(label_map):
        return
    what = f"another label map ({len(there)} classes)" if there is not None else "another file"
    raise OptionError(
        f"{path} holds {what} than this run's ({len(label_map)} classes), which outputs "
        "written with it use: give --overwrite (overwrite=True) to replace it, or write "
        "into another folder"
    )


def _selection_notes(classes: Sequence[str] | None, selection: ClassSelection | None) -> list[str]:
    """Raises an OptionError when none of the selected classes is in the data; the warning
    naming those that are not, when others are."""
    if selection is None or classes is None:
        return []
    error, warning = selection_check(classes, selection.seen)
    if error is not None:
        raise OptionError(error)
    return [warning] if warning is not None else []


def _empty_splits(names: Sequence[str], assignment: Mapping[str, str] | None) -> list[str]:
    """A warning for each split no image went to (its output holds no examples)."""
    if assignment is None:
        return []
    sizes = Counter(assignment.values())
    return [
        f"split {name!r} has no images: its output holds no examples"
        for name in names
        if not sizes[name]
    ]


def settle_label_map(
    counts: Counter[str],
    label_map: str | LabelMap | None,
    *,
    needed: bool,
    extend: bool = False,
    order: LabelOrder = "sorted",
    class_ids: Mapping[str, str] | None = None,
    declared: Callable[[], LabelMap | None] | None = None,
    classes_changed: bool = False,
) -> LabelMap | None:
    """The one label map a run uses, settled before anything is written.

    A given map must cover every class in the data (or is extended when asked); without one,
    a writer that assigns ids gets the map the source declares (`declared`, a COCO file's
    categories: all of them, or, when the run selects or renames classes, those it writes,
    ids kept, new names after them), else a map built from the data. Where the dataset has
    its own class ids (`class_ids`, Open Images MIDs), they become the items' `name` with the
    labels as their `display_name`, the OD API's convention.
    """
    if label_map is not None:
        given = LabelMap.read(label_map) if isinstance(label_map, str) else label_map
        return given.check_covers(counts, extend=extend)
    if not needed:
        return None
    own = declared() if declared is not None else None
    if own is not None:
        if classes_changed:
            own = LabelMap(item for item in own if item.name in counts)
        return own.check_covers(counts, extend=True)
    built = LabelMap.from_classes(counts, order=order)
    if not class_ids:
        return built
    return LabelMap(
        LabelMapItem(class_ids[item.name], item.id, item.name) if item.name in class_ids else item
        for item in built
    )


def label_map_beside(
    output: str, to_format: str | None, label_map: str | None, *, extend: bool = False
) -> str | None:
    """Where the command line saves a run's label map: beside the outputs of a writer whose
    outputs are used with one (`Capabilities.label_map_file`), unless a map is given as it is."""
    writer_class = _writer_class(output_format(output, to_format))
    if not writer_class.capabilities.label_map_file or (label_map and not extend):
        return None
    return join(dirname(output) or ".", "label_map.pbtxt")


def _writer_class(fmt: Format) -> type[Writer]:
    assert fmt.writer is not None  # output_format() gives writable formats only
    return fmt.writer


def _writer(fmt: Format) -> str:
    return f"the {fmt.name} writer"


def _images(images: str | None) -> tuple[str | None, str | None]:
    """(the archive of images, the images folder): one of them, or neither."""
    if images is not None and is_archive(images):
        return images, None
    return None, images


def check_output_apart(
    sources: Iterable[Source], output: str, *, inside: bool = True, same: bool = True
) -> None:
    """Refuse an output that is a file the run reads or, with `inside` (the output is in the
    source's format), lies inside a folder it reads: the run would write over the user's
    annotations with its own (a VOC folder converted into itself), and the next run of the
    same command would read the output as input. (A TFRecord written into a COCO dataset's
    folder is not read as COCO; files there are protected by `check_replaced_file`.)
    `same=False` lets an output equal a source: a shard prefix, whose files are others."""
    target = comparable_path(output)
    paths = (path for given in sources for path in ([given] if isinstance(given, str) else given))
    for source in paths:
        if any(char in source for char in GLOB_CHARS):
            continue  # a pattern names what it reads; the output is published after reading
        read = comparable_path(source)
        if same and target == read:
            raise OptionError(
                f"the output {output} is the source {source}: the run would replace what it "
                "reads; write the output to another path"
            )
        if inside and _inside(target, read) and is_dir(source):
            raise OptionError(
                f"the output {output} is inside the source folder {source}, which the run "
                "reads (and a next run would read the output as input); write it outside"
            )


def check_replaced_file(output: str, fmt: Format) -> None:
    """Refuse to write over a file or into a non-empty folder at `output` that does not read
    as `fmt`: an earlier run's output does, and is replaced by a rerun; a file of the user's
    that only shares the name (an Open Images CSV at `labels.csv`, notes at `boxes.txt`) or
    a folder of other files (a COCO output into a folder holding another `instances.json`,
    a YOLO dataset into a folder of documents) is not, without `overwrite`."""
    if fmt.reader is None or not exists(output):
        return
    folder = is_dir(output)
    if folder and not list_files(output):
        return  # an empty folder
    if not _reads_as(output, fmt, folder):
        raise OptionError(
            f"{output} exists and does not read as {fmt.name} (an earlier run's output "
            "would): give --overwrite (overwrite=True) to write over it, or write to another "
            "path"
        )


def _reads_as(output: str, fmt: Format, folder: bool) -> bool:
    """Whether what is at `output` holds `fmt`'s data: the format's quick look, or its first
    record (a file may hold none: a CSV header; a folder of files none of which is read
    holds something else)."""
    if fmt.recognizes is not None:
        return fmt.recognizes(output)
    try:
        first = next(iter(open_reader(output, from_format=fmt.name)), None)
    except (AnnoconvError, OSError):
        return False
    return not isinstance(first, BadItem) and not (folder and first is None)


def _splits(options: RunOptions) -> bool:
    """Whether the run writes one output per split (none at the output path itself)."""
    return bool(options.split or options.keep_splits or options.split_lists)


def _inside(path: str, folder: str) -> bool:
    """Whether `path` lies below `folder` (both spelled by `comparable_path`)."""
    return any(path.startswith(folder.rstrip(sep) + sep) for sep in {"/", os.sep})


def _check_combinations(
    options: RunOptions, write_options: Mapping[str, Any], archive: str | None
) -> None:
    """Refuse what the option models alone cannot see, before any pass."""
    if archive is not None and write_options.get("shard_size") is not None:
        raise OptionError(
            f"shard_size needs the image sizes before writing; {archive} is an archive read "
            "once while writing: give the number of shards instead"
        )


def _open_source(
    source: Source | Reader, options: RunOptions, images: str | None
) -> tuple[Reader, str | None, dict[str, Any], bool]:
    """The run's reader, the source format, the reader options, and whether the reader
    selects the classes itself (readers that can, like Open Images', are given the selection)."""
    read_options = dict(options.read_options)
    if isinstance(source, Reader):
        return source, options.from_format, read_options, False
    # Inferred once: inference may open the source to sniff it.
    from_format = source_format(source, options.from_format)
    selects = options.classes is not None and selects_classes(get_format(from_format))
    if selects:
        read_options.update(classes=list(options.classes or ()), keep_empty=options.keep_empty)
    reader = open_reader(source, from_format=from_format, images=images, read_options=read_options)
    return reader, from_format, read_options, selects


def _one_pass(
    options: RunOptions, capabilities: Capabilities, reader: Reader, weighs: bool
) -> LabelMap | None:
    """The label map of a run that reads its source once, without a survey, or None when
    the run needs one: the map is known before any data is read (given, and not to be
    extended; or declared by the source, no class selected, dropped or renamed), and nothing
    else needs the whole dataset first: no split, sample or dedup, and a sharding writer
    deals shards by its hash rule (`Capabilities.shards_by_hash`) and weighs nothing
    (`shard_size`). Writers of Arrow batches keep the survey: their fast path takes no
    per-record check. Each record's classes are checked against the map as it is written
    (see `pipeline.KnownClasses`)."""
    if (
        options.extend_label_map
        or options.dedup
        or options.split
        or options.split_lists
        or options.keep_splits
        or options.sample is not None
        or capabilities.takes_batches
        or (capabilities.needs_keys and (weighs or not capabilities.shards_by_hash))
    ):
        return None
    if options.label_map is not None:
        given = options.label_map
        return LabelMap.read(given) if isinstance(given, str) else given
    changes_classes = options.rename or options.classes or options.exclude_classes
    if changes_classes or not (capabilities.needs_label_map or options.label_map_output):
        return None  # (a declared map is then cut to the classes written: see settle_label_map)
    return reader.declared_label_map()


def _needs_survey(options: RunOptions, needs_map: bool, needs_keys: bool) -> bool:
    """Whether the run reads its source once before writing: to settle the label map, the
    keys and shards, a given map's coverage, duplicates, the sample or the splits."""
    return any(
        (
            needs_map,
            needs_keys,
            options.label_map is not None,
            options.dedup,
            options.split,
            options.split_lists,
            options.keep_splits,
            options.sample is not None,
        )
    )


def _assign(facts: Survey, options: RunOptions) -> dict[str, str] | None:
    """Each surveyed image's split (by ratio, stratified or not, or from lists), or None
    when the run has no split."""
    if options.split:
        if options.stratify:
            return assign_stratified(facts.labels, options.split, options.seed)
        return assign_splits(facts.weights, options.split, options.seed)
    if options.split_lists:
        return assign_from_lists(facts.weights, read_split_lists(options.split_lists))
    if options.keep_splits:
        return _source_splits(facts)
    return None


def _source_splits(facts: Survey) -> dict[str, str]:
    """Each image's split as the source gives it (`keep_splits`); every image needs one."""
    missing = [key for key in facts.weights if not facts.splits.get(key)]
    if missing:
        some = ", ".join(repr(key) for key in missing[:3])
        raise OptionError(
            f"--keep-splits: {len(missing)} of {len(facts.weights)} images have no split in "
            f"the source ({some}{', ...' if len(missing) > 3 else ''}); "
            "split them with --split or --split-lists instead"
        )
    return {key: str(facts.splits[key]) for key in facts.weights}


def _split_names(options: RunOptions, assignment: Mapping[str, str] | None) -> tuple[str, ...]:
    """The run's splits, in the order outputs are made: as given, or the source's own in
    the order they first appear."""
    if assignment is None:
        return ()
    if options.keep_splits:
        return tuple(dict.fromkeys(assignment.values()))
    return tuple(options.split or options.split_lists or {})
