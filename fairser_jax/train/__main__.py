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

from fairser_jax import cli

_FLAGS = cli.define_run_flags("configs/table2.py")


def main(argv: list[str]) -> None:
    results = cli.run_pipeline("fairser_jax.train", _FLAGS, argv, "train")
    if results is not None and cli.is_primary():
        where = f"{_FLAGS.workdir.value}/results.json"
        cli.echo(
            f"Done in {cli.format_duration(cli.elapsed())}: "
            f"{len(results['runs'])} results in {where}"
        )


if __name__ == "__main__":
    cli.run_entry("fairser_jax.train", main)
