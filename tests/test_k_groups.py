"""Group terms for k >= 2 groups, against independent references.

`losses.group_distance(num_groups=k, pooling=...)`, the k-way
`losses.adversarial_loss`, `models.AdversaryHead(num_groups=k)` /
`FairSERModel(num_rater_groups=k)` and `supervised_contrastive` with three
labels. References are float64 NumPy loops written from the formulas, POT's
Sinkhorn solver, optax, and `losses.wasserstein` (ott-jax) on sliced clouds.
The binary case must stay bit for bit what it was.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import ot
import pytest
from conftest import np_reg_ot as _np_reg_ot

from fairser_jax import losses, models
from fairser_jax.config import get_default_config

EPS = 0.1
ITERS = 20
# The k = 3 pair tests share one compiled function (compiling Sinkhorn's
# unrolled value-and-grad costs seconds; running it at B = 16 costs
# microseconds), at the iteration count the POT comparison needs.
PAIR_ITERS = 200

# Tests that compare with a reference to a tolerance compile without
# XLA's backend optimisations: a third of the compile time (which is
# nearly all of this file's time), same math up to float rounding. The
# bit-for-bit tests use plain jax.jit (or run eagerly), as training does.
_jit = functools.partial(
    jax.jit, compiler_options={"xla_backend_optimization_level": 0}
)

# --------------------------------------------------------------------------
# References


def _np_divergence(x, y, eps=EPS, iterations=ITERS):
    """Sinkhorn divergence S_eps(x, y) of two uniform clouds (NumPy)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    return (
        _np_reg_ot(x, y, a, b, eps, iterations)
        - 0.5 * _np_reg_ot(x, x, a, a, eps, iterations, symmetric=True)
        - 0.5 * _np_reg_ot(y, y, b, b, eps, iterations, symmetric=True)
    )


def _np_pairs(z, groups, valid, k, **kw):
    """Mean over present pairs i < j of S(group j, group i)."""
    members = [valid & (groups == c) for c in range(k)]
    terms = [
        _np_divergence(z[members[j]], z[members[i]], **kw)
        for i in range(k)
        for j in range(i + 1, k)
        if members[i].any() and members[j].any()
    ]
    return float(np.mean(terms)) if terms else 0.0


def _np_pooled(z, groups, valid, k, **kw):
    """Mean over present groups c of S(group c, all valid rows of 0..k-1)."""
    members = [valid & (groups == c) for c in range(k)]
    pooled = np.any(members, axis=0)
    terms = [_np_divergence(z[m], z[pooled], **kw) for m in members if m.any()]
    return float(np.mean(terms)) if len(terms) >= 2 else 0.0


def _pot_reg_ot(x, y, eps):
    """Converged OT_eps(x, y) = <P, C> + eps KL(P | a b^T) at POT's plan
    (the primal of the dual objective that ott's reg_ot_cost evaluates),
    and the bare linear cost <P, C> (what `ot.sinkhorn2` returns) for
    contrast. Costs here are <~ 2 = 20 eps, so POT's plain (non-log)
    Sinkhorn does not underflow, and it stops at a 1e-12 marginal error."""
    a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    c = ot.dist(x, y, metric="sqeuclidean")
    assert c.max() < 100 * eps
    plan = ot.sinkhorn(a, b, c, eps, numItermax=10000, stopThr=1e-12)
    ab = a[:, None] * b[None, :]
    kl = np.sum(plan * np.log(plan / ab)) - plan.sum() + ab.sum()
    linear = np.sum(plan * c)
    return linear + eps * kl, linear


def _pot_divergence(x, y, eps):
    """Converged Sinkhorn divergence with and without the entropy term."""
    (xy, xy_lin), (xx, xx_lin), (yy, yy_lin) = (
        _pot_reg_ot(x, y, eps),
        _pot_reg_ot(x, x, eps),
        _pot_reg_ot(y, y, eps),
    )
    return xy - 0.5 * (xx + yy), xy_lin - 0.5 * (xx_lin + yy_lin)


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(t))) for t in jax.tree.leaves(tree))


