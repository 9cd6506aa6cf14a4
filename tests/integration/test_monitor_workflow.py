""".github/scripts/monitor.sh, what monitor.yml runs, end to end on a throwaway promoted
project (v1.2.0 in production) with a bare git remote as GitHub, a local folder as the
storage the serving hosts sync their logs to, and ``gh`` replaced by a script that
records its arguments: one test per route (none, alert, rollback, retrain), and bad
arguments. Also `mlops respond --no-promote` and its decision.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlops.audit.evidence import MONITORING_SUMMARY, read_evidence
from mlops.audit.report import audit
from mlops.cli import main
from tests.integration.registry_project import VERSIONS, clone, sh, three_versions, write_gate
from tests.integration.test_respond import log_predictions, write_labels, write_monitoring

V1, V2, V3 = VERSIONS
SCRIPT = Path(__file__).resolve().parents[2] / ".github/scripts/monitor.sh"
BIN = Path(sys.executable).parent
LOGS = Path("logs/predictions")
DECISIONS = "monitoring/decisions.jsonl"
GH = """#!/usr/bin/env bash
# gh, recorded: one argument a line, then ---; a --body-file is kept beside.
prev=
for arg in "$@"; do
    printf '%s\\n' "$arg" >>"$GH_LOG"
    [ "$prev" != --body-file ] || cp "$arg" "$GH_LOG.body"
    prev=$arg
done
echo --- >>"$GH_LOG"
echo "https://github.com/owner/repo/$1/7"
"""


class Setup:
    """The project (its main pushed with the tags to ``origin``), the log bucket, gh."""

    def __init__(self, project: Path, tmp: Path) -> None:
        self.project = project
        self.origin = tmp / "origin.git"
        self.bucket = tmp / "bucket"
        self.gh_log = tmp / "gh.log"
        self.summary = tmp / "summary.md"
        self.bin = tmp / "bin"
        self.bin.mkdir()
        (self.bin / "gh").write_text(GH)
        (self.bin / "gh").chmod(0o755)
        sh(tmp, "git", "init", "-q", "--bare", str(self.origin))
        sh(project, "git", "remote", "add", "origin", str(self.origin))
        self.publish()

    def publish(self) -> None:
        sh(self.project, "git", "push", "-q", "origin", "main", "--tags")

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "PATH": os.pathsep.join([str(self.bin), str(BIN), os.environ["PATH"]]),
            "DVC_NO_ANALYTICS": "1",
            "GH_LOG": str(self.gh_log),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "PREDICTION_LOGS_URL": str(self.bucket),
            **env,
        }
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            cwd=self.project,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )

    def remote(self, *cmd: str) -> str:
        return sh(self.origin, "git", *cmd)

    def remote_json(self, revision: str, path: str) -> Any:
        return json.loads(self.remote("show", f"{revision}:{path}"))

    def decisions(self, revision: str = "main") -> list[dict[str, Any]]:
        text = self.remote("show", f"{revision}:{DECISIONS}")
        return [json.loads(line) for line in text.splitlines()]

    def gh_calls(self) -> list[list[str]]:
        if not self.gh_log.exists():
            return []
        calls = self.gh_log.read_text().split("---\n")
        return [call.splitlines() for call in calls if call]


@pytest.fixture(scope="session")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three versions, v1.2.0's reference profile committed (the profile stage, which
    the registry project's repro to evaluate leaves out)."""
    project = clone(three_versions(tmp_path_factory), tmp_path_factory.mktemp("profiled") / "p")
    sh(project, "dvc", "repro", "-q", "profile")
    sh(project, "git", "add", "dvc.lock", "models/reference.json")
    sh(project, "git", "commit", "-q", "-m", "profile v1.2.0")
    return project


