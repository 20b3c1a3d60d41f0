"""Recognition and fairness metrics of the paper's Tables 2 and 3.

Everything here runs in NumPy on the host, after the out-of-fold
predictions have been pooled (paper §2.2.3). The functions take array-likes
(lists, NumPy arrays, JAX arrays, pandas columns) and return Python-float
compatible NumPy scalars or arrays.

- :func:`weighted_f1`: the recognition score of Tables 2 and 3, equal to
  ``sklearn.metrics.f1_score(y_true, y_pred, average="weighted")``.
- :func:`statistical_parity_difference`: ΔSP_spk / ΔSP_rat (paper §2.2.3,
  Yang & Stoyanovich 2017), equal to
  ``fairlearn.metrics.demographic_parity_difference``.
- :func:`equalized_odds_difference`, :func:`equal_opportunity_difference`:
  the other group-fairness views reported beside ΔSP (not in the paper),
  equal to fairlearn's functions of the same names.
- :func:`parity_product`, :func:`parity_gap`: the two extra rows of
  Table 3, ΔSP_spk × ΔSP_rat and |ΔSP_spk − ΔSP_rat|.
- :func:`mean_sd`, :func:`bootstrap_ci`: summaries over seeds ("mean ± SD
  of ten models", Table 3) and a percentile bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "bootstrap_ci",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "mean_sd",
    "parity_gap",
    "parity_product",
    "statistical_parity_difference",
    "weighted_f1",
]

_WHERE = "fairser_jax/metrics.py"

# Bootstrap resamples are drawn in blocks of at most this many indices so
# that memory stays bounded for long inputs (e.g. per-utterance values).
_BOOTSTRAP_BLOCK_ELEMENTS = 1 << 20


def _as_1d(values: Any, name: str, func: str) -> np.ndarray:
    """Returns ``values`` as a 1-D array, or raises a ValueError."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"{_WHERE}: {func}: {name} must be 1-D (one entry per sample); "
            f"got shape {array.shape}. Flatten or select one run first."
        )
    if array.shape[0] == 0:
        raise ValueError(
            f"{_WHERE}: {func}: {name} is empty; pass at least one sample."
        )
    return array


def _check_same_length(func: str, **arrays: np.ndarray) -> None:
    """Raises a ValueError naming each length if they differ."""
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        described = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(
            f"{_WHERE}: {func}: inputs must have one entry per sample and "
            f"the same length; {described}."
        )


def _as_binary(values: Any, name: str, func: str) -> np.ndarray:
    """Returns a 1-D int8 array of 0/1, or raises naming what was wrong.

    Accepts booleans and numbers that are exactly 0 or 1. Scores or
    probabilities are rejected: threshold them first (paper §2.2.3: predict 1
    iff sigmoid(logit) >= 0.5).
    """
    array = _as_1d(values, name, func)
    if array.dtype == np.bool_:
        return array.astype(np.int8)
    if not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(
            f"{_WHERE}: {func}: {name} must be binary 0/1 or bool; got "
            f"dtype {array.dtype} (e.g. {array[:3].tolist()})."
        )
    is_zero = array == 0
    is_one = array == 1
    bad = ~(is_zero | is_one)
    if bad.any():
        seen = np.unique(array[bad])[:5].tolist()
        raise ValueError(
            f"{_WHERE}: {func}: {name} must be binary (0/1); found "
            f"{int(bad.sum())} other value(s), e.g. {seen}. Threshold "
            "scores first: y_pred = sigmoid(logit) >= 0.5."
        )
    return is_one.astype(np.int8)


def _check_groups(groups: np.ndarray, func: str) -> None:
    """Rejects missing group labels (None, NaN, empty string)."""
    if groups.dtype == object:
        missing = np.array(
            [g is None or (isinstance(g, float) and g != g) for g in groups]
        )
    elif np.issubdtype(groups.dtype, np.floating):
        missing = np.isnan(groups)
    elif np.issubdtype(groups.dtype, np.str_):
        missing = groups == ""
    else:
        return
    if missing.any():
        raise ValueError(
            f"{_WHERE}: {func}: groups has {int(missing.sum())} missing "
            "label(s) (None, NaN or empty string). Select the samples that "
            "have a group first (ΔSP_rat is computed on S2 only)."
        )


