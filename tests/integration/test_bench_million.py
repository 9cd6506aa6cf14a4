"""bench/million.py's data generator: the demo's shape at any size, seeded."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pandas as pd
import pytest

from mlops.config import Params
from mlops.data.ingestion import ingest, normalise_name
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def million() -> ModuleType:
    spec = importlib.util.spec_from_file_location("million", ROOT / "bench" / "million.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo(params: Params) -> pd.DataFrame:
    """The demo source as the pipeline reads it, before ingestion."""
    from mlops.io import tables

    return tables.read_source(
        params.data.model_copy(update={"source": str(ROOT / params.data.source)})
    )


def test_the_requested_rows_with_the_demos_columns_and_dtypes(
    million: ModuleType, demo: pd.DataFrame, params: Params
) -> None:
    target = normalise_name(params.data.target)
    generated = million.generate(demo, 5000, 0, target)

    assert len(generated) == 5000
    assert list(generated.columns) == list(demo.columns)
    assert generated.dtypes.to_dict() == demo.dtypes.to_dict()
    # What the pipeline sees after ingestion is typed alike too.
    assert ingest(generated, params.data).dtypes.equals(ingest(demo.head(5000), params.data).dtypes)
    assert generated.equals(million.generate(demo, 5000, 0, target))
    assert not generated.equals(million.generate(demo, 5000, 1, target))


def test_numbers_are_jittered_within_range_and_categories_stay_known(
    million: ModuleType, demo: pd.DataFrame, params: Params
) -> None:
    target = normalise_name(params.data.target)
    generated = million.generate(demo, 20_000, 0, target)
    numeric = demo.select_dtypes("number").columns
    categorical = demo.columns.difference(numeric)

    # Resampling alone would leave only the demo's own values; the jitter adds others.
    new_values = [(~generated[c].isin(demo[c])).mean() for c in numeric]
    assert max(new_values) > 0.1
    assert (generated[numeric].min() >= demo[numeric].min()).all()
    assert (generated[numeric].max() <= demo[numeric].max()).all()
    for column in categorical:
        assert set(generated[column].dropna()) <= set(demo[column].dropna())
    # The label is never altered: its shares stay the demo's, within sampling noise.
    label = next(c for c in demo.columns if normalise_name(c) == target)
    shares = generated[label].value_counts(normalize=True)
    assert (shares - demo[label].value_counts(normalize=True)).abs().max() < 0.02
