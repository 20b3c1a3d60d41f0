"""Study sets S1 and S2, folds and binary targets (paper §2.1.1, Table 1).

* **S1** (speaker-side study): utterances whose header code is neu, hap,
  exc, ang, sad or fru (exc merged into happiness) and whose wav exists.
* **S2** (rater-side study): S1 utterances where the raters whose labels
  include the consensus class are all of one gender -- that gender is the
  sample's rater-gender group -- and (by default) which were rated by at
  least one male and one female rater.
* **Folds**: leave-one-session-out; fold k (0-based) tests on session k+1.
* **Binary targets**: one detector per emotion, y = 1 iff the consensus
  class is that emotion.

Rater genders are not part of IEMOCAP: they come from a JSON mapping file
(``{"E1": "M", "E2": "F", ...}``) given on the command line by
``--config.data.rater_gender=PATH``; nothing is ever guessed.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from fairser_jax.constants import EMOTIONS
from fairser_jax.data import corpus as corpus_lib
from fairser_jax.data import iemocap

# RATER_GENDER_HINT, load_rater_gender and normalise_rater_gender moved to
# `fairser_jax.data.iemocap`; importing them from here still works (one
# release).
from fairser_jax.data.iemocap import (  # noqa: F401
    RATER_GENDER_HINT,
    Utterance,
    load_rater_gender,
    normalise_rater_gender,
)

__all__ = [
    "NUM_FOLDS",
    "StudySets",
    "binary_targets",
    "build",
    "folds",
    "format_table1",
]

NUM_FOLDS = 5

@dataclasses.dataclass(frozen=True)
class StudySets:
    """S1/S2 membership of a corpus (paper Table 1).

    Attributes:
      s1_ids: ids of S1, sorted.
      s2_ids: ids of S2 (a subset of S1), sorted.
      s2_rater_group: S2 id -> the rater group of its agreeing raters
        (``"M"``/``"F"`` for rater gender).
      labels: S1 id -> consensus class (one of ``classes``).
      require_both_genders: the S2 rule this was built with (rated by
        raters of at least two groups).
      classes: the study's classes, in table order.
      rater_attribute: the rater attribute the groups are values of.
      rater_groups: every value of that attribute among the corpus's
        raters, sorted.
    """

    s1_ids: tuple[str, ...]
    s2_ids: tuple[str, ...]
    s2_rater_group: Mapping[str, str]
    labels: Mapping[str, str]
    require_both_genders: bool = True
    classes: tuple[str, ...] = EMOTIONS
    rater_attribute: str = "gender"
    rater_groups: tuple[str, ...] = ("F", "M")

    @property
    def s2_rater_gender(self) -> Mapping[str, str]:
        """`s2_rater_group` under its binary-gender name."""
        return self.s2_rater_group

    def table1(self) -> dict[str, dict]:
        """Class counts of S1 and S2 (paper Table 1).

        Returns:
          ``{"S1": {"n": int, "per_class": {class: int}}, "S2": {...}}``
          with the classes in ``classes`` order; S2 also carries
          ``"per_group": {group: int}`` over ``rater_groups`` (``M``
          before ``F`` for gender, as in the paper).
        """
        out = {}
        for name, ids in (("S1", self.s1_ids), ("S2", self.s2_ids)):
            per_class = dict.fromkeys(self.classes, 0)
            for i in ids:
                per_class[self.labels[i]] += 1
            out[name] = {"n": len(ids), "per_class": per_class}
        groups = list(self.s2_rater_group.values())
        order = (
            ("M", "F")
            if set(self.rater_groups) == {"F", "M"}
            else self.rater_groups
        )
        out["S2"]["per_group"] = {g: groups.count(g) for g in order}
        return out


def format_table1(table: Mapping[str, Mapping]) -> str:
    """Markdown rendering of :meth:`StudySets.table1` (paper Table 1)."""
    classes = list(table["S1"]["per_class"])
    head = ["", "Overall", *(c.capitalize() for c in classes)]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name in ("S1", "S2"):
        row = table[name]
        cells = [name, str(row["n"])]
        cells += [str(row["per_class"][c]) for c in classes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rater_groups_of(
    corpus: corpus_lib.Corpus,
    s1: Sequence[corpus_lib.Record],
    attribute: str,
) -> dict[str, str]:
    """rater id -> group, covering every rater of ``s1``; else names them."""
    needed = sorted(
        {r for u in s1 for r in u.ratings}, key=lambda r: (len(r), r)
    )
    groups = {
        r: attrs[attribute]
        for r, attrs in corpus.rater_attributes.items()
        if attrs.get(attribute)
    }
    hint = corpus.rater_hint
    if not corpus.rater_attributes:
        raise ValueError(
            f"building S2 needs the {attribute} of raters "
            f"{', '.join(needed) or '(none found)'}, but no rater "
            f"{attribute} was given; {hint}"
        )
    missing = [r for r in needed if r not in groups]
    if missing:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise ValueError(
            f"{corpus.rater_source} has no {attribute} for rater(s) {shown} "
            f"(it covers {', '.join(sorted(groups)[:20]) or 'none'}); {hint}"
        )
    return groups


def build(
    source: corpus_lib.Corpus | Sequence[Utterance],
    rater_gender: Mapping[str, str] | None = None,
    *,
    classes: Sequence[str] = EMOTIONS,
    rater_attribute: str = "gender",
    require_both_genders: bool = True,
) -> StudySets:
    """Builds S1 and S2 and each S2 sample's rater group.

    S1: the utterances with a wav whose consensus class is one of
    ``classes``. S2: the S1 utterances whose agreeing raters (those whose
    labels include the consensus class) all belong to one group of
    ``rater_attribute`` -- the sample's rater group -- and (by default)
    which raters of at least two groups rated. With binary gender this is
    the paper's rule: agreeing raters all male or all female, rated by at
    least one male and one female rater.

    Args:
      source: a `fairser_jax.data.corpus.Corpus`, or IEMOCAP records from
        :func:`fairser_jax.data.iemocap.read_corpus` with ``rater_gender``.
      rater_gender: with IEMOCAP records: rater id -> ``"M"``/``"F"``
        covering every rater of the S1 utterances (keys ``E1`` or
        ``C-E1``), e.g. from :func:`fairser_jax.data.iemocap.load_rater_gender`.
      classes: the study's classes (IEMOCAP: the paper's five).
      rater_attribute: the rater attribute whose values are the groups.
      require_both_genders: keep only S2 samples rated by raters of at
        least two groups (the paper's set); ``False`` drops that rule.

    Returns:
      A :class:`StudySets`.

    Raises:
      ValueError: raters of S1 without the attribute (the message names
        them and how to supply it), or an id appears twice.
    """
    if isinstance(source, corpus_lib.Corpus):
        corpus = source
    else:
        if rater_gender is None:
            rater_gender = {}
        corpus = iemocap.to_corpus(source, rater_gender)
        if not rater_gender:
            corpus = dataclasses.replace(corpus, rater_attributes={})
    counts = collections.Counter(u.id for u in corpus.records)
    dup = sorted(i for i, n in counts.items() if n > 1)
    if dup:
        raise ValueError(f"utterance ids appear twice: {', '.join(dup[:5])}")
    classes = tuple(classes)
    s1 = [u for u in corpus.records if u.label in classes and u.wav_exists]
    group_of = _rater_groups_of(corpus, s1, rater_attribute)
    s2_group: dict[str, str] = {}
    for u in s1:
        rated = {group_of[r] for r in u.ratings}
        agreeing = {
            group_of[r] for r, labels in u.ratings.items() if u.label in labels
        }
        if len(agreeing) != 1:
            continue
        if require_both_genders and len(rated) < 2:
            continue
        s2_group[u.id] = agreeing.pop()
    all_groups = {
        attrs[rater_attribute]
        for attrs in corpus.rater_attributes.values()
        if attrs.get(rater_attribute)
    }
    return StudySets(
        s1_ids=tuple(sorted(u.id for u in s1)),
        s2_ids=tuple(sorted(s2_group)),
        s2_rater_group=dict(sorted(s2_group.items())),
        labels={u.id: u.label for u in s1},
        require_both_genders=require_both_genders,
        classes=classes,
        rater_attribute=rater_attribute,
        rater_groups=tuple(sorted(all_groups)),
    )


def folds(
    utterances_or_sessions: Sequence[Utterance] | Sequence[int] | np.ndarray,
) -> np.ndarray:
    """Leave-one-session-out fold of each utterance: session - 1.

    Fold k holds out session k+1 as its test set and trains on the other
    four sessions.

    Args:
      utterances_or_sessions: records or their session numbers (1..5).

    Returns:
      int32 array ``[N]`` of fold indices in ``0 .. NUM_FOLDS-1``.

    Raises:
      ValueError: a session outside 1..5.
    """
    sessions = np.asarray(
        [
            u.session if isinstance(u, Utterance) else u
            for u in utterances_or_sessions
        ],
        dtype=np.int64,
    )
    bad = sorted(
        {int(s) for s in sessions[(sessions < 1) | (sessions > NUM_FOLDS)]}
    )
    if bad:
        raise ValueError(
            f"sessions {bad} are outside 1..{NUM_FOLDS}: leave-one-session-"
            f"out needs IEMOCAP's {NUM_FOLDS} sessions"
        )
    return (sessions - 1).astype(np.int32)


def binary_targets(
    labels: Sequence[str | None] | np.ndarray, emotion: str
) -> np.ndarray:
    """Binary target of the ``emotion`` detector: 1 iff label == emotion.

    Args:
      labels: consensus class per utterance (``EMOTIONS`` names; ``None``
        counts as negative).
      emotion: one of ``EMOTIONS``.

    Returns:
      int32 array ``[N]`` of 0/1.

    Raises:
      ValueError: ``emotion`` or a label is not one of ``EMOTIONS``.
    """
    if emotion not in EMOTIONS:
        raise ValueError(
            f"unknown emotion {emotion!r}; expected one of {EMOTIONS}"
        )
    labels = list(labels)
    unknown = sorted({str(x) for x in labels if x is not None} - set(EMOTIONS))
    if unknown:
        raise ValueError(
            f"labels {unknown} are not emotion classes {EMOTIONS}; pass the "
            "5-class names (Utterance.label), not header codes"
        )
    return np.asarray([x == emotion for x in labels], dtype=np.int32)
