"""Markdown analogues of the paper's Tables 1-3 and the workdir report.

:func:`write_report` turns a workdir (``config.json``, ``results.json``,
``embeddings/``) into ``report.md`` with

- Table 1: emotion distribution of the study sets S1 and S2,
- Table 2: F1 (%), ΔSP_spk and ΔSP_rat of DNN, Fair_spk and Fair_rat per
  emotion, mean ± SD over seeds, intra-fairness in bold and
  inter-fairness in italics with a dagger (paper §2.2.3),
- Table 3 (when Basic / Proposed runs exist): F1, ΔSP_spk, ΔSP_rat
  (mean ± SD), the product and |difference| of the mean parities,
- the fixed-α sweep behind Fig. 3a (when fixed-α runs exist),
- links to the figures of :mod:`fairser_jax.report.figures`,

each next to the paper's published numbers for reference. Only variants and
emotions that have runs appear; nothing is filled in for absent ones.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fairser_jax import metrics
from fairser_jax.constants import EMOTIONS
from fairser_jax.report import figures as figures_lib
from fairser_jax.report import recompute
from fairser_jax.train import variants as variants_lib

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

# variant -> emotion -> (F1 %, ΔSP_spk, ΔSP_rat); paper Table 2.
PAPER_TABLE2: dict[str, dict[str, tuple[float, float, float]]] = {
    "dnn": {
        "neutral": (77.73, 0.452, 0.649),
        "happiness": (70.00, 0.511, 0.428),
        "anger": (76.44, 0.378, 0.389),
        "sadness": (82.28, 0.359, 0.169),
        "frustration": (63.54, 0.385, 0.626),
    },
    "fair_spk": {
        "neutral": (70.68, 0.226, 0.488),
        "happiness": (65.80, 0.380, 0.366),
        "anger": (73.26, 0.234, 0.379),
        "sadness": (75.50, 0.260, 0.208),
        "frustration": (63.34, 0.301, 0.550),
    },
    "fair_rat": {
        "neutral": (68.80, 0.403, 0.352),
        "happiness": (65.14, 0.691, 0.126),
        "anger": (75.68, 0.372, 0.189),
        "sadness": (76.84, 0.291, 0.088),
        "frustration": (70.22, 0.411, 0.448),
    },
}

# variant -> emotion -> metric -> (mean, SD) or value; paper Table 3
# (ten models per cell; F1 in %).
# fmt: off
PAPER_TABLE3: dict[str, dict[str, dict[str, Any]]] = {
    "basic": {
        e: {
            "f1": f1,
            "dsp_spk": spk,
            "dsp_rat": rat,
            "product": prod,
            "gap": gap,
        }
        for e, f1, spk, rat, prod, gap in (
            ("neutral", (66.26, 2.277), (0.365, 0.082), (0.525, 0.039),
             0.192, 0.160),
            ("happiness", (65.37, 1.987), (0.566, 0.085), (0.311, 0.071),
             0.175, 0.255),
            ("anger", (69.70, 2.776), (0.302, 0.032), (0.257, 0.060),
             0.078, 0.060),
            ("sadness", (69.15, 2.406), (0.318, 0.045), (0.116, 0.028),
             0.037, 0.202),
            ("frustration", (66.10, 2.417), (0.347, 0.026), (0.521, 0.034),
             0.181, 0.174),
        )
    },
    "proposed": {
        e: {
            "f1": f1,
            "dsp_spk": spk,
            "dsp_rat": rat,
            "product": prod,
            "gap": gap,
        }
        for e, f1, spk, rat, prod, gap in (
            ("neutral", (68.06, 1.241), (0.269, 0.025), (0.407, 0.043),
             0.109, 0.137),
            ("happiness", (67.67, 1.514), (0.359, 0.064), (0.214, 0.049),
             0.075, 0.154),
            ("anger", (73.09, 1.546), (0.254, 0.015), (0.222, 0.026),
             0.056, 0.039),
            ("sadness", (71.35, 1.119), (0.215, 0.027), (0.112, 0.014),
             0.024, 0.103),
            ("frustration", (69.20, 1.617), (0.310, 0.006), (0.406, 0.009),
             0.126, 0.096),
        )
    },
}
# fmt: on

TABLE2_VARIANTS: tuple[str, ...] = variants_lib.in_table(2)
TABLE3_VARIANTS: tuple[str, ...] = variants_lib.in_table(3)

_SIDE_METRIC = {"spk": "dsp_spk", "rat": "dsp_rat"}


def fairness_view(variant: str, metric: str) -> str | None:
    """Cross-reference scheme of paper §2.2.3 for a one-sided model.

    Returns:
      "intra" when `metric` judges `variant` from the side it is trained to
      be fair on (`Variant.intra_fair`), "inter" from the other side, None
      for F1, unconstrained and two-sided models.
    """
    side = variants_lib.REGISTRY[variant].intra_fair
    if side not in _SIDE_METRIC or metric not in _SIDE_METRIC.values():
        return None
    return "intra" if _SIDE_METRIC[side] == metric else "inter"


METRIC_HEADERS = {"f1": "F1 (%)", "dsp_spk": "ΔSP_spk", "dsp_rat": "ΔSP_rat"}
MISSING = "—"


# ------------------------------------------------------------- primitives


def _row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    align: Sequence[str] | None = None,
) -> str:
    """A GitHub-flavoured Markdown table.

    Args:
      header: column titles.
      rows: one sequence of cells per row, ``len(header)`` each.
      align: per column ``"l"`` or ``"r"``; default first left, rest right.

    Returns:
      The table, newline separated, without a trailing newline.
    """
    align = align or ["l"] + ["r"] * (len(header) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = [_row(header), _row(rule)]
    for r in rows:
        if len(r) != len(header):
            raise ValueError(
                f"markdown_table: row {list(r)} has {len(r)} cells, the "
                f"header {len(header)}."
            )
        lines.append(_row(r))
    return "\n".join(lines)


def format_mean_sd(mean: float, sd: float, digits: int) -> str:
    """``"mean ± sd"`` with ``digits`` decimals."""
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _digits(metric: str) -> int:
    return 2 if metric == "f1" else 3


def _scale(metric: str) -> float:
    return 100.0 if metric == "f1" else 1.0


def _present(
    runs: Sequence[Mapping[str, Any]], variants: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Variants (given order) and emotions (paper order) that have runs."""
    have_v = {r["variant"] for r in runs}
    vs = [v for v in variants if v in have_v]
    have_e = {r["emotion"] for r in runs if r["variant"] in vs}
    return vs, [e for e in EMOTIONS if e in have_e]


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
        if r["variant"] != variant or r["emotion"] != emotion:
            continue
        if alpha is not None and (
            r.get("alpha") is None
            or round(float(r["alpha"]), 9) != round(alpha, 9)
        ):
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
) -> str:
    """Mean ± SD over seeds of the per-seed ΔSP_spk × ΔSP_rat."""
    products = seed_products(runs, variant, emotion, alpha=alpha)
    if not products.size:
        return MISSING
    return format_mean_sd(*metrics.mean_sd(products), 3)


