"""The reference profile: what monitoring compares production with, saved with the model.

Monitoring runs where the prediction logs are, which need not hold the training
data or the DVC cache, so the profile keeps everything the checks read, as plain
JSON: per feature the null rate and either (numbers) quantiles, min/max, mean and
standard deviation, the shares of the reference deciles (the fixed bins the
population stability index reads) and a seeded sample of at most ``sample_size``
values (the two-sample tests, Kolmogorov-Smirnov and Wasserstein, need values,
not a summary), or (categories) the share of each category. The model's output
columns on held-out rows get the same profiles, and the test metrics are kept
for the performance checks.

Build the feature profiles from the training split and the prediction profiles
from the *held-out* split: a model's answers on the rows it was fitted on are
more confident than any it gives in production (a random forest's probabilities
on its own training rows sit near 0 and 1), so production would look drifted.

The profile also names the model it describes (``model_md5``), so a monitor can
tell a reference that belongs to another model. It holds nothing that differs
between two runs on the same inputs: it is a reproducible pipeline output. The
serving-latency baseline (``single_row_latency``) is not (it is a fact of the
machine), so it is kept apart from the profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlops.errors import UsageError, clip
from mlops.tasks.metrics import Prediction
from mlops.tasks.task import Task

FORMAT = 1
Kind = Literal["numeric", "categorical"]
# A numeric column with at most this many distinct values is compared as categories
# (Evidently's rule: n_unique <= 5 takes the chi-squared or Jensen-Shannon test).
DISCRETE_VALUES = 5
DEFAULT_SAMPLE = 5000
# Categories kept by name; the rest of a high-cardinality column is one "other" share.
MAX_CATEGORIES = 200
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
_DECILES = np.linspace(0.1, 0.9, 9)
LATENCY_ROWS = 200  # single-row predictions timed for the latency baseline, at most
LATENCY_MIN_ROWS = 20  # ... and at least, however long they take
LATENCY_BUDGET_S = 3.0  # past this, timing stops (a profile stage costs seconds, not minutes)


def category_keys(values: pd.Series) -> pd.Series:
    """Each non-null value as the text key of a frequency table. Numbers become floats
    first, so 1, 1.0 and the JSON number 1 are one category however the log or the
    frame typed them."""
    present = values.dropna()
    if pd.api.types.is_bool_dtype(present):
        return present.astype(bool).astype(str)
    if pd.api.types.is_numeric_dtype(present):
        return present.astype(float).map(repr)
    return present.astype(str)


def kind_of(values: pd.Series) -> Kind:
    """Numbers (not booleans) are numeric; text, categories and booleans are categories."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return "numeric" if numeric else "categorical"


def frequencies(keys: pd.Series) -> tuple[dict[str, float], float]:
    """The share of each of the ``MAX_CATEGORIES`` commonest keys, and the rest's share."""
    shares = keys.value_counts(normalize=True, sort=True)
    kept = shares.iloc[:MAX_CATEGORIES]
    return {str(k): float(v) for k, v in kept.items()}, float(shares.iloc[MAX_CATEGORIES:].sum())


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of ``values`` in each bin (-inf, e1], (e1, e2], ..., (ek, inf)."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def profile(values: pd.Series, sample_size: int, rng: np.random.Generator) -> dict[str, Any]:
    """One column's profile: null rate plus the numeric or categorical summary."""
    present = values.dropna()
    head: dict[str, Any] = {
        "kind": kind_of(values),
        "rows": len(values),
        "null_rate": float(values.isna().mean()) if len(values) else 0.0,
    }
    if head["kind"] == "categorical" or 0 < present.nunique() <= DISCRETE_VALUES:
        shares, other = frequencies(category_keys(present))
        head |= {"frequencies": shares, "other": other}
    if head["kind"] == "categorical":
        return head
    numbers = present.to_numpy(dtype=float)
    numbers = numbers[np.isfinite(numbers)]  # the data tests stop infinities upstream
    if numbers.size == 0:
        return head | {"sample": []}
    edges = np.unique(np.quantile(numbers, _DECILES))
    sample = (
        numbers
        if numbers.size <= sample_size
        else rng.choice(numbers, size=sample_size, replace=False)
    )
    return head | {
        "min": float(numbers.min()),
        "max": float(numbers.max()),
        "mean": float(numbers.mean()),
        "std": float(numbers.std()),
        "quantiles": dict(
            zip(map(str, QUANTILES), np.quantile(numbers, QUANTILES).tolist(), strict=True)
        ),
        "histogram": {"edges": edges.tolist(), "shares": bin_shares(numbers, edges).tolist()},
        "sample": sample.tolist(),
    }


