r"""Training throughput by `config.train.runs_per_chunk` (runs per call).

    python benchmarks/chunking.py       # Fair_spk and DNN, 64 runs
    python benchmarks/chunking.py --chunk_runs=150 --chunks=8,150

The trainer trains each device's runs in chunks of `runs_per_chunk`, one
call of the same one-device program per chunk, so that a run's arithmetic
does not depend on the device or process count (docs/DESIGN.md,
"Training"). This measures what that costs against one call for all the
runs (the `--chunks` entry equal to `--chunk_runs`), with the real
trainer's epoch (`runner.train_epoch`, as `runner.fit` runs it) on the
IEMOCAP-sized synthetic S1 of `train_throughput.py` and the default
config.

Every case runs in its own subprocess (clean memory and thread pools),
the cases interleaved over `--chunk_rounds` rounds so that the machine's
drift falls on all of them alike; JAX rates exclude compilation (the first call
compiles, the next `--chunk_repeats` are timed, median). Prints a table of
model-steps/s per case (median over rounds) and each case's ratio to one
chunk of all the runs, then one JSON line.
"""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import sys

from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import train_throughput as tt  # noqa: E402  (the synthetic S1, the timer)

_RUNS = flags.DEFINE_integer("chunk_runs", 64, "Runs of the variant.")
_CHUNKS = flags.DEFINE_list(
    "chunks", ["4", "8", "16", "32", "64"], "runs_per_chunk values."
)
_VARIANTS = flags.DEFINE_list(
    "chunk_variants", ["fair_spk", "dnn"], "Variants."
)
_STEPS = flags.DEFINE_integer("chunk_steps", 16, "Steps per timed epoch.")
_REPEATS = flags.DEFINE_integer("chunk_repeats", 5, "Timed epochs per case.")
_ROUNDS = flags.DEFINE_integer("chunk_rounds", 2, "Interleaved rounds.")
_WORKER = flags.DEFINE_string("chunk_worker", "", "Internal: variant,chunk.")


def _worker(spec: str) -> None:
    variant, chunk = spec.split(",")
    call, _ = tt.trainer_epochs(
        variant, _RUNS.value, _STEPS.value, _REPEATS.value, int(chunk)
    )
    timing = tt._time_epochs(call, _REPEATS.value, _RUNS.value, _STEPS.value)
    print("RESULT " + json.dumps(timing), flush=True)


def _run(variant: str, chunk: str) -> dict:
    args = [sys.executable, __file__, f"--chunk_worker={variant},{chunk}"]
    args += [
        f"--{f}={v}"
        for f, v in (
            ("chunk_runs", _RUNS.value),
            ("chunk_steps", _STEPS.value),
            ("chunk_repeats", _REPEATS.value),
            ("num_utterances", tt._NUM_UTTERANCES.value),
        )
    ]
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        check=False,
        env=dict(
            os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu")
        ),
    )
    lines = [
        line for line in proc.stdout.splitlines() if line.startswith("RESULT ")
    ]
    if proc.returncode or not lines:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv: list[str]) -> None:
    del argv
    if _WORKER.value:
        _worker(_WORKER.value)
        return
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(_ROUNDS.value):
        for variant in _VARIANTS.value:
            for chunk in _CHUNKS.value:
                timing = _run(variant, chunk)
                rates.setdefault((variant, chunk), []).append(timing["rate"])
    print(
        f"{_RUNS.value} runs x {_STEPS.value} steps, "
        f"{tt._NUM_UTTERANCES.value} utterances, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print("variant   runs_per_chunk  model-steps/s  ratio to one chunk")
    summary = {}
    whole = str(_RUNS.value)
    for variant in _VARIANTS.value:
        base = statistics.median(rates.get((variant, whole), [float("nan")]))
        for chunk in _CHUNKS.value:
            rate = statistics.median(rates[(variant, chunk)])
            summary[f"{variant}/{chunk}"] = round(rate, 1)
            print(f"{variant:9s} {chunk:>14s} {rate:14.1f} {rate / base:19.2f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main)
