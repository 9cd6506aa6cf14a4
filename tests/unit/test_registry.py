"""The registry's pure logic: versions, the rollback choice, the manifest, the listing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops.errors import CheckFailed, UsageError
from mlops.release import registry
from mlops.release.registry import VersionRecord

SHA = "a" * 40
MD5 = "b" * 32


def record(version: str, **changes: Any) -> VersionRecord:
    base = VersionRecord(
        version=version,
        commit=SHA,
        active=True,
        in_prod=False,
        gate_passed=True,
        model_md5=MD5,
        model_stage="train",
        metrics={"roc_auc": 0.9},
    )
    return replace(base, **changes)


def manifest_document(**changes: Any) -> dict[str, Any]:
    return {
        "version": "v1.2.0",
        "git_revision": SHA,
        "model_md5": MD5,
        "metrics": {"roc_auc": 0.93},
        "promoted_at": "2026-01-02T03:04:05+00:00",
        "latency_ms": {"p50": 1.5, "p95": 3.25, "rows": 200},
    } | changes


@pytest.mark.parametrize(
    ("existing", "bump", "expected"),
    [
        ([], "minor", "v1.0.0"),
        (["v1.0.0"], "minor", "v1.1.0"),
        (["v1.0.0", "v1.10.0", "v1.9.0"], "minor", "v1.11.0"),  # semver, not text order
        (["v1.2.3"], "patch", "v1.2.4"),
        (["v1.2.3"], "major", "v2.0.0"),
        (["v2.0.0-rc.1"], "patch", "v2.0.0"),
    ],
)
def test_next_version(existing: list[str], bump: registry.Bump, expected: str) -> None:
    assert registry.next_version(existing, bump) == expected


@pytest.mark.parametrize("bad", ["1.2.0", "v1.2", "vX", "", "v01.2.0"])
def test_parse_version_refuses_what_is_not_semver(bad: str) -> None:
    with pytest.raises(UsageError, match=r"a version looks like v1\.2\.0"):
        registry.parse_version(bad)


def test_manifest_round_trip() -> None:
    document = manifest_document()
    assert registry.parse_manifest(document, "p.json").model_dump() == document


def test_a_manifest_written_before_the_latency_baseline_still_reads() -> None:
    earlier = {k: v for k, v in manifest_document().items() if k != "latency_ms"}
    assert registry.parse_manifest(earlier, "p.json").latency_ms is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected a JSON object"),
        (manifest_document(version="1.2.0"), "version: expected a version like v1.2.0"),
        (manifest_document(git_revision="abc"), "git_revision: expected a 40-character"),
        (manifest_document(model_md5=MD5.upper()), "model_md5: expected a 32-character md5"),
        (manifest_document(promoted_at="soon"), "promoted_at: Invalid isoformat"),
        (manifest_document(metrics=[1]), "metrics: Input should be a valid dictionary"),
        (manifest_document(extra=1), "extra: Extra inputs are not permitted"),
        ({k: v for k, v in manifest_document().items() if k != "model_md5"}, "model_md5: Field"),
    ],
)
def test_a_corrupt_manifest_is_one_clear_error(document: Any, message: str) -> None:
    with pytest.raises(UsageError, match=r"p\.json: corrupt production manifest") as error:
        registry.parse_manifest(document, "p.json")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_make_manifest_names_the_version_commit_and_bytes() -> None:
    latency = {"p50": 1.5, "p95": 3.25, "rows": 200}
    made = registry.make_manifest(
        record("v1.1.0"), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), latency
    )
    assert made.model_dump() == manifest_document(
        version="v1.1.0", metrics={"roc_auc": 0.9}, promoted_at="2026-01-02T03:04:05+00:00"
    )


def test_rollback_picks_the_newest_functional_version_older_than_the_current() -> None:
    records = [
        record("v1.0.0"),
        record("v1.1.0", gate_passed=False),
        record("v1.2.0", active=False),
        record("v1.3.0", model_md5=None),
        record("v1.4.0", in_prod=True),  # current
        record("v1.5.0"),  # newer: never ran in production
    ]
    assert registry.rollback_target(records, "v1.4.0", None).version == "v1.0.0"


def test_rollback_with_nothing_functional_left_fails() -> None:
    records = [record("v1.0.0", gate_passed=None), record("v1.1.0")]
    with pytest.raises(CheckFailed, match=r"no functional model version older than v1\.1\.0"):
        registry.rollback_target(records, "v1.1.0", None)


def test_rollback_to_a_named_version() -> None:
    records = [record("v1.0.0"), record("v1.1.0"), record("v1.2.0")]
    assert registry.rollback_target(records, "v1.1.0", "v1.2.0").version == "v1.2.0"


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"active": False}, CheckFailed, "v1.0.0 is deprecated"),
        ({"gate_passed": False}, CheckFailed, "v1.0.0 failed its gate"),
        ({"gate_passed": None}, CheckFailed, "v1.0.0 has no gate report"),
        ({"model_md5": None}, CheckFailed, "records no model"),
    ],
)
def test_rollback_refuses_a_named_version_that_is_not_functional(
    changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    records = [record("v1.0.0", **changes), record("v1.1.0")]
    with pytest.raises(error, match=message):
        registry.rollback_target(records, "v1.1.0", "v1.0.0")


def test_rollback_refuses_unknown_and_current_versions() -> None:
    records = [record("v1.0.0"), record("v1.1.0")]
    with pytest.raises(UsageError, match=r"unknown model version v3.0.0 \(registered: v1.1.0"):
        registry.rollback_target(records, "v1.1.0", "v3.0.0")
    with pytest.raises(UsageError, match="already in production"):
        registry.rollback_target(records, "v1.1.0", "v1.1.0")


def test_with_model_and_at_commit() -> None:
    records = [record("v1.0.0", model_md5="c" * 32, commit="d" * 40), record("v1.1.0")]
    assert registry.with_model(records, "c" * 32) == records[0]
    assert registry.with_model(records, "e" * 32) is None
    assert registry.at_commit(records, "d" * 40) == records[0]
    assert registry.at_commit(records, "f" * 40) is None


@pytest.mark.parametrize(
    ("last", "now", "wait"),
    [(None, 100.5, 0.0), (99, 100.0, 0.0), (100, 100.25, 0.75), (100, 100.0, 1.0)],
)
def test_seconds_to_wait_puts_each_event_in_a_later_second(
    last: int | None, now: float, wait: float
) -> None:
    assert registry.seconds_to_wait(last, now) == pytest.approx(wait)


def test_model_in_lock() -> None:
    lock = {
        "stages": {
            "split": {"outs": [{"path": "data/split/train.parquet", "md5": "1" * 32}]},
            "train": {
                "outs": [
                    {"path": "models/model.skops", "md5": MD5, "size": 3},
                    {"path": "models/model_card.json", "md5": "2" * 32},
                ]
            },
        }
    }
    assert registry.model_in_lock(lock, "models/model.skops") == ("train", MD5)
    assert registry.model_in_lock(lock, "models/other") is None
    assert registry.model_in_lock(None, "models/model.skops") is None
    assert registry.model_in_lock({"stages": {"x": {"outs": [{"path": "m"}]}}}, "m") is None


def test_gate_verdict_and_failed_checks() -> None:
    report = {
        "passed": False,
        "checks": [
            {"name": "roc_auc", "verdict": "fail"},
            {"name": "latency", "verdict": "pass"},
            {"name": "size", "verdict": "FAILED"},
        ],
    }
    assert registry.gate_verdict(report) is False
    assert registry.gate_verdict({"passed": True}) is True
    assert registry.gate_verdict({"passed": "yes"}) is None
    assert registry.gate_verdict(None) is None
    assert registry.failed_checks(report) == ["roc_auc", "size"]


def test_judged_model() -> None:
    assert registry.judged_model({"candidate": {"model_md5": MD5}}) == MD5
    assert registry.judged_model({"candidate": {}}) is None
    assert registry.judged_model({"passed": True}) is None
    assert registry.judged_model([]) is None


def test_numeric_metrics_keeps_numbers_only() -> None:
    metrics = {"roc_auc": 0.9, "rows": 10, "ok": True, "name": "x"}
    assert registry.numeric_metrics(metrics) == {"roc_auc": 0.9, "rows": 10.0}
    assert registry.numeric_metrics([1]) == {}


def test_key_metrics_are_the_gates_whatever_the_task() -> None:
    metrics = {"log_loss": 0.3, "accuracy": 0.9, "f1_macro": 0.88, "baseline_majority": 1.1}
    report = {
        "metric": "log_loss",
        "checks": [
            {"name": "minimum.accuracy"},
            {"name": "maximum.log_loss"},  # the target metric is listed once, first
            {"name": "baseline_margin.majority"},  # a baseline, not a metric
            {"name": "max_degradation.f1_macro"},
            {"name": "maximum.ece"},  # not in metrics.json: nothing to show
            {"name": "max_age_days"},
            "garbage",
        ],
    }
    assert registry.key_metrics(report, metrics) == ("log_loss", "accuracy", "f1_macro")
    assert registry.key_metrics({"metric": "rmse", "checks": None}, {"rmse": 3.0}) == ("rmse",)
    assert registry.key_metrics(None, metrics) == ()
    assert registry.key_metrics({"checks": [{"name": "minimum.accuracy"}]}, {}) == ()


def test_describe_metrics() -> None:
    judged = record("v1.0.0", metrics={"rmse": 52.123456, "r2": 0.45}, key_metrics=("rmse", "r2"))
    assert registry.describe_metrics(judged) == "rmse 52.1235, r2 0.4500"
    assert registry.describe_metrics(record("v1.0.0")) == "none recorded by its gate"


def test_listing_and_table() -> None:
    """A regression project: the table shows what the gates judged, not a fixed metric."""
    records = [
        record("v1.0.0", metrics={"rmse": 55.0, "mae": 44.0}, key_metrics=("rmse", "mae")),
        record(
            "v1.1.0",
            in_prod=True,
            metrics={"rmse": 52.5, "r2": 0.45, "mae": 41.0, "baseline_mean": 70.0},
            key_metrics=("rmse", "r2"),
        ),
        record("v0.9.0", active=False, gate_passed=None, metrics={}),
    ]
    production = registry.parse_manifest(manifest_document(version="v1.1.0"), "p")
    rows = registry.listing(records, production)
    assert [r["version"] for r in rows] == ["v1.1.0", "v1.0.0", "v0.9.0"]
    assert rows[0] | {"metrics": None} == {
        "version": "v1.1.0",
        "stage": "prod",
        "serving": True,
        "status": "active",
        "gate": "passed",
        "commit": SHA,
        "model_md5": MD5,
        "created_at": "",
        "key_metrics": ["rmse", "r2"],
        "metrics": None,
    }
    assert rows[0]["metrics"]["baseline_mean"] == 70.0  # --json keeps every number
    lines = registry.format_listing(rows).splitlines()
    assert lines[0].split() == ["version", "stage", "status", "gate", "commit", "rmse", "r2", "mae"]
    assert lines[1].split() == [
        "v1.1.0",
        "prod*",
        "active",
        "passed",
        "aaaaaaa",
        "52.5000",
        "0.4500",
        "41.0000",
    ]
    assert lines[2].split() == [
        "v1.0.0",
        "-",
        "active",
        "passed",
        "aaaaaaa",
        "55.0000",
        "-",
        "44.0000",
    ]
    assert lines[3].split() == ["v0.9.0", "-", "deprecated", "missing", "aaaaaaa", "-", "-", "-"]


def test_disagreement_between_tags_and_manifest() -> None:
    production = registry.parse_manifest(manifest_document(version="v1.1.0"), "p")
    agreeing = [record("v1.1.0", in_prod=True), record("v1.0.0")]
    assert registry.disagreement(agreeing, production) is None
    assert registry.disagreement([], None) is None
    message = registry.disagreement([record("v1.0.0", in_prod=True)], production)
    assert message == "GTO assigns prod to v1.0.0 but models/production.json names v1.1.0"
    assert "names none" in str(registry.disagreement(agreeing, None))
