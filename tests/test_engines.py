"""The processes and Dask engines against the local one: same examples, same shard bytes.

One real `distributed.LocalCluster` (2 worker processes) serves every Dask test of the module.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import distributed
import pytest
from engine_hooks import FORMAT as KILLING_FORMAT
from engine_hooks import probe
from factories import Box, draw_image, labelimg_xml, write
from oi_factory import CLASSES, bbox_csv, random_rows, write_dataset

from annoconv import convert
from annoconv.cli import main
from annoconv.engines.processes import ProcessRunner
from annoconv.errors import AnnoconvError, AnnotationError, MissingDependencyError
from annoconv.formats import register, unregister
from annoconv.formats.base import BadItem
from annoconv.formats.voc import VocReader
from annoconv.io.archives import ArchiveError
from annoconv.io.fs import using_storage_options
from annoconv.labelmap import LabelMap
from annoconv.ops import shard_of
from annoconv.options import RunOptions
from annoconv.plan import make_plan
from annoconv.report import Report
from annoconv.schema import ImageRecord
from annoconv.tfexample import decode_example, iter_tfrecords

LABELS = ("cat", "dog", "bird")
SPLIT = "train=0.7,test=0.3"


@pytest.fixture(scope="module")
def cluster(s3_endpoint: str) -> Iterator[object]:
    """Started after the moto_server fixture, so that the workers inherit its dummy AWS
    credentials from the environment."""
    import dask

    # One retry: a task whose worker dies is run again once, then the run fails.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local_cluster,
        distributed.Client(local_cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 labelImg XMLs in two folders with their JPEG/PNG images beside them, two of them
    negatives (no boxes)."""
    root = tmp_path_factory.mktemp("voc")
    rng = random.Random(8)
    for index in range(40):
        folder = root / f"part{index % 2}"
        suffix = ".png" if index % 3 == 0 else ".jpg"
        width, height = rng.randint(40, 90), rng.randint(40, 90)
        draw_image(folder / f"img{index:03d}{suffix}", width, height)
        boxes = (
            [] if index in (5, 17) else [_box(rng, width, height) for _ in range(rng.randint(1, 4))]
        )
        write(
            folder / f"img{index:03d}.xml",
            labelimg_xml(f"img{index:03d}{suffix}", width, height, boxes),
        )
    return root


