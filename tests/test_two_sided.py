"""Two-sided models (paper §3.1, eq. 3): Proposed, fixed α, α functions."""

import dataclasses

import jax
import numpy as np
import pytest
from ott.geometry import pointcloud
from ott.tools import sinkhorn_divergence
from test_train import _cfg, synthetic_table

from fairser_jax import config as config_lib
from fairser_jax import models
from fairser_jax.train import alpha as alpha_lib
from fairser_jax.train import outputs, runner
from fairser_jax.train import runs as runs_lib
from fairser_jax.train import variants as variants_lib

EMOTIONS = ["anger"]
FOLDS = [0, 2]
SEEDS = [0, 1]


def _two_sided_cfg(epochs=2, **two_sided):
    """The test config; D is the literal Sinkhorn divergence unless given.

    The tests of the two-sided mechanics (anchor, resume, devices, α maps)
    hold for any D and use the cheapest; the default reading (GW) is
    trained by `test_alpha_trace_is_recorded_in_unit_interval` here and
    by tests/test_main.py, and tested alone in tests/test_distances.py.
    """
    cfg = _cfg(epochs=epochs)
    cfg.two_sided.distance = "sinkhorn"
    cfg.two_sided.update(two_sided)
    return cfg


@pytest.fixture(scope="module")
def table():
    return synthetic_table()


@pytest.fixture(scope="module")
def one_sided(table):
    """Trained Fair_spk and Fair_rat: variant -> (runs, params [R, ...])."""
    data, info = table
    trained = {}
    for variant in ("fair_spk", "fair_rat"):
        runs = runs_lib.make_runs(variant, EMOTIONS, FOLDS, SEEDS)
        out = runner.train_variant(
            variant, runs, data, info.fold, _cfg(epochs=2), progress=False
        )
        trained[variant] = (runs, out.params)
    return trained


def _train(table, one_sided, variant, runs, cfg, **kw):
    data, info = table
    spec = variants_lib.get(variant)
    return runner.train_variant(
        variant,
        runs,
        data,
        info.fold,
        cfg,
        init_params=outputs.params_for(runs, *one_sided[spec.init_from]),
        refs={
            r: outputs.params_for(runs, *one_sided[r]) for r in spec.references
        },
        progress=False,
        **kw,
    )


def test_training_order_adds_dependencies_first():
    assert variants_lib.training_order(["proposed"]) == (
        "fair_spk",
        "fair_rat",
        "proposed",
    )
    assert variants_lib.training_order(["fixed_alpha", "dnn"]) == (
        "dnn",
        "fair_rat",
        "fixed_alpha",
    )


def test_basic_anchored_is_basic_from_the_fair_rat_anchor(table, one_sided):
    """The control of Proposed's warm start: Basic's objective (L_SPK +
    L_RAT), trained from the trained Fair_rat of the same (emotion, fold,
    seed). Equal, to the bit, to Basic trained with that anchor passed by
    hand; different from Basic from scratch."""
    data, info = table
    spec = variants_lib.get("basic_anchored")
    assert spec.init_from == "fair_rat" and spec.references == ()
    assert variants_lib.training_order(["basic_anchored"]) == (
        "fair_rat",
        "basic_anchored",
    )
    cfg = _cfg(epochs=1)
    runs = runs_lib.make_runs("basic_anchored", EMOTIONS, FOLDS, SEEDS)
    got = _train(table, one_sided, "basic_anchored", runs, cfg)
    basic_runs = runs_lib.make_runs("basic", EMOTIONS, FOLDS, SEEDS)
    anchor = outputs.params_for(basic_runs, *one_sided["fair_rat"])
    by_hand = runner.train_variant(
        "basic", basic_runs, data, info.fold, cfg, init_params=anchor,
        progress=False,
    )
    jax.tree.map(np.testing.assert_array_equal, got.params, by_hand.params)
    scratch = runner.train_variant(
        "basic", basic_runs, data, info.fold, cfg, progress=False
    )
    assert not np.allclose(got.loss_history, scratch.loss_history)


