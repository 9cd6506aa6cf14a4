"""DVC: dvc.lock (what it records, whether a kill cut it), the cache, the remote, and
reproducing one revision's output in a temporary worktree."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mlops.errors import UsageError, clip, shorten
from mlops.io import git
from mlops.io.files import file_md5, read_yaml

_LOCK_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")


def expected_md5(lock_path: Path, out_path: Path) -> str | None:
    """The md5 that ``lock_path`` (a dvc.lock) records for the output ``out_path``.

    None when there is no lock file or no stage lists that output (a file not
    produced by the pipeline yet); a lock file that is not DVC's YAML is an error.
    """
    if not lock_path.is_file():
        return None
    lock = read_yaml(lock_path, "DVC lock file")
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        raise UsageError(f"{lock_path}: not a DVC lock file (no 'stages' mapping)")
    wanted = out_path.as_posix()
    for stage in stages.values():
        for out in stage.get("outs", []) if isinstance(stage, dict) else []:
            if isinstance(out, dict) and out.get("path") == wanted and "md5" in out:
                return str(out["md5"])
    return None


def lock_file_problem(data: bytes | None) -> str | None:
    """What makes ``data`` an unusable dvc.lock (None: usable; absent is usable too).

    DVC rewrites dvc.lock in place after each stage, so a kill during that write
    leaves it empty or cut short, and every later `dvc repro` stops on it.
    """
    if data is None:
        return None
    if not data.strip():
        return "it is empty"
    if not data.endswith(b"\n"):  # DVC ends it with a line break; a cut rarely does
        return "it is cut short"
    from dvc.schema import COMPILED_LOCKFILE_SCHEMA

    try:
        document = yaml.safe_load(data)
        COMPILED_LOCKFILE_SCHEMA(document)
    except yaml.YAMLError as exc:
        return f"it is not YAML ({str(exc).splitlines()[0]})"
    except Exception as exc:  # voluptuous's Invalid: the schema DVC itself checks
        return f"it is not a DVC lock file ({shorten(str(exc), 80)})"
    return _cut_hash(document)


def _cut_hash(document: dict[str, Any]) -> str | None:
    """A cut at a line end still parses; a hash cut short does not look like one."""
    for name, stage in document.get("stages", {}).items():
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]:
            if not _LOCK_MD5.fullmatch(str(entry.get("md5", ""))):
                return f"it is cut short (stage {name}: {entry.get('path')} has no full md5)"
    return None


def cache_file(md5: str, root: Path = Path()) -> Path:
    """Where the DVC cache keeps the object with this md5 (whether or not it is there)."""
    return Path(_cache(root, lambda cache: cache.local.oid_to_path(md5)))


def cache_dir(root: Path = Path()) -> Path:
    """The DVC cache folder (``cache.dir``), to share it with a temporary worktree."""
    return Path(_cache(root, lambda cache: cache.local_cache_dir))


def _cache(root: Path, attribute: Any) -> str:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            return str(Path(attribute(repo.cache)).resolve())
    except DvcException as exc:
        raise UsageError(f"{root.resolve()}: not a DVC repository ({exc})") from None


def pull_object(md5: str, root: Path = Path()) -> str | None:
    """Fetch one object from the default DVC remote into the cache: None when fetched,
    else why not when there is nothing to fetch it from (no remote configured, or the
    remote lacks it), which a caller may remedy by reproducing it.

    A remote that fails (unreachable, credentials refused, nothing at its URL: a
    missing bucket or a wrong path) raises one UsageError naming it and the pull:
    remaking the bytes elsewhere would hide a broken set-up until it matters.
    """
    from dvc_data.hashfile.hash_info import HashInfo

    with _remote(root, f"pull of {md5}") as (repo, remote):
        if remote is None:
            return "no DVC remote configured"
        if repo.cloud.pull([HashInfo("md5", md5)]).transferred:
            return None
        if not remote.fs.exists(remote.path):
            raise _RemoteFailed("nothing is stored at its URL (a missing bucket or path?)")
        return f"DVC remote {remote.name!r} does not have it"


def push_object(md5: str, root: Path = Path()) -> str | None:
    """Upload one cache object to the default DVC remote: None, "no remote", or raise
    one UsageError naming the remote and the push.

    One object by its hash, not ``dvc push --all-tags``: that pushes only one
    revision's copy of a path (treeverse/dvc#10617), so older versions would be lost.
    """
    from dvc_data.hashfile.hash_info import HashInfo

    with _remote(root, f"push of {md5}") as (repo, remote):
        if remote is None:
            return "no DVC remote configured"
        if repo.cloud.push([HashInfo("md5", md5)]).failed:
            raise _RemoteFailed("the upload failed")
    return None


class _RemoteFailed(Exception):
    """A transfer the remote did not complete (DVC logged the reason, or none)."""


@contextlib.contextmanager
def _remote(root: Path, operation: str) -> Iterator[tuple[Any, Any]]:
    """The DVC repo and its default remote (None: none configured) for one transfer.

    Whatever the transfer raises becomes one UsageError naming the remote, its URL and
    ``operation``; DVC's own log lines of it (an error per file, a list of missing
    files) stay off stderr, the first of them giving the reason.
    """
    from dvc.config import NoRemoteError
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        repo = Repo(str(root))
    except DvcException as exc:
        raise UsageError(f"{root.resolve()}: not a DVC repository ({exc})") from None
    with repo, _dvc_log() as log:
        try:
            remote = repo.cloud.get_remote()
        except NoRemoteError:
            yield repo, None
            return
        where = f"DVC remote {remote.name!r} ({repo.config['remote'][remote.name]['url']})"
        try:
            yield repo, remote
        # Each remote's library raises its own errors (botocore, google-auth, azure-core,
        # OSError); any of them means this remote cannot be used as configured.
        except Exception as exc:
            reason = _reason(exc, log.buffer)
            raise UsageError(f"{where}: {operation} failed: {reason}") from None


def _reason(error: Exception, records: list[logging.LogRecord]) -> str:
    if isinstance(error, PermissionError):
        return f"access denied ({error}): check its credentials"
    logged = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    if isinstance(error, _RemoteFailed) and logged:
        return logged[0].split(" - ", 1)[-1]  # "failed to transfer '<md5>' - <why>"
    return clip(error, 300) or type(error).__name__


@contextlib.contextmanager
def _dvc_log() -> Iterator[logging.handlers.BufferingHandler]:
    """Keep DVC's log records (instead of its handlers printing them) for the block."""
    logger = logging.getLogger("dvc")
    kept = logger.handlers
    keeper = logging.handlers.BufferingHandler(capacity=1 << 16)
    logger.handlers = [keeper]
    try:
        yield keeper
    finally:
        logger.handlers = kept


