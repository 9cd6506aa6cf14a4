"""Reading a file given with --input: format, separator and header sniffed, target optional."""

from __future__ import annotations

import bz2
import csv
import gzip
import io as stdio
import lzma
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from mlops.config import DataConfig, Params
from mlops.data.ingestion import csv_layout, csv_names, ingest
from mlops.errors import UsageError
from mlops.io import tables
from tests.input_files import VARIANTS, Variant, expected, write_variant
from tests.sklearn_frames import DIABETES_TARGET, WINE_TARGET, data_config, diabetes, wine


@pytest.fixture
def config(params: Params) -> DataConfig:
    return params.data


def read(path: Path, config: DataConfig, names: tuple[str, ...] = ()) -> pd.DataFrame:
    return tables.read_input(path, config, csv_layout(config, names))


def scored(path: Path, config: DataConfig, names: tuple[str, ...] = ()) -> pd.DataFrame:
    return ingest(read(path, config, names), config, require_target=False)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_every_format_reads_as_the_source_does(
    variant: Variant, config: DataConfig, root: Path, tmp_path: Path
) -> None:
    path = write_variant(variant, tmp_path, root, config)
    want = expected(variant, tmp_path, root, config)
    pd.testing.assert_frame_equal(scored(path, config), want)
    assert ("income" in want) is variant.labelled


def test_the_separator_is_sniffed(config: DataConfig, tmp_path: Path) -> None:
    for sep in (";", "\t", "|"):
        path = tmp_path / "batch.csv"
        path.write_text(f"Age{sep}Sex{sep}Income\n30{sep}Male{sep}>50K\n41{sep}Female{sep}<=50K.\n")
        frame = scored(path, config.model_copy(update={"comment": None}))
        assert frame.to_dict("list") == {
            "age": [30.0, 41.0],
            "sex": ["Male", "Female"],
            "income": [1, 0],
        }, sep


