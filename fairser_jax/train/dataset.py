"""The training table: S1 utterances with features and group codes.

`load_features` reads the feature store it is made from, checked against
the config and the corpus; `make_training_table` joins it with the study.

Everything a step needs, as arrays that live on the device for the whole run
: features, the consensus class, the speaker group, the rater group (S2
only) and the fold. Groups are values of one categorical attribute per side
(binary gender by default), coded by their position in the side's sorted
vocabulary, so binary gender is F=0, M=1 (`constants.GENDER_CODE`).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import pathlib
from collections.abc import Mapping, Sequence

import flax
import jax
import ml_collections
import numpy as np

from fairser_jax import constants
from fairser_jax import results as results_lib
from fairser_jax import variants as variants_lib
from fairser_jax.data import corpus as corpus_lib
from fairser_jax.data import features as features_lib
from fairser_jax.wav2vec2 import extraction


def load_features(
    cfg: ml_collections.ConfigDict,
    path: pathlib.Path,
    corpus: pathlib.Path,
    data: corpus_lib.Corpus,
) -> features_lib.FeatureSet:
    """The feature store at `path`, checked against the config and corpus.

    The store's manifest must name the config's checkpoint and layer and
    the corpus's current audio (its fingerprint); otherwise the message
    names each differing field and the command that makes a matching
    store.

    Raises:
      FileNotFoundError: no store.
      features.FeatureStoreError: the store is damaged, not a store, or
        does not match (`StaleFeaturesError`).
    """
    fix = (
        f"python -m fairser_jax.extract --corpus={corpus} "
        f"--checkpoint={cfg.features.checkpoint} "
        f"--layer={cfg.features.layer} --out={path}"
        + (" --skip_bad_audio" if cfg.features.skip_bad_audio else "")
    )
    if not path.exists():
        raise FileNotFoundError(
            f"No feature store at {path}. Extract it first: {fix}"
        )
    present = [u for u in data.records if u.wav_path.exists()]
    expected = extraction.expected_manifest(
        cfg.features.checkpoint,
        features_lib.corpus_fingerprint(present),
        layer=cfg.features.layer,
    )
    try:
        return features_lib.load(path, expected=expected)
    except features_lib.StaleFeaturesError as e:
        raise features_lib.StaleFeaturesError(
            f"the feature store {path} does not match the config and corpus "
            f"({'; '.join(e.diffs)}). Make a matching store with: {fix}",
            e.diffs,
        ) from None


@flax.struct.dataclass
class Dataset:
    """Device arrays over the N utterances of S1.

    Attributes:
      features: [N, H] float32 pooled (z-normalised) wav2vec2 features.
      label: [N] int32 index into the study's classes of the consensus class.
      speaker_group: [N] int32 speaker group code in 0..K_S-1.
      rater_group: [N] int32 rater group code in 0..K_R-1; 0 outside S2.
      in_s2: [N] bool, whether the utterance is in S2 (has a rater group).
      fold: [N] int32 fold index.
      num_speaker_groups: K_S (static), at least 2.
      num_rater_groups: K_R (static), at least 2.
    """

    features: jax.Array
    label: jax.Array
    speaker_group: jax.Array
    rater_group: jax.Array
    in_s2: jax.Array
    fold: jax.Array
    num_speaker_groups: int = flax.struct.field(pytree_node=False, default=2)
    num_rater_groups: int = flax.struct.field(pytree_node=False, default=2)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Host-side metadata aligned with the rows of a `Dataset`.

    Attributes:
      ids: [N] utterance ids.
      speaker_group: [N] speaker attribute value (e.g. "M"/"F").
      rater_group: [N] rater group of S2 utterances, "" elsewhere.
      fold: [N] int fold index.
      classes: the study's classes; `Dataset.label` indexes them.
      speaker_groups: the speaker vocabulary; codes index it.
      rater_groups: the rater vocabulary; codes index it.
      speaker_attribute: the speaker attribute's name ("gender").
      rater_attribute: the rater attribute's name ("gender").
    """

    ids: np.ndarray
    speaker_group: np.ndarray
    rater_group: np.ndarray
    fold: np.ndarray
    classes: tuple[str, ...] = constants.EMOTIONS
    speaker_groups: tuple[str, ...] = ("F", "M")
    rater_groups: tuple[str, ...] = ("F", "M")
    speaker_attribute: str = "gender"
    rater_attribute: str = "gender"

    @property
    def speaker_column(self) -> str:
        """The `predictions.csv` column of the speaker group."""
        return f"speaker_{self.speaker_attribute}"

    @property
    def rater_column(self) -> str:
        """The `predictions.csv` column of the rater group."""
        return f"rater_{self.rater_attribute}"

    def speaker_codes(self, rows: np.ndarray) -> np.ndarray:
        """int64 speaker group codes of `rows`."""
        index = {g: k for k, g in enumerate(self.speaker_groups)}
        return np.array([index[g] for g in self.speaker_group[rows]], np.int64)

    def rater_codes(self, rows: np.ndarray) -> np.ndarray:
        """int64 rater group codes of `rows`, -1 outside S2."""
        index = {g: k for k, g in enumerate(self.rater_groups)}
        return np.array(
            [index.get(g, -1) for g in self.rater_group[rows]], np.int64
        )


