"""The table builders: analogues of the paper's Tables 1-3.

Each builder turns ``results.json`` content into a :class:`Table` of
:class:`Cell` s (rendered by :mod:`fairser_jax.report.render`):

- Table 1: emotion distribution of the study sets S1 and S2,
- Table 2: F1 (%), ΔSP_spk and ΔSP_rat of DNN, Fair_spk and Fair_rat per
  emotion, one block per metric, mean ± SD over seeds, intra-fairness in
  bold and inter-fairness in italics with a dagger (paper §2.2.3),
- Table 3 (when Basic / Proposed runs exist): F1, ΔSP_spk, ΔSP_rat
  (mean ± SD), the product and |difference| of the mean parities,
- the fixed-α sweep behind Fig. 3a (when fixed-α runs exist),

each next to the paper's published numbers (:mod:`fairser_jax.report.paper`)
where it has them. Only variants and emotions that have runs appear;
nothing is filled in for absent ones. :func:`write_tables` writes
``tables/<name>.csv`` (plain numbers, mean and SD in separate columns)
and ``tables/<name>.tex`` (booktabs); :mod:`fairser_jax.report.document`
puts the tables into ``report.md``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fairser_jax import fileio, metrics
from fairser_jax import results as results_lib
from fairser_jax import variants as variants_lib
from fairser_jax import workdir as workdir_lib
from fairser_jax.constants import in_paper_order
from fairser_jax.report import figures as figures_lib
from fairser_jax.report import paper
from fairser_jax.report.render import (  # noqa: F401 (re-exported)
    MISSING,
    Cell,
    Table,
    _row,
    latex_escape,
    markdown_table,
)
from fairser_jax.results import is_cell


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
    small: frozenset[str] = frozenset(),
) -> Cell:
    """Mean ± SD over seeds of the per-seed ΔSP_spk × ΔSP_rat."""
    products = seed_products(runs, variant, emotion, alpha=alpha)
    if not products.size:
        return Cell(None)
    mean, sd = metrics.mean_sd(products)
    return Cell(
        mean,
        sd,
        digits=3,
        sig=SIGNIFICANT_DIGITS,
        small=bool(small & rests_on("product")),
    )


def _cell(
    runs: Sequence[Mapping[str, Any]],
    variant: str,
    emotion: str,
    metric: str,
    *,
    view: str | None = None,
    small: frozenset[str] = frozenset(),
) -> Cell:
    s = summarize(runs, variant, emotion, metric)
    if s is None:
        return Cell(None)
    return Cell(
        s[0],
        s[1],
        digits=_digits(metric),
        view=view,
        sig=_sig(metric),
        small=bool(small & rests_on(metric)),
    )


def rests_on(key: str) -> frozenset[str]:
    """The sides (``"spk"``, ``"rat"``) whose groups a table value is
    computed over: a per-side metric's own, both for the ΔSP product and
    gap, none for F1."""
    if key in ("product", "gap", "seed_product"):
        return frozenset(results_lib.SIDES)
    side = key.rpartition("_")[2]
    metric = results_lib.metric_of(key)
    if metric is not None and metric.per_side and side in results_lib.SIDES:
        return frozenset((side,))
    return frozenset()


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
        rows.append(
            (Cell(f"{s} (paper)"), Cell(paper.table1_size(s)))
            + tuple(Cell(paper.table1_count(s, e)) for e in emotions)
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
                paper.value(v, e, metric),
                digits=_digits(metric),
                view=fairness_view(v, metric),
            )
            for e in emotions
        )
        for v in variants
    ]


def table2(
    runs: Sequence[Mapping[str, Any]],
    metric: str,
    small: frozenset[str] = frozenset(),
) -> Table | None:
    """One metric of the Table 2 analogue: one-sided models per emotion.

    Rows: DNN, Fair_spk, Fair_rat (those with runs) as mean ± SD over
    seeds, then the paper's published values of the same cells. Columns:
    the emotions with runs. Intra-fairness cells are bold, inter-fairness
    cells italic with a dagger (paper §2.2.3).

    Args:
      runs: ``results.json["runs"]``.
      metric: a key of `metric_headers()` (``"f1"`` in %); the paper's
        rows are added for the metrics it publishes (`paper_metrics()`).
      small: the sides with a group smaller than `results.SMALL_GROUP`
        (`results.small_groups`): our cells over them are marked.

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
            _cell(
                runs, v, e, metric, view=fairness_view(v, metric), small=small
            )
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
    runs: Sequence[Mapping[str, Any]],
    variant: str,
    emotion: str,
    row: str,
    small: frozenset[str] = frozenset(),
) -> Cell:
    if results_lib.metric_of(row) is not None:
        return _cell(runs, variant, emotion, row, small=small)
    if row == "seed_product":
        return _product_cell(runs, variant, emotion, small=small)
    spk = summarize(runs, variant, emotion, "dsp_spk")
    rat = summarize(runs, variant, emotion, "dsp_rat")
    if spk is None or rat is None:
        return Cell(None)
    fn = metrics.parity_product if row == "product" else metrics.parity_gap
    return Cell(
        float(fn(spk[0], rat[0])),
        digits=3,
        sig=SIGNIFICANT_DIGITS,
        small=bool(small & rests_on(row)),
    )


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


def table3(
    runs: Sequence[Mapping[str, Any]], small: frozenset[str] = frozenset()
) -> Table | None:
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
        + tuple(_table3_value(runs, v, e, key, small) for e in emotions)
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
                value = paper.value(v, e, key)
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


def fixed_alpha_table(
    runs: Sequence[Mapping[str, Any]], small: frozenset[str] = frozenset()
) -> Table | None:
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
        + tuple(
            _product_cell(runs, "fixed_alpha", e, a, small) for e in emotions
        )
        for a in alphas
    ]
    if any(r["variant"] == "proposed" for r in runs):
        rows.append(
            (Cell("Proposed"),)
            + tuple(
                _product_cell(runs, "proposed", e, small=small)
                for e in emotions
            )
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


def report_tables(results: Mapping[str, Any]) -> dict[str, Table]:
    """Every table of ``report.md``, by name, in report order.

    Names: ``table1``; ``table2_<metric>`` for each of
    `reported_metrics` (``f1``, ``dsp_spk``, ``dsp_rat``, ``eod_spk``,
    ...); ``table3``, ``table3_paper``; ``fixed_alpha`` — those whose
    inputs exist.
    """
    runs = list(results.get("runs", []))
    study_sets = results.get("study_sets", {})
    small = frozenset(results_lib.small_groups(study_sets))
    built = [table1(study_sets)]
    built += [table2(runs, m, small) for m in reported_metrics(runs)]
    built += [
        table3(runs, small),
        paper_table3(runs),
        fixed_alpha_table(runs, small),
    ]
    return {t.name: t for t in built if t is not None}


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
