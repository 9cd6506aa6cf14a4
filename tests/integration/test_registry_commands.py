"""`mlops promote` and `mlops registry` in a throwaway git + DVC project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.io import files
from tests.conftest import copy_project
from tests.integration.registry_project import (
    VERSIONS,
    cache_file,
    commit_all,
    manifest,
    prod_versions,
    sh,
    state,
    version_md5,
    write_gate,
)

V1, V2, V3 = VERSIONS


def _one_line_error(capsys: pytest.CaptureFixture[str], message: str) -> None:
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_promotion_wrote_the_manifest_and_the_tags(released: Path) -> None:
    record = manifest(released)
    tagged = sh(released, "git", "rev-list", "-n1", f"model@{V3}").strip()
    assert record["git_revision"] == tagged
    assert record["model_md5"] == version_md5(released, V3)
    lock_at_tag = sh(released, "git", "show", f"{tagged}:reports/gate.json")
    assert json.loads(lock_at_tag)["passed"] is True
    assert record["metrics"] == json.loads(
        sh(released, "git", "show", f"{tagged}:reports/metrics.json")
    )
    assert prod_versions(released) == [V3]  # v1.0.0 and v1.1.0 were unassigned
    assert sh(released, "git", "log", "-1", "--format=%s") == f"Promote model {V3} to prod\n"


def test_promotion_times_the_models_own_latency(released: Path) -> None:
    # The fixture ran no profile stage (as in CD, where `dvc pull` brought every output):
    # promotion timed the model on the test split.
    assert not (released / "reports/runs/profile.json").exists()
    latency = manifest(released)["latency_ms"]
    assert latency["rows"] >= 20
    assert 0 < latency["p50"] <= latency["p95"]


def test_promotion_takes_the_profile_stages_timing_of_the_same_bytes(candidate: Path) -> None:
    md5 = files.file_md5(candidate / "models/model.skops")
    timed = {"p50": 1.25, "p95": 2.5, "rows": 200}
    runs = candidate / "reports/runs"
    (runs / "profile.json").write_text(json.dumps({"model_md5": md5, "latency_ms": timed}))
    assert main(["promote"]) == 0
    assert manifest(candidate)["latency_ms"] == timed  # not timed a second time


def test_a_promotion_with_a_failed_gate_is_refused(
    candidate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = candidate
    write_gate(repo, passed=False)
    commit_all(repo, "gate fails")
    before = state(repo)
    assert main(["promote"]) == 1
    _one_line_error(
        capsys, "reports/gate.json: the gate failed (minimum.roc_auc); promotion refused"
    )
    assert state(repo) == before


def test_promoting_a_new_model_with_a_remote_backs_it_up(
    candidate: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = candidate
    remote = tmp_path / "remote"
    sh(repo, "dvc", "remote", "add", "--local", "-d", "storage", str(remote))
    md5 = files.file_md5(repo / "models/model.skops")

    assert main(["promote", "--bump", "major"]) == 0

    out = capsys.readouterr().out
    assert "promoted model v2.0.0" in out
    assert "\nkey metrics: roc_auc 0." in out  # the target metric its gate judged
    assert manifest(repo)["version"] == "v2.0.0"
    assert prod_versions(repo) == ["v2.0.0"]
    assert files.file_md5(remote / "files/md5" / md5[:2] / md5[2:]) == md5


def test_promoting_what_is_in_production_changes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(repo)
    assert main(["promote"]) == 0
    assert f"{V3} (md5 " in capsys.readouterr().out
    assert state(repo) == before


def test_an_older_version_can_be_promoted_again(repo: Path) -> None:
    sh(repo, "git", "checkout", "-q", f"model@{V1}", "--", "dvc.lock", "reports", "params.yaml")
    sh(repo, "dvc", "checkout", "-q", "train")
    commit_all(repo, "back to v1.0.0's model")
    assert main(["promote"]) == 0
    assert manifest(repo)["version"] == V1
    assert prod_versions(repo) == [V1]
    assert sh(repo, "git", "tag", "--list", "model@*").split() == [
        f"model@{v}" for v in VERSIONS
    ]  # no new version for the same bytes


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ("missing gate", 2, "reports/gate.json: gate report (run `dvc repro`) not found"),
        ("uncommitted gate", 2, "reports/gate.json has uncommitted changes"),
        ("gate without verdict", 2, "gate report has no boolean 'passed'"),
        ("gate judged another model", 2, "reports/gate.json judged another model"),
        ("model changed", 2, "is not the model dvc.lock at HEAD records"),
        ("corrupt manifest", 2, "corrupt production manifest: version"),
        ("model not cached", 2, "is not in the DVC cache: run `dvc commit`"),
    ],
)
def test_bad_states_are_refused_and_change_nothing(
    candidate: Path, capsys: pytest.CaptureFixture[str], change: str, code: int, message: str
) -> None:
    repo = candidate
    gate = repo / "reports/gate.json"
    if change == "missing gate":
        gate.unlink()
    elif change == "uncommitted gate":
        write_gate(repo, passed=True)
        gate.write_text(gate.read_text() + "\n")
    elif change == "gate without verdict":
        gate.write_text('{"checks": []}')
        commit_all(repo, "no verdict")
    elif change == "gate judged another model":
        gate.write_text(json.dumps({"passed": True, "candidate": {"model_md5": "0" * 32}}))
        commit_all(repo, "a stale verdict")
    elif change == "model changed":
        (repo / "models/model.skops").unlink()
        (repo / "models/model.skops").write_bytes(b"other")
    elif change == "corrupt manifest":
        (repo / "models/production.json").write_text(json.dumps(manifest(repo) | {"version": 3}))
    elif change == "model not cached":
        cache_file(repo, files.file_md5(repo / "models/model.skops")).unlink()
    before = state(repo)
    assert main(["promote"]) == code
    _one_line_error(capsys, message)
    assert state(repo) == before


def test_an_explicit_version_must_be_new(
    candidate: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = candidate
    before = state(repo)
    assert main(["promote", "--version", V2]) == 2
    _one_line_error(capsys, f"version {V2} is already registered")
    assert main(["promote", "--version", "2.0"]) == 2
    _one_line_error(capsys, "a version looks like v1.2.0")
    assert state(repo) == before


def test_registry_lists_versions_stage_gate_and_metrics(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["registry"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the metric columns are what the gates judged (evaluate.metric), not all of metrics.json
    assert lines[0].split() == ["version", "stage", "status", "gate", "commit", "roc_auc"]
    assert lines[1].split()[:4] == [V3, "prod*", "active", "passed"]
    assert lines[2].split()[:4] == [V2, "-", "active", "passed"]
    assert lines[3].split()[:4] == [V1, "-", "active", "passed"]
    assert not any(line.startswith("warning") for line in lines)


def test_registry_warns_when_the_manifest_and_the_tags_disagree(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = manifest(repo) | {"version": V1}
    (repo / "models/production.json").write_text(json.dumps(record))
    assert main(["registry"]) == 0
    out = capsys.readouterr().out
    assert f"warning: GTO assigns prod to {V3} but models/production.json names {V1}" in out


def test_registry_with_no_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["registry"]) == 0
    assert "no model versions registered yet" in capsys.readouterr().out
    assert main(["registry", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
