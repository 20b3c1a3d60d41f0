"""Many processes, one run: JAX's multi-controller runtime.

A lab that outgrows one machine runs `main` (or `train`) once per host, or
once per accelerator, with `jax.distributed` joining the processes
(docs/DESIGN.md, "Many machines"):

- every process reads the same corpus, feature store and config, and
  builds the same host arrays;
- the runs axis of each variant is laid out over the *global* mesh (every
  device of every process); each process places only the shards its own
  devices hold (`put`) and trains their chunks of runs (each with a
  one-device program, `fairser_jax.train.runner`);
- results are gathered across processes (`gather`) and exactly one process,
  the primary (process 0), writes files: the workdir, which must be on a
  file system every process sees, has one writer, as on one machine;
- what only the primary does (claim the workdir, make the corpus and the
  feature store, write outputs) is an `on_primary` step, and what every
  process must agree on (config, feature store) is an `on_all` step: both
  tell every process how the step went on every other, so a failure or a
  disagreement ends every process with the same one-line error instead of
  leaving the others waiting.

On one process (the default) every function here reduces to its plain
single-host meaning and no coordination happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import jax

import numpy as np

T = TypeVar("T")
PyTree = Any

MODES = ("auto", "on", "off")
"""`--distributed`: auto = join when coordinator flags are given or a
launcher JAX recognises (SLURM, Open MPI, Cloud TPU, ...) started more than
one process; on = always call `jax.distributed.initialize`; off = never."""

WAIT_FOR_PRIMARY_S = 7 * 24 * 3600
"""How long the other processes wait for a primary-only step (making the
feature store can take hours on a CPU). A primary that dies is noticed
sooner: JAX's coordination service ends every process at once when the
coordinator's connection drops."""


class DistributedError(ValueError):
    """The processes of a run cannot work together; says what to fix."""


class ProcessesDisagreeError(DistributedError):
    """Processes of one run were given different inputs."""


class OtherProcessFailedError(DistributedError):
    """Another process of the run failed a step; its message is included."""


@dataclasses.dataclass(frozen=True)
class Launch:
    """How this process joins a run (the `--distributed*` flags).

    Attributes:
      mode: one of `MODES`.
      coordinator_address: "host:port" of process 0's coordinator, or None.
      num_processes: processes in the run, or None.
      process_id: this process's index in [0, num_processes), or None.
      local_device_ids: the local devices this process uses, or None (all).
      timeout_s: how long to wait for the coordinator and for the other
        processes at each agreement step.
      heartbeat_s: JAX's heartbeat timeout; a process that stops answering
        for half of it is named by the others, which then stop
        (`_watch_peers`).
    """

    mode: str = "auto"
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    local_device_ids: tuple[int, ...] | None = None
    timeout_s: int = 300
    heartbeat_s: int = 100

    @property
    def explicit(self) -> bool:
        """Whether any coordinator flag was given."""
        return any(
            v is not None
            for v in (
                self.coordinator_address,
                self.num_processes,
                self.process_id,
            )
        )


_TIMEOUT_S = 300


