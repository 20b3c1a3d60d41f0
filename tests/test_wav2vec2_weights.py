"""HF wav2vec2 checkpoint loading and conversion.

References: checkpoints written by transformers' own ``save_pretrained``
(bare ``Wav2Vec2Model`` keys, prefixed ``Wav2Vec2ForPreTraining`` /
``Wav2Vec2ForCTC`` keys), PyTorch state dicts rewritten to the older
``weight_g``/``weight_v`` style, HF PyTorch outputs, and torch's own
``weight_norm`` for the folded positional kernel.
"""

import json
import shutil
import socket

import jax
import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
import transformers
from conftest import TINY_ENCODER

from fairser_jax.wav2vec2 import model as w2v
from fairser_jax.wav2vec2 import weights

_SMALL = dict(TINY_ENCODER, num_conv_pos_embeddings=16, vocab_size=11)


def _perturb(model: torch.nn.Module, seed: int) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))


def _tree_equal(a, b) -> bool:
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A random HF Wav2Vec2Model saved by save_pretrained, and its load."""
    torch.manual_seed(0)
    hf = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**_SMALL))
    hf = hf.eval()
    _perturb(hf, 0)
    directory = tmp_path_factory.mktemp("bare")
    hf.save_pretrained(directory)
    return hf, directory, weights.load(directory)


def _write(directory, state: dict, config_from) -> None:
    """A checkpoint dir: config.json from ``config_from``, safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(config_from / "config.json", directory / "config.json")
    safetensors.numpy.save_file(
        {k: np.ascontiguousarray(v) for k, v in state.items()},
        str(directory / "model.safetensors"),
    )


def _numpy_state(hf) -> dict:
    return {k: v.detach().numpy().copy() for k, v in hf.state_dict().items()}


def test_bare_checkpoint_matches_hf_forward(reference):
    hf, _, ckpt = reference
    assert "masked_spec_embed" in hf.state_dict()  # present and ignored
    x = np.random.default_rng(0).standard_normal((2, 777)).astype(np.float32)
    apply = jax.jit(w2v.Wav2Vec2Model(ckpt.config).apply)
    out = apply({"params": ckpt.params}, x)
    with torch.no_grad():
        ref = hf(torch.from_numpy(x)).last_hidden_state.numpy()
    np.testing.assert_allclose(out.last_hidden_state, ref, atol=1e-4, rtol=0)
    leaves = jax.tree.leaves(ckpt.params)
    assert all(leaf.dtype == np.float32 for leaf in leaves)
    assert isinstance(leaves[0], jax.Array)


def test_encoder_layers_are_stacked_in_hf_order(reference):
    """Row i of every encoder/layers leaf is HF's encoder.layers.i weight."""
    hf, _, ckpt = reference
    stacked = ckpt.params["encoder"]["layers"]
    assert not any(k.startswith("layers_") for k in ckpt.params["encoder"])
    hf_state = _numpy_state(hf)
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(stacked)[0]:
        names = [k.key for k in key_path]
        leaf_name = {"kernel": "weight", "scale": "weight"}.get(
            names[-1], names[-1]
        )
        assert leaf.shape[0] == _SMALL["num_hidden_layers"]
        for i in range(leaf.shape[0]):
            ref = hf_state[
                ".".join(["encoder.layers", str(i), *names[:-1], leaf_name])
            ]
            np.testing.assert_array_equal(leaf[i], ref.T)


def test_folded_positional_kernel_equals_torch_weight(reference):
    """The stored kernel is torch's effective weight-normed conv weight."""
    hf, _, ckpt = reference
    conv = hf.encoder.pos_conv_embed.conv
    with torch.no_grad():
        effective = conv.weight.numpy()  # parametrization recomputes g v/|v|
    kernel = ckpt.params["encoder"]["pos_conv_embed"]["conv"]["kernel"]
    np.testing.assert_allclose(
        kernel, effective.transpose(2, 1, 0), atol=1e-6, rtol=1e-6
    )


