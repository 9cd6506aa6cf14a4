"""`mlops evaluate` on a project trained by `dvc repro` on a small sample."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops.cli import main
from mlops.io import files, modelfile
from mlops.tasks.metrics import report_names
from tests.conftest import edit_params
from tests.model.trained import run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def snapshot(project: Path) -> dict[str, bytes]:
    """Every report and plot, byte for byte."""
    return {
        str(p.relative_to(project)): p.read_bytes()
        for p in sorted((project / "reports").rglob("*"))
        if p.is_file()
    }


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith("mlops evaluate: error: ")
    for fragment in fragments:
        assert fragment in err


def declared_plots(project: Path) -> set[str]:
    """The files dvc.yaml's top-level plots section draws."""
    plots = yaml.safe_load((project / "dvc.yaml").read_text())["plots"]
    return {entry if isinstance(entry, str) else next(iter(entry)) for entry in plots}


def test_dvc_repro_wrote_metrics_details_and_every_declared_plot(trained: Path) -> None:
    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert set(metrics) <= set(report_names("binary", ("majority", "logistic")))
    assert all(isinstance(v, float) and round(v, 6) == v for v in metrics.values())
    assert metrics["roc_auc"] > metrics["baseline_majority"]
    # The lead over each baseline has a measured noise, small and above zero on these rows.
    assert 0 < metrics["margin_noise_logistic"] < 0.1
    assert 0 < metrics["margin_noise_majority"] < 0.1
    details = json.loads(Path("reports/evaluation.json").read_text())
    assert {"test", "train", "baselines", "business", "slices", "importance"} <= set(details)
    assert details["business"]["correlation"]["available"] is False  # no trials table yet
    assert "business_correlation" not in metrics
    assert "business_correlation" in details["unavailable"]
    written = {str(p) for p in Path("reports/plots").iterdir()}
    assert written <= declared_plots(trained)
    stems = {Path(p).stem for p in written}
    assert stems == {"roc", "pr", "confusion", "calibration", "importance", "business"}
    assert {Path(p).stem for p in written if p.endswith(".png")} == stems
    for plot in written:
        data = Path(plot).read_bytes()
        assert data.startswith(PNG_MAGIC) if plot.endswith(".png") else data


def test_evaluate_again_gives_identical_bytes(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(trained)
    assert run_cli(capsys, "evaluate")[0] == 0
    after = snapshot(trained)
    evaluated = {k: v for k, v in before.items() if k != "reports/validation.json"}
    assert {k: after[k] for k in evaluated} == evaluated  # PNGs included


def test_business_correlation_over_tuning_trials(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trials = pd.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "value": [0.80, 0.85, 0.90, 0.88],
            "params_family": ["hist_gradient_boosting"] * 4,
            "params_hist_gradient_boosting.learning_rate": [0.3, 0.03, 0.1, 0.05],
            "params_hist_gradient_boosting.max_leaf_nodes": [64, 8, 16, 31],
            "params_hist_gradient_boosting.min_samples_leaf": [200, 10, 20, 40],
            "params_hist_gradient_boosting.l2_regularization": [1e-6, 1.0, 0.1, 10.0],
            "params_hist_gradient_boosting.max_features": [0.5, 1.0, 0.8, 0.6],
            "state": ["COMPLETE"] * 4,
        }
    )
    files.write_csv(Path("reports/tuning/trials.csv"), trials)
    business = yaml.safe_load(Path("params.yaml").read_text())["evaluate"]["business"]
    edit_params(
        trained,
        evaluate={"business": business | {"correlation_trials": 4, "correlation_rows": 800}},
    )
    assert run_cli(capsys, "evaluate")[0] == 0
    correlation = json.loads(Path("reports/evaluation.json").read_text())["business"]["correlation"]
    assert correlation["available"] is True
    assert [t["trial"] for t in correlation["trials"]] == [0, 1, 3, 2]  # by CV score
    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert -1.0 <= metrics["business_correlation"] <= 1.0
    assert metrics["business_correlation"] == round(correlation["spearman"], 6)


