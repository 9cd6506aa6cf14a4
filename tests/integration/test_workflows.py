"""Local checks for the GitHub Actions workflows and the PR report script.

Nothing here runs on GitHub: every workflow in .github/workflows must pass
``check-jsonschema --builtin-schema vendor.github-workflows`` and
``zizmor --offline`` (findings of medium severity or above fail), and
.github/scripts/pr-report.sh is exercised in throw-away git + DVC repositories.

The tools come from the virtual environment of the running interpreter
(``sys.executable``'s bin directory), never from PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
PR_REPORT = REPO_ROOT / ".github" / "scripts" / "pr-report.sh"
# Not resolved: .venv/bin/python is a symlink to the base interpreter.
VENV_BIN = Path(sys.executable).parent

WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml")) + sorted(WORKFLOWS_DIR.glob("*.yaml"))


def _tool(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable} (run `uv sync --frozen`)")
    return str(path)


# --------------------------------------------------------------------------
# Workflow checkers (also fed deliberately broken workflows below)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    output: str


def _run_check(cmd: list[str]) -> CheckResult:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    output = f"$ {' '.join(cmd)}\n[exit {proc.returncode}]\n{proc.stdout}\n{proc.stderr}"
    return CheckResult(ok=proc.returncode == 0, output=output)


def check_schema(workflow: Path) -> CheckResult:
    """Validate against SchemaStore's GitHub workflow schema (vendored, offline)."""
    return _run_check(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)]
    )


def check_zizmor(workflow: Path) -> CheckResult:
    """Audit with zizmor, offline; any finding of medium severity or above fails.

    zizmor exits 0 when nothing at or above ``--min-severity`` is left, 11-14
    for findings (by highest severity) and 1-3 on errors; ``--strict-collection``
    turns an unparsable workflow into an error instead of a skipped input.
    """
    return _run_check(
        [
            _tool("zizmor"),
            "--offline",
            "--strict-collection",
            "--min-severity",
            "medium",
            "--no-progress",
            "--color",
            "never",
            str(workflow),
        ]
    )


CHECKERS: dict[str, Callable[[Path], CheckResult]] = {
    "check-jsonschema": check_schema,
    "zizmor": check_zizmor,
}


def test_expected_workflows_exist() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {
        "ci.yml",
        "pr-report.yml",
        "cd.yml",
        "ct.yml",
        "rollback.yml",
        "monitor.yml",
        "data-fingerprint.yml",
    } <= names


@pytest.mark.parametrize("checker", sorted(CHECKERS))
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_passes(workflow: Path, checker: str) -> None:
    result = CHECKERS[checker](workflow)
    assert result.ok, result.output


