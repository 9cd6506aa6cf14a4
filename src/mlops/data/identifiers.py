"""Columns that identify rows: kept in the data, never features of the model.

A row number or a customer id is unique per row, so a model can memorise the
training rows by it and learns nothing that carries over to new rows (new rows
bring new ids). Being unique per row is not enough to say so, though: a
continuous measurement (a weight, a concentration) is unique per row too. The
rule, on a frame as ingest leaves it (numbers are float64, the rest text),
with at least ``MIN_ROWS`` rows:

- a number only when every value is whole: a number with a fraction is a
  measurement, whatever it is called;
- whole numbers, one distinct value per row and none missing, that form a run:
  every integer between the smallest and the largest (row numbers, in any
  order), or rising or falling with the rows and filling at least half of
  that span (row numbers with gaps where rows were removed). A count, a
  timestamp or a sampling weight that happens to be unique is neither;
- text with a distinct value in at least ``NEAR_UNIQUE`` of the rows (uuids,
  customer numbers, names): as a category, each value would be seen once;
- a column named like an identifier (``id``, ``index``, ``rownames``, ``key``,
  ``uuid``, ``*_id``, ``*_no``, ``customerid``, pandas' ``unnamed_0``, ...) whose
  whole numbers (or text) are distinct in at least ``NEAR_UNIQUE`` of the rows, or in
  at least ``MOSTLY_UNIQUE`` of them with fewer than ``REPEATED_SHARE`` of the rows
  repeating a value (R's biopsy data: 645 sample ids over 699 rows, a few samples
  measured again): an identifier with a few repeats, not groups of rows;
- text that reads as dates or times (every distinct value has a four-digit year, a
  time of day or the form ``1/3/11``, at least ``DATE_SHARE`` of them parse), with at
  least ``MIN_DATES`` distinct values: when a row happened, which as a category would
  be a value per day or second, and which new rows never repeat. Fewer (a month, a
  quarter) can be a category.

params.yaml ``validate.ids`` overrides all this when it lists the columns.

A column named like an identifier whose values repeat (a customer's orders, a
patient's visits, a person over the years of a panel) groups rows instead:
``find_groups`` proposes it for params.yaml ``split.groups``, which keeps each
group whole on one side of the split and of every fold (a model scored on rows
of people it was trained on scores too well) and never makes it a feature.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

MIN_ROWS = 30  # fewer rows than this prove nothing about uniqueness
NEAR_UNIQUE = 0.99  # share of the rows with a value of their own
MOSTLY_UNIQUE = 0.5  # distinct values per row of a column named like an identifier
MIN_DATES = 32  # distinct dates: fewer (days of a month, months) can be categories
DATE_SHARE = 0.95  # of the distinct values (a seeded sample of DATE_SAMPLE) that parse
DATE_SAMPLE = 500
DATES = "dates or times"  # how a column of them is described (``time_columns``)
MIN_GROUPS = 20  # fewer values than this are a category, not entities
REPEATED_SHARE = 0.5  # of the rows in a group of more than one
# Whole names, or the first or last word of a snake_case name, that mean "identifier".
# Ingest lower-cases "PassengerId" to "passengerid": such names are matched by the
# entity they number, never by a bare "id" ending ("paid", "bid" and "aid" are amounts).
_ID_NAME = re.compile(
    r"^(rownames?|row|rownum|rowid|unnamed_\d+|record|serial|id_.+|pid|uid|oid|nr)$"
    r"|(^|_)(id|ids|idx|index|key|uuid|guid)$"
    r"|.+_(no|nr|number)$"
    r"|(customer|client|user|account|member|person|passenger|patient|subject|employee"
    r"|student|order|product|item|transaction|session|record|sample|case)(id|no|number)$"
)


LISTED = "listed in params.yaml"


def identify(
    frame: pd.DataFrame, target: str, listed: Sequence[str] | None = None
) -> dict[str, str]:
    """The row identifiers with the reason for each: exactly ``listed`` (params.yaml
    ``validate.ids``, names already checked against the data) when it is given, even
    empty, else those :func:`find_ids` detects."""
    return find_ids(frame, target) if listed is None else dict.fromkeys(listed, LISTED)


def find_groups(frame: pd.DataFrame, target: str, ids: Sequence[str] = ()) -> dict[str, str]:
    """The columns of ``frame`` (other than ``target`` and ``ids``) named like an
    identifier whose values repeat: at least ``MIN_GROUPS`` of them, and at least
    ``REPEATED_SHARE`` of the rows in a group of more than one; each with the reason.
    Whole numbers that fill every value from 0 or 1 up, rising by one down the rows
    but where they start again, are a numbering within parts of the data (a sample
    number per study), not entities; numbered entities each on several rows (R's colon:
    patients 1 to 929, two rows each) are groups."""
    found = {}
    for name in frame.columns:
        if name == target or name in ids or not _ID_NAME.search(str(name)):
            continue
        observed = frame[name].dropna()
        if pd.api.types.is_numeric_dtype(observed):
            values = observed.to_numpy(dtype="float64")
            if not np.isfinite(values).all() or not np.array_equal(values, np.round(values)):
                continue  # a measurement
            distinct = np.unique(values)
            if distinct[0] in {0, 1} and distinct[-1] - distinct[0] + 1 == len(distinct):
                restarts = values[1:][np.diff(values) != 1]
                if (restarts == distinct[0]).all():
                    continue  # 1, 2, 3, ... again in each part
        sizes = observed.value_counts()
        repeated = int(sizes[sizes > 1].sum())
        if len(sizes) >= MIN_GROUPS and repeated >= REPEATED_SHARE * len(frame):
            found[str(name)] = (
                f"{len(sizes):,} values over {len(observed):,} rows, "
                f"{len(observed) / len(sizes):.1f} rows each"
            )
    return found


def find_ids(frame: pd.DataFrame, target: str) -> dict[str, str]:
    """The columns of ``frame`` (other than ``target``) that identify rows, each with
    the reason in words, in column order. Pure and vectorised: one pass per column."""
    if len(frame) < MIN_ROWS:
        return {}
    found = {}
    for name in frame.columns:
        if name == target:
            continue
        reason = _reason(frame[name], named=bool(_ID_NAME.search(str(name))))
        if reason:
            found[str(name)] = reason
    return found


def _reason(column: pd.Series, *, named: bool) -> str | None:
    rows = len(column)
    observed = column.dropna()
    distinct = observed.nunique()
    near_unique = distinct >= NEAR_UNIQUE * rows
    if not pd.api.types.is_numeric_dtype(column):
        return _dates(observed, distinct) or _text_reason(
            observed, distinct, rows, near_unique=near_unique, named=named
        )
    values = observed.to_numpy(dtype="float64")
    if not np.isfinite(values).all() or not np.array_equal(values, np.round(values)):
        return None  # a measurement, not a number given to a row
    run = _run(observed, values) if distinct == rows else None
    if run is not None or not named:
        return run
    if near_unique:
        return f"named like an identifier, {distinct:,} distinct whole numbers in {rows:,} rows"
    return _mostly_unique(observed, distinct, rows, "whole numbers")


def _text_reason(
    observed: pd.Series, distinct: int, rows: int, *, near_unique: bool, named: bool
) -> str | None:
    kind = "named like an identifier" if named else "text"
    if near_unique:
        return f"{kind}, {distinct:,} distinct values in {rows:,} rows"
    return _mostly_unique(observed, distinct, rows, "values") if named else None


def _mostly_unique(observed: pd.Series, distinct: int, rows: int, what: str) -> str | None:
    """The reason a column named like an identifier is one though some of its values
    repeat: most rows have their own, and too few share one to be groups (find_groups)."""
    if distinct < MOSTLY_UNIQUE * rows:
        return None
    sizes = observed.value_counts()
    repeating = int(sizes[sizes > 1].sum())
    if repeating >= REPEATED_SHARE * rows:
        return None
    return (
        f"named like an identifier, {distinct:,} distinct {what} in {rows:,} rows, "
        f"{repeating:,} rows sharing one"
    )


def _dates(observed: pd.Series, distinct: int) -> str | None:
    """Why text reads as dates or times, if it does (see the module's rule)."""
    if distinct < MIN_DATES:
        return None
    values = pd.Series(observed.unique())
    if len(values) > DATE_SAMPLE:
        values = values.sample(DATE_SAMPLE, random_state=0)
    # A year, a time of day, or month, day and a two-digit year between slashes (as
    # Excel and the EPA write "1/3/11") in every value: "3-4" (a score) or "1.2.3" (a
    # version) would parse as this year's 4 March or 2 January 2003.
    if not values.str.contains(_DATED, regex=True).all():
        return None
    parsed = read_times(values)
    if parsed.notna().mean() < DATE_SHARE:
        return None
    first, last = parsed.min(), parsed.max()
    return (
        f"{DATES}, {distinct:,} distinct from {first:%Y-%m-%d} to {last:%Y-%m-%d}: "
        "when a row happened, not a category"
    )


_DATED = r"\d{4}|\d:\d|^\s*\d{1,2}/\d{1,2}/\d{2}(?:\D|$)"
# A date written day and month first, in either order: 31/01/1993, 1.2.93, 01-02-1993 10:00.
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?:\D|$)")


