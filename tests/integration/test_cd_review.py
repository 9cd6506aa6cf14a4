""".github/scripts/reviewed-pr.py, the check cd.yml runs before it promotes: only the
merge of a pull request another person approved reaches production. ``gh`` is replaced
by a script that answers each API endpoint with recorded JSON (the shape GitHub's REST
API returns, trimmed to the fields read) or fails like an unreachable API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github/scripts/reviewed-pr.py"
REPO = "owner/repo"
MERGE = "a" * 40  # the commit pushed to main: the pull request's merge commit
HEAD = "b" * 40  # the pull request's last commit, the one reviewed
EARLIER = "c" * 40
# gh, replaced: `gh api --paginate ENDPOINT` prints $GH_API/<ENDPOINT with / as _>.json,
# page by page as gh does (one JSON array each); no such file: GitHub did not answer.
GH = f"""#!{sys.executable}
import json, os, pathlib, sys
endpoint = sys.argv[-1]
path = pathlib.Path(os.environ["GH_API"]) / (endpoint.replace("/", "_") + ".json")
if sys.argv[1:3] != ["api", "--paginate"] or not path.exists():
    sys.exit("gh: HTTP 502: Bad Gateway (https://api.github.com/" + endpoint + ")")
for page in json.loads(path.read_text()):
    print(json.dumps(page))
"""


def pull(number: int = 12, author: str = "alice", merged: bool = True) -> dict[str, Any]:
    return {
        "number": number,
        "html_url": f"https://github.com/{REPO}/pull/{number}",
        "state": "closed",
        "user": {"login": author, "type": "User"},
        "head": {"ref": "feature", "sha": HEAD},
        "base": {"ref": "main", "sha": "d" * 40},
        "merged_at": "2026-12-02T10:00:00Z" if merged else None,
        "merge_commit_sha": MERGE,
    }


def review(who: str, state: str = "APPROVED", commit: str = HEAD) -> dict[str, Any]:
    return {
        "id": abs(hash((who, state, commit))),
        "user": {"login": who, "type": "User"},
        "state": state,
        "commit_id": commit,
        "submitted_at": "2026-12-02T09:00:00Z",
    }


def run(tmp_path: Path, answers: dict[str, list[list[Any]]]) -> subprocess.CompletedProcess[str]:
    """The script against ``answers``: endpoint -> the pages GitHub returns."""
    api = tmp_path / "api"
    api.mkdir()
    for endpoint, pages in answers.items():
        (api / (endpoint.replace("/", "_") + ".json")).write_text(json.dumps(pages))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(GH)
    (bin_dir / "gh").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GH_API": str(api)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), REPO, MERGE],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


PULLS = f"repos/{REPO}/commits/{MERGE}/pulls"
REVIEWS = f"repos/{REPO}/pulls/12/reviews"


def test_a_merged_and_approved_pull_request_passes(tmp_path: Path) -> None:
    # Reviews come in two pages; bob's approval is on the second.
    reviews = [[review("carol", "COMMENTED")], [review("bob")]]
    proc = run(tmp_path, {PULLS: [[pull()]], REVIEWS: reviews})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        f"cd: {MERGE[:12]} is the merge of pull request #12 by alice, approved by bob\n"
    )


def _refused(proc: subprocess.CompletedProcess[str], why: str) -> None:
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"cd: refusing to promote {MERGE[:12]}: ")
    assert why in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("pulls", "reviews", "why"),
    [
        pytest.param(
            [[]], [[review("bob")]], "is not the merge commit of a merged pull request", id="direct"
        ),
        pytest.param(
            # The commit was on a pull request that was closed unmerged, then pushed.
            [[pull(merged=False)]],
            [[review("bob")]],
            "is not the merge commit of a merged pull request",
            id="pushed-after-a-closed-pull-request",
        ),
        pytest.param(
            [[pull()]],
            [[review("carol", "COMMENTED")]],
            "merged without an approving review by someone other than its author",
            id="no-approval",
        ),
        pytest.param(
            [[pull()]],
            [[review("alice")]],
            "(approved only by its author)",
            id="self-approval",
        ),
        pytest.param(
            [[pull()]],
            [[review("bob"), review("bob", "CHANGES_REQUESTED")]],
            "merged without an approving review",
            id="approval-withdrawn",
        ),
        pytest.param(
            [[pull()]],
            [[review("bob", commit=EARLIER)]],
            "its approvals (bob) are of an earlier commit than its last",
            id="pushed-after-approval",
        ),
    ],
)
def test_a_commit_no_reviewed_pull_request_merged_is_refused(
    tmp_path: Path, pulls: list[list[Any]], reviews: list[list[Any]], why: str
) -> None:
    _refused(run(tmp_path, {PULLS: pulls, REVIEWS: reviews}), why)


def test_no_answer_from_github_is_no_proof(tmp_path: Path) -> None:
    _refused(run(tmp_path, {}), f"GitHub's API did not answer {PULLS} (gh: HTTP 502")


def test_reviews_unreachable_is_refused(tmp_path: Path) -> None:
    _refused(run(tmp_path, {PULLS: [[pull()]]}), f"did not answer {REVIEWS}")


@pytest.mark.parametrize("args", [[REPO], [REPO, "main"], ["not a repo", MERGE]])
def test_bad_arguments_exit_2(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: ")


def test_cd_checks_the_review_before_it_builds_or_promotes() -> None:
    """The check is a step of the promoting job, ahead of every step that could change
    production, on the commit the run is for."""
    workflow = yaml.safe_load((ROOT / ".github/workflows/cd.yml").read_text(encoding="utf-8"))
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    check = next(i for i, text in enumerate(runs) if "reviewed-pr.py" in text)
    promote = next(i for i, text in enumerate(runs) if "release.sh promote" in text)
    assert check < promote
    assert all(not text or i == check for i, text in enumerate(runs[: check + 1]))
    step = job["steps"][check]
    assert step["env"]["SHA"] == "${{ github.sha }}"
    assert "continue-on-error" not in step
    assert job["permissions"]["pull-requests"] == "read"
