r"""Every reading of eq. (3)'s D ↦ α, measured on a finished workdir.

    python -m fairser_jax.main --config=configs/demo.py --workdir=/tmp/demo
    python benchmarks/alpha_readings.py --config=configs/demo.py \
        --workdir=/tmp/demo --out=docs/measurements

The paper (§3.1) states what α does: it lies in [0, 1], "a higher α value
signifies a further distance between the two embedding sets", and its
values are diverse (Fig. 3b: two modes, near 0.25 and 0.75). It does not
say which distance D is, nor the map D ↦ α. This script trains Proposed
once per reading — every `config.two_sided.distance` × `alpha_fn` ×
`mu_rat` (α = constant 0.5 once, as the control) — from the workdir's
trained Fair_spk and Fair_rat (read only; nothing in the workdir is
written), and records for each:

- α's SD over every batch (pooled over runs), its 5th-95th percentile
  range, the number of modes of its 20-bin histogram over [0, 1] (a bin
  holding ≥ 5 % of the batches and more than both neighbours);
- D's coefficient of variation over batches and the Pearson correlation of
  α with D;
- Proposed's F1, ΔSP_spk, ΔSP_rat and ΔSP_spk × ΔSP_rat (mean over seeds
  of the per-seed values) and the SD over seeds of the product.

It writes `<out>/alpha_readings.csv` and `<out>/alpha_readings.md`. The
default of `config.two_sided` is chosen from the md's table by the rule in
docs/DESIGN.md (the stated properties, never Table 3's numbers).
"""

from __future__ import annotations

import copy
import csv
import itertools
import pathlib
import time

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from fairser_jax import pipeline
from fairser_jax.train import distances, outputs, runner
from fairser_jax.train import runs as runs_lib

_CONFIG = config_flags.DEFINE_config_file("config", "configs/demo.py")
_WORKDIR = flags.DEFINE_string("workdir", None, "A finished workdir.", required=True)
_OUT = flags.DEFINE_string("out", "docs/measurements", "Folder of the table.")
_EMOTIONS = flags.DEFINE_list("emotions", ["anger", "sadness"], "Detectors.")
_ALPHA_FNS = flags.DEFINE_list(
    "alpha_fns", ["ema_ratio", "ema_zscore", "saturating"], "Maps D ↦ α."
)
_DISTANCES = flags.DEFINE_list(
    "distances", list(distances.DISTANCES), "Readings of D to measure."
)

COLUMNS = (
    "distance",
    "alpha_fn",
    "mu_rat",
    "emotion",
    "alpha_sd",
    "alpha_p5",
    "alpha_p95",
    "alpha_modes",
    "distance_cv",
    "corr_alpha_distance",
    "f1",
    "dsp_spk",
    "dsp_rat",
    "product",
    "product_sd_over_seeds",
    "seconds",
)


def modes(values: np.ndarray) -> int:
    """Modes of the 20-bin histogram over [0, 1]: bins with ≥ 5 % of the
    values, more than the bin on their left and at least the bin on their
    right (a plateau counts once)."""
    counts, _ = np.histogram(values, bins=np.linspace(0.0, 1.0, 21))
    padded = np.concatenate([[-1], counts, [-1]])
    return sum(
        1
        for i in range(1, len(padded) - 1)
        if padded[i] > padded[i - 1]
        and padded[i] >= padded[i + 1]
        and padded[i] >= 0.05 * values.size
    )


