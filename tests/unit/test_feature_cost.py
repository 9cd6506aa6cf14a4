"""Feature cost: what the probe model loses in latency and bytes without each feature."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pandas as pd
import pytest
import yaml

from mlops.config import CostConfig
from mlops.data import cost
from mlops.data.contract import acquisition_cost, load_contract
from mlops.errors import UsageError
from tests.conftest import ROOT

CONFIG = CostConfig(enabled=True, fit_rows=500, timed_rows=3)
FEATURES = ["age", "education", "occupation", "capital_gain"]


def ticking(step_ns: int) -> Callable[[], int]:
    """A clock that moves ``step_ns`` per reading: every timed call lasts exactly that."""
    counter = itertools.count(step=step_ns)
    return lambda: next(counter)


def measure(train: pd.DataFrame, seed: int = 0) -> tuple[cost.Footprint, dict[str, cost.Cost]]:
    return cost.measure(
        train, FEATURES, "income", CONFIG, {"age": 0.5}, seed=seed, task_name="binary",
        clock=ticking(2000),
    )  # fmt: skip


def test_each_feature_costs_model_bytes_and_its_declared_acquisition(
    adult_sample: pd.DataFrame,
) -> None:
    full, costs = measure(adult_sample)
    assert list(costs) == FEATURES
    assert full.bytes > 0
    # Refitted without a feature, the model may grow larger trees on the others: a
    # difference, positive or not, and far below the whole model's size.
    assert all(abs(c.bytes) < full.bytes / 10 for c in costs.values())
    # A 14-category feature's encoder stores its categories: more bytes than one number.
    assert costs["occupation"].bytes > costs["capital_gain"].bytes
    assert costs["age"].acquisition == 0.5
    assert costs["education"].acquisition is None
    # Every prediction took 2 us on the fake clock: the median says so, and no feature
    # changes it.
    assert full.latency_us == 2.0
    assert {c.latency_us for c in costs.values()} == {0.0}


def test_the_same_seed_gives_the_same_model_sizes(adult_sample: pd.DataFrame) -> None:
    first = {name: c.bytes for name, c in measure(adult_sample, seed=3)[1].items()}
    again = {name: c.bytes for name, c in measure(adult_sample, seed=3)[1].items()}
    assert first == again


def test_the_real_clock_gives_positive_latencies(adult_sample: pd.DataFrame) -> None:
    full, _ = cost.measure(adult_sample, FEATURES, "income", CONFIG, {}, seed=0, task_name="binary")
    assert full.latency_us > 0


def contract_with(metadata: object) -> dict[str, object]:
    document = yaml.safe_load((ROOT / "data/schema.yaml").read_text())
    document["columns"]["age"]["metadata"] = metadata
    return document


def test_the_contract_declares_acquisition_costs() -> None:
    schema = load_contract(contract_with({"cost": 2, "owner": "survey team"}), "schema.yaml")
    assert acquisition_cost(schema, "age") == 2.0
    assert acquisition_cost(schema, "fnlwgt") is None
    assert schema.columns["age"].metadata == {"cost": 2, "owner": "survey team"}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"cost": -1}, "schema.yaml: column 'age': metadata.cost must be a number >= 0, got -1"),
        ({"cost": "cheap"}, "metadata.cost must be a number >= 0, got 'cheap'"),
        ({"cost": True}, "metadata.cost must be a number >= 0, got True"),
        ([1], "schema.yaml: column 'age': metadata must be a mapping, e.g. {cost: 0.5}"),
    ],
)
def test_a_bad_acquisition_cost_is_one_clear_error(metadata: object, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("{", r"\{").replace("}", r"\}")) as err:
        load_contract(contract_with(metadata), "schema.yaml")
    assert "\n" not in str(err.value)


def test_only_the_features_named_are_refitted(adult_sample: pd.DataFrame) -> None:
    """Wide data: each measured feature is one refit, so only those named are measured;
    the footprint with every feature is the same model either way."""
    every, all_costs = measure(adult_sample)
    full, costs = cost.measure(
        adult_sample, FEATURES, "income", CONFIG, {"age": 0.5}, seed=0, task_name="binary",
        measured=["capital_gain", "age"], clock=ticking(2000),
    )  # fmt: skip
    assert list(costs) == ["capital_gain", "age"]
    assert full == every
    assert costs == {name: all_costs[name] for name in costs}


def test_a_data_sets_only_feature_costs_the_model_less_the_trivial_one(
    adult_sample: pd.DataFrame,
) -> None:
    """Without its only feature, what is left is the prior: the probe could not be fitted
    on no column, and validate stopped with a traceback."""
    full, costs = cost.measure(
        adult_sample, ["age"], "income", CONFIG, {}, seed=0, task_name="binary",
        clock=ticking(2000),
    )  # fmt: skip
    assert list(costs) == ["age"]
    assert 0 < costs["age"].bytes < full.bytes
