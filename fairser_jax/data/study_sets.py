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
import json
import os
import pathlib
import re
from collections.abc import Mapping, Sequence

import numpy as np

from fairser_jax.constants import EMOTIONS
from fairser_jax.data.iemocap import Utterance

__all__ = [
    "NUM_FOLDS",
    "RATER_GENDER_HINT",
    "StudySets",
    "binary_targets",
    "build",
    "folds",
    "format_table1",
    "load_rater_gender",
    "normalise_rater_gender",
]

NUM_FOLDS = 5

RATER_GENDER_HINT = (
    "pass a rater-gender mapping file with "
    "--config.data.rater_gender=PATH, a JSON object like {"
    '"E1": "M", "E2": "F", ...}; IEMOCAP does not publish its evaluators\' '
    "genders, so the file has to come from you"
)

_RATER_KEY_RE = re.compile(r"^(?:C-)?(E\d+)$")


def normalise_rater_gender(
    mapping: Mapping[str, str], *, source: str = "rater-gender mapping"
) -> dict[str, str]:
    """Validates a rater-gender mapping and normalises its keys to ``E<n>``.

    Args:
      mapping: rater id (``"E1"`` or ``"C-E1"``) -> ``"M"`` or ``"F"``
        (case-insensitive).
      source: what to call the mapping in error messages (e.g. its path).

    Returns:
      ``{"E1": "M", ...}`` sorted by key.

    Raises:
      ValueError: a key that is not a rater id, a value that is not M/F, or
        the same rater given twice (``E1`` and ``C-E1``).
    """
    if not isinstance(mapping, Mapping):
        raise ValueError(
            f"{source}: expected a JSON object rater id -> 'M'/'F', got "
            f"{type(mapping).__name__}; {RATER_GENDER_HINT}"
        )
    out: dict[str, str] = {}
    for key, value in mapping.items():
        match = _RATER_KEY_RE.match(str(key).strip())
        if match is None:
            raise ValueError(
                f"{source}: key {key!r} is not a rater id (expected 'E<n>' "
                "or 'C-E<n>')"
            )
        if not isinstance(value, str) or value.strip().upper() not in (
            "M",
            "F",
        ):
            raise ValueError(
                f"{source}: rater {key!r} has gender {value!r}; expected "
                "'M' or 'F'"
            )
        rater = match[1]
        if rater in out:
            raise ValueError(f"{source}: rater {rater} is given twice")
        out[rater] = value.strip().upper()
    return dict(sorted(out.items(), key=lambda kv: int(kv[0][1:])))


def load_rater_gender(path: os.PathLike | str) -> dict[str, str]:
    """Loads a rater-gender mapping file (JSON object rater id -> M/F).

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: not JSON, or not a valid mapping (see
        :func:`normalise_rater_gender`).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"rater-gender mapping {path} does not exist; {RATER_GENDER_HINT}"
        )
    try:
        mapping = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno} "
            f"column {err.colno}); {RATER_GENDER_HINT}"
        ) from err
    return normalise_rater_gender(mapping, source=str(path))


@dataclasses.dataclass(frozen=True)
class StudySets:
    """S1/S2 membership of a corpus (paper Table 1).

    Attributes:
      s1_ids: ids of S1, sorted.
      s2_ids: ids of S2 (a subset of S1), sorted.
      s2_rater_gender: S2 id -> rater-gender group ``"M"``/``"F"``.
      labels: S1 id -> consensus class (one of ``EMOTIONS``).
      require_both_genders: the S2 rule this was built with.
    """

    s1_ids: tuple[str, ...]
    s2_ids: tuple[str, ...]
    s2_rater_gender: Mapping[str, str]
    labels: Mapping[str, str]
    require_both_genders: bool = True

    def table1(self) -> dict[str, dict]:
        """Class counts of S1 and S2 (paper Table 1).

        Returns:
          ``{"S1": {"n": int, "per_class": {emotion: int}}, "S2": {...}}``
          with the emotions in ``EMOTIONS`` order; S2 also carries
          ``"per_group": {"M": int, "F": int}``.
        """
        out = {}
        for name, ids in (("S1", self.s1_ids), ("S2", self.s2_ids)):
            per_class = dict.fromkeys(EMOTIONS, 0)
            for i in ids:
                per_class[self.labels[i]] += 1
            out[name] = {"n": len(ids), "per_class": per_class}
        groups = list(self.s2_rater_gender.values())
        out["S2"]["per_group"] = {g: groups.count(g) for g in ("M", "F")}
        return out


def format_table1(table: Mapping[str, Mapping]) -> str:
    """Markdown rendering of :meth:`StudySets.table1` (paper Table 1)."""
    head = ["", "Overall", *(e.capitalize() for e in EMOTIONS)]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name in ("S1", "S2"):
        row = table[name]
        cells = [name, str(row["n"])]
        cells += [str(row["per_class"][e]) for e in EMOTIONS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _check_rater_gender(
    utterances: Sequence[Utterance],
    rater_gender: Mapping[str, str] | None,
) -> dict[str, str]:
    needed = sorted(
        {r for u in utterances for r in u.rater_labels},
        key=lambda r: (len(r), r),
    )
    if rater_gender is None:
        raise ValueError(
            "building S2 needs the genders of raters "
            f"{', '.join(needed) or '(none found)'}, but no rater-gender "
            f"mapping was given; {RATER_GENDER_HINT}"
        )
    mapping = normalise_rater_gender(rater_gender)
    missing = [r for r in needed if r not in mapping]
    if missing:
        raise ValueError(
            f"the rater-gender mapping has no gender for rater(s) "
            f"{', '.join(missing)} (it covers {', '.join(mapping) or 'none'})"
            f"; {RATER_GENDER_HINT}"
        )
    return mapping


def build(
    utterances: Sequence[Utterance],
    rater_gender: Mapping[str, str] | None,
    *,
    require_both_genders: bool = True,
) -> StudySets:
    """Builds S1 and S2 and each S2 sample's rater-gender group.

    Args:
      utterances: records from :func:`fairser_jax.data.iemocap.read_corpus`.
      rater_gender: rater id -> ``"M"``/``"F"`` covering every rater of the
        S1 utterances (keys ``E1`` or ``C-E1``), e.g. from
        :func:`load_rater_gender`.
      require_both_genders: keep only S2 samples rated by at least one male
        and one female rater (the paper's set); ``False`` drops that rule.

    Returns:
      A :class:`StudySets`.

    Raises:
      ValueError: ``rater_gender`` is ``None`` or lacks raters (the message
        names them and the flag to set), or an id appears twice.
    """
    counts = collections.Counter(u.id for u in utterances)
    dup = sorted(i for i, n in counts.items() if n > 1)
    if dup:
        raise ValueError(f"utterance ids appear twice: {', '.join(dup[:5])}")
    s1 = [u for u in utterances if u.label is not None and u.wav_exists]
    mapping = _check_rater_gender(s1, rater_gender)
    s2_group: dict[str, str] = {}
    for u in s1:
        raters = list(u.rater_labels)
        rated = {mapping[r] for r in raters}
        agreeing = {mapping[r] for r in raters if u.label in u.rater_classes(r)}
        if len(agreeing) != 1:
            continue
        if require_both_genders and rated != {"M", "F"}:
            continue
        s2_group[u.id] = agreeing.pop()
    return StudySets(
        s1_ids=tuple(sorted(u.id for u in s1)),
        s2_ids=tuple(sorted(s2_group)),
        s2_rater_gender=dict(sorted(s2_group.items())),
        labels={u.id: u.label for u in s1},
        require_both_genders=require_both_genders,
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
