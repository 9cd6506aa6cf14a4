"""`mlops rollback` in a throwaway git + DVC project with three promoted model versions.

The third version (v1.2.0, in production) then fails its gate after deployment;
rollback must restore v1.1.0's exact bytes, whatever it takes, or change nothing.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.features.pipeline import TRUSTED_TYPES
from mlops.io import dvc, files, modelfile
from tests.integration.registry_project import (
    VERSIONS,
    cache_file,
    clone,
    commit_all,
    manifest,
    prod_versions,
    sh,
    state,
    version_md5,
    write_gate,
)

V1, V2, V3 = VERSIONS
ROW = {
    "age": 39,
    "workclass": "State-gov",
    "fnlwgt": 77516,
    "education": "Bachelors",
    "education_num": 13,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "sex": "Male",
    "capital_gain": 2174,
    "capital_loss": 0,
    "hours_per_week": 40,
    "native_country": "United-States",
}


@pytest.fixture
def repo(released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the three-version project whose v1.2.0 failed its gate after deployment."""
    project = clone(released, tmp_path / "repo")
    write_gate(project, passed=False)
    commit_all(project, "gate re-run on new data: v1.2.0 fails")
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def server(repo: Path) -> Iterator[str]:
    from tests.integration.serve_support import start, stop

    running = start(files.load_params())
    yield running.url
    stop(running)


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return dict(json.loads(reply.read()))


