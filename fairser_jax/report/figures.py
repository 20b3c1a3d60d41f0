"""Figures of a workdir: the paper's Fig. 2 and Fig. 3 analogues.

Every function reads what the training stage wrote (``results.json``,
``embeddings/*.npz``, ``training/*.npz``), draws with Matplotlib's Agg
canvas (no pyplot, no display needed), writes one PNG into
``<workdir>/figures`` and a PDF of the same stem beside it, and returns the
PNG's path, or ``None`` when its inputs are absent.

- :func:`tsne_figure`: Fig. 2 — t-SNE of Fair_spk and Fair_rat test
  embeddings of one detector (Anger in the paper), each coloured by speaker
  gender and by rater gender (blue male, red female; grey: no rater-gender
  group, i.e. outside S2).
- :func:`parity_bars_figure`: ΔSP_spk vs ΔSP_rat per emotion, one panel
  per variant, mean ± SD over seeds (the intra-/inter-fairness contrast of
  Table 2 at a glance).
- :func:`alpha_histogram_figure`: Fig. 3b — histogram of the batch-wise α
  of eq. (3) recorded while training Proposed (from the counts that
  ``results.json["alpha_trace"]`` holds per emotion).
- :func:`fixed_alpha_figure`: Fig. 3a — ΔSP_spk × ΔSP_rat of fixed-α
  models against α, with each Proposed seed as a dotted orange line and the
  95% bootstrap CI of Proposed as a grey band.
- :func:`loss_curves_figure`: the training loss per epoch of each variant,
  mean ± 1 SD over its runs (from ``training/<variant>.npz``; not in the
  paper, a check that training converged).

Variant names and which variants have a parity panel come from the variant
registry (:mod:`fairser_jax.train.variants`).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from fairser_jax import metrics
from fairser_jax.constants import EMOTIONS, in_paper_order
from fairser_jax.train import variants as variants_lib

MALE_COLOR = "#1f4fbf"  # blue, as in the paper's Fig. 2
FEMALE_COLOR = "#d62728"  # red
NO_GROUP_COLOR = "#b3b3b3"  # grey: sample outside S2 (no rater group)
SPK_COLOR = "#3a9a3a"  # green: speaker-side evaluation (Table 2 caption)
RAT_COLOR = "#e0a800"  # yellow: rater-side evaluation (Table 2 caption)
PROPOSED_COLOR = "#ff7f0e"  # orange dotted lines of Fig. 3a

DPI = 150

PARITY_VARIANTS: tuple[str, ...] = tuple(
    v.name for v in variants_lib.REGISTRY.values() if v.table is not None
)
"""Variants of Tables 2 and 3, drawn in the parity bar chart (fixed-α runs
have Fig. 3a)."""

_VARIANT_NAMES = "|".join(sorted(variants_lib.NAMES, key=len, reverse=True))
_EMBEDDING_FILE = re.compile(
    rf"^(?P<variant>{_VARIANT_NAMES})"
    r"_(?P<emotion>[A-Za-z0-9][A-Za-z0-9_-]*)_seed(?P<seed>\d+)\.npz$"
)


def figures_dir(workdir: str | pathlib.Path) -> pathlib.Path:
    """``<workdir>/figures``, created if needed."""
    out = pathlib.Path(workdir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _save(fig: Figure, path: pathlib.Path) -> pathlib.Path:
    """Writes ``fig`` as ``path`` (PNG) and as a PDF of the same stem.

    Each file is written to ``<name>.tmp`` and renamed, so a reader never
    sees half a figure. The PDF embeds TrueType (Type 42) fonts, not Type 3
    (conference PDF checkers such as IEEE PDF eXpress reject Type 3), and
    carries no creation date, so redrawing the same data gives the same
    bytes.

    Returns:
      ``path``.
    """
    FigureCanvasAgg(fig)
    for target, fmt, meta in (
        (path, "png", None),
        (path.with_suffix(".pdf"), "pdf", {"CreationDate": None}),
    ):
        tmp = target.with_name(target.name + ".tmp")
        with rc_context({"pdf.fonttype": 42}):
            fig.savefig(tmp, dpi=DPI, format=fmt, metadata=meta)
        tmp.replace(target)
    return path


def _emotion_order(preferred: str, available: Sequence[str]) -> list[str]:
    """``preferred`` first, then the paper's order; only those available."""
    order = [preferred, *in_paper_order(available)]
    return [e for e in dict.fromkeys(order) if e in available]


