"""The paper's claims, tested on a workdir: ``claims.md`` and ``claims.csv``.

Each claim of Chien, Upadhyay & Lee (ICASSP 2024) that a workdir can speak
to is turned into a one-sided test over the seeds of two variants, per
emotion (detector):

==== ===================================================== ============
id   claim (a vs b)                                        paper
==== ===================================================== ============
C1   Fair_spk ΔSP_spk < DNN's (intra-fairness)              §2.2.3, T. 2
C2   Fair_rat ΔSP_rat < DNN's (intra-fairness)              §2.2.3, T. 2
C3   Fair_spk ΔSP_rat > Fair_rat's (inter-fairness)         §2.2.3, T. 2
C4   Fair_rat ΔSP_spk > Fair_spk's (inter-fairness)         §2.2.3, T. 2
C5   Proposed ΔSP_spk × ΔSP_rat < Basic's                   §3.2.1, T. 3
C6   Proposed's SD over seeds < Basic's (F1; product)       §3.2.1, T. 3
C7   Proposed product < every fixed α's                     §3.2.2, F. 3a
C8   Proposed's batch-wise α is diverse, with two modes     §3.2.2, F. 3b
C9   Proposed product < Basic-from-Fair_rat's (control)     §3.1
C10  Proposed product < fixed α = 0.5's                     §3.1, F. 3a
==== ===================================================== ============

Tests (docs/DESIGN.md, "Claims report"):

- C1-C5, C7, C9, C10: a one-sided exact sign test of the per-seed paired
  differences (``scipy.stats.binomtest`` on the number of seeds in the
  claimed direction, ties dropped), over the seeds both variants have. The
  smallest p-value of n untied seeds is 0.5**n: it takes >= 5 seeds to
  reach p < 0.05.
- C6: a bootstrap of the ratio SD_Proposed / SD_Basic (sample SDs,
  ddof 1), resampling the paired seeds with replacement
  (:data:`BOOTSTRAP_RESAMPLES` draws of a fixed-seed NumPy Generator);
  p = the fraction of ratios >= 1.
- C7: one sign test per fixed α; p = the largest (intersection-union: the
  claim is about every α).
- C8: descriptive (no test over seeds): SD of α >= :data:`ALPHA_SD_THRESHOLD`
  and at least two modes in the stored histogram (:func:`histogram_modes`).

Verdict: ``reproduces`` when the claimed direction has p < 0.05,
``contradicted`` when the opposite direction has p < 0.05, else
``inconclusive (<n> seeds)``.

A run whose prediction is one class for every utterance (a constant
predictor) has ΔSP = 0 without being fair; such runs are read from
``predictions.csv`` (:func:`constant_runs`) and their seeds dropped from
the pairs of every claim.

Only NumPy, SciPy and the JAX-free modules of the package are imported:
the claims can be evaluated where JAX is not installed.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import pathlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import signal, stats

from fairser_jax import fileio
from fairser_jax import variants as variants_lib
from fairser_jax import workdir as workdir_lib
from fairser_jax.constants import in_paper_order
from fairser_jax.report import numbers
from fairser_jax.results import RunKey, format_key, is_cell, run_key

CLAIMS_CSV = "claims.csv"
_CSV_LINK = f"{workdir_lib.Layout.TABLES}/{CLAIMS_CSV}"

COLUMNS: tuple[str, ...] = (
    "claim",
    "emotion",
    "measure",
    "a",
    "b",
    "n_seeds",
    "p_value",
    "verdict",
)
"""Header of ``tables/claims.csv``."""

SIGNIFICANCE = 0.05
"""A direction holds when its one-sided p-value is below this."""

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
"""C6: draws of the bootstrap and the seed of its `numpy.random.Generator`
(a fresh Generator per row, so each row is reproducible alone)."""

ALPHA_SD_THRESHOLD = 0.05
"""C8: the SD of Proposed's α (over every batch) that counts as diverse.
The paper's Fig. 3b spreads α over about [0.2, 0.8] with peaks near 0.25
and 0.75 (SD >~ 0.1); 0.05 is one bin of the stored 20-bin histogram."""

MODE_PROMINENCE = 0.1
"""C8: a histogram mode must stand out by this fraction of the tallest
bin (:func:`histogram_modes`)."""

MIN_SIGN_TEST_SEEDS = 5
"""Untied seeds an exact one-sided sign test needs to reach p < 0.05
(0.5**5 = 0.031; 0.5**4 = 0.0625)."""

FIXED_ALPHA_MIDPOINT = 0.5
"""C10: the constant α compared with Proposed (matched after rounding to 9
decimals)."""


def display(variant: str) -> str:
    """The paper's name of a variant id (the id itself if unknown)."""
    return variants_lib.display_name(variant)


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
    """One claim of the paper.

    Attributes:
      id: ``"C1"`` … ``"C10"``.
      kind: ``"paired"`` (sign test of a vs b), ``"sd"`` (C6),
        ``"sweep"`` (C7), ``"alpha"`` (C8).
      first: the variant the claim is about (``a``).
      second: the variant it is compared with (``b``); None for C8.
      measures: the measure(s) compared: ``f1``, ``dsp_spk``, ``dsp_rat``,
        ``product`` (ΔSP_spk × ΔSP_rat of each seed), ``alpha_sd``.
      direction: ``"less"`` (a < b) or ``"greater"`` (a > b).
      statement: the claim in words.
      section: where the paper makes it.
      alpha: the fixed α of ``second`` (C10), else None.
    """

    id: str
    kind: str
    first: str
    second: str | None
    measures: tuple[str, ...]
    direction: str
    statement: str
    section: str
    alpha: float | None = None

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants the claim needs."""
        return (self.first,) + ((self.second,) if self.second else ())


# fmt: off
CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        "C1", "paired", "fair_spk", "dnn", ("dsp_spk",), "less",
        "Fair_spk has a lower ΔSP_spk than DNN (intra-fairness: the "
        "speaker-side model is fairer on its own side).",
        "§2.2.3, Table 2",
    ),
    ClaimSpec(
        "C2", "paired", "fair_rat", "dnn", ("dsp_rat",), "less",
        "Fair_rat has a lower ΔSP_rat than DNN (intra-fairness: the "
        "rater-side model is fairer on its own side).",
        "§2.2.3, Table 2",
    ),
    ClaimSpec(
        "C3", "paired", "fair_spk", "fair_rat", ("dsp_rat",), "greater",
        "Fair_spk has a higher ΔSP_rat than Fair_rat (inter-fairness: "
        "speaker-side fairness does not transfer to the rater side).",
        "§2.2.3, Table 2",
    ),
    ClaimSpec(
        "C4", "paired", "fair_rat", "fair_spk", ("dsp_spk",), "greater",
        "Fair_rat has a higher ΔSP_spk than Fair_spk (inter-fairness: "
        "rater-side fairness does not transfer to the speaker side).",
        "§2.2.3, Table 2",
    ),
    ClaimSpec(
        "C5", "paired", "proposed", "basic", ("product",), "less",
        "Proposed has a lower ΔSP_spk × ΔSP_rat than Basic.",
        "§3.2.1, Table 3",
    ),
    ClaimSpec(
        "C6", "sd", "proposed", "basic", ("f1", "product"), "less",
        "Proposed is more stable than Basic: a smaller SD over seeds of F1 "
        "and of ΔSP_spk × ΔSP_rat (a and b are the SDs).",
        "§3.2.1, Table 3",
    ),
    ClaimSpec(
        "C7", "sweep", "proposed", "fixed_alpha", ("product",), "less",
        "Proposed has a lower ΔSP_spk × ΔSP_rat than the model of every "
        "fixed α (b is the smallest mean over the α values).",
        "§3.2.2, Fig. 3a",
    ),
    ClaimSpec(
        "C8", "alpha", "proposed", None, ("alpha_sd",), "greater",
        "Proposed's batch-wise α is diverse (SD over every batch ≥ "
        f"{ALPHA_SD_THRESHOLD:g}) with at least two modes (the paper's "
        "peaks near 0.25 and 0.75; b is the SD threshold).",
        "§3.2.2, Fig. 3b",
    ),
    ClaimSpec(
        "C9", "paired", "proposed", "basic_anchored", ("product",), "less",
        "Proposed has a lower ΔSP_spk × ΔSP_rat than Basic's objective "
        "(L_SPK + L_RAT) started from the trained Fair_rat: a control for "
        "Proposed's warm start (not in the paper; docs/DESIGN.md).",
        "§3.1, a control",
    ),
    ClaimSpec(
        "C10", "paired", "proposed", "fixed_alpha", ("product",), "less",
        f"Proposed has a lower ΔSP_spk × ΔSP_rat than fixed α = "
        f"{FIXED_ALPHA_MIDPOINT:g}: adapting α per batch beats the constant "
        "midpoint of eq. (3).",
        "§3.1 eq. (3), Fig. 3a",
        alpha=FIXED_ALPHA_MIDPOINT,
    ),
)
# fmt: on
"""Every claim, in report order."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """One row of ``claims.csv``: one claim on one emotion's detector.

    Attributes:
      claim: ``"C1"`` … ``"C10"`` (see :data:`CLAIMS`).
      emotion: the detector.
      measure: ``f1``, ``dsp_spk``, ``dsp_rat``, ``product``, ``alpha_sd``.
      a: mean over the paired seeds of the claim's first variant's measure
        (C6: its SD over them; C8: the SD of α), in ``results.json`` units
        (F1 as a fraction); None without paired seeds.
      b: the same of the variant it is compared with (C7: the smallest
        mean over the fixed α values; C8: :data:`ALPHA_SD_THRESHOLD`).
      n_seeds: paired seeds used (C7: the fewest over the α values; C8:
        Proposed's seeds of that detector).
      p_value: one-sided p-value of the claimed direction; None for C8 and
        when there is nothing to test.
      verdict: ``reproduces``, ``contradicted`` or ``inconclusive (n
        seeds)``.
      excluded: constant-predictor runs whose seeds were dropped from the
        pairs (not a CSV column; listed in ``claims.md``).
      p_opposite: one-sided p-value of the opposite direction (not a CSV
        column).
    """

    claim: str
    emotion: str
    measure: str
    a: float | None
    b: float | None
    n_seeds: int | None
    p_value: float | None
    verdict: str
    excluded: tuple[RunKey, ...] = ()
    p_opposite: float | None = None

    def csv_row(self) -> list[Any]:
        """The :data:`COLUMNS` values; floats unrounded, None empty."""
        return [
            "" if v is None else v
            for v in (
                self.claim,
                self.emotion,
                self.measure,
                self.a,
                self.b,
                self.n_seeds,
                self.p_value,
                self.verdict,
            )
        ]


# ----------------------------------------------------- constant predictors


def constant_predictions(
    predictions_csv: str | os.PathLike,
) -> dict[RunKey, str]:
    """Runs whose ``y_pred`` is one class for every utterance.

    Args:
      predictions_csv: a workdir's ``predictions.csv`` (columns of
        :func:`fairser_jax.results.prediction_columns`; only ``variant``,
        ``emotion``, ``seed``, ``alpha`` and ``y_pred`` are read).

    Returns:
      {run key (:func:`fairser_jax.results.run_key` form): the class it
      always predicts, e.g. ``"0"``}; empty when the file does not exist.

    Raises:
      ValueError: a header without those columns, or a seed / α that is
        not a number (names the file and line).
    """
    path = pathlib.Path(predictions_csv)
    if not path.is_file():
        return {}
    names = ("variant", "emotion", "seed", "alpha", "y_pred")
    classes: dict[RunKey, set[str]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if not set(names) <= set(header):
            raise ValueError(
                f"{path}:1: header must hold {list(names)}; got {header}."
            )
        col = [header.index(c) for c in names]
        width = max(col) + 1
        for row in reader:
            if len(row) < width:
                continue
            variant, emotion, seed, alpha, y_pred = (row[i] for i in col)
            try:
                key = run_key(
                    {
                        "variant": variant,
                        "emotion": emotion,
                        "seed": int(seed),
                        "alpha": None if alpha == "" else float(alpha),
                    }
                )
            except ValueError:
                raise ValueError(
                    f"{path}:{reader.line_num}: seed must be an integer and "
                    f"alpha a number or empty; got {seed!r}, {alpha!r}."
                ) from None
            seen = classes.setdefault(key, set())
            if len(seen) < 2:
                seen.add(y_pred)
    return {k: next(iter(v)) for k, v in classes.items() if len(v) == 1}


def constant_runs(predictions_csv: str | os.PathLike) -> set[RunKey]:
    """Keys of the runs that predict one class for every utterance.

    Such a run has ΔSP_spk = ΔSP_rat = 0: trivially "fair", not fair. The
    claims drop their seeds; the report marks them.

    Args:
      predictions_csv: a workdir's ``predictions.csv``.

    Returns:
      (variant, emotion, seed, alpha) keys (:func:`run_key` form); empty
      when the file does not exist.
    """
    return set(constant_predictions(predictions_csv))


# ------------------------------------------------------------------ tests


def run_measure(run: Mapping[str, Any], measure: str) -> float | None:
    """One run's ``f1``, ``dsp_spk``, ``dsp_rat`` or ``product``
    (ΔSP_spk × ΔSP_rat); None when a parity is missing."""
    if measure == "product":
        spk, rat = run.get("dsp_spk"), run.get("dsp_rat")
        if spk is None or rat is None:
            return None
        return float(spk) * float(rat)
    value = run.get(measure)
    return None if value is None else float(value)


def sign_test(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """One-sided exact sign tests of paired values.

    Args:
      a, b: [n] paired values (one per seed).

    Returns:
      ``(p_less, p_greater)``: the p-value of "a < b" (the number of seeds
      with a < b is Binomial(m, 1/2) under H0, m = the untied seeds;
      ``scipy.stats.binomtest(k, m, 0.5, alternative="greater")``) and of
      "a > b"; both 1.0 when every pair ties (or there is none).
    """
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    d = d[d != 0]
    m = int(d.size)
    if m == 0:
        return 1.0, 1.0
    below = int(np.sum(d < 0))
    p_less = stats.binomtest(below, m, 0.5, alternative="greater").pvalue
    p_greater = stats.binomtest(m - below, m, 0.5, alternative="greater").pvalue
    return float(p_less), float(p_greater)


def _sd_ratios(
    a: np.ndarray, b: np.ndarray, resamples: int, seed: int
) -> np.ndarray:
    """[resamples] bootstrap ratios SD(a*) / SD(b*) over paired resamples
    of the n seeds.

    A resample of one seed drawn n times has SD 0 on both sides: its ratio
    is 1 (read from the indices: the float SD of n equal values can be
    1e-17 instead of 0). Otherwise x/0 is +inf.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(resamples, a.size))
    sa = a[idx].std(axis=1, ddof=1)
    sb = b[idx].std(axis=1, ddof=1)
    one_seed = np.all(idx == idx[:, :1], axis=1)
    safe = np.where(sb > 0, sb, 1.0)
    ratio = np.where(sb > 0, sa / safe, np.where(sa > 0, np.inf, 1.0))
    return np.where(one_seed, 1.0, ratio)


