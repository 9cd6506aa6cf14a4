"""Per-feature data quality: a score per column and the reasons it falls short.

The score is the share of rows holding a usable value: present, inside the
contract, not a sentinel that stands for "unknown". A constant column or one
with exploding cardinality carries nothing a model can use: it scores 0.
Features scoring below the QA threshold are failing; the impute stage decides
what to do with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops.config import QualityConfig

# A small serving batch is not "constant" because its ten rows share a value.
MIN_VALUES_FOR_SHAPE = 30


@dataclass(frozen=True)
class FeatureQuality:
    score: float
    passed: bool
    missing_rate: float
    invalid_rate: float
    unseen_rate: float
    sentinel_rate: float
    sentinels: tuple[float | str, ...]
    distinct: int
    constant: bool
    exploding_cardinality: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"sentinels": list(self.sentinels), "reasons": list(self.reasons)}


def assess(
    frame: pd.DataFrame,
    columns: Iterable[str],
    *,
    out_of_contract: Mapping[str, np.ndarray],
    unseen: Mapping[str, np.ndarray],
    config: QualityConfig,
    threshold: float,
) -> dict[str, FeatureQuality]:
    """The quality of each of ``columns``; failing rows are positions in ``frame``."""
    empty = np.array([], dtype="int64")
    return {
        name: assess_column(
            frame[name],
            invalid_rows=out_of_contract.get(name, empty),
            unseen_rows=len(unseen.get(name, empty)),
            sentinels=config.sentinels.get(name, ()),
            max_categories=config.max_categories,
            threshold=threshold,
        )
        for name in columns
    }


def assess_column(
    column: pd.Series,
    *,
    invalid_rows: np.ndarray,
    unseen_rows: int,
    sentinels: Sequence[float | str],
    max_categories: int,
    threshold: float,
) -> FeatureQuality:
    rates, usable = _rates(column, invalid_rows, unseen_rows, sentinels)
    distinct = int(column.nunique())
    constant = distinct == 1 and int(column.count()) >= MIN_VALUES_FOR_SHAPE
    exploding = not pd.api.types.is_numeric_dtype(column) and distinct > max_categories
    score = 0.0 if constant or exploding else usable
    return FeatureQuality(
        score=round(score, 6),
        passed=score >= threshold,
        missing_rate=round(rates["missing"], 6),
        invalid_rate=round(rates["invalid"], 6),
        unseen_rate=round(rates["unseen"], 6),
        sentinel_rate=round(rates["sentinel"], 6),
        sentinels=tuple(sentinels),
        distinct=distinct,
        constant=constant,
        exploding_cardinality=exploding,
        reasons=_reasons(
            column,
            rates,
            sentinels,
            max_categories=max_categories,
            constant=constant,
            exploding=exploding,
        ),
    )


def _rates(
    column: pd.Series,
    invalid_rows: np.ndarray,
    unseen_rows: int,
    sentinels: Sequence[float | str],
) -> tuple[dict[str, float], float]:
    """Each kind of unusable value as a share of rows, and the share of usable values
    (a row counts once, however many reasons it has)."""
    rows = max(len(column), 1)
    present = column.notna().to_numpy()
    sentinel = _sentinel_mask(column, sentinels)
    invalid = np.zeros(len(column), dtype=bool)
    invalid[invalid_rows] = True
    rates = {
        "missing": 1.0 - float(present.sum()) / rows,
        "invalid": float((invalid & present).sum()) / rows,
        "unseen": unseen_rows / rows,
        "sentinel": float(sentinel.sum()) / rows,
    }
    return rates, float((present & ~invalid & ~sentinel).sum()) / rows


def _sentinel_mask(column: pd.Series, sentinels: Sequence[float | str]) -> np.ndarray:
    numeric = pd.api.types.is_numeric_dtype(column)
    values = [v for v in sentinels if isinstance(v, float) == numeric]
    if not values:
        return np.zeros(len(column), dtype=bool)
    return column.isin(values).to_numpy(dtype=bool)


def _reasons(
    column: pd.Series,
    rates: Mapping[str, float],
    sentinels: Sequence[float | str],
    *,
    max_categories: int,
    constant: bool,
    exploding: bool,
) -> tuple[str, ...]:
    reasons = []
    if constant:
        reasons.append(f"constant: one distinct value ({column.dropna().iloc[0]!r})")
    if exploding:
        reasons.append(
            f"exploding cardinality: {column.nunique()} distinct values > {max_categories}"
        )
    labels = {
        "missing": "missing",
        "invalid": "out of contract",
        "unseen": "unseen categories",
        "sentinel": f"sentinel {', '.join(map(_value_text, sentinels))}",
    }
    reasons += [f"{percent(rates[k])} {label}" for k, label in labels.items() if rates[k] > 0]
    return tuple(reasons)


def _value_text(value: float | str) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def percent(rate: float) -> str:
    """A rate for people: ``0.0564`` -> ``5.6%``; tiny but non-zero rates don't read as 0."""
    if 0 < rate < 0.001:
        return "<0.1%"
    return f"{rate:.1%}"


def failing(qualities: Mapping[str, FeatureQuality]) -> list[str]:
    return [name for name, quality in qualities.items() if not quality.passed]


# What copies of rows do to a random split, and what to do about them: validation.md and
# init's review say it in these words.
DUPLICATES_ADVICE = (
    "a random split puts copies on both sides, so the test split partly scores rows the "
    "model was trained on: if copies are one entity seen again, keep them together "
    "(split.groups) or remove them at the source"
)


def duplicate_rows(frame: pd.DataFrame, features: Sequence[str], target: str) -> dict[str, int]:
    """How many rows repeat an earlier row in what the model reads (``features``) and,
    when ``frame`` holds it, the ``target`` ("repeated"); and how many share their
    features with a row of another target ("conflicting": the same inputs labelled
    differently). A random split puts copies on both sides of it."""
    columns = [c for c in features if c in frame.columns]
    if not columns or frame.empty:
        return {"repeated": 0, "conflicting": 0}
    labelled = target in frame.columns
    repeated = int(frame.duplicated(subset=[*columns, target] if labelled else columns).sum())
    conflicting = 0
    if labelled:
        keys = frame.groupby(columns, dropna=False, sort=False).ngroup()
        labels = pd.DataFrame({"key": keys, "target": frame[target]}).drop_duplicates()
        per_key = labels["key"].value_counts()
        conflicting = int(keys.isin(per_key.index[per_key > 1]).sum())
    return {"repeated": repeated, "conflicting": conflicting}
