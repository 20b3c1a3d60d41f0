"""How the report prints a number: enough digits to tell values apart.

Parities (ΔSP, and above all their products ΔSP_spk × ΔSP_rat of Table 3
and Fig. 3a, paper §3.2) can be far below 0.01, where a fixed 3 decimals
print 0.0016 and 0.0024 both as 0.002. :func:`decimals` gives the decimals
that keep a minimum number of significant digits; the tables and figure
titles use it, the CSV files keep the unrounded values.
"""

from __future__ import annotations

import math

MAX_DECIMALS = 8
"""Values below 1e-8 print as 0 at this many decimals."""


def decimals(x: float, sig: int) -> int:
    """Decimals that show ``x`` with at least ``sig`` significant digits.

    Args:
      x: the value (its sign is ignored).
      sig: significant digits wanted, >= 1.

    Returns:
      0 for 0 or a non-finite ``x``; else ``sig - 1 - floor(log10|x|)``
      clipped to [0, :data:`MAX_DECIMALS`] (0.0016 with ``sig = 2``: 4).
    """
    if sig < 1:
        raise ValueError(f"sig must be >= 1, got {sig}.")
    if x == 0 or not math.isfinite(x):
        return 0
    # Round first, so that 0.000996 (3 sig digits: 0.00100) is one order up.
    magnitude = math.floor(math.log10(abs(float(f"{x:.{sig - 1}e}"))))
    return min(MAX_DECIMALS, max(0, sig - 1 - magnitude))


def mean_sd_decimals(
    mean: float, sd: float | None, *, digits: int, sig: int = 2
) -> int:
    """Shared decimals of a ``mean ± sd`` cell.

    At least ``digits``; more when the mean would keep fewer than ``sig``
    significant digits or a non-zero SD none (0.0016 ± 0.00093 with
    ``digits = 3``: 4 decimals, "0.0016 ± 0.0009").

    Args:
      mean: the value printed first.
      sd: its SD, or None for a single value.
      digits: the table's usual decimals for this metric.
      sig: significant digits the mean keeps at least.

    Returns:
      The decimals for both numbers.
    """
    need = max(digits, decimals(mean, sig))
    if sd is not None:
        need = max(need, decimals(sd, 1))
    return need


def format_sig(x: float, sig: int = 2, *, digits: int = 0) -> str:
    """``x`` with at least ``digits`` decimals and ``sig`` significant
    digits (``format_sig(0.01321) == "0.013"``)."""
    return f"{x:.{max(digits, decimals(x, sig))}f}"
