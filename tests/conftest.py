"""Shared pytest fixtures."""

import functools
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from fairser_jax.data import demo_corpus

REPO = pathlib.Path(__file__).resolve().parents[1]


_SHARED_CACHE_ENV = "FAIRSER_TEST_SHARED_CACHE"


def pytest_configure(config):
    """One persistent compilation cache for this test session.

    The suite trains the same small configs many times, in this process,
    in the entry points it starts and in its other xdist worker; with a
    cache, each program compiles once per session. The folder is new for
    every session (the suite does not lean on a warm cache left by an
    earlier run). The xdist controller makes it before the workers start,
    and they inherit it through the environment; the entry points read it
    from FAIRSER_JAX_CACHE. FAIRSER_TEST_CACHE=off runs the suite without
    it.

    Several processes write the folder at once. JAX writes an entry in
    place, without a lock (its file lock, turned on by a size bound, made
    the fast tier slower: 4 min 46 s against 3 min 55 s, one run each); an
    entry read half written fails to decompress, and JAX then warns and
    compiles the program itself (jax._src.compiler._cache_read).
    """
    import tempfile

    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Under `-n <cores>` the workers already fill the machine: XLA's
        # Eigen pool (and OpenMP) in each worker only oversubscribe it
        # (measured: test_two_sided + test_train, -n 2 on 2 cores, 166 s
        # -> 153 s). Entry points the tests start inherit this.
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (
                f"{flags} --xla_cpu_multi_thread_eigen=false"
            ).strip()
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    if os.environ.get("FAIRSER_TEST_CACHE", "").lower() == "off":
        os.environ["FAIRSER_JAX_CACHE"] = "off"
        return
    folder = os.environ.get(_SHARED_CACHE_ENV)
    if not (os.environ.get("PYTEST_XDIST_WORKER") and folder):
        # The controller, or a run without xdist: this session's folder.
        folder = tempfile.mkdtemp(prefix="fairser_test_jax_cache_")
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
        os.environ[_SHARED_CACHE_ENV] = folder
    os.environ["FAIRSER_JAX_CACHE"] = folder
    from fairser_jax import cli

    cli.enable_compilation_cache()


_SHARED_FIXTURE = re.compile(r"""scope=["'](module|session)["']""")


@functools.cache
def _shares_fixtures(module: str) -> bool:
    """Whether the test module (a path relative to the repo) defines a
    module- or session-scoped fixture: built once per worker that runs one
    of its tests."""
    return bool(_SHARED_FIXTURE.search((REPO / module).read_text("utf-8")))


def pytest_xdist_make_scheduler(config, log):
    """With `-n 2` (pytest-xdist): a module whose tests share fixtures (a
    trained workdir, a checkpoint) runs whole on one worker, so they are
    built once; every other test is scheduled alone, so a worker that
    finishes its modules takes them and neither idles while the other runs
    a long module. (xdist's own `--dist=loadgroup` does this for marked
    tests, but its markers have no effect with pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModulesThatShare(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if _shares_fixtures(module) else nodeid

    return ModulesThatShare(config, log)


def pytest_collection_modifyitems(config, items):
    """Modules with slow tests first, each module's tests in their order:
    starting the long modules first keeps both workers busy to the end."""
    slow = {i.module.__name__ for i in items if i.get_closest_marker("slow")}
    items.sort(key=lambda i: i.module.__name__ not in slow)


def load_config(name: str):
    """``configs/<name>.py``'s `get_config()` (configs/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"configs_{name}", REPO / "configs" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded NumPy generator for each test."""
    return np.random.default_rng(0)


