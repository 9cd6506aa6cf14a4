"""The tuning study's database: an Optuna RDB storage (SQLite by default, or any URL)."""

from __future__ import annotations

import gc
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.errors import UsageError

if TYPE_CHECKING:
    import optuna


# A tune worker that stops sending heartbeats for GRACE_SECONDS is presumed dead: its
# running trial is failed and queued once more, so no trial is lost.
HEARTBEAT_SECONDS = 5


GRACE_SECONDS = 30


STORAGE_ATTEMPTS = 3


def open_storage(url: str | None, default: Path, source: Path) -> optuna.storages.RDBStorage:
    """The Optuna study database named by ``tune.storage`` (``url``), or the SQLite file
    ``default`` when it names none; one line naming ``tune.storage`` in ``source`` (the
    params file) if it cannot be opened."""
    import sqlalchemy

    if url is None:
        default.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{default}"
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the locked driver is psycopg2.
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return _rdb_storage(url)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            if attempt == STORAGE_ATTEMPTS - 1 or not _lost_creation_race(exc):
                raise _storage_error(url, exc, source) from None
        # The failed attempt's engine is garbage in reference cycles, with a connection
        # that may hold SQLite's write lock until it is collected: every worker,
        # this one's next attempt included, would wait on it.
        gc.collect()
        time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        # Heartbeats are marked experimental, yet they are how a dead worker's trial
        # is noticed and run again.
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=_engine_kwargs(url),
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )


def _lost_creation_race(exc: Exception) -> bool:
    """Whether ``exc`` is a worker losing the race to create an empty database's tables
    to another that started with it (the loser finds them on the next attempt):
    PostgreSQL's duplicate key or table, SQLite's "table ... already exists"."""
    import sqlalchemy

    if isinstance(exc, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.ProgrammingError):
        return True
    return isinstance(exc, sqlalchemy.exc.OperationalError) and "already exists" in str(exc)


def _storage_error(url: str, exc: Exception, source: Path) -> UsageError:
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return UsageError(f"{source}: tune.storage: cannot open {_hide_password(url)} ({detail})")


def _engine_kwargs(url: str) -> dict[str, object]:
    # Wait for a lock instead of failing when local workers share one SQLite file,
    # and give up on an unreachable server in seconds rather than minutes.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 10}}
    return {}


def _hide_password(url: str) -> str:
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return repr(url)
