"""The composed data tests: features, lawful use, the report's shape, its one line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
import yaml

from mlops.config import Params, ValidateConfig
from mlops.data import checks
from mlops.data.contract import load_contract
from mlops.data.cost import Cost, Footprint
from mlops.data.importance import Importance
from mlops.data.quality import duplicate_rows
from mlops.data.redundancy import Pair
from mlops.errors import CheckFailed, UsageError


@pytest.fixture(scope="module")
def contract(root: Path) -> pa.DataFrameSchema:
    return load_contract(yaml.safe_load((root / "data/schema.yaml").read_text()), "schema")


def config(params: Params, **changes: Any) -> ValidateConfig:
    return params.validate_.model_copy(update=changes)


def run(data: pd.DataFrame, contract: pa.DataFrameSchema, cfg: ValidateConfig) -> checks.Checked:
    return checks.check(
        data,
        contract,
        cfg,
        target="income",
        seed=0,
        source="in.parquet",
        contract_path="data/schema.yaml",
        require_target=True,
    )


def test_report_keeps_the_shared_interface(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    report = checks.build(run(adult_sample, contract, params.validate_), params.validate_, None)
    assert report["passed"] is True
    assert (report["rows"], report["columns"]) == (len(adult_sample), 15)
    assert report["extra_columns"] == {"policy": "fail", "found": []}
    assert report["failures"] == []
    assert report["protected"] == ["race", "sex", "native_country"]
    assert report["ids"] == {}  # fnlwgt is unique-ish whole numbers, but no row number
    assert report["features"] == [
        "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
        "occupation", "relationship", "capital_gain", "capital_loss", "hours_per_week",
    ]  # fmt: skip
    quality = report["quality"]
    assert quality["threshold"] == params.validate_.qa_threshold
    assert set(quality["features"]) == set(adult_sample.columns) - {"income"}
    for entry in quality["features"].values():
        assert {"score", "missing_rate", "reasons", "passed"} <= set(entry)
    assert quality["failing"] == ["workclass", "occupation"]
    assert report["privacy"] == {"passed": True, "findings": []}
    assert report["importance"] is None


def test_duplicate_rows_are_counted_and_explained(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    base = checks.build(run(adult_sample, contract, params.validate_), params.validate_, None)
    copies = adult_sample.iloc[:30].copy()
    copies.loc[copies.index[:10], "income"] = 1 - copies["income"].iloc[:10]  # relabelled
    copies.loc[copies.index[10:], "race"] = "Other"  # not a feature: still the same inputs
    data = pd.concat([adult_sample, copies], ignore_index=True)
    report = checks.build(run(data, contract, params.validate_), params.validate_, None)
    repeated = report["duplicates"]["repeated"] - base["duplicates"]["repeated"]
    conflicting = report["duplicates"]["conflicting"] - base["duplicates"]["conflicting"]
    assert (repeated, conflicting) == (20, 20)  # 10 relabelled copies and their originals
    text = checks.markdown(report)
    assert "## Duplicate rows" in text
    assert "A random split puts copies on both sides" in text


def test_duplicate_rows_count_what_the_model_reads() -> None:
    frame = pd.DataFrame(
        {
            "a": [1, 1, 1, 2, None, None],
            "b": ["x", "x", "x", "y", None, None],
            "t": [0, 0, 1, 1, 0, 0],
        }
    )
    assert duplicate_rows(frame, ["a", "b"], "t") == {"repeated": 2, "conflicting": 3}
    assert duplicate_rows(frame, ["a", "b"], "absent") == {"repeated": 3, "conflicting": 0}
    assert duplicate_rows(frame.iloc[:0], ["a"], "t") == {"repeated": 0, "conflicting": 0}


def test_protected_attributes_never_become_features(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    cfg = config(params, protected=("sex", "Marital-Status"))
    report = checks.build(run(adult_sample, contract, cfg), cfg, None)
    assert report["protected"] == ["sex", "marital_status"]
    assert "sex" not in report["features"]
    assert "marital_status" not in report["features"]
    assert "race" in report["features"]


def test_privacy_drop_removes_the_feature_and_allow_keeps_it(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    emails = pd.Series([f"u{i}@example.com" for i in range(len(adult_sample))], dtype="str")
    data = adult_sample.assign(contact=emails)
    open_extra = config(params, extra_columns="allow")
    failing = run(data, contract, open_extra)
    assert not failing.passed
    dropping = config(
        params,
        extra_columns="allow",
        privacy=params.validate_.privacy.model_copy(update={"drop": ("contact", "occupation")}),
    )
    report = checks.build(run(data, contract, dropping), dropping, None)
    assert report["passed"] is True
    assert report["dropped"]["privacy"] == ["contact", "occupation"]
    assert "occupation" not in report["features"]
    assert [f["decision"] for f in report["privacy"]["findings"]] == ["drop"]


def measured(
    names: list[str],
    zero: set[str],
    pairs: tuple[Pair, ...] = (),
    low: frozenset[str] = frozenset(),
) -> checks.Measured:
    """Importances by hand: ``zero`` add nothing, ``low`` add a little, the rest 0.1."""
    values = {
        n: Importance(
            mean=0.0 if n in zero else (0.01 if n in low else 0.1), std=0.001, zero=n in zero
        )
        for n in names
    }
    costs = {n: Cost(latency_us=1.0, bytes=100, acquisition=None) for n in names}
    method = {"scoring": "roc_auc", "fit_rows": 70, "held_out_rows": 30}
    footprint = Footprint(latency_us=10.0, bytes=1000)
    cost_method = {"model": "the importance probe", "fit_rows": 100, "timed_rows": 5}
    return checks.Measured(values, method, pairs, footprint, costs, cost_method)


def with_policy(params: Params, policy: str) -> ValidateConfig:
    return config(
        params, importance=params.validate_.importance.model_copy(update={"policy": policy})
    )


# education_num is the rank of education: one determines the other (eta = 1).
EDUCATION = Pair("education", "education_num", "correlation_ratio", 1.0)


@pytest.mark.parametrize("policy", ["report", "drop"])
def test_features_adding_nothing_are_reported_or_dropped(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params, policy: str
) -> None:
    cfg = with_policy(params, policy)
    checked = run(adult_sample, contract, cfg)
    found = measured(list(checked.candidates), {"fnlwgt"}, (EDUCATION,), frozenset({"education"}))
    report = checks.build(checked, cfg, found)
    assert report["passed"] is True
    assert report["importance"]["indistinguishable_from_zero"] == ["fnlwgt"]
    # The more important of the pair stays: education_num (0.1) over education (0.01).
    assert list(report["importance"]["redundancy"]["redundant"]) == ["education"]
    drop = policy == "drop"
    assert ("fnlwgt" in report["features"]) is not drop
    assert ("education" in report["features"]) is not drop
    assert "education_num" in report["features"]
    assert report["dropped"]["importance"] == (["fnlwgt"] if drop else [])
    assert report["dropped"]["redundancy"] == (["education"] if drop else [])
    assert report["cost"]["adding_nothing"] == ["fnlwgt", "education"]
    assert report["cost"]["policy"] == policy


def test_validation_json_lists_the_strongest_pairs_not_every_one(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    """1,000 features make 499,500 pairs: every one took validation.json (in git) to
    68 MB. It lists the 100 strongest, and every pair above the threshold if more are."""
    checked = run(adult_sample, contract, params.validate_)
    weak = tuple(Pair(f"a{i}", f"b{i}", "spearman", 0.5 - i / 10_000) for i in range(300))
    report = checks.build(
        checked, params.validate_, measured(list(checked.candidates), set(), weak)
    )
    listed = report["importance"]["redundancy"]
    assert (listed["pairs_measured"], len(listed["pairs"])) == (300, 100)
    assert listed["pairs"][0] == weak[0].to_dict()
    assert "Strongest of the 300 pairs' associations" in checks.markdown(report)
    strong = tuple(replace(p, value=0.99) for p in weak[:150]) + weak[150:]
    report = checks.build(
        checked, params.validate_, measured(list(checked.candidates), set(), strong)
    )
    assert len(report["importance"]["redundancy"]["pairs"]) == 150


def test_measured_latencies_stay_out_of_the_tracked_report(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    """validation.json feeds impute: a rerun that only re-times the probe must leave its
    bytes alone. Latencies go to the run record, and its markdown table shows them."""
    checked = run(adult_sample, contract, params.validate_)
    found = measured(list(checked.candidates), set())
    report = checks.build(checked, params.validate_, found)
    assert "latency" not in json.dumps(report["cost"]["features"])
    assert report["cost"]["with_every_feature"] == {"bytes": 1000}
    summary = checks.markdown(report)
    assert "Model bytes" in summary
    assert "Latency (us)" not in summary
    latencies = checks.cost_latencies(found)
    assert latencies is not None
    assert latencies["with_every_feature"] == 10.0
    assert set(latencies["saved_without"]) == set(checked.candidates)
    table = checks.cost_markdown(report, latencies)
    assert "Latency (us)" in table
    assert "10.0 us with every feature" in table
    assert checks.cost_latencies(None) is None


def test_a_cost_measured_for_some_features_says_which(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    """Above validate.cost.max_features, the report names how many were measured of all."""
    checked = run(adult_sample, contract, params.validate_)
    names = list(checked.candidates)
    found = measured(names, set())
    every = checks.build(checked, params.validate_, found)
    assert "measured" not in every["cost"]
    assert "; measured for" not in checks.markdown(every)
    part = replace(found, costs={n: found.costs[n] for n in names[:2]})
    report = checks.build(checked, params.validate_, part)
    assert list(report["cost"]["features"]) == names[:2]
    assert report["cost"]["measured"] == (
        f"the 2 least valuable of {len(names)} features (validate.cost.max_features: one "
        "refit each)"
    )
    assert f"; measured for the 2 least valuable of {len(names)} features" in checks.markdown(
        report
    )


def test_fail_policy_fails_validation_naming_the_features(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    cfg = with_policy(params, "fail")
    checked = run(adult_sample, contract, cfg)
    report = checks.build(
        checked, cfg, measured(list(checked.candidates), {"fnlwgt"}, (EDUCATION,))
    )
    assert report["passed"] is False
    assert checks.error_line(report) == (
        "in.parquet: validation failed: feature(s) adding nothing: fnlwgt (importance "
        "indistinguishable from zero), education_num (redundant with education: "
        "correlation_ratio 1.00 > 0.9) (params.yaml validate.importance.policy: fail; drop "
        "leaves them out of the model)"
    )
    clean = checks.build(checked, cfg, measured(list(checked.candidates), set()))
    assert clean["passed"] is True


def test_of_two_twins_looking_worthless_one_stays(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    """Twins share their importance (either stands in for the other when shuffled), so
    both can look like zero: one goes as redundant, the other is not judged by it."""
    cfg = with_policy(params, "drop")
    checked = run(adult_sample, contract, cfg)
    both = {"education", "education_num"}
    report = checks.build(checked, cfg, measured(list(checked.candidates), both, (EDUCATION,)))
    assert report["dropped"] == {
        "privacy": [],
        "leakage": [],
        "importance": [],
        "redundancy": ["education_num"],
    }
    assert "education" in report["features"]


def test_a_pair_below_the_threshold_is_not_redundant(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    cfg = with_policy(params, "drop")
    checked = run(adult_sample, contract, cfg)
    weak = Pair("education", "education_num", "correlation_ratio", 0.9)  # not above 0.9
    report = checks.build(checked, cfg, measured(list(checked.candidates), set(), (weak,)))
    assert report["importance"]["redundancy"]["redundant"] == {}
    assert {"education", "education_num"} <= set(report["features"])


def test_dropping_every_feature_is_refused(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    cfg = with_policy(params, "drop")
    checked = run(adult_sample, contract, cfg)
    with pytest.raises(CheckFailed, match="carries no signal about the target"):
        checks.build(checked, cfg, measured(list(checked.candidates), set(checked.candidates)))


def test_policy_names_must_exist(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    with pytest.raises(UsageError, match=r"validate.protected: 'religion' is not a column"):
        run(adult_sample, contract, config(params, protected=("religion",)))
    with pytest.raises(UsageError, match=r"validate.protected: 'income' is not a column"):
        run(adult_sample, contract, config(params, protected=("income",)))
    quality = params.validate_.quality.model_copy(update={"sentinels": {"sex": (1.0,)}})
    with pytest.raises(UsageError, match=r"sentinels.sex: 1.0 does not fit a text column"):
        run(adult_sample, contract, config(params, quality=quality))
    every = tuple(c for c in contract.columns if c != "income")
    with pytest.raises(UsageError, match="no feature left"):
        run(adult_sample, contract, config(params, protected=every))


def failed_report(
    data: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> dict[str, Any]:
    report = checks.build(run(data, contract, params.validate_), params.validate_, None)
    assert report["passed"] is False
    return report


def test_error_line_names_file_column_check_and_counts_the_rest(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    data = adult_sample.assign(hours_per_week=np.inf, age="old").drop(columns=["sex"])
    line = checks.error_line(failed_report(data, contract, params))
    assert line.startswith("in.parquet: validation failed: column 'age' failed dtype('float64')")
    assert line.endswith("; 2 more (all: mlops validate --report FILE)")
    assert "\n" not in line


def test_error_line_puts_personal_data_first_and_masks_it(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    emails = pd.Series([f"u{i}@example.com" for i in range(len(adult_sample))], dtype="str")
    line = checks.error_line(
        failed_report(adult_sample.assign(occupation=emails), contract, params)
    )
    assert line.startswith("in.parquet: validation failed: column 'occupation' holds personal data")
    assert "drop or allow it in params.yaml validate.privacy" in line
    assert "example.com" not in line
    assert "isin" not in line.split(";")[0]


def test_markdown_is_a_readable_summary(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    data = adult_sample.copy()
    data.loc[0, "native_country"] = "Atlantis"
    checked = run(data, contract, params.validate_)
    report = checks.build(checked, params.validate_, measured(list(checked.candidates), set()))
    text = checks.markdown(report)
    assert text.startswith("# Data validation: passed\n")
    assert "| `native_country` | isin(…) | value | 1 | <0.1% | report | Atlantis |" in text
    assert "| `workclass` | 0.944 | **failing** |" in text or "**failing**" in text
    assert "## Feature value (permutation importance, roc_auc)" in text
    assert "## Feature cost against value" in text
    assert "| `age` | 0.1000 | +100 | - |  |" in text
    assert "Protected attributes (kept for slice metrics, never features): `race`" in text


def test_policy_names_are_normalised_like_the_data(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    cfg = config(
        params,
        privacy=params.validate_.privacy.model_copy(update={"drop": ("Occupation",)}),
        quality=params.validate_.quality.model_copy(
            update={"sentinels": {"Capital-Gain": (99999.0,)}}
        ),
    )
    checked = run(adult_sample, contract, cfg)
    assert checked.privacy_dropped == ("occupation",)
    assert "occupation" not in checked.candidates
    assert checked.qualities["capital_gain"].sentinel_rate > 0


def leak(cfg: ValidateConfig, suspected: tuple[str, ...]) -> Any:
    from mlops.data.leakage import Leakage

    skills = {"age": 0.12, "capital_gain": 0.997, "hours_per_week": 0.05}
    return Leakage(skills, suspected, cfg.leakage, {"rows": 1000, "folds": 3})


def test_a_suspected_leak_fails_validation_in_one_line_naming_the_way_out(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    cfg = params.validate_
    checked = run(adult_sample, contract, cfg)
    report = checks.build(checked, cfg, None, leak(cfg, ("capital_gain",)))
    assert report["passed"] is False
    assert report["leakage"]["suspected"] == ["capital_gain"]
    assert "capital_gain" in report["features"]  # failing, not dropping
    assert checks.error_line(report) == (
        "in.parquet: validation failed: feature 'capital_gain' alone forecasts the target "
        "with skill 0.997 >= validate.leakage.max_skill 0.95 on held-out rows, a suspected "
        "target leak: list it in params.yaml data.drop if it is recorded after the outcome, "
        "or in validate.leakage.allow if it is known when a prediction is made"
    )
    text = checks.markdown(report)
    assert "## Target leakage" in text
    assert "| `capital_gain` | 0.997 | suspected leak |" in text
    assert "| `age` | 0.120 |  |" in text
    assert checks.build(checked, cfg, None, leak(cfg, ()))["passed"] is True


def test_a_dropped_leak_leaves_the_features_and_an_allowed_one_is_marked(
    adult_sample: pd.DataFrame, contract: pa.DataFrameSchema, params: Params
) -> None:
    dropping = config(
        params, leakage=params.validate_.leakage.model_copy(update={"policy": "drop"})
    )
    checked = run(adult_sample, contract, dropping)
    report = checks.build(checked, dropping, None, leak(dropping, ("capital_gain",)))
    assert report["passed"] is True
    assert "capital_gain" not in report["features"]
    assert report["dropped"]["leakage"] == ["capital_gain"]
    assert "- Dropped (leakage): `capital_gain`" in checks.markdown(report)
    allowing = config(
        params, leakage=params.validate_.leakage.model_copy(update={"allow": ("capital_gain",)})
    )
    allowed = checks.build(checked, allowing, None, leak(allowing, ()))
    assert allowed["passed"] is True
    assert "| `capital_gain` | 0.997 | allowed (validate.leakage.allow) |" in checks.markdown(
        allowed
    )