@pytest.fixture
def setup(profiled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    project = clone(profiled, tmp_path / "repo")
    monkeypatch.chdir(project)
    return Setup(project, tmp_path)


def serve(setup: Setup, rows: int, edit: Any = None) -> list[str]:
    """Answer ``rows`` test-split rows with `mlops predict` (the real log), give them
    request ids, pass each record through ``edit``, and move the log to the bucket as
    the serving host's sync would; the request ids."""
    test = pd.read_parquet(setup.project / "data/split/test.parquet").drop(columns=["income"])
    test.head(rows).to_csv(setup.project / "batch.csv", index=False)
    assert main(["predict", "--input", "batch.csv", "--output", "answers.csv"]) == 0
    (log,) = sorted((setup.project / LOGS).iterdir())
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for position, record in enumerate(records):
        record["request_id"] = f"req-{position}"
        if edit is not None:
            edit(record)
    setup.bucket.mkdir()
    (setup.bucket / log.name).write_text("".join(json.dumps(r) + "\n" for r in records))
    shutil.rmtree(setup.project / "logs")
    (setup.project / "batch.csv").unlink()
    (setup.project / "answers.csv").unlink()
    return [r["request_id"] for r in records]


def assert_one_decision_commit(setup: Setup, action: str, start: str) -> dict[str, Any]:
    """origin's main: ``start``, the action's own commits if any, then one commit with
    the decision and the verdict (latest.md, latest.json); the decision."""
    record = setup.decisions()[-1]
    assert record["action"] == action
    assert record["ok"] is True
    changed = setup.remote("show", "--name-only", "--format=", "main").split()
    assert sorted(changed) == [DECISIONS, "monitoring/latest.json", "monitoring/latest.md"]
    latest = setup.remote("show", "main:monitoring/latest.md")
    assert latest.startswith("# Production monitoring")
    assert "| check | breach | summary |" in latest
    assert "\n## " not in latest  # the per-check sections stay in the report
    # The machines' copy: the same verdicts, for the model and window monitor judged.
    summary = setup.remote_json("main", "monitoring/latest.json")
    report = json.loads((setup.project / "reports/monitoring/monitoring.json").read_text())
    assert summary["model_version"] == report["model_version"] == record["model_version"]
    assert (summary["monitored_at"], summary["window"]) == (
        report["monitored_at"],
        report["window"],
    )
    assert summary["findings"] == [
        {"check": f["check"], "breach": f["breach"], "summary": f["summary"]}
        for f in report["findings"]
    ]
    for finding in summary["findings"]:
        assert f"| {finding['check']} |" in latest
    assert start in setup.remote("rev-list", "main")
    return record


# --- mlops respond --no-promote ----------------------------------------------------------


def test_respond_no_promote_stops_at_the_retrain_commit(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retrain's data step for real, the rest of `dvc repro` replaced by the ingest
    stage and a gate that blesses the model: committed, not promoted, and the record
    (in decision.json too) names the commit to propose. (No capsys: DVC's logging, set
    up by the first in-process predict, would keep its stream, closed after the test.)"""
    from mlops.io import dvc

    project = setup.project
    labels = write_labels(project, log_predictions(project))

    def repro(root: Path = Path()) -> None:
        assert main(["ingest"]) == 0
        write_gate(project, passed=True)

    monkeypatch.setattr(dvc, "repro", repro)
    document = yaml.safe_load((project / "params.yaml").read_text())
    document["respond"]["min_labelled_rows"] = 50
    (project / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    sh(project, "git", "commit", "-q", "-am", "retrain on little data")
    start = sh(project, "git", "rev-parse", "HEAD").strip()
    write_monitoring(drift={"share": 0.9, "drifted": ["age"]})

    assert main(["respond", "--labels", str(labels), "--no-promote"]) == 0

    assert json.loads((project / "models/production.json").read_text())["version"] == V3
    retrained = sh(project, "git", "rev-parse", "HEAD^").strip()
    assert sh(project, "git", "rev-parse", f"{retrained}^").strip() == start
    changed = sh(project, "git", "show", "--name-only", "--format=%s", retrained).split()
    assert changed[:2] == ["Retrain", "with"]
    assert any(p.startswith("data/production/labelled-") for p in changed)
    assert not [p for p in changed if p.startswith("reports/monitoring")]
    lines = (project / DECISIONS).read_text().splitlines()
    decision = json.loads((project / "reports/monitoring/decision.json").read_text())
    assert decision == json.loads(lines[-1])
    assert (decision["action"], decision["ok"], decision["commit"]) == ("retrain", True, retrained)
    assert decision["done"].endswith("; the gate blessed it; not promoted (--no-promote)")


# --- the routes ---------------------------------------------------------------------


def test_no_finding_pushes_the_decision_only(setup: Setup) -> None:
    serve(setup, 200)
    start = sh(setup.project, "git", "rev-parse", "HEAD").strip()

    proc = setup.run("origin", "main")

    assert proc.returncode == 0, proc.stderr
    record = assert_one_decision_commit(setup, "none", start)
    assert setup.remote("rev-parse", "main^").strip() == start
    assert record["model_version"] == V3
    assert setup.gh_calls() == []
    summary = setup.summary.read_text()
    assert "# Production monitoring" in summary
    assert "decision: none: nothing to do" in summary
    assert setup.remote_json("main", "models/production.json")["version"] == V3
    # The verdict monitor.sh committed is the evidence `mlops audit` scores the
    # monitoring tests on (its unit tests write one by hand): with the workflow that
    # schedules the script (this throwaway project has no .github), each earns its point.
    shutil.copytree(SCRIPT.parents[1], setup.project / ".github")
    tests = {t["id"]: t for t in audit(read_evidence(setup.project))["tests"]}
    for test in (tests[f"monitoring.{n}"] for n in range(2, 8)):
        assert test["score"] == 1, (test["id"], test["missing"])
        assert any(e.startswith(str(MONITORING_SUMMARY)) for e in test["evidence"]), test


def test_a_feature_broken_upstream_opens_an_issue(setup: Setup) -> None:
    def no_age(record: dict[str, Any]) -> None:
        record["inputs"]["age"] = None

    serve(setup, 200, no_age)
    start = sh(setup.project, "git", "rev-parse", "HEAD").strip()
    tags = setup.remote("tag", "--list")

    proc = setup.run("origin", "main")

    assert proc.returncode == 0, proc.stderr
    assert_one_decision_commit(setup, "alert", start)
    (call,) = setup.gh_calls()
    assert call[:3] == ["issue", "create", "--title"]
    assert call[3].startswith(f"Monitoring alert: input data broken upstream (model {V3})")
    body = Path(f"{setup.gh_log}.body").read_text()
    assert "Nothing was retrained" in body
    assert "age" in body
    assert "issue: https://github.com/owner/repo/issue/7" in setup.summary.read_text()
    assert setup.remote("tag", "--list") == tags  # production untouched
    assert setup.remote_json("main", "models/production.json")["version"] == V3


def test_unstable_answers_roll_production_back_and_push_the_tags(setup: Setup) -> None:
    def unstable(record: dict[str, Any]) -> None:
        if record["request_id"].endswith(("0", "5")):
            record["probability"] = float("nan")

    serve(setup, 200, unstable)
    start = sh(setup.project, "git", "rev-parse", "HEAD").strip()

    proc = setup.run("origin", "main")

    assert proc.returncode == 0, proc.stderr
    record = assert_one_decision_commit(setup, "rollback", start)
    assert f"to {V2}" in record["done"]
    assert setup.remote_json("main", "models/production.json")["version"] == V2
    # The rollback's tags reached the remote with the commits that name them.
    assert setup.remote("tag", "--list") == sh(setup.project, "git", "tag", "--list")
    assert (
        setup.remote("rev-parse", "main").strip()
        == sh(setup.project, "git", "rev-parse", "HEAD").strip()
    )
    assert setup.gh_calls() == []


@pytest.mark.slow
def test_drift_with_labels_proposes_a_retraining_pull_request(setup: Setup) -> None:
    """The real `dvc repro` on the source plus the labelled rows; nothing promoted."""
    document = yaml.safe_load((setup.project / "params.yaml").read_text())
    # Older people get other answers: that prediction drift, right after the promotion,
    # is not a reason to roll back here.
    document["respond"]["min_labelled_rows"] = 50
    document["respond"]["policy"][0]["when"].remove("prediction_drift_after_promotion")
    # A quicker pipeline: fixed imputers, no business-value refits.
    document["impute"].update(numeric="median", categorical="most_frequent")
    document["evaluate"]["business"]["correlation_trials"] = 0
    document["monitor"]["drift"]["share"] = 0.1
    (setup.project / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    sh(setup.project, "git", "commit", "-q", "-am", "respond to drift on little data")
    setup.publish()
    start = sh(setup.project, "git", "rev-parse", "HEAD").strip()

    def older(record: dict[str, Any]) -> None:
        record["inputs"]["age"] += 30

    ids = serve(setup, 120, older)
    test = pd.read_parquet(setup.project / "data/split/test.parquet").head(len(ids))
    labels = pd.DataFrame(
        {"request_id": ids, "income": test["income"].map({1: ">50K", 0: "<=50K"})}
    )
    labels.to_csv(setup.bucket.parent / "labels.csv", index=False)

    proc = setup.run("origin", "main", LABELS_URL=str(setup.bucket.parent / "labels.csv"))

    assert proc.returncode == 0, proc.stderr
    record = assert_one_decision_commit(setup, "retrain", start)
    assert setup.remote("rev-parse", "main^").strip() == start  # the model is not on main
    assert "not promoted (--no-promote)" in record["done"]
    (branch,) = setup.remote("branch", "--list", "retrain/*", "--format=%(refname:short)").split()
    assert branch.startswith("retrain/monitor-")
    assert setup.remote("rev-parse", f"{branch}^").strip() == start
    assert record["commit"] == setup.remote("rev-parse", branch).strip()
    retrained = setup.remote("show", "--name-only", "--format=%s", branch).split()
    assert retrained[:4] == ["Retrain", "with", "120", "labelled"]
    assert "dvc.lock" in retrained
    assert not [p for p in retrained if p.startswith(("reports/monitoring", "monitoring/"))]
    (call,) = setup.gh_calls()
    assert call[:6] == ["pr", "create", "--base", "main", "--head", branch]
    body = Path(f"{setup.gh_log}.body").read_text()
    assert "Proposed by the monitor workflow: retrained with 120 labelled rows" in body
    assert "# Production monitoring" in body
    assert "# Model gate" in body
    for revision in ("main", branch):  # production untouched until CD, after the merge
        assert setup.remote_json(revision, "models/production.json")["version"] == V3


# --- nothing to do, bad input ----------------------------------------------------------


def test_without_a_logs_url_it_says_so_and_does_nothing(setup: Setup) -> None:
    proc = setup.run("origin", "main", PREDICTION_LOGS_URL="")
    assert proc.returncode == 0, proc.stderr
    assert "PREDICTION_LOGS_URL" in setup.summary.read_text()
    assert "monitoring" not in setup.remote("ls-tree", "--name-only", "main").split()


@pytest.mark.parametrize(
    "args",
    [
        ["origin"],
        ["origin", "main", "12", "extra"],
        ["origin", "main", "ten"],
        ["origin", "main", "0"],
    ],
    ids=["too-few", "too-many", "rows-not-a-number", "rows-zero"],
)
def test_bad_arguments_exit_2_with_the_usage(setup: Setup, args: list[str]) -> None:
    proc = setup.run(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: ")
    assert len(proc.stderr.splitlines()) == 1


def test_unreachable_logs_exit_2_and_push_nothing(setup: Setup) -> None:
    before = setup.remote("rev-parse", "main")
    proc = setup.run("origin", "main", PREDICTION_LOGS_URL=str(setup.bucket / "nowhere"))
    assert proc.returncode == 2
    assert "PREDICTION_LOGS_URL" in proc.stderr
    assert setup.remote("rev-parse", "main") == before
