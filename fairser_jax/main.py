r"""The whole pipeline in one command.

    python -m fairser_jax.main --config=configs/demo.py --workdir=/tmp/demo

corpus (the built-in demo corpus unless `--config.data.corpus` is set) →
wav2vec2 features (cached in the workdir) → every configured variant
trained at once → `results.json`, `predictions.csv`, `report.md` and
`figures/` in `--workdir`.

A workdir holds one run: a workdir with a previous run is refused unless
`--resume` (continue it, same config) or `--overwrite` (discard it) is
given, and one process at a time may use it (docs/DESIGN.md, "Workdir
rules"). `--config_help` lists every `--config.*` field and flag, one
line each. The last line says how long the command took and what it
wrote (printed by the primary process only, in a run of several).
"""

from fairser_jax import cli

_FLAGS = cli.define_run_flags("configs/demo.py")


def main(argv: list[str]) -> None:
    results = cli.run_pipeline("fairser_jax.main", _FLAGS, argv, "run")
    if results is not None and cli.is_primary():
        cli.echo(
            f"Done in {cli.format_duration(cli.elapsed())}: "
            f"{len(results['runs'])} results; "
            f"{cli.describe_outputs(_FLAGS.workdir.value)}"
        )


if __name__ == "__main__":
    cli.run_entry("fairser_jax.main", main)
