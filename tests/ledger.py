"""Nothing lost: an account of every item that flows through a conversion, kept apart from the
Report's own counters.

`Ledger.wrap(write_one)` wraps `annoconv.pipeline._write_one`, the step `run()` takes for each
item the reader (and the selection, sampling and size filling after it) hands over. For every
item it notes the images and boxes that came in, counts what the writer's `write()` accepted
(by wrapping that method, not by reading the report), and checks that whatever was not written
appears in the report's skipped list, with a source and a reason, for exactly the difference.
`Ledger.audit(report)` then checks the run's totals and that the report's counters agree.

Report.check_balance() only compares the report's counters with each other, so it cannot see an
item that vanishes without being counted as read; the ledger does (tests/test_ledger.py).
`conftest.py` installs one ledger for every test, so every `convert()` the suite runs in its
own process is checked. Runs in other processes (the command started as a subprocess, Dask
workers) are not; tests of those check the report JSON's counts themselves. Runs that hand
record batches to `write_batch()` have their items checked but not their totals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from annoconv.formats.base import BadItem, Dropped, ReadResult, Writer
from annoconv.report import ErrorHandler, Report
from annoconv.schema import ImageRecord

WriteOne = Callable[[ReadResult, Writer, Report, ErrorHandler], None]


class LostItems(AssertionError):
    """Images or boxes that went in and came out neither written nor skipped with a reason."""


@dataclass
class Account:
    """What one run took in, and what its writer accepted, counted item by item."""

    images_in: int = 0
    boxes_in: int = 0
    images_written: int = 0
    boxes_written: int = 0
    #: Images reached the writer without the per-item step (record batches handed to
    #: `write_batch()`, the columnar path): the items are checked, the totals cannot be.
    bypassed: bool = False


def item_counts(item: ReadResult) -> tuple[int, int]:
    """(images, boxes) an item stands for."""
    if isinstance(item, ImageRecord):
        return 1, len(item.objects)
    if isinstance(item, (BadItem, Dropped)):
        return item.images, item.boxes
    raise LostItems(f"run() was handed {item!r}, which is neither a record nor a bad/dropped item")


def skipped_totals(report: Report) -> tuple[int, int, int]:
    """(images, boxes, entries) of the report's skipped list, summed here rather than asked."""
    images = sum(entry.images for entry in report.skipped)
    boxes = sum(entry.boxes for entry in report.skipped)
    return images, boxes, len(report.skipped)


@dataclass
class Ledger:
    accounts: dict[int, Account] = field(default_factory=dict)
    #: Runs whose totals were audited (so a test can show its conversion was checked).
    audited: int = 0
    _reports: dict[int, Report] = field(default_factory=dict)

    def wrap(self, write_one: WriteOne) -> WriteOne:
        def checked(
            item: ReadResult, writer: Writer, report: Report, handler: ErrorHandler
        ) -> None:
            account = self._account(report)
            self._count_writes(writer, account)
            images, boxes = item_counts(item)
            account.images_in += images
            account.boxes_in += boxes
            before_written = (account.images_written, account.boxes_written)
            before_skipped = skipped_totals(report)
            write_one(item, writer, report, handler)
            written = (
                account.images_written - before_written[0],
                account.boxes_written - before_written[1],
            )
            after_skipped = skipped_totals(report)
            skipped = (after_skipped[0] - before_skipped[0], after_skipped[1] - before_skipped[1])
            _check_item(item, (images, boxes), written, skipped, report, before_skipped[2])

        return checked

    def audit(self, report: Report) -> None:
        """The run's totals: in = written + skipped, and the report says the same."""
        account = self.accounts.get(id(report))
        if account is None or self._reports.get(id(report)) is not report:
            return  # a Report no run() filled (built by hand in a test)
        if account.bypassed:
            return
        self.audited += 1
        images_skipped, boxes_skipped, _ = skipped_totals(report)
        problems = []
        if account.images_in != account.images_written + images_skipped:
            problems.append(
                f"images: {account.images_in} in != {account.images_written} written "
                f"+ {images_skipped} skipped"
            )
        if account.boxes_in != account.boxes_written + boxes_skipped:
            problems.append(
                f"boxes: {account.boxes_in} in != {account.boxes_written} written "
                f"+ {boxes_skipped} skipped"
            )
        claimed = (
            report.images_read,
            report.boxes_read,
            report.images_written,
            report.boxes_written,
        )
        counted = (
            account.images_in,
            account.boxes_in,
            account.images_written,
            account.boxes_written,
        )
        if claimed != counted:
            problems.append(f"the report says read/written {claimed}, the ledger counted {counted}")
        if problems:
            raise LostItems("; ".join(problems))

    def _account(self, report: Report) -> Account:
        key = id(report)
        if self._reports.get(key) is not report:
            self._reports[key] = report
            # Counted before its first item reached this step: batches went through already.
            self.accounts[key] = Account(bypassed=bool(report.images_read or report.boxes_read))
        return self.accounts[key]

    @staticmethod
    def _count_writes(writer: Writer, account: Account) -> None:
        """Count what `writer.write()` returns from (once per writer, on the instance)."""
        if getattr(writer, "_ledger_account", None) is account:
            return
        original = type(writer).write.__get__(writer)

        def write(record: ImageRecord) -> None:
            original(record)
            account.images_written += 1
            account.boxes_written += len(record.objects)

        writer.write = write  # type: ignore[method-assign]
        if hasattr(writer, "write_batch"):
            original_batch = type(writer).write_batch.__get__(writer)

            def write_batch(batch: Any) -> None:
                account.bypassed = True
                original_batch(batch)

            writer.write_batch = write_batch  # type: ignore[attr-defined]
        writer._ledger_account = account  # type: ignore[attr-defined]


def _check_item(
    item: ReadResult,
    came_in: tuple[int, int],
    written: tuple[int, int],
    skipped: tuple[int, int],
    report: Report,
    first_new_entry: int,
) -> None:
    if (written[0] + skipped[0], written[1] + skipped[1]) != came_in:
        raise LostItems(
            f"{_describe(item)}: {came_in[0]} image(s) and {came_in[1]} box(es) came in, "
            f"{written} were written and {skipped} skipped"
        )
    if skipped == (0, 0):
        return
    for entry in report.skipped[first_new_entry:] or report.skipped:
        if not entry.reason.strip() or not entry.source.strip():
            raise LostItems(f"{_describe(item)}: skipped without a source and reason: {entry}")


def _describe(item: Any) -> str:
    if isinstance(item, ImageRecord):
        return f"record {item.key!r}"
    if isinstance(item, BadItem):
        return f"bad item ({item.error})"
    return repr(item)
