"""The rules of a workdir: one run (one config) per folder, one writer at once.

A workdir holds a user's results; nothing here deletes or mixes them
implicitly (docs/DESIGN.md, "Workdir rules"):

- `claim` is what every writing entry point (`main`, `train`, `report`)
  enters first. It takes the workdir's lock (`.lock`, an advisory
  `fcntl.flock` held for the life of the process, so the lock of a killed
  process is released by the kernel and never goes stale), then applies
  the rules of a run:
    * a workdir that holds a previous run (`RUN_OUTPUTS`) is refused
      unless the user passes `--resume` (continue it: same config) or
      `--overwrite` (discard it explicitly);
    * `--overwrite` removes, among `RUN_OUTPUTS`, exactly the files that
      runs wrote (recorded with their digests by `Ledger` while the lock
      is held), and refuses, naming them, when anything else is there; it
      never touches the corpus or the feature store, which are inputs and
      are validated on use.
- `read_lock` is the same lock taken shared, by readers (`predict`).
- `config_digest` stamps `results.json` with the config it was made
  under, so a reader (the report, `--recompute`) can refuse a
  `results.json` that does not belong to `config.json`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import hashlib
import json
import logging
import os
import pathlib
import shutil
import socket
import time
import uuid
from collections.abc import Iterator

from fairser_jax import distributed, fileio

LOCK_FILE = ".lock"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Every path of a workdir, in one place.

    ``Layout(workdir).results`` is ``<workdir>/results.json``, and so on
    (the file names are the class's upper-case attributes); the pipeline,
    the report, ``predict`` and the checks here all ask it. The
    per-variant files are methods (``params_file("proposed")``).

    A workdir after a run::

        config.json         the resolved config of the run
        inputs.json         per utterance: class, fold, groups; features' digest
        corpus/             the demo corpus (when config.data.corpus is empty)
        features.npz(.json) the feature store and its manifest (by default)
        results.json        study sets, per-run metrics, α histograms
        predictions.csv     one row per (run, utterance), every variant
        predictions/<v>.csv the same, per variant (written when <v> ends)
        alpha_trace.npz     α and D of every batch of every Proposed run
        params/<v>.npz      final parameters of <v>'s runs
        training/<v>.npz    run names and per-epoch training loss
        embeddings/*.npz    out-of-fold test embeddings (Fig. 2)
        checkpoints/<v>/    orbax checkpoint of <v> while it trains (removed
                            once params/<v>.npz and predictions/<v>.csv exist)
        detector.json       what `fairser_jax.predict` needs besides params/:
        normalization.npz   the feature manifest, the config, and the
                            average training speaker's feature mean and SD
        report.md, claims.md, tables/, figures/   the report
    """

    root: pathlib.Path

    CONFIG = "config.json"
    RESULTS = "results.json"
    PREDICTIONS = "predictions.csv"
    REPORT = "report.md"
    CLAIMS = "claims.md"
    ALPHA_TRACE = "alpha_trace.npz"
    DETECTOR = "detector.json"
    NORMALIZATION = "normalization.npz"
    CORPUS = "corpus"
    FEATURES = "features.npz"
    CHECKPOINTS = "checkpoints"
    PREDICTIONS_DIR = "predictions"
    PARAMS = "params"
    TRAINING = "training"
    EMBEDDINGS = "embeddings"
    FIGURES = "figures"
    TABLES = "tables"
    WRITTEN = ".written.json"
    INPUTS = "inputs.json"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", pathlib.Path(self.root))

    @property
    def inputs(self) -> pathlib.Path:
        """What the run's models are trained on (labels, folds, groups,
        the features' digest), checked by `--resume`."""
        return self.root / self.INPUTS

    @property
    def written(self) -> pathlib.Path:
        """The record of the files runs wrote here (`Ledger`)."""
        return self.root / self.WRITTEN

    @property
    def config(self) -> pathlib.Path:
        """The run's config."""
        return self.root / self.CONFIG

    @property
    def results(self) -> pathlib.Path:
        """Every run's metrics."""
        return self.root / self.RESULTS

    @property
    def predictions(self) -> pathlib.Path:
        """Every run's out-of-fold rows."""
        return self.root / self.PREDICTIONS

    @property
    def report(self) -> pathlib.Path:
        """The report."""
        return self.root / self.REPORT

    @property
    def claims(self) -> pathlib.Path:
        """The paper's claims tested."""
        return self.root / self.CLAIMS

    @property
    def alpha_trace(self) -> pathlib.Path:
        """Α and D of every batch."""
        return self.root / self.ALPHA_TRACE

    @property
    def detector(self) -> pathlib.Path:
        """What predict needs besides params/."""
        return self.root / self.DETECTOR

    @property
    def normalization(self) -> pathlib.Path:
        """The average training speaker."""
        return self.root / self.NORMALIZATION

    @property
    def corpus(self) -> pathlib.Path:
        """The demo corpus (default --config.data.corpus)."""
        return self.root / self.CORPUS

    @property
    def features(self) -> pathlib.Path:
        """The feature store (default --config.features.path)."""
        return self.root / self.FEATURES

    @property
    def figures(self) -> pathlib.Path:
        """The figures."""
        return self.root / self.FIGURES

    @property
    def tables(self) -> pathlib.Path:
        """The tables."""
        return self.root / self.TABLES

    @property
    def embeddings(self) -> pathlib.Path:
        """Out-of-fold embeddings (Fig. 2)."""
        return self.root / self.EMBEDDINGS

    @property
    def training(self) -> pathlib.Path:
        """Loss curves per variant (``training/<variant>.npz``)."""
        return self.root / self.TRAINING

    @property
    def params(self) -> pathlib.Path:
        """Final parameters per variant (``params/<variant>.npz``)."""
        return self.root / self.PARAMS

    @property
    def checkpoints(self) -> pathlib.Path:
        """Orbax state of variants still training."""
        return self.root / self.CHECKPOINTS

    @property
    def predictions_dir(self) -> pathlib.Path:
        """``predictions/``: one CSV per finished variant."""
        return self.root / self.PREDICTIONS_DIR

    def predictions_file(self, variant: str) -> pathlib.Path:
        """``predictions/<variant>.csv``: one variant's rows."""
        return self.root / self.PREDICTIONS_DIR / f"{variant}.csv"

    def params_file(self, variant: str) -> pathlib.Path:
        """``params/<variant>.npz``: a finished variant's parameters."""
        return self.root / self.PARAMS / f"{variant}.npz"

    def training_file(self, variant: str) -> pathlib.Path:
        """``training/<variant>.npz``: its loss per epoch and run."""
        return self.root / self.TRAINING / f"{variant}.npz"

    def checkpoint_dir(self, variant: str) -> pathlib.Path:
        """``checkpoints/<variant>``: its orbax state while it trains."""
        return self.root / self.CHECKPOINTS / variant


