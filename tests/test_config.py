"""The config's description table (`fairser_jax.config.FIELD_HELP`) and
its allowed values (`FIELD_CHOICES`) against the defaults and the
validators (`config.validate`, `pipeline.validate_config`)."""

import ml_collections
import pytest

from fairser_jax import config as config_lib
from fairser_jax import losses, pipeline, variants
from fairser_jax.data import demo_corpus, layouts
from fairser_jax.train import alpha, distances

DEFAULT_FIELDS = [
    name for name, _ in config_lib.flatten(config_lib.get_default_config())
]

# Where each enum's values live in the code that checks them.
REGISTRIES = {
    "data.format": layouts.formats(),
    "demo.rater_cue": demo_corpus.RATER_CUES,
    "two_sided.distance": tuple(distances.DISTANCES),
    "loss.group_pooling": losses.POOLINGS,
    "two_sided.alpha_fn": tuple(alpha.ALPHA_FUNCTIONS),
    "two_sided.mu_rat": alpha.MU_RAT,
    "variants": variants.BUILT_IN,
}


@pytest.mark.parametrize("name", DEFAULT_FIELDS)
def test_every_field_has_a_one_line_description(name):
    text = config_lib.FIELD_HELP.get(name)
    assert text, f"config.{name} has no entry in config.FIELD_HELP"
    assert "\n" not in text and text.endswith(".") and len(text) >= 20


def test_the_table_describes_only_fields_of_the_defaults():
    assert set(config_lib.FIELD_HELP) == set(DEFAULT_FIELDS)
    assert set(config_lib.FIELD_CHOICES) <= set(DEFAULT_FIELDS)


def test_the_enums_are_those_the_code_checks():
    """Every enum the validators check is listed, with the same values."""
    assert set(config_lib.FIELD_CHOICES) == set(REGISTRIES)
    for name, values in config_lib.FIELD_CHOICES.items():
        assert values == tuple(REGISTRIES[name]), name
        assert f"One of: {', '.join(values)}." in config_lib.field_help(name)


def _everything_on() -> ml_collections.ConfigDict:
    """The defaults with every variant, so every check of the validator
    (the two-sided ones included) runs."""
    cfg = config_lib.get_default_config()
    cfg.variants = variants.BUILT_IN
    return cfg


def _accepts(name: str, value) -> bool:
    cfg = _everything_on()
    section, _, field = name.rpartition(".")
    target = cfg[section] if section else cfg
    target[field] = (value,) if name == "variants" else value
    try:
        pipeline.validate_config(cfg)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(config_lib.FIELD_CHOICES))
def test_the_validator_accepts_exactly_the_listed_values(name):
    """Each listed value passes `validate_config`; a value listed for
    another enum, a misspelling and a different case do not."""
    listed = config_lib.FIELD_CHOICES[name]
    assert all(_accepts(name, v) for v in listed), name
    others = {
        v
        for other, values in config_lib.FIELD_CHOICES.items()
        if other != name
        for v in values
    } - set(listed)
    for value in [*sorted(others), f"{listed[0]}x", listed[0].upper()]:
        assert not _accepts(name, value), (name, value)


def test_the_defaults_with_every_variant_validate():
    """So a rejected value above is rejected for its own sake."""
    pipeline.validate_config(_everything_on())


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("seeds", (0, 0), "distinct"),
        ("seeds", (), "at least one"),
        ("seeds", (0, 1.5), "ints"),
        ("variants", (), "empty"),
        ("emotions", (), "at least one"),
        ("emotions", ("anger", "anger"), "distinct"),
    ],
)
def test_lists_that_would_fail_after_training_fail_first(name, value, message):
    """A seed twice used to train every model and then fail to write the
    predictions ("predicts some utterance twice"); no variants extracted
    the features and wrote config.json first. Both are refused by the
    data-free check, before any work."""
    cfg = config_lib.get_default_config()
    cfg[name] = value
    with pytest.raises(ValueError, match=message) as info:
        config_lib.validate(cfg)
    assert f"config.{name}" in str(info.value)


def test_an_emotion_typo_names_emotions_not_the_sweep():
    """`--config.emotions='(angr,)'` with the fixed-α sweep used to blame
    config.two_sided.sweep_emotions; the field the user typed comes first."""
    cfg = config_lib.get_default_config()
    cfg.variants = variants.BUILT_IN
    cfg.emotions = ("angr",)
    with pytest.raises(ValueError) as info:
        config_lib.validate(cfg)
    message = str(info.value)
    assert message.startswith("config.emotions has ['angr']"), message
    assert "sweep_emotions" not in message