def _predict(url: str) -> dict[str, object]:
    body = json.dumps({"rows": [ROW]}).encode()
    request = urllib.request.Request(f"{url}/predict", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return dict(json.loads(reply.read()))
    except urllib.error.HTTPError as error:
        raise AssertionError(f"/predict answered {error.code}: {error.read().decode()}") from None


def _wait_for_version(url: str, version: str) -> None:
    deadline = time.monotonic() + 20
    while _get(f"{url}/health")["model_version"] != version:
        assert time.monotonic() < deadline, f"the server never switched to {version}"
        time.sleep(0.2)


def _proba(model_bytes: bytes) -> float:
    import pandas as pd

    model = modelfile.load_bytes(model_bytes, TRUSTED_TYPES, "test")
    frame = pd.DataFrame([ROW]).astype({k: "float64" for k, v in ROW.items() if isinstance(v, int)})
    return float(model.predict_proba(frame)[0, 1])


def test_the_fixture_promoted_three_versions(released: Path) -> None:
    assert manifest(released)["version"] == V3
    assert manifest(released)["model_md5"] == version_md5(released, V3)
    assert len({version_md5(released, v) for v in VERSIONS}) == 3
    assert prod_versions(released) == [V3]


def test_rollback_restores_the_second_byte_for_byte_and_production_serves_it(
    repo: Path, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    v2_md5 = version_md5(repo, V2)
    v2_bytes = cache_file(repo, v2_md5).read_bytes()
    assert _get(f"{server}/health")["model_version"] == V3
    workspace_model = files.file_md5(repo / "models/model.skops")

    assert main(["rollback"]) == 0

    out = capsys.readouterr().out
    assert f"from {V3} to {V2}" in out
    assert f"\nkey metrics of {V2}: roc_auc 0." in out
    record = manifest(repo)
    assert (record["version"], record["model_md5"]) == (V2, v2_md5)
    assert record["git_revision"] == sh(repo, "git", "rev-list", "-n1", f"model@{V2}").strip()
    assert files.bytes_md5(cache_file(repo, v2_md5).read_bytes()) == v2_md5
    assert prod_versions(repo) == [V2]
    # The latency baseline comes back with the bytes: the one measured at V2's promotion.
    promoted = sh(repo, "git", "log", "--format=%H", f"--grep=Promote model {V2} to prod")
    earlier = json.loads(sh(repo, "git", "show", f"{promoted.split()[0]}:models/production.json"))
    assert earlier["latency_ms"] is not None
    assert record["latency_ms"] == earlier["latency_ms"]
    assert f"model@{V3}!" in sh(repo, "git", "tag", "--list").split()  # deprecated
    assert sh(repo, "git", "status", "--porcelain") == ""  # the manifest is committed
    assert files.file_md5(repo / "models/model.skops") == workspace_model  # the pipeline's own
    _wait_for_version(server, V2)  # no restart
    answer = _predict(server)
    assert answer["model_version"] == V2
    predictions = answer["predictions"]
    assert isinstance(predictions, list)
    (row,) = predictions
    assert row.pop("request_id")  # each answered row names its request
    assert row == {"probability": pytest.approx(_proba(v2_bytes)), "prediction": 0}


def test_registry_lists_the_rollback(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollback"]) == 0
    capsys.readouterr()
    assert main(["registry", "--json"]) == 0
    rows = {row["version"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[V3]["status"] == "deprecated"
    assert rows[V2]["stage"] == "prod"
    assert rows[V2]["serving"] is True
    assert rows[V1]["stage"] == ""
    assert set(rows[V2]["metrics"]) >= {"roc_auc", "accuracy"}
    assert rows[V2]["key_metrics"] == ["roc_auc"]


def test_rollback_until_no_functional_version_is_left(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollback"]) == 0
    assert main(["rollback"]) == 0
    assert manifest(repo)["version"] == V1
    capsys.readouterr()
    before = state(repo)

    assert main(["rollback"]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no functional model version older than v1.0.0" in err
    assert "Traceback" not in err
    assert state(repo) == before


def test_rollback_reproduces_a_model_missing_from_the_cache(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v2_md5 = version_md5(repo, V2)
    cache_file(repo, v2_md5).unlink()

    assert main(["rollback"]) == 0

    assert "reproduced by dvc repro train" in capsys.readouterr().out
    assert files.file_md5(cache_file(repo, v2_md5)) == v2_md5
    assert manifest(repo)["model_md5"] == v2_md5
    assert sh(repo, "git", "worktree", "list").count("\n") == 1  # the temporary one is gone


def test_rollback_fetches_a_model_missing_from_the_cache_from_the_remote(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sh(repo, "dvc", "remote", "add", "--local", "-d", "storage", str(tmp_path / "remote"))
    v2_md5 = version_md5(repo, V2)
    assert dvc.push_object(v2_md5) is None  # as `mlops promote` does with a remote
    cache_file(repo, v2_md5).unlink()

    assert main(["rollback"]) == 0

    assert "from the DVC remote" in capsys.readouterr().out
    assert files.file_md5(cache_file(repo, v2_md5)) == v2_md5


def test_dry_run_changes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = state(repo)
    assert main(["rollback", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would roll back production from {V3} to {V2}" in out
    assert state(repo) == before


def test_rollback_to_a_named_version(repo: Path) -> None:
    assert main(["rollback", "--to", V1]) == 0
    assert manifest(repo)["version"] == V1
    assert prod_versions(repo) == [V1]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--to", "v9.9.9"], 2, "unknown model version v9.9.9"),
        (["--to", "1.0"], 2, "a version looks like v1.2.0"),
        (["--to", V3], 2, "already in production"),
    ],
)
def test_bad_versions_change_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    before = state(repo)
    assert main(["rollback", *args]) == code
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert state(repo) == before


def test_a_deprecated_version_is_refused(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollback"]) == 0  # deprecates v1.2.0
    capsys.readouterr()
    before = state(repo)
    assert main(["rollback", "--to", V3]) == 1
    assert "v1.2.0 is deprecated" in capsys.readouterr().err
    assert state(repo) == before


def test_an_unrestorable_model_changes_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No remote is configured; reproduction is made to fail, as it does when the
    # revision's pipeline no longer runs (a source file gone, a library removed).
    monkeypatch.setattr(dvc, "reproduce_output", lambda *_: (None, "dvc repro train failed: boom"))
    cache_file(repo, version_md5(repo, V2)).unlink()
    before = state(repo)

    assert main(["rollback"]) == 1

    err = capsys.readouterr().err
    assert f"cannot restore {V2}" in err
    assert "dvc repro train failed: boom" in err
    assert err.count("\n") == 1
    assert state(repo) == before


def test_a_corrupt_cache_copy_changes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = cache_file(repo, version_md5(repo, V2))
    target.chmod(0o644)
    target.write_bytes(b"not the model")
    before = state(repo)
    assert main(["rollback"]) == 1
    assert "does not match its md5" in capsys.readouterr().err
    assert state(repo) == before


def test_a_corrupt_manifest_changes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = manifest(repo) | {"model_md5": "not-a-hash"}
    (repo / "models/production.json").write_text(json.dumps(document))
    before = state(repo)
    assert main(["rollback"]) == 2
    err = capsys.readouterr().err
    assert "models/production.json: corrupt production manifest: model_md5" in err
    assert err.count("\n") == 1
    assert state(repo) == before


def test_a_failing_commit_undoes_the_tags_and_the_manifest(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = repo / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'refused by policy' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = state(repo)

    assert main(["rollback"]) == 2

    assert "git commit: refused by policy" in capsys.readouterr().err
    assert state(repo) == before
    assert prod_versions(repo) == [V3]


def test_without_a_manifest_there_is_nothing_to_roll_back(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sh(repo, "git", "rm", "-q", "models/production.json")
    sh(repo, "git", "commit", "-q", "-m", "no production")
    tags = sh(repo, "git", "tag", "--list")
    assert main(["rollback"]) == 2
    assert "no model is in production" in capsys.readouterr().err
    assert sh(repo, "git", "tag", "--list") == tags


def test_a_clone_without_the_tags_says_so(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tags = sh(repo, "git", "tag", "--list").split()
    sh(repo, "git", "tag", "-d", *tags)
    before = state(repo)
    assert main(["rollback"]) == 2
    assert "`git fetch --tags` first" in capsys.readouterr().err
    assert state(repo) == before
