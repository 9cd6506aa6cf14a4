"""How a user's data file reads: CSV or a typed format (gzipped or not), the separator, the
decimal mark, whether the first row is a header, and which markers stand for a missing
value.

Pure logic on the file's bytes, so ``mlops init`` can write params.yaml ``data``
for a file it has never seen, and a test can check it without files.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from mlops.config import DecimalMark
from mlops.data.ingestion import normalise_name
from mlops.errors import UsageError, clip
from mlops.io.tables import (
    FileFormat,
    content_format,
    csv_lines,
    data_lines,
    decoded,
    line_end,
    sniff_decimal,
    sniff_separator,
    split_rows,
    unpacked,
)

# Written for a missing value by spreadsheets (Excel's error values among them), R, SQL
# exports and survey tools, in any letter case. One of them in a column whose other
# values are all numbers is a missing value, not a category.
MARKERS = frozenset(
    {
        *("na", "n/a", "n.a.", "nan", "null", "none", "nil", "?", "-", "--", "."),
        *("unknown", "missing", "not available", "blank", "(blank)", "empty", "undefined"),
        *("#n/a", "#na", "#value!", "#div/0!", "#ref!", "#num!", "#null!", "#name?"),
    }
)
# ... and these in any column ("?" is no category anyone names; UCI's files use it).
_TEXT_MARKERS = ("?",)
# pandas reads these as missing already; params.yaml names the rest found.
_EMPTY = ""


@dataclass(frozen=True)
class Layout:
    """params.yaml ``data``'s reading keys for one file."""

    format: FileFormat
    separator: str = ","
    header: bool = True
    # Names for a headerless CSV: column_1, column_2, ...
    columns: tuple[str, ...] | None = None
    # Markers of a missing value found, and the columns they were found in.
    na_values: tuple[str, ...] = ()
    marked: dict[str, tuple[str, ...]] | None = None
    decimal: DecimalMark = "."
    # The text's encoding (tables.decoded): not UTF-8 is worth a review line.
    encoding: str = "utf-8-sig"
    # The mark grouping thousands in numbers ("1,234.5"), if a column has one.
    thousands: DecimalMark | None = None
    # The character that starts a comment line ("# exported by ..."), if the file has any.
    comment: str | None = None


def sniff(name: str, data: bytes, target: str | None = None) -> Layout:
    """The layout of the file ``name`` holding ``data`` (UsageError when it reads as neither
    CSV nor a typed format). ``target``: the column the user says is the target, whose
    name in the first row marks it as the header."""
    data = unpacked(name, data)
    if (kind := content_format(data)) != "csv":
        return Layout(kind)
    text, encoding = decoded(name, data)
    comment = comment_mark(text)
    lines = data_lines(text, comment)
    if not lines:
        raise UsageError(
            f"{name}: the file holds no data rows; expected a CSV, Parquet, Feather or JSON file"
        )
    separator = sniff_separator(lines, ",", None)
    rows = split_rows(lines, separator)
    decimal = sniff_decimal(rows, separator)
    if target is not None:
        _refuse_headings(name, rows, decimal, target)
    header = has_header(rows, decimal, target)
    columns = None if header else tuple(f"column_{i}" for i in range(1, len(rows[0]) + 1))
    fields = _as_text(name, text, separator, columns, comment)
    thousands = sniff_thousands(fields, separator, decimal)
    if header:
        _refuse_units_row(name, fields, decimal, thousands)
    marked = missing_markers(fields, decimal, thousands)
    found = tuple(sorted({m for ms in marked.values() for m in ms} - {_EMPTY}))
    return Layout(
        "csv", separator, header, columns, found, marked, decimal, encoding, thousands, comment
    )


_COMMENT = "#"


def comment_mark(text: str) -> str | None:
    """``#`` when the file opens with lines that start with it (an export's notes above
    its header: "# exported by CRM 2.3") and no other line holds one; else None. pandas
    drops everything after the mark on any line, so a value holding one ("Apt #4")
    would lose its end: such a file keeps the title-lines advice instead."""
    lines = [line.strip() for line in csv_lines(text) if line.strip()]
    if not lines or not lines[0].startswith(_COMMENT):
        return None
    if any(_COMMENT in line for line in lines if not line.startswith(_COMMENT)):
        return None
    return _COMMENT


