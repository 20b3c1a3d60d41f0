"""The distance D of eq. (3) between the two viewpoints' embeddings.

Paper §3.1: at every batch the two-sided model measures "the Wasserstein
distance between the speaker-debiased and the rater-debiased embeddings"
μ_SPK and μ_RAT of the batch, and derives α from it
(`fairser_jax.train.alpha`). μ_SPK comes from the trained Fair_spk and
μ_RAT from another network (the model being trained, which starts from
Fair_rat, or the frozen Fair_rat). Two independently trained encoders embed
the same utterances in two coordinate systems that differ by an arbitrary
rotation (L_cl and L_D see the embeddings only through their distances,
the heads are learned per network: nothing ties one network's axes to
another's), so a Wasserstein distance taken
between the two clouds as they are mostly measures that rotation: large and
nearly constant from batch to batch (docs/DESIGN.md, "Two-sided training"
has the measurements). Each reading here is selected by
``config.two_sided.distance``:

- ``sinkhorn``: the literal reading, the Sinkhorn divergence between the
  two clouds as they are (`fairser_jax.losses.wasserstein`).
- ``aligned_sinkhorn``: μ_RAT first rotated onto μ_SPK by the orthogonal
  Procrustes solution on the batch's rows (row i of both clouds is the same
  utterance), then the same Sinkhorn divergence: what remains is how
  differently the two networks arrange the batch, not how their axes are
  oriented.
- ``gromov_wasserstein``: the entropic Gromov-Wasserstein discrepancy of
  the two clouds' internal squared distances, debiased like the Sinkhorn
  divergence; it compares the shapes of the two clouds and is invariant to
  any rotation or reflection of either, without using the pairing.

A distance is ``fn(mu_spk, mu_rat, cfg) -> []`` with ``cfg`` the whole
config; the clouds are ``[B, D]`` and already in the space the losses use
(`objectives.distance_space`). Every function is pure and jit/vmap-safe
with a fixed amount of work; eq. (3)'s caller takes it under
`stop_gradient`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
from ott.geometry import geometry
from ott.problems.quadratic import quadratic_problem
from ott.solvers.linear import sinkhorn
from ott.solvers.quadratic import gromov_wasserstein as ott_gw

from fairser_jax import losses

Distance = Callable[
    [jax.Array, jax.Array, ml_collections.ConfigDict], jax.Array
]


PROCRUSTES_ITERATIONS = 30
"""Newton-Schulz iterations of `procrustes_align` (float32 error ≤ 1e-5 of
scipy's SVD solution on batches of 12-40 points, tested)."""


def _orthonormal_rows(v: jax.Array) -> jax.Array:
    """[B, D] → [B, D]: Gram-Schmidt of the rows (re-orthogonalised once,
    "CGS2"), a zero row where a row depends on the earlier ones."""
    scale = jnp.sqrt(jnp.max(jnp.sum(jnp.square(v), axis=1)))

    def body(j, q):
        u = v[j]
        for _ in range(2):
            u = u - q.T @ (q @ u)
        norm = jnp.sqrt(jnp.sum(jnp.square(u)))
        keep = norm > 1e-5 * scale
        return q.at[j].set(jnp.where(keep, u / jnp.where(keep, norm, 1.0), 0.0))

    return jax.lax.fori_loop(0, v.shape[0], body, jnp.zeros_like(v))


def _polar(n: jax.Array, iterations: int) -> jax.Array:
    """The orthogonal polar factor U Vᵀ of ``n = U S Vᵀ`` by Newton-Schulz
    (R ← 1.5 R − 0.5 R Rᵀ R from n / ‖n‖_F; zero singular values stay
    zero)."""
    r = n / jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(n))), 1e-30)

    def body(r, _):
        return 1.5 * r - 0.5 * r @ r.T @ r, None

    return jax.lax.scan(body, r, None, length=iterations)[0]


