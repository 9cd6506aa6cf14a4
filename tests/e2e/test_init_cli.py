"""`mlops init` in a throwaway copy of the project: a user's file onboarded in one command,
and bad input refused in one line, exit 2, with nothing written."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.cli import main
from mlops.config import parse_params
from tests.conftest import copy_project, run
from tests.sklearn_frames import user_file


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project as cloned: its own git and DVC repositories, everything committed."""
    project = copy_project(tmp_path_factory.mktemp("template") / "project")
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "template"], project)
    return project


@pytest.fixture
def project(committed: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(committed, tmp_path / "project", symlinks=True))


def _init(project: Path, *arguments: str) -> tuple[int, str, str]:
    done = run(["mlops", "init", *arguments], project, check=False)
    return done.returncode, done.stdout, done.stderr


def _ingested(project: Path, path: Path, target: str) -> tuple[str, pd.DataFrame]:
    """init's output on ``path`` (no DVC), then the raw data set ``mlops ingest`` reads."""
    code, out, err = _init(project, "--data", str(path), "--target", target, "--no-dvc")
    assert code == 0, err
    run(["mlops", "ingest"], project)
    return out, pd.read_parquet(project / "data/raw/dataset.parquet")


def _unchanged(project: Path) -> None:
    """Nothing written: git sees no change, and no file was copied in."""
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    assert status == ""


def _refused(project: Path, *arguments: str) -> str:
    code, out, err = _init(project, *arguments)
    assert code == 2, out + err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    _unchanged(project)
    return err


def _users_file(folder: Path) -> Path:
    """A CSV as users have them: "NA" markers in a numeric column, an id column, e-mails,
    two rows not yet labelled."""
    wine, _target = user_file("multiclass")
    frame = wine.assign(
        rownames=np.arange(1, len(wine) + 1),
        contact=[f"grower{i % 40}@example.com" for i in range(len(wine))],
    ).astype({"alcohol": "object"})
    frame.loc[::17, "alcohol"] = "NA"
    frame.loc[[3, 100], "cultivar"] = None
    path = folder / "wine.csv"
    frame[["rownames", "contact", *wine.columns]].to_csv(path, index=False)
    return path


def test_a_users_file_is_onboarded(project: Path, tmp_path: Path) -> None:
    code, out, err = _init(project, "--data", str(_users_file(tmp_path)), "--target", "cultivar")
    assert code == 0, err
    params = parse_params(yaml.safe_load((project / "params.yaml").read_text()))
    assert params.data.source == "data/external/wine.csv"
    assert (params.data.task, params.data.na_values) == ("multiclass", ("NA",))
    assert params.tune.metric == "log_loss"
    assert params.validate_.privacy.drop == ("contact",)  # validation would fail on it
    assert (project / "data/external/wine.csv").read_bytes() == (tmp_path / "wine.csv").read_bytes()
    assert (project / "data/external/wine.csv.dvc").is_file()  # kept under DVC, not git
    schema = yaml.safe_load((project / "data/schema.yaml").read_text())
    assert "rownames" in schema["columns"]
    assert "id columns, kept out of the model's features: rownames (" in out
    assert "176 rows, 14 features" in out  # 13 measurements and contact; not rownames
    assert "2 rows have no cultivar value: left out as the data is read" in out
    assert schema["columns"]["rownames"].get("description")  # drafted as an id, not a feature
    assert "alcohol ('NA')" in out
    assert "no protected attributes set" in out
    assert "# Every knob of the pipeline" in (project / "params.yaml").read_text()


def test_no_dvc_leaves_tracking_to_the_user(project: Path, tmp_path: Path) -> None:
    arguments = ["--data", str(_users_file(tmp_path)), "--target", "cultivar", "--no-dvc"]
    code, out, err = _init(project, *arguments)
    assert code == 0, err
    assert not (project / "data/external/wine.csv.dvc").exists()
    assert "dvc add data/external/wine.csv" in out


def test_the_commands_said_run_as_written_for_a_name_with_spaces(
    project: Path, tmp_path: Path
) -> None:
    """A file saved as "Wine Data (2024).csv": the review's git add must be pasteable."""
    path = _users_file(tmp_path).rename(tmp_path / "Wine Data (2024).csv")
    code, out, err = _init(project, "--data", str(path), "--target", "cultivar")
    assert code == 0, err
    said = re.search(r"(git add .*), then dvc push", out)
    assert said is not None, out
    run(["bash", "-c", said[1]], project)
    staged = run(["git", "diff", "--cached", "--name-only"], project).stdout
    assert "data/external/Wine Data (2024).csv.dvc" in staged


