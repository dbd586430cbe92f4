"""The one switch that makes every notebook and script run in minutes.

Set the environment variable ``CVAE_QUICK=1`` (the test command does) and every
notebook trains on a slice of the data for a few epochs; leave it unset and you get
the real thing. This module is the only place that reads it: notebooks and scripts
call :func:`quick_mode` or :func:`pick`.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

QUICK_ENV_VAR = "CVAE_QUICK"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def quick_mode() -> bool:
    """True when ``CVAE_QUICK`` asks for the short CI-sized runs.

    Raises ``ValueError`` for a value that is neither true-like nor false-like, so a
    typo never silently gives you a full run when you wanted a quick one (or back).
    """
    raw = os.environ.get(QUICK_ENV_VAR, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"{QUICK_ENV_VAR}={os.environ[QUICK_ENV_VAR]!r} is not understood: "
        f"use {QUICK_ENV_VAR}=1 for the quick CI-sized run, or unset it (or 0) for the full run."
    )


def pick(full: T, quick: T) -> T:
    """Return ``quick`` in quick mode and ``full`` otherwise.

    >>> num_epochs = pick(full=30, quick=1)
    """
    return quick if quick_mode() else full