def procrustes_align(
    y: jax.Array, x: jax.Array, iterations: int = PROCRUSTES_ITERATIONS
) -> jax.Array:
    """``y`` rotated onto ``x``: ``y @ R`` with R = argmin ‖y R − x‖_F.

    R ranges over the orthogonal ``[D, D]`` matrices (rotations and
    reflections); with Yᵀ X = U S Vᵀ the solution is R = U Vᵀ (Schönemann
    1966). Only its action on the rows' span matters, so it is formed
    there: orthonormal bases Q_y, Q_x of the rows of ``y`` and ``x``
    (Gram-Schmidt), the B × B factor N = (Q_y yᵀ)(Q_x xᵀ)ᵀ of
    Yᵀ X = Q_yᵀ N Q_x, and y R = y Q_yᵀ polar(N) Q_x, with polar(N) by
    Newton-Schulz iterations — matrix products only, O(B² D) work, and no
    LAPACK call (on XLA:CPU, batched SVD/QR custom calls inside the
    vmapped training scan hung with `mu_rat = "frozen"`). Where Yᵀ X is
    rank-deficient R is not unique; every solution gives the same fit.

    Args:
      y: [B, D] cloud to rotate.
      x: [B, D] target cloud; row i of ``x`` and of ``y`` describe the same
        item (the pairing Procrustes needs).
      iterations: Newton-Schulz iterations (static).

    Returns:
      [B, D] ``y @ R`` (row norms and internal distances of ``y`` kept).
    """
    if y.shape != x.shape or y.ndim != 2:
        raise ValueError(
            "fairser_jax/train/distances.py:procrustes_align: y and x must "
            f"be [B, D] clouds of one shape; got {y.shape} and {x.shape}."
        )
    q_y, q_x = _orthonormal_rows(y), _orthonormal_rows(x)
    n = (q_y @ y.T) @ (q_x @ x.T).T
    return y @ q_y.T @ _polar(n, iterations) @ q_x


def _squared_distances(x: jax.Array) -> jax.Array:
    """[B, B] internal squared Euclidean distances of one cloud."""
    sq = jnp.sum(jnp.square(x), axis=-1)
    return jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)


def _gw_cost(
    cx: jax.Array,
    cy: jax.Array,
    *,
    epsilon: float,
    num_iterations: int,
    outer_iterations: int,
) -> jax.Array:
    """Σ_ijkl (cx_ik − cy_jl)² T_ij T_kl at ott's entropic GW coupling T.

    Uniform weights; exactly ``outer_iterations`` linearisations, each
    solved by exactly ``num_iterations`` log-domain Sinkhorn iterations
    (no convergence test, so every member of a vmapped batch does the same
    work and a resumed run repeats the same arithmetic). The returned value
    is the GW objective of the coupling, without the entropy term.
    """
    solver = ott_gw.GromovWasserstein(
        linear_solver=sinkhorn.Sinkhorn(
            min_iterations=num_iterations,
            max_iterations=num_iterations,
            inner_iterations=num_iterations,
            lse_mode=True,
            implicit_diff=None,
        ),
        epsilon=epsilon,
        min_iterations=outer_iterations,
        max_iterations=outer_iterations,
    )
    problem = quadratic_problem.QuadraticProblem(
        geometry.Geometry(cost_matrix=cx), geometry.Geometry(cost_matrix=cy)
    )
    t = solver(problem).matrix
    a, b = jnp.sum(t, axis=1), jnp.sum(t, axis=0)
    # (cx_ik − cy_jl)² expanded: the square terms need only the marginals.
    return (
        a @ jnp.square(cx) @ a
        + b @ jnp.square(cy) @ b
        - 2.0 * jnp.sum((cx @ t @ cy.T) * t)
    )


