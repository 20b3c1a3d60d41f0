"""Variants and metrics are data: one declaration each, read everywhere.

A throwaway variant (`register` plus its objective function) and a
throwaway per-side metric (`register_metric` plus its function) are
declared here, in this module only, and then found in results.json, in
predictions.csv's recomputation, in the tables and in the report of a real
(small) pipeline run: no other module was touched to add them.
"""

import csv
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from conftest import load_config
from fairlearn.metrics import false_positive_rate_difference

from fairser_jax import pipeline, results, variants
from fairser_jax.report import recompute, tables
from fairser_jax.train import objectives
from fairser_jax.train import variants as train_variants

REPO = pathlib.Path(__file__).resolve().parents[1]


def _half_bce(out, batch, cfg, state, ctx):
    """A throwaway objective: half the DNN's BCE (a real, different loss)."""
    del cfg, ctx
    value, terms = objectives.dnn(out, batch, None)
    return 0.5 * value, {**terms, "loss": 0.5 * value}, state


def _fpr_gap(y_true, y_pred, groups):
    """A throwaway metric: the largest between-group false-positive-rate
    gap, by a plain loop (fairlearn's `false_positive_rate_difference` is
    the reference below)."""
    rates = []
    for g in np.unique(groups):
        negative = (groups == g) & (y_true == 0)
        if negative.any():
            rates.append(float(np.mean(y_pred[negative])))
    return max(rates) - min(rates) if rates else 0.0


THROWAWAY = variants.Variant(
    name="throwaway",
    display="Throwaway",
    objective=_half_bce,
    table=2,
)
FPR_GAP = results.Metric("dfpr", "ΔFPR", _fpr_gap, what="false-positive ")


@pytest.fixture
def declared():
    variants.register(THROWAWAY)
    results.register_metric(FPR_GAP)
    try:
        yield
    finally:
        results.unregister_metric("dfpr")
        variants.unregister("throwaway")


def test_declarations_are_found_by_every_reader(declared):
    assert "throwaway" in variants.names()
    assert variants.training_order(["throwaway"]) == ("throwaway",)
    assert variants.in_table(2)[-1] == "throwaway"
    assert train_variants.objective(THROWAWAY) is _half_bce
    assert train_variants.init_state(THROWAWAY, None) == {}
    assert results.metric_keys()[-2:] == ("dfpr_spk", "dfpr_rat")
    assert tables.metric_headers()["dfpr_rat"] == "ΔFPR_rat"
    assert tables.block_title("dfpr_spk") == (
        "ΔFPR_spk (S1, false-positive by speaker gender)"
    )
    assert "table2_dfpr_spk" in tables.table_names()
    assert variants.paper_value("throwaway", "anger", "f1") is None


def test_declarations_are_undone():
    """The fixture's declarations do not leak: the registry and the metric
    table are the built-in ones outside it."""
    assert variants.names() == variants.BUILT_IN
    assert [m.key for m in results.METRICS] == ["f1", "dsp", "eod", "eopp"]


def test_a_taken_name_or_an_undeclared_dependency_is_refused(declared):
    with pytest.raises(ValueError, match="already declared"):
        variants.register(THROWAWAY)
    with pytest.raises(ValueError, match="undeclared"):
        variants.register(
            variants.Variant("x", "X", objective="dnn", init_from="nope")
        )
    with pytest.raises(ValueError, match="already declared"):
        results.register_metric(results.Metric("dsp", "ΔSP", _fpr_gap))
    with pytest.raises(ValueError, match="built in"):
        variants.unregister("dnn")
    bad = variants.Variant("bad", "Bad", objective="no_such_objective")
    with pytest.raises(ValueError, match="built-in ones are"):
        train_variants.objective(bad)


def _test_config():
    cfg = load_config("test")
    cfg.variants = ("dnn", "throwaway")
    cfg.emotions = ("anger",)
    cfg.seeds = (0,)
    cfg.train.epochs = 2
    cfg.report.tsne_samples = 60
    return cfg


