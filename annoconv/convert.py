"""`convert()` and `read()`, the library's front door: a run is planned (`annoconv.plan`),
then run by an engine (`annoconv.engines`) as a pipeline job (`annoconv.pipeline`).

`import annoconv` imports this module, so everything a run needs is imported by the call
(pydantic models, pyarrow, lxml...), not by the import: `import annoconv` stays light.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from annoconv.formats import Reader, Source
    from annoconv.options import RunOptions
    from annoconv.report import Report
    from annoconv.schema import ImageRecord

__all__ = ["convert", "read"]


def read(
    source: Source,
    *,
    from_format: str | None = None,
    images: str | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> Iterator[ImageRecord]:
    """The records of `source`, lazily; raises AnnotationError on the first bad item.
    Items a selection option left out (``read_options={"classes": ...}``) are passed over."""
    from annoconv.formats import BadItem
    from annoconv.schema import ImageRecord
    from annoconv.sources import open_reader

    reader = open_reader(source, from_format=from_format, images=images, read_options=read_options)
    for item in reader:
        if isinstance(item, BadItem):
            raise item.error
        if isinstance(item, ImageRecord):
            yield item


def convert(
    source: Source | Reader,
    output: str,
    options: RunOptions | None = None,
    **keywords: Any,
) -> Report:
    """Convert `source` (a file, folder, glob or list of files, or an open Reader such as
    `merge.MergedReader`) into `output`.

    The run's settings are keyword arguments, or an `options.RunOptions` holding them (the
    keywords then change it); they are checked as a whole, with the source's and output's
    format options, before anything is read or written: a bad one raises an `OptionError`.
    `read_options` and `write_options` are the formats' own (see `annoconv formats` and
    docs/formats.md), e.g. ``write_options={"shards": 4}`` for TFRecord.

    Formats are inferred from the paths unless named. `classes` keeps only those classes'
    boxes (images left without any are dropped unless `keep_empty`; readers that can select
    faster, like Open Images', do it themselves). `sample` keeps a uniform, seeded sample of
    that many images, taken after the class selection. `split` (``{"train": 0.7, "test": 0.3}`` or
    ``"train=0.7,test=0.3"``) writes one output per split, named by `split_destination`,
    with images assigned reproducibly from `seed`; every split shares one label map, which
    `label_map_output` also saves (for datasets with class ids such as Open Images MIDs,
    ``label_map_names="labels"`` names items by label instead of id); a different map already
    there is not replaced unless `overwrite` (outputs written with it use its ids: the run
    fails before writing anything). Nor is a file or non-empty folder at `output` that does
    not read as the output's format (an earlier run's output does); an output that is the
    source, or lies inside a source folder in its format, is refused. Records without a
    pixel size get it from their image's header when the writer works in pixels. With
    ``on_error="skip"`` bad items are left out and listed in the returned report instead of
    stopping the run. Outputs appear only when the whole run succeeded.

    The operations of docs/operations.md, in the order they apply: `boxes_outside`
    (``"clip"`` or ``"drop"`` boxes reaching outside the image instead of failing),
    `classes`, `exclude_classes`, `rename` (``{"cell phone": "Mobile phone"}``; the label map
    is built after renaming), `min_size` (``w`` or ``(w, h)``) and `min_area` in the data's
    coordinate space, `drop_difficult`, `dedup` (byte-identical images by SHA-256), `sample`,
    then the split: by ratio (`split`, with `stratify` spreading every class over every
    split), or by `split_lists` (``{"train": "train.txt", ...}``, see `ops.read_split_lists`),
    or `keep_splits`: the splits the source gives its images (a Roboflow export's
    train/valid/test folders, a YOLO data.yaml's, COCO ``instances_<split>.json`` files).
    Everything left out is counted in the report with its reason.

    Any path may be an fsspec URL (``s3://``, ``memory://``, ``zip://…::s3://…``);
    `storage_options` reach every remote filesystem of the run, and that run only (for s3
    e.g. ``{"endpoint_url": ..., "anon": False}``; see `annoconv.io.fs.using_storage_options`).
    `images` may be a tar or zip archive (also remote, also with ZIPs inside a tar): it is
    streamed once and each annotation's image is taken as it passes (see annoconv.io.feed).

    `engine` runs the conversion in this process ("local"), on `workers` local processes
    ("processes") or on a Dask cluster ("dask": `scheduler` is its address or a
    `distributed.Client`; without one a LocalCluster of `workers` processes is started).
    Every engine writes the same examples and the same shard contents (docs/engines.md).
    """
    if _given(options, keywords, "engine") == "processes":
        from annoconv.forkserver import start_early

        # The workers' server imports annoconv, and the run's formats, while this process does.
        start_early(
            source if isinstance(source, (str, list, tuple)) else None,
            output,
            _given(options, keywords, "from_format"),
            _given(options, keywords, "to_format"),
        )
    from annoconv.engines import engine_runner, parallel_labels, run_job
    from annoconv.io.fs import listing_once, using_storage_options
    from annoconv.io.images import remote_paths
    from annoconv.io.lock import output_lock
    from annoconv.labelmap import similar_classes_note
    from annoconv.plan import make_plan
    from annoconv.report import OutputFile

    settings = _settings(options, keywords)
    with (
        using_storage_options(settings.storage_options),
        remote_paths(settings.allow_remote_paths),
        listing_once(),  # format inference lists the source folder: the reader reuses it
        output_lock(output),  # one run at a time writes an output
        # The engine starts before the plan: its workers get ready while the source is opened.
        engine_runner(settings.engine, settings.workers, settings.scheduler) as runner,
    ):
        plan = make_plan(
            source,
            output,
            settings,
            functools.partial(parallel_labels, runner=runner) if runner is not None else None,
        )
        report = run_job(plan.job, plan.reader, runner)
        report.warnings[:0] = plan.notes
        note = similar_classes_note(report.classes)
        if note:
            report.warnings.append(note)
        if report.images_written == 0:
            report.warnings.append(report.empty_note())
        if plan.label_map_output is not None and plan.job.label_map is not None:
            size = plan.job.label_map.write(plan.label_map_output)
            report.outputs.append(OutputFile(plan.label_map_output, size, "label_map"))
        return report


def _given(options: RunOptions | None, keywords: Mapping[str, Any], name: str) -> Any:
    """A setting as given, before the settings are checked."""
    return keywords.get(name, getattr(options, name) if options is not None else None)


def _settings(options: RunOptions | None, keywords: Mapping[str, Any]) -> RunOptions:
    from annoconv.options import RunOptions

    if options is None:
        return RunOptions.of(keywords)
    return options.replaced(**keywords) if keywords else options
