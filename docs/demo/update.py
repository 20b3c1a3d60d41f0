r"""Records a demo run into docs/demo/, the run the README quotes.

    python -m fairser_jax.main --config=configs/demo.py \
        --workdir=/tmp/fairser_demo 2>&1 | tee /tmp/fairser_demo.log
    python docs/demo/update.py /tmp/fairser_demo --log=/tmp/fairser_demo.log

The ten-seed protocol run the README's claims come from goes to
docs/reproduce/ the same way::

    python -m fairser_jax.main --config=configs/reproduce.py \
        --workdir=/tmp/fairser_reproduce 2>&1 | tee /tmp/reproduce.log
    python docs/demo/update.py /tmp/fairser_reproduce \
        --log=/tmp/reproduce.log --into=docs/reproduce --gzip_predictions

(``--gzip_predictions`` stores ``predictions.csv.gz``, gzip with no time
stamp, instead of the raw file: the ten-seed run's is 12 MB raw, 1.9 MB
compressed; ``gzip -dk`` gives back the byte-identical CSV.)

Copies the workdir minus what is large and rebuilt by any run (the corpus,
the feature store, parameters, checkpoints, per-variant predictions and
embeddings): ``config.json``, ``results.json``, ``predictions.csv``,
``alpha_trace.npz``, ``report.md``, ``tables/``, ``figures/`` and
``training/``; and writes ``run.txt``: the run's log (its last lines give
the wall time), the machine's load, core count and CPU model, and the
installed versions (``pip freeze``) it ran under. Only the files this
script writes are replaced; anything else in docs/demo/ is left alone.
"""

import argparse
import gzip
import os
import pathlib
import platform
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
FILES = (
    "config.json",
    "results.json",
    "predictions.csv",
    "alpha_trace.npz",
    "report.md",
    "claims.md",
)
FOLDERS = ("tables", "figures", "training")


def _cpu() -> str:
    """The CPU's model and widest vector extension: XLA compiles for the
    host CPU, so the same lock gives the same bytes only on the same kind
    of CPU (docs/DESIGN.md, "Reproducibility and tests")."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    widest = next(
        (isa for isa in ("avx512f", "avx2", "avx", "sse4_2") if isa in flags),
        "unknown",
    )
    return f"{model} ({widest})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdir", type=pathlib.Path)
    parser.add_argument("--log", type=pathlib.Path, default=None)
    parser.add_argument(
        "--into", type=pathlib.Path, default=HERE, help="Folder to record into."
    )
    parser.add_argument(
        "--gzip_predictions",
        action="store_true",
        help="Store predictions.csv as predictions.csv.gz.",
    )
    args = parser.parse_args()
    into = args.into
    into.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir
    missing = [f for f in (*FILES, *FOLDERS) if not (workdir / f).exists()]
    if missing:
        sys.exit(
            f"{workdir} lacks {missing}: run the README's first command "
            "to the end first."
        )
    for name in FILES:
        if name == "predictions.csv" and args.gzip_predictions:
            with open(workdir / name, "rb") as src, gzip.GzipFile(
                into / f"{name}.gz", "wb", compresslevel=9, mtime=0
            ) as dst:
                shutil.copyfileobj(src, dst)
            continue
        shutil.copyfile(workdir / name, into / name)
    for name in FOLDERS:
        shutil.rmtree(into / name, ignore_errors=True)
        shutil.copytree(workdir / name, into / name)
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        f"cpu: {_cpu()}",
        f"load average when recorded: {os.getloadavg()}",
        "",
        "## log of the run",
        args.log.read_text("utf-8") if args.log else "(no log given)",
        "## installed versions",
        freeze,
    ]
    (into / "run.txt").write_text("\n".join(lines), "utf-8")
    print(f"{into} now holds the run of {workdir}")


if __name__ == "__main__":
    main()