def test_columns_lined_up_by_spaces_are_sniffed_and_read_as_configured(
    config: DataConfig, tmp_path: Path
) -> None:
    """A batch lined up by spaces is sniffed like any CSV; a source whose params.yaml says
    ``separator: '\\s+'`` (what init writes for one) is read by it, quoted names whole."""
    path = tmp_path / "batch.txt"
    path.write_text('  Age   Sex      Income\n  30    "Male"   >50K\n  41    Female   <=50K.\n')
    frame = scored(path, config.model_copy(update={"comment": None}))
    assert frame.to_dict("list") == {
        "age": [30.0, 41.0],
        "sex": ["Male", "Female"],
        "income": [1, 0],
    }
    source = tmp_path / "auto.data"
    source.write_text('18.0   8\t"chevrolet chevelle malibu"\n15.0   ?\t"buick skylark 320"\n')
    lined = config.model_copy(
        update={
            "separator": tables.WHITESPACE,
            "header": False,
            "columns": ("mpg", "cylinders", "name"),
            "na_values": ("?",),
            "comment": None,
        }
    )
    read = tables.read_source(lined, source)
    assert read["name"].tolist() == ["chevrolet chevelle malibu", "buick skylark 320"]
    assert read["cylinders"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        # Excel's "Unicode Text": tab-separated UTF-16 with its byte-order mark.
        ("unicode.txt", "Age\tSex\tIncome\n30\tMäle\t>50K\n41\tX\t<=50K\n".encode("utf-16")),
        (
            "unicode-be.txt",
            "\ufeffAge\tSex\tIncome\n30\tMäle\t>50K\n41\tX\t<=50K\n".encode("utf-16-be"),
        ),
        # Excel's "sep=" line above the header names the separator.
        ("excel.csv", "sep=;\r\nAge;Sex;Income\r\n30;Mäle;>50K\r\n41;X;<=50K\r\n".encode()),
    ],
)
def test_excels_unicode_text_and_separator_line_read(
    name: str, content: bytes, config: DataConfig, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    want = {"age": [30.0, 41.0], "sex": ["Mäle", "X"], "income": [1, 0]}
    assert scored(path, config.model_copy(update={"comment": None})).to_dict("list") == want
    source = config.model_copy(
        update={"header": True, "columns": None, "comment": None, "separator": "\t"}
    )
    if name == "excel.csv":
        source = source.model_copy(update={"separator": ";"})
    assert tables.read_source(source, path).to_dict("list") == {
        "Age": [30, 41],
        "Sex": ["Mäle", "X"],
        "Income": [">50K", "<=50K"],
    }


def test_line_breaks_inside_values_do_not_cut_rows(config: DataConfig, tmp_path: Path) -> None:
    """R's write.csv leaves a tweet's bare carriage return unquoted, pandas took it for a
    line end: a row cut in two, its tail a row of its own whose fields moved left (a
    timestamp as a class, text in a count column). A Unicode line separator in a value
    cut the lines sniffing reads."""
    path = tmp_path / "tweets.csv"
    path.write_bytes("Age,Sex,Note,Income\n30,Male,a\rb,>50K\n41,Female,c\u2028d,<=50K.\n".encode())
    source = config.model_copy(update={"header": True, "columns": None, "comment": None})
    frame = tables.read_source(source, path)
    assert frame["Note"].tolist() == ["a\rb", "c\u2028d"]
    assert frame["Income"].tolist() == [">50K", "<=50K."]
    assert scored(path, source)["age"].tolist() == [30.0, 41.0]
    lines = tmp_path / "tweets.jsonl"
    lines.write_text('{"Age": 30, "Note": "a\u2028b"}\n{"Age": 41, "Note": "c"}\n')
    assert read(lines, config)["Note"].tolist() == ["a\u2028b", "c"]


def test_a_byte_order_mark_is_not_part_of_the_first_name(
    config: DataConfig, tmp_path: Path
) -> None:
    """Spreadsheets save "CSV UTF-8" with a BOM; read as plain UTF-8 it would rename the
    first column to "\ufeffage"."""
    path = tmp_path / "excel.csv"
    path.write_bytes("Age,Sex\n30,Male\n".encode("utf-8-sig"))
    assert scored(path, config).to_dict("list") == {"age": [30.0], "sex": ["Male"]}
    source = config.model_copy(update={"header": True, "columns": None, "comment": None})
    assert list(tables.read_source(source, path).columns) == ["Age", "Sex"]


def test_the_comment_character_is_never_the_separator(config: DataConfig, tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    path.write_text("|a note\nAge,Sex|x\n30,Male|y\n")  # comment: "|" in params.yaml
    assert scored(path, config).to_dict("list") == {"age": [30.0], "sex": ["Male"]}


def test_a_decimal_comma_does_not_make_a_separator(config: DataConfig, tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    path.write_text("age;capital_gain;sex\n30;1,5;Male\n41;-2,25;Female\n")
    frame = read(path, config)
    assert list(frame.columns) == ["age", "capital_gain", "sex"]
    assert frame["capital_gain"].tolist() == [1.5, -2.25]  # numbers, as they were meant


@pytest.mark.parametrize(
    ("text", "configured", "values"),
    [
        # The file's own numbers tell its decimal mark, whatever params.yaml says.
        ("age;sex\n1.5;x\n2;y\n", ",", [1.5, 2.0]),
        ("age;sex\n1,5;x\n2;y\n", ".", [1.5, 2.0]),
        ("age\tsex\n0,125\tx\n", ".", [0.125]),
        # They do not: whole numbers, or commas that may group thousands -> params.yaml.
        ("age;sex\n1;x\n2;y\n", ",", [1, 2]),
        ("age;sex\n1,000;x\n", ",", [1.0]),
        ("age;sex\n1,000;x\n", ".", ["1,000"]),
        # A comma-separated file cannot use a decimal comma.
        ("age,sex\n1.5,x\n", ",", [1.5]),
    ],
)
def test_a_files_decimal_mark_is_sniffed_else_configured(
    config: DataConfig, tmp_path: Path, text: str, configured: str, values: list[object]
) -> None:
    path = tmp_path / "batch.csv"
    path.write_text(text)
    setting = {"decimal": configured, "separator": ";", "comment": None}
    frame = read(path, config.model_copy(update=setting))
    assert frame["age"].tolist() == values


def test_the_source_reads_with_the_configured_decimal_mark(
    config: DataConfig, tmp_path: Path
) -> None:
    path = tmp_path / "source.csv"
    path.write_text("a;b\n1,5;x\n2,25;y\n")
    source = {"header": True, "columns": None, "comment": None, "separator": ";"}
    comma = tables.read_source(config.model_copy(update={**source, "decimal": ","}), path)
    point = tables.read_source(config.model_copy(update=source), path)
    assert comma["a"].tolist() == [1.5, 2.25]
    assert point["a"].tolist() == ["1,5", "2,25"]  # as told: text, which the contract refuses


def test_a_header_is_recognised_by_the_contracts_names(config: DataConfig, tmp_path: Path) -> None:
    # params.yaml names no columns (a headerless source would be numbered), yet the
    # header names what the contract does.
    unnamed = config.model_copy(update={"header": False, "columns": None})
    path = tmp_path / "batch.csv"
    path.write_text("Hours per week,Native-Country\n40,Cuba\n")
    frame = scored(path, unnamed, names=("hours_per_week", "native_country"))
    assert frame.to_dict("list") == {"hours_per_week": [40.0], "native_country": ["Cuba"]}
    assert list(scored(path, unnamed).columns) == ["0", "1"]  # nothing to recognise it by


def test_a_header_is_taken_as_params_say_when_no_name_matches(
    config: DataConfig, tmp_path: Path
) -> None:
    path = tmp_path / "batch.csv"
    path.write_text("x,y\n1,2\n")
    frame = read(path, config.model_copy(update={"header": True, "columns": None}))
    assert list(frame.columns) == ["x", "y"]


def test_a_gzipped_parquet_file_is_read(config: DataConfig, tmp_path: Path) -> None:
    buffer = stdio.BytesIO()
    pd.DataFrame({"age": [30.0]}).to_parquet(buffer)
    path = tmp_path / "batch.parquet.gz"
    path.write_bytes(gzip.compress(buffer.getvalue()))
    assert read(path, config).to_dict("list") == {"age": [30.0]}


def test_a_parquet_files_named_index_is_read_as_its_columns(
    config: DataConfig, tmp_path: Path
) -> None:
    """pandas writes a named index (a customer id, a time stamp) into Parquet as a column
    that its metadata turns back into the index; it was lost, and with it a time order or
    an id. An unnamed index (the row numbers of a filtered frame) is no column."""
    times = pd.date_range("2024-01-01", periods=3, freq="h", name="ts")
    pd.DataFrame({"age": [30.0, 41.0, 52.0]}, index=times).to_parquet(path := tmp_path / "t.pq")
    read_back = read(path, config)
    assert list(read_back.columns) == ["ts", "age"]
    assert read_back["ts"].tolist() == list(times)
    keyed = pd.DataFrame({"age": [1.0, 2.0]}, index=pd.Index(["C1", "C2"], name="customer_id"))
    keyed.to_parquet(path)
    assert read(path, config).to_dict("list") == {"customer_id": ["C1", "C2"], "age": [1.0, 2.0]}
    pd.DataFrame({"age": [1.0, 2.0, 3.0]}).iloc[1:].to_parquet(path)
    assert read(path, config).to_dict("list") == {"age": [2.0, 3.0]}


@pytest.mark.parametrize("nested", [[[1, 2], [3], []], [{"k": 1}, {"k": 2}, None]])
def test_a_nested_column_is_refused_as_in_json(
    config: DataConfig, tmp_path: Path, nested: list[object]
) -> None:
    """A Parquet column of lists was read on as the text of each list ("[1 2]"): a
    category per combination. A nested JSON value is refused; so is this, in one line."""
    frame = pd.DataFrame({"age": [30.0, 41.0, 52.0], "tags": nested})
    for kind in ("parquet", "feather"):
        path = tmp_path / f"batch.{kind}"
        getattr(frame, f"to_{kind}")(path)
        marked = config.model_copy(update={"na_values": ("?",)})
        with pytest.raises(UsageError, match=r"column 'tags' holds nested values \(lists"):
            read(path, marked)
        with pytest.raises(UsageError, match=r"column 'tags' holds nested values \(lists"):
            tables.read_source(marked, path)


def test_none_is_a_category_unless_params_mark_it(config: DataConfig, tmp_path: Path) -> None:
    """pandas reads "None" as missing by default: a class None/Some/Marked lost its None
    rows. It is a value unless data.na_values lists it; R's NA and empty fields stay gaps."""
    path = tmp_path / "outcome.csv"
    path.write_text("improved,age,smoker\nNone,NA,None\nSome,30,\nMarked,41,Heavy\n")
    own = {"comment": None, "columns": (), "header": True}
    plain = read(path, config.model_copy(update={**own, "na_values": ()}))
    assert plain.astype(object).where(plain.notna(), None).to_dict("list") == {
        "improved": ["None", "Some", "Marked"],
        "age": [None, 30.0, 41.0],
        "smoker": ["None", None, "Heavy"],
    }
    marked = read(path, config.model_copy(update={**own, "na_values": ("None",)}))
    assert marked["improved"].isna().tolist() == [True, False, False]


@pytest.mark.parametrize("kind", ["csv", "json", "parquet"])
def test_missing_value_markers_apply_in_every_format_and_with_spaces(
    config: DataConfig, tmp_path: Path, kind: str
) -> None:
    """params.yaml data.na_values made missing only what pandas matched: a CSV's field as
    written (a quoted "? " kept its space) and no JSON or Parquet string at all, so a
    marker init had listed still reached ingest as a value."""
    frame = pd.DataFrame(
        {"age": ["30", "? ", "41"], "sex": pd.Categorical(["Male", "?", " Female"]), "n": 1.0}
    )
    path = tmp_path / f"batch.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    elif kind == "json":
        frame.to_json(path, orient="records")
    else:
        frame.to_parquet(path)
    own = {"comment": None, "columns": (), "header": True}  # a file with its own header
    marked = config.model_copy(update={**own, "na_values": ("?",)})
    for read_back in (read(path, marked), tables.read_source(marked, path)):
        assert read_back["age"].isna().tolist() == [False, True, False]
        assert read_back["sex"].isna().tolist() == [False, True, False]
        assert read_back["n"].tolist() == [1.0, 1.0, 1.0]
    assert scored(path, marked)["age"].tolist()[::2] == [30.0, 41.0]
    unmarked = config.model_copy(update={**own, "na_values": ()})
    assert read(path, unmarked)["age"].notna().all()
    as_text = tables.read_input(path, marked, csv_layout(marked, ()), as_text=True)
    assert as_text["age"].notna().all()  # echoed back as the user wrote it


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "input file is empty"),
        (b"|only a comment\n\n", "input file has no data rows"),
        (b"Age,Sex\n", "input file has no data rows"),
        (b"1, 2, 3\n", "3 fields in the first row, but params.yaml data.columns names 15"),
        (b"PAR1 not really", "not a readable Parquet file"),
        (b"ARROW1 not really", "not a readable Feather (Arrow IPC) file"),
        (b'[{"age": 30}', "not a readable JSON file (Expecting"),
        (b'{"age": 30}\n{"age": 41\n', "line 2 is not JSON (Expecting ',' delimiter); expected an"),
        (b'[{"age": 30}, [41]]', "row 2 is a JSON list; expected an array of row objects"),
        (b'{"age": 30}\n7\n', "row 2 is a JSON int; expected an array of row objects"),
        (b'{"age": 30, "job": {"title": "cook"}}', "row 1's 'job' holds a nested JSON value"),
        (b"[]", "input file has no data rows"),
        (b"\x00\x01binary", "not a CSV, Parquet, Feather or JSON file (binary content)"),
        (b'[{"city": "caf\x81"}]', "a JSON file in neither UTF-8 nor Windows-1252 text"),
        (b"city\ncaf\x81\n", "a CSV in neither UTF-8 nor Windows-1252 text"),
        (b"\xff\xfea\x00\x00\xd8", "a CSV opening as UTF-16 but not readable as it"),
    ],
)
def test_unreadable_inputs_are_one_line(
    content: bytes, message: str, config: DataConfig, tmp_path: Path
) -> None:
    path = tmp_path / "batch.csv"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="^" + str(path)) as error:
        read(path, config)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def _foreign(kind: str, tmp_path: Path) -> bytes:
    frame = pd.DataFrame({"age": [30.0, 41.0], "sex": ["M", "F"]})
    if kind.startswith("stata"):
        frame.to_stata(path := tmp_path / "data.dta", write_index=False, version=int(kind[5:]))
        return path.read_bytes()
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(path := tmp_path / "data.db") as db:
            frame.to_sql("people", db)
        return path.read_bytes()
    return {
        "spss": b"$FL2@(#) SPSS DATA FILE" + bytes(200),
        "sas": bytes(12) + b"\xc2\xea\x81\x60\xb3\x14\x11\xcf" + bytes(200),
        "rdata": gzip.compress(b"RDX3\nX\n" + bytes(40)),  # R's save() gzips by default
        "rds": gzip.compress(b"X\n\x00\x00\x00\x03" + bytes(40)),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        ("stata114", "a Stata data file (.dta)"),
        ("stata118", "a Stata data file (.dta)"),
        ("spss", "an SPSS data file (.sav)"),
        ("sas", "a SAS data set (.sas7bdat)"),
        ("sqlite", "an SQLite database"),
        ("rdata", "an R data file (.RData or .rds)"),
        ("rds", "an R data file (.RData or .rds)"),
    ],
)
def test_a_statistics_packages_file_is_named_with_how_to_export_it(
    kind: str, what: str, config: DataConfig, tmp_path: Path
) -> None:
    """It was "binary content": the line now says what the file is and how to write it
    as one the template reads."""
    path = tmp_path / "upload.bin"
    path.write_bytes(_foreign(kind, tmp_path))
    for reading in (lambda: read(path, config), lambda: tables.read_source(config, path)):
        with pytest.raises(UsageError) as error:
            reading()
        message = str(error.value)
        assert message.startswith(f"{path}: {what}, not a CSV, Parquet, Feather or JSON file; ")
        assert message.endswith(" and use that file")
        assert "\n" not in message


