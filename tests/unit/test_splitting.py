"""The train/test split per task: class balance kept, regression stratified on quantiles;
groups kept whole (split.groups); the latest rows as the test split (split.time)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.config import Params, SplitConfig
from mlops.data.identifiers import read_times
from mlops.data.ingestion import group_column, time_column
from mlops.data.splitting import (
    min_class_rows,
    rare_classes,
    split,
    time_split,
    without_rare,
)
from mlops.errors import UsageError
from mlops.tasks.task import get_task
from tests.sklearn_frames import DIABETES_TARGET, WINE_TARGET, diabetes, wine


def test_binary_keeps_the_class_balance(adult_sample: pd.DataFrame) -> None:
    train, test = split(adult_sample, "income", 0.2, 0, "binary")
    assert (len(train), len(test)) == (2400, 600)
    assert abs(test["income"].sum() - 0.2 * adult_sample["income"].sum()) <= 1
    assert list(train.index) == list(range(2400))  # a fresh index for the parquet files


def test_multiclass_keeps_every_class_share() -> None:
    frame = wine()
    train, test = split(frame, WINE_TARGET, 0.2, 0, "multiclass")
    counts = frame[WINE_TARGET].value_counts()
    in_test = test[WINE_TARGET].value_counts()
    assert len(test) == 36
    assert ((in_test - 0.2 * counts).abs() <= 1).all(), in_test.to_dict()
    assert train[WINE_TARGET].value_counts().add(in_test).equals(counts)


def test_regression_is_stratified_on_quantiles_of_the_target() -> None:
    """Each decile of the target gives the test split its share (a plain shuffle of 442
    rows puts 4 to 15 of a decile's ~44 rows in a 20 % test split)."""
    frame = diabetes()
    train, test = split(frame, DIABETES_TARGET, 0.2, 0, "regression")
    assert (len(train), len(test)) == (353, 89)
    edges = np.quantile(frame[DIABETES_TARGET], np.linspace(0, 1, 11))
    per_decile = np.histogram(frame[DIABETES_TARGET], edges)[0]
    in_test = np.histogram(test[DIABETES_TARGET], edges)[0]
    assert np.abs(in_test - 0.2 * per_decile).max() <= 1.5, in_test
    assert test[DIABETES_TARGET].dtype == "float64"


def test_a_small_regression_set_gets_as_many_strata_as_its_test_split_has_rows() -> None:
    """47 rows (R's swiss): a 0.2 share is 9 rows (scikit-learn's split rounds it up to
    10), too few to hold a row of each of 10 deciles; 9 quantile bins, not a refusal."""
    frame = diabetes().head(47)
    train, test = split(frame, DIABETES_TARGET, 0.2, 0, "regression")
    assert (len(train), len(test)) == (37, 10)
    low, high = np.quantile(frame[DIABETES_TARGET], [1 / 9, 8 / 9])
    assert test[DIABETES_TARGET].min() <= low
    assert test[DIABETES_TARGET].max() >= high


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_a_sample_that_leaves_out_fewer_rows_than_strata_is_drawn(task: str) -> None:
    """modeldata's deliveries: 10,012 rows, a training split of 8,009, tune.max_rows 8000.
    Stratified on 10 quantile bins, the 9 rows left out could not hold one of each, and
    tune stopped with scikit-learn's traceback."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=8009) if task == "regression" else rng.choice(list("abcdefghijkl"), 8009)
    frame = pd.DataFrame({"x": rng.normal(size=8009), "y": y})
    sample = get_task(task).sample(frame, "y", 8000, seed=0)
    assert len(sample) == 8000
    assert sample.index.is_monotonic_increasing


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_the_same_seed_gives_the_same_split(task: str) -> None:
    frame, target = (wine(), WINE_TARGET) if task == "multiclass" else (diabetes(), DIABETES_TARGET)
    first = split(frame, target, 0.25, 3, task)
    again = split(frame, target, 0.25, 3, task)
    other = split(frame, target, 0.25, 4, task)
    pd.testing.assert_frame_equal(first[1], again[1])
    assert not first[1].equals(other[1])


def test_a_class_seen_once_is_refused_naming_it() -> None:
    frame = wine()
    frame.loc[5, WINE_TARGET] = "class_9"
    with pytest.raises(UsageError) as error:
        split(frame, WINE_TARGET, 0.2, 0, "multiclass")
    assert str(error.value) == (
        "train/test split of data.target 'cultivar': 2 parts need at least 2 rows of each "
        "class; class(es) ['class_9'] have 1; drop or relabel those rows, or use fewer parts"
    )


def test_too_few_rows_to_split_is_refused() -> None:
    frame = wine().groupby(WINE_TARGET).head(2)  # 6 rows, 3 classes: a test split of 1
    with pytest.raises(UsageError, match=r"too few rows to split \(6 rows into a 0.2 share"):
        split(frame, WINE_TARGET, 0.2, 0, "multiclass")


def test_a_class_needs_a_test_row_and_a_row_per_fold(params: Params) -> None:
    """3 folds on the 80 % left for training need 4 rows (3 would leave 2.4); the larger
    of tune's and imputation's fold counts decides."""
    assert (params.tune.cv_folds, params.impute.auto.cv_folds) == (3, 3)
    assert min_class_rows(params) == 4
    more = params.model_copy(
        update={"impute": params.impute.model_copy(update={"auto": params.impute.auto.model_copy(
            update={"cv_folds": 8})})}
    )  # fmt: skip
    assert min_class_rows(more) == 10


def test_rare_classes_are_left_out_and_named() -> None:
    frame = wine().assign(**{WINE_TARGET: lambda f: f[WINE_TARGET].where(f.index % 40 > 0, "x")})
    kept, rare = without_rare(frame, WINE_TARGET, 7)
    assert rare == {"x": 5}
    assert len(kept) == len(frame) - 5
    assert "x" not in set(kept[WINE_TARGET])
    assert kept.equals(frame[frame[WINE_TARGET] != "x"].reset_index(drop=True))
    same, none = without_rare(wine(), WINE_TARGET, 7)
    assert none == {}
    assert same.equals(wine())


def test_too_few_classes_left_is_one_line() -> None:
    with pytest.raises(UsageError) as error:
        rare_classes({"a": 30, "b": 20, "c": 1}, 7, "y")
    assert str(error.value) == (
        "data.target 'y': without the classes seen fewer than 7 times ('c' (1 row)), 2 remain "
        "and a multiclass task needs 3: gather more rows of them, or relabel them"
    )
    assert rare_classes({"a": 30, "b": 20, "c": 9, "d": 6}, 7, "y") == {"d": 6}


# --- groups of rows (split.groups) ---------------------------------------------------


def _panel(people: int = 120, years: int = 6, seed: int = 0) -> pd.DataFrame:
    """Each person's rows share a level: rows of one person are alike."""
    rng = np.random.default_rng(seed)
    person = np.repeat([f"p{k:04d}" for k in range(people)], years)
    level = np.repeat(rng.normal(size=people), years)
    frame = pd.DataFrame({"person": person, "x": level + rng.normal(0, 0.1, len(person))})
    frame["y"] = np.where(level + rng.normal(0, 0.5, len(person)) > 0.8, "yes", "no")
    frame["value"] = level * 10 + rng.normal(size=len(person))
    return frame


@pytest.mark.parametrize(("task", "target"), [("binary", "y"), ("regression", "value")])
def test_groups_stay_whole_on_one_side_and_the_share_holds(task: str, target: str) -> None:
    frame = _panel()
    if task == "binary":
        frame["y"] = (frame["y"] == "yes").astype(int)
    train, test = split(frame, target, 0.2, 0, task, groups="person")
    assert not set(train["person"]) & set(test["person"])
    assert len(test) == 0.2 * len(frame)  # 24 of 120 people, 6 rows each
    if task == "binary":  # balanced as whole groups allow
        assert abs(test["y"].mean() - frame["y"].mean()) < 0.05
    rest, held = split(frame, target, 0.2, 0, task)
    assert set(rest["person"]) & set(held["person"])  # what groups prevent


def test_group_folds_keep_groups_whole_and_a_row_without_one_is_its_own() -> None:
    frame = _panel()
    groups = frame["person"].where(frame.index % 7 != 0)  # every 7th row has no group
    folds = get_task("binary").folds(frame["y"], 3, 0, "tune.cv_folds", groups=groups)
    assert sorted(np.concatenate([held for _, held in folds])) == list(range(len(frame)))
    for fit, held in folds:
        named = groups.iloc[held].dropna()
        assert not set(named) & set(groups.iloc[fit].dropna())
    again = get_task("binary").folds(frame["y"], 3, 0, "x", groups=groups)  # seeded
    assert [held.tolist() for _, held in again] == [held.tolist() for _, held in folds]


def test_fewer_groups_than_parts_or_a_class_in_too_few_groups_is_one_line() -> None:
    frame = _panel(people=4)
    with pytest.raises(UsageError) as error:
        get_task("binary").folds(
            frame["y"], 5, 0, "params.yaml tune.cv_folds", groups=frame["person"]
        )
    assert str(error.value) == (
        "params.yaml tune.cv_folds: 5 parts need at least 5 groups of split.groups "
        "'person'; the data has 4"
    )
    frame = _panel()
    frame.loc[frame["person"] == "p0003", "y"] = "maybe"  # one person's class
    with pytest.raises(UsageError, match=r"\['maybe'\] are in too few groups of 'person'"):
        split(frame, "y", 0.2, 0, "multiclass", groups="person")


def test_the_group_column_is_checked_against_the_data(params: Params) -> None:
    with_groups = params.model_copy(
        update={"split": params.split.model_copy(update={"groups": "Person"})}
    )
    assert group_column(with_groups, ["person", "income"]) == "person"
    assert group_column(params, ["person"]) is None
    with pytest.raises(UsageError, match=r"^params.yaml split.groups: no column 'person' in"):
        group_column(with_groups, ["age", "income"])
    target = params.model_copy(
        update={"split": params.split.model_copy(update={"groups": "income"})}
    )
    with pytest.raises(UsageError, match=r"'income' is data.target"):
        group_column(target, ["income"])


# --- a split in time (split.time) ------------------------------------------------------


def _orders(rows: int = 500, seed: int = 0) -> pd.DataFrame:
    """Orders over a year in shuffled row order, dates written as people write them."""
    rng = np.random.default_rng(seed)
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 366, rows), unit="D")
    return pd.DataFrame(
        {
            "ordered": day.strftime("%Y-%m-%d"),
            "x": rng.normal(size=rows),
            "y": rng.choice(["yes", "no"], rows),
            "amount": rng.gamma(2.0, 50.0, rows),
        }
    )


