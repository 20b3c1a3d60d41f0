r"""The paper's settings: 500 epochs, 5 emotions, 5 folds, 10 seeds.

    python -m fairser_jax.main --config=configs/default.py --workdir=/tmp/w \
        --config.data.corpus=/path/to/IEMOCAP_full_release \
        --config.data.rater_gender=/path/to/rater_gender.json \
        --config.features.checkpoint=facebook/wav2vec2-base

Every other config imports this one and overrides a few fields.
"""

import ml_collections

from fairser_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
    """Returns the paper's configuration (§2.2.2, §3)."""
    return config_lib.get_default_config()
