"""Joining a run of several processes (fairser_jax.distributed).

The end-to-end runs of two processes against one (results, resume after a
kill) are in test_main.py, beside the one-process run they compare with;
here: the launcher detection, the flag checks, and the failures that must
end every process with one clear line instead of a hang.
"""

import os
import subprocess
import sys
import time

import pytest
from conftest import REPO, free_port, launch_processes, wait_all

from fairser_jax import distributed

_OMPI = {"OMPI_MCA_orte_hnp_uri": "1;tcp://h:1"}
_SLURM = {
    "SLURM_JOB_ID": "7",
    "SLURM_STEP_NODELIST": "node[01-02]",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
}


@pytest.mark.parametrize(
    "environ, want",
    [
        ({}, None),
        ({**_SLURM, "SLURM_NTASKS": "2"}, "slurm"),
        # One SLURM task (sbatch on one node) is a plain one-process run.
        ({**_SLURM, "SLURM_NTASKS": "1"}, None),
        (
            {**_OMPI, "OMPI_COMM_WORLD_SIZE": "4"},
            "ompi",
        ),
        (
            {**_OMPI, "OMPI_COMM_WORLD_SIZE": "1"},
            None,
        ),
        ({"TPU_WORKER_HOSTNAMES": "t1,t2"}, "cloud_tpu"),
        ({"TPU_WORKER_HOSTNAMES": "t1"}, None),
    ],
)
def test_detected_launcher(environ, want):
    assert distributed.detected_launcher(environ) == want


@pytest.mark.parametrize(
    "launch, message",
    [
        (
            distributed.Launch(coordinator_address="127.0.0.1:1"),
            "--num_processes, --process_id missing",
        ),
        (
            distributed.Launch(
                coordinator_address="127.0.0.1:1",
                num_processes=2,
                process_id=2,
            ),
            "--process_id=2 is outside [0, 2)",
        ),
        (
            distributed.Launch(mode="off", num_processes=2),
            "--distributed=off contradicts",
        ),
        (
            distributed.Launch(
                coordinator_address="nohostport", num_processes=2, process_id=1
            ),
            "is not HOST:PORT",
        ),
    ],
)
def test_inconsistent_flags_fail_before_joining(launch, message, monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(distributed.DistributedError) as e:
        distributed.initialize(launch)
    assert message in str(e.value)


def test_one_process_needs_no_coordination():
    """Without flags or launcher, the steps just run their work."""
    assert distributed.on_primary("x", lambda: "token") == "token"
    assert distributed.on_all("y", lambda: 3, lambda v: {"v": str(v)}) == 3
    with pytest.raises(KeyError):
        distributed.on_all("z", lambda: {}["missing"])


def _main(workdir, *extra, timeout_s=60):
    return [
        "--config=configs/test.py",
        f"--workdir={workdir}",
        f"--distributed_timeout={timeout_s}",
        *extra,
    ]


@pytest.mark.slow
def test_an_unreachable_coordinator_is_one_line_not_a_hang(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    tic = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.main",
            *_main(tmp_path / "w", timeout_s=3),
            f"--coordinator_address=127.0.0.1:{free_port()}",
            "--num_processes=2",
            "--process_id=1",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert time.monotonic() - tic < 60
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fairser_jax.main: error: process 1 could not reach")
    assert "within 3 s" in last
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_process_0_alone_is_one_line_not_an_abort(tmp_path):
    """Process 0 of 2 started without the other used to end in a C++
    abort (exit 134, a stack dump) when JAX's wait ran out; now the
    watchdog ends it first with one line naming the wait."""
    tic = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.main",
            *_main(tmp_path / "w", timeout_s=3),
            f"--coordinator_address=127.0.0.1:{free_port()}",
            "--num_processes=2",
            "--process_id=0",
        ],
        cwd=REPO,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert time.monotonic() - tic < 30  # JAX's own wait is 3 + 30 s
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fairser_jax.main: error: process 0 waited 3 s")
    assert "the other 1 process(es)" in last
    assert "Fatal Python error" not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "w").exists()


