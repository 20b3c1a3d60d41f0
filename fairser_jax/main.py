r"""The whole pipeline in one command.

    python -m fairser_jax.main --config=configs/demo.py --workdir=/tmp/demo

corpus (the built-in demo corpus unless `--config.data.corpus` is set) →
wav2vec2 features (cached in the workdir) → every configured variant
trained at once → `results.json`, `predictions.csv`, `report.md` and
`figures/` in `--workdir`. `--resume` continues a killed run.
"""

from absl import app, flags
from ml_collections import config_flags

from fairser_jax import cli, pipeline

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/demo.py.", lock_config=True
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
        "fairser_jax.main",
        lambda: pipeline.run(
            _CONFIG.value, _WORKDIR.value, resume=_RESUME.value
        ),
    )
    report = f"{_WORKDIR.value}/report.md"
    print(f"{len(results['runs'])} results; report: {report}")


if __name__ == "__main__":
    app.run(main)
