"""Stage ``train``: fit the pipeline on the training split (or a sample of it,
params.yaml train.max_rows) -> model and model card."""

from __future__ import annotations

import argparse

from mlops.config import PATHS
from mlops.io import files, modelfile, runs

SUMMARY = "fit the model pipeline -> models/model.skops and models/model_card.json"


def run(args: argparse.Namespace) -> None:
    params = files.load_params(args.params)
    train = files.read_parquet(PATHS.train, "training split (run `dvc repro split`)")
    plan_document = files.read_json(PATHS.imputation, "imputation plan")
    best = files.read_json(PATHS.best_params, "best params (run `dvc repro tune`)")
    # Imported once params and inputs are checked (see mlops.cli): scikit-learn is slow.
    from mlops.data.splitting import fitting_rows
    from mlops.features.imputation import ImputationPlan
    from mlops.features.pipeline import build_pipeline, model_card
    from mlops.tasks.task import get_task

    task = get_task(params.data.task)
    plan = ImputationPlan.from_dict(plan_document)
    method = params.train.calibration
    calibration = None if method is None else (method, params.tune.cv_folds)
    pipeline = build_pipeline(
        plan, best["family"], best["params"], params.seed, task.name, calibration=calibration
    )
    rows = fitting_rows(train, plan.target, params.train.max_rows, params.seed, task.name)
    pipeline.fit(rows[plan.names()], rows[plan.target])
    card = model_card(
        best=best,
        plan=plan,
        rows=len(rows),
        split_rows=len(train),
        data_md5=files.file_md5(PATHS.train),
        versions=modelfile.library_versions(),
        task=task.name,
        classes=task.classes(pipeline),
        calibration=calibration,
    )
    modelfile.dump(PATHS.model, pipeline)
    files.write_json(PATHS.model_card, card)
    runs.record_run("train", {"model_md5": files.file_md5(PATHS.model)})
