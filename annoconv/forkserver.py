"""Where the ``processes`` engine's workers come from: a `multiprocessing` forkserver that has
imported what tasks run, forking each worker ready to work (Linux, macOS; elsewhere workers
are spawned). A leaf module, light to import: `convert()` starts the server as its first act
(`start_early`), so that the server imports annoconv (about a third of a second) while the
caller imports and plans, rather than after.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

#: What the forkserver imports once, for every worker it forks: what tasks run.
PRELOAD = ["annoconv.engines.partitioned"]


def pool_context() -> BaseContext:
    """Forkserver where the platform has it, spawn elsewhere (never a plain fork: the driver
    may hold threads)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # read when the server starts, else ignored
    return context


def start_early() -> None:
    """Start the forkserver now (if the platform has one and it is not running): starting
    takes a moment of this process; the server's imports run on their own."""
    if pool_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
