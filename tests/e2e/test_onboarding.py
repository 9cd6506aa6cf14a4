"""A new user's data, first time: `mlops init --data FILE --target COLUMN`, then `dvc repro`
reaches a gate verdict with no other edit, on every file of tests/user_files.py.

The template is copied pristine (the Adult demo's params), the user's file lies
outside the project, as a download does, and nothing but `mlops init` touches
params.yaml or the contract before `dvc repro`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, copy_project
from tests.task_projects import must
from tests.task_projects import run as run_in
from tests.user_files import CANCELLATIONS, ORDERS, USER_FILES, VISITS, UserFile, write

pytestmark = pytest.mark.slow


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


_ONBOARDED: dict[str, Path] = {}


def onboarded(user_file: UserFile, factory: pytest.TempPathFactory) -> Path:
    """The project ``user_file`` was brought into, built once per session."""
    if user_file.name not in _ONBOARDED:
        _ONBOARDED[user_file.name] = onboard(user_file, factory.mktemp("onboard"))
    return _ONBOARDED[user_file.name]


def onboard(
    user_file: UserFile, folder: Path, review: Callable[[Path, str], None] | None = None
) -> Path:
    """The template with ``user_file`` brought in by `mlops init` and `dvc repro` run once;
    ``review`` (the project, what init printed) acts between the two, as a user would."""
    project = copy_project(folder / "project")
    for name in ("artifacts.yaml", ".gto", ".gitignore"):
        shutil.copy2(ROOT / name, project / name)
    must(project, "git", "add", "-A")
    must(project, "git", "commit", "-qm", "the template")
    data = write(user_file, folder / "downloads")
    said = must(
        project,
        "mlops",
        "init",
        "--data",
        str(data),
        "--target",
        user_file.target,
        *user_file.options,
    )
    if review is not None:
        review(project, said)
    must(project, "dvc", "repro")
    return project


@pytest.mark.parametrize("user_file", USER_FILES, ids=lambda f: f.name)
def test_init_then_repro_reaches_a_gate_verdict(
    user_file: UserFile, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = onboarded(user_file, tmp_path_factory)
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["data"]["task"] == user_file.task
    gate = _json(project / "reports/gate.json")
    # A verdict on the first run; on these files a blessing (bench/onboarding.py prints
    # each headline metric beside plain scikit-learn's).
    assert gate["passed"], [c for c in gate["checks"] if c["verdict"] == "fail"]
    card = _json(project / "models/model_card.json")
    assert card["task"] == user_file.task
    features = [*card["features"]["numeric"], *card["features"]["categorical"]]
    assert features
    assert user_file.target not in features
    if user_file.name == "churn.csv.gz":  # decimal commas: read as the numbers they are
        assert params["data"]["decimal"] == ","
        assert {f"x{i}" for i in range(6)} <= set(card["features"]["numeric"])
    if user_file.name == "loans.csv":  # R's row names identify rows: never a feature
        assert "rownames" not in features
        assert "rownames" in _json(project / "reports/validation.json")["ids"]
        # A column with no value is left out as the source is read (the contract would
        # refuse it); a feature of 400 categories costs no model family a fit.
        assert params["data"]["drop"] == ["comments"]
        schema = yaml.safe_load((project / "data/schema.yaml").read_text())
        assert "comments" not in schema["columns"]
        assert "branch" in card["features"]["categorical"]
        assert _json(project / "reports/tuning/metrics.json")["failed"] == 0


def test_rare_positives_give_a_model_no_worse_than_the_majority(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """3 % positives: the default search must not trade calibration and accuracy for
    ranking (tuning by ROC AUC once chose class_weight: balanced, ECE 0.19, accuracy
    below always answering "no")."""
    (fraud,) = [f for f in USER_FILES if f.name == "fraud.csv"]
    project = onboarded(fraud, tmp_path_factory)
    metrics = _json(project / "reports/metrics.json")
    test = pd.read_parquet(project / "data/split/test.parquet")
    majority = max(test[fraud.target].mean(), 1 - test[fraud.target].mean())
    assert metrics["accuracy"] >= majority
    assert metrics["ece"] <= 0.05


def test_a_patient_s_visits_stay_on_one_side_once_init_s_review_is_followed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Visits of 150 patients, 6 each: init proposes split.groups for patient_id; once it
    is set, no patient is on both sides of the split, patient_id is no feature (as an
    id) and validate reports the groups; the run still reaches a verdict."""

    def follow(project: Path, said: str) -> None:
        assert "rows repeat per patient_id (150 values over 900 rows, 6.0 rows each)" in said
        text = (project / "params.yaml").read_text()
        assert "\n  groups: null\n" in text
        (project / "params.yaml").write_text(
            text.replace("\n  groups: null\n", "\n  groups: patient_id\n")
        )

    project = onboard(VISITS, tmp_path_factory.mktemp("visits"), follow)
    train = pd.read_parquet(project / "data/split/train.parquet")
    test = pd.read_parquet(project / "data/split/test.parquet")
    assert not set(train["patient_id"]) & set(test["patient_id"])
    assert (len(train), len(test)) == (720, 180)  # 30 of 150 patients, 6 visits each
    card = _json(project / "models/model_card.json")
    assert "patient_id" not in [*card["features"]["numeric"], *card["features"]["categorical"]]
    assert _json(project / "reports/validation.json")["groups"] == "patient_id"
    plan = _json(project / "models/imputation.json")
    assert any(
        f["name"] == "patient_id" and "split.groups" in f["reason"] for f in plan["features"]
    ), plan["features"]
    assert "passed" in _json(project / "reports/gate.json")