def _measure(cfg, data, info, trained, emotion) -> dict:
    runs = runs_lib.make_runs("proposed", [emotion], cfg.folds, cfg.seeds)
    tic = time.monotonic()
    out = runner.train_variant(
        "proposed",
        runs,
        data,
        info.fold,
        cfg,
        init_params=outputs.params_for(runs, *trained["fair_rat"]),
        refs={
            r: outputs.params_for(runs, *trained[r])
            for r in ("fair_spk", "fair_rat")
        },
        progress=False,
    )
    seconds = time.monotonic() - tic
    alpha = np.asarray(out.trace["alpha"], np.float64).ravel()
    d = np.asarray(out.trace["distance"], np.float64).ravel()
    per_seed = [
        outputs.metrics_of(r, info)
        for r in outputs.out_of_fold(out, np.asarray(data.label), info)
    ]
    product = np.array([m["dsp_spk"] * m["dsp_rat"] for m in per_seed])
    corr = (
        float(np.corrcoef(alpha, d)[0, 1])
        if alpha.std() > 0 and d.std() > 0
        else float("nan")
    )
    return {
        "emotion": emotion,
        "alpha_sd": float(alpha.std()),
        "alpha_p5": float(np.percentile(alpha, 5)),
        "alpha_p95": float(np.percentile(alpha, 95)),
        "alpha_modes": modes(alpha),
        "distance_cv": float(d.std() / d.mean()) if d.mean() > 0 else float("nan"),
        "corr_alpha_distance": corr,
        "f1": float(np.mean([m["f1"] for m in per_seed])),
        "dsp_spk": float(np.mean([m["dsp_spk"] for m in per_seed])),
        "dsp_rat": float(np.mean([m["dsp_rat"] for m in per_seed])),
        "product": float(product.mean()),
        "product_sd_over_seeds": float(product.std(ddof=1))
        if product.size > 1
        else float("nan"),
        "seconds": round(seconds, 1),
    }


def readings(dists, alpha_fns) -> list[tuple[str, str, str]]:
    """(distance, alpha_fn, mu_rat) of every reading, then the control."""
    grid = list(itertools.product(dists, alpha_fns, ("trained", "frozen")))
    return grid + [("sinkhorn", "constant", "trained")]


_KEY = ("distance", "alpha_fn", "mu_rat", "emotion")


def _write(out_dir: pathlib.Path, rows: list[dict]) -> None:
    """The CSV and Markdown table of ``rows`` (atomically, after each
    measurement, so an interrupted sweep keeps what it measured)."""
    order = {k: i for i, k in enumerate(distances.DISTANCES)}
    rows = sorted(rows, key=lambda r: (order.get(r["distance"], 99), r["alpha_fn"] == "constant", r["alpha_fn"], r["mu_rat"] != "trained", r["emotion"]))
    tmp = out_dir / "alpha_readings.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out_dir / "alpha_readings.csv")
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(_fmt(r[k]) for k in COLUMNS) + " |" for r in rows),
    ]
    (out_dir / "alpha_readings.md").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )


def _read(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def main(argv: list[str]) -> None:
    del argv
    base = _CONFIG.value
    workdir = pathlib.Path(_WORKDIR.value)
    corpus = pipeline.corpus_dir(base, workdir)
    records, study = pipeline.load_study(base, corpus)
    feature_set = pipeline.load_features(base, workdir, corpus, records)
    data, info = pipeline.make_training_table(base, records, study, feature_set)
    trained = {
        v: outputs.load_params(outputs.params_path(workdir, v))
        for v in ("fair_spk", "fair_rat")
    }
    out_dir = pathlib.Path(_OUT.value)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _read(out_dir / "alpha_readings.csv")  # kept unless remeasured
    for distance, alpha_fn, mu_rat in readings(_DISTANCES.value, _ALPHA_FNS.value):
        cfg = copy.deepcopy(base)
        cfg.two_sided.distance = distance
        cfg.two_sided.alpha_fn = alpha_fn
        cfg.two_sided.mu_rat = mu_rat
        for emotion in _EMOTIONS.value:
            row = {
                "distance": distance,
                "alpha_fn": alpha_fn,
                "mu_rat": mu_rat,
                **_measure(cfg, data, info, trained, emotion),
            }
            rows = [r for r in rows if tuple(r[k] for k in _KEY) != tuple(row[k] for k in _KEY)]
            rows.append(row)
            _write(out_dir, rows)
            print(" ".join(f"{k}={_fmt(row[k])}" for k in COLUMNS), flush=True)
    print(f"wrote {out_dir / 'alpha_readings.md'}")


if __name__ == "__main__":
    app.run(main)
