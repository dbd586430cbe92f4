"""Where the series lives, and the setup cell that makes a notebook run anywhere.

    python tools/colab.py badges    # rewrite every notebook's Colab badge from REPOSITORY

``REPOSITORY`` is the one place that names the repository: the "Open in Colab"
badges and the setup cell's fallback clone are generated from it (the command above
rewrites every notebook's badge after a change, and tests/test_notebooks.py checks
that every notebook agrees with it).

The setup cell (:data:`SETUP_SNIPPET`) runs before ``cvae_utils`` can be imported,
so it cannot live in the package: it is copied into every notebook verbatim (a test
checks the copies). It does nothing when ``cvae_utils`` imports; otherwise it
installs it from the repository the notebook sits in, or else clones the repository
(on Colab), and it pins the torch and torchvision already installed so that pip never
reinstalls them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"

REPOSITORY = "cvae-tutorial/cvae-notebooks"  # GitHub owner/name
BRANCH = "main"


AUTHORS = "The CVAE tutorial authors"  # the copyright holder named in LICENSE


def repository_url() -> str:
    return f"https://github.com/{REPOSITORY}"


def credit_line() -> str:
    """The credit that LICENSE-TEXT.md asks for, as the kit's builds (site, slides, handouts) print it."""
    return f"{AUTHORS}, {repository_url()}: text, figures and slides CC BY-SA 4.0, code MIT"


def colab_url(notebook_name: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{notebook_name}"


def badge_markdown(notebook_name: str) -> str:
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook_name)})"


SETUP_SNIPPET = f'''# Setup: make `cvae_utils` importable (on Colab: fetch the repository; torch stays as installed).
import importlib.metadata
import importlib.util
import pathlib
import subprocess
import sys

REPOSITORY_URL = "{repository_url()}"
if importlib.util.find_spec("cvae_utils") is None:
    here = pathlib.Path.cwd()
    repo = next((p for p in (here, *here.parents) if (p / "cvae_utils" / "__init__.py").is_file()), None)
    if repo is None:  # not inside a clone (e.g. Colab): clone the repository next to the notebook
        repo = here / "{REPOSITORY.split("/")[1]}"
        if not repo.exists():
            subprocess.run(["git", "clone", "--depth", "1", REPOSITORY_URL, str(repo)], check=True)
    installed = [name for name in ("torch", "torchvision") if importlib.util.find_spec(name) is not None]
    pins = [f"{{name}}=={{importlib.metadata.version(name)}}" for name in installed]  # never reinstall torch
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", str(repo), *pins], check=True)
    sys.path.insert(0, str(repo))
    importlib.invalidate_caches()'''


BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def notebook_paths(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks of the series (``NN_*.ipynb``), in order."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def rewrite_badges(paths: list[Path]) -> list[Path]:
    """Point each notebook's Colab badge (in its first cell) at :func:`colab_url`; return the changed files."""
    import nbformat

    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        cell = nb.cells[0]
        new = BADGE.sub(badge_markdown(path.name), cell.source)
        if new != cell.source:
            cell.source = new
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/colab.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("badges", help=f"rewrite every notebook's Colab badge from REPOSITORY ({REPOSITORY})")
    parser.parse_args(argv)
    paths = notebook_paths()
    if not paths:
        print(f"no notebooks in {NOTEBOOK_DIR}", file=sys.stderr)
        return 1
    changed = rewrite_badges(paths)
    for path in changed:
        print(f"rewrote the badge of {path.name}")
    print(f"{len(changed)} of {len(paths)} badges rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
