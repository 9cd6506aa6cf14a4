"""`mlops impute` on a small split: the plan, the QA policy, bad input, and no leakage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.cli import main
from mlops.config import PATHS
from mlops.data.splitting import split
from mlops.features.imputation import mask_values
from mlops.features.pipeline import TRUSTED_TYPES
from mlops.io import files, modelfile
from tests.conftest import edit_params, run

TARGET = "income"
PROTECTED = "race"
BEST = {"family": "hist_gradient_boosting", "params": {"max_iter": 40}, "metric": "roc_auc"}


def validation_report(train: pd.DataFrame, failing: list[str]) -> dict[str, Any]:
    """What the validate stage reports: features (protected left out) and their quality."""
    features = [c for c in train.columns if c not in (TARGET, PROTECTED)]
    rates = train[features].isna().mean()
    quality = {
        name: {
            "score": round(1 - float(rates[name]), 3),
            "missing_rate": round(float(rates[name]), 6),
            "reasons": [f"{rates[name]:.0%} missing"] if name in failing else [],
            "passed": name not in failing,
        }
        for name in features
    }
    quality["capital_gain"]["sentinels"] = [99999.0]
    return {
        "passed": True,
        "rows": len(train),
        "features": features,
        "quality": {"threshold": 0.8, "features": quality, "failing": failing},
        "protected": [PROTECTED],
    }


def write_inputs(train: pd.DataFrame, test: pd.DataFrame, report: dict[str, Any]) -> None:
    files.write_parquet(PATHS.train, train)
    files.write_parquet(PATHS.test, test)
    files.write_json(PATHS.validation, report)


@pytest.fixture
def splits(project: Path, adult_sample: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample split, with a quarter of 'age' gone from training (at random)."""
    train, test = split(adult_sample, TARGET, 0.2, 0, "binary")
    train = mask_values(train, ["age"], 0.25, "mcar", 0)
    write_inputs(train, test, validation_report(train, ["age"]))
    edit_params(
        project,
        impute={"auto": {"family": "logistic_regression", "cv_folds": 2, "max_rows": 1000}},
    )
    return train, test


def read_plan() -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(PATHS.imputation.read_text())
    return plan


def features(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in plan["features"]}


