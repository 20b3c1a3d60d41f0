r"""Built-in demo corpus: synthetic speech in the IEMOCAP layout.

:func:`generate` writes, deterministically from a seed::

    OUT/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt
    OUT/Session{1..5}/sentences/wav/<dialog>/<utterance id>.wav   16 kHz int16
    OUT/rater_gender.json      {"E1": "F", "E2": "M", ...}  (2 M, 4 F)
    OUT/speakers.csv           path,speaker of every wav (paths relative
                               to OUT), for ``fairser_jax.predict
                               --speaker_of``
    OUT/demo_corpus.json       what was written (the summary returned)

Five sessions with one female and one male actor each; ids such as
``Ses03M_script02_1_F012`` (``M`` after the session number names the
dialog's lead, the last token the speaker).  The EmoEvaluation files follow
the real format: the ``%`` header line, one block per utterance with the
``[start - end]`` header, consensus code and mean V/A/D, 3 or 4 ``C-E<n>``
rater lines (sometimes two labels, e.g. ``Neutral; Frustration;``; words
``Neutral state``, ``Excited``, ``Other:<text>`` occur), self-evaluations
``C-F1``/``C-M1`` of the speaking actor, ``A-`` dimensional lines, and
comments in parentheses that may contain ``;``, ``:`` and parentheses.

**Generative model.**  Each utterance has a latent emotion (one of the five
plus surprise, fear, disgust, other) and an intensity ``s`` in (0, 1)
(Beta(3, 1.2), times the speaker gender's ``EXPRESSIVENESS``).

Audio (emotion learnable from acoustics, speaker gender audible): a
Rosenberg glottal pulse train, shaped by an open quotient, through a cascade
of three formant resonators whose vowel changes every syllable, with
aspiration noise, fricative bursts between syllables and a fixed background
noise floor (so loudness survives the per-utterance normalisation of
wav2vec2 as a signal-to-noise ratio).  F0 is set by the speaker
(female ~205 Hz, male ~115 Hz; formants 15 % higher for female voices);
the emotion scales F0 level and range, loudness, syllable rate (tempo),
voice quality (open quotient: pressed anger, breathy sadness), jitter and
the formants (raised in high arousal), interpolated from neutral by the
intensity (see ``ACOUSTICS``).  Durations
are about ``mean_duration`` seconds, slower for sadness and faster for
anger; the default ``mean_duration`` grows with the corpus size (0.8 s up
to 200 utterances, 1.5 s at 10k) so tests and the demo stay fast.

**Planted biases** (the ground truth the fairness experiments can find):

1. *Speaker gender changes label frequencies* (``SPEAKER_PRIOR``): female
   actors more often express happiness (38 % vs 12 %) and sadness (23 % vs
   5 %), male actors anger (24 % vs 7 %), frustration (25 % vs 12 %) and
   neutral (31 % vs 16 %).  After the raters, S1 happiness is ~34 % of
   the female and ~10 % of the male utterances, anger ~7 % vs ~22 %.
   *And how strongly it is expressed* (``EXPRESSIVENESS``): women's anger
   and frustration, men's happiness and sadness are played at half the
   intensity.  Base rates alone are largely cancelled by speaker-wise
   z-normalisation; expressiveness is not, so a classifier's positive rate
   differs by speaker gender.
2. *Male and female raters confuse different classes* (``RATER_MODES``,
   ``RATER_CONFUSION``, ``PANEL_MALES``).  Per utterance the raters are
   either all coherent on the latent emotion ("shared"), only the men are
   ("split_M"), only the women are ("split_F"), or nobody is ("diffuse":
   each picks uniformly among the emotion and its confusions).  Incoherent
   raters answer from their gender's confusion row, which never contains
   the latent emotion: men hear sadness as neutral, frustration as anger
   and happiness as neutral; women hear neutral as sadness or frustration
   and anger as frustration.  Who is coherent depends on the emotion: men
   on neutral and anger, women on sadness, frustration and happiness.  The
   coherent gender usually holds the panel majority (in a split_M panel
   both men sit, in a split_F panel one man), so it carries the consensus.
   Hence the S2 rater-gender groups differ in labels (group M ~53 %
   neutral, ~23 % anger; group F ~38 % frustration, ~26 % sadness, ~17 %
   happiness) and, since the group follows the latent emotion, in
   acoustics: a plain classifier shows a rater-side parity gap.  Speaker
   gender and rater group are independent given the emotion, so the two
   parity gaps are different quantities (one-sided fixes need not
   transfer).
3. *Consensus by plurality, as in IEMOCAP*: every label word of every
   ``C-E`` rater is one vote for its code (Happiness ``hap`` and Excited
   ``exc`` counted apart, ``Neutral state`` is ``neu``, ``Other:<text>``
   is ``oth``); the header code is the unique most-voted code, a tie gives
   ``xxx``.  Self-evaluations never vote.  Faint (low-intensity)
   utterances are more often diffuse, hence ``xxx``.
4. *Only with* ``rater_cue="tempo"`` (default ``"none"``): *the raters
   are driven by a cue independent of speaker gender* (``TEMPO_CUE_SCALE``,
   ``CUE_CLASSES``, ``CUE_HEARD``, :func:`cue_probability`).  Under bias 2
   the rater group follows the latent emotion, which speaker gender shifts
   (bias 1), so removing speaker gender from an embedding also removes
   rater-group signal; this bias gives the rater side a cause of its own
   (paper §1, §2.2.3: a fix on one side need not transfer to the other).
   Every utterance gets a speaking-rate cue ``c ~ N(0, 1)`` (clipped to
   +-2.5), drawn independently of the speaker, the speaker's gender, the
   latent emotion and the intensity; its syllable rate is scaled by
   ``exp(0.2 c)`` (+-22 % per SD; the duration is kept, so the same
   time holds more or fewer syllables).  Men hear fast speech as anger,
   women slow speech as sadness: a neutral or frustrated utterance is
   *cue-driven* with probability ``sigmoid(4 (|c| - 0.75))`` (half the
   time at 0.75 SD off the typical rate, about the median ``|c|``; 0.05 at
   ``c = 0``), by the men when ``c > 0`` and by the women when ``c < 0``.
   Its raters are then re-drawn: the fooled gender's answer ``CUE_HEARD``
   (anger / sadness), the other gender's the latent emotion (both slip
   as coherent raters do), and the fooled gender usually holds the panel
   majority (``PANEL_MALES`` of ``split_M`` / ``split_F``), so it carries
   the consensus.  Everything else -- speakers, latent emotions,
   intensities, durations, times and the annotations of every other
   utterance -- is the default corpus of the same seed, so the two
   settings are a paired contrast.  At 10k utterances (seed 0) 48 % of
   the neutral and frustrated utterances are cue-driven (1981, half each
   way), 17 % of the consensus labels change (S1 neutral 1712 ->
   1199, frustration 1800 -> 1206, anger 1034 -> 1448, sadness
   1222 -> 1979), 30 % of S2 is cue-driven, and in S2 the cue correlates
   0.23 with the rater group being ``M`` while ``|corr(c, speaker
   gender)|`` is 0.003.  The marker records ``rater_cue``, the cue of
   every utterance (``tempo_cue``) and the cue-driven ones (``cue_driven``).

Panels have 3 (55 %) or 4 raters; a panel without a man (about 7 %) is
never in S2 under ``require_both_genders``.  Coherent raters slip to a
confusion 5 % of the time, and 8 % of the answers carry a second label.

At 10k utterances (seed 0) the class mix is IEMOCAP's: 21 % ``xxx``, S1
7428 (neutral 1712, happiness 1660, anger 1034, sadness 1222, frustration
1800; the paper: 7362 with 1706/1633/1099/1080/1844) and S2 4448, 60 % of
S1 (1285/536/594/788/1245; the paper: 4324 with 1323/446/628/628/1299).
About 82 % of S1 consensus labels equal the latent emotion.

Everything is a function of the seed: the plan (labels, panels, times)
comes from one generator stream, each utterance's audio from its own
(``default_rng([seed, 2, index])``), with ``rater_cue="tempo"`` its cue
and cue-driven rating from another (``default_rng([seed, 3, index])``,
so the default corpus never sees it), files are written with the standard
``wave`` module, so equal seeds give byte-identical files.

**Atomic generation** (docs/DESIGN.md, Data).  The corpus is written into
a temporary sibling folder ``.<name>.demo-partial-<random>`` (the marker
``demo_corpus.json`` last) and renamed to ``OUT`` only when complete, so a
killed run never leaves a half-written ``OUT``; a rerun deletes the
leftover temporary folder.  Only folders recognisably ours are ever
deleted: those temporary names, and an ``OUT`` that holds the marker and
nothing but what the generator writes.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import math
import os
import pathlib
import secrets
import shutil
import wave

import numpy as np
from scipy import signal

from fairser_jax import fileio
from fairser_jax.data.iemocap import HEADER_CODES, read_corpus

__all__ = [
    "ACOUSTICS",
    "LATENT_CLASSES",
    "MIN_UTTERANCES",
    "PANEL_MALES",
    "CUE_CLASSES",
    "CUE_HEARD",
    "CUE_MIDPOINT",
    "CUE_SLOPE",
    "RATER_CONFUSION",
    "RATER_CUES",
    "RATER_GENDER",
    "RATER_MODES",
    "SAMPLE_RATE",
    "SPEAKERS_FILE",
    "SPEAKER_PRIOR",
    "EXPRESSIVENESS",
    "TEMPO_CUE_CLIP",
    "TEMPO_CUE_SCALE",
    "cue_probability",
    "default_mean_duration",
    "generate",
    "synthesize",
    "write_speakers_csv",
]

SAMPLE_RATE = 16_000
NUM_SESSIONS = 5
MIN_UTTERANCES = 2 * NUM_SESSIONS
# Utterances per EmoEvaluation file (IEMOCAP: ~10k over 151 dialogs).
UTTERANCES_PER_DIALOG = 67
GENERATOR_VERSION = 1

# The six raters of IEMOCAP: two men, four women (paper §2.1).
RATER_GENDER: dict[str, str] = {
    "E1": "F",
    "E2": "M",
    "E3": "F",
    "E4": "F",
    "E5": "M",
    "E6": "F",
}
_MALE_RATERS = tuple(r for r, g in RATER_GENDER.items() if g == "M")
_FEMALE_RATERS = tuple(r for r, g in RATER_GENDER.items() if g == "F")

LATENT_CLASSES: tuple[str, ...] = (
    "neutral",
    "happiness",
    "anger",
    "sadness",
    "frustration",
    "surprise",
    "fear",
    "disgust",
    "other",
)

# Bias 1: P(latent emotion | speaker gender), in LATENT_CLASSES order.
SPEAKER_PRIOR: dict[str, tuple[float, ...]] = {
    "F": (0.16, 0.38, 0.07, 0.23, 0.12, 0.015, 0.008, 0.004, 0.003),
    "M": (0.31, 0.12, 0.24, 0.05, 0.25, 0.015, 0.008, 0.004, 0.003),
}

# Bias 2: P(shared, split_M, split_F, diffuse | latent emotion) before the
# intensity adjustment (see _mode_probs).
RATER_MODES: dict[str, tuple[float, float, float, float]] = {
    "neutral": (0.05, 0.65, 0.12, 0.18),
    "happiness": (0.40, 0.06, 0.26, 0.28),
    "anger": (0.18, 0.45, 0.13, 0.24),
    "sadness": (0.18, 0.10, 0.50, 0.22),
    "frustration": (0.08, 0.18, 0.56, 0.18),
    "surprise": (0.30, 0.10, 0.10, 0.50),
    "fear": (0.30, 0.10, 0.10, 0.50),
    "disgust": (0.30, 0.10, 0.10, 0.50),
    "other": (0.30, 0.10, 0.10, 0.50),
}

# Bias 2: what an incoherent rater of each gender answers, by latent emotion.
RATER_CONFUSION: dict[str, dict[str, dict[str, float]]] = {
    "M": {
        "neutral": {"frustration": 0.4, "happiness": 0.3, "other": 0.3},
        "happiness": {"neutral": 0.6, "surprise": 0.4},
        "anger": {"frustration": 0.5, "disgust": 0.2, "neutral": 0.3},
        "sadness": {"neutral": 0.6, "frustration": 0.3, "fear": 0.1},
        "frustration": {"anger": 0.6, "neutral": 0.4},
        "surprise": {"happiness": 0.6, "fear": 0.4},
        "fear": {"sadness": 0.5, "surprise": 0.5},
        "disgust": {"anger": 0.6, "frustration": 0.4},
        "other": {"neutral": 0.6, "frustration": 0.4},
    },
    "F": {
        "neutral": {"sadness": 0.45, "frustration": 0.45, "other": 0.1},
        "happiness": {"neutral": 0.5, "surprise": 0.3, "frustration": 0.2},
        "anger": {"frustration": 0.7, "disgust": 0.3},
        "sadness": {"neutral": 0.5, "fear": 0.3, "frustration": 0.2},
        "frustration": {"anger": 0.35, "sadness": 0.3, "neutral": 0.35},
        "surprise": {"happiness": 0.5, "fear": 0.5},
        "fear": {"sadness": 0.6, "surprise": 0.4},
        "disgust": {"anger": 0.5, "frustration": 0.5},
        "other": {"neutral": 0.5, "sadness": 0.5},
    },
}

# In a diffuse panel each rater picks uniformly among the latent emotion and
# every class either gender confuses it with (ties -> xxx are common).
_DIFFUSE: dict[str, tuple[str, ...]] = {
    c: tuple(
        sorted(
            {c} | set(RATER_CONFUSION["M"][c]) | set(RATER_CONFUSION["F"][c])
        )
    )
    for c in LATENT_CLASSES
}

# Bias 2: P(number of male raters = 0, 1, 2 | rater mode): the coherent
# gender usually holds the panel majority.
PANEL_MALES: dict[str, tuple[float, float, float]] = {
    "shared": (0.08, 0.40, 0.52),
    "split_M": (0.0, 0.15, 0.85),
    "split_F": (0.10, 0.80, 0.10),
    "diffuse": (0.08, 0.40, 0.52),
}
_MODES = ("shared", "split_M", "split_F", "diffuse")
P_FOUR_RATERS = 0.45
P_SECOND_LABEL = 0.08  # a rater adds a second word from the confusion row
P_COHERENT_SLIP = 0.05  # a coherent rater answers from the confusion row
P_SELF_EVAL = 0.3
P_A_LINE = 0.5
P_COMMENT = 0.15

# Bias 4 (``rater_cue="tempo"`` only): a per-utterance speaking-rate cue
# c ~ N(0, 1) (clipped to +-TEMPO_CUE_CLIP), independent of speaker gender
# and latent emotion, scales the syllable rate by exp(TEMPO_CUE_SCALE * c).
RATER_CUES: tuple[str, ...] = ("none", "tempo")
TEMPO_CUE_SCALE = 0.2  # +-22 % syllable rate per SD of the cue
TEMPO_CUE_CLIP = 2.5
# Latent emotions whose rating the cue drives, and what the fooled gender
# hears: men hear fast speech (c > 0) as anger, women slow speech (c < 0)
# as sadness.
CUE_CLASSES: tuple[str, ...] = ("neutral", "frustration")
CUE_HEARD: dict[str, str] = {"M": "anger", "F": "sadness"}
# P(the panel is cue-driven | c) = sigmoid(CUE_SLOPE * (|c| - CUE_MIDPOINT)):
# half the time at 0.75 SD off the typical rate (about the median |c|).
CUE_MIDPOINT = 0.75
CUE_SLOPE = 4.0

# Per latent emotion: F0 factor, F0 range (semitones), loudness (dB),
# syllables per second, glottal open quotient, aspiration noise, jitter,
# formant factor (articulation: raised formants in high arousal).
ACOUSTICS: dict[str, tuple[float, ...]] = {
    "neutral": (1.00, 1.5, 0.0, 4.0, 0.60, 0.04, 0.010, 1.00),
    "happiness": (1.40, 5.0, 6.0, 5.0, 0.45, 0.03, 0.015, 1.07),
    "anger": (1.35, 3.5, 12.0, 5.6, 0.25, 0.02, 0.025, 1.12),
    "sadness": (0.85, 0.6, -10.0, 2.5, 0.90, 0.35, 0.010, 0.93),
    "frustration": (1.15, 2.5, 4.0, 4.6, 0.38, 0.10, 0.040, 1.04),
    "surprise": (1.45, 6.0, 5.0, 4.2, 0.50, 0.05, 0.015, 1.08),
    "fear": (1.35, 3.0, -3.0, 5.6, 0.62, 0.15, 0.050, 1.02),
    "disgust": (0.95, 2.0, 2.0, 3.2, 0.50, 0.10, 0.020, 0.98),
    "other": (1.00, 2.0, 0.0, 4.0, 0.60, 0.06, 0.015, 1.00),
}

# Bias 1b: how strongly each speaker gender expresses an emotion (factor on
# the intensity): women express happiness and sadness more, men anger and
# frustration.  Survives speaker-wise z-normalisation, unlike base rates.
EXPRESSIVENESS: dict[str, dict[str, float]] = {
    "F": {"anger": 0.5, "frustration": 0.5},
    "M": {"happiness": 0.5, "sadness": 0.5},
}

# Latent class -> the rater label word and its header code.
_WORD = {
    "neutral": "Neutral",
    "happiness": "Happiness",
    "anger": "Anger",
    "sadness": "Sadness",
    "frustration": "Frustration",
    "surprise": "Surprise",
    "fear": "Fear",
    "disgust": "Disgust",
    "other": "Other",
}
_CODE = {
    "Neutral": "neu",
    "Neutral state": "neu",
    "Happiness": "hap",
    "Excited": "exc",
    "Anger": "ang",
    "Sadness": "sad",
    "Frustration": "fru",
    "Surprise": "sur",
    "Fear": "fea",
    "Disgust": "dis",
    "Other": "oth",
}
assert set(_CODE.values()) <= set(HEADER_CODES)
_OTHER_TEXTS = ("bored", "confused", "amused", "nervous", "hopeful")
_COMMENTS = (
    "sarcastic; almost laughing",
    "note: rising intonation",
    "hard to tell: maybe tired; maybe bored",
    "whispers (barely audible)",
    "mildly aggravated but staying polite, attitude",
    "curious",
    "sighs",
)
# (valence, activation, dominance) centre per latent class, 1..5 scale.
_VAD = {
    "neutral": (3.0, 2.5, 3.0),
    "happiness": (4.2, 3.6, 3.4),
    "anger": (1.6, 4.2, 4.0),
    "sadness": (1.8, 1.8, 2.0),
    "frustration": (2.0, 3.3, 3.0),
    "surprise": (3.5, 4.0, 3.0),
    "fear": (1.8, 3.8, 1.8),
    "disgust": (1.8, 3.0, 3.4),
    "other": (3.0, 2.8, 3.0),
}
# Vowel formants (Hz) of an adult male voice: /a/ /i/ /u/ /e/ /o/.
_VOWELS = np.array(
    [
        [730.0, 1090.0, 2440.0],
        [270.0, 2290.0, 3010.0],
        [300.0, 870.0, 2240.0],
        [530.0, 1840.0, 2480.0],
        [570.0, 840.0, 2410.0],
    ]
)
_BANDWIDTHS = np.array([80.0, 110.0, 160.0])
_NOISE_FLOOR = 10 ** (-52 / 20)  # background noise RMS, full scale = 1
_BASE_RMS = 10 ** (-28 / 20)  # neutral speech RMS
_HOP = 80  # samples per control frame (5 ms)
_TABLE = 1024  # lookup-table size of the pulse and envelope shapes
_ENVELOPE = np.sin(np.pi * (np.arange(_TABLE) + 0.5) / _TABLE) ** 0.7
_BURST = np.hanning(int(0.04 * SAMPLE_RATE))


def default_mean_duration(num_utterances: int) -> float:
    """Mean utterance duration (s) for a corpus size: 0.8 s up to 200
    utterances, then + 0.4 s per tenfold size, at most 2 s (1.5 s at 10k)."""
    scale = 0.8 + 0.4 * math.log10(max(num_utterances, 200) / 200)
    return float(min(scale, 2.0))


@dataclasses.dataclass(frozen=True)
class _Speaker:
    f0: float  # mean F0 (Hz)
    formant_scale: float


@dataclasses.dataclass
class _Planned:
    """One utterance of the plan (annotations + what the audio needs)."""

    id: str
    session: int
    dialog: str
    speaker_gender: str
    latent: str
    intensity: float
    duration: float
    start: float = 0.0
    code: str = ""
    lines: list[str] = dataclasses.field(default_factory=list)
    vad: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tempo_cue: float = 0.0  # rater_cue="tempo": the cue c (SD units)
    cue_driven: str = ""  # "M"/"F": the gender the cue fooled, else ""


def _dialog_names(session: int, num_dialogs: int) -> list[str]:
    names = []
    for j in range(num_dialogs):
        lead = "FM"[j % 2]
        m = j // 2
        if m % 2 == 0:
            name = f"impro{m // 2 + 1:02d}"
        else:
            k = m // 2
            name = f"script{k // 3 + 1:02d}_{k % 3 + 1}"
        names.append(f"Ses{session:02d}{lead}_{name}")
    return names


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def _pick(rng: np.random.Generator, weights) -> int:
    """Index drawn with probability proportional to ``weights``."""
    cdf = np.cumsum(weights)
    return int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))


def _mode_probs(latent: str, intensity: float) -> np.ndarray:
    # Faint emotions leave raters diffuse more often.
    p = np.array(RATER_MODES[latent], dtype=np.float64)
    p[:3] *= 0.5 + intensity
    p[3] *= 1.5 - intensity
    return p / p.sum()


def _confused_word(
    rng: np.random.Generator,
    rater_gender: str,
    latent: str,
    exclude: str | None = None,
) -> str:
    row = dict(RATER_CONFUSION[rater_gender][latent])
    row.pop(exclude, None)
    classes = list(row)
    p = np.array([row[c] for c in classes])
    return classes[_pick(rng, p)]


def _word(rng: np.random.Generator, cls: str, happy_word: str) -> str:
    if cls == "happiness":
        if rng.random() < 0.85:
            return happy_word
        return "Happiness" if happy_word == "Excited" else "Excited"
    if cls == "neutral" and rng.random() < 0.05:
        return "Neutral state"
    if cls == "other" and rng.random() < 0.6:
        return "Other:" + _OTHER_TEXTS[rng.integers(len(_OTHER_TEXTS))]
    return _WORD[cls]


def _comment(rng: np.random.Generator) -> str:
    if rng.random() < P_COMMENT:
        return "(" + _COMMENTS[rng.integers(len(_COMMENTS))] + ")"
    return "()"


def _consensus(votes: list[str]) -> str:
    counts = collections.Counter(_CODE[w.split(":")[0]] for w in votes)
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return "xxx"
    return ranked[0][0]


def _a_line(rng: np.random.Generator, who: str, latent: str, vads: list) -> str:
    centre = np.array(_VAD[latent])
    v, a, d = np.clip(np.rint(centre + rng.normal(0, 0.7, 3)), 1, 5)
    vads.append((v, a, d))
    return (
        f"A-{who}:\tval {int(v)}; act {int(a)}; dom  {int(d)};\t{_comment(rng)}"
    )


def _annotate(
    rng: np.random.Generator, utt: _Planned, cue_driven: str | None = None
) -> None:
    """Fills ``utt.lines``, ``utt.code`` and ``utt.vad`` (planted biases).

    ``cue_driven`` (``"M"``/``"F"``, bias 4): instead of a mode drawn from
    the latent emotion, that gender's raters answer ``CUE_HEARD`` and the
    other gender's the latent emotion (each slipping as coherent raters
    do); the fooled gender usually holds the panel majority, as the
    coherent gender of a split panel does.  ``None`` draws exactly what
    it always drew.
    """
    latent = utt.latent
    if cue_driven is None:
        mode = _MODES[_pick(rng, _mode_probs(latent, utt.intensity))]
        panel_mode = mode
        coherent_genders = {
            "shared": {"M", "F"},
            "split_M": {"M"},
            "split_F": {"F"},
            "diffuse": set(),
        }[mode]
    else:
        mode = f"cue_{cue_driven}"
        panel_mode = f"split_{cue_driven}"
        coherent_genders = {"M", "F"} - {cue_driven}
    num_raters = 4 if rng.random() < P_FOUR_RATERS else 3
    num_males = _pick(rng, PANEL_MALES[panel_mode])
    males = rng.permutation(len(_MALE_RATERS))[:num_males]
    females = rng.permutation(len(_FEMALE_RATERS))[: num_raters - num_males]
    panel = [_MALE_RATERS[i] for i in males]
    panel += [_FEMALE_RATERS[i] for i in females]
    panel.sort(key=lambda r: int(r[1:]))
    excited = rng.random() < 0.3 + 0.5 * utt.intensity
    happy_word = "Excited" if excited else "Happiness"
    votes: list[str] = []
    lines: list[str] = []
    vads: list = []
    for rater in panel:
        gender = RATER_GENDER[rater]
        if gender == cue_driven and rng.random() > P_COHERENT_SLIP:
            first = CUE_HEARD[gender]
        elif gender in coherent_genders and rng.random() > P_COHERENT_SLIP:
            first = latent
        elif mode == "diffuse":
            first = _DIFFUSE[latent][rng.integers(len(_DIFFUSE[latent]))]
        else:
            first = _confused_word(rng, gender, latent)
        classes = [first]
        if rng.random() < P_SECOND_LABEL:
            classes.append(_confused_word(rng, gender, latent, exclude=first))
        words = [_word(rng, c, happy_word) for c in classes]
        votes += words
        labels = " ".join(w + ";" for w in words)
        lines.append(f"C-{rater}:\t{labels}\t{_comment(rng)}")
    self_id = f"{utt.speaker_gender}1"
    has_self = rng.random() < P_SELF_EVAL
    if has_self:
        word = _word(rng, latent, happy_word)
        lines.append(f"C-{self_id}:\t{word};\t{_comment(rng)}")
    for rater in panel:
        if rng.random() < P_A_LINE:
            lines.append(_a_line(rng, rater, latent, vads))
    if not vads:
        lines.append(_a_line(rng, panel[0], latent, vads))
    if has_self:
        lines.append(_a_line(rng, self_id, latent, []))
    utt.lines = lines
    utt.code = _consensus(votes)
    utt.vad = tuple(float(x) for x in np.mean(vads, axis=0))


def _plan(
    num_utterances: int, seed: int, mean_duration: float
) -> list[_Planned]:
    """Ids, dialogs, latent emotions, durations, times and annotations."""
    rng = np.random.default_rng([seed, 0])
    planned: list[_Planned] = []
    for session, n_session in zip(
        range(1, NUM_SESSIONS + 1),
        _split(num_utterances, NUM_SESSIONS),
        strict=True,
    ):
        num_dialogs = max(1, round(n_session / UTTERANCES_PER_DIALOG))
        dialogs = _dialog_names(session, num_dialogs)
        for d, (dialog, n_dialog) in enumerate(
            zip(dialogs, _split(n_session, num_dialogs), strict=True)
        ):
            turn = dialog[5] if d > 0 else "F"
            counters = {"F": 0, "M": 0}
            clock = float(rng.uniform(1.0, 6.0))
            for k in range(n_dialog):
                if k > 0 and rng.random() < 0.8:
                    turn = "M" if turn == "F" else "F"
                if d == 0 and k == 1:
                    turn = "M"  # every session has both actors
                prior = np.array(SPEAKER_PRIOR[turn])
                latent = LATENT_CLASSES[_pick(rng, prior)]
                intensity = float(rng.beta(3.0, 1.2))
                intensity *= EXPRESSIVENESS[turn].get(latent, 1.0)
                tempo = _profile(latent, intensity)["tempo"]
                duration = mean_duration * (4.0 / tempo) ** 0.5
                duration *= float(np.exp(rng.normal(0.0, 0.25)))
                duration = float(np.clip(duration, 0.4, 3.0 * mean_duration))
                duration = round(duration * SAMPLE_RATE) / SAMPLE_RATE
                utt = _Planned(
                    id=f"{dialog}_{turn}{counters[turn]:03d}",
                    session=session,
                    dialog=dialog,
                    speaker_gender=turn,
                    latent=latent,
                    intensity=intensity,
                    duration=duration,
                    start=clock,
                )
                counters[turn] += 1
                clock += duration + float(rng.uniform(0.2, 1.5))
                _annotate(rng, utt)
                planned.append(utt)
    return planned


def cue_probability(cue: float) -> float:
    """P(an utterance of ``CUE_CLASSES`` is rated cue-driven | tempo cue).

    ``sigmoid(CUE_SLOPE * (|cue| - CUE_MIDPOINT))``; the fooled gender is
    ``M`` for fast speech (``cue > 0``), ``F`` for slow (bias 4).
    """
    return float(1.0 / (1.0 + math.exp(-CUE_SLOPE * (abs(cue) - CUE_MIDPOINT))))


def _apply_rater_cue(planned: list[_Planned], seed: int) -> None:
    """Bias 4: draws each utterance's tempo cue; re-rates the fooled ones.

    From the utterance's own stream ``default_rng([seed, 3, index])``, so
    the plan's stream (and so every speaker, latent emotion, intensity,
    duration and time) is the default corpus's: the cue, and whether a
    ``CUE_CLASSES`` utterance is cue-driven, depend on nothing else.  Only
    the cue-driven utterances get new rater lines (:func:`_annotate` with
    ``cue_driven``); every other annotation is the default corpus's.
    """
    for index, utt in enumerate(planned):
        rng = np.random.default_rng([seed, 3, index])
        cue = float(
            np.clip(rng.standard_normal(), -TEMPO_CUE_CLIP, TEMPO_CUE_CLIP)
        )
        utt.tempo_cue = cue
        fooled = rng.random() < cue_probability(cue)
        if utt.latent in CUE_CLASSES and fooled:
            utt.cue_driven = "M" if cue > 0 else "F"
            _annotate(rng, utt, cue_driven=utt.cue_driven)


def _profile(
    latent: str, intensity: float, tempo_scale: float = 1.0
) -> dict[str, float]:
    """Acoustic parameters, interpolated from neutral by the intensity.

    ``tempo_scale`` multiplies the syllable rate (bias 4's tempo cue).
    """
    names = (
        "f0",
        "f0_range",
        "gain_db",
        "tempo",
        "oq",
        "breath",
        "jitter",
        "formant",
    )
    neutral = np.array(ACOUSTICS["neutral"])
    target = np.array(ACOUSTICS[latent])
    values = neutral + intensity * (target - neutral)
    out = dict(zip(names, (float(v) for v in values), strict=True))
    if tempo_scale != 1.0:
        out["tempo"] *= float(tempo_scale)
    return out


def _speakers(seed: int) -> dict[tuple[int, str], _Speaker]:
    rng = np.random.default_rng([seed, 1])
    out = {}
    for session in range(1, NUM_SESSIONS + 1):
        for gender in "FM":
            f0 = 205.0 if gender == "F" else 115.0
            scale = 1.15 if gender == "F" else 1.0
            out[(session, gender)] = _Speaker(
                f0=f0 * float(np.exp(rng.normal(0.0, 0.07))),
                formant_scale=scale * float(np.exp(rng.normal(0.0, 0.03))),
            )
    return out


def _resonator_poly(formants: np.ndarray) -> np.ndarray:
    """Denominator of three cascaded two-pole resonators, ``[7]``."""
    r = np.exp(-np.pi * _BANDWIDTHS / SAMPLE_RATE)
    theta = 2 * np.pi * np.minimum(formants, 0.45 * SAMPLE_RATE) / SAMPLE_RATE
    den = np.ones(1)
    for rk, tk in zip(r, theta, strict=True):
        den = np.convolve(den, [1.0, -2 * rk * np.cos(tk), rk**2])
    return den


def synthesize(
    rng: np.random.Generator,
    *,
    num_samples: int,
    latent: str,
    intensity: float,
    speaker_f0: float,
    formant_scale: float,
    tempo_scale: float = 1.0,
) -> np.ndarray:
    """Speech-like audio for one utterance.

    Args:
      rng: the utterance's own generator.
      num_samples: length at 16 kHz.
      latent: latent emotion (a ``LATENT_CLASSES`` name).
      intensity: 0 (sounds neutral) .. 1 (full ``ACOUSTICS`` profile).
      speaker_f0: the speaker's mean F0 (Hz).
      formant_scale: vocal-tract scaling of the vowel formants.
      tempo_scale: factor on the emotion's syllable rate (the same
        duration holds more or fewer syllables); 1 = the emotion's.

    Returns:
      ``[num_samples]`` float64 in [-1, 1].
    """
    p = _profile(latent, intensity, tempo_scale)
    n = num_samples
    # Unit-variance uniform noise (cheaper to draw than Gaussian).
    noise = (rng.random(3 * n + 1) - 0.5) * np.sqrt(12.0)
    # Leading/trailing pauses, then syllables at the emotion's tempo.
    lead = int(rng.uniform(0.03, 0.12) * SAMPLE_RATE)
    tail = int(rng.uniform(0.03, 0.12) * SAMPLE_RATE)
    voiced_len = max(n - lead - tail, n // 2)
    lead = min(lead, n - voiced_len)
    num_syl = max(2, round(voiced_len / SAMPLE_RATE * p["tempo"]))
    widths = rng.uniform(0.7, 1.3, num_syl)
    edges = lead + np.round(
        np.concatenate([[0], np.cumsum(widths) / widths.sum() * voiced_len])
    ).astype(np.int64)
    # F0 contour at a 5 ms frame rate (semitones): declination, one pitch
    # accent per syllable, slow jitter; held constant within a frame.
    num_frames = n // _HOP + 2
    frames = np.arange(num_frames) * _HOP
    accents = rng.normal(0.0, 1.0, num_syl) * p["f0_range"]
    centres = (edges[:-1] + edges[1:]) / 2
    contour = np.interp(frames, centres, accents)
    contour += p["f0_range"] * 0.6 * (0.5 - frames / n)
    f0 = speaker_f0 * p["f0"] * 2 ** (contour / 12)
    f0 *= 1 + p["jitter"] * rng.standard_normal(num_frames)
    f0 = np.repeat(np.clip(f0, 50.0, 600.0), _HOP)[:n]
    # Rosenberg glottal pulse looked up from the phase, differentiated (lip
    # radiation); a small open quotient gives sharp closures (pressed voice).
    oq = p["oq"]
    rise, fall = 0.65 * oq, 0.35 * oq
    grid = (np.arange(_TABLE) + 0.5) / _TABLE
    table = np.where(
        grid < rise,
        0.5 * (1 - np.cos(np.pi * grid / rise)),
        np.where(grid < oq, np.cos(0.5 * np.pi * (grid - rise) / fall), 0.0),
    )
    phase = np.cumsum(f0 / SAMPLE_RATE)
    pulse = table[((phase % 1.0) * _TABLE).astype(np.intp)]
    source = np.diff(pulse, prepend=0.0)
    source += p["breath"] * 0.1 * noise[:n]
    # Per syllable: sine-shaped envelope, a vowel's formants (the filter
    # state carries over), a fricative burst at some onsets.
    out = np.zeros(n)
    zi = np.zeros(6)
    vowels = rng.integers(len(_VOWELS), size=num_syl)
    bursts = rng.random(num_syl) < 0.5
    for k in range(num_syl):
        a, b = edges[k], edges[k + 1]
        env = _ENVELOPE[(np.arange(b - a) * (_TABLE / (b - a))).astype(int)]
        formants = _VOWELS[vowels[k]] * formant_scale * p["formant"]
        den = _resonator_poly(formants)
        out[a:b], zi = signal.lfilter(
            [den.sum()], den, source[a:b] * env, zi=zi
        )
        if bursts[k]:
            m = min(_BURST.size, b - a)
            hiss = np.diff(noise[n + a : n + a + m + 1])
            out[a : a + m] += 0.02 * _BURST[:m] * hiss
    rms = np.sqrt(np.mean(out[edges[0] : edges[-1]] ** 2)) + 1e-12
    out *= _BASE_RMS * 10 ** (p["gain_db"] / 20) / rms
    out += _NOISE_FLOOR * noise[2 * n + 1 :]
    return np.clip(out, -1.0, 1.0)


def _write_wav(path: pathlib.Path, audio: np.ndarray) -> None:
    pcm = np.round(audio * 32767.0).astype("<i2")
    with wave.open(os.fspath(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(pcm.tobytes())


def _block(utt: _Planned) -> str:
    end = utt.start + utt.duration
    v, a, d = utt.vad
    header = (
        f"[{utt.start:.4f} - {end:.4f}]\t{utt.id}\t{utt.code}\t"
        f"[{v:.4f}, {a:.4f}, {d:.4f}]"
    )
    return "\n".join([header, *utt.lines]) + "\n"


def _by_id(utt: _Planned) -> str:
    return utt.id


_MARKER = "demo_corpus.json"
SPEAKERS_FILE = "speakers.csv"
"""The corpus's ``path,speaker`` list (`write_speakers_csv`)."""
# Top-level entries of a demo corpus: all the generator ever writes there
# (a corpus of an earlier version lacks SPEAKERS_FILE).
_OWN_ENTRIES = frozenset(
    {f"Session{k}" for k in range(1, NUM_SESSIONS + 1)}
    | {"rater_gender.json", SPEAKERS_FILE, _MARKER}
)


