"""Files written whole: a temporary file renamed over the target.

A reader sees the old file or the new one, never half of one
(docs/DESIGN.md, "Workdir rules"). `tempfile.mkstemp` makes its file
owner-only (0600) whatever the umask, which the rename would hand on to
the target, so collaborators could not read a feature store or a
manifest; `mkstemp` here gives the file the mode a plain ``open(path,
"w")`` would (0666 less the umask).
"""

from __future__ import annotations

import contextlib
import csv
import os
import pathlib
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "default_mode",
    "mkstemp",
    "notify_written",
    "on_written",
    "temp_target",
    "write_csv_temp",
]

# Called with (path, tree) after each file this package writes (tree: a
# folder whose whole content another library writes, e.g. orbax's).
_LISTENERS: list[Callable[[pathlib.Path, bool], None]] = []


@contextlib.contextmanager
def on_written(
    listener: Callable[[pathlib.Path, bool], None],
) -> Iterator[None]:
    """Calls ``listener(path, tree)`` for every file written in the block.

    `atomic_write` reports each file it renames into place; code that
    writes otherwise reports with `notify_written`. The workdir's record
    of what a run wrote (`fairser_jax.workdir`) listens this way.
    """
    _LISTENERS.append(listener)
    try:
        yield
    finally:
        _LISTENERS.remove(listener)


def notify_written(path: str | os.PathLike, *, tree: bool = False) -> None:
    """Tells the `on_written` listeners that ``path`` was written (``tree``:
    a folder whose whole content is written by another library)."""
    for listener in list(_LISTENERS):
        listener(pathlib.Path(path), tree)


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


# `mkstemp`'s names: "." + the target's name + "." + tempfile's 8 random
# characters + ".tmp".
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")


def temp_target(name: str) -> str | None:
    """The target a temporary file named `name` was made for by `mkstemp`
    (with the default suffix), or None when `name` is not one: a file left
    behind by a process killed while writing it."""
    match = _TEMP_NAME.match(name)
    return match["target"] if match else None


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


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", **open_kwargs: Any
) -> Iterator[IO]:
    """Opens a temporary file that becomes ``path`` when the block ends.

    The one way this package writes a file whole: the temporary file is in
    ``path``'s folder (so the rename is atomic), named ``.<name>.<random>
    .tmp``, with the mode `default_mode` (not mkstemp's 0600); on leaving
    the block it is flushed, fsynced and renamed over ``path``; on an
    error it is removed and ``path`` is left as it was.

    Args:
      path: the target.
      mode: ``"w"`` (text; UTF-8 and ``newline=""`` unless given) or
        ``"wb"``.
      **open_kwargs: passed to ``open`` (e.g. ``encoding``).

    Yields:
      The open file (`np.savez`, `csv.writer`, `Figure.savefig` take it).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb'; got {mode!r}")
    path = pathlib.Path(path)
    if mode == "w":
        open_kwargs.setdefault("encoding", "utf-8")
        open_kwargs.setdefault("newline", "")
    fd, tmp = mkstemp(path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    notify_written(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` with `atomic_write`."""
    with atomic_write(path) as f:
        f.write(text)
