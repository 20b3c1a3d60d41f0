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
# 3. How does α move during training?
# 4. Does the map D ↦ α matter? (`ema_ratio`, `saturating`, `constant`.)
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
# `alpha_trace.npz` holds the α of every training batch of every Proposed
# run (key `<emotion>/seed<k>/fold<f>`); the histogram's bins follow the
# values' spread, and the strip below places that range in [0, 1].

# %%
trace = outputs.read_alpha_trace(WORKDIR / "alpha_trace.npz")
values = np.concatenate([t for k, t in trace.items() if k.startswith(EMOTION)])
hist = figures.alpha_histogram_figure(
    results, figures_dir, emotion=EMOTION, trace=trace
)
display(Image(filename=hist))
print(f"α: mean {values.mean():.3f}, SD {values.std():.2g}")

# %% [markdown]
# ## α over training
# A few runs, smoothed over one epoch's batches.

# %%
steps = len(next(iter(trace.values()))) // EPOCHS
fig, ax = plt.subplots(figsize=(7, 3.2))
for key in sorted(trace)[:4]:
    t = trace[key]
    smooth = np.convolve(t, np.ones(steps) / steps, mode="valid")
    (line,) = ax.plot(
        (np.arange(smooth.size) + steps - 1) / steps,
        smooth,
        lw=1.5,
        label=key,
    )
    ax.plot(np.arange(t.size) / steps, t, color=line.get_color(), alpha=0.3)
ax.set_xlabel("epoch")
ax.set_ylabel("α")
ax.set_ylim(0, 1)
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Does the map D ↦ α matter?
# The paper does not say how α follows from D. `fairser_jax.train.alpha`
# has four readings: `ema_ratio` (the default: α = D / (D + EMA(D)), 0.5
# when D equals its running mean), `ema_zscore` (α = sigmoid of D
# standardised by its running mean and SD), `saturating` (α = D / (D + κ),
# absolute) and `constant` (α = 0.5, D ignored). Each trains here from the
# same anchors and references the pipeline trained above.

# %%
records, study = pipeline.load_study(cfg, pipeline.corpus_dir(cfg, WORKDIR))
feature_set = features_lib.load(pipeline.features_path(cfg, WORKDIR))
data, info = pipeline.make_training_table(cfg, records, study, feature_set)
trained = {
    v: outputs.load_params(outputs.params_path(WORKDIR, v))
    for v in ("fair_spk", "fair_rat")
}
proposed_runs = runs_lib.make_runs("proposed", cfg.emotions, cfg.folds, SEEDS)


def train_proposed(alpha_fn: str) -> tuple[dict, np.ndarray]:
    """Proposed with one α function: metrics per seed and its α trace."""
    run_cfg = cfg.copy_and_resolve_references()
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
    return stats, out.trace["alpha"]


compared = {fn: train_proposed(fn) for fn in ALPHA_FNS}

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.4))
for fn, (_, alpha_trace) in compared.items():
    axes[0].hist(
        alpha_trace.ravel(),
        bins=np.linspace(0, 1, 21),
        histtype="step",
        lw=1.5,
        label=fn,
    )
axes[0].set_xticks(np.linspace(0, 1, 11))
axes[0].set_xlabel("α (batch-wise)")
axes[0].set_ylabel("number of batches")
axes[0].legend(fontsize=8)
names = list(compared)
means = [metrics.mean_sd(compared[fn][0]["product"]) for fn in names]
axes[1].bar(
    names,
    [m for m, _ in means],
    yerr=[s for _, s in means],
    capsize=4,
    color="#8da0cb",
    ec="black",
)
axes[1].set_ylabel("ΔSP_spk × ΔSP_rat (mean ± SD over seeds)")
axes[1].set_title(EMOTION)
for fn, (_, alpha_trace) in compared.items():  # first run of each
    smooth = np.convolve(alpha_trace[0], np.ones(steps) / steps, "valid")
    axes[2].plot((np.arange(smooth.size) + steps - 1) / steps, smooth, label=fn)
axes[2].set_xlabel("epoch")
axes[2].set_ylabel("α (mean over one epoch's batches)")
axes[2].set_ylim(0, 1)
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()

print(f"{'alpha_fn':11} {'F1':>6} {'ΔSP_spk':>8} {'ΔSP_rat':>8} {'product':>8}")
for fn, (stats, _) in compared.items():
    print(
        f"{fn:11} {stats['f1'].mean():6.3f} {stats['dsp_spk'].mean():8.3f} "
        f"{stats['dsp_rat'].mean():8.3f} {stats['product'].mean():8.4f}"
    )
