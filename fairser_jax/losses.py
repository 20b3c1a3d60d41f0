"""The loss terms of the paper's eqs. (1)-(3), one pure function per term.

Every function here is jit- and vmap-safe: masks are boolean arrays passed
as ``where=`` (never Python branches), shapes are static, and gradients are
finite everywhere, including rows that are masked out, zero-weight padding
and empty groups (the "double where" pattern keeps NaN/inf produced on
discarded entries out of the backward pass).

Terms (paper symbols):

- ``emotion_loss``: L_S / L_R, sigmoid binary cross-entropy (eqs. 1-2).
- ``supervised_contrastive``: L_cl, Khosla et al. (2020) L^sup_out (eq. 2).
- ``adversarial_loss`` + ``gradient_reversal``: L_Adv of eq. (1), a
  sigmoid BCE for two groups or a k-way softmax cross-entropy for k groups.
- ``wasserstein`` / ``group_distance``: L_D-S / L_D-R, the entropic
  Wasserstein (Sinkhorn) distance between the groups of a batch
  (eqs. 1-2), computed with ott-jax: between the two gender groups, or,
  for k > 2 groups, averaged over group pairs or taken group vs. pool.

Groups are integer arrays of codes ``0 .. k-1`` (``k = num_groups``,
default 2); any other value (e.g. -1 for "unknown") is treated as absent.
Binary gender, the paper's setting, is coded as
``fairser_jax.constants.GENDER_CODE`` (F=0, M=1).
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from ott.geometry import geometry
from ott.solvers import linear
from ott.tools import sinkhorn_divergence

__all__ = [
    "adversarial_loss",
    "emotion_loss",
    "gradient_reversal",
    "group_distance",
    "masked_mean",
    "POOLINGS",
    "sigmoid_binary_cross_entropy",
    "supervised_contrastive",
    "wasserstein",
]

_FEMALE = 0
_MALE = 1


# ---------------------------------------------------------------------------
# Input checks (static: shapes and Python numbers only, so they cost nothing
# under jit and never look at traced values).
# ---------------------------------------------------------------------------


def _check_ndim(name: str, fn: str, value: jax.Array, ndim: int) -> None:
    if jnp.ndim(value) != ndim:
        raise ValueError(
            f"fairser_jax/losses.py:{fn}: `{name}` must have {ndim} "
            f"dimension(s), got shape {jnp.shape(value)}. Fix: pass "
            f"{'a [batch] vector' if ndim == 1 else 'a [batch, dim] matrix'}"
            " (vmap over any extra leading axis)."
        )


def _check_same_length(
    fn: str, names: tuple[str, str], a: jax.Array, b: jax.Array
) -> None:
    if jnp.shape(a)[0] != jnp.shape(b)[0]:
        raise ValueError(
            f"fairser_jax/losses.py:{fn}: `{names[0]}` has "
            f"{jnp.shape(a)[0]} rows but `{names[1]}` has "
            f"{jnp.shape(b)[0]}. Fix: give one entry per example."
        )


def _check_positive(fn: str, name: str, value) -> None:
    # Traced values cannot be checked without a host sync; Python numbers
    # (the usual case: config values) are.
    if isinstance(value, numbers.Real) and not value > 0:
        raise ValueError(
            f"fairser_jax/losses.py:{fn}: `{name}` must be > 0, got "
            f"{value}. Fix: set a positive value in the config."
        )


def _check_iterations(fn: str, num_iterations: Any) -> None:
    """A Sinkhorn iteration count must be a static Python int >= 1."""
    if (
        not isinstance(num_iterations, numbers.Integral)
        or isinstance(num_iterations, bool)
        or num_iterations < 1
    ):
        raise ValueError(
            f"fairser_jax/losses.py:{fn}: `num_iterations` must be a Python "
            f"int >= 1 (it fixes the loop length), got {num_iterations!r}. "
            "Fix: set config.loss.sinkhorn_iterations to a positive int."
        )


def _check_num_groups(fn: str, num_groups: Any) -> None:
    """A group count must be a static Python int >= 2."""
    if (
        not isinstance(num_groups, numbers.Integral)
        or isinstance(num_groups, bool)
        or num_groups < 2
    ):
        raise ValueError(
            f"fairser_jax/losses.py:{fn}: `num_groups` must be a Python int "
            f">= 2 (groups are coded 0 .. num_groups-1), got {num_groups!r}. "
            "Fix: pass the number of groups, e.g. num_groups=2 for gender "
            "(F=0, M=1)."
        )


POOLINGS: tuple[str, ...] = ("pairs", "pooled")
"""The `pooling` of `group_distance` (`config.loss.group_pooling`)."""


def _check_pooling(fn: str, pooling: Any) -> None:
    if not isinstance(pooling, str) or pooling not in POOLINGS:
        raise ValueError(
            f"fairser_jax/losses.py:{fn}: `pooling` must be one of "
            f"{POOLINGS}, got {pooling!r}. Fix: use 'pairs' (mean over "
            "group pairs) or 'pooled' (mean of each group vs. the batch)."
        )


def _mask(where: jax.Array | None, like: jax.Array, fn: str) -> jax.Array:
    """Boolean validity mask [B]; all True when ``where`` is None."""
    if where is None:
        return jnp.ones(jnp.shape(like)[:1], dtype=bool)
    _check_ndim("where", fn, where, 1)
    _check_same_length(fn, ("where", "values"), where, like)
    return jnp.asarray(where).astype(bool)


def _float(x: jax.Array) -> jax.Array:
    """Casts to a floating dtype of at least float32 precision."""
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


# ---------------------------------------------------------------------------
# L_S, L_R and L_Adv: binary cross-entropy.
# ---------------------------------------------------------------------------


def sigmoid_binary_cross_entropy(
    logits: jax.Array, labels: jax.Array
) -> jax.Array:
    r"""Per-example sigmoid binary cross-entropy on logits.

    .. math::
        \ell(s, y) = -y \log \sigma(s) - (1 - y) \log \sigma(-s)

    computed with ``log_sigmoid`` so that it is exact for large ``|s|``
    (no ``log(0)``, no overflow).

    Args:
      logits: ``[B]`` (or any shape) real-valued scores.
      labels: same shape as ``logits``; targets in ``{0, 1}`` (soft targets in
        ``[0, 1]`` also work).

    Returns:
      ``[B]`` losses, same shape as ``logits``.
    """
    logits = _float(logits)
    if jnp.shape(labels) != jnp.shape(logits):
        raise ValueError(
            "fairser_jax/losses.py:sigmoid_binary_cross_entropy: `labels` "
            f"shape {jnp.shape(labels)} differs from `logits` shape "
            f"{jnp.shape(logits)}. Fix: pass one label per logit (squeeze "
            "a trailing [B, 1] logit axis)."
        )
    labels = jnp.asarray(labels).astype(logits.dtype)
    return -labels * jax.nn.log_sigmoid(logits) - (
        1.0 - labels
    ) * jax.nn.log_sigmoid(-logits)


def masked_mean(values: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Mean of ``values`` over the entries where ``where`` is True.

    Masked-out entries may hold anything (even NaN or inf): they reach
    neither the value nor the gradient.

    Args:
      values: ``[B]`` values.
      where: optional ``[B]`` boolean mask; None means all valid.

    Returns:
      Scalar mean over valid entries; exactly 0 (with zero gradient) when no
      entry is valid.
    """
    _check_ndim("values", "masked_mean", values, 1)
    valid = _mask(where, values, "masked_mean")
    values = _float(values)
    total = jnp.sum(jnp.where(valid, values, 0.0))
    return total / jnp.maximum(jnp.sum(valid), 1).astype(values.dtype)


