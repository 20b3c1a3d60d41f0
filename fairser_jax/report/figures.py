"""Figures of a workdir: the paper's Fig. 2 and Fig. 3 analogues.

Every function reads what the training stage wrote (``results.json``,
``predictions.csv``, ``alpha_trace.npz``, ``embeddings/*.npz``,
``training/*.npz``), draws with Matplotlib's Agg canvas (no pyplot, no
display needed), writes one PNG into ``<workdir>/figures`` and a PDF of the
same stem beside it, and returns the PNG's path, or ``None`` when its
inputs are absent.

- :func:`tsne_figure`: Fig. 2 — t-SNE of the test embeddings of ONE fold
  model of Fair_spk and of Fair_rat (the same fold, so the same held-out
  utterances) of one detector (Anger in the paper), each coloured by
  speaker gender and by rater gender (blue male, red female; grey: no
  rater-gender group, i.e. outside S2). :func:`select_tsne_rows` picks the
  rows.
- :func:`parity_bars_figure`: ΔSP_spk vs ΔSP_rat per emotion, one panel
  per variant, mean ± SD over seeds (the intra-/inter-fairness contrast of
  Table 2 at a glance).
- :func:`alpha_histogram_figure`: Fig. 3b — histogram of the batch-wise α
  of eq. (3) recorded while training Proposed, binned over the range of
  the raw values of ``alpha_trace.npz`` (else the 20 stored bins of
  ``results.json["alpha_trace"]``).
- :func:`fixed_alpha_figure`: Fig. 3a — ΔSP_spk × ΔSP_rat of fixed-α
  models against α (each seed, and the mean ± SD over seeds), with each
  Proposed seed as a dotted orange line, their mean, and a Student-t
  interval of that mean only when there are enough seeds for one.
- :func:`loss_curves_figure`: the training loss per epoch of each variant,
  mean ± 1 SD over its runs (from ``training/<variant>.npz``; not in the
  paper, a check that training converged).

Variant names and which variants have a parity panel come from the variant
declarations (:mod:`fairser_jax.variants`).
"""

from __future__ import annotations

import csv
import dataclasses
import pathlib
import re
import textwrap
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from fairser_jax import fileio, metrics
from fairser_jax import results as results_lib
from fairser_jax import variants as variants_lib
from fairser_jax import workdir as workdir_lib
from fairser_jax.constants import EMOTIONS, in_paper_order
from fairser_jax.report import claims as claims_lib
from fairser_jax.report import numbers

MALE_COLOR = "#1f4fbf"  # blue, as in the paper's Fig. 2
FEMALE_COLOR = "#d62728"  # red
NO_GROUP_COLOR = "#b3b3b3"  # grey: sample outside S2 (no rater group)
SPK_COLOR = "#3a9a3a"  # green: speaker-side evaluation (Table 2 caption)
RAT_COLOR = "#e0a800"  # yellow: rater-side evaluation (Table 2 caption)
PROPOSED_COLOR = "#ff7f0e"  # orange dotted lines of Fig. 3a

DPI = 150


def parity_variants() -> tuple[str, ...]:
    """Variants of Tables 2 and 3, drawn in the parity bar chart (fixed-α
    runs have Fig. 3a)."""
    return tuple(
        v.name for v in variants_lib.REGISTRY.values() if v.table is not None
    )


def _embedding_file() -> re.Pattern:
    """``<variant>_<emotion>_seed<k>.npz`` for every declared variant."""
    names = "|".join(
        sorted(map(re.escape, variants_lib.names()), key=len, reverse=True)
    )
    return re.compile(
        rf"^(?P<variant>{names})"
        r"_(?P<emotion>[A-Za-z0-9][A-Za-z0-9_-]*)_seed(?P<seed>\d+)\.npz$"
    )


def figures_dir(workdir: str | pathlib.Path) -> pathlib.Path:
    """``<workdir>/figures``, created if needed."""
    out = workdir_lib.Layout(workdir).figures
    out.mkdir(parents=True, exist_ok=True)
    return out


def _save(fig: Figure, path: pathlib.Path) -> pathlib.Path:
    """Writes ``fig`` as ``path`` (PNG) and as a PDF of the same stem.

    Each file is written whole (`fileio.atomic_write`), so a reader never
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
        with rc_context({"pdf.fonttype": 42}):
            with fileio.atomic_write(target, "wb") as f:
                fig.savefig(f, dpi=DPI, format=fmt, metadata=meta)
    return path


def _emotion_order(preferred: str, available: Sequence[str]) -> list[str]:
    """``preferred`` first, then the paper's order; only those available."""
    order = [preferred, *in_paper_order(available)]
    return [e for e in dict.fromkeys(order) if e in available]


# ----------------------------------------------------------------- Fig. 2


