"""Out-of-fold predictions and the per-variant files of a workdir.

A variant's runs are (emotion, fold, seed[, alpha]); a *result* is one
(variant, emotion, seed, alpha): its five fold runs' test predictions pooled
into out-of-fold predictions over all of S1 (paper §2.2.3), scored with
`fairser_jax.results.run_metrics`, the same code that
`python -m fairser_jax.report --recompute` checks `results.json` with.

Also here: the final parameters of a variant's runs (`params/<v>.npz`, what
Proposed starts from and reads, and what predicting needs) and the α trace
of Proposed (`alpha_trace.npz`, Fig. 3b).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import pathlib
import shutil
import zipfile
from collections.abc import Iterable, Mapping

import jax
import numpy as np
from flax import traverse_util

from fairser_jax import fileio
from fairser_jax import results as results_lib
from fairser_jax import variants as variants_lib
from fairser_jax import workdir as workdir_lib
from fairser_jax.train.dataset import DatasetInfo
from fairser_jax.train.runner import VariantOutput
from fairser_jax.train.runs import RunSpec

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
      y_pred: [N] int, y_score >= 0.5.
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
      label: [N] host class index (into `info.classes`) of each row.
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
        emotion = info.classes.index(key[1])
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
    """The `results.json` entry of one result (paper §2.2.3)."""
    return results_lib.run_metrics(
        results_lib.RunPredictions(
            key=oof.key,
            y_true=oof.y_true,
            y_pred=oof.y_pred,
            speaker_group=info.speaker_codes(oof.rows),
            rater_group=info.rater_codes(oof.rows),
            first_line=0,
        )
    )


def prediction_rows(oof: OutOfFold, info: DatasetInfo) -> Iterable[list]:
    """`predictions.csv` rows of one result (`results.PREDICTION_COLUMNS`)."""
    variant, emotion, seed, alpha = oof.key
    alpha_text = "" if alpha is None else repr(float(alpha))
    for i, row in enumerate(oof.rows):
        yield results_lib.prediction_row(
            variant=variant,
            emotion=emotion,
            seed=seed,
            alpha=alpha_text,
            fold=int(oof.fold[i]),
            utterance_id=info.ids[row],
            y_true=int(oof.y_true[i]),
            y_score=f"{oof.y_score[i]:.9g}",
            y_pred=int(oof.y_pred[i]),
            speaker_group=info.speaker_group[row],
            rater_group=info.rater_group[row],
        )


def write_predictions(
    path: pathlib.Path, results: Iterable[OutOfFold], info: DatasetInfo
) -> None:
    """Writes a `predictions.csv` (header + one row per run × utterance)."""
    with fileio.atomic_write(path) as f:
        writer = csv.writer(f)
        writer.writerow(
            results_lib.prediction_columns(
                info.speaker_attribute, info.rater_attribute
            )
        )
        for oof in results:
            writer.writerows(prediction_rows(oof, info))


def embeddings_path(workdir: pathlib.Path, key: Key) -> pathlib.Path:
    """`embeddings/<variant>_<emotion>_seed<k>[_alpha<a>].npz`."""
    variant, emotion, seed, alpha = key
    suffix = "" if alpha is None else f"_alpha{alpha:g}"
    return (
        workdir_lib.Layout(workdir).embeddings
        / f"{variant}_{emotion}_seed{seed}{suffix}.npz"
    )


def write_embeddings(
    workdir: pathlib.Path, oof: OutOfFold, info: DatasetInfo
) -> None:
    """Out-of-fold test embeddings of one result, for the Fig. 2 t-SNE.

    Arrays (N rows, sorted by utterance id): ``utterance_id`` str [N],
    ``embedding`` float32 [N, D], ``fold`` int64 [N] (the fold model that
    held the row out and embedded it: rows of different folds come from
    different models, whose embedding spaces are not aligned, so Fig. 2
    plots one fold's rows), ``speaker_group`` / ``rater_group`` str [N]
    and the two attribute names.
    """
    path = embeddings_path(workdir, oof.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_write(path, "wb") as f:
        np.savez(
            f,
            utterance_id=info.ids[oof.rows].astype(str),
            embedding=oof.embedding.astype(np.float32),
            fold=np.asarray(oof.fold, np.int64),
            speaker_group=info.speaker_group[oof.rows].astype(str),
            rater_group=info.rater_group[oof.rows].astype(str),
            speaker_attribute=np.array(info.speaker_attribute),
            rater_attribute=np.array(info.rater_attribute),
        )


# ------------------------------------------------------ final parameters


def params_path(workdir: pathlib.Path, variant: str) -> pathlib.Path:
    """`params/<variant>.npz`: the final parameters of a variant's runs."""
    return workdir_lib.Layout(workdir).params_file(variant)


def save_params(path: pathlib.Path, runs: list[RunSpec], params) -> None:
    """Writes the final parameters of `runs` (leaves [R, ...]) atomically.

    The file is a plain `.npz` (no pickle): one array per parameter, named
    by its path in the tree (`params/encoder/Dense_0/kernel`), and
    `run_specs`, a JSON list of the runs in the order of the leading axis.
    """
    flat = traverse_util.flatten_dict(params, sep="/")
    arrays = {f"params/{k}": np.asarray(v) for k, v in flat.items()}
    specs = json.dumps([dataclasses.asdict(r) for r in runs])
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_write(path, "wb") as f:
        np.savez(f, run_specs=np.asarray(specs), **arrays)


def load_params(path: pathlib.Path) -> tuple[list[RunSpec], dict]:
    """Reads `save_params`' file: (runs, parameter tree with [R, ...]).

    Raises:
      ValueError: the file is damaged or not one `save_params` wrote (the
        message says how to retrain that variant alone).
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            runs = [RunSpec(**r) for r in json.loads(str(f["run_specs"]))]
            flat = {
                k.removeprefix("params/"): f[k]
                for k in f.files
                if k.startswith("params/")
            }
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        EOFError,
        zipfile.BadZipFile,
    ) as e:
        raise _damaged(path, e) from None
    return runs, traverse_util.unflatten_dict(flat, sep="/")


def _damaged(path: pathlib.Path, error: BaseException) -> ValueError:
    variant = path.stem
    detail = (str(error).splitlines() or [""])[0]
    return ValueError(
        f"{path} is damaged or not a parameters file "
        f"({type(error).__name__}: {detail}); "
        f"to train {variant} again, delete it and "
        f"predictions/{variant}.csv, then run train (or main) with --resume."
    )


def params_for(
    runs: list[RunSpec], source_runs: list[RunSpec], source_params
) -> dict:
    """The source variant's parameters of each run's (emotion, fold, seed).

    Args:
      runs: the runs that need parameters (e.g. Proposed's).
      source_runs: the runs of the trained source variant (e.g. Fair_rat).
      source_params: their parameters, leaves [len(source_runs), ...].

    Returns:
      Parameters with leaves [len(runs), ...], row i from the source run
      with the same emotion, fold and seed as `runs[i]`.

    Raises:
      ValueError: a run has no source run (naming it).
    """
    index = {(r.emotion, r.fold, r.seed): i for i, r in enumerate(source_runs)}
    rows = []
    for r in runs:
        i = index.get((r.emotion, r.fold, r.seed))
        if i is None:
            raise ValueError(
                f"No trained {source_runs[0].variant if source_runs else '?'}"
                f" run for emotion={r.emotion}, fold={r.fold}, seed={r.seed}"
                f" (needed by {r.name})."
            )
        rows.append(i)
    rows = np.asarray(rows)
    return jax.tree.map(lambda x: np.asarray(x)[rows], source_params)


# -------------------------------------------------------------- α trace

ALPHA_BINS = results_lib.ALPHA_BINS
"""Fig. 3b's histogram: 20 bins of width 0.05 over [0, 1]."""


def trace_key(spec: RunSpec, term: str) -> str:
    """A run's key in alpha_trace.npz: `results.trace_key` of its spec."""
    return results_lib.trace_key(
        spec.variant, spec.emotion, spec.seed, spec.fold, term
    )


def write_alpha_trace(
    path: pathlib.Path, runs: list[RunSpec], trace: Mapping[str, np.ndarray]
) -> None:
    """Writes the traced terms of one variant's runs, every batch in order.

    One float32 array per run and term (`trace_key`). The file holds every
    α-tracing variant: the entries of other variants already in it are
    kept, this variant's are replaced.

    Args:
      path: the `.npz` to write (atomically).
      runs: R runs of one variant.
      trace: term (e.g. "alpha", "distance") -> [R, epochs × steps_per_epoch].
    """
    variants = {r.variant for r in runs}
    kept = {}
    if path.exists():
        kept = {
            k: v
            for k, v in results_lib.read_alpha_trace(path).items()
            if k.split("/")[0] not in variants
        }
    new = {
        trace_key(r, term): np.asarray(t, np.float32)
        for term, values in trace.items()
        for r, t in zip(runs, values, strict=True)
    }
    with fileio.atomic_write(path, "wb") as f:
        np.savez(
            f, **{k: np.asarray(v, np.float32) for k, v in kept.items()}, **new
        )


read_alpha_trace = results_lib.read_alpha_trace
"""The trace's reader lives with the results schema (JAX-free, shared
with the report)."""


# Fig. 3b's summary is derived from the trace alone: it lives with the
# results schema (JAX-free), so `report --recompute` can check it.
summarize_alpha_trace = results_lib.summarize_alpha_trace


def assemble(
    workdir: pathlib.Path,
    variants: tuple[str, ...],
    study,
    config_sha256: str,
) -> dict:
    """Joins the per-variant predictions into predictions.csv + results.json.

    Every metric in results.json is computed from predictions.csv by
    `results.runs_from_predictions`, so the two cannot disagree; the α
    histograms of Fig. 3b come from `alpha_trace.npz`. `config_sha256`
    (`workdir.config_digest` of `config.json`) stamps results.json so a
    reader can tell it belongs to the workdir's config.
    """
    layout = workdir_lib.Layout(workdir)
    combined = layout.predictions
    with fileio.atomic_write(combined) as out:
        for i, variant in enumerate(variants):
            part = layout.predictions_file(variant)
            with part.open(encoding="utf-8", newline="") as lines:
                header = next(lines)
                if i == 0:
                    out.write(header)
                shutil.copyfileobj(lines, out)
    alpha_trace = {}
    trace_path = layout.alpha_trace
    alpha_traced = [
        v for v in variants if "alpha" in variants_lib.get(v).traced
    ]
    if alpha_traced and trace_path.exists():
        alpha_trace = summarize_alpha_trace(trace_path, alpha_traced[0])
    study_sets = study.table1()
    study_sets["S1"]["per_group"] = results_lib.speaker_group_counts(combined)
    results = {
        "config_sha256": config_sha256,
        "study_sets": study_sets,
        "runs": results_lib.runs_from_predictions(combined),
        "alpha_trace": alpha_trace,
    }
    fileio.atomic_write_text(layout.results, json.dumps(results, indent=2))
    return results
