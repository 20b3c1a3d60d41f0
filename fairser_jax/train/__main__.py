r"""Trains every configured variant on an existing corpus + feature store.

    python -m fairser_jax.train --config=configs/table2.py --workdir=DIR \
        --config.data.corpus=/path/to/IEMOCAP \
        --config.data.rater_gender=/path/to/rater_gender.json

Reads the corpus and `<workdir>/features.npz` (or `config.features.path`;
make it with `python -m fairser_jax.extract`), checks that the store was
made with the config's checkpoint and layer from the corpus's current
audio, and writes `results.json`, `predictions.csv`, `params/`,
`embeddings/`, `training/` and `checkpoints/`. `python -m
fairser_jax.report --workdir=DIR` then draws tables and figures. The
workdir rules (`--resume`, `--overwrite`, one process at a time) are
those of `python -m fairser_jax.main`.
"""

from absl import app

from fairser_jax import cli, pipeline

_FLAGS = cli.define_run_flags("configs/table2.py")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if _FLAGS.config.value is None:
        raise app.UsageError("--config is required, e.g. configs/table2.py.")
    if _FLAGS.config_help.value:
        print(cli.describe_config(_FLAGS.config.value))
        return
    if not _FLAGS.workdir.value:
        raise app.UsageError("--workdir is required.")
    cli.configure_logging()
    cli.enable_compilation_cache()
    results = cli.run_or_exit(
        "fairser_jax.train",
        lambda: pipeline.train(
            _FLAGS.config.value,
            _FLAGS.workdir.value,
            resume=_FLAGS.resume.value,
            overwrite=_FLAGS.overwrite.value,
        ),
    )
    print(
        f"{len(results['runs'])} results in {_FLAGS.workdir.value}/results.json"
    )


if __name__ == "__main__":
    cli.run_entry("fairser_jax.train", main)
