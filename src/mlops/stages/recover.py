"""``mlops recover``: repair what a killed `dvc repro` can leave behind, then let DVC rerun.

`make repro` and the release script run it before `dvc repro`, so a run that was
killed at any moment (SIGKILL, out of memory, a closed laptop) is recovered with
no manual step:

- dvc.lock, which DVC rewrites in place after each stage, may be empty or cut
  short. It is replaced by the last good copy (saved here by the previous
  `make repro`), else by the committed one, else removed; DVC then compares each
  stage with what it records and reruns what differs, so the outputs come out
  with the same bytes.
- DVC's own lock of running stages (.dvc/tmp/rwlock), also written in place, may
  be cut short; it only describes running DVC processes, so an unreadable one is
  removed.

Every other output is written atomically by the stages, and the tuning study
fails a killed worker's trial itself (`mlops tune`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlops.config import PATHS
from mlops.io import dvc, files, git

SUMMARY = "repair what a killed `dvc repro` left (a cut dvc.lock); make repro runs it"


GOOD_LOCK = Path(".dvc/tmp/dvc.lock.good")
RWLOCK = Path(".dvc/tmp/rwlock")


def run(args: argparse.Namespace) -> None:
    _recover_lock(PATHS.dvc_lock)
    _recover_rwlock(RWLOCK)


def _recover_lock(lock: Path) -> None:
    problem = dvc.lock_file_problem(files.read_optional(lock))
    if problem is None:
        if lock.is_file() and GOOD_LOCK.parent.is_dir():
            files.write_bytes(GOOD_LOCK, lock.read_bytes())
        return
    saved = files.read_optional(GOOD_LOCK)
    committed = git.file_at("HEAD", lock)
    for source, data in (("the last good copy", saved), ("the committed version", committed)):
        if data is not None and dvc.lock_file_problem(data) is None:
            files.write_bytes(lock, data)
            _say(f"{lock} was unusable ({problem}, an interrupted run); restored {source}")
            return
    files.remove_files([lock])
    _say(f"{lock} was unusable ({problem}, an interrupted run) and had no good copy; removed")


def _recover_rwlock(rwlock: Path) -> None:
    data = files.read_optional(rwlock)
    if data is None:
        return
    try:
        json.loads(data)
    except ValueError:
        files.remove_files([rwlock])
        _say(f"{rwlock} was cut short (an interrupted run); removed")


def _say(message: str) -> None:
    print(f"mlops recover: {message}; `dvc repro` reruns what it must", file=sys.stderr)
