"""The imputation plan: per feature, its quality, a decision, and how its gaps are filled.

The plan decides; the fitted scikit-learn imputers inside the one model
pipeline (``modeling.build_pipeline``) do the filling, so serving imputes
exactly as training did. Every statistic comes from the training split alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from mlops.config import PATHS, ImputeConfig
from mlops.errors import CheckFailed, UsageError
from mlops.tasks.metrics import METRICS, TaskName, get_metric
from mlops.tasks.task import get_task

MISSING_CATEGORY = "Missing"
Kind = Literal["numeric", "categorical"]
Decision = Literal["keep", "impute", "drop", "fail"]
# Candidates of each group, in order of preference when scores tie (simplest first).
CANDIDATES: dict[Kind, tuple[str, ...]] = {
    "numeric": ("median", "mean", "knn"),
    "categorical": ("most_frequent", "missing_category"),
}
VALIDATION_SOURCE = "reports/validation.json"
FALLBACK_SOURCE = "fallback: every column except the target (no quality report)"
NOT_A_FEATURE = "not among the model's features in reports/validation.json"


@dataclass(frozen=True)
class FeaturePlan:
    """One column: what the data tests found, what happens to it, and why."""

    name: str
    kind: Kind
    decision: Decision
    reason: str
    strategy: str | None
    statistic: float | str | None
    indicator: bool
    missing_rate: float
    sentinels: tuple[float | str, ...]
    quality: dict[str, Any] | None

    @property
    def used(self) -> bool:
        return self.decision in ("keep", "impute")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeaturePlan:
        return cls(**{**data, "sentinels": tuple(data["sentinels"])})


@dataclass(frozen=True)
class Comparison:
    """How ``auto`` chose a group's strategy: each candidate's cross-validated score."""

    group: Kind
    metric: str
    family: str
    rows: int
    folds: int
    scores: dict[str, float]
    chosen: str
    reason: str


@dataclass(frozen=True)
class Quality:
    """What reports/validation.json says about the columns the model may use."""

    features: tuple[str, ...]
    threshold: float | None
    per_feature: Mapping[str, dict[str, Any]]
    failing: frozenset[str]
    source: str
    excluded: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImputationPlan:
    target: str
    features: tuple[FeaturePlan, ...]
    policy: str = "impute"
    threshold: float | None = None
    n_neighbors: int = 5
    knn_seed: int = 0
    source: str = FALLBACK_SOURCE
    comparisons: tuple[Comparison, ...] = ()

    def names(self, kind: Kind | None = None) -> list[str]:
        """The columns the model consumes (decision keep or impute), in order."""
        return [f.name for f in self.features if f.used and (kind is None or f.kind == kind)]

    def used(self) -> list[FeaturePlan]:
        return [f for f in self.features if f.used]

    def decided(self, decision: Decision) -> list[str]:
        return [f.name for f in self.features if f.decision == decision]

    def sentinels(self) -> dict[str, list[float | str]]:
        """Per model feature, the values that stand for "unknown" and are imputed too."""
        return {f.name: list(f.sentinels) for f in self.used() if f.sentinels}

    def to_dict(self) -> dict[str, Any]:
        decisions: tuple[Decision, ...] = ("keep", "impute", "drop", "fail")
        return {
            "target": self.target,
            "source": self.source,
            "threshold": self.threshold,
            "policy": self.policy,
            "knn": {"n_neighbors": self.n_neighbors, "seed": self.knn_seed},
            "summary": {d: self.decided(d) for d in decisions},
            "comparisons": [asdict(c) for c in self.comparisons],
            "features": [asdict(f) for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImputationPlan:
        try:
            return cls(
                target=data["target"],
                features=tuple(FeaturePlan.from_dict(f) for f in data["features"]),
                policy=data["policy"],
                threshold=data["threshold"],
                n_neighbors=data["knn"]["n_neighbors"],
                knn_seed=data["knn"]["seed"],
                source=data["source"],
                comparisons=tuple(Comparison(**c) for c in data["comparisons"]),
            )
        except (KeyError, TypeError) as exc:
            raise UsageError(
                f"{PATHS.imputation}: not an imputation plan ({exc!r}); rerun `mlops impute`"
            ) from None


def feature_kind(column: pd.Series) -> Kind:
    return "numeric" if pd.api.types.is_numeric_dtype(column) else "categorical"


# --- what the data tests found -------------------------------------------------------


def read_quality(report: Mapping[str, Any], columns: Sequence[str], target: str) -> Quality:
    """The model's features and their quality from the validate stage's report.

    A report without ``features``/``quality`` (an older validate stage) falls
    back to every column except the target, with no failing features.
    """
    if not isinstance(report, Mapping):
        raise UsageError(f"{VALIDATION_SOURCE}: expected a JSON object")
    if report.get("passed") is False:
        raise CheckFailed(f"{VALIDATION_SOURCE}: the data failed validation; fix it first")
    if "features" not in report:
        fallback = tuple(c for c in columns if c != target)
        return Quality(fallback, None, {}, frozenset(), FALLBACK_SOURCE)
    features = report["features"]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise UsageError(f"{VALIDATION_SOURCE}: 'features' must be a list of column names")
    unknown = [f for f in features if f not in columns or f == target]
    if unknown:
        raise UsageError(
            f"{VALIDATION_SOURCE}: features {unknown} are not feature columns of the training split"
        )
    quality = report.get("quality") or {}
    return Quality(
        features=tuple(features),
        threshold=quality.get("threshold"),
        per_feature=quality.get("features") or {},
        failing=frozenset(quality.get("failing") or ()),
        source=VALIDATION_SOURCE,
        excluded=_excluded(report),
    )


def _excluded(report: Mapping[str, Any]) -> dict[str, str]:
    """Why the validate stage left a column out of the model's features."""
    why = dict.fromkeys(report.get("protected", []), "protected attribute (validate.protected)")
    why |= {
        name: f"identifies rows: {reason} (validate.ids)"
        for name, reason in (report.get("ids") or {}).items()
    }
    if report.get("groups"):
        why[report["groups"]] = "groups rows, kept whole in splits and folds (split.groups)"
    if report.get("time"):
        why[report["time"]] = "orders rows in time, the latest ones the test split (split.time)"
    for policy, names in (report.get("dropped") or {}).items():
        why |= dict.fromkeys(names, f"dropped by validate's {policy} policy")
    return why