def test_a_plot_of_another_task_left_in_the_folder_is_removed(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = Path("reports/plots/residuals.csv")
    stale.write_text("predicted,residual\n1,0\n")
    assert run_cli(capsys, "evaluate")[0] == 0
    assert not stale.exists()
    assert Path("reports/plots/roc.csv").is_file()


def test_dvc_plots_show_draws_a_binary_run(trained: Path) -> None:
    """The plots section names every task's files: those a binary run did not write are
    skipped, not an error."""
    result = run(trained, "dvc", "plots", "show", "--json")
    assert result.returncode == 0, result.stderr
    drawn = {name for name, data in json.loads(result.stdout)["data"].items() if data}
    assert {"reports/plots/roc.csv", "reports/plots/business.png"} <= drawn
    assert "reports/plots/residuals.csv" not in drawn


def test_a_slice_attribute_that_is_not_a_column(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(trained, evaluate={"slices": {"columns": ["gender"], "bands": {}, "min_rows": 5}})
    before = snapshot(trained)
    code, _, err = run_cli(capsys, "evaluate")
    assert code == 2
    assert_one_line_error(err, "evaluate.slices.columns: no column 'gender' in the test split")
    assert snapshot(trained) == before


def test_a_protected_attribute_missing_from_the_data(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = yaml.safe_load((trained / "params.yaml").read_text())
    edit_params(trained, validate={**document["validate"], "protected": ["sex", "religion"]})
    before = snapshot(trained)
    code, _, err = run_cli(capsys, "evaluate")
    assert code == 2
    assert_one_line_error(err, "validate.protected: no column 'religion' in the test split")
    assert snapshot(trained) == before


def test_a_stream_that_does_not_read_as_the_source(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (trained / "data/external/later.csv").write_text("a,b\n1,2\n")
    document = yaml.safe_load((trained / "params.yaml").read_text())
    staleness = {**document["evaluate"]["staleness"], "stream": "data/external/later.csv"}
    edit_params(trained, evaluate={**document["evaluate"], "staleness": staleness})
    before = snapshot(trained)
    code, _, err = run_cli(capsys, "evaluate")
    assert code == 2
    assert_one_line_error(err, "evaluate.staleness.stream data/external/later.csv: ", "null if")
    assert snapshot(trained) == before


def test_fairness_proxies_and_staleness_reach_the_reports(trained: Path) -> None:
    """dvc repro measured parity across validate.protected, the proxies of sex, and the
    decay over the demo's held-out stream, in evaluate.staleness.windows windows."""
    details = json.loads(Path("reports/evaluation.json").read_text())
    params = yaml.safe_load(Path("params.yaml").read_text())
    fairness = details["fairness"]
    assert fairness["protected"] == params["validate"]["protected"]
    assert {a["attribute"] for a in fairness["attributes"]} == set(fairness["protected"])
    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert metrics["fairness_groups_too_small"] == len(fairness["too_small"])
    assert "relationship" in {p["feature"] for p in fairness["proxies"]["proxies"]}
    staleness = details["staleness"]
    assert staleness["available"] is True
    windows = params["evaluate"]["staleness"]["windows"]
    assert len(staleness["windows"]) == windows
    assert staleness["fit"]["decay_bound_per_day"] > staleness["fit"]["decay_per_day"]


def test_a_tampered_model_is_refused(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = Path("models/model.skops")
    data = bytearray(model.read_bytes())
    data[-100] ^= 0x01
    model.write_bytes(bytes(data))
    before = snapshot(trained)
    code, _, err = run_cli(capsys, "evaluate")
    assert code == 2
    assert_one_line_error(err, "models/model.skops: md5", "recorded in dvc.lock", "dvc checkout")
    assert snapshot(trained) == before


def test_a_foreign_model_is_refused_even_with_a_matching_lock(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = Path("models/model.skops")
    lock = Path("dvc.lock")
    old_md5 = files.file_md5(model)
    modelfile.dump(model, make_pipeline(FunctionTransformer(os.system)))
    lock.write_text(lock.read_text().replace(old_md5, files.file_md5(model)))
    before = snapshot(trained)
    code, _, err = run_cli(capsys, "evaluate")
    assert code == 2
    assert_one_line_error(err, "model file contains untrusted types", "system")
    assert snapshot(trained) == before


def test_a_missing_test_split(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("data/split/test.parquet").unlink()
    before = snapshot(trained)
    code, _, err = run_cli(capsys, "evaluate")
    assert code == 2
    assert_one_line_error(err, "data/split/test.parquet: test split", "not found")
    assert snapshot(trained) == before
