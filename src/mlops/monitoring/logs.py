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
- a row of another model version is counted apart, not mixed into the window; so
  is a row that answers in an output column the reference does not know or holds
  none of its features (a model of another task, or trained on other features), and
  every row when one of the reference's columns is absent from all of them. A null
  in a known column is a value (a NaN answer, an imputed feature) for the stability
  and quality checks to see;
- refused requests are counted with their reasons, and with the rows they held (a
  batch refused whole carries its row count): the refused rate is by rows.

An empty window is a UsageError naming the window and what was read, in one line;
a window whose every request was refused is no error but a window of no rows (its
refused rate is the finding).

Speed: a million rows must be read in seconds, so blocks of lines are parsed by
pyarrow's multithreaded JSON reader into columns; a block it refuses (a broken
line, a field whose type changes) is decoded line by line with ``json`` instead,
so one bad line costs one slow block, never the window. This module parses bytes;
the adapter that finds and opens the files is the caller's.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json

from mlops.errors import UsageError

LOGGED_AT = "logged_at"
VERSION = "model_version"
INPUTS = "inputs"
REFUSED = "refused"
REFUSED_ROWS = "rows"  # a refused batch's row count (absent: one row, a request)
# Fields of a log record that are not the model's output columns.
META = frozenset(
    {
        LOGGED_AT,
        "source",
        VERSION,
        "imputed",
        INPUTS,
        "request_id",
        "latency_ms",
        REFUSED,
        REFUSED_ROWS,
        "reason",
    }
)
_BLOCK = 100_000  # lines parsed by one pyarrow call while no line in them is broken
_SCAN = 1 << 26  # bytes searched for newlines at a time (bounds the search's own memory)
_NEWLINE = ord("\n")
_PREFIX = f"{INPUTS}."  # a feature's column in the parsed block: inputs.<name>
_FILE, _LINE, _HAS_INPUTS = "__file", "__line", "__has_inputs"
_EXAMPLES = 5


@dataclass
class LogCounts:
    """What the window left out, and why (JSON-ready with ``asdict``)."""

    lines: int = 0
    corrupt: int = 0
    corrupt_at: list[str] = field(default_factory=list)  # "file:line" of the first few
    outside_window: int = 0
    other_version: dict[str, int] = field(default_factory=dict)
    other_columns: int = 0
    refused: int = 0  # refused requests and batches
    refused_rows: int = 0  # the rows they held (a batch refused whole counts every row)
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


def parse_blocks(sources: Iterable[tuple[str, bytes]], counts: LogCounts) -> pd.DataFrame:
    """Every record of every (name, content) source as one row: the record's fields,
    its inputs as ``inputs.<feature>`` columns and where it was (file, line)."""
    frames = []
    for name, content in sources:
        for start, block in _blocks(content, _BLOCK):
            lines: list[bytes] | None = None  # split only when a line needs looking at
            ends = block.count(b"\n")
            numbers = np.arange(start + 1, start + ends + (not block.endswith(b"\n")) + 1)
            if block.startswith(b"\n") or b"\n\n" in block:  # blank lines pyarrow skips
                lines = _split(block)
                numbers = _numbers(lines, start)
            frame = _columnar(block)
            if frame is not None and len(frame) != len(numbers):
                lines = lines or _split(block)
                numbers = _numbers(lines, start)  # whitespace-only lines pyarrow skipped
            if frame is None or len(frame) != len(numbers):  # or two objects on a line
                lines = lines or _split(block)
                numbers = _numbers(lines, start)  # a blank line is no record, either way
                frame = _line_by_line([lines[n - start - 1] for n in numbers])
            counts.lines += len(numbers)
            frames.append(frame.assign(**{_FILE: name}).assign(**{_LINE: numbers}))
    empty = pd.DataFrame(columns=[LOGGED_AT, VERSION, _FILE, _LINE, _HAS_INPUTS])
    return pd.concat(frames, ignore_index=True) if frames else empty


def _blocks(content: bytes, size: int) -> Iterator[tuple[int, bytes]]:
    """(index of its first line, its bytes) for each run of ``size`` lines of ``content``,
    cut at newlines found with numpy: splitting a million-row log into line objects
    would hold it twice in memory."""
    view = np.frombuffer(content, dtype=np.uint8)
    found = [
        np.flatnonzero(view[at : at + _SCAN] == _NEWLINE) + at for at in range(0, len(view), _SCAN)
    ]
    newlines = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    cuts = [int(newlines[i]) + 1 for i in range(size - 1, len(newlines), size)]
    begin = 0
    for index, cut in enumerate([*cuts, len(content)]):
        if cut > begin:
            yield index * size, content[begin:cut]
        begin = cut


