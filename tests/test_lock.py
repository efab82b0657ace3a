"""`io.lock`: one run at a time per output. Real processes hold and contend for the lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from factories import Box, labelimg_xml, write

from annoconv.errors import OutputLockedError
from annoconv.io.lock import acquire, lock_path, output_lock

pytestmark = pytest.mark.timeout(60)

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
HOLD = """
import sys
from annoconv.io.lock import acquire
lock = acquire(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
"""
TRY = """
import sys
from annoconv.errors import OutputLockedError
from annoconv.io.lock import acquire
try:
    acquire(sys.argv[1]).release()
except OutputLockedError as error:
    print(error)
    sys.exit(1)
print("acquired")
"""


def holder(output: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(output)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def contender(output: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", TRY, str(output)], capture_output=True, text=True, env=ENV
    )


def test_a_second_process_fails_with_one_line_naming_the_holder(tmp_path: Path) -> None:
    output = tmp_path / "out" / "train.record"
    first = holder(output)
    try:
        lock_file = tmp_path / "out" / ".train.record.lock"
        written = json.loads(lock_file.read_text(encoding="utf-8"))
        assert (written["pid"], written["host"]) == (first.pid, socket.gethostname())
        second = contender(output)
        assert second.returncode == 1
        assert second.stdout == (
            f"{output}: another run is writing this output (pid {first.pid} on host "
            f"{socket.gethostname()}, since {written['started']}); wait for it to end, or "
            f"remove {lock_file} if it is gone\n"
        )
        # Another spelling of the same output is the same lock.
        relative = os.path.relpath(output, Path.cwd())
        assert contender(f"./{relative}").returncode == 1
        assert contender(tmp_path / "out" / "other.record").returncode == 0
    finally:
        assert first.stdin is not None
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.stdout is not None and first.stdout.readline() == "released\n"
        first.wait(timeout=30)
    assert not lock_file.exists()
    assert contender(output).stdout == "acquired\n"


def test_a_lock_whose_holder_was_killed_is_taken_over(tmp_path: Path) -> None:
    output = tmp_path / "boxes.csv"
    first = holder(output)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert Path(lock_path(str(output))).exists()  # left behind, naming a dead pid
    with acquire(str(output)) as lock:
        written = json.loads(Path(lock.path).read_text(encoding="utf-8"))
        assert written["pid"] == os.getpid()
    assert not Path(lock_path(str(output))).exists()


def test_a_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    output = tmp_path / "boxes.csv"
    stale = {"pid": int(gone.stdout), "host": socket.gethostname(), "started": "then"}
    write(lock_path(str(output)), json.dumps(stale))
    with output_lock(str(output)) as lock:
        assert lock is not None
        assert json.loads(Path(lock.path).read_text(encoding="utf-8"))["pid"] == os.getpid()


def test_one_process_cannot_take_its_own_output_twice(tmp_path: Path) -> None:
    output = str(tmp_path / "out.csv")
    with output_lock(output), pytest.raises(OutputLockedError) as raised:
        acquire(output)
    assert f"(pid {os.getpid()} on host " in str(raised.value)
    with output_lock(output):  # released: free again
        pass


def test_threads_racing_for_one_output_get_it_one_at_a_time(tmp_path: Path) -> None:
    output = str(tmp_path / "out.csv")
    inside: list[int] = []
    most: list[int] = []
    failures: list[str] = []
    start = threading.Barrier(8)

    def run() -> None:
        start.wait()
        for _ in range(30):
            try:
                with output_lock(output):
                    inside.append(1)
                    most.append(len(inside))
                    inside.pop()
            except OutputLockedError as error:
                failures.append(str(error))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(most) == 1 and len(most) + len(failures) == 240 and most
    assert not Path(lock_path(output)).exists()


def test_remote_outputs_are_not_locked() -> None:
    with output_lock("s3://bucket/out.csv") as lock:
        assert lock is None


def test_two_conversions_onto_one_output_the_second_fails(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    for index in range(3):
        write(ann / f"{index}.xml", labelimg_xml(f"{index}.jpg", 40, 30, [Box("dog", 1, 2, 3, 4)]))
    output = tmp_path / "boxes.csv"
    with output_lock(str(output)):
        run = subprocess.run(
            [sys.executable, "-m", "annoconv", "xml2csv", str(ann), str(output), "-q"],
            capture_output=True,
            text=True,
            env=ENV,
        )
    assert run.returncode == 1
    assert run.stderr.startswith(f"annoconv: error: {output}: another run is writing this output")


def test_without_flock_the_file_is_created_exclusively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Windows way: the file itself is the lock; a dead pid's file is taken over."""
    from annoconv.io import lock as lock_module

    monkeypatch.setattr(lock_module, "fcntl", None)
    output = str(tmp_path / "out.csv")
    with output_lock(output), pytest.raises(OutputLockedError, match=rf"pid {os.getpid()} "):
        acquire(output)
    assert not Path(lock_path(output)).exists()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    write(lock_path(output), json.dumps({"pid": int(gone.stdout), "host": socket.gethostname()}))
    with output_lock(output) as lock:
        assert lock is not None
    write(lock_path(output), json.dumps({"pid": int(gone.stdout), "host": "elsewhere"}))
    with pytest.raises(OutputLockedError, match=rf"pid {gone.stdout.strip()} on host elsewhere"):
        acquire(output)
