"""Users' data files: the configured source and files given with ``--input``.

CSV, Parquet, Feather (Arrow IPC) or JSON (an array of row objects, or JSON lines),
optionally compressed (gzip, bzip2, xz, or a ZIP archive of one file; whatever the
name). The format is told by content (params.yaml ``data.format`` may name it for the
source), and for ``--input`` a CSV's separator, decimal mark and header are sniffed.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mlops.config import DataConfig, DecimalMark
from mlops.errors import UsageError
from mlops.io.files import atomic_path, require_file

if TYPE_CHECKING:
    import pandas as pd


PARQUET_MAGIC = b"PAR1"
ARROW_MAGIC = b"ARROW1"  # a Feather (version 2) file is an Arrow IPC file

# The formats that carry their own column types, as ``content_format`` names them.
FileFormat = Literal["csv", "parquet", "feather", "json"]


# JSON's start: an object, or an array of them (or none); not a CSV's "[id],[name]".
_JSON_START = re.compile(rb"(\xef\xbb\xbf)?\s*(\{|\[\s*[{\]])")


def content_format(data: bytes) -> FileFormat:
    """What uncompressed ``data`` holds: Parquet or Feather by their magic bytes, JSON
    when it opens with an object or an array of objects, else CSV."""
    if data[:4] == PARQUET_MAGIC:
        return "parquet"
    if data[:6] == ARROW_MAGIC:
        return "feather"
    if _JSON_START.match(data):
        return "json"
    return "csv"


def read_source(config: DataConfig, path: Path | None = None) -> pd.DataFrame:
    """Read ``path`` (default: params.yaml data.source) in the format configured (told by
    content when ``auto``)."""
    what = "input file" if path else "data source (params.yaml data.source)"
    path = path or Path(config.source)
    require_file(path, what)
    if path.stat().st_size == 0:
        raise UsageError(f"{path}: data source is empty")
    data = file_bytes(path)
    kind = content_format(data) if config.format == "auto" else config.format
    csv = kind == "csv"
    frame = _read_csv_source(path, data, config) if csv else typed_frame(path, data, kind)
    if frame.empty:
        raise UsageError(f"{path}: data source has no data rows")
    return marked_missing(frame, config.na_values)


def marked_missing(frame: pd.DataFrame, markers: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the text values that are a missing-value marker (params.yaml
    ``data.na_values``) once stripped made missing: pandas matches a CSV's field as it
    is written (a quoted ``"n/a "`` keeps its space), and a JSON, Parquet or Feather
    file's strings not at all."""
    import pandas as pd

    if not markers:
        return frame
    kinds = (pd.StringDtype, pd.CategoricalDtype)
    text = [n for n, c in frame.items() if c.dtype == object or isinstance(c.dtype, kinds)]
    wanted = set(markers)
    hit = {}
    for name in text:  # by distinct value: a column has far fewer than it has rows
        values = pd.Series(frame[name].dropna().unique())  # nested: refused on reading
        found = values[values.astype("str").str.strip().isin(wanted)]
        if len(found):
            hit[name] = frame[name].isin(found)
    if not hit:
        return frame
    frame = frame.copy()
    for name, mask in hit.items():
        frame[name] = frame[name].mask(mask)
    return frame


