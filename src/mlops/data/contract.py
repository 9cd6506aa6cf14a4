"""The data contract: a pandera schema checked lazily, every failure reported.

Each failure is schema skew (the table has the wrong shape: a column missing,
extra, of the wrong type, all null, infinite, a bad target) or value skew
(values outside the contract: out of range, unseen categories, forbidden nulls).
Schema skew is always fatal; value skew only above ``max_value_skew`` of a
column's rows, below that it is reported for the drift monitor to judge.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa
from pandera.io._flat_checks import COMPONENT_RESERVED_KEYS
from pandera.io.pandas_io import deserialize_schema, serialize_schema

from mlops.data.ingestion import normalise_name
from mlops.errors import UsageError
from mlops.tasks.task import Task, plain

Skew = Literal["schema", "value"]
ExtraPolicy = Literal["fail", "drop", "allow"]
# What a column is to a drafted contract: a feature, a row identifier, or a target of
# classes or of values.
Role = Literal["feature", "id", "classes", "value"]

EXAMPLES = 5
# Checks on the table's shape rather than its values: always fatal.
SCHEMA_CHECKS = frozenset(
    {
        "column_in_dataframe",
        "column_in_schema",
        "dtype",
        "coerce_dtype",
        "field_uniqueness",
        "multiple_fields_uniqueness",
        "dataframe_column_labels_unique",
        "all_null",
        "finite",
        "target_not_constant",
    }
)
# Failures that concern a whole column, so every row counts as failing.
_WHOLE_COLUMN = frozenset({"column_in_dataframe", "column_in_schema", "dtype", "all_null"})
_SCHEMA_KEYS = frozenset(
    {
        "schema_type", "api", "version", "columns", "checks", "index", "dtype", "coerce",
        "strict", "name", "ordered", "unique", "report_duplicates", "unique_column_names",
        "add_missing_columns", "title", "description", "metadata", "drop_invalid_rows",
    }
)  # fmt: skip
_BOOLEAN_KEYS = ("nullable", "unique", "coerce", "required", "regex")
_MANGLED = re.compile(r"^(?P<base>.+)\.\d+$")  # pandas renames a repeated CSV header "a" to "a.1"
_MIN_ROWS_FOR_UNIQUE = 100  # fewer distinct values than this are unique by chance


@dataclass(frozen=True)
class Failure:
    """One check failed by one column: the unit of every report and error line."""

    column: str
    check: str
    skew: Skew
    failing_rows: int
    rate: float
    fatal: bool
    examples: tuple[Any, ...]
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"examples": list(self.examples)}


@dataclass(frozen=True)
class ContractResult:
    """Every failure, plus the rows of each column that hold out-of-contract values."""

    failures: tuple[Failure, ...]
    out_of_contract: Mapping[str, np.ndarray] = field(default_factory=dict)
    unseen: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not any(f.fatal for f in self.failures)


# --- the contract file ---------------------------------------------------------


def load_contract(document: Any, source: str) -> pa.DataFrameSchema:
    """Build the pandera schema from the parsed schema.yaml, or one clear error.

    pandera ignores keys it does not know, so a typo ("nulable") would silently
    weaken the contract: every key is checked first.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("columns"), Mapping):
        raise UsageError(f"{source}: expected a pandera schema with a 'columns' mapping")
    unknown = sorted(set(map(str, document)) - _SCHEMA_KEYS)
    if unknown:
        raise UsageError(f"{source}: unknown key {unknown[0]!r} at the top level")
    for name, spec in document["columns"].items():
        _check_column_spec(str(name), spec, source)
    # pandera's YAML reader drops a column's metadata: it is set on the columns after.
    metadata = {
        str(name): dict(spec["metadata"])
        for name, spec in document["columns"].items()
        if "metadata" in spec
    }
    columns = {
        name: {k: v for k, v in spec.items() if k != "metadata"}
        for name, spec in document["columns"].items()
    }
    try:
        schema: pa.DataFrameSchema = deserialize_schema(dict(document) | {"columns": columns})  # type: ignore[no-untyped-call]
    except (KeyError, TypeError, ValueError, AttributeError, pandera.errors.SchemaInitError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{source}: not a valid pandera schema ({detail})") from None
    if not metadata:
        return schema
    updated: pa.DataFrameSchema = schema.update_columns(
        {name: {"metadata": value} for name, value in metadata.items()}
    )
    return updated


def _check_column_spec(name: str, spec: Any, source: str) -> None:
    where = f"{source}: column {name!r}"
    if name != normalise_name(name):
        raise UsageError(
            f"{where}: names are snake_case after ingest; use {normalise_name(name)!r}"
        )
    if not isinstance(spec, Mapping) or not isinstance(spec.get("dtype"), str):
        raise UsageError(f"{where}: expected a mapping with a 'dtype' (e.g. float64, str)")
    _check_metadata(where, spec.get("metadata", {}))
    for key, value in spec.items():
        if key == "metadata":
            continue
        if key not in COMPONENT_RESERVED_KEYS and not callable(getattr(pa.Check, key, None)):
            raise UsageError(f"{where}: unknown key or check {key!r}")
        if key in _BOOLEAN_KEYS and not isinstance(value, bool):
            raise UsageError(f"{where}: {key} must be true or false, got {value!r}")


def _check_metadata(where: str, metadata: Any) -> None:
    """A column's free-form notes; ``cost`` (what acquiring the feature costs, in the
    team's own unit) is read by validate and must be a number >= 0."""
    if not isinstance(metadata, Mapping):
        raise UsageError(f"{where}: metadata must be a mapping, e.g. {{cost: 0.5}}")
    cost = metadata.get("cost")
    if cost is not None and (
        isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0
    ):
        raise UsageError(f"{where}: metadata.cost must be a number >= 0, got {cost!r}")


def acquisition_cost(schema: pa.DataFrameSchema, name: str) -> float | None:
    """The cost of acquiring column ``name`` its contract declares (metadata.cost), if any."""
    cost = (schema.columns[name].metadata or {}).get("cost")
    return None if cost is None else float(cost)


def infer_contract(
    frame: pd.DataFrame,
    target: str,
    max_categories: int,
    task: Task,
    ids: Mapping[str, str] | None = None,
) -> pa.DataFrameSchema:
    """A first draft from data for a person to review: dtypes, nullability, observed
    ranges, the categories seen (when there are few), uniqueness of key-like columns.

    ``frame`` is as ingest leaves it, so the target is as ``task`` encodes it: the
    classes seen are its allowed values (binary: 0 and 1), a regression target gets
    no range (a new value beyond the training range is no breach of the contract).
    ``ids`` (column -> why it identifies rows, as ``mlops.data.identifiers.find_ids``
    says) are drafted with a description saying so and no range or categories: new
    rows bring new ids.
    """
    ids = ids or {}
    columns = {
        str(name): _infer_column(
            frame[name], _role(str(name), target, task, ids), max_categories, ids.get(str(name))
        )
        for name in frame
    }
    return pa.DataFrameSchema(columns, strict=True, coerce=False)


def _role(name: str, target: str, task: Task, ids: Mapping[str, str]) -> Role:
    if name == target:
        return "classes" if task.is_classification else "value"
    return "id" if name in ids else "feature"


def _infer_column(column: pd.Series, role: Role, max_categories: int, why: str | None) -> pa.Column:
    observed = column.dropna()
    checks: list[pa.Check] = []
    if role == "classes":
        checks.append(pa.Check.isin([plain(v) for v in sorted(observed.unique())]))
    elif role == "feature" and pd.api.types.is_numeric_dtype(column) and not observed.empty:
        finite = observed[np.isfinite(observed.to_numpy(dtype="float64"))]
        checks.append(pa.Check.in_range(_plain(finite.min()), _plain(finite.max())))
    elif role == "feature" and 0 < observed.nunique() <= max_categories:
        checks.append(pa.Check.isin(sorted(map(str, observed.unique()))))
    key_like = pd.api.types.is_string_dtype(column) or _integral(observed)
    unique = (
        role in ("feature", "id")
        and key_like
        and len(observed) == len(column) >= _MIN_ROWS_FOR_UNIQUE
        and observed.is_unique
    )
    dtype = "str" if pd.api.types.is_string_dtype(column) else str(column.dtype)
    description = (
        f"identifies rows ({why}): not a feature of the model; no range, new rows bring new ids"
        if role == "id"
        else None
    )
    return pa.Column(
        dtype,
        checks=checks,
        nullable=bool(column.isna().any()),
        unique=unique,
        description=description,
    )


def _integral(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values) and (values == values.round()).all())


