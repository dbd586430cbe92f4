"""What a committed notebook keeps of a run: no frozen progress bars, no visible answers.

    python -m tools.stored_outputs notebooks/05_training.ipynb ...   # clean these in place
    python -m tools.stored_outputs --check notebooks/*.ipynb         # exit 1 if any needs cleaning

``make execute`` runs this on every notebook it has just executed. Two kinds of output go, and one
kind is cut down:

* **progress bars**: a tqdm bar stored in a notebook is frozen at whatever it showed when
  the notebook was saved (often "0%", since the widget's last state is not stored). Every
  training run of the series ends with a one-line summary of its own (``fit: 20 epochs in
  61.2 s ...``), which stays: that line is what a saved copy shows instead.
* **outputs of solution cells** (cells tagged ``solution``): a solution's code starts
  collapsed, and its output would print the answer right under the question. The cell keeps
  its code and its execution count; its outputs are dropped.
* **widget views that carry an HTML fallback** (the quizzes, ``cu.quiz``): the notebook stores no
  widget state, so a stored view renders nowhere (JupyterLab shows "Error displaying widget: model
  not found", myst-nb an empty placeholder). The output keeps its HTML, markdown and plain text,
  which every viewer shows; running the cell brings the widget back.

Everything else (figures, printed text, the sampler's text fallback) is kept as it is.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# tqdm's bar: "training:  45%|████▌     | 9/20 [00:27<00:33, ...]" (the text a widget view falls back to)
PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+\s*\[")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def is_progress_bar(output: dict) -> bool:
    """A stored tqdm bar: a widget view whose text fallback is a bar, or a bar written to stderr."""
    if output.get("output_type") == "display_data":
        data = output.get("data", {})
        return "application/vnd.jupyter.widget-view+json" in data and bool(
            PROGRESS_BAR.search(_text(data.get("text/plain")))
        )
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        return bool(PROGRESS_BAR.search(_text(output.get("text"))))
    return False


def has_html_fallback(output: dict) -> bool:
    """A stored widget view whose bundle also holds HTML (what a viewer without the widget can show)."""
    data = output.get("data", {})
    return WIDGET_VIEW in data and "text/html" in data


def is_solution(cell: dict) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


def clean(nb: dict) -> int:
    """Drop progress bars and solution outputs, cut widget views with an HTML fallback, in place.

    Returns how many outputs went or were cut.
    """
    changed = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        kept = [] if is_solution(cell) else [o for o in cell.get("outputs", []) if not is_progress_bar(o)]
        changed += len(cell.get("outputs", [])) - len(kept)
        for output in kept:
            if has_html_fallback(output):
                del output["data"][WIDGET_VIEW]
                changed += 1
        cell["outputs"] = kept
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stored_outputs", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook needs cleaning")
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            print(f"{path}: cannot read it as a notebook ({error}); nothing changed.", file=sys.stderr)
            status = 2
            continue
        removed = clean(nb)
        if args.check:
            if removed:
                print(f"{path}: {removed} stored outputs to drop or cut (run python -m tools.stored_outputs {path})")
                status = max(status, 1)
            continue
        if removed:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{path}: dropped or cut {removed} outputs (progress bars, solutions, widget views with HTML)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
