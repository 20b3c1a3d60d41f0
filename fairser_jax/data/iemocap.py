"""Reader for corpora in the IEMOCAP layout (paper §2.1).

Layout::

    ROOT/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt
    ROOT/Session{k}/sentences/wav/<dialog>/<utterance id>.wav

An EmoEvaluation file starts with a ``%`` column-header line and holds one
block per utterance, blocks separated by blank lines::

    [6.2901 - 8.2357]	Ses01F_impro01_F000	neu	[2.5000, 2.5000, 2.5000]
    C-E2:	Neutral;	()
    C-E3:	Neutral; Frustration;	()
    C-F1:	Neutral;	(curious)
    A-E3:	val 3; act 2; dom  2;	()

* The header is ``[start - end]``, the utterance id, the consensus code
  (``neu hap exc ang sad fru sur fea dis oth xxx``; ``xxx`` = no plurality)
  and the mean valence/activation/dominance, tab separated.
* ``C-E<n>:`` lines hold one rater's categorical labels, ``;`` separated,
  then a free-text comment in parentheses that may itself contain ``;``,
  ``:`` and parentheses.  The comment starts at the first ``(`` after the
  colon (label words never contain one) and runs to the end of the line.
* ``C-F<n>`` / ``C-M<n>`` are the actors' self-evaluations: kept apart in
  ``self_labels``, never raters.  ``A-`` lines (dimensional) are checked
  for their form and otherwise ignored.
* Label words are IEMOCAP's ten categories as written in ``C-`` lines
  (``LABEL_WORDS``: Neutral or "Neutral state", Happiness, Excited, Anger,
  Sadness, Frustration, Surprise, Fear, Disgust, Other or
  ``Other:<text>``), in any case.
* CRLF line endings, a UTF-8 byte-order mark and trailing whitespace are
  accepted.  Anything else that is not one of these forms raises a
  :class:`CorpusFormatError` naming the file and line number.

**Complete blocks.**  A file cut short (an interrupted copy or download)
must not lose utterances silently (docs/DESIGN.md, Data).  Every line of a
block ends in a known way: the header with its ``[v, a, d]`` field, each
``C-``/``A-`` line with its parenthesised comment (``()`` when empty); a
block holds at least one ``C-E`` rater line; a label word is one of
``LABEL_WORDS`` (so "Exc" cut from "Excited" is caught).  A file cut
exactly at a line end loses the blocks after it: their wav files are still
there, and a ``sentences/wav`` file without an evaluation block is an error
too (the release has one block per utterance wav).  All these errors name
the file and line and say to re-copy the file.

Speaker gender is the first letter of the last ``_`` token of the id
(``Ses01F_impro01_M000`` is the *male* actor of session 1: the ``F`` in
``Ses01F`` only says which actor wore the motion-capture markers).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import re
from collections.abc import Mapping, Sequence

from fairser_jax.constants import EMOTIONS
from fairser_jax.data import corpus as corpus_lib

__all__ = [
    "HEADER_CODES",
    "LABEL_WORDS",
    "RATER_GENDER_HINT",
    "CorpusFormatError",
    "CorpusReport",
    "Utterance",
    "count_labels",
    "label_class",
    "load_rater_gender",
    "normalise_rater_gender",
    "parse_emo_evaluation",
    "read",
    "read_corpus",
    "read_corpus_with_report",
    "to_corpus",
]

_LOG = logging.getLogger(__name__)

# Consensus codes of the header line and the 5-class name each maps to
# (paper §2.1.1: exc is merged into happiness; the rest are outside the study).
HEADER_CODES: dict[str, str | None] = {
    "neu": "neutral",
    "hap": "happiness",
    "exc": "happiness",
    "ang": "anger",
    "sad": "sadness",
    "fru": "frustration",
    "sur": None,
    "fea": None,
    "dis": None,
    "oth": None,
    "xxx": None,
}

# Rater label words (lower-cased) that belong to one of the five classes.
_WORD_CLASS: dict[str, str] = {
    "neutral": "neutral",
    "neutral state": "neutral",
    "happiness": "happiness",
    "excited": "happiness",
    "anger": "anger",
    "sadness": "sadness",
    "frustration": "frustration",
}

assert set(_WORD_CLASS.values()) == set(EMOTIONS)

# Every rater label word of IEMOCAP's C- lines (lower-cased, single-spaced),
# besides ``Other:<free text>``: the ten categories of the evaluation form.
LABEL_WORDS: frozenset[str] = frozenset(
    {*_WORD_CLASS, "surprise", "fear", "disgust", "other"}
)

# Appended to every message about a damaged EmoEvaluation file.
_RECOPY = (
    "the file looks cut short or damaged (e.g. an interrupted copy or "
    "download): re-copy it from the IEMOCAP release"
)

_HEADER_RE = re.compile(
    r"^\[\s*(?P<start>\d+(?:\.\d*)?)\s*-\s*(?P<end>\d+(?:\.\d*)?)\s*\]"
    r"\s+(?P<id>\S+)\s+(?P<code>\S+)\s+\[(?P<vad>[^\]]*)\]$"
)
_EVAL_RE = re.compile(r"^(?P<kind>[CA])-(?P<who>[A-Za-z]+\d+)\s*:(?P<rest>.*)$")
_ID_RE = re.compile(r"^Ses(?P<session>\d\d)[FM]_.*_(?P<gender>[FM])\d+$")
_SESSION_DIR_RE = re.compile(r"^Session(\d+)$")


class CorpusFormatError(ValueError):
    """A corpus file does not follow the IEMOCAP format."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One utterance of an IEMOCAP-format corpus.

    Attributes:
      id: utterance id, e.g. ``"Ses01F_impro01_F000"``.
      session: session number 1..5.
      speaker_gender: ``"M"`` or ``"F"`` (from the last ``_`` token).
      label: consensus class, one of ``constants.EMOTIONS``, or ``None`` when
        the header code is outside the five classes (incl. ``xxx``).
      raw_label: the header code as written (``"exc"``, ``"xxx"``, ...).
      rater_labels: rater id (``"E1"``...) -> label words in file order,
        e.g. ``{"E3": ("Neutral", "Frustration")}``.
      wav_path: where the utterance's wav file is (or should be).
      wav_exists: whether ``wav_path`` was found when the corpus was read.
      self_labels: actor self-evaluations (``"F1"``/``"M1"`` -> words).
      start: start time in the dialog, seconds.
      end: end time in the dialog, seconds.
      vad: header valence, activation, dominance.
      dialog: dialog name, e.g. ``"Ses01F_impro01"``.
      source: ``"file:line"`` of the header line (for error messages).
    """

    id: str
    session: int
    speaker_gender: str
    label: str | None
    raw_label: str
    rater_labels: Mapping[str, tuple[str, ...]]
    wav_path: pathlib.Path
    wav_exists: bool = True
    self_labels: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=dict
    )
    start: float = 0.0
    end: float = 0.0
    vad: tuple[float, ...] = ()
    dialog: str = ""
    source: str = ""

    # Dicts are not hashable; identity of an utterance is its id.
    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def speaker(self) -> str:
        """Speaker id: session + speaker gender, e.g. ``"Ses01M"``."""
        return f"Ses{self.session:02d}{self.speaker_gender}"

    def rater_classes(self, rater: str) -> frozenset[str]:
        """The five-class names among ``rater``'s label words."""
        return frozenset(
            c
            for c in (label_class(w) for w in self.rater_labels[rater])
            if c is not None
        )


