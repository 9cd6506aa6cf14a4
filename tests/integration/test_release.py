""".github/scripts/release.sh, the CD, CT and rollback workflows' one script, run here
as the workflows run it: in a fresh clone (no DVC cache), pushing to a bare origin.

Everything up to the push is what GitHub runs; only the checkout and the token differ.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, ROOT, edit_params
from tests.integration.registry_project import (
    clone,
    commit_all,
    make_template,
    sh,
    three_versions,
)

RELEASE = ROOT / ".github/scripts/release.sh"
# The gate's thresholds for a small, quick model: lenient (it passes) or not.
LENIENT = {
    "minimum": {"roc_auc": 0.6},
    "maximum": {},
    "baseline_margin": {"majority": 0.1, "logistic": -0.1},
    "max_degradation": {},
}
STRICT = {**LENIENT, "minimum": {"roc_auc": 0.999}}


def release(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
    }
    env.pop("GITHUB_OUTPUT", None)
    return subprocess.run(
        ["bash", str(RELEASE), *args],
        check=False,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )


def remote_tags(origin: Path) -> set[str]:
    return set(sh(origin, "git", "tag", "--list").split())


def remote_file(origin: Path, ref: str, path: str) -> str:
    return sh(origin, "git", "show", f"{ref}:{path}")


def lock_md5(text: str) -> str:
    return str(yaml.safe_load(text)["stages"]["train"]["outs"][0]["md5"])


def publish(work: Path, origin: Path) -> None:
    if not origin.exists():
        subprocess.run(["git", "init", "-q", "-b", "main", "--bare", str(origin)], check=True)
        sh(work, "git", "remote", "add", "origin", str(origin))
    sh(work, "git", "push", "-q", "origin", "HEAD:refs/heads/main", "--tags")


def ci_clone(origin: Path, target: Path) -> Path:
    """What actions/checkout gives: the branch, full history and tags; no DVC cache."""
    subprocess.run(["git", "clone", "-q", str(origin), str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A project whose committed model passes a lenient gate, pushed to a bare origin."""
    base = tmp_path_factory.mktemp("release")
    work = make_template(base / "work")
    edit_params(work, gate=LENIENT)
    sh(work, "dvc", "repro", "-q")
    commit_all(work, "trained")
    publish(work, base / "origin.git")
    yield work, base / "origin.git"
    shutil.rmtree(base, ignore_errors=True)


def test_promote_from_a_fresh_clone_pushes_the_version(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    _, origin = trained
    checkout = ci_clone(origin, tmp_path / "ci")
    proc = release(checkout, "promote", str(origin), "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The first version and its prod stage are on the remote, with a manifest that
    # names the bytes the committed dvc.lock records.
    tags = remote_tags(origin)
    assert "model@v1.0.0" in tags
    assert any(t.startswith("model#prod#") for t in tags)
    manifest = yaml.safe_load(remote_file(origin, "main", "models/production.json"))
    assert manifest["version"] == "v1.0.0"
    assert manifest["model_md5"] == lock_md5(remote_file(origin, "main~1", "dvc.lock"))

    # Run again (the checkout is the new main now): already in production, nothing new.
    proc = release(checkout, "promote", str(origin), "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "already in production" in proc.stdout
    assert remote_tags(origin) == tags


def test_a_failed_gate_promotes_nothing(trained: tuple[Path, Path], tmp_path: Path) -> None:
    source, origin = trained
    work = clone(source, tmp_path / "work")
    sh(work, "git", "pull", "-q", "origin", "main")
    edit_params(work, gate=STRICT)
    sh(work, "dvc", "repro", "-q")
    commit_all(work, "a stricter gate")
    publish(work, origin)
    tags, head = remote_tags(origin), sh(origin, "git", "rev-parse", "main")

    proc = release(ci_clone(origin, tmp_path / "ci"), "promote", str(origin), "main")
    assert proc.returncode == 1
    assert "gate failed" in proc.stderr
    assert remote_tags(origin) == tags
    assert sh(origin, "git", "rev-parse", "main") == head


def test_retrain_pushes_a_branch_only_when_the_model_changed(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    source, origin = trained
    work = clone(source, tmp_path / "work")
    # Unchanged data: nothing to propose.
    proc = release(work, "retrain", str(origin), "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "data, model and metrics unchanged" in proc.stdout
    assert "retrain/" not in sh(origin, "git", "branch", "--list")

    # A change that reruns stages but alters no data, model or metric (a comment
    # in a module evaluate imports: its dep hash in dvc.lock moves): still nothing.
    module = work / "src/mlops/evaluation/slices.py"
    module.write_text(module.read_text() + "# a comment\n")
    proc = release(work, "retrain", str(origin), "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Running stage 'evaluate'" in proc.stdout
    assert "data, model and metrics unchanged" in proc.stdout
    assert "retrain/" not in sh(origin, "git", "branch", "--list")
    sh(work, "git", "checkout", "--", ".")

    # New data arrives (here: the source loses its last 200 rows): a branch with the
    # retrained pipeline's outputs, based on main.
    data = work / "data/external/adult/adult.data.gz"
    lines = gzip.decompress(data.read_bytes()).splitlines(keepends=True)
    data.write_bytes(gzip.compress(b"".join(lines[:-200]), mtime=0))
    proc = release(work, "retrain", str(origin), "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    branches = sh(origin, "git", "branch", "--list", "retrain/*").split()
    assert len(branches) == 1
    changed = sh(origin, "git", "diff", "--name-only", "main", branches[0]).split()
    assert {"dvc.lock", "data/external/adult/adult.data.gz", "reports/metrics.json"} <= set(changed)


def test_rollback_pushes_the_stage_move(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    work = clone(three_versions(tmp_path_factory), tmp_path / "work")
    origin = tmp_path / "origin.git"
    publish(work, origin)

    checkout = ci_clone(origin, tmp_path / "ci")
    # The DVC cache as a `dvc pull` would fill it (replaying a version from its commit
    # when no copy is left is test_rollback's business, and takes minutes).
    shutil.copytree(work / ".dvc/cache", checkout / ".dvc/cache")
    proc = release(checkout, "rollback", str(origin), "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = yaml.safe_load(remote_file(origin, "main", "models/production.json"))
    assert manifest["version"] == "v1.1.0"
    assert any(t.startswith("model@v1.2.0!") for t in remote_tags(origin))


@pytest.mark.parametrize(
    "args", [("deploy", "origin", "main"), ("promote", "origin"), ("rollback", "o", "m", "v", "x")]
)
def test_usage(tmp_path: Path, args: tuple[str, ...]) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    proc = release(tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage:")
