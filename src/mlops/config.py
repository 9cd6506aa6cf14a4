"""Typed, frozen configuration loaded from params.yaml, and the artefact paths.

Every key is required and every unknown key is an error, so a typo can never
silently fall back to a default. A bad file ends in one line that names the
key and what was expected.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlops.errors import UsageError

PARAMS_FILE = Path("params.yaml")


@dataclass(frozen=True)
class Paths:
    """Where each stage reads and writes: the single source of the artefact layout."""

    raw: Path = Path("data/raw/dataset.parquet")
    train: Path = Path("data/split/train.parquet")
    test: Path = Path("data/split/test.parquet")
    schema: Path = Path("data/schema.yaml")
    validation: Path = Path("reports/validation.json")
    validation_summary: Path = Path("reports/validation.md")
    imputation: Path = Path("models/imputation.json")
    best_params: Path = Path("models/best_params.json")
    tuning_dir: Path = Path("reports/tuning")
    model: Path = Path("models/model.skops")
    model_card: Path = Path("models/model_card.json")
    metrics: Path = Path("reports/metrics.json")
    plots_dir: Path = Path("reports/plots")
    evaluation: Path = Path("reports/evaluation.json")
    trials: Path = Path("reports/tuning/trials.csv")
    production: Path = Path("models/production.json")
    gate: Path = Path("reports/gate.json")
    gate_summary: Path = Path("reports/gate.md")
    dvc_lock: Path = Path("dvc.lock")


PATHS = Paths()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# YAML gives lists; strict mode would only accept tuples, so sequences are lax
# (a list or tuple of the right item type) while scalars stay strict.
StrTuple = Annotated[tuple[str, ...], Field(strict=False)]
LabelTuple = Annotated[tuple[str | int, ...], Field(strict=False, min_length=1)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class DataConfig(_Section):
    """How to read the source and which column is the target."""

    source: str
    format: Literal["auto", "csv", "parquet"]
    header: bool
    columns: StrTuple | None
    separator: str
    na_values: StrTuple
    comment: str | None
    target: str
    positive_class: LabelTuple
    negative_class: LabelTuple

    @model_validator(mode="after")
    def _classes_disjoint(self) -> DataConfig:
        overlap = set(self.positive_class) & set(self.negative_class)
        if overlap:
            raise ValueError(f"positive_class and negative_class share {sorted(map(str, overlap))}")
        return self


class SplitConfig(_Section):
    test_size: Fraction


Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class QualityConfig(_Section):
    """What makes a feature's values unusable, beyond missing and out-of-contract values."""

    # Per column, the values that stand for "unknown" (capital_gain's 99999 in the demo).
    sentinels: dict[str, Annotated[tuple[float | str, ...], Field(strict=False, min_length=1)]]
    max_categories: PositiveInt


class PrivacyConfig(_Section):
    """Columns the personal-data scan flagged and a person reviewed: dropped or allowed."""

    drop: StrTuple
    allow: StrTuple
    max_values: PositiveInt

    @model_validator(mode="after")
    def _disjoint(self) -> PrivacyConfig:
        both = sorted(set(self.drop) & set(self.allow))
        if both:
            raise ValueError(f"columns both dropped and allowed: {both}")
        return self


class ImportanceConfig(_Section):
    """Permutation importance on a held-out part of the training split."""

    enabled: bool
    holdout: Fraction
    max_rows: Annotated[int, Field(ge=100)]
    n_repeats: Annotated[int, Field(ge=2)]
    z: Annotated[float, Field(ge=0.0)]
    scoring: Literal["roc_auc", "average_precision", "accuracy", "f1", "neg_log_loss"]
    drop: bool


class ValidateConfig(_Section):
    extra_columns: Literal["fail", "drop", "allow"]
    max_value_skew: Rate
    qa_threshold: Rate
    protected: StrTuple
    quality: QualityConfig
    privacy: PrivacyConfig
    importance: ImportanceConfig


class IntParam(_Section):
    """An integer hyperparameter drawn from [low, high], on a log scale when ``log``."""

    type: Literal["int"]
    low: int
    high: int
    log: bool

    @model_validator(mode="after")
    def _range(self) -> IntParam:
        _check_range(self.low, self.high, self.log)
        return self


class FloatParam(_Section):
    """A real hyperparameter drawn from [low, high], on a log scale when ``log``."""

    type: Literal["float"]
    low: Annotated[float, Field(strict=False)]
    high: Annotated[float, Field(strict=False)]
    log: bool

    @model_validator(mode="after")
    def _range(self) -> FloatParam:
        _check_range(self.low, self.high, self.log)
        return self


