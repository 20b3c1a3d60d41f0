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
# # How strong should the fairness terms be? A λ ablation
#
# Eq. (2) of the paper weighs the speaker-side Wasserstein term with
# λ_S and eq. (1) the rater-side one with λ_R (both 1 in the paper). This
# notebook trains Fair_spk and Fair_rat for one emotion detector over a
# range of λ on the built-in demo corpus and plots recognition (F1) against
# both fairness views (ΔSP_spk, ΔSP_rat): the intra/inter-fairness
# trade-off of Table 2 as a curve.
#
# Everything runs through the library the command-line tools use, so the
# same cells work on a real IEMOCAP copy: set `CORPUS` and `RATER_GENDER`.
# The source of truth is this `.py` file (jupytext percent format).

# %%
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np

from fairser_jax import config as config_lib
from fairser_jax import metrics, pipeline
from fairser_jax.data import features as features_lib
from fairser_jax.train import outputs, runner
from fairser_jax.train import runs as runs_lib

# Parameters (the tests shrink them through environment variables).
WORKDIR = pathlib.Path(os.environ.get("FAIRSER_NB_WORKDIR", "/tmp/fairser_nb"))
CORPUS = os.environ.get("FAIRSER_NB_CORPUS", "")  # "" = demo corpus
RATER_GENDER = os.environ.get("FAIRSER_NB_RATER_GENDER", "")
NUM_UTTERANCES = int(os.environ.get("FAIRSER_NB_UTTERANCES", "600"))
CHECKPOINT = os.environ.get("FAIRSER_NB_CHECKPOINT", "random-base")
EPOCHS = int(os.environ.get("FAIRSER_NB_EPOCHS", "30"))
SEEDS = tuple(range(int(os.environ.get("FAIRSER_NB_SEEDS", "3"))))
EMOTION = os.environ.get("FAIRSER_NB_EMOTION", "anger")
LAMBDAS = tuple(
    float(v)
    for v in os.environ.get("FAIRSER_NB_LAMBDAS", "0,0.25,1,4").split(",")
)

# %% [markdown]
# ## Data: corpus, study sets, features
# `pipeline.prepare` generates the demo corpus (if no corpus is given) and
# extracts wav2vec2 features once; later runs reuse the cached store.

# %%
cfg = config_lib.get_default_config()
cfg.data.corpus = CORPUS
cfg.data.rater_gender = RATER_GENDER
cfg.demo.num_utterances = NUM_UTTERANCES
cfg.features.checkpoint = CHECKPOINT
cfg.train.epochs = EPOCHS
cfg.seeds = SEEDS
cfg.emotions = (EMOTION,)

corpus = pipeline.prepare(cfg, WORKDIR, progress=False)
records, study = pipeline.load_study(cfg, corpus)
feature_set = features_lib.load(pipeline.features_path(cfg, WORKDIR))
data, info = pipeline.make_training_table(cfg, records, study, feature_set)
label = np.asarray(data.label)
print(study.table1())

# %% [markdown]
# ## Train every λ
# One stack per (variant, λ): all folds and seeds of a setting train
# together. λ = 0 keeps only the contrastive (Fair_spk) or adversarial
# (Fair_rat) term.


# %%
def evaluate(variant: str, lam: float) -> dict[str, np.ndarray]:
    """Trains `variant` with its λ set to `lam`; metrics per seed."""
    run_cfg = cfg.copy_and_resolve_references()
    run_cfg.loss.lambda_s = lam
    run_cfg.loss.lambda_r = lam
    runs = runs_lib.make_runs(variant, cfg.emotions, cfg.folds, cfg.seeds)
    out = runner.train_variant(
        variant, runs, data, info.fold, run_cfg, progress=False
    )
    per_seed = [
        outputs.metrics_of(result, info)
        for result in outputs.out_of_fold(out, label, info)
    ]
    return {
        key: np.array([m[key] for m in per_seed])
        for key in ("f1", "dsp_spk", "dsp_rat")
    }


results = {
    variant: [evaluate(variant, lam) for lam in LAMBDAS]
    for variant in ("fair_spk", "fair_rat")
}
baseline = evaluate("dnn", 0.0)

# %% [markdown]
# ## Recognition vs. both fairness views

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharex=True)
for ax, key, title in zip(
    axes,
    ("f1", "dsp_spk", "dsp_rat"),
    ("weighted F1", "ΔSP_spk (speaker side)", "ΔSP_rat (rater side)"),
    strict=True,
):
    for variant, colour in (
        ("fair_spk", "tab:green"),
        ("fair_rat", "tab:olive"),
    ):
        stats = [metrics.mean_sd(r[key]) for r in results[variant]]
        mean = np.array([s[0] for s in stats])
        sd = np.array([s[1] for s in stats])
        ax.errorbar(
            LAMBDAS,
            mean,
            yerr=sd,
            marker="o",
            color=colour,
            label=variant,
            capsize=3,
        )
    ax.axhline(baseline[key].mean(), color="k", ls="--", label="dnn")
    ax.set_title(f"{EMOTION}: {title}")
    ax.set_xlabel("λ (Wasserstein weight)")
    ax.set_xscale("symlog", linthresh=0.25)
    ax.set_xticks(LAMBDAS, [f"{lam:g}" for lam in LAMBDAS])
    ax.minorticks_off()
axes[0].legend()
fig.tight_layout()
plt.show()

# %%
rows = []
for variant in ("fair_spk", "fair_rat"):
    for lam, r in zip(LAMBDAS, results[variant], strict=True):
        rows.append(
            (variant, lam, *(r[k].mean() for k in ("f1", "dsp_spk", "dsp_rat")))
        )
rows.append(
    ("dnn", 0.0, *(baseline[k].mean() for k in ("f1", "dsp_spk", "dsp_rat")))
)
print(f"{'variant':9} {'λ':>5} {'F1':>6} {'ΔSP_spk':>8} {'ΔSP_rat':>8}")
for variant, lam, f1, spk, rat in rows:
    print(f"{variant:9} {lam:5.2f} {f1:6.3f} {spk:8.3f} {rat:8.3f}")