def emotion_loss(
    logits: jax.Array, labels: jax.Array, where: jax.Array | None = None
) -> jax.Array:
    r"""L_S / L_R of eqs. (1)-(2): mean BCE of the binary emotion detector.

    .. math::
        L_S = \frac{1}{|V|} \sum_{i \in V} \ell(s_i, y_i)

    where :math:`V` are the valid (``where``) examples and :math:`\ell` is
    :func:`sigmoid_binary_cross_entropy`.

    Args:
      logits: ``[B]`` emotion logits.
      labels: ``[B]`` binary targets (1 iff the consensus class is the
        detector's emotion).
      where: optional ``[B]`` boolean mask of the examples to average over.

    Returns:
      Scalar loss; 0 when no example is valid.
    """
    _check_ndim("logits", "emotion_loss", logits, 1)
    return masked_mean(sigmoid_binary_cross_entropy(logits, labels), where)


# ---------------------------------------------------------------------------
# L_Adv of eq. (1): gradient reversal and the adversary's loss.
# ---------------------------------------------------------------------------


@jax.custom_vjp
def gradient_reversal(x: jax.Array, scale: float | jax.Array = 1.0):
    r"""Gradient reversal layer (Ganin & Lempitsky, 2015).

    Identity in the forward pass; multiplies the incoming gradient by
    ``-scale`` in the backward pass:

    .. math::
        R(x) = x, \qquad \frac{\partial R}{\partial x} = -\lambda I.

    ``scale`` is an ordinary traced argument, not a static one: it may be a
    Python float, a scalar array, a value that changes every step (a GRL
    schedule) or one that is vmapped over runs, and changing it never
    triggers recompilation. It receives a zero gradient.

    Args:
      x: array of any shape (the embedding ``z`` fed to the adversary).
      scale: non-negative scalar :math:`\lambda`.

    Returns:
      ``x`` unchanged.
    """
    del scale
    return x


