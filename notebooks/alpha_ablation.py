# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Balancing the two sides: an α ablation
#
# The paper's two-sided model (§3.1, eq. 3) trains
# `0.5 · L_RAT + α · L_SPK` starting from the trained Fair_rat, with a
# per-batch α derived from the Wasserstein distance D between the
# speaker-debiased embedding (frozen Fair_spk) and the embedding of the model
# being trained. This notebook asks the questions of the paper's Fig. 3 on
# the built-in demo corpus:
#
# 1. Is a dynamic α better than any constant one? (Fig. 3a: the fixed-α
#    sweep against Proposed.)
# 2. What values does α take? (Fig. 3b: its histogram.)
# 3. How do D and α move during training?
# 4. Which reading of D and of the map D ↦ α gives the α the paper
#    describes? (The distance: `sinkhorn`, `aligned_sinkhorn`,
#    `gromov_wasserstein`; the map: `ema_ratio`, `ema_zscore`,
#    `saturating`, `constant`.)
#
# Everything runs through the library the command-line tools use, so the
# same cells work on a real IEMOCAP copy: set `CORPUS` and `RATER_GENDER`.
# The source of truth is this `.py` file (jupytext percent format).

# %%
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from fairser_jax import config as config_lib
from fairser_jax import metrics, pipeline
from fairser_jax import results as results_lib
from fairser_jax.data import features as features_lib
from fairser_jax.report import figures
from fairser_jax.train import outputs, runner
from fairser_jax.train import runs as runs_lib

# Parameters (the tests shrink them through environment variables).
WORKDIR = pathlib.Path(
    os.environ.get("FAIRSER_NB_WORKDIR", "/tmp/fairser_alpha_nb")
)
CORPUS = os.environ.get("FAIRSER_NB_CORPUS", "")  # "" = demo corpus
RATER_GENDER = os.environ.get("FAIRSER_NB_RATER_GENDER", "")
NUM_UTTERANCES = int(os.environ.get("FAIRSER_NB_UTTERANCES", "600"))
CHECKPOINT = os.environ.get("FAIRSER_NB_CHECKPOINT", "random-base")
EPOCHS = int(os.environ.get("FAIRSER_NB_EPOCHS", "30"))
SEEDS = tuple(range(int(os.environ.get("FAIRSER_NB_SEEDS", "5"))))
EMOTION = os.environ.get("FAIRSER_NB_EMOTION", "anger")
ALPHAS = tuple(
    float(v)
    for v in os.environ.get(
        "FAIRSER_NB_ALPHAS", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9"
    ).split(",")
)
PROGRESS = os.environ.get("FAIRSER_NB_PROGRESS", "1") == "1"
ALPHA_FNS = tuple(
    os.environ.get(
        "FAIRSER_NB_ALPHA_FNS", "ema_ratio,ema_zscore,saturating,constant"
    ).split(",")
)
DISTANCES = tuple(
    os.environ.get(
        "FAIRSER_NB_DISTANCES", "sinkhorn,aligned_sinkhorn,gromov_wasserstein"
    ).split(",")
)

# %% [markdown]
# ## Train Proposed and the fixed-α sweep
# One call of the pipeline: asking for `proposed` and `fixed_alpha` trains
# Fair_spk and Fair_rat first (their trained models are Proposed's anchor
# and reference). Every α of the sweep is a run inside ONE stacked set.

# %%
cfg = config_lib.get_default_config()
cfg.data.corpus = CORPUS
cfg.data.rater_gender = RATER_GENDER
cfg.demo.num_utterances = NUM_UTTERANCES
cfg.features.checkpoint = CHECKPOINT
cfg.features.layer = 1 if CHECKPOINT.startswith("random") else -1
cfg.train.epochs = EPOCHS
cfg.train.checkpoint_every = EPOCHS
cfg.seeds = SEEDS
cfg.emotions = (EMOTION,)
cfg.variants = ("proposed", "fixed_alpha")
cfg.two_sided.fixed_alphas = ALPHAS
cfg.two_sided.sweep_emotions = (EMOTION,)

pipeline.prepare(cfg, WORKDIR, progress=PROGRESS)
# resume=True: running the notebook again keeps the variants it trained
# (a changed parameter is refused: use another WORKDIR then).
results = pipeline.train(cfg, WORKDIR, resume=True, progress=PROGRESS)
runs = results["runs"]
print(f"{len(runs)} results:", sorted({r["variant"] for r in runs}))