@dataclasses.dataclass(frozen=True)
class CorpusReport:
    """What :func:`read_corpus_with_report` found.

    Attributes:
      utterances: records sorted by id.
      missing_wavs: ids whose wav file does not exist, sorted.
      num_files: number of EmoEvaluation files read.
    """

    utterances: list[Utterance]
    missing_wavs: list[str]
    num_files: int


def label_class(word: str) -> str | None:
    """Five-class name of a rater label word, ``None`` outside the five.

    Neutral / "Neutral state" -> neutral; Happiness and Excited ->
    happiness; Anger, Sadness, Frustration -> themselves; anything else
    (Surprise, Fear, Disgust, Other, ``Other:<text>``) -> ``None``.
    Matching ignores case and surrounding whitespace.
    """
    return _WORD_CLASS.get(" ".join(word.split()).lower())


def _error(
    path: os.PathLike | str, line_no: int, message: str
) -> CorpusFormatError:
    return CorpusFormatError(f"{path}:{line_no}: {message}; {_RECOPY}")


def _is_label_word(word: str) -> bool:
    """Whether ``word`` is one of IEMOCAP's rater label words."""
    folded = " ".join(word.split()).lower()
    return folded in LABEL_WORDS or folded.startswith("other:")


def _split_comment(
    rest: str, path: os.PathLike | str, line_no: int, kind: str, who: str
) -> str:
    """Text of a ``C-``/``A-`` line before its ``(comment)``.

    Every such line ends with a parenthesised comment (``()`` when empty),
    so a line without one, or whose comment is not closed, was cut short.
    """
    paren = rest.find("(")
    if paren < 0:
        raise _error(
            path,
            line_no,
            f"{kind}-{who} line does not end with its '(comment)' "
            f"('()' when empty): {rest.strip()!r}",
        )
    comment = rest[paren:]
    if not comment.endswith(")"):
        raise _error(
            path,
            line_no,
            f"comment of {kind}-{who} does not end with ')': {comment!r}",
        )
    return rest[:paren]