@functools.cache
def _distance(num_groups, pooling="pairs", iterations=ITERS, grad=True):
    """One jitted function per static setting, shared by the tests, so that
    each compiles once (all k = 3 batches have the same shape, B = 16)."""

    def fn(z, groups, where):
        return losses.group_distance(
            z,
            groups,
            where,
            epsilon=EPS,
            num_iterations=iterations,
            num_groups=num_groups,
            pooling=pooling,
        )

    return _jit(jax.value_and_grad(fn) if grad else fn)


@functools.cache
def _sliced_wasserstein():
    return _jit(
        functools.partial(
            losses.wasserstein, epsilon=EPS, num_iterations=PAIR_ITERS
        )
    )


def _wasserstein(x, y):
    """`losses.wasserstein` (ott-jax) between two sliced uniform clouds."""
    return float(_sliced_wasserstein()(x, y, np.ones(len(x)), np.ones(len(y))))


def _batch(rng, counts=(4, 4, 4), extra_codes=(-1, 3), masked=2, d=3):
    """z [B, d] (float32) with `counts[c]` valid rows of group c, rows
    coded `extra_codes` (absent: out of range) and `masked` rows of group 0
    with where=False, shuffled. The default is the shared k = 3 shape."""
    groups = np.concatenate(
        [np.full(n, c) for c, n in enumerate(counts)]
        + [np.asarray(extra_codes, int), np.zeros(masked, int)]
    )
    where = np.ones(len(groups), bool)
    where[len(groups) - masked :] = False
    order = rng.permutation(len(groups))
    groups, where = groups[order], where[order]
    z = rng.normal(size=(len(groups), d)) + 0.5 * groups[:, None].clip(0, 9)
    return z.astype(np.float32), groups, where


def _richardson_derivative(value_at, h=1e-2):
    """Central finite difference with one Richardson step (error O(h^4))."""

    def central(step):
        return (value_at(step) - value_at(-step)) / (2 * step)

    return (4 * central(h / 2) - central(h)) / 3


# --------------------------------------------------------------------------
# group_distance, pooling="pairs"


def test_pairs_k3_equals_pairwise_wasserstein_value_and_gradient(rng):
    """k = 3: the mean over the 3 pairs of S(group j, group i), j > i.

    Value: equals the NumPy float64 loop (same iteration count) and
    `wasserstein` (ott) on the sliced clouds. Gradient: 0 on absent rows,
    and its projection on a random direction equals the finite-difference
    derivative of the value (Richardson, rtol 1e-3 as in test_losses.py).
    """
    z, groups, where = _batch(rng)
    fn = _distance(3, iterations=PAIR_ITERS)
    value, grad = fn(z, groups, where)

    want = _np_pairs(z, groups, where, 3, iterations=PAIR_ITERS)
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-6)
    member = [where & (groups == c) for c in range(3)]
    sliced = [
        _wasserstein(z[member[j]], z[member[i]])
        for i, j in [(0, 1), (0, 2), (1, 2)]
    ]
    np.testing.assert_allclose(value, np.mean(sliced), rtol=1e-5)

    absent = ~np.any(member, axis=0)
    assert absent.sum() == 4
    np.testing.assert_array_equal(grad[absent], 0.0)
    assert float(jnp.abs(grad[~absent]).min()) > 0.0
    direction = rng.normal(size=z.shape).astype(np.float32)

    def value_at(h):
        return float(fn(z + h * direction, groups, where)[0])

    np.testing.assert_allclose(
        float(jnp.sum(grad * direction)),
        _richardson_derivative(value_at),
        rtol=1e-3,
    )