def test_json_rows_as_arrays_lines_or_pandas_columns(config: DataConfig, tmp_path: Path) -> None:
    """JSON's own types and null; a key a row leaves out is missing there; the columns in
    the order they first appear; pandas' to_json default ({column: {row: value}})."""
    want = {"Age": [30, 41, None], "Sex": ["Male", None, "Female"], "Bonus": [None, 1.5, None]}
    texts = {
        "array": '[{"Age": 30, "Sex": "Male"}, {"Age": 41, "Sex": null, "Bonus": 1.5},'
        ' {"Sex": "Female"}]',
        "lines": '\ufeff{"Age": 30, "Sex": "Male"}\n\n{"Age": 41, "Bonus": 1.5}\n'
        '{"Sex": "Female"}\n',
        "pandas": pd.DataFrame(want).to_json(),
    }
    for name, text in texts.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        frame = read(path, config)
        assert list(frame.columns) == ["Age", "Sex", "Bonus"], name
        assert frame.astype(object).where(frame.notna(), None).to_dict("list") == want, name


def test_a_typed_format_reads_by_content_or_as_params_name_it(
    config: DataConfig, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"age": [30, 41], "sex": ["Male", "?"]})
    path = tmp_path / "data.bin"
    frame.to_feather(path)
    config = config.model_copy(update={"na_values": ()})  # markers: the test above
    pd.testing.assert_frame_equal(read(path, config), frame)
    for kind in ("auto", "feather"):
        source = config.model_copy(update={"format": kind})
        pd.testing.assert_frame_equal(tables.read_source(source, path), frame)
    tables.write_typed(path, frame, "json")
    assert tables.content_format(path.read_bytes()) == "json"
    source = config.model_copy(update={"format": "json"})
    pd.testing.assert_frame_equal(tables.read_source(source, path), frame)
    with pytest.raises(UsageError, match="not a readable Parquet file"):
        tables.read_source(config.model_copy(update={"format": "parquet"}), path)