# %% [markdown]
# ## Fig. 3a: fixed α against Proposed
# ΔSP_spk × ΔSP_rat (lower is fairer on both sides at once) for every fixed
# α (black: each seed as a point, the mean ± SD over seeds) and Proposed
# (orange: each seed dotted, their mean solid; a Student-t interval of the
# mean only with at least 5 seeds). The figure is the report's
# (`fairser_jax.report.figures.fixed_alpha_figure`).


# %%
def products(variant: str, alpha: float | None = None) -> np.ndarray:
    """Per-seed ΔSP_spk × ΔSP_rat of one (variant, α) of EMOTION."""
    return np.array(
        [
            r["dsp_spk"] * r["dsp_rat"]
            for r in runs
            if r["variant"] == variant
            and r["emotion"] == EMOTION
            and (alpha is None or abs(r["alpha"] - alpha) < 1e-9)
        ]
    )


figures_dir = WORKDIR / "figures"
figures_dir.mkdir(parents=True, exist_ok=True)
display(Image(filename=figures.fixed_alpha_figure(results, figures_dir)))
sweep = np.array([products("fixed_alpha", a).mean() for a in ALPHAS])
proposed = products("proposed")
best = ALPHAS[int(np.argmin(sweep))]
print(
    f"best fixed α = {best:g}: {sweep.min():.2g}; Proposed: "
    f"{proposed.mean():.2g} ± {metrics.mean_sd(proposed)[1]:.2g} "
    f"({proposed.size} seeds)"
)

# %% [markdown]
# ## Fig. 3b: the batch-wise α of Proposed
# `alpha_trace.npz` holds the α and the distance D of every training batch
# of every Proposed run (keys `proposed/<emotion>/seed<k>/fold<f>/alpha`
# and `.../distance`); the histogram's bins follow the values' spread, and
# the strip below places that range in [0, 1].

# %%
trace = results_lib.read_alpha_trace(WORKDIR / "alpha_trace.npz")
values, _ = results_lib.alpha_values(trace, EMOTION)
hist = figures.alpha_histogram_figure(
    results, figures_dir, emotion=EMOTION, trace=trace
)
display(Image(filename=hist))
print(f"α: mean {values.mean():.3f}, SD {values.std():.2g}")

# %% [markdown]
# ## D and α over training
# Mean ± SD over the runs of every batch's D (top) and α (bottom): the
# report's figure (`fairser_jax.report.figures.alpha_distance_figure`).

# %%
display(
    Image(
        filename=figures.alpha_distance_figure(
            trace, figures_dir, emotion=EMOTION, distance=cfg.two_sided.distance
        )
    )
)

# %% [markdown]
# ## Which reading of D and α?
# The paper says what α does (§3.1, Fig. 3b): it lies in [0, 1], "a higher
# α value signifies a further distance", and its values are diverse (two
# modes near 0.25 and 0.75). It does not say which distance D is, nor how
# α follows from D. `fairser_jax.train.distances` has three distances —
# `sinkhorn` (the two clouds as they are: two independently trained
# networks differ by an arbitrary rotation, which this D mostly measures),
# `aligned_sinkhorn` (μ_RAT rotated onto μ_SPK by orthogonal Procrustes on
# the batch first) and `gromov_wasserstein` (the clouds' internal
# distances, rotation-invariant) — and `fairser_jax.train.alpha` four maps:
# `ema_ratio` (α = D / (D + EMA(D))), `ema_zscore` (α = sigmoid of D
# standardised by its running mean and SD), `saturating` (α = D / (D + κ))
# and `constant` (α = 0.5, the control). Each pair trains here from the
# same anchors and references the pipeline trained above; the table gives
# what docs/DESIGN.md chooses the default by: α's SD over batches, its
# modes, the correlation of α with D, and Proposed's fairness.

# %%
records, study = pipeline.load_study(cfg, pipeline.corpus_dir(cfg, WORKDIR))
feature_set = features_lib.load(pipeline.features_path(cfg, WORKDIR))
data, info = pipeline.make_training_table(cfg, records, study, feature_set)
trained = {
    v: outputs.load_params(outputs.params_path(WORKDIR, v))
    for v in ("fair_spk", "fair_rat")
}
proposed_runs = runs_lib.make_runs("proposed", cfg.emotions, cfg.folds, SEEDS)


