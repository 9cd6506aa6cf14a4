"""`mlops tune --worker` processes sharing one study on a real PostgreSQL server.

The fixture starts a throwaway cluster (initdb + pg_ctl) on loopback in a
temporary directory, as an unprivileged user, and removes it afterwards. It
needs Debian's `postgresql` package (the server binaries); without them the
tests are skipped locally and fail in CI (CI=true), where they must run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import psycopg2
import pytest
import yaml
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from mlops.cli import main
from mlops.tuning import search
from tests.conftest import edit_params, tool_env
from tests.integration.tune_support import clone, prepared_project

HOST = socket.gethostname()


def _server_binaries() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts[-3])
    return found[-1].parent if found else None


def _unprivileged() -> tuple[list[str], str | None]:
    """A command prefix that drops root (the server refuses to run as root), and the user."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.fail("running as root and `runuser` (util-linux) is missing")
            return [runuser, "-u", user, "--"], user
    pytest.fail("running as root and there is no `postgres` or `nobody` user to run the server")


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sh(command: list[str | Path], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, check=check, timeout=120
    )


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    binaries = _server_binaries()
    if binaries is None:
        message = (
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's "
            "`postgresql` package (apt-get install -y postgresql)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    prefix, user = _unprivileged()
    # Not under pytest's tmp_path: its parents are private to the user running pytest.
    base = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    if user is not None:
        shutil.chown(base, user=user)
    data, port = base / "data", _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    try:
        _sh([*prefix, binaries / "initdb", "-D", data, "-U", "postgres", "-A", "trust",
             "--no-locale", "-E", "UTF8", "--no-sync"])  # fmt: skip
        _sh([*prefix, binaries / "pg_ctl", "-D", data, "-l", base / "server.log", "-o", options,
             "-w", "-t", "60", "start"])  # fmt: skip
        with contextlib.closing(
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        ) as connection:
            connection.autocommit = True
            connection.cursor().execute("CREATE DATABASE optuna")
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        _sh([*prefix, binaries / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Enough rows that a trial takes a moment, so both workers get a share.
    return prepared_project(tmp_path_factory.mktemp("distributed") / "project", rows=3000)


@pytest.fixture
def shared(template: Path, tmp_path: Path, postgres_url: str) -> Path:
    """A project whose tune.storage is the server; each test gets its own database."""
    name = f"t{time.time_ns()}"
    with contextlib.closing(psycopg2.connect(postgres_url)) as connection:
        connection.autocommit = True
        connection.cursor().execute(f"CREATE DATABASE {name}")
    project = clone(template, tmp_path / "project")
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    edit_params(project, tune={"storage": url, "n_trials": 8})
    return project


def _storage_url(project: Path) -> str:
    return str(yaml.safe_load((project / "params.yaml").read_text())["tune"]["storage"])


def _study(project: Path) -> optuna.Study:
    # params.yaml holds the usual postgresql:// form; name the installed driver here.
    url = _storage_url(project).replace("postgresql://", "postgresql+psycopg2://")
    (name,) = optuna.get_all_study_names(url)
    return optuna.load_study(study_name=name, storage=url)


def _worker(project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["mlops", "tune", "--worker"],
        cwd=project,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> str:
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr
    return stderr


def _best_line(stderr: str) -> str:
    """What a worker reports last: the study-wide best."""
    return stderr.strip().splitlines()[-1].split("; best ")[1]


def _wait_for_a_trial_by(project: Path, process: subprocess.Popen[str]) -> None:
    """Until ``process`` has drawn a trial in the shared study."""
    name = f"{HOST}:{process.pid}"
    deadline = time.monotonic() + 300
    while True:
        assert process.poll() is None, f"the worker exited {process.returncode} before a trial"
        assert time.monotonic() < deadline, f"{name} drew no trial in 300 s"
        try:
            trials = _study(project).trials
        except ValueError:  # no study yet
            trials = []
        if any(t.user_attrs.get(search.WORKER_ATTR) == name for t in trials):
            return
        time.sleep(0.2)


def test_two_workers_share_one_study(shared: Path) -> None:
    # The first worker is held (SIGSTOP, as a machine under load would) mid-trial until
    # the second has joined, so both take part whichever of them starts faster.
    first = _worker(shared)
    _wait_for_a_trial_by(shared, first)
    first.send_signal(signal.SIGSTOP)
    try:
        second = _worker(shared)
        _wait_for_a_trial_by(shared, second)
    finally:
        first.send_signal(signal.SIGCONT)
    workers = [first, second]
    reports = [_finish(w) for w in workers]
    study = _study(shared)
    trials = study.trials
    # No trial lost: each is finished and numbered without gaps. On a loaded machine the
    # held worker may outlast the heartbeat's grace: the other fails its trial as stale
    # and runs it again, and the held one goes on (a FAIL only where it was retried).
    assert [t.number for t in trials] == list(range(len(trials)))
    retried = {RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials}
    stale = {t.number for t in trials if t.state == TrialState.FAIL}
    assert stale <= retried, (stale, retried)
    done = [t for t in trials if t.number not in stale]
    assert {t.state for t in done} <= {TrialState.COMPLETE, TrialState.PRUNED}
    # Two workers that each check the budget after a trial may both start one more.
    assert 8 <= len(done) <= 9
    # None duplicated: each trial ran in exactly one worker, each drew its own params.
    ran_by = [t.user_attrs[search.WORKER_ATTR] for t in trials]
    assert set(ran_by) == {f"{HOST}:{w.pid}" for w in workers}
    assert len({str(sorted(t.params.items())) for t in done}) == len(done)
    # One best, study-wide: both workers report it, and the DVC-mode run writes it. The
    # earliest wins a tie (Optuna's own best_trial may name a later equal one).
    best = search.best_trial(trials, study.direction.name.lower())
    assert best is not None
    assert _best_line(reports[0]) == _best_line(reports[1])
    assert f"trial {best.number})" in reports[0]
    with contextlib.chdir(shared):
        assert main(["tune"]) == 0
    written = (shared / "models/best_params.json").read_text()
    assert f'"trial": {best.number},' in written
    assert f'"cv_score": {round(best.value, 6)},' in written
    assert len(_study(shared).trials) == len(trials)


def _running_trials(url: str) -> int:
    with contextlib.suppress(psycopg2.Error), contextlib.closing(psycopg2.connect(url)) as db:
        cursor = db.cursor()
        cursor.execute("SELECT count(*) FROM trials WHERE state = 'RUNNING'")
        return int(cursor.fetchone()[0])
    return 0


def test_a_dead_worker_s_trial_is_run_again(shared: Path) -> None:
    edit_params(shared, tune={"n_trials": 4})
    url = _storage_url(shared)
    doomed = _worker(shared)
    deadline = time.monotonic() + 300
    while _running_trials(url) == 0:
        assert time.monotonic() < deadline, "no trial started"
        assert doomed.poll() is None, doomed.communicate()[1]
        time.sleep(0.2)
    doomed.send_signal(signal.SIGKILL)  # no goodbye: only its heartbeat stops
    doomed.wait()
    survivor = _worker(shared)
    _finish(survivor)
    trials = _study(shared).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retried) == 1
    assert retried[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    # What the dead worker had drawn is kept; the rest is drawn when the retry runs.
    assert failed[0].params.items() <= retried[0].params.items()
    assert sum(search.counts_toward_budget(t) for t in trials) == 4
    assert all(t.state != TrialState.RUNNING for t in trials)