WORK_SUBDIRS: tuple[str, ...] = (
    Layout.CHECKPOINTS,
    Layout.PREDICTIONS_DIR,
    Layout.PARAMS,
    Layout.TRAINING,
    Layout.EMBEDDINGS,
)
"""The folders `train` writes per variant."""

RUN_OUTPUTS: tuple[str, ...] = (
    Layout.CONFIG,
    Layout.INPUTS,
    Layout.RESULTS,
    Layout.PREDICTIONS,
    Layout.REPORT,
    Layout.CLAIMS,
    Layout.ALPHA_TRACE,
    Layout.DETECTOR,
    Layout.NORMALIZATION,
    *WORK_SUBDIRS,
    Layout.FIGURES,
    Layout.TABLES,
)
"""What a run writes into its workdir (the corpus and features are inputs)."""


class WorkdirError(ValueError):
    """The workdir cannot be used as asked; the message says how to fix it."""


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Ledger:
    """What the runs of a workdir wrote: `Layout.written` (``.written.json``).

    Every file this package writes into a workdir it holds the lock of
    (`lock`) is recorded, relative to the workdir, with its SHA-256; a
    folder whose content another library writes (orbax's checkpoints) is
    recorded whole. `--overwrite` removes exactly what is recorded and
    unchanged (`check_run_mode`).
    """

    VERSION = 1

    def __init__(self, root: pathlib.Path):
        self.root = pathlib.Path(root).absolute()
        self.files: dict[str, str] = {}
        self.trees: set[str] = set()
        self.found = False
        self._dirty, self._saved_at = False, 0.0
        path = Layout(self.root).written
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.files = {str(k): str(v) for k, v in data["files"].items()}
            self.trees = {str(t) for t in data["trees"]}
            self.found = True
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            logging.warning(
                "%s is damaged; nothing in %s counts as written by a run "
                "(--overwrite will name what it cannot remove).",
                path,
                self.root,
            )

    def _relative(self, path: pathlib.Path) -> str | None:
        try:
            rel = path.absolute().relative_to(self.root)
        except ValueError:
            return None
        if not rel.parts or rel.as_posix() in (Layout.WRITTEN, LOCK_FILE):
            return None
        return rel.as_posix()

    SAVE_EVERY_S = 1.0
    """The record is written at most this often while a run writes (and
    when the lock is released): rewriting it after every file made a run
    of N files O(N²). A file written within the last second before a kill
    is then not recorded, and `--overwrite` names it instead of removing
    it (the safe side)."""

    def record(self, path: pathlib.Path, tree: bool = False) -> None:
        """Adds a file (or a whole folder) written under the workdir."""
        rel = self._relative(path)
        if rel is None:
            return
        if tree:
            self.trees.add(rel)
        elif path.is_file():
            self.files[rel] = _sha256(path)
        else:
            return
        self._dirty = True
        if time.monotonic() - self._saved_at >= self.SAVE_EVERY_S:
            self.save()

    def flush(self) -> None:
        """Writes the record if it changed since it was last written."""
        if self._dirty:
            self.save()

    def forget(self, rels: list[str]) -> None:
        for rel in rels:
            self.files.pop(rel, None)
            self.trees.discard(rel)
        self.save()

    def save(self) -> None:
        # Files a run removed since (a finished variant's checkpoint, a
        # table no longer produced) leave the record.
        self.files = {
            k: v for k, v in self.files.items() if (self.root / k).exists()
        }
        self.trees = {t for t in self.trees if (self.root / t).exists()}
        self._dirty, self._saved_at = False, time.monotonic()
        data = {
            "version": self.VERSION,
            "files": dict(sorted(self.files.items())),
            "trees": sorted(self.trees),
        }
        fileio.atomic_write_text(
            Layout(self.root).written, json.dumps(data, indent=1) + "\n"
        )

    def in_tree(self, rel: str) -> bool:
        return any(rel == t or rel.startswith(t + "/") for t in self.trees)

    def owns(self, path: pathlib.Path) -> bool:
        """Whether ``path`` (a file) is as a run wrote it."""
        rel = self._relative(path)
        if rel is None or path.is_symlink():
            return False
        if self.in_tree(rel) or fileio.temp_target(path.name):
            return True
        return rel in self.files and _sha256(path) == self.files[rel]