def read_times(values: pd.Series) -> pd.Series:
    """Text ``values`` as UTC times (missing where a value reads as none), each parsed
    alone (pandas' mixed format), but with one order of day and month for the column.
    Parsed alone, 31/01/1993 is 31 January and 01/02/1993 is 2 January, so a European
    export's rows came out of time order: when some value's first field is over 12 and
    no value's second is, the column writes the day first."""
    text = values.astype("str")
    fields = text.str.extract(_NUMERIC_DATE).astype("float64")
    day_first = bool((fields[0] > 12).any() and not (fields[1] > 12).any())
    with warnings.catch_warnings():  # "could not infer format": each value parsed alone
        warnings.simplefilter("ignore")
        times = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        if day_first:  # only those values: dayfirst would read 1993-04-02 as 4 February
            written = fields[0].notna()
            times[written] = pd.to_datetime(
                values[written], errors="coerce", format="mixed", dayfirst=True, utc=True
            )
    return times


def time_columns(ids: Mapping[str, str]) -> list[str]:
    """Of ``ids`` (column -> why, as ``find_ids`` gives them), those that read as dates
    or times: candidates for params.yaml ``split.time``."""
    return [column for column, why in ids.items() if why.startswith(DATES)]


def _run(observed: pd.Series, values: np.ndarray) -> str | None:
    """Why distinct whole numbers, none missing, look like row numbers, if they do."""
    low, high = int(values.min()), int(values.max())
    span = high - low + 1
    if span == len(values):
        return f"the whole numbers {low:,} to {high:,}, one per row"
    rising, falling = observed.is_monotonic_increasing, observed.is_monotonic_decreasing
    if span <= 2 * len(values) and (rising or falling):
        order = "rising" if rising else "falling"
        return f"whole numbers {order} with the rows, one per row ({low:,} to {high:,})"
    return None