def _replace(old: str, new: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert old in text, f"mutation target {old!r} no longer in the workflow"
        return text.replace(old, new)

    return mutate


# (workflow, how to break it, which checker must now fail)
BROKEN_CASES = [
    pytest.param(
        "ci.yml",
        _replace("runs-on:", "runs_on:"),
        "check-jsonschema",
        id="schema-missing-runs-on",
    ),
    pytest.param(
        "pr-report.yml",
        _replace("permissions: {}", "permissions: none-at-all"),
        "check-jsonschema",
        id="schema-bad-permissions",
    ),
    pytest.param(
        "ci.yml",
        lambda text: text + "  broken: [\n",
        "check-jsonschema",
        id="schema-yaml-syntax-error",
    ),
    pytest.param(
        "ci.yml",
        lambda text: text + "  broken: [\n",
        "zizmor",
        id="zizmor-yaml-syntax-error",
    ),
    pytest.param(
        "pr-report.yml",
        _replace('pr-report.sh "$BASE_REF"', 'pr-report.sh "origin/${{ github.base_ref }}"'),
        "zizmor",
        id="zizmor-template-injection",
    ),
    pytest.param(
        "ci.yml",
        _replace("        with:\n          persist-credentials: false\n", ""),
        "zizmor",
        id="zizmor-artipacked-medium",
    ),
    pytest.param(
        "pr-report.yml",
        _replace(
            "uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8",
            "uses: some-org/some-action@v1",
        ),
        "zizmor",
        id="zizmor-unpinned-third-party-action",
    ),
    pytest.param(
        "pr-report.yml",
        _replace(
            "    permissions:\n"
            "      contents: read # check out the code\n"
            "      pull-requests: write # create / update the report comment\n",
            "    permissions: write-all\n",
        ),
        "zizmor",
        id="zizmor-excessive-job-permissions",
    ),
    pytest.param(
        "rollback.yml",
        _replace('--dry-run ${VERSION:+--to "$VERSION"}', "--dry-run --to ${{ inputs.version }}"),
        "zizmor",
        id="zizmor-rollback-input-injection",
    ),
    pytest.param(
        "cd.yml",
        _replace("    permissions:\n      contents: write", "    permissions: write-all\n    #"),
        "zizmor",
        id="zizmor-cd-excessive-permissions",
    ),
    pytest.param(
        "monitor.yml",
        _replace('"$BRANCH" ${ROWS:+"$ROWS"}', '"$BRANCH" ${{ inputs.rows }}'),
        "zizmor",
        id="zizmor-monitor-input-injection",
    ),
    pytest.param(
        "monitor.yml",
        _replace("          persist-credentials: false\n", ""),
        "zizmor",
        id="zizmor-monitor-persisted-credentials",
    ),
    pytest.param(
        "data-fingerprint.yml",
        _replace("          persist-credentials: false\n", ""),
        "zizmor",
        id="zizmor-fingerprint-persisted-credentials",
    ),
    pytest.param(
        "data-fingerprint.yml",
        _replace("    permissions:\n      contents: read", "    permissions: write-all\n    #"),
        "zizmor",
        id="zizmor-fingerprint-excessive-permissions",
    ),
    pytest.param(
        "data-fingerprint.yml",
        _replace("  schedule:\n", "  schedule:\n    cron: weekly\n"),
        "check-jsonschema",
        id="schema-fingerprint-bad-schedule",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "checker"), BROKEN_CASES)
def test_checker_rejects_broken_workflow(
    tmp_path: Path, name: str, mutate: Callable[[str], str], checker: str
) -> None:
    """Prove the checkers above really fail on a broken workflow."""
    original = (WORKFLOWS_DIR / name).read_text(encoding="utf-8")
    broken_text = mutate(original)
    assert broken_text != original
    broken = tmp_path / name
    broken.write_text(broken_text, encoding="utf-8")

    result = CHECKERS[checker](broken)
    assert not result.ok, f"{checker} accepted a broken workflow:\n{result.output}"


# --------------------------------------------------------------------------
# .github/scripts/pr-report.sh in temporary git + DVC repositories
# --------------------------------------------------------------------------

# A one-stage pipeline: accuracy depends on params.yaml:train.lr.
DVC_YAML = """\
stages:
  evaluate:
    cmd: >-
      python -c "import json, yaml;
      lr = yaml.safe_load(open('params.yaml'))['train']['lr'];
      json.dump({'accuracy': round(0.5 + lr, 4), 'f1': 0.8}, open('metrics.json', 'w'))"
    params:
      - train.lr
    metrics:
      - metrics.json:
          cache: false
"""


def _params(lr: float) -> str:
    return f"train:\n  lr: {lr}\n  depth: 3\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Hermetic environment: venv tools first on PATH, no user git/dvc config."""
    for sub in ("dvc-global", "dvc-system", "dvc-site-cache"):
        (tmp_path / sub).mkdir()
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC": str(VENV_BIN / "dvc"),
        "PYTHON": sys.executable,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "DVC_NO_ANALYTICS": "1",
        "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc-global"),
        "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "dvc-system"),
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache"),
    }


class Repo:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env
        path.mkdir()

    def run(self, *cmd: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(part) for part in cmd],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def write(self, name: str, text: str) -> None:
        (self.path / name).write_text(text, encoding="utf-8")

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", message)

    def dvc(self, *args: str) -> None:
        self.run(self.env["DVC"], *args)

    def pipeline(self, lr: float) -> None:
        self.write("params.yaml", _params(lr))
        self.write("dvc.yaml", DVC_YAML)
        self.dvc("repro", "-q")

    def publish_main(self, tmp_path: Path) -> None:
        """Push main to a bare 'origin' so the base is origin/main, as on CI."""
        origin = tmp_path / "origin.git"
        self.run("git", "init", "-q", "--bare", origin)
        self.run("git", "remote", "add", "origin", origin)
        self.run("git", "push", "-q", "origin", "main")
        self.run("git", "fetch", "-q", "origin")

    def report(self, base: str, output: str = "report.md") -> subprocess.CompletedProcess[str]:
        return self.run("bash", PR_REPORT, base, output, check=False)


def _new_repo(tmp_path: Path, env: dict[str, str]) -> Repo:
    repo = Repo(tmp_path / "repo", env)
    repo.run("git", "init", "-q", "-b", "main")
    repo.write("README.md", "# demo\n")
    return repo