# ----------------------------------------------------------------- Fig. 2


def load_embeddings(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """Reads one ``embeddings/<variant>_<emotion>_seed<k>.npz`` file.

    Returns:
      ``utterance_id`` str [N], ``embedding`` float32 [N, D],
      ``speaker_group`` str [N] (e.g. 'M'/'F'), ``rater_group`` str [N]
      ('' outside S2), ``speaker_attribute`` and ``rater_attribute`` (str,
      e.g. 'gender'). Files of releases before k-group attributes hold
      ``speaker_gender`` / ``rater_gender`` and read the same.

    Raises:
      ValueError: a missing array, mismatched lengths or empty speaker
        groups; the message names the file.
    """
    path = pathlib.Path(path)
    with np.load(path, allow_pickle=False) as data:
        old = "speaker_gender" in data.files
        names = {
            "speaker_group": "speaker_gender" if old else "speaker_group",
            "rater_group": "rater_gender" if old else "rater_group",
        }
        keys = ("utterance_id", "embedding", *names.values())
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise ValueError(
                f"{path}: missing array(s) {missing}; the training stage "
                f"writes {list(keys)}."
            )
        out = {k: np.asarray(data[k]) for k in ("utterance_id", "embedding")}
        for new, stored in names.items():
            out[new] = np.asarray(data[stored])
        for side in ("speaker", "rater"):
            key = f"{side}_attribute"
            out[key] = str(data[key]) if key in data.files else "gender"
    n = out["utterance_id"].shape[0]
    emb = out["embedding"]
    if emb.ndim != 2 or emb.shape[0] != n:
        raise ValueError(
            f"{path}: 'embedding' must be [N, D] with N = {n} utterances; "
            f"got shape {emb.shape}."
        )
    for k, empty_ok in (("speaker_group", False), ("rater_group", True)):
        arr = out[k].astype(str)
        if arr.shape != (n,) or (not empty_ok and (arr == "").any()):
            raise ValueError(
                f"{path}: '{names[k]}' must be [N] strings"
                f"{'' if empty_ok else ', none empty'}; got shape "
                f"{arr.shape}, values {sorted(set(arr.tolist()))[:5]}."
            )
        out[k] = arr
    out["utterance_id"] = out["utterance_id"].astype(str)
    out["embedding"] = emb.astype(np.float32)
    return out


def _embedding_index(
    workdir: pathlib.Path,
) -> dict[tuple[str, str, int], pathlib.Path]:
    index = {}
    folder = workdir / "embeddings"
    if not folder.is_dir():
        return index
    for path in folder.glob("*.npz"):
        m = _EMBEDDING_FILE.match(path.name)
        if m:
            key = (m["variant"], m["emotion"], int(m["seed"]))
            index[key] = path
    return index


# Exact t-SNE up to this many points: O(N^2) memory (36 MB at 2000) but,
# on a few shared CPU cores, faster than Barnes-Hut's threaded tree code at
# the paper's 1500 points (measured: 67 s vs 81 s) and exact besides.
_EXACT_TSNE_MAX = 2000


def _perplexity(n: int) -> float:
    # sklearn requires perplexity < n; 30 is its default and the usual
    # choice for ~1500 points.
    return float(min(30.0, max(1.0, (n - 1) / 3.0)))


def _group_style(groups: np.ndarray) -> dict[str, tuple[str, str]]:
    """group -> (colour, legend label): the paper's male/female colours for
    gender, a qualitative palette for other attributes; grey = no group."""
    present = sorted(set(groups.tolist()) - {""})
    if set(present) <= {"M", "F"}:
        style = {"M": (MALE_COLOR, "male"), "F": (FEMALE_COLOR, "female")}
    else:
        palette = [
            "#1f77b4",
            "#d62728",
            "#2ca02c",
            "#9467bd",
            "#ff7f0e",
            "#17becf",
            "#8c564b",
            "#e377c2",
            "#bcbd22",
            "#7f7f7f",
        ]
        style = {
            g: (palette[i % len(palette)], g) for i, g in enumerate(present)
        }
    style[""] = (NO_GROUP_COLOR, "no rater group")
    return style


def _scatter_groups(ax, xy: np.ndarray, groups: np.ndarray, order) -> None:
    """Scatter coloured by group; grey underneath, groups in random order."""
    style = _group_style(groups)
    grey = groups == ""
    if grey.any():
        ax.scatter(
            xy[grey, 0],
            xy[grey, 1],
            s=6,
            c=NO_GROUP_COLOR,
            alpha=0.5,
            linewidths=0,
        )
    idx = order[~grey[order]]
    ax.scatter(
        xy[idx, 0],
        xy[idx, 1],
        s=7,
        c=[style[g][0] for g in groups[idx]],
        alpha=0.85,
        linewidths=0,
    )
    handles = []
    for g, (color, label) in style.items():
        count = int(np.sum(groups == g))
        if count:
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    linestyle="",
                    markersize=5,
                    color=color,
                    label=f"{label} ({count})",
                )
            )
    ax.legend(handles=handles, loc="best", fontsize=7, frameon=True)
    ax.set_xticks([])
    ax.set_yticks([])


