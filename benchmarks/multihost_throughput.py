r"""The cost of jax.distributed across processes; configs/paper.py on N hosts.

    python benchmarks/multihost_throughput.py [--processes=2] [--mh_runs=64]

Times the real trainer's epoch (`runner.make_epoch_fn` on the Fair_spk
objective, IEMOCAP-sized synthetic S1 of `train_throughput.py`), with the
per-epoch gather of the step losses that `runner.fit` does
(`runner.train_epoch`: `Stack.collect`, a `process_allgather` across
processes), in two layouts of the same
devices on this machine:

- one process that sees `--processes` CPU devices (single controller);
- `--processes` processes of one CPU device each, joined through
  `jax.distributed` on 127.0.0.1 with gloo collectives (multi-controller:
  the global mesh, process-local feeding, cross-process gathers).

Both use the same cores, so their ratio is the price of the
multi-controller runtime itself. The script then projects the wall time of
`configs/paper.py` (every variant's runs × 500 epochs × 185 steps, all
priced at the measured Fair_spk rate) on N such hosts: N × the measured
one-host rate × the measured multi-controller ratio (at most 1), a linear
extrapolation that holds while every variant has at least as many runs as
there are devices (250 per variant in the paper's protocol). Ends with one
JSON line.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import train_throughput as tt  # noqa: E402  (the synthetic S1, the timer)

_PROCESSES = flags.DEFINE_integer("processes", 2, "Processes (= devices).")
_RUNS_MH = flags.DEFINE_integer("mh_runs", 64, "Stacked Fair_spk runs.")
_STEPS_MH = flags.DEFINE_integer("mh_steps", 16, "Steps per timed epoch.")
_ROLE = flags.DEFINE_string(
    "role", "", "Internal: 'single' or 'P,i,port' (a worker)."
)

_STEPS_PER_EPOCH = 185  # ceil(5890 / 32): IEMOCAP S1's largest training fold


def _worker(role: str, num_runs: int, steps: int, repeats: int) -> None:
    import jax

    from fairser_jax import distributed

    if role != "single":
        count, index, port = (int(v) for v in role.split(","))
        distributed.initialize(
            distributed.Launch(
                coordinator_address=f"127.0.0.1:{port}",
                num_processes=count,
                process_id=index,
                timeout_s=120,
            )
        )
    call, _ = tt.trainer_epochs("fair_spk", num_runs, steps, repeats)
    timing = tt._time_epochs(call, repeats, num_runs, steps)
    if distributed.is_primary():
        tt._emit(
            dict(
                role=role,
                processes=distributed.process_count(),
                devices=jax.device_count(),
                **timing,
            )
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(role: str, devices: int) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu", FAIRSER_JAX_CACHE="off")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    command = [
        sys.executable,
        os.path.abspath(__file__),
        f"--role={role}",
        f"--mh_runs={_RUNS_MH.value}",
        f"--mh_steps={_STEPS_MH.value}",
        f"--repeats={tt._REPEATS.value}",
        f"--num_utterances={tt._NUM_UTTERANCES.value}",
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _result(procs: list[subprocess.Popen]) -> dict:
    outs = [p.communicate(timeout=1800) for p in procs]
    lines = [
        line
        for out, _ in outs
        for line in out.decode().splitlines()
        if line.startswith("RESULT ")
    ]
    if any(p.returncode for p in procs) or len(lines) != 1:
        for out, err in outs:
            sys.stderr.write(out.decode()[-2000:] + err.decode()[-4000:])
        raise RuntimeError("a benchmark worker failed")
    return json.loads(lines[0][len("RESULT ") :])


def paper_model_steps() -> tuple[int, int]:
    """(models, model-steps) of configs/paper.py at 185 steps per epoch."""
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1]))
    from configs import paper
    from fairser_jax.train import runs as runs_lib
    from fairser_jax.train import variants

    cfg = paper.get_config()
    models = 0
    for name in variants.training_order(cfg.variants):
        spec = variants.get(name)
        models += len(
            runs_lib.make_runs(
                name, spec.emotions(cfg), cfg.folds, cfg.seeds, spec.alphas(cfg)
            )
        )
    return models, models * cfg.train.epochs * _STEPS_PER_EPOCH


def main(argv: list[str]) -> None:
    del argv
    if _ROLE.value:
        _worker(_ROLE.value, _RUNS_MH.value, _STEPS_MH.value, tt._REPEATS.value)
        return
    p = _PROCESSES.value
    single = _result([_launch("single", p)])
    port = _free_port()
    multi = _result([_launch(f"{p},{i},{port}", 1) for i in range(p)])
    ratio = multi["rate"] / single["rate"]
    print(
        f"Fair_spk, {_RUNS_MH.value} runs x {_STEPS_MH.value} steps per "
        f"epoch, median of {tt._REPEATS.value} epochs (model-steps/s):"
    )
    for name, r in (("1 process", single), (f"{p} processes", multi)):
        print(
            f"  {name:<12} {r['devices']} devices  {r['rate']:8.1f}  "
            f"(first call {r['first_call_s']:.1f} s)"
        )
    print(f"  multi-controller / single-controller: {ratio:.3f}")
    models, steps = paper_model_steps()
    # A measured ratio above 1 is noise; never project a speed-up from it.
    efficiency = min(1.0, ratio)
    print(
        f"\nconfigs/paper.py: {models} models, {steps / 1e6:.1f}M "
        f"model-steps; projected on N hosts like this one ({single['rate']:.0f}"
        f" model-steps/s each, x {efficiency:.2f} across processes):"
    )
    hours = {}
    for n in (1, 2, 4, 8, 16, 32):
        rate = single["rate"] * (1.0 if n == 1 else n * efficiency)
        hours[n] = steps / rate / 3600
        print(f"  N = {n:>2}: {hours[n]:6.1f} h")
    print(
        json.dumps(
            {
                "single_rate": round(single["rate"], 1),
                "multi_rate": round(multi["rate"], 1),
                "ratio": round(ratio, 3),
                "paper_model_steps": steps,
                "paper_hours": {n: round(h, 2) for n, h in hours.items()},
            }
        )
    )


if __name__ == "__main__":
    app.run(main)
