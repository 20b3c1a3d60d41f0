r"""Everything of the paper in one run: Tables 1-3, Fig. 2 and Fig. 3.

    python -m fairser_jax.main --config=configs/paper.py --workdir=/tmp/paper \
        --config.data.corpus=/path/to/IEMOCAP_full_release \
        --config.data.rater_gender=/path/to/rater_gender.json

DNN, Fair_spk, Fair_rat (Table 2, Fig. 2), Basic and Proposed (Table 3,
Fig. 3b) and Basic (anchored) (docs/DESIGN.md) for the five detectors, and the
19-point fixed-α sweep of the Anger detector (Fig. 3a):
6 x 5 x 5 x 10 + 19 x 5 x 10 = 2450 models of 500 epochs.
"""

import ml_collections

from fairser_jax import config as config_lib
from fairser_jax import variants


def get_config() -> ml_collections.ConfigDict:
    config = config_lib.get_default_config()
    config.variants = variants.BUILT_IN
    return config