def file_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when they are compressed (``unpacked``)."""
    return unpacked(path, path.read_bytes())


# Leading bytes of the compressed forms a data set is downloaded in.
_GZIP, _BZIP2, _XZ = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")  # a ZIP archive; an empty one
# An Excel 97-2003 workbook (.xls) is an OLE2 compound file.
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SAVE_AS_CSV = "save its sheet as CSV (UTF-8) and use that file"


def unpacked(name: object, data: bytes) -> bytes:
    """``data`` as it is, or decompressed when it is gzip, bzip2 or xz data, or a ZIP
    archive of one file (whatever the name). A UsageError for a spreadsheet workbook,
    an archive of several files, or compressed data that does not decompress."""
    import bz2
    import lzma

    codecs = ((_GZIP, "gzip", gzip.decompress), (_BZIP2, "bzip2", bz2.decompress),
              (_XZ, "xz", lzma.decompress))  # fmt: skip
    for magic, codec, decompress in codecs:
        if data.startswith(magic):
            try:
                data = decompress(data)
            except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:
                raise UsageError(f"{name}: cannot decompress {codec} data ({exc})") from None
            break  # what it held is told below, as R's gzipped .RData is
    if data.startswith(_ZIP):
        return _unzipped(name, data)
    if data.startswith(_OLE2):
        raise UsageError(f"{name}: an Excel 97-2003 workbook (.xls), not a CSV; {_SAVE_AS_CSV}")
    for test, what, how in _FOREIGN:
        if test(data):
            raise UsageError(
                f"{name}: {what}, not a CSV, Parquet, Feather or JSON file; {how} and use that file"
            )
    return data


# Statistics packages' and databases' own files, told by their first bytes: what each
# is, and how to export it as a file the template reads.
_FOREIGN: tuple[tuple[Callable[[bytes], bool], str, str], ...] = (
    (
        lambda d: (
            d.startswith(b"<stata_dta>")
            or (
                d[:1] in (b"q", b"r", b"s")
                and d[1:2] in (b"\x01", b"\x02")
                and d[2:4] == b"\x01\x00"
            )
        ),
        "a Stata data file (.dta)",
        "write it as CSV or Parquet (pandas.read_stata(path).to_parquet(...))",
    ),
    (
        lambda d: d[:4] in (b"$FL2", b"$FL3"),
        "an SPSS data file (.sav)",
        "write it as CSV or Parquet (pandas.read_spss(path), with pyreadstat)",
    ),
    (
        lambda d: d[12:16] == b"\xc2\xea\x81\x60",
        "a SAS data set (.sas7bdat)",
        "write it as CSV or Parquet (pandas.read_sas(path).to_parquet(...))",
    ),
    (
        lambda d: d.startswith(b"SQLite format 3\x00"),
        "an SQLite database",
        "export a table as CSV (sqlite3 -header -csv FILE 'SELECT * FROM t' > t.csv)",
    ),
    (
        lambda d: d[:5] in (b"RDX2\n", b"RDX3\n") or d[:4] in (b"X\n\x00\x00", b"A\n\x00\x00"),
        "an R data file (.RData or .rds)",
        "write the data frame from R with write.csv(frame, 'data.csv', row.names = FALSE)",
    ),
)


def _unzipped(name: object, data: bytes) -> bytes:
    """The one file a ZIP archive holds (a spreadsheet workbook is refused)."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [
                m
                for m in archive.namelist()
                if not m.endswith("/") and not m.startswith("__MACOSX/")
            ]
            if "xl/workbook.xml" in members:
                raise UsageError(f"{name}: an Excel workbook (.xlsx), not a CSV; {_SAVE_AS_CSV}")
            if "content.xml" in members and "mimetype" in members:
                raise UsageError(f"{name}: an OpenDocument workbook, not a CSV; {_SAVE_AS_CSV}")
            if len(members) != 1:
                listed = ", ".join(members[:5]) + (", ..." if len(members) > 5 else "")
                raise UsageError(
                    f"{name}: a ZIP archive of {len(members)} files ({listed or 'none'}); "
                    "expected one data file in it: unzip it and use the file"
                )
            return archive.read(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise UsageError(f"{name}: cannot read the ZIP archive ({exc})") from None


def _read_csv_source(path: Path, data: bytes, config: DataConfig) -> pd.DataFrame:
    text = csv_text(path, data)
    if not text.strip():
        raise UsageError(f"{path}: data source is empty")
    names = list(config.columns) if config.columns else None
    return _parse_csv(
        path,
        text,
        config,
        sep=config.separator,
        decimal=config.decimal,
        header=config.header,
        names=names,
    )


# What a CSV that is not UTF-8 is read as: Windows-1252, the code page Excel saves
# "CSV" in on Windows set to a Western language ("M\xfcnchen"). The same bytes always
# give the same text, so a model trained on such a file is reproducible.
FALLBACK_ENCODING = "cp1252"


# Excel's "Unicode Text" (tab-separated) is UTF-16 opening with its byte-order mark.
_UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")
# A first line "sep=;" tells Excel a CSV's separator: not data, and the separator is
# sniffed from the lines below it as from any file's.
_EXCEL_SEPARATOR_LINE = re.compile(r"sep=[^\r\n]\r?\n")


def decoded(name: object, data: bytes, kind: str = "a CSV") -> tuple[str, str]:
    """A CSV's (or ``kind``'s) bytes as (text, the encoding it was read in): UTF-16 after
    its byte-order mark, else UTF-8 (a byte-order mark, as spreadsheets write one,
    dropped so that it does not become part of the first column's name), else
    ``FALLBACK_ENCODING``; a UsageError when none reads them. Excel's "sep=" line is
    dropped."""
    text, encoding = _text(name, data, kind)
    if excel := _EXCEL_SEPARATOR_LINE.match(text):
        text = text[excel.end() :]
    return text, encoding


def _text(name: object, data: bytes, kind: str) -> tuple[str, str]:
    if data.startswith(_UTF16_MARKS):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise UsageError(f"{name}: {kind} opening as UTF-16 but not readable as it") from None
    if b"\x00" in data[:65536]:
        raise UsageError(f"{name}: not a CSV, Parquet, Feather or JSON file (binary content)")
    for encoding in ("utf-8-sig", FALLBACK_ENCODING):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UsageError(f"{name}: {kind} in neither UTF-8 nor Windows-1252 text; save it as UTF-8")


def csv_text(name: object, data: bytes) -> str:
    """A CSV's bytes as text (see ``decoded``)."""
    return decoded(name, data)[0]


# What a CSV's field is read as missing by, besides params.yaml data.na_values: pandas'
# default list without "None", which names a category as often as it marks a gap (a
# treatment's outcome None/Some/Marked, a smoker's None/Light/Heavy), and which a class
# lost that way took a third of the rows with it. init lists "None" where a column is
# otherwise numbers (onboarding.sniff).
BLANK_MARKERS = (
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
    *("1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"),
)


def _parse_csv(
    path: Path,
    text: str,
    config: DataConfig,
    *,
    sep: str,
    decimal: str,
    header: bool,
    names: list[str] | None,
    as_text: bool = False,
) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=sep,
            lineterminator=line_end(text),
            header=0 if header else None,
            names=names,
            dtype=str if as_text else None,
            na_values=None if as_text else [*BLANK_MARKERS, *config.na_values],
            keep_default_na=False,
            comment=config.comment,
            decimal=decimal,
            thousands=None if as_text else config.thousands,
            skipinitialspace=True,
            skip_blank_lines=True,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise UsageError(
            f"{path}: not a CSV file as configured in params.yaml data ({detail})"
        ) from None


# (header?, column names) from a CSV's first row: ingestion.csv_layout (pure logic; a
# stage passes it in, so that io, which every stage imports, does not import ingestion).
CsvLayout = Callable[[Sequence[str]], tuple[bool, list[str] | None]]


_SEPARATORS = (",", ";", "\t", "|")
# Columns lined up by runs of spaces or tabs (UCI's ".data" files, fixed-width reports):
# pandas' own whitespace separator, which keeps a quoted "chevrolet chevelle malibu" whole.
WHITESPACE = r"\s+"
_WHITESPACE_FIELD = re.compile(r'"[^"]*"|\S+')


_SNIFF_LINES = 50


def read_input(
    path: Path, config: DataConfig, layout: CsvLayout, *, as_text: bool = False
) -> pd.DataFrame:
    """A file given with ``--input``: Parquet, CSV or gzipped CSV, told apart by content.

    A CSV's separator is sniffed (params.yaml ``data.separator`` on a tie), and so is
    its decimal mark (``data.decimal`` when its numbers do not tell), and
    ``layout`` (``ingestion.csv_layout``) tells from its first row whether that
    row is a header or else which names the columns take. ``as_text`` keeps a CSV's
    fields as the text they hold (no number parsing, no missing-value markers), so
    that what is echoed back is what the user wrote.
    """
    require_file(path, "input file")
    data = file_bytes(path)
    if not data.strip():
        raise UsageError(f"{path}: input file is empty")
    kind = content_format(data)
    if kind == "csv":
        frame = _read_csv_input(path, csv_text(path, data), config, layout, as_text)
    else:
        frame = typed_frame(path, data, kind)
    if frame.empty:
        raise UsageError(f"{path}: input file has no data rows")
    return frame if as_text else marked_missing(frame, config.na_values)


def is_typed(path: Path) -> bool:
    """Whether ``path`` holds a format with its own column types, not CSV (by content, as
    ``read_input`` tells), from its first bytes only (decompressed as a stream)."""
    import bz2
    import lzma

    with path.open("rb") as handle:
        start = handle.read(8)
        handle.seek(0)
        openers = ((_GZIP, gzip.open), (_BZIP2, bz2.open), (_XZ, lzma.open))
        opener = next((o for magic, o in openers if start.startswith(magic)), None)
        if opener is not None:
            with opener(handle) as stream:
                return content_format(stream.read(_HEAD_BYTES)) != "csv"
        if not start.startswith(_ZIP):
            return content_format(handle.read(_HEAD_BYTES)) != "csv"
    return content_format(file_bytes(path)[:_HEAD_BYTES]) != "csv"  # a ZIP: rare


_HEAD_BYTES = 4096  # enough for any format's start, and the whitespace before JSON's


def typed_frame(path: Path, data: bytes, kind: FileFormat) -> pd.DataFrame:
    """``data`` (uncompressed) read as ``kind``, a format with its own column types and
    its own missing value (null); ``marked_missing`` then applies the markers."""
    import pandas as pd
    import pyarrow

    if kind == "json":
        return _json_frame(path, decoded(path, data, "a JSON file")[0])
    reader = pd.read_parquet if kind == "parquet" else pd.read_feather
    try:
        frame = reader(io.BytesIO(data))
    except (pyarrow.ArrowException, OSError) as exc:
        name = "Parquet" if kind == "parquet" else "Feather (Arrow IPC)"
        raise UsageError(f"{path}: not a readable {name} file ({exc})") from None
    _refuse_nested(path, frame)
    return _index_as_columns(frame)


def _refuse_nested(path: Path, frame: pd.DataFrame) -> None:
    """A UsageError for a column of lists, arrays or mappings (Parquet's and Arrow's
    nested types), as for a nested JSON value: read on, each cell became the text of its
    list ("[0 1]"), a category per combination. A column's cells share its type, so
    its first value tells."""
    import numpy as np

    for name, column in frame.items():
        if column.dtype != object:
            continue
        present = column.dropna()
        if len(present) and isinstance(present.iloc[0], list | tuple | dict | np.ndarray):
            raise UsageError(
                f"{path}: column {str(name)!r} holds nested values (lists or mappings); "
                "expected one number, string, true/false or null per cell (flatten it "
                "into columns first)"
            )


def _index_as_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A named index, which pandas writes into a Parquet file as a column its metadata
    turns back into the index (a customer id, a time stamp), as the columns it is in the
    file; an unnamed one (the row numbers of a filtered frame) is dropped."""
    named = [n for n in frame.index.names if n is not None and n not in frame.columns]
    if named:
        frame = frame.reset_index(level=named)
    return frame.reset_index(drop=True)


def write_typed(path: Path, table: pd.DataFrame, kind: FileFormat) -> None:
    """Write ``table`` as ``kind`` (Parquet, Feather or JSON lines), atomically."""
    if kind == "json":
        data = "".join(f"{row}\n" for row in _json_rows(table)).encode("utf-8")
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return
    with atomic_path(path) as tmp:
        if kind == "parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.reset_index(drop=True).to_feather(tmp)


_JSON_ROWS = 'expected an array of row objects, or one row object per line ("JSON lines")'


def _json_frame(path: Path, text: str) -> pd.DataFrame:
    """The rows of a JSON array of objects, of JSON lines or of pandas' {column: {row:
    value}}, columns in the order they first appear (a key a row leaves out is missing
    there). Nested values and rows that are not objects are refused."""
    import pandas as pd

    rows: list[dict[str, object]] = []
    for number, row in enumerate(_json_rows_of(path, text), 1):
        if not isinstance(row, dict):
            raise UsageError(f"{path}: row {number} is a JSON {type(row).__name__}; {_JSON_ROWS}")
        rows.append(row)
        nested = next((key for key, value in row.items() if isinstance(value, dict | list)), None)
        if nested is not None:
            raise UsageError(
                f"{path}: row {number}'s {nested!r} holds a nested JSON value; expected "
                "one number, string, true/false or null per column (flatten the rows first)"
            )
    return pd.DataFrame.from_records(rows) if rows else pd.DataFrame()


def _json_rows_of(path: Path, text: str) -> list[object]:
    """The parsed rows: the whole text as one JSON value, else one value per line."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":  # more than one value: JSON lines
            raise UsageError(f"{path}: not a readable JSON file ({exc})") from None
    else:
        if isinstance(document, list):
            return document
        if (
            isinstance(document, dict)
            and document
            and all(isinstance(column, dict) for column in document.values())
        ):  # {column: {row: value}}, what pandas' to_json writes unless told otherwise
            keys = dict.fromkeys(key for column in document.values() for key in column)
            return [{name: column.get(key) for name, column in document.items()} for key in keys]
        return [document]  # one row (a JSON-lines file of one line)
    rows = []
    # JSON lines end at "\n" only: a value may hold "\u2028", which splitlines() splits at.
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"{path}: line {number} is not JSON ({exc.msg}); {_JSON_ROWS}"
                ) from None
    return rows