def detected_launcher(environ: Mapping[str, str] | None = None) -> str | None:
    """The launcher that started this process as one of several, if any.

    Reads the environment the way `jax.distributed.initialize()` does when
    given no arguments, but only answers for launches of more than one
    process: a single SLURM task or Open MPI rank stays a plain one-process
    run, with no coordinator.

    Args:
      environ: the environment (default: `os.environ`).

    Returns:
      "slurm", "ompi" or "cloud_tpu", or None.
    """
    env = os.environ if environ is None else environ
    # The variables JAX's own SLURM and Open MPI detection requires.
    slurm = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_PROCID")
    if all(k in env for k in (*slurm, "SLURM_LOCALID")):
        if _int(env.get("SLURM_NTASKS")) > 1:
            return "slurm"
    if "OMPI_MCA_orte_hnp_uri" in env:
        if _int(env.get("OMPI_COMM_WORLD_SIZE")) > 1:
            return "ompi"
    # A Cloud TPU slice of several hosts names them all in its environment.
    hosts = env.get("TPU_WORKER_HOSTNAMES", "")
    if len([h for h in hosts.split(",") if h.strip()]) > 1:
        return "cloud_tpu"
    return None


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _wait_for_coordinator(address: str, timeout_s: int, process_id) -> None:
    """Waits until process 0's coordinator accepts connections.

    JAX's own wait ends the process with a C++ abort and a stack trace;
    waiting here first turns an unreachable coordinator into one line.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DistributedError(
            f"--coordinator_address={address} is not HOST:PORT, e.g. "
            "10.0.0.1:8476 (process 0's address and a free port)."
        )
    host = host.strip("[]")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=5):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise DistributedError(
                    f"process {process_id} could not reach the coordinator "
                    f"at {address} within {timeout_s} s ({e.strerror or e}). "
                    "Start process 0 (it serves the coordinator), check the "
                    "address and that the port is open between the hosts, "
                    "or raise --distributed_timeout."
                ) from None
            time.sleep(0.25)


# JAX's own wait for the processes to join ends in a C++ abort (rc 134, a
# stack dump); `initialize`'s watchdog ends the process with one line this
# long before it.
_JOIN_GRACE_S = 30


_ALIVE = "fairser_jax/alive/"
_DONE = "done"


def _beat_period_s(heartbeat_s: float) -> float:
    """How often `_watch_peers` beats: 20 beats per heartbeat timeout,
    between 1 and 10 s."""
    return min(10.0, max(1.0, heartbeat_s / 20))


def _watch_peers(
    client,
    me: int,
    count: int,
    heartbeat_s: float,
    stop: threading.Event,
    program: str,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Body of `initialize`'s liveness thread, on every process.

    Beats (a counter under `_ALIVE` + this process's index in the
    coordination service's key-value store) and reads every process's
    beat. A process whose beat has not changed for `heartbeat_s / 2` (killed
    by SIGKILL or the out-of-memory killer, its machine down) is named in
    one line and this process exits with status 1; JAX would otherwise
    notice it at `heartbeat_s` and end every process with a C++ abort and a
    stack dump. A process that ended normally set its beat to `_DONE` and
    is not waited for. Returns when `stop` is set.
    """
    limit = heartbeat_s / 2
    period = _beat_period_s(heartbeat_s)
    start = clock()
    others = [p for p in range(count) if p != me]
    seen: dict[int, tuple[str | None, float]] = {
        p: (None, start) for p in others
    }
    failing_since = None
    beat = 0
    while not stop.wait(0 if beat == 0 else period):
        beat += 1
        now = clock()
        try:
            client.key_value_set(
                f"{_ALIVE}{me}", str(beat), allow_overwrite=True
            )
            beats = {
                key.rsplit("/", 1)[-1]: value
                for key, value in client.key_value_dir_get(_ALIVE)
            }
            failing_since = None
        except Exception as e:  # noqa: BLE001 - JaxRuntimeError
            if stop.is_set():
                return
            failing_since = now if failing_since is None else failing_since
            if now - failing_since >= limit:
                _die(
                    f"{program}: error: process {me} lost the run's "
                    f"coordinator (process 0) for {limit:.0f} s ({e}); it "
                    "was killed or its machine is down. Start every process "
                    "again with --resume: what was saved is kept."
                )
            continue
        for p in others:
            value = beats.get(str(p))
            if value == _DONE:
                continue
            if value != seen[p][0]:
                seen[p] = (value, now)
            elif now - seen[p][1] >= limit:
                _die(
                    f"{program}: error: process {p} of the run stopped "
                    f"answering {limit:.0f} s ago (killed, out of memory, or "
                    f"its machine is down); process {me} stops too. Start "
                    "every process again with --resume: what was saved is "
                    "kept."
                )


