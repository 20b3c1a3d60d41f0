"""The training table: S1 utterances with features and group codes.

Everything a step needs, as arrays that live on the device for the whole run
: features, the 5-class consensus label, speaker gender, rater-gender
group (S2 only) and the leave-one-session-out fold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import flax
import jax
import numpy as np

from fairser_jax import constants


@flax.struct.dataclass
class Dataset:
    """Device arrays over the N utterances of S1.

    Attributes:
      features: [N, H] float32 pooled (z-normalised) wav2vec2 features.
      label: [N] int32 index into `constants.EMOTIONS` of the consensus class.
      speaker_gender: [N] int32 speaker gender code (F=0, M=1).
      rater_gender: [N] int32 rater-gender group code; 0 outside S2.
      in_s2: [N] bool, whether the utterance is in S2 (has a rater group).
      fold: [N] int32 fold index (session - 1).
    """

    features: jax.Array
    label: jax.Array
    speaker_gender: jax.Array
    rater_gender: jax.Array
    in_s2: jax.Array
    fold: jax.Array


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Host-side metadata aligned with the rows of a `Dataset`.

    Attributes:
      ids: [N] utterance ids.
      speaker_gender: [N] "M"/"F".
      rater_gender: [N] "M"/"F" for S2 utterances, "" elsewhere.
      fold: [N] int fold index.
    """

    ids: np.ndarray
    speaker_gender: np.ndarray
    rater_gender: np.ndarray
    fold: np.ndarray


def make_dataset(
    ids: Sequence[str],
    features: np.ndarray,
    labels: Sequence[str],
    speaker_gender: Sequence[str],
    sessions: Sequence[int],
    s2_rater_gender: Mapping[str, str],
) -> tuple[Dataset, DatasetInfo]:
    """Builds the training table from aligned host arrays.

    Args:
      ids: [N] S1 utterance ids.
      features: [N, H] features aligned with `ids`.
      labels: [N] consensus class names (members of `constants.EMOTIONS`).
      speaker_gender: [N] "M"/"F".
      sessions: [N] IEMOCAP session numbers 1..5.
      s2_rater_gender: S2 id -> "M"/"F" rater-gender group.

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
    bad = sorted({lab for lab in labels if lab not in constants.EMOTIONS})
    if bad:
        raise ValueError(
            f"labels {bad} are not among {constants.EMOTIONS}; pass only S1 "
            "utterances."
        )
    sessions = np.asarray(sessions, np.int32)
    if sessions.min() < 1 or sessions.max() > 5:
        raise ValueError(f"sessions must be 1..5, got {np.unique(sessions)}.")
    rater = np.array([s2_rater_gender.get(i, "") for i in ids])
    spk = np.asarray(speaker_gender)
    code = constants.GENDER_CODE
    dataset = Dataset(
        features=jax.numpy.asarray(features),
        label=jax.numpy.asarray(
            [constants.EMOTIONS.index(lab) for lab in labels], np.int32
        ),
        speaker_gender=jax.numpy.asarray([code[g] for g in spk], np.int32),
        rater_gender=jax.numpy.asarray(
            [code.get(g, 0) for g in rater], np.int32
        ),
        in_s2=jax.numpy.asarray(rater != ""),
        fold=jax.numpy.asarray(sessions - 1),
    )
    info = DatasetInfo(
        ids=np.asarray(ids),
        speaker_gender=spk,
        rater_gender=rater,
        fold=sessions - 1,
    )
    return dataset, info
