"""Hugging Face wav2vec2, HuBERT, WavLM and data2vec-audio checkpoints ->
Flax parameters.

A checkpoint is a directory holding ``config.json`` and the PyTorch state
dict, either a local directory or a hub name (``facebook/wav2vec2-base``)
that is already in the local Hugging Face cache. Nothing is ever downloaded
here. The state dict is read from ``model.safetensors`` (or its shards) with
``safetensors.numpy``, so loading needs no PyTorch. ``pytorch_model.bin`` is
a Python pickle that can run code when loaded: it is read (with
``torch.load(weights_only=True)``) only if the caller passes
``allow_pickle=True``.

Conversion (PyTorch layout -> Flax layout):

* ``Conv1d.weight`` ``[out, in/groups, k]`` -> ``kernel`` ``[k, in/groups,
  out]``; ``Linear.weight`` ``[out, in]`` -> ``kernel`` ``[in, out]``;
  ``LayerNorm``/``GroupNorm`` ``weight`` -> ``scale``.
* The positional convolution is weight-normed over ``dim=2``
  (``weight_g``/``weight_v`` or ``parametrizations.weight.original0/1``):
  its effective weight ``w[o, i, k] = g[k] v[o, i, k] / ||v[:, :, k]||`` is
  computed once here, in float64, and stored as a plain ``kernel``.
* Keys may be bare (``feature_extractor.…``, from ``Wav2Vec2Model``) or
  prefixed with the family's name (``wav2vec2.…``, ``hubert.…``,
  ``wavlm.…``, ``data2vec_audio.…``, from ``…ForPreTraining`` / ``ForCTC`` /
  classification checkpoints). WavLM's relative position table, HF's
  ``encoder.layers.0.attention.rel_attn_embed.weight`` ``[buckets, heads]``,
  is the encoder's ``rel_attn_embed`` (not transposed). Heads (quantizer,
  ``project_q``, ``project_hid``, ``lm_head``, ``masked_spec_embed``,
  classifier, projector, …) are ignored; any other missing or unexpected
  key, or a shape that does not fit ``config.json``, is an error listing
  them all.
* The transformer layers are stacked: HF's ``encoder.layers.{i}.…``
  arrays (converted as above) become row ``i`` of ``encoder/layers/…``,
  whose leading axis is ``num_hidden_layers`` (the model scans over it).
* Every array becomes float32 (float16/bfloat16 checkpoints included).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import struct
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import safetensors.numpy

from fairser_jax.wav2vec2.model import (
    Wav2Vec2Config,
    Wav2Vec2Model,
    min_input_length,
)

__all__ = [
    "BUILTIN_CHECKPOINTS",
    "BUILTIN_CONFIGS",
    "DEFAULT_PREPROCESSOR",
    "LoadedCheckpoint",
    "convert_state_dict",
    "load",
    "param_shapes",
    "random_checkpoint",
    "read_state_dict",
    "resolve",
]

#: What facebook/wav2vec2-base's ``preprocessor_config.json`` says; also the
#: defaults of HF's ``Wav2Vec2FeatureExtractor`` (missing keys take these).
DEFAULT_PREPROCESSOR: dict[str, Any] = {
    "feature_extractor_type": "Wav2Vec2FeatureExtractor",
    "feature_size": 1,
    "sampling_rate": 16000,
    "padding_value": 0.0,
    "padding_side": "right",
    "do_normalize": True,
    "return_attention_mask": False,
}

#: Architectures of the built-in random checkpoints.
BUILTIN_CONFIGS: dict[str, Wav2Vec2Config] = {
    # facebook/wav2vec2-base's architecture (the HF defaults).
    "random-base": Wav2Vec2Config(),
    # Same family, frame rate and receptive field; tiny widths and depth.
    "random-tiny": Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    ),
}

#: Names ``load`` accepts besides paths and hub names: seeded random weights.
BUILTIN_CHECKPOINTS = tuple(BUILTIN_CONFIGS)

#: State-dict prefix of the backbone in a checkpoint with heads, by family.
_PREFIXES = {
    "wav2vec2": "wav2vec2.",
    "hubert": "hubert.",
    "wavlm": "wavlm.",
    "data2vec-audio": "data2vec_audio.",
}
_REL_ATTN = ("encoder", "rel_attn_embed")
_REL_ATTN_HF = "encoder.layers.0.attention.rel_attn_embed.weight"
# Parameters outside the encoder: heads of ForPreTraining, ForCTC,
# ForSequenceClassification, ForAudioFrameClassification, ForXVector, and
# the SpecAugment embedding (unused at inference).
_HEAD_PREFIXES = (
    "quantizer.",
    "project_q.",
    "project_hid.",
    "lm_head.",
    "classifier.",
    "projector.",
    "tdnn.",
    "objective.",
)
_HEAD_NAMES = ("masked_spec_embed", "layer_weights")
# ForXVector has its own top-level ``feature_extractor`` Linear; outside the
# ``wav2vec2.`` prefix that name is a head, inside it the conv encoder.
_PREFIXED_ONLY_HEAD_PREFIXES = ("feature_extractor.",)

_POS_CONV = ("encoder", "pos_conv_embed", "conv", "kernel")
# Flax path of the stacked transformer layers; one layer of it is named
# ("encoder", "layers_{i}", ...) while converting (HF's encoder.layers.{i}).
_LAYERS = ("encoder", "layers")
_LAYER_NAME = re.compile(r"layers_(\d+)")
_POS_CONV_HF = "encoder.pos_conv_embed.conv."
_WEIGHT_NORM_STYLES = (
    ("parametrizations.weight.original0", "parametrizations.weight.original1"),
    ("weight_g", "weight_v"),
)

_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
}


@dataclasses.dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint ready for :class:`Wav2Vec2Model`.

    Attributes:
      config: the architecture (from ``config.json``).
      params: Flax parameter tree (float32 ``jax.Array`` leaves); call the
        model as ``Wav2Vec2Model(config).apply({"params": params}, x, mask)``.
      preprocessor: ``preprocessor_config.json`` with
        :data:`DEFAULT_PREPROCESSOR` filling missing keys (``do_normalize``,
        ``sampling_rate``, ``return_attention_mask``, …).
    """

    config: Wav2Vec2Config
    params: dict[str, Any]
    preprocessor: dict[str, Any]