def test_an_unreadable_file(project: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "data.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert "binary content" in _refused(project, "--data", str(garbage), "--target", "y")
    err = _refused(project, "--data", str(tmp_path / "absent.csv"), "--target", "y")
    assert "not found" in err
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x07" * 64)
    assert "not a readable Parquet file" in _refused(
        project, "--data", str(broken), "--target", "y"
    )
    header_only = tmp_path / "header.csv"
    header_only.write_text("x,y\n")
    assert "no data rows" in _refused(project, "--data", str(header_only), "--target", "y")
    titled = tmp_path / "report.csv"
    rows = "".join(f"{i},{i % 2},{i * 3}\n" for i in range(40))
    titled.write_text("Working hours report\nGenerated 2024-01-05\n\nx,y,z\n" + rows)
    assert _refused(project, "--data", str(titled), "--target", "y").endswith(
        "the column names ('y' among them) come after 2 row(s) of a title or group headings "
        "(Working hours report | Generated 2024-01-05); delete the rows above the names and "
        "rerun mlops init\n"
    )
    # A spreadsheet's group headings over its names: as many fields, so pandas reads
    # them as the header, and the target was "not in the data".
    grouped = tmp_path / "grouped.csv"
    grouped.write_text("Money,,Person\nx,y,z\n" + rows)
    assert _refused(project, "--data", str(grouped), "--target", "y").endswith(
        "the column names ('y' among them) come after 1 row(s) of a title or group headings "
        "(Money, Person); delete the rows above the names and rerun mlops init\n"
    )
    # Without the target's name, a title is still told by its fields.
    assert _refused(project, "--data", str(titled), "--target", "w").endswith(
        "not a readable CSV file: line 4 has 3 fields, the lines above it 1; if the file "
        "starts with a title or notes above its header row, delete those lines\n"
    )
    units = tmp_path / "instrument.csv"
    units.write_text(
        "time,temp,site,y\ns,degC,,\n" + "".join(f"{i},{20 + i % 7},a,{i}\n" for i in range(40))
    )
    assert _refused(project, "--data", str(units), "--target", "y").endswith(
        "the row under the header holds text in 2 column(s) whose other values are numbers "
        "(time 's', temp 'degC'); if it gives units or notes, delete that row (or move "
        "them into the column names)\n"
    )


def test_notes_above_the_header_are_read_past(project: Path, tmp_path: Path) -> None:
    """An export's "# exported by ..." lines above its header were refused as a title;
    as no value holds a "#", they are comments (data.comment)."""
    rows = "".join(f"{i},{i % 2},{i * 3}\n" for i in range(40))
    noted = tmp_path / "crm.csv"
    noted.write_text("# exported by CRM 2.3\n# 2024-05-01\nx,y,z\n" + rows)
    out, raw = _ingested(project, noted, "y")
    assert "lines starting with '#' are notes, not data (data.comment)" in out
    assert len(raw) == 40


def test_a_missing_target_suggests_close_names(project: Path, tmp_path: Path) -> None:
    path = _users_file(tmp_path)
    err = _refused(project, "--data", str(path), "--target", "cultivars")
    assert "did you mean cultivar" in err


def test_an_ambiguous_target(project: Path, tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("Income,income,x\n1,0,1.5\n0,1,2.5\n1,1,3.5\n0,0,4.5\n")
    assert "ambiguous" in _refused(project, "--data", str(path), "--target", "income")
    err = _refused(project, "--data", str(path), "--target", "x")
    assert "columns named alike once normalised: income" in err


def test_a_target_with_one_class_or_a_class_seen_once(project: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(30.0), "y": ["a"] * 30})
    frame.to_csv(path := tmp_path / "one.csv", index=False)
    assert "holds only 'a'" in _refused(project, "--data", str(path), "--target", "y")
    frame.assign(y=["a", "b"] * 14 + ["b", "c"]).to_csv(path, index=False)
    err = _refused(project, "--data", str(path), "--target", "y")
    assert "without the classes seen fewer than 4 times ('c' (1 row)), 2 remain" in err
    # A binary class can't be left out: the task would have one class.
    frame.assign(y=["no"] * 27 + ["yes"] * 3).to_csv(path, index=False)
    assert "['yes'] seen 3 times; each class needs at least 4 rows" in _refused(
        project, "--data", str(path), "--target", "y"
    )


def test_a_rare_class_is_left_out_at_split_and_named(project: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(40.0), "y": ["a", "b", "c"] * 12 + ["d"] * 3 + ["a"]})
    frame.to_csv(path := tmp_path / "rare.csv", index=False)
    code, out, err = _init(project, "--data", str(path), "--target", "y")
    assert code == 0, err
    assert "classes too rare to split and cross-validate: 'd' (3 rows); their rows are" in out


