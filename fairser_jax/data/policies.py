"""The study's rules for folds and consensus labels, for every layout.

A corpus layout reads what a corpus states; where it states no fold or no
consensus label, these rules make one (paper §2.1: the consensus class is
the plurality of the raters' labels; folds are speaker-independent). They
are plain functions of counts, so every layout (`fairser_jax.data.layouts`)
applies the same rule and tests can check it without a corpus.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["plurality_label", "session_folds", "speaker_folds"]


def session_folds(sessions: Iterable[str]) -> dict[str, int]:
    """Leave-one-session-out: session -> fold index.

    Sessions are sorted numerically when every one is an integer (``"2"``
    before ``"10"``), else as text.
    """
    sessions = sorted(set(sessions))
    try:
        order = sorted(sessions, key=lambda s: (int(s), s))
    except ValueError:
        order = sessions
    return {s: k for k, s in enumerate(order)}


def speaker_folds(counts: Mapping[str, int], num_folds: int) -> dict[str, int]:
    """Speaker-independent folds: speaker id -> fold index.

    Speakers sorted by descending utterance count, then id, go one by one
    into the fold with the fewest utterances so far (the lowest index on
    ties), so every speaker's utterances are in one fold and the folds are
    about equal in size.

    Args:
      counts: speaker id -> number of utterances.
      num_folds: folds to make; at most the number of speakers.
    """
    sizes = [0] * num_folds
    out: dict[str, int] = {}
    for speaker in sorted(counts, key=lambda s: (-counts[s], s)):
        fold = min(range(num_folds), key=lambda k: (sizes[k], k))
        out[speaker] = fold
        sizes[fold] += counts[speaker]
    return out


def plurality_label(
    ratings: Mapping[str, Iterable[str]], classes: Sequence[str] | None
) -> tuple[str | None, str]:
    """The consensus label of one utterance: its raters' plurality.

    Each rater's labels count once each (a rater who gave two labels votes
    for both).

    Args:
      ratings: rater id -> the labels that rater gave.
      classes: the study's classes; a plurality outside them gives no
        label. None accepts any.

    Returns:
      (label or None, why): why is ``"label"``, ``"unrated"``, ``"tie"`` or
      ``"outside"``.
    """
    votes = collections.Counter(
        label for given in ratings.values() for label in given
    )
    ranked = votes.most_common()
    if not ranked:
        return None, "unrated"
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None, "tie"
    if classes is not None and ranked[0][0] not in classes:
        return None, "outside"
    return ranked[0][0], "label"