def load_embeddings(path: str | pathlib.Path) -> dict[str, Any]:
    """Reads one ``embeddings/<variant>_<emotion>_seed<k>.npz`` file.

    The file holds the out-of-fold test embeddings of one result: each row
    comes from the fold model that held that utterance out (paper §2.2.3),
    so rows of different folds live in different, unaligned embedding
    spaces.

    Returns:
      ``utterance_id`` str [N], ``embedding`` float32 [N, D],
      ``speaker_group`` str [N] (e.g. 'M'/'F'), ``rater_group`` str [N]
      ('' outside S2), ``fold`` int64 [N] (the fold model that embedded
      each row) or None for files written before it was recorded, and
      ``speaker_attribute`` and ``rater_attribute`` (str, e.g. 'gender').
      Files of releases before k-group attributes hold ``speaker_gender``
      / ``rater_gender`` and read the same.

    Raises:
      ValueError: a missing array, mismatched lengths, empty speaker
        groups or negative folds; the message names the file.
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
        fold = np.asarray(data["fold"]) if "fold" in data.files else None
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
    if fold is not None and (
        fold.shape != (n,)
        or not np.issubdtype(fold.dtype, np.integer)
        or (fold < 0).any()
    ):
        raise ValueError(
            f"{path}: 'fold' must be [N] integers >= 0 with N = {n}; got "
            f"shape {fold.shape}, dtype {fold.dtype}."
        )
    out["utterance_id"] = out["utterance_id"].astype(str)
    out["embedding"] = emb.astype(np.float32)
    out["fold"] = None if fold is None else fold.astype(np.int64)
    return out


def _embedding_index(
    workdir: pathlib.Path,
) -> dict[tuple[str, str, int], pathlib.Path]:
    index = {}
    folder = workdir_lib.Layout(workdir).embeddings
    if not folder.is_dir():
        return index
    pattern = _embedding_file()
    for path in folder.glob("*.npz"):
        m = pattern.match(path.name)
        if m:
            key = (m["variant"], m["emotion"], int(m["seed"]))
            index[key] = path
    return index


def prediction_folds(
    csv_path: str | pathlib.Path, keys: Sequence[tuple[str, str, int]]
) -> dict[tuple[str, str, int], dict[str, int]]:
    """The fold of each utterance of some runs, from ``predictions.csv``.

    What Fig. 2 reads for an embeddings file written before the file held
    ``fold``: the out-of-fold prediction of an utterance and its embedding
    come from the same fold model.

    Args:
      csv_path: a workdir's ``predictions.csv`` (columns of
        :data:`fairser_jax.results.PREDICTION_COLUMNS`).
      keys: (variant, emotion, seed) of runs without a fixed α.

    Returns:
      key → {utterance_id: fold} for each key (empty for a key the file
      lacks); {} for every key when the file does not exist.

    Raises:
      ValueError: a header without the columns read, or a fold that is not
        an integer >= 0 (names the file and line).
    """
    path = pathlib.Path(csv_path)
    out: dict[tuple[str, str, int], dict[str, int]] = {k: {} for k in keys}
    if not path.is_file():
        return out
    wanted = {(v, e, str(s)): (v, e, s) for v, e, s in keys}
    names = ("variant", "emotion", "seed", "alpha", "fold", "utterance_id")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if not set(names) <= set(header):
            raise ValueError(
                f"{path}:1: header must hold {list(names)}; got {header}."
            )
        col = [header.index(c) for c in names]
        for row in reader:
            if len(row) < len(header):
                continue
            v, e, s, a, fold, uid = (row[i] for i in col)
            key = wanted.get((v, e, s))
            if key is None or a != "":
                continue
            if not fold.isdigit():
                raise ValueError(
                    f"{path}:{reader.line_num}: fold must be an integer "
                    f">= 0, got {fold!r}."
                )
            out[key][uid] = int(fold)
    return out


@dataclasses.dataclass(frozen=True)
class TsneSelection:
    """The points of one Fig. 2: held-out utterances of ONE fold model.

    Out-of-fold embeddings pool the test sets of the fold models (one per
    leave-one-session-out fold, paper §2.2.3); each model has its own
    embedding space, so one t-SNE map shows one model's held-out test
    utterances only: the same fold (and so the same utterances) for every
    variant.

    Attributes:
      fold: the fold whose model embedded every plotted point.
      utterance_id: [M] plotted utterances, sorted.
      rows: variant → [M] rows of that variant's embeddings file, aligned
        with ``utterance_id``; every one of them has fold ``fold``.
      held_out: H >= M, utterances that fold holds out in every variant
        (M < H when a sample of them is plotted).
    """

    fold: int
    utterance_id: np.ndarray
    rows: dict[str, np.ndarray]
    held_out: int


def select_tsne_rows(
    ids: Mapping[str, np.ndarray],
    folds: Mapping[str, np.ndarray],
    *,
    sample_size: int,
    rng: np.random.Generator,
    fold: int | None = None,
) -> TsneSelection | None:
    """Picks one fold model and a sample of its held-out utterances.

    Args:
      ids: variant → [N_v] utterance ids of its embeddings file.
      folds: variant → [N_v] fold of each row (< 0: unknown, never
        picked).
      sample_size: at most this many utterances are kept.
      rng: draws the sample (sorted afterwards).
      fold: the fold to plot; None picks the fold that holds out the most
        utterances present in every variant (the smallest such fold on a
        tie).

    Returns:
      The selection, or None when no fold (or not ``fold``) holds out an
      utterance of every variant.
    """
    per_fold: dict[int, set[str]] | None = None
    for v, vid in ids.items():
        f_v = np.asarray(folds[v])
        by_fold: dict[int, set[str]] = {}
        for uid, f in zip(np.asarray(vid).tolist(), f_v.tolist(), strict=True):
            if f >= 0:
                by_fold.setdefault(int(f), set()).add(uid)
        if per_fold is None:
            per_fold = by_fold
        else:
            per_fold = {
                f: per_fold[f] & by_fold[f]
                for f in per_fold.keys() & by_fold.keys()
            }
    shared = {f: u for f, u in (per_fold or {}).items() if u}
    if fold is None and shared:
        fold = min(shared, key=lambda f: (-len(shared[f]), f))
    if fold not in shared:
        return None
    common = np.asarray(sorted(shared[fold]))
    take = min(sample_size, common.size)
    sample = common[np.sort(rng.choice(common.size, take, replace=False))]
    rows = {}
    for v, vid in ids.items():
        f_v = np.asarray(folds[v])
        pos = {
            u: i
            for i, u in enumerate(np.asarray(vid).tolist())
            if f_v[i] == fold
        }
        rows[v] = np.asarray([pos[u] for u in sample.tolist()], np.int64)
    return TsneSelection(
        fold=int(fold), utterance_id=sample, rows=rows, held_out=common.size
    )


_SESSION = re.compile(r"^(Ses\d+)")


def held_out_session(utterance_ids: Sequence[str]) -> str | None:
    """The IEMOCAP session a fold holds out, read from its utterance ids.

    Returns:
      e.g. ``"Ses03"`` when every id starts with the same ``Ses<digits>``
      (IEMOCAP's naming), else None (another corpus: folds come from its
      manifest).
    """
    found = {m[1] if (m := _SESSION.match(u)) else None for u in utterance_ids}
    return found.pop() if len(found) == 1 else None


def tsne_file_name(emotion: str, seed: int, fold: int) -> str:
    """``fig2_tsne_<emotion>_seed<k>_fold<f>.png``."""
    return f"fig2_tsne_{emotion}_seed{seed}_fold{fold}.png"


TSNE_FILE = re.compile(
    r"^fig2_tsne_(?P<emotion>.+)_seed(?P<seed>\d+)_fold(?P<fold>\d+)\.png$"
)
"""Parses :func:`tsne_file_name` (figures of releases that pooled every
fold's model into one map have no ``_fold<f>`` and do not match)."""


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


def _choose_tsne_run(
    index: Mapping[tuple[str, str, int], pathlib.Path],
    variants: Sequence[str],
    emotion: str,
    seed: int,
) -> tuple[str, int] | None:
    """(emotion, seed) of Fig. 2: ``emotion`` else the paper's order,
    ``seed`` else the smallest; one where every variant exists first."""
    emotions = sorted({e for v, e, _ in index if v in variants})
    for need_all in (True, False):
        for e in _emotion_order(emotion, emotions):
            seeds = sorted(
                {
                    s
                    for v, e2, s in index
                    if e2 == e
                    and v in variants
                    and (
                        not need_all
                        or all((w, e, s) in index for w in variants)
                    )
                }
            )
            if seeds:
                return e, seed if seed in seeds else seeds[0]
    return None


def _folds_of(
    workdir: pathlib.Path,
    data: Mapping[str, Mapping[str, Any]],
    emotion: str,
    seed: int,
) -> dict[str, np.ndarray] | None:
    """variant → [N] fold of each embeddings row (-1: unknown).

    From the file's ``fold`` array; for files of older releases, from
    ``predictions.csv``. None (with a warning naming the fix) when some
    variant's folds are known from neither.
    """
    out = {v: d["fold"] for v, d in data.items() if d["fold"] is not None}
    lacking = [v for v in data if v not in out]
    if not lacking:
        return out
    keys = [(v, emotion, seed) for v in lacking]
    csv_folds = prediction_folds(workdir_lib.Layout(workdir).predictions, keys)
    for v, key in zip(lacking, keys, strict=True):
        known = csv_folds[key]
        if not known:
            logging.warning(
                "Fig. 2 (t-SNE) skipped: embeddings/%s_%s_seed%d.npz has no "
                "'fold' array (written by an older release) and %s has no "
                "rows of that run, so the fold model of each embedding is "
                "unknown and one model's embeddings cannot be told apart "
                "from the others'. Training with this release writes "
                "embeddings with 'fold' (python -m fairser_jax.train "
                "--workdir=%s --overwrite retrains from scratch).",
                v,
                emotion,
                seed,
                workdir_lib.Layout(workdir).predictions,
                workdir,
            )
            return None
        ids = data[v]["utterance_id"].tolist()
        out[v] = np.asarray([known.get(u, -1) for u in ids], np.int64)
    return out


def tsne_figure(
    workdir: str | pathlib.Path,
    *,
    emotion: str = "anger",
    seed: int = 0,
    fold: int | None = None,
    sample_size: int = 1500,
    random_state: int = 0,
) -> pathlib.Path | None:
    """Fig. 2 analogue: t-SNE of one fold model's test embeddings per variant.

    Picks the ``emotion`` detector of Fair_spk and Fair_rat (another
    emotion, in the paper's order, if that one is absent; the smallest seed
    if ``seed`` is absent) and ONE fold model of each: the same fold for
    both (default: the fold that holds out the most utterances), so each
    map is one model's embedding space, as the paper's Fig. 2 plots one
    detector's embeddings. (An embeddings file pools the out-of-fold rows
    of all fold models, whose spaces are not aligned; one t-SNE of all of
    them clusters by fold, not by data.) From that fold's held-out
    utterances it draws the same random sample of up to ``sample_size``
    for both models (paper: 1500 from Anger), embeds each model's 128-d
    embeddings with sklearn's t-SNE, and colours each map twice: by
    speaker gender and by rater gender. The suptitle names the emotion,
    seed, fold (and the IEMOCAP session it holds out) and the number of
    utterances.

    Args:
      workdir: holds ``embeddings/<variant>_<emotion>_seed<k>.npz`` (and
        ``predictions.csv``, read for the folds of files without
        ``fold``).
      emotion: preferred detector.
      seed: preferred training seed.
      fold: the fold model to plot; None: the largest held-out set.
      sample_size: maximum number of utterances plotted.
      random_state: seeds both the sample and t-SNE.

    Returns:
      Path of ``figures/fig2_tsne_<emotion>_seed<k>_fold<f>.png``, or None
      when neither model has embeddings, the folds of the rows are unknown
      (logged), or the fold holds out fewer than 4 shared utterances.
    """
    from sklearn.manifold import TSNE

    workdir = pathlib.Path(workdir)
    index = _embedding_index(workdir)
    variants = ("fair_spk", "fair_rat")
    chosen = _choose_tsne_run(index, variants, emotion, seed)
    if chosen is None:
        return None
    emo, run_seed = chosen
    present = [v for v in variants if (v, emo, run_seed) in index]
    data = {v: load_embeddings(index[(v, emo, run_seed)]) for v in present}
    folds = _folds_of(workdir, data, emo, run_seed)
    if folds is None:
        return None
    rng = np.random.default_rng(random_state)
    pick = select_tsne_rows(
        {v: d["utterance_id"] for v, d in data.items()},
        folds,
        sample_size=sample_size,
        rng=rng,
        fold=fold,
    )
    if pick is None or pick.utterance_id.size < 4:
        logging.warning(
            "t-SNE skipped: %s shared held-out utterances of %s in %s",
            "no" if pick is None else pick.utterance_id.size,
            "any fold" if fold is None else f"fold {fold}",
            [str(index[(v, emo, run_seed)]) for v in present],
        )
        return None
    take = pick.utterance_id.size
    draw_order = rng.permutation(take)
    session = held_out_session(pick.utterance_id.tolist())

    fig = Figure(figsize=(8.5, 0.5 + 4.2 * len(present)), layout="constrained")
    axes = fig.subplots(len(present), 2, squeeze=False)
    letters = iter("abcd")
    for row, v in enumerate(present):
        d = data[v]
        rows = pick.rows[v]
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
                f"({next(letters)}) {variants_lib.display_name(v)} "
                f"(fold {pick.fold} model), coloured by {side} "
                f"{d[f'{side}_attribute']}",
                fontsize=9,
            )
    held = f"held-out session {session}" if session else "its test set"
    sampled = (
        f"all {take}"
        if take == pick.held_out
        else f"a random {take} of {pick.held_out}"
    )
    fig.suptitle(
        f"t-SNE of test embeddings, {emo.capitalize()} detector, seed "
        f"{run_seed}: the fold {pick.fold} model of each variant\n"
        f"({held}; {sampled} utterances it holds out, the same for both "
        "models)",
        fontsize=10,
    )
    out = figures_dir(workdir) / tsne_file_name(emo, run_seed, pick.fold)
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
    `parity_variants()` that have runs are drawn; fixed-α runs are not.

    Args:
      results: parsed ``results.json``.
      out_dir: folder for ``parity_bars.png``.

    Returns:
      The PNG path, or None when no such run exists.
    """
    drawn = parity_variants()
    runs = [r for r in _runs(results) if r["variant"] in drawn]
    variants = [v for v in drawn if any(r["variant"] == v for r in runs)]
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


ALPHA_MIN_BINS = 10
ALPHA_MAX_BINS = 50
"""Bounds on the bins of Fig. 3b over the range of the recorded α."""


def load_alpha_trace(workdir: str | pathlib.Path) -> dict[str, np.ndarray]:
    """``<workdir>/alpha_trace.npz`` by :func:`fairser_jax.results.
    read_alpha_trace`, or {} when the workdir has none."""
    path = workdir_lib.Layout(workdir).alpha_trace
    return results_lib.read_alpha_trace(path) if path.is_file() else {}


def alpha_bin_edges(values: np.ndarray) -> np.ndarray:
    """Bins that follow the spread of α, over its own range.

    NumPy's ``'auto'`` rule (the larger of Sturges' and Freedman-Diaconis'
    bin counts) over [min, max], clipped to
    [:data:`ALPHA_MIN_BINS`, :data:`ALPHA_MAX_BINS`] equal bins, so an α
    with SD 0.01 gets tens of bars, not the two of 0.05-wide bins over
    [0, 1]. A constant α gets 10 bins over ±0.005 around it.

    Args:
      values: [B] α values (B >= 1).

    Returns:
      [K + 1] increasing edges, ``edges[0] == min`` and ``edges[-1] ==
      max`` (unless constant).
    """
    values = np.asarray(values, np.float64)
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return np.linspace(low - 0.005, high + 0.005, ALPHA_MIN_BINS + 1)
    auto = np.histogram_bin_edges(values, bins="auto").size - 1
    k = int(np.clip(auto, ALPHA_MIN_BINS, ALPHA_MAX_BINS))
    return np.linspace(low, high, k + 1)


def _title_lines(*lines: str, width: int = 72) -> str:
    """Each line wrapped at ``width`` characters (a title of 8.5 pt fits
    a 5.6 in wide figure)."""
    return "\n".join(textwrap.fill(line, width) for line in lines)


def alpha_histogram_figure(
    results: Mapping[str, Any],
    out_dir: str | pathlib.Path,
    *,
    emotion: str = "anger",
    trace: Mapping[str, np.ndarray] | None = None,
) -> pathlib.Path | None:
    """Fig. 3b analogue: histogram of the batch-wise α of eq. (3).

    Every recorded batch of every seed and fold of one Proposed detector.
    With ``trace`` (the raw values of ``alpha_trace.npz``) the bins follow
    the spread (:func:`alpha_bin_edges`) and the x-axis spans the values'
    own range, with a strip below that places that range in the full
    [0, 1] of α; the title gives the mean, SD, min and max. Without it,
    the 20 stored bins of width 0.05 over [0, 1] of
    ``results.json["alpha_trace"][emotion]`` are drawn (which cannot show
    a spread below 0.05). The title names the emotion.

    Args:
      results: parsed ``results.json``.
      out_dir: folder for ``fig3b_alpha_hist_<emotion>.png``.
      emotion: the detector (Anger in the paper).
      trace: :func:`load_alpha_trace` of the workdir, or None / {} to use
        the stored counts.

    Returns:
      The PNG path, or None when that emotion has no α trace.

    Raises:
      ValueError: the summary is malformed (names the field).
    """
    values, num_runs = results_lib.alpha_values(trace or {}, emotion)
    if values.size:
        return _alpha_histogram_raw(values, num_runs, out_dir, emotion)
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
    fig = Figure(figsize=(5.6, 3.6), layout="constrained")
    ax = fig.subplots()
    _alpha_stairs(ax, counts, edges)
    mean, sd = summary.get("mean"), summary.get("sd")
    if mean is not None:
        ax.axvline(mean, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xticks(np.linspace(0, 1, 11))
    ax.set_xlabel("α (batch-wise, eq. 3)")
    ax.set_ylabel("number of batches")
    stats = (
        ""
        if mean is None or sd is None
        else f"; mean {mean:.3f}, SD {numbers.format_sig(sd)}"
    )
    ax.set_title(
        _title_lines(
            f"Fig. 3b: batch-wise α of Proposed, {emotion.capitalize()}",
            f"{int(counts.sum())} batches of {summary.get('num_runs', '?')} "
            f"runs{stats}; {counts.size} stored bins of results.json "
            "(alpha_trace.npz absent)",
        ),
        fontsize=8.5,
    )
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, pathlib.Path(out_dir) / f"fig3b_alpha_hist_{emotion}.png")


def _alpha_stairs(ax, counts: np.ndarray, edges: np.ndarray) -> None:
    ax.stairs(
        counts,
        edges,
        fill=True,
        color="#4c72b0",
        edgecolor="black",
        linewidth=0.5,
    )


def _alpha_histogram_raw(
    values: np.ndarray,
    num_runs: int,
    out_dir: str | pathlib.Path,
    emotion: str,
) -> pathlib.Path:
    """Fig. 3b from the raw α: bins over their range, [0, 1] strip below."""
    edges = alpha_bin_edges(values)
    counts, _ = np.histogram(values, bins=edges)
    low, high = float(values.min()), float(values.max())
    mean, sd = float(values.mean()), float(values.std())
    zoomed = high - low < 0.5
    fig = Figure(figsize=(5.6, 4.2 if zoomed else 3.6), layout="constrained")
    if zoomed:
        ax, context = fig.subplots(
            2, 1, gridspec_kw={"height_ratios": [4.0, 1.0]}
        )
    else:
        ax, context = fig.subplots(), None
    _alpha_stairs(ax, counts.astype(np.float64), edges)
    ax.axvline(mean, color="black", linestyle="--", linewidth=1)
    if zoomed:
        pad = 0.04 * (edges[-1] - edges[0])
        ax.set_xlim(edges[0] - pad, edges[-1] + pad)
    else:
        ax.set_xlim(0, 1)
        ax.set_xticks(np.linspace(0, 1, 11))
    ax.set_xlabel(
        f"α (batch-wise, eq. 3); {edges.size - 1} bins of width "
        f"{numbers.format_sig(edges[1] - edges[0])}"
    )
    ax.set_ylabel("number of batches")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(
        _title_lines(
            f"Fig. 3b: batch-wise α of Proposed, {emotion.capitalize()}",
            f"{values.size} batches of {num_runs} runs: mean {mean:.3f}, "
            f"SD {numbers.format_sig(sd)}, range {low:.3f}–{high:.3f}",
        ),
        fontsize=8.5,
    )
    if context is not None:
        context.axvspan(low, high, color="#4c72b0", alpha=0.25, linewidth=0)
        _alpha_stairs(context, counts.astype(np.float64), edges)
        context.set_xlim(0, 1)
        context.set_xticks(np.linspace(0, 1, 11))
        context.set_yticks([])
        context.tick_params(labelsize=7)
        context.set_xlabel(
            "the same histogram on the full range of α, [0, 1]", fontsize=7
        )
    return _save(fig, pathlib.Path(out_dir) / f"fig3b_alpha_hist_{emotion}.png")


ALPHA_DISTANCE_FILE = "alpha_distance_{emotion}.png"


def alpha_distance_figure(
    trace: Mapping[str, np.ndarray],
    out_dir: str | pathlib.Path,
    *,
    emotion: str = "anger",
    variant: str = "proposed",
    distance: str | None = None,
) -> pathlib.Path | None:
    """D and α of eq. (3) over training, beside Fig. 3b.

    Two panels sharing the x-axis (every batch of training, in order): the
    distance D between μ_SPK and μ_RAT, and the α it gave; each the mean
    over the runs (seeds × folds) of one detector with a band of ± 1 SD
    over the runs. A flat α next to a moving D shows a map D ↦ α that
    does not react; a flat D shows a distance that does not see the batch.

    Args:
      trace: :func:`load_alpha_trace` of the workdir.
      out_dir: folder for ``alpha_distance_<emotion>.png``.
      emotion: the detector.
      variant: the α-tracing variant.
      distance: the name of D (``config.two_sided.distance``), for the
        axis label; None leaves it out.

    Returns:
      The PNG path, or None when the trace has no D for that detector
      (a trace of an earlier release holds α only).
    """
    alphas = results_lib.trace_runs(trace, emotion, variant, "alpha")
    dists = results_lib.trace_runs(trace, emotion, variant, "distance")
    if not dists or set(alphas) != set(dists):
        return None
    keys = list(alphas)
    lengths = {alphas[k].size for k in keys} | {dists[k].size for k in keys}
    if len(lengths) != 1:
        return None
    a = np.stack([alphas[k] for k in keys])
    d = np.stack([dists[k] for k in keys])
    x = np.arange(1, a.shape[1] + 1)
    fig = Figure(figsize=(5.6, 4.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax, values, label, color in (
        (top, d, "D" + (f" ({distance})" if distance else ""), "#4c72b0"),
        (bottom, a, "α (eq. 3)", PROPOSED_COLOR),
    ):
        mean, sd = values.mean(axis=0), values.std(axis=0)
        ax.fill_between(
            x,
            mean - sd,
            mean + sd,
            color=color,
            alpha=0.25,
            linewidth=0,
            label="± 1 SD over runs",
        )
        ax.plot(x, mean, color=color, linewidth=0.8, label="mean over runs")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    bottom.set_xlabel("batch (every training step, in order)")
    top.legend(loc="best", fontsize=7)
    pooled_d, pooled_a = d.ravel(), a.ravel()
    corr = (
        float(np.corrcoef(pooled_a, pooled_d)[0, 1])
        if pooled_a.std() > 0 and pooled_d.std() > 0
        else float("nan")
    )
    cv = (
        pooled_d.std() / pooled_d.mean()
        if pooled_d.mean() > 0
        else float("nan")
    )
    top.set_title(
        _title_lines(
            f"D and α over training: {variants_lib.display_name(variant)}, "
            f"{emotion.capitalize()}",
            f"{len(keys)} runs × {a.shape[1]} batches; D: CV "
            f"{numbers.format_sig(cv)}; α: SD {numbers.format_sig(pooled_a.std())}"
            f"; corr(α, D) {numbers.format_sig(corr)}",
        ),
        fontsize=8.5,
    )
    return _save(
        fig, pathlib.Path(out_dir) / ALPHA_DISTANCE_FILE.format(emotion=emotion)
    )


def run_products(runs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Per-run ΔSP_spk × ΔSP_rat of the runs that have both."""
    spk = [r["dsp_spk"] for r in runs if r.get("dsp_rat") is not None]
    rat = [r["dsp_rat"] for r in runs if r.get("dsp_rat") is not None]
    if not spk:
        return np.zeros(0)
    return np.asarray(metrics.parity_product(spk, rat), dtype=np.float64)