def _row(report: str, *cells: str) -> list[str]:
    """The cells of the first markdown table row starting with ``cells``."""
    for line in report.splitlines():
        if line.startswith("|"):
            row = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if row[: len(cells)] == list(cells):
                return row
    raise AssertionError(f"no table row starting with {cells} in:\n{report}")


def test_pr_report_diffs_metrics_and_params(tmp_path: Path, env: dict[str, str]) -> None:
    repo = _new_repo(tmp_path, env)
    repo.dvc("init", "-q")
    repo.pipeline(lr=0.1)
    repo.commit("base: pipeline with metrics")
    repo.publish_main(tmp_path)

    repo.run("git", "checkout", "-q", "-b", "feature")
    repo.pipeline(lr=0.2)
    repo.commit("feature: raise the learning rate")

    proc = repo.report("origin/main")
    assert proc.returncode == 0, proc.stderr
    report = (repo.path / "report.md").read_text(encoding="utf-8")

    assert report.startswith("# MLOps report\n")
    assert "## Metrics" in report
    assert "## Params" in report
    assert "no metrics on the base branch yet" not in report
    # dvc metrics diff --md: | Path | Metric | origin/main | workspace | Change |
    header = _row(report, "Path", "Metric")
    assert header[2:4] == ["origin/main", "workspace"]
    assert _row(report, "metrics.json", "accuracy")[2:4] == ["0.6", "0.7"]
    # dvc params diff --md: | Path | Param | origin/main | workspace |
    assert _row(report, "Path", "Param")[2:4] == ["origin/main", "workspace"]
    assert _row(report, "params.yaml", "train.lr")[2:4] == ["0.1", "0.2"]
    # Unchanged values are not listed.
    assert "train.depth" not in report
    # No gate report or plots in this tiny pipeline: said, not left blank.
    assert "_`reports/gate.md` was not written by this run._" in report
    assert "_No plots were drawn by this run._" in report


def test_pr_report_includes_gate_validation_and_plots(tmp_path: Path, env: dict[str, str]) -> None:
    repo = _new_repo(tmp_path, env)
    repo.dvc("init", "-q")
    repo.pipeline(lr=0.1)
    repo.commit("base")
    (repo.path / "reports/plots").mkdir(parents=True)
    repo.write("reports/gate.md", "# Model gate: FAILED\n\n| Check | Verdict |\n|---|---|\n")
    repo.write("reports/validation.md", "# Data validation: passed\n\n## Contract\n")
    (repo.path / "reports/plots/roc.png").write_bytes(b"\x89PNG")
    (repo.path / "out").mkdir()

    proc = repo.report("main", "out/report.md")
    assert proc.returncode == 0, proc.stderr
    report = (repo.path / "out/report.md").read_text(encoding="utf-8")

    gate = report.index("## Gate\n")
    validation = report.index("## Data validation\n")
    plots = report.index("## Plots\n")
    assert gate < validation < plots
    # The reports' headings sit under the report's own sections.
    assert "\n### Model gate: FAILED\n" in report[gate:validation]
    assert "<details><summary>reports/validation.md</summary>" in report[validation:plots]
    assert "\n#### Contract\n" in report[validation:plots]
    # Image links are relative to the report file, for cml to upload.
    assert "![roc](../reports/plots/roc.png)" in report[plots:]


@pytest.mark.parametrize("dropped", [True, False])
def test_pr_report_includes_the_audit_and_a_drop_first(
    tmp_path: Path, env: dict[str, str], dropped: bool
) -> None:
    repo = _new_repo(tmp_path, env)
    repo.dvc("init", "-q")
    repo.pipeline(lr=0.1)
    repo.commit("base")
    warning = "> **The ML Test Score dropped: 4 -> 3.5**\n\n" if dropped else ""
    (repo.path / "reports").mkdir(exist_ok=True)
    repo.write("reports/audit.md", f"# ML Test Score self-audit\n\n{warning}**Final score 3.5**\n")

    proc = repo.report("main")
    assert proc.returncode == 0, proc.stderr
    report = (repo.path / "report.md").read_text(encoding="utf-8")

    audit = report.index("## ML Test Score\n")
    assert "<details><summary>reports/audit.md</summary>" in report[audit:]
    assert "\n### ML Test Score self-audit\n" in report[audit:]
    drop = "> **The ML Test Score dropped: 4 -> 3.5**"
    # A drop is said at the top, before the metrics; no drop, nothing up there.
    assert (drop in report[: report.index("## Metrics")]) is dropped


def _decision(action: str, ok: bool = True) -> str:
    """A line of monitoring/decisions.jsonl, as `mlops respond` appends it."""
    record = {
        "decided_at": "2026-12-01T05:41:00+00:00",
        "model_version": "v1.2.0",
        "action": action,
        "reasons": [f"{action}: a reason"] if action != "none" else [],
        "done": f"{action} done",
        "ok": ok,
    }
    return json.dumps(record) + "\n"


