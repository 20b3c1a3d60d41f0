"""Shared behaviour of the absl entry points."""

import logging
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Errors that describe bad input or a failed run in words a user can act
# on (file, line, fix): shown as one line, not a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError)


def run_or_exit(program: str, fn: Callable[[], T]) -> T:
    """Runs `fn`; a user error exits with status 1 and its message.

    Args:
      program: the module name shown before the message.
      fn: the work of the entry point.

    Returns:
      What `fn` returns.
    """
    try:
        return fn()
    except USER_ERRORS as e:
        raise SystemExit(f"{program}: error: {e}") from None


def configure_logging() -> None:
    """Our INFO messages on; orbax's per-checkpoint INFO chatter off.

    Orbax logs every save through absl at INFO, which would bury the
    progress bars; its warnings still show.
    """
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)
