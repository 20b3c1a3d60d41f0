"""The paper's default configuration (§2.2.2, §3), as a ConfigDict.

`configs/*.py` start from `get_default_config()` and override a few fields;
a notebook can call it directly. `FIELD_HELP` describes every field in one
line and `FIELD_CHOICES` lists the values of the fields that take one of
a few names: they are what `--config_help` prints (`fairser_jax.cli`), and
the one place a field is documented.

`validate` checks what a config can be checked for without data or JAX
(the trainer adds its own checks: `fairser_jax.train.variants.validate`);
`check_resume` compares a config with the one a workdir was written by.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Callable
from typing import Any

import ml_collections

from fairser_jax import constants, variants
from fairser_jax.data import layouts


def get_default_config() -> ml_collections.ConfigDict:
    """Returns the paper's configuration (§2.2.2, §3)."""
    config = ml_collections.ConfigDict()

    config.data = ml_collections.ConfigDict()
    config.data.corpus = ""
    config.data.format = "auto"
    config.data.rater_gender = ""
    config.data.speaker_attribute = "gender"
    config.data.rater_attribute = "gender"
    config.data.classes = constants.EMOTIONS
    config.data.num_folds = 5
    config.data.require_both_genders = True

    config.demo = ml_collections.ConfigDict()
    config.demo.num_utterances = 600
    config.demo.seed = 0
    config.demo.rater_cue = "none"

    config.features = ml_collections.ConfigDict()
    config.features.checkpoint = "facebook/wav2vec2-base"
    config.features.layer = -1
    config.features.batch_seconds = 32.0
    config.features.path = ""
    config.features.allow_pickle = False
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
    config.loss.unit_sphere_distance = True
    config.loss.grl_scale = 1.0
    config.loss.group_pooling = "pairs"

    config.train = ml_collections.ConfigDict()
    config.train.epochs = 500
    config.train.batch_size = 32
    config.train.learning_rate = 1e-3
    config.train.weight_decay = 1e-3
    config.train.checkpoint_every = 50
    config.train.runs_per_chunk = 0

    config.two_sided = ml_collections.ConfigDict()
    # The reading of eq. (3) chosen by the paper's stated properties of α
    # (docs/DESIGN.md, "Two-sided models"; docs/measurements/).
    config.two_sided.distance = "gromov_wasserstein"
    config.two_sided.gw_iterations = 10
    config.two_sided.alpha_fn = "saturating"
    config.two_sided.ema_decay = 0.9
    config.two_sided.alpha_scale = 1.0
    config.two_sided.alpha_constant = 0.5
    config.two_sided.mu_rat = "trained"
    config.two_sided.fixed_alphas = tuple(
        round(0.05 * k, 2) for k in range(1, 20)
    )
    config.two_sided.sweep_emotions = ("anger",)

    config.variants = ("dnn", "fair_spk", "fair_rat")
    config.emotions = constants.EMOTIONS
    config.folds = (0, 1, 2, 3, 4)
    config.seeds = tuple(range(10))

    config.report = ml_collections.ConfigDict()
    config.report.tsne_samples = 1500
    config.report.figures = True
    return config


