"""Every task end to end: `dvc repro`, the gate, promote, predict and serve.

Multiclass (wine) and regression (diabetes) projects are set up as a user
would bring their data (tests/task_projects.py); the binary Adult demo runs
the same path in test_pipeline.py and the registry tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.cli import main
from mlops.features.pipeline import TRUSTED_TYPES
from mlops.io import files, modelfile
from mlops.tasks.metrics import metrics_for
from tests.conftest import copy_project
from tests.task_projects import TASKS, dataset, must, run, task_copy, task_params

pytestmark = pytest.mark.slow


@pytest.fixture(params=TASKS)
def trained(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, Path]:
    task = str(request.param)
    project = task_copy(tmp_path_factory, task, tmp_path / "project")
    monkeypatch.chdir(project)
    return task, project


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_repro_blesses_a_model_of_the_task(trained: tuple[str, Path]) -> None:
    task, project = trained
    gate = _json(project / "reports/gate.json")
    assert gate["passed"], [c for c in gate["checks"] if c["verdict"] == "fail"]
    card = _json(project / "models/model_card.json")
    assert card["task"] == task
    frame, target = dataset(task)
    if task == "multiclass":
        assert card["classes"] == sorted(frame[target].unique())
        # train.calibration: sigmoid (task_projects): every test of this project, from
        # evaluate to serving and rollback, runs on a calibrated model.
        assert card["model"]["calibration"] == {"method": "sigmoid", "folds": 3}
    else:
        assert card["classes"] == []
        assert "calibration" not in card["model"]
    metrics = _json(project / "reports/metrics.json")
    # Every metric of the task that is defined here, and none of another task's.
    expected = set(metrics_for(task)) - ({"mape"} if (frame[target] == 0).any() else set())
    assert expected <= set(metrics)
    assert "roc_auc" not in metrics
    assert all(np.isfinite(v) for v in metrics.values())
    assert json.loads(run(project, "dvc", "status", "--json").stdout) == {}


def test_evaluation_plots_fit_the_task(trained: tuple[str, Path]) -> None:
    task, project = trained
    plots = project / "reports/plots"
    assert (plots / "importance.csv").is_file()
    assert not (plots / "roc.csv").exists()  # a binary curve has no meaning here
    if task == "multiclass":
        confusion = pd.read_csv(plots / "confusion.csv")
        classes = set(_json(project / "models/model_card.json")["classes"])
        assert set(confusion["actual"]) == classes
        assert set(confusion["predicted"]) <= classes
    else:
        assert any(plots.glob("residual*.csv"))
    assert any(plots.glob("*.png"))
    # `dvc plots show` renders what this task wrote and tolerates what it did not.
    must(project, "dvc", "plots", "show", "--json")


def _batch(task: str, rows: int = 25) -> pd.DataFrame:
    """Unlabelled rows, as production would send them."""
    frame, target = dataset(task)
    return frame.drop(columns=[target]).sample(n=rows, random_state=7).reset_index(drop=True)


def _model(project: Path) -> Any:
    return modelfile.load_bytes((project / "models/model.skops").read_bytes(), TRUSTED_TYPES, "t")


def _expected(task: str, project: Path, batch: pd.DataFrame) -> pd.DataFrame:
    """What the model file itself says about ``batch``, in the task's output columns."""
    from mlops.data.ingestion import normalise_name

    model = _model(project)
    features = batch.rename(columns=normalise_name)[list(model.feature_names_in_)]
    numbers = features.select_dtypes("number").columns
    features = features.astype(dict.fromkeys(numbers, "float64"))
    if task == "regression":
        return pd.DataFrame({"prediction": model.predict(features)})
    proba = model.predict_proba(features)
    table = {f"probability_{c}": proba[:, i] for i, c in enumerate(model.classes_)}
    return pd.DataFrame(table | {"prediction": model.classes_[proba.argmax(axis=1)]})


def test_promote_then_predict_a_batch(trained: tuple[str, Path], tmp_path: Path) -> None:
    task, project = trained
    assert main(["promote"]) == 0
    batch = _batch(task)
    source = tmp_path / "batch.csv"
    batch.to_csv(source, index=False)
    output = tmp_path / "predictions.csv"
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 0
    table = pd.read_csv(output)
    expected = _expected(task, project, batch)
    assert len(table) == len(batch)
    for column in expected.columns:
        if expected[column].dtype == object:
            assert table[column].astype(str).tolist() == expected[column].astype(str).tolist()
        else:
            assert table[column].to_numpy() == pytest.approx(expected[column].to_numpy())


@pytest.fixture
def server(trained: tuple[str, Path]) -> Iterator[Any]:
    from tests.integration.serve_support import start, stop

    assert main(["promote"]) == 0
    running = start(files.load_params())
    yield running
    stop(running)


