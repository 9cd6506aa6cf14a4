"""Turn a source table into the raw data set: clean names, typed columns, the target as
the task encodes it (tasks.task)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import Any

import pandas as pd

from mlops.config import DataConfig, DecimalMark, Params
from mlops.errors import CheckFailed, UsageError, clip, shorten
from mlops.tasks.task import get_task

# Anything but a letter or digit, in any script (\w is Unicode-aware on str).
_NON_WORD = re.compile(r"[\W_]+")


def normalise_name(name: object) -> str:
    """``"Education-Num "`` -> ``"education_num"``, ``"âgé 年齢"`` -> ``"âgé_年齢"``: letters
    and digits of any script, runs of anything else as one underscore, lower case."""
    composed = unicodedata.normalize("NFC", str(name))  # "e" + U+0301 is one letter, "é"
    return _NON_WORD.sub("_", composed.strip()).strip("_").lower()


def csv_names(
    first_row: Sequence[str], config: DataConfig, known: Collection[str] = ()
) -> tuple[bool, list[str] | None]:
    """How to name the columns of a CSV whose first row is ``first_row``: (header?, names).

    A first row most of whose fields are column names (``known``, params.yaml
    ``data.columns`` or the target, after normalisation) is a header, whatever
    ``data.header`` says. Otherwise params.yaml decides; a headerless file one
    field short of ``data.columns`` is an unlabelled batch: named without the target.
    """
    wanted = {normalise_name(n) for n in (*known, *(config.columns or ()), config.target)}
    matches = sum(normalise_name(field) in wanted for field in first_row)
    if 2 * matches > len(first_row) or config.header:
        return True, None
    if config.columns is None:
        return False, None
    target = normalise_name(config.target)
    names = list(config.columns)
    if len(first_row) == len(names) - 1:
        return False, [n for n in names if normalise_name(n) != target]
    return False, names


def csv_layout(
    config: DataConfig, known: Collection[str] = ()
) -> Callable[[Sequence[str]], tuple[bool, list[str] | None]]:
    """``csv_names`` for this config and these names: how ``tables.read_input`` names a CSV."""
    return lambda first_row: csv_names(first_row, config, known)


def normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    names = [normalise_name(c) for c in frame.columns]
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise CheckFailed(f"duplicate column names after normalisation: {', '.join(duplicates)}")
    if "" in names:
        raise CheckFailed("a column has an empty name")
    return frame.set_axis(names, axis="columns")


def type_columns(frame: pd.DataFrame, decimal: DecimalMark = ".") -> pd.DataFrame:
    """Numbers become float64 (so a batch with gaps keeps the same type), also when
    pandas left them as text (``as_numbers``) or they are a duration; the rest text."""
    return frame.apply(_type_column, decimal=decimal)


def _type_column(column: pd.Series, decimal: DecimalMark = ".") -> pd.Series:
    if pd.api.types.is_bool_dtype(column):
        return column.astype("str")
    if pd.api.types.is_timedelta64_dtype(column):  # a Parquet or Feather duration
        seconds: pd.Series = column.dt.total_seconds().astype("float64")
        return seconds
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    text = column.astype("str").str.strip().where(column.notna())
    numbers = pd.to_numeric(text, errors="coerce")
    if text.notna().any() and numbers.notna().sum() == text.notna().sum():
        return numbers.astype("float64")
    read = as_numbers(text, decimal)
    return read if read is not None else text.astype("str").where(text.notna())


def as_numbers(text: pd.Series, decimal: DecimalMark = ".") -> pd.Series | None:
    """Text ``text`` (stripped, missing values missing) as float64 when every present
    value is a number that pandas left as text: written with a currency or percent sign
    or a unit (``with_unit``), with accounting's negatives (``accounting``), on a clock
    (``clock``), or with its thousands grouped by a space or an apostrophe
    (``grouped_numbers``); else None."""
    unit = with_unit(text, decimal) or accounting(text, decimal) or clock(text, decimal)
    return unit[1] if unit is not None else grouped_numbers(text, decimal)


# A duration or a time of day on a clock face, no date: "4:32", "0:29:45", "14:30",
# "1:02:03.5". Read as dates they were "when a row happened", kept out of the model (a
# call's length, a race time); each is a number of its last part's unit, the parts to its
# left worth 60 of the next ("1:04:32" is 3872 like "64:32"), so "4:32" beside "1:04:32"
# reads right, and a column of "14:30" alone is the same order as its minutes.
_CLOCK = {
    mark: re.compile(rf"(\d{{1,3}}):([0-5]\d)(?::([0-5]\d(?:{re.escape(mark)}\d+)?))?")
    for mark in (".", ",")
}
_CLOCK_SIGN = "h:mm:ss"


def clock(text: pd.Series, decimal: DecimalMark = ".") -> tuple[str, pd.Series] | None:
    """("h:mm:ss", the values as float64 in their last part's unit) when every present
    value of ``text`` is a clock reading with no date; None otherwise."""
    present = text.dropna()
    pattern = _CLOCK[decimal]
    if present.empty or not present.head(100).str.fullmatch(pattern).all():
        return None
    parts = present.str.extract(rf"^{pattern.pattern}$")
    if parts[0].isna().any():
        return None
    seconds = parts[2].str.replace(",", ".", regex=False)
    first, second = parts[0].astype("float64"), parts[1].astype("float64")
    three = seconds.notna()
    values = (first * 60 + second).where(~three, first * 3600 + second * 60)
    values = values + seconds.astype("float64").fillna(0.0)
    return _CLOCK_SIGN, values.reindex(text.index).astype("float64")


# A negative number as accounting formats write it: in parentheses ("(1,234.50)",
# "($200.00)", what Excel's accounting format saves as CSV) or with its minus after it
# ("200.00-", as SAP exports write it).
_ACCOUNTING = re.compile(r"^\(\s*([^()]*\d[^()]*?)\s*\)$|^([^-]*\d[^-]*?)\s*-$")
_BRACKETS, _TRAILING = "(1) for -1", "1- for -1"


def accounting(text: pd.Series, decimal: DecimalMark = ".") -> tuple[str, pd.Series] | None:
    """(how negatives are written, the numbers as float64) when every present value of
    ``text`` is a number, some but not all of them negatives as accounting writes them
    (all in one way), the rest plain or grouped by thousands, or all with one currency
    sign as ``with_unit`` reads them; None otherwise. Missing values stay missing."""
    present = text.dropna()
    found = present.str.extract(_ACCOUNTING)
    brackets, trailing = found[0].notna(), found[1].notna()
    if brackets.any() == trailing.any() or (brackets | trailing).all():
        return None  # none, written both ways, or every value one ("2019-": from 2019)
    signed = present.where(~(brackets | trailing), "-" + found[0].fillna(found[1]))
    group = "," if decimal == "." else "."
    if signed.str.fullmatch(rf"[+-]?(?:{_DIGITS[decimal]})").all():
        plain = signed.str.replace(group, "", regex=False).str.replace(",", ".", regex=False)
        values: pd.Series | None = pd.to_numeric(plain, errors="coerce")
    else:
        unit = with_unit(signed, decimal)
        values = None if unit is None else unit[1]
    if values is None or values.isna().any():
        return None
    form = _BRACKETS if brackets.any() else _TRAILING
    return form, values.reindex(text.index).astype("float64")


# Thousands grouped as French, Swiss, Scandinavian and SI style write them: a space (or a
# no-break or narrow no-break one, as spreadsheets export it) or an apostrophe ("5 914,00",
# "1'234.50"); pandas' ``thousands`` takes neither beside a decimal comma.
_GROUP_MARKS = " \u00a0\u202f'"


def _spaced(decimal: str) -> re.Pattern[str]:
    point = re.escape(decimal)
    return re.compile(
        rf"[+-]?(?:\d{{1,3}}(?:[{_GROUP_MARKS}]\d{{3}})+|\d+)(?:{point}\d+)?|[+-]?{point}\d+"
    )


_SPACED = {mark: _spaced(mark) for mark in (".", ",")}


def grouped_numbers(text: pd.Series, decimal: DecimalMark = ".") -> pd.Series | None:
    """``text`` as float64 when every present value is a number, some of them with their
    thousands grouped by a space or an apostrophe (the rest plain, with the ``decimal``
    mark); None otherwise. Missing values stay missing."""
    present = text.dropna()
    pattern = _SPACED[decimal]
    if present.empty or not present.head(100).str.fullmatch(pattern).all():
        return None
    if not present.str.fullmatch(pattern).all():
        return None
    digits = present.str.replace(f"[{_GROUP_MARKS}]", "", regex=True)
    values = pd.to_numeric(digits.str.replace(decimal, ".", regex=False), errors="coerce")
    if values.isna().any():
        return None
    return values.reindex(text.index).astype("float64")


# A number as a spreadsheet formats money and shares: a currency sign before or after it,
# or a percent sign after it, thousands grouped or not ("$1,234.50", "-€3.5", "€-3.5",
# "12.5%", "1.234,50 €" with a decimal comma); or a measurement with its unit after it
# ("72.5 kg", "15min", "20 °C", "90 km/h", "120 m²").
_SIGNS = "$€£¥₹"
_UNIT = r"[°µ]?[^\W\d_]{1,10}(?:/[^\W\d_]{1,3})?[²³]?"
_UNIT_NUMBER = re.compile(
    rf"^([+-]?)\s*([{_SIGNS}]?)\s*([+-]?)\s*([\d.,]+)\s*((?:[%{_SIGNS}]|{_UNIT})?)$"
)
_DIGITS = {  # grouped thousands, or plain, by the decimal mark
    ".": r"\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d*\.?\d+|\d+\.",
    ",": r"\d{1,3}(?:\.\d{3})+(?:,\d*)?|\d*,?\d+|\d+,",
}


def unit_columns(source: pd.DataFrame, decimal: DecimalMark = ".") -> dict[str, str]:
    """The text columns of ``source`` (as read: the file's names) that ``type_columns``
    reads as numbers written with a currency or percent sign or a unit, with
    accounting's negatives or on a clock: column -> the sign or unit, how the negatives
    are written, or "h:mm:ss"."""
    found = {}
    for name, column in source.items():
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        text = column.astype("str").str.strip().where(column.notna())
        unit = with_unit(text, decimal) or accounting(text, decimal) or clock(text, decimal)
        if unit is not None:
            found[str(name)] = unit[0]
    return found


def with_unit(text: pd.Series, decimal: DecimalMark = ".") -> tuple[str, pd.Series] | None:
    """(the sign, the numbers as float64) when every present value of ``text`` is a
    number written with the same currency or percent sign, always on the same side
    ("12.5%" reads as 12.5), or the same unit after it ("72.5 kg" reads as 72.5, "1
    year" and "5 years" as 1 and 5: a column of several units, "1.2 GB" and "512 MB",
    stays text); None otherwise. Missing values stay missing."""
    present = text.dropna()
    # The first values first: a column of words fails there, without scanning them all.
    if present.empty or not present.head(100).str.match(_UNIT_NUMBER).all():
        return None
    found = present.str.extract(_UNIT_NUMBER)  # a row it does not match: all NaN
    if found[3].isna().any():
        return None
    before, after = found[1] != "", found[4] != ""
    signs = set(found[1][before]) | set(found[4][after])
    signs = {sign.removesuffix("s") if sign[:-1] in signs else sign for sign in signs}  # 2 years
    if len(signs) != 1 or (before.any() and after.any()):
        return None  # no sign, several, or before some numbers and after others
    both = (found[0] != "") & (found[2] != "")
    if both.any() or not found[3].str.fullmatch(_DIGITS[decimal]).all():
        return None
    group = "," if decimal == "." else "."
    digits = found[3].str.replace(group, "", regex=False).str.replace(",", ".", regex=False)
    values = pd.to_numeric(found[0] + found[2] + digits, errors="coerce")
    if values.isna().any():
        return None
    return signs.pop(), values.reindex(text.index).astype("float64")


def encode_target(frame: pd.DataFrame, config: DataConfig) -> pd.DataFrame:
    """The target as the task encodes it (binary 0/1, multiclass labels, regression
    numbers); a target the task cannot take is a UsageError naming the fix."""
    target = normalise_name(config.target)
    if target not in frame.columns:
        raise UsageError(f"target column {target!r} (params.yaml data.target) not in the data")
    encoded = get_task(config.task).encode_target(frame[target], config, target)
    return with_column(frame, target, encoded)


def with_column(frame: pd.DataFrame, name: str, values: Any) -> pd.DataFrame:
    """``frame`` with column ``name`` set to ``values`` (added last if new), the frame
    itself untouched: ``frame.assign(**{name: values})`` fails on a column called
    ``self`` (HMDA's self-employed flag)."""
    out = frame.copy(deep=False)  # copy-on-write: setting a column leaves ``frame`` as it is
    out[name] = values
    return out


def append_extra(source: pd.DataFrame, extra: Sequence[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """The source with each ``(name, table)`` of ``extra`` appended below it, columns
    matched by their normalised names; a table with other columns is refused, naming it."""
    if not extra:
        return source
    frame = normalise_columns(source)
    parts = [frame]
    for name, raw in extra:
        table = normalise_columns(raw)
        if set(table.columns) != set(frame.columns):
            odd = sorted(set(table.columns) ^ set(frame.columns))
            raise UsageError(
                f"{name}: its columns differ from the source's ({', '.join(odd)}); "
                "expected the same columns"
            )
        parts.append(table[list(frame.columns)])
    return pd.concat(parts, ignore_index=True)


def undropped(frame: pd.DataFrame, config: DataConfig) -> pd.DataFrame:
    """``frame`` with normalised names, without the columns params.yaml ``data.drop``
    names (those it lacks are no error: a request or a log never has them)."""
    frame = normalise_columns(frame)
    return frame.drop(columns=[normalise_name(c) for c in config.drop], errors="ignore")


def require_dropped(frame: pd.DataFrame, config: DataConfig, name: str) -> None:
    """A UsageError unless the source ``frame`` (read from ``name``) has every column
    ``data.drop`` names: a misspelt name would leave the column in."""
    columns = {normalise_name(c) for c in frame.columns}
    absent = [c for c in config.drop if normalise_name(c) not in columns]
    if absent:
        raise UsageError(
            f"params.yaml data.drop names {', '.join(map(repr, absent))}, which {name} "
            f"lacks; expected columns of the source ({clip(', '.join(sorted(columns)), 200)})"
        )


def unlabelled(frame: pd.DataFrame, config: DataConfig) -> int:
    """How many of ``frame``'s rows (the source's column names) have no target value."""
    target = normalise_name(config.target)
    columns = [c for c in frame.columns if normalise_name(c) == target]
    return int(frame[columns[0]].isna().sum()) if columns else 0


def ingest(source: pd.DataFrame, config: DataConfig, require_target: bool = True) -> pd.DataFrame:
    """The raw data set: normalised names, without ``data.drop``'s columns, typed
    feature columns, the encoded target; without the rows whose target is missing
    when ``data.unlabelled`` is drop (``unlabelled`` counts them).

    A serving batch (``require_target=False``) may lack the target column.
    """
    frame = undropped(source, config)
    target = normalise_name(config.target)
    if require_target and config.unlabelled == "drop" and target in frame.columns:
        if len(frame) and frame[target].isna().all():
            raise UsageError(f"target column {target!r} has no value in any row: nothing to learn")
        frame = frame[frame[target].notna()]
    if not require_target and target in frame.columns and frame[target].isna().all():
        frame = frame.drop(columns=[target])  # an empty label column: an unlabelled batch
    if target not in frame.columns and not require_target:
        return type_columns(frame, config.decimal).reset_index(drop=True)
    features = type_columns(frame.drop(columns=[target], errors="ignore"), config.decimal)
    if target not in frame:
        typed = features
    else:  # a regression's target may be numbers written as text ("5 914,00"), as a feature
        labels = frame[target]
        if config.task == "regression":
            labels = _type_column(labels, config.decimal)
        typed = with_column(features, target, labels)
    return encode_target(typed, config).reset_index(drop=True)


def group_column(params: Params, columns: Sequence[str]) -> str | None:
    """params.yaml ``split.groups`` as the data names it (None when unset); a
    UsageError unless ``columns`` hold it and it is not the target."""
    return _split_column(params, "groups", params.split.groups, columns)


def time_column(params: Params, columns: Sequence[str]) -> str | None:
    """params.yaml ``split.time`` as the data names it (None when unset); a UsageError
    unless ``columns`` hold it and it is not the target."""
    return _split_column(params, "time", params.split.time, columns)


def _split_column(
    params: Params, key: str, value: str | None, columns: Sequence[str]
) -> str | None:
    if value is None:
        return None
    name = normalise_name(value)
    if name == normalise_name(params.data.target):
        raise UsageError(f"params.yaml split.{key}: {name!r} is data.target; name another column")
    if name not in columns:
        raise UsageError(
            f"params.yaml split.{key}: no column {name!r} in the data; expected one of "
            f"{shorten(list(columns))}"
        )
    return name