def _plain(value: Any) -> float | int:
    number = float(value)
    return int(number) if number.is_integer() else number


def contract_document(schema: pa.DataFrameSchema) -> dict[str, Any]:
    """The schema as pandera's YAML document, with pandas' own ``str`` for text columns
    and nullability spelled out for the reviewer."""
    document: dict[str, Any] = serialize_schema(schema)
    columns = {}
    for name, spec in document["columns"].items():
        dtype = "str" if str(spec["dtype"]).startswith("string") else spec["dtype"]
        columns[name] = {"dtype": dtype, "nullable": bool(spec.get("nullable"))} | {
            k: v for k, v in spec.items() if k not in ("dtype", "nullable")
        }
    return document | {"columns": columns}


# --- policy --------------------------------------------------------------------


def resolve_columns(names: Iterable[str], known: Collection[str], key: str) -> list[str]:
    """Normalise column names taken from params.yaml; a name the data cannot have is an error."""
    resolved = [normalise_name(name) for name in names]
    for name in resolved:
        if name not in known:
            raise UsageError(f"params.yaml {key}: {name!r} is not a column of the data contract")
    return resolved


def duplicate_columns(names: Sequence[object]) -> list[str]:
    """Column names that occur twice: verbatim, as pandas renames a repeated CSV header
    (``a``, ``a.1``), or once normalised (``Education-Num`` and ``education_num``)."""
    text = [str(n) for n in names]
    mangled = {m["base"] for n in text if (m := _MANGLED.match(n)) and m["base"] in text}
    counts = Counter(normalise_name(n) for n in text)
    return sorted({normalise_name(n) for n in mangled} | {n for n, c in counts.items() if c > 1})


