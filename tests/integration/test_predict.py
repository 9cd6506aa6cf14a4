"""`mlops predict`: batch predictions by the model models/production.json names."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from unittest.mock import ANY

import pandas as pd
import pytest

from mlops.cli import main
from mlops.data.ingestion import ingest
from mlops.features.pipeline import TRUSTED_TYPES
from mlops.io import files, modelfile, tables
from mlops.monitoring.logs import Window, read_window
from tests.conftest import edit_params
from tests.integration.registry_project import (
    VERSIONS,
    cache_file,
    manifest,
)

ROWS = 200


@pytest.fixture
def batch(repo: Path, tmp_path: Path) -> Path:
    """Unseen rows in the source's own format: adult.test, headerless, labels with a dot."""
    lines = gzip.decompress((repo / "data/external/adult/adult.test.gz").read_bytes())
    path = tmp_path / "batch.csv"
    path.write_bytes(b"".join(lines.splitlines(keepends=True)[: ROWS + 1]))
    return path


def _production_model(repo: Path) -> object:
    data = cache_file(repo, manifest(repo)["model_md5"]).read_bytes()
    return modelfile.load_bytes(data, TRUSTED_TYPES, "test")


def _features(batch: Path) -> pd.DataFrame:
    params = files.load_params()
    return ingest(tables.read_source(params.data, batch), params.data).drop(columns=["income"])


