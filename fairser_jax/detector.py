"""A trained workdir's fair emotion detectors, applied to new audio.

    detector = Detector.load("/tmp/fairser_demo")          # best variant
    out = detector.predict([wave_a, wave_b], sample_rate=44_100)
    out.probability    # [N, E]: mean over the fold × seed models
    out.sd             # [N, E]: their SD (ddof=1)
    out.decision       # [N, E] bool: probability >= 0.5

Features are made exactly as in training (paper §2.2.1): the workdir's
wav2vec2 checkpoint and layer, the same resampling, channel averaging,
per-utterance normalisation and masked mean pooling
(`fairser_jax.wav2vec2.extraction.Extractor`), then speaker-wise
z-normalisation. A speaker needs several utterances for its own
statistics; with fewer than `MIN_SPEAKER_UTTERANCES` (or no speakers
given) the statistics of the average training speaker are used, with a
warning (docs/DESIGN.md, "Predicting new audio").

What a workdir keeps for this (`train` writes it, checkpoint pruning
leaves it): `params/<variant>.npz` (final parameters of every run),
`detector.json` (the feature store's manifest and the config) and
`normalization.npz` (the average training speaker's mean and SD).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pathlib
import zipfile
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fairser_jax import fileio, models
from fairser_jax import variants as variants_lib
from fairser_jax import workdir as workdir_lib
from fairser_jax.data import features as features_lib
from fairser_jax.train import outputs
from fairser_jax.wav2vec2 import audio, extraction

__all__ = [
    "DETECTOR_FILE",
    "MIN_SPEAKER_UTTERANCES",
    "NORMALIZATION_FILE",
    "Detector",
    "DetectorError",
    "Prediction",
    "write_detector_files",
]

_LOG = logging.getLogger(__name__)

DETECTOR_FILE = workdir_lib.Layout.DETECTOR
NORMALIZATION_FILE = workdir_lib.Layout.NORMALIZATION

MIN_SPEAKER_UTTERANCES = 10
"""Fewest utterances whose own statistics z-normalise a speaker."""

_MIN_BUCKET = 8
_MAX_BATCH = 1024  # rows per call: R runs x 1024 x 256 floats at most


class DetectorError(ValueError):
    """A workdir cannot predict: what is missing, in one line."""


def _rewrite(workdir: pathlib.Path) -> str:
    """How to (re)write the detector's files without retraining."""
    return (
        "without retraining: python -m fairser_jax.train --resume "
        f"--workdir={workdir} --config=<the config it was trained with>."
    )


