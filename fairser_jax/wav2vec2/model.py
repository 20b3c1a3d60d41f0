"""wav2vec 2.0 and the encoders built on it, in Flax.

The paper's features (§2.2.1) are the hidden states of wav2vec 2.0 *base*
(Baevski et al., 2020). This module implements the network that HF
transformers' PyTorch ``Wav2Vec2Model`` implements, and the three
self-supervised speech encoders that share its skeleton (a strided
convolution stack, a feature projection, a convolutional position
embedding and a transformer), chosen by ``Wav2Vec2Config.model_type`` as a
checkpoint's ``config.json`` says:

* ``"wav2vec2"`` (``Wav2Vec2Model``);
* ``"hubert"`` (``HubertModel``; Hsu et al., 2021): wav2vec2's network
  without the quantizer; the feature projection's layer norm is optional
  (``feat_proj_layer_norm``);
* ``"wavlm"`` (``WavLMModel``; Chen et al., 2022): every attention adds a
  relative position bias (``num_buckets`` log-spaced buckets up to
  ``max_bucket_distance`` frames, one table shared by all layers), scaled
  per query and head by a gate computed from the layer's input
  (``gru_rel_pos_linear``, ``gru_rel_pos_const``);
* ``"data2vec-audio"`` (``Data2VecAudioModel``; Baevski et al., 2022): a
  layer norm after every convolution of the feature encoder, and a position
  embedding of ``num_conv_pos_embeddings`` stacked convolutions (kernel
  ``conv_pos_kernel_size``), each followed by a parameter-free layer norm,
  instead of one weight-normed convolution.

Each difference is one switch of the shared modules below, not a copy of
the network per family. Within each, both layouts found on the hub:

* ``"base"`` (``feat_extract_norm="group"``, ``do_stable_layer_norm=False``;
  e.g. facebook/wav2vec2-base): a per-channel normalisation over time after
  the first convolution only, and post-LN transformer layers with a layer
  norm *before* the first layer.
* ``"stable"`` (``feat_extract_norm="layer"``, ``do_stable_layer_norm=True``;
  e.g. wav2vec2-large-lv60, XLS-R): a layer norm over channels after every
  convolution, and pre-LN transformer layers with a layer norm *after* the
  last layer.

The two switches are independent here, as they are in HF. Inference only:
dropout, layer drop and SpecAugment masking are identities.

Padding. With ``attention_mask`` (right-padded, ``True`` = real sample) an
utterance's valid frames do not depend on the padding or on the other
utterances of the batch (batch invariance, docs/DESIGN.md):

* the padded input samples are zeroed;
* convolutions are ``VALID`` and HF's length formula only counts output
  frames whose receptive field lies inside the valid samples, so valid
  frames never read padding;
* the first-layer group norm of the "base" family takes its mean and
  variance over the valid frames only (HF takes them over the padded
  length, which makes HF's base models depend on the padding);
* padded frames are zeroed before the positional convolution (as HF does,
  so the convolution sees the zeros an unpadded utterance sees);
* attention ignores padded keys;
* data2vec-audio's stacked position convolutions zero the padded frames
  again before each convolution (HF does so only before the first, so
  its padded batches differ from its utterances alone).

Without a mask (or with an all-true mask) the output equals HF's.

References:
  Baevski, Zhou, Mohamed, Auli, "wav2vec 2.0: A Framework for
  Self-Supervised Learning of Speech Representations", NeurIPS 2020.
  Hsu et al., "HuBERT: Self-Supervised Speech Representation Learning by
  Masked Prediction of Hidden Units", IEEE/ACM TASLP 2021.
  Chen et al., "WavLM: Large-Scale Self-Supervised Pre-Training for Full
  Stack Speech Processing", IEEE JSTSP 2022.
  Baevski et al., "data2vec: A General Framework for Self-supervised
  Learning in Speech, Vision and Language", ICML 2022.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = [
    "ACTIVATIONS",
    "MODEL_TYPES",
    "Wav2Vec2Config",
    "Wav2Vec2Model",
    "Wav2Vec2Output",
    "feature_lengths",
    "min_input_length",
    "relative_position_buckets",
]

#: HF activation names (``transformers.activations.ACT2FN``) we support.
#: HF's ``"gelu"`` is the exact erf form; ``"gelu_new"`` the tanh form.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
}

#: ``config.json`` ``model_type`` values this module implements.
MODEL_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")

# HF's defaults per family where they differ from wav2vec2's (the
# dataclass defaults): a config.json without the key means these.
_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "wav2vec2": {},
    "hubert": {},
    "wavlm": {},
    "data2vec-audio": {
        "num_conv_pos_embeddings": 5,
        "feat_extract_norm": "layer",
    },
}

# Eps of the torch.nn.GroupNorm / LayerNorm inside HF's conv layers: they
# are built with the torch default, not with config.layer_norm_eps.
_CONV_NORM_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class Wav2Vec2Config:
    """Architecture of a checkpoint (the inference-relevant part).

    Field names and defaults are those of HF's ``Wav2Vec2Config`` (the
    defaults describe facebook/wav2vec2-base), plus the fields of the other
    families (``model_type``, see the module docstring). Build one from a
    checkpoint's ``config.json`` with :meth:`from_hf`.

    For ``data2vec-audio``, ``num_conv_pos_embeddings`` is the number of
    stacked position convolutions and ``conv_pos_kernel_size`` their
    kernel (HF's meaning); the feature encoder is always layer-normed and
    the transformer post-LN.
    """

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    feat_extract_norm: str = "group"
    feat_extract_activation: str = "gelu"
    conv_dim: tuple[int, ...] = (512,) * 7
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_bias: bool = False
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    do_stable_layer_norm: bool = False
    model_type: str = "wav2vec2"
    feat_proj_layer_norm: bool = True
    num_buckets: int = 320
    max_bucket_distance: int = 800
    conv_pos_kernel_size: int = 19

    def __post_init__(self) -> None:
        for name in ("conv_dim", "conv_kernel", "conv_stride"):
            object.__setattr__(
                self, name, tuple(int(v) for v in getattr(self, name))
            )
        problems = []
        if self.model_type not in MODEL_TYPES:
            problems.append(
                f"model_type={self.model_type!r} is not one of {MODEL_TYPES}"
            )
        if self.model_type == "data2vec-audio" and (
            self.feat_extract_norm != "layer" or self.do_stable_layer_norm
        ):
            problems.append(
                "data2vec-audio has a layer-normed feature encoder and a "
                "post-LN transformer (feat_extract_norm='layer', "
                "do_stable_layer_norm=False)"
            )
        if self.model_type == "wavlm" and not (
            self.num_buckets >= 4
            and self.max_bucket_distance > self.num_buckets // 4
        ):
            problems.append(
                f"num_buckets={self.num_buckets} must be >= 4 and "
                f"max_bucket_distance={self.max_bucket_distance} above "
                "num_buckets // 4"
            )
        if self.feat_extract_norm not in ("group", "layer"):
            problems.append(
                f"feat_extract_norm={self.feat_extract_norm!r} must be "
                "'group' or 'layer'"
            )
        for name in ("hidden_act", "feat_extract_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                problems.append(
                    f"{name}={getattr(self, name)!r} is not one of "
                    f"{sorted(ACTIVATIONS)}"
                )
        if not (
            len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride)
            and self.conv_dim
        ):
            problems.append(
                "conv_dim, conv_kernel and conv_stride must be non-empty and "
                f"of equal length (got {len(self.conv_dim)}, "
                f"{len(self.conv_kernel)}, {len(self.conv_stride)})"
            )
        if self.hidden_size % self.num_attention_heads:
            problems.append(
                f"hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )
        if self.hidden_size % self.num_conv_pos_embedding_groups:
            problems.append(
                f"hidden_size={self.hidden_size} is not divisible by "
                "num_conv_pos_embedding_groups="
                f"{self.num_conv_pos_embedding_groups}"
            )
        if problems:
            raise ValueError(
                f"invalid {self.model_type} config: "
                + "; ".join(problems)
                + "."
            )

    @property
    def family(self) -> str:
        """``"base"`` (group-norm feature encoder) or ``"stable"``."""
        return "stable" if self.do_stable_layer_norm else "base"

    @classmethod
    def from_hf(cls, hf_config: Mapping[str, Any]) -> Wav2Vec2Config:
        """Builds the config from an HF ``config.json`` dict.

        Keys that only matter for training (dropouts, SpecAugment, heads)
        are ignored; missing keys take HF's defaults for the family.

        Raises:
          ValueError: for an architecture not in :data:`MODEL_TYPES` (e.g.
            Whisper's encoder) or features this module does not implement
            (``add_adapter``, MMS attention adapters, HuBERT's batch-normed
            position convolution).
        """
        model_type = hf_config.get("model_type", "wav2vec2")
        if model_type not in MODEL_TYPES:
            raise ValueError(
                f"config.json has model_type={model_type!r}; supported "
                f"encoder families are {', '.join(MODEL_TYPES)} (the "
                "model_type of their config.json)."
            )
        if hf_config.get("conv_pos_batch_norm", False):
            raise ValueError(
                "config.json has conv_pos_batch_norm=true (a batch norm "
                "before the position convolution); this is not supported."
            )
        if hf_config.get("add_adapter", False):
            raise ValueError(
                "config.json has add_adapter=true (a convolutional adapter "
                "after the encoder); this is not supported. Use the "
                "checkpoint's pretrained (non-adapter) version."
            )
        if hf_config.get("adapter_attn_dim") is not None:
            raise ValueError(
                "config.json sets adapter_attn_dim (MMS attention adapters); "
                "this is not supported."
            )
        num_layers = hf_config.get("num_feat_extract_layers")
        if num_layers is not None and "conv_dim" in hf_config:
            if int(num_layers) != len(hf_config["conv_dim"]):
                raise ValueError(
                    f"config.json: num_feat_extract_layers={num_layers} but "
                    f"conv_dim has {len(hf_config['conv_dim'])} entries."
                )
        names = [f.name for f in dataclasses.fields(cls)]
        values = dict(_FAMILY_DEFAULTS[model_type])
        values.update({k: hf_config[k] for k in names if k in hf_config})
        values["model_type"] = model_type
        if model_type == "data2vec-audio":
            # HF's Data2VecAudioConfig has no such switches: its network
            # is always the layer-normed, post-LN one.
            values["feat_extract_norm"] = "layer"
            values["do_stable_layer_norm"] = False
        if model_type != "hubert":
            # Only HuBERT's feature projection reads the switch.
            values["feat_proj_layer_norm"] = True
        return cls(**values)

    def to_hf(self) -> dict[str, Any]:
        """An HF ``config.json`` dict for this architecture (inference)."""
        out = dataclasses.asdict(self)
        for name in ("conv_dim", "conv_kernel", "conv_stride"):
            out[name] = list(out[name])
        out["num_feat_extract_layers"] = len(self.conv_dim)
        return out


@struct.dataclass
class Wav2Vec2Output:
    """What :class:`Wav2Vec2Model` returns (a pytree).

    Attributes:
      last_hidden_state: ``[B, F, H]`` output of the encoder (for the
        "stable" family after its final layer norm).
      hidden_states: ``None`` unless requested; else ``num_hidden_layers + 1``
        arrays ``[B, F, H]`` in HF's convention: the input of the first
        transformer layer (embeddings + positional convolution, for "base"
        after the encoder layer norm), then each layer's output. For "base"
        the last equals ``last_hidden_state``; for "stable" it is the last
        layer's output before the final layer norm (transformers 5).
      frame_mask: ``[B, F]`` bool, ``True`` on frames of real audio.
    """

    last_hidden_state: jax.Array
    hidden_states: tuple[jax.Array, ...] | None
    frame_mask: jax.Array


def feature_lengths(config: Wav2Vec2Config, input_lengths: Any) -> Any:
    """Number of frames the feature encoder makes from ``input_lengths``.

    The same integer formula as HF's ``_get_feat_extract_output_lengths``:
    ``L <- floor((L - kernel) / stride) + 1`` per convolution. Works on
    Python ints, NumPy and JAX integer arrays. Results ``<= 0`` mean the
    input is shorter than :func:`min_input_length` (no frame at all).

    Args:
      config: the architecture.
      input_lengths: number of samples, any shape.

    Returns:
      Number of frames, same type and shape as ``input_lengths``.
    """
    lengths = input_lengths
    for kernel, stride in zip(
        config.conv_kernel, config.conv_stride, strict=True
    ):
        lengths = (lengths - kernel) // stride + 1
    return lengths


def min_input_length(config: Wav2Vec2Config) -> int:
    """Fewest input samples that give one frame (the receptive field).

    400 samples (25 ms at 16 kHz) for the wav2vec2 checkpoints on the hub.
    """
    length = 1
    for kernel, stride in zip(
        reversed(config.conv_kernel),
        reversed(config.conv_stride),
        strict=True,
    ):
        length = (length - 1) * stride + kernel
    return length


def relative_position_buckets(
    relative: np.ndarray, num_buckets: int, max_distance: int
) -> np.ndarray:
    """WavLM's bucket of each offset ``key - query`` (frames), any shape.

    Half the buckets per direction (key after query: the upper half);
    offsets below a quarter of ``num_buckets`` get a bucket each, larger
    ones log-spaced buckets up to ``max_distance`` (HF's
    ``WavLMAttention._relative_positions_bucket``, computed the same way in
    float32 so that every offset lands in the same bucket).
    """
    half = num_buckets // 2
    relative = np.asarray(relative, np.int64)
    buckets = (relative > 0).astype(np.int64) * half
    distance = np.abs(relative)
    max_exact = half // 2
    with np.errstate(divide="ignore"):
        large = np.log(distance.astype(np.float32) / np.float32(max_exact))
    large = large / np.float32(math.log(max_distance / max_exact))
    large = large * np.float32(half - max_exact)
    large = np.where(
        distance < max_exact, 0, (np.float32(max_exact) + large)
    ).astype(np.int64)
    large = np.minimum(large, half - 1)
    return buckets + np.where(distance < max_exact, distance, large)


def _dense(features: int, name: str, precision: Any) -> nn.Dense:
    return nn.Dense(features, precision=precision, name=name)


def _layer_norm(eps: float, name: str) -> nn.LayerNorm:
    # Two-pass variance, as torch computes it.
    return nn.LayerNorm(epsilon=eps, use_fast_variance=False, name=name)


class _ChannelNorm(nn.Module):
    """Per-channel normalisation over valid time steps (masked GroupNorm).

    ``torch.nn.GroupNorm(num_groups=C, num_channels=C)`` on ``[B, C, F]``
    normalises each channel of each utterance by its mean and variance over
    time. Here the statistics run over the first ``lengths[b]`` frames only,
    so they do not see padding.
    """

    eps: float = _CONV_NORM_EPS

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array | None) -> jax.Array:
        """Normalises ``x`` ``[B, F, C]``; ``lengths`` ``[B]`` or ``None``."""
        channels = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (channels,))
        bias = self.param("bias", nn.initializers.zeros, (channels,))
        if lengths is None:
            valid = jnp.ones(x.shape[:2], bool)
            count = jnp.full((x.shape[0],), x.shape[1], x.dtype)
        else:
            valid = jnp.arange(x.shape[1])[None, :] < lengths[:, None]
            count = jnp.maximum(lengths, 1).astype(x.dtype)
        valid = valid[..., None]
        count = count[:, None, None]
        mean = jnp.sum(jnp.where(valid, x, 0.0), axis=1, keepdims=True) / count
        centred = x - mean
        var = (
            jnp.sum(jnp.where(valid, centred**2, 0.0), axis=1, keepdims=True)
            / count
        )
        return centred * jax.lax.rsqrt(var + self.eps) * scale + bias


class _ConvLayer(nn.Module):
    """One convolution of the feature encoder (+ its norm) + activation."""

    config: Wav2Vec2Config
    layer_id: int
    precision: Any = None

    @nn.compact
    def __call__(
        self, x: jax.Array, norm_lengths: jax.Array | None
    ) -> jax.Array:
        """``x`` ``[B, T, C_in]`` -> ``[B, T', C_out]`` (VALID, strided)."""
        cfg = self.config
        x = nn.Conv(
            cfg.conv_dim[self.layer_id],
            kernel_size=(cfg.conv_kernel[self.layer_id],),
            strides=(cfg.conv_stride[self.layer_id],),
            padding="VALID",
            use_bias=cfg.conv_bias,
            precision=self.precision,
            name="conv",
        )(x)
        if cfg.feat_extract_norm == "layer":
            x = _layer_norm(_CONV_NORM_EPS, "layer_norm")(x)
        elif self.layer_id == 0:
            x = _ChannelNorm(name="layer_norm")(x, norm_lengths)
        return ACTIVATIONS[cfg.feat_extract_activation](x)


class _FeatureEncoder(nn.Module):
    """Strided 1-D convolutions from samples ``[B, T]`` to frames."""

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array | None) -> jax.Array:
        """``x`` ``[B, T]`` -> ``[B, F, conv_dim[-1]]``.

        ``lengths`` ``[B]`` valid samples (``None``: all valid) set the
        frames over which the first-layer group norm takes statistics.
        """
        cfg = self.config
        norm_lengths = None
        if lengths is not None:
            # Valid frames of the first convolution (HF's formula, layer 0).
            kernel, stride = cfg.conv_kernel[0], cfg.conv_stride[0]
            norm_lengths = (lengths - kernel) // stride + 1
        h = x[..., None]
        for i in range(len(cfg.conv_dim)):
            h = _ConvLayer(cfg, i, self.precision, name=f"conv_layers_{i}")(
                h, norm_lengths
            )
        return h


class _FeatureProjection(nn.Module):
    """Layer norm over conv channels, then a linear map to ``hidden_size``."""

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``[B, F, conv_dim[-1]]`` -> ``[B, F, H]``."""
        cfg = self.config
        if cfg.feat_proj_layer_norm:
            x = _layer_norm(cfg.layer_norm_eps, "layer_norm")(x)
        return _dense(cfg.hidden_size, "projection", self.precision)(x)


class _PositionalConvEmbedding(nn.Module):
    """Grouped convolution over time giving relative position information.

    The kernel here is the *effective* weight ``g * v / ||v||`` of HF's
    weight-normed convolution (folded at load time, see ``weights.py``).
    Padding is ``K // 2`` on both sides; for an even ``K`` that yields one
    extra frame, which is dropped (HF's ``Wav2Vec2SamePadLayer``).

    data2vec-audio instead stacks ``num_conv_pos_embeddings`` plain
    convolutions of kernel ``conv_pos_kernel_size`` (``layers_{j}``), each
    followed by a layer norm without parameters and the activation; padded
    frames are zeroed before each (``frame_mask``), so that no convolution
    reads what an earlier one wrote into the padding.
    """

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(
        self, x: jax.Array, frame_mask: jax.Array | None = None
    ) -> jax.Array:
        """``x`` ``[B, F, H]`` (padded frames zero), ``frame_mask``
        ``[B, F]`` or ``None`` -> ``[B, F, H]``."""
        cfg = self.config
        if cfg.model_type != "data2vec-audio":
            y = _same_conv(
                x, cfg, cfg.num_conv_pos_embeddings, self.precision, "conv"
            )
            return ACTIVATIONS[cfg.feat_extract_activation](y)
        y = x
        for j in range(cfg.num_conv_pos_embeddings):
            if j and frame_mask is not None:
                y = jnp.where(frame_mask[..., None], y, 0.0)
            y = _StackedPositionConv(cfg, self.precision, name=f"layers_{j}")(y)
        return y


def _same_conv(
    x: jax.Array, cfg: Wav2Vec2Config, k: int, precision: Any, name: str
) -> jax.Array:
    """Grouped convolution over time, ``K // 2`` zeros each side, trimmed to
    ``x``'s length (HF's ``SamePadLayer`` for an even ``K``)."""
    y = nn.Conv(
        cfg.hidden_size,
        kernel_size=(k,),
        padding=((k // 2, k // 2),),
        feature_group_count=cfg.num_conv_pos_embedding_groups,
        precision=precision,
        name=name,
    )(x)
    return y[:, : x.shape[1]]


class _StackedPositionConv(nn.Module):
    """One of data2vec-audio's position convolutions: convolution, layer
    norm without parameters, activation (HF's
    ``Data2VecAudioPositionalConvLayer``)."""

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``[B, F, H]`` -> ``[B, F, H]``."""
        cfg = self.config
        y = _same_conv(x, cfg, cfg.conv_pos_kernel_size, self.precision, "conv")
        y = nn.LayerNorm(
            epsilon=_CONV_NORM_EPS,
            use_bias=False,
            use_scale=False,
            use_fast_variance=False,
            name="layer_norm",
        )(y)
        return ACTIVATIONS[cfg.feat_extract_activation](y)


class _SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with a key mask.

    With a ``position_bias`` (WavLM) the scores get ``gate * bias``, where
    the gate of each query frame and head is computed from ``x``:
    ``a (b c - 1) + 2`` with ``a, b = sigmoid`` of two sums of four outputs
    of ``gru_rel_pos_linear`` on the head's slice of ``x``, and ``c`` the
    head's ``gru_rel_pos_const`` (HF's ``WavLMAttention``).
    """

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        key_mask: jax.Array | None,
        position_bias: jax.Array | None = None,
    ) -> jax.Array:
        """``x`` ``[B, F, H]``, ``key_mask`` ``[B, F]``, ``position_bias``
        ``[heads, F, F]`` or ``None`` -> ``[B, F, H]``."""
        cfg = self.config
        b, f, h = x.shape
        heads = cfg.num_attention_heads
        d = h // heads

        def project(name: str) -> jax.Array:
            y = _dense(h, name, self.precision)(x)
            return y.reshape(b, f, heads, d)

        q = project("q_proj") * d**-0.5
        k = project("k_proj")
        v = project("v_proj")
        scores = jnp.einsum("bqnd,bknd->bnqk", q, k, precision=self.precision)
        if cfg.model_type == "wavlm":
            const = self.param(
                "gru_rel_pos_const", nn.initializers.ones, (1, heads, 1, 1)
            )
            proj = _dense(8, "gru_rel_pos_linear", self.precision)(
                x.reshape(b, f, heads, d)
            )  # [B, F, heads, 8]
            proj = proj.reshape(b, f, heads, 2, 4).sum(-1)
            gate_a, gate_b = jnp.split(jax.nn.sigmoid(proj), 2, axis=-1)
            c = const.reshape(1, 1, heads, 1)
            gate = gate_a * (gate_b * c - 1.0) + 2.0  # [B, F, heads, 1]
            gate = gate[..., 0].transpose(0, 2, 1)  # [B, heads, F]
            scores = scores + gate[..., None] * position_bias[None]
        if key_mask is not None:
            big_negative = jnp.finfo(scores.dtype).min
            scores = jnp.where(key_mask[:, None, None, :], scores, big_negative)
        weights = jax.nn.softmax(scores, axis=-1)
        out = jnp.einsum(
            "bnqk,bknd->bqnd", weights, v, precision=self.precision
        )
        return _dense(h, "out_proj", self.precision)(out.reshape(b, f, h))


class _FeedForward(nn.Module):
    """Dense(intermediate) -> activation -> Dense(hidden)."""

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``[B, F, H]`` -> ``[B, F, H]``."""
        cfg = self.config
        x = _dense(cfg.intermediate_size, "intermediate_dense", self.precision)(
            x
        )
        x = ACTIVATIONS[cfg.hidden_act](x)
        return _dense(cfg.hidden_size, "output_dense", self.precision)(x)


class _EncoderLayer(nn.Module):
    """A transformer layer: post-LN ("base") or pre-LN ("stable").

    Written as a scan step (see :class:`_Encoder`): the hidden state is the
    carry, the key mask is broadcast to every layer, and the layer's output
    is also emitted as the scanned output when ``emit`` is set.
    """

    config: Wav2Vec2Config
    precision: Any = None
    emit: bool = False

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        key_mask: jax.Array | None,
        position_bias: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array | None]:
        """``x`` ``[B, F, H]``, ``key_mask`` ``[B, F]`` or ``None``,
        ``position_bias`` ``[heads, F, F]`` (WavLM) or ``None``.

        Returns:
          ``(out, out if emit else None)``, ``out`` ``[B, F, H]``.
        """
        cfg = self.config
        attention = _SelfAttention(cfg, self.precision, name="attention")
        norm = _layer_norm(cfg.layer_norm_eps, "layer_norm")
        feed_forward = _FeedForward(cfg, self.precision, name="feed_forward")
        final_norm = _layer_norm(cfg.layer_norm_eps, "final_layer_norm")
        if cfg.do_stable_layer_norm:
            x = x + attention(norm(x), key_mask, position_bias)
            x = x + feed_forward(final_norm(x))
        else:
            x = norm(x + attention(x, key_mask, position_bias))
            x = final_norm(x + feed_forward(x))
        return x, (x if self.emit else None)