def _logged(repo: Path) -> list[dict[str, object]]:
    files = sorted((repo / "logs/predictions").glob("predictions-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_predicts_a_csv_batch_and_logs_it(
    repo: Path, batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out" / "predictions.csv"
    assert main(["predict", "--input", str(batch), "--output", str(output)]) == 0
    assert f"{ROWS} predictions by model {VERSIONS[2]}" in capsys.readouterr().out
    table = pd.read_csv(output)
    expected = _production_model(repo).predict_proba(_features(batch))[:, 1]  # type: ignore[attr-defined]
    assert len(table) == ROWS
    assert table["probability"].to_numpy() == pytest.approx(expected, rel=1e-5)
    assert (table["prediction"] == (expected >= 0.5)).all()
    assert {"age", "income"} <= set(table.columns)  # inputs kept, labels too
    assert set(table["income"]) <= {"<=50K.", ">50K."}  # as given, not encoded
    logged = _logged(repo)
    assert len(logged) == ROWS
    assert logged[0]["model_version"] == VERSIONS[2]
    assert logged[0]["source"] == "batch"
    assert logged[0]["probability"] == pytest.approx(expected[0])
    assert dict(logged[0]["inputs"])["age"] == 25.0  # type: ignore[call-overload]


def test_each_row_has_a_request_id_in_the_output_and_the_log(
    repo: Path, batch: Path, tmp_path: Path
) -> None:
    """``<batch uuid>-<row>``, new per batch; the log, read back as monitoring reads it,
    holds the same ids, the batch's time per row, and a refused batch as one record of its rows."""
    first, second = tmp_path / "first.csv", tmp_path / "second.parquet"
    assert main(["predict", "--input", str(batch), "--output", str(first)]) == 0
    assert main(["predict", "--input", str(batch), "--output", str(second)]) == 0
    ids = pd.read_csv(first)["request_id"]
    batch_id = ids[0].removesuffix("-0")
    assert len(batch_id) == 32
    assert ids.tolist() == [f"{batch_id}-{row}" for row in range(ROWS)]
    again = pd.read_parquet(second)["request_id"]
    assert not set(again) & set(ids)
    broken = tmp_path / "broken.parquet"
    _features(batch).drop(columns=["age"]).to_parquet(broken)
    assert main(["predict", "--input", str(broken), "--output", str(tmp_path / "x.csv")]) == 1
    model = _production_model(repo)
    window = read_window(
        [(p.name, p.read_bytes()) for p in (repo / "logs/predictions").glob("*.jsonl")],
        list(model.feature_names_in_),  # type: ignore[attr-defined]
        ["probability", "prediction"],
        Window(),
    )
    assert window.counts.rows == 2 * ROWS
    assert window.counts.refused == 1
    assert window.counts.refused_rows == ROWS  # the batch was read, then refused whole
    assert [*window.counts.refused_reasons] == [ANY]
    assert "missing column(s): age" in next(iter(window.counts.refused_reasons))
    assert window.meta["request_id"].tolist() == [*ids, *again]
    assert (window.meta["latency_ms"] > 0).all()
    assert window.meta["latency_ms"].nunique() == 2  # one figure per batch


def test_predicts_parquet_without_labels_to_parquet(
    repo: Path, batch: Path, tmp_path: Path
) -> None:
    features = _features(batch)
    source = tmp_path / "batch.parquet"
    features.to_parquet(source)
    output = tmp_path / "predictions.parquet"
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 0
    table = pd.read_parquet(output)
    expected = _production_model(repo).predict_proba(features)[:, 1]  # type: ignore[attr-defined]
    assert table["probability"].tolist() == expected.tolist()  # exact: same bytes, same rows
    assert "income" not in table.columns


def test_the_input_comes_back_as_given_in_the_format_the_output_name_asks_for(
    repo: Path, tmp_path: Path
) -> None:
    """Names and values echoed untouched ("39" stays 39, "education-num" keeps its hyphen, a
    long decimal keeps its digits), in CSV, gzipped CSV, TSV, Parquet, JSON and JSON lines."""
    header = (repo / "params.yaml").read_text()  # the demo's own names, hyphens and all
    names = [
        "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
        "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
        "hours-per-week", "native-country",
    ]  # fmt: skip
    assert all(name in header for name in names)
    row = "39,State-gov,77516.123456789,Bachelors,13,Never-married,Adm-clerical,"
    row += "Not-in-family,White,Male,2174,0,40.0000001,United-States"
    source = tmp_path / "one.csv"
    source.write_text(",".join(names) + "\n" + row + "\n")
    written = {}
    for name in ("p.csv", "p.csv.gz", "p.tsv", "p.parquet", "p.json", "p.jsonl"):
        output = tmp_path / name
        assert main(["predict", "--input", str(source), "--output", str(output)]) == 0
        written[name] = output
    csv_text = _same_ids(written["p.csv"].read_text()).splitlines()
    assert csv_text[0].startswith(",".join(names) + ",request_id,probability,prediction")
    assert csv_text[1].startswith(row + ",")
    gzipped = gzip.decompress(written["p.csv.gz"].read_bytes()).decode()
    assert _same_ids(gzipped).splitlines() == csv_text
    assert written["p.tsv"].read_text().splitlines()[1].startswith(row.replace(",", "\t"))
    parquet = pd.read_parquet(written["p.parquet"])
    assert parquet["age"].tolist() == [39]
    assert parquet["fnlwgt"].tolist() == [77516.123456789]
    probability = float(csv_text[1].split(",")[-3])
    (answer,) = json.loads(written["p.json"].read_text())
    assert answer["hours-per-week"] == 40.0000001
    assert answer["probability"] == probability
    assert json.loads(_same_ids(written["p.jsonl"].read_text())) == json.loads(
        _same_ids(json.dumps(answer))
    )


def _same_ids(text: str) -> str:
    """The text with each batch's request ids (new per run) replaced by one placeholder."""
    return re.sub(r"[0-9a-f]{32}-(\d+)", r"BATCH-\1", text)


def test_an_output_name_without_a_known_format_is_refused_before_any_work(
    repo: Path, batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "p.xlsx"
    assert main(["predict", "--input", str(batch), "--output", str(output)]) == 2
    _refused(capsys, repo, output, 2, "cannot tell the output format from its name")


def test_an_input_column_named_like_an_output_column_is_kept_apart(
    repo: Path, batch: Path, tmp_path: Path
) -> None:
    edit_params(repo, validate={"extra_columns": "allow"})  # an extra column is echoed
    source = tmp_path / "with-prediction.parquet"
    _features(batch).assign(prediction="from upstream").to_parquet(source)
    output = tmp_path / "p.parquet"
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 0
    table = pd.read_parquet(output)
    assert set(table["prediction_input"]) == {"from upstream"}
    assert set(table["prediction"]) <= {0, 1}


def test_old_log_days_are_removed(repo: Path, batch: Path, tmp_path: Path) -> None:
    logs = repo / "logs/predictions"
    logs.mkdir(parents=True)
    (logs / "predictions-2000-01-01.jsonl").write_text("{}\n")
    (logs / "notes.txt").write_text("kept")
    assert main(["predict", "--input", str(batch), "--output", str(tmp_path / "p.csv")]) == 0
    names = sorted(p.name for p in logs.iterdir())
    assert "predictions-2000-01-01.jsonl" not in names
    assert "notes.txt" in names
    assert len(names) == 2


def _refused(
    capsys: pytest.CaptureFixture[str], repo: Path, output: Path, code: int, message: str
) -> None:
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert not output.exists()
    if code == 2:  # a usage error: no batch was read, nothing is logged
        assert not (repo / "logs").exists()
        return
    [record] = _logged(repo)  # a refused batch: one record, its reason, none of its rows
    assert record["refused"] is True
    assert message in str(record["reason"])
    assert "inputs" not in record


def test_a_batch_that_breaks_the_contract_is_refused(
    repo: Path, batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "no-age.parquet"
    _features(batch).drop(columns=["age"]).assign(extra=1.0).to_parquet(source)
    output = tmp_path / "p.csv"
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 1
    _refused(capsys, repo, output, 1, "missing column(s): age; unexpected column(s): extra")


def test_wrong_types_are_refused(
    repo: Path, batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "typed.parquet"
    _features(batch).assign(sex=1.0).to_parquet(source)
    output = tmp_path / "p.csv"
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 1
    _refused(capsys, repo, output, 1, "column 'sex' failed dtype")


def test_a_model_whose_bytes_do_not_match_is_refused(
    repo: Path, batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cached = cache_file(repo, manifest(repo)["model_md5"])
    cached.chmod(0o644)
    cached.write_bytes(cached.read_bytes() + b"tampered")
    output = tmp_path / "p.csv"
    assert main(["predict", "--input", str(batch), "--output", str(output)]) == 2
    _refused(capsys, repo, output, 2, "bytes do not match md5")


def test_a_production_model_of_another_task_is_refused(
    repo: Path, batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A regressor in production while params.yaml says binary: one line, exit 2."""
    from sklearn.linear_model import Ridge

    numbers = _features(batch).select_dtypes("number")
    regressor = Ridge().fit(numbers, range(len(numbers)))
    saved = tmp_path / "regressor.skops"
    modelfile.dump(saved, regressor)
    md5 = files.file_md5(saved)
    cached = cache_file(repo, md5)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(saved.read_bytes())
    path = repo / "models/production.json"
    path.write_text(json.dumps(manifest(repo) | {"model_md5": md5}))
    output = tmp_path / "p.csv"
    assert main(["predict", "--input", str(batch), "--output", str(output)]) == 2
    _refused(
        capsys,
        repo,
        output,
        2,
        "the model does not fit params.yaml data.task 'binary': it gives no class "
        "probabilities (a regressor?); promote a model trained for this task",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no manifest", "models/production.json not found: promote a model first"),
        ("corrupt manifest", "corrupt production manifest: promoted_at"),
        ("not json", "production manifest is not valid JSON"),
        ("missing input", "input file not found"),
    ],
)
def test_bad_inputs_are_refused(
    repo: Path, batch: Path, capsys: pytest.CaptureFixture[str], change: str, message: str
) -> None:
    tmp_path = batch.parent
    path = repo / "models/production.json"
    if change == "no manifest":
        path.unlink()
    elif change == "corrupt manifest":
        path.write_text(json.dumps(manifest(repo) | {"promoted_at": "yesterday"}))
    elif change == "not json":
        path.write_text("{")
    elif change == "missing input":
        batch = tmp_path / "nowhere.csv"
    output = tmp_path / "p.csv"
    assert main(["predict", "--input", str(batch), "--output", str(output)]) == 2
    _refused(capsys, repo, output, 2, message)


# --- a feature missing in production: imputed and flagged, or refused -----------------------


def _gappy(batch: Path, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """The batch with 5 % of ``age`` (numeric) and of ``education`` (categorical) missing."""
    features = _features(batch)
    age_gaps, education_gaps = list(range(0, ROWS, 20)), list(range(7, ROWS, 20))
    gappy = features.assign(
        age=features["age"].mask(features.index.isin(age_gaps)),
        education=features["education"].mask(features.index.isin(education_gaps)),
    )
    source = tmp_path / "gappy.parquet"
    gappy.to_parquet(source)
    return source, gappy


def test_missing_feature_values_are_imputed_and_flagged(
    repo: Path, batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, gappy = _gappy(batch, tmp_path)
    output = tmp_path / "predictions.parquet"
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "age in 10 row(s)" in out
    assert "education in 10 row(s)" in out
    table = pd.read_parquet(output)
    model = _production_model(repo)
    expected = model.predict_proba(gappy)[:, 1]  # type: ignore[attr-defined]
    assert table["probability"].tolist() == expected.tolist()
    # rows without gaps get what they get without the gappy rows
    complete = _features(batch)
    untouched = ~(gappy["age"].isna() | gappy["education"].isna())
    alone = model.predict_proba(complete[untouched])[:, 1]  # type: ignore[attr-defined]
    assert table["probability"][untouched].tolist() == alone.tolist()
    # adult.test lacks some workclass and occupation values too (nullable: imputed as ever)
    features = list(model.feature_names_in_)  # type: ignore[attr-defined]
    gaps = gappy[features].isna()
    flags = [[f for f in features if row[f]] for _, row in gaps.iterrows()]
    assert table["imputed"].tolist() == [";".join(names) for names in flags]
    assert all("age" in names for names in flags[::20])
    assert all("education" in names for names in flags[7::20])
    logged = _logged(repo)
    assert [entry["imputed"] for entry in logged] == flags


def test_refuse_keeps_refusing_missing_feature_values(
    repo: Path, batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_params(repo, serve={"missing_values": "refuse"})
    source, _ = _gappy(batch, tmp_path)
    output = tmp_path / "p.csv"
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 1
    _refused(capsys, repo, output, 1, "column 'age' failed not_nullable in 10 row(s)")


def test_a_missing_column_is_still_refused_under_impute(
    repo: Path, batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert files.load_params().serve.missing_values == "impute"
    source, gappy = _gappy(batch, tmp_path)
    gappy.drop(columns=["education"]).to_parquet(source)
    output = tmp_path / "p.csv"
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 1
    _refused(capsys, repo, output, 1, "missing column(s): education")
