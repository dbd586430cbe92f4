"""The notebooks' setup cell, run offline in fresh environments without cvae_utils.

Each environment is a new virtual environment that sees this environment's packages
(torch and the rest) through a .pth file, but not cvae_utils: exactly a Colab runtime,
which has torch but not this project.
"""

import os
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from tools.colab import REPOSITORY, SETUP_SNIPPET, repository_url

ROOT = Path(__file__).resolve().parents[1]


def _fresh_env(path: Path) -> Path:
    venv.create(path, with_pip=True)
    py = path / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "_outer_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


def _run(py: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(py), "-c", code], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def _torch_files(py: Path) -> list[str]:
    purelib = _run(py, "import sysconfig; print(sysconfig.get_paths()['purelib'])", Path("/")).stdout.strip()
    return [p.name for p in Path(purelib).iterdir() if p.name.startswith("torch")]


@pytest.fixture(scope="module")
def torch_version():
    import torch

    return torch.__version__


def test_snippet_is_a_no_op_where_cvae_utils_is_installed(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    exec(SETUP_SNIPPET, {})
    assert calls == []  # no clone, no pip


@pytest.mark.parametrize("where", ["inside the repository", "Colab: clone the repository"])
def test_snippet_installs_cvae_utils_without_touching_torch(tmp_path, where, torch_version):
    py = _fresh_env(tmp_path / "env")
    neutral = tmp_path / "work"
    neutral.mkdir()
    assert _run(py, "import cvae_utils", neutral).returncode != 0, "the fresh environment must lack cvae_utils"
    assert _run(py, "import torch; print(torch.__version__)", neutral).stdout.strip() == torch_version

    if where == "inside the repository":
        snippet, cwd = SETUP_SNIPPET, ROOT / "notebooks"
    else:
        if not (ROOT / ".git").exists():
            pytest.skip("the clone path needs this repository to be a git checkout")
        # offline stand-in for GitHub: the same git clone, from this checkout
        snippet, cwd = SETUP_SNIPPET.replace(repository_url(), str(ROOT)), neutral
    result = _run(py, snippet + "\nimport cvae_utils, torch\nprint('OK', cvae_utils.__file__, torch.__version__)", cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout and torch_version in result.stdout
    if where != "inside the repository":
        assert (neutral / REPOSITORY.split("/")[1] / "cvae_utils" / "__init__.py").is_file()
    # installed for good (a new process imports it), and torch was neither reinstalled nor upgraded
    assert _run(py, "import cvae_utils", neutral).returncode == 0
    assert _torch_files(py) == []
    assert _run(py, "import torch; print(torch.__version__)", neutral).stdout.strip() == torch_version
    shutil.rmtree(tmp_path / "env", ignore_errors=True)