def write_speakers_csv(root: os.PathLike | str) -> pathlib.Path:
    """Writes ``<root>/speakers.csv``: every wav of the corpus, its speaker.

    The ``path,speaker`` CSV that ``python -m fairser_jax.predict
    --speaker_of`` reads for speaker-wise z-normalisation (paper §2.2.1):
    one row per wav that exists, sorted, its path relative to ``root``
    with ``/`` (the reader resolves it against the CSV's folder, so the
    file works from any directory and after the corpus is moved) and its
    speaker as the reader names it (``Ses01F``: session + gender). Nothing
    else reads it: the feature store's corpus fingerprint hashes the
    utterances' wavs only, and the pipeline's check that a demo corpus is
    complete reads ``demo_corpus.json``. Written to a temporary file and
    renamed into place.

    Returns:
      Its path.
    """
    root = pathlib.Path(root)
    rows = sorted(
        (u.wav_path.relative_to(root).as_posix(), u.speaker)
        for u in read_corpus(root)
        if u.wav_exists
    )
    with fileio.atomic_write(root / SPEAKERS_FILE) as f:
        csv.writer(f, lineterminator="\n").writerows(
            [("path", "speaker"), *rows]
        )
    return root / SPEAKERS_FILE


def _temp_prefixes(target: pathlib.Path) -> tuple[str, str]:
    """Names of our sibling folders: a corpus being written, one replaced."""
    return (f".{target.name}.demo-partial-", f".{target.name}.demo-replaced-")


