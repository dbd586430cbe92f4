"""Run the series' notebooks headless and store their outputs.

    python -m cvae_utils.notebooks execute            # every notebook, full mode
    python -m cvae_utils.notebooks execute 05 06      # the notebooks whose names start so
    python -m cvae_utils.notebooks execute --quick    # CI-sized run (CVAE_QUICK=1), outputs not kept
    python -m cvae_utils.notebooks badges             # rewrite the Colab badges from cvae_utils.colab

Each notebook runs top to bottom in a fresh ``python3`` kernel from the notebooks
folder; its outputs are written back unless ``--quick``. The time each took is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from .config import QUICK_ENV_VAR

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_paths(prefixes: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks of the series (``NN_*.ipynb``), in order, optionally filtered by name prefix."""
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(pre) for pre in prefixes)]
    return paths


def execute_notebook(path: Path, *, quick: bool = False, timeout: int | None = None, write: bool = True) -> float:
    """Execute one notebook in a fresh kernel; return the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, QUICK_ENV_VAR: "1" if quick else "0"}  # the kernel's environment only
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                   store_widget_state=True, record_timing=False).execute(env=env)
    # widget state would be stray metadata (and stale on the next run): views keep their text fallback
    nb.metadata.pop("widgets", None)
    seconds = time.perf_counter() - start
    if write:
        nbformat.write(nb, path)
    return seconds


BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def rewrite_badges(paths: list[Path]) -> list[Path]:
    """Point every notebook's Colab badge at :func:`cvae_utils.colab.colab_url`; return the changed files."""
    import nbformat

    from .colab import badge_markdown

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
    parser = argparse.ArgumentParser(prog="python -m cvae_utils.notebooks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="run notebooks top to bottom and store their outputs")
    ex.add_argument("prefixes", nargs="*", help="only notebooks whose file names start with these")
    ex.add_argument("--quick", action="store_true", help="CI-sized run (CVAE_QUICK=1); outputs are not written")
    ex.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default: no limit)")
    sub.add_parser("badges", help="rewrite every notebook's Colab badge from cvae_utils.colab.REPOSITORY")
    args = parser.parse_args(argv)

    if args.command == "badges":
        for path in rewrite_badges(notebook_paths()):
            print(f"rewrote the badge of {path.name}")
        return 0
    paths = notebook_paths(args.prefixes)
    if not paths:
        print(f"no notebooks matched in {NOTEBOOK_DIR}", file=sys.stderr)
        return 1
    total = 0.0
    for path in paths:
        print(f"running {path.name} ({'quick' if args.quick else 'full'} mode) ...", flush=True)
        seconds = execute_notebook(path, quick=args.quick, timeout=args.timeout, write=not args.quick)
        total += seconds
        print(f"  {path.name}: {seconds:.1f} s", flush=True)
    print(f"all {len(paths)} notebooks: {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