# A number with its thousands grouped, by its decimal mark: "1,234,567.5" | "1.234.567,5".
_GROUPED = {
    ".": r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?",
    ",": r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?",
}


def sniff_thousands(
    frame: pd.DataFrame, separator: str, decimal: DecimalMark
) -> DecimalMark | None:
    """The mark grouping thousands ("," in "1,234.5", "." in "1.234,5") when a column of
    ``frame`` (every field as text) holds numbers and missing markers only, some of them
    grouped; else None. In a file not separated by commas, "1,000" may be a decimal
    comma (sniff_decimal keeps "." then): only two groups or a decimal point tell."""
    mark: DecimalMark = "," if decimal == "." else "."
    for column in frame.columns:
        values = frame[column].str.strip()
        present = values[~values.str.lower().isin({*MARKERS, _EMPTY})]
        grouped = present.str.fullmatch(_GROUPED[decimal])
        if not grouped.any() or not _numbers(present[~grouped], decimal).notna().all():
            continue
        shown = present[grouped]
        surely = shown.str.count(re.escape(mark)).gt(1) | shown.str.contains(decimal, regex=False)
        if separator == "," or decimal == "," or surely.any():
            return mark
    return None


def _numbers(values: pd.Series, decimal: str, thousands: str | None = None) -> pd.Series:
    """Text ``values`` as numbers (NaN where one is not), read with these marks."""
    text = values.str.replace(thousands, "", regex=False) if thousands else values
    points = text.str.replace(",", ".", regex=False) if decimal == "," else text
    return pd.to_numeric(points, errors="coerce")


def _is_number(text: str, decimal: str = ".") -> bool:
    try:
        float(text.replace(",", ".") if decimal == "," else text)
    except ValueError:
        return False
    return bool(text.strip())


def has_header(
    rows: Sequence[Sequence[str]], decimal: str = ".", target: str | None = None
) -> bool:
    """Is the first of ``rows`` a header? Yes when it names the ``target`` column (as
    normalised) and that column's later rows do not repeat the name: columns may be
    named by numbers (a spectrum's wavelengths, years). Else yes when its fields are
    distinct names (none empty or a number) and at least one of them is unlike its
    column's values: numbers below a name, or a name no later row repeats. The first
    field may be empty (the row index pandas' ``to_csv()`` and R's ``write.csv`` write
    has no name), and so may the last when every row ends with a separator (an export
    that closes each line with one: an empty column)."""
    first, rest = rows[0], rows[1:]
    if target is not None and _names_target(first, rest, target):
        return True
    start = 1 if len(first) > 1 and not first[0].strip() else 0
    trailing = len(first) > start + 1 and not first[-1].strip()
    if trailing and any(len(row) == len(first) and row[-1].strip() for row in rest):
        return False  # an unnamed column with values: no header's
    names = first[start : len(first) - trailing]
    if any(not f.strip() or _is_number(f, decimal) for f in names) or len(set(names)) < len(names):
        return False
    if not rest:
        return True
    for position, name in enumerate(names, start=start):
        below = [row[position] for row in rest if position < len(row)]
        numbers = sum(_is_number(v, decimal) for v in below)
        if 2 * numbers > len(below) or name not in below:
            return True
    return False


# How far down a header row under a title or group headings is looked for.
_HEADINGS_ROWS = 10


def _refuse_headings(name: str, rows: Sequence[Sequence[str]], decimal: str, target: str) -> None:
    """A UsageError when the column names are not the first row but one below it (under a
    report's title or a spreadsheet's group headings, "Money,,Person,"): a row, none of
    its fields a number, that names the ``target`` the first row does not name."""
    if _target_at(rows[0], target) is not None:
        return
    for number, row in enumerate(rows[1:_HEADINGS_ROWS], start=2):
        if _target_at(row, target) is not None and not any(_is_number(f, decimal) for f in row):
            above = " | ".join(
                clip(", ".join(f for f in r if f.strip()), 40) for r in rows[: min(number - 1, 2)]
            )
            raise UsageError(
                f"{name}: the column names ({target!r} among them) come after {number - 1} "
                f"row(s) of a title or group headings ({clip(above, 80)}); delete the rows "
                "above the names and rerun mlops init"
            )


