"""The report's tables as values: `Cell`, `Table`, and their Markdown,
CSV and LaTeX (booktabs) renderings. No knowledge of the paper, the
variants or the metrics: `fairser_jax.report.tables` builds the tables.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from fairser_jax.report import numbers

MISSING = "—"


# ------------------------------------------------------------- primitives


def _row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    align: Sequence[str] | None = None,
) -> str:
    """A GitHub-flavoured Markdown table.

    Args:
      header: column titles.
      rows: one sequence of cells per row, ``len(header)`` each.
      align: per column ``"l"`` or ``"r"``; default first left, rest right.

    Returns:
      The table, newline separated, without a trailing newline.
    """
    align = align or ["l"] + ["r"] * (len(header) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = [_row(header), _row(rule)]
    for r in rows:
        if len(r) != len(header):
            raise ValueError(
                f"markdown_table: row {list(r)} has {len(r)} cells, the "
                f"header {len(header)}."
            )
        lines.append(_row(r))
    return "\n".join(lines)


# LaTeX: the ten special characters, then the non-ASCII symbols the tables
# use, as commands that work in text mode with pdflatex.
_LATEX_ESCAPES: dict[str, str] = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\ensuremath{<}",
    ">": r"\ensuremath{>}",
    "|": r"\ensuremath{|}",
    "Δ": r"\ensuremath{\Delta}",
    "α": r"\ensuremath{\alpha}",
    "×": r"\ensuremath{\times}",
    "−": r"\ensuremath{-}",
    "±": r"\ensuremath{\pm}",
    "†": r"\ensuremath{^\dagger}",
    "—": "---",
    "–": "--",
    "§": r"\S{}",
}


def latex_escape(text: str) -> str:
    """``text`` safe in LaTeX text mode (pdflatex, no extra packages).

    Escapes ``\\ & % $ # _ { } ~ ^ < > |`` and spells the symbols the
    tables use (Δ α × − ± † — – §) as LaTeX commands, in one pass so that
    nothing is escaped twice.
    """
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


SMALL_MARK = "§"
"""Marks a cell whose value rests on a small group (`Cell.small`)."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One table cell: a label, a number, a mean ± SD, or missing.

    Attributes:
      value: text, a number (a mean when ``sd`` is set), or None (missing:
        "—" in Markdown, "---" in LaTeX, empty in CSV).
      sd: the SD over seeds, or None for a single value.
      digits: decimals of ``value``; None prints ints as they are and
        floats with ``:g``.
      sd_digits: decimals of ``sd``; default ``digits``.
      view: ``"intra"`` (bold) or ``"inter"`` (italic with a dagger), the
        cross-reference scheme of paper §2.2.3; None for plain.
      small: the value rests on a group smaller than
        `fairser_jax.results.SMALL_GROUP` (marked ``§``; the report's note
        names the group).
      sig: with ``digits``, the fewest significant digits the value keeps
        (and a non-zero SD keeps one): more decimals than ``digits`` for
        small values, the same for value and SD
        (:func:`fairser_jax.report.numbers.mean_sd_decimals`: 0.0016 ±
        0.0009, not 0.002 ± 0.001); None prints ``digits`` decimals.
    """

    value: str | float | int | None
    sd: float | None = None
    digits: int | None = None
    sd_digits: int | None = None
    view: str | None = None
    sig: int | None = None
    small: bool = False

    def _number(self, x: float | int, digits: int | None) -> str:
        if digits is not None:
            return f"{x:.{digits}f}"
        return str(x) if isinstance(x, int | np.integer) else f"{x:g}"

    def _numbers(self, pm: str) -> str:
        digits, sd_digits = self.digits, self.sd_digits
        if self.sig is not None and digits is not None:
            digits = sd_digits = numbers.mean_sd_decimals(
                float(self.value),  # type: ignore[arg-type]
                self.sd,
                digits=digits,
                sig=self.sig,
            )
        text = self._number(self.value, digits)  # type: ignore[arg-type]
        if self.sd is None:
            return text
        sd_digits = digits if sd_digits is None else sd_digits
        return f"{text}{pm}{self._number(self.sd, sd_digits)}"

    def markdown(self) -> str:
        """The cell as Markdown (``|`` escaped in labels)."""
        if self.value is None:
            return MISSING
        if isinstance(self.value, str):
            return self.value.replace("|", "\\|")
        text = self._numbers(" ± ")
        mark = SMALL_MARK if self.small else ""
        if self.view == "intra":
            return f"**{text}**{mark}"
        if self.view == "inter":
            return f"*{text}*†{mark}"
        return text + mark

    def latex(self) -> str:
        """The cell as LaTeX: ``$0.61 \\pm 0.02$``, ``$\\mathbf{…}$``…"""
        if self.value is None:
            return "---"
        if isinstance(self.value, str):
            return latex_escape(self.value)
        text = self._numbers(r" \pm ")
        mark = r"\S{}" if self.small else ""
        if self.view == "intra":
            return f"$\\mathbf{{{text}}}${mark}"
        if self.view == "inter":
            return f"$\\mathit{{{text}}}^{{\\dagger}}${mark}"
        return (f"${text}$" if self.sd is not None else text) + mark

    def csv(self, paired: bool) -> list[str | float | int]:
        """Plain values: ``[value]``, or ``[value, sd]`` in a paired column.

        Missing values and a single value's SD are empty strings.
        """
        value = "" if self.value is None else self.value
        if not paired:
            return [value]
        return [value, "" if self.sd is None else self.sd]


@dataclasses.dataclass(frozen=True)
class Table:
    """A report table, rendered as Markdown, CSV and booktabs LaTeX.

    Attributes:
      name: file stem of ``tables/<name>.csv`` and ``.tex``.
      title: what the table shows (the LaTeX file's first comment line).
      header: column titles, [C].
      rows: [N] rows of C cells.
      paired: [C] whether a column holds mean ± SD, i.e. is two CSV
        columns ``"<title> mean"`` and ``"<title> sd"``.
      align: [C] ``"l"`` or ``"r"``.
      breaks: row indices before which the LaTeX has a ``\\midrule``
        (e.g. between our rows and the paper's).
    """

    name: str
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    paired: tuple[bool, ...]
    align: tuple[str, ...]
    breaks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        width = len(self.header)
        if len(self.paired) != width or len(self.align) != width:
            raise ValueError(
                f"Table {self.name}: {width} columns but {len(self.paired)} "
                f"paired flags and {len(self.align)} alignments."
            )
        for row in self.rows:
            if len(row) != width:
                raise ValueError(
                    f"Table {self.name}: a row has {len(row)} cells, the "
                    f"header {width}."
                )

    def markdown(self) -> str:
        """GitHub-flavoured Markdown, mean ± SD in one cell."""
        return markdown_table(
            [h.replace("|", "\\|") for h in self.header],
            [[c.markdown() for c in row] for row in self.rows],
            align=self.align,
        )

    def csv_rows(self) -> list[list[str | float | int]]:
        """Header then data rows; floats unrounded, in the table's units."""
        header: list[str | float | int] = []
        for title, paired in zip(self.header, self.paired, strict=True):
            header += [f"{title} mean", f"{title} sd"] if paired else [title]
        return [header] + [
            [
                v
                for c, paired in zip(row, self.paired, strict=True)
                for v in c.csv(paired)
            ]
            for row in self.rows
        ]

    def csv(self) -> str:
        """The CSV text (``csv`` module quoting, ``\\n`` line ends)."""
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(self.csv_rows())
        return out.getvalue()

    def latex(self) -> str:
        """A booktabs ``tabular`` (``\\usepackage{booktabs}``), no float."""
        lines = [
            f"% {latex_escape(self.title)}",
            "% Written by fairser_jax.report; needs \\usepackage{booktabs}.",
            f"\\begin{{tabular}}{{{''.join(self.align)}}}",
            r"\toprule",
            " & ".join(latex_escape(h) for h in self.header) + r" \\",
            r"\midrule",
        ]
        for i, row in enumerate(self.rows):
            if i in self.breaks and i > 0:
                lines.append(r"\midrule")
            lines.append(" & ".join(c.latex() for c in row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"
