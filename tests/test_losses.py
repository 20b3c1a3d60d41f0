"""Tests of fairser_jax.losses against independent NumPy / POT references.

Every loss is called through ``jax.jit``. References are plain float64 NumPy
loops written from the formulas (not from the implementation), POT's exact
``ot.emd2`` and closed forms of optimal transport.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from conftest import np_reg_ot as _np_reg_ot

from fairser_jax import losses

# --------------------------------------------------------------------------
# References


def _np_log_sigmoid(x):
    return -np.logaddexp(0.0, -np.asarray(x, np.float64))


def _np_bce(logits, labels):
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.float64)
    return -labels * _np_log_sigmoid(logits) - (1 - labels) * _np_log_sigmoid(
        -logits
    )


def _np_supcon(z, labels, valid, temperature):
    """Khosla et al. L^sup_out as a double loop over anchors and pairs."""
    z = np.asarray(z, np.float64)
    n = len(z)
    total, count = 0.0, 0
    for i in range(n):
        if not valid[i]:
            continue
        zi = z[i] / np.linalg.norm(z[i])
        others = [a for a in range(n) if a != i and valid[a]]
        positives = [p for p in others if labels[p] == labels[i]]
        if not positives:
            continue
        sims = {
            a: float(zi @ (z[a] / np.linalg.norm(z[a]))) / temperature
            for a in others
        }
        denom = sum(np.exp(sims[a]) for a in others)
        term = 0.0
        for p in positives:
            term += np.log(np.exp(sims[p]) / denom)
        total += -term / len(positives)
        count += 1
    return total / count if count else 0.0


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(t))) for t in jax.tree.leaves(tree))


@functools.cache
def _wasserstein(num_iterations, debiased, grad=False):
    """One jitted function per static setting, shared by all tests (epsilon
    is a traced argument), so that each compiles once per shape."""

    def fn(x, y, a, b, epsilon):
        return losses.wasserstein(
            x,
            y,
            a,
            b,
            epsilon=epsilon,
            num_iterations=num_iterations,
            debiased=debiased,
        )

    if grad:
        fn = jax.value_and_grad(fn, argnums=(0, 1, 2, 3))
    return jax.jit(fn)


def _f32(*arrays):
    return tuple(jnp.asarray(a, jnp.float32) for a in arrays)


# --------------------------------------------------------------------------
# Binary cross-entropy: L_S, L_R, L_Adv


def test_bce_matches_numpy_including_large_logits(rng):
    logits = np.concatenate(
        [rng.normal(scale=3.0, size=40), [-1e4, -200.0, -50.0, 50.0, 200.0]]
    )
    logits = np.concatenate([logits, [1e4]])
    labels = rng.integers(0, 2, size=logits.shape)
    labels[-6:] = [0, 1, 1, 0, 1, 0]  # includes the huge-loss cases
    got = jax.jit(losses.sigmoid_binary_cross_entropy)(
        *_f32(logits), jnp.asarray(labels)
    )
    want = _np_bce(logits, labels)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    grads = jax.grad(
        lambda s: losses.sigmoid_binary_cross_entropy(s, labels).sum()
    )(jnp.asarray(logits, jnp.float32))
    sigmoid = np.exp(_np_log_sigmoid(logits))
    np.testing.assert_allclose(grads, sigmoid - labels, atol=1e-6)


def test_emotion_loss_where_equals_slicing(rng):
    logits = rng.normal(size=17)
    labels = rng.integers(0, 2, size=17)
    mask = rng.random(17) < 0.6
    fn = jax.jit(losses.emotion_loss)
    got = fn(*_f32(logits), labels, where=mask)
    np.testing.assert_allclose(
        got, fn(*_f32(logits[mask]), labels[mask]), rtol=1e-6
    )
    np.testing.assert_allclose(
        got, _np_bce(logits[mask], labels[mask]).mean(), rtol=1e-5
    )


def test_masked_mean_empty_and_nan_masked_entries():
    values = jnp.array([1.0, jnp.nan, 3.0, jnp.inf])
    mask = jnp.array([True, False, True, False])
    fn = jax.jit(losses.masked_mean)
    assert float(fn(values, mask)) == pytest.approx(2.0)
    assert float(fn(values, jnp.zeros(4, bool))) == 0.0
    grad = jax.grad(lambda v: fn(v, mask))(values)
    np.testing.assert_array_equal(grad, [0.5, 0.0, 0.5, 0.0])
    grad = jax.grad(lambda v: fn(v, jnp.zeros(4, bool)))(values)
    np.testing.assert_array_equal(grad, np.zeros(4))


def test_adversarial_loss_groups_mask_and_slicing(rng):
    logits = rng.normal(scale=2.0, size=20)
    groups = rng.integers(-1, 2, size=20)  # -1 = unknown group
    mask = rng.random(20) < 0.7
    fn = jax.jit(losses.adversarial_loss)
    got = fn(*_f32(logits), groups, where=mask)
    keep = mask & (groups >= 0)
    np.testing.assert_allclose(
        got, _np_bce(logits[keep], groups[keep] == 1).mean(), rtol=1e-5
    )
    np.testing.assert_allclose(
        got, fn(*_f32(logits[keep]), groups[keep]), rtol=1e-6
    )


def test_gradient_reversal_through_adversary(rng):
    """Encoder gradient of L_Adv behind the GRL is -scale x the plain one."""
    z = jnp.asarray(rng.normal(size=(12, 5)), jnp.float32)
    w = jnp.asarray(rng.normal(size=5), jnp.float32)
    groups = jnp.asarray(rng.integers(0, 2, size=12))

    def loss(z, scale, reverse):
        h = losses.gradient_reversal(z, scale) if reverse else z
        return losses.adversarial_loss(h @ w, groups)

    plain = jax.jit(jax.grad(loss), static_argnums=2)(z, 1.0, False)
    for scale in (1.0, 0.3):
        rev = jax.jit(jax.grad(loss), static_argnums=2)(z, scale, True)
        np.testing.assert_allclose(rev, -scale * plain, rtol=1e-6)


# --------------------------------------------------------------------------
# Gradient reversal


def test_gradient_reversal_forward_and_backward(rng):
    x = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)

    @jax.jit
    def fwd_bwd(x, scale):
        y, pullback = jax.vjp(losses.gradient_reversal, x, scale)
        return y, pullback(g)

    for scale in (1.0, 0.25, 2.0):
        y, (gx, gscale) = fwd_bwd(x, scale)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_allclose(gx, -scale * g, rtol=1e-6)
        assert float(gscale) == 0.0
    # Default scale and a Python-float scale outside jit.
    _, pullback = jax.vjp(losses.gradient_reversal, x)
    np.testing.assert_allclose(pullback(g)[0], -g)
    # Scale vmapped over runs (a traced, per-run value).
    scales = jnp.array([0.0, 0.5, 3.0])
    grads = jax.vmap(
        lambda s: jax.grad(
            lambda x: jnp.sum(losses.gradient_reversal(x, s) * g)
        )(x)
    )(scales)
    np.testing.assert_allclose(
        grads, -scales[:, None, None] * g[None], rtol=1e-6
    )


# --------------------------------------------------------------------------
# Supervised contrastive: L_cl


@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5, 1.0])
def test_supcon_matches_numpy_double_loop(rng, temperature):
    n = 14
    z = rng.normal(size=(n, 6)) * rng.uniform(0.1, 5.0, size=(n, 1))
    labels = rng.integers(0, 3, size=n)
    labels[0] = 7  # a class of one: anchor 0 has no positive
    valid = rng.random(n) < 0.8
    valid[[0, 1]] = True
    labels[2] = 9  # label 9 ...
    labels[3] = 9  # ... whose only other member is masked out
    valid[[2, 3]] = [True, False]
    fn = jax.jit(losses.supervised_contrastive)
    got = fn(*_f32(z), labels, temperature=temperature, where=valid)
    want = _np_supcon(z, labels, valid, temperature)
    np.testing.assert_allclose(got, want, rtol=2e-5)
    # Without a mask.
    got = fn(*_f32(z), labels, temperature=temperature)
    want = _np_supcon(z, labels, np.ones(n, bool), temperature)
    np.testing.assert_allclose(got, want, rtol=2e-5)


def test_supcon_where_equals_slicing_and_finite_grads(rng):
    n = 16
    z = rng.normal(size=(n, 4))
    z[5] = 0.0  # a dead-ReLU embedding: normalisation must stay finite
    labels = rng.integers(0, 2, size=n)
    valid = rng.random(n) < 0.6
    loss = jax.jit(losses.supervised_contrastive)
    got = loss(*_f32(z), labels, temperature=0.1, where=valid)
    sliced = loss(*_f32(z[valid]), labels[valid], temperature=0.1)
    np.testing.assert_allclose(got, sliced, rtol=1e-5)
    grads = jax.jit(jax.grad(loss), static_argnames="temperature")(
        *_f32(z), labels, temperature=0.1, where=valid
    )
    assert _finite(grads)
    np.testing.assert_array_equal(grads[~valid], 0.0)


def test_supcon_stable_at_small_temperature(rng):
    z = rng.normal(size=(10, 3))
    labels = rng.integers(0, 2, size=10)
    got = jax.jit(losses.supervised_contrastive)(
        *_f32(z), labels, temperature=0.01
    )
    want = _np_supcon(z, labels, np.ones(10, bool), 0.01)
    assert np.isfinite(float(got))
    np.testing.assert_allclose(got, want, rtol=1e-4)
    grads = jax.jit(jax.grad(losses.supervised_contrastive))(
        *_f32(z), labels, temperature=0.01
    )
    assert _finite(grads)


def test_supcon_no_valid_anchor_is_zero_with_zero_grad(rng):
    z = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    fn = jax.jit(jax.value_and_grad(losses.supervised_contrastive))
    for labels, valid in [
        (jnp.arange(6), jnp.ones(6, bool)),  # all labels distinct
        (jnp.zeros(6, int), jnp.zeros(6, bool)),  # everything masked
        (jnp.zeros(6, int), jnp.arange(6) == 2),  # a single valid sample
    ]:
        value, grads = fn(z, labels, temperature=0.1, where=valid)
        assert float(value) == 0.0
        np.testing.assert_array_equal(grads, 0.0)


# --------------------------------------------------------------------------
# Entropic Wasserstein: L_D-S, L_D-R


def test_wasserstein_small_epsilon_approaches_emd2(rng):
    """OT_eps - W2^2 lies in [0, eps * log(min(n, m))] (+ solver tol 1e-4).

    For the optimal unregularised plan P0, KL(P0 | a b^T) <= min(H(a), H(b))
    <= log(min(n, m)), which bounds the entropic bias from above; the gap
    must also shrink with epsilon.
    """
    x, y = rng.random((7, 3)), rng.random((5, 3)) + 0.3
    a, b = rng.random(7) + 0.2, rng.random(5) + 0.2
    a, b = a / a.sum(), b / b.sum()
    exact = ot.emd2(a, b, ot.dist(x, y, metric="sqeuclidean"))
    fn = _wasserstein(300, False)
    gaps = []
    for eps in (0.02, 0.005):
        gap = float(fn(*_f32(x, y, a, b), eps)) - exact
        assert -1e-4 <= gap <= eps * np.log(5) + 1e-4, (eps, gap)
        gaps.append(gap)
    assert gaps[1] < 0.5 * gaps[0]


@pytest.mark.parametrize("debiased", [False, True])
def test_wasserstein_runs_exactly_num_iterations(rng, debiased):
    """Matches a NumPy Sinkhorn stopped after 3 steps, not after 2 or 4."""
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(5, 2)) + 0.5
    a, b = rng.random(6) + 0.1, rng.random(5) + 0.1
    a, b = a / a.sum(), b / b.sum()
    eps = 0.5

    def reference(k):
        ref = _np_reg_ot(x, y, a, b, eps, k)
        if debiased:
            ref -= 0.5 * _np_reg_ot(x, x, a, a, eps, k, symmetric=True)
            ref -= 0.5 * _np_reg_ot(y, y, b, b, eps, k, symmetric=True)
        return ref

    got = float(_wasserstein(3, debiased)(*_f32(x, y, a, b), eps))
    np.testing.assert_allclose(got, reference(3), rtol=1e-5, atol=1e-6)
    for k in (2, 4):
        assert abs(got - reference(k)) > 1e-3, k


def _padded_problem(rng):
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(8, 3)) + 1.0
    keep_x = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1], bool)
    keep_y = np.array([0, 1, 1, 1, 0, 1, 0, 1], bool)
    wx = np.where(keep_x, rng.random(9) + 0.5, 0.0)  # unnormalised
    wy = np.where(keep_y, rng.random(8) + 0.5, 0.0)
    x[~keep_x] = [np.nan, np.inf, 1e6]  # padding rows may hold garbage
    return x, y, wx, wy, keep_x, keep_y


@pytest.mark.parametrize("debiased", [False, True])
def test_wasserstein_zero_weight_padding_equals_slicing(rng, debiased):
    x, y, wx, wy, keep_x, keep_y = _padded_problem(rng)
    fn = _wasserstein(20, debiased)
    padded = fn(*_f32(x, y, wx, wy), 0.05)
    sliced = fn(*_f32(x[keep_x], y[keep_y], wx[keep_x], wy[keep_y]), 0.05)
    np.testing.assert_allclose(padded, sliced, rtol=1e-5)


def _richardson_derivative(value_at, h=1e-2):
    """Central finite difference with one Richardson step (error O(h^4))."""

    def central(step):
        return (value_at(step) - value_at(-step)) / (2 * step)

    return (4 * central(h / 2) - central(h)) / 3


def test_wasserstein_gradients_padding_and_finite_differences(rng):
    """Unrolled gradients: finite, 0 on padding, = d(value) numerically.

    Sinkhorn is far from converged here (20 steps, epsilon 0.05), so a
    gradient that assumed convergence, or one mangled by a partial unroll
    (ott 0.6.0 with inner_iterations < num_iterations), fails the
    finite-difference check (rtol 1e-3). The debiased path is checked the
    same way in the vmapped group-distance test below.
    """
    x, y, wx, wy, keep_x, keep_y = _padded_problem(rng)
    value_and_grad = _wasserstein(20, False, grad=True)
    value, grads = value_and_grad(*_f32(x, y, wx, wy), 0.05)
    assert _finite(grads)  # including d/d(weights) at zero weights
    np.testing.assert_array_equal(grads[0][~keep_x], 0.0)
    np.testing.assert_array_equal(grads[1][~keep_y], 0.0)

    dx, dy = rng.normal(size=x.shape), rng.normal(size=y.shape)
    dx[~keep_x] = 0.0

    def value_at(h):
        xx = np.where(keep_x[:, None], x + h * dx, x)
        return float(value_and_grad(*_f32(xx, y + h * dy, wx, wy), 0.05)[0])

    analytic = float(
        jnp.sum(grads[0][keep_x] * dx[keep_x]) + jnp.sum(grads[1] * dy)
    )
    np.testing.assert_allclose(
        analytic, _richardson_derivative(value_at), rtol=1e-3
    )


def test_sinkhorn_divergence_self_symmetry_and_shift(rng):
    """S(mu, mu) = 0, S symmetric, and S(mu, mu + t) = |t|^2.

    For the squared-Euclidean cost a translation only adds |t|^2 and terms
    linear in the marginals, so the debiased divergence of a cloud and its
    translate is exactly |t|^2 at convergence, for any epsilon.
    """
    x = rng.normal(size=(8, 3))
    y = rng.normal(size=(6, 3)) * 0.5 + 1.0
    a = rng.random(8) + 0.2
    fn = _wasserstein(100, True)
    assert abs(float(fn(*_f32(x, x, a, a), 1.0))) < 1e-5
    np.testing.assert_allclose(
        fn(*_f32(x, y[[0, 1, 2, 3, 4, 5, 0, 1]], a, a), 1.0),
        fn(*_f32(y[[0, 1, 2, 3, 4, 5, 0, 1]], x, a, a), 1.0),
        rtol=1e-4,
    )
    previous = 0.0
    for length in (0.25, 0.5, 1.0, 2.0):
        shift = length * np.array([0.6, 0.0, 0.8])
        value = float(fn(*_f32(x, x + shift, a, a), 1.0))
        np.testing.assert_allclose(value, length**2, rtol=1e-4, atol=1e-5)
        assert value > previous
        previous = value


# --------------------------------------------------------------------------
# Group distance: L_D-S, L_D-R

_GROUP_KW = dict(epsilon=0.1, num_iterations=20)
_group_distance = jax.jit(functools.partial(losses.group_distance, **_GROUP_KW))


def test_group_distance_equals_sliced_wasserstein(rng):
    n = 10
    z = rng.normal(size=(n, 3))
    groups = rng.integers(-1, 2, size=n)  # -1 = unknown group
    groups[:3] = [0, 1, 1]
    valid = rng.random(n) < 0.8
    valid[:3] = True
    got = _group_distance(*_f32(z), groups, valid)
    male, female = valid & (groups == 1), valid & (groups == 0)
    want = _wasserstein(20, True)(
        *_f32(z[male], z[female], np.ones(male.sum()), np.ones(female.sum())),
        0.1,
    )
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("debiased", [True, False])
def test_group_distance_value_and_gradient_equal_otts(rng, debiased):
    """The packed one-matrix solver (three problems as blocks of C(z, z))
    gives ott-jax's value and gradient: `wasserstein` on the same batch
    with the groups as zero/one weights."""
    n, d = 24, 5
    z = jnp.asarray(rng.normal(size=(n, d)), jnp.float32)
    groups = jnp.asarray(rng.integers(-1, 2, size=n).clip(0) * 1)
    groups = groups.at[:2].set(jnp.array([0, 1]))
    where = jnp.asarray(rng.random(n) < 0.9).at[:2].set(True)

    def ours(z):
        return losses.group_distance(
            z, groups, where, epsilon=0.1, num_iterations=15, debiased=debiased
        )

    def otts(z):
        male = (where & (groups == 1)).astype(jnp.float32)
        female = (where & (groups == 0)).astype(jnp.float32)
        return losses.wasserstein(
            z,
            z,
            male,
            female,
            epsilon=0.1,
            num_iterations=15,
            debiased=debiased,
        )

    v1, g1 = jax.jit(jax.value_and_grad(ours))(z)
    v2, g2 = jax.jit(jax.value_and_grad(otts))(z)
    np.testing.assert_allclose(v1, v2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-6)


def test_group_distance_under_jit_vmap_with_empty_groups(rng):
    """L_D over stacked runs: empty group -> exactly 0 with zero gradient.

    The runs are one vmapped, jitted value-and-grad that is traced once for
    two calls with new data; every run equals the run computed alone, masked
    rows may hold garbage, and the (debiased, unrolled) gradient matches
    finite differences. The Sinkhorn loop is a fixed-length scan, no while
    loop, so vmapped runs never wait for the slowest member.
    """
    n, d = 10, 3

    @chex.assert_max_traces(n=1)
    def traced_once(z, groups, where):
        return losses.group_distance(z, groups, where, **_GROUP_KW)

    batched = jax.jit(jax.vmap(jax.value_and_grad(traced_once)))
    alternate = np.arange(n) % 2
    everything = np.ones(n, bool)
    empty_cases = [  # (groups, where) with no M or no F row left
        (np.zeros(n, int), everything),  # only F
        (np.ones(n, int), everything),  # only M
        (np.full(n, -1), everything),  # no known group
        (alternate, alternate == 0),  # M rows all masked
        (alternate, np.zeros(n, bool)),  # everything masked
    ]
    for call in range(2):
        z = rng.normal(size=(8, n, d)).astype(np.float32)
        groups = rng.integers(0, 2, size=(8, n))
        groups[:, :2] = [0, 1]
        where = rng.random((8, n)) < 0.8
        where[:, :2] = True
        for r, (g, w) in enumerate(empty_cases):
            groups[r], where[r] = g, w
        where[6, 2], z[6, 2] = False, np.nan  # a masked row holding NaN
        if call == 0:  # shares jit's trace cache: not a second trace
            jaxpr = str(batched.trace(z, groups, where).jaxpr)
            assert "scan" in jaxpr and "while" not in jaxpr
        values, grads = batched(z, groups, where)
        assert _finite(grads)
        for r in range(8):
            if r < len(empty_cases):
                assert float(values[r]) == 0.0, (call, r)
                np.testing.assert_array_equal(grads[r], 0.0)
            else:
                assert float(values[r]) > 0.0
                assert float(jnp.abs(grads[r]).sum()) > 0.0
                want = _group_distance(z[r], groups[r], where[r])
                np.testing.assert_allclose(
                    values[r], want, rtol=1e-5, err_msg=str(call)
                )

    # Finite differences of the summed non-empty runs along one direction.
    direction = rng.normal(size=z.shape).astype(np.float32)
    direction[6, 2] = 0.0
    runs = slice(len(empty_cases), None)

    def value_at(h):
        return float(batched(z + h * direction, groups, where)[0][runs].sum())

    kept_grads = jnp.where(where[:, :, None], grads, 0.0)
    analytic = float(jnp.sum(kept_grads[runs] * direction[runs]))
    np.testing.assert_allclose(
        analytic, _richardson_derivative(value_at), rtol=1e-3
    )


def test_supcon_under_jit_vmap_without_retracing(rng):
    runs, n, d = 4, 10, 3

    @chex.assert_max_traces(n=1)
    def traced_once(z, labels, where):
        return losses.supervised_contrastive(
            z, labels, temperature=0.1, where=where
        )

    batched = jax.jit(jax.vmap(jax.value_and_grad(traced_once)))
    for _ in range(2):
        z = rng.normal(size=(runs, n, d))
        labels = rng.integers(0, 2, size=(runs, n))
        where = rng.random((runs, n)) < 0.8
        values, grads = batched(*_f32(z), labels, where)
        assert _finite(grads)
        for r in range(runs):
            want = _np_supcon(z[r], labels[r], where[r], 0.1)
            np.testing.assert_allclose(values[r], want, rtol=2e-5)


# --------------------------------------------------------------------------
# Input validation


def test_bad_inputs_raise_clear_errors():
    z = jnp.zeros((4, 2))
    w = jnp.ones(4)
    with pytest.raises(ValueError, match="num_iterations"):
        losses.wasserstein(z, z, w, w, epsilon=0.1, num_iterations=0)
    with pytest.raises(ValueError, match="epsilon"):
        losses.wasserstein(z, z, w, w, epsilon=0.0, num_iterations=5)
    with pytest.raises(ValueError, match="dimension"):
        losses.wasserstein(z, jnp.zeros((4, 3)), w, w, epsilon=1.0,
                           num_iterations=5)  # fmt: skip
    with pytest.raises(ValueError, match="x_weights"):
        losses.wasserstein(z, z, jnp.ones(3), w, epsilon=1.0, num_iterations=5)
    with pytest.raises(ValueError, match="temperature"):
        losses.supervised_contrastive(z, jnp.zeros(4), temperature=-1.0)
    with pytest.raises(ValueError, match="labels"):
        losses.supervised_contrastive(z, jnp.zeros(5), temperature=0.1)
    with pytest.raises(ValueError, match="where"):
        losses.emotion_loss(jnp.zeros(4), jnp.zeros(4), where=jnp.ones(3))