T_INTERVAL_MIN_SEEDS = 5
"""Fig. 3a draws an interval of Proposed's mean only from this many seeds
on; with fewer, the seeds themselves and their mean are drawn."""


def t_interval(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """Student-t confidence interval of the mean of ``values``.

    .. math::
      \\bar x \\pm t_{(1+c)/2,\\, n-1}\\, s / \\sqrt{n}

    with ``s`` the sample SD (ddof = 1).

    Args:
      values: [n] values, n >= 2.
      confidence: c in (0, 1).

    Returns:
      ``(low, high)``.

    Raises:
      ValueError: fewer than 2 values or ``confidence`` outside (0, 1).
    """
    from scipy import stats

    x = np.asarray(values, np.float64)
    if x.size < 2 or not 0 < confidence < 1:
        raise ValueError(
            "t_interval needs >= 2 values and 0 < confidence < 1; got "
            f"{x.size} values, confidence {confidence}."
        )
    half = stats.t.ppf((1 + confidence) / 2, x.size - 1) * (
        x.std(ddof=1) / np.sqrt(x.size)
    )
    return float(x.mean() - half), float(x.mean() + half)


def _count_text(counts: Sequence[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low}" if low == high else f"{low}–{high}"


def fixed_alpha_figure(
    results: Mapping[str, Any],
    out_dir: str | pathlib.Path,
    *,
    emotion: str = "anger",
    confidence: float = 0.95,
    min_seeds: int = T_INTERVAL_MIN_SEEDS,
) -> pathlib.Path | None:
    """Fig. 3a analogue: ΔSP_spk × ΔSP_rat against a fixed α.

    Fixed α (black): every seed's product as a small hollow point, and the
    mean over seeds with error bars of ± 1 sample SD over seeds
    (:func:`fairser_jax.metrics.mean_sd`; none with one seed). Proposed
    (orange): each seed's product as a dotted line, the mean over seeds as
    a solid line, and, only when Proposed has at least ``min_seeds``
    seeds, the ``confidence`` Student-t interval of that mean
    (:func:`t_interval`) as a grey band (the paper's grey 95 % interval);
    a legend entry names the kind of interval and n, or says that there
    are too few seeds for one. The legend sits below the axes, off the
    data.

    Args:
      results: parsed ``results.json``.
      out_dir: folder for ``fig3a_fixed_alpha_<emotion>.png``.
      emotion: the detector (Anger in the paper).
      confidence: of the interval of Proposed's mean.
      min_seeds: the fewest Proposed seeds for which it is drawn.

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
    per_alpha = [
        run_products([r for r in fixed if round(float(r["alpha"]), 9) == a])
        for a in alphas
    ]
    summaries = [metrics.mean_sd(p) for p in per_alpha]
    proposed = run_products(
        [r for r in runs if r["variant"] == "proposed" and r["emotion"] == emo]
    )

    fig = Figure(figsize=(6.0, 4.4), layout="constrained")
    ax = fig.subplots()
    handles: list[Any] = []
    point_x = np.concatenate(
        [np.full(p.size, a) for a, p in zip(alphas, per_alpha, strict=True)]
    )
    points = ax.scatter(
        point_x,
        np.concatenate(per_alpha),
        s=14,
        facecolors="none",
        edgecolors="#555555",
        linewidths=0.8,
        zorder=3,
        label="fixed α: each seed (n = "
        f"{_count_text([p.size for p in per_alpha])} per α)",
    )
    means = np.asarray([m for m, _ in summaries])
    sds = np.asarray([sd for _, sd in summaries])
    several = np.asarray([p.size > 1 for p in per_alpha])
    if several.any():
        ax.errorbar(
            np.asarray(alphas)[several],
            means[several],
            yerr=sds[several],
            fmt="none",
            ecolor="black",
            elinewidth=1.0,
            capsize=2.5,
            zorder=4,
        )
    (line,) = ax.plot(
        alphas,
        means,
        color="black",
        marker="o",
        markersize=3,
        linewidth=1.5,
        zorder=4,
        label="fixed α: mean ± SD over seeds"
        if several.any()
        else "fixed α: mean (one seed, no SD)",
    )
    handles += [line, points]
    if proposed.size:
        for p in proposed:
            ax.axhline(p, color=PROPOSED_COLOR, linestyle=":", linewidth=1.2)
        handles.append(
            Line2D(
                [],
                [],
                color=PROPOSED_COLOR,
                linestyle=":",
                label=f"Proposed: each seed (n = {proposed.size})",
            )
        )
        mean = float(proposed.mean())
        ax.axhline(mean, color=PROPOSED_COLOR, linewidth=1.6)
        if proposed.size >= min_seeds:
            low, high = t_interval(proposed, confidence)
            ax.axhspan(low, high, color="grey", alpha=0.3, linewidth=0)
            handles.append(
                Patch(
                    facecolor=(0.5, 0.5, 0.5, 0.3),
                    edgecolor=PROPOSED_COLOR,
                    label=f"Proposed mean, {100 * confidence:g} % "
                    f"t-interval, n = {proposed.size}",
                )
            )
        else:
            handles.append(
                Line2D(
                    [],
                    [],
                    color=PROPOSED_COLOR,
                    linewidth=1.6,
                    label=f"Proposed mean (n = {proposed.size}; no interval "
                    f"below {min_seeds} seeds)",
                )
            )
    ax.set_xlabel("fixed α")
    ax.set_ylabel("ΔSP_spk × ΔSP_rat")
    ax.set_xlim(0, 1)
    ax.set_xticks(alphas if len(alphas) <= 10 else np.linspace(0, 1, 11))
    ax.set_title(
        f"Fig. 3a: fixed α vs Proposed, {emo.capitalize()} detector",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=7)
    return _save(fig, pathlib.Path(out_dir) / f"fig3a_fixed_alpha_{emo}.png")


# ---------------------------------------------------------------- Pareto


PARETO_FILE = "pareto_{emotion}.png"

_OTHER_COLORS = ("#17becf", "#e377c2", "#bcbd22", "#2ca02c", "#d62728")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes.

    A point (x, y) is beaten by one with x' <= x and y' >= y, one of them
    strictly (lower ΔSP_spk × ΔSP_rat is fairer, higher F1 better).

    Args:
      points: [P] (x, y) pairs.

    Returns:
      The non-dominated points' indices, in increasing x.
    """
    order = sorted(
        range(len(points)), key=lambda i: (points[i][0], -points[i][1])
    )
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _pareto_name(run: Mapping[str, Any]) -> str:
    name = f"{variants_lib.display_name(run['variant'])} s{run['seed']}"
    alpha = run.get("alpha")
    return name if alpha is None else f"{name} α={float(alpha):g}"


def pareto_figure(
    results: Mapping[str, Any],
    out_dir: str | pathlib.Path,
    emotion: str,
    *,
    constant: Collection[results_lib.RunKey] = frozenset(),
) -> pathlib.Path | None:
    """F1 against ΔSP_spk × ΔSP_rat of every run of one detector.

    One small point per (variant, seed) — every fixed α in one colour,
    "Fixed α" — and the mean over the variant's runs (as Tables 2 and 3
    average them) as a larger labelled marker; for fixed α one mean per α,
    unlabelled. A dashed line joins the means that no other mean beats on
    both axes (:func:`pareto_front`). Runs that predict one class for
    every utterance (``constant``; ΔSP = 0 is trivial, not fair) are drawn
    hollow and named in the legend. Up and left is better.

    Args:
      results: parsed ``results.json``.
      out_dir: folder for ``pareto_<emotion>.png``.
      emotion: the detector.
      constant: run keys (:func:`fairser_jax.results.run_key` form) of the
        constant-predictor runs
        (:func:`fairser_jax.report.claims.constant_runs`).

    Returns:
      The PNG path, or None when the detector has no run with F1 and both
      parities.
    """
    runs = [
        r
        for r in _runs(results)
        if r["emotion"] == emotion
        and all(r.get(m) is not None for m in ("f1", "dsp_spk", "dsp_rat"))
    ]
    if not runs:
        return None
    present = list(dict.fromkeys(r["variant"] for r in runs))
    variants = [v for v in variants_lib.names() if v in present]
    variants += [v for v in present if v not in variants]
    others = iter(_OTHER_COLORS * (1 + len(variants) // len(_OTHER_COLORS)))
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    ax = fig.subplots()
    handles: list[Any] = []
    means: list[tuple[float, float]] = []
    hollow: list[str] = []
    for v in variants:
        vr = [r for r in runs if r["variant"] == v]
        color = variants_lib.color(v) or next(others)
        x = run_products(vr)
        y = 100.0 * np.asarray([float(r["f1"]) for r in vr])
        const = np.asarray([results_lib.run_key(r) in constant for r in vr])
        hollow += [_pareto_name(r) for r, c in zip(vr, const, strict=True) if c]
        ax.scatter(
            x[~const],
            y[~const],
            s=14,
            color=color,
            alpha=0.7,
            linewidths=0,
            zorder=3,
        )
        ax.scatter(
            x[const],
            y[const],
            s=34,
            facecolors="none",
            edgecolors=color,
            linewidths=1.3,
            zorder=3,
        )
        name = variants_lib.display_name(v)
        if v == "fixed_alpha":
            name = "Fixed α"
            alphas = np.asarray(
                [round(float(r.get("alpha") or 0), 9) for r in vr]
            )
            for a in sorted(set(alphas.tolist())):
                pick = alphas == a
                means.append((float(x[pick].mean()), float(y[pick].mean())))
                ax.scatter(
                    *means[-1],
                    s=40,
                    marker="D",
                    color=color,
                    edgecolors="black",
                    linewidths=0.6,
                    zorder=4,
                )
            handles.append(
                Line2D(
                    [],
                    [],
                    color=color,
                    marker="D",
                    linestyle="none",
                    markeredgecolor="black",
                    label=f"{name}: mean per α (small: runs)",
                )
            )
            continue
        means.append((float(x.mean()), float(y.mean())))
        ax.scatter(
            *means[-1],
            s=110,
            color=color,
            edgecolors="black",
            linewidths=0.8,
            zorder=5,
        )
        ax.annotate(
            name,
            means[-1],
            xytext=(6, 5),
            textcoords="offset points",
            fontsize=8,
            zorder=6,
        )
        handles.append(
            Line2D(
                [],
                [],
                color=color,
                marker="o",
                linestyle="none",
                markeredgecolor="black",
                label=f"{name}: mean of {len(vr)} (small: runs)",
            )
        )
    front = [means[i] for i in pareto_front(means)]
    if len(front) > 1:
        ax.plot(
            *zip(*front, strict=True),
            color="black",
            linestyle="--",
            linewidth=0.8,
            zorder=2,
        )
        handles.append(
            Line2D(
                [],
                [],
                color="black",
                linestyle="--",
                linewidth=0.8,
                label="means no other mean beats",
            )
        )
    if hollow:
        shown = ", ".join(hollow[:6]) + (
            f" and {len(hollow) - 6} more" if len(hollow) > 6 else ""
        )
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                markerfacecolor="none",
                markeredgecolor="black",
                linestyle="none",
                label=textwrap.fill(
                    f"hollow: constant predictor (one class for every "
                    f"utterance; ΔSP = 0 is trivial): {shown}",
                    70,
                ),
            )
        )
    ax.set_xlabel("ΔSP_spk × ΔSP_rat of each run (lower is fairer)")
    ax.set_ylabel("F1 (%)")
    ax.grid(alpha=0.3)
    ax.set_title(
        f"F1 vs ΔSP_spk × ΔSP_rat, {emotion.capitalize()} detector "
        "(up and left is better)",
        fontsize=10,
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=7)
    return _save(
        fig, pathlib.Path(out_dir) / PARETO_FILE.format(emotion=emotion)
    )


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
    folder = workdir_lib.Layout(workdir).training
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
    distance: str | None = None,
    constant: Collection[results_lib.RunKey] | None = None,
) -> dict[str, list[pathlib.Path]]:
    """Draws every figure whose inputs exist.

    Fig. 3a and 3b are drawn for every emotion that has fixed-α runs or an
    α trace, the preferred one first; Fig. 3b bins the raw α of
    ``<workdir>/alpha_trace.npz`` when it exists (else the counts stored
    in ``results.json``).

    Args:
      workdir: the run directory; PNGs and PDFs go to
        ``<workdir>/figures``.
      results: parsed ``results.json``.
      tsne_sample_size: utterances in the Fig. 2 t-SNE (paper: 1500).
      emotion: preferred detector of Figs. 2 and 3 (paper: Anger).
      distance: ``config.two_sided.distance``, named in the D/α figure.
      constant: keys of the constant-predictor runs, marked in the Pareto
        figures; default :func:`fairser_jax.report.claims.constant_runs` of
        ``<workdir>/predictions.csv``.

    Returns:
      ``{"tsne", "parity_bars", "alpha_histogram", "alpha_distance",
      "fixed_alpha", "loss_curves"}`` → the PNG paths drawn (empty when the inputs are
      absent); each has a PDF of the same stem beside it.
    """
    out = figures_dir(workdir)
    trace = load_alpha_trace(workdir)
    if constant is None:
        constant = claims_lib.constant_runs(
            workdir_lib.Layout(workdir).predictions
        )
    emotions = _emotion_order(
        emotion,
        [
            *EMOTIONS,
            *(r["emotion"] for r in _runs(results)),
            *results.get("alpha_trace", {}),
            *results_lib.trace_emotions(trace),
        ],
    )
    drawn = {
        "tsne": [
            tsne_figure(workdir, emotion=emotion, sample_size=tsne_sample_size)
        ],
        "parity_bars": [parity_bars_figure(results, out)],
        "pareto": [
            pareto_figure(results, out, e, constant=constant)
            for e in in_paper_order(r["emotion"] for r in _runs(results))
        ],
        "alpha_histogram": [
            alpha_histogram_figure(results, out, emotion=e, trace=trace)
            for e in emotions
        ],
        "alpha_distance": [
            alpha_distance_figure(trace, out, emotion=e, distance=distance)
            for e in emotions
        ],
        "fixed_alpha": [
            fixed_alpha_figure(results, out, emotion=e) for e in emotions
        ],
        "loss_curves": [loss_curves_figure(workdir)],
    }
    return {k: [p for p in v if p is not None] for k, v in drawn.items()}