def _parse_eval_rest(
    rest: str, path: os.PathLike | str, line_no: int, who: str
) -> tuple[str, ...]:
    """Label words of the text after ``C-<who>:``; the comment is dropped."""
    labels_text = _split_comment(rest, path, line_no, "C", who)
    words = tuple(
        " ".join(w.split()) for w in labels_text.split(";") if w.strip()
    )
    if not words:
        raise _error(path, line_no, f"C-{who} line has no label words")
    for word in words:
        if not _is_label_word(word):
            raise _error(
                path,
                line_no,
                f"unknown label word {word!r} in C-{who} (IEMOCAP's are "
                "Neutral, Neutral state, Happiness, Excited, Anger, Sadness, "
                "Frustration, Surprise, Fear, Disgust, Other, Other:<text>)",
            )
    return words


def _parse_header(
    match: re.Match, path: os.PathLike | str, line_no: int
) -> dict:
    code = match["code"]
    if code not in HEADER_CODES:
        raise _error(
            path,
            line_no,
            f"unknown consensus code {code!r} (expected one of "
            f"{' '.join(HEADER_CODES)})",
        )
    utt_id = match["id"]
    id_match = _ID_RE.match(utt_id)
    if id_match is None:
        raise _error(
            path,
            line_no,
            f"utterance id {utt_id!r} is not of the form "
            "SesNN{F|M}_<dialog>_{F|M}NNN",
        )
    try:
        vad = tuple(float(v) for v in match["vad"].split(","))
    except ValueError:
        raise _error(
            path, line_no, f"bad [v, a, d] field {match['vad']!r}"
        ) from None
    if len(vad) != 3:
        raise _error(path, line_no, f"[v, a, d] needs 3 values, got {len(vad)}")
    return {
        "id": utt_id,
        "session": int(id_match["session"]),
        "speaker_gender": id_match["gender"],
        "raw_label": code,
        "label": HEADER_CODES[code],
        "start": float(match["start"]),
        "end": float(match["end"]),
        "vad": vad,
        "dialog": utt_id.rsplit("_", 1)[0],
        "line": line_no,
    }


def parse_emo_evaluation(path: os.PathLike | str) -> list[dict]:
    """Parses one EmoEvaluation file into raw per-utterance dicts.

    Args:
      path: the ``.txt`` file.

    Returns:
      One dict per utterance block, in file order, with keys ``id, session,
      speaker_gender, raw_label, label, start, end, vad, dialog, line,
      rater_labels, self_labels``.

    Raises:
      CorpusFormatError: naming ``path`` and the line number of the first
        line that is not one of the accepted forms, or of the header of a
        block without a ``C-E`` rater line (see "Complete blocks" above).
    """
    return _parse(path)[0]


def _check_block_end(block: dict | None, path: os.PathLike | str) -> None:
    """Raises unless ``block`` (just ended) holds a ``C-E`` rater line."""
    if block is not None and not block["rater_labels"]:
        raise _error(
            path,
            block["line"],
            f"utterance {block['id']} has no C-E rater line (a block is "
            "the header line, then C-E<n> rater lines, self-evaluations "
            "and A- lines)",
        )