class _Encoder(nn.Module):
    """Positional convolution + transformer layers + the encoder norm.

    The transformer layers run as one ``nn.scan`` over a single
    :class:`_EncoderLayer` whose parameters are stacked along a leading
    layer axis (``encoder/layers/attention/q_proj/kernel`` is
    ``[num_hidden_layers, H, H]``), so XLA compiles one layer body whatever
    the depth. Each layer's output is the scan's stacked output.
    """

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        frame_mask: jax.Array | None,
        output_hidden_states: bool = False,
    ) -> tuple[jax.Array, list[jax.Array] | None]:
        """``[B, F, H]`` -> (last hidden state, HF-style hidden states).

        The hidden states (``num_hidden_layers + 1`` arrays ``[B, F, H]``)
        are only computed when ``output_hidden_states``; else ``None``.
        """
        cfg = self.config
        if frame_mask is not None:
            x = jnp.where(frame_mask[..., None], x, 0.0)
        x = x + _PositionalConvEmbedding(
            cfg, self.precision, name="pos_conv_embed"
        )(x, frame_mask)
        position_bias = None
        if cfg.model_type == "wavlm":
            # HF keeps the table in layer 0's attention and hands the bias
            # on to the others; here it is the encoder's, so that the
            # scanned layers have the same parameters.
            table = self.param(
                "rel_attn_embed",
                nn.initializers.normal(1.0),
                (cfg.num_buckets, cfg.num_attention_heads),
            )
            # The bias depends on key - query only: one row per offset in
            # [-(F - 1), F - 1], then spread over the [F, F] grid.
            f = x.shape[1]
            buckets = relative_position_buckets(
                np.arange(-(f - 1), f), cfg.num_buckets, cfg.max_bucket_distance
            )
            per_offset = table[buckets]  # [2F - 1, heads]
            positions = jnp.arange(f)
            offset = positions[None, :] - positions[:, None] + (f - 1)
            position_bias = jnp.transpose(per_offset[offset], (2, 0, 1))
        norm = _layer_norm(cfg.layer_norm_eps, "layer_norm")
        if not cfg.do_stable_layer_norm:
            x = norm(x)
        hidden_states = [x] if output_hidden_states else None
        if cfg.num_hidden_layers > 0:
            layers = nn.scan(
                _EncoderLayer,
                variable_axes={"params": 0},
                split_rngs={"params": True},
                in_axes=(nn.broadcast, nn.broadcast),
                length=cfg.num_hidden_layers,
            )
            x, stacked = layers(
                cfg, self.precision, emit=output_hidden_states, name="layers"
            )(x, frame_mask, position_bias)
            if output_hidden_states:
                # stacked: [num_hidden_layers, B, F, H].
                hidden_states.extend(
                    stacked[i] for i in range(cfg.num_hidden_layers)
                )
        if cfg.do_stable_layer_norm:
            x = norm(x)
        return x, hidden_states