FIELD_HELP: dict[str, str] = {
    # data: which corpus, which groups (paper §2.1).
    "data.corpus": "Corpus root: an IEMOCAP layout or a manifest folder "
    "(utterances.csv, ratings.csv, raters.csv); empty = generate the demo "
    "corpus into <workdir>/corpus from config.demo.",
    "data.format": "Layout of data.corpus; auto = a manifest when the "
    "folder holds utterances.csv, else IEMOCAP.",
    "data.rater_gender": "IEMOCAP only: JSON file rater id -> M/F "
    '({"E1": "M", ...}); empty = <corpus>/rater_gender.json when it exists.',
    "data.speaker_attribute": "Speaker groups of the speaker side: the "
    "manifest's speaker_<attr> column (IEMOCAP: gender only); any number "
    "of groups.",
    "data.rater_attribute": "Rater groups of the rater side: the manifest's "
    "rater_<attr> column (IEMOCAP: gender only); any number of groups.",
    "data.classes": "The study's classes, spelled as in the corpus's labels "
    "(S1 = utterances whose consensus is one of them, §2.1.1).",
    "data.num_folds": "Manifests with neither a fold nor a session column: "
    "this many speaker-independent folds (>= 2).",
    "data.require_both_genders": "S2 keeps only utterances rated by raters "
    "of at least two groups (§2.1.1).",
    # demo: the built-in corpus (fairser_jax/data/demo_corpus.py).
    "demo.num_utterances": "Utterances of the generated demo corpus (>= 10; "
    "used when data.corpus is empty).",
    "demo.seed": "Seed of the demo corpus: equal seeds, byte-identical files.",
    "demo.rater_cue": "Rater-side bias of the demo corpus beyond the latent "
    "emotion: none = raters follow the emotion only (the corpus of earlier "
    "versions); tempo = a per-utterance speaking rate, independent of "
    "speaker gender and emotion, makes male raters hear fast neutral or "
    "frustrated speech as anger and female raters slow as sadness "
    "(docs/DESIGN.md, Data).",
    # features: wav2vec2 (§2.2.1).
    "features.checkpoint": "Encoder checkpoint (wav2vec2, HuBERT, WavLM or "
    "data2vec-audio): a Hugging Face hub name, a local folder, or the "
    "seeded random built-ins random-base / random-tiny.",
    "features.layer": "Hidden state mean-pooled into the features: 0 = the "
    "embeddings (input of the first transformer layer), k = the output of "
    "layer k, -1 = the last.",
    "features.batch_seconds": "Seconds of audio per extraction batch "
    "(memory vs. speed; features do not depend on it).",
    "features.path": "Feature store; empty = <workdir>/features.npz "
    "(reused while its manifest matches the corpus and checkpoint).",
    "features.allow_pickle": "Allow loading a pytorch_model.bin checkpoint "
    "(a pickle: only from a source you trust).",
    "features.skip_bad_audio": "Leave out (and list in the store's manifest) "
    "unreadable, empty, too short or non-finite audio instead of stopping.",
    "features.znorm": "Speaker-wise z-normalisation of the features (§2.2.1).",
    # model (§2.2.2).
    "model.encoder_sizes": "Widths of the encoder's Dense-ReLU-Dropout "
    "layers; the last is the embedding size.",
    "model.dropout_rate": "Dropout after every ReLU, in [0, 1) (paper: 0.2).",
    "model.adversary_hidden": "Hidden width of Fair_rat's rater-group "
    "adversary head (L_Adv, eq. 1).",
    # loss (§2.2.2, eq. 1, eq. 2).
    "loss.temperature": "τ of the supervised contrastive loss L_cl (eq. 2), "
    "> 0.",
    "loss.lambda_s": "λ_S: weight of the speaker-side Wasserstein term L_D-S "
    "(eq. 2), >= 0.",
    "loss.lambda_r": "λ_R: weight of the rater-side Wasserstein term L_D-R "
    "(eq. 1), >= 0.",
    "loss.epsilon": "Entropic regularisation ε of the Sinkhorn divergence "
    "L_D, > 0.",
    "loss.sinkhorn_iterations": "Fixed Sinkhorn iterations of L_D (>= 1; "
    "docs/DESIGN.md).",
    "loss.debiased": "L_D is the Sinkhorn divergence OT_ε(x, y) - "
    "½OT_ε(x, x) - ½OT_ε(y, y) (0 for equal clouds); False = OT_ε(x, y).",
    "loss.unit_sphere_distance": "L_D-S / L_D-R between L2-normalised "
    "embeddings (fairser_jax.train.objectives.distance_space, "
    "docs/DESIGN.md).",
    "loss.grl_scale": "Gradient reversal scale: the encoder gets -grl_scale "
    "times L_Adv's gradient (the min-max of eq. 1), >= 0.",
    "loss.group_pooling": "L_D-S / L_D-R with more than two groups: pairs = "
    "mean Sinkhorn divergence over group pairs (two groups: the paper's "
    "term), pooled = each group against the pooled batch.",
    # train.
    "train.epochs": "Training epochs of every run (paper: 500).",
    "train.batch_size": "Utterances per batch (paper: 32; >= 2 for every "
    "variant with a group term).",
    "train.learning_rate": "AdamW learning rate, > 0.",
    "train.weight_decay": "AdamW weight decay, >= 0.",
    "train.checkpoint_every": "Epochs between the checkpoints that --resume "
    "restarts from.",
    "train.runs_per_chunk": "Runs one device trains in one vectorised call "
    "(padded to this size), >= 0. A fixed size makes every result independent "
    "of the device and process count; 0 = auto: 8 on CPU, all of a "
    "device's runs on an accelerator (fastest there, but results then depend "
    "on the device count; docs/DESIGN.md).",
    # two_sided (§3.1, eq. 3; fairser_jax/train/alpha.py).
    "two_sided.distance": "D of eq. (3) between μ_SPK and μ_RAT: sinkhorn = "
    "the Sinkhorn divergence of the two clouds as they are, aligned_sinkhorn "
    "= after rotating μ_RAT onto μ_SPK (orthogonal Procrustes on the "
    "batch), gromov_wasserstein = entropic GW of their internal distances.",
    "two_sided.gw_iterations": "Outer iterations of "
    "distance=gromov_wasserstein, >= 1.",
    "two_sided.alpha_fn": "D -> α of eq. (3): ema_ratio = D / (D + EMA(D)), "
    "ema_zscore = sigmoid((D - EMA) / EMSD), saturating = D / (D + "
    "alpha_scale), constant = alpha_constant.",
    "two_sided.ema_decay": "Decay of the running mean (and SD) of D of "
    "ema_ratio / ema_zscore, in [0, 1).",
    "two_sided.alpha_scale": "κ of alpha_fn=saturating: α = D / (D + κ), > 0.",
    "two_sided.alpha_constant": "α of alpha_fn=constant, in [0, 1].",
    "two_sided.mu_rat": "μ_RAT of eq. (3): trained = the embeddings of the "
    "model being trained (the paper), frozen = those of the frozen trained "
    "Fair_rat.",
    "two_sided.fixed_alphas": "α values of the fixed-α sweep (variant "
    "fixed_alpha, Fig. 3a), each in [0, 1]; one stacked set of runs.",
    "two_sided.sweep_emotions": "Detectors of the fixed-α sweep, a subset "
    "of emotions (the paper's Fig. 3 analyses anger).",
    # what to train.
    "variants": "Models to train (each one of the choices); proposed, "
    "basic_anchored (Basic's loss from the trained Fair_rat, a control) and "
    "fixed_alpha also train the fair_spk and fair_rat they need.",
    "emotions": "Binary detectors to train, a subset of data.classes.",
    "folds": "Test folds, distinct indices >= 0 (IEMOCAP: 0..4, one per "
    "session).",
    "seeds": "Training seeds; every (emotion, fold, seed) is one run.",
    # report.
    "report.tsne_samples": "Utterances in the Fig. 2 t-SNE (paper: 1500).",
    "report.figures": "Draw the figures (PNG + PDF, a few seconds each) "
    "when main writes the report; False writes report.md and the tables "
    "only (python -m fairser_jax.report --workdir=DIR draws them later).",
}
"""One line per field of `get_default_config`, keyed by its dotted path."""

FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "data.format": layouts.formats(),
    "demo.rater_cue": ("none", "tempo"),
    "loss.group_pooling": ("pairs", "pooled"),
    "two_sided.distance": (
        "sinkhorn",
        "aligned_sinkhorn",
        "gromov_wasserstein",
    ),
    "two_sided.alpha_fn": ("ema_ratio", "ema_zscore", "saturating", "constant"),
    "two_sided.mu_rat": ("trained", "frozen"),
    "variants": variants.BUILT_IN,
}
"""The values a field takes, for the fields that name one of a few (for a
tuple field such as `variants`: the values of its elements). `validate`
checks `demo.rater_cue` and `loss.group_pooling` against these; the
others are checked by the registries that hold them (layouts, variants,
`train.alpha`, `train.distances`), and tests/test_config.py checks that
both agree."""


def flatten(
    config: ml_collections.ConfigDict, prefix: str = ""
) -> list[tuple[str, Any]]:
    """Every leaf field of `config` as (dotted path, value), sorted."""
    items: list[tuple[str, Any]] = []
    for key in sorted(config.keys()):
        value = config[key]
        name = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict):
            items.extend(flatten(value, f"{name}."))
        else:
            items.append((name, value))
    return items


def field_help(name: str) -> str:
    """`FIELD_HELP[name]`, with its `FIELD_CHOICES` when it has some.

    Raises:
      KeyError: `name` is not a field of the default config.
    """
    text = FIELD_HELP[name]
    choices = FIELD_CHOICES.get(name)
    if choices:
        text += f" One of: {', '.join(choices)}."
    return text


