"""The tuning study's database: tune workers that start together on a new one."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from mlops.errors import UsageError
from mlops.io import studydb

PARAMS = Path("params.yaml")


def _lost_race() -> sqlalchemy.exc.OperationalError:
    """What SQLite raises in the worker that creates a table another has just created."""
    cause = sqlite3.OperationalError("table studies already exists")
    return sqlalchemy.exc.OperationalError("CREATE TABLE studies (...)", {}, cause)


def _open_behind(errors: list[Exception], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``_rdb_storage`` raising ``errors`` first, then opening; the URLs it was called with."""
    real = studydb._rdb_storage
    calls: list[str] = []

    def flaky(url: str) -> Any:
        calls.append(url)
        if errors:
            raise errors.pop(0)
        return real(url)

    monkeypatch.setattr(studydb, "_rdb_storage", flaky)
    monkeypatch.setattr(studydb.time, "sleep", lambda seconds: None)
    return calls


def test_a_worker_that_lost_the_race_to_create_the_tables_opens_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _open_behind([_lost_race()], monkeypatch)
    storage = studydb.open_storage(None, tmp_path / "study.db", PARAMS)
    assert len(calls) == 2
    assert storage.get_all_studies() == []


def test_other_database_errors_are_one_line_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, sqlite3.OperationalError("disk I/O error")
    )
    calls = _open_behind([broken], monkeypatch)
    with pytest.raises(
        UsageError, match=r"^params\.yaml: tune\.storage: cannot open sqlite:///.*disk I/O error"
    ):
        studydb.open_storage(None, tmp_path / "study.db", PARAMS)
    assert len(calls) == 1


def test_a_race_lost_every_time_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _open_behind([_lost_race() for _ in range(studydb.STORAGE_ATTEMPTS)], monkeypatch)
    with pytest.raises(UsageError, match="already exists"):
        studydb.open_storage(None, tmp_path / "study.db", PARAMS)
    assert len(calls) == studydb.STORAGE_ATTEMPTS


def _open(database: Path, start: Any, failures: Any) -> None:
    start.wait()
    try:
        studydb.open_storage(None, database, PARAMS)
    except UsageError as exc:
        failures.put(str(exc))


def test_workers_starting_together_on_a_new_file_all_open_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start, failures = context.Barrier(4), context.Queue()
    workers = [
        context.Process(target=_open, args=(tmp_path / "study.db", start, failures))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert failures.empty(), failures.get()
