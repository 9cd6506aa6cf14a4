"""Monitoring's error rates and cost: false alarms and detections of the drift checks per
task, and the time and memory to monitor a million logged rows.

Usage:  python bench/monitoring.py rates [--windows 200]
        python bench/monitoring.py scale [--rows 1000000]

``rates``: for each task (scikit-learn's breast cancer, wine and diabetes with a
logistic or ridge model, tests/unit/monitoring_cases.py), windows bootstrapped from the
population the reference profiles: undrifted, every numeric feature shifted by half a
standard deviation, and (binary) category "a" of ``grade`` at twice its share; for 200
rows (KS / chi-squared) and 2,000 rows (Wasserstein / Jensen-Shannon); and windows of
tilted answers (a classifier's first class predicted twice as often, a score or value
above its median twice as likely: ``Case.tilted``). Prints the share
of windows flagged: per numeric feature (the mean over them), for the dataset, for the
prediction (the model's answers to the window, shifted or not).

``scale``: a synthetic log of ``--rows`` rows x 15 features (12 numbers, 3 categories)
from a binary model, written by the real ``log_lines``; then the seconds to read the
window, test drift, check the answers and estimate performance, and the peak memory;
then, side by side, the whole ``mlops monitor`` command on the same log in a project
folder of its own (params.yaml, the manifest, the reference, the log: what monitoring
reads), in a child process: its wall time and peak memory, reports included.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the cases the tests use

from mlops.monitoring.drift import Thresholds, column_drift, feature_drift, prediction_drift  # noqa: E402
from mlops.monitoring.logs import Window, read_window  # noqa: E402
from mlops.monitoring.performance import estimate_performance  # noqa: E402
from mlops.monitoring.reference import build_reference  # noqa: E402
from mlops.monitoring.stability import stability  # noqa: E402
from mlops.serving import service  # noqa: E402
from mlops.tasks.metrics import Prediction  # noqa: E402
from mlops.tasks.task import get_task  # noqa: E402
from tests.unit.monitoring_cases import TASK_NAMES, Case, case  # noqa: E402


def _flagged(c: Case, rows: int, windows: int, shift: float) -> dict[str, float]:
    numeric = [n for n, p in c.reference["features"].items() if p["kind"] == "numeric"]
    spread = c.features[numeric].std()
    features, dataset, prediction = [], [], []
    for seed in range(windows):
        frame, outputs, _ = c.window(rows, seed)
        if shift:
            frame = frame.assign(**{n: frame[n] + shift * spread[n] for n in numeric})
            outputs = c.answer(frame)  # the model answers the shifted population
        found = feature_drift(frame, c.reference, Thresholds())
        features.append(np.mean([found["features"][n]["drifted"] for n in numeric]))
        dataset.append(found["drifted"])
        prediction.append(prediction_drift(outputs, c.reference, Thresholds())["drifted"])
    return {
        "feature": round(float(np.mean(features)), 3),
        "dataset": round(float(np.mean(dataset)), 3),
        "prediction": round(float(np.mean(prediction)), 3),
    }


def _category(rows: int, windows: int) -> dict[str, float]:
    c = case("binary")
    profile = c.reference["features"]["grade"]
    is_a = (c.features["grade"] == "a").to_numpy()
    doubled = 2 * profile["frequencies"]["a"]
    weights = np.where(is_a, doubled / is_a.sum(), (1 - doubled) / (~is_a).sum())
    rng = np.random.default_rng(0)
    flagged = [
        column_drift(
            c.features["grade"].iloc[rng.choice(len(weights), rows, p=weights)],
            profile,
            "grade",
            Thresholds(),
        )["drifted"]
        for _ in range(windows)
    ]
    return {"grade": round(float(np.mean(flagged)), 3)}


def _tilt(c: Case, rows: int, windows: int) -> dict[str, float]:
    weights = c.tilted()
    flagged = []
    for seed in range(windows):
        drawn = np.random.default_rng(seed).choice(len(weights), rows, p=weights)
        outputs = c.outputs.iloc[drawn].reset_index(drop=True)
        flagged.append(prediction_drift(outputs, c.reference, Thresholds())["drifted"])
    return {"prediction": round(float(np.mean(flagged)), 3)}


def rates(windows: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for task in TASK_NAMES:
        for rows in (200, 2000):
            found[f"{task}, {rows} rows"] = {
                "no drift (false alarms)": _flagged(case(task), rows, windows, 0.0),
                "mean + 0.5 sd (detections)": _flagged(case(task), rows, windows, 0.5),
                "answers tilted (detections)": _tilt(case(task), rows, windows),
            }
    for rows in (200, 2000):
        found[f"binary, {rows} rows"]["category a x2 (detections)"] = _category(rows, windows)
    return found


VERSION = "v1.0.0"


def scale(rows: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(rows, 12)), columns=[f"x{i}" for i in range(12)])
    for i in range(3):
        features[f"c{i}"] = rng.choice(list("abcdefgh"), rows)
    task = get_task("binary")
    positive = rng.random(rows)
    answer = Prediction(
        (positive >= 0.5).astype("int64"), np.column_stack([1 - positive, positive]), (0, 1)
    )
    held_out = np.arange(min(rows, 50_000))
    reference = build_reference(
        features.iloc[held_out], answer.take(held_out), task, {"roc_auc": 0.8}, 0
    )
    production = service.Production(None, VERSION, "0" * 32, tuple(features.columns), task, 0.5)
    outputs = pd.DataFrame(task.columns(answer)).assign(**{service.IMPUTED: ""})
    log = service.log_lines(features, outputs, production, "bench", datetime.now(UTC)).encode()
    del features, outputs
    timings: dict[str, float] = {"log MB": round(len(log) / 1e6, 1)}
    start = time.perf_counter()
    window = read_window(
        [("log", log)],
        list(reference["features"]),
        list(reference["prediction"]["columns"]),
        Window(),
    )
    steps = {
        "drift": lambda: feature_drift(window.inputs, reference, Thresholds()),
        "prediction drift": lambda: prediction_drift(window.outputs, reference, Thresholds()),
        "stability": lambda: stability(window.outputs, reference),
        "estimated performance": lambda: estimate_performance(
            task, task.from_columns(window.outputs), reference["metrics"], {}, 0
        ),
    }
    timings["read s"] = round(time.perf_counter() - start, 2)
    for name, step in steps.items():
        begun = time.perf_counter()
        step()
        timings[f"{name} s"] = round(time.perf_counter() - begun, 2)
    timings["total s"] = round(time.perf_counter() - start, 2)
    # ru_maxrss is in KiB on Linux; it includes making the synthetic log.
    timings["peak MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return timings | _command(log, reference)


def _command(log: bytes, reference: dict[str, Any]) -> dict[str, float]:
    """``mlops monitor`` on ``log`` in a project folder holding only what it reads.

    Its peak memory comes from GNU time (``%M``), not from this process's RUSAGE_CHILDREN:
    a child started from this process counts this process's memory up to its exec."""
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["data"] |= {"target": "target", "positive_class": [1], "negative_class": [0]}
        params["monitor"]["max_data_age_days"] = None  # no git history here
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        (project / "models").mkdir()
        manifest = {
            "version": VERSION,
            "git_revision": "0" * 40,
            "model_md5": "0" * 32,
            "metrics": {},
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (project / "models/production.json").write_text(json.dumps(manifest))
        (project / "models/reference.json").write_text(json.dumps(reference))
        logs = project / params["serve"]["log_dir"]
        logs.mkdir(parents=True)
        (logs / service.log_name(datetime.now(UTC).date())).write_bytes(log)
        mlops = Path(sys.executable).with_name("mlops")
        peak_file = project / "peak.txt"
        command = ["/usr/bin/time", "-f", "%M", "-o", str(peak_file), str(mlops), "monitor"]
        began = time.perf_counter()
        done = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - began
        if done.returncode not in (0, 1):
            raise SystemExit(f"mlops monitor failed: {done.stderr.strip()}")
        peak_kib = int(peak_file.read_text().split()[-1])
        peak_mb = round(peak_kib / 1024)
        return {"mlops monitor s": round(seconds, 2), "mlops monitor peak MB": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["rates", "scale"])
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    found = rates(args.windows) if args.what == "rates" else scale(args.rows)
    print(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