# --- checking ------------------------------------------------------------------


def check_contract(
    frame: pd.DataFrame,
    contract: pa.DataFrameSchema,
    target: str | None,
    extra_columns: ExtraPolicy,
    max_value_skew: float,
) -> ContractResult:
    """Check ``frame`` against ``contract``: every failure, never an exception.

    ``frame`` must have a default RangeIndex (the failing rows are positions).
    """
    schema = copy.deepcopy(contract)
    schema.strict = extra_columns == "fail"
    extra = [c for c in frame.columns if c not in contract.columns]
    checked = frame.drop(columns=extra) if extra_columns == "drop" else frame
    cases = _failure_cases(checked, schema)
    failures = _from_pandera(cases, frame, target, max_value_skew)
    failures += _implicit_checks(checked, contract, target, max_value_skew)
    order: dict[str, int] = {}
    for name in [*contract.columns, *frame.columns]:
        order.setdefault(name, len(order))
    failures.sort(key=lambda f: (not f.fatal, f.skew != "schema", order.get(f.column, -1)))
    short = cases["check"].map(_short_check)
    value = ~short.isin(SCHEMA_CHECKS) & (cases["column"] != target)
    return ContractResult(
        tuple(failures),
        out_of_contract=_rows_by_column(cases.loc[value & (short != "not_nullable")]),
        unseen=_rows_by_column(cases.loc[value & (short == "isin")]),
    )


