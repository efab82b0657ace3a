"""The documentation runs: every ```sh, ```console and ```python block of docs/**/*.md and
README.md is executed, page by page, in a scratch folder holding a copy of examples/, with
`annoconv` and `python` resolving to this checkout.

- ```sh blocks run as one bash script (`set -euo pipefail`) and must exit 0.
- ```console blocks hold `$ command` lines, each followed by the output it shows; the command
  must exit 0 and the shown lines must appear, in order, in what it printed (stdout, then
  stderr); a `...` line stands for lines left out.
- ```python blocks run in one namespace per page, in the scratch folder.
- A block preceded by ``<!-- skip-test: reason -->`` is not run (S3 credentials, a cluster,
  `pip install`, ...). Keep those rare: `grep -rn skip-test docs README.md` lists them.

Blocks of one page run in order and share the folder, so a page can build on what it wrote.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
RUNNABLE = ("sh", "console", "python")
# Languages shown but not run. Shell or Python under another name would silently escape
# the tests, so `bash`, `shell`, `py`, `pycon` ... are rejected.
DISPLAY_ONLY = ("text", "toml", "xml", "csv", "pbtxt", "json", "yaml", "")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
SKIP = re.compile(r"^\s*<!--\s*skip-test:\s*(?P<reason>.*?)\s*-->\s*$")
PROMPT = "$ "
ELLIPSIS = "..."
TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    skip: str | None  # the reason, when marked skip-test

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def fenced_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].strip().split(" ")[0].split("{")[0]
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            text = lines[index]
            body.append(text[len(indent) :] if text.startswith(indent) else text.lstrip())
            index += 1
        start = index - len(body)
        blocks.append(
            Block(page, start, language, "\n".join(body) + "\n", _skip_reason(lines, start - 1))
        )
        index += 1
    return blocks


def _skip_reason(lines: list[str], fence_index: int) -> str | None:
    """The reason of a skip-test marker on the last non-blank line before the fence."""
    before = fence_index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    marker = SKIP.match(lines[before]) if before >= 0 else None
    return marker["reason"] if marker else None


def runnable_blocks(page: Path) -> list[Block]:
    return [block for block in fenced_blocks(page) if block.language in RUNNABLE]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


# --- the block inventory ------------------------------------------------------------------


def test_every_fenced_block_is_either_run_or_display_only() -> None:
    unknown = [
        f"{block.where}: ```{block.language}"
        for page in PAGES
        for block in fenced_blocks(page)
        if block.language not in RUNNABLE + DISPLAY_ONLY
    ]
    assert not unknown, "use ```sh, ```console or ```python (run) or a display language"


def test_skip_markers_give_a_reason_and_precede_a_runnable_block() -> None:
    for page in PAGES:
        markers = [
            text for text in page.read_text(encoding="utf-8").splitlines() if SKIP.match(text)
        ]
        skipped = [block for block in fenced_blocks(page) if block.skip is not None]
        assert len(markers) == len(skipped), (
            f"{page_id(page)}: a skip-test marker not before a block"
        )
        for block in skipped:
            assert block.skip, f"{block.where}: skip-test needs a reason"
            assert block.language in RUNNABLE, f"{block.where}: skip-test before a block never run"


def test_the_extractor_finds_indented_blocks_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- skip-test: needs S3 -->\n```sh\naws s3 ls\n```\n\n"
        "1. a list\n\n   ```python\n   x = 1\n   ```\n\n````console\n$ echo hi\nhi\n````\n",
        encoding="utf-8",
    )
    blocks = fenced_blocks(page)
    assert [(b.language, b.code, b.skip, b.line) for b in blocks] == [
        ("sh", "aws s3 ls\n", "needs S3", 4),
        ("python", "x = 1\n", None, 10),
        ("console", "$ echo hi\nhi\n", None, 14),
    ]


# --- running them -------------------------------------------------------------------------


# `pip install LOCAL_PATH` in a page installs offline into the sandbox's own site folder
# (on PYTHONPATH), as into a virtualenv; anything else pip would fetch from PyPI: mark it skip.
PIP_SHIM = """if [ "$1" != install ]; then
  echo "docs sandbox: only 'pip install LOCAL_PATH' runs here" >&2; exit 2
fi
shift
exec "{python}" -m pip install --quiet --no-deps --no-index --no-build-isolation \\
  --target "{site}" "$@"
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A scratch folder with a copy of examples/ and a PATH whose `annoconv`, `python` and
    `pip` are this checkout's."""
    work = tmp_path / "work"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "examples", work / "examples", ignore=ignore)
    bin_dir, site = tmp_path / "bin", tmp_path / "site"
    bin_dir.mkdir()
    wrappers = {
        "python": f'exec "{sys.executable}" "$@"\n',
        "annoconv": f'exec "{sys.executable}" -m annoconv "$@"\n',
        "pip": PIP_SHIM.format(python=sys.executable, site=site),
    }
    for name, body in wrappers.items():
        script = bin_dir / name
        script.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        script.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": f"{ROOT}:{site}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "COLUMNS": "100",
    }
    return work, env


