r"""Corpora as a manifest: three CSV files in a folder.

A manifest describes any corpus with rater-level labels (paper §2.1) by
the facts the pipeline needs, for any categorical speaker and rater
attribute::

    FOLDER/utterances.csv   utterance_id,wav_path,speaker_id,speaker_gender,
                            label,fold
    FOLDER/ratings.csv      utterance_id,rater_id,label
    FOLDER/raters.csv       rater_id,rater_gender

* ``utterances.csv``: one row per utterance. ``wav_path`` is relative to
  the folder, or absolute. (`write` writes a wav inside the folder
  relative to it and any other absolute, so that moving the folder keeps
  the paths valid.) Each ``speaker_<attr>`` column
  (``speaker_gender``, ``speaker_age_group``; ``speaker_id`` is the id, not
  an attribute) gives a speaker attribute; an empty cell means unknown
  (an error for the attribute the study uses). Optional ``label``: the
  consensus class, an empty cell = none (no plurality, or a class outside
  the study). Optional ``fold`` (0, 1, ...) or ``session`` (any text).
  Other columns are ignored.
* ``ratings.csv``: one row per label a rater gave an utterance (a rater
  who gave two labels has two rows).
* ``raters.csv``: one row per rater, a ``rater_<attr>`` column per rater
  attribute.

Files are UTF-8 (a byte-order mark and CRLF line endings are accepted),
with a header row; cells are trimmed of surrounding spaces; blank lines
are skipped; a cell holding a comma is quoted (``"a, b"``).

**Labels.** Without a ``label`` column, an utterance's label is the
plurality of its ratings (each rater's label counted once); a tie, or a
plurality outside the study's classes, gives no label, and how many
utterances that happened to is logged.

**Folds.** The ``fold`` column when present; else, with a ``session``
column, one fold per session (sessions sorted, numerically when all are
integers: leave-one-session-out); else ``num_folds`` speaker-independent
folds: speakers sorted by descending utterance count (then id), each put
into the fold with the fewest utterances so far (the lowest index on
ties). The same manifest always gives the same folds.

`read` checks everything it reads and reports the first problem as a
`ManifestError` naming the file, line (the header is line 1) and column,
and how to fix it. `write` writes any `fairser_jax.data.corpus.Corpus` as
a manifest (``python -m fairser_jax.export_manifest`` for IEMOCAP).
"""

from __future__ import annotations

import collections
import csv
import io
import logging
import os
import pathlib
from collections.abc import Mapping, Sequence

from fairser_jax import constants, fileio
from fairser_jax.data import corpus as corpus_lib
from fairser_jax.data import iemocap, policies
from fairser_jax.data.policies import speaker_folds  # noqa: F401 (its old place)

__all__ = [
    "FILES",
    "RATERS_FILE",
    "RATINGS_FILE",
    "UTTERANCES_FILE",
    "ManifestError",
    "check_out",
    "read",
    "speaker_folds",
    "write",
]

_LOG = logging.getLogger(__name__)

UTTERANCES_FILE = "utterances.csv"
"""The file whose presence makes a corpus folder a manifest."""
RATINGS_FILE = "ratings.csv"
RATERS_FILE = "raters.csv"
FILES: tuple[str, ...] = (UTTERANCES_FILE, RATINGS_FILE, RATERS_FILE)

_SPEAKER_PREFIX = "speaker_"
_RATER_PREFIX = "rater_"
_SHOWN = 5  # ids shown in a message or log line before "..."


class ManifestError(iemocap.CorpusFormatError):
    """A manifest file does not follow the manifest format."""


def _error(
    path: os.PathLike | str, line: int, column: str | None, message: str
) -> ManifestError:
    where = f"{path}:{line}: " + (f"column {column!r}: " if column else "")
    return ManifestError(where + message)


def _shown(items: Sequence[str]) -> str:
    head = ", ".join(items[:_SHOWN])
    return head + (" ..." if len(items) > _SHOWN else "")


