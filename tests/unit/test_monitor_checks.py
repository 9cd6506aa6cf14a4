"""The monitor's checks as pure functions on a LogWindow built in memory, and the report
renderers: each limit in params.yaml ``monitor:`` trips its check, and only it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.config import MonitorConfig
from mlops.errors import UsageError
from mlops.io import files
from mlops.monitoring import checks, report
from mlops.monitoring.logs import LogCounts, LogWindow
from mlops.tasks.task import get_task
from tests.conftest import ROOT
from tests.unit.monitoring_cases import TASK_NAMES, case

CONFIG: MonitorConfig = files.load_params(ROOT / "params.yaml").monitor
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def window(
    task: str,
    rows: int = 300,
    seed: int = 0,
    *,
    inputs: pd.DataFrame | None = None,
    outputs: pd.DataFrame | None = None,
    latency: Any = None,
    refused: int = 0,
) -> LogWindow:
    c = case(task)
    features, answers, _ = c.window(rows, seed)
    features = features if inputs is None else inputs
    answers = answers if outputs is None else outputs
    meta = pd.DataFrame({"logged_at": [NOW] * len(features), "latency_ms": latency})
    counts = LogCounts(rows=len(features), refused=refused, refused_rows=refused)
    return LogWindow("v1.0.0", features, answers, meta, counts)


def quality(w: LogWindow, task: str = "binary") -> checks.Finding:
    return checks.input_quality(w, case(task).reference, CONFIG)


def test_clean_inputs_are_no_quality_breach() -> None:
    found = quality(window("binary"))
    assert not found.breach, found.summary
    assert found.evidence["all_null"] == []
    assert found.evidence["scale_changed"] == []


def test_a_null_column_a_null_rate_rise_and_unseen_categories_are_named() -> None:
    w = window("binary")
    inputs = w.inputs.assign(mean_radius=np.nan, grade=["z"] * 10 + list(w.inputs["grade"][10:]))
    inputs.loc[: len(inputs) // 4, "mean_texture"] = np.nan
    found = quality(window("binary", inputs=inputs))
    assert found.breach
    assert found.evidence["all_null"] == ["mean_radius"]
    assert list(found.evidence["null_rate_up"]) == ["mean_texture"]
    assert found.evidence["unseen"] == {"grade": ["z"]}
    assert "mean_radius" in found.summary


@pytest.mark.parametrize("factor", [1000.0, 0.001])
def test_units_changed_either_way_are_a_scale_change(factor: float) -> None:
    w = window("regression")
    found = quality(
        window("regression", inputs=w.inputs.assign(bmi=w.inputs["bmi"] * factor)), "regression"
    )
    assert found.evidence["scale_changed"] == ["bmi"]
    assert found.breach


def test_a_modest_shift_is_no_scale_change() -> None:
    w = window("multiclass")
    shifted = w.inputs.assign(proline=w.inputs["proline"] * 3)
    assert (
        quality(window("multiclass", inputs=shifted), "multiclass").evidence["scale_changed"] == []
    )


def test_the_refused_rate_counts_refusals_among_everything_logged() -> None:
    found = quality(window("binary", rows=90, refused=10))
    assert found.evidence["refused_rate"] == pytest.approx(0.1)
    assert found.breach  # above max_refused_rate 0.05
    assert not quality(window("binary", rows=99, refused=1)).breach


def test_a_batch_refused_whole_weighs_its_rows() -> None:
    broken = window("binary", rows=100)
    broken.counts.refused, broken.counts.refused_rows = 1, 300  # one batch of 300 rows
    found = quality(broken)
    assert found.evidence["refused_rate"] == pytest.approx(0.75)
    assert found.breach


@pytest.mark.parametrize("task", TASK_NAMES)
def test_performance_is_judged_only_from_enough_labelled_rows(task: str) -> None:
    c = case(task)
    _, outputs, actual = c.window(300, 1)
    tolerance = CONFIG.performance.max_degradation[task]
    target = c.task.default_metric

    def judged(rows: int) -> checks.Finding:
        return checks.performance(
            c.task,
            outputs.iloc[:rows],
            actual[:rows],
            c.reference,
            tolerance,
            target=target,
            min_rows=200,
        )

    assert not judged(300).breach
    assert judged(300).evidence["labelled_rows"] == 300
    few = judged(100)
    assert (few.breach, few.evidence["labelled_rows"]) == (False, 100)
    assert "not judged" in few.summary


def test_estimated_performance_sits_beside_the_realised_one() -> None:
    c = case("binary")
    _, outputs, _ = c.window(300, 2)
    realised = {"roc_auc": {"value": 0.5}}
    found = checks.estimated_performance(
        c.task, outputs, c.reference, {"roc_auc": 0.03}, 0, target="log_loss", realised=realised
    )
    assert not found.breach
    assert found.evidence["metrics"]["roc_auc"]["realised"] == 0.5
    assert list(found.evidence["metrics"]) == ["log_loss", "roc_auc"]  # judged or the target
    regression = case("regression")
    none = checks.estimated_performance(
        regression.task,
        regression.outputs,
        regression.reference,
        {},
        0,
        target="rmse",
        realised=None,
    )
    assert (none.breach, none.summary) == (False, "not estimated: the model gives no probabilities")


def test_nan_infinite_and_out_of_range_answers_are_counted() -> None:
    c = case("regression")
    _, outputs, _ = c.window(100, 3)
    broken = outputs.copy()
    broken.loc[0, "prediction"] = np.nan
    broken.loc[1, "prediction"] = np.inf
    broken.loc[2, "prediction"] = 1e6
    found = checks.stability(window("regression", outputs=broken), c.reference)
    assert found.breach
    assert {k: found.evidence[k] for k in ("nan", "infinite", "out_of_range")} == {
        "nan": 1,
        "infinite": 1,
        "out_of_range": 1,
    }


def test_staleness_judges_known_ages_against_their_limits() -> None:
    old, fresh = NOW - timedelta(days=100), NOW - timedelta(days=10)
    basis = {"model": "test"}
    assert checks.staleness(old, fresh, NOW, CONFIG, basis).breach  # model > 90 days
    young = checks.staleness(fresh, fresh, NOW, CONFIG, basis)
    assert not young.breach
    assert young.evidence["model_age_days"] == 10.0
    unknown = checks.staleness(fresh, None, NOW, CONFIG, basis)
    assert (unknown.breach, unknown.evidence["data_age_days"]) == (False, None)
    assert "training data age unknown" in unknown.summary
    off = CONFIG.model_copy(update={"max_model_age_days": None})
    assert not checks.staleness(old, fresh, NOW, off, basis).breach


def test_latency_against_its_baseline() -> None:
    times = np.linspace(1.0, 3.0, 300)
    w = window("binary", latency=times)
    slow = checks.latency(w, {"p50": 0.2, "p95": 0.4}, 5.0)
    assert slow.breach
    assert slow.evidence["p50"] == pytest.approx(2.0)
    assert not checks.latency(w, {"p50": 1.0, "p95": 2.0}, 5.0).breach
    unmeasured = checks.latency(w, None, 5.0)
    assert (unmeasured.breach, unmeasured.evidence["baseline_p95"]) == (False, None)
    silent = checks.latency(window("binary"), {"p50": 1.0, "p95": 2.0}, 5.0)
    assert (silent.breach, silent.summary) == (False, "not logged")


def test_drift_thresholds_come_from_params() -> None:
    config = CONFIG.model_copy(
        update={"drift": CONFIG.drift.model_copy(update={"features": {"age": {"distance": 0.3}}})}
    )
    limits = checks.thresholds(config)
    assert (limits.p_value, limits.distance, limits.share) == (0.05, 0.1, 0.5)
    assert limits.of("age", "distance") == 0.3


def test_monitor_params_refuse_a_metric_of_another_task(tmp_path: Any) -> None:
    import yaml

    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    document["monitor"]["performance"]["max_degradation"]["regression"] = {"roc_auc": 0.1}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(UsageError, match=r"max_degradation\.regression: 'roc_auc'"):
        files.load_params(path)


def test_a_labels_file_of_one_class_encodes() -> None:
    params = files.load_params(ROOT / "params.yaml")
    task = get_task("binary")
    encoded = task.encode_target(pd.Series([">50K", ">50K."]), params.data, "income", whole=False)
    assert encoded.tolist() == [1, 1]
    with pytest.raises(UsageError, match="only the positive class"):
        task.encode_target(pd.Series([">50K"]), params.data, "income")


def test_findings_are_strict_json() -> None:
    found = checks.Finding("drift", False, "x", {"a": np.float64("nan"), "b": [np.int64(2)]})
    assert json.loads(json.dumps(found.as_dict(), allow_nan=False))["evidence"] == {
        "a": None,
        "b": [2],
    }


def _document(breach: str | None) -> dict[str, Any]:
    names = ["input_quality", "drift", "performance", "estimated_performance"]
    evidence: dict[str, Any] = {
        "input_quality": {"refused_rate": 0.0},
        "drift": {"share": 0.1, "features": {}},
        "performance": {"metric": "roc_auc", "value": None},
        "estimated_performance": {"metrics": {"roc_auc": {"value": 0.9}}},
    }
    return {
        "monitored_at": NOW.isoformat(),
        "model_version": "v1.0.0",
        "window": {"describe": "all rows", "first_logged": "a", "last_logged": "b"},
        "rows": 10,
        "counts": {"corrupt": 0, "refused": 0},
        "findings": [
            {"check": n, "breach": n == breach, "summary": f"{n} said", "evidence": evidence[n]}
            for n in names
        ],
        "breach": breach is not None,
    }


def test_the_markdown_puts_what_breached_first() -> None:
    text = report.markdown(_document("performance"))
    assert "**BREACH**: performance" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "said" in line]
    assert table[0].startswith("| performance | **yes**")


def test_history_records_come_back_and_broken_lines_are_skipped() -> None:
    row = report.history_row(_document(None))
    assert row["estimated"] == 0.9
    text = json.dumps(row) + "\n" + json.dumps(row)[:20] + "\n" + json.dumps(row) + "\n"
    assert report.parse_history(text) == [row, row]


def test_a_mostly_zero_feature_is_no_scale_change_when_a_window_holds_only_zeros() -> None:
    rng = np.random.default_rng(0)
    gains = pd.Series(np.where(rng.random(5000) < 0.05, rng.exponential(2000, 5000), 0.0))
    profile = {"mean": float(gains.mean()), "std": float(gains.std(ddof=0))}
    assert checks._size_ratio(pd.Series(np.zeros(100)), profile) is None
    assert checks._size_ratio(gains.iloc[:500], profile) == pytest.approx(1, abs=0.5)
    assert checks._size_ratio(gains * 1000, profile) == pytest.approx(1000)