@pytest.mark.parametrize(
    ("start", "kind"),
    [
        (b'[{"a": 1}]', "json"),
        (b' \n [ \n {"a": 1}]', "json"),
        (b"[]", "json"),
        (b'{"a": 1}', "json"),
        (b"\xef\xbb\xbf{", "json"),
        (b"[id],[name]\n1,x\n", "csv"),  # SQL Server's bracketed names
        (b"a,b\n{1},2\n", "csv"),
        (b"PAR1", "parquet"),
        (b"ARROW1\x00\x00", "feather"),
    ],
)
def test_the_format_is_told_by_content(start: bytes, kind: str) -> None:
    assert tables.content_format(start) == kind


def test_a_directory_is_not_an_input_file(config: DataConfig, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as error:
        read(tmp_path, config)
    assert str(error.value) == f"{tmp_path}: input file is a directory; expected a file"
    with pytest.raises(UsageError, match="input file not found"):
        read(tmp_path / "missing.csv", config)


@pytest.mark.parametrize(
    ("first_row", "header", "names"),
    [
        (["Age", "Education-Num", "income"], True, None),
        (["25", "Private", "226802"], False, "all"),
        (["25"] * 14, False, "without the target"),
    ],
)
def test_csv_names(
    first_row: list[str], header: bool, names: str | None, config: DataConfig
) -> None:
    columns = list(config.columns or ())
    want = {None: None, "all": columns, "without the target": columns[:-1]}[names]
    assert csv_names(first_row, config) == (header, want)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("labelled", [True, False])
def test_a_headerless_batch_of_another_task(
    params: Params, tmp_path: Path, task: str, labelled: bool
) -> None:
    """Named by data.columns, with or without the target: the same frame as the source."""
    source, target = (
        (wine(), WINE_TARGET) if task == "multiclass" else (diabetes(), DIABETES_TARGET)
    )
    config = data_config(params, task, header=False, columns=list(source.columns))
    rows = source.sample(n=30, random_state=0).reset_index(drop=True)
    batch = rows if labelled else rows.drop(columns=[target])
    path = tmp_path / "batch.csv.gz"
    path.write_bytes(gzip.compress(batch.to_csv(index=False, header=False).encode()))
    frame = scored(path, config)
    pd.testing.assert_frame_equal(frame, ingest(batch, config, require_target=False))
    assert (target in frame.columns) is labelled
    if labelled:
        assert frame[target].tolist() == batch[target].tolist()


def _zipped(members: dict[str, bytes]) -> bytes:
    buffer = stdio.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = stdio.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


SOURCE_CSV = b"a;b\n1,5;x\n2,25;y\n"
PACKED = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zip": lambda data: _zipped({"folder/": b"", "data.csv": data}),
    # as macOS's Finder zips a file: its resource fork beside it
    "zip from macOS": lambda data: _zipped({"data.csv": data, "__MACOSX/._data.csv": b"x"}),
}