def sd_ratio_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Bootstrap test of "SD(a) < SD(b)" over paired seeds (C6).

    Draws ``resamples`` sets of n seed indices with replacement,
    ``numpy.random.default_rng(seed).integers(0, n, size=(resamples,
    n))``, the same indices for a and b, and computes the ratio of the
    sample SDs (ddof 1) of each; a resample of a single seed (SD 0 on both
    sides) has ratio 1.

    Args:
      a, b: [n] paired values, n >= 2.

    Returns:
      ``(p_less, p_greater)``: the fraction of ratios >= 1, and of ratios
      <= 1.
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.size < 2 or x.shape != y.shape:
        raise ValueError(
            f"sd_ratio_test needs >= 2 paired values; got {x.shape}, {y.shape}."
        )
    ratios = _sd_ratios(x, y, resamples, seed)
    return float(np.mean(ratios >= 1)), float(np.mean(ratios <= 1))


def histogram_modes(
    counts: Sequence[float] | np.ndarray, prominence: float = MODE_PROMINENCE
) -> int:
    """Modes of a histogram (C8).

    A mode is a peak of the counts, padded with an empty bin at each end,
    whose prominence (``scipy.signal.find_peaks``: its height above the
    higher of the lowest points between it and any taller peak, or the
    ends) is at least ``prominence`` times the tallest bin. Two modes are
    therefore separated by bins lower than both by that much; wiggles of a
    few batches are not modes. A flat top counts once.

    Args:
      counts: [K] bin counts (e.g. the 20 bins of width 0.05 of
        ``results.json["alpha_trace"][emotion]["counts"]``).
      prominence: fraction of the tallest bin.

    Returns:
      The number of modes (0 for an empty histogram).
    """
    c = np.asarray(counts, np.float64).ravel()
    if c.size == 0 or not np.any(c > 0):
        return 0
    padded = np.concatenate([[0.0], c, [0.0]])
    peaks, _ = signal.find_peaks(padded, prominence=prominence * c.max())
    return int(peaks.size)