def vocabulary(values: Sequence[str]) -> tuple[str, ...]:
    """The sorted distinct non-empty group values (at least F, M if binary).

    Binary gender always gets ("F", "M"), even if a table holds only one of
    them, so its codes are `constants.GENDER_CODE` whatever the data.
    """
    distinct = sorted({str(v) for v in values if str(v) != ""})
    if set(distinct) <= set(constants.GENDER_CODE):
        return tuple(
            sorted(constants.GENDER_CODE, key=constants.GENDER_CODE.get)
        )
    return tuple(distinct)


def make_dataset(
    ids: Sequence[str],
    features: np.ndarray,
    labels: Sequence[str],
    speaker_group: Sequence[str],
    folds: Sequence[int],
    s2_rater_group: Mapping[str, str],
    *,
    classes: Sequence[str] = constants.EMOTIONS,
    speaker_groups: Sequence[str] | None = None,
    rater_groups: Sequence[str] | None = None,
    speaker_attribute: str = "gender",
    rater_attribute: str = "gender",
) -> tuple[Dataset, DatasetInfo]:
    """Builds the training table from aligned host arrays.

    Args:
      ids: [N] S1 utterance ids.
      features: [N, H] features aligned with `ids`.
      labels: [N] consensus class names (members of `classes`).
      speaker_group: [N] speaker attribute values ("M"/"F").
      folds: [N] fold indices >= 0.
      s2_rater_group: S2 id -> rater group ("M"/"F").
      classes: the study's classes (default: the paper's five).
      speaker_groups: the speaker vocabulary (default: `vocabulary` of
        `speaker_group`); must hold every value.
      rater_groups: the rater vocabulary (default: `vocabulary` of the S2
        groups); must hold every value.
      speaker_attribute: name of the speaker attribute.
      rater_attribute: name of the rater attribute.

    Returns:
      The device `Dataset` and its host `DatasetInfo`.
    """
    n = len(ids)
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(
            f"features has shape {features.shape}; expected [{n}, H] "
            "aligned with the utterance ids."
        )
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or Inf values.")
    classes = tuple(classes)
    bad = sorted({lab for lab in labels if lab not in classes})
    if bad:
        raise ValueError(
            f"labels {bad} are not among {classes}; pass only S1 utterances."
        )
    folds = np.asarray(folds, np.int32)
    if n and folds.min() < 0:
        raise ValueError(f"folds must be >= 0, got {np.unique(folds)}.")
    rater = np.array([s2_rater_group.get(i, "") for i in ids], dtype=object)
    rater = rater.astype(str) if n else np.array([], str)
    spk = np.asarray(speaker_group).astype(str)
    speaker_groups = tuple(
        vocabulary(spk) if speaker_groups is None else speaker_groups
    )
    rater_groups = tuple(
        vocabulary(rater) if rater_groups is None else rater_groups
    )
    for side, values, vocab in (
        ("speaker", spk, speaker_groups),
        ("rater", rater[rater != ""], rater_groups),
    ):
        unknown = sorted(set(values) - set(vocab))
        if unknown:
            raise ValueError(
                f"{side} groups {unknown} are not in the {side} vocabulary "
                f"{vocab}."
            )
    spk_code = {g: k for k, g in enumerate(speaker_groups)}
    rat_code = {g: k for k, g in enumerate(rater_groups)}
    dataset = Dataset(
        features=jax.numpy.asarray(features),
        label=jax.numpy.asarray(
            [classes.index(lab) for lab in labels], np.int32
        ),
        speaker_group=jax.numpy.asarray([spk_code[g] for g in spk], np.int32),
        rater_group=jax.numpy.asarray(
            [rat_code.get(g, 0) for g in rater], np.int32
        ),
        in_s2=jax.numpy.asarray(rater != ""),
        fold=jax.numpy.asarray(folds),
        num_speaker_groups=max(2, len(speaker_groups)),
        num_rater_groups=max(2, len(rater_groups)),
    )
    info = DatasetInfo(
        ids=np.asarray(ids),
        speaker_group=spk,
        rater_group=rater,
        fold=folds,
        classes=classes,
        speaker_groups=speaker_groups,
        rater_groups=rater_groups,
        speaker_attribute=speaker_attribute,
        rater_attribute=rater_attribute,
    )
    return dataset, info


