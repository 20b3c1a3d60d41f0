r"""Writes a workdir's report.md, tables/ and figures; optionally re-verifies.

    python -m fairser_jax.report --workdir=DIR [--recompute]

``DIR`` is the ``--workdir`` of ``python -m fairser_jax.train`` (it holds
``results.json``, ``predictions.csv``, ``config.json`` and
``embeddings/``). With ``--recompute`` every run of ``results.json`` is
first re-derived from ``predictions.csv`` (the definitions of
``fairser_jax.results``) and the command exits with status 1 and a list of
differences if any metric differs by more than ``--atol``.
"""

from absl import app, flags

from fairser_jax import cli
from fairser_jax import workdir as workdir_lib
from fairser_jax.report import document, recompute

_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory written by `python -m fairser_jax.train`."
)
_RECOMPUTE = flags.DEFINE_bool(
    "recompute",
    False,
    "Re-derive results.json's runs from predictions.csv and fail if they "
    "disagree.",
)
_ATOL = flags.DEFINE_float(
    "atol", 1e-9, "Tolerance of the --recompute comparison."
)
_FIGURES = flags.DEFINE_bool(
    "figures", True, "Draw the figures (False: link existing PNGs/PDFs)."
)
_TSNE_SAMPLES = flags.DEFINE_integer(
    "tsne_samples",
    None,
    "Utterances in the Fig. 2 t-SNE (default: config.report.tsne_samples "
    "from config.json, else 1500 as in the paper).",
)
flags.mark_flag_as_required("workdir")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cli.configure_logging()

    def run():
        # The report rewrites report.md, tables/ and figures/: not while a
        # run (or another report) writes the same workdir.
        with workdir_lib.lock(_WORKDIR.value, "report", create=False):
            if _RECOMPUTE.value:
                runs = recompute.verify_workdir(
                    _WORKDIR.value, atol=_ATOL.value
                )
                print(
                    f"recompute: {len(runs)} run(s) of results.json match "
                    f"predictions.csv (atol {_ATOL.value:g})."
                )
            return document.write_report(
                _WORKDIR.value,
                figures=_FIGURES.value,
                tsne_sample_size=_TSNE_SAMPLES.value,
            )

    # ResultsMismatchError is a ValueError: one line, not a traceback, for a
    # user who pointed at the wrong directory.
    path = cli.run_or_exit("fairser_jax.report", run)
    print(f"wrote {path}")


if __name__ == "__main__":
    cli.run_entry("fairser_jax.report", main)
