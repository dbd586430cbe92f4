"""Where the series lives, and the setup cell that makes a notebook run anywhere.

``REPOSITORY`` is the one place that names the repository: the "Open in Colab"
badges and the setup cell's fallback clone are generated from it
(``python -m cvae_utils.notebooks badges`` rewrites every notebook after a change,
and a test checks that every notebook agrees with it).

The setup cell (:data:`SETUP_SNIPPET`) runs before ``cvae_utils`` can be imported,
so it cannot live in the package: it is copied into every notebook verbatim (a test
checks the copies). It does nothing when ``cvae_utils`` imports; otherwise it
installs it from the repository the notebook sits in, or else clones the repository
(on Colab), and it pins the torch and torchvision already installed so that pip never
reinstalls them.
"""

from __future__ import annotations

REPOSITORY = "cvae-tutorial/cvae-notebooks"  # GitHub owner/name
BRANCH = "main"


def repository_url() -> str:
    return f"https://github.com/{REPOSITORY}"


def colab_url(notebook_name: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{notebook_name}"


def badge_markdown(notebook_name: str) -> str:
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook_name)})"
    )


SETUP_SNIPPET = f'''# Setup: make `cvae_utils` importable (on Colab: fetch the repository; torch stays as installed).
import importlib.metadata, importlib.util, pathlib, subprocess, sys
if importlib.util.find_spec("cvae_utils") is None:
    here = pathlib.Path.cwd()
    repo = next((p for p in (here, *here.parents) if (p / "cvae_utils" / "__init__.py").is_file()), None)
    if repo is None:  # not inside a clone (e.g. Colab): clone the repository next to the notebook
        repo = here / "{REPOSITORY.split("/")[1]}"
        if not repo.exists():
            subprocess.run(["git", "clone", "--depth", "1", "{repository_url()}", str(repo)], check=True)
    pins = [f"{{name}}=={{importlib.metadata.version(name)}}" for name in ("torch", "torchvision")
            if importlib.util.find_spec(name) is not None]  # never reinstall the torch already there
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", str(repo), *pins], check=True)
    sys.path.insert(0, str(repo))
    importlib.invalidate_caches()'''
