"""Every pytest run from this repository: quick mode unless asked otherwise, and the test extra present.

A bare ``pytest`` runs the tests and nbval over every notebook in quick mode
(``CVAE_QUICK=1``, as ``make test`` sets it): the notebooks' kernels inherit this
process's environment. A value already in the environment is kept, so
``CVAE_QUICK=0 pytest`` still runs everything in full mode.
"""

import importlib.util
import os

import pytest

QUICK_ENV_VAR = (
    "CVAE_QUICK"  # cvae_utils.config.QUICK_ENV_VAR; not imported here, so that this file loads without torch
)
QUICK_BEFORE = os.environ.get(QUICK_ENV_VAR)  # None: not set, so this file sets it
os.environ.setdefault(QUICK_ENV_VAR, "1")

TEST_EXTRA = ("nbval", "nbformat", "nbclient", "nbconvert")


def _missing(names=TEST_EXTRA):
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def pytest_addoption(parser):
    # Runs while pytest reads this file, before it parses addopts (--nbval-lax ...), which
    # without nbval would end in a bare "unrecognized arguments" error.
    missing = _missing()
    if missing:
        raise pytest.UsageError(
            f"the test extra is not installed (missing: {', '.join(missing)}). "
            "Run the tests with `make test` (it sets up .venv with everything), or install it: "
            'pip install -e ".[test]"'
        )


def pytest_report_header(config):
    how = "set by conftest.py" if QUICK_BEFORE is None else "from the environment"
    return f"cvae: {QUICK_ENV_VAR}={os.environ[QUICK_ENV_VAR]} ({how})"