def _cell(
    runs: Sequence[Mapping[str, Any]], variant: str, emotion: str, metric: str
) -> str:
    s = summarize(runs, variant, emotion, metric)
    if s is None:
        return MISSING
    return format_mean_sd(s[0], s[1], _digits(metric))


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


def table1(study_sets: Mapping[str, Any]) -> str | None:
    """Table 1 analogue: S1/S2 sizes and per-class counts, plus the paper's.

    Args:
      study_sets: ``results.json["study_sets"]`` =
        ``{"S1": {"n": int, "per_class": {emotion: int}}, "S2": ...}``.

    Returns:
      Markdown, or None when ``study_sets`` is empty.
    """
    sets = [s for s in ("S1", "S2") if s in study_sets]
    if not sets:
        return None
    emotions = [
        e
        for e in EMOTIONS
        if any(e in study_sets[s].get("per_class", {}) for s in sets)
    ]
    header = ["Set", "Overall"] + [e.capitalize() for e in emotions]
    rows = []
    for s in sets:
        per_class = study_sets[s].get("per_class", {})
        rows.append(
            [f"{s} (ours)", study_sets[s].get("n", MISSING)]
            + [per_class.get(e, MISSING) for e in emotions]
        )
    for s in sets:
        paper = PAPER_TABLE1[s]
        rows.append(
            [f"{s} (paper)", paper["n"]]
            + [paper["per_class"][e] for e in emotions]
        )
    return markdown_table(header, rows)