def test_a_target_of_classes_mostly_too_rare_is_refused(project: Path, tmp_path: Path) -> None:
    """A column of product codes (or of numbers init could not read) given as the target:
    most classes seen once or twice, so split would leave out most rows."""
    codes = [f"P-{i // 2:03d}" for i in range(200)] + ["a", "b", "c"] * 20
    frame = pd.DataFrame({"x": np.arange(260.0), "code": codes})
    frame.to_csv(path := tmp_path / "codes.csv", index=False)
    message = _refused(project, "--data", str(path), "--target", "code")
    assert message == (
        "mlops init: error: target column 'code': 100 of its 103 classes are seen fewer than "
        "4 times, and leaving them out would leave out 200 of 260 rows: is it a number "
        "(--task regression), a text or id column (another --target), or classes to merge?\n"
    )


def test_a_suspected_leak_is_found_beside_a_rare_class_and_left_out(
    project: Path, tmp_path: Path
) -> None:
    """A code that names the class (a column filled in once the outcome is known), in a
    file with a class seen once: the check runs without that class, as split will."""
    rng = np.random.default_rng(0)
    labels = [str(v) for v in rng.choice(["a", "b", "c"], 600)]
    labels[0] = "zz"
    frame = pd.DataFrame({
        "x": rng.normal(size=600),
        "code": [label.upper() + "-1" for label in labels],
        "label": labels,
    })  # fmt: skip
    frame.to_csv(path := tmp_path / "coded.csv", index=False)
    code, out, err = _init(project, "--data", str(path), "--target", "label", "--no-dvc")
    assert code == 0, err
    assert "suspected target leaks, each alone forecasting label all but perfectly" in out
    assert "code (1.00); listed in data.drop (never read)" in out
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["data"]["drop"] == ["code"]
    assert "code" not in yaml.safe_load((project / "data/schema.yaml").read_text())["columns"]


def test_a_leak_near_the_bound_is_told_as_validate_will_tell_it(
    project: Path, tmp_path: Path
) -> None:
    """A grade that all but gives the value away, its skill alone close to
    validate.leakage.max_skill (0.95): measured on the whole file it was 0.92 and kept,
    then validate stopped on it at 0.96 on the training split (openintro's loans:
    grade). init measures it as validate will, on the training split."""
    rng = np.random.default_rng(18)
    y = rng.normal(size=600)
    grade = np.digitize(y + rng.normal(scale=0.12, size=600), np.linspace(-2.5, 2.5, 9))
    frame = pd.DataFrame({"x": rng.normal(size=600), "grade": [f"G{g}" for g in grade], "y": y})
    frame.to_csv(path := tmp_path / "loans.csv", index=False)
    code, out, err = _init(project, "--data", str(path), "--target", "y", "--no-dvc")
    assert code == 0, err
    assert "grade (0.96); listed in data.drop" in out
    for stage in ("ingest", "split", "validate"):
        done = run(["mlops", stage], project, check=False)
        assert done.returncode == 0, done.stderr


def test_a_target_that_follows_from_its_only_feature_keeps_it_for_review(
    project: Path, tmp_path: Path
) -> None:
    """Dropping every feature as a suspected leak would leave nothing to learn from:
    init keeps them, says validate will stop on them and how to allow them."""
    x = np.random.default_rng(1).normal(size=400)
    pd.DataFrame({"x": x, "price": 10 * x + 50}).to_csv(path := tmp_path / "rule.csv", index=False)
    code, out, err = _init(project, "--data", str(path), "--target", "price", "--no-dvc")
    assert code == 0, err
    assert "every feature alone forecasting price all but perfectly" in out
    assert "list them in validate.leakage.allow" in out
    assert yaml.safe_load((project / "params.yaml").read_text())["data"]["drop"] == []


