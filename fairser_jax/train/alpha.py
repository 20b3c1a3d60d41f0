"""The balancing weight α of eq. (3), as small pure functions of D.

Paper §3.1: at every batch the two-sided model computes the Wasserstein
distance D = D_W(μ_SPK, μ_RAT) between the speaker-debiased and the
rater-debiased embeddings of the batch and derives α ∈ [0, 1] from it; "a
higher α value signifies a further distance between the two embedding sets,
indicating a need for a stronger contribution of fairness constraint from the
speaker-side". The paper does not give the map D ↦ α. Each function here is
one reading of it, selected by ``config.two_sided.alpha_fn``:

- ``ema_ratio``: α = D / (D + EMA(D)). Scale-free: α = 0.5 when the
  batch's distance equals its running mean, → 1 when it is far above, → 0
  when far below. Its spread is D's relative batch-to-batch variation: on
  the demo corpus α's SD over batches is 0.005-0.011 with the literal
  Sinkhorn D and 0.03-0.10 with the rotation-invariant ones — one mode
  near 0.5, not the paper's Fig. 3b.
- ``ema_zscore``: α = sigmoid((D − EMA(D)) / EMSD(D)), the
  batch's D standardised by the running mean and SD. Also 0.5 at the
  running mean and higher for a further D, but its spread does not depend
  on how much D fluctuates relative to its size: α's SD is ~0.22 with two
  or more modes on the demo corpus, as the paper's Fig. 3b (modes near
  0.25 and 0.75) — but it follows D only loosely (corr(α, D) 0.17-0.46:
  the running mean moves).
- ``saturating`` (default): α = D / (D + κ) with a fixed scale κ
  (``config.two_sided.alpha_scale``). Absolute: α → 0 as the two
  embeddings meet, however long training has run — the literal reading of
  "if the two viewpoints' embeddings are close, [the model] already encodes
  the speech sample into a jointly fair space". κ has a fixed meaning
  because D is measured on the unit sphere (squared distances in [0, 4]);
  the default κ = 1 puts α = 0.5 at D = 1. With the literal Sinkhorn D
  (≈ 1.2-1.4 on the demo corpus, nearly constant) α stays near 0.58; with
  the default Gromov-Wasserstein D, α spreads over 0.1-0.54 (SD 0.14, two
  modes) and follows D (corr 0.98). docs/DESIGN.md gives the
  measurements behind the default.
- ``constant``: α = c (``config.two_sided.alpha_constant``), D ignored:
  the fixed-α baseline of Fig. 3a expressed as an α function.

An α function is ``apply(d, state, cfg) -> (alpha, new_state)`` with its
state created by ``init()``; ``d`` is a scalar under ``stop_gradient``
(eq. (3)'s α is a weight, not a path for gradients).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from fairser_jax.train import distances

PyTree = Any
AlphaApply = Callable[
    [jax.Array, PyTree, ml_collections.ConfigDict], tuple[jax.Array, PyTree]
]


@dataclasses.dataclass(frozen=True)
class AlphaFunction:
    """One map D ↦ α with its state.

    Attributes:
      init: ``() -> state``, the state before the first batch (a pytree of
        scalars; it becomes part of the run's `TrainState`).
      apply: ``(d, state, cfg) -> (alpha, state)``; ``cfg`` is
        ``config.two_sided``; ``alpha`` is a float32 scalar in [0, 1].
    """

    init: Callable[[], PyTree]
    apply: AlphaApply


def _ratio(num: jax.Array, den: jax.Array) -> jax.Array:
    """num / den, and 0.5 where den is 0 (both sides equally distant)."""
    safe = jnp.where(den > 0, den, 1.0)
    return jnp.clip(jnp.where(den > 0, num / safe, 0.5), 0.0, 1.0)


def ema_ratio(
    d: jax.Array, state: PyTree, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, PyTree]:
    """α = D / (D + EMA(D)), the running mean taken before this batch.

    The first batch starts the mean at its own D (α = 0.5). After the
    batch, EMA ← decay · EMA + (1 − decay) · D with
    ``decay = cfg.ema_decay``.

    Args:
      d: [] distance D_W(μ_SPK, μ_RAT) of the batch (negative values, which
        a finite Sinkhorn iteration can produce near 0, count as 0).
      state: ``{"ema": [], "count": []}``.
      cfg: ``config.two_sided``.

    Returns:
      (α, new state).
    """
    d = jnp.maximum(d.astype(jnp.float32), 0.0)
    ema = jnp.where(state["count"] > 0, state["ema"], d)
    alpha = _ratio(d, d + ema)
    decay = jnp.float32(cfg.ema_decay)
    new_ema = decay * ema + (1.0 - decay) * d
    return alpha, {"ema": new_ema, "count": state["count"] + 1}


def ema_zscore(
    d: jax.Array, state: PyTree, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, PyTree]:
    """α = sigmoid((D − EMA(D)) / EMSD(D)), mean and SD before this batch.

    Exponentially weighted mean and variance with ``decay = cfg.ema_decay``
    (West's update: δ = D − m, m ← m + (1 − decay) δ,
    v ← decay (v + (1 − decay) δ²)). The first batch starts the mean at its
    own D; until two batches have been seen there is no spread, and α = 0.5.

    Args:
      d: [] distance of the batch (negative values count as 0).
      state: ``{"ema": [], "var": [], "count": []}``.
      cfg: ``config.two_sided``.

    Returns:
      (α, new state).
    """
    d = jnp.maximum(d.astype(jnp.float32), 0.0)
    count = state["count"]
    mean = jnp.where(count > 0, state["ema"], d)
    sd = jnp.sqrt(state["var"])
    z = (d - mean) / jnp.where(sd > 0, sd, 1.0)
    alpha = jnp.where((count >= 2) & (sd > 0), jax.nn.sigmoid(z), 0.5)
    keep = jnp.float32(cfg.ema_decay)
    delta = d - mean
    new_mean = mean + (1.0 - keep) * delta
    new_var = keep * (state["var"] + (1.0 - keep) * jnp.square(delta))
    return alpha, {"ema": new_mean, "var": new_var, "count": count + 1}


def saturating(
    d: jax.Array, state: PyTree, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, PyTree]:
    """α = D / (D + κ), κ = ``cfg.alpha_scale`` (stateless)."""
    d = jnp.maximum(d.astype(jnp.float32), 0.0)
    return _ratio(d, d + jnp.float32(cfg.alpha_scale)), state


def constant(
    d: jax.Array, state: PyTree, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, PyTree]:
    """α = ``cfg.alpha_constant`` whatever D is."""
    del d
    return jnp.float32(cfg.alpha_constant), state


def _no_state() -> PyTree:
    return {}


def _ema_state() -> PyTree:
    return {"ema": jnp.float32(0.0), "count": jnp.int32(0)}


def _ema_var_state() -> PyTree:
    return {
        "ema": jnp.float32(0.0),
        "var": jnp.float32(0.0),
        "count": jnp.int32(0),
    }


ALPHA_FUNCTIONS: dict[str, AlphaFunction] = {
    "ema_ratio": AlphaFunction(init=_ema_state, apply=ema_ratio),
    "ema_zscore": AlphaFunction(init=_ema_var_state, apply=ema_zscore),
    "saturating": AlphaFunction(init=_no_state, apply=saturating),
    "constant": AlphaFunction(init=_no_state, apply=constant),
}


def get(name: str) -> AlphaFunction:
    """The α function registered as ``name``."""
    try:
        return ALPHA_FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"config.two_sided.alpha_fn is {name!r}; choose from "
            f"{sorted(ALPHA_FUNCTIONS)}."
        ) from None


MU_RAT: tuple[str, ...] = ("trained", "frozen")
"""Where μ_RAT of eq. (3) comes from (`config.two_sided.mu_rat`)."""


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Fails early, naming the field, on an unusable ``config.two_sided``."""
    get(cfg.alpha_fn)
    distances.get(cfg.distance)
    if not (isinstance(cfg.gw_iterations, int) and cfg.gw_iterations >= 1):
        raise ValueError(
            f"config.two_sided.gw_iterations is {cfg.gw_iterations!r}; it "
            "must be an int >= 1."
        )
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ValueError(
            f"config.two_sided.ema_decay is {cfg.ema_decay}; it must be in "
            "[0, 1)."
        )
    if not cfg.alpha_scale > 0:
        raise ValueError(
            f"config.two_sided.alpha_scale is {cfg.alpha_scale}; it must be "
            "> 0."
        )
    if not 0.0 <= cfg.alpha_constant <= 1.0:
        raise ValueError(
            f"config.two_sided.alpha_constant is {cfg.alpha_constant}; α "
            "lies in [0, 1] (eq. 3)."
        )
    bad = [a for a in cfg.fixed_alphas if not 0.0 <= float(a) <= 1.0]
    if bad:
        raise ValueError(
            f"config.two_sided.fixed_alphas has {bad}; α lies in [0, 1]."
        )
    if len(set(round(float(a), 9) for a in cfg.fixed_alphas)) != len(
        cfg.fixed_alphas
    ):
        raise ValueError(
            "config.two_sided.fixed_alphas lists a value twice: "
            f"{tuple(cfg.fixed_alphas)}."
        )
    if cfg.mu_rat not in MU_RAT:
        raise ValueError(
            f"config.two_sided.mu_rat is {cfg.mu_rat!r}; choose 'trained' "
            "(μ_RAT from the model being trained, paper §3.1) or 'frozen' "
            "(from the frozen trained Fair_rat)."
        )