def build_reference(
    features: pd.DataFrame,
    prediction: Prediction,
    task: Task,
    metrics: Mapping[str, float | None],
    seed: int,
    *,
    sample_size: int = DEFAULT_SAMPLE,
    built_at: datetime | None = None,
    model_md5: str | None = None,
) -> dict[str, Any]:
    """The reference profile as a JSON-ready dict.

    ``features``: the model's features on the training split; ``prediction``: the
    model's answer on the held-out split (see the module docstring); ``metrics``: the
    test metrics (reports/metrics.json's; a NaN, undefined, becomes null);
    ``model_md5``: the md5 of the model file the prediction profiles are of.

    ``built_at`` (None: null) is a fact of the run, not of the inputs: a stage whose
    outputs must be byte-reproducible leaves it out and records the time in its run
    record, and the model's age is read from git, as ``gate --check`` reads it.
    """
    rng = np.random.default_rng(seed)
    outputs = pd.DataFrame(task.columns(prediction))
    return {
        "format": FORMAT,
        "task": task.name,
        "model_md5": model_md5,
        "built_at": None if built_at is None else built_at.isoformat(timespec="seconds"),
        "seed": seed,
        "sample_size": sample_size,
        "features": {str(c): profile(features[c], sample_size, rng) for c in features.columns},
        "prediction": {
            "rows": len(outputs),
            "drift_column": task.drift_column,
            "columns": {str(c): profile(outputs[c], sample_size, rng) for c in outputs.columns},
        },
        "metrics": {str(k): _finite(v) for k, v in metrics.items()},
    }


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def single_row_latency(
    predict: Callable[[pd.DataFrame], object],
    rows: pd.DataFrame,
    limit: int = LATENCY_ROWS,
    budget_s: float = LATENCY_BUDGET_S,
) -> dict[str, float]:
    """The median and 95th percentile (milliseconds) of ``predict`` called on one row
    at a time, over the first ``limit`` of ``rows``: the model's own share of a
    single-row request, the baseline serving latency is compared with; and how many
    rows were timed.

    One untimed call first (a model's first predict pays for lazy set-up). Timing
    stops after ``budget_s`` seconds once ``LATENCY_MIN_ROWS`` are timed, so a slow
    model or a busy machine cannot make the pipeline noticeably slower. The numbers
    depend on the machine and its load, so they are never part of a reproducible output.
    """
    return single_row_latencies([(predict, rows)], limit, budget_s)[0]


def single_row_latencies(
    timed: Sequence[tuple[Callable[[pd.DataFrame], object], pd.DataFrame]],
    limit: int = LATENCY_ROWS,
    budget_s: float = LATENCY_BUDGET_S,
) -> list[dict[str, float]]:
    """``single_row_latency`` of several (predict, rows) at once, for comparing them:
    row by row, each predict is timed on its own frame's row in turn, the order
    rotating from one row to the next. Whatever else the machine is doing then weighs
    on every predict alike, where timing one after the other would charge a burst of
    load to whichever happened to be running (the rows must be as many for each)."""
    counts = {len(rows) for _, rows in timed}
    if len(counts) != 1:
        raise ValueError(f"single_row_latencies: frames of {sorted(counts)} rows")
    total = min(limit, counts.pop())
    if total == 0:
        raise UsageError("no rows to time the model's single-row predict on")
    for predict, rows in timed:
        predict(rows.iloc[[0]])
    seconds: list[list[float]] = [[] for _ in timed]
    deadline = time.perf_counter() + budget_s
    for position in range(total):
        shift = position % len(timed)
        for which in [*range(shift, len(timed)), *range(shift)]:
            predict, rows = timed[which]
            row = rows.iloc[[position]]
            started = time.perf_counter()
            predict(row)
            seconds[which].append(time.perf_counter() - started)
        if position + 1 >= LATENCY_MIN_ROWS and time.perf_counter() > deadline:
            break
    found = []
    for times in seconds:
        p50, p95 = np.percentile(np.array(times) * 1000, [50, 95])
        found.append({"p50": round(float(p50), 3), "p95": round(float(p95), 3), "rows": len(times)})
    return found


# --- reading it back -----------------------------------------------------------

_NUMERIC_KEYS = ("min", "max", "mean", "std", "quantiles", "histogram", "sample")


def load_reference(obj: Any, source: str) -> dict[str, Any]:
    """The reference document ``obj`` (parsed JSON from ``source``), checked; a
    UsageError naming ``source`` and the first thing wrong, so a damaged or foreign
    file stops monitoring in one line instead of a KeyError halfway through."""
    problem = _problem(obj)
    if problem is not None:
        raise UsageError(
            f"{source}: not a monitoring reference profile ({problem}); rebuild it by "
            "training the model again"
        )
    document: dict[str, Any] = obj
    return document


def _problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    if obj.get("format") != FORMAT:
        return f"format {clip(obj.get('format'))}, expected {FORMAT}"
    for key, kind in (("task", str), ("features", dict), ("prediction", dict), ("metrics", dict)):
        if not isinstance(obj.get(key), kind):
            return f"{key!r} missing or not a {kind.__name__}"
    return _profiles_problem(obj)


def _profiles_problem(obj: dict[str, Any]) -> str | None:
    prediction = obj["prediction"]
    if not isinstance(prediction.get("columns"), dict) or not prediction["columns"]:
        return "'prediction.columns' missing or empty"
    if prediction.get("drift_column") not in prediction["columns"]:
        return f"'prediction.drift_column' {clip(prediction.get('drift_column'))} not profiled"
    profiles = [("features", n, p) for n, p in obj["features"].items()]
    profiles += [("prediction.columns", n, p) for n, p in prediction["columns"].items()]
    for where, name, column in profiles:
        problem = _profile_problem(column)
        if problem is not None:
            return f"{where}.{clip(name)}: {problem}"
    return None


def _profile_problem(column: Any) -> str | None:
    if not isinstance(column, dict) or column.get("kind") not in ("numeric", "categorical"):
        return "not a column profile"
    if not isinstance(column.get("null_rate"), int | float):
        return "no null_rate"
    listed = column["kind"] == "categorical" or "frequencies" in column
    if listed and not isinstance(column.get("frequencies"), dict):
        return "no category frequencies"
    if column["kind"] == "numeric" and column.get("sample"):
        missing = [k for k in _NUMERIC_KEYS if k not in column]
        if missing:
            return f"missing {', '.join(missing)}"
        histogram = column["histogram"]
        if len(histogram.get("shares", ())) != len(histogram.get("edges", ())) + 1:
            return "histogram shares do not fit its edges"
    return None
