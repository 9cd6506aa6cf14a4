"""Small public data for the multiclass and regression tasks: scikit-learn's bundled wine
(178 wines, 3 cultivars) and diabetes (442 patients, a disease progression score),
as a user's source file would hold them, and the ``data`` params that describe them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sklearn.datasets import load_diabetes, load_wine

from mlops.config import DataConfig, Params
from mlops.tasks.families import families_for
from mlops.tasks.task import get_task

WINE_TARGET = "cultivar"
DIABETES_TARGET = "progression"


def wine() -> pd.DataFrame:
    """Wine with its cultivar as text labels (class_0, class_1, class_2: 59, 71 and 48 rows)."""
    bunch = load_wine(as_frame=True)
    labels = bunch.target.map(dict(enumerate(bunch.target_names)))
    return bunch.data.assign(**{WINE_TARGET: labels})


def diabetes() -> pd.DataFrame:
    """Diabetes with its progression score (25 to 346) as a number."""
    bunch = load_diabetes(as_frame=True)
    return bunch.data.assign(**{DIABETES_TARGET: bunch.target})


def user_file(task: str) -> tuple[pd.DataFrame, str]:
    """(the data set as a user's file holds it, its target column): wine with its cultivar
    as text, or diabetes unscaled with ``sex`` as text (a categorical feature and a slice)."""
    if task == "multiclass":
        return wine(), WINE_TARGET
    bunch = load_diabetes(as_frame=True, scaled=False)
    sex = bunch.data["sex"].map({1.0: "female", 2.0: "male"})
    return bunch.data.assign(sex=sex, **{DIABETES_TARGET: bunch.target}), DIABETES_TARGET


def data_params(task: str, source: str = "data.csv", **changes: Any) -> dict[str, Any]:
    """params.yaml ``data`` for a headed CSV of ``wine()`` (multiclass) or ``diabetes()``."""
    target = WINE_TARGET if task == "multiclass" else DIABETES_TARGET
    return {
        "source": source,
        "header": True,
        "columns": None,
        "target": target,
        "task": task,
        "positive_class": None,
        "negative_class": None,
        "classes": None,
        **changes,
    }


def data_config(params: Params, task: str, **changes: Any) -> DataConfig:
    """The demo's ``data`` params turned to ``task`` (validated like params.yaml)."""
    return DataConfig.model_validate(params.data.model_dump() | data_params(task, **changes))


def retask(project: Path, task: str, **data: Any) -> None:
    """Turn the project's params.yaml to ``task`` on a headed CSV (``data`` overrides):
    every metric, family and gate name set to what the task accepts."""
    path = project / "params.yaml"
    document = yaml.safe_load(path.read_text())
    metric = get_task(task).default_metric
    document["data"] |= data_params(task, **data)
    document["tune"] |= {
        "metric": metric,
        "families": [f for f in document["tune"]["families"] if f in families_for(task)],
    }
    document["evaluate"]["metric"] = metric
    document["validate"]["importance"]["scoring"] = metric
    document["gate"] |= {"minimum": {}, "maximum": {}, "baseline_margin": {}, "max_degradation": {}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
