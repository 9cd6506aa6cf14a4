"""The names of the checks `mlops monitor` reports, stated once: the monitor writes a finding
per check (monitoring.checks) and the respond policy's rules test them (monitoring.policy).

A module of its own, with no heavy imports, so that `mlops respond` can check its
policy before it loads pandas.
"""

from __future__ import annotations

from typing import Literal, get_args

Check = Literal[
    "input_quality",
    "drift",
    "prediction_drift",
    "performance",
    "estimated_performance",
    "stability",
    "staleness",
    "latency",
]
CHECKS: frozenset[str] = frozenset(get_args(Check))
