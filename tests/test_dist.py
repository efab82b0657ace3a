"""The release artifacts: the sdist and the wheel build, pass `twine check`, and the wheel,
installed into a fresh virtualenv, gives a working `annoconv` command.

`make dist` does the same with the dependencies installed from PyPI; here the fresh venv
borrows this environment's (a .pth file), so the test needs no network and takes seconds.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pydantic
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ".")
    return out


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    built = sorted(path.name for path in dist.iterdir())
    from annoconv import __version__

    assert built == [f"annoconv-{__version__}-py3-none-any.whl", f"annoconv-{__version__}.tar.gz"]
    checked = run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))
    assert checked.count("PASSED") == 2


def test_the_wheel_holds_the_package_and_its_metadata(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
        entry_points = archive.read(metadata.replace("METADATA", "entry_points.txt")).decode()
    assert {
        "annoconv/py.typed",
        "annoconv/cli/main.py",
        "annoconv/formats/openimages/reader.py",
    } <= names
    assert not any(name.startswith("tests/") for name in names)
    requires = [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert "pydantic>=2.5" in requires and "pyarrow>=14" in requires
    assert "annoconv = annoconv.cli:run" in entry_points


def test_the_wheel_installed_in_a_fresh_venv_runs(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    (wheel,) = dist.glob("*.whl")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel)
    # The dependencies, borrowed from this environment (make dist installs them from PyPI).
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    borrowed = {sysconfig.get_paths()["purelib"], str(Path(pydantic.__file__).parents[1])}
    (Path(purelib.strip()) / "borrowed-deps.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    where = run(python, "-c", "import annoconv; print(annoconv.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(venv), where  # the wheel's, not the checkout's
    table = run(venv / "bin" / "annoconv", "formats", cwd=tmp_path).splitlines()
    assert table[0].split() == ["FORMAT", "EXTENSIONS", "READ/WRITE", "DESCRIPTION"]
    assert {line.split()[0] for line in table[1:] if line[:1].strip()} >= {"voc", "tfrecord"}
    version = run(venv / "bin" / "annoconv", "--version", cwd=tmp_path)
    from annoconv import __version__

    assert version.strip() == f"annoconv {__version__}"