def test_labels_differing_only_in_case_are_named(project: Path, tmp_path: Path) -> None:
    labels = ["Yes", "yes", "No"] * 100
    x = np.random.default_rng(2).normal(size=300)
    pd.DataFrame({"x": x, "answer": labels}).to_csv(path := tmp_path / "case.csv", index=False)
    code, out, err = _init(project, "--data", str(path), "--target", "answer", "--no-dvc")
    assert code == 0, err
    assert (
        "labels of answer differing only in letter case, each a class of its own: "
        "'Yes' (100 rows), 'yes' (100 rows); if they mean the same, write them alike" in out
    )


def test_a_target_of_numbers_grouped_by_spaces_is_a_regression(
    project: Path, tmp_path: Path
) -> None:
    """A French export: ";" between fields, decimal commas, thousands grouped by a space
    ("5 914,00"), which pandas leaves as text. It was a multiclass target of 300 classes,
    most of them dropped as too rare."""
    rng = np.random.default_rng(3)
    carat = rng.uniform(0.2, 2.5, 300).round(2)
    price = carat * 4000 + rng.normal(0, 300, 300)
    frame = pd.DataFrame(
        {
            "carat": [f"{c:.2f}".replace(".", ",") for c in carat],
            "price": [f"{p:,.2f}".replace(",", " ").replace(".", ",") for p in price],
        }
    )
    frame.to_csv(path := tmp_path / "french.csv", index=False, sep=";")
    code, out, err = _init(project, "--data", str(path), "--target", "price", "--no-dvc")
    assert code == 0, err
    assert "task: regression on 'price'" in out
    params = parse_params(yaml.safe_load((project / "params.yaml").read_text()), "params")
    assert (params.data.task, params.data.decimal, params.data.separator) == (
        "regression",
        ",",
        ";",
    )


@pytest.mark.parametrize("written", ["csv", "quoted", "json"])
def test_a_total_row_under_a_target_of_numbers_is_read_as_missing(
    project: Path, tmp_path: Path, written: str
) -> None:
    """A spreadsheet export ending in a "Total" row: the word in the target column made
    it text, a multiclass target of 300 classes. Read as a missing value, the target is
    a regression's and that row is left out as unlabelled: also when the word is quoted
    with a space after it (pandas matches a CSV's markers as written) and in a JSON
    file (whose strings pandas matches to no marker)."""
    rng = np.random.default_rng(4)
    hours = rng.integers(100, 2500, 300)
    frame = pd.DataFrame({"hours": hours.astype(object), "age": rng.integers(20, 60, 300)})
    word = "Total " if written == "quoted" else "Total"
    export = pd.concat([frame, pd.DataFrame({"hours": [word], "age": [None]})])
    path = tmp_path / f"export.{'json' if written == 'json' else 'csv'}"
    if written == "json":
        export.to_json(path, orient="records")
    else:
        export.to_csv(path, index=False, quoting=csv.QUOTE_ALL if written == "quoted" else None)
    out, raw = _ingested(project, path, "hours")
    assert "task: regression on 'hours'" in out
    assert "hours ('Total')" in out.split("read as missing values: ")[1].splitlines()[0]
    assert "1 row has no hours value" in out
    params = parse_params(yaml.safe_load((project / "params.yaml").read_text()), "params")
    assert params.data.task == "regression"
    assert "Total" in params.data.na_values
    assert len(raw) == 300
    np.testing.assert_array_equal(raw["hours"].to_numpy(), hours.astype(float))


def test_a_class_named_none_is_a_class(project: Path, tmp_path: Path) -> None:
    """R's Arthritis outcome None/Some/Marked: pandas' default markers read None as
    missing, so init saw a binary target of Some/Marked and a third of the rows went."""
    rng = np.random.default_rng(5)
    outcome = rng.choice(["None", "Some", "Marked"], 300)
    frame = pd.DataFrame({"age": rng.integers(20, 80, 300), "improved": outcome})
    frame.to_csv(path := tmp_path / "arthritis.csv", index=False)
    code, out, err = _init(project, "--data", str(path), "--target", "improved", "--no-dvc")
    assert code == 0, err
    assert "task: multiclass on 'improved' (3 classes)" in out
    assert "have no improved value" not in out


