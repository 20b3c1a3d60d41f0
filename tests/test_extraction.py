"""Pooled features: batch invariance, HF parity, errors, cache, CLI."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
import soundfile
import torch
import transformers
from conftest import hf_classes, slow_where

from fairser_jax.data import features as features_lib
from fairser_jax.data import iemocap
from fairser_jax.wav2vec2 import audio, extraction, weights

# HF-style tiny configs of both wav2vec2 layouts and of each other encoder
# family; the conv stack keeps wav2vec2's geometry (400-sample receptive
# field, 320-sample hop).
_TINY_HF = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 48,
    "conv_dim": [16] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
}
HF_FAMILIES = {
    "base": dict(_TINY_HF, feat_extract_norm="group"),
    "stable": dict(
        _TINY_HF,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
    ),
    "hubert": dict(_TINY_HF, model_type="hubert"),
    # Few buckets: the 1-63 frames here reach the log-spaced ones.
    "wavlm-base": dict(_TINY_HF, model_type="wavlm", num_buckets=16),
    "wavlm-stable": dict(
        _TINY_HF,
        model_type="wavlm",
        num_buckets=16,
        max_bucket_distance=40,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    ),
    "data2vec-audio": dict(
        _TINY_HF, model_type="data2vec-audio", num_conv_pos_embeddings=3
    ),
}


def hf_model(family: str) -> torch.nn.Module:
    """A random HF model of ``HF_FAMILIES[family]`` (seed 0)."""
    kwargs = dict(HF_FAMILIES[family])
    config_class, model_class = hf_classes(kwargs.pop("model_type", "wav2vec2"))
    torch.manual_seed(0)
    return model_class(config_class(**kwargs)).eval()


def _voice(rate: int, seconds: float, f0: float, seed: int) -> np.ndarray:
    """Band-limited (< 7 kHz) harmonic signal with formants and 4 Hz AM.

    Evaluated from its closed form, so the same continuous signal can be
    sampled at any rate. 50 ms raised-cosine fades avoid edge clicks.
    """
    t = np.arange(int(round(rate * seconds))) / rate
    rng = np.random.default_rng(seed)
    x = np.zeros_like(t)
    for k in range(1, int(7000 // f0) + 1):
        f = k * f0
        amp = (
            np.exp(-(((f - 700) / 300) ** 2))
            + 0.6 * np.exp(-(((f - 1800) / 400) ** 2))
            + 0.3 * np.exp(-(((f - 2800) / 500) ** 2))
            + 0.02
        )
        x += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    ramp = np.minimum(1.0, np.minimum(t, seconds - t) / 0.05)
    return 0.1 * x * np.sin(np.pi / 2 * ramp) ** 2


def _write(path: pathlib.Path, data: np.ndarray, rate: int = 16_000):
    soundfile.write(path, np.asarray(data, np.float32), rate, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def tiny_checkpoint():
    return weights.random_checkpoint("random-tiny", seed=0)


@pytest.fixture(scope="module")
def tiny_extractor(tiny_checkpoint):
    return extraction.Extractor(tiny_checkpoint, batch_seconds=6.0)


# The other families are in the full suite only (`slow`).
@pytest.fixture(
    scope="module",
    params=slow_where(
        sorted(HF_FAMILIES), lambda f: "model_type" in HF_FAMILIES[f]
    ),
)
def hf_checkpoint(request, tmp_path_factory):
    """(family, torch model, our LoadedCheckpoint) from save_pretrained."""
    model = hf_model(request.param)
    directory = tmp_path_factory.mktemp(f"hf_{request.param}")
    model.save_pretrained(directory)
    transformers.Wav2Vec2FeatureExtractor(
        do_normalize=True, return_attention_mask=True
    ).save_pretrained(directory)
    return request.param, model, weights.load(directory)


# ------------------------------------------------------------------ pooling


def test_masked_mean_matches_numpy_loop():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 7, 5)).astype(np.float32)
    counts = [7, 3, 1]
    mask = np.arange(7)[None, :] < np.asarray(counts)[:, None]
    got = np.asarray(extraction.masked_mean(hidden, mask))
    for b, n in enumerate(counts):
        np.testing.assert_allclose(got[b], hidden[b, :n].mean(0), rtol=1e-6)
    empty = np.asarray(extraction.masked_mean(hidden, np.zeros((3, 7), bool)))
    np.testing.assert_array_equal(empty, np.zeros((3, 5), np.float32))


def test_min_input_samples_is_one_conv_frame(tiny_checkpoint):
    # The smallest length HF's output-length formula gives a frame for.
    hf = transformers.Wav2Vec2Model(
        transformers.Wav2Vec2Config(**HF_FAMILIES["base"])
    )
    frames = hf._get_feat_extract_output_lengths(torch.arange(1, 1000))
    expected = int(torch.nonzero(frames > 0)[0]) + 1
    got = extraction.min_input_samples(tiny_checkpoint.config)
    assert got == expected == 400


def test_layer_out_of_range_is_an_error(tiny_checkpoint):
    with pytest.raises(ValueError, match=r"layer=3 .*\[-3, 2\]"):
        extraction.Extractor(tiny_checkpoint, layer=3)


@pytest.mark.parametrize("layer", [-1, 1])
def test_batch_invariance_random_tiny(tiny_checkpoint, tiny_extractor, layer):
    # An utterance's pooled feature, alone at its exact length, equals its
    # row in a padded batch with longer and shorter neighbours and filler.
    extractor = (
        tiny_extractor
        if layer == -1
        else extraction.Extractor(tiny_checkpoint, layer=layer)
    )
    rng = np.random.default_rng(1)
    waves = [
        audio.zero_mean_unit_var(rng.normal(size=n)) for n in (9000, 12345, 401)
    ]
    values, mask = audio.pad_batch(waves, padded_length=16_080, batch_size=4)
    batched = np.asarray(extractor.pooled(values, mask))
    # Rows 0 and 2 (one compile each): a mid-length and a one-frame input.
    for row, wave in [(0, waves[0]), (2, waves[2])]:
        alone = np.asarray(
            extractor.pooled(wave[None], np.ones((1, wave.shape[0]), bool))
        )[0]
        np.testing.assert_allclose(batched[row], alone, atol=1e-4, rtol=0)
    # The check can fail: a neighbour's feature is far from this one.
    assert np.abs(batched[0] - batched[1]).max() > 1e-2


@pytest.mark.parametrize("layer", [-1, 1])
def test_run_matches_hf_pytorch_alone(hf_checkpoint, tmp_path, layer):
    # Extractor.run pads several utterances into one batch; the reference
    # is HF PyTorch on each utterance alone (no padding, no mask) after
    # HF's own feature-extractor normalisation. Equality within 1e-4 is
    # both parity and batch invariance, for every family and layout.
    family, torch_model, loaded = hf_checkpoint
    lengths = (20_000, 7_777, 13_001, 401)
    rng = np.random.default_rng(2)
    paths = [
        _write(tmp_path / f"u{i}.wav", 0.1 * rng.normal(size=n))
        for i, n in enumerate(lengths)
    ]
    extractor = extraction.Extractor(loaded, layer=layer, batch_seconds=6.0)
    result = extractor.run([p.stem for p in paths], paths, progress=False)
    assert result.ids == [p.stem for p in paths]
    hf_fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)
    for row, path in enumerate(paths):
        raw, _ = soundfile.read(path, dtype="float32")
        inputs = hf_fe(raw, sampling_rate=16_000, return_tensors="pt")
        with torch.no_grad():
            out = torch_model(inputs["input_values"], output_hidden_states=True)
        hidden = (
            out.last_hidden_state if layer == -1 else out.hidden_states[layer]
        )
        reference = hidden[0].mean(0).numpy()
        np.testing.assert_allclose(
            result.features[row],
            reference,
            atol=1e-4,
            rtol=0,
            err_msg=f"{family} layer {layer} {path.name}",
        )


# --------------------------------------------------------------- resampling


def test_stereo_44k_matches_mono_16k(tiny_extractor, tmp_path):
    # The same continuous band-limited signal, once as a 44.1 kHz stereo
    # file whose channel average is the signal (L = s + d, R = s - d) and
    # once sampled directly at 16 kHz mono. After resampling the waveforms
    # differ by the filter's passband ripple (design ≤ 1.2e-4 of the
    # amplitude; measured 1.8e-5 after normalisation) and the pooled
    # features by 4.4e-6 (measured). We require 1e-4, the budget the
    # project allows for the model's own parity and batch invariance.
    seconds = 2.0  # 88 200 samples at 44.1 kHz → exactly 32 000 at 16 kHz
    s44, d44 = _voice(44_100, seconds, 140, 0), _voice(44_100, seconds, 230, 1)
    stereo = _write(
        tmp_path / "stereo44.wav", np.stack([s44 + d44, s44 - d44], 1), 44_100
    )
    mono = _write(tmp_path / "mono16.wav", _voice(16_000, seconds, 140, 0))
    left = _write(
        tmp_path / "left16.wav",
        _voice(16_000, seconds, 140, 0) + _voice(16_000, seconds, 230, 1),
    )
    prep = tiny_extractor.prep
    np.testing.assert_allclose(
        audio.load_waveform(stereo, prep),
        audio.load_waveform(mono, prep),
        atol=1.2e-4,
    )
    result = tiny_extractor.run(
        ["stereo", "mono", "left"], [stereo, mono, left], progress=False
    )
    f = result.features
    np.testing.assert_allclose(f[0], f[1], atol=1e-4, rtol=0)
    # A reader that kept one channel would be far off.
    assert np.abs(f[2] - f[1]).max() > 1e-2
    assert result.audio_seconds == pytest.approx(3 * seconds)


# ------------------------------------------------------------------- errors


@pytest.fixture()
def bad_files(tmp_path):
    rng = np.random.default_rng(3)
    good = _write(tmp_path / "good.wav", 0.1 * rng.normal(size=9000))
    other = _write(tmp_path / "other.wav", 0.1 * rng.normal(size=5000))
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio" * 50)
    nan = 0.1 * rng.normal(size=4000)
    nan[10] = np.nan
    bad = {
        "unreadable": garbage,
        "empty": _write(tmp_path / "empty.wav", np.zeros(0)),
        "non_finite": _write(tmp_path / "nan.wav", nan),
        "too_short": _write(tmp_path / "short.wav", np.ones(399) * 0.1),
    }
    return good, other, bad


@pytest.mark.parametrize(
    "reason", ["unreadable", "empty", "non_finite", "too_short"]
)
def test_bad_audio_error_names_file(tiny_extractor, bad_files, reason):
    good, other, bad = bad_files
    paths = [good, bad[reason], other]
    with pytest.raises(audio.AudioError, match=bad[reason].name) as info:
        tiny_extractor.run([p.stem for p in paths], paths, progress=False)
    assert info.value.reason == reason


def test_skip_bad_audio_reports_and_keeps_good(tiny_extractor, bad_files):
    good, other, bad = bad_files
    paths = [good, *bad.values(), other]
    ids = [p.stem for p in paths]
    result = tiny_extractor.run(ids, paths, skip_bad_audio=True, progress=False)
    assert result.ids == ["good", "other"]
    assert {s.reason for s in result.skipped} == set(bad)
    for item in result.skipped:
        assert pathlib.Path(item.path).name in item.message
    assert np.all(np.isfinite(result.features))
    clean = tiny_extractor.run(["good", "other"], [good, other], progress=False)
    np.testing.assert_allclose(result.features, clean.features, atol=1e-6)


# -------------------------------------------------------- driver and cache


@pytest.fixture()
def counted_extractor(monkeypatch, tiny_checkpoint):
    """Serves random-tiny from memory and counts model runs."""
    calls = []
    original = extraction.Extractor.run

    def run(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(extraction.Extractor, "run", run)
    monkeypatch.setattr(
        extraction, "load_checkpoint", lambda name, **_: tiny_checkpoint
    )
    return calls


def test_extract_corpus_cache_reuse_and_invalidation(
    demo_root, tmp_path, counted_extractor
):
    out = tmp_path / "features.npz"
    first = extraction.extract_corpus(
        demo_root, "random-tiny", out, progress=False
    )
    assert len(counted_extractor) == 1
    expected_ids = [
        u.id for u in iemocap.read_corpus(demo_root) if u.wav_exists
    ]
    assert list(first.ids) == expected_ids
    assert first.features.dtype == np.float32
    assert first.features.shape == (len(expected_ids), 32)
    manifest = first.manifest
    assert manifest["checkpoint"] == "random-tiny@seed0"
    assert manifest["layer"] == -1 and manifest["pooling"] == "mean"
    assert manifest["sample_rate"] == 16_000 and manifest["model_dim"] == 32
    utterances = [u for u in iemocap.read_corpus(demo_root) if u.wav_exists]
    assert manifest["corpus_fingerprint"] == features_lib.corpus_fingerprint(
        utterances
    )
    mtime = out.stat().st_mtime_ns

    # Same request: read back, the model is not run, the file not rewritten.
    again = extraction.extract_corpus(
        demo_root, "random-tiny", out, progress=False
    )
    assert len(counted_extractor) == 1
    assert out.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.features, first.features)

    # Another layer: the manifest differs, so the store is recomputed.
    other = extraction.extract_corpus(
        demo_root, "random-tiny", out, layer=1, progress=False
    )
    assert len(counted_extractor) == 2
    assert other.manifest["layer"] == 1
    assert np.abs(other.features - first.features).max() > 1e-3
    # And back: recomputed again, equal to the first extraction.
    back = extraction.extract_corpus(
        demo_root, "random-tiny", out, progress=False
    )
    assert len(counted_extractor) == 3
    np.testing.assert_allclose(back.features, first.features, atol=1e-6)


def test_extract_corpus_invalidated_by_changed_audio(
    tmp_path, counted_extractor
):
    rng = np.random.default_rng(4)
    paths = [
        _write(tmp_path / f"w{i}.wav", 0.1 * rng.normal(size=6000 + 999 * i))
        for i in range(3)
    ]
    out = tmp_path / "list.npz"
    first = extraction.extract_corpus(paths, "random-tiny", out, progress=False)
    assert list(first.ids) == ["w0", "w1", "w2"]
    extraction.extract_corpus(paths, "random-tiny", out, progress=False)
    assert len(counted_extractor) == 1
    _write(paths[1], 0.1 * rng.normal(size=7000))
    os.utime(paths[1], ns=(1, 1))  # a different file, whatever the clock
    changed = extraction.extract_corpus(
        paths, "random-tiny", out, progress=False
    )
    assert len(counted_extractor) == 2
    assert np.abs(changed.features[1] - first.features[1]).max() > 1e-3
    np.testing.assert_allclose(
        changed.features[0], first.features[0], atol=1e-6
    )


def test_extract_corpus_skip_and_report_then_strict(
    bad_files, tmp_path, counted_extractor
):
    good, other, bad = bad_files
    paths = [good, bad["non_finite"], other]
    out = tmp_path / "skip.npz"
    store = extraction.extract_corpus(
        paths, "random-tiny", out, skip_bad_audio=True, progress=False
    )
    assert list(store.ids) == ["good", "other"]
    assert [s["id"] for s in store.manifest["skipped"]] == ["nan"]
    assert "nan.wav" in store.manifest["skipped"][0]["message"]
    with np.load(out, allow_pickle=False) as npz:
        assert np.all(np.isfinite(npz["features"]))
    extraction.extract_corpus(
        paths, "random-tiny", out, skip_bad_audio=True, progress=False
    )
    assert len(counted_extractor) == 1  # reused
    # Without the flag the incomplete store is not good enough: recompute,
    # which stops at the bad file and names it.
    with pytest.raises(audio.AudioError, match="nan.wav"):
        extraction.extract_corpus(paths, "random-tiny", out, progress=False)
    assert len(counted_extractor) == 2


def test_wav_list_duplicate_stems_rejected(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = [
        _write(tmp_path / d / "same.wav", np.ones(800) * 0.1) for d in "ab"
    ]
    with pytest.raises(ValueError, match="same stem 'same'"):
        extraction.resolve_source(paths)


def test_checkpoint_id_tracks_directory_contents(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    first = extraction.checkpoint_id(tmp_path)
    assert first == extraction.checkpoint_id(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    assert extraction.checkpoint_id(tmp_path) != first
    assert extraction.checkpoint_id("random-base") == "random-base@seed0"


@pytest.mark.slow
def test_cli_end_to_end(demo_root, tmp_path):
    out = tmp_path / "cli.npz"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.extract",
            f"--corpus={demo_root}",
            "--checkpoint=random-tiny",
            f"--out={out}",
            "--batch_seconds=8",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out, allow_pickle=False) as store:
        ids = [str(i) for i in store["ids"]]
        feats = store["features"]
    expected = [u.id for u in iemocap.read_corpus(demo_root) if u.wav_exists]
    assert ids == expected and len(ids) == 20
    assert feats.dtype == np.float32 and feats.shape == (20, 32)
    assert np.all(np.isfinite(feats))
    # Not on a terminal, progress is log lines that reach the end.
    assert re.search(r"wav2vec2: 20/20 utt", proc.stderr), proc.stderr[-2000:]
    assert "\r" not in proc.stderr


@pytest.mark.parametrize("layer", [0, 1])
def test_truncated_model_gives_the_same_layer(layer):
    """Cutting the layers after `layer` does not change its features."""
    from fairser_jax.wav2vec2 import model as model_lib
    from fairser_jax.wav2vec2 import weights as weights_lib

    ckpt = weights_lib.random_checkpoint("random-tiny", seed=3)
    config, params = extraction.truncate(ckpt.config, ckpt.params, layer)
    assert config.num_hidden_layers == layer
    if layer == 0:
        assert "layers" not in params["encoder"]
    else:
        stacked = params["encoder"]["layers"]
        full_stack = ckpt.params["encoder"]["layers"]
        for cut, full in zip(
            jax.tree.leaves(stacked), jax.tree.leaves(full_stack), strict=True
        ):
            assert cut.shape == (layer, *full.shape[1:])
            np.testing.assert_array_equal(cut, full[:layer])
    wave = np.random.default_rng(0).normal(size=(2, 4000)).astype(np.float32)
    full = model_lib.Wav2Vec2Model(ckpt.config).apply(
        {"params": ckpt.params}, wave, None, output_hidden_states=True
    )
    cut = model_lib.Wav2Vec2Model(config).apply(
        {"params": params}, wave, None, output_hidden_states=True
    )
    np.testing.assert_allclose(
        cut.hidden_states[layer], full.hidden_states[layer], atol=1e-6
    )


# --- recordings longer than a window ---------------------------------------


@pytest.mark.parametrize("num_samples", [1, 999, 1000, 1001, 4321, 10_000])
def test_windows_tile_the_recording_with_context(num_samples):
    """Every sample position belongs to exactly one window's kept range,
    and a kept position has `context` samples of the window on both sides
    (except at the recording's ends)."""
    window, context = 1000, 150
    plan = extraction.window_plan(num_samples, window, context)
    owner = np.zeros(num_samples, int)
    for start, lo, hi in plan:
        assert start <= lo < hi <= max(start + window, num_samples)
        owner[lo:hi] += 1
        if lo > 0:
            assert lo - start >= context
        if hi < num_samples:
            assert start + window - hi >= context
    assert (owner == 1).all()
    assert plan[0][0] == 0 and plan[-1][0] + window >= num_samples


def test_a_long_recording_is_encoded_in_windows(tiny_checkpoint, tmp_path):
    """A 10-minute wav used to be one forward pass (50 GB for its attention)
    and crashed predict; now a recording longer than the window is encoded
    window by window, the model never seeing more than a window, and its
    pooled feature stays close to the whole-file one (an approximation:
    the first convolution's group norm and the attention span the whole
    recording). Measured with random-tiny weights, 40 s in 10 s windows:
    relative L2 error 2.7e-2 on these eight harmonic tones, 3.1e-3 on
    demo-corpus speech (random-base, 60 s in 20 s windows: 1.2e-2;
    docs/DESIGN.md)."""
    ex = extraction.Extractor(tiny_checkpoint, batch_seconds=6.0)
    rate = ex.prep.sample_rate
    ex.window_samples = 10 * rate
    signal = np.concatenate(
        [
            _voice(rate, 5.0, f0, seed)
            for seed, f0 in enumerate(range(110, 270, 20))
        ]
    )
    long_wav = _write(tmp_path / "long.wav", signal)
    short_wav = _write(tmp_path / "short.wav", signal[: 3 * rate])
    shapes = []
    original = ex._window

    def spy(params, values, mask, keep):
        shapes.append(values.shape)
        return original(params, values, mask, keep)

    ex._window = spy
    result = ex.run(["long", "short"], [long_wav, short_wav], progress=False)
    assert result.ids == ["long", "short"]
    assert shapes and all(s == (1, ex.window_samples) for s in shapes)
    # 40 s in 10 s windows with 2 s of context: starts 0, 6, ..., 30 s.
    assert len(shapes) == 6
    wave = audio.load_waveform(long_wav, ex.prep)
    values, mask = audio.pad_batch([wave], wave.shape[0], 1)
    whole = np.asarray(ex.pooled(values, mask))[0]
    windowed = result.features[0]
    error = np.linalg.norm(windowed - whole) / np.linalg.norm(whole)
    assert error < 5e-2, error
    cosine = windowed @ whole / np.linalg.norm(windowed) / np.linalg.norm(whole)
    assert cosine > 0.999, cosine
    # The short one is encoded whole, as before.
    short = audio.load_waveform(short_wav, ex.prep)
    values, mask = audio.pad_batch([short], short.shape[0], 1)
    np.testing.assert_allclose(
        result.features[1], np.asarray(ex.pooled(values, mask))[0], atol=1e-5
    )


def test_a_store_of_another_corpus_is_never_overwritten(
    demo_root, tmp_path, counted_extractor
):
    """A --config.features.path holding another corpus's store used to be
    recomputed over with a warning; a stale store of this corpus still is."""
    # Another corpus: recordings of its own, none with an id of this one.
    other = tmp_path / "other"
    other.mkdir()
    wavs = []
    for k, wav in enumerate(sorted(demo_root.rglob("*.wav"))[:6]):
        wavs.append(pathlib.Path(shutil.copy(wav, other / f"take{k}.wav")))
    out = tmp_path / "features.npz"
    extraction.extract_corpus(wavs, "random-tiny", out, progress=False)
    before = out.read_bytes()
    with pytest.raises(ValueError, match="holds the features of another"):
        extraction.extract_corpus(demo_root, "random-tiny", out, progress=False)
    assert out.read_bytes() == before
    # This corpus's own store, stale after an audio edit, is recomputed.
    mine = tmp_path / "mine.npz"
    extraction.extract_corpus(demo_root, "random-tiny", mine, progress=False)
    copy = pathlib.Path(shutil.copytree(demo_root, tmp_path / "edited"))
    wav = next(copy.glob("Session1/sentences/wav/*/*.wav"))
    data, rate = soundfile.read(wav, dtype="float32")
    soundfile.write(wav, data * 0.5, rate)
    calls = len(counted_extractor)
    extraction.extract_corpus(copy, "random-tiny", mine, progress=False)
    assert len(counted_extractor) == calls + 1
