"""Audio input for wav2vec2: reading, resampling, normalising, batching.

Every function here is host-side NumPy. The pipeline for one file is

    soundfile.read ─► average channels ─► check finite ─► resample to 16 kHz
        ─► check length ─► zero-mean unit-variance (if the checkpoint's
           preprocessor says ``do_normalize``)

and the batch planner sorts utterances by length and pads them to a fixed
ladder of lengths so that the number of compiled shapes stays small
(docs/DESIGN.md, wav2vec2).

Resampling filter. ``scipy.signal.resample_poly`` with ``up/down`` the
reduced ratio of the two rates runs a linear-phase FIR low-pass at the
rate ``up * fs_in``. Its built-in filter (Kaiser β=5, ±10 zero crossings,
cutoff exactly at the lower Nyquist) is only -6 dB at the lower Nyquist,
-23 dB at 1.1× it and already 7 % down at 0.9× it (measured with
``scipy.signal.freqz``), so energy just above 8 kHz aliases into the band
the model sees. We design our own with ``kaiserord``: stopband from the
lower Nyquist on, ≈ ``STOPBAND_DB`` = 80 dB down (measured ≥ 79.7 dB;
below the noise floor of most 16-bit speech recordings), passband flat
(ripple ≈ 1e-4) up to ``PASSBAND_FRACTION`` = 90 % of the lower Nyquist
(7.2 kHz for a 16 kHz output, where speech energy is already small). The
price is a longer filter (≈ 100 taps per unit of ``max(up, down)``: 277
multiply-adds per output sample for 44.1 kHz → 16 kHz, 303 for 48 kHz),
negligible next to the model.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Sequence

import numpy as np
import scipy.signal
import soundfile

SAMPLE_RATE = 16_000
STOPBAND_DB = 80.0
PASSBAND_FRACTION = 0.9
NORM_EPS = 1e-7

PathLike = str | os.PathLike


SKIP_HINT = (
    "--skip_bad_audio with fairser_jax.extract, "
    "--config.features.skip_bad_audio=true with main"
)
"""How to skip bad files, from each entry point that extracts."""


class AudioError(ValueError):
    """Unusable audio file: unreadable, empty, too short or non-finite.

    Attributes:
        path: the offending file.
        reason: short machine-readable cause: ``"unreadable"``, ``"empty"``,
            ``"too_short"`` or ``"non_finite"``.
    """

    def __init__(self, path: PathLike, reason: str, detail: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {detail}")


# --------------------------------------------------------------------------
# Reading and resampling.


def read_audio(path: PathLike) -> tuple[np.ndarray, int]:
    """Reads a sound file as mono float32.

    Args:
        path: any format libsndfile reads (wav, flac, ogg, ...).

    Returns:
        ``(samples [T] float32, sample_rate)``; channels are averaged.

    Raises:
        AudioError: the file is missing, unreadable, empty or holds NaN/inf.
    """
    try:
        data, rate = soundfile.read(
            os.fspath(path), dtype="float32", always_2d=True
        )
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(
            path,
            "unreadable",
            f"cannot read audio ({exc}). Check that the file exists and is "
            "a wav/flac that libsndfile can open (e.g. `soxi FILE`).",
        ) from exc
    if data.shape[0] == 0:
        raise AudioError(
            path,
            "empty",
            "the audio file holds no samples; remove it or "
            f"skip such files ({SKIP_HINT}).",
        )
    mono = data.mean(axis=1, dtype=np.float64).astype(np.float32)
    if not np.all(np.isfinite(mono)):
        bad = int(np.count_nonzero(~np.isfinite(mono)))
        raise AudioError(
            path,
            "non_finite",
            f"{bad} of {mono.size} samples are NaN or infinite; re-encode "
            f"the file or skip such files ({SKIP_HINT}).",
        )
    return mono, int(rate)


def resample_ratio(orig_sr: int, target_sr: int) -> tuple[int, int]:
    """Returns ``(up, down)``, the reduced rational ratio target/orig."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(
            f"sample rates must be positive, got {orig_sr} → {target_sr}"
        )
    g = math.gcd(int(orig_sr), int(target_sr))
    return int(target_sr) // g, int(orig_sr) // g


