"""Recompute every run's metrics from ``predictions.csv`` (SPEC §7, §8).

``results.json`` is a cache: each of its ``runs`` entries must follow from
the out-of-fold predictions in ``predictions.csv`` by the definitions of
SPEC §7. This module re-derives them with nothing but ``csv``, NumPy and
:mod:`fairser_jax.metrics`, and compares them with what ``results.json``
records (the "every figure is recomputable" check of
``python -m fairser_jax.report --recompute``).

Definitions (paper §2.2.3, evaluated per (variant, emotion, seed, alpha) on
the predictions pooled over the five leave-one-session-out folds):

- F1: weighted F1 of the binary detector over all rows of the run (S1).
- ΔSP_spk = |P(ŷ=1 | speaker M) − P(ŷ=1 | speaker F)| over all rows (S1).
- ΔSP_rat: the same with the rater-gender group, over the rows whose
  ``rater_gender`` is not empty (S2).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fairser_jax import metrics
from fairser_jax.constants import EMOTIONS, GENDER_CODE, VARIANTS

PREDICTION_COLUMNS: tuple[str, ...] = (
    "variant",
    "emotion",
    "seed",
    "alpha",
    "fold",
    "utterance_id",
    "y_true",
    "y_score",
    "y_pred",
    "speaker_gender",
    "rater_gender",
)
"""Exact header of ``predictions.csv`` (SPEC §8)."""

METRIC_KEYS: tuple[str, ...] = ("f1", "dsp_spk", "dsp_rat")

RunKey = tuple[str, str, int, float | None]
"""(variant, emotion, seed, alpha) — identifies one run."""

# Alphas are matched after rounding, so that "0.15" and
# 0.15000000000000002 name the same fixed-α run.
_ALPHA_DECIMALS = 9


class ResultsMismatchError(ValueError):
    """``results.json`` disagrees with a recomputation from predictions."""


@dataclasses.dataclass(frozen=True)
class RunPredictions:
    """The pooled out-of-fold predictions of one run, as NumPy arrays.

    Attributes:
      key: (variant, emotion, seed, alpha).
      y_true: int64 [N] binary target.
      y_pred: int64 [N] binary prediction.
      speaker_gender: int64 [N] speaker group, ``GENDER_CODE`` coded.
      rater_gender: int64 [N] rater-gender group, ``GENDER_CODE`` coded,
        -1 outside S2.
      first_line: line of ``predictions.csv`` where the run starts.
    """

    key: RunKey
    y_true: np.ndarray
    y_pred: np.ndarray
    speaker_gender: np.ndarray
    rater_gender: np.ndarray
    first_line: int


def run_key(run: Mapping[str, Any]) -> RunKey:
    """The (variant, emotion, seed, alpha) key of a ``results.json`` run."""
    alpha = run.get("alpha")
    return (
        str(run["variant"]),
        str(run["emotion"]),
        int(run["seed"]),
        None if alpha is None else round(float(alpha), _ALPHA_DECIMALS),
    )


def format_key(key: RunKey) -> str:
    """Human-readable name of a run, used in error messages."""
    variant, emotion, seed, alpha = key
    text = f"variant={variant} emotion={emotion} seed={seed}"
    return text if alpha is None else f"{text} alpha={alpha:g}"


_BINARY = {"0": 0, "1": 1}
_SPEAKER_GROUP = dict(GENDER_CODE)
_RATER_GROUP = {**GENDER_CODE, "": -1}


def _bad_value(where: str, column: str, value: str) -> ValueError:
    allowed = {
        "y_true": "0 or 1",
        "y_pred": "0 or 1 (sigmoid(logit) >= 0.5, SPEC §7)",
        "speaker_gender": "'M' or 'F'",
        "rater_gender": "'M', 'F' or empty (outside S2)",
    }[column]
    return ValueError(
        f"{where}: column {column!r} must be {allowed}, got {value!r}."
    )


def read_predictions(csv_path: str | pathlib.Path) -> list[RunPredictions]:
    """Reads ``predictions.csv`` and groups its rows by run.

    Args:
      csv_path: file with exactly the columns of :data:`PREDICTION_COLUMNS`.

    Returns:
      One :class:`RunPredictions` per (variant, emotion, seed, alpha), in
      order of first appearance in the file.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: wrong header, a malformed value (the message names the
        file, line and column), or an utterance listed twice in one run.
    """
    path = pathlib.Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; `python -m fairser_jax.train` writes "
            "predictions.csv into its --workdir."
        )
    columns: dict[RunKey, dict[str, list[int]]] = {}
    seen: dict[RunKey, set[str]] = {}
    first_line: dict[RunKey, int] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != PREDICTION_COLUMNS:
            raise ValueError(
                f"{path}:1: header must be exactly "
                f"{','.join(PREDICTION_COLUMNS)}; got "
                f"{'nothing' if header is None else ','.join(header)}."
            )
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(PREDICTION_COLUMNS):
                raise ValueError(
                    f"{path}:{line}: expected {len(PREDICTION_COLUMNS)} "
                    f"fields, got {len(row)}."
                )
            (variant, emotion, seed_s, alpha_s, _, uid, y_true, _, y_pred) = (
                row[:9]
            )
            try:
                seed = int(seed_s)
                alpha = None if alpha_s == "" else float(alpha_s)
            except ValueError as e:
                raise ValueError(
                    f"{path}:{line}: seed must be an integer and alpha a "
                    f"number or empty ({e})."
                ) from None
            if alpha is not None and not math.isfinite(alpha):
                raise ValueError(f"{path}:{line}: alpha must be finite.")
            key: RunKey = (
                variant,
                emotion,
                seed,
                None if alpha is None else round(alpha, _ALPHA_DECIMALS),
            )
            cols = columns.get(key)
            if cols is None:
                cols = columns[key] = {c: [] for c in ("yt", "yp", "sg", "rg")}
                seen[key] = set()
                first_line[key] = line
            if uid in seen[key]:
                raise ValueError(
                    f"{path}:{line}: utterance {uid!r} appears twice in run "
                    f"{format_key(key)}; out-of-fold predictions hold one "
                    "row per utterance and run."
                )
            seen[key].add(uid)
            for name, value, table, out in (
                ("y_true", y_true, _BINARY, cols["yt"]),
                ("y_pred", y_pred, _BINARY, cols["yp"]),
                ("speaker_gender", row[9], _SPEAKER_GROUP, cols["sg"]),
                ("rater_gender", row[10], _RATER_GROUP, cols["rg"]),
            ):
                code = table.get(value)
                if code is None:
                    raise _bad_value(f"{path}:{line}", name, value)
                out.append(code)
    return [
        RunPredictions(
            key=key,
            y_true=np.asarray(c["yt"], np.int64),
            y_pred=np.asarray(c["yp"], np.int64),
            speaker_gender=np.asarray(c["sg"], np.int64),
            rater_gender=np.asarray(c["rg"], np.int64),
            first_line=first_line[key],
        )
        for key, c in columns.items()
    ]


def run_metrics(run: RunPredictions) -> dict[str, Any]:
    """F1, ΔSP_spk and ΔSP_rat of one run (SPEC §7, paper §2.2.3).

    Args:
      run: pooled out-of-fold predictions, N rows.

    Returns:
      A ``results.json``-style dict: variant, emotion, seed, alpha, f1,
      dsp_spk, dsp_rat (None when the run has no S2 row).
    """
    variant, emotion, seed, alpha = run.key
    in_s2 = run.rater_gender >= 0
    try:
        f1 = metrics.weighted_f1(run.y_true, run.y_pred)
        dsp_spk = metrics.statistical_parity_difference(
            run.y_pred, run.speaker_gender
        )
        dsp_rat = (
            metrics.statistical_parity_difference(
                run.y_pred[in_s2], run.rater_gender[in_s2]
            )
            if in_s2.any()
            else None
        )
    except ValueError as e:
        raise ValueError(
            f"predictions.csv, run {format_key(run.key)} (starting at line "
            f"{run.first_line}): {e}"
        ) from e
    return {
        "variant": variant,
        "emotion": emotion,
        "seed": seed,
        "alpha": alpha,
        "f1": float(f1),
        "dsp_spk": float(dsp_spk),
        "dsp_rat": None if dsp_rat is None else float(dsp_rat),
    }


def runs_from_predictions(csv_path: str | pathlib.Path) -> list[dict]:
    """Recomputes ``results.json``'s ``runs`` from ``predictions.csv``.

    Args:
      csv_path: the ``predictions.csv`` of a workdir (SPEC §8).

    Returns:
      One dict per (variant, emotion, seed, alpha) with keys variant,
      emotion, seed, alpha (None unless fixed α), f1 (weighted, over S1),
      dsp_spk (over S1) and dsp_rat (over the S2 rows; None if there are
      none), in order of first appearance in the file.
    """
    return [run_metrics(run) for run in read_predictions(csv_path)]


def _close(a: Any, b: Any, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= atol


def compare_runs(
    recomputed: Iterable[Mapping[str, Any]],
    recorded: Iterable[Mapping[str, Any]],
    *,
    atol: float = 1e-9,
) -> list[str]:
    """Differences between two lists of runs, as readable lines.

    Args:
      recomputed: runs from :func:`runs_from_predictions`.
      recorded: the ``runs`` list of ``results.json``.
      atol: largest absolute difference tolerated per metric.

    Returns:
      One line per missing/extra run or per metric that differs by more
      than ``atol``; empty when the two agree.
    """
    new = {run_key(r): r for r in recomputed}
    old: dict[RunKey, Mapping[str, Any]] = {}
    problems = []
    for r in recorded:
        key = run_key(r)
        if key in old:
            problems.append(f"{format_key(key)}: listed twice in results.json")
        old[key] = r
    for key in old.keys() - new.keys():
        problems.append(
            f"{format_key(key)}: in results.json but has no row in "
            "predictions.csv"
        )
    for key in new.keys() - old.keys():
        problems.append(
            f"{format_key(key)}: in predictions.csv but missing from "
            "results.json"
        )
    for key in new.keys() & old.keys():
        for m in METRIC_KEYS:
            a, b = old[key].get(m), new[key][m]
            if not _close(a, b, atol):
                problems.append(
                    f"{format_key(key)}: {m} is {a!r} in results.json but "
                    f"{b!r} recomputed from predictions.csv"
                )
    return sorted(problems)


def check_study_sets(
    runs: Sequence[RunPredictions], study_sets: Mapping[str, Any]
) -> list[str]:
    """Checks Table 1 counts against the predictions of every run.

    Each run's rows are S1 (its S2 rows carry a rater gender), so a run of
    the ``e`` detector must have ``S1.n`` rows of which
    ``S1.per_class[e]`` are positive, and likewise for S2.

    Args:
      runs: from :func:`read_predictions`.
      study_sets: ``results.json["study_sets"]``.

    Returns:
      One line per disagreement; empty when all counts match.
    """
    problems = []
    for run in runs:
        emotion = run.key[1]
        in_s2 = run.rater_gender >= 0
        for name, mask in (("S1", np.ones_like(in_s2)), ("S2", in_s2)):
            table = study_sets.get(name)
            if table is None:
                continue
            n = int(mask.sum())
            positives = int(run.y_true[mask].sum())
            if "n" in table and n != int(table["n"]):
                problems.append(
                    f"{format_key(run.key)}: {n} {name} rows in "
                    f"predictions.csv but study_sets.{name}.n = {table['n']}"
                )
            per_class = table.get("per_class", {})
            if emotion in per_class and positives != int(per_class[emotion]):
                problems.append(
                    f"{format_key(run.key)}: {positives} positive {name} rows"
                    f" but study_sets.{name}.per_class.{emotion} = "
                    f"{per_class[emotion]}"
                )
    return problems


def verify_workdir(
    workdir: str | pathlib.Path, *, atol: float = 1e-9
) -> list[dict]:
    """Recomputes a workdir's runs and fails loudly if results.json differs.

    Args:
      workdir: directory holding ``results.json`` and ``predictions.csv``.
      atol: largest absolute difference tolerated per metric.

    Returns:
      The recomputed runs (as :func:`runs_from_predictions`).

    Raises:
      FileNotFoundError: a file is missing.
      ResultsMismatchError: runs or Table 1 counts disagree; the message
        lists every difference.
    """
    workdir = pathlib.Path(workdir)
    results = load_results(workdir)
    preds = read_predictions(workdir / "predictions.csv")
    recomputed = [run_metrics(run) for run in preds]
    problems = compare_runs(recomputed, results.get("runs", []), atol=atol)
    problems += check_study_sets(preds, results.get("study_sets", {}))
    if problems:
        shown = "\n  ".join(problems[:50])
        more = len(problems) - 50
        raise ResultsMismatchError(
            f"{workdir / 'results.json'} disagrees with a recomputation from "
            f"{workdir / 'predictions.csv'} ({len(problems)} difference(s), "
            f"tolerance {atol:g}):\n  {shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
            + "\nRe-run `python -m fairser_jax.train` on this workdir, or "
            "find which file was edited by hand."
        )
    return recomputed


def load_results(workdir: str | pathlib.Path) -> dict[str, Any]:
    """Reads and sanity-checks ``workdir/results.json`` (SPEC §8).

    Raises:
      FileNotFoundError: no results.json (names the stage that writes it).
      ValueError: the file is not the SPEC §8 schema.
    """
    path = pathlib.Path(workdir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no results.json in this workdir. It is written by the "
            "training stage: run `python -m fairser_jax.train "
            f"--workdir={pathlib.Path(workdir)}` (or the whole pipeline, "
            "`python -m fairser_jax.main`) first."
        )
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}:{e.lineno}: not valid JSON ({e.msg})."
        ) from None
    if not isinstance(results, dict) or not isinstance(
        results.get("runs", []), list
    ):
        raise ValueError(
            f"{path}: expected an object with a 'runs' list (SPEC §8)."
        )
    for i, run in enumerate(results.get("runs", [])):
        missing = {"variant", "emotion", "seed"} - set(run)
        if missing:
            raise ValueError(
                f"{path}: runs[{i}] lacks {sorted(missing)} (SPEC §8)."
            )
        if run["variant"] not in VARIANTS or run["emotion"] not in EMOTIONS:
            raise ValueError(
                f"{path}: runs[{i}] has variant {run['variant']!r} / "
                f"emotion {run['emotion']!r}; expected one of {VARIANTS} / "
                f"{EMOTIONS}."
            )
    return results
