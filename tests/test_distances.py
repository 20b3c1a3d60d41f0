"""The three readings of D in eq. (3) (`fairser_jax.train.distances`).

References: scipy's orthogonal Procrustes, POT's Sinkhorn divergence
pieces and Gromov-Wasserstein loss and solver, a NumPy einsum.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from scipy.linalg import orthogonal_procrustes

from fairser_jax import config as config_lib
from fairser_jax.train import alpha as alpha_lib
from fairser_jax.train import distances, objectives

NAMES = tuple(distances.DISTANCES)
INVARIANT = ("aligned_sinkhorn", "gromov_wasserstein")
_STATIC = ("epsilon", "num_iterations", "outer_iterations", "debiased")


def _sphere(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _cloud(rng, b=24, d=16, clusters=3) -> np.ndarray:
    """A structured cloud on the unit sphere: points around a few centres
    (real embeddings have classes; i.i.d. Gaussian clouds in high
    dimension all look alike to a shape comparison)."""
    centres = rng.normal(size=(clusters, d)) * 2.0
    labels = np.arange(b) % clusters
    return _sphere(centres[labels] + 0.5 * rng.normal(size=(b, d)))


def _orthogonal(rng, d) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def _cfg(name):
    cfg = config_lib.get_default_config()
    cfg.two_sided.distance = name
    cfg.loss.sinkhorn_iterations = 50
    cfg.two_sided.gw_iterations = 20
    return cfg


_JITTED: dict = {}


def _d(name, x, y):
    """D of the reading ``name`` (jitted once per reading and shape)."""
    if name not in _JITTED:
        cfg = _cfg(name)
        _JITTED[name] = jax.jit(lambda x, y: distances.get(name)(x, y, cfg))
    return float(
        _JITTED[name](jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    )


@pytest.mark.parametrize("b,d", [(12, 40), (40, 12), (16, 16)])
def test_procrustes_matches_scipy(b, d):
    rng = np.random.default_rng(b * d)
    y, x = rng.normal(size=(b, d)), rng.normal(size=(b, d))
    r, _ = orthogonal_procrustes(y, x)
    got = np.asarray(distances.procrustes_align(jnp.asarray(y), jnp.asarray(x)))
    np.testing.assert_allclose(got, y @ r, atol=1e-4)
    # A rotation: row norms and internal distances kept.
    np.testing.assert_allclose(
        np.linalg.norm(got, axis=1), np.linalg.norm(y, axis=1), rtol=1e-4
    )


def test_procrustes_with_repeated_rows_fits_as_well_as_scipy():
    """A batch with repeated utterances (rank-deficient Yᵀ X: R is not
    unique) still gets a rotation with scipy's fit."""
    rng = np.random.default_rng(11)
    y, x = _cloud(rng, b=20, d=32), _cloud(rng, b=20, d=32)
    y[5], x[5] = y[0], x[0]
    y[7], x[7] = y[3], x[3]
    r, _ = orthogonal_procrustes(y, x)
    got = np.asarray(distances.procrustes_align(jnp.asarray(y), jnp.asarray(x)))
    assert np.linalg.norm(got - x) == pytest.approx(
        np.linalg.norm(y @ r - x), rel=1e-4
    )
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-4)