# --- the plan --------------------------------------------------------------------------

Scorer = Callable[[ImputationPlan], float]


def plan_imputation(
    train: pd.DataFrame,
    target: str,
    quality: Quality,
    config: ImputeConfig,
    *,
    seed: int,
    score: Scorer | None = None,
    scored_as: Mapping[str, Any] | None = None,
) -> ImputationPlan:
    """Decide every column of ``train`` and fit each imputed feature's statistic on it.

    ``seed`` drives every random choice the fitted imputers make (KNN's donor sample).
    ``score`` rates a candidate plan by the metric ``scored_as`` names (a name in
    the metric registry, whose direction says which score is best) when a group's
    strategy is ``auto``; ``scored_as`` describes it (metric, family, rows, folds)
    for the record.
    """
    kinds = {name: feature_kind(train[name]) for name in quality.features}
    _check_overrides(config, kinds)
    features = tuple(
        _decide(train[name], kinds.get(name), quality, config)
        for name in train.columns
        if name != target
    )
    plan = ImputationPlan(
        target=target,
        features=features,
        policy=config.policy,
        threshold=quality.threshold,
        n_neighbors=config.knn.n_neighbors,
        knn_seed=seed,
        source=quality.source,
    )
    _check_fittable(train, plan)
    plan = _resolve_auto(plan, config, score, scored_as or {})
    return _with_statistics(plan, train)


def _check_overrides(config: ImputeConfig, kinds: Mapping[str, Kind]) -> None:
    for name, strategy in config.overrides.items():
        if name not in kinds:
            raise UsageError(
                f"params.yaml impute.overrides names {name!r}, which is not a model feature "
                f"(features: {', '.join(kinds)})"
            )
        if strategy not in CANDIDATES[kinds[name]]:
            raise UsageError(
                f"params.yaml impute.overrides.{name}: {strategy} cannot impute a {kinds[name]} "
                f"feature (use one of: {', '.join(CANDIDATES[kinds[name]])})"
            )