def statistical_parity_difference(y_pred: Any, groups: Any) -> float:
    """Statistical parity difference ΔSP (paper §2.2.3; ideal 0).

    .. math::

        \\Delta SP = \\max_a P(\\hat y = 1 \\mid A = a)
            - \\min_a P(\\hat y = 1 \\mid A = a)

    For two groups this is
    :math:`|P(\\hat y=1 \\mid M) - P(\\hat y=1 \\mid F)|`: ΔSP_spk with
    speaker gender over S1, ΔSP_rat with the rater-gender group over S2
    (paper §2.2.3). Equals ``fairlearn.metrics.demographic_parity_difference``
    (``method="between_groups"``, no sample weights).

    Args:
      y_pred: ``[N]`` binary predictions (0/1 or bool).
      groups: ``[N]`` group label per sample, any number of distinct
        values (strings such as ``"M"``/``"F"`` or ints). Missing labels
        (None, NaN, ``""``) are an error.

    Returns:
      ΔSP in ``[0, 1]``.

    Raises:
      ValueError: empty or mismatched inputs, non-binary predictions,
        missing group labels, or fewer than two distinct groups.

    References:
      Yang & Stoyanovich, "Measuring fairness in ranked outputs", 2017.
    """
    func = "statistical_parity_difference"
    y = _as_binary(y_pred, "y_pred", func)
    names, index = _group_index(groups, func)
    _check_same_length(func, y_pred=y, groups=index)
    every = np.ones(y.shape[0], bool)
    rates = _rate_by_group(y, index, every, names.shape[0])
    return float(rates.max() - rates.min())


def _group_index(groups: Any, func: str) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct groups [k], index of each sample's group [N])."""
    g = _as_1d(groups, "groups", func)
    _check_groups(g, func)
    try:
        names, index = np.unique(g, return_inverse=True)
    except TypeError as error:
        raise ValueError(
            f"{_WHERE}: {func}: group labels must be of one comparable "
            "kind (all strings or all ints); got types "
            f"{sorted({type(v).__name__ for v in g})}."
        ) from error
    if names.shape[0] < 2:
        raise ValueError(
            f"{_WHERE}: {func}: groups must contain at least two distinct "
            f"values to compare; got only {names.tolist()}. Check that the "
            "evaluation set covers every group."
        )
    return names, index.reshape(-1)


def _rate_by_group(
    y_pred: np.ndarray, index: np.ndarray, where: np.ndarray, k: int
) -> np.ndarray:
    """P(ŷ = 1 | group, `where`) per group [k]; 0 for a group with no
    sample in `where` (fairlearn's convention: sklearn's normalised
    confusion matrix turns 0/0 into 0)."""
    count = np.bincount(index[where], minlength=k)
    hits = np.bincount(index[where], weights=y_pred[where], minlength=k)
    return np.divide(hits, count, out=np.zeros(k), where=count > 0)


def _odds(y_true: Any, y_pred: Any, groups: Any, func: str):
    t = _as_binary(y_true, "y_true", func)
    y = _as_binary(y_pred, "y_pred", func)
    names, index = _group_index(groups, func)
    _check_same_length(func, y_true=t, y_pred=y, groups=index)
    k = names.shape[0]
    tpr = _rate_by_group(y, index, t == 1, k)
    fpr = _rate_by_group(y, index, t == 0, k)
    return tpr, fpr


def equal_opportunity_difference(
    y_true: Any, y_pred: Any, groups: Any
) -> float:
    """Equal-opportunity difference ΔEOpp (ideal 0): the largest gap in
    true-positive rate between two groups.

    .. math::

        \\Delta EOpp = \\max_a P(\\hat y = 1 \\mid y = 1, A = a)
            - \\min_a P(\\hat y = 1 \\mid y = 1, A = a)

    Equals ``fairlearn.metrics.true_positive_rate_difference`` (between
    groups); a group without positive samples has rate 0, as there.

    Args:
      y_true: ``[N]`` binary targets.
      y_pred: ``[N]`` binary predictions.
      groups: ``[N]`` group label per sample, two or more distinct values.

    Returns:
      ΔEOpp in ``[0, 1]``.
    """
    tpr, _ = _odds(y_true, y_pred, groups, "equal_opportunity_difference")
    return float(tpr.max() - tpr.min())