# (field, test, what it must be): checked before any work, so a value the
# losses cannot use fails in a second, naming the field, not after DNN.
_BOUNDS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("train.epochs", lambda v: v >= 1, "an int >= 1"),
    ("train.batch_size", lambda v: v >= 1, "an int >= 1"),
    ("train.learning_rate", lambda v: v > 0, "> 0"),
    ("train.weight_decay", lambda v: v >= 0, ">= 0"),
    ("train.checkpoint_every", lambda v: v >= 1, "an int >= 1"),
    ("train.runs_per_chunk", lambda v: v >= 0, "an int >= 0 (0 = auto)"),
    ("model.dropout_rate", lambda v: 0 <= v < 1, "in [0, 1)"),
    (
        "model.encoder_sizes",
        lambda v: len(v) > 0 and min(v) >= 1,
        "a non-empty tuple of widths >= 1",
    ),
    ("model.adversary_hidden", lambda v: v >= 1, "an int >= 1"),
    ("loss.temperature", lambda v: v > 0, "> 0 (τ of L_cl, eq. 2)"),
    ("loss.epsilon", lambda v: v > 0, "> 0 (the Sinkhorn ε of L_D)"),
    ("loss.sinkhorn_iterations", lambda v: v >= 1, "an int >= 1"),
    ("loss.lambda_s", lambda v: v >= 0, ">= 0 (λ_S of eq. 2)"),
    ("loss.lambda_r", lambda v: v >= 0, ">= 0 (λ_R of eq. 2)"),
    ("loss.grl_scale", lambda v: v >= 0, ">= 0"),
    ("features.batch_seconds", lambda v: v > 0, "> 0"),
)


_CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _field(cfg: ml_collections.ConfigDict, dotted: str) -> Any:
    value = cfg
    for part in dotted.split("."):
        value = value[part]
    return value


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Fails early, naming the field, on values the runner cannot train.

    Checks what needs neither data nor JAX: the variants' declarations,
    classes, emotions, folds, seeds, the numeric bounds of `_BOUNDS`, the
    choices of `FIELD_CHOICES` it owns, and that a batch can hold a pair
    of utterances whenever a variant has a group term (L_cl and L_D
    compare utterances of a batch: with one utterance per batch they
    vanish and Fair_spk would silently equal DNN). The trainer's registries
    check theirs (`fairser_jax.train.variants.validate`: α function, D,
    objectives); `fairser_jax.train.runner.check_fits` what needs the data
    (fold sizes, memory).

    Raises:
      ValueError: naming the field, its value and what it must be.
    """
    classes = tuple(cfg.data.classes)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(
            f"config.data.classes is {classes}; it must list at least two "
            "distinct classes (S1 = utterances labelled with one of them)."
        )
    bad = [c for c in classes if not _CLASS_NAME.match(str(c))]
    if bad:
        raise ValueError(
            f"config.data.classes has {bad}: class names become file names "
            "and keys, so use letters, digits, '_' or '-' (rename them in "
            "the manifest's label columns)."
        )
    emotions = tuple(cfg.emotions)
    if not emotions or len(set(emotions)) != len(emotions):
        raise ValueError(
            f"config.emotions is {emotions}; it must list distinct classes, "
            f"at least one, of config.data.classes {classes}."
        )
    bad = [e for e in cfg.emotions if e not in classes]
    if bad:
        raise ValueError(
            f"config.emotions has {bad}, which config.data.classes "
            f"{classes} lacks; detectors are for the study's classes."
        )
    variants.validate(cfg)
    bad = [f for f in cfg.folds if not isinstance(f, int) or f < 0]
    if bad or len(set(cfg.folds)) != len(cfg.folds) or not cfg.folds:
        raise ValueError(
            f"config.folds is {tuple(cfg.folds)}; it must be distinct fold "
            "indices >= 0 (IEMOCAP: 0..4, one per session)."
        )
    layouts.detect_format("", cfg.data.format)
    for side in ("speaker_attribute", "rater_attribute"):
        value = cfg.data[side]
        if not value or not str(value).replace("_", "").isalnum():
            raise ValueError(
                f"config.data.{side} is {value!r}; it must name a column "
                f"suffix (e.g. 'gender' for {side.split('_')[0]}_gender)."
            )
    if cfg.data.num_folds < 2:
        raise ValueError(
            f"config.data.num_folds is {cfg.data.num_folds}; it must be >= 2."
        )
    for name in ("demo.rater_cue", "loss.group_pooling"):
        value = _field(cfg, name)
        if value not in FIELD_CHOICES[name]:
            raise ValueError(
                f"config.{name} is {value!r}; it must be one of "
                f"{', '.join(FIELD_CHOICES[name])}."
            )
    seeds = tuple(cfg.seeds)
    if (
        not seeds
        or len(set(seeds)) != len(seeds)
        or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in seeds
        )
    ):
        raise ValueError(
            f"config.seeds is {seeds}; it must be distinct ints, at least one "
            "(each seed is one run per emotion and fold: a seed listed twice "
            "would train and predict the same run twice)."
        )
    for name, ok, must in _BOUNDS:
        value = _field(cfg, name)
        try:
            good = bool(ok(value))
        except TypeError:
            good = False
        if not good:
            raise ValueError(f"config.{name} is {value!r}; it must be {must}.")
    grouped = [v for v in cfg.variants if variants.get(v).pairwise]
    if grouped and cfg.train.batch_size < 2:
        raise ValueError(
            f"config.train.batch_size is {cfg.train.batch_size}, but "
            f"{', '.join(grouped)} compare(s) utterances within a batch "
            "(L_cl, L_D): with fewer than 2 per batch their fairness terms "
            "are zero and the model is a plain DNN. Use a batch of at least "
            "2 (the paper uses 32)."
        )


class ConfigMismatchError(ValueError):
    """`--resume` with a config that differs from the workdir's."""