def _box(rng: random.Random, width: int, height: int) -> Box:
    x0, y0 = rng.randint(0, width // 2), rng.randint(0, height // 2)
    return Box(rng.choice(LABELS), x0, y0, rng.randint(x0 + 1, width), rng.randint(y0 + 1, height))


@pytest.fixture(scope="module")
def voc_with_bad(voc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same dataset plus an XML that is not well-formed and one naming a missing image."""
    root = tmp_path_factory.mktemp("voc_bad")
    for path in voc.rglob("*"):
        if path.is_file():
            write(root / path.relative_to(voc), path.read_bytes())
    write(root / "part0" / "broken.xml", "<annotation><filename>x.jpg</filename>")
    write(root / "part1" / "lost.xml", labelimg_xml("lost.jpg", 50, 50, [Box("cat", 1, 1, 9, 9)]))
    return root


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too: staging leftovers would show) by name."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _records(path: Path) -> list[tuple[str, list[int]]]:
    """(source_id, class ids) of every example of a TFRecord file, in order."""
    found = []
    for payload in iter_tfrecords(str(path), None):
        features = decode_example(payload)
        found.append(
            (features["image/source_id"][1][0].decode(), features["image/object/class/label"][1])
        )
    return found


def _same_report(one: Report, other: Report) -> None:
    for name in ("images_read", "boxes_read", "images_written", "boxes_written"):
        assert getattr(one, name) == getattr(other, name), name
    assert one.classes == other.classes
    assert sorted(one.skipped, key=str) == sorted(other.skipped, key=str)
    assert [(o.path, o.size) for o in one.outputs] == [(o.path, o.size) for o in other.outputs]
    assert other.balanced


def _moved(report: Report, old: str, new: str) -> Report:
    """The report with its outputs' paths moved from folder `old` to `new`."""
    outputs = [type(o)(o.path.replace(old, new), o.size, o.kind) for o in report.outputs]
    return Report(**{**report.__dict__, "outputs": outputs})


def _convert_to(folder: Path, source: Path, name: str, **options: object) -> Report:
    return convert(str(source), str(folder / name), **options)  # type: ignore[arg-type]


def test_dask_voc_to_tfrecord_splits_gives_the_local_shards_byte_for_byte(
    voc: Path, cluster: object, tmp_path: Path
) -> None:
    options = {"split": SPLIT, "write_options": {"shards": 3}, "label_map_output": None}
    local = _convert_to(tmp_path / "local", voc, "voc.record", **options)
    dask = _convert_to(
        tmp_path / "dask", voc, "voc.record", engine="dask", scheduler=cluster, **options
    )
    expected, got = _files(tmp_path / "local"), _files(tmp_path / "dask")
    assert (
        sorted(expected)
        == sorted(got)
        == sorted(
            f"voc-{split}.record-0000{shard}-of-00003"
            for split in ("train", "test")
            for shard in range(3)
        )
    )
    assert got == expected
    # Record for record: the 28/12 split of the 40 images, each image once, in the same order.
    records = {name: _records(tmp_path / "dask" / name) for name in got}
    keys = [key for found in records.values() for key, _ in found]
    assert sorted(keys) == sorted(f"part{i % 2}/img{i:03d}.xml" for i in range(40))
    assert sum(len(found) for name, found in records.items() if "train" in name) == 28
    for name, found in records.items():
        assert found == _records(tmp_path / "local" / name)
    local_paths = [o.path.replace("/local/", "/dask/") for o in local.outputs]
    assert [o.path for o in dask.outputs] == local_paths
    assert (dask.images_written, dask.boxes_written, dask.classes) == (
        local.images_written,
        local.boxes_written,
        local.classes,
    )
    assert dask.images_read == 40 and dask.balanced


def test_dask_writes_one_shard_in_parts_tensorflow_reads(
    voc: Path, cluster: object, tmp_path: Path
) -> None:
    """One shard, two workers: Dask tasks write parts of it, joined into the local bytes."""
    import tensorflow as tf

    local = _convert_to(tmp_path / "local", voc, "one.record", label_map_output=None)
    dask = _convert_to(
        tmp_path / "dask",
        voc,
        "one.record",
        engine="dask",
        scheduler=cluster,
        label_map_output=None,
    )
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")
    assert not [text for text in dask.warnings if "task(s) for" in text]  # several tasks ran
    _same_report(local, _moved(dask, "/dask/", "/local/"))
    shard = tmp_path / "dask" / "one.record-00000-of-00001"
    assert sum(1 for _ in tf.data.TFRecordDataset(str(shard))) == 40


def test_tensorflow_reads_the_dask_shards(voc: Path, cluster: object, tmp_path: Path) -> None:
    import tensorflow as tf

    _convert_to(
        tmp_path, voc, "voc.record", engine="dask", scheduler=cluster, write_options={"shards": 2}
    )
    shards = sorted(str(p) for p in tmp_path.glob("voc.record-*"))
    spec = {
        "image/source_id": tf.io.FixedLenFeature((), tf.string),
        "image/encoded": tf.io.FixedLenFeature((), tf.string),
        "image/width": tf.io.FixedLenFeature((), tf.int64),
    }
    seen = {}
    for raw in tf.data.TFRecordDataset(shards):
        example = tf.io.parse_single_example(raw, spec)
        image = tf.io.decode_image(example["image/encoded"])
        seen[example["image/source_id"].numpy().decode()] = int(image.shape[1])
        assert int(example["image/width"]) == int(image.shape[1])
    assert len(seen) == 40


def test_processes_engine_with_skipped_items_matches_local(
    voc_with_bad: Path, tmp_path: Path
) -> None:
    # First-seen label ids: the workers' survey must keep the reading order.
    options = {"write_options": {"shards": 4}, "on_error": "skip", "label_map_order": "first-seen"}
    runs = {}
    for name, engine in (("local", {}), ("procs", {"engine": "processes", "workers": 2})):
        maps = {"label_map_output": str(tmp_path / name / "label_map.pbtxt")}
        runs[name] = _convert_to(
            tmp_path / name, voc_with_bad, "out.record", **options, **maps, **engine
        )
    local, procs = runs["local"], runs["procs"]
    assert _files(tmp_path / "procs") == _files(tmp_path / "local")
    assert b"cat" in (tmp_path / "procs" / "label_map.pbtxt").read_bytes()
    _same_report(
        local,
        Report(
            **{
                **procs.__dict__,
                "outputs": [
                    type(o)(o.path.replace("/procs/", "/local/"), o.size, o.kind)
                    for o in procs.outputs
                ],
            }
        ),
    )
    assert procs.images_read == 42 and procs.images_skipped == 2
    assert {item.source.rsplit("/", 1)[-1] for item in procs.skipped} == {"broken.xml", "lost.xml"}


def test_a_bad_item_fails_the_dask_run_and_publishes_nothing(
    voc_with_bad: Path, cluster: object, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(AnnotationError, match=r"(broken|lost)\.xml"):
        _convert_to(
            out,
            voc_with_bad,
            "x.record",
            engine="dask",
            scheduler=cluster,
            write_options={"shards": 4},
        )
    assert _files(out) == {}


def test_csv_output_is_joined_from_parts_in_the_local_order(
    voc: Path, cluster: object, tmp_path: Path
) -> None:
    local = _convert_to(tmp_path / "local", voc, "boxes.csv", split=SPLIT)
    dask = _convert_to(
        tmp_path / "dask", voc, "boxes.csv", split=SPLIT, engine="dask", scheduler=cluster
    )
    procs = _convert_to(
        tmp_path / "procs", voc, "boxes.csv", split=SPLIT, engine="processes", workers=2
    )
    assert _files(tmp_path / "dask") == _files(tmp_path / "procs") == _files(tmp_path / "local")
    header = b"filename,width,height,class,xmin,ymin,xmax,ymax\n"
    train = (tmp_path / "dask" / "boxes-train.csv").read_bytes()
    assert train.startswith(header) and train.count(b"filename,") == 1
    assert dask.boxes_written == procs.boxes_written == local.boxes_written > 40


@pytest.fixture(scope="module")
def open_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return write_dataset(tmp_path_factory.mktemp("oi"), random_rows(random.Random(4), 24))


@pytest.mark.parametrize("engine", ["dask", "processes"])
def test_open_images_to_tfrecord_and_csv_match_local(
    open_images: tuple[Path, Path, Path], cluster: object, tmp_path: Path, engine: str
) -> None:
    bbox, descriptions, images = open_images
    options = {"images": str(images), "read_options": {"class_descriptions": str(descriptions)}}
    engine_options = {
        "engine": engine,
        **({"scheduler": cluster} if engine == "dask" else {"workers": 2}),
    }
    for name, extra in (("oi.record", {"write_options": {"shards": 3}}), ("oi.csv", {})):
        local = _convert_to(tmp_path / "local", bbox, name, **options, **extra)
        other = _convert_to(tmp_path / engine, bbox, name, **options, **extra, **engine_options)
        assert (other.images_written, other.boxes_written, other.classes) == (
            local.images_written,
            local.boxes_written,
            local.classes,
        )
        assert set(other.classes) <= set(CLASSES.values())
    assert _files(tmp_path / engine) == _files(tmp_path / "local")
    assert len(_files(tmp_path / "local")) == 4


@pytest.fixture
def killing_format() -> Iterator[None]:
    """The TFRecord writer that kills its worker, registered for one test only."""
    register(KILLING_FORMAT, replace=True)
    try:
        yield
    finally:
        unregister(KILLING_FORMAT.name)


def test_a_killed_dask_worker_is_retried_and_the_output_is_unchanged(
    voc: Path, cluster: object, tmp_path: Path, killing_format: None
) -> None:
    marker = tmp_path / "killed-once"
    _convert_to(tmp_path / "local", voc, "voc.record", write_options={"shards": 2})
    report = _convert_to(
        tmp_path / "dask",
        voc,
        "voc.record",
        to_format="tfrecord-killing",
        engine="dask",
        scheduler=cluster,
        write_options={"shards": 2, "kill_marker": str(marker)},
    )
    assert marker.exists()  # a worker did die mid-shard
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")
    assert report.images_written == 40 and report.balanced


def test_a_task_that_keeps_killing_workers_fails_the_run_with_nothing_published(
    voc: Path, cluster: object, tmp_path: Path, killing_format: None
) -> None:
    options = {"shards": 2, "kill_marker": str(tmp_path / "m"), "kill_always": True}
    with pytest.raises(AnnoconvError, match="killed every Dask worker"):
        _convert_to(
            tmp_path / "out",
            voc,
            "voc.record",
            to_format="tfrecord-killing",
            engine="dask",
            scheduler=cluster,
            write_options=options,
        )
    assert _files(tmp_path / "out") == {}


def test_a_dead_worker_process_fails_the_processes_run_with_nothing_published(
    voc: Path, tmp_path: Path, killing_format: None
) -> None:
    options = {"shards": 2, "kill_marker": str(tmp_path / "m")}
    with pytest.raises(AnnoconvError, match="worker process died"):
        _convert_to(
            tmp_path / "out",
            voc,
            "voc.record",
            to_format="tfrecord-killing",
            engine="processes",
            workers=2,
            write_options=options,
        )
    assert _files(tmp_path / "out") == {}


@pytest.mark.parametrize(
    ("options", "tasks"),
    [
        ({}, 6),  # one shard: parts of it, runs of files, 2 per worker
        ({"split": SPLIT, "seed": 4}, 6),  # two shard files, each joined from 6 parts
        ({"write_options": {"shards": 2}, "label_map": "given"}, 6),  # one pass, by hash
        ({"write_options": {"compression": "GZIP"}}, 1),  # a gzip stream: whole shards only
        ({"write_options": {"shards": 3}}, 3),  # as many shards as workers: whole shards
    ],
)
def test_fewer_shards_than_workers_are_written_in_parts_joined_in_order(
    voc_with_bad: Path, tmp_path: Path, options: dict[str, Any], tasks: int
) -> None:
    """With fewer shards than workers, each task writes its part of every shard from a run
    of files; the parts joined in task order are the local engine's shards, byte for byte."""
    if options.get("label_map") == "given":
        given = (
            "item { name: 'dog' id: 1 }\nitem { name: 'cat' id: 2 }\nitem { name: 'bird' id: 3 }\n"
        )
        options = {**options, "label_map": str(write(tmp_path / "given.pbtxt", given))}
    runs = {}
    for name, engine in (("local", {}), ("procs", {"engine": "processes", "workers": 3})):
        runs[name] = _convert_to(
            tmp_path / name, voc_with_bad, "out.record", on_error="skip", **options, **engine
        )
    assert _files(tmp_path / "procs") == _files(tmp_path / "local")
    _same_report(runs["local"], _moved(runs["procs"], "/procs/", "/local/"))
    written = runs["procs"].images_written
    assert written == 40 and runs["procs"].images_skipped == 2
    many = [text for text in runs["procs"].warnings if "task(s) for 3 workers" in text]
    assert bool(many) == (tasks < 3)


def test_processes_workers_see_the_drivers_folder_environment_and_path(
    voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers forked from a forkserver started by an earlier run take the driver's working
    folder, environment (credentials) and import path as they are when the run starts, as
    spawned ones would: relative paths convert as in the local engine."""
    with ProcessRunner(2) as runner:  # the forkserver runs from here on (if not already)
        runner.map(probe, ["ANNOCONV_PROBE"])
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("ANNOCONV_PROBE", "set after the server started")
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    with ProcessRunner(2) as runner:
        seen = runner.map(probe, ["ANNOCONV_PROBE"] * 4)
    for folder, value, path in seen:
        assert (folder, value) == (str(tmp_path / "work"), "set after the server started")
        assert path[: len(sys.path)] == sys.path
    shutil.copytree(voc, "voc")
    for name, engine in (("local", {}), ("procs", {"engine": "processes", "workers": 2})):
        convert("voc", f"{name}/out.record", write_options={"shards": 2}, **engine)  # type: ignore[arg-type]
    assert _files(Path("procs")) == _files(Path("local"))


@pytest.fixture
def no_survey(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that must read its source once: any survey fails it."""

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a one-pass run surveyed its source")

    monkeypatch.setattr("annoconv.plan.survey", refused)


def test_a_given_label_map_converts_in_one_pass_on_every_engine(
    voc_with_bad: Path, tmp_path: Path, no_survey: None
) -> None:
    """With the label map given, VOC -> TFRecord reads the annotations once: no survey, each
    image in the shard of its key's hash (`ops.shard_of`) in reading order, the same bytes
    on both engines; a record with a class the map lacks is a bad item naming its file."""
    given = write(
        tmp_path / "given.pbtxt", "item { name: 'dog' id: 1 }\nitem { name: 'cat' id: 7 }\n"
    )
    options = {"write_options": {"shards": 3}, "on_error": "skip", "label_map": str(given)}
    runs = {}
    for name, engine in (("local", {}), ("procs", {"engine": "processes", "workers": 2})):
        runs[name] = _convert_to(tmp_path / name, voc_with_bad, "out.record", **options, **engine)
    assert _files(tmp_path / "procs") == _files(tmp_path / "local")
    local = runs["local"]
    birds = [item for item in local.skipped if "'bird'" in item.reason]
    assert birds and all(
        item.reason.startswith(f"class(es) 'bird' not in the label map {given}") for item in birds
    )
    assert local.images_skipped == len(birds) + 2  # and broken.xml, lost.xml
    reader_order = [key for key, _ in VocReader(str(voc_with_bad)).labels()]
    for shard in range(3):
        path = tmp_path / "local" / f"out.record-0000{shard}-of-00003"
        keys = [key for key, _ in _records(path)]
        assert keys == [k for k in reader_order if k in keys]  # reading order
        assert {shard_of(key, 3) for key in keys} == {shard}
        for _key, ids in _records(path):
            assert set(ids) <= {1, 7}
    written = sum(len(_records(p)) for p in (tmp_path / "local").glob("out.record-*"))
    assert written == local.images_written == 42 - local.images_skipped
    _same_report(local, _moved(runs["procs"], "/procs/", "/local/"))


class DeclaringVocReader(VocReader):
    """VOC whose source declares its classes with ids, as a COCO file's categories do."""

    def declared_label_map(self) -> LabelMap:
        return LabelMap.parse("item { name: 'bird' id: 3 }\nitem { name: 'cat' id: 9 }")


def test_a_source_declaring_its_classes_converts_in_one_pass(
    voc: Path, tmp_path: Path, no_survey: None
) -> None:
    """No map given, but the source declares one: one pass, its ids, undeclared classes bad."""
    out = tmp_path / "x.record"
    report = convert(DeclaringVocReader(str(voc)), str(out), on_error="skip")
    ids = {label for _key, labels in _records(Path(f"{out}-00000-of-00001")) for label in labels}
    assert ids == {3, 9}
    dogs = [key for key, labels in VocReader(str(voc)).labels() if "dog" in labels]
    assert report.images_skipped == len(dogs) > 0
    assert {item.reason.split(";")[0] for item in report.skipped} == {
        "class(es) 'dog' not in the label map"
    }


def test_a_class_missing_from_a_given_map_fails_a_one_pass_run_naming_its_file(
    voc: Path, tmp_path: Path, no_survey: None, capsys: pytest.CaptureFixture[str]
) -> None:
    given = write(
        tmp_path / "given.pbtxt", "item { name: 'dog' id: 1 }\nitem { name: 'cat' id: 2 }\n"
    )
    out = tmp_path / "out" / "x.record"
    assert main(["xml2tfrecord", str(voc), str(out), "--label-map", str(given), "-q"]) == 1
    error = capsys.readouterr().err
    assert f"not in the label map {given}" in error and "'bird'" in error
    assert str(voc) in error and ".xml" in error  # names the annotation
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    "more",
    [
        {"write_options": {"shard_size": "20KB"}},
        {"split": SPLIT},
        {"sample": 10},
        {"extend_label_map": True},
    ],
)
def test_a_given_label_map_still_surveys_what_needs_the_whole_dataset(
    voc: Path, tmp_path: Path, more: dict[str, Any]
) -> None:
    """Shard sizes, splits, samples and extending the map need the first pass: the shards
    are dealt round-robin in hash order as without a map (sizes within one image)."""
    given = write(tmp_path / "given.pbtxt", "item { name: 'dog' id: 1 }\n")
    extend = {} if more.get("extend_label_map") else {"extend_label_map": True}
    options = {"write_options": {"shards": 2}, **more, "label_map": str(given), **extend}
    plan = make_plan(str(voc), str(tmp_path / "x.record"), RunOptions.of(options))
    assert plan.job.weights is not None and not plan.job.check_classes
    assert [item.name for item in plan.job.label_map or []] == ["dog", "bird", "cat"]


def test_cli_engine_options(voc: Path, tmp_path: Path) -> None:
    base = ["xml2tfrecord", str(voc), "--shards", "2", "-q"]
    assert main([*base[:2], str(tmp_path / "local" / "v.record"), *base[2:]]) == 0
    args = [
        *base[:2],
        str(tmp_path / "procs" / "v.record"),
        *base[2:],
        "--engine",
        "processes",
        "--workers",
        "2",
    ]
    assert main(args) == 0
    assert _files(tmp_path / "procs") == _files(tmp_path / "local")
    assert (
        main(
            ["convert", str(voc), str(tmp_path / "x.csv"), "--scheduler", "tcp://127.0.0.1:1", "-q"]
        )
        == 2
    )


def test_engine_usage_errors(voc: Path, tmp_path: Path) -> None:
    with pytest.raises(AnnoconvError, match="engine: Input should be"):
        convert(str(voc), str(tmp_path / "x.csv"), engine="spark")  # type: ignore[arg-type]
    with pytest.raises(AnnoconvError, match="workers"):
        convert(str(voc), str(tmp_path / "x.csv"), workers=2)
    with pytest.raises(AnnoconvError, match="running scheduler"):
        convert(str(voc), str(tmp_path / "x.csv"), engine="dask", workers=2, scheduler="tcp://h:1")
    assert not list(tmp_path.iterdir())


def test_dask_stays_optional(voc: Path, tmp_path: Path) -> None:
    """`import annoconv` and local runs never import Dask; without it, engine 'dask' says
    what to install."""
    code = (
        "import sys; import annoconv\n"
        f"annoconv.convert({str(voc)!r}, {str(tmp_path / 'o.record')!r})\n"
        "assert not any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules), 'dask'\n"
        "sys.modules['distributed'] = None\n"
        "from annoconv.errors import MissingDependencyError\n"
        "try:\n"
        f"    annoconv.convert({str(voc)!r}, {str(tmp_path / 'p.record')!r}, engine='dask')\n"
        "except MissingDependencyError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'annoconv[dask]'" in done.stdout
    assert not list(tmp_path.glob("p.record*")) and not list(tmp_path.glob(".p.record*"))
    assert MissingDependencyError.__mro__[1].__name__ == "FormatError"


def test_dask_reads_and_writes_s3_like_the_local_engine(
    voc: Path, cluster: object, s3: Any, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    s3.put(str(voc), f"{s3_bucket}/voc", recursive=True)
    options = {"storage_options": s3_storage_options, "write_options": {"shards": 3}}
    source = f"s3://{s3_bucket}/voc"
    local = convert(source, f"s3://{s3_bucket}/local/voc.record", **options)  # type: ignore[arg-type]
    dask = convert(
        source, f"s3://{s3_bucket}/dask/voc.record", engine="dask", scheduler=cluster, **options
    )  # type: ignore[arg-type]
    s3.invalidate_cache()
    names = [f"voc.record-0000{shard}-of-00003" for shard in range(3)]
    assert sorted(path.rsplit("/", 1)[1] for path in s3.find(f"{s3_bucket}/dask")) == names
    for name in names:
        assert s3.cat(f"{s3_bucket}/dask/{name}") == s3.cat(f"{s3_bucket}/local/{name}")
    assert [o.path for o in dask.outputs] == [
        o.path.replace("/local/", "/dask/") for o in local.outputs
    ]
    assert dask.images_written == local.images_written == 40


def _parquet_rows(paths: list[Any]) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return [row for path in paths for row in pq.read_table(path).to_pylist()]


def test_open_images_to_parquet_on_dask_matches_local_on_disk_and_s3(
    open_images: tuple[Path, Path, Path],
    cluster: object,
    tmp_path: Path,
    s3: Any,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
) -> None:
    bbox, descriptions, _images = open_images
    options: dict[str, Any] = {"read_options": {"class_descriptions": str(descriptions)}}
    split = {"split": SPLIT, "seed": 3}
    local = _convert_to(tmp_path / "local", bbox, "oi.parquet", **options, **split)
    dask = _convert_to(
        tmp_path / "dask", bbox, "oi.parquet", engine="dask", scheduler=cluster, **options, **split
    )
    # The dataset card: written once every split is published, on every engine.
    assert [out.kind for out in dask.outputs].count("dataset_card") == 1
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")
    parts = sorted(str(p) for p in (tmp_path / "dask").rglob("*.parquet") if p.is_file())
    assert [p.rsplit("/", 2)[1] for p in parts] == ["test", "train"]
    rows = _parquet_rows(parts)
    assert len(rows) == dask.images_written == local.images_written == 24
    assert [o.path for o in dask.outputs] == [
        o.path.replace("/local/", "/dask/") for o in local.outputs
    ]

    remote = {**options, "storage_options": s3_storage_options}
    convert(str(bbox), f"s3://{s3_bucket}/local/oi.parquet", **remote)
    convert(
        str(bbox), f"s3://{s3_bucket}/dask/oi.parquet", engine="dask", scheduler=cluster, **remote
    )
    s3.invalidate_cache()
    assert s3.find(f"{s3_bucket}/dask") == [f"{s3_bucket}/dask/oi.parquet"]
    assert s3.cat(f"{s3_bucket}/dask/oi.parquet") == s3.cat(f"{s3_bucket}/local/oi.parquet")
    with s3.open(f"{s3_bucket}/dask/oi.parquet") as handle:
        assert sorted(r["key"] for r in _parquet_rows([handle])) == sorted(r["key"] for r in rows)


def test_report_merge_adds_counts_and_keeps_one_entry_per_drop_reason() -> None:
    from annoconv.report import OutputFile, SkippedItem

    one, two = Report(), Report()
    for report, images in ((one, 3), (two, 5)):
        report.images_read, report.boxes_read = images + 2, images * 2 + 4
        report.images_written, report.boxes_written = images, images * 2
        report.drop("not in --classes", 1, 3)
        report.skipped.append(SkippedItem(f"bad{images}.xml", "malformed XML", 1, 1))
        report.classes.update({"cat": images})
        report.outputs.append(OutputFile(f"out-{images}", images, "tfrecord"))
    one.merge(two)
    assert (one.images_read, one.boxes_read, one.images_written, one.boxes_written) == (
        12,
        24,
        8,
        16,
    )
    assert one.skipped[0] == SkippedItem("(selection)", "not in --classes", 2, 6)
    assert [item.source for item in one.skipped[1:]] == ["bad3.xml", "bad5.xml"]
    assert one.classes == {"cat": 8} and [o.path for o in one.outputs] == ["out-3", "out-5"]
    assert one.balanced


def test_operations_and_dedup_on_the_processes_engine_match_local(
    voc: Path, tmp_path: Path
) -> None:
    """Filters count what they drop in every task, dedup's groups are reported once."""
    source = tmp_path / "src"
    for path in voc.rglob("*"):
        if path.is_file():
            write(source / path.relative_to(voc), path.read_bytes())
    copy = (source / "part0" / "img000.xml").read_text().replace("img000.", "copy000.")
    write(source / "part1" / "copy000.xml", copy)
    suffix = next((source / "part0").glob("img000.*g")).suffix
    write(
        source / "part1" / f"copy000{suffix}", (source / "part0" / f"img000{suffix}").read_bytes()
    )
    options: dict[str, Any] = {
        "dedup": True,
        "exclude_classes": ["bird"],
        "rename": {"cat": "feline"},
        "split": SPLIT,
        "write_options": {"shards": 2},
    }
    runs = {}
    for name, engine in (("local", {}), ("procs", {"engine": "processes", "workers": 2})):
        runs[name] = _convert_to(tmp_path / name, source, "ops.record", **options, **engine)
    local, procs = runs["local"], runs["procs"]
    assert _files(tmp_path / "procs") == _files(tmp_path / "local")
    assert len(procs.duplicates) == len(local.duplicates) == 1
    assert procs.duplicates[0].keys == local.duplicates[0].keys
    assert sorted(procs.skipped, key=str) == sorted(local.skipped, key=str)
    assert (
        procs.classes == local.classes and "feline" in procs.classes and "bird" not in procs.classes
    )
    assert procs.adjusted == local.adjusted and procs.balanced


def test_images_from_an_archive_on_the_processes_engine_match_local(tmp_path: Path) -> None:
    # Every patent folder holds a 00000002 page: only the folders tell the members apart, so
    # the archive must be matched against all annotations, not one shard's.
    examples = Path(__file__).resolve().parent.parent / "examples" / "uspto"
    archive = tmp_path / "pages.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(examples / "images", arcname="grant_yb2/images")
    options: dict[str, Any] = {
        "images": str(archive),
        "split": SPLIT,
        "write_options": {"shards": 2},
    }
    source = examples / "annotations"
    local = _convert_to(tmp_path / "local", source, "pages.record", **options)
    parallel = _convert_to(
        tmp_path / "parallel", source, "pages.record", engine="processes", workers=2, **options
    )
    assert local.images_written == 12
    assert _files(tmp_path / "parallel") == _files(tmp_path / "local")
    assert (parallel.images_written, parallel.boxes_written) == (12, 26)
    assert parallel.classes == local.classes and parallel.balanced


@pytest.mark.parametrize("engine", ["processes", "dask"])
def test_an_ambiguous_archive_image_is_one_skipped_record_on_the_parallel_engines(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    # The archive run is one task, which starts over without the ambiguous records as the
    # local engine does; under fail the task's error reaches the caller intact.
    from test_archives import ambiguity, ambiguous_pages, assert_ambiguous_skipped

    ann, archive = ambiguous_pages(tmp_path)
    options: dict[str, Any] = {"images": str(archive), "write_options": {"shards": 2}}
    on: dict[str, Any] = {"engine": engine, "workers": 2}
    if engine == "dask":
        on = {"engine": engine, "scheduler": request.getfixturevalue("cluster")}
    local = _convert_to(tmp_path / "local", ann, "p.record", on_error="skip", **options)
    (tmp_path / "failed").mkdir()
    with pytest.raises(ArchiveError) as error:
        _convert_to(tmp_path / "failed", ann, "p.record", **on, **options)
    assert str(error.value) == f"{ann / '280.xml'}: {ambiguity('280', 'a', 'b')}"
    assert _files(tmp_path / "failed") == {}
    parallel = _convert_to(tmp_path / engine, ann, "p.record", on_error="skip", **on, **options)
    assert_ambiguous_skipped(parallel, ann)
    assert parallel.skipped == local.skipped
    shards = sorted((tmp_path / engine).glob("p.record-*"))
    assert sorted(source for shard in shards for source, _ in _records(shard)) == [
        "281.xml",
        "282.xml",
    ]
    assert _files(tmp_path / engine) == _files(tmp_path / "local")


# --- big CSV inputs cut into byte ranges --------------------------------------------------------


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Byte ranges of a few hundred bytes, so that the small test files are cut (the cuts are
    made by the driver, this process)."""
    import annoconv.io.ranges

    monkeypatch.setattr(annoconv.io.ranges, "MIN_PART_BYTES", 600)


@pytest.fixture(scope="module")
def big_csvs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A sorted Open Images bbox CSV (120 images) and our CSV (90 images, rows by filename)."""
    root = tmp_path_factory.mktemp("ranges")
    bbox = write(root / "bbox.csv", bbox_csv(random_rows(random.Random(11), 120)))
    rng = random.Random(12)
    lines = ["filename,width,height,class,xmin,ymin,xmax,ymax"]
    for index in range(90):
        for _ in range(rng.randint(0 if index % 9 else 1, 4) or 1):
            x0, y0 = rng.randint(0, 40), rng.randint(0, 30)
            label = rng.choice(LABELS)
            lines.append(f"i{index:03d}.jpg,100,80,{label},{x0},{y0},{x0 + 9},{y0 + 7}")
    ours = write(root / "boxes.csv", "\n".join(lines) + "\n")
    return Path(bbox), ours


def _dataset_rows(folder: Path) -> list[dict[str, Any]]:
    """The rows of a Parquet file, or of a folder's part files in part order."""
    paths = [folder] if folder.is_file() else sorted(folder.glob("part-*.parquet"))
    return _parquet_rows(paths)


def _label_maps(paths: list[Path]) -> set[bytes]:
    import pyarrow.parquet as pq

    return {pq.read_metadata(path).metadata[b"annoconv.label_map"] for path in paths}


def test_byte_ranges_cut_between_images_and_read_what_the_whole_reader_does(
    big_csvs: tuple[Path, Path], small_parts: None, tmp_path: Path
) -> None:
    from annoconv.formats.base import Reader
    from annoconv.sources import open_reader

    def keys(reader: Reader) -> list[tuple[str, int]]:
        return [(r.key, len(r.objects)) for r in reader if isinstance(r, ImageRecord)]

    for source in big_csvs:
        whole = open_reader(str(source))
        parts = whole.byte_ranges(4)
        assert parts is not None and len(parts) == 4
        read = [keys(part) for part in parts]
        assert [pair for part in read for pair in part] == keys(whole)
        assert all(read)  # no empty part; and no image in two parts:
        assert len({key for part in read for key, _ in part}) == sum(map(len, read))
    # Cells that may hold a newline, or an image's rows apart: not cut.
    text = big_csvs[1].read_text()
    quoted = write(tmp_path / "quoted.csv", text.replace("i005.jpg", '"i005.jpg"'))
    apart = write(tmp_path / "apart.csv", text + "i000.jpg,100,80,cat,1,1,5,5\n")
    assert open_reader(str(quoted)).byte_ranges(4) is None
    assert open_reader(str(apart)).byte_ranges(4) is None


@pytest.mark.parametrize("engine", ["dask", "processes"])
def test_a_sorted_open_images_csv_is_cut_into_parquet_parts_holding_the_local_rows(
    big_csvs: tuple[Path, Path], small_parts: None, cluster: object, tmp_path: Path, engine: str
) -> None:
    bbox, _ours = big_csvs
    engine_options = {"scheduler": cluster} if engine == "dask" else {"workers": 2}
    local = _convert_to(tmp_path / "local", bbox, "oi.parquet")
    other = _convert_to(tmp_path / engine, bbox, "oi.parquet", engine=engine, **engine_options)
    parts = sorted((tmp_path / engine / "oi.parquet").glob("part-*.parquet"))
    assert len(parts) == 4 and [o.path for o in other.outputs] == [str(p) for p in parts]
    assert _dataset_rows(tmp_path / engine / "oi.parquet") == _dataset_rows(
        tmp_path / "local" / "oi.parquet"
    )
    assert _label_maps(parts) == _label_maps([tmp_path / "local" / "oi.parquet"])
    assert (other.images_written, other.boxes_written, other.classes) == (
        local.images_written,
        local.boxes_written,
        local.classes,
    )
    assert local.images_written == 120 and other.balanced
    # With a split: each split's folder holds the parts, in the local split's order.
    split = {"split": SPLIT, "seed": 5}
    _convert_to(tmp_path / "local", bbox, "oi-split.parquet", **split)
    parted = _convert_to(
        tmp_path / engine, bbox, "oi-split.parquet", engine=engine, **engine_options, **split
    )
    folders = [Path(o.path).parent.name for o in parted.outputs if o.kind == "parquet"]
    assert folders == ["train"] * 4 + ["test"] * 4  # the local order of splits
    for name in ("train", "test"):
        ours = tmp_path / engine / "oi-split.parquet" / "data" / name
        theirs = tmp_path / "local" / "oi-split.parquet" / "data" / name
        assert len(list(ours.glob("part-*.parquet"))) == 4
        assert _dataset_rows(ours) == _dataset_rows(theirs / "part-00000.parquet")
        assert len(_label_maps([*ours.glob("*.parquet"), theirs / "part-00000.parquet"])) == 1
    # The dataset card, written once the parts are published, as the local run's.
    assert [out.kind for out in parted.outputs].count("dataset_card") == 1
    card = (tmp_path / engine / "oi-split.parquet" / "README.md").read_text()
    assert card == (tmp_path / "local" / "oi-split.parquet" / "README.md").read_text()


def test_our_csv_cut_into_ranges_joins_to_the_local_bytes_on_dask_and_processes(
    big_csvs: tuple[Path, Path], small_parts: None, cluster: object, tmp_path: Path
) -> None:
    _bbox, ours = big_csvs
    local = _convert_to(tmp_path / "local", ours, "out.csv")
    dask = _convert_to(tmp_path / "dask", ours, "out.csv", engine="dask", scheduler=cluster)
    procs = _convert_to(tmp_path / "procs", ours, "out.csv", engine="processes", workers=2)
    assert _files(tmp_path / "dask") == _files(tmp_path / "procs") == _files(tmp_path / "local")
    assert (tmp_path / "local" / "out.csv").read_bytes() == ours.read_bytes()
    assert dask.images_written == procs.images_written == local.images_written == 90
    assert dask.boxes_written == local.boxes_written


def test_an_unsorted_open_images_csv_falls_back_to_one_task(
    big_csvs: tuple[Path, Path], small_parts: None, tmp_path: Path
) -> None:
    bbox, _ours = big_csvs
    lines = bbox.read_text().splitlines(keepends=True)
    # Two early images swapped: inside the first range, so only its task can tell.
    ids = [line.split(",", 1)[0] for line in lines[1:]]
    second, third = sorted(set(ids))[1:3]
    rows_of = {key: [line for line in lines[1:] if line.startswith(key + ",")] for key in ids}
    start = lines.index(rows_of[second][0])
    swapped = rows_of[third] + rows_of[second]
    lines[start : start + len(swapped)] = swapped
    unsorted = str(write(tmp_path / "unsorted.csv", "".join(lines)))
    label_map = tmp_path / "map.pbtxt"
    local = convert(unsorted, str(tmp_path / "local.parquet"), label_map_output=str(label_map))
    options: dict[str, Any] = {"label_map": str(label_map), "engine": "processes", "workers": 2}
    procs = convert(unsorted, str(tmp_path / "procs.parquet"), **options)
    assert (tmp_path / "procs.parquet").is_file()  # one task, one file, as the local engine
    assert _dataset_rows(tmp_path / "procs.parquet") == _dataset_rows(tmp_path / "local.parquet")
    assert procs.images_written == local.images_written == 120


def test_dask_cuts_csvs_on_s3_like_the_local_engine(
    big_csvs: tuple[Path, Path],
    small_parts: None,
    cluster: object,
    s3: Any,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
) -> None:
    bbox, ours = big_csvs
    s3.put(str(bbox), f"{s3_bucket}/in/bbox.csv")
    s3.put(str(ours), f"{s3_bucket}/in/boxes.csv")
    base = f"s3://{s3_bucket}"
    options: dict[str, Any] = {"storage_options": s3_storage_options}
    dask: dict[str, Any] = {"engine": "dask", "scheduler": cluster, **options}
    oi = {"from_format": "openimages"}
    local = convert(f"{base}/in/bbox.csv", f"{base}/local/oi.parquet", **oi, **options)
    parted = convert(f"{base}/in/bbox.csv", f"{base}/dask/oi.parquet", **oi, **dask)
    convert(f"{base}/in/boxes.csv", f"{base}/local/out.csv", **options)
    convert(f"{base}/in/boxes.csv", f"{base}/dask/out.csv", **dask)
    s3.invalidate_cache()
    found = sorted(s3.find(f"{s3_bucket}/dask"))
    names = [f"{s3_bucket}/dask/oi.parquet/part-0000{n}.parquet" for n in range(4)]
    assert found == sorted([*names, f"{s3_bucket}/dask/out.csv"])
    handles = [s3.open(name) for name in names]
    with s3.open(f"{s3_bucket}/local/oi.parquet") as whole:
        assert _parquet_rows(handles) == _parquet_rows([whole])
    assert s3.cat(f"{s3_bucket}/dask/out.csv") == s3.cat(f"{s3_bucket}/local/out.csv")
    assert parted.images_written == local.images_written == 120


def test_parquet_parts_replace_an_earlier_output_file_or_parts(
    big_csvs: tuple[Path, Path], small_parts: None, cluster: object, tmp_path: Path
) -> None:
    bbox, _ours = big_csvs
    out = tmp_path / "oi.parquet"
    local = convert(str(bbox), str(out))  # a file where the parts' folder goes
    dask: dict[str, Any] = {"engine": "dask", "scheduler": cluster}
    convert(str(bbox), str(out), **dask)
    expected = _dataset_rows(out)
    assert len(expected) == local.images_written == 120
    write(out / "part-00009.parquet", b"an earlier run's part")
    convert(str(bbox), str(out), **dask)
    assert sorted(p.name for p in out.iterdir()) == [f"part-0000{n}.parquet" for n in range(4)]
    assert _dataset_rows(out) == expected


#: (index of a line in the file, the bad line put there, the error it gives after the file name).
BadRow = tuple[int, str, str]


def _open_images_bad_rows(bbox: Path) -> list[BadRow]:
    """A bad row in the first, a middle and the last range (of 4) of the Open Images CSV,
    numbered from the first row after the header, as the local engine does."""
    lines = bbox.read_text().splitlines()
    at = (5, len(lines) // 2, len(lines) - 3)
    cells = [lines[n].split(",") for n in at]
    cells[0][4:6] = ["0.9", "0.1"]
    cells[1][4] = "abc"
    cells[2][10] = "2"
    problems = (
        "XMin 0.9 > XMax 0.1",
        "XMin 'abc' is not a number",
        "IsGroupOf '2' is not 1, 0 or -1",
    )
    return [
        (n, ",".join(row), f"row {n}: image {row[0]}: {problem}")
        for n, row, problem in zip(at, cells, problems, strict=True)
    ]


def _our_bad_rows(ours: Path) -> list[BadRow]:
    """A bad row in the first, a middle and the last range (of 4) of our CSV, numbered as
    lines of the file (the header is line 1)."""
    lines = ours.read_text().splitlines()
    names = [line.split(",", 1)[0] for line in lines]
    middle = next(n for n in range(len(lines) // 2, len(lines)) if names[n] == names[n - 1])
    last = next(n for n in range(len(lines) - 2, 0, -1) if names[n] != names[n - 1])
    first_cells, last_cells = lines[5].split(","), lines[last].split(",")
    first_cells[4], last_cells[6] = "abc", "200"
    return [
        (5, ",".join(first_cells), "line 6: xmin: expected a number, got 'abc'"),
        (
            middle,
            lines[middle].replace(",100,80,", ",101,80,", 1),
            f"line {middle + 1}: width: '101' differs from '100' on line "
            f"{names.index(names[middle]) + 1} (all rows of one image must agree)",
        ),
        (
            last,
            ",".join(last_cells),
            f"line {last + 1}: object[1] ({last_cells[3]!r}): xmax 200 is outside [0, 100] "
            "(image 100x80)",
        ),
    ]


def _with_rows(
    source: Path, path: Path, bad: list[BadRow], line_end: str = "\n"
) -> tuple[Path, list[str]]:
    """`source` with the bad rows put in, written with `line_end`; and their errors."""
    lines = source.read_text().splitlines()
    for at, line, _error in bad:
        lines[at] = line
    written = write(path, line_end.join(lines) + line_end)
    return written, [f"{written}: {error}" for _at, _line, error in bad]


def _errors(items: Iterable[object]) -> list[str]:
    return [str(item.error) for item in items if isinstance(item, BadItem)]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("kind", ["openimages", "ours"])
def test_range_readers_name_the_files_rows_as_the_whole_reader(
    big_csvs: tuple[Path, Path], small_parts: None, tmp_path: Path, kind: str, line_end: str
) -> None:
    from annoconv.sources import open_reader

    bbox, ours = big_csvs
    source = bbox if kind == "openimages" else ours
    bad_rows = _open_images_bad_rows(bbox) if kind == "openimages" else _our_bad_rows(ours)
    bad, expected = _with_rows(source, tmp_path / "bad.csv", bad_rows, line_end)
    whole = open_reader(str(bad))
    assert _errors(whole) == expected
    parts = whole.byte_ranges(4)
    assert parts is not None and len(parts) == 4
    records = [_errors(part) for part in parts]
    assert [_errors(part.batches() or []) for part in parts] == records
    assert records[0] == expected[:1] and records[-1] == expected[-1:]
    assert [error for errors in records for error in errors] == expected


def test_a_range_of_our_csv_names_the_files_line_of_a_decoding_error(
    big_csvs: tuple[Path, Path], small_parts: None, tmp_path: Path
) -> None:
    from annoconv.sources import open_reader

    _bbox, ours = big_csvs
    lines = ours.read_bytes().split(b"\n")
    at = len(lines) - 3
    lines[at] = lines[at].replace(b",100,80,", b",100,80,\xe9", 1)
    bad = write(tmp_path / "latin.csv", b"\n".join(lines))
    position = lines[at].index(b"\xe9") + 1
    expected = [
        f"{bad}: line {at + 1}: not valid UTF-8 (byte 0xe9 at position {position} of the line)"
    ]
    whole = open_reader(str(bad))
    assert _errors(whole) == expected
    parts = whole.byte_ranges(4)
    assert parts is not None and len(parts) == 4
    assert [_errors(part) for part in parts] == [[], [], [], expected]


def test_the_rows_before_a_range_are_counted_as_pyarrow_numbers_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.csv as pacsv

    import annoconv.io.ranges as ranges

    # CRLF, a lone CR, blank lines (not rows to pyarrow) and a BOM in the header.
    text = b"\xef\xbb\xbfa,b\r\n1,2\r\n\r\n3,4\r5,6\n\n\n7,8\r\n\r\r\n9,10\r\n11,12\n"
    path = str(write(tmp_path / "rows.csv", text))
    starts = [n + 1 for n, byte in enumerate(text) if byte == ord("\n")]
    expected = [pacsv.read_csv(io.BytesIO(text[:start])).num_rows for start in starts]
    assert expected == [0, 1, 1, 3, 3, 3, 4, 4, 5, 6]
    for chunk in (1, 2, 3, 5, 1 << 20):  # CRLFs and runs of blank lines across chunks
        monkeypatch.setattr(ranges, "COUNT_CHUNK", chunk)
        assert [ranges.rows_before(path, start) for start in starts] == expected, chunk


def test_a_range_reader_on_s3_names_the_files_row(
    big_csvs: tuple[Path, Path],
    small_parts: None,
    tmp_path: Path,
    s3: Any,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
) -> None:
    from annoconv.sources import open_reader

    bbox, _ours = big_csvs
    bad, expected = _with_rows(bbox, tmp_path / "bad.csv", _open_images_bad_rows(bbox)[1:])
    uri = f"s3://{s3_bucket}/in/bad.csv"
    s3.put(str(bad), uri)
    with using_storage_options(s3_storage_options):
        parts = open_reader(uri).byte_ranges(4)
        assert parts is not None and len(parts) == 4
        errors = [error for part in parts[1:] for error in _errors(part)]
    assert errors == [error.replace(str(bad), uri) for error in expected]


def _skipped(report: Report) -> list[tuple[str, str]]:
    return sorted((item.source, item.reason) for item in report.skipped)


def test_bad_rows_in_ranges_are_skipped_and_counted_as_by_the_local_engine(
    big_csvs: tuple[Path, Path], small_parts: None, cluster: object, tmp_path: Path
) -> None:
    bbox, ours = big_csvs
    bad, errors = _with_rows(bbox, tmp_path / "bad.csv", _open_images_bad_rows(bbox))
    local = convert(str(bad), str(tmp_path / "local.parquet"), on_error="skip")
    dask = convert(
        str(bad), str(tmp_path / "dask.parquet"), on_error="skip", engine="dask", scheduler=cluster
    )
    assert len(list((tmp_path / "dask.parquet").glob("part-*.parquet"))) == 4
    assert _dataset_rows(tmp_path / "dask.parquet") == _dataset_rows(tmp_path / "local.parquet")
    parts = sorted((tmp_path / "dask.parquet").glob("part-*.parquet"))
    assert _label_maps(parts) == _label_maps([tmp_path / "local.parquet"])
    assert _skipped(dask) == _skipped(local)
    assert sorted(f"{source}: {reason}" for source, reason in _skipped(local)) == sorted(errors)
    for name in ("images_read", "boxes_read", "images_written", "boxes_written"):
        assert getattr(dask, name) == getattr(local, name), name
    assert dask.balanced and local.images_written == 117
    # Our CSV, on Dask too.
    bad, errors = _with_rows(ours, tmp_path / "bad-ours.csv", _our_bad_rows(ours))
    local = convert(str(bad), str(tmp_path / "local.csv"), on_error="skip")
    dask = convert(
        str(bad), str(tmp_path / "dask.csv"), on_error="skip", engine="dask", scheduler=cluster
    )
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert _skipped(dask) == _skipped(local)
    assert sorted(f"{source}: {reason}" for source, reason in _skipped(local)) == sorted(errors)
    assert dask.images_written == local.images_written == 87


def test_a_bad_row_in_the_last_range_fails_the_run_with_the_local_message(
    big_csvs: tuple[Path, Path], small_parts: None, tmp_path: Path
) -> None:
    bbox, ours = big_csvs
    lines = bbox.read_text().splitlines()
    at = len(lines) - 4
    fields = lines[at].split(",")[0] + ",xclick"  # 2 fields, not 13
    parse_error = f"row {at}: malformed CSV: Expected 13 columns, got 2: {fields}"
    for name, source, bad_row in (
        ("checks.csv", bbox, _open_images_bad_rows(bbox)[-1]),
        ("fields.csv", bbox, (at, fields, parse_error)),
        ("ours.csv", ours, _our_bad_rows(ours)[-1]),
    ):
        bad, expected = _with_rows(source, tmp_path / name, [bad_row])
        with pytest.raises(AnnotationError) as local:
            convert(str(bad), str(tmp_path / "local" / "out.parquet"))
        with pytest.raises(AnnotationError) as procs:
            convert(
                str(bad), str(tmp_path / "procs" / "out.parquet"), engine="processes", workers=2
            )
        assert str(procs.value) == str(local.value) == expected[0]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("engine", ["processes", "dask"])
def test_parallel_runs_show_their_tasks_finishing_on_a_terminal(
    voc: Path, cluster: object, tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    where: dict[str, Any] = {"scheduler": cluster} if engine == "dask" else {"workers": 2}
    report = convert(
        str(voc),
        str(tmp_path / "voc.record"),
        write_options={"shards": 3},
        engine=engine,  # type: ignore[arg-type]
        progress=True,
        **where,
    )
    assert report.images_written == 40
    shown = terminal.getvalue()
    assert "tasks: 100%" in shown and "3/3" in shown
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    convert(str(voc), str(tmp_path / "q.record"), engine=engine, **where)  # type: ignore[arg-type]
    assert quiet.getvalue() == ""
