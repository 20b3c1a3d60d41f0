"""A corpus whatever its layout: utterance records and rater attributes.

The pipeline needs the same few facts from every corpus (paper §2.1):
each utterance's audio, speaker and speaker attributes, its consensus
class, its fold, and which labels each rater gave it; and each rater's
attributes. Two layouts provide them:

* ``"iemocap"``: the IEMOCAP release (`fairser_jax.data.iemocap`), with
  rater genders from a JSON mapping file (IEMOCAP does not publish them);
  folds are leave-one-session-out.
* ``"manifest"``: a folder with ``utterances.csv``, ``ratings.csv`` and
  ``raters.csv`` (`fairser_jax.data.manifest`), for any rater-level corpus
  and any categorical attribute.

`read` picks the layout (a folder holding ``utterances.csv`` is a manifest)
and returns a `Corpus`; `fairser_jax.data.study_sets.build` turns it into
S1/S2.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping, Sequence

from fairser_jax import constants
from fairser_jax.data import iemocap

__all__ = [
    "FORMATS",
    "MANIFEST_FILE",
    "Corpus",
    "Record",
    "detect_format",
    "from_iemocap",
    "read",
]

FORMATS: tuple[str, ...] = ("auto", "iemocap", "manifest")
"""Values of ``config.data.format``: ``auto`` looks for `MANIFEST_FILE`."""

MANIFEST_FILE = "utterances.csv"
"""The file whose presence makes a corpus folder a manifest."""


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
      format: ``"iemocap"`` or ``"manifest"``.
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


def detect_format(root: os.PathLike | str, format: str = "auto") -> str:
    """The layout of ``root``: ``format`` unless ``"auto"``.

    ``auto``: ``"manifest"`` when ``root`` holds `MANIFEST_FILE`, else
    ``"iemocap"``.

    Raises:
      ValueError: ``format`` is not one of `FORMATS`.
    """
    if format not in FORMATS:
        raise ValueError(
            f"config.data.format is {format!r}; it must be one of "
            f"{', '.join(FORMATS)}."
        )
    if format != "auto":
        return format
    return (
        "manifest"
        if (pathlib.Path(root) / MANIFEST_FILE).is_file()
        else "iemocap"
    )


def _rater_label(word: str) -> str:
    """A rater's IEMOCAP label word as a study class or a plain word."""
    label = iemocap.label_class(word)
    if label is not None:
        return label
    word = " ".join(word.split()).lower()
    return "other" if word.startswith("other") else word


def from_iemocap(
    utterances: Sequence[iemocap.Utterance],
    rater_gender: Mapping[str, str] | None,
    root: os.PathLike | str = "",
    *,
    rater_source: str = "",
) -> Corpus:
    """A `Corpus` from IEMOCAP records and a rater-gender mapping.

    The speaker attribute is ``gender`` (from the utterance id), the fold
    is ``session - 1`` (leave-one-session-out), labels are the five study
    classes (``exc`` merged into happiness; other codes have no label) and
    a rater's labels are the class names of their words (other words
    lower-cased, ``Other:<text>`` as ``other``). Self-evaluations are not
    ratings.

    Args:
      utterances: records of `fairser_jax.data.iemocap.read_corpus`.
      rater_gender: rater id (``E1`` or ``C-E1``) -> ``M``/``F``, or None.
      root: the corpus root.
      rater_source: where ``rater_gender`` came from, for messages.
    """
    from fairser_jax.data import study_sets  # noqa: PLC0415 - no cycle

    raters = (
        {}
        if rater_gender is None
        else study_sets.normalise_rater_gender(
            rater_gender, source=rater_source or "rater-gender mapping"
        )
    )
    records = tuple(
        Record(
            id=u.id,
            wav_path=pathlib.Path(u.wav_path),
            wav_exists=u.wav_exists,
            speaker=u.speaker,
            speaker_attributes={"gender": u.speaker_gender},
            label=u.label,
            fold=u.session - 1,
            ratings={
                r: frozenset(_rater_label(w) for w in words)
                for r, words in u.rater_labels.items()
            },
            source=u.source,
        )
        for u in sorted(utterances, key=lambda u: u.id)
    )
    return Corpus(
        root=pathlib.Path(root),
        format="iemocap",
        records=records,
        rater_attributes={r: {"gender": g} for r, g in raters.items()},
        rater_source=rater_source or "the rater-gender mapping",
        rater_hint=study_sets.RATER_GENDER_HINT,
    )


def read(
    root: os.PathLike | str,
    *,
    format: str = "auto",
    rater_gender: os.PathLike | str | None = None,
    classes: Sequence[str] | None = constants.EMOTIONS,
    speaker_attribute: str | None = "gender",
    rater_attribute: str | None = "gender",
    num_folds: int = 5,
) -> Corpus:
    """Reads a corpus in either layout.

    Args:
      root: an IEMOCAP root (``Session1`` ...) or a manifest folder.
      format: ``"auto"``, ``"iemocap"`` or ``"manifest"``.
      rater_gender: IEMOCAP only: the rater-gender JSON file; ``None``:
        ``<root>/rater_gender.json`` when it exists.
      classes: manifest only: the study's classes (a ``label`` outside
        them is an error); ``None`` skips the check.
      speaker_attribute: manifest only: the ``speaker_<attr>`` column that
        must be filled; ``None`` skips the check.
      rater_attribute: manifest only: the ``rater_<attr>`` column that
        every rater must have; ``None`` skips the check.
      num_folds: manifest only: speaker-independent folds to make when
        ``utterances.csv`` has neither ``fold`` nor ``session``.

    Returns:
      The `Corpus`.
    """
    root = pathlib.Path(root)
    fmt = detect_format(root, format)
    if fmt == "manifest":
        from fairser_jax.data import manifest  # noqa: PLC0415 - no cycle

        return manifest.read(
            root,
            classes=classes,
            speaker_attribute=speaker_attribute,
            rater_attribute=rater_attribute,
            num_folds=num_folds,
        )
    from fairser_jax.data import study_sets  # noqa: PLC0415 - no cycle

    utterances = iemocap.read_corpus(root)
    path = pathlib.Path(rater_gender) if rater_gender else None
    if path is None and (root / "rater_gender.json").exists():
        path = root / "rater_gender.json"
    mapping = None if path is None else study_sets.load_rater_gender(path)
    return from_iemocap(
        utterances,
        mapping,
        root,
        rater_source="" if path is None else str(path),
    )