def _split(block: bytes) -> list[bytes]:
    """The block's lines (at "\n", as ``_blocks`` cut them)."""
    lines = block.split(b"\n")
    return lines[:-1] if block.endswith(b"\n") else lines


def _numbers(chunk: list[bytes], start: int) -> np.ndarray:
    """The 1-based line numbers of the chunk's non-blank lines (pyarrow skips blank ones)."""
    return np.array([start + i for i, line in enumerate(chunk, 1) if line.strip()], dtype=int)


def _columnar(block: bytes) -> pd.DataFrame | None:
    """The block parsed by pyarrow (a row per non-blank line, unless a line holds two
    objects), or None if it refuses any line of it."""
    try:
        table = pa_json.read_json(io.BytesIO(block))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    has_inputs = np.zeros(table.num_rows, dtype=bool)
    if INPUTS in table.column_names:
        inputs = table.column(INPUTS)
        if not pa.types.is_struct(inputs.type):
            return None  # inputs that are not objects: the careful path sorts them out
        has_inputs = np.asarray(inputs.is_valid(), dtype=bool)
    frame: pd.DataFrame = table.flatten().to_pandas()
    return frame.assign(**{_HAS_INPUTS: has_inputs})


def _line_by_line(chunk: list[bytes]) -> pd.DataFrame:
    """The block decoded one line at a time: a record per line that is a JSON object,
    None where it is not (counted as corrupt later, with where it was)."""
    records = [_decode_one(line) for line in chunk]
    plain = [r if isinstance(r, dict) else {} for r in records]
    inputs = [r.get(INPUTS) for r in plain]
    features = pd.DataFrame.from_records([i if isinstance(i, dict) else {} for i in inputs])
    frame = pd.DataFrame.from_records(plain, columns=sorted({k for r in plain for k in r}))
    return pd.concat(
        [frame.drop(columns=[INPUTS], errors="ignore"), features.add_prefix(_PREFIX)], axis=1
    ).assign(**{_HAS_INPUTS: [isinstance(i, dict) for i in inputs]})


