"""Where the ``processes`` engine's workers come from: a `multiprocessing` forkserver that has
imported what tasks run, forking each worker ready to work (Linux, macOS; elsewhere workers
are spawned). A leaf module, light to import: `convert()` starts the server as its first act
(`start_early`), so that the server imports annoconv (about a third of a second) while the
caller imports and plans, rather than after.

Told the run's ends (`start_early(source, output, ...)`), the server also imports the modules
of the run's reader and writer (the formats named, or inferred as the plan will infer them):
every worker has them from its first task, instead of each importing them (lxml, the Example
encoder...) while the other waits for the survey or the run's first shard. The source's format
is guessed from a glance at its name or at a few of its files, not inferred as the plan does
(which lists the whole folder): a wrong guess costs an import, never a result.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annoconv.formats.base import Format

#: What the forkserver imports once, for every worker it forks: what tasks run (and Pillow,
#: which `annoconv.io` imports where images are read, so that a driver does without), then this
#: module, which imports the formats of the run that started the server (`_import_formats`).
PRELOAD = ["annoconv.engines.partitioned", "PIL.Image", "annoconv.forkserver"]
#: How `start_early` tells the server the run's ends: set only while the server is started.
_RUN_VARIABLE = "ANNOCONV_FORKSERVER_RUN"


def pool_context() -> BaseContext:
    """Forkserver where the platform has it, spawn elsewhere (never a plain fork: the driver
    may hold threads)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # read when the server starts, else ignored
    return context


def start_early(
    source: str | Sequence[str] | None = None,
    output: str | None = None,
    from_format: str | None = None,
    to_format: str | None = None,
) -> None:
    """Start the forkserver now (if the platform has one and it is not running): starting
    takes a moment of this process; the server's imports run on their own, the formats of
    the run from `source` to `output` among them (best effort: what cannot be told is
    imported by the workers when they need it)."""
    if pool_context().get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    run = {"source": source, "output": output, "from": from_format, "to": to_format}
    with _set_variable(_RUN_VARIABLE, json.dumps(run)):
        forkserver.ensure_running()


@contextlib.contextmanager
def _set_variable(name: str, value: str) -> Iterator[None]:
    """The environment variable `name` set to `value` for a while (the server's start)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _import_formats() -> None:
    """In the forkserver, as it imports this module: the record models built, and the
    modules of the formats of the run that started it (told through `_RUN_VARIABLE`), read
    from the environment and removed from it, so that no worker inherits it. A format named
    is imported; a source's is guessed from its name, or a local folder's from a few of its
    files (a remote source is not looked at: the server has none of the run's storage
    options). Failures are left to the driver, which reports them."""
    told = os.environ.pop(_RUN_VARIABLE, None)
    if told is None:
        return
    from annoconv.schema import build_models

    build_models()  # built once here, not in each worker as it makes its first record
    try:
        run = json.loads(told)
        for name in _format_names(run):
            from annoconv.formats import get_format

            _import_worker_modules(get_format(name))
    except Exception:  # a guess that failed: the workers import what they need later
        pass


def _import_worker_modules(fmt: Format) -> None:
    """What the modules of `fmt`'s reader and writer import only where used (their
    ``WORKER_IMPORTS``: lxml for VOC, so that a parallel run's driver does without it)."""
    for part in (fmt.reader, fmt.writer):
        module = sys.modules.get(getattr(part, "__module__", ""))
        for name in getattr(module, "WORKER_IMPORTS", ()):
            importlib.import_module(name)


def _format_names(run: dict[str, str | list[str] | None]) -> list[str]:
    from annoconv.formats import formats_named_by, infer_format

    names = []
    output, source = run.get("output"), run.get("source")
    if isinstance(run.get("to"), str):
        names.append(str(run["to"]))
    elif isinstance(output, str):
        names.append(infer_format(output, for_writing=True))
    paths = [source] if isinstance(source, str) else list(source or [])
    if isinstance(run.get("from"), str):
        names.append(str(run["from"]))
    elif paths:
        named = formats_named_by(paths[0]) or _named_by_files_in(paths[0])
        names += named[:1] if len(named) == 1 else []
    return names


def _named_by_files_in(path: str, glance: int = 64) -> list[str]:
    """The formats named by the commonest extension among the first `glance` files found
    under the local folder `path` (none for a remote path or a file): a guess, in a glance,
    at what the plan infers by listing the whole folder."""
    from annoconv.formats import formats_named_by
    from annoconv.io.fs import is_remote

    if is_remote(path) or not os.path.isdir(path):
        return []
    counts: dict[str, int] = {}
    seen = 0
    for _folder, _dirs, files in os.walk(path):
        for name in files[: glance - seen]:
            suffix = os.path.splitext(name.lower())[1]
            counts[suffix] = counts.get(suffix, 0) + 1
        seen = sum(counts.values())
        if seen >= glance:
            break
    for suffix in sorted(counts, key=lambda suffix: -counts[suffix]):
        named = formats_named_by("file" + suffix) if suffix else []
        if named:
            return named
    return []


_import_formats()
