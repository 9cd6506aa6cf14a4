"""Facts of a run (when it finished, from which checkout), kept out of tracked outputs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.config import PATHS
from mlops.io.files import parse_yaml_bytes, read_optional, write_json
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


def profiled_latency(model_md5: str, folder: Path | None = None) -> dict[str, float] | None:
    """The single-row predict time {"p50", "p95", "rows"} (ms) the profile stage measured
    on this machine, when it measured the model whose md5 is ``model_md5``; else None."""
    path = (folder or PATHS.runs_dir) / "profile.json"
    record = parse_yaml_bytes(read_optional(path))
    if not isinstance(record, dict) or record.get("model_md5") != model_md5:
        return None
    latency = record.get("latency_ms")
    return dict(latency) if isinstance(latency, dict) else None
