"""`mlops audit`: each of the 28 checks reaches 1 on complete evidence and drops when its
evidence is taken away; stale evidence is named and not scored; bad input is one line.

The evidence is a copy of this repository's own files (hard links, so a copy costs
little; an edit replaces a file instead of writing through the link), completed with
what the demo does not have yet (a production model, its monitoring report, a scheduled
monitor...). Nothing here runs `dvc repro` or pytest: the audit only reads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.audit.evidence import MONITORING, MONITORING_SUMMARY, REPORTS, read_evidence
from mlops.audit.report import audit, markdown
from mlops.audit.rubric import RUBRIC, SECTIONS
from mlops.cli import main
from mlops.io.files import file_md5
from tests.conftest import ROOT

# What the audit reads besides the pipeline's reports; src/ for the modules and commands.
COPIED = (
    "params.yaml",
    "dvc.yaml",
    "dvc.lock",
    "Makefile",
    "README.md",
    "docs",
    "data/schema.yaml",
    ".github",
    ".ci",
    "tests",
    "src/mlops",
)
VERSION = "v1.2.0"
MONITOR_YML = """\
name: Monitor
on:
  schedule:
    - cron: "0 * * * *"
permissions: {}
jobs:
  monitor:
    runs-on: ubuntu-latest
    steps:
      - run: .venv/bin/mlops monitor --last 5000
