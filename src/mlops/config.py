"""Typed, frozen configuration loaded from params.yaml, and the artefact paths.

Every key is required and every unknown key is an error, so a typo can never
silently fall back to a default. A bad file ends in one line that names the
key and what was expected.
"""

from __future__ import annotations

import difflib
import itertools
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlops.errors import UsageError, shorten
from mlops.tasks.families import FAMILIES, families_for
from mlops.tasks.metrics import REPORTED, TaskName, get_metric, report_names

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
    reference: Path = Path("models/reference.json")
    # What `mlops monitor` found (its reports are working files, git-ignored) and what
    # `mlops respond` decided (an append-only log, committed).
    monitoring_dir: Path = Path("reports/monitoring")
    monitoring: Path = Path("reports/monitoring/monitoring.json")
    decisions: Path = Path("monitoring/decisions.jsonl")
    dvc_lock: Path = Path("dvc.lock")
    # Facts of a run, not of its inputs (when, how long, from which checkout): kept
    # out of every tracked output so a reproduced run changes no byte. Git-ignored.
    runs_dir: Path = Path("reports/runs")


PATHS = Paths()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# YAML gives lists; strict mode would only accept tuples, so sequences are lax
# (a list or tuple of the right item type) while scalars stay strict.
StrTuple = Annotated[tuple[str, ...], Field(strict=False)]
LabelTuple = Annotated[tuple[str | int, ...], Field(strict=False, min_length=1)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


DecimalMark = Literal[".", ","]  # a CSV's decimal mark


class DataConfig(_Section):
    """How to read the source, which column is the target, and what kind of task it is."""

    source: str
    format: Literal["auto", "csv", "parquet", "feather", "json"]
    header: bool
    columns: StrTuple | None
    separator: str
    # A CSV's decimal mark: "," for the exports of a spreadsheet set to a European
    # locale ("3,5"; their separator is then ";" or a tab). "." when unset.
    decimal: DecimalMark = "."
    # The mark grouping a number's thousands ("1,234.5": ","; "1.234,5": "."); null: none.
    thousands: DecimalMark | None = None
    na_values: StrTuple
    comment: str | None
    # Columns of the source the project never reads: dropped as it is read, so they are
    # in no contract, feature or log (empty, irrelevant or leaking ones). [] when unset.
    drop: StrTuple = ()
    target: str
    # Rows whose target is missing (not yet labelled): left out as the source is read
    # (drop: they can neither teach nor score a model; ingest says how many) or refused
    # (fail: every row must be labelled). drop when unset.
    unlabelled: Literal["drop", "fail"] = "drop"
    task: TaskName
    # binary: the labels that mean 1 and 0. multiclass: the allowed labels (null:
    # whatever the data holds). regression: all three null.
    positive_class: LabelTuple | None
    negative_class: LabelTuple | None
    classes: LabelTuple | None
    # A folder of Parquet files in the source's shape (raw column names, the target's
    # labels) whose rows are appended to it: the labelled production rows `mlops respond`
    # adds, each a DVC-tracked file, so every retraining's data is a version.
    extra_data: str

    @model_validator(mode="after")
    def _decimal_is_not_the_separator(self) -> DataConfig:
        if self.decimal == self.separator:
            raise ValueError(
                f'decimal and separator are both "{self.decimal}"; a CSV with decimal commas '
                'is separated by ";" or a tab'
            )
        return self

    @model_validator(mode="after")
    def _thousands_is_not_the_decimal_mark(self) -> DataConfig:
        # It may be the separator: a comma-separated file quotes "1,234".
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError(
                f'thousands and decimal are both "{self.decimal}"; with decimal ".", '
                'thousands is "," (and the reverse)'
            )
        return self

    @model_validator(mode="after")
    def _target_is_not_dropped(self) -> DataConfig:
        if self.target in self.drop:
            raise ValueError(f"drop lists the target, {self.target}; a target is never dropped")
        return self

    @model_validator(mode="after")
    def _labels_fit_task(self) -> DataConfig:
        binary = {"positive_class": self.positive_class, "negative_class": self.negative_class}
        if self.task == "binary":
            unset = [key for key, value in binary.items() if value is None]
            if unset:
                raise ValueError(f"a binary task needs {unset[0]} (the labels it maps to)")
            if self.classes is not None:
                raise ValueError("classes is for a multiclass task; set it to null")
        elif any(value is not None for value in binary.values()):
            raise ValueError(
                f"positive_class and negative_class are for a binary task; "
                f"set them to null for {self.task}"
            )
        if self.task == "regression" and self.classes is not None:
            raise ValueError("classes is for a multiclass task; set it to null")
        if self.classes is not None and len(set(map(str, self.classes))) < 3:
            raise ValueError("classes lists fewer than 3 distinct labels")
        overlap = set(self.positive_class or ()) & set(self.negative_class or ())
        if overlap:
            raise ValueError(
                f"positive_class and negative_class share {shorten(sorted(map(str, overlap)))}"
            )
        return self


class SplitConfig(_Section):
    test_size: Fraction
    # multiclass: the rows of a class seen too rarely to split and cross-validate
    # (data.splitting.min_class_rows) are left out, and split names them (drop; the model
    # then never predicts that class), or the split is refused (fail). drop when unset.
    rare_classes: Literal["drop", "fail"] = "drop"
    # A column whose rows belong together (a customer, a patient, a person over the years):
    # each group stays whole on one side of the split and of every cross-validation fold,
    # and the column is an identifier, never a feature. null: rows are independent.
    groups: str | None = None
    # A date/time column that orders the rows: the test split is the latest test_size
    # share of them (a model is scored on rows from after all it learned from, as in
    # production), cross-validation folds go forward in time, evaluate measures staleness
    # along it, and it is never a feature. null: a random split.
    time: str | None = None

    @model_validator(mode="after")
    def _groups_or_time(self) -> SplitConfig:
        if self.groups is not None and self.time is not None:
            raise ValueError(
                "groups and time are both set; a split keeps groups whole or follows time, "
                "not both: set one of them to null"
            )
        return self


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
            raise ValueError(f"columns both dropped and allowed: {shorten(both)}")
        return self


class ImportanceConfig(_Section):
    """Permutation importance on a held-out part of the training split."""

    enabled: bool
    holdout: Fraction
    max_rows: Annotated[int, Field(ge=100)]
    n_repeats: Annotated[int, Field(ge=2)]
    z: Annotated[float, Field(ge=0.0)]
    scoring: str  # a metric of the task (tasks.metrics)
    # A pair of features more associated than this is redundant (mlops.data.redundancy).
    redundancy: Rate
    # What happens to a feature adding nothing (indistinguishable from zero, or the less
    # important of a redundant pair): reported | left out of the model | validation fails.
    policy: Literal["report", "drop", "fail"]


class CostConfig(_Section):
    """What keeping each feature costs: the cheap probe model fitted with and without it."""

    enabled: bool
    fit_rows: Annotated[int, Field(ge=100)]
    timed_rows: PositiveInt  # single-row predictions timed per model (the median is kept)
    # One refit per feature measured: above this many features, only the least valuable
    # ones (those a policy would drop) are measured, so wide data stays in minutes.
    max_features: PositiveInt = 30


class LeakageConfig(_Section):
    """Target leakage: a feature that alone all but gives the target away
    (mlops.data.leakage), scored on the rows validate.importance holds out."""

    enabled: bool = True
    # A feature whose skill alone (1 - its squared error / the prior's: 1 perfect, 0 no
    # better than the class shares or the mean) is at least this is a suspected leak.
    max_skill: Annotated[float, Field(strict=False, gt=0.0, le=1.0)] = 0.95
    # What happens to a suspected leak: reported | left out of the model | validation fails.
    policy: Literal["report", "drop", "fail"] = "fail"
    allow: StrTuple = ()  # reviewed: known when a prediction is made, so kept as a feature


class ValidateConfig(_Section):
    extra_columns: Literal["fail", "drop", "allow"]
    max_value_skew: Rate
    qa_threshold: Rate
    protected: StrTuple
    ids: StrTuple | None  # None: detected (mlops.data.identifiers); a list: exactly these
    quality: QualityConfig
    privacy: PrivacyConfig
    importance: ImportanceConfig
    cost: CostConfig
    leakage: LeakageConfig = LeakageConfig()


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
# A name in the model family registry (tasks.families); Params checks it fits the task.
ModelFamily = str
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
    # tpe and random: the study's first trials are each family at scikit-learn's
    # defaults (as near as its space allows), so a search never ends below them.
    start_from_defaults: bool
    random_starts: NonNegativeInt
    grid_points: Annotated[int, Field(ge=2)]
    metric: str  # a metric of the task; its direction comes from tasks.metrics
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

    @field_validator("space", "fixed")
    @classmethod
    def _known_families(cls, spaces: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(spaces) - set(FAMILIES))
        if unknown:
            raise ValueError(
                f"unknown model family {shorten(unknown[0])}; expected one of {', '.join(FAMILIES)}"
            )
        return spaces

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
# A number the evaluate stage writes to reports/metrics.json (report_names): the
# names a gate threshold may use, checked against the task when params.yaml is loaded.
MetricName = str


class EvaluationImportanceConfig(_Section):
    repeats: PositiveInt
    max_rows: PositiveInt


class BusinessConfig(_Section):
    """The value of each outcome of one prediction, in any unit (money, hours...).

    binary: the four outcomes; multiclass: a right and a wrong class; regression:
    the cost of each unit predicted above and below the actual value.
    """

    true_positive: LaxFloat
    false_positive: LaxFloat
    true_negative: LaxFloat
    false_negative: LaxFloat
    correct: LaxFloat
    incorrect: LaxFloat
    over_prediction_cost: Annotated[float, Field(strict=False, ge=0.0)]
    under_prediction_cost: Annotated[float, Field(strict=False, ge=0.0)]
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
            raise ValueError(f"{shorten(both[0])} is listed in both columns and bands")
        for name, edges in self.bands.items():
            if any(low >= high for low, high in itertools.pairwise(edges)):
                raise ValueError(
                    f"bands.{_cut(name)}: edges must increase strictly, got {shorten(list(edges))}"
                )
        return self


class FairnessConfig(_Section):
    """Per protected attribute (validate.protected): what a group needs to be measured,
    and when a feature counts as a proxy for the attribute."""

    min_rows: PositiveInt
    min_positives: PositiveInt  # classification: rows of the judged class in the group
    proxy_threshold: Annotated[float, Field(strict=False, gt=0.0, le=1.0)]
    proxy_rows: PositiveInt


class StalenessConfig(_Section):
    """Where the time order comes from (a column, else a held-out stream), and the fit."""

    time_column: str | None
    stream: str | None  # a file the data section's reader reads (null: none)
    window_days: Annotated[float, Field(strict=False, gt=0.0)]
    windows: Annotated[int, Field(ge=3)]
    confidence: Annotated[float, Field(strict=False, ge=0.5, lt=1.0)]


class TrainConfig(_Section):
    max_rows: PositiveInt | None = None  # a sample of the training split (null: all)
    # A classifier's probabilities refitted to out-of-fold predictions (tune.cv_folds
    # folds): Platt's sigmoid or isotonic; null keeps the model's own.
    calibration: Literal["sigmoid", "isotonic"] | None = None


class EvaluateConfig(_Section):
    metric: str  # a metric of the task (tasks.metrics)
    threshold: Fraction
    calibration_bins: Annotated[int, Field(ge=2)]
    importance: EvaluationImportanceConfig
    # null: no business value is computed (no values fit the data yet).
    business: BusinessConfig | None
    slices: SlicesConfig
    fairness: FairnessConfig
    staleness: StalenessConfig


class GateConfig(_Section):
    """The blessing: absolute thresholds, margins over baselines, change against production.

    A null value switches its check off (listed as off in the report), so a check
    that does not fit the data is visibly skipped rather than deleted or faked.
    """

    minimum: dict[MetricName, LaxFloat | None]
    maximum: dict[MetricName, LaxFloat | None]
    baseline_margin: dict[str, LaxFloat | None]  # per baseline of the task (tasks.task)
    max_degradation: dict[MetricName, Annotated[float, Field(strict=False, ge=0.0)] | None]
    # measured: derived from evaluation.json's staleness (release.gating.age_limit).
    max_age_days: Annotated[float, Field(strict=False, gt=0.0)] | Literal["measured"] | None
    # max_age_days measured, but nothing orders the data in time: this limit (null: none).
    unmeasured_age_days: Annotated[float, Field(strict=False, gt=0.0)] | None
    # A threshold on slice_worst or slice_gap when no slice could be measured (all too
    # small or of a single class): fail, or pass with the reasons in the report.
    unmeasurable_slices: Literal["fail", "pass"]
    # A protected group too small to measure (evaluate.fairness): fail, or pass naming it.
    unmeasurable_groups: Literal["fail", "pass"]


# A model feature null in a request or batch: filled by the model's fitted imputers
# (and flagged in the answer and the prediction log), or the input is refused.
MissingValues = Literal["impute", "refuse"]


class ServeConfig(_Section):
    """Serving: where `mlops serve` listens, request limits, the prediction log."""

    host: str
    port: Annotated[int, Field(ge=0, le=65535)]
    workers: PositiveInt
    max_body_bytes: PositiveInt
    read_timeout_s: Annotated[float, Field(strict=False, gt=0.0)]
    batch_max_rows: PositiveInt
    batch_wait_ms: Annotated[float, Field(strict=False, ge=0.0, le=1000.0)]
    missing_values: MissingValues
    log_dir: str
    log_retention_days: PositiveInt


NonNegative = Annotated[float, Field(strict=False, ge=0.0)]
Positive = Annotated[float, Field(strict=False, gt=0.0)]
LaxFraction = Annotated[float, Field(strict=False, gt=0.0, lt=1.0)]


class DriftConfig(_Section):
    """When a feature, the inputs as a whole and the prediction count as drifted
    (mlops.monitoring.drift.Thresholds; the defaults are Evidently's)."""

    p_value: LaxFraction  # windows of <= 1,000 rows: KS / chi-squared p-value below it
    distance: Positive  # larger windows: Wasserstein (in sd) / Jensen-Shannon at or above it
    share: Annotated[float, Field(strict=False, gt=0.0, le=1.0)]
    # Per feature (or output column): {p_value: ..., distance: ...}, either or both.
    features: dict[str, dict[Literal["p_value", "distance"], Positive]]


class InputQualityConfig(_Section):
    """What makes a window's inputs broken rather than drifted (an alert, not a retraining)."""

    max_refused_rate: Annotated[float, Field(strict=False, ge=0.0, le=1.0)]
    max_null_increase: Annotated[float, Field(strict=False, ge=0.0, le=1.0)]
    max_unseen_rate: Annotated[float, Field(strict=False, ge=0.0, le=1.0)]
    scale_factor: Annotated[float, Field(strict=False, gt=1.0)]


class PerformanceConfig(_Section):
    """Realised (labelled) and estimated performance against the model's test metrics."""

    # Per task, per metric: how much worse than its test value a window may score
    # (absolute, the metric's own unit, as gate.max_degradation). Only data.task's apply;
    # a metric left out is reported, not judged.
    max_degradation: dict[TaskName, dict[MetricName, NonNegative]]
    min_labelled_rows: PositiveInt

    @model_validator(mode="after")
    def _metrics_fit_their_task(self) -> PerformanceConfig:
        for task, limits in self.max_degradation.items():
            for name in limits:
                try:
                    get_metric(name, task)
                except ValueError as exc:
                    raise ValueError(f"max_degradation.{task}: {exc}") from None
        return self


class MonitorConfig(_Section):
    """Monitoring production against the reference profile training leaves behind."""

    # Values per numeric feature kept in models/reference.json (a seeded sample): what
    # the drift tests compare a window of logged rows with, without the training data.
    reference_rows: Annotated[int, Field(ge=100)]
    input_quality: InputQualityConfig
    drift: DriftConfig
    performance: PerformanceConfig
    max_model_age_days: Positive | None
    max_data_age_days: Positive | None
    max_latency_ratio: Annotated[float, Field(strict=False, gt=1.0)] | None


# What a rule of the respond policy may test (mlops.monitoring.policy says how each
# reads reports/monitoring/monitoring.json); an unknown name is a params error.
Condition = Literal[
    "unstable",
    "below_floor",
    "prediction_drift_after_promotion",
    "all_null",
    "scale_changed",
    "refused_rate",
    "feature_drift",
    "performance_decay",
]
Action = Literal["rollback", "alert", "retrain"]


class RuleConfig(_Section):
    """One rule of the policy: ``action`` when any of ``when`` holds."""

    action: Action
    when: Annotated[tuple[Condition, ...], Field(strict=False, min_length=1)]


class CanaryConfig(_Section):
    """The candidate model on recent logged inputs, before any promotion."""

    rows: PositiveInt
    min_agreement: Annotated[float, Field(strict=False, gt=0.0, le=1.0)]
    latency_rows: PositiveInt
    max_latency_ratio: Annotated[float, Field(strict=False, gt=1.0)]


class RespondConfig(_Section):
    """How `mlops respond` maps monitoring's findings to one action."""

    policy: Annotated[tuple[RuleConfig, ...], Field(strict=False, min_length=1)]
    performance_floor: dict[MetricName, LaxFloat | None]
    after_promotion_days: Annotated[float, Field(strict=False, gt=0.0)]
    min_labelled_rows: PositiveInt
    canary: CanaryConfig

    @model_validator(mode="after")
    def _one_rule_per_action(self) -> RespondConfig:
        actions = [rule.action for rule in self.policy]
        twice = sorted({a for a in actions if actions.count(a) > 1})
        if twice:
            raise ValueError(f"policy: action {twice[0]!r} has two rules; merge their `when`")
        return self


class Params(_Section):
    """The whole of params.yaml."""

    seed: int
    data: DataConfig
    split: SplitConfig
    validate_: ValidateConfig = Field(alias="validate")
    impute: ImputeConfig
    tune: TuneConfig
    # A default: params.yaml files from before the section existed fit every row.
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig
    gate: GateConfig
    serve: ServeConfig
    monitor: MonitorConfig
    respond: RespondConfig

    @model_validator(mode="after")
    def _fits_task(self) -> Params:
        """Every metric, family and gate name must fit data.task (one line naming the fix)."""
        task = self.data.task
        if self.train.calibration is not None and task == "regression":
            raise ValueError(
                "train.calibration: a regression has no probabilities to calibrate; set it to null"
            )
        for key, name in (
            ("tune.metric", self.tune.metric),
            ("evaluate.metric", self.evaluate.metric),
            ("validate.importance.scoring", self.validate_.importance.scoring),
        ):
            try:
                get_metric(name, task)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        doers = families_for(task)
        for key, families in (
            ("tune.families", self.tune.families),
            ("impute.auto.family", (self.impute.auto.family,)),
        ):
            wrong = [f for f in families if f not in doers]
            if wrong:
                raise ValueError(
                    f"{key}: {wrong[0]!r} does not do {task}; {task} families: {', '.join(doers)}"
                )
        from mlops.tasks.task import get_task  # noqa: PLC0415 (pandas: not at start-up)

        baselines = get_task(task).baselines
        if set(self.gate.baseline_margin) - set(baselines):
            odd = sorted(set(self.gate.baseline_margin) - set(baselines))[0]
            raise ValueError(
                f"gate.baseline_margin: no baseline {odd!r} for {task}; "
                f"expected {', '.join(baselines)}"
            )
        names = report_names(task, baselines)
        for section in ("minimum", "maximum", "max_degradation"):
            odd_names = [n for n in getattr(self.gate, section) if n not in names]
            if odd_names:
                raise ValueError(
                    f"gate.{section}: reports/metrics.json has no {odd_names[0]!r} for a "
                    f"{task} task; expected one of {', '.join(names)}"
                )
        if self.evaluate.business is None:
            self._no_business_thresholds()
        return self

    def _no_business_thresholds(self) -> None:
        """With evaluate.business null, no business number exists for a threshold to bound."""
        for section in ("minimum", "maximum", "max_degradation"):
            for name, bound in getattr(self.gate, section).items():
                reported = REPORTED.get(name)
                if bound is not None and reported is not None and reported.section == "business":
                    raise ValueError(
                        f"gate.{section}.{name}: evaluate.business is null, so no {name} is "
                        f"computed; set evaluate.business's values, or make this threshold null"
                    )


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
    errors = exc.errors()
    # A misspelt key is also reported missing: name the typo first, with its fix.
    for error in errors:
        if error["type"] == "extra_forbidden" and (hint := _suggestion(error["loc"])):
            return f"unknown key {_key(error['loc'])} ({hint})"
    error = errors[0]
    key = _key(error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"missing key {key}"
    if kind == "extra_forbidden":
        return f"unknown key {key}"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = f"{message[0].lower()}{message[1:]}"
    if key == "(top level)":
        return message  # a check across sections names its keys itself
    if isinstance(error["input"], dict):
        return f"{key}: {message}"  # a check of a section: the section is no example
    return f"{key}: {message} (got {shorten(error['input'])})"


def _key(loc: tuple[int | str, ...]) -> str:
    """The dotted key path; tagged unions add the tag ("tune.space.x.y.float.low"): dropped."""
    parts = [_cut(str(p)) for p in loc if p not in _UNION_TAGS]
    return ".".join(parts) or "(top level)"


def _cut(part: str, limit: int = 60) -> str:
    return part if len(part) <= limit else f"{part[: limit - 3]}..."


def _suggestion(loc: tuple[int | str, ...]) -> str | None:
    """ "did you mean test_size?" for an unknown key close to one its section accepts."""
    name = str(loc[-1])
    # 0.75, not difflib's 0.6: tune.pruner.min_folds (a key of another pruner) is no
    # typo of warmup_folds (0.67), while tset_size (0.89) and hihg (0.75) are typos.
    close = difflib.get_close_matches(name, _known_keys(loc[:-1]), n=1, cutoff=0.75)
    return f"did you mean {close[0]}?" if close else None


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the section at ``loc`` (a pydantic error location) accepts."""
    node: Any = Params
    for part in loc:
        node = _child(_unwrap(node), part)
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [field.alias or name for name, field in node.model_fields.items()]
    return []


def _child(node: Any, part: int | str) -> Any:
    """The type found at ``part`` (a field, a mapping's key, a union's tag) inside ``node``."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        fields = node.model_fields.items()
        return next((f.annotation for n, f in fields if part in (n, f.alias)), None)
    if get_origin(node) is dict:
        return get_args(node)[1]
    if get_origin(node) in (Union, types.UnionType):
        members = [m for m in get_args(node) if m is not type(None)]
        tagged = [m for m in members if part in _tags(m)]
        if tagged:
            return tagged[0]
        return _child(_unwrap(members[0]), part) if len(members) == 1 else None
    return None


def _tags(member: Any) -> tuple[object, ...]:
    """The values of a tagged union member's ``type`` field."""
    if not (isinstance(member, type) and issubclass(member, BaseModel)):
        return ()
    field = member.model_fields.get("type")
    return get_args(field.annotation) if field is not None else ()


def _unwrap(node: Any) -> Any:
    while get_origin(node) is Annotated:
        node = get_args(node)[0]
    return node
