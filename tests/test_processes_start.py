"""How the processes engine's workers start: forked from a forkserver that imported, besides
what tasks run, the formats of the run that started it (`annoconv.forkserver.start_early`).

Each case runs in a fresh interpreter: a process has one forkserver, started once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from annoconv.forkserver import pool_context

FORMAT_MODULES = ["annoconv.formats.voc", "annoconv.formats.tfrecord", "lxml.etree"]

pytestmark = pytest.mark.skipif(
    pool_context().get_start_method() != "forkserver", reason="workers are spawned here"
)


def _modules_in_workers(tmp_path: Path, start: str) -> dict[str, object]:
    """Start the forkserver with `start` (a call of `start_early`), then ask two workers
    which of FORMAT_MODULES they hold before running anything that imports them."""
    (tmp_path / "loaded_here.py").write_text(
        "import sys\n\n"
        "def loaded(names):\n"
        "    return [name for name in names if name in sys.modules]\n"
    )
    script = textwrap.dedent(
        f"""
        import json, os, sys
        sys.path.insert(0, {str(tmp_path)!r})

        if __name__ == "__main__":
            from annoconv.forkserver import start_early
            {start}
            from annoconv.engines.processes import ProcessRunner
            from loaded_here import loaded
            with ProcessRunner(2) as runner:
                seen = runner.map(loaded, [{FORMAT_MODULES!r}] * 4)
            print(json.dumps({{
                "workers": seen,
                "variable": os.environ.get("ANNOCONV_FORKSERVER_RUN"),
                "driver": [name for name in {FORMAT_MODULES!r} if name in sys.modules],
            }}))
        """
    )
    (tmp_path / "main.py").write_text(script)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "main.py")], capture_output=True, text=True, check=True
    )
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_workers_hold_the_runs_formats_from_the_start(tmp_path: Path) -> None:
    """Told the run's ends, the server infers the source's format as the plan does (a folder
    of XMLs: VOC) and the output's from its name, and imports both: every worker has them
    before its first task; the driver has imported neither, and the variable that told the
    server is gone from its environment (and from the workers', which take the driver's)."""
    source = tmp_path / "annotations"
    source.mkdir()
    (source / "a.xml").write_text("<annotation/>")
    seen = _modules_in_workers(
        tmp_path, f"start_early({str(source)!r}, {str(tmp_path / 'out.record')!r})"
    )
    assert seen["workers"] == [FORMAT_MODULES] * 4
    assert seen["driver"] == []
    assert seen["variable"] is None


def test_workers_import_formats_themselves_when_the_run_is_not_told(tmp_path: Path) -> None:
    """Without the run's ends (or with ends it cannot make out: a missing folder), the server
    imports what tasks run and no format; a worker imports its formats when a task needs them."""
    seen = _modules_in_workers(tmp_path, "start_early()")
    assert seen["workers"] == [[]] * 4
    missing = f"start_early({str(tmp_path / 'missing')!r}, 'out.unknown', None, None)"
    assert _modules_in_workers(tmp_path, missing)["workers"] == [[]] * 4


def test_named_formats_are_imported_and_remote_sources_are_not_looked_at(tmp_path: Path) -> None:
    """Formats named are imported as named; a remote source's format is told from its name
    only (no I/O: the server has none of the run's storage options)."""
    named = "start_early(['s3://nowhere/in/particular'], 'out.bin', 'voc', 'tfrecord')"
    assert _modules_in_workers(tmp_path, named)["workers"] == [FORMAT_MODULES] * 4
    remote = "start_early('s3://nowhere/folder', 'out.record')"
    assert _modules_in_workers(tmp_path, remote)["workers"] == [["annoconv.formats.tfrecord"]] * 4


@pytest.mark.parametrize(
    ("words", "ends"),
    [
        (["convert", "ann/", "out.record", "--engine", "processes"], ("ann/", "out.record")),
        (["xml2tfrecord", "xml/", "out/p.record", "--shards", "4"], ("xml/", "out/p.record")),
        (["convert", "--dedup", "ann/", "out.record"], (None, None)),  # not guessed
        (["convert", "ann/"], (None, None)),
    ],
)
def test_the_command_line_tells_the_server_the_runs_ends(
    words: list[str], ends: tuple[str | None, str | None]
) -> None:
    """`annoconv convert SRC DST ...` with `--engine processes` starts the server with SRC and
    DST read before the flags are parsed, when the words are in the README's order."""
    from annoconv.cli.main import _run_ends

    assert _run_ends(words) == ends


def test_a_parallel_runs_driver_reads_no_image_and_parses_no_xml(tmp_path: Path) -> None:
    """The driver of a processes run plans and gathers: it imports neither Pillow nor lxml
    and builds no record model (the forkserver has them, for the workers); the run writes
    every image's record all the same."""
    from factories import draw_image, labelimg_xml, write

    for index in range(6):
        draw_image(tmp_path / "ann" / f"{index}.jpg", 20 + index, 10)
        write(
            tmp_path / "ann" / f"{index}.xml",
            labelimg_xml(f"{index}.jpg", 20 + index, 10, [("cat", 1, 1, 5, 5)]),
        )
    script = textwrap.dedent(
        f"""
        import json, sys

        if __name__ == "__main__":
            from annoconv import convert
            from annoconv.schema import ImageRecord
            report = convert({str(tmp_path / "ann")!r}, {str(tmp_path / "out.record")!r},
                             engine="processes", workers=2)
            print(json.dumps({{
                "images": report.images_written, "boxes": report.boxes_written,
                "driver": sorted(m for m in ("PIL", "lxml") if m in sys.modules),
                "models built": ImageRecord.__pydantic_complete__,
            }}))
        """
    )
    (tmp_path / "main.py").write_text(script)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "main.py")], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"images": 6, "boxes": 6, "driver": [], "models built": False}
