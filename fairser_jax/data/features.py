"""Feature store, alignment and speaker-wise z-normalisation (paper §2.2.1).

A feature store is one ``.npz`` file, readable with ``allow_pickle=False``:

* ``ids``: ``[N]`` unicode utterance ids, unique;
* ``features``: ``[N, H]`` float32 pooled features, finite;
* ``manifest``: a 0-d unicode array holding the manifest as JSON text
  (checkpoint, layer, pooling, corpus fingerprint, ... plus
  ``num_utterances`` and ``feature_dim``, which :func:`save` fills in);
* ``format``: 0-d int, the layout version (``FORMAT_VERSION``).

:func:`save` also writes ``<path>.json``, a pretty-printed copy of the
manifest for people to read.  The manifest inside the ``.npz`` is the
authoritative one; the sidecar is never read back.

Files are written to a temporary name and renamed, so an interrupted
extraction never leaves a half-written store behind.  The zip container's
CRC-32 of every member is checked on load, so flipped bytes are detected.

:func:`load` tells a file that is no feature store at all (not a zip, a
bare ``.npy``, other arrays, object or otherwise wrong dtypes: checked from
the ``.npy`` headers before any data is read) from a damaged one, and says
how to make one (docs/DESIGN.md, Data).  Object arrays are never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import zipfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fairser_jax import fileio
from fairser_jax.data.iemocap import Utterance

if TYPE_CHECKING:  # type hints only: the store itself needs no JAX
    import jax

__all__ = [
    "FORMAT_VERSION",
    "FeatureSet",
    "FeatureStoreError",
    "MissingFeaturesError",
    "NotAFeatureStoreError",
    "StaleFeaturesError",
    "align",
    "corpus_fingerprint",
    "load",
    "save",
    "SpeakerStatistics",
    "speaker_statistics",
    "speaker_znorm",
]

FORMAT_VERSION = 1
_KEYS = ("features", "format", "ids", "manifest")
_FIX = "delete the file or re-run `python -m fairser_jax.extract`"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member, or an empty zip
_NPY_MAGIC = b"\x93NUMPY"
_CHUNK = 1 << 20


class FeatureStoreError(ValueError):
    """A feature file is corrupted, inconsistent or of the wrong layout."""


class NotAFeatureStoreError(FeatureStoreError):
    """The file is something else than a store written by the extractor."""


class StaleFeaturesError(FeatureStoreError):
    """A feature file's manifest does not match what the caller expects.

    Attributes:
      diffs: one "field: file has X, expected Y" string per differing field.
    """

    def __init__(self, message: str, diffs: Sequence[str] = ()):
        super().__init__(message)
        self.diffs = tuple(diffs)


class MissingFeaturesError(FeatureStoreError):
    """Utterances asked for are not in the feature file."""


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """Pooled features of a corpus.

    Attributes:
      ids: ``[N]`` utterance ids (unique).
      features: ``[N, H]`` float32.
      manifest: how the features were made (JSON-compatible dict).
    """

    ids: tuple[str, ...]
    features: np.ndarray
    manifest: dict[str, Any]

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])


def _sidecar(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".json")


def save(
    path: os.PathLike | str,
    ids: Sequence[str],
    features: np.ndarray | jax.Array,
    manifest: Mapping[str, Any],
) -> None:
    """Writes a feature store (and its ``<path>.json`` manifest copy).

    Args:
      path: output ``.npz`` file; parent folders are created.
      ids: ``[N]`` unique utterance ids.
      features: ``[N, H]`` finite real features, stored as float32.
      manifest: JSON-serialisable description of how the features were
        made; ``num_utterances`` and ``feature_dim`` are added (or checked
        when present).

    Raises:
      FeatureStoreError: duplicate ids, a shape mismatch, non-finite
        features, or a manifest that is not JSON-serialisable.
    """
    path = pathlib.Path(path)
    ids = [str(i) for i in ids]
    array = np.asarray(features)
    if array.ndim != 2 or array.shape[0] != len(ids):
        raise FeatureStoreError(
            f"features must be [N, H] with N = len(ids) = {len(ids)}; got "
            f"shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise FeatureStoreError(
            f"features must be floating point, got {array.dtype}"
        )
    array = array.astype(np.float32)
    problem = _id_problem(ids) or _finite_problem(array, ids)
    if problem:
        raise FeatureStoreError(f"cannot save {path}: {problem}")
    try:
        stored = json.loads(json.dumps(dict(manifest), default=_json_default))
    except (TypeError, ValueError) as err:
        raise FeatureStoreError(
            f"manifest is not JSON-serialisable: {err}"
        ) from err
    for key, value in (
        ("num_utterances", len(ids)),
        ("feature_dim", int(array.shape[1])),
    ):
        if key in stored and stored[key] != value:
            raise FeatureStoreError(
                f"manifest says {key}={stored[key]!r} but the data has {value}"
            )
        stored[key] = value
    text = json.dumps(stored, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_write(path, "wb") as f:
        np.savez(
            f,
            ids=np.asarray(ids, dtype=np.str_),
            features=array,
            manifest=np.asarray(text, dtype=np.str_),
            format=np.asarray(FORMAT_VERSION, dtype=np.int64),
        )
    fileio.atomic_write_text(
        _sidecar(path), json.dumps(stored, indent=2, sort_keys=True) + "\n"
    )


def _id_problem(ids: Sequence[str]) -> str | None:
    seen: set[str] = set()
    dup = set()
    for i in ids:
        if i in seen:
            dup.add(i)
        seen.add(i)
    if dup:
        return f"{len(dup)} duplicate id(s), e.g. {', '.join(sorted(dup)[:5])}"
    return None


def _finite_problem(array: np.ndarray, ids: Sequence[str]) -> str | None:
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        return (
            f"non-finite features for {bad.size} utterance(s), e.g. "
            f"{', '.join(ids[i] for i in bad[:5])}"
        )
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _corrupt(path: pathlib.Path, what: str) -> FeatureStoreError:
    return FeatureStoreError(f"{path}: {what}; {_FIX}")


def _not_a_store(path: pathlib.Path, why: str) -> FeatureStoreError:
    return NotAFeatureStoreError(
        f"{path} is not a feature store ({why}); a feature store is the "
        ".npz written by the extractor: make one with `python -m "
        "fairser_jax.extract --corpus=<IEMOCAP root> "
        f"--checkpoint=<wav2vec2 checkpoint> --out={path}`"
    )


def _check_container(path: pathlib.Path) -> None:
    """Raises unless ``path`` starts as a zip archive (every ``.npz`` does).

    Without this, NumPy takes any other bytes for a pickle and complains
    about ``allow_pickle``, which misleads.
    """
    with path.open("rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if not head:
        raise _not_a_store(path, "the file is empty")
    if head.startswith(_NPY_MAGIC):
        raise _not_a_store(path, "a single .npy array, not an .npz archive")
    if not head.startswith(_ZIP_MAGIC):
        raise _not_a_store(
            path, f"not a zip archive, as every .npz is; it starts {head!r}"
        )


def _member_header(
    zf: zipfile.ZipFile, key: str, path: pathlib.Path
) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the ``.npy`` member ``key``, from its header only.

    Reading the header never unpickles, so object arrays are recognised
    without being loaded.
    """
    name = f"{key}.npy" if f"{key}.npy" in zf.namelist() else key
    try:
        with zf.open(name) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version}")
    except ValueError as err:
        raise _not_a_store(path, f"{key} is not a .npy array: {err}") from err
    return tuple(shape), np.dtype(dtype)