def gromov_wasserstein(
    x: jax.Array,
    y: jax.Array,
    *,
    epsilon: float,
    num_iterations: int,
    outer_iterations: int,
    debiased: bool = True,
) -> jax.Array:
    r"""Entropic Gromov-Wasserstein discrepancy of two clouds' shapes.

    With :math:`C^x_{ik} = \lVert x_i - x_k\rVert^2`, :math:`C^y` likewise
    and uniform weights,
    :math:`\mathrm{GW}(x, y) = \sum_{ijkl} (C^x_{ik} - C^y_{jl})^2
    T_{ij} T_{kl}` at the coupling T of ott-jax's entropic
    Gromov-Wasserstein solver (regularisation ε). It depends on ``x`` and
    ``y`` only through their internal distances, so it is invariant to any
    rotation, reflection or translation of either cloud, and it does not
    use any pairing of their rows. With ``debiased`` (default) it returns
    :math:`\mathrm{GW}(x, y) - \tfrac12 \mathrm{GW}(x, x) -
    \tfrac12 \mathrm{GW}(y, y)`, which is exactly 0 for clouds with equal
    internal distances (the entropic coupling of a cloud with itself is
    blurred, so GW(x, x) > 0).

    Args:
      x: [N, D] first cloud.
      y: [M, D'] second cloud (any dimension).
      epsilon: entropic regularisation of every linearised problem
        (absolute, in units of squared cost).
      num_iterations: Sinkhorn iterations per linearisation.
      outer_iterations: linearisations (GW's outer loop).
      debiased: subtract the two self-terms.

    Returns:
      [] float.

    References:
      Peyré, Cuturi & Solomon, `Gromov-Wasserstein Averaging of Kernel and
      Distance Matrices <https://proceedings.mlr.press/v48/peyre16.html>`_,
      2016.
    """
    kw = dict(
        epsilon=epsilon,
        num_iterations=num_iterations,
        outer_iterations=outer_iterations,
    )
    cx, cy = _squared_distances(x), _squared_distances(y)
    value = _gw_cost(cx, cy, **kw)
    if debiased:
        value = value - 0.5 * (_gw_cost(cx, cx, **kw) + _gw_cost(cy, cy, **kw))
    return value


def sinkhorn_distance(
    mu_spk: jax.Array, mu_rat: jax.Array, cfg: ml_collections.ConfigDict
) -> jax.Array:
    """The Sinkhorn divergence between the two clouds as they are.

    Uniform weights, with ``config.loss``'s ε, iteration count and
    debiasing (the same divergence as L_D-S / L_D-R).
    """
    ones = jnp.ones(mu_spk.shape[0], jnp.float32)
    return losses.wasserstein(
        mu_spk,
        mu_rat,
        ones,
        ones,
        epsilon=cfg.loss.epsilon,
        num_iterations=cfg.loss.sinkhorn_iterations,
        debiased=cfg.loss.debiased,
    )


def aligned_sinkhorn(
    mu_spk: jax.Array, mu_rat: jax.Array, cfg: ml_collections.ConfigDict
) -> jax.Array:
    """`sinkhorn_distance` after rotating μ_RAT onto μ_SPK (Procrustes)."""
    return sinkhorn_distance(mu_spk, procrustes_align(mu_rat, mu_spk), cfg)


def gromov_wasserstein_distance(
    mu_spk: jax.Array, mu_rat: jax.Array, cfg: ml_collections.ConfigDict
) -> jax.Array:
    """`gromov_wasserstein` of the two clouds, debiased.

    ε and the Sinkhorn iterations are ``config.loss``'s; the outer
    iterations are ``config.two_sided.gw_iterations``.
    """
    return gromov_wasserstein(
        mu_spk,
        mu_rat,
        epsilon=cfg.loss.epsilon,
        num_iterations=cfg.loss.sinkhorn_iterations,
        outer_iterations=cfg.two_sided.gw_iterations,
    )


DISTANCES: dict[str, Distance] = {
    "sinkhorn": sinkhorn_distance,
    "aligned_sinkhorn": aligned_sinkhorn,
    "gromov_wasserstein": gromov_wasserstein_distance,
}


def get(name: str) -> Distance:
    """The distance registered as ``name``."""
    try:
        return DISTANCES[name]
    except KeyError:
        raise ValueError(
            f"config.two_sided.distance is {name!r}; choose from "
            f"{sorted(DISTANCES)}."
        ) from None
