r"""Fig. 3: the fixed-α sweep of the Anger detector against Proposed.

    python -m fairser_jax.main --config=configs/alpha_sweep.py \
        --workdir=/tmp/sweep \
        --config.data.corpus=/path/to/IEMOCAP_full_release \
        --config.data.rater_gender=/path/to/rater_gender.json

α = 0.05, 0.10, ..., 0.95 (paper §3.2), every α a run inside ONE stacked set
(no recompilation per α), plus Proposed for its per-seed lines, its 95% band
(Fig. 3a) and its batch-wise α histogram (Fig. 3b). Fair_spk and Fair_rat of
Anger are trained first: 5 folds x 10 seeds x (19 + 3) = 1100 models.
"""

import ml_collections

from fairser_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
    config = config_lib.get_default_config()
    config.emotions = ("anger",)
    config.variants = ("proposed", "fixed_alpha")
    config.two_sided.sweep_emotions = ("anger",)
    config.two_sided.fixed_alphas = tuple(
        round(0.05 * k, 2) for k in range(1, 20)
    )
    return config
