"""Stage ``profile``: what monitoring compares production with -> models/reference.json.

The reference profile (mlops.monitoring.reference) of the model just evaluated:
its features on the training split (a seeded sample of ``monitor.reference_rows``
values per numeric feature), its answers on the held-out test split, the test
metrics and the model file's md5. It is a git-tracked output (``cache: false``)
so ``mlops monitor`` needs neither the training data nor the DVC cache, and it is
byte-identical for the same inputs (no time, no machine in it), as every pipeline
output is: ``dvc repro -f`` leaves ``git status`` clean.

The serving-latency baseline cannot be reproducible: the median and 95th
percentile of the model's own single-row predict on (up to 200, within about 3
seconds) test rows depend on the machine and its load. So it is measured here but
kept out of every output: it goes to this stage's run record,
reports/runs/profile.json (git-ignored, with the machine that measured it), as
durations and times do. A monitor on the machine that trained reads it there; one
that runs elsewhere has no comparable number anyway (a CI runner is not the
serving host), and the better baseline is the one measured where the model
serves: ``single_row_latency`` is the function for it (e.g. at promotion, into
the production manifest).
"""

from __future__ import annotations

import argparse
import os
import platform

from mlops.config import PATHS
from mlops.io import files, modelfile, runs

SUMMARY = "reference profile for monitoring -> models/reference.json"


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    train = files.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    test = files.read_parquet(PATHS.test, "test split (run `dvc repro split`)")
    metrics = files.read_json(PATHS.metrics, "test metrics (run `dvc repro evaluate`)")
    # Imported once params and inputs are checked (see mlops.cli): scikit-learn is slow.
    from mlops.monitoring.reference import build_reference, single_row_latency
    from mlops.tasks.families import trusted_types
    from mlops.tasks.task import get_task

    model = modelfile.load_verified(PATHS.model, trusted_types(), PATHS.dvc_lock)
    model_md5 = files.file_md5(PATHS.model)
    task = get_task(params.data.task)
    threshold = params.evaluate.threshold
    features = [str(name) for name in model.feature_names_in_]
    reference = build_reference(
        train[features],
        task.predict(model, test[features], threshold),
        task,
        metrics,
        params.seed,
        sample_size=params.monitor.reference_rows,
        model_md5=model_md5,
    )
    files.write_json(PATHS.reference, reference)
    latency = single_row_latency(lambda row: task.predict(model, row, threshold), test[features])
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    runs.record_run("profile", {"model_md5": model_md5, "latency_ms": latency, "machine": machine})
    print(
        f"reference profile of {len(features)} features -> {PATHS.reference}; single-row "
        f"predict p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms "
        f"(this machine; -> {PATHS.runs_dir / 'profile.json'})"
    )