class InputsChangedError(ValueError):
    """`--resume` on inputs other than those the finished variants used."""


INPUT_COLUMNS = ("label", "fold", "speaker_group", "rater_group")


def training_inputs(data: Dataset, info: DatasetInfo) -> dict:
    """What the models of a run are trained and scored on, per utterance
    (class, fold, speaker group, rater group) and the training features'
    digest: a workdir records it (``inputs.json``) so that `--resume`
    refuses to mix models trained on different inputs."""
    import hashlib

    labels = np.asarray(data.label)
    rows = {
        str(i): [info.classes[int(c)], int(f), str(s), str(r)]
        for i, c, f, s, r in zip(
            info.ids,
            labels,
            info.fold,
            info.speaker_group,
            info.rater_group,
            strict=True,
        )
    }
    digest = hashlib.sha256(
        np.ascontiguousarray(np.asarray(data.features)).tobytes()
    ).hexdigest()
    return {
        "columns": list(INPUT_COLUMNS),
        "features_sha256": digest,
        "utterances": rows,
    }


def _examples(items: list[str], limit: int = 3) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def inputs_changes(old: Mapping, new: Mapping) -> list[str]:
    """What differs between two `training_inputs`, one phrase per kind."""
    changes = []
    a, b = old.get("utterances", {}), new.get("utterances", {})
    gone = sorted(set(a) - set(b))
    added = sorted(set(b) - set(a))
    if gone:
        changes.append(f"{len(gone)} utterance(s) left S1 ({_examples(gone)})")
    if added:
        changes.append(
            f"{len(added)} utterance(s) joined S1 ({_examples(added)})"
        )
    columns = list(old.get("columns", INPUT_COLUMNS))
    for k, column in enumerate(columns):
        diffs = [
            f"{u}: {a[u][k]!r} -> {b[u][k]!r}"
            for u in sorted(set(a) & set(b))
            if a[u][k] != b[u][k]
        ]
        if diffs:
            changes.append(
                f"the {column} of {len(diffs)} utterance(s) changed "
                f"({_examples(diffs)})"
            )
    if not changes and old.get("features_sha256") != new.get("features_sha256"):
        changes.append(
            "the training features changed (the audio, the feature store "
            "or its normalisation)"
        )
    return changes


SMALL_GROUP = results_lib.SMALL_GROUP  # its public name here since 0.1


