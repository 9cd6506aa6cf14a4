"""Where one no-op `dvc repro` spends its time, by DVC phase (run inside a DVC repo).

Usage, from the repository to measure:  python <path>/bench/dvc_phases.py

Prints one JSON object: for each phase, [milliseconds, calls], plus "dvc repro" (the
whole command in-process, after `import dvc.cli`: the imports it triggers are
included) and "other" (what no phase covers: DVC's lazy imports, the repo and
config set-up, the DAG checks).
bench/pipeline.py --breakdown runs it in each pipeline it compares.

The phases wrap DVC internals (checked with DVC 3.67); a DVC that renames one
stops this script with a message naming it, rather than measuring the wrong thing.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from dvc.cli import main as dvc_main

# phase -> (module, attribute path) of the function timed. None overlaps another:
# stage building happens between the loads, deps and outs are checked after it.
PHASES = {
    "dvc.yaml read + schema": ("dvc.dvcfile", "ProjectFile._load"),
    "dvc.lock read + schema": ("dvc.dvcfile", "Lockfile.load"),
    "params.yaml as interpolation context": ("dvc.parsing", "DataResolver.__init__"),
    "stage definitions resolved (${...})": ("dvc.parsing", "DataResolver.resolve_one"),
    "deps and outs built": ("dvc.output", "Output.__init__"),
    "params.yaml read per stage": ("dvc.dependency.param", "ParamsDependency.read_params"),
    "file deps and outs checked": ("dvc.output", "Output.status"),
}

spent: dict[str, float] = dict.fromkeys(PHASES, 0.0)
calls: Counter[str] = Counter()


def timed(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    depth = 0

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal depth
        depth += 1
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            depth -= 1
            if depth == 0:  # a recursive call is counted once, in its outermost frame
                spent[phase] += time.perf_counter() - start
                calls[phase] += 1

    return wrapper


def instrument() -> None:
    for phase, (module_name, path) in PHASES.items():
        owner_name, _, attribute = path.rpartition(".")
        try:
            owner = getattr(importlib.import_module(module_name), owner_name)
            function = getattr(owner, attribute)  # may be inherited: wrapped on ``owner``
        except (ImportError, AttributeError):
            sys.exit(f"dvc_phases.py: this DVC has no {module_name}.{path} to time")
        setattr(owner, attribute, timed(phase, function))


def main() -> None:
    instrument()
    start = time.perf_counter()
    code = dvc_main(["repro", "--quiet"])
    total = time.perf_counter() - start
    if code != 0:
        sys.exit(f"dvc_phases.py: `dvc repro` exited {code}")
    report: dict[str, list[float]] = {
        phase: [round(spent[phase] * 1000, 1), calls[phase]] for phase in PHASES
    }
    report["other"] = [round((total - sum(spent.values())) * 1000, 1), 0]
    report["dvc repro"] = [round(total * 1000, 1), 1]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