class _Table:
    """A CSV file read and checked: header and rows with their lines."""

    def __init__(
        self, path: pathlib.Path, required: Sequence[str], what: str
    ) -> None:
        self.path = path
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such file; a manifest folder holds "
                f"{', '.join(FILES)} ({path.name}: {what})"
            )
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise self._not_utf8(raw, err) from err
        reader = csv.reader(io.StringIO(text, newline=""))
        self.columns: list[str] = []
        self.rows: list[tuple[int, dict[str, str]]] = []
        end = 0  # last physical line of the previous row
        try:
            for cells in reader:
                line, end = end + 1, reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                cells = [c.strip() for c in cells]
                if not self.columns:
                    self._set_header(cells, line, required)
                    continue
                self._check_width(cells, line)
                self.rows.append(
                    (line, dict(zip(self.columns, cells, strict=True)))
                )
        except csv.Error as err:
            raise _error(
                path,
                reader.line_num,
                None,
                f"not valid CSV ({err}); quote a cell that holds a comma, "
                'a quote or a line break ("a, b"), doubling quotes inside it',
            ) from err
        if not self.columns:
            raise _error(
                path,
                1,
                None,
                f"the file is empty; it needs a header row with the columns "
                f"{', '.join(required)} ({what})",
            )

    def _not_utf8(self, raw: bytes, err: UnicodeDecodeError) -> ManifestError:
        start = raw.rfind(b"\n", 0, err.start) + 1
        line = raw.count(b"\n", 0, err.start) + 1
        prefix = raw[start : err.start].decode("utf-8-sig", "replace")
        index = len(next(csv.reader([prefix]), [""])) - 1
        header = raw.split(b"\n", 1)[0].decode("utf-8-sig", "replace")
        names = [c.strip() for c in next(csv.reader([header]), [])]
        column = names[index] if index < len(names) else f"#{index + 1}"
        return _error(
            self.path,
            line,
            column,
            f"not UTF-8 text (byte {err.object[err.start]:#04x} at offset "
            f"{err.start}); save the file as UTF-8",
        )

    def _set_header(
        self, cells: list[str], line: int, required: Sequence[str]
    ) -> None:
        seen: set[str] = set()
        for cell in cells:
            if cell in seen:
                raise _error(
                    self.path,
                    line,
                    cell,
                    "the header names this column twice; rename or remove "
                    "one of them",
                )
            seen.add(cell)
        missing = [c for c in required if c not in seen]
        if missing:
            raise _error(
                self.path,
                line,
                missing[0],
                f"no such column in the header (found: "
                f"{', '.join(cells)}); the file needs the columns "
                f"{', '.join(required)}",
            )
        self.columns = cells

    def _check_width(self, cells: list[str], line: int) -> None:
        n, m = len(cells), len(self.columns)
        if n == m:
            return
        column = self.columns[n] if n < m else f"#{m + 1}"
        raise _error(
            self.path,
            line,
            column,
            f"the row has {n} cells but the header has {m} columns "
            f"({', '.join(self.columns)}); give every row one cell per "
            'column (empty cells too), quoting a cell that holds a comma ("a, '
            'b")',
        )

    def attributes(self, prefix: str, id_column: str) -> list[str]:
        """Attribute names of the ``<prefix><attr>`` columns."""
        return [
            c[len(prefix) :]
            for c in self.columns
            if c.startswith(prefix) and c != id_column and len(c) > len(prefix)
        ]

    def require_attribute(
        self, prefix: str, id_column: str, attribute: str, flag: str
    ) -> None:
        """Raises unless there is a ``<prefix><attribute>`` column."""
        if prefix + attribute in self.columns:
            return
        present = self.attributes(prefix, id_column)
        raise _error(
            self.path,
            1,
            prefix + attribute,
            f"no such column for the {prefix.rstrip('_')} attribute "
            f"{attribute!r} (attributes present: "
            f"{', '.join(present) or 'none'}); add the column, or set "
            f"{flag} to one of the attributes present",
        )

    def nonempty(self, line: int, row: Mapping[str, str], column: str) -> str:
        """The cell, which must not be empty."""
        value = row[column]
        if not value:
            raise _error(
                self.path, line, column, "the cell is empty; fill it in"
            )
        return value