def _errors(logs, n=2):
    lines = []
    for i in range(n):
        text = (logs / f"p{i}.log").read_text()
        assert "Traceback" not in text, text[-3000:]
        lines.append(
            [x for x in text.splitlines() if "fairser_jax.main: error:" in x]
        )
    return lines


@pytest.mark.slow
def test_processes_with_different_configs_all_stop(tmp_path):
    """Process 1 mistyped the epochs: every process stops, naming the field
    that differs, before anything is written."""
    procs = launch_processes(
        "fairser_jax.main",
        _main(tmp_path / "w"),
        tmp_path / "logs",
        extra_args={1: ["--config.train.epochs=5"]},
    )
    assert wait_all(procs, timeout=300) == [1, 1]
    for (line,) in _errors(tmp_path / "logs"):
        assert "the processes of this run disagree on the config" in line
        assert "config.train.epochs: process 0 has " in line
        assert "process 1 has 5" in line
    assert not (tmp_path / "w").exists()
    # The coordinator listens on the address given, not on every interface.
    log = (tmp_path / "logs" / "p0.log").read_text()
    assert "Starting JAX distributed service on 127.0.0.1:" in log, log


@pytest.mark.slow
def test_a_workdir_that_is_not_shared_is_refused(tmp_path):
    """Each process was given its own folder (as if not on a shared file
    system): process 1 says so, process 0 says process 1 failed."""
    procs = launch_processes(
        "fairser_jax.main",
        _main(tmp_path / "w0"),
        tmp_path / "logs",
        extra_args={1: [f"--workdir={tmp_path / 'w1'}"]},
    )
    assert wait_all(procs, timeout=300) == [1, 1]
    (p0,), (p1,) = _errors(tmp_path / "logs")
    assert "is not the folder process 0 locked" in p1
    assert "needs its workdir on a file system they all see" in p1
    assert "process 1 failed to see the shared workdir" in p0
    # Nothing of a run was written: the claim is all that happened.
    assert sorted(p.name for p in (tmp_path / "w0").iterdir()) == [".lock"]