def fake_devices_env(num_devices: int) -> dict[str, str]:
    """This environment, with JAX on a CPU that shows `num_devices`."""
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = (
        f"{flags} --xla_force_host_platform_device_count={num_devices}"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    return env


def run_on_fake_devices(script: str, num_devices: int = 4) -> None:
    """Runs `script` in a fresh Python whose CPU shows `num_devices`."""
    env = fake_devices_env(num_devices)
    subprocess.run(
        [sys.executable, "-c", script], check=True, env=env, timeout=600
    )


def free_port() -> int:
    """A TCP port nobody listens on now (for a test's coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_processes(
    module: str,
    args: list[str],
    logs: pathlib.Path,
    *,
    num_processes: int = 2,
    devices_per_process: int = 2,
    extra_args: dict[int, list[str]] | None = None,
) -> list[subprocess.Popen]:
    """Starts `python -m module` as one run of `num_processes` processes.

    They join through jax.distributed on 127.0.0.1 with CPU collectives
    (gloo), each seeing `devices_per_process` fake CPU devices; process
    i's output goes to `logs/p{i}.log`.
    """
    logs.mkdir(parents=True, exist_ok=True)
    env = fake_devices_env(devices_per_process)
    port = free_port()
    procs = []
    for i in range(num_processes):
        command = [
            sys.executable,
            "-m",
            module,
            *args,
            *(extra_args or {}).get(i, []),
            f"--coordinator_address=127.0.0.1:{port}",
            f"--num_processes={num_processes}",
            f"--process_id={i}",
        ]
        with open(logs / f"p{i}.log", "w") as log:
            procs.append(
                subprocess.Popen(
                    command,
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    """Return codes of `procs`; kills them all if any outlives `timeout`."""
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(max(1.0, deadline - time.monotonic())) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


# A plain NumPy Sinkhorn, the reference of the Wasserstein losses' tests.


def np_lse(m, axis):
    mx = np.max(m, axis=axis, keepdims=True)
    return np.squeeze(mx, axis) + np.log(np.sum(np.exp(m - mx), axis=axis))


def np_reg_ot(x, y, a, b, eps, iterations, symmetric=False):
    """Entropic OT value after exactly `iterations` log-domain Sinkhorn steps.

    Written from the textbook updates (Cuturi 2013; Feydy et al. 2019 for the
    averaged symmetric update) and the dual objective of
    min <P,C> + eps KL(P | a b^T).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    c = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    f, g = np.zeros(len(a)), np.zeros(len(b))
    for _ in range(iterations):
        g_new = eps * np.log(b) - eps * np_lse((f[:, None] - c) / eps, 0)
        if symmetric:  # parallel updates averaged with the old potentials
            f_new = eps * np.log(a) - eps * np_lse((g[None, :] - c) / eps, 1)
            f, g = 0.5 * f + 0.5 * f_new, 0.5 * g + 0.5 * g_new
        else:
            g = g_new
            f = eps * np.log(a) - eps * np_lse((g[None, :] - c) / eps, 1)
    plan = np.exp((f[:, None] + g[None, :] - c) / eps)
    return (
        np.sum(a * (f - eps * np.log(a)))
        + np.sum(b * (g - eps * np.log(b)))
        + eps * (1.0 - plan.sum())
    )


# A small encoder of any family (HF config keys): 3 conv layers of receptive
# field 40 samples and hop 20, two transformer layers of width 32; the
# encoder tests add each family's and layout's own keys.
TINY_ENCODER = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    conv_dim=(16, 16, 16),
    conv_kernel=(10, 3, 3),
    conv_stride=(5, 2, 2),
    num_conv_pos_embedding_groups=4,
)


def hf_classes(family: str) -> tuple[type, type]:
    """HF PyTorch's (config class, model class) of an encoder family (a
    `model_type`), from transformers' own registry: the references of the
    Flax encoders' tests."""
    import transformers  # slow to import: only the tests that need it

    config_class = transformers.CONFIG_MAPPING[family]
    return config_class, transformers.MODEL_MAPPING[config_class]


def run_module(module: str, *args: str, check: bool = True):
    """`python -m module args` from the repository on JAX's CPU backend,
    output captured; with `check`, fails the test unless it exits 0."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    """A 20-utterance demo corpus (IEMOCAP layout)."""
    root = tmp_path_factory.mktemp("demo")
    demo_corpus.generate(root, num_utterances=20, seed=0)
    return root


def slow_where(names, is_slow) -> list:
    """Fixture or test parameters `names`, those with `is_slow(name)` marked
    `slow` (in the full suite only)."""
    return [
        pytest.param(n, marks=pytest.mark.slow) if is_slow(n) else n
        for n in names
    ]