def _check_speakers_consistent(path: pathlib.Path, rows: Mapping) -> None:
    """Raises when one speaker has two values of a speaker attribute (a
    speaker listed as both F and M): the speaker side groups utterances by
    their speaker's attribute, which must be one value per speaker."""
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for r in rows.values():
        for attr, value in r["attrs"].items():
            key = (r["speaker"], attr)
            if key not in seen:
                seen[key] = (value, r["line"])
                continue
            first, line = seen[key]
            if value != first:
                raise _error(
                    path,
                    r["line"],
                    _SPEAKER_PREFIX + attr,
                    f"speaker {r['speaker']!r} has {attr} {value!r} here but "
                    f"{first!r} at line {line}; a speaker has one {attr}: "
                    "fix the cell, or give the two speakers different "
                    "speaker_id values",
                )


def _int_cell(table: _Table, line: int, value: str, column: str) -> int:
    try:
        fold = int(value)
    except ValueError:
        fold = -1
    if fold < 0:
        raise _error(
            table.path,
            line,
            column,
            f"{value!r} is not a fold index; write a non-negative integer "
            "(0, 1, ...), or drop the column to make folds from 'session' "
            "or by speaker",
        )
    return fold


def _read_raters(
    folder: pathlib.Path, rater_attribute: str | None
) -> tuple[_Table, dict[str, dict[str, str]], set[str]]:
    table = _Table(
        folder / RATERS_FILE,
        ("rater_id",),
        "rater_id, then a rater_<attribute> column per rater attribute",
    )
    if rater_attribute is not None:
        table.require_attribute(
            _RATER_PREFIX,
            "rater_id",
            rater_attribute,
            "--config.data.rater_attribute",
        )
    attrs = table.attributes(_RATER_PREFIX, "rater_id")
    lines: dict[str, int] = {}
    out: dict[str, dict[str, str]] = {}
    for line, row in table.rows:
        rater = table.nonempty(line, row, "rater_id")
        if rater in lines:
            raise _error(
                table.path,
                line,
                "rater_id",
                f"rater {rater!r} appears again (first at line "
                f"{lines[rater]}); give each rater one row",
            )
        lines[rater] = line
        if rater_attribute is not None:
            column = _RATER_PREFIX + rater_attribute
            if not row[column]:
                raise _error(
                    table.path,
                    line,
                    column,
                    f"rater {rater!r} has no {rater_attribute}; fill in the "
                    "cell (the rater-side study groups raters by it), or "
                    "remove the rater and their ratings",
                )
        values = {a: row[_RATER_PREFIX + a] for a in attrs}
        values = {a: v for a, v in sorted(values.items()) if v}
        if values:
            out[rater] = values
    return table, out, set(lines)


def _read_ratings(
    folder: pathlib.Path, ids: set[str], raters: set[str], raters_path: str
) -> dict[str, dict[str, set[str]]]:
    table = _Table(
        folder / RATINGS_FILE,
        ("utterance_id", "rater_id", "label"),
        "one row per rating: utterance_id, rater_id, label",
    )
    out: dict[str, dict[str, set[str]]] = collections.defaultdict(dict)
    for line, row in table.rows:
        utt = table.nonempty(line, row, "utterance_id")
        if utt not in ids:
            raise _error(
                table.path,
                line,
                "utterance_id",
                f"utterance {utt!r} is not in {UTTERANCES_FILE}; add it there "
                "or remove its ratings",
            )
        rater = table.nonempty(line, row, "rater_id")
        if rater not in raters:
            raise _error(
                table.path,
                line,
                "rater_id",
                f"rater {rater!r} is not in {raters_path}; add a row for "
                "them there",
            )
        label = row["label"]
        if not label:
            raise _error(
                table.path,
                line,
                "label",
                "the label is empty; write the label the rater gave, or "
                "remove the row",
            )
        out[utt].setdefault(rater, set()).add(label)
    return out


