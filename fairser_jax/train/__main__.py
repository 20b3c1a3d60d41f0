r"""Trains every configured variant on an existing corpus + feature store.

    python -m fairser_jax.train --config=configs/table2.py --workdir=DIR \
        --config.data.corpus=/path/to/IEMOCAP \
        --config.data.rater_gender=/path/to/rater_gender.json

Reads the corpus and `<workdir>/features.npz` (or `config.features.path`;
make it with `python -m fairser_jax.extract`), writes `results.json`,
`predictions.csv`, `embeddings/`, `training/` and `checkpoints/`.
`python -m fairser_jax.report --workdir=DIR` then draws tables and figures.
"""

from absl import app, flags
from ml_collections import config_flags

from fairser_jax import cli, pipeline

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/table2.py.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.")
_RESUME = flags.DEFINE_bool(
    "resume", False, "Continue a killed run in the same --workdir."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cli.configure_logging()
    results = cli.run_or_exit(
        "fairser_jax.train",
        lambda: pipeline.train(
            _CONFIG.value, _WORKDIR.value, resume=_RESUME.value
        ),
    )
    print(f"{len(results['runs'])} results in {_WORKDIR.value}/results.json")


if __name__ == "__main__":
    app.run(main)
