"""Shared behaviour of the absl entry points.

Every entry point reports a user's mistake (a bad flag, a mistyped
``--config.*`` field, bad input, a workdir in use) as one line naming the
fix, not as a traceback, and keeps backend chatter that is not the user's
concern out of its output.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import errno
import logging
import os
import pathlib
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ml_collections
from absl import app, flags
from ml_collections import config_flags

from fairser_jax import config as config_lib
from fairser_jax import distributed
from fairser_jax import workdir as workdir_lib

T = TypeVar("T")

STARTED = time.monotonic()
"""When this process imported this module: every entry point imports it
first, before JAX, so `elapsed()` is the command's wall time."""

# Errors that describe bad input or a failed run in words a user can act
# on (file, line, fix): shown as one line, not a traceback. Every error
# class of the package that a user can cause derives from ValueError.
USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError)


def run_or_exit(program: str, fn: Callable[[], T]) -> T:
    """Runs `fn`; a user error exits with status 1 and its message.

    Args:
      program: the module name shown before the message.
      fn: the work of the entry point.

    Returns:
      What `fn` returns.
    """
    try:
        return fn()
    except USER_ERRORS as e:
        raise SystemExit(f"{program}: error: {e}") from None
    except distributed.StopRequested as e:
        sys.stderr.write(f"{program}: {e}\n")
        raise SystemExit(128 + 15) from None  # as a process ended by SIGTERM
    except OSError as e:
        text = storage_error(e)
        if text is None:
            raise
        raise SystemExit(f"{program}: error: {text}") from None
    except Exception as e:
        # A peer that died mid-collective: named in one line instead.
        distributed.await_peer_verdict(e)
        raise


# OSErrors of the storage, not of the program: what to do about each.
_STORAGE_FIXES = {
    errno.ENOSPC: "free some space (or point --workdir / "
    "--config.features.path elsewhere), then continue with --resume",
    errno.EDQUOT: "free some of your quota, then continue with --resume",
    errno.EROFS: "choose a writable --workdir (and --config.features.path)",
    errno.EACCES: "choose a folder you can write to (--workdir, "
    "--config.features.path)",
    errno.EPERM: "choose a folder you can write to (--workdir, "
    "--config.features.path)",
}


def storage_error(error: OSError) -> str | None:
    """One line for a full, read-only or forbidden file system (naming the
    file and the fix); None for any other OSError."""
    fix = _STORAGE_FIXES.get(error.errno)
    if fix is None:
        return None
    where = f" writing {error.filename}" if error.filename else ""
    return f"{error.strerror or os.strerror(error.errno)}{where}; {fix}."


def load_config(program: str, run_flags: RunFlags) -> Any:
    """`--config`'s ConfigDict (None when not given), or exit with one line
    naming what is wrong with it."""

    def unloadable(error: OSError) -> SystemExit:
        # ml_collections' "Failed loading config file ...": its last line
        # says why (e.g. "[Errno 2] No such file or directory: ...").
        lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
        return SystemExit(
            f"{program}: error: cannot load --config ({lines[-1]})."
        )

    try:
        cfg = run_flags.config.value
    except OSError as e:
        raise unloadable(e) from None
    if cfg is None:
        return None
    if not isinstance(cfg, ml_collections.ConfigDict):
        try:  # a file that failed to load raises on first use
            cfg.keys()
        except OSError as e:
            raise unloadable(e) from None
        except Exception:  # noqa: BLE001 - not a config: said below
            pass
        raise SystemExit(
            f"{program}: error: the --config file's get_config() returned "
            f"a value of type {type(cfg).__name__}, not an "
            "ml_collections.ConfigDict; start from "
            "fairser_jax.config.get_default_config() (see configs/)."
        )
    return cfg


def echo(text: str) -> None:
    """Prints `text` to stdout after the log lines emitted so far.

    Log lines go to stderr, written at once; stdout that is not a terminal
    is block-buffered, so a printed line would otherwise come out after
    warnings logged later (``2>&1 | tee``). The log handlers and stderr
    are flushed first, stdout right after.
    """
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    print(text, flush=True)


def elapsed() -> float:
    """Seconds since the process started the entry point (`STARTED`)."""
    return time.monotonic() - STARTED