def _plurality_labels(
    ids: Sequence[str],
    ratings: Mapping[str, Mapping[str, set[str]]],
    classes: Sequence[str] | None,
) -> dict[str, str | None]:
    """Plurality label of each utterance; ties and outsiders -> None."""
    labels: dict[str, str | None] = {}
    missed: dict[str, list[str]] = {"tie": [], "outside": [], "unrated": []}
    for utt in ids:
        labels[utt], why = policies.plurality_label(
            ratings.get(utt, {}), classes
        )
        if labels[utt] is None:
            missed[why].append(utt)
    ties, outside, unrated = missed["tie"], missed["outside"], missed["unrated"]
    level = logging.WARNING if ties or outside or unrated else logging.INFO
    _LOG.log(
        level,
        "%s has no 'label' column: labels are the plurality of %s; %d "
        "tie(s)%s, %d plurality(ies) outside the classes%s and %d "
        "unrated utterance(s)%s get no label (they stay out of S1)",
        UTTERANCES_FILE,
        RATINGS_FILE,
        len(ties),
        f" ({_shown(ties)})" if ties else "",
        len(outside),
        f" ({_shown(outside)})" if outside else "",
        len(unrated),
        f" ({_shown(unrated)})" if unrated else "",
    )
    return labels


def read(
    folder: os.PathLike | str,
    *,
    classes: Sequence[str] | None = constants.EMOTIONS,
    speaker_attribute: str | None = "gender",
    rater_attribute: str | None = "gender",
    num_folds: int = 5,
) -> corpus_lib.Corpus:
    """Reads a manifest folder (see the module docstring).

    Args:
      folder: the folder holding the three CSV files.
      classes: the study's classes: a ``label`` cell outside them is an
        error, a plurality outside them gives no label; ``None`` accepts
        any label.
      speaker_attribute: the ``speaker_<attr>`` column every utterance
        must fill; ``None`` skips the check.
      rater_attribute: the ``rater_<attr>`` column every rater must fill;
        ``None`` skips the check.
      num_folds: speaker-independent folds to make when ``utterances.csv``
        has neither ``fold`` nor ``session``.

    Returns:
      The `fairser_jax.data.corpus.Corpus` (format ``"manifest"``), its
      records sorted by id.

    Raises:
      FileNotFoundError: the folder or one of its files is missing.
      ManifestError: anything else that is not as described; the message
        names the file, line and column and says how to fix it.
    """
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"manifest folder {folder} does not exist or is not a folder; "
            f"it should hold {', '.join(FILES)}"
        )
    table = _Table(
        folder / UTTERANCES_FILE,
        ("utterance_id", "wav_path", "speaker_id"),
        "utterance_id, wav_path, speaker_id, speaker_<attribute> columns, "
        "optional label, fold or session",
    )
    path = table.path
    if speaker_attribute is not None:
        table.require_attribute(
            _SPEAKER_PREFIX,
            "speaker_id",
            speaker_attribute,
            "--config.data.speaker_attribute",
        )
    speaker_attrs = table.attributes(_SPEAKER_PREFIX, "speaker_id")
    has_label = "label" in table.columns

    rows: dict[str, dict] = {}
    for line, row in table.rows:
        utt = table.nonempty(line, row, "utterance_id")
        if utt in rows:
            raise _error(
                path,
                line,
                "utterance_id",
                f"utterance {utt!r} appears again (first at line "
                f"{rows[utt]['line']}); ids must be unique: remove or rename "
                "one of the rows",
            )
        wav = pathlib.Path(table.nonempty(line, row, "wav_path"))
        wav = wav if wav.is_absolute() else folder / wav
        if not wav.is_file():
            raise _error(
                path,
                line,
                "wav_path",
                f"{wav} does not exist; fix the path (a relative path is "
                f"relative to {folder}) or remove the row",
            )
        speaker = table.nonempty(line, row, "speaker_id")
        attrs = {a: row[_SPEAKER_PREFIX + a] for a in speaker_attrs}
        column = _SPEAKER_PREFIX + (speaker_attribute or "")
        if speaker_attribute is not None and not row[column]:
            raise _error(
                path,
                line,
                column,
                f"utterance {utt!r} has no speaker {speaker_attribute}; fill "
                "in the cell (the speaker-side study groups utterances by "
                "it), or remove the row",
            )
        label = (row["label"] or None) if has_label else None
        if label is not None and classes is not None and label not in classes:
            raise _error(
                path,
                line,
                "label",
                f"label {label!r} is not one of the classes "
                f"{', '.join(classes)}; leave the cell empty for utterances "
                "outside the study, or add it to --config.data.classes",
            )
        fold = None
        if "fold" in table.columns:
            fold = _int_cell(table, line, row["fold"], "fold")
        elif "session" in table.columns:
            fold = table.nonempty(line, row, "session")
        rows[utt] = {
            "line": line,
            "wav": wav,
            "speaker": speaker,
            "attrs": {a: v for a, v in sorted(attrs.items()) if v},
            "label": label,
            "fold": fold,
        }

    _check_speakers_consistent(path, rows)
    if "fold" in table.columns:
        _check_folds_used(table, rows)
    elif "session" in table.columns:
        index = policies.session_folds(r["fold"] for r in rows.values())
        for r in rows.values():
            r["fold"] = index[r["fold"]]
    else:
        if num_folds < 1:
            raise ValueError(f"num_folds is {num_folds}; it must be >= 1")
        counts = collections.Counter(r["speaker"] for r in rows.values())
        if len(counts) < num_folds:
            raise _error(
                path,
                1,
                "speaker_id",
                f"{len(counts)} speaker(s) cannot fill {num_folds} "
                "speaker-independent folds; add a 'fold' or 'session' "
                "column, or lower --config.data.num_folds",
            )
        by_speaker = policies.speaker_folds(counts, num_folds)
        for r in rows.values():
            r["fold"] = by_speaker[r["speaker"]]

    raters_table, rater_attrs, rater_ids = _read_raters(folder, rater_attribute)
    raters_path = str(raters_table.path)
    ratings = _read_ratings(folder, set(rows), rater_ids, raters_path)
    if not has_label:
        plurality = _plurality_labels(sorted(rows), ratings, classes)
        for utt, r in rows.items():
            r["label"] = plurality[utt]

    records = tuple(
        corpus_lib.Record(
            id=utt,
            wav_path=r["wav"],
            wav_exists=True,
            speaker=r["speaker"],
            speaker_attributes=r["attrs"],
            label=r["label"],
            fold=r["fold"],
            ratings={
                rater: frozenset(labels)
                for rater, labels in sorted(ratings.get(utt, {}).items())
            },
            source=f"{path}:{r['line']}",
        )
        for utt, r in sorted(rows.items())
    )
    column = _RATER_PREFIX + (rater_attribute or "<attribute>")
    return corpus_lib.Corpus(
        root=folder,
        format="manifest",
        records=records,
        rater_attributes=rater_attrs,
        rater_source=raters_path,
        rater_hint=(
            f"fill the {column!r} column of {raters_path} for every rater"
        ),
    )