def _decode_one(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def read_window(
    sources: Iterable[tuple[str, bytes]],
    features: Sequence[str],
    outputs: Sequence[str],
    window: Window,
    what: str = "prediction log",
) -> LogWindow:
    """The window's rows of one model version (see the module docstring for what is left
    out), in time order; ``sources`` are (file name, content) pairs."""
    counts = LogCounts()
    frame = _well_formed(parse_blocks(sources, counts), counts)
    since, until = _utc(window.since), _utc(window.until)
    times = frame[LOGGED_AT] if len(frame) else pd.Series(dtype="datetime64[ns, UTC]")
    inside = pd.Series(True, index=frame.index)
    if since is not None:
        inside &= times >= since
    if until is not None:
        inside &= times < until
    counts.outside_window = int((~inside).sum())
    frame = frame[inside].sort_values(LOGGED_AT, kind="stable")  # a batch keeps its order
    frame = _drop_refused(frame, counts)
    version = window.version or (str(frame[VERSION].iloc[-1]) if len(frame) else "")
    frame = _matching(frame, version, features, outputs, counts)
    if window.last is not None and len(frame) > window.last:
        counts.outside_window += len(frame) - window.last
        frame = frame.iloc[len(frame) - window.last :]
    counts.rows = len(frame)
    if frame.empty and not counts.refused:
        raise UsageError(
            f"{what}: no rows of model {version or '(any)'} in the window "
            f"({window.describe()}); read {counts.lines} lines: {counts.corrupt} corrupt, "
            f"{counts.outside_window} outside the window, {sum(counts.other_version.values())} "
            f"of other versions, {counts.other_columns} with other columns, "
            f"{counts.refused} refused"
        )
    return _frames(frame.reset_index(drop=True), version, features, outputs, counts)


def _well_formed(frame: pd.DataFrame, counts: LogCounts) -> pd.DataFrame:
    """The rows with a time, a model version (text) and, unless refused, inputs; the
    rest counted as corrupt, the first few by file and line."""
    if frame.empty:
        return frame
    for column in (LOGGED_AT, VERSION):
        if column not in frame:
            frame = frame.assign(**{column: None})
    times = _times(frame[LOGGED_AT])
    refused = _refused(frame)
    good = times.notna() & _is_text(frame[VERSION]) & (refused | frame[_HAS_INPUTS].astype(bool))
    bad = frame.loc[~good, [_FILE, _LINE]].sort_values([_FILE, _LINE], kind="stable")
    counts.corrupt = len(bad)
    counts.corrupt_at = [f"{f}:{n}" for f, n in bad.head(_EXAMPLES).itertuples(index=False)]
    kept: pd.DataFrame = frame.assign(**{LOGGED_AT: times})[good]
    return kept


def _times(column: pd.Series) -> pd.Series:
    """The records' times in UTC: ISO 8601 text as the writer logs it, or timestamps where
    pyarrow took the text for one (a time without fractions of a second; naive: UTC, as
    it converted the offset); anything else NaT, so the record is corrupt."""
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = pd.DatetimeIndex(column)
        stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
        return pd.Series(stamps, index=column.index)
    if not (pd.api.types.is_string_dtype(column) and column.dtype != object):
        # Mixed blocks: text, timestamps and whatever else a broken line held.
        column = column.where(column.map(lambda v: isinstance(v, str | datetime)).astype(bool))
    return pd.to_datetime(column, utc=True, format="ISO8601", errors="coerce")


def _is_text(column: pd.Series) -> pd.Series:
    """Which values are text: all non-null ones of a string column (pyarrow's), else
    looked at one by one (the line-by-line path keeps whatever JSON held)."""
    if pd.api.types.is_string_dtype(column) and column.dtype != object:
        return column.notna()
    return column.map(lambda v: isinstance(v, str)).astype(bool)


def _refused(frame: pd.DataFrame) -> pd.Series:
    if REFUSED not in frame:
        return pd.Series(False, index=frame.index)
    # A JSON true only (pyarrow gives numpy's bool when a block holds only refusals).
    return frame[REFUSED].map(lambda v: isinstance(v, bool | np.bool_) and bool(v)).astype(bool)


def _utc(moment: datetime | None) -> pd.Timestamp | None:
    """``moment`` in UTC; a naive time is taken as UTC (the log's times all carry one)."""
    if moment is None:
        return None
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _drop_refused(frame: pd.DataFrame, counts: LogCounts) -> pd.DataFrame:
    refused = _refused(frame)
    reasons = frame.get("reason", pd.Series("", index=frame.index))[refused]
    counts.refused = int(refused.sum())
    held = pd.to_numeric(frame.get(REFUSED_ROWS, pd.Series(1, index=frame.index)), errors="coerce")
    counts.refused_rows = int(held[refused].fillna(1).clip(lower=1).sum())
    counts.refused_reasons = {
        str(k): int(v) for k, v in reasons.fillna("").astype(str).value_counts().items()
    }
    return frame[~refused]


def _matching(
    frame: pd.DataFrame,
    version: str,
    features: Sequence[str],
    outputs: Sequence[str],
    counts: LogCounts,
) -> pd.DataFrame:
    """The rows of ``version`` that answer in the reference's columns (other versions and
    other columns counted)."""
    same = frame[VERSION] == version
    counts.other_version = {str(k): int(v) for k, v in frame[VERSION][~same].value_counts().items()}
    frame = frame[same]
    known = {*META, *outputs, _FILE, _LINE, _HAS_INPUTS}
    unknown = [c for c in frame.columns if c not in known and not str(c).startswith(_PREFIX)]
    columns = [f"{_PREFIX}{f}" for f in features]
    if any(c not in frame for c in [*outputs, *columns]):
        return _all_other(frame, counts)
    # A row answering in a column the reference lacks, or holding none of its features
    # (a model of another task or with other features, logged under this version).
    other = frame[unknown].notna().any(axis=1) if unknown else pd.Series(False, frame.index)
    if columns:
        other |= frame[columns].isna().all(axis=1)
    counts.other_columns = int(other.sum())
    return frame[~other]


def _all_other(frame: pd.DataFrame, counts: LogCounts) -> pd.DataFrame:
    counts.other_columns = len(frame)
    return frame.iloc[:0]


def _frames(
    frame: pd.DataFrame,
    version: str,
    features: Sequence[str],
    outputs: Sequence[str],
    counts: LogCounts,
) -> LogWindow:
    columns = [f"{_PREFIX}{f}" for f in features]
    if frame.empty:  # every request refused: no rows, the columns still named
        frame = frame.reindex(columns=list(dict.fromkeys([*frame.columns, *columns, *outputs])))
    meta = frame.reindex(columns=[LOGGED_AT, "source", "request_id", "latency_ms", "imputed"])
    inputs = frame[columns]
    return LogWindow(
        version=version,
        inputs=inputs.set_axis(list(features), axis=1),
        outputs=frame[list(outputs)],
        meta=meta,
        counts=counts,
    )
