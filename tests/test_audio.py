"""Audio reading, resampling, normalisation and batch planning."""

import numpy as np
import pytest
import soundfile
import torch
import transformers

from fairser_jax.wav2vec2 import audio

W2V2_KERNELS = (10, 3, 3, 3, 3, 2, 2)
W2V2_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def _tone(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return np.sin(2 * np.pi * freq * t)


# --------------------------------------------------------------- resampling


@pytest.mark.parametrize("orig_sr", [44_100, 48_000, 22_050, 8_000])
def test_resample_passband_tone_matches_analytic(orig_sr):
    # A 1 kHz tone sampled at orig_sr must come out as the same tone sampled
    # at 16 kHz. Away from the edges (filter transients) the error is the
    # passband ripple (design ≤ 1.2e-4) plus float32 rounding; measured
    # ≤ 1.9e-5 over these four rates.
    x = _tone(1000.0, orig_sr, 0.5)
    y = audio.resample(x, orig_sr, 16_000)
    assert y.dtype == np.float32
    assert y.shape[0] == audio.resampled_length(x.shape[0], orig_sr, 16_000)
    assert y.shape[0] == int(np.ceil(x.shape[0] * 16_000 / orig_sr))
    reference = _tone(1000.0, 16_000, 0.5)[: y.shape[0]]
    inner = slice(800, y.shape[0] - 800)
    np.testing.assert_allclose(y[inner], reference[inner], atol=1.2e-4)


@pytest.mark.parametrize("freq", [8_200.0, 9_000.0, 15_000.0])
def test_resample_stops_aliasing(freq):
    # Above the 8 kHz output Nyquist a tone would alias into the band the
    # model sees; the filter must attenuate it by ≥ 78 dB (design: 80 dB;
    # measured 85, 104, 109 dB).
    x = _tone(freq, 44_100, 0.5)
    y = audio.resample(x, 44_100, 16_000)
    inner = y[800:-800]
    assert np.sqrt(np.mean(inner**2)) < 10 ** (-78 / 20) / np.sqrt(2)


def test_resample_beats_scipy_default_near_nyquist():
    # The reason for our own filter: scipy's default lets 8.4 kHz alias
    # at about -25 dB; ours removes it.
    import scipy.signal

    x = _tone(8_400.0, 48_000, 0.5)
    ours = audio.resample(x, 48_000, 16_000)[800:-800]
    default = scipy.signal.resample_poly(x, 1, 3)[800:-800]
    assert np.abs(ours).max() < 1e-3
    assert np.abs(default).max() > 1e-2


def test_resample_identity_and_ratio():
    x = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    np.testing.assert_array_equal(audio.resample(x, 16_000, 16_000), x)
    assert audio.resample_ratio(44_100, 16_000) == (160, 441)
    assert audio.resample_ratio(8_000, 16_000) == (2, 1)
    taps = audio.resampling_filter(160, 441)
    assert taps.shape[0] % 2 == 1
    np.testing.assert_allclose(taps, taps[::-1])  # linear phase
    np.testing.assert_allclose(taps.sum(), 1.0, atol=1e-9)


# ------------------------------------------------------------ normalisation


def test_zero_mean_unit_var_matches_hf_feature_extractor():
    rng = np.random.default_rng(1)
    waves = [
        (0.3 * rng.normal(size=n) + 0.05).astype(np.float32)
        for n in (400, 1234, 5000)
    ]
    extractor = transformers.Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    batch = extractor(
        waves, sampling_rate=16_000, padding=True, return_tensors="np"
    )
    for i, wave in enumerate(waves):
        ours = audio.zero_mean_unit_var(wave)
        theirs = batch["input_values"][i, : wave.shape[0]]
        np.testing.assert_allclose(ours, theirs, atol=2e-6)
        assert np.all(batch["input_values"][i, wave.shape[0] :] == 0)


def test_normalisation_of_constant_signal_is_finite():
    out = audio.zero_mean_unit_var(np.full(800, 0.25, np.float32))
    np.testing.assert_array_equal(out, np.zeros(800, np.float32))


def test_load_waveform_resamples_then_normalises(tmp_path):
    rng = np.random.default_rng(2)
    left = rng.normal(size=22_050).astype(np.float32) * 0.1
    right = rng.normal(size=22_050).astype(np.float32) * 0.1
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], 1), 22_050, subtype="FLOAT")
    prep = audio.Preprocessing(sample_rate=16_000, do_normalize=True)
    got = audio.load_waveform(path, prep)
    mono = (left.astype(np.float64) + right) / 2
    expected = audio.zero_mean_unit_var(audio.resample(mono, 22_050, 16_000))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert audio.probe_length(path, 16_000) == got.shape[0]
    raw = audio.load_waveform(
        path, audio.Preprocessing(sample_rate=16_000, do_normalize=False)
    )
    np.testing.assert_allclose(
        raw, audio.resample(mono, 22_050, 16_000), atol=1e-6
    )


def test_preprocessing_from_hf_preprocessor_config():
    prep = audio.Preprocessing.from_preprocessor(
        {"sampling_rate": 16000, "do_normalize": False}, min_samples=400
    )
    assert (prep.sample_rate, prep.do_normalize, prep.min_samples) == (
        16_000,
        False,
        400,
    )
    # HF's Wav2Vec2FeatureExtractor defaults when the file is absent.
    default = transformers.Wav2Vec2FeatureExtractor()
    prep = audio.Preprocessing.from_preprocessor({}, min_samples=400)
    assert prep.do_normalize == default.do_normalize
    assert prep.sample_rate == default.sampling_rate


# ------------------------------------------------------------------- errors


def _write(path, data, rate=16_000, subtype="FLOAT"):
    soundfile.write(path, data, rate, subtype=subtype)
    return path


