"""Interrupted runs: the command is killed with SIGKILL at random points of a conversion, then
run again.

After every kill, each file under a final name is complete (byte for byte the file an
uninterrupted run writes, and every TFRecord shard passes annoconv's full CRC check), and the
set of final files is absent or complete. The one exception is a kill inside the last instant of
a run, between the renames that publish its files: then the files present are still complete,
and an incomplete shard set is refused by annoconv's reader, naming the missing shards. A rerun
into the same folder completes and writes byte-identical output.

Kills land at a seeded random time of the start-up (before any output is opened), right as
the run's first temporary file appears (so one surely lands mid-write), and at seeded random
times over the writing phase as an uninterrupted run measured it; the assertions hold for any
kill point, so timing changes which case a kill exercises, never the verdict.

A `Sink` says where outputs go and how to list and read them: a local folder, or a prefix of a
bucket on the tests' moto_server (kills there land at random times over a whole run, as S3
shows no temporary object to wait for).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from factories import labelimg_xml, write
from PIL import Image

from annoconv.errors import AnnotationError
from annoconv.formats.tfrecord import TFRecordReader, shard_name, tfrecord_files
from annoconv.io.fs import using_storage_options
from annoconv.labelmap import LabelMap
from annoconv.tfexample import (
    TFRecordWriter,
    bytes_feature,
    decode_example,
    encode_example,
    iter_tfrecords,
)

pytestmark = pytest.mark.timeout(120)

IMAGES = 600
SHARDS = 4
#: Kills at random points of the writing phase (from the first temporary file to the end).
KILLS_WHILE_WRITING = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VOC XMLs with a small, distinct JPEG beside each: enough that a run takes a while."""
    root = tmp_path_factory.mktemp("voc")
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    for index in range(IMAGES):
        name = f"img{index:05d}"
        # Bytes after the JPEG's end marker make every image (and its SHA-256) distinct.
        (root / f"{name}.jpg").write_bytes(jpeg + index.to_bytes(4, "big"))
        boxes = [("cat" if index % 3 else "dog", 1, 2, 10, 12), ("bird", 3, 3, 20, 20)]
        write(root / f"{name}.xml", labelimg_xml(f"{name}.jpg", 32, 24, boxes))
    return root


# --- where outputs go ---------------------------------------------------------------------------