def _check_folds_used(table: _Table, rows: Mapping[str, dict]) -> None:
    """Raises unless the ``fold`` column uses every index 0..max."""
    used = {r["fold"] for r in rows.values()}
    gaps = sorted(set(range(max(used, default=-1) + 1)) - used)
    if not gaps:
        return
    line = min(r["line"] for r in rows.values() if r["fold"] > gaps[0])
    raise _error(
        table.path,
        line,
        "fold",
        f"fold {gaps[0]} has no utterances but this row is in a higher "
        f"fold; number the folds 0..K-1 with every fold used (folds used: "
        f"{', '.join(map(str, sorted(used)))})",
    )


def wav_cell(path: os.PathLike | str, out: os.PathLike | str) -> str:
    """The ``wav_path`` cell `write` gives the wav `path` in folder `out`.

    Relative to `out` (with ``/``) when the wav lies inside `out`, else
    absolute: moving the manifest folder, with the audio inside it, or
    alone with the audio left where it is, keeps every path valid. Paths
    are compared as written, made absolute (symbolic links are not
    followed).
    """
    wav = pathlib.Path(os.path.abspath(path))
    folder = pathlib.Path(os.path.abspath(out))
    try:
        return wav.relative_to(folder).as_posix()
    except ValueError:
        return str(wav)


def check_out(out: os.PathLike | str, *, overwrite: bool = False) -> None:
    """Raises unless `write` may write into ``out``.

    Raises:
      ValueError: ``out`` already holds manifest files and not
        ``overwrite``.
    """
    out = pathlib.Path(out)
    existing = [n for n in FILES if (out / n).exists()]
    if existing and not overwrite:
        raise ValueError(
            f"{out} already holds {', '.join(existing)}; pass --overwrite to "
            "replace them, or choose another output folder"
        )


