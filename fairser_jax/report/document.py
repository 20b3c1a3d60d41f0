"""The workdir report: ``report.md`` with its tables, figures and claims.

:func:`write_report` turns a workdir (``config.json``, ``results.json``,
``embeddings/``, ``training/``) into ``report.md``: the config, the tables
of :mod:`fairser_jax.report.tables` (also written as ``tables/*.csv`` and
``.tex``), the figures of :mod:`fairser_jax.report.figures` (PNG and PDF),
the verdicts of the paper's findings (:mod:`fairser_jax.report.claims`)
and how to recompute every number (:mod:`fairser_jax.report.recompute`).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fairser_jax import fileio
from fairser_jax import results as results_lib
from fairser_jax import variants as variants_lib
from fairser_jax import workdir as workdir_lib
from fairser_jax.constants import in_paper_order
from fairser_jax.report import claims as claims_lib
from fairser_jax.report import figures as figures_lib
from fairser_jax.report import paper, recompute
from fairser_jax.report.render import SMALL_MARK, Table, markdown_table
from fairser_jax.report.tables import (
    OTHER_VIEWS_NOTE,
    TABLE2_LEGEND,
    _present,
    _seed_note,
    block_title,
    eod_eopp_note,
    metric_headers,
    paper_metrics,
    report_tables,
    write_tables,
)
from fairser_jax.results import run_key


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


def _table_block(table: Table) -> str:
    """The Markdown table and a line linking its CSV and LaTeX files."""
    stem = f"{workdir_lib.Layout.TABLES}/{table.name}"
    return table.markdown() + f"\n\n[CSV]({stem}.csv) · [LaTeX]({stem}.tex)"


def small_group_note(study_sets: Mapping[str, Any]) -> list[str]:
    """The note under Tables 2 and 3 naming the groups their § cells rest
    on (`results.small_groups`); empty when there are none."""
    small = results_lib.small_groups(study_sets)
    if not small:
        return []
    where = {"spk": ("speaker", "S1"), "rat": ("rater", "S2")}
    listed = "; ".join(
        f"{where[side][0]} group(s) in {where[side][1]} "
        + ", ".join(f"{g!r} ({n})" for g, n in groups)
        + f", under ΔSP_{side}, ΔEOd_{side}, ΔEOpp_{side} and the products"
        for side, groups in small.items()
    )
    return [
        f"{SMALL_MARK} **Small groups** (fewer than "
        f"{results_lib.SMALL_GROUP} utterances; their sizes in "
        f"parentheses): {listed}. One such group can move every gap of its "
        "side on its own: the marked cells rest on it."
    ]


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
        f"Reproduction of {paper.CITATION} on the data and settings below. "
        "Numbers "
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
        parts += small_group_note(results.get("study_sets", {}))
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
        parts += small_group_note(results.get("study_sets", {}))
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
    elif ((config or {}).get("report") or {}).get("figures") is False:
        parts += [
            "## Figures",
            "Not drawn (`config.report.figures` is False): `python -m "
            "fairser_jax.report --workdir=<this folder>` draws them.",
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
        that writes it), or no `workdir`.
      workdir.WorkdirInUseError: another process writes the workdir.
    """
    workdir = pathlib.Path(workdir)
    # Under the workdir's lock (a no-op inside `main` or `report`, which
    # hold it): one writer at once, and what is written is recorded.
    with workdir_lib.lock(workdir, "report", create=False):
        return _write_report(workdir, figures, tsne_sample_size)


def _write_report(
    workdir: pathlib.Path, figures: bool, tsne_sample_size: int | None
) -> pathlib.Path:
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