def _new_sibling(target: pathlib.Path, prefix: str) -> pathlib.Path:
    """A fresh (not yet existing) sibling path of ``target``."""
    while True:
        path = target.with_name(prefix + secrets.token_hex(4))
        if not os.path.lexists(path):
            return path


def _remove_leftovers(target: pathlib.Path) -> None:
    """Deletes the sibling folders an interrupted run left next to ``target``.

    Only real folders named with :func:`_temp_prefixes` are deleted.  A run
    still writing the same ``target`` would lose its folder: two concurrent
    runs into one corpus are not supported (the later one then fails).
    """
    if not target.parent.is_dir():
        return
    prefixes = _temp_prefixes(target)
    for entry in target.parent.iterdir():
        if entry.name.startswith(prefixes) and not entry.is_symlink():
            if entry.is_dir():
                shutil.rmtree(entry)


def _check_target(target: pathlib.Path, overwrite: bool) -> None:
    """Raises unless the corpus may be placed at ``target``.

    Allowed: no such path, an empty folder, or (with ``overwrite``) an
    earlier demo corpus: the marker present and nothing but
    ``_OWN_ENTRIES``.  Nothing is deleted here.
    """
    if not os.path.lexists(target):
        return
    if not target.is_dir():
        raise ValueError(f"{target} exists and is not a directory")
    entries = sorted(e.name for e in target.iterdir())
    if not entries:
        return
    if _MARKER not in entries:
        raise ValueError(
            f"{target} is not empty and holds no demo corpus ({_MARKER}): "
            "choose a new or empty directory (a folder left half-written by "
            "an interrupted run of an earlier version holds no marker "
            "either: delete it by hand if it is one)"
        )
    if not overwrite:
        raise ValueError(
            f"{target} already holds a demo corpus: pass overwrite=True "
            "(--overwrite) to replace it, or choose another directory"
        )
    foreign = [e for e in entries if e not in _OWN_ENTRIES]
    foreign += _foreign_files(target)
    if foreign:
        raise ValueError(
            f"{target} holds a demo corpus and {len(foreign)} file(s) the "
            f"generator did not write ({', '.join(foreign[:5])}): move them "
            "elsewhere before replacing it, or choose another directory"
        )