def _names_target(first: Sequence[str], rest: Sequence[Sequence[str]], target: str) -> bool:
    if (position := _target_at(first, target)) is None:
        return False
    return all(position >= len(row) or row[position] != first[position] for row in rest)


def _target_at(row: Sequence[str], target: str) -> int | None:
    """The position of the field of ``row`` that names ``target`` (as normalised)."""
    wanted = normalise_name(target)
    named = (i for i, field in enumerate(row) if field.strip() and normalise_name(field) == wanted)
    return next(named, None)


def _as_text(
    name: str, text: str, separator: str, columns: tuple[str, ...] | None, comment: str | None
) -> pd.DataFrame:
    """Every field as it is written (nothing read as missing), to look for markers."""
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=separator,
            lineterminator=line_end(text),
            header=None if columns else 0,
            names=columns,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            comment=comment,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        widened = re.search(r"Expected (\d+) fields? in line (\d+), saw (\d+)", detail)
        if widened and int(widened[1]) < int(widened[3]):
            expected, line, saw = widened.groups()
            raise UsageError(
                f"{name}: not a readable CSV file: line {line} has {saw} fields, the lines "
                f"above it {expected}; if the file starts with a title or notes above its "
                "header row, delete those lines"
            ) from None
        raise UsageError(f"{name}: not a readable CSV file ({detail})") from None


# A value known only to lie beyond a bound: under a lab's detection limit ("<0.5",
# "< 5"), over an instrument's range (">60", ">=100"). Read as a number, it would make
# its column text: a category per value, and the column lost to the model.
_CENSORED = {
    mark: re.compile(rf"[<>≤≥]=?\s*[+-]?(?:\d+(?:{re.escape(mark)}\d*)?|{re.escape(mark)}\d+)")
    for mark in (".", ",")
}


def censored(text: str, decimal: str = ".") -> bool:
    """Whether ``text`` is a censored value: a bound with ``<``, ``>``, ``<=``, ``>=``,
    ``≤`` or ``≥`` before it."""
    return _CENSORED[decimal].fullmatch(text) is not None


# Rows below the first that tell a units row from a stray value.
_UNITS_ROWS = 10


def _refuse_units_row(name: str, frame: pd.DataFrame, decimal: str, thousands: str | None) -> None:
    """A UsageError when the row under the header gives units or notes (``$1000s``,
    ``per capita``, ``°C``): text in a column whose other values are all numbers, and no
    number in any such column. Read as data, it made every one of those columns text
    and a numeric target a class per value."""
    if len(frame) <= _UNITS_ROWS:
        return
    texts, numbers_below = {}, False
    for column in frame.columns:
        values = frame[column].str.strip()
        numbers = _numbers(values, decimal, thousands).notna()
        gaps = values.str.lower().isin({*MARKERS, _EMPTY})
        if not numbers.iloc[1:].any() or not (numbers | gaps).iloc[1:].all():
            continue  # not a column of numbers below its first row
        numbers_below |= bool(numbers.iloc[0])
        if not numbers.iloc[0] and not gaps.iloc[0]:
            texts[str(column)] = values.iloc[0]
    if texts and not numbers_below:
        shown = ", ".join(f"{c} {v!r}" for c, v in list(texts.items())[:3])
        raise UsageError(
            f"{name}: the row under the header holds text in {len(texts)} column(s) whose "
            f"other values are numbers ({shown}); if it gives units or notes, delete that "
            "row (or move them into the column names)"
        )


def missing_markers(
    frame: pd.DataFrame, decimal: str = ".", thousands: str | None = None
) -> dict[str, tuple[str, ...]]:
    """Per column of ``frame`` (every field as text; numbers with the ``decimal`` mark and
    the ``thousands`` one), the markers of a missing value in it: ``MARKERS`` in a column
    otherwise numeric, ``?`` in any column."""
    found: dict[str, tuple[str, ...]] = {}
    for column in frame.columns:
        values = frame[column].str.strip()
        numeric = _numbers(values, decimal, thousands).notna()
        others = set(values[~numeric].unique())
        plain = {o for o in others if o.lower() in {*MARKERS, _EMPTY}}
        if numeric.any() and all(censored(o, decimal) for o in others - plain):
            markers = others
        else:
            markers = others & set(_TEXT_MARKERS)
        if markers:
            found[str(column)] = tuple(sorted(markers))
    return found