def tsne_figure(
    workdir: str | pathlib.Path,
    *,
    emotion: str = "anger",
    seed: int = 0,
    sample_size: int = 1500,
    random_state: int = 0,
) -> pathlib.Path | None:
    """Fig. 2 analogue: t-SNE of one-sided embeddings, by speaker/rater gender.

    Picks the ``emotion`` detector of Fair_spk and Fair_rat (another emotion,
    in the paper's order, if that one is absent; the smallest seed if
    ``seed`` is absent), draws the same random sample of up to
    ``sample_size`` test utterances from both (paper: 1500 from Anger),
    embeds each model's 128-d embeddings with sklearn's t-SNE, and colours
    each map twice: by speaker gender and by rater gender.

    Args:
      workdir: holds ``embeddings/<variant>_<emotion>_seed<k>.npz``.
      emotion: preferred detector.
      seed: preferred training seed.
      sample_size: maximum number of utterances plotted.
      random_state: seeds both the sample and t-SNE.

    Returns:
      Path of ``figures/fig2_tsne_<emotion>_seed<k>.png``, or None when
      neither model has embeddings (or fewer than 4 utterances).
    """
    from sklearn.manifold import TSNE

    workdir = pathlib.Path(workdir)
    index = _embedding_index(workdir)
    variants = ("fair_spk", "fair_rat")
    emotions = sorted({e for v, e, _ in index if v in variants})
    chosen = None
    # Prefer an emotion where both one-sided models exist.
    for need_both in (True, False):
        for e in _emotion_order(emotion, emotions):
            seeds = sorted(
                {
                    s
                    for v, e2, s in index
                    if e2 == e
                    and v in variants
                    and (
                        not need_both
                        or all((w, e, s) in index for w in variants)
                    )
                }
            )
            if seeds:
                chosen = (e, seed if seed in seeds else seeds[0])
                break
        if chosen:
            break
    if chosen is None:
        return None
    emo, run_seed = chosen
    present = [v for v in variants if (v, emo, run_seed) in index]
    data = {v: load_embeddings(index[(v, emo, run_seed)]) for v in present}
    common = sorted(
        set.intersection(
            *(set(d["utterance_id"].tolist()) for d in data.values())
        )
    )
    if len(common) < 4:
        logging.warning(
            "t-SNE skipped: only %d shared utterances in %s",
            len(common),
            [str(index[(v, emo, run_seed)]) for v in present],
        )
        return None
    rng = np.random.default_rng(random_state)
    take = min(sample_size, len(common))
    sample = np.asarray(common)[np.sort(rng.choice(len(common), take, False))]
    draw_order = rng.permutation(take)

    fig = Figure(figsize=(8.5, 4.2 * len(present)), layout="constrained")
    axes = fig.subplots(len(present), 2, squeeze=False)
    letters = iter("abcd")
    for row, v in enumerate(present):
        d = data[v]
        pos = {u: i for i, u in enumerate(d["utterance_id"].tolist())}
        rows = np.asarray([pos[u] for u in sample])
        xy = TSNE(
            n_components=2,
            perplexity=_perplexity(take),
            init="pca",
            learning_rate="auto",
            method="exact" if take <= _EXACT_TSNE_MAX else "barnes_hut",
            random_state=random_state,
        ).fit_transform(d["embedding"][rows].astype(np.float64))
        for col, side in enumerate(("speaker", "rater")):
            ax = axes[row, col]
            _scatter_groups(ax, xy, d[f"{side}_group"][rows], draw_order)
            ax.set_title(
                f"({next(letters)}) {variants_lib.display_name(v)}, "
                f"coloured by {side} {d[f'{side}_attribute']}",
                fontsize=10,
            )
    fig.suptitle(
        f"t-SNE of test embeddings, {emo.capitalize()} detector, seed "
        f"{run_seed} ({take} utterances)",
        fontsize=11,
    )
    out = figures_dir(workdir) / f"fig2_tsne_{emo}_seed{run_seed}.png"
    return _save(fig, out)


