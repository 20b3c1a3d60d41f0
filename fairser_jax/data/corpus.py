"""A corpus whatever its layout: the record and corpus types.

The pipeline needs the same few facts from every corpus (paper §2.1):
each utterance's audio, speaker and speaker attributes, its consensus
class, its fold, and which labels each rater gave it; and each rater's
attributes. A `Corpus` holds them; the layouts that provide one (IEMOCAP,
manifest, any registered since) are plug-ins of
`fairser_jax.data.layouts`, whose `read` picks the layout of a folder;
`fairser_jax.data.study_sets.build` turns a `Corpus` into S1/S2. This
module imports none of them.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping

__all__ = [
    "Corpus",
    "Record",
]


@dataclasses.dataclass(frozen=True, eq=False)
class Record:
    """One utterance, in the terms every stage of the pipeline uses.

    Attributes:
      id: utterance id, unique in the corpus.
      wav_path: the utterance's audio file.
      wav_exists: whether ``wav_path`` existed when the corpus was read.
      speaker: speaker id (speaker-wise z-normalisation, paper §2.2.1).
      speaker_attributes: attribute name (``"gender"``) -> value (``"F"``).
      label: consensus class as spelled in the corpus, ``None`` when the
        utterance has none (no plurality, or a class outside the study).
      fold: 0-based fold index; fold k's models test on it.
      ratings: rater id -> the labels that rater gave this utterance.
      source: ``"file:line"`` the record was read from (error messages).
    """

    id: str
    wav_path: pathlib.Path
    wav_exists: bool
    speaker: str
    speaker_attributes: Mapping[str, str]
    label: str | None
    fold: int
    ratings: Mapping[str, frozenset[str]]
    source: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class Corpus:
    """The records of a corpus and the attributes of its raters.

    Attributes:
      root: the folder it was read from.
      format: the name of its layout (``"iemocap"``, ``"manifest"`` or a
        registered one: `fairser_jax.data.layouts`).
      records: every utterance, sorted by id.
      rater_attributes: rater id -> attribute name -> value. May lack
        raters (IEMOCAP without a rater-gender mapping): building S2 then
        names them.
      rater_source: where the rater attributes come from, for messages.
      rater_hint: how to supply missing rater attributes, for messages.
    """

    root: pathlib.Path
    format: str
    records: tuple[Record, ...]
    rater_attributes: Mapping[str, Mapping[str, str]]
    rater_source: str = ""
    rater_hint: str = ""

    @property
    def num_folds(self) -> int:
        """Number of folds: the largest fold index + 1."""
        return 1 + max((r.fold for r in self.records), default=-1)


# Names this module had before the layouts moved out (one release):
# `read`, `detect_format` and `FORMATS` (now the function `formats()`) are
# in `fairser_jax.data.layouts`, `MANIFEST_FILE` is the manifest's
# `UTTERANCES_FILE`, `from_iemocap` is `fairser_jax.data.iemocap.to_corpus`.
_MOVED = {
    "read": ("fairser_jax.data.layouts", "read"),
    "detect_format": ("fairser_jax.data.layouts", "detect_format"),
    "FORMATS": ("fairser_jax.data.layouts", "formats"),
    "from_iemocap": ("fairser_jax.data.iemocap", "to_corpus"),
    "MANIFEST_FILE": ("fairser_jax.data.manifest", "UTTERANCES_FILE"),
}


def __getattr__(name: str):
    """Deprecated aliases of the names that moved (PEP 562)."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    module, attr = _MOVED[name]
    warnings.warn(
        f"fairser_jax.data.corpus.{name} moved to {module}.{attr}",
        DeprecationWarning,
        stacklevel=2,
    )
    value = getattr(importlib.import_module(module), attr)
    return value() if name == "FORMATS" else value