@pytest.mark.parametrize("packing", PACKED)
def test_a_compressed_file_reads_as_its_content(
    packing: str, config: DataConfig, tmp_path: Path
) -> None:
    """Data sets are downloaded compressed (a Kaggle ZIP, a .csv.bz2): the source, an
    --input file and init's sniffing all read what the file holds, whatever its name."""
    pack = PACKED[packing]
    path = tmp_path / "download.bin"
    path.write_bytes(pack(SOURCE_CSV))
    source = {"header": True, "columns": None, "comment": None, "separator": ";", "decimal": ","}
    setting = config.model_copy(update=source)
    assert tables.read_source(setting, path).to_dict("list") == {"a": [1.5, 2.25], "b": ["x", "y"]}
    assert read(path, setting)["a"].tolist() == [1.5, 2.25]
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    path.write_bytes(pack(_parquet(frame)))
    pd.testing.assert_frame_equal(tables.read_source(config, path), frame)
    pd.testing.assert_frame_equal(read(path, config), frame)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            _zipped({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<w/>"}),
            "an Excel workbook (.xlsx), not a CSV; save its sheet as CSV (UTF-8) and use that file",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64,
            "an Excel 97-2003 workbook (.xls), not a CSV; save its sheet as CSV (UTF-8)",
        ),
        (
            _zipped({"mimetype": b"application/vnd.oasis", "content.xml": b"<x/>"}),
            "an OpenDocument workbook, not a CSV",
        ),
        (
            _zipped({"train.csv": SOURCE_CSV, "test.csv": SOURCE_CSV}),
            "a ZIP archive of 2 files (train.csv, test.csv); expected one data file "
            "in it: unzip it and use the file",
        ),
        (_zipped({}), "a ZIP archive of 0 files (none)"),
        (gzip.compress(SOURCE_CSV, mtime=0)[:-12], "cannot decompress gzip data"),
        (b"PK\x03\x04 truncated", "cannot read the ZIP archive"),
        (b"BZh9 not bzip2", "cannot decompress bzip2 data"),
    ],
    # Named, not by their bytes: gzip and ZIP stamp the time, so each xdist worker would
    # collect other ids and the run would stop ("Different tests were collected").
    ids=["xlsx", "xls", "ods", "zip-of-2", "zip-of-0", "gzip-cut", "zip-cut", "bzip2-bad"],
)
def test_a_workbook_an_archive_of_many_or_a_broken_one_is_one_line(
    content: bytes, message: str, config: DataConfig, tmp_path: Path
) -> None:
    path = tmp_path / "download.csv"
    path.write_bytes(content)
    for reading in (lambda: tables.read_source(config, path), lambda: read(path, config)):
        with pytest.raises(UsageError) as error:
            reading()
        assert str(error.value).startswith(f"{path}: {message}")
        assert "\n" not in str(error.value)
