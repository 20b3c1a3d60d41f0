"""Out-of-fold predictions and the files of a workdir (SPEC §7, §8).

A variant's runs are (emotion, fold, seed[, alpha]); a *result* is one
(variant, emotion, seed, alpha): its five fold runs' test predictions pooled
into out-of-fold predictions over all of S1, scored with
`fairser_jax.report.recompute.run_metrics`, the same code that
`python -m fairser_jax.report --recompute` checks `results.json` with.
"""

from __future__ import annotations

import csv
import dataclasses
import pathlib
from collections.abc import Iterable

import numpy as np

from fairser_jax import constants
from fairser_jax.report import recompute
from fairser_jax.train.dataset import DatasetInfo
from fairser_jax.train.runner import VariantOutput

Key = tuple[str, str, int, float | None]


@dataclasses.dataclass(frozen=True)
class OutOfFold:
    """Pooled out-of-fold predictions of one result, rows sorted by id.

    Attributes:
      key: (variant, emotion, seed, alpha).
      fold: [N] fold that predicted each row.
      rows: [N] dataset row of each prediction.
      y_true: [N] int binary target.
      y_score: [N] float sigmoid(logit).
      y_pred: [N] int, y_score >= 0.5 (SPEC §7).
      embedding: [N, D] test embedding z.
    """

    key: Key
    fold: np.ndarray
    rows: np.ndarray
    y_true: np.ndarray
    y_score: np.ndarray
    y_pred: np.ndarray
    embedding: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


def out_of_fold(
    output: VariantOutput, label: np.ndarray, info: DatasetInfo
) -> list[OutOfFold]:
    """Pools each result's fold runs into out-of-fold predictions.

    Args:
      output: what `runner.train_variant` returned.
      label: [N] host class index (into `constants.EMOTIONS`) of each row.
      info: host metadata of the dataset rows.

    Returns:
      One `OutOfFold` per (variant, emotion, seed, alpha), in run order.
    """
    groups: dict[Key, list[int]] = {}
    for r, spec in enumerate(output.runs):
        key = (spec.variant, spec.emotion, spec.seed, spec.alpha)
        groups.setdefault(key, []).append(r)
    results = []
    for key, run_indices in groups.items():
        emotion = constants.EMOTIONS.index(key[1])
        parts = []
        for r in run_indices:
            n = output.arrays.n_test[r]
            rows = output.arrays.test_idx[r, :n]
            parts.append(
                (
                    np.full(n, output.runs[r].fold),
                    rows,
                    output.logits[r, :n],
                    output.embeddings[r, :n],
                )
            )
        fold, rows, logits, emb = (
            np.concatenate(p) for p in zip(*parts, strict=True)
        )
        if len(np.unique(rows)) != len(rows):
            raise ValueError(f"Result {key} predicts some utterance twice.")
        order = np.argsort(info.ids[rows], kind="stable")
        score = _sigmoid(logits[order])
        results.append(
            OutOfFold(
                key=key,
                fold=fold[order],
                rows=rows[order],
                y_true=(label[rows[order]] == emotion).astype(np.int64),
                y_score=score,
                y_pred=(score >= 0.5).astype(np.int64),
                embedding=emb[order],
            )
        )
    return results


def metrics_of(oof: OutOfFold, info: DatasetInfo) -> dict:
    """The `results.json` entry of one result (SPEC §7)."""
    code = constants.GENDER_CODE
    rater = info.rater_gender[oof.rows]
    return recompute.run_metrics(
        recompute.RunPredictions(
            key=oof.key,
            y_true=oof.y_true,
            y_pred=oof.y_pred,
            speaker_gender=np.array(
                [code[g] for g in info.speaker_gender[oof.rows]]
            ),
            rater_gender=np.array([code.get(g, -1) for g in rater]),
            first_line=0,
        )
    )


def prediction_rows(oof: OutOfFold, info: DatasetInfo) -> Iterable[list]:
    """`predictions.csv` rows of one result (columns of SPEC §8)."""
    variant, emotion, seed, alpha = oof.key
    alpha_text = "" if alpha is None else repr(float(alpha))
    for i, row in enumerate(oof.rows):
        yield [
            variant,
            emotion,
            seed,
            alpha_text,
            int(oof.fold[i]),
            info.ids[row],
            int(oof.y_true[i]),
            f"{oof.y_score[i]:.9g}",
            int(oof.y_pred[i]),
            info.speaker_gender[row],
            info.rater_gender[row],
        ]


def write_predictions(
    path: pathlib.Path, results: Iterable[OutOfFold], info: DatasetInfo
) -> None:
    """Writes a `predictions.csv` (header + one row per run × utterance)."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(recompute.PREDICTION_COLUMNS)
        for oof in results:
            writer.writerows(prediction_rows(oof, info))
    tmp.replace(path)


def embeddings_path(workdir: pathlib.Path, key: Key) -> pathlib.Path:
    """`embeddings/<variant>_<emotion>_seed<k>[_alpha<a>].npz`."""
    variant, emotion, seed, alpha = key
    suffix = "" if alpha is None else f"_alpha{alpha:g}"
    return (
        workdir / "embeddings" / f"{variant}_{emotion}_seed{seed}{suffix}.npz"
    )


def write_embeddings(
    workdir: pathlib.Path, oof: OutOfFold, info: DatasetInfo
) -> None:
    """Out-of-fold test embeddings of one result, for the Fig. 2 t-SNE."""
    path = embeddings_path(workdir, oof.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        utterance_id=info.ids[oof.rows].astype(str),
        embedding=oof.embedding.astype(np.float32),
        speaker_gender=info.speaker_gender[oof.rows].astype(str),
        rater_gender=info.rater_gender[oof.rows].astype(str),
    )
