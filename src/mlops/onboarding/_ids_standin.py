"""STAND-IN for ``mlops.data.identifiers.find_ids`` (helper B's branch, issue #18).

Delete this module once that is merged, and import ``find_ids`` from there in
``mlops.stages.init``. Same signature; a minimal rule: a column unique per row
(text or whole numbers), or named like an id with near-unique values.
"""

from __future__ import annotations

import pandas as pd

_ID_NAMES = frozenset({"id", "index", "rownames", "row", "row_id", "key", "uuid", "unnamed_0"})
_NEAR_UNIQUE = 0.95


def find_ids(frame: pd.DataFrame, target: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in frame.columns:
        column = frame[name]
        if name == target or column.isna().any():
            continue
        unique = column.nunique() / max(len(column), 1)
        integral = pd.api.types.is_numeric_dtype(column) and bool((column == column.round()).all())
        key_like = integral or not pd.api.types.is_numeric_dtype(column)
        if key_like and unique == 1.0 and len(column) > 1:
            found[str(name)] = "unique per row"
        elif (name in _ID_NAMES or str(name).endswith("_id")) and unique >= _NEAR_UNIQUE:
            found[str(name)] = f"named like an id, {unique:.0%} distinct values"
    return found
