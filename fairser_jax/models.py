"""The DNN of the paper's §2.2.2 and Fig. 1, as Flax linen modules.

One architecture serves every variant (DNN, Fair_spk, Fair_rat, Basic,
Proposed, fixed α); the variants differ only in their losses (eqs. 1-3)::

    x [B, F] ─► Encoder: (Dense-ReLU-Dropout) × len(encoder_sizes) ─► z [B, D]
                  │
                  ├─► EmotionHead: Dense(1) ─► logits [B]        (L_S, L_R)
                  │
                  └─► gradient_reversal(z, grl_scale)
                        ─► AdversaryHead: Dense(H)-ReLU-Dense(1 or K)
                        ─► adversary_logits [B] or [B, K]        (L_Adv)

The encoder plus the emotion head is the paper's "three-layer DNN"
(768 → 256 → 128 → 1 with the default sizes). The adversary predicts the
rater-gender group from z (two groups, F=0 and M=1: one logit per
utterance, the paper's setting; ``num_rater_groups = K > 2`` groups coded
0 .. K-1: K logits); the gradient-reversal layer makes the single loss
``L_Adv`` play the min-max game of eq. (1): the adversary head descends
``L_Adv`` while the encoder receives ``-grl_scale`` times its gradient,
i.e. ascends it (the ``- L_Adv`` term of ``L_RAT``).

Dropout (`HashDropout`: flax's inverted dropout with a counter-based hash
mask) draws from the ``"dropout"`` RNG collection and is active only when
``train=True``. Parameters use Flax's default initialisers (LeCun-normal
kernels, zero biases).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from fairser_jax.losses import gradient_reversal

__all__ = [
    "AdversaryHead",
    "EmotionHead",
    "Encoder",
    "FairSERModel",
    "ModelOutput",
    "embed",
    "model_from_config",
]

_WHERE = "fairser_jax/models.py"


@flax.struct.dataclass
class ModelOutput:
    """Outputs of :class:`FairSERModel` for a batch of ``B`` utterances.

    Attributes:
      logits: ``[B]`` emotion-detector logits (sigmoid → P(emotion)).
      embeddings: ``[B, D]`` encoder embeddings z (D = last encoder size),
        the input of L_cl, L_D-S, L_D-R and of the Proposed model's α.
      adversary_logits: ``[B]`` (2 groups) or ``[B, K]`` (K > 2 groups)
        group-adversary logits, computed behind the gradient-reversal
        layer: with 2 groups, sigmoid → P(group = 1 = "M"); with K groups,
        softmax → P(group = k), k = 0 .. K-1 (see
        :func:`fairser_jax.losses.adversarial_loss`).
    """

    logits: jax.Array
    embeddings: jax.Array
    adversary_logits: jax.Array


def _check_features(x: jax.Array, module: str) -> None:
    if x.ndim != 2:
        raise ValueError(
            f"{_WHERE}: {module} expects inputs of shape [batch, features] "
            f"(e.g. [32, 768] pooled wav2vec2 features); got shape "
            f"{tuple(x.shape)}. Add or remove a batch axis, or vmap over "
            "extra leading axes."
        )


def _fmix32(x: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser: a bijection of uint32 with full
    avalanche (every input bit flips each output bit with p ≈ 1/2)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def keep_mask(key: jax.Array, shape: Sequence[int], keep: float) -> jax.Array:
    """A Bernoulli(``keep``) mask of ``shape``, a pure function of ``key``.

    Position ``c`` (row-major) keeps iff ``h(c) < keep · 2³²`` with
    ``h(c) = fmix32(fmix32(c ⊕ k₀) ⊕ k₁)`` and ``k₀, k₁`` the first and last
    words of ``key``'s data: a counter-based hash, like threefry but 2 × 5
    integer ops per element instead of threefry's 20 rounds per pair. The
    bits are a pure elementwise function of (key, position), so a run
    draws the same mask alone or vmapped in a stack (which XLA's
    RngBitGenerator, behind ``rbg``/``unsafe_rbg``, does not guarantee).

    Args:
      key: a typed PRNG key (any implementation).
      shape: mask shape (at most 2³² elements).
      keep: keep probability in (0, 1].

    Returns:
      bool mask of ``shape``.
    """
    words = jax.random.key_data(key).reshape(-1).astype(jnp.uint32)
    count = int(np.prod(shape))
    c = jax.lax.iota(jnp.uint32, count)
    h = _fmix32(_fmix32(c ^ words[0]) ^ words[-1])
    if keep >= 1.0:
        return jnp.ones(tuple(shape), bool)
    mask = h < jnp.uint32(int(round(keep * 2.0**32)))
    return mask.reshape(tuple(shape))


class HashDropout(nn.Module):
    """Inverted dropout whose mask comes from `keep_mask`.

    Same semantics as ``flax.linen.Dropout`` (zero with probability
    ``rate``, scale the rest by ``1 / (1 − rate)``, identity when
    ``deterministic``; the key is ``make_rng("dropout")``, so each layer
    and call draws its own mask), with a mask that costs a fraction of
    threefry's: on the trainer's CPU step it was ≈ 15–27 % of a bare
    step's time (docs/DESIGN.md, "Training").
    """

    rate: float
    deterministic: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.deterministic or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = keep_mask(self.make_rng("dropout"), x.shape, keep)
        return jnp.where(mask, x / keep, jnp.zeros_like(x))


class Encoder(nn.Module):
    """Shared encoder: (Dense-ReLU-Dropout) per size → embedding z.

    Attributes:
      sizes: hidden widths, the last one being the embedding size D
        (paper: 256, 128).
      dropout_rate: dropout probability after every ReLU (paper: 0.2).
    """

    sizes: Sequence[int] = (256, 128)
    dropout_rate: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Maps features ``x[B, F]`` to embeddings ``z[B, D]``."""
        if len(self.sizes) == 0 or any(int(s) < 1 for s in self.sizes):
            raise ValueError(
                f"{_WHERE}: Encoder.sizes must be a non-empty sequence of "
                f"positive widths such as (256, 128); got {self.sizes}. "
                "Set config.model.encoder_sizes."
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(
                f"{_WHERE}: Encoder.dropout_rate must be in [0, 1); got "
                f"{self.dropout_rate}. Set config.model.dropout_rate."
            )
        _check_features(x, "Encoder")
        for i, size in enumerate(self.sizes):
            x = nn.Dense(int(size), name=f"dense_{i}")(x)
            x = nn.relu(x)
            x = HashDropout(
                self.dropout_rate, deterministic=not train, name=f"dropout_{i}"
            )(x)
        return x


class EmotionHead(nn.Module):
    """Binary emotion detector: Dense(1) on z, returns ``logits[B]``."""

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        """Maps embeddings ``z[B, D]`` to logits ``[B]``."""
        return nn.Dense(1, name="dense")(z)[..., 0]


class AdversaryHead(nn.Module):
    """Group adversary: Dense(hidden)-ReLU-Dense(1 or K).

    Returns ``[B]`` logits (``Dense(1)``, squeezed) for two groups, the
    paper's binary rater gender (sigmoid → P(group = 1 = "M")), and
    ``[B, num_groups]`` logits (``Dense(num_groups)``, softmax over groups
    0 .. K-1) for ``num_groups > 2``. The output layer is named ``"out"``
    in both cases; with two groups the parameters are exactly those of the
    binary head.

    It sees z only through :func:`fairser_jax.losses.gradient_reversal`
    (applied by :class:`FairSERModel`, not here), so it can also be used
    on its own, e.g. to probe how much gender a frozen z still carries.

    Attributes:
      hidden: width of the hidden layer (64; docs/DESIGN.md).
      num_groups: number of groups K >= 2 the adversary tells apart.
    """

    hidden: int = 64
    num_groups: int = 2

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        """Maps (reversed) embeddings ``z[B, D]`` to logits ``[B]`` (two
        groups) or ``[B, num_groups]``."""
        if int(self.hidden) < 1:
            raise ValueError(
                f"{_WHERE}: AdversaryHead.hidden must be a positive width; "
                f"got {self.hidden}. Set config.model.adversary_hidden."
            )
        if (
            not isinstance(self.num_groups, numbers.Integral)
            or isinstance(self.num_groups, bool)
            or self.num_groups < 2
        ):
            raise ValueError(
                f"{_WHERE}: AdversaryHead.num_groups must be an int >= 2 "
                f"(groups coded 0 .. num_groups-1); got {self.num_groups!r}. "
                "Pass num_rater_groups=2 for binary rater gender."
            )
        h = nn.relu(nn.Dense(int(self.hidden), name="hidden")(z))
        if self.num_groups == 2:
            return nn.Dense(1, name="out")(h)[..., 0]
        return nn.Dense(int(self.num_groups), name="out")(h)


class FairSERModel(nn.Module):
    """Encoder + emotion head + group adversary (paper §2.2.2, Fig. 1).

    Parameters live under ``params["encoder"]``, ``params["emotion_head"]``
    and ``params["adversary_head"]``.

    Attributes:
      encoder_sizes: encoder widths; the last is the embedding size D.
      dropout_rate: dropout after each encoder ReLU.
      adversary_hidden: hidden width of the adversary head.
      num_rater_groups: number of rater groups K the adversary predicts
        (2: binary rater gender F=0 / M=1, ``adversary_logits[B]``;
        K > 2: codes 0 .. K-1, ``adversary_logits[B, K]``).

    Example::

      model = FairSERModel()
      params = model.init(key, x, train=False)["params"]
      out = model.apply({"params": params}, x, train=True,
                        rngs={"dropout": dropout_key})
      z = model.apply({"params": params}, x, method=FairSERModel.embed)
    """

    encoder_sizes: Sequence[int] = (256, 128)
    dropout_rate: float = 0.2
    adversary_hidden: int = 64
    num_rater_groups: int = 2

    def setup(self) -> None:
        self.encoder = Encoder(self.encoder_sizes, self.dropout_rate)
        self.emotion_head = EmotionHead()
        self.adversary_head = AdversaryHead(
            self.adversary_hidden, self.num_rater_groups
        )

    def __call__(
        self,
        x: jax.Array,
        *,
        train: bool,
        grl_scale: float | jax.Array = 1.0,
    ) -> ModelOutput:
        """Forward pass of every head.

        Args:
          x: ``[B, F]`` (speaker-normalised) utterance features.
          train: enables dropout (needs ``rngs={"dropout": key}``).
          grl_scale: gradient-reversal factor λ: the encoder receives
            ``-grl_scale`` times the adversary loss's gradient. May be a
            traced scalar (e.g. a schedule).

        Returns:
          :class:`ModelOutput` with ``logits[B]``, ``embeddings[B, D]`` and
          ``adversary_logits`` ``[B]`` (2 groups) or ``[B, K]``.
        """
        z = self.encoder(x, train=train)
        logits = self.emotion_head(z)
        adversary_logits = self.adversary_head(gradient_reversal(z, grl_scale))
        return ModelOutput(
            logits=logits, embeddings=z, adversary_logits=adversary_logits
        )

    def embed(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """Embeddings ``z[B, D]`` only (the heads are not evaluated).

        Used for μ_SPK / μ_RAT of eq. (3) and for t-SNE (Fig. 2).
        """
        return self.encoder(x, train=train)


def embed(
    model: FairSERModel,
    params: Any,
    x: jax.Array,
    *,
    train: bool = False,
    dropout_rng: jax.Array | None = None,
) -> jax.Array:
    """Functional form of :meth:`FairSERModel.embed`.

    Args:
      model: the module (its attributes fix the architecture).
      params: the model's ``params`` collection (the full tree; only
        ``params["encoder"]`` is read).
      x: ``[B, F]`` features.
      train: apply dropout (then ``dropout_rng`` is required).
      dropout_rng: PRNG key for dropout.

    Returns:
      ``[B, D]`` embeddings.
    """
    if train and dropout_rng is None:
        raise ValueError(
            f"{_WHERE}: embed(train=True) needs dropout_rng=<PRNG key>; "
            "pass one or use train=False."
        )
    rngs = {"dropout": dropout_rng} if train else {}
    return model.apply(
        {"params": params},
        jnp.asarray(x),
        train=train,
        method=FairSERModel.embed,
        rngs=rngs,
    )


def model_from_config(
    model_config: Any, num_rater_groups: int = 2
) -> FairSERModel:
    """Builds the model from ``config.model`` (fairser_jax/config.py).

    Args:
      model_config: object with ``encoder_sizes``, ``dropout_rate`` and
        ``adversary_hidden`` (an ``ml_collections.ConfigDict`` or any
        attribute container).
      num_rater_groups: number of rater groups K the adversary predicts
        (2, the default, is the paper's binary rater gender).
    """
    return FairSERModel(
        encoder_sizes=tuple(int(s) for s in model_config.encoder_sizes),
        dropout_rate=float(model_config.dropout_rate),
        adversary_hidden=int(model_config.adversary_hidden),
        num_rater_groups=num_rater_groups,
    )