def _decide(
    column: pd.Series, kind: Kind | None, quality: Quality, config: ImputeConfig
) -> FeaturePlan:
    name = str(column.name)
    entry = quality.per_feature.get(name)
    sentinels = tuple(entry.get("sentinels") or ()) if kind and entry else ()
    rate = round(float(gaps(column, sentinels).mean()), 6)
    known: dict[str, Any] = {"name": name, "missing_rate": rate, "sentinels": sentinels}
    known["quality"] = entry
    unused: dict[str, Any] = {"strategy": None, "statistic": None, "indicator": False}
    if kind is None:
        why = quality.excluded.get(name, NOT_A_FEATURE)
        return FeaturePlan(
            **known, **unused, kind=feature_kind(column), decision="drop", reason=why
        )
    decision, reason = _decision(name, rate, sentinels, quality, config.policy)
    if decision in ("drop", "fail"):
        return FeaturePlan(**known, **unused, kind=kind, decision=decision, reason=reason)
    strategy = config.overrides.get(name) or (
        config.numeric if kind == "numeric" else config.categorical
    )
    indicator = config.indicators and decision == "impute"
    return FeaturePlan(
        **known,
        kind=kind,
        decision=decision,
        reason=reason,
        strategy=strategy,
        statistic=None,
        indicator=indicator,
    )


def _decision(
    name: str, rate: float, sentinels: Sequence[float | str], quality: Quality, policy: str
) -> tuple[Decision, str]:
    found = f"{rate:.1%} missing in training"
    if sentinels:
        found += f" (sentinels {', '.join(map(str, sentinels))} count as missing)"
    if name in quality.failing:
        entry = quality.per_feature.get(name, {})
        below = (
            f"quality {entry.get('score')} below the QA threshold {quality.threshold} "
            f"({'; '.join(entry.get('reasons', [])) or 'no reason given'})"
        )
        if policy == "stop":
            return "fail", f"{below}; impute.policy is stop"
        if policy == "drop":
            return "drop", f"{below}; dropped by impute.policy"
        return ("impute" if rate > 0 else "keep"), f"{below}; {found}, imputed by impute.policy"
    if rate > 0:
        return "impute", found
    return "keep", "complete in training; the imputer is fitted for gaps in serving"


def gaps(column: pd.Series, sentinels: Sequence[float | str] = ()) -> pd.Series:
    """Where ``column`` needs imputing: missing, or holding a value that means "unknown"."""
    return column.isna() | column.isin(list(sentinels))


