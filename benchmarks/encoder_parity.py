r"""Parity of the Flax encoders with HF PyTorch, per family and layout.

    python benchmarks/encoder_parity.py

For each encoder family (wav2vec2, HuBERT, WavLM, data2vec-audio) and each
of its layouts (base: group-norm feature encoder, post-LN; stable:
layer-norm encoder, pre-LN), a small random HF model (hidden size 32, two
layers, every parameter perturbed so none is 0 or 1) is written with
``save_pretrained``, read with ``weights.load`` and run on utterances of
40, 401 and 2,000 samples. Printed per case, the largest absolute
difference of:

* ``alone``: every hidden state and the last one, each utterance alone,
  against HF PyTorch on it alone;
* ``padded``: the valid frames of the three utterances batched with loud
  noise as padding (masked), against the same utterances alone.

The tests assert both within 1e-4 (tests/test_wav2vec2_model.py); this
script prints the measured values.
"""

import pathlib
import sys
import tempfile

import numpy as np
import torch
import transformers

from fairser_jax.wav2vec2 import model as w2v
from fairser_jax.wav2vec2 import weights

# The encoder tests' sizes: this script prints what they assert.
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tests"))
from conftest import TINY_ENCODER as _SMALL  # noqa: E402

_STABLE = dict(feat_extract_norm="layer", do_stable_layer_norm=True)
_BUCKETS = dict(num_buckets=16, max_bucket_distance=40)
CASES = {
    "wav2vec2 base": (
        transformers.Wav2Vec2Config,
        transformers.Wav2Vec2Model,
        dict(num_conv_pos_embeddings=16),
    ),
    "wav2vec2 stable": (
        transformers.Wav2Vec2Config,
        transformers.Wav2Vec2Model,
        dict(num_conv_pos_embeddings=7, conv_bias=True, **_STABLE),
    ),
    "hubert base": (
        transformers.HubertConfig,
        transformers.HubertModel,
        dict(num_conv_pos_embeddings=16, feat_proj_layer_norm=False),
    ),
    "hubert stable": (
        transformers.HubertConfig,
        transformers.HubertModel,
        dict(num_conv_pos_embeddings=7, conv_bias=True, **_STABLE),
    ),
    "wavlm base": (
        transformers.WavLMConfig,
        transformers.WavLMModel,
        dict(num_conv_pos_embeddings=16, **_BUCKETS),
    ),
    "wavlm stable": (
        transformers.WavLMConfig,
        transformers.WavLMModel,
        dict(num_conv_pos_embeddings=7, **_STABLE, **_BUCKETS),
    ),
    "data2vec-audio base": (
        transformers.Data2VecAudioConfig,
        transformers.Data2VecAudioModel,
        dict(num_conv_pos_embeddings=3, conv_pos_kernel_size=6),
    ),
}
LENGTHS = (40, 401, 2000)


def _states(out) -> list[np.ndarray]:
    return [np.asarray(out.last_hidden_state)] + [
        np.asarray(h) for h in out.hidden_states
    ]


def measure(config_class, model_class, kwargs) -> tuple[float, float]:
    """(max diff alone vs HF, max diff padded vs alone) of one case."""
    torch.manual_seed(0)
    hf = model_class(config_class(**_SMALL, **kwargs)).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.2 * torch.randn_like(p))
    with tempfile.TemporaryDirectory() as directory:
        hf.save_pretrained(directory)
        checkpoint = weights.load(directory)
    model = w2v.Wav2Vec2Model(checkpoint.config)
    params = {"params": checkpoint.params}
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in LENGTHS]
    alone, worst_hf = [], 0.0
    for wave in waves:
        with torch.no_grad():
            out = hf(torch.from_numpy(wave[None]), output_hidden_states=True)
        ref = [out.last_hidden_state.numpy()] + [
            h.numpy() for h in out.hidden_states
        ]
        ours = _states(
            model.apply(params, wave[None], output_hidden_states=True)
        )
        worst_hf = max(
            worst_hf,
            max(
                float(np.abs(a - b).max())
                for a, b in zip(ours, ref, strict=True)
            ),
        )
        alone.append(ours)
    longest = max(LENGTHS)
    batch = (10.0 * rng.standard_normal((len(waves), longest))).astype(
        np.float32
    )
    mask = np.zeros(batch.shape, bool)
    for i, wave in enumerate(waves):
        batch[i, : len(wave)] = wave
        mask[i, : len(wave)] = True
    padded = _states(
        model.apply(params, batch, mask, output_hidden_states=True)
    )
    worst_pad = 0.0
    for i, ours in enumerate(alone):
        frames = ours[0].shape[1]
        worst_pad = max(
            worst_pad,
            max(
                float(np.abs(p[i, :frames] - a[0]).max())
                for p, a in zip(padded, ours, strict=True)
            ),
        )
    return worst_hf, worst_pad


def main() -> None:
    print(
        f"transformers {transformers.__version__}, torch {torch.__version__}; "
        f"utterances of {LENGTHS} samples; max |difference| over every "
        "hidden state"
    )
    print(f"{'case':22} {'alone vs HF':>12} {'padded vs alone':>16}")
    for name, (config_class, model_class, kwargs) in CASES.items():
        hf_diff, pad_diff = measure(config_class, model_class, kwargs)
        print(f"{name:22} {hf_diff:12.1e} {pad_diff:16.1e}")


if __name__ == "__main__":
    main()