def param_shapes(config: Wav2Vec2Config) -> dict[str, Any]:
    """The Flax parameter tree of ``config``, as ``jax.ShapeDtypeStruct``s."""
    model = Wav2Vec2Model(config)
    dummy = jax.ShapeDtypeStruct((1, min_input_length(config)), jnp.float32)
    return jax.eval_shape(model.init, jax.random.key(0), dummy)["params"]


def _per_layer_leaves(
    shapes: Mapping[str, Any],
) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    """``(path, shape)`` of every parameter, one entry per encoder layer.

    A stacked leaf ``encoder/layers/…`` of shape ``[L, *s]`` becomes ``L``
    entries ``("encoder", "layers_{i}", …)`` of shape ``s``. Entries are
    sorted by path: the order in which ``jax.tree`` flattens a tree with
    one ``layers_{i}`` subtree per layer.
    """
    leaves = []
    for key_path, spec in jax.tree_util.tree_flatten_with_path(shapes)[0]:
        path = tuple(k.key for k in key_path)
        if path[:2] == _LAYERS:
            for i in range(spec.shape[0]):
                leaves.append(
                    (("encoder", f"layers_{i}", *path[2:]), spec.shape[1:])
                )
        else:
            leaves.append((path, tuple(spec.shape)))
    return sorted(leaves)