def _die(message: str) -> None:
    """One line on stderr and exit status 1, from any thread."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(1)


def _exit_unless_joined(
    joined: threading.Event, timeout_s: float, message: str
) -> None:
    """Body of `initialize`'s watchdog thread: one line and exit status 1
    unless `joined` is set within `timeout_s`."""
    if not joined.wait(timeout_s):
        _die(message)


def initialize(launch: Launch, program: str = "fairser_jax") -> bool:
    """Joins the run described by `launch`; call before any JAX work.

    A run whose processes have not all joined within `launch.timeout_s`
    (process 0 started alone, one process of several missing) ends this
    process with one line naming `program` and exit status 1.

    Returns:
      Whether `jax.distributed` was initialised (False: one process).

    Raises:
      DistributedError: inconsistent flags, or a coordinator that cannot be
        reached within `launch.timeout_s`.
    """
    import jax

    global _TIMEOUT_S
    if launch.mode not in MODES:
        raise DistributedError(
            f"--distributed={launch.mode!r}; choose one of {MODES}."
        )
    _TIMEOUT_S = launch.timeout_s
    if launch.mode == "off":
        if launch.explicit:
            raise DistributedError(
                "--distributed=off contradicts --coordinator_address/"
                "--num_processes/--process_id; drop one or the other."
            )
        return False
    launcher = detected_launcher()
    if launch.mode == "auto" and not launch.explicit and launcher is None:
        return False
    address = launch.coordinator_address or os.environ.get(
        "JAX_COORDINATOR_ADDRESS"
    )
    if launch.explicit and launcher is None:
        given = {
            "coordinator_address": address,
            "num_processes": launch.num_processes,
            "process_id": launch.process_id,
        }
        missing = [f"--{k}" for k, v in given.items() if v is None]
        if missing:
            raise DistributedError(
                f"{', '.join(missing)} missing: without a cluster launcher "
                "(SLURM, Open MPI, Cloud TPU) give all of "
                "--coordinator_address, --num_processes and --process_id."
            )
    if launch.num_processes is not None and not (
        0 <= (launch.process_id or 0) < launch.num_processes
    ):
        raise DistributedError(
            f"--process_id={launch.process_id} is outside [0, "
            f"{launch.num_processes}) (--num_processes)."
        )
    if address and launch.process_id not in (None, 0):
        _wait_for_coordinator(address, launch.timeout_s, launch.process_id)
    joined = threading.Event()
    others = (
        f"the other {launch.num_processes - 1} process(es)"
        if launch.num_processes
        else "the other processes"
    )
    threading.Thread(
        target=_exit_unless_joined,
        args=(
            joined,
            launch.timeout_s,
            f"{program}: error: process {launch.process_id or 0} waited "
            f"{launch.timeout_s} s for {others} of the run to join at "
            f"{address or 'the coordinator'}; start every process with the "
            "same --coordinator_address and --num_processes (or one "
            "launcher step), or raise --distributed_timeout.",
        ),
        daemon=True,
        name="fairser_jax-join-watchdog",
    ).start()
    try:
        jax.distributed.initialize(
            coordinator_address=launch.coordinator_address,
            num_processes=launch.num_processes,
            process_id=launch.process_id,
            local_device_ids=(
                list(launch.local_device_ids)
                if launch.local_device_ids
                else None
            ),
            initialization_timeout=launch.timeout_s + _JOIN_GRACE_S,
            heartbeat_timeout_seconds=launch.heartbeat_s,
            # The coordinator listens on the address given, not on every
            # interface (JAX's default, [::]:port).
            coordinator_bind_address=(
                launch.coordinator_address
                if launch.coordinator_address and not launch.process_id
                else None
            ),
        )
    finally:
        joined.set()  # joined, or failed with an error of its own
    _start_watching(program, launch.heartbeat_s)
    logging.info(
        "process %d of %d (%s): %d local of %d devices",
        jax.process_index(),
        jax.process_count(),
        launcher or "coordinator flags",
        jax.local_device_count(),
        jax.device_count(),
    )
    return True


_WATCH: dict[str, Any] = {}
"""The running `_watch_peers` thread (key "thread") and its heartbeat
timeout (key "heartbeat_s"); empty in a run of one process."""


def _start_watching(program: str, heartbeat_s: int) -> None:
    """Starts `_watch_peers`; at exit, marks this process done first (the
    hook runs before JAX's own, which was registered earlier)."""
    import atexit

    import jax

    client = _client()
    me = jax.process_index()
    stop = threading.Event()
    thread = threading.Thread(
        target=_watch_peers,
        args=(client, me, jax.process_count(), heartbeat_s, stop, program),
        daemon=True,
        name="fairser_jax-peer-watch",
    )
    _WATCH.update(thread=thread, heartbeat_s=heartbeat_s)

    def done() -> None:
        stop.set()
        thread.join(timeout=_beat_period_s(heartbeat_s) + 5)
        with contextlib.suppress(Exception):
            client.key_value_set(f"{_ALIVE}{me}", _DONE, allow_overwrite=True)

    thread.start()
    atexit.register(done)


def await_peer_verdict(error: BaseException) -> None:
    """Gives the liveness thread time to name a dead peer before `error`
    is reported.

    A collective running when a peer dies fails at once (``Gloo AllGather
    failed: ... Connection reset by peer``), seconds before `_watch_peers`
    can tell the peer has stopped beating. Reporting that error would print
    a traceback and then hang in JAX's shutdown barrier until its heartbeat
    timeout ends the process with a C++ abort. So after a JAX runtime error
    in a run of several processes this waits for as long as
    `_watch_peers` needs (half the heartbeat timeout and two beats): if a
    peer is dead, the thread ends the process with its one line meanwhile.
    Returns at once in a run of one process or for any other error, and
    after the wait when every peer still beats (the error is the
    program's own).
    """
    thread = _WATCH.get("thread")
    if thread is None or not thread.is_alive():
        return
    import jax

    if not isinstance(error, jax.errors.JaxRuntimeError):
        return
    heartbeat_s = _WATCH["heartbeat_s"]
    thread.join(timeout=heartbeat_s / 2 + 2 * _beat_period_s(heartbeat_s) + 1)


def process_count() -> int:
    """Processes in the run (1 unless `jax.distributed` is initialised).

    Does not start a JAX backend when there is no run of several processes
    (the `report` command, for one, never needs a device), and does not
    import JAX: a process that has not imported it has not initialised
    `jax.distributed` either.
    """
    jax = sys.modules.get("jax")
    if jax is None:
        return 1
    return jax.process_count() if jax.distributed.is_initialized() else 1


def is_primary() -> bool:
    """Whether this process is the run's only writer (process 0)."""
    return process_count() == 1 or sys.modules["jax"].process_index() == 0


def put(tree: PyTree, sharding: jax.sharding.Sharding) -> PyTree:
    """Host arrays (identical on every process) → global arrays.

    Each process builds only the shards of `sharding` that its own devices
    hold, from its copy of the host array.
    """
    import jax

    def one(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(
            x.shape, sharding, lambda index: x[index]
        )

    return jax.tree.map(one, tree)


def gather(tree: PyTree) -> PyTree:
    """Global arrays → the same host NumPy arrays on every process."""
    import jax
    from jax.experimental import multihost_utils

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))

    return jax.tree.map(one, tree)


