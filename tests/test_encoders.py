"""HuBERT, WavLM and data2vec-audio checkpoints through the commands.

Random HF checkpoints of each family, written by ``save_pretrained``, go
through `extract` (the feature store equals HF PyTorch's pooled
``last_hidden_state`` of each utterance alone) and, for WavLM, through
`main` and `predict` on the demo corpus. The layer-by-layer parity of each
family is in test_wav2vec2_model.py and test_extraction.py.
"""

import csv
import pathlib

import numpy as np
import pytest
import soundfile
import torch
import transformers
from conftest import run_module as _run
from test_extraction import hf_model

from fairser_jax.data import features as features_lib
from fairser_jax.data import iemocap

pytestmark = pytest.mark.slow


def _checkpoint(family: str, directory: pathlib.Path):
    model = hf_model(family)
    model.save_pretrained(directory)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(
        directory
    )
    return model


def _hf_pooled(model, wav: pathlib.Path) -> np.ndarray:
    raw, rate = soundfile.read(wav, dtype="float32")
    assert rate == 16_000
    inputs = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)(
        raw, sampling_rate=16_000, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = model(inputs["input_values"]).last_hidden_state
    return hidden[0].mean(0).numpy()


@pytest.mark.parametrize("family", ["hubert", "data2vec-audio"])
def test_extract_cli_with_a_checkpoint_of_each_family(
    family, demo_root, tmp_path
):
    model = _checkpoint(family, tmp_path / "ckpt")
    out = tmp_path / "store.npz"
    proc = _run(
        "fairser_jax.extract",
        f"--corpus={demo_root}",
        f"--checkpoint={tmp_path / 'ckpt'}",
        f"--out={out}",
        "--batch_seconds=8",
    )
    assert f"{family}: 20/20 utt" in proc.stderr, proc.stderr[-2000:]
    store = features_lib.load(out)
    assert store.manifest["encoder"] == family
    assert store.manifest["encoder_layout"] == "base"
    wavs = {
        u.id: u.wav_path for u in iemocap.read_corpus(demo_root) if u.wav_exists
    }
    assert list(store.ids) == list(wavs)
    assert store.features.shape == (20, 32)
    for row in (0, 7, 19):
        np.testing.assert_allclose(
            store.features[row],
            _hf_pooled(model, wavs[store.ids[row]]),
            atol=1e-4,
            rtol=0,
        )


def test_main_and_predict_with_a_wavlm_checkpoint(tmp_path):
    """`main` with --config.features.checkpoint=<a WavLM folder> trains and
    reports; its store records the family and holds HF's features;
    `predict` on that workdir gives every recording a probability per
    emotion."""
    model = _checkpoint("wavlm-base", tmp_path / "wavlm")
    workdir = tmp_path / "w"
    _run(
        "fairser_jax.main",
        "--config=configs/test.py",
        f"--workdir={workdir}",
        f"--config.features.checkpoint={tmp_path / 'wavlm'}",
        "--config.variants=('dnn',)",
        "--config.train.epochs=2",
        "--config.report.figures=False",
    )
    assert (workdir / "report.md").is_file()
    store = features_lib.load(workdir / "features.npz")
    assert store.manifest["encoder"] == "wavlm"
    corpus = workdir / "corpus"
    for row in (0, 60):
        uid = store.ids[row]
        [wav] = corpus.glob(f"Session*/sentences/wav/*/{uid}.wav")
        np.testing.assert_allclose(
            store.features[row], _hf_pooled(model, wav), atol=1e-4, rtol=0
        )
    out = tmp_path / "p.csv"
    _run(
        "fairser_jax.predict",
        f"--workdir={workdir}",
        f"--audio={corpus}",
        f"--speaker_of={corpus / 'speakers.csv'}",
        "--min_speaker_utterances=9",
        f"--out={out}",
    )
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 120 * 2  # two emotions of configs/test.py
    assert {r["variant"] for r in rows} == {"dnn"}
    scores = np.array([float(r["probability"]) for r in rows])
    assert np.all((scores > 0) & (scores < 1))