@functools.lru_cache(maxsize=32)
def resampling_filter(up: int, down: int) -> np.ndarray:
    """Kaiser-window low-pass FIR for rational resampling by ``up/down``.

    Designed at the intermediate rate ``up * fs_in``, where the lower of the
    two Nyquist frequencies is ``1 / max(up, down)`` of that rate's Nyquist.
    Passband to ``PASSBAND_FRACTION`` of it, stopband (≥ ``STOPBAND_DB``
    attenuation) from it on; see the module docstring for why.

    Returns:
        Odd-length, linear-phase taps ``[N]`` float64 with unit DC gain
        (``resample_poly`` multiplies by ``up``).
    """
    lower_nyquist = 1.0 / max(up, down)
    width = (1.0 - PASSBAND_FRACTION) * lower_nyquist
    numtaps, beta = scipy.signal.kaiserord(STOPBAND_DB, width)
    numtaps |= 1  # odd length: integer group delay, centred output
    cutoff = lower_nyquist - width / 2
    return scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))


def resample(
    samples: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE
) -> np.ndarray:
    """Polyphase resampling of a mono signal.

    Args:
        samples: ``[T]`` float.
        orig_sr: rate of ``samples`` in Hz.
        target_sr: wanted rate in Hz.

    Returns:
        ``[ceil(T * target_sr / orig_sr)]`` float32 (a copy when the rates
        are equal).
    """
    up, down = resample_ratio(orig_sr, target_sr)
    if up == down:
        return np.array(samples, dtype=np.float32)
    taps = resampling_filter(up, down)
    out = scipy.signal.resample_poly(
        np.asarray(samples, dtype=np.float64), up, down, window=taps
    )
    return out.astype(np.float32)


