"""Target leakage: each feature alone, fitted on some rows and scored on the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.config import LeakageConfig
from mlops.data.leakage import measure, skill

ROWS = 3000


def halves(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = int(len(frame) * 0.7)
    return frame.iloc[:cut], frame.iloc[cut:]


@pytest.fixture(scope="module")
def patients() -> pd.DataFrame:
    """Whether a patient died, with what a record holds afterwards: the cause of death
    (filled in only for those who died), the days followed (a threshold gives it away
    at 365), a strong honest predictor (age) and noise."""
    rng = np.random.default_rng(0)
    age = rng.uniform(20, 95, ROWS)
    died = (rng.uniform(size=ROWS) < (age - 20) / 90).astype(int)
    cause = np.where(died == 1, rng.choice(["heart", "cancer", "stroke"], ROWS), None)
    followed = np.where(died == 1, rng.integers(1, 365, ROWS), rng.integers(365, 3000, ROWS))
    return pd.DataFrame({
        "age": age,
        "cause": pd.Series(cause, dtype="str"),
        "followed_days": followed.astype(float),
        "town": pd.Series(rng.choice(["a", "b", "c", "d"], ROWS), dtype="str"),
        "noise": rng.normal(size=ROWS),
        "died": died,
    })  # fmt: skip


def test_a_column_filled_in_after_the_outcome_is_suspected(patients: pd.DataFrame) -> None:
    fit, held = halves(patients)
    found = measure(
        fit, held, ["age", "cause", "followed_days", "town", "noise"], "died",
        LeakageConfig(), classification=True, seed=0,
    )  # fmt: skip
    assert found.skills["cause"] > 0.99  # missing for every survivor: missingness leaks
    assert found.skills["followed_days"] > 0.99  # a threshold, found by the tree
    assert 0.05 < found.skills["age"] < 0.5  # strong, honest, far below the bound
    assert abs(found.skills["town"]) < 0.02
    assert found.skills["noise"] < 0.05  # a 32-leaf tree on noise does worse than the prior
    assert set(found.suspected) == {"cause", "followed_days"}
    assert found.failed  # the default policy: fail
    assert found.excluded == found.suspected
    assert found.dropped == []
    report = found.to_dict()
    assert report["fit_rows"] == 2100
    assert report["held_out_rows"] == 900
    assert report["suspected"] == list(found.suspected)


def test_allowed_and_reported_leaks_are_kept(patients: pd.DataFrame) -> None:
    fit, held = halves(patients)
    allowed = measure(
        fit, held, ["age", "cause", "followed_days"], "died",
        LeakageConfig(allow=("followed_days",)), classification=True, seed=0,
    )  # fmt: skip
    assert allowed.suspected == ("cause",)
    reported = measure(
        fit, held, ["age", "cause"], "died", LeakageConfig(policy="report"),
        classification=True, seed=0,
    )  # fmt: skip
    assert reported.suspected == ("cause",)
    assert not reported.failed
    assert reported.excluded == ()
    assert reported.dropped == []
    dropped = measure(
        fit, held, ["age", "cause"], "died", LeakageConfig(policy="drop"),
        classification=True, seed=0,
    )  # fmt: skip
    assert dropped.dropped == ["cause"]
    assert dropped.excluded == ("cause",)


def test_a_number_a_step_away_from_the_target_leaks_in_regression() -> None:
    """The price with tax beside the price; the floor area is honest."""
    rng = np.random.default_rng(1)
    area = rng.uniform(30, 200, ROWS)
    price = 2000 * area + rng.normal(0, 60_000, ROWS)
    frame = pd.DataFrame({"area": area, "with_tax": price * 1.2, "price": price})
    fit, held = halves(frame)
    found = measure(
        fit, held, ["area", "with_tax"], "price", LeakageConfig(), classification=False, seed=0
    )
    assert found.skills["with_tax"] > 0.99
    assert 0.6 < found.skills["area"] < 0.9
    assert found.suspected == ("with_tax",)


def test_a_category_that_names_the_class_leaks_in_multiclass() -> None:
    rng = np.random.default_rng(2)
    species = rng.choice(["adelie", "gentoo", "chinstrap"], ROWS)
    codes = {"adelie": "A-1", "gentoo": "G-7", "chinstrap": "C-3"}
    frame = pd.DataFrame({
        "code": pd.Series([codes[s] for s in species], dtype="str"),
        "mass": rng.normal(4000, 500, ROWS) + (species == "gentoo") * 1200,
        "species": species,
    })  # fmt: skip
    fit, held = halves(frame)
    found = measure(
        fit, held, ["code", "mass"], "species", LeakageConfig(), classification=True, seed=0
    )
    assert found.skills["code"] > 0.99
    assert found.skills["mass"] < 0.6
    assert found.suspected == ("code",)


def test_skill_is_zero_for_the_prior_and_negative_for_worse() -> None:
    """A feature unseen in the held-out rows forecasts the prior exactly; one whose
    categories flip between the parts forecasts worse than the prior."""
    fit_x = pd.Series(["a", "b"] * 500, dtype="str")
    fit_y = pd.Series([0, 1] * 500)
    unseen = pd.Series(["z"] * 200, dtype="str")
    held_y = pd.Series([0, 1] * 100)
    assert skill(fit_x, fit_y, unseen, held_y, classification=True, seed=0) == pytest.approx(
        0.0, abs=1e-9
    )
    flipped = pd.Series(["b", "a"] * 100, dtype="str")
    assert skill(fit_x, fit_y, flipped, held_y, classification=True, seed=0) < -1.0
    one_value = pd.Series([5.0] * 200)
    assert skill(fit_x, fit_y.astype(float), unseen, one_value, classification=False, seed=0) == 0.0