@pytest.mark.parametrize(("task", "target"), [("binary", "y"), ("regression", "amount")])
def test_the_test_split_is_the_latest_rows_and_a_day_stays_on_one_side(
    task: str, target: str
) -> None:
    frame = _orders()
    if task == "binary":
        frame["y"] = (frame["y"] == "yes").astype(int)
    train, test = split(frame, target, 0.2, 0, task, time="ordered")
    assert train["ordered"].max() < test["ordered"].min()  # ISO dates sort as text
    assert abs(len(test) - 100) <= frame["ordered"].value_counts().max()  # one day's rows
    assert (len(train) + len(test), list(train.index)) == (500, list(range(len(train))))
    # Each side keeps the rows in the file's order; seeds play no part.
    assert train["x"].tolist() == frame[frame["ordered"] < test["ordered"].min()]["x"].tolist()
    again, _ = split(frame, target, 0.2, 7, task, time="ordered")
    pd.testing.assert_frame_equal(again, train)


def test_the_cut_lands_on_the_side_of_a_tie_nearest_the_share() -> None:
    frame = pd.DataFrame(
        {"at": ["2024-01-01"] * 6 + ["2024-02-01"] * 3 + ["2024-03-01"], "v": range(10)}
    )
    _, test = split(frame, "v", 0.2, 0, "regression", time="at")
    assert test["v"].tolist() == [9]  # the 2 latest rows would split February's 3
    _, test = split(frame, "v", 0.35, 0, "regression", time="at")
    assert test["v"].tolist() == [6, 7, 8, 9]  # February and March, nearest 3.5 rows