def test_ema_ratio_against_a_numpy_loop():
    cfg = _two_sided_cfg().two_sided
    d = np.array([0.2, 0.4, 0.1, 0.1, 0.8, 0.0, 0.3], np.float32)
    state = alpha_lib.ALPHA_FUNCTIONS["ema_ratio"].init()
    got = []
    for value in d:
        a, state = alpha_lib.ema_ratio(jax.numpy.float32(value), state, cfg)
        got.append(float(a))
    want, ema = [], None
    for value in d.astype(np.float64):
        ema = value if ema is None else ema
        want.append(0.5 if value + ema == 0 else value / (value + ema))
        ema = cfg.ema_decay * ema + (1 - cfg.ema_decay) * value
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_ema_ratio_is_half_when_d_equals_its_running_mean():
    cfg = _two_sided_cfg().two_sided
    state = alpha_lib.ALPHA_FUNCTIONS["ema_ratio"].init()
    for _ in range(5):
        a, state = alpha_lib.ema_ratio(jax.numpy.float32(0.37), state, cfg)
        assert float(a) == pytest.approx(0.5, abs=1e-7)


def test_ema_zscore_against_a_numpy_loop():
    cfg = _two_sided_cfg().two_sided
    d = np.array([0.2, 0.4, 0.1, 0.1, 0.8, 0.0, 0.3, 0.3], np.float32)
    state = alpha_lib.ALPHA_FUNCTIONS["ema_zscore"].init()
    got = []
    for value in d:
        a, state = alpha_lib.ema_zscore(jax.numpy.float32(value), state, cfg)
        got.append(float(a))
    want, mean, var = [], None, 0.0
    beta = cfg.ema_decay
    for k, value in enumerate(d.astype(np.float64)):
        mean = value if mean is None else mean
        sd = np.sqrt(var)
        want.append(
            0.5 if k < 2 or sd == 0 else 1 / (1 + np.exp(-(value - mean) / sd))
        )
        delta = value - mean
        mean += (1 - beta) * delta
        var = beta * (var + (1 - beta) * delta**2)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[4] > 0.9 and got[5] < 0.5  # above / below the running mean


def test_saturating_and_constant():
    cfg = _two_sided_cfg(alpha_scale=0.2, alpha_constant=0.3).two_sided
    a, _ = alpha_lib.saturating(jax.numpy.float32(0.6), {}, cfg)
    assert float(a) == pytest.approx(0.75)
    a, _ = alpha_lib.saturating(jax.numpy.float32(-1e-4), {}, cfg)
    assert float(a) == 0.0
    a, _ = alpha_lib.constant(jax.numpy.float32(5.0), {}, cfg)
    assert float(a) == pytest.approx(0.3)


@pytest.mark.slow
def test_anchor_is_the_trained_fair_rat(table, one_sided):
    data, _ = table
    # Runs in another order than Fair_rat's: the anchor is matched by
    # (emotion, fold, seed), not by position.
    runs = runs_lib.make_runs("proposed", EMOTIONS, FOLDS, SEEDS)[::-1]
    cfg = _two_sided_cfg()
    stack = runner.plan("proposed", runs, np.asarray(table[1].fold), cfg)
    model = models.model_from_config(cfg.model)
    anchor = outputs.params_for(runs, *one_sided["fair_rat"])
    state, start = runner.init_or_restore(
        stack,
        cfg,
        model,
        runner.make_optimizer(cfg),
        data.features.shape[1],
        init_params=anchor,
    )
    assert start == 0
    got = stack.get(state.params)
    fair_runs, fair_params = one_sided["fair_rat"]
    for i, r in enumerate(runs):
        j = [(f.emotion, f.fold, f.seed) for f in fair_runs].index(
            (r.emotion, r.fold, r.seed)
        )
        jax.tree.map(
            lambda a, b, i=i, j=j: np.testing.assert_array_equal(a[i], b[j]),
            got,
            fair_params,
        )


def _first_rows(run, arrays, r, steps, batch_size, epoch):
    """Dataset rows of every batch of one epoch of run r (as the runner)."""
    key = jax.random.fold_in(jax.random.wrap_key_data(arrays.key[r]), 1)
    key = jax.random.fold_in(key, epoch)
    order = runner.epoch_order(
        jax.random.fold_in(key, 0),
        arrays.n_train[r],
        arrays.train_idx.shape[1],
        steps * batch_size,
    )
    return arrays.train_idx[r][np.asarray(order)].reshape(steps, batch_size)


