"""The labels file that `mlops monitor --labels` and `mlops respond --labels` read: the
outcomes known so far, by the request id serving logged."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops.config import DataConfig
from mlops.errors import UsageError
from mlops.io import tables

if TYPE_CHECKING:
    import pandas as pd


def read_labels(path: Path, config: DataConfig) -> pd.DataFrame:
    """``path`` read as any ``--input`` file is (CSV, Parquet, Feather or JSON, told by
    content; a CSV's separator, decimal mark and header sniffed; names normalised):
    ``request_id``, as the text the file holds ("00123" stays so), and the target under
    its normalised name. A missing column is a UsageError naming both."""
    import pandas as pd

    # pandas (through ingestion): not at start-up (see mlops.cli).
    from mlops.data.ingestion import csv_layout, normalise_columns, normalise_name

    layout = csv_layout(config, ["request_id"])
    frame = normalise_columns(tables.read_input(path, config, layout))
    target = normalise_name(config.target)
    missing = [c for c in ("request_id", target) if c not in frame.columns]
    if missing:
        raise UsageError(
            f"{path}: labels file lacks column(s) {', '.join(missing)} "
            f"(expected request_id and the target, {target})"
        )
    ids = frame["request_id"]
    if not tables.is_typed(path):  # a CSV's ids as written, not parsed as numbers
        ids = normalise_columns(tables.read_input(path, config, layout, as_text=True))["request_id"]
    return pd.DataFrame(
        {"request_id": ids.astype(str).to_numpy(), target: frame[target].to_numpy()}
    )
