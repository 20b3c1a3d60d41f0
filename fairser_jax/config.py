"""The paper's default configuration (§2.2.2, §3), as a ConfigDict.

`configs/*.py` start from `get_default_config()` and override a few fields;
a notebook can call it directly.
"""

import ml_collections

from fairser_jax import constants


def get_default_config() -> ml_collections.ConfigDict:
    """Returns the paper's configuration (§2.2.2, §3)."""
    config = ml_collections.ConfigDict()

    # Corpus in IEMOCAP layout. Empty: generate the built-in demo corpus into
    # <workdir>/corpus (SPEC §2.3) from `config.demo`.
    config.data = ml_collections.ConfigDict()
    config.data.corpus = ""
    # JSON {"E1": "M", ...}. Empty: <corpus>/rater_gender.json when it exists.
    config.data.rater_gender = ""
    config.data.require_both_genders = True

    config.demo = ml_collections.ConfigDict()
    config.demo.num_utterances = 600
    config.demo.seed = 0

    config.features = ml_collections.ConfigDict()
    # HF hub name or local dir; "random-base"/"random-tiny" are built in.
    config.features.checkpoint = "facebook/wav2vec2-base"
    config.features.layer = -1
    config.features.batch_seconds = 32.0
    # Empty: <workdir>/features.npz (reused when its manifest matches).
    config.features.path = ""
    config.features.allow_pickle = False
    config.features.znorm = True

    config.model = ml_collections.ConfigDict()
    config.model.encoder_sizes = (256, 128)
    config.model.dropout_rate = 0.2
    config.model.adversary_hidden = 64

    config.loss = ml_collections.ConfigDict()
    config.loss.temperature = 0.1
    config.loss.lambda_s = 1.0
    config.loss.lambda_r = 1.0
    config.loss.epsilon = 0.1
    config.loss.sinkhorn_iterations = 10
    config.loss.debiased = True
    # L_D-S / L_D-R between L2-normalised embeddings (see
    # fairser_jax.train.objectives.distance_space and docs/DESIGN.md).
    config.loss.unit_sphere_distance = True
    config.loss.grl_scale = 1.0

    config.train = ml_collections.ConfigDict()
    config.train.epochs = 500
    config.train.batch_size = 32
    config.train.learning_rate = 1e-3
    config.train.weight_decay = 1e-3
    config.train.checkpoint_every = 50

    config.variants = ("dnn", "fair_spk", "fair_rat")
    config.emotions = constants.EMOTIONS
    config.folds = (0, 1, 2, 3, 4)
    config.seeds = tuple(range(10))

    config.report = ml_collections.ConfigDict()
    config.report.tsne_samples = 1500
    return config
