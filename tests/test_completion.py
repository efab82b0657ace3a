"""`annoconv completion bash|zsh`: scripts generated from the parser, run by the real shells."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from annoconv.cli import main
from annoconv.formats import available_formats

FORMATS = " ".join(entry.name for entry in available_formats())


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("completion")
    found = {}
    for shell in ("bash", "zsh"):
        command = [sys.executable, "-m", "annoconv", "completion", shell]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        found[shell] = folder / f"annoconv.{shell}"
        found[shell].write_text(done.stdout, encoding="utf-8")
    return found


# (words typed, the last being completed) -> what completes
CASES = [
    (["annoconv", "co"], "completion convert"),
    (
        ["annoconv", "convert", "--image"],
        "--images --image-name --images-csv --image-labels --images-mode",
    ),
    (["annoconv", "convert", "a", "b", "--to", ""], FORMATS),
    (["annoconv", "xml2tfrecord", "x", "y", "--size-policy", "w"], "warn"),
    (["annoconv", "xml2csv", "--image-name", ""], "filename stem"),
    (["annoconv", "convert", "--over"], "--overwrite"),
    (["annoconv", "images", "tr"], "transcode"),
    (["annoconv", "images", "transcode", "--to", ""], "png jpeg"),
    (["annoconv", "completion", ""], "bash zsh"),
    (["annoconv", "merge", "da"], "data"),  # a file name
]


def bash_completes(script: Path, words: list[str], cwd: Path) -> str:
    program = (
        f"source {script}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n'
        '_annoconv; echo "${COMPREPLY[*]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", program, "bash", *words], capture_output=True, text=True, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize(("words", "expected"), CASES)
def test_bash_completion(
    scripts: dict[str, Path], tmp_path: Path, words: list[str], expected: str
) -> None:
    (tmp_path / "data").mkdir()
    assert bash_completes(scripts["bash"], words, tmp_path) == expected


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.parametrize(("words", "expected"), CASES)
def test_zsh_completion(
    scripts: dict[str, Path], tmp_path: Path, words: list[str], expected: str
) -> None:
    """zsh's compadd filters by the typed prefix itself: the script offers every candidate
    and the test filters as zsh would. compadd and _files stand in for the widget's own."""
    (tmp_path / "data").mkdir()
    program = (
        f"source {scripts['zsh']}\n"
        'compadd() { [[ $1 == -- ]] && shift; print -r -- "$*" }\n'
        "_files() { print -r -- data }\n"
        'words=("$@"); CURRENT=${#words}\n'
        "_annoconv\n"
    )
    done = subprocess.run(
        ["zsh", "-f", "-c", program, "zsh", *words], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    prefix = words[-1]
    offered = [word for word in done.stdout.split() if word.startswith(prefix)]
    assert " ".join(offered) == expected


def test_an_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["completion", "fish"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fish'" in capsys.readouterr().err
