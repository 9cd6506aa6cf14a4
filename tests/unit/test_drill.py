"""The fire drill's pure logic: the plan, the columns it changes, the stream, the
injected changes, the concept drift's size, and the scoring of a timeline."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.drill import scenarios, timeline
from mlops.drill.runner import cut_source, merge
from mlops.drill.scenarios import Columns
from mlops.errors import UsageError
from mlops.io import tables

FEATURES: dict[str, dict[str, Any]] = {
    "age": {"kind": "numeric", "std": 13.0},
    "job": {"kind": "categorical"},
    "weight": {"kind": "numeric", "std": 1e5},
    "years": {"kind": "numeric", "std": 2.5},
    "flag": {"kind": "numeric", "std": 0.0},  # constant: never chosen
}
COLUMNS = Columns(shifted="age", nulled="years", rescaled="weight")


def test_columns_are_chosen_by_kind_importance_and_contract() -> None:
    chosen = scenarios.choose_columns(FEATURES, ["job", "years", "age"], {"weight", "job"})
    assert chosen == Columns(shifted="age", nulled="years", rescaled="weight")
    # No importance: the last numeric feature is nulled; no unbounded one: the first other.
    assert scenarios.choose_columns(FEATURES, [], set()) == Columns("age", "years", "age")


def test_too_few_numeric_features_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="two numeric features"):
        scenarios.choose_columns({"age": FEATURES["age"], "job": FEATURES["job"]}, [], set())


def test_the_plan_starts_clean_and_keeps_the_scenarios_order() -> None:
    steps = scenarios.plan(["concept_drift", "bad_model"], COLUMNS, clean=2, per_scenario=3)
    assert [(s.name, s.expected, s.batches) for s in steps] == [
        ("clean", "none", 2),
        ("bad_model", "rollback", 3),
        ("concept_drift", "retrain", 3),
    ]
    with pytest.raises(UsageError, match="unknown drill scenario"):
        scenarios.plan(["earthquake"], COLUMNS, clean=1, per_scenario=1)


def frame(rows: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"age": rng.uniform(17, 90, rows), "weight": rng.uniform(1, 9, rows)})


def test_the_stream_deals_rows_once_and_the_shift_moves_the_feature() -> None:
    data = frame(10_000)
    stream = scenarios.Stream(data, seed=1)
    first = stream.take(300)
    shifted = stream.take_shifted(300, "age")
    # No row twice: (age, weight) pairs are unique in this frame.
    seen = pd.concat([first, shifted])
    assert not seen.duplicated().any()
    assert shifted["age"].median() > data["age"].quantile(0.85)
    assert abs(first["age"].median() - data["age"].median()) < 5
    with pytest.raises(UsageError, match="9400 rows left"):
        stream.take(9401)


def test_broken_inputs() -> None:
    batch = frame(10)
    nulled = scenarios.break_inputs(batch, "broken_null", COLUMNS)
    assert nulled["years"].isna().all()
    rescaled = scenarios.break_inputs(batch, "broken_units", COLUMNS)
    assert np.allclose(rescaled["weight"], batch["weight"] * 1000)
    assert scenarios.break_inputs(batch, "concept_drift", COLUMNS).equals(batch)
    selfish = batch.rename(columns={"weight": "self"})  # DataFrame.assign's own argument
    named = Columns(shifted="age", nulled="self", rescaled="self")
    assert scenarios.break_inputs(selfish, "broken_null", named)["self"].isna().all()
    assert np.allclose(scenarios.break_inputs(selfish, "broken_units", named)["self"],
                       batch["weight"] * 1000)  # fmt: skip
    assert selfish["self"].notna().all()  # the batch given is left as it was


def test_flips_invert_only_the_chosen_rows() -> None:
    actual = np.array([0, 1, 1, 0])
    assert scenarios.flip(actual, np.array([True, False, True, False])).tolist() == [1, 1, 0, 0]
    order = scenarios.flip_order(np.array([True, False, True, True]), seed=3)
    assert sorted(order.tolist()) == [0, 2, 3]


def test_the_concept_drift_aims_between_the_decay_limit_and_the_floor() -> None:
    assert scenarios.concept_target(0.90, 0.05, 0.80, greater_is_better=True) == pytest.approx(
        0.825
    )
    # A loss: worse is higher, the floor is a ceiling.
    assert scenarios.concept_target(0.30, 0.10, 0.60, greater_is_better=False) == pytest.approx(
        0.50
    )
    assert scenarios.concept_target(0.90, 0.05, None, greater_is_better=True) == pytest.approx(0.80)
    with pytest.raises(UsageError, match="no worse than the decay limit"):
        scenarios.concept_target(0.90, 0.05, 0.86, greater_is_better=True)


def test_the_flip_count_lands_nearest_the_target() -> None:
    # A metric falling by 0.01 per flipped row: 7 flips give 0.93 - 0.07 = 0.86.
    assert scenarios.flips_for(lambda k: 0.93 - 0.01 * k, 0.86, most=20) == 7


def batch(number: int, scenario: str, expected: str, action: str) -> dict[str, Any]:
    return {
        "batch": number,
        "scenario": scenario,
        "change": "",
        "expected": expected,
        "action": action,
        "ok": timeline.allowed(expected, action),
        "model": "v1.0.0",
        "drift_share": 0.1,
        "estimated": 0.9,
        "realised": None,
        "reasons": [],
    }


def test_scoring_counts_false_alarms_detection_and_delay() -> None:
    batches = [
        batch(1, "clean", "none", "none"),
        batch(2, "clean", "none", "retrain"),  # a false alarm
        batch(3, "covariate_shift", "retrain", "none"),
        batch(4, "covariate_shift", "retrain", "retrain"),  # detected one batch late
        batch(5, "broken_null", "alert", "retrain"),  # the wrong response
        batch(6, "bad_model", "rollback", "none"),  # never detected
    ]
    summaries = {s["scenario"]: s for s in timeline.score(batches)}
    assert (summaries["clean"]["false_alarms"], summaries["clean"]["ok"]) == (1, False)
    shift = summaries["covariate_shift"]
    assert (shift["detected"], shift["delay"], shift["ok"]) == (True, 1, True)
    assert (summaries["broken_null"]["ok"], summaries["broken_null"]["wrong"]) == (
        False,
        ["retrain"],
    )
    assert (summaries["bad_model"]["detected"], summaries["bad_model"]["ok"]) == (False, False)
    totals = timeline.rates(list(summaries.values()))
    assert totals["false_alarm_rate"] == 0.5
    assert (totals["detected"], totals["scenarios"], totals["ok"]) == (1, 3, False)
    assert totals["delays"] == {"covariate_shift": 1, "broken_null": None, "bad_model": None}


def test_a_right_timeline_passes_and_renders() -> None:
    batches = [batch(1, "clean", "none", "none"), batch(2, "bad_model", "rollback", "rollback")]
    summaries = timeline.score(batches)
    document = {
        "batches_run": 2,
        "batch_rows": 300,
        "stream": "adult.test.gz",
        "quick": True,
        "seconds": 12.0,
        "metric": "roc_auc",
        "scenarios": summaries,
        "rates": timeline.rates(summaries),
        "batches": batches,
    }
    assert document["rates"]["ok"] is True
    text = timeline.markdown(document, "timeline.png")
    assert text.startswith("# Fire drill: PASSED")
    assert "| bad_model |" in text
    assert "![timeline](timeline.png)" in text


def test_merge_replaces_values_and_merges_mappings() -> None:
    base = {"respond": {"policy": [1], "min_labelled_rows": 500}, "seed": 1}
    merged = merge(base, {"respond": {"policy": [2]}, "seed": 2})
    assert merged == {"respond": {"policy": [2], "min_labelled_rows": 500}, "seed": 2}
    assert base["respond"] == {"policy": [1], "min_labelled_rows": 500}  # not changed


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "csv.xz", "parquet", "feather", "json"])
def test_quick_keeps_the_sources_first_rows_in_its_own_format(kind: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": range(10, 20), "job": list("abcdefghij")})
    path = tmp_path / f"source.{kind}"
    if kind.startswith("csv"):
        text = frame.to_csv(index=False).encode()
        codecs = {"csv": bytes, "csv.gz": gzip.compress, "csv.xz": lzma.compress}
        path.write_bytes(codecs[kind](text))
    else:
        tables.write_typed(path, frame, kind)  # type: ignore[arg-type]
    cut_source(path, 3, header=True)
    data = path.read_bytes()
    assert tables.content_format(data) == kind.partition(".")[0]
    if kind.startswith("csv"):
        assert data == b"age,job\n10,a\n11,b\n12,c\n"
    else:
        kept = tables.typed_frame(path, data, tables.content_format(data))
        pd.testing.assert_frame_equal(kept, frame.head(3))
