"""`mlops predict`, `mlops serve` and `mlops explain` answer in each task's schema.

No `dvc repro` here: a small scikit-learn pipeline fitted on wine (multiclass) or
diabetes (regression) is written where the pipeline leaves its model (models/,
dvc.lock, the splits) and put in the DVC cache named by models/production.json,
as a promotion leaves it, so the stages' own reading, checking and writing is what
is tested (tests/e2e/test_tasks.py runs the whole pipeline).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pytest
import yaml
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlops.cli import main
from mlops.data.contract import contract_document
from mlops.data.ingestion import normalise_name
from mlops.io import dvc, files, modelfile
from tests.conftest import copy_project
from tests.task_projects import dataset, task_params

ESTIMATORS = {"multiclass": LogisticRegression(max_iter=2000), "regression": Ridge()}
ROWS = 12


@pytest.fixture(params=["multiclass", "regression"])
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Pipeline, pd.DataFrame]:
    """(task, the production model, unseen rows without their target) in a fresh project."""
    task = request.param
    root = copy_project(tmp_path / "project")
    frame, target = dataset(task)
    frame.columns = [normalise_name(c) for c in frame.columns]
    target = normalise_name(target)
    params = root / "params.yaml"
    document = task_params(yaml.safe_load(params.read_text()), task, "data/external/x.csv", target)
    params.write_text(yaml.safe_dump(document, sort_keys=False))
    schema = pa.DataFrameSchema(
        {
            name: pa.Column("float64" if numeric(frame[name]) else "str", nullable=True)
            for name in frame.columns
        },
        strict=True,
        coerce=False,
    )
    (root / "data/schema.yaml").write_text(yaml.safe_dump(contract_document(schema)))
    numbers = [c for c in frame.columns if c != target and numeric(frame[c])]
    train, unseen = frame.iloc[ROWS:], frame.iloc[:ROWS].drop(columns=target)
    model = Pipeline(
        [("impute", SimpleImputer()), ("scale", StandardScaler()), ("model", ESTIMATORS[task])]
    ).fit(train[numbers], train[target])
    monkeypatch.chdir(root)
    trained(model, train, frame.iloc[:ROWS])
    promote(model, tmp_path)
    return task, model, unseen.reset_index(drop=True)


def trained(model: Pipeline, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """The model, the splits and a dvc.lock recording the model, as `dvc repro` leaves them."""
    path = Path("models/model.skops")
    path.parent.mkdir(exist_ok=True)
    modelfile.dump(path, model)
    outs = [{"path": path.as_posix(), "md5": files.file_md5(path)}]
    Path("dvc.lock").write_text(
        yaml.safe_dump({"schema": "2.0", "stages": {"train": {"outs": outs}}})
    )
    Path("data/split").mkdir(parents=True)
    train.reset_index(drop=True).to_parquet("data/split/train.parquet")
    test.reset_index(drop=True).to_parquet("data/split/test.parquet")


def numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column)


def promote(model: Pipeline, tmp_path: Path) -> None:
    """The model in the DVC cache and models/production.json naming it."""
    saved = tmp_path / "model.skops"
    modelfile.dump(saved, model)
    md5 = files.file_md5(saved)
    cached = dvc.cache_file(md5)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(saved.read_bytes())
    manifest = {
        "version": "v1.0.0",
        "git_revision": "0" * 40,
        "model_md5": md5,
        "metrics": {},
        "promoted_at": datetime(2026, 1, 2, tzinfo=UTC).isoformat(),
    }
    files.write_json(Path("models/production.json"), manifest)


def expected(task: str, model: Pipeline, rows: pd.DataFrame) -> dict[str, list[Any]]:
    """The task's output columns, from the model itself."""
    features = rows[list(model.feature_names_in_)]
    if task == "regression":
        return {"prediction": model.predict(features).tolist()}
    proba = model.predict_proba(features)
    per_class = {f"probability_{c}": proba[:, i].tolist() for i, c in enumerate(model.classes_)}
    return per_class | {"prediction": model.classes_[proba.argmax(axis=1)].tolist()}


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_predict_writes_the_tasks_columns_and_logs_them(
    project: tuple[str, Pipeline, pd.DataFrame], tmp_path: Path, suffix: str
) -> None:
    task, model, unseen = project
    source, output = tmp_path / "batch.csv", tmp_path / f"predictions.{suffix}"
    unseen.to_csv(source, index=False)
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 0
    if suffix == "csv":
        table = pd.read_csv(output, keep_default_na=False)
    else:
        table = pd.read_parquet(output)
    wanted = expected(task, model, unseen)
    assert list(table.columns) == [*unseen.columns, "request_id", *wanted, "imputed"]
    for column, values in wanted.items():
        assert table[column].tolist() == values  # every digit, in CSV too
    numbers = unseen.select_dtypes("number").columns
    assert table[numbers].equals(unseen[numbers].astype("float64"))  # the inputs as given
    logged = [
        json.loads(line)
        for log in Path("logs/predictions").glob("*.jsonl")
        for line in log.read_text().splitlines()
    ]
    assert len(logged) == ROWS
    assert {name: logged[0][name] for name in wanted} == pytest.approx(
        {name: values[0] for name, values in wanted.items()}
    )


