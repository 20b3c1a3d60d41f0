"""Tests of fairser_jax.metrics against sklearn, fairlearn and NumPy loops."""

import warnings

import numpy as np
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from sklearn.metrics import f1_score

from fairser_jax import metrics


def _random_binary(rng, n, p):
    return (rng.random(n) < p).astype(np.int64)


# --------------------------------------------------------------------------
# statistical_parity_difference vs fairlearn


@pytest.mark.parametrize("case", range(40))
def test_spd_matches_fairlearn_random(case):
    rng = np.random.default_rng(case)
    n = int(rng.integers(2, 200))
    num_groups = int(rng.integers(2, 5))
    groups = rng.integers(0, num_groups, size=n)
    # Make sure at least two groups are present.
    groups[0], groups[1] = 0, 1
    if case % 2:
        groups = np.array(["F", "M", "X", "Y"])[groups]
    y_pred = _random_binary(rng, n, rng.random())
    y_true = _random_binary(rng, n, 0.5)
    expected = demographic_parity_difference(
        y_true, y_pred, sensitive_features=groups
    )
    got = metrics.statistical_parity_difference(y_pred, groups)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "y_pred, groups",
    [
        # all-one predictions: every selection rate is 1, ΔSP = 0
        ([1, 1, 1, 1], ["M", "F", "M", "F"]),
        # all-zero predictions
        ([0, 0, 0, 0, 0], [0, 1, 1, 0, 2]),
        # maximal disparity
        ([1, 1, 0, 0], ["M", "M", "F", "F"]),
        # bool predictions, three groups of different sizes
        ([True, False, True, True, False, False], [2, 0, 1, 1, 0, 2]),
        # one-sample group
        ([1, 0, 0, 1, 0], ["a", "b", "b", "b", "b"]),
    ],
)
def test_spd_edge_cases_match_fairlearn(y_pred, groups):
    y_true = np.zeros(len(y_pred), dtype=int)
    expected = demographic_parity_difference(
        y_true, np.asarray(y_pred, dtype=int), sensitive_features=groups
    )
    got = metrics.statistical_parity_difference(y_pred, groups)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------
# equalized odds / equal opportunity vs fairlearn


_VIEWS = (
    (metrics.equalized_odds_difference, equalized_odds_difference),
    (metrics.equal_opportunity_difference, equal_opportunity_difference),
)


@pytest.mark.parametrize("case", range(40))
def test_odds_views_match_fairlearn_random(case):
    """k = 2..4 groups, int or string labels, any base rates, small groups
    (some without positives or without negatives: fairlearn's rate 0)."""
    rng = np.random.default_rng(100 + case)
    n = int(rng.integers(2, 120))
    groups = rng.integers(0, int(rng.integers(2, 5)), size=n)
    groups[0], groups[1] = 0, 1
    if case % 2:
        groups = np.array(["F", "M", "X", "Y"])[groups]
    y_true = _random_binary(rng, n, rng.random())
    y_pred = _random_binary(rng, n, rng.random())
    for ours, theirs in _VIEWS:
        got = ours(y_true, y_pred, groups)
        assert isinstance(got, float)
        want = theirs(y_true, y_pred, sensitive_features=groups)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_odds_views_by_hand():
    """Two groups: TPR M = 1/2, F = 1; FPR M = 1/2, F = 0."""
    y_true = [1, 1, 0, 0, 1, 0]
    y_pred = [1, 0, 1, 0, 1, 0]
    groups = ["M", "M", "M", "M", "F", "F"]
    assert metrics.equal_opportunity_difference(y_true, y_pred, groups) == 0.5
    assert metrics.equalized_odds_difference(y_true, y_pred, groups) == 0.5
    y_pred = [1, 0, 1, 1, 1, 0]  # FPR M = 1 now
    assert metrics.equalized_odds_difference(y_true, y_pred, groups) == 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        (([1, 0], [1, 0.5], ["M", "F"]), "y_pred must be binary"),
        (([1, 2], [1, 0], ["M", "F"]), "y_true must be binary"),
        (([1, 0], [1, 0], ["M", "M"]), "at least two distinct"),
        (([1, 0, 1], [1, 0], ["M", "F", "F"]), "the same length"),
    ],
)
def test_odds_views_reject_bad_inputs(args, message):
    for ours, _ in _VIEWS:
        with pytest.raises(ValueError, match=message):
            ours(*args)


def test_spd_two_groups_is_absolute_rate_difference():
    # Paper §2.2.3: |P(ŷ=1 | M) − P(ŷ=1 | F)| counted by hand.
    y_pred = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    groups = np.array(["M"] * 4 + ["F"] * 6)
    assert metrics.statistical_parity_difference(y_pred, groups) == (
        pytest.approx(abs(3 / 4 - 1 / 6), abs=1e-15)
    )


def test_spd_accepts_float_zero_one_and_jax_arrays():
    import jax.numpy as jnp

    y = np.array([1.0, 0.0, 1.0, 0.0])
    g = np.array([0, 0, 1, 1])
    assert metrics.statistical_parity_difference(y, g) == 0.0
    assert metrics.statistical_parity_difference(
        jnp.asarray([True, True, False, True]), jnp.asarray(g)
    ) == pytest.approx(0.5)


