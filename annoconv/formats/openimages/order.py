"""ImageID order: noticing that rows leave it (`DistinctIds`), and restoring it within bounded
memory (`SortedStore`, an external merge sort spilling sorted runs to Arrow IPC files)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from annoconv.formats.openimages.columns import IMAGE_ID

#: Runs merged at once; more are merged in rounds, so few files are open at a time.
MERGE_FAN_IN = 64


class DistinctIds:
    """Counts the distinct ImageIDs of a stream of batches while it is sorted, and notices
    when it is not (an ImageID smaller than the one before it)."""

    def __init__(self) -> None:
        self.count = 0
        self.sorted = True
        self._last: str | None = None

    def add(self, ids: pa.Array) -> None:
        if not self.sorted or len(ids) == 0:
            return
        first, before, after = ids[0].as_py(), ids[:-1], ids[1:]
        went_back = self._last is not None and first < self._last
        if went_back or pc.any(pc.less(after, before)).as_py():
            self.sorted = False
            return
        changes = pc.sum(pc.not_equal(after, before)).as_py() or 0
        self.count += changes + (first != self._last)
        self._last = ids[-1].as_py()


class SortedStore:
    """Rows added in file order, given back in ImageID order (or the order of another `key`
    column, such as COCO's image index) within bounded memory.

    Rows are buffered up to `budget` bytes; then the buffer is sorted by ImageID (stably, so
    the rows of an image keep their file order) and spilled as a run, an Arrow IPC stream in a
    temporary folder. `merged()` merges the runs. For a sorted file every run is sorted
    already and the runs follow each other, so the merge just reads them in turn.
    """

    def __init__(
        self,
        schema: pa.Schema,
        budget: int,
        batch_rows: int,
        tmp_dir: str | None,
        key: str = IMAGE_ID,
    ):
        self.schema = schema
        self.key = key
        self.budget = budget
        self.batch_rows = batch_rows
        self.tmp_dir = tmp_dir
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._runs: list[str] = []
        self._written = 0
        self._folder: str | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self._buffer.append(batch)
        self._buffered += batch.nbytes
        if self._buffered > self.budget:
            self._spill()

    def merged(self) -> Iterator[pa.RecordBatch]:
        """Every row added, in ImageID order, in batches of at most `batch_rows` rows."""
        if not self._runs:
            yield from _sorted(self._take_buffer(), self.key).to_batches(self.batch_rows)
            return
        self._spill()
        runs = self._runs
        while len(runs) > MERGE_FAN_IN:
            runs = [
                self._merge_runs(runs[start : start + MERGE_FAN_IN])
                for start in range(0, len(runs), MERGE_FAN_IN)
            ]
        for table in _merge([self._read_run(run) for run in runs], self.schema, self.key):
            yield from table.to_batches(self.batch_rows)

    def close(self) -> None:
        self._buffer = []
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _take_buffer(self) -> pa.Table:
        table = pa.Table.from_batches(self._buffer, schema=self.schema)
        self._buffer, self._buffered = [], 0
        return table

    def _spill(self) -> None:
        if self._buffer:
            self._runs.append(self._write_run([_sorted(self._take_buffer(), self.key)]))

    def _merge_runs(self, runs: Sequence[str]) -> str:
        runs_read = [self._read_run(run) for run in runs]
        merged = self._write_run(_merge(runs_read, self.schema, self.key))
        for run in runs:
            os.remove(run)
        return merged

    def _write_run(self, tables: Iterable[pa.Table]) -> str:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="annoconv-openimages-", dir=self.tmp_dir)
        path = os.path.join(self._folder, f"run-{self._written:06d}.arrow")
        self._written += 1
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, self.schema) as writer:
            for table in tables:
                writer.write_table(table, max_chunksize=self.batch_rows)
        return path

    def _read_run(self, path: str) -> Iterator[pa.RecordBatch]:
        with pa.OSFile(path, "rb") as source:
            yield from pa.ipc.open_stream(source)


def _sorted(table: pa.Table, key: str = IMAGE_ID) -> pa.Table:
    """The table stably sorted by `key`, left alone when it already is."""
    ids = table.column(key)
    if len(ids) < 2 or not pc.any(pc.less(ids[1:], ids[:-1])).as_py():
        return table
    return table.sort_by(key)


class _Cursor:
    """The unmerged rows of one sorted run: a buffer and the batches still to read."""

    def __init__(self, batches: Iterator[pa.RecordBatch], schema: pa.Schema, key: str) -> None:
        self._batches = batches
        self.key = key
        self.rows = schema.empty_table()
        self.done = False

    def pull(self) -> None:
        batch = next(self._batches, None)
        if batch is None:
            self.done = True
        else:
            self.rows = pa.concat_tables([self.rows, pa.Table.from_batches([batch])])

    def fill(self) -> None:
        while not self.rows.num_rows and not self.done:
            self.pull()

    @property
    def last_id(self) -> Any:
        ids = self.rows.column(self.key)
        return ids[len(ids) - 1].as_py()

    def take_below(self, bound: Any) -> pa.Table:
        """Removes and returns the rows whose ImageID is below `bound` (all if None)."""
        if bound is None:
            end = self.rows.num_rows
        else:
            end = pc.search_sorted(self.rows.column(self.key), pa.scalar(bound)).as_py()
        taken, self.rows = self.rows.slice(0, end), self.rows.slice(end)
        return taken


def _merge(
    runs: Sequence[Iterator[pa.RecordBatch]], schema: pa.Schema, key: str = IMAGE_ID
) -> Iterator[pa.Table]:
    """The rows of sorted runs, in ImageID order; an image's rows in run order, then file
    order (runs hold consecutive parts of the file).

    Rows below the smallest last ImageID of the runs still being read are final: no run can
    give any more of them. They are taken from every run at once; then each run whose buffer
    ends with that ImageID reads its next batch. Every round reads a batch, so the merge
    ends, holding about one batch per run.
    """
    cursors = []
    for run in runs:
        cursor = _Cursor(run, schema, key)
        cursor.fill()
        if cursor.rows.num_rows:
            cursors.append(cursor)
    while cursors:
        reading = [cursor for cursor in cursors if not cursor.done]
        bound = min((cursor.last_id for cursor in reading), default=None)
        pieces = [piece for cursor in cursors if (piece := cursor.take_below(bound)).num_rows]
        if pieces:
            yield pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces).sort_by(key)
        for cursor in reading:
            if cursor.last_id == bound:
                cursor.pull()
        for cursor in cursors:
            cursor.fill()
        cursors = [cursor for cursor in cursors if cursor.rows.num_rows]