def test_pairs_k3_matches_converged_pot_sinkhorn_divergence(rng):
    """200 iterations at eps = 0.1 vs POT's converged float64 solution.

    Each OT term is <P, C> + eps KL(P | a b^T) at POT's plan (stopThr
    1e-12), the primal value of the dual objective ott's reg_ot_cost
    evaluates. The cloud is scaled to costs <= 3.4 (34 eps), where
    Sinkhorn converges fast: the float64 NumPy loop gives the same value
    at 50 and 400 iterations, so after 200 only float32 rounding is left.
    Each pair's value is a difference of three OT terms of up to ~1.5x
    its size, so float32 rounding of each (a few ulps, ~1e-7 relative,
    over B^2 plan entries and the unrolled iterations) can reach ~1e-6 of
    the result: rtol 1e-5 (measured: 2.5e-8). POT's bare linear cost <P, C>
    (ot.sinkhorn2's value, no entropy term) is 4 % away here, far outside
    the tolerance, so the comparison tells the two objectives apart.
    Group sizes differ (4, 5, 3), so the uniform weights differ too.
    """
    z, groups, where = _batch(rng, (4, 5, 3), extra_codes=(-1,), masked=3)
    z = 0.3 * z  # same shape as the other k = 3 batches: no new compile
    value, _ = _distance(3, iterations=PAIR_ITERS)(z, groups, where)
    z64 = z.astype(np.float64)
    member = [where & (groups == c) for c in range(3)]
    full, linear = np.mean(
        [
            _pot_divergence(z64[member[j]], z64[member[i]], EPS)
            for i, j in [(0, 1), (0, 2), (1, 2)]
        ],
        axis=0,
    )
    np.testing.assert_allclose(value, full, rtol=1e-5)
    assert abs(linear - full) > 100 * 1e-5 * abs(full)


def test_pairs_empty_group_and_nonfinite_absent_rows(rng):
    """k = 3 with group 1 absent: only the pair (0, 2) counts (the mean
    over 1 pair, not 3). Absent rows (code -1, out-of-range code 3,
    where=False, and every row of group 1 masked) hold NaN/inf: the value
    is the one with finite garbage there, bit for bit, and the gradient is
    finite and 0 on them."""
    z, groups, where = _batch(rng)
    where = where & (groups != 1)  # group 1: rows exist but all masked
    absent = ~(where & (groups >= 0) & (groups < 3))
    fn = _distance(3, iterations=PAIR_ITERS)
    value, grad = fn(z, groups, where)
    only_pair = _np_divergence(
        z[where & (groups == 2)],
        z[where & (groups == 0)],
        iterations=PAIR_ITERS,
    )
    np.testing.assert_allclose(value, only_pair, rtol=1e-5, atol=1e-6)

    dirty = z.copy()
    dirty[absent] = np.array([np.nan, np.inf, -np.inf], np.float32)
    dirty_value, dirty_grad = fn(dirty, groups, where)
    assert _finite((dirty_value, dirty_grad))
    np.testing.assert_array_equal(dirty_value, value)
    np.testing.assert_array_equal(dirty_grad[absent], 0.0)
    np.testing.assert_array_equal(dirty_grad, grad)


