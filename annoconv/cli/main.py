"""The ``annoconv`` entry points: `main` (parse, run the command's handler, turn errors into
one line and an exit code) and `run` (the console script)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from annoconv.cli.commands import HANDLERS
from annoconv.cli.common import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_USAGE, UsageError
from annoconv.cli.parser import build_parser
from annoconv.errors import AnnoconvError, MissingDependencyError, OptionError

if TYPE_CHECKING:
    import argparse


def _flag_value(words: Sequence[str], flag: str) -> str | None:
    """The value of `flag` among the command-line words, before they are parsed."""
    for index, word in enumerate(words):
        if word == flag and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(flag + "="):
            return word.partition("=")[2]
    return None


def _run_ends(words: Sequence[str]) -> tuple[str | None, str | None]:
    """SRC and DST of a conversion command, read as the README writes it (``annoconv
    convert SRC DST --flags``) before the flags are parsed; None where the words are in
    another order (the guess only decides what the workers' server imports early)."""
    command = _command(words)
    leading = []
    for word in words[words.index(command) + 1 :] if command else []:
        if word.startswith("-"):
            break
        leading.append(word)
    return (leading[0], leading[1]) if len(leading) == 2 else (None, None)


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv` (its first word that is not a flag)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(words)
    except KeyboardInterrupt:  # at any moment: while the parser is made, or the run runs
        print(f"annoconv: interrupted; {_left_behind(words)}", file=sys.stderr)
        return 130


def _left_behind(words: Sequence[str]) -> str:
    """What an interrupted command leaves: `images transcode` publishes image by image."""
    if _command(words) == "images":
        return "the images transcoded so far are kept, and a rerun skips them"
    return "no output was published"


def _main(words: list[str]) -> int:
    if _flag_value(words, "--engine") == "processes":
        from annoconv.forkserver import start_early

        # The workers' server imports annoconv and the run's formats while the flags are made.
        start_early(*_run_ends(words), _flag_value(words, "--from"), _flag_value(words, "--to"))
    try:
        parser = build_parser(_command(words) or "")
    except AnnoconvError as error:  # a plugin format whose options cannot be made flags
        print(f"annoconv: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        args, unknown = parser.parse_known_args(words)
    except BrokenPipeError:  # --help into a closed pipe
        return _reader_gone()
    if unknown:  # said by the command's parser: its --help is the one that helps
        command = " ".join(filter(None, ("annoconv", args.command, getattr(args, "action", None))))
        print(
            f"{command}: error: unrecognized arguments: {' '.join(unknown)} (see {command} --help)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    handler = HANDLERS[args.handler]
    try:
        from annoconv.io.fs import merge_storage_options, using_storage_options

        with using_storage_options(merge_storage_options(getattr(args, "storage_options", []))):
            _check_report_json(getattr(args, "report_json", None))
            return handler(args)
    except BrokenPipeError:  # `annoconv formats | head`: the reader has all it wants
        return _reader_gone()
    except MissingDependencyError as error:
        return _fail(args, error, EXIT_FAILED)
    except OptionError as error:
        return _fail(args, error, EXIT_USAGE)
    except AnnoconvError as error:
        return _fail(args, error, EXIT_FAILED)
    except OSError as error:
        return _fail(args, error, EXIT_FAILED)


def _check_report_json(path: str | None) -> None:
    """The report is saved once the outputs are published: a --report-json naming a folder
    is refused first, not found after the outputs are out (a run exiting 1 that wrote all)."""
    local = path is not None and "://" not in path
    if local and path and (os.path.isdir(path) or path.endswith(("/", os.sep))):
        raise UsageError(f"--report-json {path}: names a folder; name the JSON file to write")


def run() -> NoReturn:
    """The `annoconv` command: `main()`, then an exit that skips the interpreter's teardown
    once the output streams are flushed. Every resource of a run is closed by then; the
    teardown could still abort in Arrow's C++ thread pool (`terminate called without an
    active exception`, exit 134, about 1 run in 40 after an Open Images run failed:
    apache/arrow#34314), turning a reported error or a success into a crash."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _reader_gone()
    sys.stderr.flush()
    os._exit(code)


def _reader_gone() -> int:
    """Standard output's reader closed the pipe: no message (the shell's own tools stay
    quiet too), the exit status of a process ended by SIGPIPE, and stdout pointed at
    /dev/null so that flushing it at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def _fail(args: argparse.Namespace, error: BaseException, code: int) -> int:
    if getattr(args, "debug", False):
        raise error
    message = " ".join(_said(error).split()) or type(error).__name__
    print(f"annoconv: error: {message}{_hint(args, error, code)}", file=sys.stderr)
    return code


def _said(error: BaseException) -> str:
    """The error in words: an OSError as its file and what went wrong (`x.txt: no such file
    or directory`), not Python's `[Errno 2] No such file or directory: 'x.txt'`."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        from annoconv.io.fs import os_problem

        return f"{error.filename}: {os_problem(error)}"
    return str(error)


def _hint(args: argparse.Namespace, error: BaseException, code: int) -> str:
    """What the user can do next, where the error alone does not say."""
    if code == EXIT_USAGE:
        return f" (see annoconv {args.command} --help)"
    from annoconv.schema import BoxOutsideError

    if isinstance(error, BoxOutsideError) and hasattr(args, "boxes_outside"):
        return " (--boxes-outside clip keeps such boxes cut to the image, drop leaves them out)"
    return ""
