"""Progress bars that suit where the output goes.

On a terminal: a tqdm bar. Otherwise (a log file, CI, a pipe): tqdm's
carriage-return redraws would fill the file with noise, so progress is a
plain log line at most every tenth of the work (and at the end), with the
same postfix figures the bar shows.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import auto as tqdm

_LOG = logging.getLogger("fairser_jax")


def _is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class LogBar:
    """The subset of tqdm's interface the package uses, as log lines.

    Args:
      iterable: iterated over by `__iter__` (each item counts 1).
      desc: the label of every line.
      total: the amount of work (items or `update` units).
      initial: work already done (e.g. epochs restored from a checkpoint).
      unit: the unit shown.
      lines: at most this many progress lines over the whole run.
    """

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        desc: str = "",
        total: int | None = None,
        initial: int = 0,
        unit: str = "it",
        lines: int = 10,
    ):
        self._iterable = iterable
        self.desc = desc
        self.total = total
        self.n = initial
        self._start_n = initial
        self.unit = unit
        self._step = max(1, (total or 0) // lines)
        self._next = initial + self._step
        self._postfix = ""
        self._tic = time.perf_counter()
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        for item in self._iterable or ():
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n >= self._next and (self.total is None or self.n < self.total):
            self._emit()
            while self._next <= self.n:
                self._next += self._step

    def set_postfix(self, **kwargs: Any) -> None:
        self._postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def _emit(self) -> None:
        seconds = time.perf_counter() - self._tic
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        extra = f", {self._postfix}" if self._postfix else ""
        _LOG.info(
            "%s: %s %s (%.1f s%s)", self.desc, done, self.unit, seconds, extra
        )

    def close(self) -> None:
        if not self._closed and self.n > self._start_n:
            self._emit()
        self._closed = True


def bar(
    iterable: Iterable[Any] | None = None,
    *,
    enabled: bool = True,
    **kwargs: Any,
) -> tqdm.tqdm | LogBar:
    """A tqdm bar on a terminal, log lines elsewhere, nothing if disabled.

    Args:
      iterable: what to iterate over, as for tqdm.
      enabled: False shows nothing.
      **kwargs: desc, total, initial, unit (and, on a terminal, any other
        tqdm argument).
    """
    if not enabled or _is_terminal():
        return tqdm.tqdm(
            iterable, disable=not enabled, dynamic_ncols=True, **kwargs
        )
    keep = {
        k: kwargs[k]
        for k in ("desc", "total", "initial", "unit")
        if k in kwargs
    }
    return LogBar(iterable, **keep)