# --------------------------------------------------------------------------
# weighted_f1 vs sklearn


def _sklearn_weighted_f1(y_true, y_pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f1_score(y_true, y_pred, average="weighted")


@pytest.mark.parametrize("case", range(40))
def test_weighted_f1_matches_sklearn_random(case):
    rng = np.random.default_rng(1000 + case)
    n = int(rng.integers(1, 150))
    y_true = _random_binary(rng, n, rng.random())
    # Mix of informative and degenerate predictors.
    if case % 4 == 0:
        y_pred = y_true.copy()
        flip = rng.random(n) < 0.2
        y_pred[flip] = 1 - y_pred[flip]
    else:
        y_pred = _random_binary(rng, n, rng.random())
    expected = _sklearn_weighted_f1(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = metrics.weighted_f1(y_true, y_pred)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "y_true, y_pred",
    [
        ([1, 0, 1, 0], [1, 1, 1, 1]),  # all-one predictions
        ([1, 0, 1, 0], [0, 0, 0, 0]),  # positive class never predicted
        ([1, 1, 1], [1, 0, 1]),  # class 0 absent in y_true
        ([0, 0, 0], [0, 1, 1]),  # class 1 absent in y_true
        ([1, 1, 1], [0, 0, 0]),  # everything wrong, one true class
        ([0, 0], [0, 0]),  # a single class everywhere
        ([1], [1]),  # a single sample
        ([True, False, False], [False, False, True]),  # bools
    ],
)
def test_weighted_f1_edge_cases_match_sklearn_without_warnings(y_true, y_pred):
    expected = _sklearn_weighted_f1(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = metrics.weighted_f1(y_true, y_pred)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------
# Table 3 extras


def test_parity_product_and_gap_reproduce_table3_basic_neutral():
    # Paper Table 3, Basic / Neutral: 0.365 and 0.525 -> 0.192 and 0.160.
    assert float(metrics.parity_product(0.365, 0.525)) == pytest.approx(
        0.192, abs=5e-4
    )
    assert float(metrics.parity_gap(0.365, 0.525)) == pytest.approx(
        0.160, abs=5e-4
    )


def test_parity_product_and_gap_vectorised_over_seeds():
    rng = np.random.default_rng(7)
    spk = rng.random(10)
    rat = rng.random(10)
    prod = metrics.parity_product(spk, rat)
    gap = metrics.parity_gap(spk, rat)
    assert prod.shape == gap.shape == (10,)
    for i in range(10):
        assert prod[i] == spk[i] * rat[i]
        assert gap[i] == abs(spk[i] - rat[i])


def test_parity_extras_reject_bad_inputs():
    with pytest.raises(ValueError, match="same shape.*\\(3,\\).*\\(2,\\)"):
        metrics.parity_product([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="dsp_rat must hold ΔSP values"):
        metrics.parity_gap([0.1], [1.5])
    with pytest.raises(ValueError, match="dsp_spk is empty"):
        metrics.parity_gap([], [])


# --------------------------------------------------------------------------
# mean ± SD


def test_mean_sd_is_sample_sd():
    rng = np.random.default_rng(3)
    values = rng.normal(size=10)
    mean, sd = metrics.mean_sd(values)
    n = len(values)
    ref_mean = sum(values) / n
    ref_sd = (sum((v - ref_mean) ** 2 for v in values) / (n - 1)) ** 0.5
    assert mean == pytest.approx(ref_mean, rel=1e-12)
    assert sd == pytest.approx(ref_sd, rel=1e-12)


def test_mean_sd_single_value_has_zero_sd():
    assert metrics.mean_sd([0.42]) == (0.42, 0.0)


def test_mean_sd_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="values is empty"):
        metrics.mean_sd([])
    with pytest.raises(ValueError, match="1 of 3 are NaN or inf"):
        metrics.mean_sd([0.1, float("nan"), 0.3])
    with pytest.raises(ValueError, match="must be 1-D.*\\(2, 2\\)"):
        metrics.mean_sd(np.zeros((2, 2)))


# --------------------------------------------------------------------------
# bootstrap


def _loop_bootstrap(values, confidence, num_resamples, seed):
    """Plain-Python reference: one scalar draw at a time."""
    rng = np.random.default_rng(seed)
    n = len(values)
    means = []
    for _ in range(num_resamples):
        total = 0.0
        for _ in range(n):
            total += values[int(rng.integers(0, n))]
        means.append(total / n)
    alpha = 1.0 - confidence
    return tuple(np.quantile(means, [alpha / 2, 1 - alpha / 2]))


@pytest.mark.parametrize(
    "n, confidence, num_resamples, seed",
    [(10, 0.95, 2000, 0), (3, 0.9, 500, 5), (25, 0.5, 777, 123)],
)
def test_bootstrap_matches_loop_reference(n, confidence, num_resamples, seed):
    values = np.random.default_rng(seed + 1).normal(size=n).tolist()
    got = metrics.bootstrap_ci(
        values,
        confidence=confidence,
        num_resamples=num_resamples,
        seed=seed,
    )
    expected = _loop_bootstrap(values, confidence, num_resamples, seed)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_bootstrap_blocked_draws_equal_unblocked(monkeypatch):
    values = np.random.default_rng(0).random(13)
    whole = metrics.bootstrap_ci(values, num_resamples=300, seed=9)
    # Force many small blocks (3 resamples per block).
    monkeypatch.setattr(metrics, "_BOOTSTRAP_BLOCK_ELEMENTS", 40)
    blocked = metrics.bootstrap_ci(values, num_resamples=300, seed=9)
    assert whole == blocked


def test_bootstrap_deterministic_and_seed_dependent():
    values = np.random.default_rng(1).random(10)
    a = metrics.bootstrap_ci(values, num_resamples=500, seed=4)
    b = metrics.bootstrap_ci(values, num_resamples=500, seed=4)
    c = metrics.bootstrap_ci(values, num_resamples=500, seed=5)
    assert a == b
    assert a != c
    assert a[0] <= values.mean() <= a[1]


def test_bootstrap_coverage_of_normal_mean():
    # Over many samples from N(0, 1), the 90% percentile interval should
    # contain the true mean roughly 90% of the time (slightly less for
    # n = 40: the percentile bootstrap is known to under-cover a little).
    rng = np.random.default_rng(2024)
    trials = 300
    hits = 0
    for t in range(trials):
        sample = rng.normal(size=40)
        low, high = metrics.bootstrap_ci(
            sample, confidence=0.9, num_resamples=400, seed=t
        )
        hits += low <= 0.0 <= high
    coverage = hits / trials
    # 3 SD band around 0.88 for 300 Bernoulli trials is about ±0.056.
    assert 0.82 <= coverage <= 0.95, coverage


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"values": [1.0]}, "at least two values.*got 1"),
        ({"values": []}, "values is empty"),
        ({"values": [1.0, np.inf]}, "NaN or inf"),
        ({"values": [1.0, 2.0], "confidence": 1.0}, "confidence.*got 1.0"),
        ({"values": [1.0, 2.0], "num_resamples": 0}, "positive integer"),
        ({"values": [1.0, 2.0], "num_resamples": 2.5}, "positive integer"),
    ],
)
def test_bootstrap_errors(kwargs, message):
    values = kwargs.pop("values")
    with pytest.raises(ValueError, match=message):
        metrics.bootstrap_ci(values, **kwargs)


