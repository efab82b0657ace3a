"""The nothing-lost ledger (tests/ledger.py) audits real conversions, and fails when items are
lost, skipped without a reason, or miscounted, even where Report.check_balance() passes."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from factories import labelimg_xml, write
from ledger import Ledger, LostItems

from annoconv import convert
from annoconv.errors import AnnotationError
from annoconv.formats.base import BadItem, ReadResult, Writer
from annoconv.report import ErrorHandler, Report, SkippedItem

pytestmark = pytest.mark.timeout(30)

pipeline_module = importlib.import_module("annoconv.pipeline")
original_write_one = pipeline_module._write_one


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """Two readable annotations (3 boxes) and one broken file (its box cannot be counted)."""
    ann = tmp_path / "ann"
    write(ann / "a.xml", labelimg_xml("a.jpg", 100, 80, [("dog", 1, 2, 30, 40)]))
    boxes = [("cat", 1, 2, 30, 40), ("dog", 5, 5, 9, 9)]
    write(ann / "b.xml", labelimg_xml("b.jpg", 100, 80, boxes))
    write(ann / "c.xml", "<annotation><filename>c.jpg</filename>")
    return ann


def test_every_conversion_is_audited(source: Path, tmp_path: Path, ledger: Ledger) -> None:
    report = convert(str(source), str(tmp_path / "out.csv"), on_error="skip")
    assert ledger.audited == 1
    (account,) = ledger.accounts.values()
    assert (account.images_in, account.boxes_in) == (3, 3)
    assert (account.images_written, account.boxes_written) == (2, 3)
    assert [Path(item.source).name for item in report.skipped] == ["c.xml"]


def run_with(write_one: object, source: Path, tmp_path: Path) -> Report:
    mine = Ledger()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline_module, "_write_one", mine.wrap(write_one))  # type: ignore[arg-type]
        report = convert(str(source), str(tmp_path / "out.csv"), on_error="skip")
    mine.audit(report)
    return report


def test_an_item_that_vanishes_uncounted_is_caught_though_the_report_balances(
    source: Path, tmp_path: Path
) -> None:
    def forgets_bad_items(
        item: ReadResult, writer: Writer, report: Report, h: ErrorHandler
    ) -> None:
        if not isinstance(item, BadItem):
            original_write_one(item, writer, report, h)

    with pytest.raises(LostItems, match=r"1 image\(s\) and 0 box\(es\) came in, \(0, 0\) were"):
        run_with(forgets_bad_items, source, tmp_path)
    # The same bug is invisible to the report's own check: read 2 = written 2 + skipped 0.
    report = Report()
    forgets_bad_items(BadItem(AnnotationError("c.xml", "broken")), None, report, None)  # type: ignore[arg-type]
    report.check_balance()


def test_a_skip_without_a_reason_is_caught(source: Path, tmp_path: Path) -> None:
    def skips_silently(item: ReadResult, writer: Writer, report: Report, h: ErrorHandler) -> None:
        if isinstance(item, BadItem):
            report.images_read += item.images
            report.skipped.append(SkippedItem(item.error.source or "?", "", item.images))
            return
        original_write_one(item, writer, report, h)

    with pytest.raises(LostItems, match="skipped without a source and reason"):
        run_with(skips_silently, source, tmp_path)


def test_a_report_that_claims_more_than_was_written_is_caught(source: Path, tmp_path: Path) -> None:
    def claims_boxes(item: ReadResult, writer: Writer, report: Report, h: ErrorHandler) -> None:
        original_write_one(item, writer, report, h)
        report.boxes_read += 1
        report.boxes_written += 1

    with pytest.raises(LostItems, match="the report says read/written"):
        run_with(claims_boxes, source, tmp_path)


def test_boxes_lost_between_reader_and_writer_are_caught(source: Path, tmp_path: Path) -> None:
    def drops_a_box(item: ReadResult, writer: Writer, report: Report, h: ErrorHandler) -> None:
        if not isinstance(item, BadItem) and len(item.objects) > 1:  # type: ignore[union-attr]
            item = item.model_copy(update={"objects": item.objects[:1]})  # type: ignore[union-attr]
            report.boxes_read += 1  # counted as read, so the report still balances ...
            report.boxes_written += 1  # ... but the box was never written
        original_write_one(item, writer, report, h)

    with pytest.raises(LostItems, match=r"2 box\(es\) came in, \(1, 1\) were written"):
        run_with(drops_a_box, source, tmp_path)


def test_runs_that_write_batches_are_checked_item_by_item_only(tmp_path: Path) -> None:
    """Record batches (the columnar path) bypass the per-item step, so the totals of a run
    that wrote any cannot be recounted; its items still are, and a run that wrote no batch
    is audited in full."""
    from annoconv.formats.csv import CsvWriter

    class BatchCsvWriter(CsvWriter):
        def write_batch(self, batch: object) -> None:
            pass

    def run(batches_first: bool, batches_later: bool) -> Ledger:
        mine, report = Ledger(), Report()
        writer = BatchCsvWriter(str(tmp_path / "out.csv"))
        step = mine.wrap(original_write_one)
        if batches_first:
            writer.write_batch(None)
            report.images_read += 5  # as the batch path counts the rows it hands over
        bad = BadItem(AnnotationError("c.xml", "broken"), boxes=2)
        step(bad, writer, report, ErrorHandler("skip", report))
        if batches_later:
            writer.write_batch(None)
            report.images_read += 5
        mine.audit(report)
        return mine

    assert run(batches_first=False, batches_later=False).audited == 1
    assert run(batches_first=True, batches_later=False).audited == 0
    assert run(batches_first=False, batches_later=True).audited == 0
    report = Report()
    writer = BatchCsvWriter(str(tmp_path / "out.csv"))
    with pytest.raises(LostItems):
        Ledger().wrap(original_write_one)(
            BadItem(AnnotationError("d.xml", "broken")), writer, report, _SilentHandler(report)
        )


class _SilentHandler(ErrorHandler):
    """Skips without recording anything: the bug the per-item check catches."""

    def __init__(self, report: Report) -> None:
        super().__init__("skip", report)

    def skip(self, error: AnnotationError, images: int = 1, boxes: int = 0) -> None:
        pass
