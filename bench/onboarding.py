"""A new user's data, first time: `mlops init` then one `dvc repro`, on every file of
tests/user_files.py, next to a plain scikit-learn model on the same split.

Run from the repository root:
    .venv/bin/python bench/onboarding.py [--only NAME ...]

For each file: a pristine copy of the template (the committed tree, git archive),
`mlops init --data FILE --target COLUMN` with the file outside the project, then
`dvc repro` once. Prints per file the task init inferred, whether that one run
reached a gate verdict, the verdict and the checks that failed, the seconds each
step took, and the headline metric (evaluate.metric on the test split) of the
pipeline's model beside a plain HistGradientBoosting model (scikit-learn's
defaults, categories ordinal-encoded, the same features) fitted on the same
training split. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

from mlops.io import files
from mlops.tasks.metrics import get_metric
from mlops.tasks.task import get_task

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))  # the data sets the tests use
from tests.user_files import USER_FILES, UserFile, write  # noqa: E402


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}


def _run(command: list[str], cwd: Path) -> tuple[int, float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=cwd, env=_env(), capture_output=True, text=True)
    return done.returncode, time.perf_counter() - started, (done.stdout + done.stderr).strip()


def template(target: Path) -> Path:
    """The committed tree of HEAD as a new git + DVC repository, with no outputs."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    (target / "dvc.lock").unlink(missing_ok=True)
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q", "-f"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "t"],
    ):
        subprocess.run(command, cwd=target, env=_env(), check=True, capture_output=True)
    return target


def plain_model(project: Path) -> float:
    """evaluate.metric of scikit-learn's HistGradientBoosting at its defaults, fitted on the
    pipeline's training split with the model card's features, scored on its test split."""
    params = files.load_params(project / "params.yaml")
    task = get_task(params.data.task)
    card = json.loads((project / "models/model_card.json").read_text())
    features = [*card["features"]["numeric"], *card["features"]["categorical"]]
    target = card["target"]
    train = pd.read_parquet(project / "data/split/train.parquet")
    test = pd.read_parquet(project / "data/split/test.parquet")
    encoder = make_column_transformer(
        (
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
            make_column_selector(dtype_exclude="number"),
        ),
        remainder="passthrough",
    ).set_output(transform="pandas")
    estimator = (
        HistGradientBoostingClassifier(random_state=0)
        if task.is_classification
        else HistGradientBoostingRegressor(random_state=0)
    )
    model = make_pipeline(encoder, estimator).fit(train[features], train[target])
    metric = get_metric(params.evaluate.metric, params.data.task)
    prediction = task.predict(model, test[features], params.evaluate.threshold)
    return metric(test[target].to_numpy(), prediction)


def onboard(user_file: UserFile, folder: Path) -> dict[str, Any]:
    project = template(folder / "project")
    data = write(user_file, folder / "downloads")
    init = [
        "mlops", "init", "--data", str(data), "--target", user_file.target, *user_file.options,
    ]  # fmt: skip
    code, init_s, said = _run(init, project)
    row: dict[str, Any] = {"file": user_file.name, "init_s": init_s}
    if code != 0:
        return row | {"reached": False, "why": said.splitlines()[-1]}
    code, repro_s, said = _run(["dvc", "repro"], project)
    row |= {"repro_s": repro_s}
    gate_path = project / "reports/gate.json"
    if code != 0 or not gate_path.exists():
        return row | {"reached": False, "why": said.splitlines()[-1]}
    gate = json.loads(gate_path.read_text())
    metrics = json.loads((project / "reports/metrics.json").read_text())
    params = yaml.safe_load((project / "params.yaml").read_text())
    metric = params["evaluate"]["metric"]
    return row | {
        "reached": True,
        "task": params["data"]["task"],
        "passed": gate["passed"],
        "failed": [c["name"] for c in gate["checks"] if c["verdict"] == "fail"],
        "metric": metric,
        "pipeline": metrics[metric],
        "plain": plain_model(project),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="file names (default: all)")
    args = parser.parse_args()
    chosen = [f for f in USER_FILES if not args.only or f.name in args.only]
    rows = []
    with tempfile.TemporaryDirectory(prefix="onboarding-") as tmp:
        for user_file in chosen:
            row = onboard(user_file, Path(tmp) / user_file.name)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(
        f"\n{'file':<22} {'task':<11} runs verdict  {'metric':<9} pipeline  plain-sklearn  "
        "init s  repro s  failed checks"
    )
    for row in rows:
        if not row["reached"]:
            print(f"{row['file']:<22} no verdict in one run: {row['why']}")
            continue
        verdict = "blessed" if row["passed"] else "refused"
        print(
            f"{row['file']:<22} {row['task']:<11} 1    {verdict:<8} {row['metric']:<9} "
            f"{row['pipeline']:<9.4f} {row['plain']:<14.4f} {row['init_s']:<7.1f} "
            f"{row['repro_s']:<8.1f} {', '.join(row['failed']) or '-'}"
        )


if __name__ == "__main__":
    main()