@pytest.mark.slow
def test_alpha_follows_the_frozen_references(table, one_sided):
    """Frozen mode: α of a batch = D/(D+κ) with D between the frozen
    Fair_spk's and Fair_rat's embeddings of that batch, computed here with
    ott's own PointCloud Sinkhorn divergence (the literal reading of D); at
    the first and the last step, so the references are read and never
    change. The traced D is that divergence too."""
    data, info = table
    kappa = 0.05
    cfg = _two_sided_cfg(
        alpha_fn="saturating",
        alpha_scale=kappa,
        mu_rat="frozen",
        distance="sinkhorn",
    )
    cfg.loss.sinkhorn_iterations = 50  # converged, like the reference
    runs = runs_lib.make_runs("proposed", EMOTIONS, FOLDS, SEEDS)
    out = _train(table, one_sided, "proposed", runs, cfg)
    stack = runner.plan("proposed", runs, np.asarray(info.fold), cfg)
    steps, batch = stack.steps_per_epoch, cfg.train.batch_size
    trace = out.trace["alpha"]
    assert trace.shape == (len(runs), cfg.train.epochs * steps)
    model = models.model_from_config(cfg.model)
    spk = outputs.params_for(runs, *one_sided["fair_spk"])
    rat = outputs.params_for(runs, *one_sided["fair_rat"])
    x = np.asarray(data.features)
    for r in range(len(runs)):
        for epoch, step in ((0, 0), (cfg.train.epochs - 1, steps - 1)):
            rows = _first_rows(runs[r], stack.arrays, r, steps, batch, epoch)
            emb = [
                np.asarray(
                    models.embed(
                        model,
                        jax.tree.map(lambda p, r=r: p[r], params),
                        x[rows[step]],
                    ),
                    np.float64,
                )
                for params in (spk, rat)
            ]
            emb = [e / np.linalg.norm(e, axis=1, keepdims=True) for e in emb]
            d, _ = sinkhorn_divergence.sinkhorn_divergence(
                pointcloud.PointCloud,
                emb[0],
                emb[1],
                epsilon=cfg.loss.epsilon,
                solve_kwargs={"max_iterations": 2000, "threshold": 1e-9},
            )
            d = max(float(d), 0.0)
            got = trace[r, epoch * steps + step]
            assert got == pytest.approx(d / (d + kappa), abs=2e-3), (r, epoch)
            traced_d = out.trace["distance"][r, epoch * steps + step]
            assert max(float(traced_d), 0.0) == pytest.approx(d, abs=2e-3)


@pytest.mark.slow
def test_alpha_trace_is_recorded_in_unit_interval(table, one_sided):
    runs = runs_lib.make_runs("proposed", EMOTIONS, FOLDS, SEEDS)
    default = config_lib.get_default_config().two_sided
    cfg = _two_sided_cfg(distance=default.distance, alpha_fn=default.alpha_fn)
    out = _train(table, one_sided, "proposed", runs, cfg)
    trace = out.trace["alpha"]
    assert np.all(np.isfinite(trace))
    assert trace.min() >= 0.0 and trace.max() <= 1.0
    # The default reading: α = D / (D + κ) of the traced D of each batch.
    d = np.maximum(np.asarray(out.trace["distance"], np.float64), 0.0)
    kappa = cfg.two_sided.alpha_scale
    np.testing.assert_allclose(trace, d / (d + kappa), rtol=1e-5, atol=1e-6)
    assert trace.std() > 1e-3  # α moves from batch to batch


