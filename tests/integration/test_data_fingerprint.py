""".github/scripts/data-fingerprint.sh, what data-fingerprint.yml runs weekly, through
the real `dvc import-url` / `dvc update --no-download` path: a throwaway git + DVC
project imports a file from outside it (a local path, and a URL served over HTTP on
loopback), and ``gh`` is replaced by a script that keeps the repository's issues in a
JSON file. Unchanged source: no issue; changed: one issue with the old and the new
fingerprint; the same change again: no second issue; a new change: a new issue."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github/scripts/data-fingerprint.sh"
BIN = Path(sys.executable).parent
# gh, replaced: the issues live in $GH_ISSUES (a JSON list); `issue list` prints them
# (whatever the search: the script must pick its own), `issue create` adds one.
GH = f"""#!{sys.executable}
import json, os, pathlib, sys
store = pathlib.Path(os.environ["GH_ISSUES"])
issues = json.loads(store.read_text()) if store.exists() else []
args = sys.argv[1:]
if args[:2] == ["issue", "list"]:
    print(json.dumps([{{"title": i["title"], "url": i["url"]}} for i in issues]))
elif args[:2] == ["issue", "create"]:
    title = args[args.index("--title") + 1]
    body = pathlib.Path(args[args.index("--body-file") + 1]).read_text()
    url = f"https://github.com/owner/repo/issues/{{len(issues) + 1}}"
    issues.append({{"title": title, "body": body, "url": url, "state": "open"}})
    store.write_text(json.dumps(issues))
    print(url)
else:
    sys.exit(f"gh stub: unexpected {{args}}")
"""
ROWS = "age,income\n39,<=50K\n50,>50K\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on loopback, and its URL."""
    folder = tmp_path_factory.mktemp("served")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join()


class Project:
    def __init__(self, tmp: Path, source: Path, url: str) -> None:
        self.root = tmp / "project"
        self.source = source
        self.issues = tmp / "issues.json"
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        (bin_dir / "gh").write_text(GH)
        (bin_dir / "gh").chmod(0o755)
        for sub in ("dvc-global", "dvc-system", "dvc-site-cache"):
            (tmp / sub).mkdir()
        self.env = {
            **os.environ,
            "PATH": os.pathsep.join([str(bin_dir), str(BIN), os.environ["PATH"]]),
            "GH_ISSUES": str(self.issues),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@localhost",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@localhost",
            "DVC_NO_ANALYTICS": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(tmp / "dvc-global"),
            "DVC_SYSTEM_CONFIG_DIR": str(tmp / "dvc-system"),
            "DVC_SITE_CACHE_DIR": str(tmp / "dvc-site-cache"),
        }
        self.root.mkdir()
        self.sh("git", "init", "-q", "-b", "main")
        self.sh("dvc", "init", "-q")
        (self.root / "data/external").mkdir(parents=True)
        self.sh("dvc", "import-url", url, "data/external/adult.csv")
        self.sh("git", "add", "-A")
        self.sh("git", "commit", "-q", "-m", "import the data")
        # As the workflow's fresh checkout: the .dvc file, neither the data nor a cache.
        (self.root / "data/external/adult.csv").unlink()
        shutil.rmtree(self.root / ".dvc/cache")
        self.dvc_file = self.root / "data/external/adult.csv.dvc"
        self.recorded = self.dvc_file.read_text()

    def sh(self, *cmd: str) -> str:
        done = subprocess.run(
            cmd, cwd=self.root, env=self.env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{cmd}: {done.stdout}{done.stderr}"
        return done.stdout

    def check(self) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", str(SCRIPT)],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        # The check reads the source; it changes nothing in the project.
        assert self.dvc_file.read_text() == self.recorded
        assert self.sh("git", "status", "--porcelain") == ""
        return done

    def opened(self) -> list[dict[str, Any]]:
        return json.loads(self.issues.read_text()) if self.issues.exists() else []

    def change_source(self, rows: str) -> None:
        self.source.write_text(ROWS + rows)
        stat = self.source.stat()  # a later modification time, as a new upload has
        os.utime(self.source, (stat.st_atime + 60, stat.st_mtime + 60))


@pytest.fixture(params=["path", "http"])
def project(request: pytest.FixtureRequest, tmp_path: Path, server: tuple[Path, str]) -> Project:
    if request.param == "path":
        source = tmp_path / "upstream/adult.csv"
        source.parent.mkdir()
        url = str(source)
    else:
        folder, base = server
        source = folder / f"{tmp_path.name}.csv"
        url = f"{base}/{source.name}"
    source.write_text(ROWS)
    return Project(tmp_path, source, url)


def test_a_changed_source_opens_one_issue_once(project: Project) -> None:
    unchanged = project.check()
    assert unchanged.returncode == 0, unchanged.stderr
    assert "data/external/adult.csv.dvc: " in unchanged.stdout
    assert "unchanged" in unchanged.stdout
    assert project.opened() == []

    project.change_source("28,<=50K\n")
    changed = project.check()
    assert changed.returncode == 0, changed.stderr
    (issue,) = project.opened()
    old = changed.stdout.split(" changed (")[1].split(" -> ")[0]
    new = changed.stdout.split(" -> ")[1].split(")")[0]
    assert old != new
    assert old in unchanged.stdout  # what the .dvc file records
    assert issue["title"] == f"Data source changed: data/external/adult.csv.dvc ({new})"
    assert f"| recorded in `data/external/adult.csv.dvc` | {old} |" in issue["body"]
    assert f"| the source now | {new} |" in issue["body"]
    assert "issue: https://github.com/owner/repo/issues/1" in changed.stdout

    again = project.check()
    assert again.returncode == 0, again.stderr
    assert "already reported: https://github.com/owner/repo/issues/1" in again.stdout
    assert len(project.opened()) == 1

    project.change_source("28,<=50K\n61,>50K\n")
    later = project.check()
    assert later.returncode == 0, later.stderr
    assert [i["url"][-1] for i in project.opened()] == ["1", "2"]


def test_an_unreachable_source_fails_and_opens_nothing(project: Project) -> None:
    project.source.unlink()
    done = project.check()
    assert done.returncode == 1
    assert "could not ask" in done.stderr
    assert project.opened() == []


def test_a_project_without_imports_has_nothing_to_check() -> None:
    """The demo: its data is in git, not imported."""
    done = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "nothing to fingerprint" in done.stdout
