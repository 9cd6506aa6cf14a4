"""ScalableKNNImputer: agreement with KNNImputer, invariants, and sklearn/skops integration."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.compose import ColumnTransformer
from sklearn.impute import KNNImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlops.features.knn import ScalableKNNImputer, _k_smallest


def _correlated(n: int, d: int = 6, seed: int = 0) -> np.ndarray:
    """Low-rank Gaussian plus noise, columns on different scales, like real features."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2)) @ rng.normal(size=(2, d))
    return (latent + 0.3 * rng.normal(size=(n, d))) * np.geomspace(1, 100, d)


def _mask(x: np.ndarray, rate: float, seed: int = 1) -> np.ndarray:
    masked = x.copy()
    masked[np.random.default_rng(seed).random(x.shape) < rate] = np.nan
    return masked


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", [1, 5])
def test_same_neighbours_as_knnimputer_on_raw_distances(weights: str, k: int) -> None:
    train, test = _correlated(400), _mask(_correlated(150, seed=2), 0.3)
    test[::17] = np.nan  # rows with nothing observed
    ours = ScalableKNNImputer(k, weights=weights, standardize=False, max_donors=400)
    expected = KNNImputer(n_neighbors=k, weights=weights).fit(train).transform(test)
    np.testing.assert_allclose(ours.fit(train).transform(test), expected, rtol=1e-7, atol=1e-9)


def test_more_than_64_features_group_patterns_correctly() -> None:
    """Missingness masks wider than one 64-bit word take another grouping path."""
    train, test = _correlated(300, d=70), _mask(_correlated(80, d=70, seed=2), 0.05)
    test[:40, 65] = np.nan  # a pattern told apart only by the second word
    expected = KNNImputer().fit(train).transform(test)
    ours = ScalableKNNImputer(standardize=False).fit(train).transform(test)
    np.testing.assert_allclose(ours, expected, rtol=1e-7, atol=1e-9)


def test_standardised_distances_match_knnimputer_on_standardised_data() -> None:
    train, test = _correlated(400), _mask(_correlated(150, seed=2), 0.3)
    scaler = StandardScaler().fit(train)
    reference = KNNImputer().fit(scaler.transform(train)).transform(scaler.transform(test))
    ours = ScalableKNNImputer().fit(train).transform(test)
    np.testing.assert_allclose(ours, scaler.inverse_transform(reference), rtol=1e-9, atol=1e-9)


def test_accuracy_close_to_knnimputer_when_fitted_on_incomplete_data() -> None:
    truth = _correlated(2_000)
    masked = _mask(truth, 0.1)
    gaps = np.isnan(masked)

    def rmse(filled: np.ndarray) -> float:
        return float(np.sqrt(np.mean(((filled - truth) / truth.std(axis=0))[gaps] ** 2)))

    reference = StandardScaler().fit(masked)
    knn = reference.inverse_transform(KNNImputer().fit_transform(reference.transform(masked)))
    assert rmse(ScalableKNNImputer().fit_transform(masked)) <= 1.05 * rmse(knn)


def test_observed_values_are_returned_bit_for_bit() -> None:
    data = _mask(_correlated(300), 0.2)
    out = ScalableKNNImputer().fit_transform(data)
    seen = ~np.isnan(data)
    assert np.array_equal(out[seen], data[seen])
    assert not np.isnan(out).any()
    assert out.dtype == np.float64


def test_same_seed_same_result_and_the_seed_matters() -> None:
    data = _mask(_correlated(1_000), 0.1)
    first = ScalableKNNImputer(max_donors=100, random_state=3).fit_transform(data)
    again = ScalableKNNImputer(max_donors=100, random_state=3).fit_transform(data)
    other = ScalableKNNImputer(max_donors=100, random_state=4).fit_transform(data)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_donor_pool_is_bounded_and_gap_free() -> None:
    data = _mask(_correlated(1_000), 0.2)
    imputer = ScalableKNNImputer(max_donors=300).fit(data)
    assert imputer.donors_.shape == (300, data.shape[1])
    assert not np.isnan(imputer.donors_).any()
    assert 0 < imputer.n_complete_donors_ <= 300


def test_row_with_everything_missing_gets_training_means() -> None:
    train = _mask(_correlated(200), 0.1)
    test = np.full((2, train.shape[1]), np.nan)
    out = ScalableKNNImputer().fit(train).transform(test)
    np.testing.assert_allclose(out, np.tile(np.nanmean(train, axis=0), (2, 1)))


def test_a_row_is_imputed_the_same_alone_or_in_a_batch() -> None:
    """Large patterns take the KD-tree path, a lone row the brute-force one."""
    train = _correlated(2_000)
    test = _correlated(300, seed=5)
    test[:200, 0] = np.nan  # one pattern shared by 200 rows: tree
    test[200:, :] = _mask(test[200:], 0.4)  # scattered patterns: brute force
    imputer = ScalableKNNImputer(max_donors=2_000).fit(train)
    batch = imputer.transform(test)
    alone = np.vstack([imputer.transform(test[i : i + 1]) for i in range(0, 300, 7)])
    np.testing.assert_allclose(alone, batch[::7], rtol=1e-12)