def _read_csv_input(
    path: Path, text: str, config: DataConfig, layout: CsvLayout, as_text: bool
) -> pd.DataFrame:
    lines = data_lines(text, config.comment)
    if not lines:
        raise UsageError(f"{path}: input file has no data rows")
    sep = sniff_separator(lines, config.separator, config.comment)
    rows = [_split_line(line, sep) for line in lines]
    decimal = sniff_decimal(rows, sep, config.decimal)
    first = rows[0]
    header, names = layout(first)
    if names is not None and len(names) != len(first):
        raise UsageError(
            f"{path}: {len(first)} fields in the first row, but params.yaml data.columns "
            f"names {len(names)} (a headerless file needs them all, the target optional)"
        )
    return _parse_csv(
        path, text, config, sep=sep, decimal=decimal, header=header, names=names, as_text=as_text
    )


def line_end(text: str) -> str | None:
    """The character that ends a CSV's lines, for pandas' ``lineterminator``: "\n" in a
    file whose lines end so and whose values hold a bare carriage return (R's write.csv
    leaves one unquoted in a tweet's text), which pandas would otherwise take for a line
    end, cutting the row in two; None (pandas' own: "\n", "\r\n" or "\r") otherwise."""
    if "\r" in text and "\n" in text and "\r\n" not in text:
        return "\n"
    return None