def test_dates_in_mixed_forms_and_datetimes_are_ordered_as_times() -> None:
    frame = pd.DataFrame(
        {"at": ["2024-03-01 10:00", "1 February 2024", "2024-01-15T08:00:00Z", "2024/04/02"],
         "v": [3.0, 2.0, 1.0, 4.0]}
    )  # fmt: skip
    _, test = split(frame, "v", 0.5, 0, "regression", time="at")
    assert test["v"].tolist() == [3.0, 4.0]
    typed = frame.assign(at=pd.to_datetime(frame["at"], format="mixed", utc=True))
    _, test = split(typed, "v", 0.25, 0, "regression", time="at")
    assert test["v"].tolist() == [4.0]


def test_dates_written_day_first_keep_their_order() -> None:
    """Parsed value by value, 01/02/1993 (1 February) came out as 2 January, before
    31/01/1993: a European export's time split scored some of its earliest rows."""
    frame = pd.DataFrame(
        {"sold": ["01/02/1993", "31/01/1993", "16/02/1993", "02.03.1993 10:00", "1993-03-05"],
         "v": [2.0, 1.0, 3.0, 4.0, 5.0]}
    )  # fmt: skip
    _, test = split(frame, "v", 0.4, 0, "regression", time="sold")
    assert test["v"].tolist() == [4.0, 5.0]
    assert read_times(frame["sold"]).dt.strftime("%Y-%m-%d").tolist() == [
        "1993-02-01", "1993-01-31", "1993-02-16", "1993-03-02", "1993-03-05"
    ]  # fmt: skip
    american = pd.Series(["02/01/1993", "01/31/1993", "03/02/1993"])  # month first
    assert read_times(american).dt.strftime("%m-%d").tolist() == ["02-01", "01-31", "03-02"]


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ([2021.0, 2022.0, 2023.0, 2024.0], "'at' holds numbers, not dates or times; expected"),
        (["2024-01-01", None, "soon", "2024-01-03"], "'at' has 1 missing value(s) and 1 that "
         "read as no date or time (e.g. 'soon'); every row needs one to be ordered"),
        (["2024-01-01"] * 4, "every row of 'at' holds the same time; a split in time needs"),
    ],
)  # fmt: skip
def test_a_time_column_that_cannot_order_the_rows_is_one_line(
    column: list[object], message: str
) -> None:
    frame = pd.DataFrame({"at": column, "v": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(UsageError) as error:
        split(frame, "v", 0.25, 0, "regression", time="at")
    assert str(error.value).startswith("params.yaml split.time: ")
    assert message in str(error.value)


def test_a_class_only_one_period_holds_is_one_line() -> None:
    frame = _orders()
    frame.loc[frame["ordered"] >= "2024-12-01", "y"] = "new"  # a class that came late
    with pytest.raises(UsageError) as error:
        split(frame, "y", 0.2, 0, "multiclass", time="ordered")
    assert str(error.value) == (
        "params.yaml split.time: class(es) 'new' only in the test split once the latest 0.2 "
        "of rows by 'ordered' are held out; raise split.test_size so both periods hold "
        "every class, or set split.time: null"
    )


def test_a_class_only_in_importance_s_latest_rows_names_its_holdout() -> None:
    frame = _orders()
    frame.loc[frame["ordered"] >= "2024-12-01", "y"] = "new"
    with pytest.raises(UsageError, match=r"are held out; raise validate.importance.holdout "):
        time_split(frame, "y", 0.2, "multiclass", time="ordered",
                   share="validate.importance.holdout")  # fmt: skip


def test_the_time_column_is_checked_and_groups_or_time_not_both(params: Params) -> None:
    timed = params.model_copy(update={"split": params.split.model_copy(update={"time": "At"})})
    assert time_column(timed, ["at", "income"]) == "at"
    with pytest.raises(UsageError, match=r"^params.yaml split.time: no column 'at' in"):
        time_column(timed, ["age", "income"])
    with pytest.raises(ValueError, match="groups and time are both set"):
        SplitConfig(test_size=0.2, groups="person", time="at")


def test_folds_forward_in_time_fit_on_the_past_and_score_what_follows() -> None:
    frame = _orders()
    times = pd.to_datetime(frame["ordered"], utc=True)
    folds = get_task("binary").folds(frame["y"], 4, 0, "tune.cv_folds", order=times)
    assert len(folds) == 4
    scored = []
    for fit, score in folds:
        assert times.iloc[fit].max() < times.iloc[score].min()  # a day stays in one block
        assert abs(len(score) - 100) <= frame["ordered"].value_counts().max()
        scored.append(len(fit))
    assert scored == sorted(scored)  # each fold fits on more of the past
    assert sorted(np.concatenate([s for _, s in folds]).tolist()) == sorted(
        set(range(500)) - set(folds[0][0].tolist())
    )  # every row after the first block is scored once


def test_folds_forward_in_time_need_periods_and_every_class_early() -> None:
    bunched = pd.Series(pd.to_datetime(["2024-01-01"] * 8 + ["2024-01-02"] * 2, utc=True))
    with pytest.raises(UsageError, match=r"3 folds forward in time .* need 4 periods"):
        get_task("regression").folds(pd.Series(np.arange(10.0)), 3, 0, "tune.cv_folds",
                                     order=bunched)  # fmt: skip
    frame = _orders()
    frame.loc[frame["ordered"] >= "2024-06-01", "y"] = "late"  # a class seen only lately
    times = pd.to_datetime(frame["ordered"], utc=True)
    with pytest.raises(UsageError, match=r"the first fold's training part .* lack class"):
        get_task("multiclass").folds(frame["y"], 3, 0, "tune.cv_folds", order=times)
