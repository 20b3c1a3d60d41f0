"""Corpus layouts as plug-ins: how a folder becomes a `Corpus`.

Each layout is one `Layout` in `LAYOUTS`: how to recognise a folder of it
and how to read one. The pipeline (``config.data.format``), extraction and
``export_manifest`` all read corpora through `read`, so a new layout is one
`register` plus its reader; `fairser_jax.data.corpus` holds only the types
every layout returns. Built in:

* ``"manifest"``: a folder holding ``utterances.csv`` (with
  ``ratings.csv`` and ``raters.csv``; `fairser_jax.data.manifest`), for any
  rater-level corpus and any categorical attribute;
* ``"iemocap"``: the IEMOCAP release (`fairser_jax.data.iemocap`), with
  rater genders from a JSON mapping file (IEMOCAP does not publish them);
  folds are leave-one-session-out. A folder that is no other layout is
  read as IEMOCAP (whose reader then names what is missing).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable, Sequence

from fairser_jax import constants
from fairser_jax.data import corpus as corpus_lib
from fairser_jax.data import iemocap, manifest


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """What a layout's reader may need besides the folder.

    Attributes:
      rater_gender: IEMOCAP: the rater-gender JSON file; None:
        ``<root>/rater_gender.json`` when it exists.
      classes: the study's classes (a manifest ``label`` outside them is an
        error); None skips the check.
      speaker_attribute: the ``speaker_<attr>`` column that must be filled;
        None skips the check.
      rater_attribute: the ``rater_<attr>`` column every rater must have;
        None skips the check.
      num_folds: speaker-independent folds to make when a manifest has
        neither ``fold`` nor ``session``.
      raters: read the raters' attributes (False: the utterances are all
        that is needed, e.g. to extract features, and a rater-gender file
        of IEMOCAP is not read).
    """

    rater_gender: os.PathLike | str | None = None
    classes: Sequence[str] | None = constants.EMOTIONS
    speaker_attribute: str | None = "gender"
    rater_attribute: str | None = "gender"
    num_folds: int = 5
    raters: bool = True


@dataclasses.dataclass(frozen=True)
class Layout:
    """One corpus layout.

    Attributes:
      name: its ``config.data.format`` value.
      detect: whether a folder is of this layout (``format="auto"`` tries
        the layouts in registry order, `FALLBACK` last).
      read: ``(root, options) -> Corpus``.
    """

    name: str
    detect: Callable[[pathlib.Path], bool]
    read: Callable[[pathlib.Path, ReadOptions], corpus_lib.Corpus]


def _read_manifest(
    root: pathlib.Path, options: ReadOptions
) -> corpus_lib.Corpus:
    return manifest.read(
        root,
        classes=options.classes,
        speaker_attribute=options.speaker_attribute,
        rater_attribute=options.rater_attribute,
        num_folds=options.num_folds,
    )


def _read_iemocap(
    root: pathlib.Path, options: ReadOptions
) -> corpus_lib.Corpus:
    if not options.raters:
        return iemocap.to_corpus(iemocap.read_corpus(root), None, root)
    return iemocap.read(root, options.rater_gender)


LAYOUTS: dict[str, Layout] = {
    "iemocap": Layout("iemocap", lambda root: True, _read_iemocap),
    "manifest": Layout(
        "manifest",
        lambda root: (root / manifest.UTTERANCES_FILE).is_file(),
        _read_manifest,
    ),
}
"""Every layout, by its ``config.data.format`` name."""

BUILT_IN: tuple[str, ...] = tuple(LAYOUTS)
"""The layouts this package ships (`unregister` leaves them)."""

FALLBACK = "iemocap"
"""The layout of a folder no other layout recognises."""


def register(layout: Layout) -> Layout:
    """Adds a layout (``format="auto"`` tries it before the fallback)."""
    if layout.name in LAYOUTS or layout.name == "auto":
        raise ValueError(f"layout {layout.name!r} is already declared.")
    LAYOUTS[layout.name] = layout
    return layout


def unregister(name: str) -> Layout:
    """Removes a layout added by `register` (the built-in ones stay).

    Raises:
      ValueError: `name` is built in or not declared.
    """
    if name in BUILT_IN or name not in LAYOUTS:
        raise ValueError(f"layout {name!r} is built in or not declared.")
    return LAYOUTS.pop(name)


def formats() -> tuple[str, ...]:
    """Values of ``config.data.format``: ``auto`` and every layout."""
    return ("auto", *LAYOUTS)


def detect_format(root: os.PathLike | str, format: str = "auto") -> str:
    """The layout of ``root``: ``format`` unless ``"auto"``, else the first
    layout (in registry order) that recognises the folder, else `FALLBACK`.

    Raises:
      ValueError: ``format`` is not one of `formats()`.
    """
    if format != "auto" and format not in LAYOUTS:
        raise ValueError(
            f"config.data.format is {format!r}; it must be one of "
            f"{', '.join(formats())}."
        )
    if format != "auto":
        return format
    root = pathlib.Path(root)
    found = (
        name
        for name, layout in LAYOUTS.items()
        if name != FALLBACK and layout.detect(root)
    )
    return next(found, FALLBACK)


def read(
    root: os.PathLike | str,
    *,
    format: str = "auto",
    rater_gender: os.PathLike | str | None = None,
    classes: Sequence[str] | None = constants.EMOTIONS,
    speaker_attribute: str | None = "gender",
    rater_attribute: str | None = "gender",
    num_folds: int = 5,
    raters: bool = True,
) -> corpus_lib.Corpus:
    """Reads a corpus in its layout.

    Args:
      root: a folder of one of `LAYOUTS`.
      format: ``"auto"`` or a layout name.
      rater_gender, classes, speaker_attribute, rater_attribute, num_folds,
      raters: the fields of `ReadOptions` (what each layout's reader may
        need).

    Returns:
      The `Corpus`, its ``format`` the layout's name (whatever reader the
      layout delegates to) and its ``root`` this folder.
    """
    root = pathlib.Path(root)
    layout = LAYOUTS[detect_format(root, format)]
    options = ReadOptions(
        rater_gender=rater_gender,
        classes=classes,
        speaker_attribute=speaker_attribute,
        rater_attribute=rater_attribute,
        num_folds=num_folds,
        raters=raters,
    )
    corpus = layout.read(root, options)
    return dataclasses.replace(corpus, root=root, format=layout.name)
