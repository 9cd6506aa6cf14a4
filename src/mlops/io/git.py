"""git: the commit checked out, committed files and their history, tags."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from mlops.errors import UsageError


def revision(cwd: Path | None = None) -> str:
    """The commit checked out, or "unknown" outside a git repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def call(*args: str, cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"git {args[0]}: {detail}") from None
    return out.stdout


def first_commit_time(text: str, path: Path, cwd: Path | None = None) -> datetime | None:
    """When ``text`` first appeared in ``path``'s committed history (None: never, or no git)."""
    try:
        log = call("log", "--format=%cI", f"-S{text}", "--", str(path), cwd=cwd)
    except UsageError:
        return None
    times = log.split()
    return datetime.fromisoformat(times[-1]) if times else None


def head(cwd: Path | None = None) -> str:
    """The commit checked out; a UsageError outside a git repository or before a commit."""
    return call("rev-parse", "--verify", "HEAD", cwd=cwd).strip()


def file_at(revision: str, path: Path, cwd: Path | None = None) -> bytes | None:
    """``path`` as committed at ``revision``, or None when it is not there."""
    spec = f"{revision}:{path.as_posix()}"
    proc = subprocess.run(["git", "show", spec], cwd=cwd, capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def is_committed(path: Path) -> bool:
    """Tracked, and the working tree holds exactly what HEAD has."""
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "--", str(path)], capture_output=True, check=False
    )
    same = subprocess.run(
        ["git", "diff", "--quiet", "HEAD", "--", str(path)], capture_output=True, check=False
    )
    return tracked.returncode == 0 and same.returncode == 0


def commit_file(path: Path, message: str) -> str:
    """Commit ``path`` alone (anything else staged stays staged); the new commit's id."""
    call("add", "--", str(path))
    call("commit", "-q", "-m", message, "--only", "--", str(path))
    return head()


def unstage(path: Path) -> None:
    subprocess.run(["git", "reset", "-q", "--", str(path)], capture_output=True, check=False)


def tags(pattern: str) -> set[str]:
    return set(call("tag", "--list", pattern).split())


def delete_tags(names: Sequence[str]) -> None:
    if names:
        call("tag", "-d", *names)


def last_tag_time(patterns: Sequence[str]) -> int | None:
    """The newest creation time (whole seconds) of the tags matching ``patterns``."""
    out = call(
        "for-each-ref", "--format=%(creatordate:unix)", *[f"refs/tags/{p}" for p in patterns]
    )
    times = [int(t) for t in out.split()]
    return max(times) if times else None