def as_missing(
    frame: pd.DataFrame,
    sentinels: Mapping[str, Sequence[float | str]],
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``frame`` (its ``columns``, if given) with each column's sentinels made missing.

    Models saved before the pipeline was vectorised (issue 17) run it first, as a
    FunctionTransformer: it stays, and stays trusted, so they still load and predict.
    New models use ``sentinels_as_missing``.
    """
    selected = frame if columns is None else frame[list(columns)]
    return selected.mask(selected.isin({name: list(values) for name, values in sentinels.items()}))


def sentinels_as_missing(
    values: pd.DataFrame | np.ndarray[Any, Any], sentinels: Sequence[Sequence[float | str]]
) -> np.ndarray[Any, Any]:
    """A copy of ``values`` as an array, with column j's ``sentinels[j]`` made missing,
    so the imputers fill them too (and indicators flag them).

    The model pipeline runs it on each group of features that has sentinels, in
    training and serving alike. Equality as ``pandas.Series.isin`` sees it: a float
    column's integers become floats when a sentinel is found.
    """
    out = np.array(values)
    if out.dtype.kind in "iub" and any(sentinels):
        out = out.astype(np.float64)
    for j, found in enumerate(sentinels):
        for sentinel in found:
            out[out[:, j] == sentinel, j] = np.nan
    return out


def _check_fittable(train: pd.DataFrame, plan: ImputationPlan) -> None:
    for feature in plan.used():
        if gaps(train[feature.name], feature.sentinels).all():
            raise CheckFailed(
                f"feature {feature.name!r} is missing in every training row: nothing to impute "
                "it from (remove the column, or let the QA threshold fail it with "
                "impute.policy: drop)"
            )


def _with_statistics(plan: ImputationPlan, train: pd.DataFrame) -> ImputationPlan:
    features = tuple(
        replace(f, statistic=statistic(train[f.name], f.strategy, f.sentinels))
        if f.used and f.strategy
        else f
        for f in plan.features
    )
    return replace(plan, features=features)


def statistic(
    column: pd.Series, strategy: str, sentinels: Sequence[float | str] = ()
) -> float | str | None:
    """The value a simple strategy fills in, as the fitted SimpleImputer will find it."""
    observed = column[~gaps(column, sentinels)]
    if strategy == "mean":
        return float(observed.mean())
    if strategy == "median":
        return float(observed.median())
    if strategy == "missing_category":
        return MISSING_CATEGORY
    if strategy == "most_frequent":
        # Ties go to the smallest value, as in scikit-learn's SimpleImputer.
        counts = observed.value_counts()
        return cast(str, sorted(counts[counts == counts.max()].index)[0])
    return None  # knn: the neighbours are the statistic, fitted inside the pipeline


# --- auto: compare a group's strategies by cross-validation ---------------------------


def _resolve_auto(
    plan: ImputationPlan, config: ImputeConfig, score: Scorer | None, scored_as: Mapping[str, Any]
) -> ImputationPlan:
    # Start every auto group at its simplest candidate, then settle the groups in turn.
    auto = [k for k in CANDIDATES if getattr(config, k) == "auto"]
    plan = _set_group(plan, config, {k: CANDIDATES[k][0] for k in auto})
    score = _memoised(score) if score else None
    comparisons = []
    for kind in auto:
        comparison = _compare(plan, config, kind, score, scored_as)
        plan = _set_group(plan, config, {kind: comparison.chosen})
        comparisons.append(comparison)
    return replace(plan, comparisons=tuple(comparisons))


def _memoised(score: Scorer) -> Scorer:
    """The second group's first candidate is the first group's winner: score it once."""
    seen: dict[tuple[tuple[str, str | None], ...], float] = {}

    def cached(plan: ImputationPlan) -> float:
        key = tuple((f.name, f.strategy) for f in plan.used())
        if key not in seen:
            seen[key] = score(plan)
        return seen[key]

    return cached


def _set_group(
    plan: ImputationPlan, config: ImputeConfig, chosen: Mapping[str, str]
) -> ImputationPlan:
    features = tuple(
        replace(f, strategy=chosen[f.kind])
        if f.used and f.kind in chosen and f.name not in config.overrides
        else f
        for f in plan.features
    )
    return replace(plan, features=features)


def _compare(
    plan: ImputationPlan,
    config: ImputeConfig,
    kind: Kind,
    score: Scorer | None,
    scored_as: Mapping[str, Any],
) -> Comparison:
    group = [f for f in plan.used() if f.kind == kind and f.name not in config.overrides]
    default = CANDIDATES[kind][0]
    record = _scored_as(kind, scored_as)
    if plan.decided("fail"):
        why = "not compared: features below the QA threshold stop the run"
        return Comparison(**record, scores={}, chosen=default, reason=why)
    if not any(f.missing_rate > 0 for f in group):
        why = "no gaps in training to compare strategies on; the simplest is kept"
        return Comparison(**record, scores={}, chosen=default, reason=why)
    if score is None or record["metric"] not in METRICS:
        raise ValueError(f"impute.{kind} is auto: plan_imputation needs a scorer and its metric")
    sign = METRICS[record["metric"]].sign
    scores = {c: score(_set_group(plan, config, {kind: c})) for c in CANDIDATES[kind]}
    chosen = max(CANDIDATES[kind], key=lambda c: sign * scores[c])  # max keeps the first of ties
    rounded = {c: round(s, 6) for c, s in scores.items()}
    why = f"best mean cross-validated {record['metric']} of {len(scores)} strategies"
    return Comparison(**record, scores=rounded, chosen=chosen, reason=why)


def _scored_as(kind: Kind, scored_as: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "group": kind,
        "metric": str(scored_as.get("metric", "")),
        "family": str(scored_as.get("family", "")),
        "rows": int(scored_as.get("rows", 0)),
        "folds": int(scored_as.get("folds", 0)),
    }


def cv_scorer(
    train: pd.DataFrame,
    target: str,
    make_pipeline: Callable[[ImputationPlan], Any],
    *,
    task: TaskName,
    metric: str,
    folds: int,
    max_rows: int,
    seed: int,
    groups: str | None = None,
    times: pd.Series | None = None,
) -> tuple[Scorer, int]:
    """The mean of ``metric`` over ``task``'s seeded CV folds of a plan's pipeline, on a
    seeded sample of at most ``max_rows`` rows (balanced as ``task`` balances its splits).

    ``task`` predicts as tuning does (binary: the label at 0.5), so ``auto`` rates a
    strategy by what the search will optimise. With ``times`` (of ``train``'s rows,
    split.time), the folds go forward in time. With ``groups`` (split.groups), each
    group's rows are in one fold. A metric undefined on a fold (NaN) is
    a params error: no strategy can be chosen by it.
    """
    chosen, doer = get_metric(metric, task), get_task(task)
    sample = doer.sample(train, target, max_rows, seed, keep=folds)
    y = sample[target]
    within = None if groups is None else sample[groups]  # each group in one fold
    order = None if times is None else times.loc[sample.index]
    splits = doer.folds(
        y, folds, seed, "params.yaml impute.auto.cv_folds", groups=within, order=order
    )

    def score(plan: ImputationPlan) -> float:
        x = sample[plan.names()]
        values = []
        for fit_rows, score_rows in splits:
            pipeline = make_pipeline(plan).fit(x.iloc[fit_rows], y.iloc[fit_rows])
            prediction = doer.predict(pipeline, x.iloc[score_rows])
            values.append(chosen(y.iloc[score_rows].to_numpy(), prediction))
        if not np.all(np.isfinite(values)):
            raise UsageError(
                f"params.yaml tune.metric: {metric} is undefined on a cross-validation fold "
                "of the training split, so impute's auto cannot compare strategies by it; "
                "choose another tune.metric or set impute.numeric/categorical"
            )
        return float(np.mean(values))

    return score, len(sample)


# --- serving: what a batch needs ------------------------------------------------------


def imputation_counts(batch: pd.DataFrame, plan: ImputationPlan) -> dict[str, Any]:
    """Which model features the pipeline fills in ``batch``, in how many rows, and how.

    Sentinels count as missing; a feature absent from the batch is missing in every row.
    """
    rows = len(batch)
    features: dict[str, dict[str, Any]] = {}
    for feature in plan.used():
        absent = feature.name not in batch.columns
        count = rows if absent else int(gaps(batch[feature.name], feature.sentinels).sum())
        if count:
            features[feature.name] = {
                "imputed": count,
                "rate": round(count / rows, 6),
                "strategy": feature.strategy,
                "absent": absent,
            }
    return {"rows": rows, "imputed_features": len(features), "features": features}


def describe_counts(counts: Mapping[str, Any]) -> str:
    """One line: ``2 feature(s) imputed in 100 rows: age 90.0% (median), job 2.0% (...)``."""
    listed = ", ".join(
        f"{name} {entry['rate']:.1%} ({entry['strategy']})"
        for name, entry in counts["features"].items()
    )
    count, rows = counts["imputed_features"], counts["rows"]
    return f"{count} feature(s) imputed in {rows} rows: {listed or 'none'}"


# --- simulated gaps: how strategies cope with numeric missingness ---------------------------


def mask_values(
    frame: pd.DataFrame,
    columns: Sequence[str],
    rate: float,
    mechanism: Literal["mcar", "mnar"],
    seed: int,
) -> pd.DataFrame:
    """A copy of ``frame`` with about ``rate`` of each column's values blanked out.

    ``mcar``: missing completely at random. ``mnar``: missing not at random, a
    value's chance grows with its rank, so large values go missing most often.
    """
    rng = np.random.default_rng(seed)
    masked = frame.copy()
    for name in columns:
        draws = rng.random(len(frame))
        if mechanism == "mcar":
            chance = np.full(len(frame), rate)
        else:
            ranks = frame[name].rank(pct=True, method="first").to_numpy()
            chance = np.clip(2 * rate * ranks, 0.0, 1.0)
        masked[name] = frame[name].mask(draws < chance)
    return masked