# Keys of the coordination service's key-value store must be unique in a
# run; every process makes the same sequence of steps, so a counter names
# the same step alike on every process.
_STEP = [0]


def _client():
    from jax._src import distributed as jax_distributed  # no public API

    client = jax_distributed.global_state.client
    if client is None:
        raise RuntimeError("jax.distributed is not initialised.")
    return client


def _key(name: str, process: int | str) -> str:
    return f"fairser_jax/{_STEP[0]}/{name}/{process}"


def _exchange(name: str, status: str, who: Sequence[int], timeout_s: int):
    """Publishes this process's `status`; returns those of `who`."""
    import jax

    _client().key_value_set(_key(name, jax.process_index()), status)
    return _collect(name, who, timeout_s, mine=status)


def _collect(
    name: str, who: Sequence[int], timeout_s: int, mine: str | None = None
) -> dict[int, str]:
    """The statuses of processes `who` at step `name` (this process's is
    `mine`), waiting up to `timeout_s` for each."""
    import jax

    client = _client()
    me = jax.process_index()
    out = {}
    for p in who:
        if p == me:
            out[p] = mine
            continue
        try:
            out[p] = client.blocking_key_value_get(
                _key(name, p), int(timeout_s * 1000)
            )
        except Exception as e:  # noqa: BLE001 - JaxRuntimeError
            if "DEADLINE_EXCEEDED" not in str(e):
                raise
            raise DistributedError(
                f"process {me} waited {timeout_s} s for process {p} at "
                f"'{name}' in vain; the processes of a run must run the same "
                "command (and reach each step); raise --distributed_timeout "
                "if process "
                f"{p} is merely slow."
            ) from None
    return out


