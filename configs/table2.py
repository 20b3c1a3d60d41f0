r"""Table 2 and Fig. 2: DNN, Fair_spk and Fair_rat at the paper's settings.

    python -m fairser_jax.main --config=configs/table2.py --workdir=/tmp/t2 \
        --config.data.corpus=/path/to/IEMOCAP_full_release \
        --config.data.rater_gender=/path/to/rater_gender.json

5 emotions x 5 folds x 10 seeds x 3 variants = 750 models, 500 epochs each.
"""

import ml_collections

from fairser_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
    config = config_lib.get_default_config()
    config.variants = ("dnn", "fair_spk", "fair_rat")
    return config
