"""Fault injection: SIGKILL `dvc repro -f` at random moments, recover as `make repro` does,
and compare every output's bytes with the clean run's.

    python bench/fault_injection.py [--kills 10] [--lock-kills 3] [--seed 0]

Builds a throwaway project trained on a 2,500-row sample (the tests' trained
project), times one clean `dvc repro -f`, then for each kill: drops the tuning
study (so a kill in tune lands mid-search), starts `dvc repro -f` in its own
process group, SIGKILLs the whole group after a random delay within the clean
run's duration, runs `mlops recover` and `dvc repro` (no other step), and checks
every declared output and dvc.lock against the clean run. ``--lock-kills`` more
kills land the moment dvc.lock shrinks (DVC rewriting it in place).
Prints one line per kill and the totals.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import run  # noqa: E402
from tests.integration.test_recovery import _kill_when, _lock_shrinks, outputs  # noqa: E402
from tests.model.trained import build  # noqa: E402

Ready = Callable[[str], bool]


def one_kill(template: Path, work: Path, make: Callable[[Path], Ready]) -> dict[str, object]:
    project = Path(shutil.copytree(template, work, symlinks=True))
    lock = (project / "dvc.lock").read_bytes()
    clean = outputs(project)
    run(["mlops", "recover"], project)
    (project / "reports/tuning/study.db").unlink(missing_ok=True)
    output = _kill_when(project, make(project))
    stages = [line.split("'")[1] for line in output.splitlines() if "Running stage" in line]
    cut = (project / "dvc.lock").read_bytes() != lock
    recovered = run(["mlops", "recover"], project, check=False)
    repro = run(["dvc", "repro"], project, check=False)
    result = {
        "stage": stages[-1] if stages else "(before the first stage)",
        "lock_changed_by_kill": cut,
        "recover_said": recovered.stderr.strip(),
        "recovered": recovered.returncode == 0 and repro.returncode == 0,
        "identical": outputs(project) == clean and (project / "dvc.lock").read_bytes() == lock,
    }
    shutil.rmtree(project)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--lock-kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        template = build(Path(tmp) / "template")
        start = time.perf_counter()
        run(["dvc", "repro", "-f"], template)
        clean_s = time.perf_counter() - start
        print(f"clean `dvc repro -f`: {clean_s:.1f} s")
        plans: list[tuple[str, Callable[[Path], Ready]]] = []
        for _ in range(args.kills):
            delay = rng.uniform(0.2, clean_s)
            plans.append((f"after {delay:.1f} s", lambda _, d=delay: _after(d)))
        plans += [("when dvc.lock shrinks", _lock_shrinks)] * args.lock_kills  # type: ignore[list-item]
        results = []
        for n, (label, make) in enumerate(plans):
            result = one_kill(template, Path(tmp) / f"kill{n}", make)
            results.append(result)
            print(f"kill {n + 1:2d} {label:>22}: {result}")
        print(
            f"kills: {len(results)}, recovered with no manual step: "
            f"{sum(bool(r['recovered']) for r in results)}, outputs byte-identical: "
            f"{sum(bool(r['identical']) for r in results)}, dvc.lock left unusable and "
            f"repaired: {sum('unusable' in str(r['recover_said']) for r in results)}"
        )


def _after(delay: float) -> Ready:
    """Ready ``delay`` seconds after it is first asked (the run has just started)."""
    start: list[float] = []

    def ready(output: str) -> bool:
        if not start:
            start.append(time.monotonic())
        return time.monotonic() - start[0] >= delay

    return ready


if __name__ == "__main__":
    main()