_OK = "ok"
_FAIL = "error"


def _status(ok: bool, text: str) -> str:
    return f"{_OK if ok else _FAIL}\n{text}"


def _parse(status: str) -> tuple[bool, str]:
    head, _, text = status.partition("\n")
    return head == _OK, text


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip()


def on_primary(name: str, fn: Callable[[], T]) -> T | str | None:
    """Runs `fn` on the primary only; the others wait for its outcome.

    Args:
      name: the step, named in messages.
      fn: the primary's work. When it returns a string, every process
        receives that string.

    Returns:
      On the primary, what `fn` returned; on the others, that value if it
      is a string, else None.

    Raises:
      OtherProcessFailedError: on the other processes, when `fn` raised on
        the primary (which re-raises its own error).
    """
    if process_count() == 1:
        return fn()
    _STEP[0] += 1
    if is_primary():
        try:
            payload = fn()
        except BaseException as e:
            _exchange(name, _status(False, _error_text(e)), [0], _TIMEOUT_S)
            raise
        shared = payload if isinstance(payload, str) else ""
        _exchange(name, _status(True, shared), [0], _TIMEOUT_S)
        return payload
    ok, text = _parse(_collect(name, [0], WAIT_FOR_PRIMARY_S)[0])
    if not ok:
        raise OtherProcessFailedError(f"process 0 failed to {name}: {text}")
    return text or None


def on_all(
    name: str,
    fn: Callable[[], T],
    fingerprint: Callable[[T], Mapping[str, str]] | None = None,
) -> T:
    """Runs `fn` on every process, then checks they all succeeded and agree.

    Args:
      name: the step, named in messages.
      fn: the work each process does.
      fingerprint: what of `fn`'s result must be equal on every process,
        as {field: short text}; None: only success is shared.

    Returns:
      `fn`'s result.

    Raises:
      OtherProcessFailedError: another process's `fn` raised (this one
        re-raises its own error if it failed).
      ProcessesDisagreeError: naming each field that differs and its value
        on each process.
    """
    if process_count() == 1:
        return fn()
    _STEP[0] += 1
    everyone = list(range(process_count()))
    try:
        result = fn()
    except BaseException as e:
        _exchange(name, _status(False, _error_text(e)), everyone, _TIMEOUT_S)
        raise
    mine = dict(fingerprint(result)) if fingerprint else {}
    text = "\n".join(f"{k}={v}" for k, v in sorted(mine.items()))
    statuses = _exchange(name, _status(True, text), everyone, _TIMEOUT_S)
    parsed = {p: _parse(s) for p, s in statuses.items()}
    failed = {p: text for p, (ok, text) in parsed.items() if not ok}
    if failed:
        p, text = min(failed.items())
        raise OtherProcessFailedError(f"process {p} failed to {name}: {text}")
    fields = {
        p: dict(line.split("=", 1) for line in text.splitlines() if line)
        for p, (_, text) in parsed.items()
    }
    diffs = [
        f"{field}: "
        + ", ".join(f"process {p} has {fields[p].get(field)}" for p in everyone)
        for field in sorted(mine)
        if len({fields[p].get(field) for p in everyone}) > 1
    ]
    if diffs:
        raise ProcessesDisagreeError(
            f"the processes of this run disagree on the {name} ("
            + "; ".join(diffs)
            + "); start every process with the same command and inputs."
        )
    return result


