"""Per-variant training objectives, composed from `fairser_jax.losses`.

One function per paper equation. Each returns `(objective, terms)`: the
objective is what the optimiser differentiates; `terms` holds the paper's
loss value and its components for logging.

The "− L_Adv" of eq. (1) is a min-max game (SPEC §5): the adversary head
minimises L_Adv while the encoder maximises it. The model applies a
gradient-reversal layer between the embedding and the adversary, so the
differentiated objective carries `+ L_Adv` and the encoder receives
`− ∂L_Adv`; the logged value of eq. (1) carries `− L_Adv`.
"""

from __future__ import annotations

from collections.abc import Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections

from fairser_jax import losses
from fairser_jax.models import ModelOutput


@flax.struct.dataclass
class Batch:
    """One training batch of one run.

    Attributes:
      x: [B, H] features.
      y: [B] float32 binary target (1 iff the consensus class is the run's
        emotion).
      speaker_gender: [B] int32 speaker gender code.
      rater_gender: [B] int32 rater-gender group code (0 outside S2).
      in_s2: [B] bool, whether a sample has a rater-gender group.
    """

    x: jax.Array
    y: jax.Array
    speaker_gender: jax.Array
    rater_gender: jax.Array
    in_s2: jax.Array


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


Objective = Callable[
    [ModelOutput, Batch, ml_collections.ConfigDict], tuple[jax.Array, Terms]
]


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
    Sinkhorn divergence between male- and female-speaker embeddings.
    """
    l_s = losses.emotion_loss(out.logits, batch.y)
    l_cl = losses.supervised_contrastive(
        out.embeddings, batch.speaker_gender, temperature=cfg.temperature
    )
    l_ds = losses.group_distance(
        distance_space(out.embeddings, cfg),
        batch.speaker_gender,
        epsilon=cfg.epsilon,
        num_iterations=cfg.sinkhorn_iterations,
        debiased=cfg.debiased,
    )
    loss = l_s - l_cl + cfg.lambda_s * l_ds
    return loss, {"loss": loss, "bce": l_s, "l_cl": l_cl, "l_ds": l_ds}


def rater_fair(
    out: ModelOutput, batch: Batch, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, Terms]:
    """Fair_rat, eq. (1): L_RAT = L_R − L_Adv + λ_R L_D-R (rater gender).

    The group terms use only S2 samples (the ones with a rater-gender
    group); L_R uses every sample of the batch.
    """
    l_r = losses.emotion_loss(out.logits, batch.y)
    l_adv = losses.adversarial_loss(
        out.adversary_logits, batch.rater_gender, where=batch.in_s2
    )
    l_dr = losses.group_distance(
        distance_space(out.embeddings, cfg),
        batch.rater_gender,
        where=batch.in_s2,
        epsilon=cfg.epsilon,
        num_iterations=cfg.sinkhorn_iterations,
        debiased=cfg.debiased,
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


OBJECTIVES: dict[str, Objective] = {
    "dnn": dnn,
    "fair_spk": speaker_fair,
    "fair_rat": rater_fair,
    "basic": basic,
}


def get(variant: str) -> Objective:
    """The objective of a variant trained from scratch by the runner."""
    try:
        return OBJECTIVES[variant]
    except KeyError:
        raise ValueError(
            f"Variant {variant!r} has no from-scratch objective; choose from "
            f"{sorted(OBJECTIVES)}."
        ) from None