def _nest(flat: Mapping[tuple[str, ...], np.ndarray]) -> dict[str, Any]:
    """Nested parameter tree from per-layer paths, encoder layers stacked.

    The inverse of :func:`_per_layer_leaves`: the arrays of
    ``("encoder", "layers_{i}", *rest)`` are stacked (in ``i`` order) into
    ``("encoder", "layers", *rest)`` ``[L, *s]``.
    """
    per_layer: dict[tuple[str, ...], dict[int, np.ndarray]] = {}
    params: dict[str, Any] = {}

    def put(path: tuple[str, ...], array: np.ndarray) -> None:
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = array

    for path, array in flat.items():
        match = (
            _LAYER_NAME.fullmatch(path[1])
            if len(path) > 2 and path[0] == _LAYERS[0]
            else None
        )
        if match:
            per_layer.setdefault(path[2:], {})[int(match.group(1))] = array
        else:
            put(path, array)
    for rest, layers in per_layer.items():
        put(
            (*_LAYERS, *rest),
            np.stack([layers[i] for i in range(len(layers))]),
        )
    return params


def _hf_key(path: tuple[str, ...]) -> str:
    """HF state-dict key of the (per-layer) Flax parameter at ``path``."""
    parts = [re.sub(r"^(conv_layers|layers)_(\d+)$", r"\1.\2", p) for p in path]
    leaf = {"kernel": "weight", "scale": "weight"}.get(parts[-1], parts[-1])
    return ".".join([*parts[:-1], leaf])


def _is_head(key: str, prefixed: bool) -> bool:
    prefixes = _HEAD_PREFIXES
    if prefixed:
        prefixes = prefixes + _PREFIXED_ONLY_HEAD_PREFIXES
    return key in _HEAD_NAMES or key.startswith(prefixes)


def _fold_weight_norm(g: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Effective weight of ``weight_norm(conv, dim=2)``: ``g v / ||v||``.

    ``g`` is ``[1, 1, K]``, ``v`` ``[out, in/groups, K]``; the norm runs over
    the first two axes, one per kernel tap.
    """
    v64 = v.astype(np.float64)
    norm = np.sqrt(np.sum(v64**2, axis=(0, 1), keepdims=True))
    return (g.astype(np.float64) * v64 / norm).astype(np.float32)


def convert_state_dict(
    state_dict: Mapping[str, Any],
    config: Wav2Vec2Config,
    *,
    source: str = "state dict",
) -> dict[str, Any]:
    """Converts an HF PyTorch state dict to the Flax param tree.

    Args:
      state_dict: key -> array (NumPy, or anything ``np.asarray`` takes), bare
        or prefixed keys (``wav2vec2.``, ``hubert.``, … as the family of
        ``config`` has them), heads allowed (ignored).
      config: the architecture the keys must fit.
      source: what to name in error messages (e.g. the file).

    Returns:
      Nested dict of float32 NumPy arrays, the tree of :func:`param_shapes`
      (encoder layers stacked along a leading axis).

    Raises:
      ValueError: listing every missing key, unexpected key and shape that
        does not fit ``config``.
    """
    family_prefix = _PREFIXES[config.model_type]
    prefixed = any(k.startswith(family_prefix) for k in state_dict)
    backbone: dict[str, Any] = {}
    unexpected: list[str] = []
    for key, value in state_dict.items():
        if prefixed:
            if key.startswith(family_prefix):
                inner = key[len(family_prefix) :]
                if inner not in _HEAD_NAMES:
                    backbone[inner] = value
            elif not _is_head(key, prefixed=True):
                unexpected.append(key)
        elif not _is_head(key, prefixed=False):
            backbone[key] = value
    prefix = family_prefix if prefixed else ""

    missing: list[str] = []
    bad_shapes: list[str] = []
    flat: dict[tuple[str, ...], np.ndarray] = {}
    for path, shape in _per_layer_leaves(param_shapes(config)):
        if path == _POS_CONV:
            array, names = _pos_conv_weight(backbone)
            if array is None:
                missing.extend(prefix + n for n in names)
                continue
            hf_name = names[0]
        elif path == _REL_ATTN:
            hf_name = _REL_ATTN_HF
            if hf_name not in backbone:
                missing.append(prefix + hf_name)
                continue
            array = np.asarray(backbone.pop(hf_name), np.float32)
        else:
            hf_name = _hf_key(path)
            if hf_name not in backbone:
                missing.append(prefix + hf_name)
                continue
            array = np.asarray(backbone.pop(hf_name), np.float32)
        if path == _REL_ATTN:
            pass  # an embedding table: [buckets, heads] in both layouts
        elif array.ndim == 3:
            array = array.transpose(2, 1, 0)
        elif array.ndim == 2:
            array = array.T
        if array.shape != shape:
            bad_shapes.append(
                f"{prefix}{hf_name}: Flax shape {array.shape}, config.json "
                f"implies {shape}"
            )
            continue
        flat[path] = np.ascontiguousarray(array, np.float32)
    unexpected.extend(prefix + k for k in backbone)

    if missing or unexpected or bad_shapes:
        family = config.model_type
        lines = [f"{source} does not fit the {family} config:"]
        if missing:
            lines.append(f"missing keys ({len(missing)}): {sorted(missing)}")
        if unexpected:
            lines.append(
                f"unexpected keys ({len(unexpected)}): {sorted(unexpected)}"
            )
        if bad_shapes:
            lines.append("shape mismatches: " + "; ".join(bad_shapes))
        lines.append(
            "Check that config.json belongs to these weights (its "
            f"model_type says {family!r})."
        )
        raise ValueError("\n".join(lines))

    return _nest(flat)


def _pos_conv_weight(
    backbone: dict[str, Any],
) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Pops the positional conv weight (any style); ``[out, in/g, K]``."""
    for g_name, v_name in _WEIGHT_NORM_STYLES:
        g_key, v_key = _POS_CONV_HF + g_name, _POS_CONV_HF + v_name
        if g_key in backbone and v_key in backbone:
            g = np.asarray(backbone.pop(g_key), np.float32)
            v = np.asarray(backbone.pop(v_key), np.float32)
            return _fold_weight_norm(g, v), (v_key,)
    plain = _POS_CONV_HF + "weight"
    if plain in backbone:
        return np.asarray(backbone.pop(plain), np.float32), (plain,)
    g_name, v_name = _WEIGHT_NORM_STYLES[0]
    return None, (_POS_CONV_HF + g_name, _POS_CONV_HF + v_name)


def _read_json(path: pathlib.Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})."
        ) from e