class CategoricalParam(_Section):
    """A hyperparameter drawn from a list of values (YAML null stands for Python None)."""

    type: Literal["categorical"]
    choices: Annotated[
        tuple[str | int | float | bool | None, ...], Field(strict=False, min_length=1)
    ]

    @field_validator("choices")
    @classmethod
    def _distinct(cls, choices: tuple[object, ...]) -> tuple[object, ...]:
        if len({repr(c) for c in choices}) != len(choices):
            raise ValueError("choices must be distinct")
        return choices


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, got low = {low}")


ParamSpec = Annotated[IntParam | FloatParam | CategoricalParam, Field(discriminator="type")]
# A family with nothing to tune is an error: "all hyperparameters tuned" must mean something.
FamilySpace = Annotated[dict[str, ParamSpec], Field(min_length=1)]
ModelFamily = Literal["hist_gradient_boosting", "random_forest", "logistic_regression"]
Metric = Literal["roc_auc", "average_precision", "accuracy", "balanced_accuracy", "f1", "log_loss"]
# Metrics where lower is better; every other metric is maximised.
MINIMISED_METRICS = frozenset({"log_loss"})
NonNegativeInt = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(strict=False, gt=0.0)]


class MedianPrunerConfig(_Section):
    type: Literal["median"]
    startup_trials: NonNegativeInt
    warmup_folds: PositiveInt


class HalvingPrunerConfig(_Section):
    type: Literal["successive_halving", "hyperband"]
    min_folds: PositiveInt
    reduction_factor: Annotated[int, Field(ge=2)]


class NoPrunerConfig(_Section):
    type: Literal["none"]


PrunerSpec = Annotated[
    MedianPrunerConfig | HalvingPrunerConfig | NoPrunerConfig,
    Field(discriminator="type"),
]


class TuneConfig(_Section):
    """The search: method, space per model family, target metric, pruning, budget, storage."""

    method: Literal["grid", "random", "tpe"]
    random_starts: NonNegativeInt
    grid_points: Annotated[int, Field(ge=2)]
    metric: Metric
    direction: Literal["maximize", "minimize"]
    cv_folds: Annotated[int, Field(ge=2)]
    max_rows: PositiveInt | None
    # Stopping criteria: the first one met stops the study; null switches one off.
    # They are not part of the study's identity, so raising a budget continues it.
    n_trials: PositiveInt
    timeout: Seconds | None
    patience: PositiveInt | None
    target: Annotated[float, Field(strict=False)] | None
    pruner: PrunerSpec
    storage: Annotated[str, Field(min_length=1)] | None
    space: dict[ModelFamily, FamilySpace]
    fixed: dict[ModelFamily, dict[str, Any]]
    families: Annotated[tuple[ModelFamily, ...], Field(strict=False, min_length=1)]

    @field_validator("direction")
    @classmethod
    def _direction_fits_metric(cls, direction: str, info: ValidationInfo) -> str:
        metric = info.data.get("metric")
        expected = "minimize" if metric in MINIMISED_METRICS else "maximize"
        if metric is not None and direction != expected:
            raise ValueError(f"{metric} must be {expected}d")
        return direction

    @field_validator("families")
    @classmethod
    def _families_have_spaces(
        cls, families: tuple[str, ...], info: ValidationInfo
    ) -> tuple[str, ...]:
        if len(set(families)) != len(families):
            raise ValueError("families must be distinct")
        missing = [f for f in families if f not in info.data.get("space", {})]
        if "space" in info.data and missing:
            raise ValueError(f"no search space under tune.space for {', '.join(missing)}")
        return families


NumericStrategy = Literal["mean", "median", "knn"]
CategoricalStrategy = Literal["most_frequent", "missing_category"]
Strategy = Literal[NumericStrategy, CategoricalStrategy]


class KnnConfig(_Section):
    """The ``knn`` strategy: a missing value becomes the mean of its nearest neighbours'."""

    n_neighbors: PositiveInt


class AutoConfig(_Section):
    """How ``auto`` compares a feature group's strategies: a small, seeded CV on train."""

    family: ModelFamily
    cv_folds: Annotated[int, Field(ge=2)]
    max_rows: Annotated[int, Field(ge=100)]