def _check_members(zf: zipfile.ZipFile, path: pathlib.Path) -> None:
    """Raises unless the stored arrays have the dtypes :func:`save` writes."""
    headers = {k: _member_header(zf, k, path) for k in _KEYS}
    for key, (_, dtype) in headers.items():
        if dtype.hasobject:
            raise _not_a_store(
                path,
                f"{key} is an array of Python objects ({dtype}), which the "
                "extractor never writes; it was not read",
            )
    shape, dtype = headers["ids"]
    if len(shape) != 1 or dtype.kind != "U":
        raise _not_a_store(
            path, f"ids must be a 1-D str array, got {dtype} {shape}"
        )
    if headers["features"][1] != np.float32:
        raise _not_a_store(
            path, f"features must be float32, got {headers['features'][1]}"
        )
    shape, dtype = headers["manifest"]
    if shape != () or dtype.kind != "U":
        raise _not_a_store(
            path, f"manifest must be a 0-d str array, got {dtype} {shape}"
        )
    shape, dtype = headers["format"]
    if shape != () or dtype.kind not in "iu":
        raise _not_a_store(
            path, f"format must be a 0-d integer, got {dtype} {shape}"
        )


def load(
    path: os.PathLike | str, *, expected: Mapping[str, Any] | None = None
) -> FeatureSet:
    """Reads and validates a feature store.

    Args:
      path: the ``.npz`` written by :func:`save`.
      expected: manifest fields that must match, e.g. ``{"checkpoint":
        ..., "layer": -1, "corpus_fingerprint": ...}`` or
        ``{"feature_dim": 768}``; fields not given are not compared.

    Returns:
      The :class:`FeatureSet`.

    Raises:
      FileNotFoundError: no file at ``path``.
      FeatureStoreError: the file is not a feature store (not a zip, a
        bare ``.npy``, missing keys, object or wrong dtypes: the message
        says how to make one) or is corrupted (unreadable zip, bad CRC,
        wrong shape, duplicate ids, non-finite values, manifest/data
        disagreement).
      StaleFeaturesError: a field of ``expected`` differs; the message
        names every differing field with both values, and the fix.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"feature file {path} does not exist; run `python -m "
            "fairser_jax.extract` first"
        )
    try:
        _check_container(path)
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _KEYS if k not in npz.files]
            if missing:
                held = ", ".join(sorted(npz.files)) or "nothing"
                raise _not_a_store(
                    path, f"no {', '.join(missing)} array(s); it holds {held}"
                )
            _check_members(npz.zip, path)
            data = {k: npz[k] for k in _KEYS}
    except FeatureStoreError:
        raise
    except (
        zipfile.BadZipFile,
        ValueError,
        OSError,
        EOFError,
        KeyError,
    ) as err:
        raise _corrupt(path, f"unreadable or corrupted ({err})") from err
    ids_arr, array = data["ids"], data["features"]
    if int(data["format"]) != FORMAT_VERSION:
        raise _corrupt(
            path,
            f"layout version {int(data['format'])}, this code reads "
            f"{FORMAT_VERSION}",
        )
    if array.ndim != 2 or array.shape[0] != ids_arr.shape[0]:
        raise _corrupt(
            path,
            f"features have shape {array.shape}, expected "
            f"[{ids_arr.shape[0]}, H]",
        )
    try:
        manifest = json.loads(str(data["manifest"]))
    except json.JSONDecodeError as err:
        raise _corrupt(path, f"manifest is not JSON ({err.msg})") from err
    if not isinstance(manifest, dict):
        raise _corrupt(path, "manifest is not a JSON object")
    for key, value in (
        ("num_utterances", array.shape[0]),
        ("feature_dim", array.shape[1]),
    ):
        if manifest.get(key) != value:
            raise _corrupt(
                path,
                f"manifest says {key}={manifest.get(key)!r} but the data "
                f"has {value}",
            )
    ids = tuple(str(i) for i in ids_arr)
    problem = _id_problem(ids) or _finite_problem(array, ids)
    if problem:
        raise _corrupt(path, problem)
    if expected is not None:
        diffs = [
            f"{key}: file has {manifest.get(key, '<absent>')!r}, expected "
            f"{value!r}"
            for key, value in expected.items()
            if key not in manifest or manifest[key] != _jsonable(value)
        ]
        if diffs:
            raise StaleFeaturesError(
                f"{path} is stale; " + "; ".join(diffs) + f"; {_FIX}", diffs
            )
    return FeatureSet(ids=ids, features=array, manifest=manifest)


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value, default=_json_default))


def corpus_fingerprint(utterances: Sequence[Utterance]) -> str:
    """Deterministic fingerprint of the audio that features depend on.

    Hashes (SHA-256), for each utterance sorted by id: the id, its wav's
    size and a BLAKE2b digest of its full contents (``missing`` when
    absent) — the audio by content, not by where it lies. So it changes
    when an utterance is added or removed or its audio edited, but not
    when the corpus is copied or moved anywhere (a manifest folder whose
    wavs sit beside it included), a wav renamed, or labels changed (none
    of which changes a feature).

    It is cheap next to what it guards: it reads each wav once, with no
    decoding, at disk/hash speed (~1 GB/s; about a second for IEMOCAP's
    10k files), whereas extraction runs wav2vec2 over the same audio.

    Args:
      utterances: records from :func:`fairser_jax.data.iemocap.read_corpus`.

    Returns:
      64 hex characters.
    """
    digest = hashlib.sha256(b"fairser_jax corpus fingerprint v2\n")
    for u in sorted(utterances, key=lambda u: u.id):
        try:
            content = hashlib.blake2b(digest_size=16)
            size = 0
            with open(u.wav_path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    content.update(chunk)
                    size += len(chunk)
            signature = f"{size}:{content.hexdigest()}"
        except FileNotFoundError:
            signature = "missing"
        digest.update(f"{u.id}\t{signature}\n".encode())
    return digest.hexdigest()


def align(feature_set: FeatureSet, ids: Sequence[str]) -> np.ndarray:
    """Rows of ``feature_set`` in the order of ``ids``.

    Args:
      feature_set: a loaded store (it may hold more ids than asked).
      ids: ``[M]`` utterance ids.

    Returns:
      ``[M, H]`` float32.

    Raises:
      MissingFeaturesError: ids absent from the store (the count and the
        first few are named).
    """
    index = {i: k for k, i in enumerate(feature_set.ids)}
    missing = [i for i in ids if i not in index]
    if missing:
        raise MissingFeaturesError(
            f"{len(missing)} of {len(ids)} utterance(s) have no features, "
            f"e.g. {', '.join(missing[:5])}; the feature file was made from "
            f"another corpus or skipped them: {_FIX}"
        )
    rows = np.fromiter((index[i] for i in ids), dtype=np.int64, count=len(ids))
    return feature_set.features[rows]


def speaker_znorm(
    features: np.ndarray | jax.Array,
    speakers: Sequence[str] | np.ndarray,
    *,
    eps: float = 1e-8,
) -> np.ndarray:
    r"""Speaker-wise z-normalisation (paper §2.2.1).

    .. math::
        \tilde x_i = (x_i - \mu_{s(i)}) / \sigma_{s(i)}

    with the mean and (population, ddof=0) standard deviation of each
    feature over all utterances of speaker ``s(i)``.  A feature whose
    standard deviation is below ``eps`` for a speaker is only centred
    (divided by 1), so constant features give 0, never NaN.

    Args:
      features: ``[N, H]``.
      speakers: ``[N]`` speaker id per row (e.g. ``Utterance.speaker``).
      eps: standard-deviation floor.

    Returns:
      ``[N, H]`` float32.

    Raises:
      ValueError: shapes do not match.
    """
    x = np.asarray(features, dtype=np.float64)
    stats = speaker_statistics(x, speakers)
    std = np.sqrt(stats.var)
    std = np.where(std > eps, std, 1.0)
    return ((x - stats.mean[stats.group]) / std[stats.group]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SpeakerStatistics:
    """Per-speaker feature statistics (float64).

    Attributes:
      names: ``[S]`` the distinct speakers, sorted.
      group: ``[N]`` each row's index into ``names``.
      count: ``[S]`` utterances per speaker.
      mean: ``[S, H]`` per-speaker feature means.
      var: ``[S, H]`` per-speaker population (ddof=0) variances.
    """

    names: np.ndarray
    group: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray


def speaker_statistics(
    features: np.ndarray | jax.Array, speakers: Sequence[str] | np.ndarray
) -> SpeakerStatistics:
    """The means and variances behind :func:`speaker_znorm`.

    Also what the trained detectors normalise new audio with
    (`fairser_jax.detector`), so training and prediction share one
    computation.

    Raises:
      ValueError: shapes do not match.
    """
    x = np.asarray(features, dtype=np.float64)
    spk = np.asarray(speakers)
    if x.ndim != 2 or spk.shape != (x.shape[0],):
        raise ValueError(
            f"features must be [N, H] and speakers [N]; got {x.shape} and "
            f"{spk.shape}"
        )
    names, group = np.unique(spk, return_inverse=True)
    count = np.bincount(group)[:, None]
    mean = np.zeros((count.shape[0], x.shape[1]))
    np.add.at(mean, group, x)
    mean /= count
    var = np.zeros_like(mean)
    np.add.at(var, group, (x - mean[group]) ** 2)
    return SpeakerStatistics(
        names=names, group=group, count=count[:, 0], mean=mean, var=var / count
    )