# ----------------------------------------------------------------- Table 2


def _mark(variant: str, metric: str, text: str) -> str:
    if text == MISSING:
        return text
    view = fairness_view(variant, metric)
    if view == "intra":
        return f"**{text}**"
    if view == "inter":
        return f"*{text}*†"
    return text


TABLE2_LEGEND = (
    "**Bold**: intra-fairness (each one-sided model judged from its own "
    "viewpoint: ΔSP_spk of Fair_spk, ΔSP_rat of Fair_rat). *Italic*†: "
    "inter-fairness (judged from the other viewpoint: ΔSP_rat of Fair_spk, "
    "ΔSP_spk of Fair_rat). DNN is the unconstrained reference. ΔSP_spk is "
    "over S1 by speaker gender, ΔSP_rat over S2 by rater-gender group; "
    "lower is fairer (ideal 0)."
)


def _table2_columns(emotions: Sequence[str]) -> list[tuple[str, str]]:
    return [(e, m) for e in emotions for m in METRIC_HEADERS]


def _table2_header(emotions: Sequence[str]) -> list[str]:
    return ["Model"] + [
        f"{e.capitalize()} {METRIC_HEADERS[m]}"
        for e, m in _table2_columns(emotions)
    ]


def table2(runs: Sequence[Mapping[str, Any]]) -> str | None:
    """Table 2 analogue: one-sided models, mean ± SD over seeds.

    Rows: DNN, Fair_spk, Fair_rat (those with runs). Columns: for each
    emotion with runs, F1 (%), ΔSP_spk and ΔSP_rat. Intra-fairness cells
    are bold, inter-fairness cells italic with a dagger (paper §2.2.3).

    Returns:
      Markdown, or None when none of the three variants has runs.
    """
    variants, emotions = _present(runs, TABLE2_VARIANTS)
    if not variants:
        return None
    rows = [
        [variants_lib.display_name(v)]
        + [
            _mark(v, m, _cell(runs, v, e, m))
            for e, m in _table2_columns(emotions)
        ]
        for v in variants
    ]
    return markdown_table(_table2_header(emotions), rows)


def paper_table2(runs: Sequence[Mapping[str, Any]]) -> str | None:
    """The paper's Table 2 for the variants and emotions we have."""
    variants, emotions = _present(runs, TABLE2_VARIANTS)
    if not variants:
        return None
    rows = []
    for v in variants:
        cells = [f"{variants_lib.display_name(v)} (paper)"]
        for e, m in _table2_columns(emotions):
            value = PAPER_TABLE2[v][e][list(METRIC_HEADERS).index(m)]
            cells.append(_mark(v, m, f"{value:.{_digits(m)}f}"))
        rows.append(cells)
    return markdown_table(_table2_header(emotions), rows)


# ----------------------------------------------------------------- Table 3


TABLE3_ROWS: tuple[tuple[str, str], ...] = (
    ("f1", "F1 (%)"),
    ("dsp_spk", "ΔSP_spk"),
    ("dsp_rat", "ΔSP_rat"),
    ("product", "ΔSP_spk × ΔSP_rat"),
    ("gap", "\\|ΔSP_spk − ΔSP_rat\\|"),
    ("seed_product", "ΔSP_spk × ΔSP_rat per seed"),
)


def _table3_value(
    runs: Sequence[Mapping[str, Any]], variant: str, emotion: str, row: str
) -> str:
    if row in METRIC_HEADERS:
        return _cell(runs, variant, emotion, row)
    if row == "seed_product":
        return _product_cell(runs, variant, emotion)
    spk = summarize(runs, variant, emotion, "dsp_spk")
    rat = summarize(runs, variant, emotion, "dsp_rat")
    if spk is None or rat is None:
        return MISSING
    fn = metrics.parity_product if row == "product" else metrics.parity_gap
    return f"{float(fn(spk[0], rat[0])):.3f}"