def warn_small_groups(
    side: str, attribute: str, study_set: str, group_of: Mapping[str, str]
) -> list[tuple[str, int]]:
    """Warns about each group with fewer than `results.SMALL_GROUP`
    utterances.

    Args:
      side: "speaker" or "rater".
      attribute: the side's attribute (e.g. "gender").
      study_set: "S1" or "S2", where the group's utterances are counted.
      group_of: utterance id -> its group on that side.

    Returns:
      (group, utterances) of each small group, smallest first
      (`results.small_of`: none when fewer than two groups).
    """
    small = results_lib.small_of(collections.Counter(group_of.values()))
    if small:
        logging.warning(
            "%s group(s) by %s with fewer than %d utterances in %s: %s; "
            "the %s-side parity gaps (ΔSP, ΔEOd, ΔEOpp) of every model rest "
            "on so few utterances that these groups alone can move them.",
            side.capitalize(),
            attribute,
            results_lib.SMALL_GROUP,
            study_set,
            ", ".join(f"{g!r} ({n})" for g, n in small),
            side,
        )
    return small


def make_training_table(
    cfg: ml_collections.ConfigDict, data: corpus_lib.Corpus, study, feature_set
):
    """The S1 training table with speaker-wise z-normalised features.

    The z-normalisation statistics of a speaker use all of that speaker's
    extracted utterances (paper §2.2.1), not only S1's. Group codes index
    the vocabulary of each side's attribute over the whole corpus (binary
    gender: F=0, M=1).
    """
    by_id = {u.id: u for u in data.records}
    ids = np.asarray(feature_set.ids)
    feats = np.asarray(feature_set.features, np.float32)
    if cfg.features.znorm:
        feats = features_lib.speaker_znorm(
            feats, [by_id[i].speaker for i in ids]
        )
    s1 = sorted(study.s1_ids)
    z = features_lib.align(
        features_lib.FeatureSet(
            ids=feature_set.ids, features=feats, manifest=feature_set.manifest
        ),
        s1,
    )
    attr = cfg.data.speaker_attribute
    values = [u.speaker_attributes.get(attr, "") for u in data.records]
    distinct = sorted(set(values) - {""})
    if len(distinct) < 2:
        raise ValueError(
            f"the speaker attribute {attr!r} has the single value "
            f"{distinct[0] if distinct else None!r} in {data.root}: group "
            "fairness needs at least two groups; pick another "
            "--config.data.speaker_attribute."
        )
    speaker_groups = vocabulary(values)
    rater_side = [
        v
        for v in cfg.variants
        if variants_lib.get(v).intra_fair in ("rat", "both")
    ]
    s2_groups = sorted(set(study.s2_rater_group.values()))
    if len(s2_groups) < 2:
        logging.warning(
            "S2 has %s rater group(s) %s: the rater-side gaps (ΔSP_rat, "
            "ΔEOd_rat, ΔEOpp_rat) are undefined and reported as —%s; check "
            "config.data.rater_attribute and the raters' attribute values.",
            len(s2_groups),
            s2_groups,
            f", and the rater-side terms of {', '.join(rater_side)} "
            "(L_Adv, L_D-R) are zero"
            if rater_side
            else "",
        )
    warn_small_groups(
        "speaker",
        attr,
        "S1",
        {i: by_id[i].speaker_attributes[attr] for i in s1},
    )
    warn_small_groups(
        "rater", cfg.data.rater_attribute, "S2", study.s2_rater_group
    )
    return make_dataset(
        ids=s1,
        features=z,
        labels=[by_id[i].label for i in s1],
        speaker_group=[by_id[i].speaker_attributes[attr] for i in s1],
        folds=[by_id[i].fold for i in s1],
        s2_rater_group=study.s2_rater_group,
        classes=study.classes,
        speaker_groups=speaker_groups,
        rater_groups=vocabulary(study.rater_groups),
        speaker_attribute=attr,
        rater_attribute=cfg.data.rater_attribute,
    )