def test_the_plan_follows_the_quality_report(
    splits: tuple[pd.DataFrame, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    train = splits[0]
    assert main(["impute"]) == 0
    plan = read_plan()
    by_name = features(plan)
    assert plan["source"] == "reports/validation.json"
    assert plan["threshold"] == 0.8
    assert [f["name"] for f in plan["features"]] == [c for c in train.columns if c != TARGET]
    assert by_name[PROTECTED]["decision"] == "drop"
    assert PROTECTED not in plan["summary"]["keep"] + plan["summary"]["impute"]
    age = by_name["age"]
    assert age["decision"] == "impute"
    rate = f"{train['age'].isna().mean():.1%}"
    assert age["reason"] == (
        f"quality {age['quality']['score']} below the QA threshold 0.8 (25% missing); "
        f"{rate} missing in training, imputed by impute.policy"
    )
    assert age["quality"]["passed"] is False
    assert by_name["occupation"]["decision"] == "impute"
    assert by_name["hours_per_week"]["decision"] == "keep"
    gain = by_name["capital_gain"]
    assert gain["decision"] == "impute"
    assert gain["sentinels"] == [99999.0]
    assert gain["missing_rate"] == round(float((train["capital_gain"] == 99999).mean()), 6) > 0
    # auto compared every strategy of both groups, and used the winner
    numeric, categorical = plan["comparisons"]
    assert set(numeric["scores"]) == {"mean", "median", "knn"}
    assert set(categorical["scores"]) == {"most_frequent", "missing_category"}
    assert numeric["rows"] == 1000
    assert age["strategy"] == numeric["chosen"]
    assert by_name["workclass"]["strategy"] == categorical["chosen"]
    out = capsys.readouterr().out
    assert f"13 features: 5 imputed in training [age {rate}" in out


def test_statistics_come_from_the_training_split(
    splits: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train = splits[0]
    edit_params(Path.cwd(), impute={"numeric": "mean", "categorical": "most_frequent"})
    assert main(["impute"]) == 0
    by_name = features(read_plan())
    assert by_name["age"]["statistic"] == pytest.approx(train["age"].mean())
    assert by_name["occupation"]["statistic"] == train["occupation"].mode()[0]


def test_without_quality_findings_every_column_is_a_feature(
    splits: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    files.write_json(PATHS.validation, {"passed": True, "rows": 1, "failures": []})
    assert main(["impute"]) == 0
    plan = read_plan()
    assert plan["source"].startswith("fallback")
    assert plan["threshold"] is None
    assert plan["summary"]["drop"] == []
    assert features(plan)[PROTECTED]["decision"] == "keep"


def test_the_policy_can_drop_failing_features(splits: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    edit_params(Path.cwd(), impute={"policy": "drop"})
    assert main(["impute"]) == 0
    plan = read_plan()
    assert plan["summary"]["drop"] == ["age", PROTECTED]
    assert "dropped by impute.policy" in features(plan)["age"]["reason"]


def test_the_policy_can_stop_the_pipeline(
    splits: tuple[pd.DataFrame, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(Path.cwd(), impute={"policy": "stop"})
    assert main(["impute"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("mlops impute: error: 1 feature(s) below the QA threshold stop the run")
    assert "age (quality" in err
    # the plan records why, and nothing downstream will build a model from it
    assert read_plan()["summary"]["fail"] == ["age"]
    files.write_json(PATHS.best_params, {**BEST, "cv_score": 0.9})
    assert main(["train"]) == 1
    err = capsys.readouterr().err
    assert "the imputation plan stops the pipeline on features ['age']" in err
    assert not PATHS.model.exists()


# --- bad input: one line, an exit code, no output -------------------------------------------------


def all_missing(train: pd.DataFrame, test: pd.DataFrame) -> None:
    empty = train.assign(occupation=pd.Series([None] * len(train), dtype="str"))
    write_inputs(empty, test, validation_report(empty, []))


def unknown_feature(train: pd.DataFrame, test: pd.DataFrame) -> None:
    report = validation_report(train, [])
    report["features"].append("salary")
    files.write_json(PATHS.validation, report)


def no_report(train: pd.DataFrame, test: pd.DataFrame) -> None:
    PATHS.validation.unlink()


BAD_INPUT = [
    pytest.param(
        {"numeric": "mode"},
        None,
        2,
        "params.yaml: impute.numeric: input should be 'mean', 'median', 'knn' or 'auto'",
        id="unknown-strategy",
    ),
    pytest.param(
        {"overrides": {"age": "knnn"}},
        None,
        2,
        "params.yaml: impute.overrides.age: input should be 'mean', 'median', 'knn',",
        id="unknown-override-strategy",
    ),
    pytest.param(
        {"overrides": {"workclass": "knn"}},
        None,
        2,
        "params.yaml impute.overrides.workclass: knn cannot impute a categorical feature "
        "(use one of: most_frequent, missing_category)",
        id="knn-for-a-category",
    ),
    pytest.param(
        {"overrides": {"agee": "median"}},
        None,
        2,
        "params.yaml impute.overrides names 'agee', which is not a model feature",
        id="override-unknown-column",
    ),
    pytest.param(
        {},
        all_missing,
        1,
        "feature 'occupation' is missing in every training row: nothing to impute it from",
        id="all-missing-in-training",
    ),
    pytest.param(
        {},
        unknown_feature,
        2,
        "reports/validation.json: features ['salary'] are not feature columns",
        id="report-names-unknown-feature",
    ),
    pytest.param(
        {},
        no_report,
        2,
        "reports/validation.json: validation report (run `dvc repro validate`) not found",
        id="no-validation-report",
    ),
]


@pytest.mark.parametrize(("impute", "break_input", "code", "message"), BAD_INPUT)
def test_bad_input(
    splits: tuple[pd.DataFrame, pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
    *,
    impute: dict[str, Any],
    break_input: Any,
    code: int,
    message: str,
) -> None:
    PATHS.imputation.parent.mkdir(parents=True, exist_ok=True)
    PATHS.imputation.write_text('{"an": "earlier plan"}\n')
    if impute:
        edit_params(Path.cwd(), impute=impute)
    if break_input:
        break_input(*splits)
    assert main(["impute"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert err.startswith(f"mlops impute: error: {message}"), err
    assert PATHS.imputation.read_text() == '{"an": "earlier plan"}\n'


# --- no leakage ---------------------------------------------------------------------------------


def impute_and_train() -> tuple[str, str]:
    assert main(["impute"]) == 0
    assert main(["train"]) == 0
    return PATHS.imputation.read_text(), files.file_md5(PATHS.model)


def test_a_different_test_split_changes_no_fitted_statistic(
    splits: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = splits
    edit_params(Path.cwd(), impute={"numeric": "knn", "indicators": True})
    files.write_json(PATHS.best_params, {**BEST, "cv_score": 0.9})
    plan, model = impute_and_train()
    # a test split nothing like the first: other rows, shifted values, many gaps
    other = mask_values(test.sample(frac=1.0, random_state=1), ["age", "fnlwgt"], 0.5, "mnar", 3)
    files.write_parquet(PATHS.test, other.assign(hours_per_week=other["hours_per_week"] * 3))
    assert impute_and_train() == (plan, model)
    # the check can fail: a different training split does change them
    files.write_parquet(PATHS.train, train.iloc[100:])
    changed_plan, changed_model = impute_and_train()
    assert changed_plan != plan
    assert changed_model != model


def test_train_records_the_task_and_the_model_s_classes(
    splits: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    files.write_json(PATHS.best_params, {**BEST, "cv_score": 0.9})
    impute_and_train()
    card = json.loads(PATHS.model_card.read_text())
    assert (card["task"], card["classes"]) == ("binary", [0, 1])
    assert card["model"]["family"] == BEST["family"]


# --- serving: which features a batch needs imputed ---------------------------------------------


def test_impute_input_reports_a_batch(
    splits: tuple[pd.DataFrame, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["impute"]) == 0
    capsys.readouterr()
    batch = splits[1].drop(columns=TARGET).head(100)
    batch = batch.assign(age=batch["age"].mask(np.arange(100) < 90))
    batch.to_parquet("batch.parquet")
    before = PATHS.imputation.read_text()
    assert main(["impute", "--input", "batch.parquet", "--report", "counts.json"]) == 0
    counts = json.loads(Path("counts.json").read_text())
    assert counts["rows"] == 100
    assert counts["features"]["age"]["imputed"] == 90
    assert counts["features"]["age"]["rate"] == 0.9
    # the batch's one capital gain of 99999 ("unknown") is imputed too
    assert counts["features"]["capital_gain"]["imputed"] == (batch["capital_gain"] == 99999).sum()
    assert capsys.readouterr().out.startswith("5 feature(s) imputed in 100 rows: age 90.0% (")
    assert PATHS.imputation.read_text() == before
    # The same batch as a gzipped CSV with a header row and no target counts the same.
    batch.to_csv("batch.csv.gz", index=False)
    assert main(["impute", "--input", "batch.csv.gz", "--report", "csv.json"]) == 0
    assert json.loads(Path("csv.json").read_text()) == counts


def test_impute_input_without_a_plan(
    splits: tuple[pd.DataFrame, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    splits[1].to_parquet("batch.parquet")
    assert main(["impute", "--input", "batch.parquet", "--report", "counts.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "models/imputation.json: imputation plan not found" in err
    assert not Path("counts.json").exists()


# --- the stages in a row, with KNN and indicators -----------------------------------------------


def test_tune_train_evaluate_with_knn_and_indicators(
    splits: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    edit_params(Path.cwd(), impute={"numeric": "knn", "indicators": True})
    for stage in ("impute", "tune", "train"):
        assert main([stage]) == 0, stage
    # evaluate loads only a model whose md5 dvc.lock records, as `dvc repro` would have.
    run(["dvc", "commit", "-f", "-q", "train"], Path.cwd())
    assert main(["evaluate"]) == 0
    metrics = json.loads(PATHS.metrics.read_text())
    assert metrics["roc_auc"] > 0.85
    model = modelfile.load(PATHS.model, TRUSTED_TYPES)
    plan = read_plan()
    names = plan["summary"]["keep"] + plan["summary"]["impute"]
    batch = splits[1].drop(columns=TARGET)
    batch = batch.assign(age=batch["age"].mask(np.arange(len(batch)) % 10 != 0))
    proba = model.predict_proba(batch[[c for c in batch.columns if c in names]])[:, 1]
    assert np.isfinite(proba).all()