# ----------------------------------------------------------- parity bars


def _runs(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(results.get("runs", []))


def parity_bars_figure(
    results: Mapping[str, Any], out_dir: str | pathlib.Path
) -> pathlib.Path | None:
    """ΔSP_spk vs ΔSP_rat per emotion, one panel per variant.

    Bars are the mean over seeds, error bars the sample SD
    (:func:`fairser_jax.metrics.mean_sd`). Green = speaker side, yellow =
    rater side, as the paper's Table 2 colours them. Variants
    :data:`PARITY_VARIANTS` that have runs are drawn; fixed-α runs are not.

    Args:
      results: parsed ``results.json``.
      out_dir: folder for ``parity_bars.png``.

    Returns:
      The PNG path, or None when no such run exists.
    """
    runs = [r for r in _runs(results) if r["variant"] in PARITY_VARIANTS]
    variants = [
        v for v in PARITY_VARIANTS if any(r["variant"] == v for r in runs)
    ]
    if not variants:
        return None
    emotions = in_paper_order(r["emotion"] for r in runs)
    ncols = min(3, len(variants))
    nrows = -(-len(variants) // ncols)
    fig = Figure(
        # At least 6 in wide so that the two-line suptitle fits.
        figsize=(
            max(6.0, 1.2 + 0.9 * len(emotions) * ncols),
            0.6 + 3.2 * nrows,
        ),
        layout="constrained",
    )
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    x = np.arange(len(emotions))
    width = 0.38
    top = 0.0
    for ax, v in zip(axes, variants, strict=False):
        for k, (m, color) in enumerate(
            (("dsp_spk", SPK_COLOR), ("dsp_rat", RAT_COLOR))
        ):
            means, sds = [], []
            for e in emotions:
                vals = [
                    r[m]
                    for r in runs
                    if r["variant"] == v
                    and r["emotion"] == e
                    and r.get(m) is not None
                ]
                mean, sd = metrics.mean_sd(vals) if vals else (np.nan, 0.0)
                means.append(mean)
                sds.append(sd)
                if vals:
                    top = max(top, mean + sd)
            ax.bar(
                x + (k - 0.5) * width,
                means,
                width,
                yerr=sds,
                capsize=2,
                color=color,
                edgecolor="black",
                linewidth=0.5,
            )
        ax.set_title(variants_lib.display_name(v), fontsize=10)
        ax.set_xticks(x, [e[:3].capitalize() for e in emotions], fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(variants) :]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("ΔSP (mean ± SD over seeds)", fontsize=8)
    axes[0].set_ylim(0, max(0.05, top * 1.15))
    fig.legend(
        handles=[
            Patch(color=SPK_COLOR, label="ΔSP_spk (S1, speaker gender)"),
            Patch(color=RAT_COLOR, label="ΔSP_rat (S2, rater gender)"),
        ],
        loc="outside lower center",
        ncols=2,
        fontsize=8,
    )
    fig.suptitle(
        "Demographic parity: ΔSP_spk (speaker gender) vs ΔSP_rat (rater "
        "gender)\nper emotion and model, mean ± SD over seeds (lower is "
        "fairer)",
        fontsize=10,
    )
    return _save(fig, pathlib.Path(out_dir) / "parity_bars.png")


# ----------------------------------------------------------------- Fig. 3


def alpha_histogram_figure(
    results: Mapping[str, Any],
    out_dir: str | pathlib.Path,
    *,
    emotion: str = "anger",
) -> pathlib.Path | None:
    """Fig. 3b analogue: histogram of the batch-wise α of eq. (3).

    Every recorded batch of every seed and fold of one Proposed detector,
    as the counts ``results.json["alpha_trace"][emotion]`` holds (20 bins
    of width 0.05 over [0, 1]), with the mean and SD over batches.

    Args:
      results: parsed ``results.json``.
      out_dir: folder for ``fig3b_alpha_hist_<emotion>.png``.
      emotion: the detector (Anger in the paper).

    Returns:
      The PNG path, or None when that emotion has no α trace.

    Raises:
      ValueError: the summary is malformed (names the field).
    """
    summary = (results.get("alpha_trace") or {}).get(emotion)
    if not summary or not sum(summary.get("counts", [])):
        return None
    edges = np.asarray(summary.get("bin_edges", []), dtype=np.float64)
    counts = np.asarray(summary["counts"], dtype=np.float64)
    if edges.shape != (counts.size + 1,) or (counts < 0).any():
        raise ValueError(
            f"results.json: alpha_trace[{emotion!r}] needs 'bin_edges' (one "
            "more than 'counts') and non-negative 'counts'; got "
            f"{edges.size} edges and {counts.size} counts."
        )
    if edges[0] < 0 or edges[-1] > 1:
        raise ValueError(
            f"results.json: alpha_trace[{emotion!r}] bins must lie in "
            f"[0, 1] (eq. 3); got {edges[0]} .. {edges[-1]}."
        )
    fig = Figure(figsize=(5.0, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.stairs(
        counts,
        edges,
        fill=True,
        color="#4c72b0",
        edgecolor="black",
        linewidth=0.5,
    )
    mean = summary.get("mean")
    if mean is not None:
        ax.axvline(mean, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xticks(np.linspace(0, 1, 11))
    ax.set_xlabel("α (batch-wise, eq. 3)")
    ax.set_ylabel("number of batches")
    sd = summary.get("sd")
    stats = (
        ""
        if mean is None or sd is None
        else (f"; mean {mean:.2f}, SD {sd:.2f}")
    )
    ax.set_title(
        f"Proposed, {emotion.capitalize()} detector: {int(counts.sum())} "
        f"batches, {summary.get('num_runs', '?')} runs{stats}",
        fontsize=9,
    )
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, pathlib.Path(out_dir) / f"fig3b_alpha_hist_{emotion}.png")


def run_products(runs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Per-run ΔSP_spk × ΔSP_rat of the runs that have both."""
    spk = [r["dsp_spk"] for r in runs if r.get("dsp_rat") is not None]
    rat = [r["dsp_rat"] for r in runs if r.get("dsp_rat") is not None]
    if not spk:
        return np.zeros(0)
    return np.asarray(metrics.parity_product(spk, rat), dtype=np.float64)


def fixed_alpha_figure(
    results: Mapping[str, Any],
    out_dir: str | pathlib.Path,
    *,
    emotion: str = "anger",
    confidence: float = 0.95,
    num_resamples: int = 10000,
    seed: int = 0,
) -> pathlib.Path | None:
    """Fig. 3a analogue: ΔSP_spk × ΔSP_rat against a fixed α.

    Black solid line: for each fixed α, the mean over seeds of the per-seed
    product ΔSP_spk × ΔSP_rat. Dotted orange lines: the product of each
    Proposed seed. Grey band: the ``confidence`` percentile-bootstrap
    interval of the Proposed mean (:func:`fairser_jax.metrics.bootstrap_ci`,
    drawn when Proposed has at least two seeds).

    Args:
      results: parsed ``results.json``.
      out_dir: folder for ``fig3a_fixed_alpha_<emotion>.png``.
      emotion: the detector (Anger in the paper).
      confidence, num_resamples, seed: passed to ``bootstrap_ci``.

    Returns:
      The PNG path, or None when that emotion has no fixed-α run with both
      parities.
    """
    runs = _runs(results)
    emo = emotion
    fixed = [
        r
        for r in runs
        if r["variant"] == "fixed_alpha"
        and r["emotion"] == emo
        and r.get("alpha") is not None
        and r.get("dsp_rat") is not None
    ]
    if not fixed:
        return None
    alphas = sorted({round(float(r["alpha"]), 9) for r in fixed})
    curve = [
        float(
            np.mean(
                run_products(
                    [r for r in fixed if round(float(r["alpha"]), 9) == a]
                )
            )
        )
        for a in alphas
    ]
    proposed = run_products(
        [r for r in runs if r["variant"] == "proposed" and r["emotion"] == emo]
    )

    fig = Figure(figsize=(5.6, 3.6), layout="constrained")
    ax = fig.subplots()
    handles = []
    if proposed.size >= 2:
        low, high = metrics.bootstrap_ci(
            proposed,
            confidence=confidence,
            num_resamples=num_resamples,
            seed=seed,
        )
        ax.axhspan(low, high, color="grey", alpha=0.3, linewidth=0)
        handles.append(
            Patch(
                color="grey",
                alpha=0.3,
                label=f"Proposed {confidence:.0%} bootstrap CI",
            )
        )
    for p in proposed:
        ax.axhline(p, color=PROPOSED_COLOR, linestyle=":", linewidth=1.2)
    if proposed.size:
        handles.append(
            Line2D(
                [],
                [],
                color=PROPOSED_COLOR,
                linestyle=":",
                label=f"Proposed, one line per seed ({proposed.size})",
            )
        )
    (line,) = ax.plot(
        alphas,
        curve,
        color="black",
        marker="o",
        markersize=3,
        linewidth=1.5,
        label="fixed α (mean over seeds)",
    )
    handles.insert(0, line)
    ax.set_xlabel("fixed α")
    ax.set_ylabel("ΔSP_spk × ΔSP_rat")
    ax.set_xlim(0, 1)
    ax.set_xticks(alphas if len(alphas) <= 10 else np.linspace(0, 1, 11))
    ax.set_title(
        f"Fixed α vs Proposed, {emo.capitalize()} detector", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=7, loc="best")
    return _save(fig, pathlib.Path(out_dir) / f"fig3a_fixed_alpha_{emo}.png")


# ----------------------------------------------------------- loss curves


LOSS_CURVES_FILE = "loss_curves.png"

# Log y-axis when the band spans more than this factor (and stays > 0).
_LOG_RATIO = 30.0


@dataclasses.dataclass(frozen=True)
class LossCurve:
    """Training loss of one variant, summarised over its runs.

    Attributes:
      variant: the variant's name.
      mean: [E] mean over runs of the loss per epoch (NaN where no run
        recorded that epoch).
      sd: [E] sample SD over runs (ddof=1, 0 with one run), as
        :func:`fairser_jax.metrics.mean_sd` defines it.
      num_runs: R, the runs of the variant (folds × seeds × α).
    """

    variant: str
    mean: np.ndarray
    sd: np.ndarray
    num_runs: int


def load_training(path: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads one ``training/<variant>.npz``.

    Returns:
      ``run`` str [R] and ``loss_history`` float64 [R, E] (NaN for epochs
      not run).

    Raises:
      ValueError: a missing array or mismatched shapes; names the file.
    """
    path = pathlib.Path(path)
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("run", "loss_history") if k not in data.files]
        if missing:
            raise ValueError(
                f"{path}: missing array(s) {missing}; the training stage "
                "writes 'run' [R] and 'loss_history' [R, epochs]."
            )
        run = np.asarray(data["run"]).astype(str)
        history = np.asarray(data["loss_history"], dtype=np.float64)
    if run.ndim != 1 or history.ndim != 2 or history.shape[0] != run.size:
        raise ValueError(
            f"{path}: 'loss_history' must be [R, epochs] with R = "
            f"len('run'); got {history.shape} and {run.shape}."
        )
    return run, history


def summarize_loss(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-epoch mean and sample SD over runs, ignoring NaN (epochs not run).

    Args:
      history: [R, E] loss per run and epoch.

    Returns:
      ``(mean, sd)``, each [E]: NaN where no run has a finite value; SD 0
      where only one has.
    """
    history = np.asarray(history, dtype=np.float64)
    ok = np.isfinite(history)
    count = ok.sum(axis=0)
    filled = np.where(ok, history, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / count
        dev = np.where(ok, history - mean, 0.0)
        var = (dev**2).sum(axis=0) / (count - 1)
    sd = np.where(count > 1, np.sqrt(var), 0.0)
    return mean, np.where(count > 0, sd, np.nan)


def loss_curves(workdir: str | pathlib.Path) -> dict[str, LossCurve]:
    """The loss curve of every ``<workdir>/training/<variant>.npz``.

    Returns:
      variant → :class:`LossCurve`, registry order first, then any other
      file names sorted; empty when there is no ``training/`` folder.
    """
    folder = pathlib.Path(workdir) / "training"
    if not folder.is_dir():
        return {}
    paths = {p.stem: p for p in folder.glob("*.npz")}
    order = [v for v in variants_lib.REGISTRY if v in paths]
    order += sorted(set(paths) - set(order))
    out = {}
    for v in order:
        run, history = load_training(paths[v])
        if not run.size or not history.shape[1]:
            continue
        mean, sd = summarize_loss(history)
        out[v] = LossCurve(variant=v, mean=mean, sd=sd, num_runs=run.size)
    return out


def _use_log(curve: LossCurve) -> bool:
    low = curve.mean - curve.sd
    high = curve.mean + curve.sd
    ok = np.isfinite(low)
    if not ok.any() or (low[ok] <= 0).any():
        return False
    return bool(high[ok].max() / low[ok].min() > _LOG_RATIO)


def draw_loss_curves(curves: Mapping[str, LossCurve]) -> Figure:
    """One panel per variant: the mean loss per epoch and a ±1 SD band.

    Epochs are numbered from 1. A panel's y-axis is logarithmic when its
    band is positive and spans more than a factor of 30, else linear (the
    logged loss of eq. (1) carries −L_Adv and can be negative).

    Args:
      curves: variant → curve, as :func:`loss_curves` returns (not empty).

    Returns:
      The figure; each panel's first line is the mean curve.
    """
    ncols = min(3, len(curves))
    nrows = -(-len(curves) // ncols)
    fig = Figure(
        figsize=(max(6.0, 3.6 * ncols), 0.6 + 2.8 * nrows),
        layout="constrained",
    )
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (v, curve) in zip(axes, curves.items(), strict=False):
        epochs = np.arange(1, curve.mean.size + 1)
        ax.plot(epochs, curve.mean, color="black", linewidth=1.3)
        ax.fill_between(
            epochs,
            curve.mean - curve.sd,
            curve.mean + curve.sd,
            color="#4c72b0",
            alpha=0.3,
            linewidth=0,
        )
        if _use_log(curve):
            ax.set_yscale("log")
        ax.set_title(
            f"{variants_lib.display_name(v)} ({curve.num_runs} runs)",
            fontsize=10,
        )
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    fig.suptitle(
        "Training loss per epoch: mean (line) ± 1 SD (band) over runs",
        fontsize=11,
    )
    return fig


def loss_curves_figure(workdir: str | pathlib.Path) -> pathlib.Path | None:
    """Draws :func:`draw_loss_curves` of a workdir's ``training/``.

    Returns:
      Path of ``figures/loss_curves.png``, or None when there is no
      ``training/*.npz`` with a run.
    """
    curves = loss_curves(workdir)
    if not curves:
        return None
    return _save(
        draw_loss_curves(curves), figures_dir(workdir) / LOSS_CURVES_FILE
    )


# ------------------------------------------------------------------- all


def make_figures(
    workdir: str | pathlib.Path,
    results: Mapping[str, Any],
    *,
    tsne_sample_size: int = 1500,
    emotion: str = "anger",
) -> dict[str, list[pathlib.Path]]:
    """Draws every figure whose inputs exist.

    Fig. 3a and 3b are drawn for every emotion that has fixed-α runs or an
    α trace, the preferred one first.

    Args:
      workdir: the run directory; PNGs and PDFs go to
        ``<workdir>/figures``.
      results: parsed ``results.json``.
      tsne_sample_size: utterances in the Fig. 2 t-SNE (paper: 1500).
      emotion: preferred detector of Figs. 2 and 3 (paper: Anger).

    Returns:
      ``{"tsne", "parity_bars", "alpha_histogram", "fixed_alpha",
      "loss_curves"}`` → the PNG paths drawn (empty when the inputs are
      absent); each has a PDF of the same stem beside it.
    """
    out = figures_dir(workdir)
    emotions = _emotion_order(
        emotion,
        [
            *EMOTIONS,
            *(r["emotion"] for r in _runs(results)),
            *results.get("alpha_trace", {}),
        ],
    )
    drawn = {
        "tsne": [
            tsne_figure(workdir, emotion=emotion, sample_size=tsne_sample_size)
        ],
        "parity_bars": [parity_bars_figure(results, out)],
        "alpha_histogram": [
            alpha_histogram_figure(results, out, emotion=e) for e in emotions
        ],
        "fixed_alpha": [
            fixed_alpha_figure(results, out, emotion=e) for e in emotions
        ],
        "loss_curves": [loss_curves_figure(workdir)],
    }
    return {k: [p for p in v if p is not None] for k, v in drawn.items()}
