"""Report stage: workdir (results, predictions, embeddings) → tables, figures.

- :func:`write_report`: ``report.md`` with the Table 1-3 analogues and
  links to the figures (:mod:`fairser_jax.report.document`), and every
  table as ``tables/<name>.csv`` and booktabs ``.tex`` (built by
  :mod:`fairser_jax.report.tables`, rendered by
  :mod:`fairser_jax.report.render`, next to the paper's numbers of
  :mod:`fairser_jax.report.paper`).
- :func:`make_figures`: the Fig. 2 / Fig. 3 analogues, the parity bar
  chart and the training-loss curves as PNG and PDF
  (:mod:`fairser_jax.report.figures`).
- :func:`runs_from_predictions`, :func:`verify_workdir`: recompute every
  run's F1 / ΔSP_spk / ΔSP_rat from ``predictions.csv`` and check them
  against ``results.json`` (:mod:`fairser_jax.report.recompute`).

Command line: ``python -m fairser_jax.report --workdir=DIR [--recompute]``.
"""

from fairser_jax.report.document import write_report
from fairser_jax.report.figures import make_figures
from fairser_jax.report.recompute import (
    ResultsMismatchError,
    load_results,
    runs_from_predictions,
    verify_workdir,
)

__all__ = [
    "ResultsMismatchError",
    "load_results",
    "make_figures",
    "runs_from_predictions",
    "verify_workdir",
    "write_report",
]
