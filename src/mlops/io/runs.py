"""Facts of a run (when it finished, from which checkout), kept out of tracked outputs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.config import PATHS
from mlops.io.files import write_json
from mlops.io.git import revision


def record_run(stage: str, facts: Mapping[str, Any], folder: Path | None = None) -> None:
    """Write ``stage``'s run record: when it finished, from which checkout, and ``facts``.

    Durations and times differ on every run; recorded here, not in the stage's
    outputs, they leave dvc.lock and the committed reports unchanged by a rerun.
    """
    record = {
        "stage": stage,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_revision": revision(),
        **facts,
    }
    write_json((folder or PATHS.runs_dir) / f"{stage}.json", record)