def _read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Reads one safetensors file into NumPy arrays (bfloat16 included).

    ``safetensors.numpy`` cannot build bfloat16 arrays, so files holding
    any are parsed directly (8-byte header size, JSON header, raw data).
    """
    with open(path, "rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_size))
    header.pop("__metadata__", None)
    if not any(h["dtype"] == "BF16" for h in header.values()):
        return safetensors.numpy.load_file(str(path))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_size)
    out = {}
    for name, info in header.items():
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise ValueError(
                f"{path}: tensor {name!r} has dtype {info['dtype']}; "
                "expected floating-point weights."
            )
        start, end = info["data_offsets"]
        raw = np.asarray(data[start:end]).view(
            _SAFETENSORS_DTYPES[info["dtype"]]
        )
        out[name] = raw.reshape(info["shape"])
    return out


def _read_pickle(path: pathlib.Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise ValueError(
            f"{path} is a PyTorch pickle; reading it needs PyTorch "
            "(pip install torch), or convert the checkpoint to "
            "model.safetensors."
        ) from e
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {
        k: v.detach().to(torch.float32).numpy()
        for k, v in state.items()
        if isinstance(v, torch.Tensor)
    }


def _shard_files(index_path: pathlib.Path) -> list[pathlib.Path]:
    weight_map = _read_json(index_path).get("weight_map")
    if not isinstance(weight_map, dict):
        raise ValueError(f"{index_path}: no 'weight_map' object.")
    return [index_path.parent / f for f in sorted(set(weight_map.values()))]


def read_state_dict(
    directory: str | os.PathLike, *, allow_pickle: bool = False
) -> dict[str, np.ndarray]:
    """Reads the PyTorch state dict of a checkpoint directory.

    Looks for, in order: ``model.safetensors``,
    ``model.safetensors.index.json`` (shards), then ``pytorch_model.bin`` /
    ``pytorch_model.bin.index.json``, which are pickles and are only read
    when ``allow_pickle`` is true.

    Raises:
      ValueError: no weights file, or only a pickle without opt-in.
    """
    directory = pathlib.Path(directory)
    single = directory / "model.safetensors"
    if single.is_file():
        return _read_safetensors(single)
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        state: dict[str, np.ndarray] = {}
        for shard in _shard_files(index):
            state.update(_read_safetensors(shard))
        return state
    pickles = [
        p
        for p in (
            directory / "pytorch_model.bin",
            directory / "pytorch_model.bin.index.json",
        )
        if p.is_file()
    ]
    if not pickles:
        present = sorted(p.name for p in directory.iterdir())
        raise ValueError(
            f"{directory} has no model.safetensors (or shards) and no "
            f"pytorch_model.bin; it holds {present}."
        )
    if not allow_pickle:
        raise ValueError(
            f"{pickles[0]} is a Python pickle, which can run arbitrary code "
            "when loaded, and the directory has no model.safetensors. If "
            "you trust its source, opt in with allow_pickle=True (the "
            "extract command's allow-pickle flag); otherwise convert it to "
            "model.safetensors with transformers' save_pretrained."
        )
    if pickles[0].name.endswith(".json"):
        state = {}
        for shard in _shard_files(pickles[0]):
            state.update(_read_pickle(shard))
        return state
    return _read_pickle(pickles[0])


def _not_found(name: str, cache_dir: Any) -> str:
    where = cache_dir if cache_dir is not None else "the default HF cache"
    return (
        f"checkpoint {name!r} is neither a local directory nor a model in "
        f"the Hugging Face cache ({where}; set HF_HOME or HF_HUB_CACHE to "
        "use another). fairser_jax never downloads. On a machine with "
        f"network access run `hf download {name} config.json "
        "preprocessor_config.json model.safetensors` (then copy the cache "
        "or use --local-dir DIR and pass DIR), or pass a directory holding "
        "config.json and model.safetensors."
    )


def resolve(
    name_or_path: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> pathlib.Path:
    """Finds the checkpoint directory: a local path or a cached hub repo.

    A hub name (``facebook/wav2vec2-base``) resolves through
    ``huggingface_hub.snapshot_download(local_files_only=True)``, which only
    looks in the local cache (``cache_dir``, else ``HF_HUB_CACHE``).

    Raises:
      ValueError: the path does not exist / the name is not cached, with
        what to do about it.
    """
    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    path = pathlib.Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists():
        raise ValueError(
            f"{path} is a file; pass the directory that holds config.json "
            "and model.safetensors."
        )
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise ValueError(f"checkpoint directory {path} does not exist.")
    try:
        snapshot = huggingface_hub.snapshot_download(
            repo_id=name, cache_dir=cache_dir, local_files_only=True
        )
    except (
        hub_errors.LocalEntryNotFoundError,
        hub_errors.HFValidationError,
        hub_errors.EntryNotFoundError,
        hub_errors.RepositoryNotFoundError,
        hub_errors.RevisionNotFoundError,
        FileNotFoundError,
    ) as e:
        raise ValueError(_not_found(name, cache_dir)) from e
    return pathlib.Path(snapshot)


def load(
    name_or_path: str | os.PathLike,
    *,
    allow_pickle: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> LoadedCheckpoint:
    """Loads an HF checkpoint (any of ``model.MODEL_TYPES``) as Flax
    parameters.

    Args:
      name_or_path: a directory with ``config.json`` and the weights, a hub
        name already in the HF cache, or one of :data:`BUILTIN_CHECKPOINTS`
        (``random-base``, ``random-tiny``: seed-0 random weights).
      allow_pickle: read ``pytorch_model.bin`` when there is no safetensors
        file (a pickle: only for trusted files).
      cache_dir: HF cache to look in instead of the default.

    Returns:
      :class:`LoadedCheckpoint`.

    Raises:
      ValueError: missing files, unsupported config, pickle without opt-in,
        or keys that do not fit (each message names the file and the fix).
    """
    name = str(name_or_path)
    if name in BUILTIN_CONFIGS and not pathlib.Path(name).exists():
        return random_checkpoint(name)
    directory = resolve(name_or_path, cache_dir=cache_dir)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ValueError(
            f"{directory} has no config.json; a checkpoint directory needs "
            "config.json next to model.safetensors."
        )
    try:
        config = Wav2Vec2Config.from_hf(_read_json(config_path))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{config_path}: {e}") from e
    state = read_state_dict(directory, allow_pickle=allow_pickle)
    params = convert_state_dict(state, config, source=str(directory))
    preprocessor = dict(DEFAULT_PREPROCESSOR)
    pre_path = directory / "preprocessor_config.json"
    if pre_path.is_file():
        preprocessor.update(_read_json(pre_path))
    return LoadedCheckpoint(
        config=config,
        params=jax.tree.map(jnp.asarray, params),
        preprocessor=preprocessor,
    )


def _random_leaf(
    rng: np.random.Generator, path: tuple[str, ...], shape: tuple[int, ...]
) -> np.ndarray:
    """One parameter drawn the way HF's ``_init_weights`` initialises it."""
    if path[-1] == "scale":
        return np.ones(shape, np.float32)
    if path[-1] == "bias":
        return np.zeros(shape, np.float32)
    if path[:2] == ("feature_projection", "projection"):
        bound = shape[0] ** -0.5  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    if path[:2] == ("encoder", "pos_conv_embed"):
        std = 2.0 * (1.0 / (shape[0] * shape[2])) ** 0.5
    elif len(shape) == 3:  # feature-encoder conv: Kaiming normal
        std = (2.0 / (shape[0] * shape[1])) ** 0.5
    else:  # Linear layers
        std = 0.02
    return rng.standard_normal(shape, np.float32) * np.float32(std)


