"""Pooled wav2vec2 features for a corpus, cached as a feature store.

    files ─► audio.load_waveform ─► plan_batches (length ladder) ─► jit
      (model apply + masked mean over valid frames) ─► [N, H] float32
      ─► fairser_jax.data.features.save (ids, features, manifest)

The utterance-level feature of the paper (§2.2.1) is the mean over the
valid frames of one layer (default: the last hidden state):

.. math::
    x_u = \\frac{1}{|F_u|} \\sum_{f \\in F_u} h^{(\\ell)}_{u,f}

where ``F_u`` are the frames whose receptive field lies inside the
utterance (``Wav2Vec2Output.frame_mask``). Padding never enters: the
model masks it and the mean skips it, so a feature does not depend on
which other utterances share its batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pathlib
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import fairser_jax
from fairser_jax import progress as progress_lib
from fairser_jax.data import features as features_lib
from fairser_jax.data import layouts
from fairser_jax.wav2vec2 import audio
from fairser_jax.wav2vec2 import model as model_lib
from fairser_jax.wav2vec2 import weights as weights_lib

DEFAULT_BATCH_SECONDS = 32.0
DEFAULT_LADDER_RATIO = 1.25
POOLING = "mean"
WINDOW_SECONDS = 60.0
"""Recordings longer than this are encoded in windows of this length
(`Extractor.run`), so memory is bounded whatever the length; shorter ones
(every IEMOCAP utterance) are encoded whole."""
WINDOW_CONTEXT_SECONDS = 2.0
"""Audio each window sees beyond the part whose frames it contributes, on
either side (wav2vec2's positional convolution spans 2.56 s)."""
RANDOM_SEED = 0

_LOG = logging.getLogger(__name__)
PathLike = str | os.PathLike


def masked_mean(hidden: jax.Array, frame_mask: jax.Array) -> jax.Array:
    """Mean over valid frames.

    Args:
        hidden: ``[B, F, H]`` frame features.
        frame_mask: ``[B, F]`` bool, True for valid frames (≥ 1 per row).

    Returns:
        ``[B, H]``; a row without valid frames gives 0 (never NaN).
    """
    weights = frame_mask.astype(hidden.dtype)
    total = jnp.sum(hidden * weights[..., None], axis=1)
    count = jnp.maximum(jnp.sum(weights, axis=1), 1.0)
    return total / count[:, None]


def select_layer(output: model_lib.Wav2Vec2Output, layer: int) -> jax.Array:
    """``[B, F, H]`` of the chosen layer.

    ``layer == -1`` is ``last_hidden_state`` (the default); any other
    value indexes ``hidden_states`` in HF's convention: 0 = input of the
    first transformer layer, ``i`` = output of layer ``i``. For the
    "stable" family ``layer=num_hidden_layers`` is the last layer *before*
    the final layer norm, ``-1`` after it; for "base" they coincide.
    """
    if layer == -1:
        return output.last_hidden_state
    return output.hidden_states[layer]


def check_layer(config: model_lib.Wav2Vec2Config, layer: int) -> None:
    """Raises ValueError unless ``layer`` indexes ``hidden_states``."""
    count = int(config.num_hidden_layers) + 1
    if not -count <= layer < count:
        raise ValueError(
            f"layer={layer} is out of range: this checkpoint has "
            f"{count} hidden states (embeddings + {count - 1} layers); pass "
            f"--layer in [{-count}, {count - 1}] (-1 = last)."
        )


def make_pooled_apply(
    model: model_lib.Wav2Vec2Model, layer: int
) -> Callable[[dict, jax.Array, jax.Array], jax.Array]:
    """Jitted ``(params, input_values[B,T], mask[B,T]) -> pooled[B,H]``.

    One compilation per distinct ``(B, T)``; ``audio.plan_batches`` keeps
    their number at most the number of ladder rungs plus one.
    """

    def apply(
        params: dict, input_values: jax.Array, attention_mask: jax.Array
    ) -> jax.Array:
        output = model.apply(
            {"params": params},
            input_values,
            attention_mask,
            output_hidden_states=layer != -1,
        )
        return masked_mean(select_layer(output, layer), output.frame_mask)

    return jax.jit(apply)


def make_window_apply(
    model: model_lib.Wav2Vec2Model, layer: int
) -> Callable[[dict, jax.Array, jax.Array, jax.Array], tuple]:
    """Jitted ``(params, input_values[1,W], mask[1,W], keep[1,F]) ->
    (sum of the kept frames' features [H], their count)``: one window of a
    long recording (`Extractor.run`)."""

    def apply(params, input_values, attention_mask, keep):
        output = model.apply(
            {"params": params},
            input_values,
            attention_mask,
            output_hidden_states=layer != -1,
        )
        hidden = select_layer(output, layer)
        weights = (output.frame_mask & keep).astype(hidden.dtype)
        return (
            jnp.sum(hidden * weights[..., None], axis=(0, 1)),
            jnp.sum(weights),
        )

    return jax.jit(apply)


def window_plan(
    num_samples: int, window: int, context: int
) -> list[tuple[int, int, int]]:
    """How a recording of ``num_samples`` is split into windows.

    Window k reads ``[start_k, start_k + window)`` and contributes the
    frames whose centre lies in ``[lo_k, hi_k)``: the middle of its window,
    ``context`` samples in from each side it shares with a neighbour. The
    ranges ``[lo_k, hi_k)`` tile ``[0, num_samples)``, so every frame
    centre of the recording belongs to exactly one window, seen with at
    least ``context`` samples of audio around it.

    Returns:
      ``(start_k, lo_k, hi_k)`` per window.
    """
    if num_samples <= window:
        return [(0, 0, num_samples)]
    stride = window - 2 * context
    if stride <= 0:
        raise ValueError(
            f"window {window} must exceed twice the context {context}"
        )
    plan = []
    start = 0
    while True:
        lo = 0 if start == 0 else start + context
        last = start + window >= num_samples
        hi = num_samples if last else start + window - context
        plan.append((start, lo, hi))
        if last:
            return plan
        start += stride


def truncate(
    config: model_lib.Wav2Vec2Config, params: dict, layer: int
) -> tuple[model_lib.Wav2Vec2Config, dict]:
    """Drops the transformer layers after ``layer`` (``0 <= layer``).

    ``hidden_states[layer]`` depends only on the layers before it, so a
    model cut to ``layer`` layers yields the same features and skips the
    rest (wav2vec2-base at layer 1: 11 of 12 layers). The stacked layer
    parameters ``encoder/layers/…`` ``[L, …]`` keep their first ``layer``
    rows (none at ``layer=0``: the ``layers`` subtree is dropped). In both
    families the cut model's ``hidden_states[layer]`` is its last entry,
    before any final layer norm, as in the full model.
    """
    if layer >= int(config.num_hidden_layers):
        return config, params
    encoder = {k: v for k, v in params["encoder"].items() if k != "layers"}
    if layer > 0:
        encoder["layers"] = jax.tree.map(
            lambda stacked: stacked[:layer], params["encoder"]["layers"]
        )
    config = dataclasses.replace(config, num_hidden_layers=layer)
    return config, {**params, "encoder": encoder}


def min_input_samples(config: model_lib.Wav2Vec2Config) -> int:
    """Shortest input length with at least one conv frame.

    The smallest ``n`` with ``feature_lengths(config, n) > 0``.
    """
    receptive, hop = audio.conv_geometry(config.conv_kernel, config.conv_stride)
    candidates = np.arange(1, receptive + hop + 1)
    counts = np.asarray(model_lib.feature_lengths(config, candidates))
    return int(candidates[np.argmax(counts > 0)])


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An utterance left out by ``skip_bad_audio``."""

    id: str
    path: str
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Extraction:
    """Result of ``Extractor.run``.

    Attributes:
        ids: kept utterance ids, in input order.
        features: ``[len(ids), H]`` float32.
        skipped: utterances left out, with the reason.
        audio_seconds: total duration of the kept audio.
        wall_seconds: time spent in ``run``.
    """

    ids: list[str]
    features: np.ndarray
    skipped: list[Skipped]
    audio_seconds: float
    wall_seconds: float


class Extractor:
    """Pooled features from a loaded checkpoint.

    Holds the jitted apply function, so repeated ``run`` calls on one
    instance reuse compiled shapes.

    Args:
        checkpoint: config, params and preprocessor config.
        layer: -1 = last hidden state, else an index into hidden states.
        batch_seconds: padded audio per batch (``B × T``), in seconds.
        ladder_ratio: growth factor of the padded-length ladder.
        precision: matmul/conv precision. ``"highest"`` (default) is full
            float32 everywhere; it changes nothing on CPU (measured:
            bit-identical, same speed) and keeps batch invariance at 1e-4
            on GPU/TPU, whose default is TF32/bf16 passes.
    """

    def __init__(
        self,
        checkpoint: weights_lib.LoadedCheckpoint,
        *,
        layer: int = -1,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        ladder_ratio: float = DEFAULT_LADDER_RATIO,
        precision: str | None = "highest",
    ):
        config = checkpoint.config
        check_layer(config, layer)
        if batch_seconds <= 0:
            raise ValueError(
                f"batch_seconds must be positive, got {batch_seconds}"
            )
        params = checkpoint.params
        if layer != -1:
            layer %= int(config.num_hidden_layers) + 1
            config, params = truncate(config, params, layer)
        self.config = config
        self.params = params
        self.layer = layer
        self.ladder_ratio = ladder_ratio
        self.prep = audio.Preprocessing.from_preprocessor(
            dict(checkpoint.preprocessor or {}),
            min_samples=min_input_samples(config),
        )
        self.receptive, self.hop = audio.conv_geometry(
            config.conv_kernel, config.conv_stride
        )
        self.batch_samples = int(batch_seconds * self.prep.sample_rate)
        self.window_samples = int(WINDOW_SECONDS * self.prep.sample_rate)
        self.context_samples = int(
            WINDOW_CONTEXT_SECONDS * self.prep.sample_rate
        )
        self.hidden_size = int(config.hidden_size)
        model = model_lib.Wav2Vec2Model(config, precision=precision)
        self._apply = make_pooled_apply(model, layer)
        self._window = make_window_apply(model, layer)

    def pooled_long(self, wave: np.ndarray) -> np.ndarray:
        """Pooled ``[H]`` feature of a recording longer than
        `WINDOW_SECONDS`, encoded window by window (`window_plan`): the
        mean of its frames' features, each frame computed with at least
        `WINDOW_CONTEXT_SECONDS` of audio on each side instead of the
        whole recording (docs/DESIGN.md gives the measured difference)."""
        width = self.window_samples
        frames = int(model_lib.feature_lengths(self.config, width))
        centres = np.arange(frames) * self.hop + self.receptive / 2
        total = np.zeros(self.hidden_size, np.float64)
        count = 0.0
        for start, lo, hi in window_plan(
            wave.shape[0], width, self.context_samples
        ):
            piece = wave[start : start + width]
            values, mask = audio.pad_batch([piece], width, 1)
            keep = ((start + centres >= lo) & (start + centres < hi))[None]
            frame_sum, frame_count = self._window(
                self.params, values, mask, keep
            )
            total += np.asarray(frame_sum, np.float64)
            count += float(frame_count)
        return (total / max(count, 1.0)).astype(np.float32)

    def pooled(
        self, input_values: np.ndarray, attention_mask: np.ndarray
    ) -> jax.Array:
        """Pooled ``[B, H]`` features of one padded batch (async)."""
        return self._apply(self.params, input_values, attention_mask)

    def _load(self, path: PathLike, padded_length: int) -> np.ndarray:
        wave = audio.load_waveform(path, self.prep)
        if wave.shape[0] > padded_length:
            raise audio.AudioError(
                path,
                "unreadable",
                f"its header announced at most {padded_length} samples at "
                f"{self.prep.sample_rate} Hz but {wave.shape[0]} were read; "
                "the file is damaged: re-encode it.",
            )
        return wave

    def run(
        self,
        ids: Sequence[str],
        paths: Sequence[PathLike],
        *,
        skip_bad_audio: bool = False,
        progress: bool = True,
    ) -> Extraction:
        """Extracts one pooled feature per file.

        Args:
            ids: one id per file.
            paths: sound files.
            skip_bad_audio: leave out (and report) unreadable, empty,
                too-short or non-finite audio instead of raising.
            progress: show a tqdm bar (utterances/s, × real time).

        Returns:
            ``Extraction`` in input order.

        Raises:
            audio.AudioError: bad audio and ``skip_bad_audio`` is False.
            ValueError: a feature came out non-finite.
        """
        if len(ids) != len(paths):
            raise ValueError(f"{len(ids)} ids for {len(paths)} paths")
        start_time = time.perf_counter()
        skipped: list[Skipped] = []

        def reject(index: int, error: audio.AudioError) -> None:
            if not skip_bad_audio:
                raise error
            skipped.append(
                Skipped(ids[index], error.path, error.reason, str(error))
            )
            _LOG.warning("skipping %s: %s", ids[index], error)

        lengths: dict[int, int] = {}
        for i, path in enumerate(paths):
            try:
                n = audio.source_length(path, self.prep.sample_rate)
            except audio.AudioError as error:
                reject(i, error)
                continue
            lengths[i] = max(n, 1)
        # Recordings longer than a window are encoded window by window
        # after the batches (`pooled_long`); the rest in padded batches.
        long = [i for i in sorted(lengths) if lengths[i] > self.window_samples]
        windowed = set(long)
        candidates = [i for i in sorted(lengths) if i not in windowed]
        batches = audio.plan_batches(
            [lengths[i] for i in candidates],
            batch_samples=self.batch_samples,
            receptive=self.receptive,
            hop=self.hop,
            ratio=self.ladder_ratio,
        )

        pooled: dict[int, np.ndarray] = {}
        audio_samples = 0
        bar = progress_lib.bar(
            enabled=progress,
            total=len(paths),
            unit="utt",
            desc=self.config.model_type,
        )
        bar.update(len(paths) - len(candidates) - len(long))
        pending: tuple[list[int], jax.Array, int] | None = None

        def collect(rows: list[int], result: jax.Array, samples: int) -> None:
            values = np.asarray(result)
            for row, index in enumerate(rows):
                if not np.all(np.isfinite(values[row])):
                    error = ValueError(
                        f"{os.fspath(paths[index])}: the pooled feature is "
                        "not finite although the audio is; please report "
                        "this with the file."
                    )
                    if not skip_bad_audio:
                        raise error
                    skipped.append(
                        Skipped(
                            ids[index],
                            os.fspath(paths[index]),
                            "non_finite_feature",
                            str(error),
                        )
                    )
                    continue
                pooled[index] = values[row]
            bar.update(len(rows))
            elapsed = max(time.perf_counter() - start_time, 1e-9)
            bar.set_postfix(
                realtime=f"{samples / self.prep.sample_rate / elapsed:.1f}x"
            )

        try:
            for batch in batches:
                rows, waves = [], []
                for position in batch.indices:
                    index = candidates[position]
                    try:
                        wave = self._load(paths[index], batch.padded_length)
                    except audio.AudioError as error:
                        reject(index, error)
                        bar.update(1)
                        continue
                    rows.append(index)
                    waves.append(wave)
                    audio_samples += wave.shape[0]
                if not rows:
                    continue
                values, mask = audio.pad_batch(
                    waves, batch.padded_length, batch.batch_size
                )
                # Dispatch is asynchronous: the next batch's audio is read
                # while this one runs; the previous result is collected
                # meanwhile.
                result = self.pooled(values, mask)
                if pending is not None:
                    collect(*pending)
                pending = (rows, result, audio_samples)
            if pending is not None:
                collect(*pending)
            for index in long:
                try:
                    wave = audio.load_waveform(paths[index], self.prep)
                except audio.AudioError as error:
                    reject(index, error)
                    bar.update(1)
                    continue
                audio_samples += wave.shape[0]
                collect([index], self.pooled_long(wave)[None], audio_samples)
        finally:
            bar.close()

        kept = [i for i in range(len(paths)) if i in pooled]
        features = (
            np.stack([pooled[i] for i in kept]).astype(np.float32)
            if kept
            else np.zeros((0, self.hidden_size), np.float32)
        )
        position = {uid: k for k, uid in enumerate(ids)}
        skipped.sort(key=lambda s: position[s.id])
        return Extraction(
            ids=[ids[i] for i in kept],
            features=features,
            skipped=skipped,
            audio_seconds=audio_samples / self.prep.sample_rate,
            wall_seconds=time.perf_counter() - start_time,
        )


# --------------------------------------------------------------------------
# Corpus-level driver with the feature-store cache.


def load_checkpoint(
    name_or_path: PathLike, *, allow_pickle: bool = False
) -> weights_lib.LoadedCheckpoint:
    """Built-in random checkpoints by name, else ``weights.load``."""
    name = os.fspath(name_or_path)
    if name in weights_lib.BUILTIN_CHECKPOINTS and not os.path.isdir(name):
        return weights_lib.random_checkpoint(name, seed=RANDOM_SEED)
    return weights_lib.load(name, allow_pickle=allow_pickle)


def checkpoint_id(name_or_path: PathLike) -> str:
    """A string that changes whenever the checkpoint's weights may have.

    Built-ins: ``random-base@seed0``. Local directory: its absolute path
    plus a digest of the names, sizes and modification times of its files.
    Hub name: the name plus the cached snapshot's commit when one is found.
    """
    name = os.fspath(name_or_path)
    if os.path.isdir(name):
        root = pathlib.Path(name).resolve()
        digest = hashlib.sha256()
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(
                f"{file.relative_to(root)}|{stat.st_size}|"
                f"{stat.st_mtime_ns}\n".encode()
            )
        return f"{root}#{digest.hexdigest()[:16]}"
    if name in weights_lib.BUILTIN_CHECKPOINTS:
        return f"{name}@seed{RANDOM_SEED}"
    try:
        import huggingface_hub

        cached = huggingface_hub.try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - a malformed name just has no commit
        cached = None
    if isinstance(cached, str):
        return f"{name}@{pathlib.Path(cached).parent.name}"
    return name


def wav_list_fingerprint(ids: Sequence[str], paths: Sequence[PathLike]) -> str:
    """Fingerprint of a list of files: ids, paths, sizes and mtimes."""
    digest = hashlib.sha256()
    for uid, path in zip(ids, paths, strict=True):
        try:
            stat = os.stat(path)
            signature = f"{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            signature = "missing"
        digest.update(f"{uid}|{os.path.abspath(path)}|{signature}\n".encode())
    return digest.hexdigest()


def resolve_source(
    source: PathLike | Sequence[PathLike],
    *,
    format: str = "auto",
) -> tuple[list[str], list[pathlib.Path], str]:
    """``(ids, wav paths, fingerprint)`` of a corpus root or a file list.

    A corpus root (IEMOCAP layout, or a manifest folder holding
    ``utterances.csv``) gives the ids of its utterances whose wav exists; a
    list of files gives the file stems.
    """
    if isinstance(source, str | os.PathLike):
        root = pathlib.Path(source)
        if not root.is_dir():
            raise ValueError(
                f"{root}: not a corpus directory. Pass an IEMOCAP-layout "
                "root (--corpus) or a list of wav files (--wav_list)."
            )
        # Only ids and wavs matter here: no label, attribute, fold or rater
        # checks (one fold: features do not depend on folds).
        records = layouts.read(
            root,
            format=format,
            classes=None,
            speaker_attribute=None,
            rater_attribute=None,
            num_folds=1,
            raters=False,
        ).records
        utterances = [u for u in records if u.wav_path.exists()]
        if not utterances:
            raise ValueError(
                f"{root}: no utterance with an existing wav file "
                "(expected Session*/sentences/wav/<dialog>/<id>.wav, or the "
                "wav_path column of utterances.csv)."
            )
        ids = [u.id for u in utterances]
        paths = [pathlib.Path(u.wav_path) for u in utterances]
        return ids, paths, features_lib.corpus_fingerprint(utterances)
    paths = [pathlib.Path(p) for p in source]
    if not paths:
        raise ValueError("the list of wav files is empty")
    ids = [p.stem for p in paths]
    seen: dict[str, pathlib.Path] = {}
    for uid, path in zip(ids, paths, strict=True):
        if uid in seen:
            raise ValueError(
                f"{seen[uid]} and {path} have the same stem {uid!r}; ids "
                "must be unique: rename one of them."
            )
        seen[uid] = path
    return ids, paths, wav_list_fingerprint(ids, paths)


def expected_manifest(
    checkpoint: PathLike, fingerprint: str, *, layer: int
) -> dict:
    """Manifest fields that decide whether a cached store can be reused.

    Everything the features depend on: the weights (``checkpoint_id``),
    the layer, the pooling, how recordings longer than `WINDOW_SECONDS`
    are windowed, the audio (``fingerprint``) and the code version. The
    batch size does not enter: features are independent of batch
    composition.
    """
    return {
        "checkpoint": checkpoint_id(checkpoint),
        "layer": int(layer),
        "pooling": POOLING,
        "window_seconds": [WINDOW_SECONDS, WINDOW_CONTEXT_SECONDS],
        "corpus_fingerprint": fingerprint,
        "fairser_jax_version": fairser_jax.__version__,
    }


def _refuse_another_corpus(out: pathlib.Path, ids: Sequence[str]) -> None:
    """Raises when the stale store at ``out`` holds another corpus's
    features (most of its utterances are not this corpus's): it is not
    this corpus's to replace, whatever its age."""
    try:
        stored = features_lib.load(out).ids
    except (features_lib.FeatureStoreError, OSError):
        return  # damaged: ours to recompute
    ours = set(ids)
    foreign = [i for i in stored if i not in ours]
    if stored and len(foreign) * 2 > len(stored):
        raise ValueError(
            f"{out} holds the features of another corpus ({len(foreign)} of "
            f"its {len(stored)} utterances, e.g. {foreign[0]!r}, are not in "
            "this one); it is not replaced. Choose another "
            "--config.features.path (or --out), or delete it if it is not "
            "needed."
        )


def extract_corpus(
    source: PathLike | Sequence[PathLike],
    checkpoint: PathLike,
    out: PathLike,
    *,
    layer: int = -1,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    skip_bad_audio: bool = False,
    allow_pickle: bool = False,
    progress: bool = True,
    format: str = "auto",
) -> features_lib.FeatureSet:
    """Extracts (or reuses) pooled features and writes the feature store.

    Args:
        source: corpus root in IEMOCAP layout, or a sequence of sound files.
        checkpoint: ``random-base`` / ``random-tiny`` (seeded random
            weights), a local HF checkpoint directory, or a hub name in the
            local HF cache.
        out: feature store path (``.npz``).
        layer: -1 = last hidden state; else an index into hidden states.
        batch_seconds: padded audio per batch, ``B × T ≤ batch_seconds ×
            sample rate``.
        skip_bad_audio: leave out bad files (listed in the manifest under
            ``skipped``) instead of raising.
        allow_pickle: allow loading ``pytorch_model.bin`` checkpoints.
        progress: show a progress bar.
        format: layout of a corpus root (``config.data.format``).

    Returns:
        The feature set, read back from ``out`` (ids, features [N, H],
        manifest).
    """
    ids, paths, fingerprint = resolve_source(source, format=format)
    expected = expected_manifest(checkpoint, fingerprint, layer=layer)
    out = pathlib.Path(out)
    if out.exists():
        try:
            cached = features_lib.load(out, expected=expected)
        except features_lib.NotAFeatureStoreError as exc:
            # Not ours: it may be a user's file; never overwrite it.
            raise ValueError(
                f"{exc}. Refusing to overwrite {out}: choose another output "
                "path, or delete the file if it is not needed."
            ) from None
        except features_lib.StaleFeaturesError as exc:
            _refuse_another_corpus(out, ids)
            _LOG.warning(
                "recomputing %s: it does not match this corpus and "
                "checkpoint (%s)",
                out,
                "; ".join(exc.diffs),
            )
        except (features_lib.FeatureStoreError, OSError) as exc:
            _LOG.warning("recomputing %s: %s", out, exc)
        else:
            if cached.manifest.get("skipped") and not skip_bad_audio:
                # The store left files out; without --skip_bad_audio the
                # user wants them, so redo and let the error name them.
                _LOG.warning(
                    "recomputing %s: it skipped %d file(s) and "
                    "skip_bad_audio is off",
                    out,
                    len(cached.manifest["skipped"]),
                )
            else:
                _LOG.info("reusing %s (manifest matches)", out)
                return cached

    loaded = load_checkpoint(checkpoint, allow_pickle=allow_pickle)
    extractor = Extractor(loaded, layer=layer, batch_seconds=batch_seconds)
    result = extractor.run(
        ids, paths, skip_bad_audio=skip_bad_audio, progress=progress
    )
    if not result.ids:
        raise ValueError(
            f"no usable audio among {len(ids)} files; see the skipped list"
        )
    for item in result.skipped:
        _LOG.warning("skipped %s (%s): %s", item.id, item.reason, item.message)
    manifest = dict(expected)
    manifest.update(
        skip_bad_audio=bool(skip_bad_audio),
        sample_rate=extractor.prep.sample_rate,
        do_normalize=extractor.prep.do_normalize,
        model_dim=extractor.hidden_size,
        # Recorded, not compared: the checkpoint id already names weights.
        encoder=loaded.config.model_type,
        encoder_layout=loaded.config.family,
        num_utterances=len(result.ids),
        skipped=[dataclasses.asdict(s) for s in result.skipped],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    features_lib.save(out, result.ids, result.features, manifest)
    return features_lib.load(out, expected=expected)
