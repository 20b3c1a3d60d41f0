"""wav2vec 2.0 in Flax, for both Hugging Face checkpoint families.

The paper's features (§2.2.1) are the hidden states of wav2vec 2.0 *base*
(Baevski et al., 2020). This module implements the network that HF
transformers' PyTorch ``Wav2Vec2Model`` implements, for both layouts found
on the hub (paper §2.2.1 uses wav2vec2-base):

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
* attention ignores padded keys.

Without a mask (or with an all-true mask) the output equals HF's.

References:
  Baevski, Zhou, Mohamed, Auli, "wav2vec 2.0: A Framework for
  Self-Supervised Learning of Speech Representations", NeurIPS 2020.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

__all__ = [
    "ACTIVATIONS",
    "Wav2Vec2Config",
    "Wav2Vec2Model",
    "Wav2Vec2Output",
    "feature_lengths",
    "min_input_length",
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

# Eps of the torch.nn.GroupNorm / LayerNorm inside HF's conv layers: they
# are built with the torch default, not with config.layer_norm_eps.
_CONV_NORM_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class Wav2Vec2Config:
    """Architecture of a wav2vec2 checkpoint (the inference-relevant part).

    Field names and defaults are those of HF's ``Wav2Vec2Config`` (the
    defaults describe facebook/wav2vec2-base). Build one from a checkpoint's
    ``config.json`` with :meth:`from_hf`.
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

    def __post_init__(self) -> None:
        for name in ("conv_dim", "conv_kernel", "conv_stride"):
            object.__setattr__(
                self, name, tuple(int(v) for v in getattr(self, name))
            )
        problems = []
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
                "invalid wav2vec2 config: " + "; ".join(problems) + "."
            )

    @property
    def family(self) -> str:
        """``"base"`` (group-norm feature encoder) or ``"stable"``."""
        return "stable" if self.do_stable_layer_norm else "base"

    @classmethod
    def from_hf(cls, hf_config: Mapping[str, Any]) -> Wav2Vec2Config:
        """Builds the config from an HF ``config.json`` dict.

        Keys that only matter for training (dropouts, SpecAugment, heads)
        are ignored; missing keys take HF's defaults.

        Raises:
          ValueError: for another architecture (``model_type`` other than
            ``wav2vec2``, e.g. HuBERT or WavLM) or wav2vec2 features this
            module does not implement (``add_adapter``, MMS attention
            adapters).
        """
        model_type = hf_config.get("model_type", "wav2vec2")
        if model_type != "wav2vec2":
            raise ValueError(
                f"config.json has model_type={model_type!r}; only 'wav2vec2' "
                "checkpoints are supported (HuBERT, WavLM, data2vec-audio "
                "differ in architecture)."
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
        return cls(**{k: hf_config[k] for k in names if k in hf_config})

    def to_hf(self) -> dict[str, Any]:
        """An HF ``config.json`` dict for this architecture (inference)."""
        out = {"model_type": "wav2vec2"}
        out.update(dataclasses.asdict(self))
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
        x = _layer_norm(cfg.layer_norm_eps, "layer_norm")(x)
        return _dense(cfg.hidden_size, "projection", self.precision)(x)


class _PositionalConvEmbedding(nn.Module):
    """Grouped convolution over time giving relative position information.

    The kernel here is the *effective* weight ``g * v / ||v||`` of HF's
    weight-normed convolution (folded at load time, see ``weights.py``).
    Padding is ``K // 2`` on both sides; for an even ``K`` that yields one
    extra frame, which is dropped (HF's ``Wav2Vec2SamePadLayer``).
    """

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``[B, F, H]`` -> ``[B, F, H]``."""
        cfg = self.config
        k = cfg.num_conv_pos_embeddings
        y = nn.Conv(
            cfg.hidden_size,
            kernel_size=(k,),
            padding=((k // 2, k // 2),),
            feature_group_count=cfg.num_conv_pos_embedding_groups,
            precision=self.precision,
            name="conv",
        )(x)
        y = y[:, : x.shape[1]]
        return ACTIVATIONS[cfg.feat_extract_activation](y)


class _SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with a key mask."""

    config: Wav2Vec2Config
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, key_mask: jax.Array | None) -> jax.Array:
        """``x`` ``[B, F, H]``, ``key_mask`` ``[B, F]`` -> ``[B, F, H]``."""
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
        self, x: jax.Array, key_mask: jax.Array | None
    ) -> tuple[jax.Array, jax.Array | None]:
        """``x`` ``[B, F, H]``, ``key_mask`` ``[B, F]`` or ``None``.

        Returns:
          ``(out, out if emit else None)``, ``out`` ``[B, F, H]``.
        """
        cfg = self.config
        attention = _SelfAttention(cfg, self.precision, name="attention")
        norm = _layer_norm(cfg.layer_norm_eps, "layer_norm")
        feed_forward = _FeedForward(cfg, self.precision, name="feed_forward")
        final_norm = _layer_norm(cfg.layer_norm_eps, "final_layer_norm")
        if cfg.do_stable_layer_norm:
            x = x + attention(norm(x), key_mask)
            x = x + feed_forward(final_norm(x))
        else:
            x = norm(x + attention(x, key_mask))
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
        )(x)
        norm = _layer_norm(cfg.layer_norm_eps, "layer_norm")
        if not cfg.do_stable_layer_norm:
            x = norm(x)
        hidden_states = [x] if output_hidden_states else None
        if cfg.num_hidden_layers > 0:
            layers = nn.scan(
                _EncoderLayer,
                variable_axes={"params": 0},
                split_rngs={"params": True},
                in_axes=(nn.broadcast,),
                length=cfg.num_hidden_layers,
            )
            x, stacked = layers(
                cfg, self.precision, emit=output_hidden_states, name="layers"
            )(x, frame_mask)
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
