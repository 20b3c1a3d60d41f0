r"""Table 3: Basic vs Proposed (two-sided models) at the paper's settings.

    python -m fairser_jax.main --config=configs/table3.py --workdir=/tmp/t3 \
        --config.data.corpus=/path/to/IEMOCAP_full_release \
        --config.data.rater_gender=/path/to/rater_gender.json

Proposed (§3.1, eq. 3) starts from the trained Fair_rat and reads the
trained Fair_spk, so both are trained first (and reported in Table 2):
5 emotions x 5 folds x 10 seeds x 4 variants = 1000 models, 500 epochs each.
"""

import ml_collections

from fairser_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
    config = config_lib.get_default_config()
    config.variants = ("basic", "proposed")
    return config
