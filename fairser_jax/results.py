"""The results schema: ``predictions.csv`` columns and per-run metrics.

Below both the trainer (which writes ``predictions.csv``) and the report
(which reads it), this module defines what one row of the out-of-fold
predictions holds and how a run's F1, ΔSP_spk and ΔSP_rat follow from its
rows, with nothing but ``csv``, NumPy and :mod:`fairser_jax.metrics`.

Definitions (paper §2.2.3, evaluated per (variant, emotion, seed, alpha) on
the predictions pooled over the five leave-one-session-out folds):

- F1: weighted F1 of the binary detector over all rows of the run (S1).
- ΔSP_spk = |P(ŷ=1 | speaker M) − P(ŷ=1 | speaker F)| over all rows (S1);
  with k groups, the largest gap between any two groups (fairlearn's
  ``demographic_parity_difference``).
- ΔSP_rat: the same with the rater group, over the rows whose rater group
  is not empty (S2).

The two group columns are named after the attribute of each side,
``speaker_<attr>`` and ``rater_<attr>`` (``speaker_gender`` and
``rater_gender`` by default); their values are any non-empty text.

Beside the paper's ΔSP, two more group-fairness views on each side (same
rows, same groups; fairlearn's definitions, between groups, worst case):

- ΔEOd (``eod_spk``, ``eod_rat``): equalized-odds difference, the larger
  of the true-positive-rate and false-positive-rate gaps between groups.
- ΔEOpp (``eopp_spk``, ``eopp_rat``): equal-opportunity difference, the
  true-positive-rate gap between groups.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fairser_jax import metrics
from fairser_jax.constants import GENDER_CODE, in_paper_order

_FIXED_COLUMNS: tuple[str, ...] = (
    "variant",
    "emotion",
    "seed",
    "alpha",
    "fold",
    "utterance_id",
    "y_true",
    "y_score",
    "y_pred",
)

PREDICTION_COLUMNS: tuple[str, ...] = (
    *_FIXED_COLUMNS,
    "speaker_gender",
    "rater_gender",
)
"""Header of ``predictions.csv`` with the default attributes (gender)."""


PREDICTION_FIELDS: tuple[str, ...] = (
    *_FIXED_COLUMNS,
    "speaker_group",
    "rater_group",
)
"""The fields of a ``predictions.csv`` row, in column order: the fixed
columns, then the speaker's and the rater group's value, whose columns are
named after the attributes (`prediction_columns`)."""


def prediction_columns(
    speaker_attribute: str = "gender", rater_attribute: str = "gender"
) -> tuple[str, ...]:
    """Header of ``predictions.csv`` for the attributes of the two sides."""
    return (
        *_FIXED_COLUMNS,
        f"speaker_{speaker_attribute}",
        f"rater_{rater_attribute}",
    )


def prediction_row(**fields: Any) -> list[Any]:
    """One ``predictions.csv`` row from its fields, by name.

    Args:
      **fields: every name of `PREDICTION_FIELDS` (``variant``, ...,
        ``speaker_group``, ``rater_group``), as the cells to write.

    Returns:
      The cells in column order.

    Raises:
      ValueError: a field missing or unknown.
    """
    if set(fields) != set(PREDICTION_FIELDS):
        raise ValueError(
            f"a predictions.csv row has the fields {PREDICTION_FIELDS}; got "
            f"{tuple(fields)}."
        )
    return [fields[name] for name in PREDICTION_FIELDS]


def _field_index(header: Sequence[str]) -> dict[str, int]:
    """Field name -> its column in ``header`` (a checked header)."""
    index = {name: header.index(name) for name in _FIXED_COLUMNS}
    index["speaker_group"] = next(
        i for i, c in enumerate(header) if c.startswith("speaker_")
    )
    index["rater_group"] = next(
        i for i, c in enumerate(header) if c.startswith("rater_")
    )
    return index


SIDES = ("spk", "rat")
"""The two sides of a fairness view: speakers (over S1) and raters (S2)."""


@dataclasses.dataclass(frozen=True)
class Metric:
    """One per-run metric of ``results.json``, declared once.

    `run_metrics`, ``report --recompute`` and every table iterate
    `METRICS`; adding a metric is one `register_metric` plus its function.

    Attributes:
      key: the name in ``results.json``; a per-side metric is stored as
        ``<key>_spk`` (over S1, by speaker group) and ``<key>_rat`` (over
        the S2 rows, by rater group; None without S2 rows).
      display: its name in tables (``"ΔSP"``; a per-side metric gets the
        side appended: ``ΔSP_spk``).
      fn: ``(y_true [N], y_pred [N], groups [N]) -> float`` on binary
        arrays; a metric that is not per side ignores ``groups``.
      per_side: one value per side (a fairness view) or one over S1.
      what: the words Table 2's block title adds before "by speaker
        gender" (``"equalized odds "``).
      in_paper: the paper publishes it (Tables 2 and 3); the tables always
        show these, and the others when some run has them.
      percent: shown ×100 with 2 decimals (F1).
    """

    key: str
    display: str
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], float]
    per_side: bool = True
    what: str = ""
    in_paper: bool = False
    percent: bool = False

    def keys(self) -> tuple[str, ...]:
        """Its ``results.json`` keys."""
        if self.per_side:
            return tuple(f"{self.key}_{side}" for side in SIDES)
        return (self.key,)


METRICS: list[Metric] = [
    Metric(
        "f1",
        "F1 (%)",
        lambda y_true, y_pred, groups: metrics.weighted_f1(y_true, y_pred),
        per_side=False,
        in_paper=True,
        percent=True,
    ),
    Metric(
        "dsp",
        "ΔSP",
        lambda y_true, y_pred, groups: metrics.statistical_parity_difference(
            y_pred, groups
        ),
        in_paper=True,
    ),
    Metric(
        "eod", "ΔEOd", metrics.equalized_odds_difference, what="equalized odds "
    ),
    Metric(
        "eopp",
        "ΔEOpp",
        metrics.equal_opportunity_difference,
        what="equal opportunity ",
    ),
]
"""Every per-run metric, in the order of ``results.json`` and the tables:
F1 (weighted, paper §2.2.3), then the fairness views of both sides: ΔSP
(the paper's), ΔEOd and ΔEOpp (fairlearn's equalized-odds and
equal-opportunity differences; not in the paper)."""


def register_metric(metric: Metric) -> Metric:
    """Declares a new per-run metric (after the others)."""
    taken = {k for m in METRICS for k in (m.key, *m.keys())}
    if taken & {metric.key, *metric.keys()}:
        raise ValueError(f"metric {metric.key!r} is already declared.")
    METRICS.append(metric)
    return metric


def unregister_metric(key: str) -> None:
    """Removes a metric `register_metric` added."""
    METRICS[:] = [m for m in METRICS if m.key != key]


def metric_keys() -> tuple[str, ...]:
    """Per-run metric keys of ``results.json``, in order (``f1``,
    ``dsp_spk``, ``dsp_rat``, ``eod_spk``, ...)."""
    return tuple(k for m in METRICS for k in m.keys())


def metric_of(key: str) -> Metric | None:
    """The metric a ``results.json`` key belongs to (None if undeclared)."""
    for m in METRICS:
        if key in m.keys():
            return m
    return None


RunKey = tuple[str, str, int, float | None]
"""(variant, emotion, seed, alpha) — identifies one run."""

# Alphas are matched after rounding, so that "0.15" and
# 0.15000000000000002 name the same fixed-α run.
_ALPHA_DECIMALS = 9


@dataclasses.dataclass(frozen=True)
class RunPredictions:
    """The pooled out-of-fold predictions of one run, as NumPy arrays.

    Attributes:
      key: (variant, emotion, seed, alpha).
      y_true: int64 [N] binary target.
      y_pred: int64 [N] binary prediction.
      speaker_group: int64 [N] speaker group code (gender: F=0, M=1).
      rater_group: int64 [N] rater group code, -1 outside S2.
      first_line: line of ``predictions.csv`` where the run starts.
    """

    key: RunKey
    y_true: np.ndarray
    y_pred: np.ndarray
    speaker_group: np.ndarray
    rater_group: np.ndarray
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


def is_cell(
    run: Mapping[str, Any], variant: str, emotion: str, alpha: float | None
) -> bool:
    """Whether a ``results.json`` run belongs to the (variant, emotion[, α])
    cell of a table: any α when ``alpha`` is None, else that α after
    rounding (`_ALPHA_DECIMALS`)."""
    if run["variant"] != variant or run["emotion"] != emotion:
        return False
    return alpha is None or (
        run.get("alpha") is not None
        and round(float(run["alpha"]), _ALPHA_DECIMALS)
        == round(alpha, _ALPHA_DECIMALS)
    )


def format_key(key: RunKey) -> str:
    """Human-readable name of a run, used in error messages."""
    variant, emotion, seed, alpha = key
    text = f"variant={variant} emotion={emotion} seed={seed}"
    return text if alpha is None else f"{text} alpha={alpha:g}"


_BINARY = {"0": 0, "1": 1}


def _bad_value(where: str, column: str, value: str) -> ValueError:
    allowed = {
        "y_true": "0 or 1",
        "y_pred": "0 or 1 (sigmoid(logit) >= 0.5)",
    }.get(column, "a group (not empty)")
    return ValueError(
        f"{where}: column {column!r} must be {allowed}, got {value!r}."
    )


def read_predictions(csv_path: str | pathlib.Path) -> list[RunPredictions]:
    """Reads ``predictions.csv`` and groups its rows by run.

    Args:
      csv_path: file with the columns of :func:`prediction_columns` (any
        attribute names).

    Group values are coded by their position in the sorted values of their
    column over the whole file (binary gender: F=0, M=1); the metrics do
    not depend on the coding.

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
    columns: dict[RunKey, dict[str, list]] = {}
    seen: dict[RunKey, set[str]] = {}
    first_line: dict[RunKey, int] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not _is_header(header):
            raise ValueError(
                f"{path}:1: header must be "
                f"{','.join(_FIXED_COLUMNS)},speaker_<attribute>,"
                f"rater_<attribute> (e.g. {','.join(PREDICTION_COLUMNS)}); "
                f"got {'nothing' if header is None else ','.join(header)}."
            )
        at = _field_index(header)
        spk_col = header[at["speaker_group"]]
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(PREDICTION_COLUMNS):
                raise ValueError(
                    f"{path}:{line}: expected {len(PREDICTION_COLUMNS)} "
                    f"fields, got {len(row)}."
                )
            variant, emotion, seed_s, alpha_s, uid, y_true, y_pred = (
                row[at[name]]
                for name in (
                    "variant",
                    "emotion",
                    "seed",
                    "alpha",
                    "utterance_id",
                    "y_true",
                    "y_pred",
                )
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
            for name, value, out in (
                ("y_true", y_true, cols["yt"]),
                ("y_pred", y_pred, cols["yp"]),
            ):
                code = _BINARY.get(value)
                if code is None:
                    raise _bad_value(f"{path}:{line}", name, value)
                out.append(code)
            speaker, rater = row[at["speaker_group"]], row[at["rater_group"]]
            if not speaker:
                raise _bad_value(f"{path}:{line}", spk_col, speaker)
            cols["sg"].append(speaker)
            cols["rg"].append(rater)
    speaker_code = _coding(v for c in columns.values() for v in c["sg"])
    rater_code = {
        **_coding(v for c in columns.values() for v in c["rg"] if v),
        "": -1,
    }
    return [
        RunPredictions(
            key=key,
            y_true=np.asarray(c["yt"], np.int64),
            y_pred=np.asarray(c["yp"], np.int64),
            speaker_group=np.array(
                [speaker_code[v] for v in c["sg"]], np.int64
            ),
            rater_group=np.array([rater_code[v] for v in c["rg"]], np.int64),
            first_line=first_line[key],
        )
        for key, c in columns.items()
    ]


SMALL_GROUP = 10
"""A group with fewer utterances than this in its study set is named in a
warning and marked in the tables: one such group can move a side's parity
gaps on its own."""


def speaker_group_counts(csv_path: str | pathlib.Path) -> dict[str, int]:
    """S1 utterances per speaker group, sorted by group: the rows of the
    first run of ``predictions.csv`` (every run holds each S1 utterance
    once, out of fold)."""
    with pathlib.Path(csv_path).open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not _is_header(header):
            raise ValueError(f"{csv_path}:1: not a predictions.csv header.")
        at = _field_index(header)
        key_columns = [at[c] for c in ("variant", "emotion", "seed", "alpha")]
        counts: dict[str, int] = {}
        first = None
        for row in reader:
            if not row:
                continue
            key = [row[i] for i in key_columns]
            if first is None:
                first = key
            elif key != first:
                break
            group = row[at["speaker_group"]]
            counts[group] = counts.get(group, 0) + 1
    return dict(sorted(counts.items()))


def small_of(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The (group, utterances) of `counts` with fewer than `SMALL_GROUP`,
    smallest first; none when fewer than two groups have utterances (the
    side's gaps are then undefined, not fragile)."""
    present = {g: int(n) for g, n in counts.items() if int(n) > 0}
    if len(present) < 2:
        return []
    return sorted(
        ((g, n) for g, n in present.items() if n < SMALL_GROUP),
        key=lambda gn: (gn[1], gn[0]),
    )


def small_groups(
    study_sets: Mapping[str, Any],
) -> dict[str, list[tuple[str, int]]]:
    """`small_of` per side with any: ``"spk"`` for S1's speaker groups,
    ``"rat"`` for S2's rater groups (``study_sets.<set>.per_group``; a
    results.json of a release before S1 had them has none for S1)."""
    out = {}
    for side, name in (("spk", "S1"), ("rat", "S2")):
        small = small_of((study_sets.get(name) or {}).get("per_group") or {})
        if small:
            out[side] = small
    return out


def _is_header(header: list[str] | None) -> bool:
    return (
        header is not None
        and len(header) == len(PREDICTION_COLUMNS)
        and tuple(header[:9]) == _FIXED_COLUMNS
        and header[9].startswith("speaker_")
        and len(header[9]) > len("speaker_")
        and header[10].startswith("rater_")
        and len(header[10]) > len("rater_")
    )


def _coding(values) -> dict[str, int]:
    """Group value -> code: its rank among the sorted distinct values
    (binary gender: `GENDER_CODE`, F=0, M=1)."""
    distinct = sorted(set(values))
    if set(distinct) <= set(GENDER_CODE):
        return dict(GENDER_CODE)
    return {v: k for k, v in enumerate(distinct)}


def run_metrics(run: RunPredictions) -> dict[str, Any]:
    """Every metric of `METRICS` for one run (paper §2.2.3).

    Args:
      run: pooled out-of-fold predictions, N rows.

    Returns:
      A ``results.json``-style dict: variant, emotion, seed, alpha, then
      `metric_keys()` (f1, dsp_spk, dsp_rat, eod_spk, eod_rat, eopp_spk,
      eopp_rat, ...; a side's gaps None where fewer than two of its
      groups have rows: no S2 row, or S2 rated by one group only).
    """
    variant, emotion, seed, alpha = run.key
    in_s2 = run.rater_group >= 0
    sides = {
        "spk": (run.y_true, run.y_pred, run.speaker_group),
        "rat": (run.y_true[in_s2], run.y_pred[in_s2], run.rater_group[in_s2]),
    }
    # A gap between groups is undefined where fewer than two groups have
    # rows (no S2 row, or S2 rated by one group only): None, shown as "—".
    sides = {
        side: rows if len(np.unique(rows[2])) >= 2 else None
        for side, rows in sides.items()
    }
    out = {"variant": variant, "emotion": emotion, "seed": seed, "alpha": alpha}
    try:
        for metric in METRICS:
            if not metric.per_side:
                out[metric.key] = float(
                    metric.fn(run.y_true, run.y_pred, run.speaker_group)
                )
                continue
            for side in SIDES:
                rows = sides[side]
                out[f"{metric.key}_{side}"] = (
                    None if rows is None else float(metric.fn(*rows))
                )
    except ValueError as e:
        raise ValueError(
            f"predictions.csv, run {format_key(run.key)} (starting at line "
            f"{run.first_line}): {e}"
        ) from e
    return out


def runs_from_predictions(csv_path: str | pathlib.Path) -> list[dict]:
    """Recomputes ``results.json``'s ``runs`` from ``predictions.csv``.

    Args:
      csv_path: the ``predictions.csv`` of a workdir.

    Returns:
      One dict per (variant, emotion, seed, alpha) with keys variant,
      emotion, seed, alpha (None unless fixed α), f1 (weighted, over S1),
      dsp_spk, eod_spk, eopp_spk (over S1) and dsp_rat, eod_rat, eopp_rat
      (over the S2 rows; None if there are none), in order of first
      appearance in the file.
    """
    return [run_metrics(run) for run in read_predictions(csv_path)]


# ------------------------------------------------------------ α trace

# The traced terms of every batch of every α-tracing run (eq. 3), one
# float32 array per `trace_key`, are `workdir.Layout(w).alpha_trace`.

TRACE_TERMS: tuple[str, ...] = ("alpha", "distance")
"""What a two-sided run traces per batch: α and the distance D it came
from (`fairser_jax.train.distances`)."""

_ALPHA_TOLERANCE = 1e-6  # float32 rounding of α ∈ [0, 1]


def trace_key(
    variant: str, emotion: str, seed: int, fold: int, term: str
) -> str:
    """``"<variant>/<emotion>/seed<k>/fold<f>/<term>"``, a key of the trace."""
    return f"{variant}/{emotion}/seed{seed}/fold{fold}/{term}"


def _modern_key(key: str) -> str:
    """A key of an older file (``<emotion>/seed<k>/fold<f>``: Proposed's α
    only) in today's form; today's keys unchanged."""
    parts = key.split("/")
    if len(parts) == 3:
        return "/".join(["proposed", *parts, "alpha"])
    return key


def read_alpha_trace(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """An ``alpha_trace.npz`` as {:func:`trace_key`: float64 [batches]}.

    In file order. A file of an earlier release (keys
    ``<emotion>/seed<k>/fold<f>``, Proposed's α) is read with its keys in
    today's form.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: a key of another form, a value that is not finite, or an
        α outside [0, 1] (eq. 3 makes α a weight in [0, 1]); names the file
        and key.
    """
    path = pathlib.Path(path)
    with np.load(path, allow_pickle=False) as f:
        trace = {
            _modern_key(k): np.asarray(f[k], np.float64).ravel()
            for k in f.files
        }
    for k, v in trace.items():
        term = k.split("/")[-1]
        if len(k.split("/")) != 5 or term not in TRACE_TERMS:
            raise ValueError(
                f"{path}: key {k!r} is not "
                "<variant>/<emotion>/seed<k>/fold<f>/<alpha|distance>."
            )
        bad = ~np.isfinite(v)
        if term == "alpha":
            bad |= (v < -_ALPHA_TOLERANCE) | (v > 1 + _ALPHA_TOLERANCE)
        if bad.any():
            what = (
                "α outside [0, 1] (eq. 3)"
                if term == "alpha"
                else "non-finite D"
            )
            raise ValueError(
                f"{path}: {k!r} holds {what}, e.g. {v[bad][:3].tolist()}."
            )
    return trace


def trace_emotions(
    trace: Mapping[str, np.ndarray], variant: str = "proposed"
) -> tuple[str, ...]:
    """The emotions of ``variant`` in a trace, in file order."""
    return tuple(
        dict.fromkeys(
            k.split("/")[1] for k in trace if k.split("/")[0] == variant
        )
    )


def trace_runs(
    trace: Mapping[str, np.ndarray],
    emotion: str,
    variant: str = "proposed",
    term: str = "alpha",
) -> dict[str, np.ndarray]:
    """``{"seed<k>/fold<f>": [batches]}``: one term of every run of one
    detector of one variant, in file order."""
    out = {}
    for k, v in trace.items():
        var, emo, seed, fold, t = k.split("/")
        if (var, emo, t) == (variant, emotion, term):
            out[f"{seed}/{fold}"] = v
    return out


def alpha_values(
    trace: Mapping[str, np.ndarray],
    emotion: str,
    variant: str = "proposed",
    term: str = "alpha",
) -> tuple[np.ndarray, int]:
    """One traced term of every batch of every run of one detector.

    Args:
      trace: as :func:`read_alpha_trace` returns.
      emotion: the detector.
      variant: the α-tracing variant (Proposed).
      term: ``"alpha"`` or ``"distance"``.

    Returns:
      ``(values, num_runs)``: float64 [B] pooled over the runs (seeds ×
      folds), in the trace's order.
    """
    runs = trace_runs(trace, emotion, variant, term)
    if not runs:
        return np.zeros(0), 0
    values = np.concatenate(list(runs.values())).astype(np.float64)
    return values, len(runs)


ALPHA_BINS = 20
"""Bins of Fig. 3b's α histogram over [0, 1]."""


def summarize_alpha_trace(
    path: pathlib.Path, variant: str = "proposed"
) -> dict[str, dict]:
    """What Fig. 3b needs per emotion, for `results.json["alpha_trace"]`.

    Pools every batch of every seed and fold of one emotion of `variant`.

    Returns:
      `{emotion: {"bin_edges": [21], "counts": [20], "mean", "sd",
      "num_batches", "num_runs", "distance": {"mean", "sd", "cv", "min",
      "max"}, "corr_alpha_distance"}}` (SDs with ddof=0 over batches; the
      CV is SD / mean of D; the Pearson correlation of α with D over the
      pooled batches is None where either is constant). The D entries are
      absent for a trace written without D (older workdirs).
    """
    trace = read_alpha_trace(path)
    edges = np.linspace(0.0, 1.0, ALPHA_BINS + 1)
    out = {}
    emotions = trace_emotions(trace, variant)
    for emotion in in_paper_order(sorted(emotions)):
        values, num_runs = alpha_values(trace, emotion, variant)
        counts, _ = np.histogram(values, bins=edges)
        summary = {
            "bin_edges": [round(float(e), 6) for e in edges],
            "counts": [int(c) for c in counts],
            "mean": float(values.mean()),
            "sd": float(values.std()),
            "num_batches": int(values.size),
            "num_runs": num_runs,
        }
        d, _ = alpha_values(trace, emotion, variant, "distance")
        if d.size == values.size and d.size:
            mean = float(d.mean())
            summary["distance"] = {
                "mean": mean,
                "sd": float(d.std()),
                "cv": float(d.std() / mean) if mean > 0 else None,
                "min": float(d.min()),
                "max": float(d.max()),
            }
            constant = values.std() == 0 or d.std() == 0
            summary["corr_alpha_distance"] = (
                None if constant else float(np.corrcoef(values, d)[0, 1])
            )
        out[emotion] = summary
    return out
