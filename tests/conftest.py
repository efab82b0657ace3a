"""Suite-wide fixtures. `ledger` (autouse) checks that every conversion run in any test loses
nothing: see tests/ledger.py."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from ledger import Ledger

from annoconv.report import Report

# The module, not the `convert` function that `annoconv` exports under the same name.
convert_module = importlib.import_module("annoconv.convert")


@pytest.fixture(autouse=True)
def ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    book = Ledger()
    monkeypatch.setattr(convert_module, "_write_one", book.wrap(convert_module._write_one))
    check_balance = Report.check_balance

    def audited(report: Report) -> None:
        book.audit(report)
        check_balance(report)

    monkeypatch.setattr(Report, "check_balance", audited)
    yield book