def test_pr_report_production_monitoring_from_the_base_branch(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The last decision and verdict table the base branch holds: production's, whatever
    the pull request's own copy says; 'no monitoring run yet' without them."""
    repo = _new_repo(tmp_path, env)
    repo.dvc("init", "-q")
    repo.pipeline(lr=0.1)
    repo.commit("base")
    repo.run("git", "checkout", "-q", "-b", "feature")
    (repo.path / "monitoring").mkdir()
    repo.write("monitoring/decisions.jsonl", _decision("rollback"))
    repo.commit("a copy of the log on the branch")

    assert repo.report("main").returncode == 0
    report = (repo.path / "report.md").read_text(encoding="utf-8")
    section = report[report.index("## Production monitoring\n") : report.index("## Plots\n")]
    assert "_No monitoring run yet (no `monitoring/decisions.jsonl` on `main`)._" in section

    repo.run("git", "checkout", "-q", "main")
    (repo.path / "monitoring").mkdir()
    repo.write("monitoring/decisions.jsonl", _decision("none") + _decision("alert", ok=False))
    repo.write(
        "monitoring/latest.md",
        "# Production monitoring\n\nVerdict: **BREACH**: input_quality.\n\n"
        "| check | breach | summary |\n|---|---|---|\n| input_quality | **yes** | age |\n",
    )
    repo.commit("Respond: alert")
    repo.run("git", "checkout", "-q", "feature")

    assert repo.report("main").returncode == 0
    report = (repo.path / "report.md").read_text(encoding="utf-8")
    validation = report.index("## Data validation\n")
    start = report.index("## Production monitoring\n")
    section = report[start : report.index("## Plots\n")]
    assert validation < start
    assert (
        "Last decision on `main` (2026-12-01T05:41:00+00:00, model v1.2.0): **alert**: "
        "alert: a reason. FAILED: alert done" in section
    )
    assert "**none**" not in section
    assert "**rollback**" not in section
    assert "\n### Production monitoring\n" in section  # under the report's own heading
    assert "| input_quality | **yes** | age |" in section


def test_pr_report_without_changes(tmp_path: Path, env: dict[str, str]) -> None:
    repo = _new_repo(tmp_path, env)
    repo.dvc("init", "-q")
    repo.pipeline(lr=0.1)
    repo.commit("base")
    repo.run("git", "checkout", "-q", "-b", "feature")

    proc = repo.report("main")
    assert proc.returncode == 0, proc.stderr
    report = (repo.path / "report.md").read_text(encoding="utf-8")
    assert "No metrics changed compared with `main`." in report
    assert "No params changed compared with `main`." in report


@pytest.mark.parametrize("base_has_dvc", [False, True], ids=["base-without-dvc", "base-dvc-init"])
def test_pr_report_first_pr(tmp_path: Path, env: dict[str, str], base_has_dvc: bool) -> None:
    """First PR: the base branch has no dvc.lock / metrics (maybe not even DVC)."""
    repo = _new_repo(tmp_path, env)
    if base_has_dvc:
        repo.dvc("init", "-q")
    repo.commit("base without a pipeline")
    repo.publish_main(tmp_path)

    repo.run("git", "checkout", "-q", "-b", "feature")
    if not base_has_dvc:
        repo.dvc("init", "-q")
    repo.pipeline(lr=0.2)
    repo.commit("feature: first pipeline")

    proc = repo.report("origin/main")
    assert proc.returncode == 0, proc.stderr
    report = (repo.path / "report.md").read_text(encoding="utf-8")

    assert "no metrics on the base branch yet" in report
    assert "no params on the base branch yet" in report
    # The PR's own values are still shown.
    assert _row(report, "metrics.json")[1:3] == ["0.7", "0.8"]
    assert _row(report, "params.yaml", "train.lr")[3] == "0.2"


def test_pr_report_unknown_base_ref_fails(tmp_path: Path, env: dict[str, str]) -> None:
    repo = _new_repo(tmp_path, env)
    repo.commit("base")

    proc = repo.report("origin/does-not-exist")
    assert proc.returncode == 1
    assert "origin/does-not-exist" in proc.stderr
    assert not (repo.path / "report.md").exists()


def test_pr_report_usage(tmp_path: Path, env: dict[str, str]) -> None:
    repo = _new_repo(tmp_path, env)
    proc = repo.run("bash", PR_REPORT, "main", check=False)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr
