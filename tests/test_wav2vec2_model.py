"""The Flax encoders vs HF PyTorch ``Wav2Vec2Model``, ``HubertModel``,
``WavLMModel`` and ``Data2VecAudioModel``.

Small random HF models of every family and layout (base / stable) are
saved with ``save_pretrained``, loaded with ``weights.load`` and run on the
same waveforms. References: HF's outputs (parity, unpadded), each utterance
run alone (batch invariance), HF's ``_get_feat_extract_output_lengths``
(frame counts) and ``WavLMAttention._relative_positions_bucket``.
"""

import functools

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from conftest import TINY_ENCODER, hf_classes, slow_where

from fairser_jax.wav2vec2 import model as w2v
from fairser_jax.wav2vec2 import weights

TOL = 1e-4
# Utterance lengths in samples: exactly one frame (40 samples is the
# receptive field of the conv stack below), odd lengths, the longest.
LENGTHS = (40, 401, 2000)

_SMALL = dict(TINY_ENCODER)
_STABLE = dict(feat_extract_norm="layer", do_stable_layer_norm=True)
# WavLM with few buckets, so that the test's 2-100 frames reach the
# log-spaced ones (offsets >= 4) and the last, clipped one (>= 40).
_BUCKETS = dict(num_buckets=16, max_bucket_distance=40)
# wav2vec2: both layouts; even (trimmed) and odd positional kernels; conv
# bias on and off; the activations of our table that HF spells
# differently. Then each other family in each of its layouts.
CASES = {
    "base-even": dict(num_conv_pos_embeddings=16, conv_bias=False),
    "base-odd-bias": dict(
        num_conv_pos_embeddings=5, conv_bias=True, hidden_act="gelu_new"
    ),
    "stable-even-bias": dict(
        num_conv_pos_embeddings=16, conv_bias=True, **_STABLE
    ),
    "stable-odd": dict(
        num_conv_pos_embeddings=7, conv_bias=False, hidden_act="relu", **_STABLE
    ),
    "hubert-base-no-proj-norm": dict(
        model_type="hubert",
        num_conv_pos_embeddings=16,
        feat_proj_layer_norm=False,
    ),
    "hubert-stable": dict(
        model_type="hubert",
        num_conv_pos_embeddings=7,
        conv_bias=True,
        **_STABLE,
    ),
    "wavlm-base": dict(
        model_type="wavlm", num_conv_pos_embeddings=16, **_BUCKETS
    ),
    "wavlm-stable": dict(
        model_type="wavlm", num_conv_pos_embeddings=7, **_STABLE, **_BUCKETS
    ),
    # Three stacked position convolutions of an even kernel.
    "data2vec-audio": dict(
        model_type="data2vec-audio",
        num_conv_pos_embeddings=3,
        conv_pos_kernel_size=6,
    ),
}


def _hf_config(case: str, **overrides):
    kwargs = {**_SMALL, **CASES[case], **overrides}
    config_class, _ = hf_classes(kwargs.pop("model_type", "wav2vec2"))
    return config_class(**kwargs)


def _hf_model(case: str, seed: int = 0) -> torch.nn.Module:
    """Random HF model; every parameter perturbed so none is 0 or 1."""
    cfg = _hf_config(case)
    torch.manual_seed(seed)
    model = hf_classes(cfg.model_type)[1](cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


def _waves(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(np.float32) for n in LENGTHS]


@functools.cache
def _apply_fn(config: w2v.Wav2Vec2Config):
    model = w2v.Wav2Vec2Model(config)

    @jax.jit
    def apply(params, x, mask):
        return model.apply(
            {"params": params}, x, mask, output_hidden_states=True
        )

    return apply


def _states(out) -> list[np.ndarray]:
    """last_hidden_state then every hidden state, as NumPy."""
    return [np.asarray(out.last_hidden_state)] + [
        np.asarray(h) for h in out.hidden_states
    ]


# The other families' cases are in the full suite only (`slow`): the fast
# tier keeps wav2vec2's four.
@pytest.fixture(
    scope="module",
    params=slow_where(CASES, lambda c: "model_type" in CASES[c]),
)
def runs(request, tmp_path_factory):
    """HF and Flax outputs of one case on utterances alone and padded."""
    case = request.param
    hf = _hf_model(case)
    directory = tmp_path_factory.mktemp(case)
    hf.save_pretrained(directory)
    ckpt = weights.load(directory)
    apply = _apply_fn(ckpt.config)
    waves = _waves()

    def hf_run(x, mask=None):
        with torch.no_grad():
            out = hf(
                torch.from_numpy(x),
                attention_mask=None if mask is None else torch.from_numpy(mask),
                output_hidden_states=True,
            )
        return [out.last_hidden_state.numpy()] + [
            h.numpy() for h in out.hidden_states
        ]

    alone_hf = [hf_run(w[None]) for w in waves]
    alone = [apply(ckpt.params, w[None], None) for w in waves]
    # Padding filled with loud noise: it must not matter.
    rng = np.random.default_rng(1)
    longest = max(LENGTHS)
    batch = 10.0 * rng.standard_normal((len(waves), longest))
    mask = np.zeros((len(waves), longest), bool)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
        mask[i, : len(w)] = True
    batch = batch.astype(np.float32)
    padded = apply(ckpt.params, batch, mask)
    return dict(
        case=case,
        config=ckpt.config,
        alone_hf=alone_hf,
        alone=[_states(o) for o in alone],
        padded=_states(padded),
        frame_mask=np.asarray(padded.frame_mask),
        padded_hf=hf_run(batch, mask),
        ones_mask=_states(apply(ckpt.params, batch, np.ones_like(mask))),
        batch_hf=hf_run(batch),
    )


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def test_parity_with_hf_unpadded(runs):
    """Last and all hidden states within 1e-4 of HF, each length alone."""
    cfg = runs["config"]
    for n, ours, ref in zip(
        LENGTHS, runs["alone"], runs["alone_hf"], strict=True
    ):
        assert len(ours) == cfg.num_hidden_layers + 2
        assert ours[0].shape == (1, w2v.feature_lengths(cfg, n), 32)
        assert _max_diff(ours, ref) <= TOL, (runs["case"], n)


def test_all_true_mask_equals_hf_without_mask(runs):
    """A mask that marks everything valid is HF's unpadded computation."""
    assert _max_diff(runs["ones_mask"], runs["batch_hf"]) <= TOL


def test_batch_invariance(runs):
    """Valid frames of a padded, masked batch equal each utterance alone."""
    cfg = runs["config"]
    frames = w2v.feature_lengths(cfg, np.array(LENGTHS))
    np.testing.assert_array_equal(runs["frame_mask"].sum(1), frames)
    for i, (f, alone) in enumerate(zip(frames, runs["alone"], strict=True)):
        assert runs["frame_mask"][i, :f].all()
        valid = [s[i : i + 1, :f] for s in runs["padded"]]
        assert _max_diff(valid, alone) <= TOL, (runs["case"], LENGTHS[i])
        pooled = runs["padded"][0][i, :f].mean(0)
        np.testing.assert_allclose(
            pooled, alone[0][0].mean(0), atol=TOL, rtol=0
        )


def test_padded_batch_against_hf(runs):
    """Stable layout: HF is itself padding-invariant, so valid frames of the
    masked batch match HF's. Base layout: HF's group norm statistics see
    the padding, and data2vec-audio's later position convolutions read it,
    so HF's padded output differs from HF alone (the reason for our masked
    statistics and re-zeroed padding)."""
    frames = w2v.feature_lengths(runs["config"], np.array(LENGTHS))
    for i, f in enumerate(frames):
        ours = [s[i, :f] for s in runs["padded"]]
        hf_padded = [s[i, :f] for s in runs["padded_hf"]]
        hf_alone = [s[0] for s in runs["alone_hf"][i]]
        if runs["config"].family == "stable":
            assert runs["config"].model_type != "data2vec-audio"
            assert _max_diff(ours, hf_padded) <= TOL
        elif LENGTHS[i] < max(LENGTHS):
            assert _max_diff(hf_padded, hf_alone) > 1e-2
            assert _max_diff(ours, hf_alone) <= TOL


def test_feature_lengths_match_hf():
    hf = _hf_model("base-even")
    cfg = w2v.Wav2Vec2Config.from_hf(hf.config.to_dict())
    lengths = np.arange(0, 3000)
    ref = hf._get_feat_extract_output_lengths(torch.from_numpy(lengths))
    np.testing.assert_array_equal(w2v.feature_lengths(cfg, lengths), ref)
    np.testing.assert_array_equal(
        w2v.feature_lengths(cfg, jax.numpy.asarray(lengths)), ref
    )
    assert w2v.feature_lengths(cfg, 2000) == int(ref[2000])


def test_min_input_length():
    for cfg in (
        w2v.Wav2Vec2Config(),
        w2v.Wav2Vec2Config.from_hf(dict(_SMALL)),
    ):
        n = w2v.min_input_length(cfg)
        assert w2v.feature_lengths(cfg, n) == 1
        assert w2v.feature_lengths(cfg, n - 1) <= 0
    assert w2v.min_input_length(w2v.Wav2Vec2Config()) == 400


def test_config_round_trip_through_hf():
    for case in CASES:
        hf_cfg = _hf_config(case)
        cfg = w2v.Wav2Vec2Config.from_hf(hf_cfg.to_dict())
        assert cfg.family == ("stable" if "stable" in case else "base")
        assert cfg.model_type == CASES[case].get("model_type", "wav2vec2")
        again = type(hf_cfg)(**cfg.to_hf())
        assert w2v.Wav2Vec2Config.from_hf(again.to_dict()) == cfg
    # HF's defaults are facebook/wav2vec2-base's architecture.
    default = transformers.Wav2Vec2Config().to_dict()
    assert w2v.Wav2Vec2Config.from_hf(default) == w2v.Wav2Vec2Config()


@pytest.mark.parametrize("family", w2v.MODEL_TYPES)
def test_a_config_without_keys_means_hf_defaults(family):
    """A config.json that only names the family reads as HF's defaults of
    that family (data2vec-audio's differ from wav2vec2's)."""
    hf_default = hf_classes(family)[0]().to_dict()
    ours = w2v.Wav2Vec2Config.from_hf({"model_type": family})
    assert ours == w2v.Wav2Vec2Config.from_hf(hf_default)
    assert ours.model_type == family


def test_wavlm_buckets_equal_hf():
    """Every (query, key) offset of 1,600 frames (32 s) at WavLM's
    defaults, and of 120 frames at few buckets, lands in HF's bucket."""
    for frames, buckets, distance in ((1600, 320, 800), (120, 16, 40)):
        attention = transformers.models.wavlm.modeling_wavlm.WavLMAttention(
            32, 4, num_buckets=buckets, max_distance=distance
        )
        positions = torch.arange(frames)
        relative = positions[None, :] - positions[:, None]
        ref = attention._relative_positions_bucket(relative).numpy()
        ours = w2v.relative_position_buckets(
            relative.numpy(), buckets, distance
        )
        np.testing.assert_array_equal(ours, ref)
        # Every bucket is reached but "key after the query by 0 frames".
        assert len(np.unique(ours)) == buckets - 1


@pytest.mark.parametrize(
    "override, message",
    [
        (
            {"model_type": "whisper"},
            "model_type='whisper'; supported encoder families are wav2vec2, "
            "hubert, wavlm, data2vec-audio",
        ),
        ({"model_type": "hubert", "conv_pos_batch_norm": True}, "batch norm"),
        ({"add_adapter": True}, "add_adapter"),
        ({"adapter_attn_dim": 16}, "adapter_attn_dim"),
        ({"feat_extract_norm": "batch"}, "feat_extract_norm"),
        ({"hidden_act": "mish"}, "hidden_act"),
        ({"num_attention_heads": 5}, "num_attention_heads"),
        ({"num_feat_extract_layers": 2}, "num_feat_extract_layers"),
        ({"conv_kernel": (10, 3)}, "equal length"),
    ],
)
def test_config_rejects(override, message):
    with pytest.raises(ValueError, match=message):
        w2v.Wav2Vec2Config.from_hf({**_SMALL, **override})


def test_input_errors():
    cfg = w2v.Wav2Vec2Config.from_hf(dict(_SMALL))
    model = w2v.Wav2Vec2Model(cfg)
    params = weights.param_shapes(cfg)
    zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), params)
    with pytest.raises(ValueError, match="at least 40"):
        model.apply({"params": zeros}, np.zeros((1, 39), np.float32))
    with pytest.raises(ValueError, match="must match"):
        model.apply(
            {"params": zeros},
            np.zeros((2, 100), np.float32),
            np.ones((2, 99), bool),
        )
    with pytest.raises(ValueError, match="batch, samples"):
        model.apply({"params": zeros}, np.zeros((100,), np.float32))