"""


# --- building the evidence ------------------------------------------------------------


def _copy(source: Path, target: Path) -> None:
    for name in COPIED:
        path = source / name
        if path.is_dir():
            shutil.copytree(
                path,
                target / name,
                copy_function=os.link,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        elif path.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target / name)


def write(root: Path, name: str, content: str | dict[str, Any]) -> None:
    """Replace a file (never through a hard link to the repository's own)."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    text = content if isinstance(content, str) else json.dumps(content, indent=2)
    path.write_text(text, encoding="utf-8")


def edit_json(root: Path, name: str, change: Callable[[Any], None], relock: bool = True) -> None:
    """Change a report; ``relock``: record its new bytes in dvc.lock, as a run would."""
    document = json.loads((root / name).read_text(encoding="utf-8"))
    change(document)
    write(root, name, document)
    if relock:
        lock(root, name)


def edit_yaml(root: Path, name: str, change: Callable[[Any], None]) -> None:
    document = yaml.safe_load((root / name).read_text(encoding="utf-8"))
    change(document)
    write(root, name, yaml.safe_dump(document, sort_keys=False))


def lock(root: Path, name: str, stage: str = "gate") -> None:
    """Record ``name``'s md5 in dvc.lock (as an out of ``stage`` when it is none yet)."""

    def change(document: Any) -> None:
        outs = [o for s in document["stages"].values() for o in s.get("outs", [])]
        out = next((o for o in outs if o["path"] == name), None)
        if out is None:
            out = {"path": name}
            document["stages"][stage].setdefault("outs", []).append(out)
        out["md5"] = file_md5(root / name)

    edit_yaml(root, "dvc.lock", change)


def _summary(version: str = VERSION, age: timedelta = timedelta(hours=3)) -> dict[str, Any]:
    """monitoring/latest.json as monitor.sh commits it: every check, none breached."""
    checks = (
        "input_quality",
        "drift",
        "prediction_drift",
        "performance",
        "estimated_performance",
        "stability",
        "staleness",
        "latency",
    )
    return {
        "monitored_at": (datetime.now(UTC) - age).isoformat(timespec="seconds"),
        "model_version": version,
        "window": {"describe": "every row of the production model", "last": None},
        "rows": 5000,
        "breach": False,
        "findings": [{"check": c, "breach": False, "summary": "ok"} for c in checks],
    }


def _complete(root: Path) -> None:
    """What the demo lacks for a full point on every test (as other work will add it)."""
    edit_yaml(root, "params.yaml", lambda p: p["validate"]["importance"].update(policy="drop"))
    owners = (root / ".github/CODEOWNERS").read_text(encoding="utf-8")
    write(root, ".github/CODEOWNERS", owners.replace("@your-org/ml-owners", "@alice"))
    write(root, ".github/workflows/monitor.yml", MONITOR_YML)
    write(
        root,
        "models/production.json",
        {
            "version": VERSION,
            "git_revision": "0" * 40,
            "model_md5": "0" * 32,
            "metrics": {},
            "promoted_at": "2026-12-01T00:00:00+00:00",
        },
    )
    write(root, str(MONITORING_SUMMARY), _summary())
    write(
        root,
        "monitoring/decisions.jsonl",
        json.dumps(
            {"decided_at": "2026-12-02T00:00:00+00:00", "action": "none", "model_version": VERSION}
        )
        + "\n",
    )


@pytest.fixture(scope="session")
def complete(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("complete")
    _copy(ROOT, root)
    for report in REPORTS:
        if (ROOT / report).is_file():
            (root / report).parent.mkdir(parents=True, exist_ok=True)
            os.link(ROOT / report, root / report)
            lock(root, report.as_posix())  # whatever this checkout last ran: current here
    _complete(root)
    return root


@pytest.fixture
def project(complete: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(complete, root, copy_function=os.link)
    return root


def scores(root: Path) -> dict[str, float]:
    return {t["id"]: t["score"] for t in audit(read_evidence(root))["tests"]}


# --- every check drops when its evidence goes -----------------------------------------


def _delete(*names: str) -> Callable[[Path], None]:
    def remove(root: Path) -> None:
        for name in names:
            path = root / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    return remove


def _report(name: str, change: Callable[[Any], None]) -> Callable[[Path], None]:
    return lambda root: edit_json(root, name, change)


def _gate_check_off(*patterns: str) -> Callable[[Path], None]:
    def change(gate: Any) -> None:
        for check in gate["checks"]:
            if any(p in check["name"] for p in patterns):
                check["verdict"] = "off"

    return _report("reports/gate.json", change)


def _unlock(stage: str) -> Callable[[Path], None]:
    return lambda root: edit_yaml(root, "dvc.lock", lambda lock: lock["stages"].pop(stage))


def _cd_step(change: Callable[[list[Any]], None]) -> Callable[[Path], None]:
    """Change the steps of cd.yml's promoting job."""

    def edit(root: Path) -> None:
        edit_yaml(root, ".github/workflows/cd.yml", lambda w: change(w["jobs"]["promote"]["steps"]))

    return edit


def _review_check(steps: list[Any]) -> int:
    return next(i for i, s in enumerate(steps) if "reviewed-pr.py" in s.get("run", ""))


def _no_review_check(steps: list[Any]) -> None:
    steps.pop(_review_check(steps))


def _review_check_last(steps: list[Any]) -> None:
    steps.append(steps.pop(_review_check(steps)))


# (test id, how its evidence is taken away, the score it drops to)
REMOVALS = [
    ("data.1", _delete("data/schema.yaml"), 0.0),
    (
        "data.2",
        lambda r: edit_yaml(
            r, "params.yaml", lambda p: p["validate"]["importance"].update(policy="report")
        ),
        0.5,
    ),
    ("data.3", _report("reports/validation.json", lambda v: v.pop("cost")), 0.0),
    ("data.4", _report("reports/validation.json", lambda v: v["features"].append("sex")), 0.0),
    ("data.5", _report("reports/validation.json", lambda v: v.pop("privacy")), 0.0),
    ("data.6", _delete("tests/e2e/test_adding_a_column.py"), 0.5),  # README documents it,
    ("data.7", _delete("tests/unit/test_privacy.py"), 0.5),
    ("model.1", _delete(".github/CODEOWNERS"), 0.0),
    ("model.2", _gate_check_off("business_correlation"), 0.5),
    ("model.3", _delete("tests/model/test_hyperparameters.py"), 0.5),
    ("model.4", _report("reports/evaluation.json", lambda e: e.pop("staleness")), 0.0),
    ("model.5", _gate_check_off("baseline_margin"), 0.5),
    ("model.6", _delete(".github/workflows/cd.yml"), 0.5),
    ("model.7", _gate_check_off("selection_rate", "tpr_gap"), 0.5),
    ("infrastructure.1", _unlock("profile"), 0.0),
    ("infrastructure.2", _delete(".github/workflows/ci.yml"), 0.5),
    ("infrastructure.3", _delete("tests/e2e"), 0.0),
    ("infrastructure.4", _delete("reports/gate.json"), 0.0),
    ("infrastructure.5", _delete("src/mlops/stages/explain.py"), 0.0),
    ("infrastructure.6", _delete("tests/unit/test_canary.py"), 0.5),
    ("infrastructure.7", _delete(".github/workflows/rollback.yml"), 0.0),
    ("monitoring.1", _delete(".github/dependabot.yml"), 0.5),
    *((f"monitoring.{n}", _delete(".github/workflows/monitor.yml"), 0.5) for n in range(2, 8)),
]
# Issue 15's further evidence, each missed by the test it serves.
MORE_REMOVALS = [
    (
        "data.3",
        lambda r: edit_yaml(
            r, "params.yaml", lambda p: p["validate"]["importance"].update(policy="report")
        ),
        0.5,
    ),
    ("model.1", _cd_step(_no_review_check), 0.5),
    ("model.1", _cd_step(_review_check_last), 0.5),  # checked only after promoting
    ("model.1", _delete(".github/rulesets"), 0.5),
    ("monitoring.1", _delete(".github/workflows/data-fingerprint.yml"), 0.5),
    *((f"monitoring.{n}", _delete(str(MONITORING_SUMMARY)), 0.5) for n in range(2, 8)),
]
# Without the report the schedule alone is half a point; with neither, what is left.
REPORT_GONE = [
    ("monitoring.2", 0.0),
    ("monitoring.3", 0.5),  # the training/serving parity tests
    ("monitoring.4", 0.5),  # the age limit checked at promotion
    ("monitoring.5", 0.0),
    ("monitoring.6", 0.5),  # the canary's latency ratio at promotion
    ("monitoring.7", 0.5),  # the gate's degradation limits at promotion
]


def test_complete_evidence_scores_every_test_1(complete: Path) -> None:
    document = audit(read_evidence(complete))
    below = {t["id"]: t["missing"] for t in document["tests"] if t["score"] < 1}
    assert below == {}
    assert document["sections"] == dict.fromkeys(SECTIONS, 7.0)
    assert document["score"] == 7.0
    assert document["stale"] == []


def test_the_rubric_is_the_papers_28_tests_in_its_order() -> None:
    """Breck et al. 2017, Tables I-IV."""
    assert [(t.section, t.name) for t in RUBRIC] == [
        ("data", "Feature expectations are captured in a schema"),
        ("data", "All features are beneficial"),
        ("data", "No feature's cost is too much"),
        ("data", "Features adhere to meta-level requirements"),
        ("data", "The data pipeline has appropriate privacy controls"),
        ("data", "New features can be added quickly"),
        ("data", "All input feature code is tested"),
        ("model", "Model specs are reviewed and submitted"),
        ("model", "Offline and online metrics correlate"),
        ("model", "All hyperparameters have been tuned"),
        ("model", "The impact of model staleness is known"),
        ("model", "A simpler model is not better"),
        ("model", "Model quality is sufficient on important data slices"),
        ("model", "The model is tested for considerations of inclusion"),
        ("infrastructure", "Training is reproducible"),
        ("infrastructure", "Model specs are unit tested"),
        ("infrastructure", "The ML pipeline is integration tested"),
        ("infrastructure", "Model quality is validated before serving"),
        ("infrastructure", "The model is debuggable"),
        ("infrastructure", "Models are canaried before serving"),
        ("infrastructure", "Serving models can be rolled back"),
        ("monitoring", "Dependency changes result in notification"),
        ("monitoring", "Data invariants hold for inputs"),
        ("monitoring", "Training and serving are not skewed"),
        ("monitoring", "Models are not too stale"),
        ("monitoring", "Models are numerically stable"),
        ("monitoring", "Computing performance has not regressed"),
        ("monitoring", "Prediction quality has not regressed"),
    ]


def test_every_test_has_a_removal_case() -> None:
    assert sorted(test_id for test_id, _, _ in REMOVALS) == sorted(t.id for t in RUBRIC)


@pytest.mark.parametrize(
    ("test_id", "remove", "expected"),
    REMOVALS + MORE_REMOVALS,
    ids=[r[0] for r in REMOVALS + MORE_REMOVALS],
)
def test_removing_the_evidence_drops_the_score(
    project: Path, test_id: str, remove: Callable[[Path], None], expected: float
) -> None:
    remove(project)
    result = next(t for t in audit(read_evidence(project))["tests"] if t["id"] == test_id)
    assert result["score"] == expected
    assert result["missing"]  # and it says what the next half point needs


@pytest.mark.parametrize(("test_id", "left"), REPORT_GONE)
def test_a_monitoring_test_needs_the_report_and_the_schedule(
    project: Path, test_id: str, left: float
) -> None:
    _delete(str(MONITORING_SUMMARY))(project)
    assert scores(project)[test_id] == 0.5
    _delete(".github/workflows/monitor.yml")(project)
    assert scores(project)[test_id] == left


def test_the_final_score_is_the_lowest_section(project: Path) -> None:
    _delete(".github/workflows/monitor.yml", ".github/dependabot.yml")(project)
    document = audit(read_evidence(project))
    assert document["sections"]["monitoring"] == 3.5  # 0.5 each: by hand, or at promotion
    assert document["score"] == 3.5


# --- stale evidence -------------------------------------------------------------------


def _stability(project: Path) -> dict[str, Any]:
    return next(t for t in audit(read_evidence(project))["tests"] if t["id"] == "monitoring.5")


@pytest.mark.parametrize(
    ("summary", "why"),
    [
        (_summary(version="v1.1.0"), f"it judged v1.1.0, production serves {VERSION}"),
        (
            _summary(age=timedelta(days=9)),
            "days ago (more than 7: is the scheduled monitor running?)",
        ),
        ({**_summary(), "monitored_at": None}, "it does not say when it ran (monitored_at)"),
    ],
    ids=["another-model", "a-week-old", "undated"],
)
def test_a_monitoring_summary_of_another_model_or_time_is_stale_and_not_scored(
    project: Path, summary: dict[str, Any], why: str
) -> None:
    write(project, str(MONITORING_SUMMARY), summary)
    document = audit(read_evidence(project))
    (stale,) = document["stale"]
    assert stale.startswith(f"{MONITORING_SUMMARY} is stale: ")
    assert why in stale
    stability = next(t for t in document["tests"] if t["id"] == "monitoring.5")
    assert stability["score"] == 0.5  # the schedule alone: its verdict is not current
    assert why in stability["missing"]


def test_the_newest_current_verdict_is_cited(project: Path) -> None:
    """A report monitor wrote here, newer than the committed summary, is the evidence;
    one about another model is named stale beside the summary that counts."""
    assert f"{MONITORING_SUMMARY} findings[stability]" in _stability(project)["evidence"][0]
    write(project, str(MONITORING), _summary(age=timedelta(minutes=1)))
    assert f"{MONITORING} findings[stability]" in _stability(project)["evidence"][0]
    write(project, str(MONITORING), _summary(version="v1.1.0"))
    document = audit(read_evidence(project))
    assert document["stale"] == [
        f"{MONITORING} is stale: it judged v1.1.0, production serves {VERSION}"
    ]
    assert _stability(project)["score"] == 1.0


def test_a_report_that_is_not_the_locked_run_is_stale(project: Path) -> None:
    edit_json(project, "reports/gate.json", lambda g: g.update(summary="edited"), relock=False)
    document = audit(read_evidence(project))
    assert document["stale"] == [
        "reports/gate.json is stale: its bytes are not the ones dvc.lock records"
    ]
    validated = next(t for t in document["tests"] if t["id"] == "infrastructure.4")
    assert validated["score"] == 0.0


def test_a_placeholder_code_owner_reviews_nothing(project: Path) -> None:
    write(project, ".github/CODEOWNERS", "* @your-org/ml-owners\n")
    assert scores(project)["model.1"] == 0.0


def test_a_recorded_review_earns_half_a_point(project: Path) -> None:
    _delete("data/schema.yaml")(project)
    review = {"test": "data.1", "by": "alice", "on": "2026-12-01", "commit": "a" * 40}
    write(project, "docs/reviews.yaml", yaml.safe_dump({"reviews": [review]}))
    result = next(t for t in audit(read_evidence(project))["tests"] if t["id"] == "data.1")
    assert result["score"] == 0.5
    assert (
        "docs/reviews.yaml: data.1 done by alice on 2026-12-01 at aaaaaaaaaaaa"
        in result["evidence"]
    )


def test_a_review_goes_stale_when_what_it_reviewed_changes(project: Path) -> None:
    _delete(".github/CODEOWNERS")(project)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "params.yaml"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "spec"], cwd=project, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    review = {"test": "model.1", "by": "bob", "on": "2026-12-01", "commit": commit}
    write(
        project,
        "docs/reviews.yaml",
        yaml.safe_dump({"reviews": [{**review, "paths": ["params.yaml"]}]}),
    )
    assert scores(project)["model.1"] == 0.5

    edit_yaml(project, "params.yaml", lambda p: p.update(seed=7))
    document = audit(read_evidence(project))
    assert document["stale"] == [
        "docs/reviews.yaml: model.1 by bob is stale: params.yaml changed since"
    ]
    assert scores(project)["model.1"] == 0.0


# --- the command ----------------------------------------------------------------------


def _run(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.chdir(root)
    return main(["audit", *args])


def test_the_command_writes_both_reports_and_exits_0(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(project, monkeypatch) == 0
    document = json.loads((project / "reports/audit.json").read_text())
    assert [t["id"] for t in document["tests"]] == [t.id for t in RUBRIC]
    text = (project / "reports/audit.md").read_text()
    assert "**Final score 7**" in text
    assert "ML Test Score 7" in capsys.readouterr().out


def test_min_score_missed_exits_1_after_writing(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _delete(".github/workflows/monitor.yml")(project)
    assert _run(project, monkeypatch, "--min-score", "6") == 1
    assert "below --min-score 6" in capsys.readouterr().err
    assert (project / "reports/audit.json").is_file()


def test_a_lower_score_than_the_base_is_said_first(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(project, monkeypatch, "--report", "base.json", "--markdown", "base.md") == 0
    _delete("data/schema.yaml")(project)
    assert _run(project, monkeypatch, "--base", "base.json") == 0
    text = (project / "reports/audit.md").read_text()
    head = text.split("**Final score")[0]
    assert "**The ML Test Score dropped: 7 -> 6**" in head
    assert "data.1 Feature expectations are captured in a schema: 1 -> 0" in head


def test_no_drop_against_the_base_says_so(project: Path) -> None:
    document = audit(read_evidence(project))
    assert "No test scored lower than in the base audit" in markdown(document, document)


@pytest.mark.parametrize(
    "case",
    [
        ("reports/gate.json", "{not json", "reports/gate.json: report is not valid JSON"),
        ("params.yaml", "seed: [", "params file is not valid YAML"),
        ("params.yaml", "seed: 1\n", "params.yaml: "),
        (str(MONITORING), "[", "monitoring report is not valid JSON"),
        (str(MONITORING_SUMMARY), "[1]", "latest.json: monitoring report is not a JSON object"),
        ("monitoring/decisions.jsonl", "{}\n{", "decisions.jsonl: line 2 is not valid JSON"),
        ("docs/reviews.yaml", "reviews: [{test: data.1}]", "reviews[0] lacks by, on, commit"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, str, str],
) -> None:
    name, content, message = case
    write(project, name, content)
    assert _run(project, monkeypatch) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not (project / "reports/audit.json").exists()


def test_a_corrupt_base_is_exit_2(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "base.json", {"tests": "x"})
    assert _run(project, monkeypatch, "--base", "base.json") == 2
    assert "base.json: not an audit.json" in capsys.readouterr().err


# --- the governance files the audit reads ---------------------------------------------


def test_dependabot_config_passes_its_schema() -> None:
    tool = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.dependabot", str(ROOT / ".github/dependabot.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_ruleset_requires_checks_that_exist() -> None:
    """Each status check the ruleset requires is the name of a job a pull request runs."""
    ruleset = json.loads((ROOT / ".github/rulesets/main.json").read_text(encoding="utf-8"))
    required = {
        check["context"]
        for rule in ruleset["rules"]
        if rule["type"] == "required_status_checks"
        for check in rule["parameters"]["required_status_checks"]
    }
    jobs = set()
    for path in (ROOT / ".github/workflows").glob("*.yml"):
        workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "pull_request" in workflow[True]:
            jobs |= {job.get("name", key) for key, job in workflow["jobs"].items()}
    assert required
    assert required <= jobs
