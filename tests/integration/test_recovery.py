"""A kill at any moment: `mlops recover` + `dvc repro` (what `make repro` runs) gets back
the same bytes with no manual step.

The fault-injection test SIGKILLs a whole `dvc repro -f` (DVC and the stage it runs,
as an out-of-memory kill or a closed terminal would) at several points across the
stages, including the moment DVC rewrites dvc.lock, then recovers and compares every
output's bytes with the clean run's.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from mlops.cli import main
from tests.conftest import run, tool_env

GOOD_LOCK = Path(".dvc/tmp/dvc.lock.good")


def outputs(project: Path) -> dict[str, str]:
    """md5 of every output dvc.yaml declares (files and folders' files)."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    paths = [
        next(iter(out)) if isinstance(out, dict) else out
        for stage in stages.values()
        for key in ("outs", "metrics", "plots")
        for out in stage.get(key, [])
    ]
    files = sorted(
        f
        for p in paths
        for f in ([project / p] if (project / p).is_file() else (project / p).rglob("*"))
        if f.is_file()
    )
    return {
        str(f.relative_to(project)): hashlib.md5(f.read_bytes(), usedforsecurity=False).hexdigest()
        for f in files
    }


def recover_and_repro(project: Path) -> subprocess.CompletedProcess[str]:
    recovered = run(["mlops", "recover"], project, check=False)
    assert recovered.returncode == 0, recovered.stderr
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode == 0, recovered.stderr + result.stdout + result.stderr
    return recovered


def test_a_good_lock_is_kept_and_saved(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = (trained / "dvc.lock").read_bytes()
    assert main(["recover"]) == 0
    assert capsys.readouterr().err == ""
    assert (trained / "dvc.lock").read_bytes() == lock
    assert (trained / GOOD_LOCK).read_bytes() == lock


@pytest.mark.parametrize("cut", [0, 0.5, 0.9])
def test_a_cut_lock_is_restored_from_the_last_good_copy(
    trained: Path, cut: float, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = (trained / "dvc.lock").read_bytes()
    assert main(["recover"]) == 0
    (trained / "dvc.lock").write_bytes(lock[: int(len(lock) * cut)])
    assert main(["recover"]) == 0
    err = capsys.readouterr().err
    assert "dvc.lock was unusable" in err
    assert "restored the last good copy" in err
    assert (trained / "dvc.lock").read_bytes() == lock
    assert "up to date" in run(["dvc", "status"], trained).stdout


def test_a_cut_lock_falls_back_to_the_committed_one(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = (trained / "dvc.lock").read_bytes()
    run(["git", "add", "dvc.lock"], trained)
    run(["git", "commit", "-qm", "lock"], trained)
    # Mid-line: a cut at a line end can leave a shorter lock DVC itself accepts (its
    # missing stages just rerun), which recover rightly keeps.
    cut = len(lock) // 3
    cut -= lock[:cut].endswith(b"\n")
    (trained / "dvc.lock").write_bytes(lock[:cut])
    assert main(["recover"]) == 0
    assert "restored the committed version" in capsys.readouterr().err
    assert (trained / "dvc.lock").read_bytes() == lock


def test_a_cut_rwlock_is_removed(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rwlock = trained / ".dvc/tmp/rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    rwlock.write_text('{"read": {"dvc.yaml": [{"pid"')
    assert main(["recover"]) == 0
    assert "rwlock was cut short" in capsys.readouterr().err
    assert not rwlock.exists()


# --- fault injection ---------------------------------------------------------------


def _kill_when(project: Path, ready: object, timeout: float = 600) -> str:
    """Start `dvc repro -f` in its own process group; SIGKILL the group once ``ready``
    (called with the output so far) says so. Returns the output up to the kill."""
    log = project / "repro.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["dvc", "repro", "-f"],
            cwd=project,
            env=tool_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None:
            assert time.monotonic() < deadline, "the kill point never came"
            if ready(log.read_text()):  # type: ignore[operator]
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        process.wait(timeout=60)
    text = log.read_text()
    log.unlink()
    return text


def _in_stage(name: str, after: float) -> object:
    started: dict[str, float] = {}

    def ready(output: str) -> bool:
        if f"Running stage '{name}'" not in output:
            return False
        started.setdefault(name, time.monotonic())
        return time.monotonic() - started[name] >= after

    return ready


def _lock_shrinks(project: Path) -> object:
    lock = project / "dvc.lock"
    full = lock.stat().st_size

    def ready(output: str) -> bool:
        try:
            return lock.stat().st_size < full
        except FileNotFoundError:
            return True

    return ready


KILL_POINTS = {
    "ingest": lambda project: _in_stage("ingest", 0.3),
    "tune, mid-study": lambda project: _in_stage("tune", 1.5),
    "train": lambda project: _in_stage("train", 0.5),
    "evaluate": lambda project: _in_stage("evaluate", 1.0),
    "dvc.lock mid-write": _lock_shrinks,
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_kill_anywhere_recovers_the_same_bytes(trained: Path, point: str) -> None:
    clean = outputs(trained)
    lock = (trained / "dvc.lock").read_bytes()
    assert run(["mlops", "recover"], trained).returncode == 0  # as make repro did last time
    # The study is dropped too, so the killed tune really is mid-search.
    (trained / "reports/tuning/study.db").unlink()
    _kill_when(trained, KILL_POINTS[point](trained))
    recover_and_repro(trained)
    assert outputs(trained) == clean
    assert (trained / "dvc.lock").read_bytes() == lock
    assert "up to date" in run(["dvc", "status"], trained).stdout
