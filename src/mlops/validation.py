"""The data contract: a pandera schema checked lazily, every failure reported."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd
import pandera.errors
import pandera.pandas as pa
from pandera.io.pandas_io import deserialize_schema

from mlops.errors import UsageError

_EXAMPLES = 5


def load_contract(document: Any, source: str) -> pa.DataFrameSchema:
    """Build the pandera schema from the parsed schema.yaml, or one clear error."""
    if not isinstance(document, Mapping) or not isinstance(document.get("columns"), Mapping):
        raise UsageError(f"{source}: expected a pandera schema with a 'columns' mapping")
    try:
        schema: pa.DataFrameSchema = deserialize_schema(dict(document))  # type: ignore[no-untyped-call]
        return schema
    except (KeyError, TypeError, ValueError, AttributeError, pandera.errors.SchemaInitError) as exc:
        raise UsageError(f"{source}: not a valid pandera schema ({exc})") from None


def infer_contract(frame: pd.DataFrame, target: str) -> pa.DataFrameSchema:
    """A first draft from data: dtypes and nullability (a person reviews it)."""
    columns = {
        name: pa.Column(
            str(frame[name].dtype),
            nullable=bool(frame[name].isna().any()),
            checks=[pa.Check.isin([0, 1])] if name == target else None,
        )
        for name in frame.columns
    }
    return pa.DataFrameSchema(columns, strict=True, coerce=False)


def validate(
    frame: pd.DataFrame,
    contract: pa.DataFrameSchema,
    target: str | None,
    extra_columns: Literal["fail", "drop", "allow"],
) -> dict[str, Any]:
    """Check ``frame`` against ``contract``; a report with every failure, never an exception."""
    extra = [c for c in frame.columns if c not in contract.columns]
    schema = copy.deepcopy(contract)
    schema.strict = extra_columns == "fail"
    checked = frame.drop(columns=extra) if extra_columns == "drop" else frame
    failures = _pandera_failures(checked, schema)
    if target is not None and target in frame.columns and frame[target].nunique() < 2:
        failures.append(
            _failure(target, "both_classes_present", len(frame), frame[target].unique())
        )
    return {
        "passed": not failures,
        "rows": len(frame),
        "columns": len(frame.columns),
        "extra_columns": {"policy": extra_columns, "found": extra},
        "failures": failures,
    }


def _pandera_failures(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> list[dict[str, Any]]:
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        return _summarise(exc.failure_cases)
    return []


def _summarise(cases: pd.DataFrame) -> list[dict[str, Any]]:
    cases = cases.assign(column=cases["column"].fillna("(table)").astype(str))
    out = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True, dropna=False):
        rows = int(group["index"].notna().sum()) or len(group)
        out.append(_failure(str(column), str(check), rows, group["failure_case"].unique()))
    return out


def _failure(column: str, check: str, rows: int, values: Any) -> dict[str, Any]:
    examples = [
        v if isinstance(v, int | float | str | bool) else str(v) for v in list(values)[:_EXAMPLES]
    ]
    return {"column": column, "check": check, "failing_rows": rows, "examples": examples}