@pytest.mark.slow
def test_constant_alpha_fn_equals_fixed_alpha(table, one_sided):
    """Proposed with a constant α trains the fixed-α model of that α. Equal
    to float rounding, not bit for bit: Proposed's program also computes D
    (unused here), which shares the batch's squared norms with L_D-S, so
    XLA fuses the two programs differently (1-ulp differences)."""
    c = 0.3
    proposed_runs = runs_lib.make_runs("proposed", EMOTIONS, FOLDS, SEEDS)
    fixed_runs = runs_lib.make_runs("fixed_alpha", EMOTIONS, FOLDS, SEEDS, (c,))
    cfg = _two_sided_cfg(alpha_fn="constant", alpha_constant=c)
    proposed = _train(table, one_sided, "proposed", proposed_runs, cfg)
    fixed = _train(table, one_sided, "fixed_alpha", fixed_runs, cfg)
    np.testing.assert_allclose(
        proposed.logits, fixed.logits, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        proposed.embeddings, fixed.embeddings, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(proposed.trace["alpha"], np.float32(c))


@pytest.mark.slow
def test_sweep_in_one_stack_equals_each_alpha_alone(table, one_sided):
    cfg = _two_sided_cfg()
    sweep = runs_lib.make_runs(
        "fixed_alpha", EMOTIONS, FOLDS, SEEDS, (0.2, 0.6, 0.9)
    )
    stacked = _train(table, one_sided, "fixed_alpha", sweep, cfg)
    alone_runs = [r for r in sweep if r.alpha == 0.6]
    alone = _train(table, one_sided, "fixed_alpha", alone_runs, cfg)
    index = [sweep.index(r) for r in alone_runs]
    np.testing.assert_allclose(
        alone.logits, stacked.logits[index], rtol=1e-5, atol=1e-5
    )
    # Different α really train different models.
    other = [sweep.index(dataclasses.replace(r, alpha=0.2)) for r in alone_runs]
    assert not np.allclose(stacked.logits[index], stacked.logits[other])


@pytest.mark.slow
def test_proposed_resume_equals_uninterrupted(table, one_sided, tmp_path):
    """The α function's running mean is checkpointed with the model."""
    cfg = _two_sided_cfg(epochs=3)
    cfg.train.checkpoint_every = 1
    runs = runs_lib.make_runs("proposed", EMOTIONS, FOLDS, SEEDS[:1])
    full = _train(table, one_sided, "proposed", runs, cfg)
    ckpt = tmp_path / "ckpt"
    assert (
        _train(
            table,
            one_sided,
            "proposed",
            runs,
            cfg,
            checkpoint_dir=ckpt,
            stop_after_epoch=2,
        )
        is None
    )
    resumed = _train(
        table,
        one_sided,
        "proposed",
        runs,
        cfg,
        checkpoint_dir=ckpt,
        resume=True,
    )
    np.testing.assert_allclose(resumed.logits, full.logits, rtol=1e-6)
    np.testing.assert_allclose(
        resumed.trace["alpha"], full.trace["alpha"], rtol=1e-6
    )


@pytest.mark.slow
def test_two_sided_variants_refuse_missing_inputs(table):
    data, info = table
    runs = runs_lib.make_runs("proposed", EMOTIONS, FOLDS, SEEDS)
    with pytest.raises(ValueError, match="starts from the trained fair_rat"):
        runner.train_variant(
            "proposed", runs, data, info.fold, _two_sided_cfg(), progress=False
        )


def test_config_validation_names_the_field():
    cfg = _two_sided_cfg()
    cfg.variants = ("proposed",)
    cfg.two_sided.alpha_fn = "linear"
    with pytest.raises(ValueError, match="config.two_sided.alpha_fn"):
        variants_lib.validate(cfg)
    cfg.two_sided.alpha_fn = "ema_ratio"
    cfg.variants = ("fixed_alpha",)
    cfg.two_sided.fixed_alphas = (0.5, 1.5)
    with pytest.raises(ValueError, match="fixed_alphas"):
        variants_lib.validate(cfg)
    cfg.two_sided.fixed_alphas = (0.5,)
    cfg.two_sided.sweep_emotions = ("happiness",)
    cfg.emotions = ("anger",)
    with pytest.raises(ValueError, match="sweep_emotions"):
        variants_lib.validate(cfg)


@pytest.mark.slow
def test_params_file_round_trip(one_sided, tmp_path):
    runs, params = one_sided["fair_rat"]
    path = tmp_path / "params" / "fair_rat.npz"
    outputs.save_params(path, runs, params)
    loaded_runs, loaded = outputs.load_params(path)
    assert loaded_runs == runs
    assert jax.tree.structure(loaded) == jax.tree.structure(params)
    jax.tree.map(np.testing.assert_array_equal, loaded, params)
    with np.load(path, allow_pickle=False) as f:  # plain arrays, no pickle
        assert all(f[k].dtype != object for k in f.files)