def _own_files(target: pathlib.Path) -> set[str] | None:
    """The files under the ``Session*`` folders of the demo corpus at
    ``target``, relative to it, as its marker describes them (every
    utterance's wav and every dialog's annotation file); None when the
    marker does not list the utterances."""
    try:
        summary = json.loads((target / _MARKER).read_text(encoding="utf-8"))
        ids = list(summary["latent"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    own = set()
    for utt in ids:
        dialog = utt.rsplit("_", 1)[0]
        session = f"Session{int(utt[3:5])}"
        own.add(f"{session}/sentences/wav/{dialog}/{utt}.wav")
        own.add(f"{session}/dialog/EmoEvaluation/{dialog}.txt")
    return own


def _foreign_files(target: pathlib.Path) -> list[str]:
    """Files (and links) under ``target``'s ``Session*`` folders that the
    generator did not write, relative to ``target``, sorted: replacing the
    corpus would delete them (a user's notes, a re-recorded wav)."""
    own = _own_files(target)
    found = []
    for session in sorted(_OWN_ENTRIES - {SPEAKERS_FILE, _MARKER}):
        folder = target / session
        if not folder.is_dir() or folder.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            base = pathlib.Path(dirpath)
            links = [d for d in dirnames if (base / d).is_symlink()]
            for name in sorted(filenames + links):
                rel = (base / name).relative_to(target).as_posix()
                if own is None or rel not in own or (base / name).is_symlink():
                    found.append(rel)
    return sorted(found)


def _move_into_place(
    partial: pathlib.Path, target: pathlib.Path, overwrite: bool
) -> None:
    """Renames the complete corpus ``partial`` to ``target``.

    An earlier demo corpus at ``target`` is first renamed aside (to a name
    a later run recognises and deletes) and deleted after the swap, so a
    kill at any point leaves ``target`` either absent, the earlier corpus
    or the new one.
    """
    _check_target(target, overwrite)  # nothing changed since the start?
    if not os.path.lexists(target):
        os.rename(partial, target)
    elif not any(target.iterdir()):
        target.rmdir()
        os.rename(partial, target)
    else:
        replaced = _new_sibling(target, _temp_prefixes(target)[1])
        os.rename(target, replaced)
        os.rename(partial, target)
        shutil.rmtree(replaced)


def generate(
    out_dir: os.PathLike | str,
    *,
    num_utterances: int,
    seed: int,
    mean_duration: float | None = None,
    overwrite: bool = False,
    write_audio: bool = True,
    rater_cue: str = "none",
) -> dict:
    """Writes the demo corpus (see the module docstring) into ``out_dir``.

    Args:
      out_dir: corpus root: a new or empty directory, or (with
        ``overwrite``) one that holds an earlier demo corpus.
      num_utterances: total utterances (at least 10, two per session).
      seed: everything is a deterministic function of it.
      mean_duration: mean utterance length in seconds; default
        :func:`default_mean_duration` of ``num_utterances``.
      overwrite: replace an earlier demo corpus in ``out_dir`` (only once
        the new one is complete; a folder holding files the generator did
        not write is never replaced).
      write_audio: ``False`` writes the annotations only (no wav files
        and no ``speakers.csv``, so the reader reports every wav missing);
        the labels are the same as with audio.  For studying the
        annotation model at scale.
      rater_cue: one of ``RATER_CUES``: ``"none"`` (biases 1-3 only: the
        corpus of earlier versions, byte for byte) or ``"tempo"`` (adds
        bias 4: a speaking-rate cue independent of speaker gender and
        emotion that drives the raters of neutral and frustrated speech).

    Returns:
      Summary, also written to ``out_dir/demo_corpus.json`` (without
      ``root``): ``root, generator_version, seed, num_utterances,
      num_files, num_wavs, mean_duration, total_seconds, header_counts``
      (code -> count), ``speaker_gender`` counts, ``latent_counts``,
      ``rater_gender`` and ``latent`` (utterance id -> latent emotion, the
      planted truth); with a ``rater_cue`` other than ``"none"`` also
      ``rater_cue``, ``tempo_cue`` (id -> the cue c, in SD units: the
      syllable rate is scaled by ``exp(TEMPO_CUE_SCALE * c)``) and
      ``cue_driven`` (id -> ``M``/``F`` of the utterances the cue
      re-rated).  A default corpus's marker lacks these keys (as earlier
      versions' did); read a missing ``rater_cue`` as ``"none"``.

    Raises:
      ValueError: ``num_utterances`` below 10, ``mean_duration`` not
        positive, ``rater_cue`` unknown, or ``out_dir`` not empty (see
        ``overwrite``).

    The corpus is written into a temporary sibling of ``out_dir`` and
    renamed into place when complete (see "Atomic generation" above); an
    interrupted call leaves ``out_dir`` as it was.
    """
    if num_utterances < MIN_UTTERANCES:
        raise ValueError(
            f"num_utterances={num_utterances}: the demo corpus needs at least"
            f" {MIN_UTTERANCES} (both actors of each of the 5 sessions)"
        )
    if mean_duration is None:
        mean_duration = default_mean_duration(num_utterances)
    if not mean_duration > 0:
        raise ValueError(f"mean_duration={mean_duration} must be positive")
    if rater_cue not in RATER_CUES:
        raise ValueError(
            f"rater_cue={rater_cue!r} must be one of {', '.join(RATER_CUES)}"
        )
    root = pathlib.Path(out_dir)
    # Work on the real path: a symlinked out_dir keeps pointing at it.
    target = root.resolve()
    _check_target(target, overwrite)
    _remove_leftovers(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _new_sibling(target, _temp_prefixes(target)[0])
    partial.mkdir()
    try:
        summary = _write_corpus(
            partial,
            num_utterances=num_utterances,
            seed=seed,
            mean_duration=float(mean_duration),
            write_audio=write_audio,
            rater_cue=rater_cue,
        )
        _move_into_place(partial, target, overwrite)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return {"root": str(root), **summary}


def _write_corpus(
    root: pathlib.Path,
    *,
    num_utterances: int,
    seed: int,
    mean_duration: float,
    write_audio: bool,
    rater_cue: str = "none",
) -> dict:
    """Writes every file of the corpus into ``root``, the marker last.

    Returns:
      The summary written to the marker (see :func:`generate`).
    """
    planned = _plan(num_utterances, seed, mean_duration)
    if rater_cue == "tempo":
        _apply_rater_cue(planned, seed)
    speakers = _speakers(seed)
    by_dialog: dict[str, list[_Planned]] = collections.defaultdict(list)
    for utt in planned:
        by_dialog[utt.dialog].append(utt)
    for dialog, utts in by_dialog.items():
        session = utts[0].session
        emo_dir = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        wav_dir = root / f"Session{session}" / "sentences" / "wav" / dialog
        emo_dir.mkdir(parents=True, exist_ok=True)
        wav_dir.mkdir(parents=True, exist_ok=True)
        text = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        text += "\n".join(_block(u) for u in utts)
        (emo_dir / f"{dialog}.txt").write_text(text, encoding="utf-8")
    for index, utt in enumerate(planned):
        if not write_audio:
            break
        speaker = speakers[(utt.session, utt.speaker_gender)]
        audio = synthesize(
            np.random.default_rng([seed, 2, index]),
            num_samples=round(utt.duration * SAMPLE_RATE),
            latent=utt.latent,
            intensity=utt.intensity,
            speaker_f0=speaker.f0,
            formant_scale=speaker.formant_scale,
            tempo_scale=math.exp(TEMPO_CUE_SCALE * utt.tempo_cue),
        )
        wav_dir = root / f"Session{utt.session}" / "sentences" / "wav"
        _write_wav(wav_dir / utt.dialog / f"{utt.id}.wav", audio)
    (root / "rater_gender.json").write_text(
        json.dumps(RATER_GENDER, indent=2) + "\n", encoding="utf-8"
    )
    if write_audio:
        write_speakers_csv(root)
    summary = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "num_utterances": len(planned),
        "num_files": len(by_dialog),
        "num_wavs": len(planned) if write_audio else 0,
        "mean_duration": float(mean_duration),
        "total_seconds": round(sum(u.duration for u in planned), 4),
        "header_counts": dict(
            sorted(collections.Counter(u.code for u in planned).items())
        ),
        "speaker_gender": dict(
            sorted(
                collections.Counter(u.speaker_gender for u in planned).items()
            )
        ),
        "latent_counts": {
            c: sum(u.latent == c for u in planned) for c in LATENT_CLASSES
        },
        "rater_gender": dict(RATER_GENDER),
        "latent": {u.id: u.latent for u in sorted(planned, key=_by_id)},
    }
    if rater_cue != "none":
        # Only then: a default corpus's marker is that of earlier versions.
        by_id = sorted(planned, key=_by_id)
        summary["rater_cue"] = rater_cue
        summary["tempo_cue"] = {u.id: round(u.tempo_cue, 6) for u in by_id}
        summary["cue_driven"] = {
            u.id: u.cue_driven for u in by_id if u.cue_driven
        }
    (root / _MARKER).write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    return summary