def table3(runs: Sequence[Mapping[str, Any]]) -> str | None:
    """Table 3 analogue: Basic vs Proposed, per emotion.

    Rows: F1 (%), ΔSP_spk, ΔSP_rat as mean ± SD over seeds, then
    ΔSP_spk × ΔSP_rat and |ΔSP_spk − ΔSP_rat| of the two means (as the
    paper's numbers are: e.g. Basic Neutral 0.365 × 0.525 = 0.192), then
    the mean ± SD over seeds of each seed's own product (the stability the
    paper's §3.2 discusses; not published).

    Returns:
      Markdown, or None when neither Basic nor Proposed has runs.
    """
    variants, emotions = _present(runs, TABLE3_VARIANTS)
    if not variants:
        return None
    header = ["Metric", "Model"] + [e.capitalize() for e in emotions]
    rows = [
        [label, variants_lib.display_name(v)]
        + [_table3_value(runs, v, e, key) for e in emotions]
        for key, label in TABLE3_ROWS
        for v in variants
    ]
    return markdown_table(
        header, rows, align=["l", "l"] + ["r"] * len(emotions)
    )


def paper_table3(runs: Sequence[Mapping[str, Any]]) -> str | None:
    """The paper's Table 3 for the variants and emotions we have."""
    variants, emotions = _present(runs, TABLE3_VARIANTS)
    if not variants:
        return None
    header = ["Metric", "Model"] + [e.capitalize() for e in emotions]
    rows = []
    published = PAPER_TABLE3["basic"]["neutral"]
    for key, label in TABLE3_ROWS:
        if key not in published:
            continue
        for v in variants:
            cells = [label, f"{variants_lib.display_name(v)} (paper)"]
            for e in emotions:
                value = PAPER_TABLE3[v][e][key]
                cells.append(
                    f"{value[0]:.{_digits(key)}f} ± {value[1]:.3f}"
                    if isinstance(value, tuple)
                    else f"{value:.3f}"
                )
            rows.append(cells)
    return markdown_table(
        header, rows, align=["l", "l"] + ["r"] * len(emotions)
    )


# --------------------------------------------------------- fixed-α sweep


def fixed_alpha_table(runs: Sequence[Mapping[str, Any]]) -> str | None:
    """The numbers behind Fig. 3a: ΔSP_spk × ΔSP_rat per fixed α.

    Each cell is the mean ± SD over seeds of the per-seed product; the last
    row is Proposed, summarised the same way, for comparison.

    Returns:
      Markdown, or None when there are no fixed-α runs.
    """
    fixed = [
        r
        for r in runs
        if r["variant"] == "fixed_alpha" and r.get("alpha") is not None
    ]
    if not fixed:
        return None
    emotions = [e for e in EMOTIONS if any(r["emotion"] == e for r in fixed)]
    alphas = sorted({round(float(r["alpha"]), 9) for r in fixed})

    rows = [
        [f"{a:g}"]
        + [_product_cell(runs, "fixed_alpha", e, a) for e in emotions]
        for a in alphas
    ]
    if any(r["variant"] == "proposed" for r in runs):
        rows.append(
            ["Proposed"]
            + [_product_cell(runs, "proposed", e) for e in emotions]
        )
    header = ["α"] + [f"{e.capitalize()} ΔSP_spk × ΔSP_rat" for e in emotions]
    return markdown_table(header, rows)


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
        "Fig. 2 analogue: t-SNE of the test embeddings of the one-sided "
        "models (paper: Fair_spk a, b; Fair_rat c, d), each coloured by "
        "speaker gender and by rater gender; blue male, red female, grey "
        "outside S2 (no rater-gender group)."
    ),
    "parity_bars": (
        "ΔSP_spk (green) vs ΔSP_rat (yellow) per emotion and model, "
        "mean ± SD over seeds."
    ),
    "alpha_histogram": (
        "Fig. 3b analogue: histogram of the batch-wise α of Proposed (eq. 3)."
    ),
    "fixed_alpha": (
        "Fig. 3a analogue: ΔSP_spk × ΔSP_rat of fixed-α models (black), "
        "each Proposed seed (dotted orange) and the 95% bootstrap CI of "
        "Proposed (grey)."
    ),
}

