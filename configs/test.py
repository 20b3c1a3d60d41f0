r"""Smallest useful end-to-end run, used by the tests.

python -m fairser_jax.main --config=configs/test.py --workdir=/tmp/test
"""

import ml_collections

from fairser_jax import config as config_lib
from fairser_jax import variants


def get_config() -> ml_collections.ConfigDict:
    config = config_lib.get_default_config()
    config.data.corpus = ""
    config.demo.num_utterances = 120
    config.features.checkpoint = "random-tiny"
    config.features.batch_seconds = 16.0
    config.train.epochs = 4
    config.train.checkpoint_every = 2
    config.emotions = ("anger", "sadness")
    config.seeds = (0, 1)
    config.report.tsne_samples = 200
    # Every variant of the paper, the fixed-α sweep at two values.
    config.variants = variants.BUILT_IN
    config.two_sided.fixed_alphas = (0.25, 0.75)
    # The literal D, a third of the default Gromov-Wasserstein's cost per
    # step: the end-to-end tests check the pipeline, not the reading of D
    # (the default one is trained by tests/test_two_sided.py and the
    # notebook tests, and tested alone in tests/test_distances.py).
    config.two_sided.distance = "sinkhorn"
    return config