def test_prefixed_checkpoints_from_hf_heads(reference, tmp_path):
    """ForPreTraining and ForCTC checkpoints: wav2vec2. prefix + heads."""
    _, _, ckpt = reference
    cfg = transformers.Wav2Vec2Config(**_SMALL)
    for cls in (
        transformers.Wav2Vec2ForPreTraining,
        transformers.Wav2Vec2ForCTC,
    ):
        torch.manual_seed(1)
        full = cls(cfg).eval()
        _perturb(full, 1)
        full.save_pretrained(tmp_path / cls.__name__)
        keys = safetensors.numpy.load_file(
            str(tmp_path / cls.__name__ / "model.safetensors")
        )
        assert all(
            k.startswith(("wav2vec2.", "quantizer.", "project_", "lm_head."))
            for k in keys
        )
        full.wav2vec2.save_pretrained(tmp_path / (cls.__name__ + "-bare"))
        ours = weights.load(tmp_path / cls.__name__)
        bare = weights.load(tmp_path / (cls.__name__ + "-bare"))
        assert ours.config == bare.config == ckpt.config
        assert _tree_equal(ours.params, bare.params)
        assert not _tree_equal(ours.params, ckpt.params)


def test_old_style_keys_and_ignored_heads(reference, tmp_path):
    """wav2vec2. prefix, weight_g/weight_v, extra head keys: same params."""
    hf, directory, ckpt = reference
    old = {}
    for key, value in _numpy_state(hf).items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        old["wav2vec2." + key] = value
    assert "wav2vec2.encoder.pos_conv_embed.conv.weight_g" in old
    rng = np.random.default_rng(0)
    old["quantizer.codevectors"] = rng.standard_normal((1, 640, 128))
    old["quantizer.weight_proj.weight"] = rng.standard_normal((640, 16))
    old["project_q.weight"] = rng.standard_normal((256, 128))
    old["project_hid.bias"] = rng.standard_normal(256)
    old["lm_head.weight"] = rng.standard_normal((11, 32))
    old["lm_head.bias"] = rng.standard_normal(11)
    _write(tmp_path / "old", old, directory)
    loaded = weights.load(tmp_path / "old")
    assert _tree_equal(loaded.params, ckpt.params)


def test_unknown_and_missing_keys_are_listed(reference, tmp_path):
    hf, directory, _ = reference
    state = _numpy_state(hf)
    extra = dict(state)
    extra["encoder.mystery.weight"] = np.zeros(3, np.float32)
    extra["quantizer.codevectors"] = np.zeros(3, np.float32)  # ignored
    _write(tmp_path / "extra", extra, directory)
    with pytest.raises(ValueError, match="unexpected keys") as err:
        weights.load(tmp_path / "extra")
    assert "encoder.mystery.weight" in str(err.value)
    assert "quantizer" not in str(err.value)

    short = dict(state)
    del short["encoder.layers.1.attention.q_proj.bias"]
    del short["encoder.pos_conv_embed.conv.parametrizations.weight.original0"]
    _write(tmp_path / "short", short, directory)
    with pytest.raises(ValueError, match="missing keys") as err:
        weights.load(tmp_path / "short")
    assert "encoder.layers.1.attention.q_proj.bias" in str(err.value)
    assert "pos_conv_embed.conv.parametrizations.weight.original0" in str(
        err.value
    )

    prefixed = {"wav2vec2." + k: v for k, v in state.items()}
    prefixed["decoder.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="decoder.weight"):
        weights.convert_state_dict(prefixed, w2v.Wav2Vec2Config.from_hf(_SMALL))


def test_shape_mismatch_names_the_key(reference, tmp_path):
    _, directory, _ = reference
    target = tmp_path / "mismatch"
    shutil.copytree(directory, target)
    cfg = json.loads((target / "config.json").read_text())
    cfg["intermediate_size"] = 40
    (target / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="intermediate_dense"):
        weights.load(target)


def test_pickle_needs_opt_in(reference, tmp_path):
    hf, directory, ckpt = reference
    target = tmp_path / "pickled"
    target.mkdir()
    shutil.copy(directory / "config.json", target / "config.json")
    torch.save(hf.state_dict(), target / "pytorch_model.bin")
    with pytest.raises(ValueError, match="pickle") as err:
        weights.load(target)
    assert "allow_pickle=True" in str(err.value)
    loaded = weights.load(target, allow_pickle=True)
    assert _tree_equal(loaded.params, ckpt.params)


def test_sharded_safetensors(reference, tmp_path):
    hf, _, ckpt = reference
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "sharded" / "model.safetensors").exists()
    assert _tree_equal(weights.load(tmp_path / "sharded").params, ckpt.params)


