"""Typed, frozen configuration loaded from params.yaml, and the artefact paths.

Every key is required and every unknown key is an error, so a typo can never
silently fall back to a default. A bad file ends in one line that names the
key and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    gate: Path = Path("reports/gate.json")
    production: Path = Path("models/production.json")
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


class ImputeConfig(_Section):
    numeric: Literal["mean", "median"]
    categorical: Literal["most_frequent", "missing_category"]


class IntParam(_Section):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False

    @model_validator(mode="after")
    def _range(self) -> IntParam:
        _check_range(self.low, self.high, self.log)
        return self


class FloatParam(_Section):
    type: Literal["float"]
    low: Annotated[float, Field(strict=False)]
    high: Annotated[float, Field(strict=False)]
    log: bool = False

    @model_validator(mode="after")
    def _range(self) -> FloatParam:
        _check_range(self.low, self.high, self.log)
        return self


class CategoricalParam(_Section):
    type: Literal["categorical"]
    choices: Annotated[
        tuple[str | int | float | bool | None, ...], Field(strict=False, min_length=1)
    ]


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, got {low}")


ParamSpec = Annotated[IntParam | FloatParam | CategoricalParam, Field(discriminator="type")]
ModelFamily = Literal["hist_gradient_boosting", "random_forest", "logistic_regression"]
Metric = Literal["roc_auc", "average_precision", "accuracy", "f1", "neg_log_loss"]


class TuneConfig(_Section):
    """The search: method, space per model family, target metric and budget."""

    method: Literal["tpe"]
    metric: Metric
    direction: Literal["maximize", "minimize"]
    cv_folds: Annotated[int, Field(ge=2)]
    n_trials: PositiveInt
    families: Annotated[tuple[ModelFamily, ...], Field(strict=False, min_length=1)]
    space: dict[ModelFamily, dict[str, ParamSpec]]
    fixed: dict[ModelFamily, dict[str, Any]]

    @model_validator(mode="after")
    def _space_covers_families(self) -> TuneConfig:
        for family in self.families:
            if family not in self.space and family not in self.fixed:
                raise ValueError(f"family {family!r} has neither a search space nor fixed params")
        return self


class EvaluateConfig(_Section):
    threshold: Fraction


class ServeConfig(_Section):
    """Serving: where `mlops serve` listens, request limits, the prediction log."""

    host: str
    port: Annotated[int, Field(ge=0, le=65535)]
    max_body_bytes: PositiveInt
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
    serve: ServeConfig


def parse_params(raw: Any, source: str = str(PARAMS_FILE)) -> Params:
    """Validate a parsed YAML document; the first problem becomes one UsageError line."""
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(f"{source}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    # Tagged unions add the tag to the location ("tune.space.x.y.float.low"): drop it.
    loc = [str(p) for p in error["loc"] if p not in ("int", "float", "categorical")]
    key = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "missing":
        return f"missing key {key}"
    if kind == "extra_forbidden":
        return f"unknown key {key}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key}: {message[0].lower()}{message[1:]} (got {error['input']!r})"
