"""Runs: one (variant, emotion, fold, seed[, alpha]) model each.

All runs of one variant are trained together as one stacked pytree.
This module enumerates them and builds the per-run index arrays the runner
gathers batches with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np

from fairser_jax import constants
from fairser_jax.train import variants


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One model of the protocol.

    Attributes:
      variant: a name of `fairser_jax.train.variants.REGISTRY`.
      emotion: one of the study's classes (the binary detector's class;
        default: `constants.EMOTIONS`, the paper's five).
      fold: leave-one-session-out fold index; the run tests on session
        `fold + 1` and trains on the other four.
      seed: replicate index (paper: ten models per setting).
      alpha: the constant α of the `fixed_alpha` variant, else None.
    """

    variant: str
    emotion: str
    fold: int
    seed: int
    alpha: float | None = None

    @property
    def name(self) -> str:
        """Human-readable id, used in errors and logs."""
        alpha = "" if self.alpha is None else f", alpha={self.alpha:g}"
        return (
            f"(variant={self.variant}, emotion={self.emotion}, "
            f"fold={self.fold}, seed={self.seed}{alpha})"
        )


def make_runs(
    variant: str,
    emotions: Sequence[str],
    folds: Sequence[int],
    seeds: Sequence[int],
    alphas: Sequence[float | None] = (None,),
    classes: Sequence[str] = constants.EMOTIONS,
) -> list[RunSpec]:
    """All runs of one variant, ordered by (emotion, seed, alpha, fold)."""
    variants.get(variant)  # raises on an unknown name
    for emotion in emotions:
        if emotion not in classes:
            raise ValueError(
                f"Unknown emotion {emotion!r}; expected one of "
                f"{tuple(classes)}."
            )
    return [
        RunSpec(variant, emotion, int(fold), int(seed), alpha)
        for emotion in emotions
        for seed in seeds
        for alpha in alphas
        for fold in folds
    ]


def run_key(
    spec: RunSpec, classes: Sequence[str] = constants.EMOTIONS
) -> jax.Array:
    """The run's root PRNG key: a function of (seed, emotion, fold) only.

    The emotion enters as its index in the study's `classes`.

    The variant is deliberately not folded in, so that every variant of the
    same (emotion, fold, seed) starts from the same initial parameters and
    sees the same batch order: paired comparisons between variants.
    """
    key = jax.random.key(spec.seed)
    key = jax.random.fold_in(key, tuple(classes).index(spec.emotion))
    return jax.random.fold_in(key, spec.fold)


@dataclasses.dataclass(frozen=True)
class RunArrays:
    """Per-run arrays, stacked on a leading runs axis R (host NumPy).

    Attributes:
      emotion: [R] int32 index into the study's classes.
      alpha: [R] float32 constant α (NaN when the run has none).
      train_idx: [R, N_train_max] int32 rows of the dataset to train on;
        entries past `n_train` are padding (repeat row 0, never read).
      n_train: [R] int32 number of valid entries of `train_idx`.
      test_idx: [R, N_test_max] int32 rows to evaluate on (held-out fold).
      n_test: [R] int32 number of valid entries of `test_idx`.
      key: [R, 2] uint32 raw PRNG key data of `run_key`.
    """

    emotion: np.ndarray
    alpha: np.ndarray
    train_idx: np.ndarray
    n_train: np.ndarray
    test_idx: np.ndarray
    n_test: np.ndarray
    key: np.ndarray

    def __len__(self) -> int:
        return len(self.emotion)


def _pad_rows(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    width = max(1, max(len(r) for r in rows))
    out = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, np.array([len(r) for r in rows], np.int32)


def build_run_arrays(
    runs: Sequence[RunSpec],
    fold: np.ndarray,
    classes: Sequence[str] = constants.EMOTIONS,
) -> RunArrays:
    """Train/test row indices per run from the dataset's fold column.

    Args:
      runs: the runs to stack.
      fold: [N] int fold index of every dataset row.
      classes: the study's classes (`Dataset.label` indexes them).

    Returns:
      The stacked `RunArrays`.
    """
    fold = np.asarray(fold)
    train_rows, test_rows = [], []
    for spec in runs:
        test = np.flatnonzero(fold == spec.fold)
        train = np.flatnonzero(fold != spec.fold)
        if len(test) == 0 or len(train) == 0:
            raise ValueError(
                f"Run {spec.name} has {len(train)} training and {len(test)} "
                "test utterances; every fold needs both. Check that the "
                "corpus has S1 utterances in every fold of config.folds "
                "(IEMOCAP: all five sessions)."
            )
        train_rows.append(train)
        test_rows.append(test)
    train_idx, n_train = _pad_rows(train_rows)
    test_idx, n_test = _pad_rows(test_rows)
    classes = tuple(classes)
    keys = np.stack(
        [np.asarray(jax.random.key_data(run_key(s, classes))) for s in runs]
    )
    return RunArrays(
        emotion=np.array([classes.index(s.emotion) for s in runs], np.int32),
        alpha=np.array(
            [np.nan if s.alpha is None else s.alpha for s in runs], np.float32
        ),
        train_idx=train_idx,
        n_train=n_train,
        test_idx=test_idx,
        n_test=n_test,
        key=keys.astype(np.uint32),
    )


def variant_runs(cfg: ml_collections.ConfigDict, variant: str) -> list[RunSpec]:
    """The runs `cfg` asks of `variant` (its emotions, folds, seeds, α)."""
    spec = variants.get(variant)
    return make_runs(
        variant,
        spec.emotions(cfg),
        cfg.folds,
        cfg.seeds,
        spec.alphas(cfg),
        classes=tuple(cfg.data.classes),
    )