def test_bfloat16_and_float16_checkpoints(reference, tmp_path):
    hf, directory, _ = reference
    for dtype in (torch.bfloat16, torch.float16):
        state = {k: v.to(dtype) for k, v in hf.state_dict().items()}
        target = tmp_path / str(dtype)
        target.mkdir()
        shutil.copy(directory / "config.json", target / "config.json")
        safetensors.torch.save_file(state, str(target / "model.safetensors"))
        loaded = weights.load(target)
        conv = loaded.params["feature_extractor"]["conv_layers_0"]["conv"]
        expected = state["feature_extractor.conv_layers.0.conv.weight"]
        np.testing.assert_array_equal(
            conv["kernel"], expected.float().numpy().transpose(2, 1, 0)
        )
        assert conv["kernel"].dtype == np.float32


def test_directory_errors(reference, tmp_path):
    _, directory, _ = reference
    with pytest.raises(ValueError, match="does not exist"):
        weights.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="config.json"):
        weights.load(tmp_path / "empty")
    shutil.copy(directory / "config.json", tmp_path / "empty" / "config.json")
    with pytest.raises(ValueError, match="no model.safetensors"):
        weights.load(tmp_path / "empty")
    with pytest.raises(ValueError, match="is a file"):
        weights.load(directory / "config.json")
    bad = tmp_path / "badjson"
    shutil.copytree(directory, bad)
    (bad / "config.json").write_text('{\n  "hidden_size": 32,\n  oops\n}')
    with pytest.raises(ValueError, match=r"config.json:3:"):
        weights.load(bad)


def test_preprocessor_config(reference, tmp_path):
    _, directory, ckpt = reference
    assert ckpt.preprocessor == weights.DEFAULT_PREPROCESSOR
    target = tmp_path / "with_pre"
    shutil.copytree(directory, target)
    fe = transformers.Wav2Vec2FeatureExtractor(
        do_normalize=False, return_attention_mask=True
    )
    fe.save_pretrained(target)
    pre = weights.load(target).preprocessor
    assert pre["do_normalize"] is False
    assert pre["return_attention_mask"] is True
    assert pre["sampling_rate"] == 16000