def equalized_odds_difference(y_true: Any, y_pred: Any, groups: Any) -> float:
    """Equalized-odds difference ΔEOd (ideal 0): the larger of the
    between-group gaps in true-positive and in false-positive rate.

    Equals ``fairlearn.metrics.equalized_odds_difference`` (its defaults:
    ``method="between_groups"``, ``agg="worst_case"``); a group without
    positive (negative) samples has true- (false-) positive rate 0, as
    there.

    Args:
      y_true: ``[N]`` binary targets.
      y_pred: ``[N]`` binary predictions.
      groups: ``[N]`` group label per sample, two or more distinct values.

    Returns:
      ΔEOd in ``[0, 1]``.
    """
    tpr, fpr = _odds(y_true, y_pred, groups, "equalized_odds_difference")
    return float(max(tpr.max() - tpr.min(), fpr.max() - fpr.min()))


def weighted_f1(y_true: Any, y_pred: Any) -> float:
    """Support-weighted F1 of a binary detector (Tables 2 and 3, "F1").

    .. math::

        F_1 = \\sum_{c} \\frac{n_c}{N} \\frac{2\\,TP_c}{2\\,TP_c + FP_c
            + FN_c}

    over the classes ``c`` present in ``y_true`` or ``y_pred``, with
    ``n_c`` the number of true samples of class ``c``. This is
    ``sklearn.metrics.f1_score(y_true, y_pred, average="weighted")``. A
    class that is never predicted contributes F1 = 0 (sklearn's default
    ``zero_division`` result); no warning is emitted.

    Args:
      y_true: ``[N]`` binary targets (0/1 or bool).
      y_pred: ``[N]`` binary predictions (0/1 or bool).

    Returns:
      Weighted F1 in ``[0, 1]`` (a fraction, not a percentage).

    Raises:
      ValueError: empty or mismatched inputs, or non-binary values.
    """
    func = "weighted_f1"
    t = _as_binary(y_true, "y_true", func)
    p = _as_binary(y_pred, "y_pred", func)
    _check_same_length(func, y_true=t, y_pred=p)
    total = 0.0
    for c in (0, 1):
        true_c = t == c
        pred_c = p == c
        support = int(true_c.sum())
        if support == 0:
            continue  # weight n_c / N is zero
        tp = int(np.sum(true_c & pred_c))
        fp = int(np.sum(~true_c & pred_c))
        fn = support - tp
        # support > 0 makes the denominator positive.
        total += support * (2.0 * tp / (2.0 * tp + fp + fn))
    return total / t.shape[0]


def _check_parity_pair(
    dsp_spk: Any, dsp_rat: Any, func: str
) -> tuple[np.ndarray, np.ndarray]:
    spk = np.asarray(dsp_spk, dtype=np.float64)
    rat = np.asarray(dsp_rat, dtype=np.float64)
    if spk.shape != rat.shape:
        raise ValueError(
            f"{_WHERE}: {func}: dsp_spk and dsp_rat must have the same "
            f"shape (one value per seed); got {spk.shape} and {rat.shape}."
        )
    for name, a in (("dsp_spk", spk), ("dsp_rat", rat)):
        if a.size == 0:
            raise ValueError(f"{_WHERE}: {func}: {name} is empty.")
        if not np.all((a >= 0.0) & (a <= 1.0)):
            raise ValueError(
                f"{_WHERE}: {func}: {name} must hold ΔSP values in [0, 1]; "
                f"got min {np.nanmin(a)}, max {np.nanmax(a)} (or NaN)."
            )
    return spk, rat