def verdict(p_claim: float | None, p_opposite: float | None, n: int) -> str:
    """``reproduces`` / ``contradicted`` / ``inconclusive (n seeds)``."""
    if p_claim is not None and p_claim < SIGNIFICANCE:
        return "reproduces"
    if p_opposite is not None and p_opposite < SIGNIFICANCE:
        return "contradicted"
    return f"inconclusive ({n} seed{'' if n == 1 else 's'})"


# ------------------------------------------------------------- evaluation


def _by_seed(
    runs: Sequence[Mapping[str, Any]],
    variant: str,
    emotion: str,
    alpha: float | None = None,
) -> dict[int, Mapping[str, Any]]:
    """{seed: run} of one (variant, emotion[, α]) cell."""
    out = {}
    for r in runs:
        if is_cell(r, variant, emotion, alpha):
            out[int(r["seed"])] = r
    return out


@dataclasses.dataclass(frozen=True)
class _Pairs:
    """Paired values of two cells: [n] each, the seeds, dropped runs."""

    a: np.ndarray
    b: np.ndarray
    seeds: tuple[int, ...]
    excluded: tuple[RunKey, ...]


def _pair(
    first: Mapping[int, Mapping[str, Any]],
    second: Mapping[int, Mapping[str, Any]],
    measure: str,
    constant: Collection[RunKey],
) -> _Pairs:
    """The seeds both cells have, without a constant-predictor run and
    with the measure on both sides."""
    a, b, seeds, excluded = [], [], [], []
    for seed in sorted(set(first) & set(second)):
        r1, r2 = first[seed], second[seed]
        dropped = [run_key(r) for r in (r1, r2) if run_key(r) in constant]
        if dropped:
            excluded += dropped
            continue
        v1, v2 = run_measure(r1, measure), run_measure(r2, measure)
        if v1 is None or v2 is None:
            continue
        a.append(v1)
        b.append(v2)
        seeds.append(seed)
    return _Pairs(
        np.asarray(a, np.float64),
        np.asarray(b, np.float64),
        tuple(seeds),
        tuple(excluded),
    )