def test_procrustes_recovers_a_rotation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 64))
    q = _orthogonal(rng, 64)
    got = np.asarray(distances.procrustes_align(jnp.asarray(x @ q), jnp.asarray(x)))
    np.testing.assert_allclose(got, x, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_zero_on_identical_clouds(name):
    x = _cloud(np.random.default_rng(2))
    assert abs(_d(name, x, x)) <= 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_rotation(name):
    """The two invariant readings give ~0 for a rotated copy; the literal
    Sinkhorn divergence sees the rotation as a large distance."""
    rng = np.random.default_rng(3)
    x = _cloud(rng)
    xr = x @ _orthogonal(rng, x.shape[1])
    far = _d(name, x, _cloud(rng))
    rotated = _d(name, x, xr)
    if name in INVARIANT:
        assert abs(rotated) <= 1e-4 + 1e-3 * far, (rotated, far)
    else:
        assert rotated > 0.5 * far > 0.1, (rotated, far)


@pytest.mark.parametrize("name", NAMES)
def test_symmetric(name):
    rng = np.random.default_rng(4)
    x, y = _cloud(rng), _cloud(rng)
    assert _d(name, x, y) == pytest.approx(_d(name, y, x), rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_grows_as_the_clouds_move_apart(name):
    """y_t = sphere(x + t · noise): D grows with t."""
    rng = np.random.default_rng(5)
    x = _cloud(rng)
    noise = rng.normal(size=x.shape)
    values = [_d(name, x, _sphere(x + t * noise)) for t in (0.0, 0.3, 1.0, 3.0)]
    assert np.all(np.diff(values) > 0), values


def test_sinkhorn_reading_is_the_old_d():
    """`sinkhorn` is today's D: POT's entropic OT terms assembled into the
    Sinkhorn divergence, on the same points."""
    rng = np.random.default_rng(6)
    x, y = _cloud(rng), _cloud(rng)
    cfg = _cfg("sinkhorn")
    cfg.loss.sinkhorn_iterations = 500
    got = float(
        jax.jit(lambda p, q: distances.sinkhorn_distance(p, q, cfg))(x, y)
    )
    a = np.full(len(x), 1 / len(x))
    eps = cfg.loss.epsilon

    def reg_ot(p, q):
        m = ot.dist(p, q)
        t = ot.sinkhorn(a, a, m, eps, method="sinkhorn_log", numItermax=5000)
        return float(np.sum(t * m) + eps * np.sum(t * np.log(t / np.outer(a, a) + 1e-300)))

    want = reg_ot(x, y) - 0.5 * reg_ot(x, x) - 0.5 * reg_ot(y, y)
    assert got == pytest.approx(want, rel=1e-3, abs=1e-4)


def test_gw_value_is_the_gw_loss_of_its_coupling():
    """`_gw_cost` returns Σ (Cx_ik − Cy_jl)² T_ij T_kl of ott's coupling:
    equal to a NumPy einsum and to POT's `gwloss` at that coupling."""
    from ott.geometry import geometry
    from ott.problems.quadratic import quadratic_problem
    from ott.solvers.linear import sinkhorn
    from ott.solvers.quadratic import gromov_wasserstein as ott_gw

    rng = np.random.default_rng(7)
    x, y = _cloud(rng, b=10), _cloud(rng, b=10)
    cx = np.asarray(distances._squared_distances(jnp.asarray(x)), np.float64)
    cy = np.asarray(distances._squared_distances(jnp.asarray(y)), np.float64)
    kw = dict(epsilon=0.1, num_iterations=50, outer_iterations=20)
    got = float(
        jax.jit(functools.partial(distances._gw_cost, **kw))(cx, cy)
    )
    solver = ott_gw.GromovWasserstein(
        linear_solver=sinkhorn.Sinkhorn(
            min_iterations=50, max_iterations=50, inner_iterations=50,
            implicit_diff=None,
        ),
        epsilon=0.1, min_iterations=20, max_iterations=20,
    )
    coupling = jax.jit(
        lambda p, q: solver(
            quadratic_problem.QuadraticProblem(
                geometry.Geometry(cost_matrix=p), geometry.Geometry(cost_matrix=q)
            )
        ).matrix
    )
    t = np.asarray(coupling(cx, cy), np.float64)
    want = float(
        np.einsum(
            "ijkl,ij,kl->", (cx[:, None, :, None] - cy[None, :, None, :]) ** 2, t, t
        )
    )
    assert got == pytest.approx(want, rel=1e-4)
    a, b = t.sum(1), t.sum(0)
    pot = ot.gromov.gwloss(*ot.gromov.init_matrix(cx, cy, a, b, "square_loss"), t)
    assert got == pytest.approx(float(pot), rel=1e-4)


def test_gw_against_pot_on_a_permuted_noisy_copy():
    """Where the optimum is clear (y = a permutation of x, slightly moved),
    the undebiased entropic GW value at small ε is POT's exact
    `gromov_wasserstein2` to within the entropic blur; debiased, it is
    near 0 while an unrelated cloud is far."""
    rng = np.random.default_rng(8)
    x = _cloud(rng, b=12, d=6, clusters=4)
    y = _sphere(x[rng.permutation(12)] + 0.05 * rng.normal(size=x.shape))
    cx = np.asarray(distances._squared_distances(jnp.asarray(x)), np.float64)
    cy = np.asarray(distances._squared_distances(jnp.asarray(y)), np.float64)
    a = np.full(12, 1 / 12)
    exact = float(ot.gromov.gromov_wasserstein2(cx, cy, a, a, "square_loss"))
    gw = jax.jit(distances.gromov_wasserstein, static_argnames=_STATIC)
    got = float(
        gw(x, y, epsilon=0.002, num_iterations=200, outer_iterations=30,
           debiased=False)
    )
    assert got == pytest.approx(exact, rel=0.05, abs=2e-3)
    debiased = float(
        gw(x, y, epsilon=0.1, num_iterations=50, outer_iterations=20)
    )
    unrelated = _d("gromov_wasserstein", x, _cloud(rng, b=12, d=6, clusters=2))
    assert abs(debiased) < 0.1 * unrelated


@pytest.mark.parametrize("name", NAMES)
def test_jit_and_vmap_equal_each_member(name):
    rng = np.random.default_rng(9)
    xs = np.stack([_cloud(rng) for _ in range(3)]).astype(np.float32)
    ys = np.stack([_cloud(rng) for _ in range(3)]).astype(np.float32)
    cfg = _cfg(name)
    fn = jax.jit(jax.vmap(lambda x, y: distances.get(name)(x, y, cfg)))
    got = np.asarray(fn(xs, ys))
    want = [_d(name, x, y) for x, y in zip(xs, ys)]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_embedding_distance_uses_the_configured_reading():
    rng = np.random.default_rng(10)
    x = _cloud(rng) * 3.0  # off the sphere: distance_space normalises
    xr = x @ _orthogonal(rng, x.shape[1])
    for name in NAMES:
        cfg = _cfg(name)
        got = float(
            jax.jit(lambda p, q, c=cfg: objectives.embedding_distance(p, q, c))(
                x, xr
            )
        )
        assert got == pytest.approx(_d(name, _sphere(x), _sphere(xr)), abs=1e-5)


def test_validation_names_the_field():
    cfg = config_lib.get_default_config()
    cfg.two_sided.distance = "wasserstein"
    with pytest.raises(ValueError, match="two_sided.distance"):
        alpha_lib.validate(cfg.two_sided)
    cfg = config_lib.get_default_config()
    cfg.two_sided.gw_iterations = 0
    with pytest.raises(ValueError, match="gw_iterations"):
        alpha_lib.validate(cfg.two_sided)


def test_config_choices_list_every_distance():
    assert config_lib.FIELD_CHOICES["two_sided.distance"] == NAMES
