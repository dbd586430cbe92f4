"""The project's own set-up: packaging, environment files, README and CI agree."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ


def _pyproject():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _environment_yml() -> tuple[dict[str, str], list[str]]:
    """(conda dependencies name -> spec, pip lines) read from environment.yml."""
    conda, pip, in_pip, section = {}, [], False, None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        top = re.match(r"^(\w+):", line)
        if top:
            section = top.group(1)
            continue
        if section != "dependencies":
            continue
        if re.match(r"^\s{2}- pip:\s*$", line):
            in_pip = True
            continue
        m = re.match(r"^(\s*)- (.+)$", line)
        if m and in_pip and len(m.group(1)) > 2:
            pip.append(m.group(2).strip())
        elif m and len(m.group(1)) == 2:
            in_pip = False
            name, spec = _split(m.group(2))
            conda[name] = spec
    return conda, pip


def test_environment_yml_agrees_with_pyproject():
    project = _pyproject()["project"]
    wanted = [
        *project["dependencies"],
        *project["optional-dependencies"]["lab"],
        *project["optional-dependencies"]["test"],
    ]
    expected = {}
    for req in wanted:
        if ";" in req:  # conditional on the Python version: not for conda's fixed Python
            continue
        name, spec = _split(req)
        expected[CONDA_NAMES.get(name, name)] = spec
    conda, pip = _environment_yml()
    conda.pop("python"), conda.pop("pip")
    assert conda == expected
    # the kit's packages (Sphinx, myst-nb, Voila: make book / make demo) come from pip
    assert pip == ['-e ".[lab,test,kit]"'] or pip == ["-e .[lab,test,kit]"]


def test_environment_yml_uses_conda_forge_and_a_python_version():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"channels:\s*\n\s*- conda-forge", text)
    assert re.search(r"- python=3\.\d+", text)


def _constraints() -> dict[str, str]:
    """constraints.txt as name -> exact version; every line that is not a comment must be a `name==version` pin."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+!\-]+)", line)
        assert m, f"constraints.txt holds exact pins only; got {line!r}"
        pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_dependencies_are_ranges_that_never_force_a_torch_reinstall():
    deps = dict(_split(r) for r in _pyproject()["project"]["dependencies"])
    for name in ("torch", "torchvision"):
        assert "==" not in deps[name] and deps[name].startswith(">=")
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()


def test_constraints_pins_fall_within_the_pyproject_ranges():
    """The set-up's exact releases must satisfy the ranges users install from (pyproject.toml, and
    environment.yml, whose ranges test_environment_yml_agrees_with_pyproject holds equal to these).
    Bumping a pin in constraints.txt past its range, without moving the range, fails here."""
    project = _pyproject()["project"]
    ranges = dict(
        _split(r)
        for r in [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    )
    pins = _constraints()
    assert {"torch", "torchvision"} <= set(pins)
    for name, version in pins.items():
        assert name in ranges, f"constraints.txt pins {name}, which pyproject.toml does not depend on"
        ok = SpecifierSet(ranges[name]).contains(Version(version), prereleases=True)
        assert ok, f"constraints.txt pins {name}=={version}, outside pyproject.toml's {name}{ranges[name]}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\s*\n(.+?)\n```", readme)
    assert m, "README.md must mark its test command with <!-- test-command -->"
    command = m.group(1).strip()
    ci = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert command in ci
    assert re.search(r"<!-- lab-command -->\s*```(?:bash|sh)?\s*\n(.+?)\n```", readme)


def test_package_layout():
    for path in (
        "notebooks",
        "cvae_utils",
        "data",
        "tests",
        "benchmarks",
        "tools/colab.py",
        "conftest.py",
        "environment.yml",
        "README.md",
        "pyproject.toml",
        ".ci/run",
        "data/README.md",
    ):
        assert (ROOT / path).exists(), path
    from setuptools import find_packages

    installed = set(find_packages(ROOT, **_pyproject()["tool"]["setuptools"]["packages"]["find"]))
    subpackages = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "cvae_utils").rglob("__init__.py")}
    assert subpackages <= installed, f"a plain pip install would leave out {sorted(subpackages - installed)}"
    assert not {p for p in installed if not p.startswith("cvae_utils")}, "tools/ and tests/ are not installed"


# Runs pytest as if the test extra were not installed: its modules cannot be imported, and the nbval
# plugin (an entry point, present here) is not loaded. --assert=plain: pytest's import hook for
# assertion rewriting would otherwise find nbval before the blocker does.
_WITHOUT_TEST_EXTRA = """
import sys

BLOCKED = {"nbval", "nbformat", "nbclient", "nbconvert"}


class Blocker:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker)
import pytest

raise SystemExit(pytest.main(["-p", "no:nbval", "--assert=plain", "--collect-only", "-q"]))
"""


def test_missing_test_extra_is_a_clear_error(tmp_path):
    script = tmp_path / "without_test_extra.py"
    script.write_text(_WITHOUT_TEST_EXTRA)
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 4, output[-3000:]  # pytest's usage error
    assert "the test extra is not installed (missing: nbval, nbformat, nbclient, nbconvert)" in output
    assert 'pip install -e ".[test]"' in output and "make test" in output
    assert "unrecognized arguments" not in output


def test_no_library_module_is_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "cvae_utils").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, f"split these modules (at most 400 lines each): {long}"


def test_the_public_api_is_stated_and_infrastructure_stays_in_its_module():
    import importlib.metadata

    import cvae_utils as cu

    missing = [name for name in cu.__all__ if not hasattr(cu, name)]
    assert not missing and len(set(cu.__all__)) == len(cu.__all__), missing
    for name in ("tune_cpu_allocator", "file_digest", "register_model", "QUICK_ENV_VAR", "prepare_mnist", "load_into"):
        assert not hasattr(cu, name), f"cu.{name} is infrastructure: import it from its module"
    assert cu.utils.tune_cpu_allocator and cu.files.file_digest and cu.models.register_model
    assert cu.__version__ == importlib.metadata.version("cvae-utils")


def test_importing_the_library_does_not_import_the_experiments():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, cvae_utils; print(sorted(m for m in sys.modules if m.startswith('cvae_utils.experiments')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "[]"


def test_licences_say_what_a_course_may_reuse():
    """Code under MIT (LICENSE), text and figures under CC BY-SA 4.0 (LICENSE-TEXT.md), MNIST's own
    terms in data/README.md, and the README's reuse section pointing at all three."""
    code = (ROOT / "LICENSE").read_text()
    assert code.startswith("MIT License") and "Permission is hereby granted, free of charge" in code
    assert "LICENSE-TEXT.md" in code and "Apache License 2.0" in code  # the split, and PyTorch-VAE's credit
    text = (ROOT / "LICENSE-TEXT.md").read_text()
    assert "CC BY-SA 4.0" in text and "https://creativecommons.org/licenses/by-sa/4.0/" in text
    data = (ROOT / "data" / "README.md").read_text()
    assert "CC BY-SA 3.0" in data and "https://creativecommons.org/licenses/by-sa/3.0/" in data
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Licence and reuse", 1)[1].split("\n## ", 1)[0]
    for link in ("(LICENSE)", "(LICENSE-TEXT.md)", "(data/README.md)"):
        assert link in section, f"the README's licence section must link {link}"
    assert "What a course may reuse" in section