def csv_lines(text: str) -> list[str]:
    """``text``'s lines as pandas reads them (``line_end``): not str.splitlines(), which
    also ends one at a form feed, "\x1c"-"\x1e", "\x85" or a Unicode line separator."""
    return text.split("\n") if line_end(text) else _LINE_ENDS.split(text)


_LINE_ENDS = re.compile(r"\r\n|\r|\n")


def data_lines(text: str, comment: str | None) -> list[str]:
    """The first lines that hold data, without comments (from ``comment`` to the end of
    the line, as pandas reads them) and blank lines; a carriage return inside one (see
    ``line_end``) as a space, which the csv module, sniffing them, refuses unquoted."""
    lines = (
        (line.partition(comment)[0] if comment else line).replace("\r", " ")
        for line in csv_lines(text)
    )
    kept = (line for line in lines if line.strip())
    return [line for _, line in zip(range(_SNIFF_LINES), kept, strict=False)]


def _lined_up(lines: list[str], fields: int, *, split: bool) -> bool:
    """Whether ``lines`` are columns lined up by runs of whitespace: each splits on them
    into the same number of fields, more than the ``fields`` the best single-character
    separator gives, no unquoted one holding a separator. When that separator ``split``
    them (a tab before the last, quoted field of UCI's auto-mpg.data), every line must
    also hold a run of two spaces: a tab-separated file whose dates hold one space
    ("2024-03-01 09:30") is not lined up."""
    rows = [_WHITESPACE_FIELD.findall(line) for line in lines]
    counts = {len(row) for row in rows}
    if len(counts) != 1 or counts.pop() <= fields:
        return False
    unquoted = (field for row in rows for field in row if not field.startswith('"'))
    if any(sep in field for field in unquoted for sep in _SEPARATORS):
        return False
    return not split or all("  " in line for line in lines)