def _overwrite_plan(
    workdir: pathlib.Path, found: list[str], ledger: Ledger
) -> tuple[list[pathlib.Path], list[pathlib.Path], list[str]]:
    """(files to remove, folders to remove if then empty, what is in the
    way) for `--overwrite` of the `RUN_OUTPUTS` entries ``found``."""
    files: list[pathlib.Path] = []
    folders: list[pathlib.Path] = []
    foreign: list[str] = []

    def name(p: pathlib.Path) -> str:
        return p.relative_to(workdir).as_posix()

    for entry in found:
        top = workdir / entry
        if top.is_symlink() or not top.is_dir():
            if ledger.owns(top):
                files.append(top)
            else:
                foreign.append(name(top))
            continue
        if ledger.in_tree(name(top)):
            folders.append(top)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            base = pathlib.Path(dirpath)
            folders.append(base)
            for d in list(dirnames):
                sub = base / d
                if sub.is_symlink():
                    foreign.append(name(sub))
                    dirnames.remove(d)
                elif ledger.in_tree(name(sub)):
                    folders.append(sub)
                    dirnames.remove(d)
                elif not any(sub.iterdir()):
                    foreign.append(name(sub) + "/")
                    dirnames.remove(d)
            for f in filenames:
                path = base / f
                if ledger.owns(path):
                    files.append(path)
                else:
                    foreign.append(name(path))
    for path in sorted(workdir.iterdir()):
        # Temporary files of a run's top-level files, left by a kill.
        if (
            fileio.temp_target(path.name) in RUN_OUTPUTS
            and path.is_file()
            and not path.is_symlink()
        ):
            files.append(path)
    return files, folders, sorted(foreign)


class WorkdirInUseError(WorkdirError):
    """Another live process holds the workdir's lock."""


# Workdirs whose lock this process holds (a nested `claim`, e.g. `train`
# inside `main`, is then a no-op), keyed by resolved path → open lock fd.
_HELD: dict[pathlib.Path, int] = {}
# The record of what was written (`Ledger`) of each workdir held.
_LEDGERS: dict[pathlib.Path, Ledger] = {}