def _fake_hub_cache(root, repo_id: str, source) -> None:
    """The layout huggingface_hub writes: refs/main -> snapshots/<commit>."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(source, repo / "snapshots" / commit)


def test_hub_name_from_local_cache_without_network(
    reference, tmp_path, monkeypatch
):
    _, directory, ckpt = reference

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "acme/w2v-tiny", directory)
    loaded = weights.load("acme/w2v-tiny", cache_dir=cache)
    assert _tree_equal(loaded.params, ckpt.params)
    with pytest.raises(ValueError, match="hf download acme/absent") as err:
        weights.load("acme/absent", cache_dir=cache)
    assert "never downloads" in str(err.value)


def test_random_checkpoints():
    a = weights.random_checkpoint("random-tiny", seed=0)
    b = weights.load("random-tiny")
    c = weights.random_checkpoint("random-tiny", seed=1)
    assert _tree_equal(a.params, b.params)
    assert not _tree_equal(a.params, c.params)
    shapes = weights.param_shapes(a.config)
    assert jax.tree.structure(shapes) == jax.tree.structure(a.params)
    assert a.config.family == "base" and a.config.hidden_size == 32
    assert w2v.min_input_length(a.config) == 400
    assert a.preprocessor["do_normalize"] is True
    assert a.preprocessor["return_attention_mask"] is False
    x = np.random.default_rng(0).standard_normal((1, 4000)).astype(np.float32)
    apply = jax.jit(w2v.Wav2Vec2Model(a.config).apply)
    out = apply({"params": a.params}, x)
    assert out.last_hidden_state.shape == (1, 12, 32)
    assert np.isfinite(out.last_hidden_state).all()
    with pytest.raises(ValueError, match="random-base"):
        weights.random_checkpoint("random-huge")
    # Pinned values: stacking the layers did not change a seed's weights
    # (feature stores are cached under "random-tiny@seed0").
    layers = a.params["encoder"]["layers"]
    np.testing.assert_array_equal(
        layers["attention"]["q_proj"]["kernel"][1, 0, :3],
        np.float32([-0.01601757, -0.023225771, 0.0027158272]),
    )
    np.testing.assert_array_equal(
        layers["feed_forward"]["output_dense"]["kernel"][0, 5, :3],
        np.float32([0.010885413, -0.00069865334, 0.029383736]),
    )


def test_random_base_has_wav2vec2_base_architecture():
    """random-base's tree is exactly HF's base model state dict, converted."""
    cfg = weights.BUILTIN_CONFIGS["random-base"]
    assert cfg == w2v.Wav2Vec2Config.from_hf(
        transformers.Wav2Vec2Config().to_dict()
    )
    with torch.device("meta"):
        hf = transformers.Wav2Vec2Model(
            transformers.Wav2Vec2Config(**cfg.to_hf())
        )
    # Read-only all-ones views of HF's shapes: no memory until converted.
    state = {
        k: np.broadcast_to(np.float32(1), tuple(v.shape))
        for k, v in hf.state_dict().items()
    }
    converted = weights.convert_state_dict(state, cfg)
    ours = weights.param_shapes(cfg)
    assert jax.tree.structure(converted) == jax.tree.structure(ours)
    for a, b in zip(
        jax.tree.leaves(converted), jax.tree.leaves(ours), strict=True
    ):
        assert a.shape == b.shape
    pos_g = "encoder.pos_conv_embed.conv.parametrizations.weight.original0"
    n_hf = sum(
        v.size
        for k, v in state.items()
        if k not in ("masked_spec_embed", pos_g)
    )
    n_ours = sum(a.size for a in jax.tree.leaves(converted))
    assert n_ours == n_hf == 94_370_816


# HF classes of the other families: the bare model, one with heads, and the
# prefix those keys carry.
_FAMILIES = {
    "hubert": (
        transformers.HubertConfig,
        transformers.HubertModel,
        transformers.HubertForCTC,
        "hubert.",
    ),
    "wavlm": (
        transformers.WavLMConfig,
        transformers.WavLMModel,
        transformers.WavLMForXVector,
        "wavlm.",
    ),
    "data2vec-audio": (
        transformers.Data2VecAudioConfig,
        transformers.Data2VecAudioModel,
        transformers.Data2VecAudioForSequenceClassification,
        "data2vec_audio.",
    ),
}


@pytest.mark.parametrize("family", list(_FAMILIES))
def test_other_families_with_heads_and_old_keys(family, tmp_path):
    """HuBERT (ForCTC), WavLM (ForXVector, whose heads include a top-level
    `feature_extractor`) and data2vec-audio (ForSequenceClassification):
    the prefixed checkpoint with heads loads the same parameters as its
    bare backbone; HuBERT's and WavLM's weight-normed position convolution
    also loads from the older weight_g/weight_v keys."""
    config_class, bare_class, head_class, prefix = _FAMILIES[family]
    cfg = config_class(**_SMALL, num_buckets=16, max_bucket_distance=40)
    torch.manual_seed(0)
    full = head_class(cfg).eval()
    _perturb(full, 0)
    full.save_pretrained(tmp_path / "full")
    keys = safetensors.numpy.load_file(
        str(tmp_path / "full" / "model.safetensors")
    )
    assert any(k.startswith(prefix) for k in keys)
    assert any(not k.startswith(prefix) for k in keys)  # the heads
    backbone = getattr(full, prefix[:-1])
    assert isinstance(backbone, bare_class)
    backbone.save_pretrained(tmp_path / "bare")
    ours = weights.load(tmp_path / "full")
    bare = weights.load(tmp_path / "bare")
    assert ours.config == bare.config
    assert ours.config.model_type == family
    assert _tree_equal(ours.params, bare.params)
    if family == "wavlm":
        table = ours.params["encoder"]["rel_attn_embed"]
        np.testing.assert_array_equal(
            table,
            backbone.encoder.layers[0].attention.rel_attn_embed.weight.detach(),
        )
    if family == "data2vec-audio":
        return  # plain convolutions: no weight norm, no older names
    old = {}
    for key, value in _numpy_state(backbone).items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        old[key] = value
    assert "encoder.pos_conv_embed.conv.weight_g" in old
    _write(tmp_path / "old", old, tmp_path / "bare")
    assert _tree_equal(weights.load(tmp_path / "old").params, bare.params)


def test_keys_of_another_family_name_the_family(tmp_path):
    """A WavLM state dict under a HuBERT config.json: the error lists the
    keys and says which family config.json names."""
    cfg = transformers.WavLMConfig(**_SMALL, num_buckets=16)
    torch.manual_seed(0)
    wavlm = transformers.WavLMModel(cfg).eval()
    wavlm.save_pretrained(tmp_path / "wavlm")
    config = json.loads((tmp_path / "wavlm" / "config.json").read_text())
    config["model_type"] = "hubert"
    (tmp_path / "wavlm" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not fit the hubert config") as e:
        weights.load(tmp_path / "wavlm")
    assert "encoder.layers.0.attention.rel_attn_embed.weight" in str(e.value)
    assert "model_type says 'hubert'" in str(e.value)