def split_rows(lines: list[str], sep: str) -> list[list[str]]:
    """``lines`` (a CSV's first, ``data_lines``) split into fields by ``sep``."""
    if len(sep) != 1:
        return [_split_line(line, sep) for line in lines]
    return list(csv.reader(lines, delimiter=sep, skipinitialspace=True))


def _split_line(line: str, sep: str) -> list[str]:
    if sep == WHITESPACE:
        return [field.strip('"') for field in _WHITESPACE_FIELD.findall(line)]
    if len(sep) != 1:
        return [field.strip() for field in line.split(sep)]
    return next(csv.reader([line], delimiter=sep, skipinitialspace=True))


# Numbers as a spreadsheet set to a European locale writes them ("3,5", "-0,25"), as
# everyone else writes them ("3.5"), and a comma that may group thousands ("1,000").
_COMMA_NUMBER = re.compile(r"[+-]?(\d+,\d*|,\d+)([eE][+-]?\d+)?")
_POINT_NUMBER = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2},\d{3}")  # never "0,125"


def sniff_decimal(
    rows: Sequence[Sequence[str]], separator: str, configured: DecimalMark = "."
) -> DecimalMark:
    """The decimal mark of a CSV split into ``rows``: "." in a comma-separated file or
    where a field is a number with a decimal point; "," where one is a number with a
    decimal comma that cannot be grouping thousands (as "1,000" can); else ``configured``."""
    if separator == ",":
        return "."
    fields = [field.strip() for row in rows for field in row]
    if any(_POINT_NUMBER.fullmatch(field) for field in fields):
        return "."
    commas = [field for field in fields if _COMMA_NUMBER.fullmatch(field)]
    if commas and not all(_THOUSANDS.fullmatch(field) for field in commas):
        return ","
    return configured