def test_pairs_k4_under_vmap_empty_groups_and_nan(rng):
    """k = 4, vmapped over runs: runs with fewer than two present groups
    (some holding NaN/inf in absent rows) are exactly 0.0 with zero
    gradient; a run with group 1 empty is the mean over the 3 pairs of
    {0, 2, 3}; a full run is the mean over all 6 pairs (NumPy loops)."""
    n, k = 12, 4
    z = rng.normal(size=(6, n, 2)).astype(np.float32)
    groups = np.tile(np.arange(n) % k, (6, 1))
    where = np.ones((6, n), bool)
    groups[0] = 2  # only group 2
    where[1] = groups[1] == 1  # only group 1 left after masking
    groups[2] = -1  # no group
    where[3] = False  # nothing valid
    z[1, ~where[1]] = np.nan
    z[2, :3] = np.inf
    groups[4, groups[4] == 1] = 7  # group 1 empty (code 7 is absent)
    z[4, groups[4] == 7] = np.nan
    fn = _jit(
        jax.vmap(
            jax.value_and_grad(
                functools.partial(
                    losses.group_distance,
                    epsilon=EPS,
                    num_iterations=5,
                    num_groups=k,
                )
            )
        )
    )
    values, grads = fn(z, groups, where)
    assert _finite(grads)
    for r in range(4):
        assert float(values[r]) == 0.0, r
        np.testing.assert_array_equal(grads[r], 0.0)
    for r in (4, 5):
        want = _np_pairs(z[r], groups[r], where[r], k, iterations=5)
        np.testing.assert_allclose(values[r], want, rtol=1e-5, atol=1e-6)
    three = [
        _np_divergence(z[4, groups[4] == j], z[4, groups[4] == i], iterations=5)
        for i, j in [(0, 2), (0, 3), (2, 3)]
    ]
    np.testing.assert_allclose(values[4], np.mean(three), rtol=1e-5)
    np.testing.assert_array_equal(grads[4, groups[4] == 7], 0.0)


# --------------------------------------------------------------------------
# group_distance, pooling="pooled"


def test_pooled_k3_equals_groupwise_reference(rng):
    """Mean over present groups of S(group, pooled batch).

    Against the NumPy loop (slices, group by group), with absent rows (-1,
    code 3, where=False) that are in no cloud, not even the pool; then
    with group 1 absent (mean over groups 0 and 2 only) and NaN/inf in
    absent rows, and with one or no group present (exactly 0).
    Values only: the gradient is `wasserstein`'s, whose finiteness on
    zero-weight rows tests/test_losses.py checks (and compiling the
    gradient of ott's solver vmapped over groups would take ~10 s here).
    """
    fn = _distance(3, "pooled", grad=False)
    z, groups, where = _batch(rng)
    value = fn(z, groups, where)
    np.testing.assert_allclose(
        value, _np_pooled(z, groups, where, 3), rtol=1e-5, atol=1e-6
    )

    # Group 1 masked out; NaN/inf in every absent row.
    where = where & (groups != 1)
    pooled = where & (groups >= 0) & (groups < 3)
    dirty = z.copy()
    dirty[~pooled] = np.array([np.nan, np.inf, -np.inf], np.float32)
    want = np.mean(
        [_np_divergence(z[where & (groups == c)], z[pooled]) for c in (0, 2)]
    )
    np.testing.assert_allclose(
        fn(dirty, groups, where), want, rtol=1e-5, atol=1e-6
    )
    for keep in (groups == 2, np.zeros_like(where)):  # one group, none
        assert float(fn(dirty, groups, where & keep)) == 0.0


def test_pooled_k2_is_its_own_quantity(rng):
    """num_groups=2, "pooled": mean of S(F, F u M) and S(M, F u M) (NumPy
    loop), not the pair term S(M, F)."""
    z, groups, where = _batch(rng, (4, 5), extra_codes=(-1, 2))
    value = _distance(2, "pooled", grad=False)(z, groups, where)
    np.testing.assert_allclose(
        value, _np_pooled(z, groups, where, 2), rtol=1e-5, atol=1e-6
    )
    pair = _np_pairs(z, groups, where, 2)
    assert abs(pair - float(value)) > 1e-2 * pair


# --------------------------------------------------------------------------
# num_groups = 2: the binary term, bit for bit