def test_serve_answers_in_the_task_schema(trained: tuple[str, Path], server: Any) -> None:
    import http.client
    from urllib.parse import urlsplit

    task, project = trained
    batch = _batch(task, rows=3)
    rows = json.loads(batch.to_json(orient="records"))
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=30)
    connection.request("POST", "/predict", body=json.dumps({"rows": rows}).encode())
    reply = connection.getresponse()
    document = json.loads(reply.read())
    connection.close()
    assert reply.status == 200, document
    expected = _expected(task, project, batch)
    answers = pd.DataFrame(document["predictions"])
    assert set(expected.columns) <= set(answers.columns)
    for column in expected.columns:
        if expected[column].dtype == object:
            assert answers[column].astype(str).tolist() == expected[column].astype(str).tolist()
        else:
            assert answers[column].to_numpy() == pytest.approx(expected[column].to_numpy())


# --- bad input: one line, exit 2, nothing written -------------------------------------


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An untrained copy of the template on the wine data, set up for multiclass."""
    project = copy_project(tmp_path / "fresh")
    frame, target = dataset("multiclass")
    frame.to_csv(project / "data/external/wine.csv", index=False)
    params = project / "params.yaml"
    document = task_params(
        yaml.safe_load(params.read_text()), "multiclass", "data/external/wine.csv", target
    )
    params.write_text(yaml.safe_dump(document, sort_keys=False))
    monkeypatch.chdir(project)
    return project


def _set(project: Path, section: str, **values: Any) -> None:
    params = project / "params.yaml"
    document = yaml.safe_load(params.read_text())
    document[section] = {**document[section], **values}
    params.write_text(yaml.safe_dump(document, sort_keys=False))


def _ingest_fails(project: Path, expected: str) -> None:
    done = run(project, "mlops", "ingest")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert expected in lines[0], lines[0]
    assert not (project / "data/raw/dataset.parquet").exists()


def test_a_binary_task_with_three_classes_is_refused(fresh: Path) -> None:
    _set(fresh, "data", task="binary", positive_class=["class_0"], negative_class=["class_1"])
    _set(fresh, "tune", metric="roc_auc")
    _set(fresh, "evaluate", metric="roc_auc")
    importance = yaml.safe_load((fresh / "params.yaml").read_text())["validate"]["importance"]
    _set(fresh, "validate", importance={**importance, "scoring": "roc_auc"})
    _set(fresh, "gate", minimum={}, maximum={}, max_degradation={}, baseline_margin={})
    _set(fresh, "tune", families=["hist_gradient_boosting"])
    _ingest_fails(fresh, "data.task: multiclass")


def test_a_regression_target_with_text_is_refused(fresh: Path) -> None:
    document = task_params(
        yaml.safe_load((fresh / "params.yaml").read_text()),
        "regression",
        "data/external/wine.csv",
        "cultivar",
    )
    (fresh / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    _ingest_fails(fresh, "not finite numbers")


def test_a_target_with_one_class_is_refused(fresh: Path) -> None:
    frame, target = dataset("multiclass")
    frame.assign(**{target: "class_0"}).to_csv(fresh / "data/external/wine.csv", index=False)
    _ingest_fails(fresh, "1 class(es)")


def test_a_metric_of_another_task_is_one_params_error(fresh: Path) -> None:
    _set(fresh, "tune", metric="roc_auc")
    done = run(fresh, "mlops", "ingest")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "mlops ingest: error: params.yaml: tune.metric: 'roc_auc' does not apply to a "
        "multiclass task; "
        "multiclass metrics: roc_auc_ovr, f1_macro, f1_weighted, log_loss, accuracy, "
        "balanced_accuracy"
    )
    assert not (fresh / "data/raw/dataset.parquet").exists()


def test_a_class_seen_once_is_left_out_or_refused_before_any_training(fresh: Path) -> None:
    """split.rare_classes: drop (the default) leaves its row out and names it; fail
    refuses the split in one line, before any training, with nothing written."""
    frame, target = dataset("multiclass")
    frame.loc[0, target] = "class_rare"
    frame.to_csv(fresh / "data/external/wine.csv", index=False)
    must(fresh, "mlops", "ingest")
    out = must(fresh, "mlops", "split")
    assert "left out 1 row of the classes seen fewer than" in out
    assert "'class_rare' (1 row)" in out
    train = pd.read_parquet(fresh / "data/split/train.parquet")
    test = pd.read_parquet(fresh / "data/split/test.parquet")
    assert "class_rare" not in {*train[target], *test[target]}
    for split in ("train", "test"):
        (fresh / f"data/split/{split}.parquet").unlink()
    _set(fresh, "split", rare_classes="fail")
    done = run(fresh, "mlops", "split")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "class_rare" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (fresh / "data/split/train.parquet").exists()
