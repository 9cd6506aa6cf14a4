"""`mlops respond` and the canary in a throwaway git + DVC project with three promoted
versions (v1.2.0 in production): rollback end to end, the alert, the retrain's data
step and its refusal by the gate, the decisions log, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlops.cli import main
from tests.integration.registry_project import (
    VERSIONS,
    manifest,
    sh,
    state,
    write_gate,
)

V1, V2, V3 = VERSIONS
DECISIONS = Path("monitoring/decisions.jsonl")
MONITORING = Path("reports/monitoring/monitoring.json")
LOGS = Path("logs/predictions")


def findings(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """Healthy findings of every check, with ``changes`` (check -> breach and evidence)."""
    evidence: dict[str, dict[str, Any]] = {
        "input_quality": {"all_null": [], "refused_rate": 0.0, "unseen": {}, "scale_changed": []},
        "drift": {"share": 0.0, "drifted": []},
        "prediction_drift": {},
        "stability": {"nan": 0, "infinite": 0, "out_of_range": 0},
        "performance": {"metric": "roc_auc", "value": 0.9, "reference": 0.9, "breach": False},
    }
    return [
        {
            "check": check,
            "breach": check in changes,
            "summary": f"{check}: {'breach' if check in changes else 'fine'}",
            "evidence": {**values, **changes.get(check, {})},
        }
        for check, values in evidence.items()
    ]


def write_monitoring(version: str = V3, **changes: dict[str, Any]) -> None:
    report = {
        "window": {"last": 1000},
        "model_version": version,
        "rows": 1000,
        "counts": {},
        "findings": findings(**changes),
        "breach": bool(changes),
    }
    MONITORING.parent.mkdir(parents=True, exist_ok=True)
    MONITORING.write_text(json.dumps(report))


def decisions() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DECISIONS.read_text().splitlines()]


def production_state(project: Path) -> dict[str, Any]:
    """What a failed or refused respond must leave as it was."""
    found = state(project)
    return {k: found[k] for k in ("tags", "manifest", "model")}


def log_predictions(project: Path, rows: int = 60, *, flip: bool = False) -> list[str]:
    """Answer ``rows`` test-split rows with `mlops predict` (the real prediction log),
    give each logged row a request id; those ids. ``flip``: log the opposite answers."""
    test = pd.read_parquet(project / "data/split/test.parquet").drop(columns=["income"])
    test.head(rows).to_csv(project / "batch.csv", index=False)
    assert main(["predict", "--input", "batch.csv", "--output", "answers.csv"]) == 0
    (log,) = sorted((project / LOGS).iterdir())
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for position, record in enumerate(records):
        record["request_id"] = f"req-{position}"
        if flip:
            record["prediction"] = 1 - record["prediction"]
            record["probability"] = 1 - record["probability"]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    return [r["request_id"] for r in records]


# --- rollback ------------------------------------------------------------------------


def test_unstable_answers_roll_back_and_the_decision_is_recorded(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_monitoring(stability={"nan": 4})

    assert main(["respond"]) == 0

    out = capsys.readouterr().out
    assert "decision: rollback: unstable:" in out
    assert f"rolled back production from {V3} to {V2}" in out
    assert manifest(repo)["version"] == V2
    (record,) = decisions()
    assert (record["action"], record["ok"], record["model_version"]) == ("rollback", True, V3)
    assert [f["check"] for f in record["findings"]] == ["stability"]
    assert record["findings"][0]["evidence"]["nan"] == 4
    assert f"to {V2}" in record["done"]
    assert "decided_at" in record
    assert sh(repo, "git", "status", "--porcelain", "--", str(DECISIONS)) == ""  # committed
    # The same findings again: they are about v1.2.0, which production no longer serves.
    assert main(["respond"]) == 0
    assert "nothing rolled back" in capsys.readouterr().out
    assert manifest(repo)["version"] == V2
    assert [d["action"] for d in decisions()] == ["rollback", "rollback"]


def test_the_decisions_log_is_only_appended_to(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_monitoring()
    assert main(["respond"]) == 0
    first = DECISIONS.read_bytes()
    write_monitoring(input_quality={"all_null": ["age"]})
    assert main(["respond"]) == 0
    assert DECISIONS.read_bytes().startswith(first)
    assert [d["action"] for d in decisions()] == ["none", "alert"]
    log = sh(repo, "git", "log", "--format=%s", "--", str(DECISIONS)).splitlines()
    assert len(log) == 2


def test_a_kill_mid_append_leaves_no_half_line(repo: Path) -> None:
    """SIGKILL while the new line is being written: the log is the old one, whole."""
    DECISIONS.parent.mkdir(parents=True, exist_ok=True)
    DECISIONS.write_text('{"action": "none"}\n')
    before = DECISIONS.read_bytes()
    script = textwrap.dedent(
        """
        import os, sys, time
        from pathlib import Path
        from mlops.stages import respond

        real = Path.write_bytes
        def slow(self, data):
            with self.open("wb") as handle:
                handle.write(data[: len(data) - 10])
                handle.flush()
                os.fsync(handle.fileno())
                print("writing", flush=True)
                time.sleep(60)
                handle.write(data[len(data) - 10 :])
        Path.write_bytes = slow
        respond._record({"action": "alert", "decided_at": "now", "x": "y" * 1000})
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=repo, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "writing"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert DECISIONS.read_bytes() == before


