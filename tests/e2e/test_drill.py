"""`mlops drill --quick`: the fire drill, small, on a user's project.

The project is the template a user clones (2,500 demo rows, a small search budget),
committed, with no model yet. The drill builds and promotes the model in its own
throwaway copy, replays adult.test with every scenario injected, and must answer each
with the expected action; a deliberately wrong policy must fail it. The project itself
must come out unchanged but for the timeline it asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.cli import main
from tests.integration.registry_project import make_template, sh

pytestmark = pytest.mark.slow
TIMELINE = Path("reports/drill/timeline.json")


def snapshot(project: Path) -> dict[str, str]:
    """What the drill must leave as it was: commits, tags, the working tree's state (the
    DVC cache, git-ignored, gains the copy's objects: content-addressed, shared)."""
    return {
        "head": sh(project, "git", "rev-parse", "HEAD"),
        "tags": sh(project, "git", "tag", "--list"),
        "status": sh(project, "git", "status", "--porcelain", "--", ".", ":!reports/drill"),
        "production": str((project / "models/production.json").is_file()),
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("drill") / "user")


@pytest.fixture(scope="module")
def drilled(project: Path) -> tuple[int, dict[str, Any], dict[str, str], dict[str, str]]:
    """One quick drill: (exit code, timeline, the project's state before, after)."""
    before = snapshot(project)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        code = main(["drill", "--quick"])
    return code, json.loads((project / TIMELINE).read_text()), before, snapshot(project)


def test_every_scenario_gets_its_response(
    drilled: tuple[int, dict[str, Any], dict[str, str], dict[str, str]],
) -> None:
    code, timeline, _, _ = drilled
    got = {s["scenario"]: (s["expected"], s["actions"], s["ok"]) for s in timeline["scenarios"]}
    assert got == {
        "clean": ("none", ["none", "none"], True),
        "covariate_shift": ("retrain", ["retrain"], True),
        "broken_null": ("alert", ["alert"], True),
        "broken_units": ("alert", ["alert"], True),
        "bad_model": ("rollback", ["rollback"], True),
        "concept_drift": ("retrain", ["retrain"], True),
    }
    assert code == 0
    rates = timeline["rates"]
    assert (rates["false_alarms"], rates["detected"], rates["scenarios"]) == (0, 5, 5)
    assert set(rates["delays"].values()) == {0}
    # The evidence behind the decisions: the shift drifted, the bad model scored far
    # below the floor, the concept drift decayed but stayed above it.
    batches = {b["scenario"]: b for b in timeline["batches"]}
    assert batches["covariate_shift"]["drift_share"] >= 0.5
    assert batches["bad_model"]["realised"] < 0.5
    concept = batches["concept_drift"]
    assert "performance" in concept["breaches"]
    assert concept["realised"] > timeline["metric_limits"]["floor"]
    assert concept["flipped_labels"] > 0


def test_the_users_project_is_unchanged(
    project: Path, drilled: tuple[int, dict[str, Any], dict[str, str], dict[str, str]]
) -> None:
    _, _, before, after = drilled
    assert after == before
    assert not (project / "models/production.json").exists()
    assert (project / "reports/drill/timeline.md").read_text().startswith("# Fire drill: PASSED")
    assert (project / "reports/drill/timeline.png").stat().st_size > 0


def test_a_policy_that_retrains_on_broken_input_fails_the_drill(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retraining listed first, on the broken-input conditions too: the drill exits 1."""
    policy = yaml.safe_load((project / "params.yaml").read_text())["respond"]["policy"]
    retrain = ["all_null", "scale_changed", "feature_drift", "performance_decay"]
    wrong = [
        {"action": "retrain", "when": retrain},
        *(r for r in policy if r["action"] != "retrain"),
    ]
    overrides = tmp_path / "wrong.yaml"
    overrides.write_text(yaml.safe_dump({"respond": {"policy": wrong}}))
    monkeypatch.chdir(project)
    out = tmp_path / "out"
    code = main(
        [
            "drill",
            "--quick",
            "--scenarios",
            "broken_null",
            "--copy-params",
            str(overrides),
            "--out",
            str(out),
        ]
    )
    timeline = json.loads((out / "timeline.json").read_text())
    broken = next(s for s in timeline["scenarios"] if s["scenario"] == "broken_null")
    assert (broken["actions"], broken["ok"]) == (["retrain"], False)
    assert code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stream", "nowhere.csv"], "nowhere.csv"),
        (["--scenarios", "earthquake"], "unknown drill scenario"),
        (["--scenarios", " , "], "(none given)"),
        (["--batch-rows", "10"], "at least 50 rows"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(project)
    before = snapshot(project)
    assert main(["drill", "--quick", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert snapshot(project) == before