def test_censored_values_keep_a_column_of_numbers(project: Path, tmp_path: Path) -> None:
    """A lab export's "<5" (under the detection limit) made its column text, which
    validate failed for cardinality: the feature was lost to the model."""
    rng = np.random.default_rng(6)
    insulin = rng.lognormal(3, 1, 200).round(1).astype(object)
    insulin[::7] = "<5"
    frame = pd.DataFrame({"insulin": insulin, "age": rng.integers(20, 80, 200)})
    frame["y"] = np.where(rng.random(200) < 0.5, "yes", "no")
    frame.to_csv(path := tmp_path / "lab.csv", index=False)
    out, raw = _ingested(project, path, "y")
    assert "read as missing values: insulin ('<5')" in out
    assert "'<5' give(s) only a bound (a detection limit" in out
    assert raw["insulin"].dtype == "float64"
    assert raw["insulin"].isna().sum() == len(insulin[::7])


def test_accounting_negatives_are_numbers(project: Path, tmp_path: Path) -> None:
    """Excel's accounting format saved as CSV: "(5,111.33)" for -5111.33, in a feature
    and in the target. Both were text: a category per amount, and a target of classes."""
    rng = np.random.default_rng(3)
    balance = rng.normal(0, 2000, 300).round(2)
    x = rng.normal(size=300)
    net = (balance * 0.3 + x * 600 + rng.normal(0, 300, 300)).round(2)  # no column alone
    written = [[f"({-v:,.2f})" if v < 0 else f"{v:,.2f}" for v in c] for c in (balance, net)]
    frame = pd.DataFrame({"balance": written[0], "x": x, "net": written[1]})
    frame.to_csv(path := tmp_path / "ledger.csv", index=False)
    out, raw = _ingested(project, path, "net")
    assert "task: regression on 'net'" in out
    assert "read as plain numbers: balance ((1) for -1)" in out
    np.testing.assert_array_equal(raw["balance"].to_numpy(), balance)
    np.testing.assert_array_equal(raw["net"].to_numpy(), net)


def test_a_binary_target_that_cant_be_told_needs_positive(project: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(40.0), "y": ["<=50K", ">50K"] * 20})
    frame.to_csv(path := tmp_path / "b.csv", index=False)
    err = _refused(project, "--data", str(path), "--target", "y")
    assert "'<=50K' and '>50K'" in err
    assert "--positive" in err
    code, _, err = _init(project, "--data", str(path), "--target", "y", "--positive", ">50K")
    assert code == 0, err


def test_at_a_terminal_the_positive_class_is_asked_for(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pd.DataFrame({"x": np.arange(40.0), "y": ["<=50K", ">50K"] * 20})
    frame.to_csv(path := tmp_path / "b.csv", index=False)
    asked = []
    monkeypatch.chdir(project)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or " >50K ")
    assert main(["init", "--data", str(path), "--target", "y", "--no-dvc"]) == 0
    assert asked == ["target 'y': which class means 1, '<=50K' or '>50K'? "]
    params = parse_params(yaml.safe_load((project / "params.yaml").read_text()))
    assert (params.data.positive_class, params.data.negative_class) == ((">50K",), ("<=50K",))


def test_local_edits_are_never_lost(project: Path, tmp_path: Path) -> None:
    params = project / "params.yaml"
    edited = params.read_text().replace("metric: roc_auc\n", "metric: pr_auc\n", 1)
    params.write_text(edited)
    path = _users_file(tmp_path)
    code, _out, err = _init(project, "--data", str(path), "--target", "cultivar")
    assert code == 2
    assert "tune.metric" in err
    assert "--force" in err
    assert params.read_text() == edited
    assert not (project / "data/external/wine.csv").exists()
    code, _, err = _init(project, "--data", str(path), "--target", "cultivar", "--force")
    assert code == 0, err
    code, _, err = _init(project, "--data", str(path), "--target", "cultivar")
    assert code == 0, err  # init's own changes are no local edits to protect


def test_a_different_file_of_the_same_name_is_never_overwritten(
    project: Path, tmp_path: Path
) -> None:
    path = _users_file(tmp_path)
    (project / "data/external/wine.csv").write_text("other,content\n1,2\n")
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "another wine.csv"], project)
    err = _refused(project, "--data", str(path), "--target", "cultivar")
    assert "data/external/wine.csv exists and differs" in err