_FIGURE_GLOBS: dict[str, str] = {
    "tsne": "fig2_tsne_*.png",
    "parity_bars": "parity_bars.png",
    "alpha_histogram": "fig3b_alpha_hist_*.png",
    "fixed_alpha": "fig3a_fixed_alpha_*.png",
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
disagrees by more than 1e-9; it then rewrites this report and the
figures."""


def _existing_figures(
    workdir: pathlib.Path,
) -> dict[str, list[pathlib.Path]]:
    folder = workdir / "figures"
    return {
        name: sorted(folder.glob(pattern)) if folder.is_dir() else []
        for name, pattern in _FIGURE_GLOBS.items()
    }


def render_report(
    results: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    figure_paths: Mapping[str, Sequence[pathlib.Path]],
    *,
    workdir: pathlib.Path,
) -> str:
    """The text of ``report.md`` (see :func:`write_report`)."""
    runs = list(results.get("runs", []))
    parts = [
        f"# fairser_jax report: `{workdir.name}`",
        f"Reproduction of {PAPER} on the data and settings below. Numbers "
        "are mean ± SD (sample SD) over seeds of out-of-fold predictions "
        "pooled over the five leave-one-session-out folds. Published "
        "numbers are shown for reference only; they come from the real "
        "IEMOCAP corpus, ours from whatever corpus the config names.",
        "## Configuration",
        config_section(config),
    ]
    t1 = table1(results.get("study_sets", {}))
    if t1:
        parts += ["## Table 1: emotion distribution of the study sets", t1]
    t2 = table2(runs)
    if t2:
        variants, _ = _present(runs, TABLE2_VARIANTS)
        parts += [
            "## Table 2: one-sided models, recognition and fairness",
            t2,
            TABLE2_LEGEND + " " + _seed_note(runs, variants),
            "Paper (Table 2), same cells:",
            paper_table2(runs),
        ]
    t3 = table3(runs)
    if t3:
        variants, _ = _present(runs, TABLE3_VARIANTS)
        parts += [
            "## Table 3: two-sided models, Basic vs Proposed",
            t3,
            "F1 and ΔSP are mean ± SD over seeds; the product and the "
            "absolute difference are of the two mean parities. "
            + _seed_note(runs, variants),
            "Paper (Table 3, ten models per cell):",
            paper_table3(runs),
        ]
    ta = fixed_alpha_table(runs)
    if ta:
        parts += [
            "## Fixed α sweep (data of Fig. 3a)",
            ta,
            "Mean ± SD over seeds of the per-seed ΔSP_spk × ΔSP_rat.",
        ]
    shown = {k: list(p) for k, p in figure_paths.items() if p}
    if shown:
        parts.append("## Figures")
        for name in FIGURE_CAPTIONS:
            for path in shown.get(name, []):
                rel = pathlib.Path(path).relative_to(workdir)
                parts += [
                    f"![{name}]({rel.as_posix()})",
                    f"*{FIGURE_CAPTIONS[name]}*",
                ]
    parts += ["## How to recompute", RECOMPUTE_NOTE]
    return "\n\n".join(parts) + "\n"


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
    """Writes ``<workdir>/report.md`` (and, by default, the figures).

    Args:
      workdir: directory with ``results.json`` (required), ``config.json``
        and ``embeddings/`` (optional) from ``python -m fairser_jax.train``.
      figures: draw the figures first (:func:`figures.make_figures`);
        False links the PNGs already in ``<workdir>/figures``.
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
    config_path = workdir / "config.json"
    config = (
        json.loads(config_path.read_text(encoding="utf-8"))
        if config_path.is_file()
        else None
    )
    if figures:
        size = tsne_sample_size or _tsne_default(config)
        figure_paths = figures_lib.make_figures(
            workdir, results, tsne_sample_size=size
        )
    else:
        figure_paths = _existing_figures(workdir)
    text = render_report(results, config, figure_paths, workdir=workdir)
    path = workdir / "report.md"
    path.write_text(text, encoding="utf-8")
    return path
