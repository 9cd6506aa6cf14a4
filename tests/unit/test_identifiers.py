"""Row identifiers: detected without mistaking a measurement for one, overridden by
params.yaml validate.ids both ways, kept out of the features and drafted as such."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from mlops.config import Params, ValidateConfig
from mlops.data import checks
from mlops.data.contract import check_contract, contract_document, infer_contract, load_contract
from mlops.data.identifiers import MIN_ROWS, find_groups, find_ids
from mlops.data.ingestion import normalise_name
from mlops.errors import UsageError
from mlops.features.imputation import plan_imputation, read_quality
from mlops.io.files import load_params
from mlops.tasks.task import get_task

ROWS = 200
RNG = np.random.default_rng(0)


def as_ingested(frame: pd.DataFrame) -> pd.DataFrame:
    """Names and types as ingest leaves them: snake_case, numbers float64."""
    return frame.rename(columns=normalise_name).astype("float64")


def bundled(loader: Any, **kwargs: Any) -> pd.DataFrame:
    return as_ingested(loader(as_frame=True, **kwargs).frame)


SKLEARN = {
    "wine": lambda: bundled(load_wine),
    "diabetes": lambda: bundled(load_diabetes),
    "diabetes_unscaled": lambda: bundled(load_diabetes, scaled=False),
    "breast_cancer": lambda: bundled(load_breast_cancer),
}


@pytest.mark.parametrize("name", SKLEARN)
def test_measurements_are_not_ids_but_a_row_number_is(name: str) -> None:
    data = SKLEARN[name]()
    assert find_ids(data, "target") == {}
    numbered = data.assign(rownames=np.arange(1, len(data) + 1, dtype="float64"))
    assert find_ids(numbered, "target") == {
        "rownames": f"the whole numbers 1 to {len(data)}, one per row"
    }


def test_a_column_named_like_an_id_whose_values_repeat_groups_rows() -> None:
    # R's Males panel: person nr (545 of them, 13 to 12548) over 8 years each; beside it
    # a numbering restarting in each study (penguins' sample_number), a category named
    # like an id with few values, a measurement, and a true row id.
    people = RNG.choice(np.arange(13, 12549), size=50, replace=False).astype("float64")
    frame = pd.DataFrame(
        {
            "nr": np.repeat(people, 8),
            "sample_number": np.tile(np.arange(1.0, 101.0), 4),
            "store_id": np.repeat(np.arange(10.0), 40),
            "visit_no": RNG.normal(size=400),
            "rownames": np.arange(1.0, 401.0),
            "y": RNG.normal(size=400),
        }
    )
    assert find_groups(frame, "y", list(find_ids(frame, "y"))) == {
        "nr": "50 values over 400 rows, 8.0 rows each"
    }
    text = frame.assign(nr=[f"P{int(v)}" for v in frame["nr"]])
    assert list(find_groups(text, "y")) == ["nr"]
    assert find_groups(frame.assign(nr=np.arange(400.0)), "y", ["nr"]) == {}  # an id
    assert find_groups(SKLEARN["wine"](), "target") == {}
    # Patients numbered 1 to 200, two rows each (R's colon: recurrence and death).
    colon = pd.DataFrame({"id": np.repeat(np.arange(1.0, 201.0), 2), "y": np.zeros(400)})
    assert find_groups(colon, "y") == {"id": "200 values over 400 rows, 2.0 rows each"}


def test_the_adult_demo_has_no_ids(adult: pd.DataFrame, adult_sample: pd.DataFrame) -> None:
    assert find_ids(adult, "income") == {}
    assert find_ids(adult_sample, "income") == {}
    head = adult_sample.head(200)
    assert head["fnlwgt"].is_unique  # sampling weights: whole numbers, unique per row here
    assert find_ids(head, "income") == {}


def detected(**columns: Any) -> dict[str, str]:
    base = pd.DataFrame({"x": RNG.normal(size=ROWS), "y": RNG.integers(0, 2, ROWS)})
    return find_ids(base.assign(**columns), "y")


def test_ids_that_are_detected() -> None:
    shuffled = RNG.permutation(ROWS).astype("float64")
    gaps = np.sort(RNG.choice(np.arange(1000, 1000 + 2 * ROWS), ROWS, replace=False))
    uuids = pd.Series([f"{i:08x}-4a1b-9c2d" for i in RNG.permutation(ROWS)], dtype="str")
    customer = RNG.choice(10**7, ROWS, replace=False).astype("float64")
    with_gap = customer.copy()
    with_gap[0] = np.nan
    found = detected(
        seq=shuffled,
        ticket=gaps[::-1].astype("float64"),
        ref=uuids,
        customer_id=customer,
        passengerid=customer[::-1],
        unnamed_0=with_gap,
    )
    assert found == {
        "seq": f"the whole numbers 0 to {ROWS - 1}, one per row",
        "ticket": f"whole numbers falling with the rows, one per row ({gaps[0]:,} to {gaps[-1]:,})",
        "ref": f"text, {ROWS} distinct values in {ROWS} rows",
        "customer_id": f"named like an identifier, {ROWS} distinct whole numbers in {ROWS} rows",
        "passengerid": f"named like an identifier, {ROWS} distinct whole numbers in {ROWS} rows",
        "unnamed_0": f"named like an identifier, {ROWS - 1} distinct whole numbers in {ROWS} rows",
    }


def test_an_id_with_a_few_repeats_is_still_an_id_but_many_repeats_group_rows() -> None:
    """R's biopsy data: 645 sample ids over 699 rows, a few samples measured again. Not
    near unique, too few repeats to be groups: it was a feature of the model."""
    samples = RNG.choice(np.arange(10**6, 2 * 10**6), 645, replace=False).astype("float64")
    biopsy = np.repeat(samples, [6, 5, 3] + [2] * 43 + [1] * (645 - 46))
    assert (len(biopsy), len(np.unique(biopsy))) == (699, 645)
    frame = pd.DataFrame({"id": RNG.permutation(biopsy), "y": RNG.integers(0, 2, 699)})
    frame["sample_code"] = frame["id"].map(lambda v: f"S{int(v)}")
    repeating = int(frame["id"].value_counts().pipe(lambda n: n[n > 1].sum()))
    assert find_ids(frame, "y") == {
        "id": f"named like an identifier, 645 distinct whole numbers in 699 rows, {repeating} "
        "rows sharing one",
    }  # sample_code: text, but not named like an identifier
    named = frame.rename(columns={"sample_code": "sample_id"})
    assert find_ids(named, "y")["sample_id"] == (
        f"named like an identifier, 645 distinct values in 699 rows, {repeating} rows sharing one"
    )
    # Half the rows or more in repeats: groups of rows (split.groups), not an id.
    patients = RNG.choice(10**6, 400, replace=False).astype("float64")
    visits = pd.DataFrame({"patient_id": np.repeat(patients, [1, 3] * 200), "y": np.zeros(800)})
    assert find_ids(visits, "y") == {}
    assert list(find_groups(visits, "y")) == ["patient_id"]
    # Fewer distinct values than half the rows: not an id, whatever the repeats.
    shops = pd.DataFrame({"shop_no": np.arange(800.0) // 2.5, "y": np.zeros(800)})
    assert find_ids(shops, "y") == {}


def test_what_is_unique_per_row_but_no_id() -> None:
    weights = RNG.choice(10**6, ROWS, replace=False).astype("float64")  # like fnlwgt
    seconds = np.sort(RNG.choice(10**9, ROWS, replace=False)).astype("float64")  # timestamps
    assert (
        detected(
            weight=weights,
            paid=weights + 1,  # an amount: "id" ends the name, but names no entity
            timestamp=seconds,
            id=RNG.normal(size=ROWS),  # a fraction: a measurement, whatever its name
            key=RNG.integers(0, 20, ROWS).astype("float64"),  # a named grouping, not unique
            colour=pd.Series(RNG.choice(["red", "blue"], ROWS), dtype="str"),
            flag=RNG.integers(0, 2, ROWS).astype(bool),
        )
        == {}
    )
    rows = MIN_ROWS - 1
    small = pd.DataFrame({"id": np.arange(rows, dtype="float64"), "y": np.zeros(rows)})
    assert find_ids(small, "y") == {}  # too few rows to tell
    assert find_ids(small.assign(y=small["id"]), "id") == {}  # the target is never an id


def test_detection_is_fast_on_the_demo(adult: pd.DataFrame) -> None:
    start = time.perf_counter()
    find_ids(adult, "income")
    assert time.perf_counter() - start < 0.5


# --- validate: the override, the features, the reports ---------------------------------

TARGET = "cultivar"


@pytest.fixture(scope="module")
def wine_frame() -> pd.DataFrame:
    bunch = load_wine(as_frame=True)
    labels = bunch.target.map(dict(enumerate(bunch.target_names))).astype("str")
    data = as_ingested(bunch.data).assign(**{TARGET: labels})
    return data.assign(rownames=np.arange(1.0, len(data) + 1))


@pytest.fixture(scope="module")
def wine_contract(wine_frame: pd.DataFrame) -> Any:
    return infer_contract(wine_frame, TARGET, 100, get_task("multiclass"))


def validate_config(params: Params, ids: Any) -> ValidateConfig:
    document = params.model_dump(by_alias=True)["validate"]
    document |= {"protected": [], "ids": ids}
    document["quality"]["sentinels"] = {}
    return ValidateConfig.model_validate(yaml.safe_load(yaml.safe_dump(document)))


def validated(frame: pd.DataFrame, contract: Any, config: ValidateConfig) -> dict[str, Any]:
    checked = checks.check(
        frame, contract, config, target=TARGET, seed=0, source="wine.csv",
        contract_path="data/schema.yaml", require_target=True,
    )  # fmt: skip
    return checks.build(checked, config, None)


def test_detected_ids_are_reported_and_never_features(
    wine_frame: pd.DataFrame, wine_contract: Any, params: Params
) -> None:
    report = validated(wine_frame, wine_contract, validate_config(params, None))
    assert report["passed"] is True
    assert report["ids"] == {"rownames": "the whole numbers 1 to 178, one per row"}
    assert "rownames" not in report["features"]
    assert "alcohol" in report["features"]
    assert "rownames" not in report["quality"]["features"]  # no score: not a feature
    text = checks.markdown(report)
    assert (
        "- Row identifiers (kept in the data, never features; params.yaml validate.ids): "
        "`rownames` (the whole numbers 1 to 178, one per row)\n" in text
    )
    quality = read_quality(report, list(wine_frame.columns), TARGET)
    impute = params.impute.model_copy(update={"numeric": "median", "categorical": "most_frequent"})
    plan = plan_imputation(wine_frame, TARGET, quality, impute, seed=0)
    decided = {f.name: f for f in plan.features}["rownames"]
    assert (decided.decision, decided.reason) == (
        "drop",
        "identifies rows: the whole numbers 1 to 178, one per row (validate.ids)",
    )


def test_validate_ids_overrides_the_detection_both_ways(
    wine_frame: pd.DataFrame, wine_contract: Any, params: Params
) -> None:
    listed = validated(wine_frame, wine_contract, validate_config(params, ["Alcohol"]))
    assert listed["ids"] == {"alcohol": "listed in params.yaml"}
    assert "alcohol" not in listed["features"]
    assert "rownames" in listed["features"]
    off = validated(wine_frame, wine_contract, validate_config(params, []))
    assert off["ids"] == {}
    assert "rownames" in off["features"]
    assert (
        "- Row identifiers (kept in the data, never features; params.yaml validate.ids): none"
        in (checks.markdown(off))
    )


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["ssn"], "params.yaml validate.ids: 'ssn' is not a column of the data contract"),
        ([TARGET], f"params.yaml validate.ids: '{TARGET}' is not a column of the data contract"),
    ],
)
def test_an_unknown_id_column_is_one_line(
    wine_frame: pd.DataFrame, wine_contract: Any, params: Params, ids: list[str], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        validated(wine_frame, wine_contract, validate_config(params, ids))
    assert str(caught.value) == message


def test_no_feature_left_once_ids_are_excluded_is_one_line(
    wine_frame: pd.DataFrame, params: Params
) -> None:
    two = wine_frame[["rownames", TARGET]]
    contract = infer_contract(two, TARGET, 100, get_task("multiclass"))
    with pytest.raises(UsageError, match=r"^params.yaml validate: no feature left .*\(rownames;"):
        validated(two, contract, validate_config(params, None))


def test_params_yaml_takes_null_or_a_list(root: Path, tmp_path: Path) -> None:
    document = yaml.safe_load((root / "params.yaml").read_text())
    assert document["validate"]["ids"] is None
    for value, expected in ((None, None), (["rownames"], ("rownames",)), ([], ())):
        document["validate"]["ids"] = value
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(document))
        assert load_params(tmp_path / "params.yaml").validate_.ids == expected
    document["validate"]["ids"] = "rownames"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(UsageError, match=r"validate\.ids"):
        load_params(tmp_path / "params.yaml")


# --- the drafted contract ---------------------------------------------------------------


def test_a_drafted_id_has_a_description_and_no_range(wine_frame: pd.DataFrame) -> None:
    ids = find_ids(wine_frame, TARGET)
    document = contract_document(
        infer_contract(wine_frame, TARGET, 100, get_task("multiclass"), ids)
    )
    drafted = document["columns"]["rownames"]
    assert drafted == {
        "dtype": "float64",
        "nullable": False,
        "description": "identifies rows (the whole numbers 1 to 178, one per row): not a "
        "feature of the model; no range, new rows bring new ids",
        "unique": True,
    }
    assert "in_range" in document["columns"]["alcohol"]
    assert "description" not in document["columns"]["alcohol"]
    contract = load_contract(yaml.safe_load(yaml.safe_dump(document)), "draft.yaml")
    new_rows = wine_frame.assign(rownames=wine_frame["rownames"] + 10_000)
    assert check_contract(new_rows, contract, TARGET, "fail", 0.0).failures == ()


def test_dates_and_times_are_kept_out_of_the_features() -> None:
    """A column of dates (a CSV's text, or a Parquet timestamp as ingest leaves it)
    would be a category of a value per day; few distinct ones (months) may stay one."""
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(RNG.integers(0, 8760, ROWS), "h")
    days = pd.Series(stamps.strftime("%d/%m/%Y"), dtype="str")
    found = detected(
        created=pd.Series(stamps.astype(str), dtype="str"),
        day=days,
        month=pd.Series(stamps.strftime("%Y-%m"), dtype="str"),  # 12 values
        code=pd.Series([f"b{k % 40:03d}" for k in range(ROWS)], dtype="str"),
        score=pd.Series([f"{k % 12 + 1}-{k % 28 + 1}" for k in range(ROWS)], dtype="str"),
        version=pd.Series([f"{k % 40 // 10}.{k % 10}.1" for k in range(ROWS)], dtype="str"),
        # The EPA's daily readings, as Excel writes dates: month/day/two-digit year.
        short=pd.Series(stamps.strftime("%-m/%-d/%y"), dtype="str"),
        versions=pd.Series(
            [f"{k % 9 + 1}.{k % 12}.{k % 30:02d}" for k in range(ROWS)], dtype="str"
        ),
    )
    assert set(found) == {"created", "day", "short"}
    assert found["short"].startswith("dates or times, ")
    assert "from 2024-01-01 to 2024-12-" in found["short"]
    assert found["created"].startswith(f"dates or times, {stamps.nunique():,} distinct from 2024-")