def train_proposed(distance: str, alpha_fn: str) -> tuple[dict, dict]:
    """Proposed with one reading: metrics per seed, and its α and D."""
    run_cfg = cfg.copy_and_resolve_references()
    run_cfg.two_sided.distance = distance
    run_cfg.two_sided.alpha_fn = alpha_fn
    out = runner.train_variant(
        "proposed",
        proposed_runs,
        data,
        info.fold,
        run_cfg,
        init_params=outputs.params_for(proposed_runs, *trained["fair_rat"]),
        refs={
            v: outputs.params_for(proposed_runs, *trained[v]) for v in trained
        },
        progress=PROGRESS,
    )
    per_seed = [
        outputs.metrics_of(r, info)
        for r in outputs.out_of_fold(out, np.asarray(data.label), info)
    ]
    stats = {
        k: np.array([m[k] for m in per_seed])
        for k in ("f1", "dsp_spk", "dsp_rat")
    }
    stats["product"] = stats["dsp_spk"] * stats["dsp_rat"]
    return stats, {k: np.asarray(v) for k, v in out.trace.items()}


readings = [
    (d, fn) for d in DISTANCES for fn in ALPHA_FNS if fn != "constant"
] + ([(DISTANCES[0], "constant")] if "constant" in ALPHA_FNS else [])
compared = {reading: train_proposed(*reading) for reading in readings}


def modes(alpha: np.ndarray) -> int:
    """Modes of the 20-bin histogram over [0, 1] holding ≥ 5 % of α."""
    counts, _ = np.histogram(alpha, bins=np.linspace(0, 1, 21))
    padded = np.concatenate([[-1], counts, [-1]])
    return sum(
        1
        for i in range(1, len(padded) - 1)
        if padded[i] > padded[i - 1]
        and padded[i] >= padded[i + 1]
        and padded[i] >= 0.05 * alpha.size
    )


print(
    f"{'distance':19} {'alpha_fn':11} {'α SD':>6} {'modes':>5} "
    f"{'corr(α,D)':>9} {'F1':>6} {'ΔSP_spk':>8} {'ΔSP_rat':>8} {'product':>8}"
)
for (distance, fn), (stats, tr) in compared.items():
    a, d = tr["alpha"].ravel(), tr["distance"].ravel()
    corr = np.corrcoef(a, d)[0, 1] if a.std() > 0 and d.std() > 0 else np.nan
    print(
        f"{distance:19} {fn:11} {a.std():6.3f} {modes(a):5d} {corr:9.2f} "
        f"{stats['f1'].mean():6.3f} {stats['dsp_spk'].mean():8.3f} "
        f"{stats['dsp_rat'].mean():8.3f} {stats['product'].mean():8.4f}"
    )

# %%
steps = tr["alpha"].shape[1] // EPOCHS
fig, axes = plt.subplots(1, 3, figsize=(15, 3.4))
for (distance, fn), (_, tr) in compared.items():
    axes[0].hist(
        tr["alpha"].ravel(),
        bins=np.linspace(0, 1, 21),
        histtype="step",
        lw=1.5,
        label=f"{distance} / {fn}",
    )
axes[0].set_xticks(np.linspace(0, 1, 11))
axes[0].set_xlabel("α (batch-wise)")
axes[0].set_ylabel("number of batches")
axes[0].legend(fontsize=6)
names = [f"{d}\n{fn}" for d, fn in compared]
means = [metrics.mean_sd(stats["product"]) for stats, _ in compared.values()]
axes[1].bar(
    range(len(names)),
    [m for m, _ in means],
    yerr=[s for _, s in means],
    capsize=3,
    color="#8da0cb",
    ec="black",
)
axes[1].set_xticks(range(len(names)), names, fontsize=5, rotation=90)
axes[1].set_ylabel("ΔSP_spk × ΔSP_rat (mean ± SD over seeds)")
axes[1].set_title(EMOTION)
for (distance, fn), (_, tr) in compared.items():  # first run of each
    smooth = np.convolve(tr["alpha"][0], np.ones(steps) / steps, "valid")
    axes[2].plot(
        (np.arange(smooth.size) + steps - 1) / steps, smooth, label=f"{distance} / {fn}"
    )
axes[2].set_xlabel("epoch")
axes[2].set_ylabel("α (mean over one epoch's batches)")
axes[2].set_ylim(0, 1)
fig.tight_layout()
plt.show()
