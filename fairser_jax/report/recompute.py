"""Recompute every run's metrics from ``predictions.csv`` and compare.

``results.json`` is a cache: each of its ``runs`` entries must follow from
the out-of-fold predictions in ``predictions.csv`` by the definitions in
:mod:`fairser_jax.results`. This module re-derives them and compares them
with what ``results.json`` records (the "every figure is recomputable"
check of ``python -m fairser_jax.report --recompute``).
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fairser_jax import variants as variants_lib
from fairser_jax import workdir as workdir_lib
from fairser_jax.constants import EMOTIONS
from fairser_jax.results import (
    RunKey,
    RunPredictions,
    format_key,
    metric_keys,
    read_predictions,
    run_key,
    run_metrics,
    runs_from_predictions,
    summarize_alpha_trace,
)

__all__ = [
    "ResultsMismatchError",
    "compare_runs",
    "check_study_sets",
    "load_results",
    "run_key",
    "runs_from_predictions",
    "verify_workdir",
]


class ResultsMismatchError(ValueError):
    """``results.json`` disagrees with a recomputation from predictions."""


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
        for m in metric_keys():
            if m not in old[key]:
                problems.append(
                    f"{format_key(key)}: results.json has no {m} (written "
                    "by an older release); `python -m fairser_jax.train "
                    "--resume` with the workdir's config rewrites it from "
                    "predictions.csv without retraining"
                )
                continue
            a, b = old[key][m], new[key][m]
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

    Each run's rows are S1 (its S2 rows carry a rater group), so a run of
    the ``e`` detector must have ``S1.n`` rows of which
    ``S1.per_class[e]`` are positive, and likewise for S2; the rows per
    speaker group (S1) and rater group (S2) must be ``per_group``'s.

    Args:
      runs: from :func:`read_predictions`.
      study_sets: ``results.json["study_sets"]``.

    Returns:
      One line per disagreement; empty when all counts match.
    """
    problems = []
    for run in runs:
        emotion = run.key[1]
        in_s2 = run.rater_group >= 0
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
        for name, side, codes in (
            ("S1", "speaker", run.speaker_group),
            ("S2", "rater", run.rater_group[in_s2]),
        ):
            per_group = study_sets.get(name, {}).get("per_group")
            if not isinstance(per_group, Mapping):
                continue  # S1's counts came with a later release
            # Codes index the sorted groups present (`read_predictions`).
            present = sorted(g for g, n in per_group.items() if n)
            counts = np.bincount(codes, minlength=len(present)).tolist()
            expected = [int(per_group[g]) for g in present]
            if counts != expected:
                problems.append(
                    f"{format_key(run.key)}: {name} rows per {side} group "
                    f"{dict(zip(present, counts, strict=False))} in "
                    f"predictions.csv but study_sets.{name}.per_group = "
                    f"{dict(per_group)}"
                )
    return problems


def check_alpha_trace(
    workdir: pathlib.Path, recorded: Mapping[str, Any] | None
) -> list[str]:
    """Checks ``results.json["alpha_trace"]`` (Fig. 3b's histograms and D
    statistics) against a summary of ``alpha_trace.npz``, when present.

    Returns:
      One line per differing number; empty when they agree.
    """
    path = workdir_lib.Layout(workdir).alpha_trace
    if not path.is_file():
        return []  # nothing to derive it from (e.g. results copied alone)
    derived = summarize_alpha_trace(path)
    problems: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k), b.get(k), f"{where}.{k}")
        elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
            if len(a) != len(b):
                problems.append(f"{where}: {len(b)} values, derived {len(a)}")
            for k, (x, y) in enumerate(zip(a, b, strict=False)):
                walk(x, y, f"{where}[{k}]")
        elif _is_number(a) and _is_number(b):
            if not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9):
                problems.append(f"{where}: {b} in results.json, derived {a}")
        elif a != b:
            problems.append(f"{where}: {b!r} in results.json, derived {a!r}")

    walk(derived, dict(recorded or {}), "alpha_trace")
    return problems


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


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
      ResultsMismatchError: runs, Table 1 counts (per class and, for S2,
        per rater group) or Fig. 3b's α summary disagree; the message
        lists every difference.
    """
    workdir = pathlib.Path(workdir)
    results = load_results(workdir)
    preds = read_predictions(workdir_lib.Layout(workdir).predictions)
    recomputed = [run_metrics(run) for run in preds]
    problems = compare_runs(recomputed, results.get("runs", []), atol=atol)
    problems += check_study_sets(preds, results.get("study_sets", {}))
    problems += check_alpha_trace(workdir, results.get("alpha_trace"))
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
    """Reads and sanity-checks ``workdir/results.json``.

    Raises:
      FileNotFoundError: no results.json (names the stage that writes it).
      ValueError: the file is not the results.json schema.
    """
    path = workdir_lib.Layout(workdir).results
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
        raise ValueError(f"{path}: expected an object with a 'runs' list.")
    study_sets = results.get("study_sets", {})
    if not isinstance(study_sets, dict) or not all(
        isinstance(v, dict) for v in study_sets.values()
    ):
        raise ValueError(
            f"{path}: study_sets must be an object of objects (S1, S2); "
            f"got {type(study_sets).__name__}. Rewrite results.json with "
            "python -m fairser_jax.train --resume."
        )
    config_path = path.with_name(workdir_lib.Layout.CONFIG)
    stamp = results.get("config_sha256")
    if stamp is not None and config_path.is_file():
        digest = workdir_lib.config_digest(config_path.read_text("utf-8"))
        if digest != stamp:
            raise ValueError(
                f"{path} was made under another config than {config_path} "
                "(a newer run started here and has not finished): finish it "
                "with --resume, or start over with --overwrite."
            )
    classes = tuple(
        results.get("study_sets", {}).get("S1", {}).get("per_class", EMOTIONS)
    )
    for i, run in enumerate(results.get("runs", [])):
        if not isinstance(run, dict):
            raise ValueError(
                f"{path}: runs[{i}] is {run!r}, not a run (an object with "
                "variant, emotion, seed and its metrics); rewrite results.json "
                "with python -m fairser_jax.train --resume."
            )
        missing = {"variant", "emotion", "seed"} - set(run)
        if missing:
            raise ValueError(f"{path}: runs[{i}] lacks {sorted(missing)}.")
        for key in metric_keys():
            value = run.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(
                    f"{path}: runs[{i}].{key} is {value!r}; a metric is a "
                    "number (or null where undefined)."
                )
        known = variants_lib.REGISTRY
        if run["variant"] not in known or run["emotion"] not in classes:
            raise ValueError(
                f"{path}: runs[{i}] has variant {run['variant']!r} / "
                f"emotion {run['emotion']!r}; expected one of {list(known)} / "
                f"{classes} (the study's classes)."
            )
    return results