def add(path: Path, root: Path = Path()) -> None:
    """Track ``path`` with DVC (its .dvc file and .gitignore entry, the bytes in the cache)."""
    _run("add", "-q", str(path), cwd=root)


def repro(root: Path = Path()) -> None:
    """``dvc repro`` of the whole pipeline in ``root``, with this environment's ``mlops``."""
    _run("repro", cwd=root, env=_reproduce_env(root.resolve()))


def reproduce_output(
    revision: str, stage: str, output: Path, cache_dir: Path, root: Path = Path()
) -> tuple[str | None, str]:
    """Run ``dvc repro stage`` of ``revision`` in a temporary git worktree that shares the
    DVC cache ``cache_dir``; (md5 of ``output`` or None, one line on what happened).

    The revision's own package (its ``src/``) is put first on PYTHONPATH so the code
    that made the model is the code that remakes it.
    """
    folder = Path(tempfile.mkdtemp(prefix="mlops-reproduce-"))
    tree = folder / "tree"
    try:
        git.call("worktree", "add", "--detach", str(tree), revision, cwd=root)
        _run("config", "--local", "cache.dir", str(cache_dir), cwd=tree)
        proc = _run("repro", stage, cwd=tree, env=_reproduce_env(tree), check=False)
        if proc.returncode != 0:
            lines = (proc.stderr + proc.stdout).strip().splitlines() or ["no output"]
            return None, f"dvc repro {stage} failed: {lines[-1]}"
        if not (tree / output).is_file():
            return None, f"dvc repro {stage} did not produce {output}"
        return file_md5(tree / output), f"reproduced by dvc repro {stage} at {revision[:7]}"
    except UsageError as exc:
        return None, str(exc)
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)],
            cwd=root,
            capture_output=True,
            check=False,
        )
        subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _reproduce_env(tree: Path) -> dict[str, str]:
    import sys

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if (tree / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(tree / "src"), env.get("PYTHONPATH", "")) if p
        )
    return env


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"dvc {args[0]}: {detail}")
    return proc