# --- alert and none --------------------------------------------------------------------


@pytest.mark.parametrize(
    "quality",
    [
        {"all_null": ["age"]},
        {"scale_changed": ["capital_gain"]},
        {"refused_rate": 0.6, "refused_rate_breach": True, "max_refused_rate": 0.05},
    ],
)
def test_broken_inputs_alert_and_change_nothing_else(
    repo: Path, quality: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    before = production_state(repo)
    write_monitoring(input_quality=quality, drift={"share": 1.0, "drifted": ["age"]})

    assert main(["respond"]) == 0

    assert "decision: alert" in capsys.readouterr().out
    alert = (repo / "reports/monitoring/alert.md").read_text()
    assert alert.startswith("# Monitoring alert")
    assert "Nothing was retrained" in alert
    assert production_state(repo) == before
    assert decisions()[0]["action"] == "alert"


def test_dry_run_decides_and_changes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_monitoring(stability={"nan": 4})
    before = state(repo)
    assert main(["respond", "--dry-run"]) == 0
    assert "decision: rollback" in capsys.readouterr().out
    assert state(repo) == before
    assert not DECISIONS.exists()


# --- retrain ---------------------------------------------------------------------------


def write_labels(project: Path, ids: list[str]) -> Path:
    test = pd.read_parquet(project / "data/split/test.parquet").head(len(ids))
    labels = pd.DataFrame(
        {"request_id": ids, "income": test["income"].map({1: ">50K", 0: "<=50K"})}
    )
    labels.to_csv(project / "labels.csv", index=False)
    return project / "labels.csv"


def test_retrain_adds_the_labelled_rows_as_data_and_the_gate_refusal_changes_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The data step for real (the file, its DVC tracking, ingest reading it); the rest
    of `dvc repro` replaced by the ingest stage and a gate that refuses the model."""
    from mlops.io import dvc

    ids = log_predictions(repo)
    labels = write_labels(repo, ids)
    raw_before = len(pd.read_parquet(repo / "data/raw/dataset.parquet"))

    def repro(root: Path = Path()) -> None:
        assert main(["ingest"]) == 0
        write_gate(repo, passed=False)

    monkeypatch.setattr(dvc, "repro", repro)
    before = production_state(repo)
    edit = yaml.safe_load((repo / "params.yaml").read_text())
    edit["respond"]["min_labelled_rows"] = 50
    (repo / "params.yaml").write_text(yaml.safe_dump(edit, sort_keys=False))
    write_monitoring(drift={"share": 0.9, "drifted": ["age", "hours_per_week"]})

    assert main(["respond", "--labels", str(labels)]) == 1

    (added,) = sorted((repo / "data/production").glob("labelled-*.parquet"))
    assert (added.parent / f"{added.name}.dvc").is_file()
    data = pd.read_parquet(added)
    assert len(data) == 60
    assert set(data["income"]) <= {">50K", "<=50K"}
    assert "request_id" not in data
    raw = pd.read_parquet(repo / "data/raw/dataset.parquet")
    assert len(raw) == raw_before + 60  # ingest appended them
    assert production_state(repo) == before  # nothing promoted
    record = decisions()[-1]
    assert (record["action"], record["ok"]) == ("retrain", False)
    assert "the gate refused it" in record["done"]
    assert "nothing promoted" in capsys.readouterr().err


def test_retrain_is_held_back_without_enough_labelled_rows(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_monitoring(drift={"share": 0.9, "drifted": ["age"]})
    assert main(["respond"]) == 0
    assert decisions()[0]["action"] == "none"
    assert "held back" in decisions()[0]["held_back"][0]


# --- bad input -------------------------------------------------------------------------


def _unknown_action(project: Path) -> None:
    document = yaml.safe_load((project / "params.yaml").read_text())
    document["respond"]["policy"][0]["action"] = "reboot"
    (project / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    write_monitoring(stability={"nan": 4})


def _no_monitoring(project: Path) -> None:
    pass


def _unknown_ids(project: Path) -> None:
    log_predictions(project, rows=5)
    write_labels(project, ["req-0", "nobody-1", "nobody-2"])
    write_monitoring(stability={"nan": 4})


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (_unknown_action, [], "respond.policy"),
        (_no_monitoring, [], "monitoring.json: monitoring report"),
        (_unknown_ids, ["--labels", "labels.csv"], "not in the prediction log"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(
    repo: Path, make: Any, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make(repo)
    before = production_state(repo)
    assert main(["respond", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert production_state(repo) == before
    assert not DECISIONS.exists()


# --- the canary in promote ---------------------------------------------------------------


def test_promote_runs_the_canary_on_logged_rows(
    candidate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_predictions(candidate)
    capsys.readouterr()
    assert main(["promote"]) == 0
    out = capsys.readouterr().out
    assert "canary on the last 60 logged rows: finite, agreement" in out
    assert manifest(candidate)["version"] == "v1.3.0"


def test_promote_refuses_a_candidate_disagreeing_with_production(
    candidate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_predictions(candidate, flip=True)
    before = production_state(candidate)
    assert main(["promote"]) == 1
    err = capsys.readouterr().err.strip()
    assert "agreement with production" in err
    assert "promotion refused" in err
    assert len(err.splitlines()) == 1
    assert production_state(candidate) == before


def test_promote_without_logs_skips_the_canary_with_a_note(
    candidate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["promote"]) == 0
    assert "canary skipped" in capsys.readouterr().out


@pytest.mark.slow
def test_retrain_end_to_end_promotes_what_the_gate_blessed(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real `dvc repro` on the source plus the labelled rows, the real gate (its
    thresholds relaxed for 2,500 rows), the canary, then promotion of v1.3.0."""
    ids = log_predictions(repo)
    labels = write_labels(repo, ids)
    document = yaml.safe_load((repo / "params.yaml").read_text())
    document["respond"]["min_labelled_rows"] = 50
    gate = document["gate"]
    for section in ("minimum", "maximum", "max_degradation"):
        gate[section] = dict.fromkeys(gate[section])
    gate["baseline_margin"] = dict.fromkeys(gate["baseline_margin"])
    (repo / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    sh(repo, "git", "commit", "-q", "-am", "relax the gate for little data")
    write_monitoring(drift={"share": 0.9, "drifted": ["age"]})

    assert main(["respond", "--labels", str(labels)]) == 0

    out = capsys.readouterr().out
    assert "retrained with 60 labelled rows" in out
    assert "canary on the last 60 logged rows" in out
    assert manifest(repo)["version"] == "v1.3.0"
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert any(d["path"] == "data/production" for d in lock["stages"]["ingest"]["deps"])
    assert decisions()[-1]["ok"] is True
