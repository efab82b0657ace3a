"""The shape of the package: no import cycles; a format is one room plus one registry line,
CLI flags included; every format's option models match what its reader and writer take; bad
options are one-line usage errors that leave nothing behind."""

from __future__ import annotations

import ast
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import labelimg_xml, write
from pydantic import Field

import annoconv
from annoconv import convert
from annoconv.cli import main
from annoconv.errors import OptionError
from annoconv.formats import (
    Format,
    FormatEntry,
    available_formats,
    get_format,
    register,
    unregister,
)
from annoconv.formats.base import Reader, ReadResult, SingleFileWriter
from annoconv.labelmap import LabelMap
from annoconv.options import FormatOptions
from annoconv.schema import ImageRecord

PACKAGE = Path(annoconv.__file__).parent


# --- imports ---------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(name: str, path: Path) -> Iterator[str]:
    """Every annoconv module `name` imports, at module level or inside functions; imports
    under ``if TYPE_CHECKING:`` are left out (they never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    yield f"{base}.{alias.name}"
                elif base in MODULES:
                    yield base


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        trail.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        trail.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycle_in_the_package() -> None:
    graph = {
        name: {other for other in imported_modules(name, path) if other != name}
        for name, path in MODULES.items()
    }
    assert graph["annoconv.engines.partitioned"] >= {"annoconv.pipeline"}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_engines_import_the_pipeline_and_no_planning_or_front_door() -> None:
    engines = [name for name in MODULES if name.startswith("annoconv.engines")]
    for name in engines:
        imported = set(imported_modules(name, MODULES[name]))
        assert not imported & {"annoconv.convert", "annoconv.plan", "annoconv.cli"}, name


# --- the formats' own declarations ------------------------------------------------------------


BUILT_IN = [entry.name for entry in available_formats() if entry.target.startswith("annoconv.")]
#: What the pipeline, the engines and readers cutting themselves pass besides user options.
GIVEN_BY_THE_RUN = {
    "read": {"source", "images", "byte_range"},
    "write": {"destination", "images", "label_map", "keys", "partition", "split"},
}


def keyword_defaults(factory: Any) -> dict[str, Any]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(factory).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY
    }


@pytest.mark.parametrize("name", BUILT_IN)
def test_option_models_are_the_keywords_readers_and_writers_take(name: str) -> None:
    """Every user option a reader or writer takes is declared in its format's model, with
    the same default, and the model declares nothing the constructor does not take."""
    fmt = get_format(name)
    sides = [("read", fmt.reader, fmt.read_options), ("write", fmt.writer, fmt.write_options)]
    for side, factory, model in sides:
        if factory is None:
            continue
        keywords = keyword_defaults(factory)
        own = {k: v for k, v in keywords.items() if k not in GIVEN_BY_THE_RUN[side]}
        assert set(own) == set(model.model_fields), (name, factory)
        for option, default in own.items():
            declared = model.model_fields[option].get_default(call_default_factory=True)
            assert declared == (list(default) if isinstance(default, tuple) else default), option


def test_the_registry_holds_only_where_formats_live() -> None:
    entries = {entry.name: entry for entry in available_formats()}
    assert entries["voc"] == FormatEntry("voc", "annoconv.formats.voc:FORMAT")
    assert get_format("voc").extensions == (".xml",)
    assert "labelImg" in get_format("voc").description


# --- a new format: one room and one registry line ---------------------------------------------


class ShoutOptions(FormatOptions):
    prefix: str = Field("", description="written before every class name")
    upper: bool = Field(False, description="class names in capitals")


class ShoutWriter(SingleFileWriter):
    """One line per box: `key label`, label as the options say."""

    kind = "shout"

    def __init__(
        self,
        destination: str,
        *,
        label_map: LabelMap | None = None,
        images: str | None = None,
        prefix: str = "",
        upper: bool = False,
    ) -> None:
        super().__init__(destination, label_map=label_map, images=images)
        self.prefix = prefix
        self.upper = upper

    def write(self, record: ImageRecord) -> None:
        for obj in record.objects:
            label = obj.label.upper() if self.upper else obj.label
            self.output().write(f"{record.key} {self.prefix}{label}\n".encode())


@pytest.fixture
def shout_format() -> Iterator[str]:
    register(
        Format(
            "shout",
            "class names, loudly (test)",
            (".shout",),
            writer=ShoutWriter,
            write_options=ShoutOptions,
        )
    )
    try:
        yield "shout"
    finally:
        unregister("shout")


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    ann = tmp_path / "ann"
    write(ann / "a.xml", labelimg_xml("a.jpg", 100, 80, [("dog", 1, 2, 30, 40)]))
    write(ann / "b.xml", labelimg_xml("b.jpg", 100, 80, [("cat", 1, 2, 30, 40)]))
    return ann


def test_a_format_registered_at_run_time_brings_its_flags(
    shout_format: str, voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    helped = capsys.readouterr().out
    assert "shout output:" in helped and "--upper" in helped.split("shout output:")[1]
    out = tmp_path / "o.shout"
    assert main(["convert", str(voc), str(out), "--upper", "--prefix", "!", "-q"]) == 0
    assert out.read_text(encoding="utf-8").splitlines() == ["a.xml !DOG", "b.xml !CAT"]
    assert main(["convert", str(voc), str(tmp_path / "p.shout"), "--flat", "-q"]) == 2
    error = capsys.readouterr().err
    assert "the shout writer does not take option 'flat'" in error
    assert not (tmp_path / "p.shout").exists()


def test_a_writer_declaring_nothing_runs_on_the_processes_engine(
    shout_format: str, voc: Path, tmp_path: Path
) -> None:
    local, parallel = tmp_path / "l.shout", tmp_path / "p.shout"
    convert(str(voc), str(local), write_options={"upper": True})
    report = convert(
        str(voc), str(parallel), write_options={"upper": True}, engine="processes", workers=2
    )
    assert parallel.read_bytes() == local.read_bytes()
    assert (report.images_written, report.boxes_written) == (2, 2)


# --- bad options: one line, exit 2, nothing written ---------------------------------------------


BAD_OPTIONS = [
    (["--to", "tfrecord", "--shard-size", "0"], "shard_size"),
    (["--to", "tfrecord", "--shards", "0"], "shards"),
    (["--to", "tfrecord", "--shards", "-1"], "shards"),
    (["--to", "tfrecord", "--jpeg-quality", "0"], "jpeg_quality"),
    (["--to", "tfrecord", "--jpeg-quality", "500"], "jpeg_quality"),
    (["--to", "tfrecord", "--png-level", "10"], "png_level"),
    (["--to", "tfrecord", "--png-level", "-1"], "png_level"),
    (["--to", "csv", "--sample", "-5"], "sample"),
    (["--to", "csv", "--sample", "0"], "sample"),
    (["--to", "csv", "--min-area", "-3"], "min_area"),
    (["--to", "parquet", "--flat", "--embed-images"], "embed_images needs the nested layout"),
    (["--to", "csv", "--workers", "2"], "workers needs engine"),
    (["--to", "csv", "--shards", "2"], "the csv writer does not take option 'shards'"),
    # a flag two formats share: the choices of both pass argparse, the format in use checks
    (["--to", "coco", "--layout", "darknet"], "the coco writer does not take option 'layout'"),
    (["--to", "yolo", "--jpeg-quality", "0"], "jpeg_quality"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_OPTIONS)
def test_bad_options_are_one_line_usage_errors_with_nothing_written(
    flags: list[str], message: str, voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    write(voc.parent / "images" / "a.jpg", "not used")
    assert main(["convert", str(voc), str(out_dir / "o.x"), *flags]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1, error
    assert message in error and error.startswith("annoconv: error:")
    assert "see annoconv convert --help" in error
    assert list(out_dir.iterdir()) == []


def test_argparse_errors_are_one_line_with_the_help_hint(
    voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["convert", str(voc), str(tmp_path / "o.csv"), "--shards", "many"])
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "invalid int value: 'many'" in error
    assert error.rstrip().endswith("(see annoconv convert --help)")


@pytest.mark.parametrize(
    "options",
    [
        {"write_options": {"shards": 0}, "to_format": "tfrecord"},
        {"write_options": {"shard_size": "0MB"}, "to_format": "tfrecord"},
        {"sample": 0},
        {"min_area": -3},
        {"workers": 2},
        {"engine": "spark"},
        {"split": "train=0.5"},
        {"no_such_option": 1},
    ],
)
def test_the_api_raises_option_errors_before_any_output(
    options: dict[str, Any], voc: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(OptionError):
        convert(str(voc), str(out_dir / "o.csv"), **options)
    assert list(out_dir.iterdir()) == []


def test_too_many_shards_from_a_tiny_shard_size_is_refused_before_writing(
    voc: Path, tmp_path: Path
) -> None:
    images = voc.parent / "images"
    for name in ("a.jpg", "b.jpg"):
        write(images / name, "x" * 50_000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(OptionError, match=r"would make 100,000 shards"):
        convert(
            str(voc),
            str(out_dir / "o.record"),
            images=str(images),
            write_options={"shard_size": 1},
        )
    assert list(out_dir.iterdir()) == []


# --- the run's settings belong to the run --------------------------------------------------------


def test_two_threads_with_their_own_storage_options_at_once(voc: Path) -> None:
    """Two conversions in two threads against two S3 endpoints, overlapping: each writes to
    its own server (with a process-wide setting, one would write to the other's)."""
    import s3fs
    from s3server import DUMMY_AWS_ENV, moto_server

    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMY_AWS_ENV.items():
            patch.setenv(name, value)
        with moto_server() as first, moto_server() as second:
            for endpoint, bucket in ((first, "one"), (second, "two")):
                s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir(bucket)
            both_inside = threading.Barrier(2, timeout=60)
            errors: list[BaseException] = []

            def run(endpoint: str, bucket: str) -> None:
                try:
                    convert(
                        WaitingReader(str(voc / "a.xml"), both_inside),
                        f"s3://{bucket}/out.csv",
                        storage_options={"endpoint_url": endpoint},
                    )
                except BaseException as error:  # reported by the main thread
                    errors.append(error)

            threads = [
                threading.Thread(target=run, args=(first, "one")),
                threading.Thread(target=run, args=(second, "two")),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert errors == []
            for endpoint, bucket in ((first, "one"), (second, "two")):
                fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
                text = fs.cat(f"{bucket}/out.csv").decode()
                assert text.splitlines()[1:] == ["a.jpg,100,80,dog,1,2,30,40"]


class WaitingReader(Reader):
    """The records of a VOC file, read only once every run sharing `barrier` is inside its
    own `convert()` call, so that the runs overlap."""

    def __init__(self, source: str, barrier: threading.Barrier) -> None:
        super().__init__(source)
        self.barrier = barrier

    def __iter__(self) -> Iterator[ReadResult]:
        self.barrier.wait()
        yield from annoconv.read(str(self.source))