@pytest.mark.slow
def test_a_slurm_launch_joins_without_flags(tmp_path):
    """srun's environment alone (2 tasks) makes one run of 2 processes, as
    JAX's own detection reads it; a step every process fails (reading a
    corpus that is not there) ends both, each with its one line."""
    port = free_port()
    procs = []
    for i in range(2):
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env.update(
            SLURM_JOB_ID="7",
            SLURM_STEP_NODELIST="localhost",
            SLURM_NTASKS="2",
            SLURM_PROCID=str(i),
            SLURM_LOCALID=str(i),
            JAX_COORDINATOR_PORT=str(port),
        )
        with open(tmp_path / f"p{i}.log", "w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "fairser_jax.train",
                        *_main(tmp_path / "w")[:2],
                        "--distributed_timeout=60",
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    assert wait_all(procs, timeout=300) == [1, 1]
    logs = [(tmp_path / f"p{i}.log").read_text() for i in range(2)]
    assert "process 0 of 2 (slurm)" in logs[0]
    for log in logs:
        assert "Traceback" not in log
        (line,) = [x for x in log.splitlines() if "train: error:" in x]
        assert "/w/corpus is not a directory" in line


class _Beats:
    """The coordination service's key-value store as `_watch_peers` uses
    it, with a clock that each wait advances and scripted peer beats."""

    def __init__(self, script):
        self.now = 0.0
        self.store = {}
        self.script = script  # {process: function(now) -> beat or None}

    def clock(self):
        return self.now

    def key_value_set(self, key, value, allow_overwrite=False):
        assert allow_overwrite
        self.store[key] = value

    def key_value_dir_get(self, prefix):
        for p, beat in self.script.items():
            value = beat(self.now)
            if value is not None:
                self.store[f"{prefix}{p}"] = value
        return [(k, v) for k, v in self.store.items() if k.startswith(prefix)]


class _Stop:
    def __init__(self, beats, until):
        self.beats, self.until = beats, until

    def wait(self, seconds):
        self.beats.now += seconds
        return self.beats.now > self.until

    def is_set(self):
        return False


class _Died(Exception):
    pass


def _watch(monkeypatch, script, *, until=1000.0, heartbeat_s=20, count=3):
    beats = _Beats(script)

    def die(message):
        raise _Died(message, beats.now)

    monkeypatch.setattr(distributed, "_die", die)
    distributed._watch_peers(
        beats,
        0,
        count,
        heartbeat_s,
        _Stop(beats, until),
        "prog",
        clock=beats.clock,
    )
    return beats


def test_a_silent_peer_is_named_after_half_the_heartbeat(monkeypatch):
    """Process 2 beats until t = 30 s, then stops (killed): process 0 names
    it once its beat has been unchanged for 10 s (heartbeat 20 s, one beat
    a second), while process 1 keeps beating."""
    with pytest.raises(_Died) as died:
        _watch(
            monkeypatch,
            {1: lambda t: str(int(t)), 2: lambda t: str(int(min(t, 30)))},
        )
    message, when = died.value.args
    assert message.startswith("prog: error: process 2 of the run stopped")
    assert "answering 10 s ago" in message and "--resume" in message
    assert when == 30 + 10


def test_peers_that_beat_or_ended_are_never_named(monkeypatch):
    """Beating peers, and one that ended normally (its beat is "done"),
    keep the watch going until it is stopped; its own beat is written."""
    beats = _watch(
        monkeypatch,
        {1: lambda t: str(int(t)), 2: lambda t: "done" if t > 5 else "1"},
        until=600.0,
    )
    assert beats.store["fairser_jax/alive/0"] == "601"


def test_a_peer_that_never_beats_is_named(monkeypatch):
    with pytest.raises(_Died) as died:
        _watch(monkeypatch, {1: lambda t: None}, count=2, heartbeat_s=100)
    message, when = died.value.args
    assert "process 1 of the run stopped answering 50 s ago" in message
    assert when == 50  # one beat every 5 s at a heartbeat of 100 s


def test_a_lost_coordinator_is_one_line(monkeypatch):
    """Every call to the store fails (process 0 died): one line naming the
    coordinator once the failures have lasted half the heartbeat."""

    class Gone(_Beats):
        def key_value_set(self, key, value, allow_overwrite=False):
            raise RuntimeError("UNAVAILABLE: Socket closed")

    beats = Gone({})
    monkeypatch.setattr(
        distributed,
        "_die",
        lambda m: (_ for _ in ()).throw(_Died(m, beats.now)),
    )
    with pytest.raises(_Died) as died:
        distributed._watch_peers(
            beats, 1, 2, 20, _Stop(beats, 1000), "prog", clock=beats.clock
        )
    message, when = died.value.args
    assert message.startswith(
        "prog: error: process 1 lost the run's coordinator"
    )
    assert "UNAVAILABLE: Socket closed" in message
    assert when == 10  # failing from the first beat (t = 0)


class _Thread:
    """A watch thread that records how long it was waited for."""

    def __init__(self):
        self.joined = []

    def is_alive(self):
        return True

    def join(self, timeout=None):
        self.joined.append(timeout)


@pytest.mark.parametrize(
    "heartbeat_s, wait_s", [(20, 10 + 2 * 1 + 1), (100, 50 + 2 * 5 + 1)]
)
def test_a_failed_collective_waits_for_the_peer_verdict(
    monkeypatch, heartbeat_s, wait_s
):
    """A JAX runtime error (a collective that failed because a peer died)
    waits half the heartbeat and two beats for `_watch_peers` to name the
    peer; any other error, or a run of one process, does not wait."""
    import jax

    thread = _Thread()
    monkeypatch.setattr(
        distributed, "_WATCH", {"thread": thread, "heartbeat_s": heartbeat_s}
    )
    distributed.await_peer_verdict(ValueError("the program's own"))
    assert thread.joined == []
    gloo = jax.errors.JaxRuntimeError(
        "UNKNOWN: Gloo AllGather failed: Connection reset by peer"
    )
    distributed.await_peer_verdict(gloo)
    assert thread.joined == [wait_s]
    monkeypatch.setattr(distributed, "_WATCH", {})
    distributed.await_peer_verdict(gloo)
    assert thread.joined == [wait_s]
