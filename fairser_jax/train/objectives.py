"""Per-variant training objectives, composed from `fairser_jax.losses`.

Two layers:

- One function per paper equation, `(out, batch, loss_cfg) -> (objective,
  terms)`: `dnn`, `speaker_fair` (eq. 2), `rater_fair` (eq. 1), `basic`
  (§3.1) and `two_sided` (eq. 3 for a given α). The objective is what the
  optimiser differentiates; `terms` holds the paper's loss value and its
  components for logging.
- The trainer's `Objective` shape, `(out, batch, cfg, state, ctx) ->
  (objective, terms, new_state)`: `cfg` is the whole config, `state` the
  run's objective state (e.g. the running mean of D behind α) and `ctx`
  what else the step knows (`Context`: the frozen reference models' outputs
  on the batch, the run's own α). `stateless` lifts an equation function to
  this shape; `proposed` and `fixed_alpha` are written in it directly.
  `fairser_jax.train.variants` binds each variant to one of these.

The "− L_Adv" of eq. (1) is a min-max game (paper §2.2.2): the adversary head
minimises L_Adv while the encoder maximises it. The model applies a
gradient-reversal layer between the embedding and the adversary, so the
differentiated objective carries `+ L_Adv` and the encoder receives
`− ∂L_Adv`; the logged value of eq. (1) carries `− L_Adv`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections

from fairser_jax import losses
from fairser_jax.models import ModelOutput
from fairser_jax.train import alpha as alpha_lib
from fairser_jax.train import distances as distances_lib


@flax.struct.dataclass
class Batch:
    """One training batch of one run.

    Attributes:
      x: [B, H] features.
      y: [B] float32 binary target (1 iff the consensus class is the run's
        emotion).
      speaker_group: [B] int32 speaker group code in 0..K_S-1 (speaker
        gender: F=0, M=1).
      rater_group: [B] int32 rater group code in 0..K_R-1 (0 outside S2).
      in_s2: [B] bool, whether a sample has a rater group.
      num_speaker_groups: K_S (static).
      num_rater_groups: K_R (static): the adversary is binary (one logit)
        for 2 groups, a K_R-way softmax otherwise.
    """

    x: jax.Array
    y: jax.Array
    speaker_group: jax.Array
    rater_group: jax.Array
    in_s2: jax.Array
    num_speaker_groups: int = flax.struct.field(pytree_node=False, default=2)
    num_rater_groups: int = flax.struct.field(pytree_node=False, default=2)


Terms = dict[str, jax.Array]


def distance_space(
    embeddings: jax.Array, cfg: ml_collections.ConfigDict
) -> jax.Array:
    """The embeddings L_D-S / L_D-R compare: z, or z/‖z‖ (the default).

    With `cfg.unit_sphere_distance` the Sinkhorn divergence is taken between
    L2-normalised embeddings, the same geometry L_cl uses. On raw ReLU
    embeddings the divergence is in units of ‖z‖² and the cheapest way to
    shrink it is to shrink every z: with the paper's λ = 1 and the fixed
    ε = 0.1 this collapsed both one-sided models to a constant prediction on
    the demo corpus; on the unit sphere squared distances lie in [0, 4], so
    ε = 0.1 has a fixed meaning and only the shape of the two groups'
    distributions can be changed.

    Args:
      embeddings: [B, D] encoder embeddings z.
      cfg: `config.loss`.

    Returns:
      [B, D] embeddings to feed `losses.group_distance`.
    """
    if not cfg.unit_sphere_distance:
        return embeddings
    sq = jnp.sum(jnp.square(embeddings), axis=-1, keepdims=True)
    return embeddings * jax.lax.rsqrt(sq + 1e-12)


Equation = Callable[
    [ModelOutput, Batch, ml_collections.ConfigDict], tuple[jax.Array, Terms]
]
"""`(out, batch, config.loss) -> (objective, terms)`: one paper equation."""

PyTree = Any


@flax.struct.dataclass
class Context:
    """What a training step knows besides the model's outputs and the batch.

    Attributes:
      refs: outputs of the frozen reference models on the same batch, by
        variant name (e.g. ``refs["fair_spk"].embeddings`` is μ_SPK of
        eq. 3); empty for variants without references.
      alpha: [] float32 the run's own α (`fixed_alpha`); NaN otherwise.
    """

    refs: Mapping[str, ModelOutput]
    alpha: jax.Array


Objective = Callable[
    [ModelOutput, Batch, ml_collections.ConfigDict, PyTree, Context],
    tuple[jax.Array, Terms, PyTree],
]
"""`(out, batch, config, state, ctx) -> (objective, terms, new_state)`."""


def dnn(
    out: ModelOutput, batch: Batch, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, Terms]:
    """The unconstrained three-layer DNN baseline: BCE only (Table 2)."""
    del cfg
    bce = losses.emotion_loss(out.logits, batch.y)
    return bce, {"loss": bce, "bce": bce}


def speaker_fair(
    out: ModelOutput, batch: Batch, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, Terms]:
    """Fair_spk, eq. (2): L_SPK = L_S − L_cl + λ_S L_D-S (speaker gender).

    L_cl is the supervised contrastive loss with speaker-gender labels, so
    subtracting it pushes same-gender embeddings apart; L_D-S is the
    Sinkhorn divergence between male- and female-speaker embeddings. With
    another speaker attribute of K groups, L_cl takes the K labels and
    L_D-S is `losses.group_distance` over K groups
    (`config.loss.group_pooling`).
    """
    l_s = losses.emotion_loss(out.logits, batch.y)
    l_cl = losses.supervised_contrastive(
        out.embeddings, batch.speaker_group, temperature=cfg.temperature
    )
    l_ds = losses.group_distance(
        distance_space(out.embeddings, cfg),
        batch.speaker_group,
        epsilon=cfg.epsilon,
        num_iterations=cfg.sinkhorn_iterations,
        debiased=cfg.debiased,
        num_groups=batch.num_speaker_groups,
        pooling=cfg.group_pooling,
    )
    loss = l_s - l_cl + cfg.lambda_s * l_ds
    return loss, {"loss": loss, "bce": l_s, "l_cl": l_cl, "l_ds": l_ds}


def rater_fair(
    out: ModelOutput, batch: Batch, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, Terms]:
    """Fair_rat, eq. (1): L_RAT = L_R − L_Adv + λ_R L_D-R (rater gender).

    The group terms use only S2 samples (the ones with a rater-gender
    group); L_R uses every sample of the batch. With another rater
    attribute of K > 2 groups the adversary is a K-way softmax.
    """
    l_r = losses.emotion_loss(out.logits, batch.y)
    l_adv = losses.adversarial_loss(
        out.adversary_logits, batch.rater_group, where=batch.in_s2
    )
    l_dr = losses.group_distance(
        distance_space(out.embeddings, cfg),
        batch.rater_group,
        where=batch.in_s2,
        epsilon=cfg.epsilon,
        num_iterations=cfg.sinkhorn_iterations,
        debiased=cfg.debiased,
        num_groups=batch.num_rater_groups,
        pooling=cfg.group_pooling,
    )
    objective = l_r + l_adv + cfg.lambda_r * l_dr  # GRL flips L_Adv's sign.
    loss = l_r - l_adv + cfg.lambda_r * l_dr
    return objective, {"loss": loss, "bce": l_r, "l_adv": l_adv, "l_dr": l_dr}


def basic(
    out: ModelOutput, batch: Batch, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, Terms]:
    """Basic two-sided model (§3.1): L_SPK + L_RAT from scratch."""
    obj_s, terms_s = speaker_fair(out, batch, cfg)
    obj_r, terms_r = rater_fair(out, batch, cfg)
    loss = terms_s["loss"] + terms_r["loss"]
    terms = {
        "loss": loss,
        "l_spk": terms_s["loss"],
        "l_rat": terms_r["loss"],
    }
    return obj_s + obj_r, terms


def two_sided(
    out: ModelOutput,
    batch: Batch,
    cfg: ml_collections.ConfigDict,
    alpha: jax.Array,
) -> tuple[jax.Array, Terms]:
    """Eq. (3) for one batch: 0.5 · L_RAT + α · L_SPK.

    α is a weight, not a path for gradients: it enters under
    `stop_gradient`. The 1/N of eq. (3) is the optimiser taking one step
    per batch.

    Args:
      out: the model's outputs on the batch.
      batch: the batch.
      cfg: `config.loss`.
      alpha: [] α ∈ [0, 1].

    Returns:
      (objective, terms) with terms `loss`, `l_spk`, `l_rat`, `alpha`.
    """
    obj_s, terms_s = speaker_fair(out, batch, cfg)
    obj_r, terms_r = rater_fair(out, batch, cfg)
    alpha = jax.lax.stop_gradient(jnp.asarray(alpha, jnp.float32))
    objective = 0.5 * obj_r + alpha * obj_s
    loss = 0.5 * terms_r["loss"] + alpha * terms_s["loss"]
    return objective, {
        "loss": loss,
        "l_spk": terms_s["loss"],
        "l_rat": terms_r["loss"],
        "alpha": alpha,
    }


def embedding_distance(
    mu_spk: jax.Array, mu_rat: jax.Array, cfg: ml_collections.ConfigDict
) -> jax.Array:
    """D of §3.1 between the two embeddings of one batch.

    Both clouds are first put in the space L_D uses (`distance_space`: the
    unit sphere by default), then compared by the distance
    ``config.two_sided.distance`` names (`fairser_jax.train.distances`:
    the Sinkhorn divergence as they are, after a Procrustes rotation, or
    Gromov-Wasserstein).

    Args:
      mu_spk: [B, D] embeddings of the batch by the speaker-debiased model.
      mu_rat: [B, D] embeddings of the same batch, same row order, by the
        rater-side model.
      cfg: the whole config.

    Returns:
      [] distance.
    """
    return distances_lib.get(cfg.two_sided.distance)(
        distance_space(mu_spk, cfg.loss), distance_space(mu_rat, cfg.loss), cfg
    )


def stateless(equation: Equation) -> Objective:
    """Lifts `equation(out, batch, config.loss)` to the `Objective` shape."""

    def objective(out, batch, cfg, state, ctx):
        del ctx
        value, terms = equation(out, batch, cfg.loss)
        return value, terms, state

    objective.__name__ = equation.__name__
    objective.__doc__ = equation.__doc__
    return objective


def proposed(
    out: ModelOutput,
    batch: Batch,
    cfg: ml_collections.ConfigDict,
    state: PyTree,
    ctx: Context,
) -> tuple[jax.Array, Terms, PyTree]:
    """Proposed (§3.1, eq. 3): α from the distance of the two embeddings.

    μ_SPK = the frozen trained Fair_spk's embeddings of the batch
    (`ctx.refs["fair_spk"]`); μ_RAT = the embeddings of the model being
    trained (`config.two_sided.mu_rat = "trained"`, the paper) or of the
    frozen trained Fair_rat (`"frozen"`). D = `embedding_distance(μ_SPK,
    μ_RAT)` (`config.two_sided.distance`) and α = f(D) with f = `config.two_sided.alpha_fn`
    (`fairser_jax.train.alpha`), both under `stop_gradient`; the loss is
    eq. (3)'s 0.5 · L_RAT + α · L_SPK.

    Returns:
      (objective, terms, new α-function state); terms add `distance` (D).
    """
    two = cfg.two_sided
    mu_spk = ctx.refs["fair_spk"].embeddings
    mu_rat = (
        ctx.refs["fair_rat"].embeddings
        if two.mu_rat == "frozen"
        else out.embeddings
    )
    d = jax.lax.stop_gradient(
        embedding_distance(mu_spk, jax.lax.stop_gradient(mu_rat), cfg)
    )
    alpha, state = alpha_lib.get(two.alpha_fn).apply(d, state, two)
    value, terms = two_sided(out, batch, cfg.loss, alpha)
    return value, {**terms, "distance": d}, state


def fixed_alpha(
    out: ModelOutput,
    batch: Batch,
    cfg: ml_collections.ConfigDict,
    state: PyTree,
    ctx: Context,
) -> tuple[jax.Array, Terms, PyTree]:
    """Eq. (3) with the run's constant α (`ctx.alpha`; Fig. 3a's sweep)."""
    value, terms = two_sided(out, batch, cfg.loss, ctx.alpha)
    return value, terms, state


OBJECTIVES: dict[str, Objective] = {
    "dnn": stateless(dnn),
    "speaker_fair": stateless(speaker_fair),
    "rater_fair": stateless(rater_fair),
    "basic": stateless(basic),
    "proposed": proposed,
    "fixed_alpha": fixed_alpha,
}
"""The built-in objectives, by the name a `fairser_jax.variants.Variant`
declaration gives as its ``objective``."""


def _alpha_fn_state(cfg: ml_collections.ConfigDict) -> PyTree:
    """The α map's state before the first step (e.g. D's running mean)."""
    return alpha_lib.get(cfg.two_sided.alpha_fn).init()


INIT_STATES: dict[str, Callable[[ml_collections.ConfigDict], PyTree]] = {
    "alpha_fn": _alpha_fn_state,
}
"""Built-in objective states, by the name a declaration's ``init_state``
gives."""