def _grl_fwd(x, scale):
    return x, scale


def _grl_bwd(scale, g):
    scale = jnp.asarray(scale)
    return (-scale * g).astype(g.dtype), jnp.zeros_like(scale)


gradient_reversal.defvjp(_grl_fwd, _grl_bwd)


def adversarial_loss(
    adversary_logits: jax.Array,
    groups: jax.Array,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""L_Adv of eq. (1): cross-entropy of the group (gender) adversary.

    The adversary predicts the group of an example from its embedding.
    Eq. (1)'s ":math:`-L_{Adv}`" is a min-max game, implemented with
    :func:`gradient_reversal` between ``z`` and the adversary head: the
    training objective *adds* this loss, so the adversary minimises it while
    the encoder receives the reversed gradient (it maximises it).

    Two groups (``adversary_logits`` of shape ``[B]``, the paper's setting):
    the adversary's logit :math:`a_i` scores :math:`P(g_i = M \mid z_i)` and
    the loss is the sigmoid BCE

    .. math::
        L_{Adv} = \frac{1}{|V|} \sum_{i \in V}
            \ell(a_i, \mathbb{1}[g_i = M]),
        \quad V = \{i : \text{where}_i \wedge g_i \in \{F, M\}\}

    with :math:`\ell` = :func:`sigmoid_binary_cross_entropy`, F=0 and M=1.

    K groups (``adversary_logits`` of shape ``[B, K]``, ``K >= 2``): the
    softmax cross-entropy with integer targets

    .. math::
        L_{Adv} = \frac{1}{|V|} \sum_{i \in V}
            -\log \frac{\exp a_{i, g_i}}{\sum_{k=0}^{K-1} \exp a_{i, k}},
        \quad V = \{i : \text{where}_i \wedge 0 \le g_i < K\}.

    Rows outside :math:`V` may hold any logits (even NaN or inf): they reach
    neither the value nor the gradient in the ``[B, K]`` form.

    Args:
      adversary_logits: ``[B]`` logits of group 1 vs. group 0 (two groups),
        or ``[B, K]`` logits over groups ``0 .. K-1``.
      groups: ``[B]`` int group codes (``0 .. K-1``; F=0, M=1 for gender);
        other values are excluded.
      where: optional ``[B]`` boolean mask (e.g. "sample is in S2").

    Returns:
      Scalar loss; exactly 0 (zero gradient) when no example is valid.
    """
    fn = "adversarial_loss"
    ndim = jnp.ndim(adversary_logits)
    if ndim not in (1, 2):
        raise ValueError(
            f"fairser_jax/losses.py:{fn}: `adversary_logits` must have 1 or 2 "
            f"dimensions, got shape {jnp.shape(adversary_logits)}. Fix: pass "
            "[batch] logits (two groups) or [batch, num_groups] logits "
            "(vmap over any extra leading axis)."
        )
    _check_ndim("groups", fn, groups, 1)
    _check_same_length(
        fn, ("adversary_logits", "groups"), adversary_logits, groups
    )
    valid = _mask(where, groups, fn)
    if ndim == 1:
        valid = valid & ((groups == _FEMALE) | (groups == _MALE))
        bce = sigmoid_binary_cross_entropy(adversary_logits, groups == _MALE)
        return masked_mean(bce, valid)

    num_groups = jnp.shape(adversary_logits)[1]
    if num_groups < 2:
        raise ValueError(
            f"fairser_jax/losses.py:{fn}: [batch, K] `adversary_logits` need "
            f"K >= 2 groups, got shape {jnp.shape(adversary_logits)}. Fix: "
            "pass [batch] logits for a single binary logit (squeeze the "
            "trailing axis)."
        )
    groups = jnp.asarray(groups)
    valid = valid & (groups >= 0) & (groups < num_groups)
    logits = _float(adversary_logits)
    # Double where: rows outside V never reach log_softmax (they may hold
    # NaN/inf), and their targets are a harmless in-range stand-in.
    logits = jnp.where(valid[:, None], logits, 0.0)
    target = jnp.where(valid, groups, 0).astype(jnp.int32)
    log_prob = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_prob, target[:, None], axis=1)[:, 0]
    return masked_mean(nll, valid)


# ---------------------------------------------------------------------------
# L_cl of eq. (2): supervised contrastive loss.
# ---------------------------------------------------------------------------


def supervised_contrastive(
    embeddings: jax.Array,
    labels: jax.Array,
    *,
    temperature: float | jax.Array,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""L_cl of eq. (2): supervised contrastive loss, Khosla et al. L^sup_out.

    With :math:`u_i = z_i / \lVert z_i \rVert` and :math:`\tau` the
    temperature,

    .. math::
        L_{cl} = \frac{1}{|I|} \sum_{i \in I} \frac{-1}{|P(i)|}
            \sum_{p \in P(i)} \log
            \frac{\exp(u_i \cdot u_p / \tau)}
                 {\sum_{a \in A(i)} \exp(u_i \cdot u_a / \tau)}

    where :math:`A(i)` are the valid samples other than :math:`i`,
    :math:`P(i) \subseteq A(i)` those with the same label as :math:`i`, and
    :math:`I` the valid anchors that have at least one positive. Masked
    samples are neither anchors nor contrasts. No ``tau / base_tau`` factor
    is applied (the formula of the paper, not Khosla et al.'s code).

    Numerics: rows are shifted by their maximum over :math:`A(i)` under
    ``stop_gradient`` and the diagonal / masked entries are removed with a
    double ``where``, so the loss is stable for small ``tau`` and its
    gradient is finite even for all-masked rows and zero embeddings.

    Args:
      embeddings: ``[B, D]`` embeddings (L2-normalised here).
      labels: ``[B]`` int labels (speaker gender for Fair_spk).
      temperature: :math:`\tau > 0` (Python float or traced scalar).
      where: optional ``[B]`` boolean mask of valid samples.

    Returns:
      Scalar loss; exactly 0 (zero gradient) when no valid anchor has a
      positive.

    References:
      Khosla et al., `Supervised Contrastive Learning
      <https://arxiv.org/abs/2004.11362>`_, NeurIPS 2020, eq. (2).
    """
    fn = "supervised_contrastive"
    _check_ndim("embeddings", fn, embeddings, 2)
    _check_ndim("labels", fn, labels, 1)
    _check_same_length(fn, ("embeddings", "labels"), embeddings, labels)
    _check_positive(fn, "temperature", temperature)
    valid = _mask(where, labels, fn)
    z = _float(embeddings)
    num = z.shape[0]

    # L2 normalisation with a gradient that is finite at z = 0: norms are
    # floored at the dtype's machine epsilon (a zero vector stays zero).
    floor = jnp.finfo(z.dtype).eps ** 2
    sq_norm = jnp.sum(z * z, axis=-1, keepdims=True)
    u = z * lax.rsqrt(jnp.maximum(sq_norm, floor))
    logits = (u @ u.T) / temperature

    not_self = ~jnp.eye(num, dtype=bool)
    contrast = valid[:, None] & valid[None, :] & not_self  # A(i)
    positive = contrast & (labels[:, None] == labels[None, :])  # P(i)

    row_max = jnp.max(jnp.where(contrast, logits, -jnp.inf), axis=1)
    row_max = jnp.where(jnp.isfinite(row_max), row_max, 0.0)
    shifted = logits - lax.stop_gradient(row_max)[:, None]
    # Double where: exp() only ever sees entries that are kept.
    safe = jnp.where(contrast, shifted, 0.0)
    denom = jnp.sum(jnp.where(contrast, jnp.exp(safe), 0.0), axis=1)
    log_denom = jnp.log(jnp.where(denom > 0, denom, 1.0))
    log_prob = shifted - log_denom[:, None]

    num_pos = jnp.sum(positive, axis=1)
    anchor = valid & (num_pos > 0)
    mean_log_prob_pos = jnp.sum(
        jnp.where(positive, log_prob, 0.0), axis=1
    ) / jnp.maximum(num_pos, 1).astype(z.dtype)
    return masked_mean(-mean_log_prob_pos, anchor)


# ---------------------------------------------------------------------------
# L_D-S, L_D-R of eqs. (1)-(2): entropic Wasserstein between groups.
# ---------------------------------------------------------------------------


def _normalised_weights(
    w: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Weights scaled to sum 1, the present points, and whether any exist.

    When the total is 0 the returned weights are uniform (a finite stand-in
    whose result the caller discards), so nothing divides by zero.
    """
    w = _float(w)
    present = w > 0
    total = jnp.sum(w)
    has_mass = total > 0
    uniform = jnp.full_like(w, 1.0 / w.shape[0])
    w = jnp.where(has_mass, w / jnp.where(has_mass, total, 1.0), uniform)
    # ott returns NaN cotangents for zero-weight entries (their log is -inf);
    # this where sends 0 instead, so the division above stays finite.
    return jnp.where(w > 0, w, 0.0), present, has_mass


def _squared_distances(x: jax.Array, y: jax.Array) -> jax.Array:
    """``[N, M]`` matrix of ‖x_i − y_j‖², as ott's ``SqEuclidean`` forms it."""
    sq_x = jnp.sum(jnp.square(x), axis=-1)
    sq_y = jnp.sum(jnp.square(y), axis=-1)
    return sq_x[:, None] + sq_y[None, :] - 2.0 * jnp.matmul(x, y.T)


def wasserstein(
    x: jax.Array,
    y: jax.Array,
    x_weights: jax.Array,
    y_weights: jax.Array,
    *,
    epsilon: float | jax.Array,
    num_iterations: int,
    debiased: bool = True,
) -> jax.Array:
    r"""Entropic Wasserstein distance between two weighted point clouds.

    The ground cost is the squared Euclidean distance
    :math:`C_{ij} = \lVert x_i - y_j \rVert^2` (not rescaled), ``a`` and
    ``b`` are the weights normalised to sum 1 (zero weight = absent point),
    and

    .. math::
        \mathrm{OT}_\varepsilon(a, b) = \min_{P \in U(a, b)}
            \langle P, C \rangle + \varepsilon\, \mathrm{KL}(P \,\|\, a b^\top).

    Returns, with ``debiased=True`` (default), the Sinkhorn divergence

    .. math::
        S_\varepsilon(a, b) = \mathrm{OT}_\varepsilon(a, b)
            - \tfrac12 \mathrm{OT}_\varepsilon(a, a)
            - \tfrac12 \mathrm{OT}_\varepsilon(b, b),

    which (at convergence) is 0 for identical clouds, symmetric and
    non-negative, and with
    ``debiased=False`` the regularised cost :math:`\mathrm{OT}_\varepsilon(a,
    b)` itself (entropy term included, *not* the bare transport cost
    :math:`\langle P, C \rangle`); as :math:`\varepsilon \to 0` it tends to
    the exact squared 2-Wasserstein cost :math:`W_2^2`. Both are in units of
    squared distance (no square root, whose gradient is infinite at 0).

    Each :math:`\mathrm{OT}_\varepsilon` is ott-jax's ``reg_ot_cost``: the
    dual objective at the potentials reached after exactly
    ``num_iterations`` log-domain Sinkhorn iterations from zero potentials
    (the symmetric terms use ott's averaged symmetric updates). The count is
    fixed (a ``lax.scan``, no convergence test), so all members of a vmapped
    batch do the same work. Gradients are obtained by unrolling (reverse-mode
    through the scan), i.e. they are the exact gradients of the returned
    value even when Sinkhorn has not converged. Implicit differentiation and
    the envelope (Danskin) gradient are not used: both are the gradient of
    the value only at convergence, and the former's iterative linear solve
    would again run to the slowest member under vmap. Unrolling keeps
    ``O(num_iterations * N * M)`` residuals per OT problem and its backward
    pass costs several forward passes (see ``benchmarks/losses.py``).

    Points with zero weight do not influence the value, and they get zero
    gradient (their coordinates may be anything finite or not: they are
    replaced before ott sees them). If either side has zero total weight
    the result is exactly 0 with zero gradient.

    Args:
      x: ``[N, D]`` first point cloud.
      y: ``[M, D]`` second point cloud.
      x_weights: ``[N]`` non-negative weights of ``x`` (any total).
      y_weights: ``[M]`` non-negative weights of ``y`` (any total).
      epsilon: entropic regularisation :math:`\varepsilon > 0`, absolute (in
        the units of ``C``; never ott's data-dependent default).
      num_iterations: exact number of Sinkhorn iterations (static int).
      debiased: return :math:`S_\varepsilon` (True) or
        :math:`\mathrm{OT}_\varepsilon` (False).

    Returns:
      Scalar (float32 or wider).

    References:
      Cuturi, `Sinkhorn Distances <https://arxiv.org/abs/1306.0895>`_, 2013;
      Feydy et al., `Interpolating between Optimal Transport and MMD using
      Sinkhorn Divergences <https://arxiv.org/abs/1810.08278>`_, 2019.
    """
    fn = "wasserstein"
    _check_ndim("x", fn, x, 2)
    _check_ndim("y", fn, y, 2)
    _check_ndim("x_weights", fn, x_weights, 1)
    _check_ndim("y_weights", fn, y_weights, 1)
    _check_same_length(fn, ("x", "x_weights"), x, x_weights)
    _check_same_length(fn, ("y", "y_weights"), y, y_weights)
    if jnp.shape(x)[1] != jnp.shape(y)[1]:
        raise ValueError(
            f"fairser_jax/losses.py:{fn}: `x` has dimension {jnp.shape(x)[1]}"
            f" but `y` has {jnp.shape(y)[1]}. Fix: compare embeddings of the "
            "same space."
        )
    _check_iterations(fn, num_iterations)
    _check_positive(fn, "epsilon", epsilon)

    a, x_present, has_x = _normalised_weights(x_weights)
    b, y_present, has_y = _normalised_weights(y_weights)
    dtype = jnp.result_type(a.dtype, _float(x).dtype, _float(y).dtype)
    a, b = a.astype(dtype), b.astype(dtype)
    # Absent points are moved to the origin: the value does not depend on
    # them, and any inf/NaN they held never enters the cost matrix.
    x = jnp.where(x_present[:, None], x.astype(dtype), 0.0)
    y = jnp.where(y_present[:, None], y.astype(dtype), 0.0)

    # inner_iterations == num_iterations: one block of a lax.scan. With
    # min == max iterations ott runs max // inner blocks (so the count is
    # exact only if inner divides it), and in ott 0.6.0 unrolled backprop
    # through more than one such block returns wrong gradients.
    solve_kwargs = dict(
        min_iterations=num_iterations,
        max_iterations=num_iterations,
        inner_iterations=num_iterations,
        implicit_diff=None,
        use_danskin=False,
        lse_mode=True,
    )
    # Cost matrices are built once here and handed to ott as plain
    # geometries: a PointCloud recomputes its cost matrix on every
    # half-iteration of each problem, forward and backward (measured 4.8x
    # slower for this loss under vmap in benchmarks/train_throughput.py).
    if debiased:
        value, _ = sinkhorn_divergence.sinkhorn_divergence(
            geometry.Geometry,
            cost_matrix=(
                _squared_distances(x, y),
                _squared_distances(x, x),
                _squared_distances(y, y),
            ),
            epsilon=epsilon,
            a=a,
            b=b,
            solve_kwargs=solve_kwargs,
        )
    else:
        geom = geometry.Geometry(
            cost_matrix=_squared_distances(x, y), epsilon=epsilon
        )
        value = linear.solve(geom, a=a, b=b, **solve_kwargs).reg_ot_cost
    return jnp.where(has_x & has_y, value, 0.0)


def group_distance(
    embeddings: jax.Array,
    groups: jax.Array,
    where: jax.Array | None = None,
    *,
    epsilon: float | jax.Array,
    num_iterations: int,
    debiased: bool = True,
    num_groups: int = 2,
    pooling: str = "pairs",
) -> jax.Array:
    r"""L_D-S / L_D-R of eqs. (1)-(2): distance between the groups of a batch.

    The paper's terms (eq. (1): L_D-S, speaker gender; eq. (2): L_D-R,
    rater-gender group) are :func:`wasserstein` between the valid rows of
    group M (code 1) and the valid rows of group F (code 0) of one batch,
    each group weighted uniformly:

    .. math::
        L_{D} = S_\varepsilon\big(\mu_M, \mu_F\big), \qquad
        \mu_c = \tfrac{1}{|G_c|}\textstyle\sum_{i \in G_c} \delta_{z_i},

    :math:`G_c` being the valid rows with group code :math:`c`. Every cloud
    is the whole ``[B, D]`` batch with zero weight on rows outside it, so
    shapes are static and nothing is sliced.

    For ``num_groups = k`` groups (codes ``0 .. k-1``), with
    :math:`K = \{c : G_c \neq \emptyset\}` the groups present in the batch:

    - ``pooling="pairs"`` (default): the mean over the present pairs,

      .. math::
          L_D = \frac{1}{|\{(c, c') : c < c',\ c, c' \in K\}|}
              \sum_{c < c',\ c, c' \in K} S_\varepsilon(\mu_{c'}, \mu_c);

      with ``k = 2`` this is the paper's binary term above, computed by
      exactly the same code as before groups were generalised (bit for bit).
    - ``pooling="pooled"``: the mean over the present groups of each
      group's divergence from the pooled batch :math:`\mu_\cup` (uniform
      over the valid rows of all groups ``0 .. k-1``),

      .. math::
          L_D = \frac{1}{|K|} \sum_{c \in K} S_\varepsilon(\mu_c, \mu_\cup).

      It solves ``k`` problems instead of ``k (k - 1) / 2``. Valid for
      ``k = 2`` too, where it is a different quantity from the pair term
      (not a rescaling of it).

    Either form is exactly 0 with zero gradient when fewer than two groups
    are present.

    Args:
      embeddings: ``[B, D]`` batch embeddings ``z``.
      groups: ``[B]`` int group codes ``0 .. num_groups-1`` (gender: F=0,
        M=1); other values (e.g. -1) are excluded.
      where: optional ``[B]`` boolean mask (e.g. "sample is in S2" for the
        rater-gender term L_D-R).
      epsilon: entropic regularisation (absolute, see :func:`wasserstein`).
      num_iterations: exact Sinkhorn iteration count (static int).
      debiased: Sinkhorn divergence (True) or regularised OT cost (False).
      num_groups: number of groups k (static Python int >= 2).
      pooling: ``"pairs"`` or ``"pooled"`` (static), see above.

    Returns:
      Scalar distance; exactly 0 with zero gradient when fewer than two
      groups have a valid row in the batch (never NaN, also when excluded
      rows hold NaN/inf).
    """
    fn = "group_distance"
    _check_ndim("embeddings", fn, embeddings, 2)
    _check_ndim("groups", fn, groups, 1)
    _check_same_length(fn, ("embeddings", "groups"), embeddings, groups)
    _check_iterations(fn, num_iterations)
    _check_positive(fn, "epsilon", epsilon)
    _check_num_groups(fn, num_groups)
    _check_pooling(fn, pooling)
    valid = _mask(where, groups, fn)
    if pooling == "pooled":
        return _pooled_divergence(
            embeddings,
            groups,
            valid,
            num_groups,
            epsilon,
            num_iterations,
            debiased,
        )
    if num_groups == 2:  # The paper's binary term, unchanged.
        male = valid & (groups == _MALE)
        female = valid & (groups == _FEMALE)
        return _packed_divergence(
            _float(embeddings), male, female, epsilon, num_iterations, debiased
        )

    members = jnp.stack([valid & (groups == c) for c in range(num_groups)])
    # Rows in no group are zeroed first: a pair with an empty group is
    # solved on a stand-in split of *all* rows (then discarded), and NaN/inf
    # there would turn its zero cotangent into NaN gradients.
    z = jnp.where(members.any(axis=0)[:, None], _float(embeddings), 0.0)
    pairs = [
        (i, j) for i in range(num_groups) for j in range(i + 1, num_groups)
    ]
    lower = jnp.asarray([i for i, _ in pairs])
    upper = jnp.asarray([j for _, j in pairs])

    def pair_divergence(first: jax.Array, second: jax.Array) -> jax.Array:
        return _packed_divergence(
            z, first, second, epsilon, num_iterations, debiased
        )

    # One vmapped solve over the pairs (one scan, not k (k - 1) / 2): each
    # is exactly 0 with zero gradient if either of its groups is empty.
    values = jax.vmap(pair_divergence)(members[upper], members[lower])
    present = members.any(axis=1)
    counted = present[upper] & present[lower]
    num_pairs = jnp.sum(counted).astype(values.dtype)
    return jnp.sum(jnp.where(counted, values, 0.0)) / jnp.maximum(num_pairs, 1)


def _pooled_divergence(
    embeddings: jax.Array,
    groups: jax.Array,
    valid: jax.Array,
    num_groups: int,
    eps: float | jax.Array,
    num_iterations: int,
    debiased: bool,
) -> jax.Array:
    """Mean over present groups of `wasserstein`(group, pooled batch).

    Args:
      embeddings: [B, D] embeddings.
      groups: [B] int codes; only 0 .. num_groups-1 count.
      valid: [B] bool mask.
      num_groups: k (static).
      eps, num_iterations, debiased: as for `wasserstein`.

    Returns:
      Scalar; exactly 0 with zero gradient if fewer than two groups have a
      valid row.
    """
    z = _float(embeddings)
    members = jnp.stack([valid & (groups == c) for c in range(num_groups)])
    pooled = members.any(axis=0).astype(z.dtype)

    def versus_pool(member: jax.Array) -> jax.Array:
        # Zero weight = absent: `wasserstein` moves those rows to the origin
        # (so NaN/inf never enters) and returns 0 for an empty group.
        return wasserstein(
            z,
            z,
            member.astype(z.dtype),
            pooled,
            epsilon=eps,
            num_iterations=num_iterations,
            debiased=debiased,
        )

    values = jax.vmap(versus_pool)(members)
    present = members.any(axis=1)
    num_present = jnp.sum(present)
    total = jnp.sum(jnp.where(present, values, 0.0))
    mean = total / jnp.maximum(num_present, 1).astype(total.dtype)
    return jnp.where(num_present >= 2, mean, 0.0)


def _packed_divergence(
    z: jax.Array,
    male: jax.Array,
    female: jax.Array,
    eps: float | jax.Array,
    num_iterations: int,
    debiased: bool,
) -> jax.Array:
    """`wasserstein` between two groups of one batch, on one [B, B] matrix.

    The same iterations as ott-jax's lse-mode solver from zero potentials
    (alternating g-then-f updates for OT(M, F); averaged parallel updates
    for the symmetric OT(M, M), OT(F, F)), hence the same value and
    gradient to float rounding (tests/test_losses.py compares with
    `wasserstein`), with a third of the work: the three problems are
    blocks of the batch's own cost matrix C(z, z), so

    - one potential vector ``p`` [B] holds OT(M, F)'s f on the M rows and
      its g on the F rows;
    - one vector ``h`` [B] holds both symmetric problems' potential (with
      a = b and C symmetric, ott's averaged updates keep f == g);
    - an iteration is three masked log-sum-exps over [B, B] (ott: six, over
      three matrices, zero-weight rows included).

    Args:
      z: [B, D] embeddings.
      male, female: [B] bool group membership (disjoint).
      eps: entropic regularisation ε > 0.
      num_iterations: exact iteration count (static).
      debiased: Sinkhorn divergence (True) or OT_ε(M, F) (False).

    Returns:
      Scalar; exactly 0 with zero gradient if a group is empty.
    """
    n = z.shape[0]
    ok = male.any() & female.any()
    # An empty group returns 0: compute on a stand-in split so that the
    # discarded branch stays finite (and its gradient is exactly zero).
    half = jnp.arange(n) % 2 == 0
    male = jnp.where(ok, male, half)
    female = jnp.where(ok, female, ~half)
    valid = male | female
    # Rows outside both groups never enter the cost (they may hold NaN).
    z = jnp.where(valid[:, None], z, 0.0)
    cost = _squared_distances(z, z)
    log_w = jnp.where(
        male,
        -jnp.log(jnp.sum(male).astype(z.dtype)),
        -jnp.log(jnp.sum(female).astype(z.dtype)),
    )
    log_w = jnp.where(valid, log_w, 0.0)
    weight = jnp.where(valid, jnp.exp(log_w), 0.0)
    same = (male[:, None] & male[None, :]) | (female[:, None] & female[None, :])
    from_male = jnp.broadcast_to(male[None, :], cost.shape)
    from_female = jnp.broadcast_to(female[None, :], cost.shape)

    def update(pot: jax.Array, mask: jax.Array) -> jax.Array:
        # ε log w_i − ε LSE_{j ∈ mask_i} (pot_j − C_ij) / ε
        v = jnp.where(mask & valid[:, None], (pot[None, :] - cost) / eps, 0.0)
        v = jnp.where(mask | ~valid[:, None], v, -jnp.inf)
        return eps * log_w - eps * jax.nn.logsumexp(v, axis=1)

    def body(carry, _):
        p, h = carry
        p = jnp.where(female, update(p, from_male), p)  # g of OT(M, F)
        p = jnp.where(male, update(p, from_female), p)  # f of OT(M, F)
        if debiased:
            h = jnp.where(valid, 0.5 * h + 0.5 * update(h, same), 0.0)
        return (p, h), None

    zeros = jnp.zeros(n, z.dtype)
    (p, h), _ = jax.lax.scan(body, (zeros, zeros), None, length=num_iterations)

    def mass(pot: jax.Array, mask: jax.Array) -> jax.Array:
        e = jnp.where(mask, (pot[:, None] + pot[None, :] - cost) / eps, 0.0)
        return jnp.sum(jnp.where(mask, jnp.exp(e), 0.0))

    # reg_ot_cost = <a, f> + <b, g> + ε (Σa Σb − Σ exp((f ⊕ g − C) / ε)).
    value = jnp.sum(weight * (p - eps * log_w)) + eps * (
        1.0 - mass(p, male[:, None] & female[None, :])
    )
    if debiased:  # − ½ (OT(M, M) + OT(F, F))
        value = value - 0.5 * (
            2.0 * jnp.sum(weight * (h - eps * log_w))
            + eps * (2.0 - mass(h, same))
        )
    return jnp.where(ok, value, 0.0)
