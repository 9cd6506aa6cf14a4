"""params.yaml is parsed into typed, frozen config; every problem is one line naming the key."""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import pytest
import yaml

from mlops.config import Params, parse_params
from mlops.errors import UsageError
from tests.conftest import ROOT


@pytest.fixture
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "params.yaml").read_text())
    return loaded


def _error(document: dict[str, Any]) -> str:
    with pytest.raises(UsageError) as caught:
        parse_params(document)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_shipped_params_parse(document: dict[str, Any]) -> None:
    params = parse_params(document)
    assert isinstance(params, Params)
    assert params.tune.n_trials == document["tune"]["n_trials"]
    assert params.validate_.extra_columns == document["validate"]["extra_columns"]


def test_config_is_frozen(document: dict[str, Any]) -> None:
    params = parse_params(document)
    with pytest.raises(pydantic.ValidationError):
        params.seed = 1  # type: ignore[misc]


def test_unknown_key_is_named(document: dict[str, Any]) -> None:
    document["split"]["tset_size"] = 0.3
    assert _error(document) == "params.yaml: unknown key split.tset_size (did you mean test_size?)"


def test_missing_key_is_named(document: dict[str, Any]) -> None:
    del document["tune"]["n_trials"]
    assert _error(document) == "params.yaml: missing key tune.n_trials"


def test_missing_section_is_named(document: dict[str, Any]) -> None:
    del document["evaluate"]
    assert _error(document) == "params.yaml: missing key evaluate"


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("tune", "n_trials", "12", "tune.n_trials: input should be a valid integer"),
        ("tune", "n_trials", 0, "tune.n_trials: input should be greater than 0"),
        ("split", "test_size", 1.5, "split.test_size: input should be less than 1"),
        ("data", "header", "no", "data.header: input should be a valid boolean"),
        ("data", "decimal", ";", "data.decimal: input should be '.' or ','"),
        (
            "impute",
            "numeric",
            "mode",
            "impute.numeric: input should be 'mean', 'median', 'knn' or 'auto'",
        ),
    ],
)
def test_wrong_type_or_value_is_named(
    document: dict[str, Any], section: str, key: str, value: object, expected: str
) -> None:
    document[section][key] = value
    assert _error(document).startswith(f"params.yaml: {expected}")


def test_seed_must_be_an_integer(document: dict[str, Any]) -> None:
    document["seed"] = 4.2
    assert _error(document).startswith("params.yaml: seed: input should be a valid integer")


def test_search_space_ranges_are_checked(document: dict[str, Any]) -> None:
    bad = copy.deepcopy(document)
    bad["tune"]["space"]["hist_gradient_boosting"]["learning_rate"]["low"] = 0.0
    assert "a log range needs low > 0" in _error(bad)
    bad = copy.deepcopy(document)
    bad["tune"]["space"]["hist_gradient_boosting"]["max_leaf_nodes"].update(low=70)
    assert "tune.space.hist_gradient_boosting.max_leaf_nodes: low (70) must not exceed" in _error(
        bad
    )


def test_classes_must_not_overlap(document: dict[str, Any]) -> None:
    document["data"]["negative_class"] = [">50K"]
    assert "positive_class and negative_class share ['>50K']" in _error(document)


def test_top_level_must_be_a_mapping() -> None:
    assert _error([1, 2]) == "params.yaml: expected a mapping of sections, got list"  # type: ignore[arg-type]


def test_the_decimal_mark_is_not_the_separator(document: dict[str, Any]) -> None:
    document["data"]["decimal"] = ","
    assert 'decimal and separator are both ","' in _error(document)
    document["data"]["separator"] = ";"
    assert parse_params(document).data.decimal == ","


def test_the_thousands_mark_is_not_the_decimal_mark(document: dict[str, Any]) -> None:
    document["data"]["thousands"] = "."
    assert 'thousands and decimal are both "."' in _error(document)
    document["data"]["thousands"] = ","  # the separator too: a CSV quotes "1,234"
    assert parse_params(document).data.thousands == ","


def test_a_params_file_without_a_decimal_mark_reads_decimal_points(
    document: dict[str, Any],
) -> None:
    """params.yaml from before data.decimal existed still parses."""
    del document["data"]["decimal"]
    assert parse_params(document).data.decimal == "."


def test_data_drop_never_lists_the_target_and_defaults_to_nothing(
    document: dict[str, Any],
) -> None:
    document["data"]["drop"] = ["notes", "income"]
    assert "drop lists the target, income" in _error(document)
    del document["data"]["drop"]  # params.yaml from before data.drop existed
    assert parse_params(document).data.drop == ()