class Wav2Vec2Model(nn.Module):
    """wav2vec 2.0 encoder (HF ``Wav2Vec2Model``), inference only.

    Parameters are a plain tree whose names mirror HF's module names
    (``feature_extractor/conv_layers_0/conv/kernel``,
    ``encoder/layers/attention/q_proj/kernel``, ...), except that the
    transformer layers are stacked: HF's ``encoder.layers.3.…`` is row 3
    of the leading axis of ``encoder/layers/…`` (the layers run as one
    ``nn.scan``, so compile time does not grow with depth).
    ``weights.load`` builds the tree from an HF checkpoint and
    ``weights.random_checkpoint`` draws HF-like random weights (``init``
    uses Flax's default initialisers).

    Attributes:
      config: the architecture.
      precision: ``jax.lax.Precision`` of every matmul and convolution.
        ``None`` is the backend default: full float32 on CPU, but reduced
        (TF32/bf16 passes) on GPU/TPU, where the 1e-4 parity and batch
        invariance need ``"highest"``.
    """

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(
        self,
        input_values: jax.Array,
        attention_mask: jax.Array | None = None,
        *,
        output_hidden_states: bool = False,
    ) -> Wav2Vec2Output:
        """Encodes a batch of (normalised) 16 kHz waveforms.

        Args:
          input_values: ``[B, T]`` float waveform, already normalised as the
            checkpoint's preprocessor config says.
          attention_mask: ``[B, T]`` bool (or 0/1), right-padded, ``True`` on
            real samples; ``None`` means every sample is real.
          output_hidden_states: also return every layer's hidden states.

        Returns:
          :class:`Wav2Vec2Output` with ``F = feature_lengths(config, T)``
          frames; ``frame_mask[b]`` is true on the first
          ``feature_lengths(config, sum(attention_mask[b]))`` frames.

        Raises:
          ValueError: if ``input_values`` is not 2-D or ``T`` is shorter
            than :func:`min_input_length` (one frame).
        """
        cfg = self.config
        if input_values.ndim != 2:
            raise ValueError(
                "input_values must be [batch, samples], got shape "
                f"{input_values.shape}."
            )
        num_samples = input_values.shape[1]
        if num_samples < min_input_length(cfg):
            raise ValueError(
                f"input has {num_samples} samples; this checkpoint needs at "
                f"least {min_input_length(cfg)} for one frame. Pad or drop "
                "shorter audio."
            )
        x = jnp.asarray(input_values, jnp.float32)
        lengths = None
        if attention_mask is not None:
            if attention_mask.shape != x.shape:
                raise ValueError(
                    f"attention_mask has shape {attention_mask.shape}, "
                    f"input_values {x.shape}: they must match."
                )
            sample_mask = jnp.asarray(attention_mask).astype(bool)
            x = jnp.where(sample_mask, x, 0.0)
            lengths = jnp.sum(sample_mask, axis=1, dtype=jnp.int32)
        feats = _FeatureEncoder(cfg, self.precision, name="feature_extractor")(
            x, lengths
        )
        num_frames = feats.shape[1]
        if lengths is None:
            frame_mask = jnp.ones((x.shape[0], num_frames), bool)
            key_mask = None
        else:
            frame_lengths = feature_lengths(cfg, lengths)
            frame_mask = (
                jnp.arange(num_frames)[None, :] < frame_lengths[:, None]
            )
            key_mask = frame_mask
        h = _FeatureProjection(cfg, self.precision, name="feature_projection")(
            feats
        )
        last, hidden_states = _Encoder(cfg, self.precision, name="encoder")(
            h, key_mask, output_hidden_states
        )
        return Wav2Vec2Output(
            last_hidden_state=last,
            hidden_states=None
            if hidden_states is None
            else tuple(hidden_states),
            frame_mask=frame_mask,
        )
