import pytest

import cvae_utils as cu


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False), ("off", False)])
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
    files = [*root.joinpath("cvae_utils").glob("*.py"), *root.joinpath("benchmarks").glob("*.py"),
             *root.joinpath("notebooks").glob("*.ipynb")]
    readers = sorted(p.name for p in files if reads.search(p.read_text()) and p.name != "config.py")
    assert readers == []
    assert reads.search(root.joinpath("cvae_utils", "config.py").read_text())