def format_duration(seconds: float) -> str:
    """``42s``, ``7m55s`` or ``2h03m10s`` (whole seconds, rounded)."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


_LINKED = re.compile(r"\b(figures|tables)/([\w.-]+)\.(?:png|pdf|csv|tex)\b")
"""A figure (PNG and PDF) or a table (CSV and TeX) that report.md links."""


def describe_outputs(workdir: str | os.PathLike) -> str:
    """What a run left in `workdir`, on one line: ``report.md, 11 tables,
    6 figures, predictions.csv (2184 rows) in DIR``.

    Tables and figures are those `report.md` links (each counted once, a
    figure being a PNG and a PDF, a table a CSV and a TeX file), not
    every file of `figures/`: a workdir reused with `--resume` may hold
    figures of an earlier release. Files the workdir lacks are left out.
    """
    root = pathlib.Path(workdir)
    parts = []
    layout = workdir_lib.Layout(root)
    report = layout.report
    if report.is_file():
        parts.append("report.md")
        linked: dict[str, set[str]] = {"tables": set(), "figures": set()}
        for folder, name in _LINKED.findall(report.read_text("utf-8")):
            linked[folder].add(name)
        for folder, noun in (("tables", "table"), ("figures", "figure")):
            count = len(linked[folder])
            if count:
                parts.append(f"{count} {noun}{'s' if count != 1 else ''}")
    predictions = layout.predictions
    if predictions.is_file():
        with predictions.open(newline="", encoding="utf-8") as f:
            rows = sum(1 for _ in csv.reader(f)) - 1
        parts.append(f"predictions.csv ({rows} rows)")
    return f"{', '.join(parts) or 'nothing'} in {root}"


def configure_logging() -> None:
    """Our INFO messages on; other libraries' INFO chatter off.

    Orbax logs every save through absl at INFO, which would bury the
    progress; JAX logs at INFO each accelerator backend it tried and did
    not find ("Unable to initialize backend 'tpu'"), which is expected on
    a CPU or GPU machine. Their warnings still show.
    """
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)


CACHE_ENV = "FAIRSER_JAX_CACHE"
"""Environment switch of the persistent compilation cache: unset = the
default folder, a path = that folder, ``off`` (or ``0``, ``false``, empty) =
no persistent cache."""


def default_cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/fairser_jax/jax`` (``~/.cache/...`` by default)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return pathlib.Path(root) / "fairser_jax" / "jax"


def enable_compilation_cache() -> pathlib.Path | None:
    """Turns on JAX's persistent compilation cache for this process.

    Every compiled program (the extractor's batch shapes, each variant's
    epoch and init functions) is written to the cache, whatever its compile
    time, so a later run on the same machine, JAX version and devices loads
    it instead of compiling. A cache JAX was already told about
    (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is left as it is.

    Returns:
      The cache folder, or None when disabled.
    """
    import jax

    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in _OFF:
        return None
    if jax.config.jax_compilation_cache_dir:
        return pathlib.Path(jax.config.jax_compilation_cache_dir)
    path = pathlib.Path(value).expanduser() if value else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        logging.warning(
            "no persistent compilation cache (%s: %s); set %s to a writable "
            "folder or to 'off'.",
            path,
            e.strerror,
            CACHE_ENV,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


_OFF = ("", "0", "off", "false", "no", "none")


@dataclasses.dataclass(frozen=True)
class RunFlags:
    """The flags shared by `main` and `train`."""

    config: flags.FlagHolder
    workdir: flags.FlagHolder
    resume: flags.FlagHolder
    overwrite: flags.FlagHolder
    config_help: flags.FlagHolder
    example: str
    distributed: flags.FlagHolder
    coordinator_address: flags.FlagHolder
    num_processes: flags.FlagHolder
    process_id: flags.FlagHolder
    local_device_ids: flags.FlagHolder
    distributed_timeout: flags.FlagHolder
    distributed_heartbeat: flags.FlagHolder

    def names(self) -> tuple[str, ...]:
        """The names of these flags, `--config` first."""
        holders = (getattr(self, f.name) for f in dataclasses.fields(self))
        return tuple(h.name for h in holders if isinstance(h, flags.FlagHolder))

    def launch(self) -> Any:
        """The `distributed.Launch` these flags describe."""
        from fairser_jax import distributed

        ids = self.local_device_ids.value
        return distributed.Launch(
            mode=self.distributed.value,
            coordinator_address=self.coordinator_address.value,
            num_processes=self.num_processes.value,
            process_id=self.process_id.value,
            local_device_ids=tuple(int(i) for i in ids) if ids else None,
            timeout_s=self.distributed_timeout.value,
            heartbeat_s=self.distributed_heartbeat.value,
        )


def define_run_flags(example: str) -> RunFlags:
    """Defines --config, --workdir, --resume, --overwrite, --config_help and
    the flags of a run over several processes (`define_distributed_flags`).

    Args:
      example: a config file to name in the help, e.g. configs/demo.py.
    """
    return RunFlags(
        config=config_flags.DEFINE_config_file(
            "config",
            None,
            f"Config file, e.g. {example}. Override any field with "
            "--config.<section>.<field>=VALUE; --config_help lists them.",
            lock_config=True,
        ),
        workdir=flags.DEFINE_string(
            "workdir",
            None,
            "Output directory. It must be new or empty of results, unless "
            "--resume or --overwrite is given.",
        ),
        resume=flags.DEFINE_bool(
            "resume",
            False,
            "Continue the run in --workdir (same config): finished variants "
            "are kept, the interrupted one restarts from its checkpoint.",
        ),
        overwrite=flags.DEFINE_bool(
            "overwrite",
            False,
            "Discard the previous run in --workdir (its config, results, "
            "checkpoints, report) and start afresh. The corpus and feature "
            "store are kept (they are checked before use).",
        ),
        config_help=flags.DEFINE_bool(
            "config_help",
            False,
            "List every --config.* field of --config (value, type, what it "
            "does, allowed values) and these flags, one line each, then exit.",
        ),
        example=example,
        **define_distributed_flags(),
    )


def define_distributed_flags() -> dict[str, flags.FlagHolder]:
    """The flags of `jax.distributed.initialize` (docs: README "Many
    machines"); with none given on one machine, nothing changes."""
    from fairser_jax import distributed

    return {
        "distributed": flags.DEFINE_enum(
            "distributed",
            "auto",
            list(distributed.MODES),
            "Join a run of several processes with jax.distributed: auto = "
            "when --coordinator_address/--num_processes/--process_id are "
            "given or a launcher started several processes (SLURM srun, "
            "Open MPI mpirun); on = always (e.g. a Cloud TPU pod slice, "
            "which JAX detects itself); off = never.",
        ),
        "coordinator_address": flags.DEFINE_string(
            "coordinator_address",
            None,
            "HOST:PORT of process 0, where it serves the coordinator; the "
            "same on every process.",
        ),
        "num_processes": flags.DEFINE_integer(
            "num_processes", None, "Processes in the run.", lower_bound=1
        ),
        "process_id": flags.DEFINE_integer(
            "process_id",
            None,
            "This process's index, 0..num_processes-1; process 0 writes "
            "the workdir.",
            lower_bound=0,
        ),
        "local_device_ids": flags.DEFINE_list(
            "local_device_ids",
            None,
            "Local accelerators this process uses, e.g. 0,1 (default: all; "
            "one per process under SLURM/Open MPI on GPUs).",
        ),
        "distributed_timeout": flags.DEFINE_integer(
            "distributed_timeout",
            300,
            "Seconds to wait for the coordinator, and for the other "
            "processes at each step where they must agree.",
            lower_bound=1,
        ),
        "distributed_heartbeat": flags.DEFINE_integer(
            "distributed_heartbeat",
            100,
            "JAX's heartbeat timeout in seconds; a process that stops "
            "answering for half of it (killed, out of memory) is named by "
            "the others, which stop with one line; --resume continues.",
            lower_bound=2,
        ),
    }


def run_pipeline(
    program: str,
    run_flags: RunFlags,
    argv: list[str],
    stage: str,
) -> dict | None:
    """The body of `main` and `train`: checks the flags, runs `stage`.

    The config is checked (`config.validate`) before JAX, the trainer or a
    run of several processes is started, so `--help`, `--config_help` and
    a mistyped value answer in a second; `fairser_jax.pipeline` (and with
    it JAX) is imported only for the work itself.

    Args:
      program: the module name shown in errors.
      run_flags: the flags of `define_run_flags`.
      argv: the positional arguments absl left (must be the program only).
      stage: the name of the `fairser_jax.pipeline` function to run,
        "run" or "train", called as `stage(config, workdir, resume=...,
        overwrite=...)`.

    Returns:
      The `results.json` content, or None when `--config_help` printed the
      fields instead.
    """
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cfg = load_config(program, run_flags)
    if cfg is None:
        raise app.UsageError(f"--config is required, e.g. {run_flags.example}.")
    if run_flags.config_help.value:
        echo(describe_config(run_flags.config.value, run_flags.names()))
        return None
    if not run_flags.workdir.value:
        raise app.UsageError("--workdir is required.")
    run_or_exit(program, lambda: config_lib.validate(cfg))
    configure_logging()
    join_run(program, run_flags)
    distributed.install_stop_handler()
    enable_compilation_cache()
    from fairser_jax import pipeline

    return run_or_exit(
        program,
        lambda: getattr(pipeline, stage)(
            cfg,
            run_flags.workdir.value,
            resume=run_flags.resume.value,
            overwrite=run_flags.overwrite.value,
        ),
    )


def join_run(program: str, run_flags: RunFlags) -> None:
    """Joins a run of several processes if the flags or launcher say so.

    Processes other than the primary then log warnings only: process 0
    reports the run.
    """
    from fairser_jax import distributed

    run_or_exit(
        program, lambda: distributed.initialize(run_flags.launch(), program)
    )
    if not distributed.is_primary():
        logging.getLogger().setLevel(logging.WARNING)


def is_primary() -> bool:
    """Whether this process reports the run (process 0)."""
    from fairser_jax import distributed

    return distributed.is_primary()


_HELP_COLUMN = 56
"""Where `describe_config` starts the descriptions (longer names push the
description of their line to the right)."""


def _columns(rows: list[tuple[str, str]]) -> list[str]:
    width = min(_HELP_COLUMN, max(len(left) for left, _ in rows))
    return [f"  {left:<{width}}  {text}" for left, text in rows]


def describe_flag(name: str) -> str:
    """The one-line help of the absl flag `name`, with its choices."""
    flag = flags.FLAGS[name]
    text = " ".join((flag.help or "").split())
    choices = getattr(getattr(flag, "parser", None), "enum_values", None)
    if choices and not text.startswith("<"):  # absl's "<a|b>: " prefix
        text = f"<{'|'.join(choices)}>: {text}"
    return text


def describe_config(
    config: ml_collections.ConfigDict, flag_names: Sequence[str] = ()
) -> str:
    """What `--config_help` prints.

    Every config field as `--config.<path>=<value>  (<type>)  <help>`,
    one per line, the help and the allowed values from
    `fairser_jax.config.FIELD_HELP` and `FIELD_CHOICES`; then each flag of
    `flag_names` with its absl help, one per line.

    Args:
      config: the config of `--config` (its values are shown).
      flag_names: the entry point's other flags, e.g. `RunFlags.names()`.
    """
    rows = []
    for name, value in config_lib.flatten(config):
        try:
            text = config_lib.field_help(name)
        except KeyError:  # a field a config file added
            text = "(a field of this config file, not of the defaults)"
        rows.append(
            (f"--config.{name}={value!r}  ({type(value).__name__})", text)
        )
    lines = [
        "Config fields (override one with --config.<field>=VALUE; the "
        "values are this config's):",
        *_columns(rows),
    ]
    if flag_names:
        lines += [
            "Flags:",
            *_columns([(f"--{n}", describe_flag(n)) for n in flag_names]),
        ]
    return "\n".join(lines)


def _one_line(error: BaseException) -> str:
    """`error`'s message on one line (a KeyError's repr quotes unwrapped)."""
    text = str(error).strip()
    if isinstance(error, AttributeError | KeyError) and text[:1] in "'\"":
        try:
            text = str(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            pass
    return "; ".join(line.strip() for line in text.splitlines() if line)


def repeated_flags(argv: Sequence[str]) -> list[str]:
    """The ``--config.<field>`` overrides of `argv` given more than once, in
    order (the values after a bare ``--`` are not flags). ml_collections
    joins repeated tuple overrides and keeps the last of the others; other
    flags keep absl's rule (the last wins)."""
    seen: dict[str, int] = {}
    for arg in argv[1:]:
        if arg == "--":
            break
        if arg.startswith("--config."):
            name = arg[2:].split("=", 1)[0]
            seen[name] = seen.get(name, 0) + 1
    return [f"--{n}" for n, count in seen.items() if count > 1]


def flags_parser(program: str) -> Callable[[Sequence[str]], list[str]]:
    """An `app.run` flags parser whose errors are one line, not tracebacks.

    A mistyped `--config.*` field keeps ml_collections' "did you mean"
    hint and points at `--config_help`.
    """

    def parse(argv: Sequence[str]) -> list[str]:
        repeated = repeated_flags(argv)
        if repeated:
            sys.stderr.write(
                f"{program}: error: {', '.join(repeated)} given more than "
                "once (a tuple field would take the values of all of them "
                "joined); give each config field once, e.g. "
                "--config.seeds='(0,1)'.\n"
            )
            raise SystemExit(2)
        try:
            return flags.FLAGS(argv)
        except (flags.Error, AttributeError, KeyError, TypeError) as e:
            overrides = [a for a in argv[1:] if a.startswith("--config.")]
            hint = (
                "; --config_help lists the fields"
                if overrides or isinstance(e, AttributeError | KeyError)
                else "; --help lists the flags"
            )
            if isinstance(e, AttributeError | KeyError):
                message = f"unknown config field {_one_line(e)}"
            else:
                message = _one_line(e)
            sys.stderr.write(f"{program}: error: {message}{hint}\n")
            raise SystemExit(2) from None

    return parse


def run_entry(program: str, main: Callable[[list[str]], None]) -> None:
    """`app.run(main)` with `flags_parser(program)`."""
    app.run(main, flags_parser=flags_parser(program))
