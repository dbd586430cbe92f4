import os
import subprocess
import sys
from pathlib import Path

import pytest

import cvae_utils as cu

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "value,expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False), ("off", False)]
)
def test_quick_mode_values(monkeypatch, value, expected):
    monkeypatch.setenv(cu.config.QUICK_ENV_VAR, value)
    assert cu.quick_mode() is expected
    assert cu.pick(full="full", quick="quick") == ("quick" if expected else "full")


def test_quick_mode_unset_is_the_real_thing(monkeypatch):
    monkeypatch.delenv(cu.config.QUICK_ENV_VAR, raising=False)
    assert cu.quick_mode() is False
    assert cu.pick(full=30, quick=1) == 30


def test_quick_mode_typo_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(cu.config.QUICK_ENV_VAR, "ye")
    with pytest.raises(ValueError, match="CVAE_QUICK=1"):
        cu.quick_mode()


def test_switch_is_read_in_one_place():
    """Only cvae_utils/config.py reads the environment variable; everything else asks quick_mode()."""
    import re
    from pathlib import Path

    reads = re.compile(r"(getenv|environ\.get|environ\[)\s*\(?\s*(QUICK_ENV_VAR|[\"']CVAE_QUICK)")
    root = Path(cu.__file__).resolve().parents[1]
    files = [
        *root.joinpath("cvae_utils").glob("*.py"),
        *root.joinpath("benchmarks").glob("*.py"),
        *root.joinpath("tools").glob("*.py"),
        *root.joinpath("notebooks").glob("*.ipynb"),
    ]
    readers = sorted(p.name for p in files if reads.search(p.read_text()) and p.name != "config.py")
    assert readers == []
    assert reads.search(root.joinpath("cvae_utils", "config.py").read_text())


def _root_conftest(pytestconfig):
    """The module conftest.py at the repository root, as this pytest run loaded it (None if it did not)."""
    for plugin in pytestconfig.pluginmanager.get_plugins():
        file = getattr(plugin, "__file__", None)
        if file and Path(file).resolve() == ROOT / "conftest.py":
            return plugin
    return None


def test_pytest_runs_in_quick_mode_unless_told_otherwise(pytestconfig):
    """conftest.py at the root sets CVAE_QUICK=1 for a bare `pytest` and keeps a value set in the environment."""
    root = _root_conftest(pytestconfig)
    assert root is not None, "conftest.py at the repository root was not loaded"
    assert root.QUICK_ENV_VAR == cu.config.QUICK_ENV_VAR
    value = os.environ.get(cu.config.QUICK_ENV_VAR)
    if root.QUICK_BEFORE is None:  # unset before pytest started: conftest.py set it
        assert value == "1" and cu.quick_mode()
    else:
        assert value == root.QUICK_BEFORE
    print(f"[{cu.config.QUICK_ENV_VAR}={value} quick_mode={cu.quick_mode()}]")


@pytest.mark.parametrize(
    "before,expected",
    [(None, "[CVAE_QUICK=1 quick_mode=True]"), ("0", "[CVAE_QUICK=0 quick_mode=False]")],
    ids=["unset: quick", "CVAE_QUICK=0: full"],
)
def test_bare_pytest_is_quick(before, expected):
    """A pytest run started without CVAE_QUICK runs in quick mode; one started with CVAE_QUICK=0 in full mode."""
    env = {k: v for k, v in os.environ.items() if k != cu.config.QUICK_ENV_VAR}
    if before is not None:
        env[cu.config.QUICK_ENV_VAR] = before
    test = f"{Path(__file__).relative_to(ROOT)}::test_pytest_runs_in_quick_mode_unless_told_otherwise"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert expected in result.stdout
