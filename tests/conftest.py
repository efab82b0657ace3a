"""Shared fixtures. S3: one real `moto_server` per test session (see `s3server.py`).

* `s3_endpoint` (session): the server's URL; AWS credentials in the environment are set to
  dummy values for the whole session (and AWS_PROFILE / AWS_ENDPOINT_URL removed).
* `s3_storage_options`: the fsspec/s3fs options that reach it, ``{"endpoint_url": URL}`` —
  pass them to ``convert(storage_options=...)``, ``using_storage_options`` or, on the command
  line, as ``--storage-option endpoint_url=URL``.
* `s3_bucket`: a fresh, empty bucket for one test; yields its name.
* `s3`: an s3fs filesystem on the server, for putting inputs and reading outputs.

`ledger` (autouse) checks that every conversion run in any test loses nothing: see
tests/ledger.py.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from ledger import Ledger
from s3server import DUMMY_AWS_ENV, UNSET_AWS_ENV, moto_server

from annoconv.report import Report

# Property tests are bounded by their example counts and by pytest-timeout where they fuzz;
# hypothesis' default 200 ms deadline only made them flaky on a busy machine.
settings.register_profile("annoconv", deadline=None)
settings.load_profile("annoconv")

# The pump every run goes through, whose per-item step the ledger wraps.
pipeline_module = importlib.import_module("annoconv.pipeline")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMY_AWS_ENV.items():
            patch.setenv(name, value)
        for name in UNSET_AWS_ENV:
            patch.delenv(name, raising=False)
        with moto_server() as endpoint:
            yield endpoint


@pytest.fixture
def s3_storage_options(s3_endpoint: str) -> dict[str, Any]:
    return {"endpoint_url": s3_endpoint}


@pytest.fixture
def s3(s3_storage_options: dict[str, Any]) -> Any:
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs=s3_storage_options)
    fs.invalidate_cache()
    return fs


@pytest.fixture
def s3_bucket(s3: Any) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.mkdir(name)
    yield name
    s3.rm(name, recursive=True)


@pytest.fixture(autouse=True)
def ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    book = Ledger()
    monkeypatch.setattr(pipeline_module, "_write_one", book.wrap(pipeline_module._write_one))
    check_balance = Report.check_balance

    def audited(report: Report) -> None:
        book.audit(report)
        check_balance(report)

    monkeypatch.setattr(Report, "check_balance", audited)
    yield book
