"""Files written whole: a temporary file renamed over the target.

A reader sees the old file or the new one, never half of one
(docs/DESIGN.md, "Workdir rules"). `tempfile.mkstemp` makes its file
owner-only (0600) whatever the umask, which the rename would hand on to
the target, so collaborators could not read a feature store or a
manifest; `mkstemp` here gives the file the mode a plain ``open(path,
"w")`` would (0666 less the umask).
"""

from __future__ import annotations

import csv
import os
import pathlib
import tempfile
from collections.abc import Iterable, Sequence

__all__ = ["default_mode", "mkstemp", "write_csv_temp"]


def _umask() -> int:
    """This process's umask, read without changing it where possible."""
    try:  # Linux >= 4.7
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # the only portable way to read it
    os.umask(mask)
    return mask


def default_mode() -> int:
    """``0o666 & ~umask``: the permission bits ``open()`` gives a new file."""
    return 0o666 & ~_umask()


def mkstemp(
    folder: str | os.PathLike, *, prefix: str, suffix: str = ".tmp"
) -> tuple[int, pathlib.Path]:
    """`tempfile.mkstemp` in `folder`, with the mode `default_mode`.

    Args:
      folder: where the file is made (the target's folder, so that
        `os.replace` onto the target is a rename).
      prefix, suffix: of the file's name.

    Returns:
      (open file descriptor, path); the caller closes and renames it.
    """
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        os.chmod(name, default_mode())
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    return fd, pathlib.Path(name)


def write_csv_temp(
    folder: str | os.PathLike, name: str, rows: Iterable[Sequence[object]]
) -> pathlib.Path:
    """Writes ``rows`` as CSV (UTF-8, ``\n`` line ends) to a temporary
    file in ``folder`` for the target ``name``, synced to disk.

    The caller renames it onto the target (``os.replace``), alone or with
    other files written the same way; on an error it is removed.

    Returns:
      The temporary file's path (mode `default_mode`).
    """
    fd, tmp = mkstemp(folder, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