# --------------------------------------------------------------------------
# error cases of the two main metrics


def test_mismatched_lengths_name_both_lengths():
    with pytest.raises(ValueError, match="y_pred has 3, groups has 2"):
        metrics.statistical_parity_difference([0, 1, 1], ["M", "F"])
    with pytest.raises(ValueError, match="y_true has 2, y_pred has 3"):
        metrics.weighted_f1([0, 1], [0, 1, 1])


def test_empty_inputs_raise():
    with pytest.raises(ValueError, match="y_pred is empty"):
        metrics.statistical_parity_difference([], [])
    with pytest.raises(ValueError, match="y_true is empty"):
        metrics.weighted_f1([], [])


def test_single_group_raises():
    with pytest.raises(ValueError, match="two distinct values.*\\['M'\\]"):
        metrics.statistical_parity_difference([0, 1, 1], ["M", "M", "M"])


@pytest.mark.parametrize(
    "bad, shown",
    [
        ([0, 1, 2], "\\[2\\]"),
        ([0.2, 0.7, 1.0], "\\[0.2, 0.7\\]"),
        ([-1, 0, 1], "\\[-1\\]"),
    ],
)
def test_non_binary_predictions_raise(bad, shown):
    with pytest.raises(ValueError, match=f"y_pred must be binary.*{shown}"):
        metrics.statistical_parity_difference(bad, ["M", "F", "M"])
    with pytest.raises(ValueError, match=f"y_pred must be binary.*{shown}"):
        metrics.weighted_f1([0, 1, 1], bad)
    with pytest.raises(ValueError, match=f"y_true must be binary.*{shown}"):
        metrics.weighted_f1(bad, [0, 1, 1])


def test_string_predictions_raise():
    with pytest.raises(ValueError, match="binary 0/1 or bool.*<U"):
        metrics.weighted_f1(["yes", "no"], [1, 0])


def test_missing_and_mixed_groups_raise():
    with pytest.raises(ValueError, match="1 missing label"):
        metrics.statistical_parity_difference([0, 1, 1], ["M", "", "F"])
    with pytest.raises(ValueError, match="1 missing label"):
        metrics.statistical_parity_difference(
            [0, 1, 1], np.array(["M", None, "F"], dtype=object)
        )
    with pytest.raises(ValueError, match="1 missing label"):
        metrics.statistical_parity_difference([0, 1, 1], [0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="one comparable kind"):
        metrics.statistical_parity_difference(
            [0, 1, 1], np.array(["M", 1, "F"], dtype=object)
        )


def test_two_dimensional_input_raises():
    with pytest.raises(ValueError, match="must be 1-D.*\\(2, 2\\)"):
        metrics.weighted_f1(np.zeros((2, 2)), np.zeros((2, 2)))
