"""The paper's default configuration (§2.2.2, §3), as a ConfigDict.

`configs/*.py` start from `get_default_config()` and override a few fields;
a notebook can call it directly.
"""

import ml_collections

from fairser_jax import constants


def get_default_config() -> ml_collections.ConfigDict:
    """Returns the paper's configuration (§2.2.2, §3)."""
    config = ml_collections.ConfigDict()

    # Corpus in IEMOCAP layout or a manifest folder (utterances.csv,
    # ratings.csv, raters.csv; fairser_jax/data/manifest.py). Empty:
    # generate the built-in demo corpus into <workdir>/corpus from
    # `config.demo` (fairser_jax/data/demo_corpus.py).
    config.data = ml_collections.ConfigDict()
    config.data.corpus = ""
    # "auto" (a folder holding utterances.csv is a manifest), "iemocap" or
    # "manifest".
    config.data.format = "auto"
    # IEMOCAP only: JSON {"E1": "M", ...}. Empty: <corpus>/rater_gender.json
    # when it exists.
    config.data.rater_gender = ""
    # The groups of each side: the manifest's speaker_<attr> and
    # rater_<attr> columns (IEMOCAP: gender only). Any number of groups.
    config.data.speaker_attribute = "gender"
    config.data.rater_attribute = "gender"
    # The study's classes (S1 = utterances whose consensus is one of them),
    # spelled as in the corpus's labels; config.emotions picks detectors
    # among them.
    config.data.classes = constants.EMOTIONS
    # Manifests with neither a fold nor a session column: this many
    # speaker-independent folds.
    config.data.num_folds = 5
    # S2 keeps utterances rated by raters of at least two groups.
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
    # Leave out (and list in the store's manifest) unreadable, empty, too
    # short or non-finite audio instead of stopping at the first such file.
    config.features.skip_bad_audio = False
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
    # L_D-S / L_D-R with more than two groups: "pairs" (mean Sinkhorn
    # divergence over group pairs; two groups: the paper's term) or
    # "pooled" (each group against the pooled batch). docs/DESIGN.md.
    config.loss.group_pooling = "pairs"

    config.train = ml_collections.ConfigDict()
    config.train.epochs = 500
    config.train.batch_size = 32
    config.train.learning_rate = 1e-3
    config.train.weight_decay = 1e-3
    config.train.checkpoint_every = 50

    # Two-sided models (§3.1, eq. 3; fairser_jax/train/alpha.py).
    config.two_sided = ml_collections.ConfigDict()
    # D ↦ α: "ema_ratio" (α = D / (D + EMA(D))), "ema_zscore"
    # (α = sigmoid((D − EMA) / EMSD)), "saturating" (α = D / (D +
    # alpha_scale)) or "constant" (α = alpha_constant).
    config.two_sided.alpha_fn = "ema_ratio"
    config.two_sided.ema_decay = 0.9
    config.two_sided.alpha_scale = 1.0
    config.two_sided.alpha_constant = 0.5
    # μ_RAT of eq. (3): "trained" (the model being trained, the paper) or
    # "frozen" (the frozen trained Fair_rat).
    config.two_sided.mu_rat = "trained"
    # The fixed-α sweep of Fig. 3a (variant "fixed_alpha"): one stacked set
    # of runs holds every α.
    config.two_sided.fixed_alphas = tuple(
        round(0.05 * k, 2) for k in range(1, 20)
    )
    # Detectors of the sweep (the paper's Fig. 3 analyses Anger).
    config.two_sided.sweep_emotions = ("anger",)

    config.variants = ("dnn", "fair_spk", "fair_rat")
    config.emotions = constants.EMOTIONS
    config.folds = (0, 1, 2, 3, 4)
    config.seeds = tuple(range(10))

    config.report = ml_collections.ConfigDict()
    config.report.tsne_samples = 1500
    return config