def ledger_of(workdir: str | os.PathLike) -> Ledger:
    """The `Ledger` of `workdir`: the one this process keeps while it holds
    the lock, else read from the workdir."""
    workdir = pathlib.Path(workdir).absolute()
    key = workdir.resolve() if workdir.exists() else workdir
    return _LEDGERS.get(key) or Ledger(workdir)


def config_digest(config_json: str) -> str:
    """SHA-256 of a config's JSON, canonicalised (key order, whitespace)."""
    canonical = json.dumps(json.loads(config_json), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def previous_run(workdir: pathlib.Path) -> list[str]:
    """The entries of `RUN_OUTPUTS` present in `workdir`, in that order."""
    return [name for name in RUN_OUTPUTS if (workdir / name).exists()]


def _holder(path: pathlib.Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            # Only a writer writes its details; a reader (`read_lock`)
            # holds the lock without any.
            return "a process reading it (e.g. fairser_jax.predict)"
        info = json.loads(text)
        return (
            f"pid {info['pid']} on {info['host']} ({info['command']}, "
            f"started {info['started']})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its details are unreadable)"


def _open_lock(workdir: pathlib.Path, create: bool) -> int:
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(
            f"--workdir={workdir} is a file, not a folder; choose a folder "
            "(a new one is made)."
        )
    if not create and not workdir.is_dir():
        raise FileNotFoundError(f"--workdir={workdir}: no such directory.")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        return os.open(workdir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        raise WorkdirError(
            f"cannot write to --workdir={workdir} (permission denied); "
            "choose a folder you can write to."
        ) from None
    except OSError as e:
        if e.errno in (errno.EROFS, errno.EACCES):
            raise WorkdirError(
                f"cannot write to --workdir={workdir} ({e.strerror}); "
                "choose a writable folder."
            ) from None
        raise


@contextlib.contextmanager
def read_lock(workdir: str | os.PathLike, command: str) -> Iterator[bool]:
    """Holds `workdir`'s lock shared, as a reader, for the block.

    Readers (``predict``) exclude writers (`lock`: ``main``, ``train``,
    ``report``), not each other, so a reader never sees a workdir
    half-rewritten. A workdir that cannot be written (a read-only mount)
    has no writer either: nothing is locked there.

    Yields:
      True if the lock is held, False on a workdir that cannot be locked.

    Raises:
      WorkdirInUseError: a writer holds it; the message names it.
      FileNotFoundError: no `workdir`.
    """
    workdir = pathlib.Path(workdir).absolute()
    if not workdir.is_dir():
        raise FileNotFoundError(f"--workdir={workdir}: no such directory.")
    path = workdir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            yield False  # read-only and never locked: no writer
            return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkdirInUseError(
                f"--workdir={workdir} is being written by {_holder(path)}; "
                f"{command} reads it once that has finished (or stop it)."
            ) from None
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def lock(
    workdir: str | os.PathLike, command: str, *, create: bool = True
) -> Iterator[bool]:
    """Holds `workdir`'s lock for the duration of the block.

    Args:
      workdir: the folder.
      command: what holds it, shown to whoever is refused.
      create: create `workdir` if missing (else FileNotFoundError).

    Yields:
      True if this call took the lock, False if this process already held
      it (a nested claim).

    Raises:
      WorkdirInUseError: another live process holds it; the message names
        it (pid, host, command, start time).
      WorkdirError: the folder cannot be written.
    """
    workdir = pathlib.Path(workdir).absolute()
    key = workdir.resolve() if workdir.exists() else workdir
    if key in _HELD:
        yield False
        return
    fd = _open_lock(workdir, create)
    path = workdir / LOCK_FILE
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkdirInUseError(
            f"--workdir={workdir} is in use by {_holder(path)}; wait for it "
            "to finish (or stop it), or choose another --workdir."
        ) from None
    previous = path.read_text(encoding="utf-8", errors="replace").strip()
    if previous:
        logging.info(
            "%s: taking over a lock left by a process that is gone (%s)",
            workdir,
            _holder(path),
        )
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "processes": distributed.process_count(),
        "token": uuid.uuid4().hex,
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _HELD[workdir.resolve()] = fd
    ledger = _LEDGERS[workdir.resolve()] = Ledger(workdir)
    try:
        with fileio.on_written(ledger.record):
            yield True
    finally:
        try:
            ledger.flush()
        except OSError as e:  # e.g. a full disk: never mask the run's error
            logging.warning(
                "could not write %s (%s): --overwrite will name the files "
                "written since its last update instead of removing them.",
                Layout(workdir).written,
                e,
            )
        finally:
            del _HELD[workdir.resolve()]
            del _LEDGERS[workdir.resolve()]
        # Empty the file before unlocking: a lock file with content and no
        # flock on it is the trace of a process that died holding it.
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def check_run_mode(
    workdir: pathlib.Path, *, resume: bool, overwrite: bool
) -> None:
    """Applies the workdir rules of a run (see the module docstring).

    Raises:
      WorkdirError: both flags given, or a previous run is present and
        neither flag is.
    """
    if resume and overwrite:
        raise WorkdirError(
            "--resume and --overwrite exclude each other: --resume continues "
            "the run in --workdir, --overwrite discards it."
        )
    found = previous_run(workdir)
    if found and not (resume or overwrite):
        raise WorkdirError(
            f"--workdir={workdir} holds a previous run ({', '.join(found)}); "
            "pass --resume to continue it, --overwrite to discard it, or "
            "choose a new --workdir."
        )
    if resume and Layout.CONFIG not in found:
        logging.warning(
            "--resume: %s holds no run to continue; starting a fresh one.",
            workdir,
        )
    if overwrite and found:
        _overwrite(workdir, found)


def _overwrite(workdir: pathlib.Path, found: list[str]) -> None:
    """Removes what earlier runs wrote of `found`, or nothing at all.

    Raises:
      WorkdirError: something there was not written by a run (or was
        changed since): it is named, and nothing is removed.
    """
    ledger = ledger_of(workdir)
    files, folders, foreign = _overwrite_plan(workdir, found, ledger)
    if foreign:
        shown = ", ".join(foreign[:8])
        more = f" and {len(foreign) - 8} more" if len(foreign) > 8 else ""
        why = (
            ""
            if ledger.found
            else f" (this workdir has no {Layout.WRITTEN}: it was written by "
            "an earlier version, which did not record its files)"
        )
        raise WorkdirError(
            f"--overwrite removes only what fairser_jax wrote, but "
            f"--workdir={workdir} holds files it did not write or that were "
            f"changed since{why}: {shown}{more}. Nothing was removed; move "
            "them out (or delete them yourself), or choose a new --workdir."
        )
    logging.warning(
        "--overwrite: removing the previous run in %s: %s",
        workdir,
        ", ".join(found),
    )
    for path in files:
        path.unlink()
    trees = [
        f for f in folders if ledger.in_tree(f.relative_to(workdir).as_posix())
    ]
    for tree in trees:
        shutil.rmtree(tree, ignore_errors=True)
    for folder in sorted(
        set(folders) - set(trees), key=lambda p: -len(p.parts)
    ):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty: nothing else was there
    ledger.forget([p.relative_to(workdir).as_posix() for p in [*files, *trees]])


@contextlib.contextmanager
def claim(
    workdir: str | os.PathLike,
    *,
    command: str,
    resume: bool = False,
    overwrite: bool = False,
) -> Iterator[pathlib.Path]:
    """Locks `workdir` and applies the rules of a run, for the block.

    Nested claims of a workdir this process already holds do nothing (the
    outer claim applied the rules). With several processes, the primary
    claims for all of them (see the module docstring).

    Yields:
      The workdir as a `pathlib.Path`.

    Raises:
      WorkdirError: the rules refuse the run, or (several processes) a
        process does not see the primary's workdir.
    """
    workdir = pathlib.Path(workdir)
    with contextlib.ExitStack() as held:

        def take() -> str:
            outer = held.enter_context(lock(workdir, command))
            if outer:
                check_run_mode(workdir, resume=resume, overwrite=overwrite)
            return _token(workdir)

        token = distributed.on_primary("claim the workdir", take)
        if distributed.process_count() > 1:
            distributed.on_all(
                "see the shared workdir",
                lambda: (
                    distributed.is_primary() or _check_shared(workdir, token)
                ),
            )
        yield workdir


def _token(workdir: pathlib.Path) -> str:
    try:
        info = json.loads((workdir / LOCK_FILE).read_text(encoding="utf-8"))
        return str(info.get("token", ""))
    except (OSError, ValueError):
        return ""


def _check_shared(workdir: pathlib.Path, token: str | None) -> None:
    if not token or _token(workdir) != token:
        raise WorkdirError(
            f"--workdir={workdir} on this host is not the folder process 0 "
            "locked (its .lock does not hold process 0's claim): a run of "
            "several processes needs its workdir on a file system they all "
            "see (NFS, Lustre, a GCS/S3 FUSE mount)."
        )