def test_too_few_complete_rows_falls_back_to_mean_filled_donors() -> None:
    data = _correlated(200)
    data[np.arange(200), np.arange(200) % data.shape[1]] = np.nan  # no complete row
    imputer = ScalableKNNImputer().fit(data)
    assert imputer.n_complete_donors_ == 0
    donor_gaps = np.isnan(data)  # donors are all rows, in order, when fewer than max_donors
    means = np.broadcast_to(np.nanmean(data, axis=0), data.shape)
    np.testing.assert_allclose(imputer.donors_[donor_gaps], means[donor_gaps])
    assert not np.isnan(imputer.transform(data)).any()


def test_distance_weighting_gives_an_exact_duplicate_all_the_weight() -> None:
    train = _correlated(100)
    query = train[[7]].copy()
    query[0, 2] = np.nan
    out = ScalableKNNImputer(weights="distance").fit(train).transform(query)
    assert out[0, 2] == train[7, 2]


def test_column_missing_everywhere_at_fit_is_a_clear_error() -> None:
    frame = pd.DataFrame(_correlated(50, d=3), columns=["age", "income", "hours"])
    frame["income"] = np.nan
    with pytest.raises(ValueError, match=r"\['income'\] are entirely missing"):
        ScalableKNNImputer().fit(frame)


def test_column_missing_everywhere_at_transform_is_imputed() -> None:
    imputer = ScalableKNNImputer().fit(_correlated(100))
    test = _correlated(10, seed=3)
    test[:, 1] = np.nan
    assert not np.isnan(imputer.transform(test)).any()


@pytest.mark.parametrize(
    "params",
    [{"n_neighbors": 0}, {"weights": "gaussian"}, {"max_donors": 0}, {"eps": -1.0}],
)
def test_invalid_parameters_are_rejected_at_fit(params: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ScalableKNNImputer(**params).fit(_correlated(20))  # type: ignore[arg-type]


def test_dataframe_in_numpy_out_with_feature_names() -> None:
    frame = pd.DataFrame(_mask(_correlated(100, d=3), 0.2), columns=["a", "b", "c"])
    imputer = ScalableKNNImputer().fit(frame)
    out = imputer.transform(frame)
    assert isinstance(out, np.ndarray)
    assert out.shape == frame.shape
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_array_equal(out, imputer.transform(frame.to_numpy()))
    assert list(imputer.get_feature_names_out()) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names"):
        imputer.transform(frame[["c", "b", "a"]])


def test_pipeline_column_transformer_and_skops_round_trip() -> None:
    frame = pd.DataFrame(_mask(_correlated(300, d=4), 0.15), columns=["a", "b", "c", "d"])
    frame["city"] = "x"
    target = np.random.default_rng(0).normal(size=300)
    columns = ColumnTransformer([("knn", ScalableKNNImputer(max_donors=100), ["a", "b", "c", "d"])])
    model = make_pipeline(columns, LinearRegression()).fit(frame, target)
    blob = sio.dumps(model)
    loaded = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert list(loaded[0].get_feature_names_out()) == ["knn__a", "knn__b", "knn__c", "knn__d"]


def test_k_smallest_agrees_with_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 1_000))
    values[0, 990] = -10.0  # the leftover tail (960..999) is outside every slice
    values[1, [3, 18, 33, 48, 63]] = -5.0  # the five winners share one slice (width 15)
    values[3] = 1.0  # all ties
    chosen = np.take_along_axis(values, _k_smallest(values, 5), axis=1)
    np.testing.assert_array_equal(np.sort(chosen, axis=1), np.sort(values, axis=1)[:, :5])


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
cell = st.one_of(finite, st.just(np.nan))


@st.composite
def incomplete_tables(draw: st.DrawFn) -> np.ndarray:
    n, d = draw(st.integers(1, 30)), draw(st.integers(1, 5))
    table = draw(arrays(np.float64, (n, d), elements=cell))
    anchor = draw(arrays(np.float64, d, elements=finite))
    table[draw(st.integers(0, n - 1))] = anchor  # no column may be missing everywhere at fit
    return table


@settings(max_examples=60, deadline=None)
@given(
    table=incomplete_tables(), k=st.integers(1, 7), weights=st.sampled_from(["uniform", "distance"])
)
def test_properties_on_arbitrary_incomplete_tables(table: np.ndarray, k: int, weights: str) -> None:
    imputer = ScalableKNNImputer(k, weights=weights, max_donors=10)  # type: ignore[arg-type]
    out = imputer.fit_transform(table)
    seen = ~np.isnan(table)
    assert out.shape == table.shape
    assert not np.isnan(out).any()
    assert np.array_equal(out[seen], table[seen])
    again = ScalableKNNImputer(k, weights=weights, max_donors=10).fit_transform(table)  # type: ignore[arg-type]
    assert np.array_equal(out, again)


@parametrize_with_checks([ScalableKNNImputer()])
def test_scikit_learn_estimator_contract(estimator: ScalableKNNImputer, check: Any) -> None:
    check(estimator)