def _failure_cases(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        # Table-level failures (a missing or extra column) name the column as the failure case.
        column = cases["column"].where(cases["column"].notna(), cases["failure_case"])
        typed: pd.DataFrame = cases.assign(
            column=column.astype(str), check=cases["check"].astype(str)
        )
        # An infinite value fails the implicit "finite" check (schema skew); as an
        # out-of-range value it would only be counted twice.
        infinite = typed["failure_case"].map(lambda v: isinstance(v, float) and np.isinf(v))
        return typed.loc[~infinite.astype(bool)]
    return pd.DataFrame(
        {"column": [], "check": [], "failure_case": [], "index": []}, dtype=object
    ).astype({"column": "str", "check": "str"})


def _short_check(check: str) -> str:
    """``in_range(17, 90)`` -> ``in_range``; ``dtype('float64')`` -> ``dtype``."""
    return check.split("(", 1)[0]


def _from_pandera(
    cases: pd.DataFrame, frame: pd.DataFrame, target: str | None, max_value_skew: float
) -> list[Failure]:
    mistyped = set(cases.loc[cases["check"].str.startswith("dtype"), "column"])
    failures = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        short = _short_check(str(check))
        if column in mistyped and short not in SCHEMA_CHECKS:
            continue  # a value check on a mistyped column only repeats the dtype failure
        skew: Skew = "schema" if short in SCHEMA_CHECKS or column == target else "value"
        if short in _WHOLE_COLUMN:
            rows = len(frame)
            examples = [str(frame[column].dtype)] if short == "dtype" else []
        else:
            rows = int(group["index"].dropna().nunique()) or len(group)
            examples = list(group["failure_case"].drop_duplicates()[:EXAMPLES])
        failures.append(
            _failure(
                str(column), short, skew, rows, len(frame),
                max_value_skew=max_value_skew, examples=examples, detail=str(check),
            )
        )  # fmt: skip
    return failures


def _implicit_checks(
    frame: pd.DataFrame, contract: pa.DataFrameSchema, target: str | None, max_value_skew: float
) -> list[Failure]:
    """What no contract may allow: an all-null column, infinite numbers, a constant target
    (one class, or one value: nothing to learn)."""
    failures = []
    for name in (c for c in contract.columns if c in frame.columns):
        column = frame[name]
        if len(column) and column.isna().all():
            failures.append(_failure(name, "all_null", "schema", len(column), len(column)))
        elif pd.api.types.is_float_dtype(column):
            infinite = np.isinf(column.to_numpy())
            if infinite.any():
                examples = np.unique(column.to_numpy()[infinite]).tolist()
                n = int(infinite.sum())
                failures.append(
                    _failure(name, "finite", "schema", n, len(column), examples=examples)
                )
    if target is not None and target in frame.columns and 0 < frame[target].nunique() < 2:
        values = frame[target].unique().tolist()
        rows = len(frame)
        failures.append(
            _failure(target, "target_not_constant", "schema", rows, rows, examples=values)
        )
    return failures


def _failure(
    column: str,
    check: str,
    skew: Skew,
    rows: int,
    total: int,
    *,
    max_value_skew: float = 0.0,
    examples: Sequence[Any] = (),
    detail: str = "",
) -> Failure:
    rate = rows / total if total else 1.0
    return Failure(
        column=column,
        check=check,
        skew=skew,
        failing_rows=rows,
        rate=round(rate, 6),
        fatal=skew == "schema" or rate > max_value_skew,
        examples=tuple(_plain_example(v) for v in list(examples)[:EXAMPLES]),
        detail=_shorten(str(detail) or check),
    )


def _plain_example(value: Any) -> Any:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if np.isfinite(number) else str(number)  # JSON has no inf or nan
    if isinstance(value, np.integer):
        return int(value)
    return str(value)


def _shorten(text: str, limit: int = 48) -> str:
    """``isin([...41 countries])`` reads as ``isin(…)``: the contract holds the list."""
    return text if len(text) <= limit else f"{_short_check(text)}(…)"


def _rows_by_column(cases: pd.DataFrame) -> dict[str, np.ndarray]:
    cases = cases[cases["index"].notna()]
    return {
        str(column): np.unique(group["index"].to_numpy(dtype="int64"))
        for column, group in cases.groupby("column", sort=False)
    }


def select_features(columns: Iterable[str], target: str, excluded: Collection[str]) -> list[str]:
    """The columns a model may read, in data order."""
    return [c for c in columns if c != target and c not in excluded]
