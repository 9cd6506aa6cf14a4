"""`mlops gate` and `mlops gate --check` on a project trained by `dvc repro` on a sample."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops.cli import main
from tests.conftest import edit_params
from tests.model.trained import run

GATE = Path("reports/gate.json")
PRODUCTION = Path("models/production.json")
# Bounds the sample-trained model meets, so each test can break exactly one.
LENIENT: dict[str, Any] = {
    "minimum": {"roc_auc": 0.85},
    "maximum": {"log_loss": 0.5, "slice_gap": 0.5},
    "baseline_margin": {"majority": 0.2, "logistic": -0.05},
    "max_degradation": {"roc_auc": 0.01, "log_loss": 0.02},
    "max_age_days": 30,
}


@pytest.fixture
def trained(trained: Path) -> Path:
    """The shared trained copy, with bounds its sample-trained model meets."""
    edit_params(trained, gate=LENIENT)
    return trained


def gate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["gate", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def verdict() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(GATE.read_text())
    return result


def checks() -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in verdict()["checks"]}


def metrics() -> dict[str, float]:
    result: dict[str, float] = json.loads(Path("reports/metrics.json").read_text())
    return result


def write_production(roc_auc: float, log_loss: float, version: str = "v1.0.0") -> None:
    manifest = {
        "version": version,
        "git_revision": "0" * 40,
        "model_md5": "1" * 32,
        "metrics": {"roc_auc": roc_auc, "log_loss": log_loss},
        "promoted_at": "2026-01-01T00:00:00+00:00",
    }
    PRODUCTION.write_text(json.dumps(manifest))


def test_first_run_passes_change_checks_vacuously(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = gate(capsys)
    assert code == 0
    assert "gate passed" in out
    result = verdict()
    assert result["passed"] is True
    assert result["production"] is None
    change = checks()["max_degradation.roc_auc"]
    assert (change["verdict"], change["threshold"]) == ("pass", None)
    assert all({"name", "value", "threshold", "verdict"} <= set(c) for c in result["checks"])
    assert "# Model gate: PASSED" in Path("reports/gate.md").read_text()
    assert gate(capsys, "--check")[0] == 0


def test_a_failing_gate_is_a_result_and_check_exits_1(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(trained, gate={"minimum": {"roc_auc": 0.999}})
    code, out, _ = gate(capsys)
    assert code == 0
    assert "gate failed: 1 of" in out
    assert verdict()["failed"] == ["minimum.roc_auc"]
    assert "**FAIL**" in Path("reports/gate.md").read_text()
    code, _, err = gate(capsys, "--check")
    assert code == 1
    assert err.startswith("mlops gate: error: gate failed: 1 of")
    assert "minimum.roc_auc" in err
    assert err.count("\n") == 1


def test_dvc_repro_completes_when_the_gate_fails(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(trained, gate={"minimum": {"roc_auc": 0.999}})
    result = run(trained, "dvc", "repro")
    assert result.returncode == 0, result.stderr
    assert "Running stage 'gate'" in result.stdout
    assert "Running stage 'evaluate'" not in result.stdout  # only the gate's params changed
    assert verdict()["passed"] is False
    assert run(trained, "mlops", "gate", "--check").returncode == 1


def test_change_thresholds_against_production(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = metrics()
    write_production(roc_auc=current["roc_auc"] + 0.02, log_loss=current["log_loss"] - 0.05)
    assert gate(capsys)[0] == 0
    assert verdict()["production"]["version"] == "v1.0.0"
    assert checks()["max_degradation.roc_auc"]["verdict"] == "fail"
    assert checks()["max_degradation.log_loss"]["verdict"] == "fail"
    write_production(roc_auc=current["roc_auc"] + 0.005, log_loss=current["log_loss"])
    assert gate(capsys)[0] == 0
    assert verdict()["passed"] is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "models/production.json: production manifest is not valid JSON"),
        ('{"version": "v1", "metrics": []}', "corrupt production manifest: version: expected"),
        ('["v1"]', "corrupt production manifest (expected a JSON object)"),
    ],
)
def test_a_corrupt_production_manifest_is_one_line(
    trained: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    assert gate(capsys)[0] == 0
    before = GATE.read_bytes()
    PRODUCTION.write_text(content)
    code, _, err = gate(capsys)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert GATE.read_bytes() == before


def test_a_threshold_on_a_metric_that_does_not_exist(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(trained, gate={"maximum": {"log_los": 0.3}})
    before = GATE.read_bytes()
    code, _, err = gate(capsys)
    assert code == 2
    assert err.startswith("mlops gate: error: params.yaml: gate.maximum: ")
    assert "reports/metrics.json has no 'log_los' for a binary task" in err
    assert err.count("\n") == 1
    assert GATE.read_bytes() == before


def test_a_change_threshold_without_direction_is_refused(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(trained, gate={"max_degradation": {"business_threshold": 0.1}})
    before = GATE.read_bytes()
    code, _, err = gate(capsys)
    assert (code, GATE.read_bytes()) == (2, before)
    assert "gate.max_degradation.business_threshold" in err


def test_an_evaluation_of_another_task_is_refused(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    details = Path("reports/evaluation.json")
    document = json.loads(details.read_text())
    details.write_text(json.dumps(document | {"metric": "rmse"}))
    before = GATE.read_bytes()
    code, _, err = gate(capsys)
    assert (code, GATE.read_bytes()) == (2, before)
    assert "reports/evaluation.json: target metric 'rmse' does not apply to a binary task" in err
    assert err.count("\n") == 1


def test_check_refuses_a_verdict_that_no_longer_applies(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate(capsys)[0] == 0
    write_production(roc_auc=0.5, log_loss=1.0, version="v2.0.0")
    code, _, err = gate(capsys, "--check")
    assert code == 1
    assert "compared the model with no production model, but production is now v2.0.0" in err
    assert "dvc repro --force --single-item gate" in err
    assert gate(capsys)[0] == 0
    assert gate(capsys, "--check")[0] == 0
    model = Path("models/model.skops")
    model.write_bytes(model.read_bytes() + b"\0")
    code, _, err = gate(capsys, "--check")
    assert code == 1
    assert "judged another model file" in err


def test_check_accepts_the_verdict_once_its_model_is_promoted(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate(capsys)[0] == 0
    write_production(roc_auc=0.5, log_loss=1.0, version="v3.0.0")
    manifest = json.loads(PRODUCTION.read_text())
    manifest["model_md5"] = verdict()["candidate"]["model_md5"]
    PRODUCTION.write_text(json.dumps(manifest))
    code, out, _ = gate(capsys, "--check")
    assert code == 0
    assert "gate passed" in out


def test_check_without_a_report(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    GATE.unlink()
    code, _, err = gate(capsys, "--check")
    assert code == 2
    assert "reports/gate.json: gate report (run `dvc repro gate`) not found" in err


def commit_everything(project: Path, days_ago: float) -> None:
    when = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    for command in (["git", "add", "-A"], ["git", "commit", "-q", "-m", "model"]):
        result = subprocess.run(
            command,
            cwd=project,
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, "GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when},
        )
        assert result.returncode == 0, result.stderr


def test_a_stale_model_fails_the_age_check(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate(capsys)[0] == 0
    assert "max_age_days" not in checks()  # a model the pipeline just made is new
    assert gate(capsys, "--check")[0] == 0  # and so is one not committed yet
    commit_everything(trained, days_ago=45)
    code, _, err = gate(capsys, "--check")
    assert code == 1
    assert "days old (committed at" in err
    assert "older than its age limit 30" in err
    edit_params(trained, gate={"max_age_days": 60})
    assert gate(capsys, "--check")[0] == 0
    edit_params(trained, gate={"max_age_days": None})
    assert gate(capsys, "--check")[0] == 0


def test_a_measured_age_limit_is_recorded_and_applied_at_promotion(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(trained, gate={"max_age_days": "measured"})
    assert gate(capsys)[0] == 0
    limit = verdict()["age_limit"]
    assert limit["source"].startswith("measured: roc_auc falls by ")
    assert f"Age limit at promotion (`mlops gate --check`): {limit['days']:g} days" in (
        Path("reports/gate.md").read_text()
    )
    days = int(limit["days"])
    commit_everything(trained, days_ago=days + 1)
    code, _, err = gate(capsys, "--check")
    assert code == 1
    assert f"older than its age limit {limit['days']:g}" in err
