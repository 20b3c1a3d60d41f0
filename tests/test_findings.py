"""The paper's findings that hold on the demo corpus beyond seed noise.

The demo corpus (fairser_jax/data/demo_corpus.py) plants a speaker-gender
bias and a rater-gender bias. At demo settings (configs/demo.py: 600
utterances, random-weight wav2vec2-base features, 30 epochs), on the anger
and sadness detectors, seeds 0-2:

- the detectors learn their emotion (weighted F1 above the all-negative
  detector's);
- intra-fairness on the speaker side: Fair_spk lowers ΔSP_spk relative to
  the unconstrained DNN (Table 2, bold cells).

A finding is a test only if it holds by at least 3 standard errors over the
seeds trained here: for each seed the difference is averaged over the two
detectors, and its mean over seeds must exceed 3 × SD / sqrt(n). Measured
with seeds 0-5 before this test was written (docs/DESIGN.md): Fair_spk's
ΔSP_spk drop 0.044 ± 0.007 (6.3 SE). The paper's other Table 2 findings —
Fair_rat lowers ΔSP_rat (1.9 SE over 6 seeds) and Fair_rat's ΔSP_spk stays
above Fair_spk's (1.9 SE) — are within seed noise on the demo, so they are
figures of the recorded demo run (README, docs/demo/) instead, checked
against its tables by tests/test_readme_numbers.py.
"""

import numpy as np
import pytest
from conftest import load_config

from fairser_jax import pipeline

pytestmark = pytest.mark.slow

_EMOTIONS = ("anger", "sadness")
_SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cfg = load_config("demo")
    cfg.emotions = _EMOTIONS
    cfg.seeds = _SEEDS
    cfg.variants = ("dnn", "fair_spk")
    workdir = tmp_path_factory.mktemp("findings")
    pipeline.prepare(cfg, workdir, progress=False)
    return pipeline.train(cfg, workdir, progress=False)


def _value(results, variant, metric, emotion, seed) -> float:
    (value,) = [
        run[metric]
        for run in results["runs"]
        if (run["variant"], run["emotion"], run["seed"])
        == (variant, emotion, seed)
    ]
    return float(value)


def _margin(per_seed: np.ndarray) -> float:
    """Mean of the per-seed differences in standard errors of the mean."""
    se = per_seed.std(ddof=1) / np.sqrt(per_seed.size)
    return float(per_seed.mean() / se) if se > 0 else np.inf


def test_margin_is_the_t_statistic():
    """`_margin` is scipy's one-sample t statistic against 0."""
    from scipy import stats

    d = np.array([0.03, 0.05, 0.01, 0.04])
    assert _margin(d) == pytest.approx(stats.ttest_1samp(d, 0.0).statistic)


def test_fair_spk_lowers_speaker_parity_gap(results):
    per_seed = np.array(
        [
            np.mean(
                [
                    _value(results, "dnn", "dsp_spk", e, s)
                    - _value(results, "fair_spk", "dsp_spk", e, s)
                    for e in _EMOTIONS
                ]
            )
            for s in _SEEDS
        ]
    )
    assert per_seed.mean() > 0 and _margin(per_seed) >= 3.0, per_seed


def test_detectors_learn_the_emotion(results):
    """Weighted F1 above the all-negative detector's, by >= 3 SE."""
    s1 = results["study_sets"]["S1"]
    for emotion in _EMOTIONS:
        p = s1["per_class"][emotion] / s1["n"]
        # Weighted F1 of predicting 0 everywhere: only the negative class
        # scores, F1_neg = 2(1 - p) / (2 - p), weighted by 1 - p.
        trivial = (1 - p) * 2 * (1 - p) / (2 - p)
        above = np.array(
            [_value(results, "dnn", "f1", emotion, s) - trivial for s in _SEEDS]
        )
        assert above.mean() > 0 and _margin(above) >= 3.0, (emotion, above)
