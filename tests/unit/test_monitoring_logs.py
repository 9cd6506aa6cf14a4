"""Reading the prediction log back: the lines ``log_lines`` writes, and every way a log
goes wrong (corrupt lines, other model versions, other columns, refusals, an empty
window)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from mlops.errors import UsageError
from mlops.monitoring import logs
from mlops.monitoring.logs import Window, read_window
from mlops.serving import service
from mlops.serving.service import Production
from tests.unit.monitoring_cases import case

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _lines(task: str, rows: int, version: str = "v1.0.0", minute: int = 0) -> list[str]:
    """``rows`` of the case's population logged by the real writer, one minute apart."""
    c = case(task)
    production = Production(None, version, "0" * 32, tuple(c.features.columns), c.task, 0.5)
    predictions = c.outputs.iloc[:rows].assign(**{service.IMPUTED: ""})
    return [
        line
        for i in range(rows)
        for line in service.log_lines(
            c.features.iloc[[i]],
            predictions.iloc[[i]],
            production,
            "batch.csv",
            START + timedelta(minutes=minute + i),
        ).splitlines()
    ]


ALL = Window()


def _read(lines: list[str], window: Window = ALL, task: str = "binary") -> logs.LogWindow:
    reference = case(task).reference
    return read_window(
        [("predictions-2026-03-01.jsonl", "\n".join(lines).encode())],
        list(reference["features"]),
        list(reference["prediction"]["columns"]),
        window,
    )


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_logged_rows_come_back_as_they_were_answered(task: str) -> None:
    c = case(task)
    found = _read(_lines(task, 20), task=task)
    assert found.version == "v1.0.0"
    assert found.counts.rows == 20
    pd.testing.assert_frame_equal(
        found.inputs, c.features.iloc[:20].reset_index(drop=True), check_dtype=False
    )
    pd.testing.assert_frame_equal(found.outputs, c.outputs.iloc[:20].reset_index(drop=True))
    assert found.meta["logged_at"].iloc[-1] == START + timedelta(minutes=19)


def test_corrupt_and_truncated_lines_are_skipped_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logs, "_BLOCK", 4)  # one bad line costs its block only
    lines = _lines("binary", 10)
    broken = [
        *lines[:3],
        lines[3][:40],  # truncated by a full disk
        "not json",
        "[1, 2]",  # JSON, not a record
        json.dumps({"logged_at": "yesterday", "model_version": "v1.0.0", "inputs": {}}),
        "",  # blank lines are not rows
        *lines[4:],
    ]
    found = _read(broken)
    assert found.counts.rows == 9  # line 3 was the truncated one
    assert found.counts.corrupt == 4
    assert found.counts.corrupt_at == [f"predictions-2026-03-01.jsonl:{n}" for n in (4, 5, 6, 7)]
    assert found.counts.lines == 13


def test_other_versions_and_other_columns_are_separated() -> None:
    old = _lines("binary", 5, version="v0.9.0")
    regressor = _lines("regression", 2, version="v0.5.0")  # other columns, other version
    stray = [json.dumps(json.loads(line) | {"score": 0.3}) for line in _lines("binary", 3)]
    current = _lines("binary", 6, minute=100)
    found = _read(old + regressor + stray + current)
    assert found.version == "v1.0.0"  # the newest row's
    assert found.counts.rows == 6
    assert found.counts.other_version == {"v0.9.0": 5, "v0.5.0": 2}
    assert found.counts.other_columns == 3  # answered in a column the reference lacks
    older = _read(old + current, Window(version="v0.9.0"))
    assert older.counts.rows == 5
    assert older.counts.other_version == {"v1.0.0": 6}
    # the regression model's rows lack the binary reference's columns: none is read
    with pytest.raises(
        UsageError,
        match="0 corrupt, 0 outside the window, 11 of other versions, 2 with other columns",
    ):
        _read(old + regressor + current, Window(version="v0.5.0"))


def test_windows_by_time_and_by_last_rows() -> None:
    lines = _lines("binary", 30)
    found = _read(
        lines, Window(since=START + timedelta(minutes=10), until=START + timedelta(minutes=20))
    )
    assert found.counts.rows == 10
    assert found.counts.outside_window == 20
    assert found.meta["logged_at"].min() == START + timedelta(minutes=10)
    last = _read(lines, Window(last=7))
    assert last.counts.rows == 7
    assert last.meta["logged_at"].iloc[0] == START + timedelta(minutes=23)
    naive = _read(lines, Window(since=datetime(2026, 3, 1, 12, 25)))  # taken as UTC
    assert naive.counts.rows == 5


def test_refused_requests_are_counted_with_their_reasons() -> None:
    refused = [
        json.dumps(
            {
                "logged_at": (START + timedelta(minutes=i)).isoformat(),
                "model_version": "v1.0.0",
                "refused": True,
                "reason": reason,
            }
        )
        for i, reason in enumerate(["contract", "contract", "too large"])
    ]
    found = _read(_lines("binary", 4) + refused)
    assert found.counts.rows == 4
    assert found.counts.refused == 3
    assert found.counts.refused_rows == 3  # a refusal without a row count is one row
    assert found.counts.refused_reasons == {"contract": 2, "too large": 1}