def resampled_length(num_samples: int, orig_sr: int, target_sr: int) -> int:
    """Length of ``resample`` output for a ``num_samples`` long input."""
    up, down = resample_ratio(orig_sr, target_sr)
    return -(-num_samples * up // down)


def zero_mean_unit_var(
    samples: np.ndarray, eps: float = NORM_EPS
) -> np.ndarray:
    """Per-utterance normalisation of Wav2Vec2FeatureExtractor.

    .. math::
        \\tilde x_t = (x_t - \\mu) / \\sqrt{\\sigma^2 + \\epsilon}

    with the mean and (population) variance over the utterance's own
    samples only: call it before padding.

    Args:
        samples: ``[T]`` float, the valid samples of one utterance.
        eps: variance floor, 1e-7 as in transformers.

    Returns:
        ``[T]`` float32.
    """
    x = np.asarray(samples, dtype=np.float64)
    return ((x - x.mean()) / np.sqrt(x.var() + eps)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What the checkpoint's ``preprocessor_config.json`` asks of the input.

    Attributes:
        sample_rate: rate the model was trained on (Hz).
        do_normalize: zero-mean unit-variance per utterance.
        min_samples: shortest input (at ``sample_rate``) that yields one
            conv frame; shorter audio is an error.
    """

    sample_rate: int = SAMPLE_RATE
    do_normalize: bool = True
    min_samples: int = 400

    @classmethod
    def from_preprocessor(
        cls, preprocessor: dict, *, min_samples: int
    ) -> Preprocessing:
        """From an HF feature-extractor config (defaults as in HF)."""
        return cls(
            sample_rate=int(preprocessor.get("sampling_rate", SAMPLE_RATE)),
            do_normalize=bool(preprocessor.get("do_normalize", True)),
            min_samples=int(min_samples),
        )


@dataclasses.dataclass(frozen=True, eq=False)
class Waveform:
    """Audio already in memory, usable wherever a sound file path is.

    Attributes:
        samples: ``[T]`` mono or ``[T, C]`` channels-last samples.
        sample_rate: their rate in Hz.
        name: what to call it in messages (e.g. ``"waveforms[3]"``).
    """

    samples: np.ndarray
    sample_rate: int
    name: str = "<waveform>"

    def __fspath__(self) -> str:
        return self.name


def mono(waveform: Waveform) -> np.ndarray:
    """``waveform`` as ``[T]`` float32, channels averaged as `read_audio`.

    Raises:
        AudioError: not 1-D/2-D, no samples, a bad rate, or NaN/inf.
    """
    x = np.asarray(waveform.samples)
    name = waveform.name
    if x.ndim not in (1, 2) or not np.issubdtype(x.dtype, np.number):
        raise AudioError(
            name,
            "unreadable",
            f"expected [T] or [T, channels] numbers, got {x.dtype} of shape "
            f"{x.shape}.",
        )
    if int(waveform.sample_rate) <= 0:
        raise AudioError(
            name, "unreadable", f"sample rate {waveform.sample_rate} Hz."
        )
    if x.shape[0] == 0 or x.size == 0:
        raise AudioError(name, "empty", "the waveform holds no samples.")
    if np.issubdtype(x.dtype, np.integer):  # PCM: scale to [-1, 1)
        x = x / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float64).astype(np.float32)
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise AudioError(
            name, "non_finite", f"{bad} of {x.size} samples are NaN or inf."
        )
    return x


def source_length(source: PathLike | Waveform, target_sr: int) -> int:
    """`probe_length` of a file, or the resampled length of a `Waveform`."""
    if isinstance(source, Waveform):
        n = np.shape(source.samples)[0] if np.ndim(source.samples) else 0
        return resampled_length(int(n), int(source.sample_rate), target_sr)
    return probe_length(source, target_sr)


def load_waveform(path: PathLike | Waveform, prep: Preprocessing) -> np.ndarray:
    """Reads one file (or takes a `Waveform`) and prepares it as input.

    Args:
        path: sound file, or audio in memory.
        prep: target rate, normalisation, minimum length.

    Returns:
        ``[T]`` float32 at ``prep.sample_rate``, normalised if asked.

    Raises:
        AudioError: unreadable, empty, non-finite, or shorter than one conv
            frame after resampling.
    """
    if isinstance(path, Waveform):
        samples, rate = mono(path), int(path.sample_rate)
    else:
        samples, rate = read_audio(path)
    samples = resample(samples, rate, prep.sample_rate)
    if samples.shape[0] < prep.min_samples:
        raise AudioError(
            path,
            "too_short",
            f"{samples.shape[0]} samples at {prep.sample_rate} Hz "
            f"({samples.shape[0] / prep.sample_rate * 1000:.1f} ms) is "
            f"shorter than one wav2vec2 frame ({prep.min_samples} samples);"
            f" remove it or skip such files ({SKIP_HINT}).",
        )
    if prep.do_normalize:
        samples = zero_mean_unit_var(samples)
    return samples


def probe_length(path: PathLike, target_sr: int) -> int:
    """Number of samples ``path`` will have at ``target_sr``, from its header.

    Raises:
        AudioError: the file is missing or its header unreadable.
    """
    try:
        info = soundfile.info(os.fspath(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(
            path,
            "unreadable",
            f"cannot read audio header ({exc}). Check that the file exists "
            "and is a wav/flac that libsndfile can open.",
        ) from exc
    return resampled_length(int(info.frames), int(info.samplerate), target_sr)


# --------------------------------------------------------------------------
# Length buckets and batches.


def conv_geometry(
    kernels: Sequence[int], strides: Sequence[int]
) -> tuple[int, int]:
    """Receptive field and hop (in samples) of the conv feature encoder.

    Frame ``f`` sees samples ``[f * hop, f * hop + receptive)``; for
    wav2vec2 (kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2) this is
    ``(400, 320)``.
    """
    receptive, hop = 1, 1
    for k, s in zip(kernels, strides, strict=True):
        receptive += (k - 1) * hop
        hop *= s
    return receptive, hop


def padded_length_ladder(
    max_len: int,
    *,
    receptive: int,
    hop: int,
    min_frames: int = 50,
    ratio: float = 1.25,
) -> tuple[int, ...]:
    """Padded lengths: a geometric ladder in frames, aligned to the convs.

    Rung ``k`` holds ``F_k = ceil(min_frames * ratio**k)`` frames, i.e.
    ``receptive + hop * (F_k - 1)`` samples, a length the conv stack
    consumes exactly (no dangling samples). The ladder depends only on the
    model geometry and ``max_len``, so any corpus compiles a prefix of the
    same shapes; padding waste is below ``ratio - 1`` per utterance.

    Args:
        max_len: longest utterance (samples) the ladder must cover.
        receptive: conv receptive field (samples).
        hop: conv total stride (samples).
        min_frames: frames of the first rung (50 ≈ 1 s at 16 kHz).
        ratio: growth factor between rungs (> 1).

    Returns:
        Increasing padded lengths, the last one ≥ ``max_len``.
    """
    if ratio <= 1.0:
        raise ValueError(f"ladder ratio must be > 1, got {ratio}")
    rungs: list[int] = []
    k = 0
    while not rungs or rungs[-1] < max_len:
        frames = math.ceil(min_frames * ratio**k - 1e-9)
        length = receptive + hop * (frames - 1)
        if not rungs or length > rungs[-1]:
            rungs.append(length)
        k += 1
    return tuple(rungs)


@dataclasses.dataclass(frozen=True)
class Batch:
    """One padded batch.

    Attributes:
        indices: positions (into the caller's list) of the real rows, in
            row order; rows past ``len(indices)`` are filler.
        padded_length: samples per row.
        batch_size: rows, including filler.
    """

    indices: tuple[int, ...]
    padded_length: int
    batch_size: int


def plan_batches(
    lengths: Sequence[int],
    *,
    batch_samples: int,
    receptive: int,
    hop: int,
    min_frames: int = 50,
    ratio: float = 1.25,
) -> list[Batch]:
    """Groups utterances into padded batches of a few fixed shapes.

    Utterances are taken longest first. A batch opens with the longest
    remaining one, whose ladder rung sets the padded length ``P`` and the
    row count ``B = max(1, batch_samples // P)``; it takes the next ``B``
    utterances (all shorter, so they fit). Every batch of rung ``P`` thus
    has the shape ``(B, P)``, except the final one, whose ``n < B`` rows
    are filled up to the next power of two (≤ ``B``) with filler rows:
    compiled shapes ≤ number of rungs + 1. (Filling it up to ``B`` would
    run up to ``B - 1`` filler rows, e.g. 31 for 1 s utterances at
    ``batch_seconds=32``.)

    Args:
        lengths: samples per utterance (at the model rate), each ≥ 1.
        batch_samples: budget, ``B * P ≤ batch_samples`` unless ``P``
            alone exceeds it (then ``B = 1``).
        receptive, hop, min_frames, ratio: see ``padded_length_ladder``.

    Returns:
        Batches covering every index exactly once.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return []
    ladder = np.asarray(
        padded_length_ladder(
            int(lengths.max()),
            receptive=receptive,
            hop=hop,
            min_frames=min_frames,
            ratio=ratio,
        )
    )
    order = np.argsort(-lengths, kind="stable")
    batches = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        padded = int(ladder[np.searchsorted(ladder, longest)])
        size = max(1, batch_samples // padded)
        members = tuple(int(i) for i in order[start : start + size])
        rows = size
        if len(members) < size:  # the final batch: fewest filler rows
            rows = min(size, 1 << (len(members) - 1).bit_length())
        batches.append(Batch(members, padded, rows))
        start += size
    return batches


def pad_batch(
    waveforms: Sequence[np.ndarray], padded_length: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stacks waveforms into a zero-padded batch with its sample mask.

    Filler rows (``len(waveforms) < batch_size``) repeat the first row so
    that every row is a well-defined input; callers drop them.

    Args:
        waveforms: ``n ≥ 1`` arrays ``[T_i]``, ``T_i ≤ padded_length``.
        padded_length: row length.
        batch_size: rows.

    Returns:
        ``input_values [batch_size, padded_length]`` float32 and
        ``attention_mask [batch_size, padded_length]`` bool.
    """
    if not 1 <= len(waveforms) <= batch_size:
        raise ValueError(
            f"pad_batch needs 1..{batch_size} waveforms, got {len(waveforms)}"
        )
    values = np.zeros((batch_size, padded_length), np.float32)
    mask = np.zeros((batch_size, padded_length), bool)
    for row in range(batch_size):
        wave = waveforms[row] if row < len(waveforms) else waveforms[0]
        if wave.shape[0] > padded_length:
            raise ValueError(
                f"waveform of {wave.shape[0]} samples does not fit a row of "
                f"{padded_length}"
            )
        values[row, : wave.shape[0]] = wave
        mask[row, : wave.shape[0]] = True
    return values, mask