@pytest.mark.slow
def test_throwaway_variant_and_metric_reach_results_tables_and_report(
    declared, tmp_path
):
    workdir = tmp_path / "w"
    cfg = _test_config()
    pipeline.prepare(cfg, workdir, progress=False)
    out = pipeline.train(cfg, workdir, progress=False)
    from fairser_jax import report

    report.write_report(workdir)

    # results.json: the variant's runs, with the metric on both sides,
    # equal to fairlearn's on predictions.csv.
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["runs"] == out["runs"]
    (run,) = [r for r in saved["runs"] if r["variant"] == "throwaway"]
    with open(workdir / "predictions.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["variant"] == "throwaway"]
    y_true = np.array([int(r["y_true"]) for r in rows])
    y_pred = np.array([int(r["y_pred"]) for r in rows])
    spk = np.array([r["speaker_gender"] for r in rows])
    rat = np.array([r["rater_gender"] for r in rows])
    s2 = rat != ""
    assert run["dfpr_spk"] == pytest.approx(
        false_positive_rate_difference(y_true, y_pred, sensitive_features=spk),
        abs=1e-12,
    )
    assert run["dfpr_rat"] == pytest.approx(
        false_positive_rate_difference(
            y_true[s2], y_pred[s2], sensitive_features=rat[s2]
        ),
        abs=1e-12,
    )
    # The declared objective is what was trained: its logged loss is half
    # a BCE (≈ ln 2 / 2 in the first epoch), the DNN's a whole one.
    with np.load(workdir / "training" / "throwaway.npz") as f:
        half = f["loss_history"]
    with np.load(workdir / "training" / "dnn.npz") as f:
        whole = f["loss_history"]
    assert half.shape == whole.shape == (5, cfg.train.epochs)
    assert np.all(np.isfinite(half))
    assert half[:, 0].mean() < 0.45 < 0.5 < whole[:, 0].mean()

    # --recompute re-derives the new metric and agrees.
    recomputed = recompute.verify_workdir(workdir)
    assert [r["dfpr_rat"] for r in recomputed] == [
        r["dfpr_rat"] for r in saved["runs"]
    ]

    # Tables and report: the variant is a row of every Table 2 block, the
    # metric has its own blocks, the paper's rows show "—" for it.
    with open(workdir / "tables" / "table2_dfpr_spk.csv", newline="") as f:
        models = [r["Model"] for r in csv.DictReader(f)]
    assert models == ["DNN", "Throwaway"]
    with open(workdir / "tables" / "table2_f1.csv", newline="") as f:
        paper = {r["Model"]: r for r in csv.DictReader(f)}
    assert paper["Throwaway (paper)"]["Anger mean"] == ""
    text = (workdir / "report.md").read_text()
    assert "### ΔFPR_spk (S1, false-positive by speaker gender)" in text
    assert "### ΔFPR_rat (S2, false-positive by rater-gender group)" in text
    assert "| Throwaway |" in text.replace("**", "")


def test_built_in_objectives_are_the_equations():
    """The names the built-in declarations give resolve to the functions
    of train/objectives.py, each once."""
    for v in variants.BUILT_IN:
        spec = variants.get(v)
        fn = train_variants.objective(spec)
        assert fn is objectives.OBJECTIVES[spec.objective]
    assert set(objectives.OBJECTIVES) == {
        variants.get(v).objective for v in variants.BUILT_IN
    }


def test_report_imports_no_jax_and_nothing_of_train():
    """`import fairser_jax.report` (tables, figures, claims) reads the
    declarations, not the trainer: no JAX, no flax, no ott, no
    fairser_jax.train; nor does the config and its JAX-free validator."""
    code = (
        "import sys, fairser_jax.report, fairser_jax.variants, "
        "fairser_jax.results, fairser_jax.config\n"
        "cfg = fairser_jax.config.get_default_config()\n"
        "fairser_jax.config.validate(cfg)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jax', 'jaxlib', 'flax', 'ott', 'optax') or "
        "m.startswith('fairser_jax.train'))\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert out.stdout.strip() == "[]", out.stdout[-2000:]