def _mean(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if x.size else None


def _paired_claim(
    spec: ClaimSpec, emotion: str, pairs: _Pairs, measure: str
) -> Claim:
    n = len(pairs.seeds)
    if n == 0:
        return Claim(
            spec.id,
            emotion,
            measure,
            None,
            None,
            0,
            None,
            verdict(None, None, 0),
            pairs.excluded,
        )
    p_less, p_greater = sign_test(pairs.a, pairs.b)
    p, p_opp = (
        (p_less, p_greater) if spec.direction == "less" else (p_greater, p_less)
    )
    return Claim(
        spec.id,
        emotion,
        measure,
        _mean(pairs.a),
        _mean(pairs.b),
        n,
        p,
        verdict(p, p_opp, n),
        pairs.excluded,
        p_opp,
    )


def _sd_claim(
    spec: ClaimSpec, emotion: str, pairs: _Pairs, measure: str
) -> Claim:
    n = len(pairs.seeds)
    if n < 2:
        return Claim(
            spec.id,
            emotion,
            measure,
            None,
            None,
            n,
            None,
            verdict(None, None, n),
            pairs.excluded,
        )
    p, p_opp = sd_ratio_test(pairs.a, pairs.b)
    return Claim(
        spec.id,
        emotion,
        measure,
        float(np.std(pairs.a, ddof=1)),
        float(np.std(pairs.b, ddof=1)),
        n,
        p,
        verdict(p, p_opp, n),
        pairs.excluded,
        p_opp,
    )


def fixed_alphas(
    runs: Sequence[Mapping[str, Any]], emotion: str
) -> list[float]:
    """The fixed α values (rounded to 9 decimals) of one detector."""
    return sorted(
        {
            round(float(r["alpha"]), 9)
            for r in runs
            if r["variant"] == "fixed_alpha"
            and r["emotion"] == emotion
            and r.get("alpha") is not None
        }
    )


def _sweep_claim(
    spec: ClaimSpec,
    emotion: str,
    runs: Sequence[Mapping[str, Any]],
    constant: Collection[RunKey],
) -> Claim:
    """C7: one sign test per α; p = the largest (intersection-union),
    the opposite direction's p = the smallest, Bonferroni-adjusted over
    the α values (capped at 1)."""
    measure = spec.measures[0]
    proposed = _by_seed(runs, spec.first, emotion)
    alphas = fixed_alphas(runs, emotion)
    per_alpha = [
        _pair(
            proposed,
            _by_seed(runs, "fixed_alpha", emotion, alpha=a),
            measure,
            constant,
        )
        for a in alphas
    ]
    excluded = tuple(dict.fromkeys(k for p in per_alpha for k in p.excluded))
    n = min(len(p.seeds) for p in per_alpha)
    if n == 0:
        return Claim(
            spec.id,
            emotion,
            measure,
            None,
            None,
            0,
            None,
            verdict(None, None, 0),
            excluded,
        )
    tests = [sign_test(p.a, p.b) for p in per_alpha]
    p = max(t[0] for t in tests)
    p_opp = min(1.0, len(tests) * min(t[1] for t in tests))
    best = int(np.argmin([float(np.mean(q.b)) for q in per_alpha]))
    return Claim(
        spec.id,
        emotion,
        measure,
        _mean(per_alpha[best].a),
        _mean(per_alpha[best].b),
        n,
        p,
        verdict(p, p_opp, n),
        excluded,
        p_opp,
    )


def _alpha_claim(
    spec: ClaimSpec,
    emotion: str,
    trace: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]],
) -> Claim | None:
    """C8 from ``results.json["alpha_trace"][emotion]``; None without an SD
    or counts."""
    if trace.get("sd") is None or not trace.get("counts"):
        return None
    sd = float(trace["sd"])
    modes = histogram_modes(trace["counts"])
    ok = sd >= ALPHA_SD_THRESHOLD and modes >= 2
    seeds = _by_seed(runs, spec.first, emotion)
    return Claim(
        spec.id,
        emotion,
        spec.measures[0],
        sd,
        ALPHA_SD_THRESHOLD,
        len(seeds),
        None,
        "reproduces" if ok else "contradicted",
    )