def write(
    corpus: corpus_lib.Corpus,
    out: os.PathLike | str,
    *,
    overwrite: bool = False,
) -> dict:
    """Writes a corpus as a manifest folder that `read` reads back.

    ``utterances.csv`` gets ``utterance_id, wav_path`` (relative to
    ``out`` for a wav inside ``out``, else absolute: `wav_cell`; so the
    folder can be moved), ``speaker_id``, a ``speaker_<attr>`` column per
    speaker attribute (sorted), ``label`` (empty for none) and ``fold``;
    ``ratings.csv`` one row per label per rater; ``raters.csv`` the
    raters of the written utterances and every rater with attributes, a
    ``rater_<attr>`` column per attribute (sorted). Records whose wav file
    does not exist are left out (and logged). Each file is written to a
    temporary file and renamed into place, with the mode ``open()``
    would give it (0666 less the umask).

    Args:
      corpus: any `fairser_jax.data.corpus.Corpus`.
      out: the manifest folder (created if needed).
      overwrite: replace the manifest files already in ``out``.

    Returns:
      ``{"out", "num_utterances", "num_ratings", "num_raters",
      "num_left_out"}``.

    Raises:
      ValueError: ``out`` already holds manifest files and not
        ``overwrite``; or a speaker attribute is called ``id``.
    """
    out = pathlib.Path(out)
    check_out(out, overwrite=overwrite)
    kept = [r for r in corpus.records if os.path.isfile(r.wav_path)]
    left_out = [r.id for r in corpus.records if not os.path.isfile(r.wav_path)]
    if left_out:
        _LOG.warning(
            "left out %d utterance(s) whose wav file does not exist: %s",
            len(left_out),
            _shown(left_out),
        )
    speaker_attrs = sorted({a for r in kept for a in r.speaker_attributes})
    if "id" in speaker_attrs:
        raise ValueError(
            "a speaker attribute is called 'id', which would clash with the "
            "speaker_id column; rename the attribute"
        )
    utterances = [
        [
            "utterance_id",
            "wav_path",
            "speaker_id",
            *(_SPEAKER_PREFIX + a for a in speaker_attrs),
            "label",
            "fold",
        ]
    ]
    ratings: list[list[str]] = [["utterance_id", "rater_id", "label"]]
    rated: set[str] = set()
    for r in sorted(kept, key=lambda r: r.id):
        utterances.append(
            [
                r.id,
                wav_cell(r.wav_path, out),
                r.speaker,
                *(r.speaker_attributes.get(a, "") for a in speaker_attrs),
                r.label or "",
                str(r.fold),
            ]
        )
        for rater in sorted(r.ratings):
            rated.add(rater)
            for label in sorted(r.ratings[rater]):
                ratings.append([r.id, rater, label])
    raters = sorted(rated | set(corpus.rater_attributes))
    rater_attrs = sorted(
        {a for attrs in corpus.rater_attributes.values() for a in attrs}
    )
    rater_rows = [["rater_id", *(_RATER_PREFIX + a for a in rater_attrs)]]
    for rater in raters:
        attrs = corpus.rater_attributes.get(rater, {})
        rater_rows.append([rater, *(attrs.get(a, "") for a in rater_attrs)])

    out.mkdir(parents=True, exist_ok=True)
    # utterances.csv last: a folder holding it is taken for a manifest.
    files = {
        RATINGS_FILE: ratings,
        RATERS_FILE: rater_rows,
        UTTERANCES_FILE: utterances,
    }
    temps: dict[str, pathlib.Path] = {}
    try:
        for name, rows in files.items():
            temps[name] = fileio.write_csv_temp(out, name, rows)
    except BaseException:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        raise
    for name, tmp in temps.items():
        os.replace(tmp, out / name)
        fileio.notify_written(out / name)
    return {
        "out": str(out),
        "num_utterances": len(kept),
        "num_ratings": len(ratings) - 1,
        "num_raters": len(raters),
        "num_left_out": len(left_out),
    }
