"""`mlops monitor` end to end: a production manifest, a reference profile and a prediction
log written by the real ``log_lines``, for each task (tests/unit/monitoring_cases.py:
breast cancer, wine and diabetes with a small fitted model); then the command's exit
code, findings and reports for clean, drifted and broken windows and for bad input.

The project is a temporary folder holding only what monitoring reads: params.yaml,
models/production.json, models/reference.json and the log folder, no training data,
no DVC cache and no git (the model's age comes from the manifest's promotion time).
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.cli import main
from mlops.monitoring.findings import CHECKS
from mlops.monitoring.reference import build_reference
from mlops.serving import service
from mlops.serving.service import Production
from tests.conftest import ROOT, run
from tests.task_projects import task_params
from tests.unit.monitoring_cases import REFERENCE_ROWS, TASK_NAMES, Case, case

VERSION = "v1.2.0"
TARGET = "target"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROWS = 400
LOGS = Path("logs/predictions")
OUT = Path("reports/monitoring")


@cache
def logged_reference(task: str) -> dict[str, Any]:
    """The case's reference, on a seeded resample of its features and answers (the log
    keeps every digit: test_a_discrete_feature_survives_the_log)."""
    c = case(task)
    features = c.features
    rows = np.random.default_rng(0).integers(0, len(features), (2, REFERENCE_ROWS))
    metrics = c.reference["metrics"]
    return build_reference(
        features.iloc[rows[0]], c.prediction.take(rows[1]), c.task, metrics, seed=0
    )


def params_document(task: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    if task != "binary":
        return task_params(document, task, "data.csv", TARGET)
    document["data"] |= {"target": TARGET, "positive_class": [1], "negative_class": [0]}
    return document


def setup_project(
    folder: Path, task: str, reference: dict[str, Any] | None = None, **monitor: Any
) -> Case:
    """params.yaml for ``task``, production.json naming VERSION and the reference."""
    c = case(task)
    document = params_document(task)
    document["monitor"] |= monitor
    (folder / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    models = folder / "models"
    models.mkdir()
    manifest = {
        "version": VERSION,
        "git_revision": "0" * 40,
        "model_md5": "a" * 32,
        "metrics": {},
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (models / "production.json").write_text(json.dumps(manifest))
    (models / "reference.json").write_text(json.dumps(reference or logged_reference(task)))
    return c


def log(
    folder: Path,
    c: Case,
    features: pd.DataFrame,
    outputs: pd.DataFrame,
    *,
    version: str = VERSION,
    start: datetime = START,
    extra: list[str] | None = None,
) -> list[str]:
    """The rows logged by ``service.log_lines`` one second apart, each with a request id
    and a latency; the request ids."""
    production = Production(None, version, "a" * 32, tuple(features.columns), c.task, 0.5)
    predictions = outputs.reset_index(drop=True).assign(**{service.IMPUTED: ""})
    lines, ids = [], []
    for i in range(len(features)):
        text = service.log_lines(
            features.iloc[[i]],
            predictions.iloc[[i]],
            production,
            "batch",
            start + timedelta(seconds=i),
        )
        record = json.loads(text)
        record.setdefault("request_id", f"req-{version}-{i}")
        record.setdefault("latency_ms", 2.0 + (i % 10) / 10)
        ids.append(record["request_id"])
        lines.append(json.dumps(record))
    path = folder / LOGS / service.log_name(start.date())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write("\n".join([*lines, *(extra or [])]) + "\n")
    return ids


def monitor(*arguments: str) -> tuple[int, dict[str, Any] | None]:
    code = main(["monitor", *arguments])
    report = OUT / "monitoring.json"
    return code, json.loads(report.read_text()) if report.is_file() else None


def finding(report: dict[str, Any], check: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in report["findings"] if f["check"] == check)
    return found


def breached(report: dict[str, Any]) -> list[str]:
    return [f["check"] for f in report["findings"] if f["breach"]]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("task", TASK_NAMES)
def test_a_clean_window_is_no_breach(here: Path, task: str) -> None:
    c = setup_project(here, task)
    features, outputs, _ = c.window(ROWS, seed=3)
    log(here, c, features, outputs, extra=["not json", '{"logged_at": "x"}'])
    code, report = monitor()
    assert report is not None
    assert (code, breached(report)) == (0, []), [f["summary"] for f in report["findings"]]
    assert report["rows"] == ROWS
    assert report["model_version"] == VERSION
    assert report["counts"]["corrupt"] == 2  # skipped and counted, never fatal
    assert {f["check"] for f in report["findings"]} == CHECKS  # all eight
    assert finding(report, "latency")["evidence"]["p50"] == pytest.approx(2.45)
    assert "no breach" in (OUT / "monitoring.md").read_text()
    assert "data:image/png;base64," in (OUT / "monitoring.html").read_text()
    assert len((OUT / "history.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("task", TASK_NAMES)
def test_a_shifted_population_is_a_drift_breach(here: Path, task: str) -> None:
    c = setup_project(here, task)
    features, _, _ = c.window(ROWS, seed=4)
    numeric = [n for n, p in c.reference["features"].items() if p["kind"] == "numeric"]
    spread = c.features[numeric].std()
    shifted = features.assign(**{n: features[n] + spread[n] for n in numeric})
    log(here, c, shifted, c.answer(shifted))
    code, report = monitor()
    assert report is not None
    assert code == 1
    evidence = finding(report, "drift")["evidence"]
    assert finding(report, "drift")["breach"]
    assert evidence["share"] >= 0.5
    assert set(evidence["drifted"]) <= set(numeric)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_column_null_in_every_row_is_an_input_quality_breach_not_drift(
    here: Path, task: str
) -> None:
    c = setup_project(here, task)
    features, outputs, _ = c.window(ROWS, seed=5)
    broken = str(features.columns[0])
    log(here, c, features.assign(**{broken: np.nan}), outputs)
    code, report = monitor()
    assert report is not None
    assert (code, breached(report)) == (1, ["input_quality"])
    assert finding(report, "input_quality")["evidence"]["all_null"] == [broken]


def test_units_times_1000_are_a_scale_change(here: Path) -> None:
    c = setup_project(here, "multiclass")
    features, outputs, _ = c.window(ROWS, seed=6)
    log(here, c, features.assign(proline=features["proline"] * 1000), outputs)
    code, report = monitor()
    assert report is not None
    assert code == 1
    quality = finding(report, "input_quality")
    assert quality["breach"]
    assert quality["evidence"]["scale_changed"] == ["proline"]


def labels_file(path: Path, ids: list[str], actual: np.ndarray) -> Path:
    pd.DataFrame({"request_id": ids, TARGET: actual}).to_csv(path, index=False)
    return path


def decayed(c: Case, actual: np.ndarray, seed: int) -> np.ndarray:
    """Labels whose relation to the inputs broke: permuted among the rows."""
    return np.random.default_rng(seed).permutation(actual)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_labels_show_decayed_performance(here: Path, task: str) -> None:
    c = setup_project(here, task)
    rows = 600  # monitor.performance.min_labelled_rows: 500
    features, outputs, actual = c.window(rows, seed=7)
    ids = log(here, c, features, outputs)
    code, report = monitor("--labels", str(labels_file(here / "y.csv", ids, actual)))
    assert report is not None
    assert "performance" not in breached(report), finding(report, "performance")
    assert finding(report, "performance")["evidence"]["labelled_rows"] == rows

    wrong = labels_file(here / "wrong.csv", ids, decayed(c, actual, 0))
    code, report = monitor("--labels", str(wrong))
    assert report is not None
    assert code == 1
    performance = finding(report, "performance")
    assert performance["breach"]
    assert performance["evidence"]["breach"]
    assert performance["evidence"]["labelled_rows"] == rows
    assert "performance" in breached(report)
    assert len((OUT / "history.jsonl").read_text().splitlines()) == 2


def test_labels_in_a_european_export_read_as_any_input_file(here: Path) -> None:
    """A gzipped, ';'-separated labels file with decimal commas, named as a person would
    (Target): read as `mlops respond` and `--input` files are, not as plain CSV."""
    c = setup_project(here, "regression")
    rows = 600
    features, outputs, actual = c.window(rows, seed=7)
    ids = log(here, c, features, outputs)
    text = pd.DataFrame({"Request ID": ids, "Target": actual}).to_csv(
        index=False, sep=";", decimal=","
    )
    assert "," in text  # the values carry decimal commas
    path = here / "labels.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    _, report = monitor("--labels", str(path))
    assert report is not None
    assert finding(report, "performance")["evidence"]["labelled_rows"] == rows
    assert "performance" not in breached(report)


def test_too_few_labels_are_reported_not_judged(here: Path) -> None:
    c = setup_project(here, "binary")
    features, outputs, actual = c.window(ROWS, seed=8)
    ids = log(here, c, features, outputs)
    few = labels_file(here / "y.csv", ids[:50], 1 - actual[:50])
    _, report = monitor("--labels", str(few))
    assert report is not None
    performance = finding(report, "performance")
    assert not performance["breach"]
    assert performance["evidence"]["labelled_rows"] == 50
    assert "50 labelled rows" in performance["summary"]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_nan_answers_are_a_stability_breach(here: Path, task: str) -> None:
    c = setup_project(here, task)
    features, outputs, _ = c.window(ROWS, seed=9)
    column = c.reference["prediction"]["drift_column"]
    broken = outputs.astype({column: object})
    broken.loc[: ROWS // 4, column] = None if broken[column].dtype == object else np.nan
    log(here, c, features, broken)
    code, report = monitor()
    assert report is not None
    assert code == 1
    stability = finding(report, "stability")
    assert stability["breach"]
    assert stability["evidence"]["nan"] == ROWS // 4 + 1


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_probabilities_out_of_range_are_a_stability_breach_not_a_crash(
    here: Path, task: str
) -> None:
    c = setup_project(here, task)
    features, outputs, actual = c.window(ROWS, seed=9)
    column = next(name for name in outputs.columns if str(name).startswith("probability"))
    broken = outputs.copy()
    broken.loc[: ROWS // 4, column] = 1.7  # a broken model, not a log loss to compute
    ids = log(here, c, features, broken)
    code, report = monitor("--labels", str(labels_file(here / "y.csv", ids, actual)))
    assert report is not None
    assert code == 1
    stability = finding(report, "stability")
    assert stability["breach"]
    assert stability["evidence"]["out_of_range"] >= ROWS // 4 + 1
    scored = ROWS - (ROWS // 4 + 1)  # the performance checks score the sound rows only
    assert finding(report, "performance")["evidence"]["labelled_rows"] == scored
    assert finding(report, "estimated_performance")["evidence"]["rows"] == scored


def test_a_window_of_refused_requests_only_is_an_input_quality_breach(here: Path) -> None:
    """Upstream broke every batch: nothing was answered, and that is the finding (an
    alert for respond), not an empty window."""
    setup_project(here, "binary")
    record = {"model_version": VERSION, "refused": True, "reason": "missing column(s): x"}
    lines = [
        json.dumps(record | {"logged_at": (START + timedelta(minutes=i)).isoformat(), "rows": 100})
        for i in range(3)
    ]
    path = here / LOGS / service.log_name(START.date())
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    code, report = monitor()
    assert report is not None
    assert code == 1
    assert report["rows"] == 0
    quality = finding(report, "input_quality")
    assert quality["breach"]
    assert quality["evidence"]["refused_rate"] == 1.0
    assert quality["evidence"]["refused_rows"] == 300
    assert finding(report, "drift")["summary"].startswith("not judged")
    assert breached(report) == ["input_quality"]
    assert (here / OUT / "monitoring.html").is_file()


def test_the_window_is_by_time_or_the_last_rows(here: Path) -> None:
    c = setup_project(here, "binary")
    features, outputs, _ = c.window(ROWS, seed=10)
    log(here, c, features, outputs)
    _, report = monitor("--last", "100")
    assert report is not None
    assert report["rows"] == 100
    since = (START + timedelta(seconds=300)).isoformat()
    _, report = monitor("--since", since)
    assert report is not None
    assert report["rows"] == ROWS - 300
    assert report["window"]["since"] == since


def test_rows_of_another_model_version_are_left_out(here: Path) -> None:
    c = setup_project(here, "binary")
    features, outputs, _ = c.window(ROWS, seed=11)
    log(here, c, features, outputs)
    log(here, c, features.iloc[:50], outputs.iloc[:50], version="v1.1.0")
    _, report = monitor()
    assert report is not None
    assert report["rows"] == ROWS
    assert report["counts"]["other_version"] == {"v1.1.0": 50}


def test_latency_not_logged_is_said_not_breached(here: Path) -> None:
    c = setup_project(here, "regression")
    features, outputs, _ = c.window(ROWS, seed=12)
    log(here, c, features, outputs)
    path = here / LOGS / service.log_name(START.date())
    records = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r | {"latency_ms": None}) + "\n" for r in records))
    _, report = monitor()
    assert report is not None
    latency = finding(report, "latency")
    assert (latency["breach"], latency["summary"]) == (False, "not logged")


def test_latency_far_above_the_baseline_is_a_breach(here: Path) -> None:
    c = setup_project(here, "binary")
    manifest_path = here / "models/production.json"
    manifest = json.loads(manifest_path.read_text())
    baseline = {"p50": 0.1, "p95": 0.2, "rows": 200}  # as promotion records it
    manifest_path.write_text(json.dumps(manifest | {"latency_ms": baseline}))
    features, outputs, _ = c.window(ROWS, seed=13)
    log(here, c, features, outputs)
    code, report = monitor()
    assert report is not None
    assert code == 1
    latency = finding(report, "latency")
    assert latency["breach"]
    assert latency["evidence"]["baseline_p95"] == 0.2


def test_an_old_model_is_stale(here: Path) -> None:
    c = setup_project(here, "binary", max_model_age_days=30)
    manifest_path = here / "models/production.json"
    manifest = json.loads(manifest_path.read_text())
    old = datetime.now(UTC) - timedelta(days=45)
    manifest_path.write_text(json.dumps(manifest | {"promoted_at": old.isoformat()}))
    features, outputs, _ = c.window(ROWS, seed=3)
    log(here, c, features, outputs)
    _, report = monitor()
    assert report is not None
    staleness = finding(report, "staleness")
    assert staleness["breach"]
    assert staleness["evidence"]["model_age_days"] == pytest.approx(45, abs=0.1)
    assert staleness["evidence"]["data_age_days"] is None


def test_the_reference_committed_with_production_is_used_after_a_new_training(
    here: Path,
) -> None:
    """A candidate trained since (its reference in the working tree, not promoted) does
    not change what production is compared with: the reference at its revision."""
    c = setup_project(here, "binary")
    reference = logged_reference("binary") | {"model_md5": "a" * 32}
    (here / "models/reference.json").write_text(json.dumps(reference))
    for command in (
        ["git", "init", "-q"],
        ["git", "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "m", "--allow-empty"],
        ["git", "add", "models/reference.json"],
        ["git", "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "reference"],
    ):
        run(command, here)
    head = run(["git", "rev-parse", "HEAD"], here).stdout.strip()
    manifest_path = here / "models/production.json"
    manifest_path.write_text(
        json.dumps(json.loads(manifest_path.read_text()) | {"git_revision": head})
    )
    candidate = reference | {"model_md5": "c" * 32, "task": "regression"}
    (here / "models/reference.json").write_text(json.dumps(candidate))
    features, outputs, _ = c.window(ROWS, seed=3)
    log(here, c, features, outputs)
    code, report = monitor()
    assert report is not None
    assert (code, breached(report)) == (0, [])


# --- bad input: exit 2, one line, nothing written ------------------------------------


def _refused(capsys: pytest.CaptureFixture[str], *arguments: str) -> str:
    code, report = monitor(*arguments)
    err = capsys.readouterr().err
    assert (code, report) == (2, None), err
    assert not OUT.exists()
    assert len(err.strip().splitlines()) == 1
    return err


def test_an_empty_window_is_bad_input(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = setup_project(here, "binary")
    features, outputs, _ = c.window(50, seed=1)
    log(here, c, features, outputs)
    err = _refused(capsys, "--since", "2027-01-01T00:00:00+00:00")
    assert f"no rows of model {VERSION}" in err


def test_labels_with_unknown_or_duplicate_ids_are_bad_input(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = setup_project(here, "binary")
    features, outputs, actual = c.window(50, seed=1)
    ids = log(here, c, features, outputs)
    twice = labels_file(here / "twice.csv", [ids[0], ids[0]], actual[:2])
    assert "more than once" in _refused(capsys, "--labels", str(twice))
    unknown = labels_file(here / "unknown.csv", ["nobody"], actual[:1])
    assert "not in the prediction log" in _refused(capsys, "--labels", str(unknown))
    odd = labels_file(here / "odd.csv", ids[:1], np.array([7]))
    assert "neither" in _refused(capsys, "--labels", str(odd))


def test_a_reference_of_another_model_or_corrupt_is_bad_input(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = logged_reference("binary") | {"model_md5": "b" * 32}
    c = setup_project(here, "binary", reference=reference)
    features, outputs, _ = c.window(50, seed=1)
    log(here, c, features, outputs)
    assert "not production's" in _refused(capsys)
    path = here / "models/reference.json"
    path.write_text(path.read_text()[:1000])
    assert "not valid JSON" in _refused(capsys, "--reference", str(path))
    path.write_text(json.dumps({"format": 1}))
    assert "not a monitoring reference profile" in _refused(capsys, "--reference", str(path))


def test_a_reference_of_another_task_is_bad_input(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = setup_project(here, "binary", reference=logged_reference("regression"))
    features, outputs, _ = c.window(50, seed=1)
    log(here, c, features, outputs)
    assert "regression model" in _refused(capsys)


def test_nothing_in_production_is_bad_input(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_project(here, "binary")
    (here / "models/production.json").unlink()
    assert "no model in production" in _refused(capsys)


def test_no_logs_is_bad_input(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_project(here, "binary")
    assert "prediction log folder not found" in _refused(capsys)


def test_a_discrete_feature_survives_the_log(here: Path) -> None:
    c = setup_project(here, "regression", reference=case("regression").reference)
    features, outputs, _ = c.window(ROWS, seed=3)
    log(here, c, features, outputs)
    _, report = monitor()
    assert report is not None
    assert finding(report, "input_quality")["evidence"]["unseen"] == {}