def _damaged(
    workdir: pathlib.Path, name: str, error: BaseException
) -> DetectorError:
    """The error for a detector file of `workdir` that cannot be read."""
    return DetectorError(
        f"{workdir / name} is damaged ({type(error).__name__}: {error}); "
        f"rewrite it {_rewrite(workdir)}"
    )


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Detector outputs for N recordings and E emotions.

    Attributes:
      emotions: the E detectors, in the paper's order.
      probability: [N, E] float32 mean over the fold × seed models.
      sd: [N, E] float32 SD across them (ddof=1; 0 for a single model).
      decision: [N, E] bool, probability >= 0.5.
      num_models: models averaged per emotion.
      normalization: [N] "speaker" (own statistics) or "training" (the
        average training speaker's).
    """

    emotions: tuple[str, ...]
    probability: np.ndarray
    sd: np.ndarray
    decision: np.ndarray
    num_models: dict[str, int]
    normalization: np.ndarray


def write_detector_files(
    workdir: pathlib.Path,
    feature_manifest: dict,
    raw_features: np.ndarray,
    speakers: Sequence[str],
    config_json: str,
) -> None:
    """Writes `detector.json` and `normalization.npz` (called by `train`).

    The average training speaker: the mean of the speakers' feature means
    and the root mean of their variances, over every extracted utterance of
    the corpus (as the training z-normalisation uses them).
    """
    stats = features_lib.speaker_statistics(raw_features, speakers)
    with fileio.atomic_write(workdir / NORMALIZATION_FILE, "wb") as f:
        np.savez(
            f,
            mean=stats.mean.mean(axis=0).astype(np.float32),
            std=np.sqrt(stats.var.mean(axis=0)).astype(np.float32),
            num_speakers=np.int64(len(stats.names)),
            num_utterances=np.int64(len(stats.group)),
        )
    info = {
        "feature_manifest": {
            k: v for k, v in feature_manifest.items() if k != "skipped"
        },
        "config": json.loads(config_json),
    }
    fileio.atomic_write_text(
        workdir / DETECTOR_FILE, json.dumps(info, indent=2)
    )


def _bucket(n: int) -> int:
    return max(_MIN_BUCKET, 1 << max(0, math.ceil(math.log2(max(n, 1)))))


def znormalize(
    features: np.ndarray,
    speakers: Sequence[str | None] | None,
    mean: np.ndarray,
    std: np.ndarray,
    *,
    min_utterances: int = MIN_SPEAKER_UTTERANCES,
    eps: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray]:
    """Speaker-wise z-normalisation with the training fallback.

    A speaker with at least `min_utterances` rows uses its own mean and
    (population) SD, exactly as `features.speaker_znorm` in training; other
    rows (and rows whose speaker is None) use `mean` / `std`.

    Returns:
      ([N, H] float32, [N] "speaker" | "training").
    """
    x = np.asarray(features, np.float64)
    how = np.full(x.shape[0], "training", dtype=object)
    out = (x - mean) / np.where(std > eps, std, 1.0)
    if speakers is not None:
        spk = np.asarray([("" if s is None else str(s)) for s in speakers])
        stats = features_lib.speaker_statistics(x, spk)
        own = ((stats.names != "") & (stats.count >= min_utterances))[
            stats.group
        ]
        sd = np.sqrt(stats.var)
        sd = np.where(sd > eps, sd, 1.0)
        z = (x - stats.mean[stats.group]) / sd[stats.group]
        out[own] = z[own]
        how[own] = "speaker"
    return out.astype(np.float32), how.astype(str)


class Detector:
    """One variant's trained detectors (every emotion, fold and seed).

    Build with `Detector.load`; `predict` takes waveforms, `predict_files`
    sound files. The model is applied to all runs at once (vmap over the
    runs axis) on batches of at most 1024 recordings, jitted once per
    padded batch size (powers of two, >= 8).
    """

    def __init__(
        self,
        workdir: pathlib.Path,
        variant: str,
        runs: list,
        params,
        config: dict,
        feature_manifest: dict,
        mean: np.ndarray,
        std: np.ndarray,
        extractor: extraction.Extractor,
        num_rater_groups: int,
    ):
        self.workdir = workdir
        self.variant = variant
        self.runs = runs
        self.config = config
        self.feature_manifest = feature_manifest
        self.mean = mean
        self.std = std
        self.extractor = extractor
        self.emotions = tuple(dict.fromkeys(r.emotion for r in runs))
        self._emotion_index = np.array(
            [self.emotions.index(r.emotion) for r in runs]
        )
        model = models.FairSERModel(
            encoder_sizes=tuple(config["model"]["encoder_sizes"]),
            dropout_rate=float(config["model"]["dropout_rate"]),
            adversary_hidden=int(config["model"]["adversary_hidden"]),
            num_rater_groups=num_rater_groups,
        )
        self._params = jax.tree.map(jnp.asarray, params)

        def logits(stacked, x):
            def one(p):
                return model.apply({"params": p}, x, train=False).logits

            return jax.vmap(one)(stacked)

        self._logits = jax.jit(logits)

    # ---------------------------------------------------------------- load

    @classmethod
    def load(
        cls,
        workdir: str | os.PathLike,
        variant: str | None = None,
        *,
        allow_pickle: bool | None = None,
    ) -> Detector:
        """The detectors of `variant` (default: the first of
        `fairser_jax.variants.preference()` the workdir has: the best
        two-sided variant, else Fair_spk, else DNN, else Fair_rat).

        Raises:
          DetectorError: no trained model, a missing file, an unknown
            variant, or a feature extractor that is not available (or not
            the one the models were trained on); one line each.
        """
        workdir = pathlib.Path(workdir)
        if not workdir.is_dir():
            raise DetectorError(f"{workdir} is not a directory (--workdir).")
        params_dir = workdir / workdir_lib.Layout.PARAMS
        have = sorted(p.stem for p in params_dir.glob("*.npz"))
        if not have:
            raise DetectorError(
                f"{workdir} has no trained models (no params/<variant>.npz); "
                "train first: python -m fairser_jax.main --workdir="
                f"{workdir} ..."
            )
        if variant is None:
            usable = [v for v in variants_lib.preference() if v in have]
            if not usable:
                raise DetectorError(
                    f"{workdir} has models of {', '.join(have)} only; pass "
                    "--variant (a fixed-α sweep holds one model per α)."
                )
            variant = usable[0]
        elif variant not in have:
            raise DetectorError(
                f"{workdir} has no trained {variant} (params/{variant}.npz); "
                f"it has {', '.join(have)}."
            )
        if variant in variants_lib.REGISTRY and variants_lib.get(variant).sweep:
            raise DetectorError(
                f"{variant} holds one model per α of the Fig. 3a sweep, not "
                "one detector; pick one of "
                f"{', '.join(variants_lib.preference())}."
            )
        for name in (DETECTOR_FILE, NORMALIZATION_FILE):
            if not (workdir / name).is_file():
                raise DetectorError(
                    f"{workdir / name} is missing: workdirs trained before "
                    f"predict existed lack it; add it {_rewrite(workdir)}"
                )
        try:
            info = json.loads((workdir / DETECTOR_FILE).read_text("utf-8"))
            config, manifest = info["config"], info["feature_manifest"]
            config["features"]["checkpoint"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _damaged(workdir, DETECTOR_FILE, e) from None
        try:
            with np.load(workdir / NORMALIZATION_FILE, allow_pickle=False) as f:
                mean, std = np.asarray(f["mean"]), np.asarray(f["std"])
        except (
            OSError,
            ValueError,
            KeyError,
            EOFError,
            zipfile.BadZipFile,
        ) as e:
            raise _damaged(workdir, NORMALIZATION_FILE, e) from None
        try:
            runs, params = outputs.load_params(params_dir / f"{variant}.npz")
        except ValueError as e:
            raise DetectorError(str(e)) from None
        checkpoint = config["features"]["checkpoint"]
        pickle_ok = (
            config["features"].get("allow_pickle", False)
            if allow_pickle is None
            else allow_pickle
        )
        try:
            loaded = extraction.load_checkpoint(
                checkpoint, allow_pickle=pickle_ok
            )
        except Exception as err:  # noqa: BLE001 - one line, named
            raise DetectorError(
                f"the models in {workdir} were trained on features of the "
                f"wav2vec2 checkpoint {checkpoint!r}, which cannot be loaded "
                f"here ({type(err).__name__}: {str(err).splitlines()[0]}); "
                "put it in the local Hugging Face cache or at that path."
            ) from None
        now = extraction.checkpoint_id(checkpoint)
        if now != manifest.get("checkpoint"):
            raise DetectorError(
                f"the models in {workdir} were trained on features of "
                f"{manifest.get('checkpoint')}, but {checkpoint!r} is now "
                f"{now}: its weights changed; predicting with them would "
                "not use the features the models learnt from."
            )
        layer = int(config["features"]["layer"])
        extractor = extraction.Extractor(
            loaded,
            layer=layer,
            batch_seconds=float(config["features"]["batch_seconds"]),
        )
        kernel = params["adversary_head"]["out"]["kernel"]
        num_rater_groups = max(2, int(kernel.shape[-1]))
        return cls(
            workdir,
            variant,
            runs,
            params,
            config,
            manifest,
            mean,
            std,
            extractor,
            num_rater_groups,
        )

    # ------------------------------------------------------------- predict

    @property
    def znorm(self) -> bool:
        """Whether training z-normalised the features."""
        return bool(self.config["features"].get("znorm", True))

    def predict_features(
        self,
        features: np.ndarray,
        speakers: Sequence[str | None] | None = None,
        *,
        min_speaker_utterances: int = MIN_SPEAKER_UTTERANCES,
    ) -> Prediction:
        """Probabilities from pooled wav2vec2 features [N, H] (raw)."""
        x = np.asarray(features, np.float32)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"features must be [N, {self.mean.shape[0]}] pooled wav2vec2 "
                f"features of this workdir's extractor; got {x.shape}."
            )
        if speakers is not None and len(speakers) != x.shape[0]:
            raise ValueError(
                f"{len(speakers)} speakers for {x.shape[0]} recordings; give "
                "one speaker (or None) per recording."
            )
        if self.znorm:
            x, how = znormalize(
                x,
                speakers,
                self.mean,
                self.std,
                min_utterances=min_speaker_utterances,
            )
        else:
            how = np.full(x.shape[0], "none")
        n = x.shape[0]
        parts = []
        for start in range(0, n, _MAX_BATCH):
            chunk = x[start : start + _MAX_BATCH]
            padded = np.zeros((_bucket(len(chunk)), x.shape[1]), np.float32)
            padded[: len(chunk)] = chunk
            logits = np.asarray(self._logits(self._params, padded))
            parts.append(logits[:, : len(chunk)].astype(np.float64))
        logits = np.concatenate(parts, axis=1)
        prob = 1.0 / (1.0 + np.exp(-logits))  # [R, N]
        out_p = np.zeros((n, len(self.emotions)), np.float32)
        out_sd = np.zeros_like(out_p)
        counts = {}
        for e, emotion in enumerate(self.emotions):
            rows = prob[self._emotion_index == e]
            counts[emotion] = int(rows.shape[0])
            out_p[:, e] = rows.mean(axis=0)
            if rows.shape[0] > 1:
                out_sd[:, e] = rows.std(axis=0, ddof=1)
        return Prediction(
            emotions=self.emotions,
            probability=out_p,
            sd=out_sd,
            decision=out_p >= 0.5,
            num_models=counts,
            normalization=how,
        )

    def extract(
        self,
        sources: Sequence[os.PathLike | str | audio.Waveform],
        *,
        progress: bool = False,
    ) -> extraction.Extraction:
        """Pooled features of files or waveforms; bad audio is skipped."""
        ids = [str(i) for i in range(len(sources))]
        return self.extractor.run(
            ids, list(sources), skip_bad_audio=True, progress=progress
        )

    def predict(
        self,
        waveforms: Sequence[np.ndarray],
        sample_rate: int,
        *,
        speakers: Sequence[str | None] | None = None,
        min_speaker_utterances: int = MIN_SPEAKER_UTTERANCES,
    ) -> Prediction:
        """Probabilities of every emotion for each waveform.

        Args:
          waveforms: N arrays, [T] mono or [T, channels], float or PCM int.
          sample_rate: their rate in Hz (resampled as in training).
          speakers: optional speaker of each waveform; None: every
            waveform is normalised with the training statistics.
          min_speaker_utterances: fewer utterances of a speaker fall back
            to the training statistics (with a warning).

        Returns:
          A `Prediction` of N rows.

        Raises:
          audio.AudioError: a waveform is empty, too short or not finite
            (naming ``waveforms[i]``).
        """
        sources = [
            audio.Waveform(np.asarray(w), int(sample_rate), f"waveforms[{i}]")
            for i, w in enumerate(waveforms)
        ]
        result = self.extract(sources)
        if result.skipped:
            first = result.skipped[0]
            raise audio.AudioError(
                first.path,
                first.reason,
                first.message.removeprefix(f"{first.path}: "),
            )
        out = self.predict_features(
            result.features,
            speakers,
            min_speaker_utterances=min_speaker_utterances,
        )
        warn_fallback(speakers, out.normalization, min_speaker_utterances)
        return out


def warn_fallback(speakers, how: np.ndarray, min_utterances: int) -> None:
    """One warning naming the speakers normalised with training statistics."""
    if speakers is None:
        _LOG.info(
            "no speakers given: features are z-normalised with the average "
            "training speaker's statistics"
        )
        return
    few = sorted(
        {str(s) for s, h in zip(speakers, how, strict=True) if h == "training"}
    )
    if few:
        shown = ", ".join(few[:5]) + (" ..." if len(few) > 5 else "")
        _LOG.warning(
            "%d speaker(s) have fewer than %d utterances (%s): their "
            "recordings are z-normalised with the average training "
            "speaker's statistics, not their own (less accurate; give more "
            "recordings per speaker)",
            len(few),
            min_utterances,
            shown,
        )
