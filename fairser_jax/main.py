r"""The whole pipeline in one command.

    python -m fairser_jax.main --config=configs/demo.py --workdir=/tmp/demo

corpus (the built-in demo corpus unless `--config.data.corpus` is set) →
wav2vec2 features (cached in the workdir) → every configured variant
trained at once → `results.json`, `predictions.csv`, `report.md` and
`figures/` in `--workdir`.

A workdir holds one run: a workdir with a previous run is refused unless
`--resume` (continue it, same config) or `--overwrite` (discard it) is
given, and one process at a time may use it (docs/DESIGN.md, "Workdir
rules"). `--config_help` lists every `--config.*` field.
"""

from absl import app

from fairser_jax import cli, pipeline

_FLAGS = cli.define_run_flags("configs/demo.py")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if _FLAGS.config.value is None:
        raise app.UsageError("--config is required, e.g. configs/demo.py.")
    if _FLAGS.config_help.value:
        print(cli.describe_config(_FLAGS.config.value))
        return
    if not _FLAGS.workdir.value:
        raise app.UsageError("--workdir is required.")
    cli.configure_logging()
    cli.enable_compilation_cache()
    results = cli.run_or_exit(
        "fairser_jax.main",
        lambda: pipeline.run(
            _FLAGS.config.value,
            _FLAGS.workdir.value,
            resume=_FLAGS.resume.value,
            overwrite=_FLAGS.overwrite.value,
        ),
    )
    report = f"{_FLAGS.workdir.value}/report.md"
    print(f"{len(results['runs'])} results; report: {report}")


if __name__ == "__main__":
    cli.run_entry("fairser_jax.main", main)