def _emotions(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    return in_paper_order(r["emotion"] for r in runs)


def _has(runs, variant: str, emotion: str, alpha: float | None = None) -> bool:
    return bool(_by_seed(runs, variant, emotion, alpha))


def evaluate_claim(
    spec: ClaimSpec,
    results: Mapping[str, Any],
    constant: Collection[RunKey] = frozenset(),
) -> list[Claim]:
    """The rows of one claim: one per emotion (and measure) that has the
    claim's variants; [] when none has."""
    runs = list(results.get("runs", []))
    rows: list[Claim] = []
    if spec.kind == "alpha":
        traces = results.get("alpha_trace") or {}
        for e in in_paper_order(traces):
            row = _alpha_claim(spec, e, traces[e], runs)
            if row is not None:
                rows.append(row)
        return rows
    for e in _emotions(runs):
        if not _has(runs, spec.first, e):
            continue
        if spec.kind == "sweep":
            if fixed_alphas(runs, e):
                rows.append(_sweep_claim(spec, e, runs, constant))
            continue
        assert spec.second is not None
        second = _by_seed(runs, spec.second, e, spec.alpha)
        if not second:
            continue
        first = _by_seed(runs, spec.first, e)
        for m in spec.measures:
            pairs = _pair(first, second, m, constant)
            build = _sd_claim if spec.kind == "sd" else _paired_claim
            rows.append(build(spec, e, pairs, m))
    return rows


def evaluate(
    results: Mapping[str, Any],
    constant: Collection[RunKey] = frozenset(),
) -> list[Claim]:
    """Every claim the workdir's runs can speak to.

    Args:
      results: parsed ``results.json`` (``runs``; ``alpha_trace`` for C8).
      constant: keys of constant-predictor runs (:func:`constant_runs` of
        the workdir's ``predictions.csv``); their seeds are dropped from
        the pairs. Default: none.

    Returns:
      One :class:`Claim` per (claim, emotion) — two for C6 (F1, product) —
      in :data:`CLAIMS` order, then the emotions' order (the paper's five
      first, then any other class); claims whose variants are absent have
      no row.
    """
    constant = frozenset(constant)
    return [
        row
        for spec in CLAIMS
        for row in evaluate_claim(spec, results, constant)
    ]


def not_evaluated(
    results: Mapping[str, Any], rows: Sequence[Claim]
) -> dict[str, str]:
    """{claim id: why it has no row} for the claims without rows."""
    runs = list(results.get("runs", []))
    have = {r["variant"] for r in runs}
    done = {r.claim for r in rows}
    out = {}
    for spec in CLAIMS:
        if spec.id in done:
            continue
        if spec.kind == "alpha":
            out[spec.id] = (
                "results.json has no alpha_trace (Proposed's batch-wise α) "
                "with an SD and counts."
            )
            continue
        missing = [v for v in spec.variants if v not in have]
        if missing:
            out[spec.id] = (
                "no "
                + " and no ".join(f"{display(v)} (`{v}`)" for v in missing)
                + " runs."
            )
        elif spec.alpha is not None:
            swept = sorted(
                {a for e in _emotions(runs) for a in fixed_alphas(runs, e)}
            )
            out[spec.id] = (
                f"no emotion has both Proposed runs and a fixed α of "
                f"{spec.alpha:g} (fixed α values: "
                f"{', '.join(f'{a:g}' for a in swept) or 'none'})."
            )
        else:
            out[spec.id] = (
                "no emotion has runs of both "
                + " and ".join(display(v) for v in spec.variants)
                + "."
            )
    return out


# ---------------------------------------------------------------- writing


def _fmt(x: float | None, sig: int = 3) -> str:
    if x is None:
        return "—"
    if not math.isfinite(x):
        return str(x)
    return numbers.format_sig(x, sig) if abs(x) < 1 else f"{x:.{sig}g}"


def _short_key(key: RunKey) -> str:
    variant, _, seed, alpha = key
    text = f"{display(variant)} seed {seed}"
    return text if alpha is None else f"{text} (α = {alpha:g})"


def _row_cells(row: Claim) -> list[str]:
    p = "—" if row.p_value is None else f"{row.p_value:.3g}"
    excluded = (
        f"{len(row.excluded)}: "
        + ", ".join(_short_key(k) for k in row.excluded)
        if row.excluded
        else "0"
    )
    return [
        row.claim,
        row.emotion.capitalize(),
        f"`{row.measure}`",
        _fmt(row.a),
        _fmt(row.b),
        "—" if row.n_seeds is None else str(row.n_seeds),
        p,
        row.verdict,
        excluded,
    ]


def verdict_counts(rows: Sequence[Claim]) -> dict[str, int]:
    """{"reproduces": n, "contradicted": n, "inconclusive": n}."""
    counts = {"reproduces": 0, "contradicted": 0, "inconclusive": 0}
    for r in rows:
        counts[r.verdict.split(" ")[0]] += 1
    return counts


TEST_NOTE = f"""\
- **Pairing.** Each row compares two variants of one detector over the
  seeds both have (seed k of one with seed k of the other), after dropping
  every seed where either run is a constant predictor (below) or lacks the
  measure. `a` is the mean over those seeds of the first variant's measure,
  `b` the other's; `product` is ΔSP_spk × ΔSP_rat of each seed; F1 is a
  fraction, as in `results.json`.
- **Test (C1–C5, C7, C9, C10): one-sided exact sign test** of the per-seed
  differences: the number of seeds in the claimed direction against
  Binomial(m, ½), m = the untied seeds (`scipy.stats.binomtest`, ties
  dropped). Its smallest p-value is ½^m, so **it needs at least
  {MIN_SIGN_TEST_SEEDS} seeds to reach p < {SIGNIFICANCE:g}**; with fewer,
  every row is inconclusive whatever the data.
- **C6 (stability)**: `a` and `b` are the SDs over the paired seeds
  (ddof 1); p is the fraction of {BOOTSTRAP_RESAMPLES} bootstrap resamples
  of the seeds (with replacement, the same seeds for both variants,
  `numpy.random.default_rng({BOOTSTRAP_SEED})`) whose ratio
  SD_Proposed / SD_Basic is ≥ 1.
- **C7 (every fixed α)**: one sign test per α; p is the largest
  (intersection–union test: the claim is about every α). `b` is the
  smallest mean product over the α values and `a` Proposed's mean over the
  seeds paired with that α; `n_seeds` is the fewest paired seeds of any α.
  The opposite direction (some α beats Proposed) is the smallest of the
  per-α p-values times the number of α values (Bonferroni).
- **C8 (diverse α)**: descriptive, not a test over seeds (no p-value): `a`
  is the SD of α over every batch of every run, `b` the threshold
  {ALPHA_SD_THRESHOLD:g} (one bin of the 20-bin histogram; the paper's
  Fig. 3b spreads α over about [0.2, 0.8], SD ≳ 0.1). It reproduces when
  the SD is at least the threshold **and** the stored histogram has at
  least two modes: peaks of the counts (padded with an empty bin at each
  end) whose prominence (`scipy.signal.find_peaks`) is at least
  {MODE_PROMINENCE:g} × the tallest bin; otherwise it is contradicted.
  `n_seeds` is Proposed's seeds of that detector (all its runs are in the
  trace).
- **Verdict**: `reproduces` when the claimed direction has
  p < {SIGNIFICANCE:g}, `contradicted` when the opposite direction has
  p < {SIGNIFICANCE:g}, else `inconclusive (n seeds)`. No correction is
  made across rows."""

CONSTANT_NOTE = """\
A constant predictor gives one class to every utterance. Its ΔSP_spk and
ΔSP_rat are 0 — trivially "fair", not fair — so its seed is dropped from
every pair it is in (the *Constant runs excluded* column). Tables 2 and 3
of `report.md` still average them and list them under the tables."""


def render_claims(
    results: Mapping[str, Any],
    rows: Sequence[Claim],
    constant: Mapping[RunKey, str] | Collection[RunKey],
    *,
    title: str = "",
) -> str:
    """The text of ``claims.md``.

    Args:
      results: parsed ``results.json``.
      rows: :func:`evaluate` of it.
      constant: the constant-predictor runs (a {key: class} mapping names
        the class).
      title: the workdir's name.
    """
    counts = verdict_counts(rows)
    parts = [
        f"# Claims of the paper tested on `{title}`" if title else "# Claims",
        'Chien, Upadhyay & Lee, "Balancing Speaker-Rater Fairness for '
        'Gender-Neutral Speech Emotion Recognition", ICASSP 2024: each '
        "claim below that this workdir's runs can speak to, tested per "
        "detector over seeds. The same rows, unrounded, are in "
        f"[`{_CSV_LINK}`]({_CSV_LINK}). How the "
        'tests were chosen: docs/DESIGN.md, "Claims report".',
        f"**{len(rows)} row{'' if len(rows) == 1 else 's'}: "
        f"{counts['reproduces']} reproduce, "
        f"{counts['contradicted']} contradicted, {counts['inconclusive']} "
        "inconclusive.**",
        "## The claims",
        "\n".join(f"- **{s.id}** ({s.section}): {s.statement}" for s in CLAIMS),
        "## How each row is tested",
        TEST_NOTE,
        "## Results",
    ]
    if rows:
        header = [
            "Claim",
            "Emotion",
            "Measure",
            "a",
            "b",
            "Seeds",
            "p",
            "Verdict",
            "Constant runs excluded",
        ]
        lines = ["| " + " | ".join(header) + " |"]
        lines.append(
            "| " + " | ".join([":---"] * 3 + ["---:"] * 4 + [":---"] * 2) + " |"
        )
        for row in rows:
            lines.append(
                "| "
                + " | ".join(c.replace("|", "\\|") for c in _row_cells(row))
                + " |"
            )
        parts.append("\n".join(lines))
    else:
        parts.append("No claim could be evaluated on this workdir.")
    missing = not_evaluated(results, rows)
    if missing:
        parts += [
            "## Not evaluated",
            "\n".join(f"- **{k}**: {why}" for k, why in missing.items()),
        ]
    parts += ["## Constant predictors", CONSTANT_NOTE]
    if constant:
        classes = constant if isinstance(constant, Mapping) else {}
        parts.append(
            "\n".join(
                f"- {format_key(k)}"
                + (f": always {classes[k]}" if k in classes else "")
                for k in sorted(constant, key=_sort_key)
            )
        )
    else:
        parts.append("This workdir has none.")
    return "\n\n".join(parts) + "\n"


def _sort_key(key: RunKey) -> tuple:
    variant, emotion, seed, alpha = key
    return (variant, emotion, -1.0 if alpha is None else alpha, seed)


def write_claims(
    workdir: str | os.PathLike,
    *,
    results: Mapping[str, Any] | None = None,
    constant: Mapping[RunKey, str] | Collection[RunKey] | None = None,
) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes ``<workdir>/claims.md`` and ``<workdir>/tables/claims.csv``.

    Each file is written to a temporary file and renamed over the target
    (docs/DESIGN.md, "Workdir rules"). A workdir lacking the variants of a
    claim gets a page saying which claims could not be evaluated and why.

    Args:
      workdir: a workdir with ``results.json`` (and ``predictions.csv``
        for the constant predictors).
      results: parsed ``results.json``; read from the workdir when None.
      constant: the constant-predictor runs; read from the workdir's
        ``predictions.csv`` (:func:`constant_predictions`) when None.

    Returns:
      ``(claims_md_path, claims_csv_path)``.

    Raises:
      FileNotFoundError: ``results`` is None and the workdir has no
        ``results.json``.
    """
    root = pathlib.Path(workdir)
    if results is None:
        path = workdir_lib.Layout(root).results
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such file; `python -m fairser_jax.train` "
                "writes it."
            )
        results = json.loads(path.read_text(encoding="utf-8"))
    if constant is None:
        constant = constant_predictions(workdir_lib.Layout(root).predictions)
    rows = evaluate(results, set(constant))
    folder = workdir_lib.Layout(root).tables
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / CLAIMS_CSV
    with fileio.atomic_write(csv_path) as f:
        csv.writer(f, lineterminator="\n").writerows(
            [list(COLUMNS), *(r.csv_row() for r in rows)]
        )
    md_path = workdir_lib.Layout(root).claims
    fileio.atomic_write_text(
        md_path, render_claims(results, rows, constant, title=root.name)
    )
    return md_path, csv_path