def parity_product(dsp_spk: Any, dsp_rat: Any) -> np.ndarray:
    """Table 3's ΔSP_spk × ΔSP_rat, elementwise (e.g. one value per seed).

    Both parities near 0 give a product near 0; the paper reads a smaller
    product as a joint speaker-rater fair state (§3.1, Table 3).

    Args:
      dsp_spk: ``[...]`` ΔSP_spk values in ``[0, 1]``.
      dsp_rat: ``[...]`` ΔSP_rat values, same shape.

    Returns:
      ``[...]`` float64 array (a 0-d array for scalar inputs).
    """
    spk, rat = _check_parity_pair(dsp_spk, dsp_rat, "parity_product")
    return spk * rat


def parity_gap(dsp_spk: Any, dsp_rat: Any) -> np.ndarray:
    """Table 3's |ΔSP_spk − ΔSP_rat|, elementwise (e.g. one per seed).

    A small gap means neither viewpoint is favoured over the other.

    Args:
      dsp_spk: ``[...]`` ΔSP_spk values in ``[0, 1]``.
      dsp_rat: ``[...]`` ΔSP_rat values, same shape.

    Returns:
      ``[...]`` float64 array (a 0-d array for scalar inputs).
    """
    spk, rat = _check_parity_pair(dsp_spk, dsp_rat, "parity_gap")
    return np.abs(spk - rat)


def _finite_1d(values: Any, func: str) -> np.ndarray:
    array = _as_1d(values, "values", func).astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"{_WHERE}: {func}: values must be finite; {int(bad.sum())} of "
            f"{array.shape[0]} are NaN or inf. A diverged run should be "
            "fixed or excluded explicitly, not averaged."
        )
    return array


def mean_sd(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean ± SD over seeds, as in "the average of ten models" (Table 3).

    The SD is the sample standard deviation (``ddof=1``, the unbiased
    variance's square root). For a single value the SD is defined as 0
    rather than NaN, so a one-seed run still produces a table.

    Args:
      values: ``[S]`` one finite value per seed.

    Returns:
      ``(mean, sd)`` as floats.

    Raises:
      ValueError: empty, not 1-D, or non-finite values.
    """
    array = _finite_1d(values, "mean_sd")
    mean = float(array.mean())
    if array.shape[0] == 1:
        return mean, 0.0
    return mean, float(array.std(ddof=1))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    num_resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Draws ``num_resamples`` resamples of size ``S`` with replacement from
    ``values`` and returns the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles (NumPy's default linear
    interpolation) of the resample means.

    Determinism: the indices come from ``np.random.default_rng(seed)``,
    resample ``r`` being the ``r``-th block of ``S`` draws of
    ``rng.integers(0, S)``; the same ``(values, num_resamples, seed)``
    always gives the same interval.

    Args:
      values: ``[S]`` at least two finite values (e.g. one per seed).
      confidence: interval level in ``(0, 1)``.
      num_resamples: number of bootstrap resamples, at least 1.
      seed: seed of the NumPy generator.

    Returns:
      ``(low, high)`` as floats, ``low <= high``.

    Raises:
      ValueError: fewer than two values, non-finite values, or an
        out-of-range ``confidence`` / ``num_resamples``.
    """
    func = "bootstrap_ci"
    array = _finite_1d(values, func)
    n = array.shape[0]
    if n < 2:
        raise ValueError(
            f"{_WHERE}: {func}: needs at least two values to resample; got "
            f"{n}. Run more seeds or report mean_sd instead."
        )
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(
            f"{_WHERE}: {func}: confidence must be in (0, 1), e.g. 0.95; "
            f"got {confidence}."
        )
    if int(num_resamples) != num_resamples or num_resamples < 1:
        raise ValueError(
            f"{_WHERE}: {func}: num_resamples must be a positive integer; "
            f"got {num_resamples}."
        )
    num_resamples = int(num_resamples)
    rng = np.random.default_rng(seed)
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // n)
    means = np.empty(num_resamples, dtype=np.float64)
    for start in range(0, num_resamples, block):
        stop = min(start + block, num_resamples)
        index = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = array[index].mean(axis=1)
    alpha = 1.0 - float(confidence)
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)