def random_checkpoint(name: str, seed: int = 0) -> LoadedCheckpoint:
    """A built-in checkpoint with seeded random weights (no files needed).

    ``random-base`` has facebook/wav2vec2-base's architecture (group-norm
    family, 12 layers, 768 hidden, 94.4 M parameters); ``random-tiny`` the
    same family, frame rate (20 ms) and receptive field (400 samples) with
    32 conv channels, 2 layers of width 32 and 4 heads, for tests and demos.
    Both come with facebook/wav2vec2-base's preprocessor config
    (``do_normalize=True``, ``return_attention_mask=False``).

    Weights follow HF's initialisation (Linear ~ N(0, 0.02), Kaiming-normal
    convolutions, unit norms) drawn with NumPy's PCG64 from ``seed``, so
    they are the same on every platform and need no compilation.

    Args:
      name: one of :data:`BUILTIN_CHECKPOINTS`.
      seed: the same seed gives the same weights.

    Raises:
      ValueError: unknown ``name``.
    """
    if name not in BUILTIN_CONFIGS:
        raise ValueError(
            f"unknown built-in checkpoint {name!r}; choose one of "
            f"{list(BUILTIN_CHECKPOINTS)}."
        )
    config = BUILTIN_CONFIGS[name]
    rng = np.random.default_rng(seed)
    # Drawn one layer at a time, in the order of a tree with one subtree per
    # layer, so the weights of a seed do not depend on the stacked layout.
    flat = {
        path: _random_leaf(rng, path, shape)
        for path, shape in _per_layer_leaves(param_shapes(config))
    }
    params = jax.tree.map(jnp.asarray, _nest(flat))
    return LoadedCheckpoint(
        config=config, params=params, preprocessor=dict(DEFAULT_PREPROCESSOR)
    )