def test_a_batch_refused_whole_counts_its_rows() -> None:
    batch = {"model_version": "v1.0.0", "refused": True, "reason": "contract", "rows": 250}
    odd = {"model_version": "v1.0.0", "refused": True, "reason": "contract", "rows": "many"}
    lines = [
        json.dumps(record | {"logged_at": (START + timedelta(minutes=i)).isoformat()})
        for i, record in enumerate([batch, odd])
    ]
    found = _read(_lines("binary", 4) + lines)
    assert (found.counts.refused, found.counts.refused_rows) == (2, 251)  # "many": one row


def test_an_empty_window_is_one_line() -> None:
    lines = [*_lines("binary", 5), "{broken"]
    with pytest.raises(UsageError) as error:
        _read(lines, Window(since=START + timedelta(days=1)))
    message = str(error.value)
    assert "\n" not in message
    assert "no rows of model (any) in the window (since 2026-03-02T12:00:00+00:00)" in message
    assert "read 6 lines: 1 corrupt, 5 outside the window" in message
    with pytest.raises(UsageError, match="no rows of model v2"):
        _read(lines, Window(version="v2"))
    with pytest.raises(UsageError, match="read 0 lines"):
        _read([])


def test_new_fields_are_read_when_present() -> None:
    lines = [
        json.dumps(json.loads(line) | {"request_id": f"r{i}", "latency_ms": 1.5 + i})
        for i, line in enumerate(_lines("binary", 3))
    ]
    found = _read(lines)
    assert found.meta["request_id"].tolist() == ["r0", "r1", "r2"]
    assert found.meta["latency_ms"].tolist() == [1.5, 2.5, 3.5]


def test_blank_lines_and_two_records_on_one_line() -> None:
    lines = _lines("binary", 6)
    odd = [lines[0], "   ", lines[1], f"{lines[2]} {lines[3]}", "", lines[4], lines[5], ""]
    found = _read(odd)
    assert found.counts.lines == 5
    assert found.counts.rows == 4
    assert found.counts.corrupt_at == ["predictions-2026-03-01.jsonl:4"]
    crlf = _read(["\r\n".join(lines)])  # a log copied through Windows
    assert crlf.counts.rows == 6


@pytest.mark.parametrize("block", [1, 2, 3, 5, 1000])
@pytest.mark.parametrize("ending", [b"\n", b""])
def test_blocks_cut_anywhere_give_the_same_rows_and_line_numbers(
    monkeypatch: pytest.MonkeyPatch, block: int, ending: bytes
) -> None:
    """Blocks are cut at newlines without splitting the log into lines first: blank and
    whitespace-only lines, broken lines and a last line without a newline land on every
    side of a cut, and each record keeps its file line number."""
    good = [line.encode() for line in _lines("binary", 6)]
    content = (
        b"\n".join([good[0], b"", good[1], b"   ", good[2], b"{broken", good[3], good[4]])
        + b"\r\n"  # a Windows line end
        + good[5]
        + ending
    )

    def parsed() -> tuple[list[int], int, int]:
        counts = logs.LogCounts()
        frame = logs.parse_blocks([("f.jsonl", content)], counts)
        feature = f"inputs.{case('binary').features.columns[0]}"
        kept = frame[frame[feature].notna()]
        return sorted(int(n) for n in kept["__line"]), counts.lines, len(frame)

    monkeypatch.setattr(logs, "_BLOCK", block)
    assert parsed() == ([1, 3, 5, 7, 8, 9], 7, 7)  # 9 lines, 2 blank: 7 records, 1 broken


def test_a_window_of_refusals_only_is_no_error_but_no_rows() -> None:
    refused = json.dumps(
        {
            "logged_at": START.isoformat(),
            "model_version": "v1.0.0",
            "refused": True,
            "reason": "contract",
            "rows": 40,
        }
    )
    found = _read([refused], Window(version="v1.0.0"))
    assert (found.counts.rows, found.counts.refused, found.counts.refused_rows) == (0, 1, 40)
    reference = case("binary").reference
    assert list(found.inputs.columns) == list(reference["features"])
    assert list(found.outputs.columns) == list(reference["prediction"]["columns"])
    assert found.inputs.empty


def test_times_pyarrow_takes_for_timestamps_are_times_not_corruption() -> None:
    """A log whose times carry no fractions of a second (another writer's) is parsed by
    pyarrow into timestamps, in some blocks and not others: every record still counts."""
    whole = [json.loads(line) for line in _lines("binary", 6)]
    for record in whole[:3]:  # seconds only, offset kept
        record["logged_at"] = datetime.fromisoformat(record["logged_at"]).isoformat()
    lines = [json.dumps(record) for record in whole]
    for block in (3, 1000):  # blocks of one kind each, and one block of both kinds
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(logs, "_BLOCK", block)
            found = _read(lines)
        assert (found.counts.rows, found.counts.corrupt) == (6, 0)
        assert str(found.meta["logged_at"].dt.tz) == "UTC"
