"""A feature's life end to end: a column added to the data and the contract reaches the
model after one `dvc repro`; one validate drops leaves the model, and both columns are
accepted by `mlops predict` and by `mlops serve` over HTTP.

The project is the session's small regression one (diabetes, 442 rows: tests/task_projects.py).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import BIN, tool_env
from tests.task_projects import dataset, must, task_copy

pytestmark = pytest.mark.slow

SOURCE = "data/external/regression.csv"


def _add_column(project: Path, name: str, values: pd.Series, spec: dict[str, Any]) -> None:
    """What a user does to bring a new feature: a column in the data, an entry in the contract."""
    frame = pd.read_csv(project / SOURCE)
    frame.assign(**{name: values.to_numpy()}).to_csv(project / SOURCE, index=False)
    contract = project / "data/schema.yaml"
    document = yaml.safe_load(contract.read_text())
    document["columns"][name] = spec
    contract.write_text(yaml.safe_dump(document, sort_keys=False))


def _batch(project: Path, rows: int = 5) -> pd.DataFrame:
    """Unlabelled rows of the project's own data, new columns included."""
    _, target = dataset("regression")
    frame = pd.read_csv(project / SOURCE)
    return frame.drop(columns=[target]).sample(n=rows, random_state=3).reset_index(drop=True)


def _card_features(project: Path) -> list[str]:
    card = json.loads((project / "models/model_card.json").read_text())
    return [name for names in card["features"].values() for name in names]


def _predict(project: Path, batch: pd.DataFrame) -> pd.DataFrame:
    source, output = project / "batch.csv", project / "predictions.csv"
    batch.to_csv(source, index=False)
    must(project, "mlops", "predict", "--input", str(source), "--output", str(output))
    return pd.read_csv(output)


def _promote(project: Path) -> None:
    """Commit what the run made (promote records the version's commit), then promote it."""
    must(project, "git", "add", "-A")
    must(project, "git", "commit", "-qm", "a new feature")
    must(project, "mlops", "promote")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start `mlops serve` (the CLI, whatever server it runs) in a project; stopped after."""
    started: list[subprocess.Popen[str]] = []

    def start(project: Path) -> str:
        port = _free_port()
        command = [str(BIN / "mlops"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        started.append(
            subprocess.Popen(
                command, cwd=project, env=tool_env(), text=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def _post(url: str, batch: pd.DataFrame, wait_s: float = 90.0) -> dict[str, Any]:
    """POST the rows to /predict once the server listens; its JSON answer."""
    body = json.dumps({"rows": json.loads(batch.to_json(orient="records"))}).encode()
    request = urllib.request.Request(
        f"{url}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                answer: dict[str, Any] = json.loads(reply.read())
                return answer
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{error.code}: {error.read().decode()}") from None
        except OSError:  # not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _reaches_predict_and_serve(project: Path, serve: Any, added: list[str]) -> None:
    batch = _batch(project)
    assert set(added) <= set(batch.columns)
    predicted = _predict(project, batch)
    assert len(predicted) == len(batch)
    assert np.isfinite(predicted["prediction"]).all()
    answer = _post(serve(project), batch)
    served = pd.DataFrame(answer["predictions"])
    assert served["prediction"].to_numpy() == pytest.approx(predicted["prediction"].to_numpy())


def test_adding_a_column_reaches_the_model(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, serve: Any
) -> None:
    project = task_copy(tmp_path_factory, "regression", tmp_path / "project")
    frame, target = dataset("regression")
    assert "marker" not in _card_features(project)
    # A lab marker that tracks disease progression: informative whatever the policy.
    noise = np.random.default_rng(0).normal(scale=20.0, size=len(frame))
    marker = (frame[target] + noise).round(1)
    _add_column(project, "marker", marker, {"dtype": "float64", "nullable": False})
    must(project, "dvc", "repro")
    assert "marker" in _card_features(project)
    validation = json.loads((project / "reports/validation.json").read_text())
    assert validation["importance"]["features"]["marker"]["zero"] is False
    assert "marker" in validation["cost"]["features"]
    _promote(project)
    _reaches_predict_and_serve(project, serve, ["marker"])


def test_a_dropped_feature_leaves_the_model_and_is_still_accepted(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, serve: Any
) -> None:
    project = task_copy(tmp_path_factory, "regression", tmp_path / "project")
    frame, _ = dataset("regression")
    params = project / "params.yaml"
    document = yaml.safe_load(params.read_text())
    document["validate"]["importance"]["policy"] = "drop"
    params.write_text(yaml.safe_dump(document, sort_keys=False))
    # bmi in other units: it says exactly what bmi says (Spearman 1), so one of them goes.
    _add_column(project, "bmi_copy", frame["bmi"] * 10.0, {"dtype": "float64", "nullable": False})
    must(project, "dvc", "repro")
    validation = json.loads((project / "reports/validation.json").read_text())
    redundant = validation["importance"]["redundancy"]["redundant"]
    [gone] = [name for name in ("bmi", "bmi_copy") if name in redundant]
    kept = "bmi_copy" if gone == "bmi" else "bmi"
    assert validation["dropped"]["redundancy"] == [gone]
    features = _card_features(project)
    assert gone not in features
    assert kept in features
    for name in validation["dropped"]["importance"]:
        assert name not in features
    _promote(project)
    _reaches_predict_and_serve(project, serve, ["bmi_copy"])