class ImputeConfig(_Section):
    """Per-type strategies, per-feature overrides, and the policy for failing features."""

    policy: Literal["impute", "drop", "stop"]
    numeric: Literal[NumericStrategy, "auto"]
    categorical: Literal[CategoricalStrategy, "auto"]
    overrides: dict[str, Strategy]
    indicators: bool
    knn: KnnConfig
    auto: AutoConfig


LaxFloat = Annotated[float, Field(strict=False)]
EvalMetric = Literal["roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "brier"]
# The numbers the evaluate stage writes to reports/metrics.json: the names a
# gate threshold may use (a typo is caught when params.yaml is loaded).
MetricName = Literal[
    "roc_auc",
    "pr_auc",
    "accuracy",
    "f1",
    "log_loss",
    "brier",
    "ece",
    "train_score",
    "overfit_gap",
    "baseline_majority",
    "baseline_logistic",
    "business_value",
    "business_threshold",
    "business_value_at_threshold",
    "business_correlation",
    "slice_worst",
    "slice_gap",
    "slices_too_small",
]


class EvaluationImportanceConfig(_Section):
    repeats: PositiveInt
    max_rows: PositiveInt


class BusinessConfig(_Section):
    """The value of each outcome of one prediction, in any unit (money, hours...)."""

    true_positive: LaxFloat
    false_positive: LaxFloat
    true_negative: LaxFloat
    false_negative: LaxFloat
    correlation_trials: Annotated[int, Field(ge=0)]
    correlation_rows: PositiveInt


class SlicesConfig(_Section):
    columns: StrTuple
    bands: dict[str, Annotated[tuple[LaxFloat, ...], Field(strict=False, min_length=1)]]
    min_rows: PositiveInt

    @model_validator(mode="after")
    def _edges_increase(self) -> SlicesConfig:
        both = sorted(set(self.columns) & set(self.bands))
        if both:
            raise ValueError(f"{both[0]!r} is listed in both columns and bands")
        for name, edges in self.bands.items():
            if any(low >= high for low, high in itertools.pairwise(edges)):
                raise ValueError(f"bands.{name}: edges must increase strictly, got {list(edges)}")
        return self


class EvaluateConfig(_Section):
    metric: EvalMetric
    threshold: Fraction
    calibration_bins: Annotated[int, Field(ge=2)]
    importance: EvaluationImportanceConfig
    business: BusinessConfig
    slices: SlicesConfig


class BaselineMargins(_Section):
    majority: LaxFloat
    logistic: LaxFloat


class GateConfig(_Section):
    """The blessing: absolute thresholds, margins over baselines, change against production."""

    minimum: dict[MetricName, LaxFloat]
    maximum: dict[MetricName, LaxFloat]
    baseline_margin: BaselineMargins
    max_degradation: dict[MetricName, Annotated[float, Field(strict=False, ge=0.0)]]
    max_age_days: Annotated[float, Field(strict=False, gt=0.0)] | None


# A model feature null in a request or batch: filled by the model's fitted imputers
# (and flagged in the answer and the prediction log), or the input is refused.
MissingValues = Literal["impute", "refuse"]


class ServeConfig(_Section):
    """Serving: where `mlops serve` listens, request limits, the prediction log."""

    host: str
    port: Annotated[int, Field(ge=0, le=65535)]
    max_body_bytes: PositiveInt
    read_timeout_s: Annotated[float, Field(strict=False, gt=0.0)]
    missing_values: MissingValues
    log_dir: str
    log_retention_days: PositiveInt


class Params(_Section):
    """The whole of params.yaml."""

    seed: int
    data: DataConfig
    split: SplitConfig
    validate_: ValidateConfig = Field(alias="validate")
    impute: ImputeConfig
    tune: TuneConfig
    evaluate: EvaluateConfig
    gate: GateConfig
    serve: ServeConfig


def parse_params(raw: Any, source: str = str(PARAMS_FILE)) -> Params:
    """Validate a parsed YAML document; the first problem becomes one UsageError line."""
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(f"{source}: {_describe(exc)}") from None


_UNION_TAGS = frozenset(
    {"int", "float", "categorical", "median", "successive_halving", "hyperband", "none", "[key]"}
)


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    # Tagged unions add the tag to the location ("tune.space.x.y.float.low"): drop it.
    loc = [str(p) for p in error["loc"] if p not in _UNION_TAGS]
    key = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "missing":
        return f"missing key {key}"
    if kind == "extra_forbidden":
        return f"unknown key {key}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key}: {message[0].lower()}{message[1:]} (got {error['input']!r})"