def test_binary_pairs_is_bitwise_the_packed_divergence(rng):
    """num_groups=2 is `_packed_divergence(z, M, F)` itself: equal values
    and gradients bit for bit, under jit and vmap; the default arguments
    trace to the very same program. Codes other than 0/1 are absent."""
    runs, n = 4, 10
    z = rng.normal(size=(runs, n, 3)).astype(np.float32)
    groups = rng.integers(-1, 3, size=(runs, n))
    groups[:, :2] = [0, 1]
    where = rng.random((runs, n)) < 0.8
    where[:, :2] = True

    def direct(z, g, w):
        return losses._packed_divergence(
            z, w & (g == 1), w & (g == 0), EPS, ITERS, True
        )

    def explicit(z, g, w):
        return losses.group_distance(
            z,
            g,
            w,
            epsilon=EPS,
            num_iterations=ITERS,
            num_groups=2,
            pooling="pairs",
        )

    def default(z, g, w):
        return losses.group_distance(z, g, w, epsilon=EPS, num_iterations=ITERS)

    def batched(fn):
        return jax.jit(jax.vmap(jax.value_and_grad(fn)))

    want = batched(direct)(z, groups, where)
    got = batched(explicit)(z, groups, where)
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)
    assert float(jnp.min(want[0])) > 0.0
    jaxprs = [
        str(jax.make_jaxpr(fn)(z[0], groups[0], where[0]))
        for fn in (default, explicit, direct)
    ]
    assert jaxprs[0] == jaxprs[1]
    assert jaxprs[0].count("scan") == jaxprs[2].count("scan") == 1


# --------------------------------------------------------------------------
# adversarial_loss with [B, K] logits


