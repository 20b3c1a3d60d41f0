r"""The built-in demo: demo corpus, random wav2vec2-base features, few epochs.

    python -m fairser_jax.main --config=configs/demo.py --workdir=/tmp/demo

Finishes in a few minutes on 2 CPU cores.
"""

import ml_collections

from fairser_jax import config as config_lib
from fairser_jax import variants


def get_config() -> ml_collections.ConfigDict:
    config = config_lib.get_default_config()
    config.data.corpus = ""  # generate the demo corpus into <workdir>/corpus
    config.demo.num_utterances = 600
    config.features.checkpoint = "random-base"
    # Random weights: deeper random layers blur the acoustics (5-class probe
    # accuracy 0.54 at layer 1 vs 0.46 at the last), and the extractor
    # skips the 11 layers after it. Real checkpoints use the last layer.
    config.features.layer = 1
    config.train.epochs = 30
    config.train.checkpoint_every = 10
    config.seeds = (0, 1, 2)
    # The whole story: the one-sided models (Table 2), the two-sided ones
    # (Table 3) and a short fixed-α sweep of the Anger detector (Fig. 3a).
    config.variants = variants.BUILT_IN
    config.two_sided.fixed_alphas = (0.1, 0.3, 0.5, 0.7, 0.9)
    return config
