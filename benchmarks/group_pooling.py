r"""L_D with k > 2 groups: mean over group pairs vs each group against the pool.

    python benchmarks/group_pooling.py [--utterances=600] [--epochs=30] \
        [--seeds=3] [--workdir=/tmp/group_pooling]

The demo corpus (configs/demo.py's features: random wav2vec2-base, layer 1)
is exported as a manifest and given a 3-group attribute on each side that
carries the demo's gender bias:

- speakers: ``F``, and the male speakers split in two (``M-a`` for
  sessions 1-2, ``M-b`` for 3-5);
- raters: ``M`` (the two men), and the four women split in two (``F-a``,
  ``F-b``).

Then DNN, Fair_spk and Fair_rat are trained (Anger detector, 5 folds,
``--seeds`` seeds) once with ``config.loss.group_pooling="pairs"`` (the mean
Sinkhorn divergence over the 3 group pairs) and once with ``"pooled"``
(the mean divergence of each group against the pooled batch). Printed per
setting: F1, ΔSP_spk of Fair_spk and ΔSP_rat of Fair_rat (3-group
largest gaps, mean ± SD over seeds) against DNN's, and each variant's
training wall time; then one JSON line.
"""

from __future__ import annotations

import csv
import json
import pathlib
import shutil
import sys
import time

import numpy as np
from absl import app, flags

from fairser_jax import pipeline
from fairser_jax.data import demo_corpus, layouts, manifest

_UTTERANCES = flags.DEFINE_integer("utterances", 600, "Demo corpus size.")
_EPOCHS = flags.DEFINE_integer("epochs", 30, "Training epochs.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per setting.")
_WORKDIR = flags.DEFINE_string(
    "workdir", "/tmp/fairser_group_pooling", "Scratch folder (replaced)."
)


def _rewrite(path: pathlib.Path, name: str, value) -> None:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row[name] = value(row)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def make_corpus(root: pathlib.Path) -> pathlib.Path:
    """The demo corpus as a manifest with 3-group attributes on each side."""
    demo = root / "iemocap"
    demo_corpus.generate(demo, num_utterances=_UTTERANCES.value, seed=0)
    folder = root / "manifest"
    manifest.write(layouts.read(demo), folder)

    def speaker_group(row):
        if row["speaker_gender"] == "F":
            return "F"
        return "M-a" if int(row["speaker_id"][3:5]) <= 2 else "M-b"

    _rewrite(folder / "utterances.csv", "speaker_bias3", speaker_group)
    women = iter(("F-a", "F-a", "F-b", "F-b"))
    groups = {}
    with (folder / "raters.csv").open(newline="", encoding="utf-8") as f:
        for row in sorted(
            csv.DictReader(f), key=lambda r: int(r["rater_id"][1:])
        ):
            groups[row["rater_id"]] = (
                "M" if row["rater_gender"] == "M" else next(women)
            )
    _rewrite(
        folder / "raters.csv", "rater_bias3", lambda r: groups[r["rater_id"]]
    )
    return folder


def _config(folder: pathlib.Path, features: pathlib.Path, pooling: str):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from configs import demo  # noqa: PLC0415

    cfg = demo.get_config()
    cfg.data.corpus = str(folder)
    cfg.data.speaker_attribute = "bias3"
    cfg.data.rater_attribute = "bias3"
    cfg.features.path = str(features)
    cfg.train.epochs = _EPOCHS.value
    cfg.train.checkpoint_every = _EPOCHS.value
    cfg.seeds = tuple(range(_SEEDS.value))
    cfg.emotions = ("anger",)
    cfg.variants = ("dnn", "fair_spk", "fair_rat")
    cfg.loss.group_pooling = pooling
    return cfg


def _summary(runs, variant, metric):
    values = [r[metric] for r in runs if r["variant"] == variant]
    return float(np.mean(values)), float(np.std(values, ddof=1))


def main(argv):
    del argv
    root = pathlib.Path(_WORKDIR.value)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    folder = make_corpus(root)
    features = root / "features.npz"
    out = {}
    for pooling in ("pairs", "pooled"):
        cfg = _config(folder, features, pooling)
        workdir = root / pooling
        pipeline.prepare(cfg, workdir, progress=False)
        start = time.perf_counter()
        results = pipeline.train(cfg, workdir, progress=False)
        wall = time.perf_counter() - start
        runs = results["runs"]
        row = {"train_s": round(wall, 1)}
        for variant in ("dnn", "fair_spk", "fair_rat"):
            for metric in ("f1", "dsp_spk", "dsp_rat"):
                mean, sd = _summary(runs, variant, metric)
                row[f"{variant}/{metric}"] = [round(mean, 4), round(sd, 4)]
        out[pooling] = row
        print(f"--- group_pooling={pooling} ({wall:.0f} s for all 3)")
        for variant in ("dnn", "fair_spk", "fair_rat"):
            cells = ", ".join(
                f"{m} {row[f'{variant}/{m}'][0]:.3f}"
                f"±{row[f'{variant}/{m}'][1]:.3f}"
                for m in ("f1", "dsp_spk", "dsp_rat")
            )
            print(f"{variant:9s} {cells}")
    print(json.dumps({"group_pooling": out}))


if __name__ == "__main__":
    app.run(main)