def test_adversarial_k_way_matches_optax(rng):
    """Softmax cross-entropy, masked mean over where & 0 <= g < K.

    Invalid rows (where=False, g = -1, g = K) hold NaN/inf logits: the
    value equals optax's on the valid rows alone, the gradient is finite,
    0 on invalid rows and (softmax - onehot) / |V| on valid ones (float64
    NumPy). Vmapped over runs, a run with no valid row is exactly 0 with
    zero gradient.
    """
    n, k = 12, 4
    logits = (3 * rng.normal(size=(n, k))).astype(np.float32)
    groups = rng.integers(0, k, size=n)
    where = np.ones(n, bool)
    groups[0], groups[1], where[2] = -1, k, False
    valid = where & (groups >= 0) & (groups < k)
    logits[~valid] = np.array([np.nan, np.inf, -np.inf, 0.0], np.float32)

    values, grads = _jit(jax.vmap(jax.value_and_grad(losses.adversarial_loss)))(
        np.stack([logits, logits]),
        np.stack([groups, groups]),
        np.stack([where, np.zeros(n, bool)]),
    )
    want = optax.softmax_cross_entropy_with_integer_labels(
        logits[valid], groups[valid]
    ).mean()
    np.testing.assert_allclose(values[0], want, rtol=1e-6)
    assert _finite(grads)
    np.testing.assert_array_equal(grads[0][~valid], 0.0)
    v64 = logits[valid].astype(np.float64)
    softmax = np.exp(v64 - v64.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    want_grad = (softmax - np.eye(k)[groups[valid]]) / valid.sum()
    np.testing.assert_allclose(grads[0][valid], want_grad, atol=1e-7)
    assert float(values[1]) == 0.0
    np.testing.assert_array_equal(grads[1], 0.0)


def test_adversarial_two_column_softmax_equals_binary_sigmoid(rng):
    """With logits [0, s] the 2-way softmax CE is the sigmoid BCE of s, so
    the [B, 2] path and the unchanged [B] path agree; codes outside 0/1
    are excluded by both."""
    n = 10
    s = (2 * rng.normal(size=n)).astype(np.float32)
    groups = rng.integers(-1, 3, size=n)
    groups[:2] = [0, 1]
    where = rng.random(n) < 0.8
    where[:2] = True
    loss = _jit(losses.adversarial_loss)
    binary = loss(s, groups, where)
    two_way = loss(
        np.stack([np.zeros(n, np.float32), s], axis=1), groups, where
    )
    np.testing.assert_allclose(two_way, binary, rtol=1e-6)
    valid = where & ((groups == 0) | (groups == 1))
    y = (groups[valid] == 1).astype(np.float64)
    s64 = s[valid].astype(np.float64)
    bce = np.logaddexp(0, -s64) * y + np.logaddexp(0, s64) * (1 - y)
    np.testing.assert_allclose(binary, bce.mean(), rtol=1e-6)


# --------------------------------------------------------------------------
# AdversaryHead / FairSERModel

SIZES, HIDDEN, FEATURES, BATCH = (16, 8), 6, 12, 10


class _BinaryHeadAsBefore(nn.Module):
    """The binary head as it was before num_groups existed."""

    hidden: int = 64

    @nn.compact
    def __call__(self, z):
        h = nn.relu(nn.Dense(int(self.hidden), name="hidden")(z))
        return nn.Dense(1, name="out")(h)[..., 0]


def test_binary_head_and_model_unchanged(rng):
    """num_groups=2 (default or explicit) keeps the binary head's parameter
    tree, initial values and outputs bit for bit; likewise the model."""
    z = jnp.asarray(rng.normal(size=(BATCH, SIZES[-1])), jnp.float32)
    key = jax.random.key(7)

    before = _BinaryHeadAsBefore(HIDDEN)
    p_before = before.init(key, z)
    for head in (
        models.AdversaryHead(HIDDEN),
        models.AdversaryHead(HIDDEN, num_groups=2),
    ):
        p = head.init(key, z)
        assert jax.tree.structure(p) == jax.tree.structure(p_before)
        for a, b in zip(
            jax.tree.leaves(p), jax.tree.leaves(p_before), strict=True
        ):
            assert np.array_equal(a, b)
        out = head.apply(p, z)
        assert out.shape == (BATCH,)
        assert np.array_equal(out, before.apply(p_before, z))

    x = jnp.asarray(rng.normal(size=(BATCH, FEATURES)), jnp.float32)
    kw = dict(encoder_sizes=SIZES, adversary_hidden=HIDDEN)
    results = []
    for model in (
        models.FairSERModel(**kw),
        models.FairSERModel(**kw, num_rater_groups=2),
    ):
        params = model.init(jax.random.key(1), x, train=False)["params"]
        out = model.apply(
            {"params": params}, x, train=True, rngs={"dropout": key}
        )
        results.append((params, out))
    for a, b in zip(*map(jax.tree.leaves, results), strict=True):
        assert np.array_equal(a, b)
    assert results[0][1].adversary_logits.shape == (BATCH,)
    cfg = get_default_config().model
    assert models.model_from_config(cfg) == models.model_from_config(cfg, 2)
    assert models.model_from_config(cfg, 3).num_rater_groups == 3


def test_k_group_model_logits_and_reversed_encoder_gradient(rng):
    """num_rater_groups=3: [B, 3] logits from an "out" layer of width 3;
    the encoder's gradient of L_Adv through the model is -grl_scale times
    the gradient with the head applied to z directly (no reversal), while
    the head's own gradient is not reversed (grl_scale 1 and 0.5)."""
    k = 3
    model = models.FairSERModel(
        encoder_sizes=SIZES, adversary_hidden=HIDDEN, num_rater_groups=k
    )
    x = jnp.asarray(rng.normal(size=(BATCH, FEATURES)), jnp.float32)
    groups = jnp.asarray(np.arange(BATCH) % k)
    params = model.init(jax.random.key(0), x, train=False)["params"]
    shapes = jax.tree.map(jnp.shape, params)
    assert shapes["adversary_head"]["out"]["kernel"] == (HIDDEN, k)
    assert shapes["adversary_head"]["out"]["bias"] == (k,)

    def through_model(params, grl_scale):
        out = model.apply(
            {"params": params}, x, train=False, grl_scale=grl_scale
        )
        assert out.adversary_logits.shape == (BATCH, k)
        return losses.adversarial_loss(out.adversary_logits, groups)

    def head_on_z(params):
        z = models.Encoder(SIZES).apply(
            {"params": params["encoder"]}, x, train=False
        )
        logits = models.AdversaryHead(HIDDEN, k).apply(
            {"params": params["adversary_head"]}, z
        )
        return losses.adversarial_loss(logits, groups)

    v2, g2 = _jit(jax.value_and_grad(head_on_z))(params)
    reversed_fn = _jit(jax.value_and_grad(through_model))
    for grl_scale in (1.0, 0.5):
        v1, g1 = reversed_fn(params, grl_scale)
        np.testing.assert_allclose(v1, v2, rtol=1e-6)
        for a, b in zip(
            jax.tree.leaves(g1["encoder"]),
            jax.tree.leaves(g2["encoder"]),
            strict=True,
        ):
            np.testing.assert_allclose(a, -grl_scale * b, rtol=1e-5, atol=1e-8)
            assert float(jnp.abs(b).max()) > 0.0
        for a, b in zip(
            jax.tree.leaves(g1["adversary_head"]),
            jax.tree.leaves(g2["adversary_head"]),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)
        np.testing.assert_array_equal(
            g1["emotion_head"]["dense"]["kernel"], 0.0
        )


# --------------------------------------------------------------------------
# supervised_contrastive with three labels


def _np_supcon(z, labels, valid, temperature):
    """Khosla et al. L^sup_out as written in the docstring (double loop)."""
    z = np.asarray(z, np.float64)
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    total, anchors = 0.0, 0
    for i in np.flatnonzero(valid):
        others = [a for a in np.flatnonzero(valid) if a != i]
        positives = [p for p in others if labels[p] == labels[i]]
        if not positives:
            continue
        log_denom = np.log(
            sum(np.exp(u[i] @ u[a] / temperature) for a in others)
        )
        total += -np.mean(
            [u[i] @ u[p] / temperature - log_denom for p in positives]
        )
        anchors += 1
    return total / anchors


def test_supcon_three_labels_matches_numpy(rng):
    n = 14
    z = rng.normal(size=(n, 4))
    labels = rng.integers(0, 3, size=n)
    labels[:4] = [0, 1, 2, 2]
    labels[4] = 7  # a singleton label: contrast only, never an anchor
    where = rng.random(n) < 0.85
    where[:5] = True
    got = _jit(
        functools.partial(losses.supervised_contrastive, temperature=0.2)
    )(jnp.asarray(z, jnp.float32), labels, where=where)
    np.testing.assert_allclose(
        got, _np_supcon(z, labels, where, 0.2), rtol=2e-5
    )


# --------------------------------------------------------------------------
# Static errors


def test_bad_group_arguments_raise_clear_errors():
    z, g = jnp.zeros((4, 2)), jnp.zeros(4, int)
    kw = dict(epsilon=0.1, num_iterations=3)
    for bad in (1, 0, 2.0, True, "3"):
        with pytest.raises(ValueError, match="group_distance: `num_groups`"):
            losses.group_distance(z, g, **kw, num_groups=bad)
    with pytest.raises(ValueError, match="`pooling`.*'mean'"):
        losses.group_distance(z, g, **kw, pooling="mean")
    with pytest.raises(ValueError, match="adversarial_loss.*1 or 2"):
        losses.adversarial_loss(jnp.zeros((4, 3, 2)), g)
    with pytest.raises(ValueError, match="adversarial_loss.*K >= 2"):
        losses.adversarial_loss(jnp.zeros((4, 1)), g)
    # Abstract init (eval_shape): the check needs no compiled program.
    with pytest.raises(ValueError, match="num_groups must be an int >= 2"):
        jax.eval_shape(
            models.AdversaryHead(4, num_groups=1).init, jax.random.key(0), z
        )
    with pytest.raises(ValueError, match="num_groups must be an int >= 2"):
        model = models.FairSERModel(encoder_sizes=(3,), num_rater_groups=1)
        jax.eval_shape(
            functools.partial(model.init, train=False), jax.random.key(0), z
        )