def sniff_separator(lines: list[str], configured: str, comment: str | None) -> str:
    """Of the separators that split every line into the same number (> 1) of fields, the
    one giving the most fields (the configured one on a tie: "a;b;1,5" is ";"); else
    csv.Sniffer's guess, else the configured one. Never the comment character."""
    if len(configured) != 1:
        return configured  # a regular expression or a multi-character separator: as told
    candidates = [s for s in dict.fromkeys((configured, *_SEPARATORS)) if s != comment]
    fields: dict[str, int] = {}
    for sep in candidates:
        counts = {len(row) for row in csv.reader(lines, delimiter=sep)}
        if len(counts) == 1 and (count := counts.pop()) > 1:
            fields[sep] = count
    best = max(fields, key=lambda sep: fields[sep]) if fields else None  # first of equals
    if _lined_up(lines, fields[best] if best else 1, split=best is not None):
        return WHITESPACE
    if best is not None:
        return best
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(candidates)).delimiter
    except csv.Error:
        return configured


# What an output file's name asks for: its suffixes -> (format, gzip?).
_OUTPUTS: dict[str, tuple[str, bool]] = {
    ".csv": ("csv", False),
    ".csv.gz": ("csv", True),
    ".tsv": ("tsv", False),
    ".tsv.gz": ("tsv", True),
    ".parquet": ("parquet", False),
    ".pq": ("parquet", False),
    ".json": ("json", False),
    ".jsonl": ("jsonl", False),
    ".ndjson": ("jsonl", False),
}


def output_format(path: Path) -> tuple[str, bool]:
    """(format, gzipped) that ``path``'s name asks for; a UsageError for any other name,
    raised before any work is done."""
    name = path.name.lower()
    for suffix in sorted(_OUTPUTS, key=len, reverse=True):  # ".csv.gz" before ".gz"
        if name.endswith(suffix):
            return _OUTPUTS[suffix]
    raise UsageError(
        f"{path}: cannot tell the output format from its name; expected one of "
        f"{', '.join(_OUTPUTS)}"
    )


def is_delimited(path: Path) -> bool:
    """Whether ``path``'s name asks for a delimited text file (CSV or TSV, gzipped or not)."""
    return output_format(path)[0] in ("csv", "tsv")


def write_output(path: Path, table: pd.DataFrame) -> None:
    """Write ``table`` in the format ``path``'s name asks for, atomically, every digit kept
    (not ``files.write_csv``, which rounds report tables to 6 significant digits)."""
    kind, compressed = output_format(path)
    if kind == "parquet":
        write_typed(path, table, "parquet")
        return
    if kind in ("csv", "tsv"):
        text = table.to_csv(index=False, sep="," if kind == "csv" else "\t")
    else:
        rows = _json_rows(table)
        text = "".join(f"{row}\n" for row in rows) if kind == "jsonl" else f"[{','.join(rows)}]\n"
    data = text.encode("utf-8")
    with atomic_path(path) as tmp:
        # mtime=0: the same predictions make the same bytes.
        tmp.write_bytes(gzip.compress(data, mtime=0) if compressed else data)


def _json_rows(table: pd.DataFrame) -> list[str]:
    """Each row as a JSON object with every digit (pandas' to_json keeps 10 by default and
    15 at most); a missing value is null."""
    plain = table.astype(object).where(table.notna(), None)
    return [
        json.dumps(row, ensure_ascii=False, allow_nan=False, default=str)
        for row in plain.to_dict(orient="records")
    ]