def run_shell(
    code: str, work: Path, env: dict[str, str], where: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, (
        f"{where}: exit {done.returncode}\n$ {code}\n"
        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    return done


def console_steps(code: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown after it) of a console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith(PROMPT):
            steps.append((line[len(PROMPT) :], []))
        elif steps:
            steps[-1][1].append(line.rstrip())
        elif line.strip():
            raise AssertionError(f"console block output before any `$ ` command: {line!r}")
    return steps


def assert_shown_output(shown: list[str], printed: list[str], where: str, command: str) -> None:
    """Each shown line appears, in order, among the printed ones (`...` skips any)."""
    expected = [line for line in shown if line and line != ELLIPSIS]
    position = 0
    for line in expected:
        while position < len(printed) and printed[position].rstrip() != line:
            position += 1
        assert position < len(printed), (
            f"{where}: `{command}` did not print {line!r} (in this order); it printed:\n"
            + "\n".join(printed)
        )
        position += 1


def run_block(block: Block, work: Path, env: dict[str, str], namespace: dict[str, object]) -> None:
    if block.language == "sh":
        run_shell(block.code, work, env, block.where)
    elif block.language == "console":
        for command, shown in console_steps(block.code):
            done = run_shell(command, work, env, block.where)
            printed = done.stdout.splitlines() + done.stderr.splitlines()
            assert_shown_output(shown, printed, block.where, command)
    else:
        exec(compile(block.code, block.where, "exec"), namespace)


def test_console_output_must_appear_in_order() -> None:
    steps = console_steps("$ annoconv stats x\nclass  boxes\n...\ntotal  3\n$ ls\n")
    assert steps == [("annoconv stats x", ["class  boxes", "...", "total  3"]), ("ls", [])]
    printed = ["class  boxes", "a  1", "b  2", "total  3  "]
    assert_shown_output(steps[0][1], printed, "page.md:1", "annoconv stats x")
    with pytest.raises(AssertionError, match="did not print 'total  3'"):
        assert_shown_output(steps[0][1], printed[::-1], "page.md:1", "annoconv stats x")
    with pytest.raises(AssertionError, match="before any"):
        console_steps("output first\n$ ls\n")


PAGES_WITH_CODE = [
    page for page in PAGES if any(block.skip is None for block in runnable_blocks(page))
]


def keep_hugging_face_local(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Pages load datasets with Hugging Face `datasets`: offline, cached in `folder` (also
    when an earlier test imported `datasets`, which reads its settings on import)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(folder))
    loaded = sys.modules.get("datasets")
    if loaded is not None:
        monkeypatch.setattr(loaded.config, "HF_DATASETS_CACHE", folder / "datasets")


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=page_id)
def test_page_code_runs(
    page: Path, sandbox: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    work, env = sandbox
    monkeypatch.chdir(work)
    keep_hugging_face_local(monkeypatch, work.parent / "hf")
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in runnable_blocks(page):
        if block.skip is None:
            run_block(block, work, env, namespace)


# --- the site -----------------------------------------------------------------------------


def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    """`make docs`: any warning (a broken link or anchor, a page missing from the nav, an API
    name that does not resolve) fails the build."""
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert 'id="xml2tfrecord"' in (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert 'id="annoconv.convert.convert"' in (site / "api" / "index.html").read_text("utf-8")


# --- generated pages ----------------------------------------------------------------------


def test_cli_reference_lists_every_subcommand_and_option() -> None:
    import argparse

    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        cli_reference = importlib.import_module("cli_reference")
    finally:
        sys.path.remove(str(ROOT / "docs" / "hooks"))
    from annoconv.cli import build_parser

    page = cli_reference.render_cli_reference()
    subparsers = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    for name, sub in subparsers.choices.items():
        assert f"\n## {name}\n" in page
        section = page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in section or f", {option}" in section, (name, option)


def test_api_reference_names_importable_objects() -> None:
    names = re.findall(r"^::: ([\w.]+)$", (ROOT / "docs" / "api.md").read_text(), re.MULTILINE)
    assert names
    for dotted in names:
        module, _, attribute = dotted.rpartition(".")
        try:
            importlib.import_module(dotted)
        except ModuleNotFoundError:
            assert hasattr(importlib.import_module(module), attribute), dotted