# ------------------------------------------------- what processes agree on


def software_fingerprint() -> dict[str, str]:
    """The versions of the numerical stack: every process of a run must
    have the same (`agree_on_config`)."""
    import flax
    import jax
    import optax

    import fairser_jax

    return {
        "fairser_jax": fairser_jax.__version__,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
    }


def config_fingerprint(
    fields: Sequence[tuple[str, Any]],
) -> dict[str, str]:
    """Each leaf field of a config (`config.flatten`) by its dotted name,
    its value as JSON (a digest past 60 characters): processes that
    disagree are told which field differs and how."""
    import hashlib
    import json

    out: dict[str, str] = {}
    for name, value in fields:
        text = json.dumps(value, sort_keys=True, default=str)
        if len(text) > 60:
            text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
        out[f"config.{name}"] = text
    return out


def agree_on_config(fields: Sequence[tuple[str, Any]]) -> None:
    """With several processes: fails unless they all run the same config
    (its leaf fields, `config.flatten`) and the same software (a no-op on
    one process).

    Raises:
      ProcessesDisagreeError: naming each field that differs and its value
        on each process.
    """
    on_all(
        "config",
        lambda: None,
        lambda _: {**software_fingerprint(), **config_fingerprint(fields)},
    )


def study_fingerprint(table1: Mapping[str, Any]) -> dict[str, str]:
    """Digest of the study sets' Table 1 (sizes per set and class)."""
    import hashlib
    import json

    text = json.dumps(table1, sort_keys=True)
    return {"study sets": hashlib.sha256(text.encode()).hexdigest()[:16]}


def features_fingerprint(
    ids: Sequence[str], features: np.ndarray
) -> dict[str, str]:
    """Digest of a feature store's utterance ids and feature bytes."""
    import hashlib

    h = hashlib.sha256()
    h.update("\n".join(ids).encode())
    h.update(np.ascontiguousarray(features).tobytes())
    return {"feature store sha256": h.hexdigest()[:16]}


# ---------------------------------------------------- stopping on SIGTERM


class StopRequested(Exception):
    """SIGTERM (SLURM preemption, `timeout`) during training: every
    process saved its state at the same epoch and stopped; `--resume`
    continues."""


_STOP = {"signalled": False, "training": 0, "step": 0}


def install_stop_handler() -> None:
    """Makes SIGTERM stop training at the next epoch boundary, saved.

    With several processes JAX's preemption service already catches
    SIGTERM and `stop_requested` asks it, so that every process stops at
    the same epoch. One process alone gets a handler here: during training
    it asks for the stop; anywhere else SIGTERM ends the process at once,
    as it would without the handler.
    """
    import signal

    if process_count() > 1:
        return

    def handler(signum, frame):  # noqa: ARG001 - the signal API
        if _STOP["training"]:
            _STOP["signalled"] = True
            logging.warning(
                "SIGTERM: stopping at the end of this epoch, with a "
                "checkpoint; --resume continues."
            )
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def training() -> Iterator[None]:
    """The block during which SIGTERM stops at an epoch boundary."""
    _STOP["training"] += 1
    try:
        yield
    finally:
        _STOP["training"] -= 1


def stop_requested() -> bool:
    """Whether to save and stop now; called by every process at every
    epoch boundary (the same number of times on each)."""
    _STOP["step"] += 1
    if process_count() > 1:
        from jax.experimental import multihost_utils

        try:
            return bool(
                multihost_utils.reached_preemption_sync_point(_STOP["step"])
            )
        except RuntimeError:  # the preemption service is off
            return False
    return _STOP["signalled"]
