"""What `fairser_jax.predict` reads and writes, checked before any work.

The recordings `--audio` names (a sound file, a folder searched
recursively, or a list of files), the `--speaker_of` mapping and whether
`--out` can take the CSV. Flag-free, so a notebook or a test can call it
(the entry point defines absl flags at import).
"""

from __future__ import annotations

import csv
import logging
import os
import pathlib
from collections.abc import Sequence

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
"""Files a folder is searched for (what libsndfile reads)."""

LIST_SUFFIXES = (".txt", ".lst", ".list", ".csv", "")
"""Suffixes `--audio` reads as a list of files, one per line."""


def audio_files(source: str | pathlib.Path) -> list[pathlib.Path]:
    """The recordings `--audio` names, sorted for a folder.

    Raises:
      ValueError: nothing there, or no sound file found.
    """
    path = pathlib.Path(source)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
        )
        if not files:
            raise ValueError(
                f"--audio={path}: no sound file ({', '.join(AUDIO_SUFFIXES)})"
                " in this folder or below."
            )
        return files
    if not path.is_file():
        raise ValueError(f"--audio={path}: no such file or folder.")
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return [path]
    if path.suffix.lower() not in LIST_SUFFIXES:
        raise ValueError(
            f"--audio={path}: not a sound file ({', '.join(AUDIO_SUFFIXES)}) "
            f"nor a list of files ({', '.join(x for x in LIST_SUFFIXES if x)}"
            " or no suffix, one path per line); rename it, or pass its "
            "folder."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"--audio={path}: a list of files must be UTF-8 text, but byte "
            f"{e.start} is not ({e.reason}); is it a recording with an "
            "unknown suffix?"
        ) from None
    files = []
    for line in text.splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            file = pathlib.Path(entry)
            files.append(file if file.is_absolute() else path.parent / file)
    if not files:
        raise ValueError(f"--audio={path}: the list of files is empty.")
    return files


def read_speaker_of(path: str | pathlib.Path) -> dict[pathlib.Path, str]:
    """`--speaker_of`: resolved path -> speaker.

    Raises:
      ValueError: no such file, no ``path``/``speaker`` header, or an
        empty cell (naming the line).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"--speaker_of={path}: no such file.")
    out = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "speaker"} <= set(
            reader.fieldnames
        ):
            raise ValueError(
                f"{path}:1: the header must name the columns path,speaker; "
                f"got {','.join(reader.fieldnames or [])}."
            )
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise ValueError(
                    f"{path}:{reader.line_num}: the row has "
                    f"{'more' if None in row else 'fewer'} cells than the "
                    "header (path,speaker); one path and one speaker per "
                    "line, a path holding a comma in double quotes."
                )
            file, speaker = row["path"].strip(), row["speaker"].strip()
            if not file or not speaker:
                raise ValueError(
                    f"{path}:{reader.line_num}: empty "
                    f"{'path' if not file else 'speaker'} cell."
                )
            resolved = pathlib.Path(file)
            if not resolved.is_absolute():
                resolved = path.parent / resolved
            out[resolved.resolve()] = speaker
    return out


def speakers_of(
    files: list[pathlib.Path], mapping: dict[pathlib.Path, str] | None
) -> list[str]:
    """Speaker of each file: `mapping`, else its folder."""
    out = []
    for file in files:
        resolved = file.resolve()
        if mapping is not None and resolved in mapping:
            out.append(mapping[resolved])
        else:
            out.append(f"folder:{resolved.parent}")
    if mapping is None:
        logging.warning(
            "no --speaker_of: each of the %d folder(s) counts as one speaker "
            "for z-normalisation; a folder holding several speakers (e.g. "
            "an IEMOCAP dialog) mixes their statistics",
            len({f.resolve().parent for f in files}),
        )
    else:
        missing = sum(1 for f in files if f.resolve() not in mapping)
        if missing:
            logging.warning(
                "%d of %d file(s) are not in --speaker_of; each of their "
                "folders counts as one speaker",
                missing,
                len(files),
            )
    return out


def out_problem(
    out: pathlib.Path, inputs: Sequence[pathlib.Path], *, overwrite: bool
) -> str | None:
    """Why `out` cannot take the predictions CSV, or None (checked before
    any work, so nothing is extracted for a file that cannot be written).

    Args:
      out: the CSV to write.
      inputs: the recordings, the --audio list and the --speaker_of file:
        never replaced, --overwrite or not.
      overwrite: whether an existing `out` may be replaced.
    """
    if out.is_dir():
        return f"--out={out} is a folder; name the CSV file to write."
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            return f"--out={out}: {parent} is a file, not a folder."
        if parent.is_dir():
            if not os.access(parent, os.W_OK | os.X_OK):
                return (
                    f"--out={out}: cannot write in {parent} (permission "
                    "denied or a read-only file system); pass an --out you "
                    "can write."
                )
            break
    if out.exists():
        target = out.resolve()
        if any(p.exists() and p.resolve() == target for p in inputs):
            return (
                f"--out={out} is one of the inputs; predictions never "
                "replace a recording or a list. Choose another --out."
            )
        if not overwrite:
            return (
                f"{out} exists; pass --overwrite to replace it, or another "
                "--out."
            )
    return None