def _count_equations(jaxpr: jax.extend.core.Jaxpr) -> int:
    """Equations of ``jaxpr``, those of nested jaxprs (scan, pjit) included."""
    count = 0
    for eqn in jaxpr.eqns:
        count += 1
        for value in eqn.params.values():
            for item in value if isinstance(value, tuple | list) else (value,):
                if isinstance(item, jax.extend.core.ClosedJaxpr):
                    count += _count_equations(item.jaxpr)
                elif isinstance(item, jax.extend.core.Jaxpr):
                    count += _count_equations(item)
    return count


@pytest.mark.parametrize(
    "case", ["base-even", "stable-odd", "wavlm-base", "data2vec-audio"]
)
def test_traced_program_does_not_grow_with_depth(case):
    """The layers are one scanned body: a 6-layer model traces to the same
    program as a 2-layer one (so XLA compiles one layer, not six), up to
    one slice per layer when every hidden state is returned."""
    batch = jax.ShapeDtypeStruct((2, 400), jnp.float32)
    mask = jax.ShapeDtypeStruct((2, 400), jnp.bool_)
    sizes = {}
    for layers in (2, 6):
        cfg = w2v.Wav2Vec2Config.from_hf(
            _hf_config(case, num_hidden_layers=layers).to_dict()
        )
        model = w2v.Wav2Vec2Model(cfg)
        params = weights.param_shapes(cfg)
        stacked = params["encoder"]["layers"]["attention"]["q_proj"]["kernel"]
        assert stacked.shape == (layers, 32, 32)
        for hidden in (False, True):
            apply = functools.partial(model.apply, output_hidden_states=hidden)
            jaxpr = jax.make_jaxpr(apply)({"params": params}, batch, mask)
            sizes[layers, hidden] = _count_equations(jaxpr.jaxpr)
    assert sizes[6, False] == sizes[2, False], sizes
    # Each returned hidden state costs at most two equations (slice, squeeze).
    assert sizes[6, True] - sizes[2, True] <= 2 * (6 - 2), sizes
