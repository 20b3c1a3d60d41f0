"""Analogues of the paper's Tables 1-3 and the workdir report.

:func:`write_report` turns a workdir (``config.json``, ``results.json``,
``embeddings/``, ``training/``) into ``report.md`` with

- Table 1: emotion distribution of the study sets S1 and S2,
- Table 2: F1 (%), ΔSP_spk and ΔSP_rat of DNN, Fair_spk and Fair_rat per
  emotion, one block per metric, mean ± SD over seeds, intra-fairness in
  bold and inter-fairness in italics with a dagger (paper §2.2.3),
- Table 3 (when Basic / Proposed runs exist): F1, ΔSP_spk, ΔSP_rat
  (mean ± SD), the product and |difference| of the mean parities,
- the fixed-α sweep behind Fig. 3a (when fixed-α runs exist),
- links to the figures of :mod:`fairser_jax.report.figures` (PNG and PDF),

each next to the paper's published numbers for reference. Only variants and
emotions that have runs appear; nothing is filled in for absent ones.

Every table is a :class:`Table` of :class:`Cell` s, rendered three ways:
Markdown in ``report.md``, and ``tables/<name>.csv`` (plain numbers, mean
and SD in separate columns) and ``tables/<name>.tex`` (booktabs) for
pasting into a paper.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fairser_jax import fileio, metrics
from fairser_jax import results as results_lib
from fairser_jax import variants as variants_lib
from fairser_jax import workdir as workdir_lib
from fairser_jax.constants import in_paper_order
from fairser_jax.report import claims as claims_lib
from fairser_jax.report import figures as figures_lib
from fairser_jax.report import recompute
from fairser_jax.report.render import (  # noqa: F401 (re-exported)
    MISSING,
    Cell,
    Table,
    _row,
    latex_escape,
    markdown_table,
)
from fairser_jax.results import is_cell, run_key

PAPER = (
    'Chien, Upadhyay & Lee, "Balancing Speaker-Rater Fairness for '
    'Gender-Neutral Speech Emotion Recognition", ICASSP 2024'
)

# Published numbers, transcribed from the paper (Tables 1-3), used only
# as a reference next to ours.
PAPER_TABLE1: dict[str, dict[str, Any]] = {
    "S1": {
        "n": 7362,
        "per_class": {
            "neutral": 1706,
            "happiness": 1633,
            "anger": 1099,
            "sadness": 1080,
            "frustration": 1844,
        },
    },
    "S2": {
        "n": 4324,
        "per_class": {
            "neutral": 1323,
            "happiness": 446,
            "anger": 628,
            "sadness": 628,
            "frustration": 1299,
        },
    },
}


def fairness_view(variant: str, metric: str) -> str | None:
    """Cross-reference scheme of paper §2.2.3 for a one-sided model.

    Returns:
      "intra" when `metric` (a fairness view of one side: ``dsp_spk``,
      ``eod_rat``, ...) judges `variant` from the side it is trained to be
      fair on (`Variant.intra_fair`), "inter" from the other side, None for
      F1, unconstrained and two-sided models.
    """
    spec = variants_lib.REGISTRY.get(variant)
    side = spec.intra_fair if spec else None
    metric_side = metric.rpartition("_")[2]
    if side not in results_lib.SIDES or metric_side not in results_lib.SIDES:
        return None
    return "intra" if metric_side == side else "inter"


def metric_headers() -> dict[str, str]:
    """Per-run metric key -> its table header, for every metric of
    `results.METRICS` (``f1`` → ``F1 (%)``, ``dsp_spk`` → ``ΔSP_spk``,
    ...): the paper's (F1, ΔSP), then the equalized-odds and
    equal-opportunity differences (not in the paper), then any declared
    since."""
    out = {}
    for m in results_lib.METRICS:
        for key in m.keys():
            side = key.removeprefix(m.key)
            out[key] = m.display + side
    return out


def paper_metrics() -> tuple[str, ...]:
    """The metrics the paper publishes (Tables 2 and 3): F1, ΔSP."""
    return tuple(k for m in results_lib.METRICS if m.in_paper for k in m.keys())


def block_title(key: str) -> str:
    """Table 2's title of one metric block (``ΔSP_spk (S1, by speaker
    gender)``); blocks are rows = models (ours, then the paper's), columns
    = emotions."""
    m = results_lib.metric_of(key)
    if m is None or not m.per_side:
        return metric_headers().get(key, key)
    if key.endswith("_spk"):
        return f"{m.display}_spk (S1, {m.what}by speaker gender)"
    return f"{m.display}_rat (S2, {m.what}by rater-gender group)"


def reported_metrics(runs: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """`metric_headers()` keys to show: the paper's always, the others
    when some run carries them (a `results.json` of an older release has
    none)."""
    paper = paper_metrics()
    return tuple(
        m
        for m in metric_headers()
        if m in paper or any(r.get(m) is not None for r in runs)
    )


def _percent(metric: str) -> bool:
    m = results_lib.metric_of(metric)
    return bool(m and m.percent)


def _digits(metric: str) -> int:
    return 2 if _percent(metric) else 3


SIGNIFICANT_DIGITS = 2
"""Our parity cells (ΔSP, ΔEOd, ΔEOpp, their products and differences)
keep at least this many significant digits (3 decimals otherwise); F1 (%)
and the paper's numbers are printed as usual."""


def _sig(metric: str) -> int | None:
    return None if _percent(metric) else SIGNIFICANT_DIGITS


def _scale(metric: str) -> float:
    return 100.0 if _percent(metric) else 1.0


def _present(
    runs: Sequence[Mapping[str, Any]], variants: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Variants (given order) and emotions (paper order) that have runs."""
    have_v = {r["variant"] for r in runs}
    vs = [v for v in variants if v in have_v]
    return vs, in_paper_order(r["emotion"] for r in runs if r["variant"] in vs)


def seed_values(
    runs: Sequence[Mapping[str, Any]],
    variant: str,
    emotion: str,
    metric: str,
    *,
    alpha: float | None = None,
) -> list[float]:
    """One value of ``metric`` per seed of a (variant, emotion[, α]) cell.

    Runs whose metric is None (e.g. ΔSP_rat of a run without S2 samples)
    are left out. Values are in the units of ``results.json`` (F1 as a
    fraction).
    """
    out = []
    for r in sorted(runs, key=lambda r: int(r["seed"])):
        if not is_cell(r, variant, emotion, alpha):
            continue
        if r.get(metric) is not None:
            out.append(float(r[metric]))
    return out


def summarize(
    runs: Sequence[Mapping[str, Any]],
    variant: str,
    emotion: str,
    metric: str,
) -> tuple[float, float, int] | None:
    """(mean, SD, number of seeds) of one cell, F1 in %; None if empty."""
    vals = seed_values(runs, variant, emotion, metric)
    if not vals:
        return None
    mean, sd = metrics.mean_sd(vals)
    return mean * _scale(metric), sd * _scale(metric), len(vals)


def seed_products(
    runs: Sequence[Mapping[str, Any]],
    variant: str,
    emotion: str,
    *,
    alpha: float | None = None,
) -> np.ndarray:
    """ΔSP_spk × ΔSP_rat of each run of a (variant, emotion[, α]) cell.

    Runs without a ΔSP_rat (no S2 row) are left out.
    """
    return figures_lib.run_products(
        [
            r
            for r in runs
            if r["variant"] == variant
            and r["emotion"] == emotion
            and (
                alpha is None
                or (
                    r.get("alpha") is not None
                    and round(float(r["alpha"]), 9) == round(alpha, 9)
                )
            )
        ]
    )


def _product_cell(
    runs: Sequence[Mapping[str, Any]],
    variant: str,
    emotion: str,
    alpha: float | None = None,
) -> Cell:
    """Mean ± SD over seeds of the per-seed ΔSP_spk × ΔSP_rat."""
    products = seed_products(runs, variant, emotion, alpha=alpha)
    if not products.size:
        return Cell(None)
    mean, sd = metrics.mean_sd(products)
    return Cell(mean, sd, digits=3, sig=SIGNIFICANT_DIGITS)


def _cell(
    runs: Sequence[Mapping[str, Any]],
    variant: str,
    emotion: str,
    metric: str,
    *,
    view: str | None = None,
) -> Cell:
    s = summarize(runs, variant, emotion, metric)
    if s is None:
        return Cell(None)
    return Cell(s[0], s[1], digits=_digits(metric), view=view, sig=_sig(metric))


def _seed_note(
    runs: Sequence[Mapping[str, Any]], variants: Sequence[str]
) -> str:
    parts = []
    for v in variants:
        seeds = sorted({int(r["seed"]) for r in runs if r["variant"] == v})
        parts.append(
            f"{variants_lib.display_name(v)}: {len(seeds)} ({_ranges(seeds)})"
        )
    return "Seeds per model: " + "; ".join(parts) + "."


def _ranges(values: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` → ``"0–2, 5"``."""
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(str(v) if v == start else f"{start}–{v}")
            start = None
    return ", ".join(out)


# ----------------------------------------------------------------- Table 1


def table1(study_sets: Mapping[str, Any]) -> Table | None:
    """Table 1 analogue: S1/S2 sizes and per-class counts, plus the paper's.

    Args:
      study_sets: ``results.json["study_sets"]`` =
        ``{"S1": {"n": int, "per_class": {emotion: int}}, "S2": ...}``.

    Returns:
      Rows "S1 (ours)", "S2 (ours)", then "S1 (paper)", "S2 (paper)";
      None when ``study_sets`` is empty.
    """
    sets = [s for s in ("S1", "S2") if s in study_sets]
    if not sets:
        return None
    emotions = in_paper_order(
        e for s in sets for e in study_sets[s].get("per_class", {})
    )
    header = ("Set", "Overall") + tuple(e.capitalize() for e in emotions)
    rows = []
    for s in sets:
        per_class = study_sets[s].get("per_class", {})
        rows.append(
            (Cell(f"{s} (ours)"), Cell(study_sets[s].get("n")))
            + tuple(Cell(per_class.get(e)) for e in emotions)
        )
    for s in sets:
        paper = PAPER_TABLE1[s]
        rows.append(
            (Cell(f"{s} (paper)"), Cell(paper["n"]))
            + tuple(Cell(paper["per_class"].get(e)) for e in emotions)
        )
    return Table(
        name="table1",
        title="Table 1: emotion distribution of the study sets S1 and S2 "
        "(ours, then the paper's)",
        header=header,
        rows=tuple(rows),
        paired=(False,) * len(header),
        align=("l",) + ("r",) * (len(header) - 1),
        breaks=(len(sets),),
    )


# ----------------------------------------------------------------- Table 2


TABLE2_LEGEND = (
    "**Bold**: intra-fairness (each one-sided model judged from its own "
    "viewpoint: ΔSP_spk of Fair_spk, ΔSP_rat of Fair_rat). *Italic*†: "
    "inter-fairness (judged from the other viewpoint: ΔSP_rat of Fair_spk, "
    "ΔSP_spk of Fair_rat). DNN is the unconstrained reference. ΔSP_spk is "
    "over S1 by speaker gender, ΔSP_rat over S2 by rater-gender group; "
    "lower is fairer (ideal 0)."
)

OTHER_VIEWS_NOTE = (
    "The paper reports F1 and ΔSP only; ΔEOd is fairlearn's "
    "equalized-odds difference (the larger of the true- and "
    "false-positive-rate gaps between groups), ΔEOpp its equal-opportunity "
    "difference (the true-positive-rate gap). "
)

_SAME = 1e-12  # ΔEOd and ΔEOpp of a run count as equal below this


def eod_eopp_note(runs: Sequence[Mapping[str, Any]]) -> str | None:
    """Why ΔEOd often equals ΔEOpp, and how often it does in ``runs``.

    With fairlearn's between-group, worst-case definitions, ΔEOd =
    max(TPR gap, FPR gap) and ΔEOpp = TPR gap (the gaps of the binary
    detector's true- and false-positive rates between the groups), so
    ΔEOd >= ΔEOpp always, equal exactly when the FPR gap is at most the
    TPR gap: identical cells are not a copy error.

    Returns:
      The note (one paragraph), with per side the runs where the two agree
      to 1e-12; None when no run carries both.
    """
    counts = []
    for side, where in (
        ("spk", "speaker side (S1)"),
        ("rat", "rater side (S2)"),
    ):
        pairs = [
            (float(r[f"eod_{side}"]), float(r[f"eopp_{side}"]))
            for r in runs
            if r.get(f"eod_{side}") is not None
            and r.get(f"eopp_{side}") is not None
        ]
        if pairs:
            same = sum(abs(a - b) <= _SAME for a, b in pairs)
            counts.append(f"{same} of {len(pairs)} runs on the {where}")
    if not counts:
        return None
    return (
        "**Why ΔEOd often equals ΔEOpp.** ΔEOd = max(TPR gap, FPR gap) and "
        "ΔEOpp = TPR gap (true- and false-positive-rate gaps of the binary "
        "detector between the groups, worst case), so ΔEOd ≥ ΔEOpp always, "
        "with equality exactly when the FPR gap is at most the TPR gap; "
        "equal cells are not a copy error. Of this workdir's runs, "
        "ΔEOd = ΔEOpp in " + " and ".join(counts) + "."
    )


def paper_table2_rows(
    variants: Sequence[str], emotions: Sequence[str], metric: str
) -> list[tuple[Cell, ...]]:
    """The paper's Table 2 values of one metric, one row per variant.

    Rows are labelled ``"<model> (paper)"`` and carry the same intra/inter
    marks as ours; F1 in % with 2 decimals, ΔSP with 3 (as printed).
    """
    if metric not in paper_metrics():
        return []
    return [
        (Cell(f"{variants_lib.display_name(v)} (paper)"),)
        + tuple(
            Cell(
                # A class or variant the paper has no number for: "—".
                variants_lib.paper_value(v, e, metric),
                digits=_digits(metric),
                view=fairness_view(v, metric),
            )
            for e in emotions
        )
        for v in variants
    ]


def table2(runs: Sequence[Mapping[str, Any]], metric: str) -> Table | None:
    """One metric of the Table 2 analogue: one-sided models per emotion.

    Rows: DNN, Fair_spk, Fair_rat (those with runs) as mean ± SD over
    seeds, then the paper's published values of the same cells. Columns:
    the emotions with runs. Intra-fairness cells are bold, inter-fairness
    cells italic with a dagger (paper §2.2.3).

    Args:
      runs: ``results.json["runs"]``.
      metric: a key of `metric_headers()` (``"f1"`` in %); the paper's
        rows are added for the metrics it publishes (`paper_metrics()`).

    Returns:
      Table ``table2_<metric>``, or None when none of the three variants
      has runs.
    """
    variants, emotions = _present(runs, variants_lib.in_table(2))
    if not variants:
        return None
    ours = [
        (Cell(variants_lib.display_name(v)),)
        + tuple(
            _cell(runs, v, e, metric, view=fairness_view(v, metric))
            for e in emotions
        )
        for v in variants
    ]
    header = ("Model",) + tuple(e.capitalize() for e in emotions)
    paper = paper_table2_rows(variants, emotions, metric)
    return Table(
        name=f"table2_{metric}",
        title=f"Table 2, {block_title(metric)}: one-sided models, "
        "mean ± SD over seeds (ours)"
        + (", then the paper's values" if paper else "; not in the paper"),
        header=header,
        rows=tuple(ours + paper),
        paired=(False,) + (True,) * len(emotions),
        align=("l",) + ("r",) * len(emotions),
        breaks=(len(ours),) if paper else (),
    )


# ----------------------------------------------------------------- Table 3


_TABLE3_EXTRA_ROWS: tuple[tuple[str, str], ...] = (
    ("product", "ΔSP_spk × ΔSP_rat"),
    ("gap", "|ΔSP_spk − ΔSP_rat|"),
    ("seed_product", "ΔSP_spk × ΔSP_rat per seed"),
)


def table3_rows() -> tuple[tuple[str, str], ...]:
    """Table 3's row blocks, (key, label): every per-run metric, then the
    product and gap of the two ΔSP and the per-seed product."""
    return tuple(metric_headers().items()) + _TABLE3_EXTRA_ROWS


def _table3_value(
    runs: Sequence[Mapping[str, Any]], variant: str, emotion: str, row: str
) -> Cell:
    if results_lib.metric_of(row) is not None:
        return _cell(runs, variant, emotion, row)
    if row == "seed_product":
        return _product_cell(runs, variant, emotion)
    spk = summarize(runs, variant, emotion, "dsp_spk")
    rat = summarize(runs, variant, emotion, "dsp_rat")
    if spk is None or rat is None:
        return Cell(None)
    fn = metrics.parity_product if row == "product" else metrics.parity_gap
    return Cell(float(fn(spk[0], rat[0])), digits=3, sig=SIGNIFICANT_DIGITS)


def _table3_layout(
    name: str,
    title: str,
    emotions: Sequence[str],
    rows: Sequence[tuple[Cell, ...]],
    breaks: Sequence[int],
) -> Table:
    return Table(
        name=name,
        title=title,
        header=("Metric", "Model") + tuple(e.capitalize() for e in emotions),
        rows=tuple(rows),
        paired=(False, False) + (True,) * len(emotions),
        align=("l", "l") + ("r",) * len(emotions),
        breaks=tuple(breaks),
    )


def table3(runs: Sequence[Mapping[str, Any]]) -> Table | None:
    """Table 3 analogue: Basic vs Proposed, per emotion.

    Rows: F1 (%), ΔSP_spk, ΔSP_rat as mean ± SD over seeds, then
    ΔSP_spk × ΔSP_rat and |ΔSP_spk − ΔSP_rat| of the two means (as the
    paper's numbers are: e.g. Basic Neutral 0.365 × 0.525 = 0.192), then
    the mean ± SD over seeds of each seed's own product (the stability the
    paper's §3.2 discusses; not published).

    Returns:
      Table ``table3``, or None when neither Basic nor Proposed has runs.
    """
    variants, emotions = _present(runs, variants_lib.in_table(3))
    if not variants:
        return None
    shown = reported_metrics(runs)
    rows = [
        (Cell(label), Cell(variants_lib.display_name(v)))
        + tuple(_table3_value(runs, v, e, key) for e in emotions)
        for key, label in table3_rows()
        if key in shown or results_lib.metric_of(key) is None
        for v in variants
    ]
    return _table3_layout(
        "table3",
        "Table 3: two-sided models, Basic vs Proposed (ours); F1 and ΔSP "
        "mean ± SD over seeds, product and |difference| of the means",
        emotions,
        rows,
        range(0, len(rows), len(variants)),
    )


def paper_table3(runs: Sequence[Mapping[str, Any]]) -> Table | None:
    """The paper's Table 3 for the variants and emotions we have that it
    publishes (None when there are none)."""
    variants, emotions = _present(runs, variants_lib.in_table(3))
    variants = [v for v in variants if variants_lib.get(v).paper]
    emotions = [
        e
        for e in emotions
        if all(e in variants_lib.get(v).paper for v in variants)
    ]
    if not variants or not emotions:
        return None
    rows = []
    published = {
        key
        for v in variants
        for e in emotions
        for key in variants_lib.get(v).paper[e]
    }
    for key, label in table3_rows():
        if key not in published:
            continue
        for v in variants:
            cells = [
                Cell(label),
                Cell(f"{variants_lib.display_name(v)} (paper)"),
            ]
            for e in emotions:
                value = variants_lib.paper_value(v, e, key)
                cells.append(
                    Cell(value[0], value[1], digits=_digits(key), sd_digits=3)
                    if isinstance(value, tuple)
                    else Cell(value, digits=3)
                )
            rows.append(tuple(cells))
    return _table3_layout(
        "table3_paper",
        "Table 3 as published (ten models per cell)",
        emotions,
        rows,
        range(0, len(rows), len(variants)),
    )


# --------------------------------------------------------- fixed-α sweep


def fixed_alpha_table(runs: Sequence[Mapping[str, Any]]) -> Table | None:
    """The numbers behind Fig. 3a: ΔSP_spk × ΔSP_rat per fixed α.

    Each cell is the mean ± SD over seeds of the per-seed product; the last
    row is Proposed, summarised the same way, for comparison.

    Returns:
      Table ``fixed_alpha``, or None when there are no fixed-α runs.
    """
    fixed = [
        r
        for r in runs
        if r["variant"] == "fixed_alpha" and r.get("alpha") is not None
    ]
    if not fixed:
        return None
    emotions = in_paper_order(r["emotion"] for r in fixed)
    alphas = sorted({round(float(r["alpha"]), 9) for r in fixed})

    rows = [
        (Cell(a),)
        + tuple(_product_cell(runs, "fixed_alpha", e, a) for e in emotions)
        for a in alphas
    ]
    if any(r["variant"] == "proposed" for r in runs):
        rows.append(
            (Cell("Proposed"),)
            + tuple(_product_cell(runs, "proposed", e) for e in emotions)
        )
    header = ("α",) + tuple(
        f"{e.capitalize()} ΔSP_spk × ΔSP_rat" for e in emotions
    )
    return Table(
        name="fixed_alpha",
        title="Fixed α sweep (data of Fig. 3a): ΔSP_spk × ΔSP_rat, mean ± "
        "SD over seeds of the per-seed product",
        header=header,
        rows=tuple(rows),
        paired=(False,) + (True,) * len(emotions),
        align=("l",) + ("r",) * len(emotions),
        breaks=(len(alphas),),
    )


# ------------------------------------------------------------------ report


def _flatten(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, Mapping):
        out = []
        for k in tree:
            out += _flatten(tree[k], f"{prefix}{k}.")
        return out
    return [(prefix[:-1], tree)]


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "(none)"
    return str(value)


HEADLINE_CONFIG_KEYS: tuple[str, ...] = (
    "variants",
    "emotions",
    "seeds",
    "folds",
    "train.epochs",
    "train.batch_size",
    "features.checkpoint",
    "data.corpus",
)


def config_section(config: Mapping[str, Any] | None) -> str:
    """Headline settings plus the whole flattened config, folded."""
    if config is None:
        return "No `config.json` in this workdir."
    flat = dict(_flatten(config))
    lines = [
        f"- `{k}`: {_short(flat[k]) or '(empty)'}"
        for k in HEADLINE_CONFIG_KEYS
        if k in flat
    ]
    rows = [[f"`{k}`", f"`{json.dumps(v)}`"] for k, v in flat.items()]
    full = markdown_table(["key", "value"], rows, align=["l", "l"])
    return (
        "\n".join(lines)
        + "\n\n<details><summary>Full config.json</summary>\n\n"
        + full
        + "\n\n</details>"
    )


FIGURE_CAPTIONS: dict[str, str] = {
    "tsne": (
        "Fig. 2 analogue{which}: t-SNE of the held-out test embeddings of "
        "ONE fold model of each one-sided model (paper: Fair_spk a, b; "
        "Fair_rat c, d), the same fold and utterances for both, each "
        "coloured by speaker gender and by rater gender; blue male, red "
        "female, grey outside S2 (no rater-gender group). The out-of-fold "
        "embeddings of different fold models are not pooled: each model "
        "has its own embedding space. The title gives the fold, its "
        "held-out session and the number of utterances."
    ),
    "parity_bars": (
        "ΔSP_spk (green) vs ΔSP_rat (yellow) per emotion and model, "
        "mean ± SD over seeds."
    ),
    "pareto": (
        "F1 against ΔSP_spk × ΔSP_rat{which}: one small point per run "
        "(model × seed; every fixed α in one colour), the mean over each "
        "model's runs as a large labelled marker (fixed α: one diamond per "
        "α); hollow points are constant predictors (one class for every "
        "utterance: ΔSP = 0 is trivial, not fair). Up and left is better; "
        "the dashed line joins the means no other mean beats on both axes."
    ),
    "alpha_histogram": (
        "Fig. 3b analogue{which}: histogram of the batch-wise α of "
        "Proposed (eq. 3), every batch of every seed and fold: binned over "
        "the range of the values in alpha_trace.npz (a strip below places "
        "that range in [0, 1]), or, without that file, in the 20 stored "
        "bins of width 0.05 of results.json (the title says which); the "
        "title gives the mean, SD and range."
    ),
    "alpha_distance": (
        "D and α over training{which}: the distance D between μ_SPK and "
        "μ_RAT of each batch (top) and the α of eq. (3) it gave (bottom), "
        "mean ± 1 SD over Proposed's runs (seeds × folds), every batch in "
        "order; the title gives D's coefficient of variation, α's SD and "
        "their correlation over all batches."
    ),
    "fixed_alpha": (
        "Fig. 3a analogue{which}: ΔSP_spk × ΔSP_rat of fixed-α models "
        "(black: each seed as a hollow point, the mean ± SD over seeds as "
        "the line and error bars), each Proposed seed (dotted orange) and "
        "their mean (solid orange); the grey band, drawn only with at "
        f"least {figures_lib.T_INTERVAL_MIN_SEEDS} Proposed seeds, is the "
        "95 % Student-t interval of Proposed's mean (the legend names n)."
    ),
    "loss_curves": (
        "Training loss (the value each variant's objective logs) per "
        "epoch: mean ± 1 SD over the variant's runs (folds × seeds; every "
        "α of the fixed-α sweep pooled); log y-axis where it spans more "
        "than a factor of 30."
    ),
}
"""Caption of each figure in ``report.md``; ``{which}`` becomes the
detector (and seed and fold) the figure file names, e.g. ", Anger
detector"."""

FIGURE_ALT: dict[str, str] = {
    "tsne": "Fig. 2: t-SNE of Fair_spk and Fair_rat embeddings{which}",
    "parity_bars": "ΔSP_spk vs ΔSP_rat per emotion and model",
    "pareto": "F1 vs ΔSP_spk × ΔSP_rat of every run{which}",
    "alpha_histogram": "Fig. 3b: histogram of Proposed's α{which}",
    "alpha_distance": "D and α of Proposed over training{which}",
    "fixed_alpha": "Fig. 3a: ΔSP_spk × ΔSP_rat against fixed α{which}",
    "loss_curves": "Training loss per epoch of each variant",
}
"""Alt text of each figure; ``{which}`` as in :data:`FIGURE_CAPTIONS`."""

_PER_EMOTION = {
    "pareto": "pareto_",
    "alpha_histogram": "fig3b_alpha_hist_",
    "alpha_distance": "alpha_distance_",
    "fixed_alpha": "fig3a_fixed_alpha_",
}


def _which(name: str, path: pathlib.Path) -> str:
    """ ", Anger detector" (", seed 0, fold 2" for Fig. 2) from a file
    name; "" when the name says neither."""
    if name == "tsne":
        m = figures_lib.TSNE_FILE.match(path.name)
        if not m:
            return ""
        return (
            f", {m['emotion'].capitalize()} detector, seed {m['seed']}, "
            f"fold {m['fold']} model"
        )
    prefix = _PER_EMOTION.get(name)
    if prefix and path.stem.startswith(prefix):
        return f", {path.stem.removeprefix(prefix).capitalize()} detector"
    return ""


def figure_caption(name: str, path: str | pathlib.Path) -> tuple[str, str]:
    """(alt text, caption) of one figure file of ``report.md``.

    Both name the figure's detector (and, for Fig. 2, its seed and fold),
    read from the file name, so the five Fig. 3b histograms of a workdir
    are told apart.

    Args:
      name: a key of :data:`FIGURE_CAPTIONS`.
      path: the PNG.
    """
    which = _which(name, pathlib.Path(path))
    return (
        FIGURE_ALT[name].format(which=which),
        FIGURE_CAPTIONS[name].format(which=which),
    )


_FIGURE_GLOBS: dict[str, str] = {
    # Only one-fold-model maps: a Fig. 2 of an older release (no _fold<f>
    # in its name) pooled five unaligned embedding spaces.
    "tsne": "fig2_tsne_*_seed*_fold*.png",
    "parity_bars": "parity_bars.png",
    "pareto": "pareto_*.png",
    "alpha_histogram": "fig3b_alpha_hist_*.png",
    "alpha_distance": "alpha_distance_*.png",
    "fixed_alpha": "fig3a_fixed_alpha_*.png",
    "loss_curves": figures_lib.LOSS_CURVES_FILE,
}

RECOMPUTE_NOTE = """\
Every number above comes from `results.json`, and every run in it can be
recomputed from `predictions.csv` (one row per run and utterance of the
out-of-fold predictions). For the rows of one (variant, emotion, seed,
alpha):

- F1 = `sklearn.metrics.f1_score(y_true, y_pred, average="weighted")`,
- ΔSP_spk = `fairlearn.metrics.demographic_parity_difference(y_true,
  y_pred, sensitive_features=speaker_gender)`,
- ΔSP_rat = the same with `sensitive_features=rater_gender`, on the rows
  whose `rater_gender` is not empty (S2).

`python -m fairser_jax.report --workdir=<this dir> --recompute` does
exactly this and stops with a list of differences if `results.json`
disagrees by more than 1e-9; it then rewrites this report, its tables and
the figures."""


TABLES_NOTE = (
    "Every table is also in `tables/` as `<name>.csv` (plain numbers, "
    "unrounded, in the units shown: a mean ± SD column is two columns "
    "`<column> mean` and `<column> sd`; a single value, such as a "
    "published number or a product of two means, has an empty `sd`) and "
    "as `<name>.tex` (a booktabs `tabular`; bold and italic† marks as in "
    "the Markdown)."
)


def _existing_figures(
    workdir: pathlib.Path,
) -> dict[str, list[pathlib.Path]]:
    folder = workdir_lib.Layout(workdir).figures
    return {
        name: sorted(folder.glob(pattern)) if folder.is_dir() else []
        for name, pattern in _FIGURE_GLOBS.items()
    }


def report_tables(results: Mapping[str, Any]) -> dict[str, Table]:
    """Every table of ``report.md``, by name, in report order.

    Names: ``table1``; ``table2_<metric>`` for each of
    `reported_metrics` (``f1``, ``dsp_spk``, ``dsp_rat``, ``eod_spk``,
    ...); ``table3``, ``table3_paper``; ``fixed_alpha`` — those whose
    inputs exist.
    """
    runs = list(results.get("runs", []))
    built = [table1(results.get("study_sets", {}))]
    built += [table2(runs, m) for m in reported_metrics(runs)]
    built += [table3(runs), paper_table3(runs), fixed_alpha_table(runs)]
    return {t.name: t for t in built if t is not None}


def _table_block(table: Table) -> str:
    """The Markdown table and a line linking its CSV and LaTeX files."""
    stem = f"{workdir_lib.Layout.TABLES}/{table.name}"
    return table.markdown() + f"\n\n[CSV]({stem}.csv) · [LaTeX]({stem}.tex)"


def constant_note(
    runs: Sequence[Mapping[str, Any]],
    constant: Mapping[Any, str] | Iterable[Any],
    variants: Sequence[str],
) -> list[str]:
    """The note under Table 2 or 3 naming its constant-predictor runs.

    A run that predicts one class for every utterance
    (:func:`claims.constant_runs`) has ΔSP = 0 without being fair; the
    cells still average it, and this note names each cell that holds one.

    Returns:
      ``[note]``, or ``[]`` when no run of ``variants`` is constant.
    """
    classes = constant if isinstance(constant, Mapping) else {}
    keys = set(constant)
    cells: dict[tuple[str, str], list[str]] = {}
    for r in runs:
        key = run_key(r)
        if r["variant"] not in variants or key not in keys:
            continue
        what = f"seed {key[2]}" + (
            f" (always {classes[key]})" if key in classes else ""
        )
        cells.setdefault((r["variant"], r["emotion"]), []).append(what)
    if not cells:
        return []
    emotions = in_paper_order(r["emotion"] for r in runs)
    listed = "; ".join(
        f"{variants_lib.display_name(v)} · {e.capitalize()}: "
        + ", ".join(cells[v, e])
        for v in variants
        for e in emotions
        if (v, e) in cells
    )
    return [
        "‡ **Constant predictors in these cells** (one class for every "
        "utterance, so ΔSP = 0 is trivial, not fair; the cells include "
        "them, the claims in [claims.md](claims.md) drop them): " + listed + "."
    ]


def claims_section(
    results: Mapping[str, Any], claims: Sequence[claims_lib.Claim]
) -> str:
    """The report's short "Claims" section: verdict counts and links."""
    counts = claims_lib.verdict_counts(claims)
    missing = claims_lib.not_evaluated(results, claims)
    text = (
        f"The paper's claims tested on these runs, per detector over seeds "
        f"({len(claims)} row{'' if len(claims) == 1 else 's'}): "
        f"**{counts['reproduces']} reproduce, "
        f"{counts['contradicted']} contradicted, {counts['inconclusive']} "
        "inconclusive**."
    )
    if missing:
        text += (
            " Not evaluated here (their models or inputs are absent): "
            + ", ".join(missing)
            + "."
        )
    return (
        text + f" Claims, tests and verdicts: [claims.md](claims.md) "
        f"([CSV]({workdir_lib.Layout.TABLES}/{claims_lib.CLAIMS_CSV}))."
    )


def render_report(
    results: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    figure_paths: Mapping[str, Sequence[pathlib.Path]],
    *,
    workdir: pathlib.Path,
    constant: Mapping[Any, str] | None = None,
    claims: Sequence[claims_lib.Claim] | None = None,
) -> str:
    """The text of ``report.md`` (see :func:`write_report`).

    Links ``tables/<name>.csv`` / ``.tex`` of every table
    (:func:`report_tables`, written by :func:`write_tables`) and, next to
    each figure, its PDF when that exists; lists the constant-predictor
    runs under Tables 2 and 3 and counts the verdicts of ``claims.md``.

    Args:
      constant: {run key: class} of the constant-predictor runs; default
        :func:`claims.constant_predictions` of ``<workdir>/predictions.csv``.
      claims: :func:`claims.evaluate` of ``results``; computed when None.
    """
    runs = list(results.get("runs", []))
    tabs = report_tables(results)
    if constant is None:
        constant = claims_lib.constant_predictions(
            workdir_lib.Layout(workdir).predictions
        )
    if claims is None:
        claims = claims_lib.evaluate(results, set(constant))
    parts = [
        f"# fairser_jax report: `{workdir.name}`",
        f"Reproduction of {PAPER} on the data and settings below. Numbers "
        "are mean ± SD (sample SD) over seeds of out-of-fold predictions "
        "pooled over the five leave-one-session-out folds. Published "
        "numbers are shown for reference only; they come from the real "
        "IEMOCAP corpus, ours from whatever corpus the config names.",
    ]
    if tabs:
        parts.append(TABLES_NOTE)
    parts += ["## Configuration", config_section(config)]
    if "table1" in tabs:
        parts += [
            "## Table 1: emotion distribution of the study sets",
            _table_block(tabs["table1"]),
        ]
    blocks = {
        m: tabs[f"table2_{m}"]
        for m in metric_headers()
        if f"table2_{m}" in tabs
    }
    if blocks:
        variants, _ = _present(runs, variants_lib.in_table(2))
        parts += [
            "## Table 2: one-sided models, recognition and fairness",
            "One block per metric: our models (mean ± SD over seeds), then "
            "the paper's Table 2 values of the same cells. "
            + (OTHER_VIEWS_NOTE if len(blocks) > len(paper_metrics()) else "")
            + TABLE2_LEGEND
            + " "
            + _seed_note(runs, variants),
        ]
    # The note on ΔEOd = ΔEOpp goes once, under the first table showing
    # both of one side: Table 2's second block of the pair, else Table 3.
    note = eod_eopp_note(runs)
    for metric, block in blocks.items():
        parts += [f"### {block_title(metric)}", _table_block(block)]
        side = metric.removeprefix("eopp_")
        if note and metric.startswith("eopp_") and f"eod_{side}" in blocks:
            parts.append(note)
            note = None
    if blocks:
        parts += constant_note(runs, constant, variants_lib.in_table(2))
    if "table3" in tabs:
        variants, _ = _present(runs, variants_lib.in_table(3))
        parts += [
            "## Table 3: two-sided models, Basic vs Proposed",
            _table_block(tabs["table3"]),
            "Metrics are mean ± SD over seeds; the product and the "
            "absolute difference are of the two mean parities. "
            + _seed_note(runs, variants),
        ]
        if note and any(
            r.get("eod_spk") is not None or r.get("eod_rat") is not None
            for r in runs
            if r["variant"] in variants
        ):
            parts.append(note)
        parts += constant_note(runs, constant, variants_lib.in_table(3))
        if "table3_paper" in tabs:
            parts += [
                "Paper (Table 3, ten models per cell):",
                _table_block(tabs["table3_paper"]),
            ]
    if "fixed_alpha" in tabs:
        parts += [
            "## Fixed α sweep (data of Fig. 3a)",
            _table_block(tabs["fixed_alpha"]),
            "Mean ± SD over seeds of the per-seed ΔSP_spk × ΔSP_rat.",
        ]
    parts += ["## Claims", claims_section(results, claims)]
    shown = {k: list(p) for k, p in figure_paths.items() if p}
    if shown:
        parts.append("## Figures")
        for name in FIGURE_CAPTIONS:
            for path in shown.get(name, []):
                path = pathlib.Path(path)
                rel = path.relative_to(workdir).as_posix()
                pdf = path.with_suffix(".pdf")
                link = (
                    f" ([PDF]({pdf.relative_to(workdir).as_posix()}))"
                    if pdf.is_file()
                    else ""
                )
                alt, caption = figure_caption(name, path)
                parts += [f"![{alt}]({rel})", f"*{caption}*{link}"]
    parts += ["## How to recompute", RECOMPUTE_NOTE]
    return "\n\n".join(parts) + "\n"


def write_tables(
    workdir: str | pathlib.Path, tables: Mapping[str, Table]
) -> list[pathlib.Path]:
    """Writes ``<workdir>/tables/<name>.csv`` and ``.tex`` of each table.

    Each file is written atomically. Files of report tables that are no
    longer produced (e.g. ``table3.csv`` after Basic/Proposed runs left
    ``results.json``) are removed, so the folder matches ``report.md``;
    other files in the folder are left alone.

    Returns:
      The paths written, CSV then LaTeX per table.
    """
    folder = workdir_lib.Layout(workdir).tables
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables.values():
        for suffix, text in ((".csv", table.csv()), (".tex", table.latex())):
            path = folder / f"{table.name}{suffix}"
            fileio.atomic_write_text(path, text)
            written.append(path)
    for stale in set(table_names()) - set(tables):
        for suffix in (".csv", ".tex"):
            (folder / f"{stale}{suffix}").unlink(missing_ok=True)
    return written


def table_names() -> tuple[str, ...]:
    """Every name :func:`report_tables` can produce."""
    return (
        "table1",
        *(f"table2_{m}" for m in metric_headers()),
        "table3",
        "table3_paper",
        "fixed_alpha",
    )


def _tsne_default(config: Mapping[str, Any] | None) -> int:
    try:
        return int(config["report"]["tsne_samples"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return 1500


def write_report(
    workdir: str | pathlib.Path,
    *,
    figures: bool = True,
    tsne_sample_size: int | None = None,
) -> pathlib.Path:
    """Writes ``<workdir>/report.md``, ``tables/`` and (default) the figures.

    Args:
      workdir: directory with ``results.json`` (required), ``config.json``,
        ``embeddings/`` and ``training/`` (optional) from ``python -m
        fairser_jax.train``.
      figures: draw the figures first (:func:`figures.make_figures`);
        False links the PNGs (and PDFs) already in ``<workdir>/figures``.
      tsne_sample_size: utterances in the t-SNE; default
        ``config.report.tsne_samples`` or 1500 (paper).

    Returns:
      Path of ``report.md``.

    Raises:
      FileNotFoundError: no ``results.json`` (the message names the stage
        that writes it).
    """
    workdir = pathlib.Path(workdir)
    results = recompute.load_results(workdir)
    config_path = workdir_lib.Layout(workdir).config
    config = (
        json.loads(config_path.read_text(encoding="utf-8"))
        if config_path.is_file()
        else None
    )
    constant = claims_lib.constant_predictions(
        workdir_lib.Layout(workdir).predictions
    )
    if figures:
        size = tsne_sample_size or _tsne_default(config)
        figure_paths = figures_lib.make_figures(
            workdir,
            results,
            tsne_sample_size=size,
            distance=((config or {}).get("two_sided") or {}).get("distance"),
            constant=set(constant),
        )
    else:
        figure_paths = _existing_figures(workdir)
    write_tables(workdir, report_tables(results))
    claims_lib.write_claims(workdir, results=results, constant=constant)
    text = render_report(
        results,
        config,
        figure_paths,
        workdir=workdir,
        constant=constant,
        claims=claims_lib.evaluate(results, set(constant)),
    )
    path = workdir_lib.Layout(workdir).report
    fileio.atomic_write_text(path, text)
    return path