def test_serve_answers_in_the_tasks_schema(project: tuple[str, Pipeline, pd.DataFrame]) -> None:
    from fastapi.testclient import TestClient

    from mlops.serving.app import create_app

    task, model, unseen = project
    rows = json.loads(unseen.head(3).to_json(orient="records"))
    rows[1][str(model.feature_names_in_[0])] = None  # imputed by the model, and named
    with TestClient(create_app(files.load_params())) as client:
        reply = client.post("/predict", json={"rows": rows}, headers={"X-Request-ID": "r"})
    document = reply.json()
    assert reply.status_code == 200, document
    answers = document["predictions"]
    wanted = expected(task, model, pd.DataFrame(rows).astype({model.feature_names_in_[0]: float}))
    assert [sorted(a) for a in answers] == [
        sorted([*wanted, "request_id"]),
        sorted([*wanted, "request_id", "imputed"]),
        sorted([*wanted, "request_id"]),
    ]
    assert [a["request_id"] for a in answers] == ["r-0", "r-1", "r-2"]
    for name, values in wanted.items():
        assert [a[name] for a in answers] == pytest.approx(values)
    assert answers[1]["imputed"] == [model.feature_names_in_[0]]


def test_a_model_of_another_task_is_refused(
    project: tuple[str, Pipeline, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The task's production model, with params.yaml switched to binary: one line, exit 2."""
    task, _, unseen = project
    params = Path("params.yaml")
    document = yaml.safe_load(params.read_text())
    # the params a binary project on this data would have (the labels are never read)
    binary = {
        "task": "binary",
        "positive_class": ["yes"],
        "negative_class": ["no"],
        "classes": None,
    }
    document["data"] = {**document["data"], **binary}
    for section in ("tune", "evaluate"):
        document[section]["metric"] = "roc_auc"
    document["validate"]["importance"]["scoring"] = "roc_auc"
    document["gate"] = {
        **document["gate"],
        "minimum": {},
        "maximum": {},
        "max_degradation": {},
        "baseline_margin": {},
    }
    document["tune"]["families"] = ["hist_gradient_boosting"]
    params.write_text(yaml.safe_dump(document, sort_keys=False))
    source, output = tmp_path / "batch.csv", tmp_path / "p.csv"
    unseen.to_csv(source, index=False)
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    problem = {
        "multiclass": "its classes are ['class_0', 'class_1', 'class_2'], not the binary",
        "regression": "it gives no class probabilities (a regressor?)",
    }[task]
    assert f"does not fit params.yaml data.task 'binary': {problem}" in err
    assert not output.exists()
    assert not Path("logs").exists()


def test_explain_follows_the_tasks_quantity(
    project: tuple[str, Pipeline, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    task, model, unseen = project
    assert main(["explain", "--row", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    row = unseen.iloc[[2]][list(model.feature_names_in_)]
    if task == "regression":
        assert (result["quantity"], result["explained_class"]) == ("predicted value", None)
        assert result["value"] == pytest.approx(model.predict(row)[0], abs=1e-6)
        headline = f"Predicted value: {result['value']:.4f}\n"
    else:
        proba = model.predict_proba(row)[0]
        predicted = str(model.classes_[proba.argmax()])
        assert result["quantity"] == f"probability of the predicted class ({predicted})"
        assert (result["explained_class"], result["predicted"]) == (predicted, predicted)
        assert result["value"] == pytest.approx(proba.max(), abs=1e-6)
        headline = f"Probability of the predicted class ({predicted}): {result['value']:.4f}"
    assert result["threshold"] is None
    assert len(result["contributions"]) == len(model.feature_names_in_)
    assert main(["explain", "--row", "2"]) == 0
    text = capsys.readouterr().out
    assert headline in text
    assert f"as the change in the {result['quantity']} when set to" in text