def _parse(path: os.PathLike | str) -> tuple[list[dict], int]:
    """:func:`parse_emo_evaluation`, plus the number of lines of the file."""
    raw = pathlib.Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusFormatError(
            f"{path}: not UTF-8 text at byte {err.start}"
        ) from err
    blocks: list[dict] = []
    current: dict | None = None
    lines = text.splitlines()
    for line_no, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            _check_block_end(current, path)
            current = None
            continue
        if line.startswith("%"):
            continue
        if line.startswith("["):
            match = _HEADER_RE.match(line)
            if match is None:
                raise _error(
                    path,
                    line_no,
                    "malformed header line (expected "
                    "'[start - end]<TAB>id<TAB>code<TAB>[v, a, d]'): "
                    f"{line!r}",
                )
            _check_block_end(current, path)
            current = _parse_header(match, path, line_no)
            current["rater_labels"] = {}
            current["self_labels"] = {}
            blocks.append(current)
            continue
        match = _EVAL_RE.match(line)
        if match is None:
            raise _error(path, line_no, f"unrecognised line: {line!r}")
        if current is None:
            raise _error(
                path, line_no, "evaluation line outside an utterance block"
            )
        who = match["who"]
        if match["kind"] == "A":
            _split_comment(match["rest"], path, line_no, "A", who)
            continue
        letter = who[0]
        if letter == "E":
            target = current["rater_labels"]
        elif letter in ("F", "M"):
            target = current["self_labels"]
        else:
            raise _error(
                path,
                line_no,
                f"unknown evaluator C-{who} (expected C-E<n> raters or "
                "C-F<n>/C-M<n> self-evaluations)",
            )
        if who in target:
            raise _error(path, line_no, f"C-{who} appears twice in one block")
        target[who] = _parse_eval_rest(match["rest"], path, line_no, who)
    _check_block_end(current, path)
    return blocks, len(lines)