EARLIER_BEHAVIOUR: dict[tuple[str, str], Any] = {
    # Before `two_sided.distance` existed, D was the Sinkhorn divergence of
    # the two clouds as they are; the new default is Gromov-Wasserstein.
    ("two_sided", "distance"): "sinkhorn",
}
"""Fields added with a default that is NOT how the releases before them
behaved: a config.json without the field is read with this value."""


def with_new_fields(old: dict, default: dict) -> dict:
    """`old` (a config.json) with the fields it lacks taken from `default`.

    A workdir of an earlier release lacks the config fields added since;
    they are read as their defaults, which is how that release behaved, so
    `--resume` with an unchanged config still matches — except the fields
    of `EARLIER_BEHAVIOUR`, read as what the earlier release did (so a
    workdir whose Proposed used the old D is not resumed with another).
    """
    old = dict(old)
    for (section, name), value in EARLIER_BEHAVIOUR.items():
        if isinstance(old.get(section), dict) and name not in old[section]:
            old[section] = {**old[section], name: value}
    return _fill(old, default)


def _fill(old: dict, default: dict) -> dict:
    out = dict(old)
    for key, value in default.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _fill(out[key], value)
    return out


def check_resume(path: str | pathlib.Path, cfg_json: str) -> None:
    """Fails unless `cfg_json` is the config that wrote `path`.

    Args:
      path: a workdir's ``config.json`` (nothing to check if absent).
      cfg_json: the resolved config of this run, as JSON.

    Raises:
      ConfigMismatchError: naming the sections that differ.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return
    old = with_new_fields(
        json.loads(path.read_text()),
        json.loads(get_default_config().to_json_best_effort()),
    )
    new = json.loads(cfg_json)
    if old != new:
        diffs = _differences(old, new)
        shown = "; ".join(
            f"{name}: {a!r} in the workdir, {b!r} now"
            for name, a, b in diffs[:6]
        )
        more = f"; and {len(diffs) - 6} more" if len(diffs) > 6 else ""
        raise ConfigMismatchError(
            f"{path} was written by a different config ({shown}{more}); "
            "resume with the same config, or use a new --workdir."
        )


_ABSENT = "<absent>"


def _differences(
    old: Any, new: Any, prefix: str = ""
) -> list[tuple[str, Any, Any]]:
    """(dotted field, old value, new value) of every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(
                old.get(key, _ABSENT), new.get(key, _ABSENT), f"{prefix}{key}."
            )
        return out
    return [] if old == new else [(prefix[:-1], old, new)]
