"""The prediction log read back: a window of one model version's rows, and what was left out.

``mlops predict`` and ``mlops serve`` append one JSON object per answered row
(``mlops.serving.service.log_lines``): ``logged_at``, ``source``, ``model_version``,
the task's output columns, ``imputed`` and ``inputs``; ``request_id``,
``latency_ms`` and refused requests (``refused: true`` and a ``reason``) may join
them. A log is written while the server runs, copied between machines and cut by
disks that fill up, so nothing in it is trusted:

- a line that is not a JSON object with a time, a model version and (unless
  refused) inputs is corrupt: skipped and counted (with where the first few are),
  never fatal;
- a row of another model version, or whose output columns or inputs are not the
  reference's (a model trained with other features), is counted apart, not mixed
  into the window;
- refused requests are counted with their reasons (the refused-request rate).

An empty window is a UsageError naming the window and what was read, in one line.
This module parses text; the adapter that finds and opens the files is the caller's.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

import pandas as pd

from mlops.errors import UsageError

LOGGED_AT = "logged_at"
VERSION = "model_version"
INPUTS = "inputs"
REFUSED = "refused"
# Fields of a log record that are not the model's output columns.
META = frozenset(
    {LOGGED_AT, "source", VERSION, "imputed", INPUTS, "request_id", "latency_ms", REFUSED, "reason"}
)
_CHUNK = 10_000  # lines decoded by one json.loads call while no line in them is broken
_EXAMPLES = 5
_NON_FINITE = re.compile(r'(?<=[^\\]": )-?(?:nan|inf)(?=, "|\})')
_JSON_WORDS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


@dataclass
class LogCounts:
    """What the window left out, and why (JSON-ready with ``asdict``)."""

    lines: int = 0
    corrupt: int = 0
    corrupt_at: list[str] = field(default_factory=list)  # "file:line" of the first few
    outside_window: int = 0
    other_version: dict[str, int] = field(default_factory=dict)
    other_columns: int = 0
    refused: int = 0
    refused_reasons: dict[str, int] = field(default_factory=dict)
    rows: int = 0  # in the window

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LogWindow:
    """One model version's logged rows in the window: features, output columns and the
    rest (time, source, request id, latency where logged, imputed features)."""

    version: str
    inputs: pd.DataFrame
    outputs: pd.DataFrame
    meta: pd.DataFrame
    counts: LogCounts


@dataclass(frozen=True)
class Window:
    """Which rows: logged in [since, until) (timezone-aware; None: open), then the last
    ``last`` of them (None: all), of model ``version`` (None: the newest row's)."""

    since: datetime | None = None
    until: datetime | None = None
    last: int | None = None
    version: str | None = None

    def describe(self) -> str:
        parts = [f"since {self.since.isoformat()}"] if self.since else []
        parts += [f"until {self.until.isoformat()}"] if self.until else []
        parts += [f"the last {self.last} rows"] if self.last else []
        return ", ".join(parts) or "all rows"


Located = tuple[tuple[str, int], dict[str, Any]]  # ((file, line number), record)


def parse_lines(sources: Iterable[tuple[str, Iterable[str]]], counts: LogCounts) -> list[Located]:
    """The well-formed records of every (name, lines) source with where they were; the
    rest counted as corrupt.

    Lines are decoded ``_CHUNK`` at a time as one JSON array (one C call instead of one
    per line); a chunk holding a broken line is decoded line by line instead.
    """
    records: list[Located] = []
    for name, lines in sources:
        numbered = ((n, line) for n, line in enumerate(lines, 1) if line.strip())
        while chunk := list(islice(numbered, _CHUNK)):
            counts.lines += len(chunk)
            for (number, _), record in zip(chunk, _decode(chunk), strict=True):
                if _well_formed(record):
                    records.append(((name, number), record))
                else:
                    _corrupt(counts, (name, number))
    return records


def _corrupt(counts: LogCounts, where: tuple[str, int]) -> None:
    counts.corrupt += 1
    if len(counts.corrupt_at) < _EXAMPLES:
        counts.corrupt_at.append(f"{where[0]}:{where[1]}")


def _decode(chunk: Sequence[tuple[int, str]]) -> list[Any]:
    try:
        decoded = json.loads(f"[{','.join(line for _, line in chunk)}]")
    except ValueError:
        decoded = None
    if isinstance(decoded, list) and len(decoded) == len(chunk):
        return decoded
    return [_decode_one(line) for _, line in chunk]


def _decode_one(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        pass
    # ``log_lines`` writes a number's repr, so a model answering NaN or infinity logs
    # the bare words nan / inf, which JSON lacks; read them as the NaN and Infinity
    # Python's json knows, so the stability check sees them instead of a corrupt line.
    # Only a value right after a key (an unescaped quote, a colon and a space: the
    # answer's fields; pandas writes the inputs without the space) is rewritten.
    repaired = _NON_FINITE.sub(lambda m: _JSON_WORDS[m[0]], line)
    try:
        return json.loads(repaired) if repaired != line else None
    except ValueError:
        return None


def _well_formed(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get(LOGGED_AT), str)
        and isinstance(record.get(VERSION), str)
        and (bool(record.get(REFUSED)) or isinstance(record.get(INPUTS), dict))
    )


def read_window(
    sources: Iterable[tuple[str, Iterable[str]]],
    features: Sequence[str],
    outputs: Sequence[str],
    window: Window,
    what: str = "prediction log",
) -> LogWindow:
    """The window's rows of one model version whose inputs hold ``features`` and whose
    output columns are exactly ``outputs`` (the reference's), in time order."""
    counts = LogCounts()
    since, until = _utc(window.since), _utc(window.until)
    records = parse_lines(sources, counts)
    times = pd.to_datetime(
        pd.Series([r[LOGGED_AT] for _, r in records], dtype="object"),
        utc=True,
        format="ISO8601",
        errors="coerce",
    )
    inside = []
    for (where, record), time in zip(records, times, strict=True):
        if pd.isna(time):
            _corrupt(counts, where)
        elif (since is not None and time < since) or (until is not None and time >= until):
            counts.outside_window += 1
        else:
            inside.append((time, record))
    inside.sort(key=lambda pair: pair[0])  # stable: rows of one batch keep their order
    answered = _drop_refused(inside, counts)
    version = window.version or (answered[-1][1][VERSION] if answered else "")
    kept = _matching(answered, version, set(features), frozenset(outputs), counts)
    if window.last is not None and len(kept) > window.last:
        counts.outside_window += len(kept) - window.last
        kept = kept[len(kept) - window.last :]
    counts.rows = len(kept)
    if not kept:
        raise UsageError(
            f"{what}: no rows of model {version or '(any)'} in the window "
            f"({window.describe()}); read {counts.lines} lines: {counts.corrupt} corrupt, "
            f"{counts.outside_window} outside the window, {sum(counts.other_version.values())} "
            f"of other versions, {counts.other_columns} with other columns, "
            f"{counts.refused} refused"
        )
    return _frames(kept, version, features, outputs, counts)


def _utc(moment: datetime | None) -> pd.Timestamp | None:
    """``moment`` in UTC; a naive time is taken as UTC (the log's times all carry one)."""
    if moment is None:
        return None
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _drop_refused(
    rows: list[tuple[pd.Timestamp, dict[str, Any]]], counts: LogCounts
) -> list[tuple[pd.Timestamp, dict[str, Any]]]:
    reasons = Counter(str(r.get("reason", "")) for _, r in rows if r.get(REFUSED))
    counts.refused = sum(reasons.values())
    counts.refused_reasons = dict(reasons)
    return [(t, r) for t, r in rows if not r.get(REFUSED)]


def _matching(
    rows: list[tuple[pd.Timestamp, dict[str, Any]]],
    version: str,
    features: set[str],
    outputs: frozenset[str],
    counts: LogCounts,
) -> list[tuple[pd.Timestamp, dict[str, Any]]]:
    other: Counter[str] = Counter()
    kept = []
    for time, record in rows:
        if record[VERSION] != version:
            other[record[VERSION]] += 1
        elif frozenset(record) - META != outputs or not features <= record[INPUTS].keys():
            counts.other_columns += 1
        else:
            kept.append((time, record))
    counts.other_version = dict(other)
    return kept


def _frames(
    rows: list[tuple[pd.Timestamp, dict[str, Any]]],
    version: str,
    features: Sequence[str],
    outputs: Sequence[str],
    counts: LogCounts,
) -> LogWindow:
    records = [record for _, record in rows]
    index = pd.RangeIndex(len(records))
    meta = pd.DataFrame.from_records(
        records, columns=["source", "request_id", "latency_ms", "imputed"]
    ).assign(**{LOGGED_AT: pd.DatetimeIndex([time for time, _ in rows])})
    return LogWindow(
        version=version,
        inputs=pd.DataFrame.from_records([r[INPUTS] for r in records], columns=list(features)),
        outputs=pd.DataFrame.from_records(records, columns=list(outputs)).set_index(index),
        meta=meta.set_index(index),
        counts=counts,
    )