def _list_wavs(folder: pathlib.Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def _session_dirs(root: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    """``(session number, folder)`` of every ``Session<k>`` under ``root``."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"corpus root {root} is not a directory (expected "
            "ROOT/Session1..5/dialog/EmoEvaluation/*.txt)"
        )
    sessions = []
    for entry in sorted(root.iterdir()):
        match = _SESSION_DIR_RE.match(entry.name)
        if match is not None and entry.is_dir():
            sessions.append((int(match[1]), entry))
    return sessions


def _emo_files(root: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    files = []
    for session, folder in _session_dirs(root):
        emo_dir = folder / "dialog" / "EmoEvaluation"
        if not emo_dir.is_dir():
            continue
        # Sub-folders (Categorical/, Attribute/, Self-evaluation/) hold
        # per-rater copies of the same labels: only top-level files count.
        # Dot files (macOS "._x.txt" resource forks) are not text.
        for txt in sorted(emo_dir.glob("*.txt")):
            if not txt.name.startswith("."):
                files.append((session, txt))
    if not files:
        raise FileNotFoundError(
            f"no EmoEvaluation files under {root} (expected "
            "ROOT/Session1..5/dialog/EmoEvaluation/*.txt)"
        )
    return files


def _wav_ids(names: set[str]) -> set[str]:
    """Utterance ids of the ``.wav`` names in a listing (dot files skipped)."""
    return {
        n[: -len(".wav")]
        for n in names
        if n.endswith(".wav") and not n.startswith(".")
    }


def _check_wavs_evaluated(
    root: pathlib.Path,
    evaluated: set[str],
    emo_lines: Mapping[pathlib.Path, tuple[int, str | None]],
    wav_dirs: dict[tuple[int, str], tuple[pathlib.Path, set[str]]],
) -> None:
    """Raises if a ``sentences/wav`` file has no evaluation block.

    In the IEMOCAP release every utterance wav has a block in its dialog's
    EmoEvaluation file, so a wav without one means that file was cut short
    (or not copied) and its utterances would vanish without a word.

    Args:
      root: corpus root.
      evaluated: ids of every block read.
      emo_lines: EmoEvaluation file -> (its number of lines, id of its last
        block or ``None``).
      wav_dirs: the wav folder listings made so far, keyed by
        ``(session, dialog)``; completed here.
    """
    orphans: list[tuple[int, str, list[str]]] = []
    for session, folder in _session_dirs(root):
        wav_root = folder / "sentences" / "wav"
        for dialog in sorted(_list_wavs(wav_root)):
            if dialog.startswith("."):
                continue
            key = (session, dialog)
            if key not in wav_dirs:
                wav_dirs[key] = (
                    wav_root / dialog,
                    _list_wavs(wav_root / dialog),
                )
            lost = sorted(_wav_ids(wav_dirs[key][1]) - evaluated)
            if lost:
                orphans.append((session, dialog, lost))
    if not orphans:
        return
    session, dialog, lost = orphans[0]
    wav = root / f"Session{session}" / "sentences" / "wav" / dialog
    emo = (
        root
        / f"Session{session}"
        / "dialog"
        / "EmoEvaluation"
        / f"{dialog}.txt"
    )
    if emo in emo_lines:
        num_lines, last = emo_lines[emo]
        where = (
            f"{emo}:{num_lines}: {len(lost)} wav file(s) of dialog {dialog} "
            f"have no evaluation block in this file, which ends at line "
            f"{num_lines}" + (f" after utterance {last}" if last else "")
        )
        fix = _RECOPY
    else:
        where = (
            f"{emo} does not exist, but {len(lost)} wav file(s) of dialog "
            f"{dialog} need it"
        )
        fix = "re-copy the dialog's EmoEvaluation file from the IEMOCAP release"
    others = sum(len(ids) for _, _, ids in orphans[1:])
    more = (
        f" (and {others} more in {len(orphans) - 1} other dialog(s))"
        if others
        else ""
    )
    raise CorpusFormatError(
        f"{where} (first: {wav / (lost[0] + '.wav')}){more}; every wav of "
        f"IEMOCAP has a block in its dialog's EmoEvaluation file, so {fix}"
    )


def read_corpus_with_report(root: os.PathLike | str) -> CorpusReport:
    """Reads a corpus and reports the utterances whose wav is missing.

    Missing wav files are not fatal: the records keep ``wav_exists=False``
    (they never enter S1), the count is logged as a warning and returned.
    The reverse, a wav file without an evaluation block, is an error: the
    EmoEvaluation file was cut short (see the module docstring).

    Args:
      root: corpus root holding ``Session1`` ... ``Session5``.

    Returns:
      A :class:`CorpusReport` whose utterances are sorted by id.

    Raises:
      FileNotFoundError: no EmoEvaluation file under ``root``.
      CorpusFormatError: a malformed line or incomplete block (file and
        line number named), an utterance id whose session differs from its
        folder, an id that appears twice, or a wav file under
        ``sentences/wav`` without an evaluation block.
    """
    root = pathlib.Path(root)
    utterances: list[Utterance] = []
    seen: dict[str, str] = {}
    # (session, dialog) -> (wav folder, names in it): one listing per dialog.
    wav_dirs: dict[tuple[int, str], tuple[pathlib.Path, set[str]]] = {}
    emo_files = _emo_files(root)
    emo_lines: dict[pathlib.Path, tuple[int, str | None]] = {}
    for session, path in emo_files:
        blocks, num_lines = _parse(path)
        emo_lines[path] = (num_lines, blocks[-1]["id"] if blocks else None)
        for block in blocks:
            source = f"{path}:{block['line']}"
            if block["session"] != session:
                raise CorpusFormatError(
                    f"{source}: utterance {block['id']} belongs to session "
                    f"{block['session']} but is listed under Session{session}"
                )
            if block["id"] in seen:
                raise CorpusFormatError(
                    f"{source}: utterance {block['id']} already defined at "
                    f"{seen[block['id']]}"
                )
            seen[block["id"]] = source
            key = (session, block["dialog"])
            if key not in wav_dirs:
                folder = (
                    root / f"Session{session}" / "sentences" / "wav" / key[1]
                )
                wav_dirs[key] = (folder, _list_wavs(folder))
            folder, names = wav_dirs[key]
            wav_name = block["id"] + ".wav"
            utterances.append(
                Utterance(
                    id=block["id"],
                    session=session,
                    speaker_gender=block["speaker_gender"],
                    label=block["label"],
                    raw_label=block["raw_label"],
                    rater_labels=block["rater_labels"],
                    wav_path=folder / wav_name,
                    wav_exists=wav_name in names,
                    self_labels=block["self_labels"],
                    start=block["start"],
                    end=block["end"],
                    vad=block["vad"],
                    dialog=block["dialog"],
                    source=source,
                )
            )
    _check_wavs_evaluated(root, set(seen), emo_lines, wav_dirs)
    utterances.sort(key=lambda u: u.id)
    missing = [u.id for u in utterances if not u.wav_exists]
    if missing:
        _LOG.warning(
            "%d of %d utterances under %s have no wav file (first: %s); "
            "they are kept with wav_exists=False and left out of S1",
            len(missing),
            len(utterances),
            root,
            ", ".join(missing[:5]),
        )
    return CorpusReport(
        utterances=utterances, missing_wavs=missing, num_files=len(emo_files)
    )


def read_corpus(root: os.PathLike | str) -> list[Utterance]:
    """Reads every utterance of an IEMOCAP-format corpus, sorted by id.

    See :func:`read_corpus_with_report` for errors and the missing-wav
    report; this returns only the records.
    """
    return read_corpus_with_report(root).utterances


def count_labels(utterances: Sequence[Utterance]) -> dict[str, int]:
    """Header-code counts (``raw_label``) of ``utterances``, sorted by code."""
    counts: dict[str, int] = {}
    for u in utterances:
        counts[u.raw_label] = counts.get(u.raw_label, 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------- the IEMOCAP layout as a Corpus

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


def _rater_label(word: str) -> str:
    """A rater's IEMOCAP label word as a study class or a plain word."""
    label = label_class(word)
    if label is not None:
        return label
    word = " ".join(word.split()).lower()
    return "other" if word.startswith("other") else word


def to_corpus(
    utterances: Sequence[Utterance],
    rater_gender: Mapping[str, str] | None,
    root: os.PathLike | str = "",
    *,
    rater_source: str = "",
) -> corpus_lib.Corpus:
    """A `Corpus` from IEMOCAP records and a rater-gender mapping.

    The speaker attribute is ``gender`` (from the utterance id), the fold
    is ``session - 1`` (leave-one-session-out), labels are the five study
    classes (``exc`` merged into happiness; other codes have no label) and
    a rater's labels are the class names of their words (other words
    lower-cased, ``Other:<text>`` as ``other``). Self-evaluations are not
    ratings.

    Args:
      utterances: records of `read_corpus`.
      rater_gender: rater id (``E1`` or ``C-E1``) -> ``M``/``F``, or None.
      root: the corpus root.
      rater_source: where ``rater_gender`` came from, for messages.
    """
    raters = (
        {}
        if rater_gender is None
        else normalise_rater_gender(
            rater_gender, source=rater_source or "rater-gender mapping"
        )
    )
    records = tuple(
        corpus_lib.Record(
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
    return corpus_lib.Corpus(
        root=pathlib.Path(root),
        format="iemocap",
        records=records,
        rater_attributes={r: {"gender": g} for r, g in raters.items()},
        rater_source=rater_source or "the rater-gender mapping",
        rater_hint=RATER_GENDER_HINT,
    )


def read(
    root: os.PathLike | str, rater_gender: os.PathLike | str | None = None
) -> corpus_lib.Corpus:
    """An IEMOCAP-layout folder as a `Corpus` (the ``iemocap`` layout).

    Args:
      root: the corpus root (``Session1`` ...).
      rater_gender: the rater-gender JSON file; ``None``:
        ``<root>/rater_gender.json`` when it exists (else raters have no
        gender, and building S2 names them).
    """
    root = pathlib.Path(root)
    utterances = read_corpus(root)
    path = pathlib.Path(rater_gender) if rater_gender else None
    if path is None and (root / "rater_gender.json").exists():
        path = root / "rater_gender.json"
    mapping = None if path is None else load_rater_gender(path)
    return to_corpus(
        utterances,
        mapping,
        root,
        rater_source="" if path is None else str(path),
    )