def test_the_latest_orders_are_the_test_split_once_init_s_review_is_followed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Orders over two years: init reads order_date as dates and proposes split.time; once
    it is set, the test split is the latest orders, order_date is no feature, validate
    reports it, and evaluate measures staleness along it from the training data's end."""

    def follow(project: Path, said: str) -> None:
        assert "no time order: order_date reads as dates or times" in said
        assert "set split.time: order_date" in said
        text = (project / "params.yaml").read_text()
        assert "\n  time: null\n" in text
        (project / "params.yaml").write_text(
            text.replace("\n  time: null\n", "\n  time: order_date\n", 1)
        )

    project = onboard(ORDERS, tmp_path_factory.mktemp("orders"), follow)
    train = pd.read_parquet(project / "data/split/train.parquet")
    test = pd.read_parquet(project / "data/split/test.parquet")
    assert train["order_date"].max() < test["order_date"].min()  # ISO dates sort as text
    assert abs(len(test) - 240) <= 5  # 20 % of 1,200, a day's orders kept together
    card = _json(project / "models/model_card.json")
    assert "order_date" not in [*card["features"]["numeric"], *card["features"]["categorical"]]
    assert _json(project / "reports/validation.json")["time"] == "order_date"
    plan = _json(project / "models/imputation.json")
    assert any(
        f["name"] == "order_date" and "split.time" in f["reason"] for f in plan["features"]
    ), plan["features"]
    staleness = _json(project / "reports/evaluation.json")["staleness"]
    assert staleness["available"], staleness
    assert "every row after the training data's latest (split.time)" in staleness["source"]
    assert all(window["age_days"] >= 0 for window in staleness["windows"])
    assert "passed" in _json(project / "reports/gate.json")


def test_a_column_filled_in_after_the_outcome_is_left_out_and_stops_validate_if_put_back(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Subscribers with the reason those who left gave: init finds that cancel_reason
    alone gives churned away and leaves it out (data.drop), so the first run is honest;
    a user who puts it back without allowing it gets validate's one line, not a model."""

    def review(project: Path, said: str) -> None:
        assert "suspected target leaks, each alone forecasting churned all but perfectly" in said
        assert "cancel_reason (1.00)" in said
        assert yaml.safe_load((project / "params.yaml").read_text())["data"]["drop"] == [
            "cancel_reason"
        ]

    project = onboard(CANCELLATIONS, tmp_path_factory.mktemp("cancellations"), review)
    card = _json(project / "models/model_card.json")
    features = [*card["features"]["numeric"], *card["features"]["categorical"]]
    assert "cancel_reason" not in features
    assert "support_calls" in features
    leakage = _json(project / "reports/validation.json")["leakage"]
    assert leakage["suspected"] == []
    assert max(leakage["skills"].values()) < leakage["max_skill"]
    assert "passed" in _json(project / "reports/gate.json")

    text = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(text.replace("drop: [cancel_reason]", "drop: []", 1))
    contract = yaml.safe_load((project / "data/schema.yaml").read_text())
    contract["columns"]["cancel_reason"] = {"dtype": "str", "nullable": True}
    (project / "data/schema.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    before = (project / "models/model.skops").read_bytes()
    put_back = run_in(project, "dvc", "repro")
    assert put_back.returncode != 0
    said = [line for line in put_back.stderr.splitlines() if "validation failed" in line]
    assert len(said) == 1, put_back.stderr
    assert "feature 'cancel_reason' alone forecasts the target with skill 1.000" in said[0]
    assert "data.drop" in said[0]
    assert "validate.leakage.allow" in said[0]
    assert (project / "models/model.skops").read_bytes() == before  # no model trained on it