def test_error_unreadable_names_file(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not a RIFF file at all" * 10)
    prep = audio.Preprocessing()
    for path in (garbage, tmp_path / "missing.wav"):
        with pytest.raises(audio.AudioError, match=path.name) as info:
            audio.load_waveform(path, prep)
        assert info.value.reason == "unreadable"
        with pytest.raises(audio.AudioError, match=path.name):
            audio.probe_length(path, 16_000)


def test_error_empty_names_file(tmp_path):
    path = _write(tmp_path / "empty.wav", np.zeros((0,), np.float32))
    with pytest.raises(audio.AudioError, match="empty.wav") as info:
        audio.load_waveform(path, audio.Preprocessing())
    assert info.value.reason == "empty"


def test_error_non_finite_names_file(tmp_path):
    data = np.zeros(4000, np.float32)
    data[123] = np.nan
    data[456] = np.inf
    path = _write(tmp_path / "nan.wav", data)
    with pytest.raises(audio.AudioError, match="nan.wav") as info:
        audio.load_waveform(path, audio.Preprocessing())
    assert info.value.reason == "non_finite"
    assert "2 of 4000" in str(info.value)


def test_error_too_short_names_file(tmp_path):
    prep = audio.Preprocessing(min_samples=400)
    short = _write(tmp_path / "short.wav", np.ones(399, np.float32) * 0.1)
    with pytest.raises(audio.AudioError, match="short.wav") as info:
        audio.load_waveform(short, prep)
    assert info.value.reason == "too_short"
    # 1102 samples at 44.1 kHz → 400 at 16 kHz: just long enough.
    ok = _write(tmp_path / "ok.wav", np.ones(1102, np.float32) * 0.1, 44_100)
    assert audio.load_waveform(ok, prep).shape == (400,)


# ------------------------------------------------------------------ batching


def test_conv_geometry_matches_hf_output_lengths():
    config = transformers.Wav2Vec2Config()
    model = transformers.Wav2Vec2Model(config)
    receptive, hop = audio.conv_geometry(config.conv_kernel, config.conv_stride)
    assert (receptive, hop) == (400, 320)
    lengths = torch.arange(1, 5000)
    frames = model._get_feat_extract_output_lengths(lengths).numpy()
    ours = np.where(
        lengths.numpy() >= receptive,
        (lengths.numpy() - receptive) // hop + 1,
        0,
    )
    np.testing.assert_array_equal(np.maximum(frames, 0), ours)


def test_ladder_is_conv_aligned_geometric_and_covering():
    ladder = audio.padded_length_ladder(
        35 * 16_000, receptive=400, hop=320, min_frames=50, ratio=1.25
    )
    assert ladder[-1] >= 35 * 16_000 and ladder[-2] < 35 * 16_000
    assert ladder[0] == 400 + 320 * 49  # 50 frames, ≈ 1 s
    assert all((p - 400) % 320 == 0 for p in ladder)
    steps = np.diff(ladder) / np.asarray(ladder[:-1])
    assert np.all(steps > 0) and np.all(steps < 0.25 + 0.02)
    assert len(ladder) <= 18  # 1 s .. 35 s in ×1.25 steps
    # The ladder depends on the corpus only through its maximum.
    short = audio.padded_length_ladder(
        5 * 16_000, receptive=400, hop=320, ratio=1.25
    )
    assert ladder[: len(short)] == short


def test_plan_batches_properties():
    rng = np.random.default_rng(3)
    lengths = rng.integers(300, 15 * 16_000, size=203).tolist()
    budget = 20 * 16_000
    batches = audio.plan_batches(
        lengths, batch_samples=budget, receptive=400, hop=320, ratio=1.25
    )
    ladder = audio.padded_length_ladder(
        max(lengths), receptive=400, hop=320, ratio=1.25
    )
    seen = sorted(i for b in batches for i in b.indices)
    assert seen == list(range(len(lengths)))
    shapes = {(b.batch_size, b.padded_length) for b in batches}
    assert len(shapes) <= len(ladder) + 1
    for b in batches:
        assert b.padded_length in ladder
        assert 1 <= len(b.indices) <= b.batch_size
        assert b.batch_size * b.padded_length <= budget or b.batch_size == 1
        assert all(lengths[i] <= b.padded_length for i in b.indices)
        # The smallest rung that holds the longest member (no over-padding).
        longest = max(lengths[i] for i in b.indices)
        assert b.padded_length == min(p for p in ladder if p >= longest)
    for b in batches[:-1]:
        assert b.batch_size == max(1, budget // b.padded_length)
    # The final, partial batch is padded to a power of two rows only.
    last = batches[-1]
    assert last.batch_size == min(
        budget // last.padded_length,
        1 << (len(last.indices) - 1).bit_length(),
    )
    # Only the final batch may be partial.
    assert all(len(b.indices) == b.batch_size for b in batches[:-1])
    # Padding overhead (filler rows included) stays small.
    padded = sum(b.batch_size * b.padded_length for b in batches)
    assert padded / sum(lengths) < 1.35


def test_pad_batch_mask_and_filler():
    waves = [np.arange(1, 6, dtype=np.float32), np.ones(3, np.float32)]
    values, mask = audio.pad_batch(waves, padded_length=7, batch_size=3)
    assert values.shape == mask.shape == (3, 7)
    np.testing.assert_array_equal(mask.sum(1), [5, 3, 5])
    np.testing.assert_array_equal(values[0], [1, 2, 3, 4, 5, 0, 0])
    np.testing.assert_array_equal(values[2], values[0])  # filler row
    with pytest.raises(ValueError, match="does not fit"):
        audio.pad_batch([np.ones(8, np.float32)], 7, 1)