@dataclass
class LocalSink:
    """Outputs in a local folder. Temporary files are hidden `.NAME.partial-*` siblings."""

    root: Path

    def destination(self, name: str) -> str:
        return str(self.root / name)

    def options(self) -> list[str]:
        return []

    def reading(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def final_files(self) -> dict[str, bytes]:
        if not self.root.exists():
            return {}
        return {p.name: p.read_bytes() for p in self.root.iterdir() if not p.name.startswith(".")}

    def temporary_files(self) -> list[str]:
        if not self.root.exists():
            return []
        return [p.name for p in self.root.iterdir() if ".partial-" in p.name]


@dataclass
class S3Sink:
    """Outputs under a prefix of a bucket on the tests' moto_server. Objects are committed
    when their upload completes, so an unfinished output is no object at all."""

    s3: Any  # an s3fs filesystem on the server
    root: str  # bucket/prefix
    endpoint: str

    def destination(self, name: str) -> str:
        return f"s3://{self.root}/{name}"

    def options(self) -> list[str]:
        return ["--storage-option", f"endpoint_url={self.endpoint}"]

    def reading(self) -> contextlib.AbstractContextManager[None]:
        return using_storage_options({"endpoint_url": self.endpoint})

    def final_files(self) -> dict[str, bytes]:
        self.s3.invalidate_cache()
        if not self.s3.exists(self.root):
            return {}
        paths = self.s3.ls(self.root, detail=False)
        return {
            path.rsplit("/", 1)[1]: self.s3.cat_file(path)
            for path in paths
            if not path.rsplit("/", 1)[1].startswith(".")
        }

    def temporary_files(self) -> list[str]:
        self.s3.invalidate_cache()
        if not self.s3.exists(self.root):
            return []
        names = [path.rsplit("/", 1)[1] for path in self.s3.ls(self.root, detail=False)]
        return [name for name in names if name.startswith(".")]


Sink = LocalSink | S3Sink


# --- the conversions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    name: str
    #: The command's arguments after `annoconv`, given the dataset and the sink.
    arguments: Callable[[Path, Sink], list[str]]
    #: Checks one file found under a final name (its name and bytes) with annoconv's reader.
    check_file: Callable[[Sink, str, bytes], None]
    #: Reads a shard set (prefix) the way users do; None for single-file outputs.
    shard_prefix: str | None = None


def check_shard(sink: Sink, name: str, data: bytes) -> None:
    if name == "label_map.pbtxt":
        assert LabelMap.parse(data.decode("utf-8")).names == ("bird", "cat", "dog")
        return
    with sink.reading():
        payloads = list(iter_tfrecords(sink.destination(name), verify=True))  # every CRC
    assert payloads, name
    for payload in payloads:
        assert decode_example(payload)["image/object/class/text"][1]


def check_csv(sink: Sink, name: str, data: bytes) -> None:
    rows = data.decode("utf-8").splitlines()
    assert len(rows) == 1 + 2 * IMAGES and rows[0].startswith("filename,width,height")


def check_parquet(sink: Sink, name: str, data: bytes) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == IMAGES and table.column("key")[IMAGES - 1].as_py() == "img00599.xml"
    boxes = table.column("objects").combine_chunks().flatten()
    assert len(boxes) == 2 * IMAGES and boxes.field("label")[1].as_py() == "bird"


CONVERSIONS = [
    Conversion(
        "voc-to-tfrecord-sharded",
        lambda data, sink: [
            "xml2tfrecord", str(data), sink.destination("train.record"),
            "--shards", str(SHARDS),
        ],
        check_shard,
        shard_prefix="train.record",
    ),
    Conversion(
        "voc-to-csv",
        lambda data, sink: [
            "xml2csv", str(data), sink.destination("boxes.csv"),
        ],
        check_csv,
    ),
    Conversion(
        "voc-to-parquet-with-images",
        lambda data, sink: [
            "convert", str(data), sink.destination("dataset.parquet"), "--embed-images",
        ],
        check_parquet,
    ),
]  # fmt: skip


def start(arguments: list[str], report: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "annoconv", *arguments, "-q"]
    if report is not None:
        command += ["--report-json", str(report)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[bytes]) -> float:
    """Seconds until the run ends successfully."""
    started = time.perf_counter()
    _, err = process.communicate(timeout=90)
    assert process.returncode == 0, err.decode()
    return time.perf_counter() - started


# --- the verdict after a kill -------------------------------------------------------------------


@dataclass
class Outcomes:
    states: list[str] = field(default_factory=list)
    #: Kills that left temporary files behind: proof they landed mid-write.
    mid_write: int = 0


def verdict(conversion: Conversion, sink: Sink, reference: dict[str, bytes]) -> str:
    found = sink.final_files()
    for name, data in found.items():
        assert name in reference, f"unexpected final file {name}"
        conversion.check_file(sink, name, data)
        assert data == reference[name], f"{name} is under its final name but not complete"
    if not found:
        return "absent"
    if found.keys() == reference.keys():
        return "complete"
    if conversion.shard_prefix is not None:
        shards = [name for name in reference if name.startswith(f"{conversion.shard_prefix}-")]
        if not set(shards) <= found.keys() and set(shards) & found.keys():
            with sink.reading(), pytest.raises(AnnotationError, match="incomplete shard set"):
                list(TFRecordReader(sink.destination(conversion.shard_prefix)))
    return "publishing"


@pytest.mark.parametrize("conversion", CONVERSIONS, ids=lambda c: c.name)
def test_kill_9_at_random_points_then_rerun(
    conversion: Conversion, dataset: Path, tmp_path: Path
) -> None:
    reference_sink = LocalSink(tmp_path / "reference")
    report_path = tmp_path / "report.json"
    started = time.perf_counter()
    process = start(conversion.arguments(dataset, reference_sink), report_path)
    wait_for_temporary_file(reference_sink, process)
    startup = time.perf_counter() - started
    writing = finish(process)
    reference = reference_sink.final_files()
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["images"] == {"read": IMAGES, "written": IMAGES, "skipped": 0}
    assert report["boxes"] == {"read": 2 * IMAGES, "written": 2 * IMAGES, "skipped": 0}

    # (seconds after the first temporary file appears, or after the start when None)
    rng = random.Random(f"kill-{conversion.name}")
    kills: list[tuple[float | None, float]] = [(None, rng.uniform(0, startup)), (0.0, 0.0)]
    kills += [(rng.uniform(0, writing), 0.0) for _ in range(KILLS_WHILE_WRITING)]
    outcomes = Outcomes()
    for attempt, (after_temporary, after_start) in enumerate(kills):
        sink = LocalSink(tmp_path / f"attempt-{attempt}")
        process = start(conversion.arguments(dataset, sink))
        if after_temporary is None:
            time.sleep(after_start)
        else:
            wait_for_temporary_file(sink, process)
            time.sleep(after_temporary)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        outcomes.mid_write += bool(sink.temporary_files())
        outcomes.states.append(verdict(conversion, sink, reference))

        finish(start(conversion.arguments(dataset, sink), report_path))  # the rerun
        assert sink.final_files() == reference
        rerun = json.loads(report_path.read_text(encoding="utf-8"))
        assert rerun["images"] == report["images"] and rerun["boxes"] == report["boxes"]
        # What the killed run left is hidden and never mistaken for output.
        assert all(name.startswith(".") for name in sink.temporary_files())
        assert tfrecord_files_or_none(conversion, sink) in (None, SHARDS)
    assert outcomes.mid_write >= 1, outcomes
    assert set(outcomes.states) <= {"absent", "complete", "publishing"}, outcomes


#: Kills on S3, at seeded random times over an uninterrupted run's whole duration.
KILLS_ON_S3 = 3


@pytest.mark.parametrize("conversion", CONVERSIONS, ids=lambda c: c.name)
def test_kill_9_while_writing_to_s3_then_rerun(
    conversion: Conversion,
    dataset: Path,
    s3: Any,
    s3_bucket: str,
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    """The same on S3, where an output is an object only once its upload completes: after a
    kill no object under a final name is partial, and a rerun writes the same bytes."""

    def arguments(sink: S3Sink) -> list[str]:
        return [*conversion.arguments(dataset, sink), *sink.options()]

    reference_sink = S3Sink(s3, f"{s3_bucket}/reference", s3_endpoint)
    started = time.perf_counter()
    finish(start(arguments(reference_sink)))
    duration = time.perf_counter() - started
    reference = reference_sink.final_files()
    assert len(reference) == (SHARDS + 1 if conversion.shard_prefix else 1)

    rng = random.Random(f"kill-s3-{conversion.name}")
    states: list[str] = []
    scale = 1.0
    for attempt in range(KILLS_ON_S3 + 2):
        if attempt >= KILLS_ON_S3 and set(states) - {"complete"}:
            break  # two more tries only while every kill came after the end
        sink = S3Sink(s3, f"{s3_bucket}/attempt-{attempt}", s3_endpoint)
        process = start(arguments(sink))
        time.sleep(rng.uniform(0.2, 0.9) * duration * scale)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        states.append(verdict(conversion, sink, reference))
        if states[-1] == "complete":
            scale /= 2  # this run was quicker than the reference: kill the next one earlier
        finish(start(arguments(sink), tmp_path / "report.json"))  # the rerun
        assert sink.final_files() == reference
        assert not sink.temporary_files()
        rerun = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
        assert rerun["images"] == {"read": IMAGES, "written": IMAGES, "skipped": 0}
    assert set(states) <= {"absent", "complete", "publishing"}, states
    assert set(states) - {"complete"}, f"no kill landed before the run ended: {states}"


def tfrecord_files_or_none(conversion: Conversion, sink: Sink) -> int | None:
    if conversion.shard_prefix is None:
        return None
    with sink.reading():
        return len(tfrecord_files(sink.destination(conversion.shard_prefix)))


def wait_for_temporary_file(sink: Sink, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not sink.temporary_files():
        assert process.poll() is None, "the run ended before any temporary file was seen"
        assert time.monotonic() < deadline
        time.sleep(0.001)


# --- shard sets ---------------------------------------------------------------------------------


def test_an_incomplete_or_mixed_shard_set_is_refused(tmp_path: Path) -> None:
    prefix = str(tmp_path / "train.record")
    for index in range(SHARDS):
        with TFRecordWriter(shard_name(prefix, index, SHARDS)) as shard:
            shard.write(encode_example({"image/filename": bytes_feature([b"a.jpg"])}))
    assert len(list(TFRecordReader(prefix))) == SHARDS
    os.remove(shard_name(prefix, 2, SHARDS))
    with pytest.raises(AnnotationError) as error:
        list(TFRecordReader(prefix))
    assert str(error.value) == (
        f"{prefix}: incomplete shard set: 3 of 4 shards present; missing {prefix}-00002-of-00004"
    )
    Path(shard_name(prefix, 2, SHARDS)).write_bytes(b"")
    Path(shard_name(prefix, 0, 2)).write_bytes(b"")  # left by an older run with 2 shards
    with pytest.raises(AnnotationError, match=r"shards of more than one set \(1 of 2, 4 of 4\)"):
        list(TFRecordReader(prefix))
