"""Put each notebook's quiz (``cu.quiz(N)``) before its References, with the output a kernel stores.

    python -m tools.quiz            # add the quiz cells where missing, refresh their stored outputs
    python -m tools.quiz --check    # change nothing; exit 1 if a quiz cell is missing, misplaced or outdated

The quiz of notebook N is two cells after the last cell of its Exercises: a markdown cell ``## Quiz``
and a code cell ``cu.quiz(N)``. Their stored output comes from running ``cu.quiz(N)`` in one fresh
python3 kernel (not the whole notebook, which takes minutes), cleaned by ``tools.stored_outputs``:
a notebook keeps no widget state, so the quiz keeps its HTML, markdown and plain text (the questions
and choices, never the answers) and drops the widget view, which the cell brings back when it runs.
The quiz cell is the notebook's last code cell: its execution count follows the one before it.
After editing the question bank (``cvae_utils/quizzes/notebook_NN.py``), run this again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tools import stored_outputs
from tools.colab import notebook_paths

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Quiz"
HEADING_ID, CELL_ID = "quiz-heading", "quiz"


class QuizCellError(RuntimeError):
    """A notebook's cells do not let the quiz go where it belongs."""


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def quiz_code(number: int) -> str:
    return f"cu.quiz({number})"


def find(nb: dict, number: int) -> tuple[int | None, int | None, int]:
    """Indices of the ``## Quiz`` cell, of the ``cu.quiz(N)`` cell (None if absent) and of References."""
    cells = nb["cells"]
    refs = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and _source(c).startswith("## References")]
    if len(refs) != 1:
        raise QuizCellError(f"{len(refs)} '## References' cells; the quiz goes before the one References section.")
    heading = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and _source(c).startswith(HEADING)]
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and "cu.quiz(" in _source(c)]
    if len(heading) > 1 or len(code) > 1:
        raise QuizCellError(f"{len(heading)} quiz headings and {len(code)} quiz cells; keep one of each.")
    return (heading or [None])[0], (code or [None])[0], refs[0]


def problems(nb: dict, number: int) -> list[str]:
    """What is wrong with a notebook's quiz cells, as sentences; empty when they are right."""
    try:
        heading, code, refs = find(nb, number)
    except QuizCellError as error:
        return [str(error)]
    if heading is None or code is None:
        return ["no quiz cells: run python -m tools.quiz"]
    found = []
    if not (heading + 1 == code and code + 1 == refs):
        found.append("the '## Quiz' cell and the quiz cell must come right before '## References'")
    if _source(nb["cells"][code]).strip() != quiz_code(number):
        found.append(f"the quiz cell must hold {quiz_code(number)!r}")
    if len(_source(nb["cells"][heading]).split()) > 12:
        found.append("the '## Quiz' cell holds one short sentence at most")
    stored = [o.get("data", {}) for o in nb["cells"][code].get("outputs", [])]
    if stored != [_expected(number)]:
        found.append("its stored output is not the quiz's text as the bank now has it: run python -m tools.quiz")
    return found


def _expected(number: int) -> dict:
    from cvae_utils.quizzes import quiz

    return {mime: _lines(text) for mime, text in quiz(number).static_bundle().items()}


def insert_cells(nb: dict, number: int) -> bool:
    """Add the two quiz cells before References if they are absent; True if the notebook changed."""
    heading, code, refs = find(nb, number)
    if heading is not None and code is not None:
        return False
    if heading is not None or code is not None:
        raise QuizCellError("only one of the two quiz cells is there: delete it, then run python -m tools.quiz")
    nb["cells"][refs:refs] = [
        {"cell_type": "markdown", "id": HEADING_ID, "metadata": {}, "source": _lines(HEADING)},
        {
            "cell_type": "code",
            "execution_count": None,
            "id": CELL_ID,
            "metadata": {},
            "outputs": [],
            "source": _lines(quiz_code(number)),
        },
    ]
    return True


def run_quizzes(numbers: list[int]) -> dict[int, list[dict]]:
    """The outputs of ``cu.quiz(N)`` for each N, run in one fresh python3 kernel on this checkout."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import cvae_utils as cu")]
    nb.cells += [nbformat.v4.new_code_cell(quiz_code(n)) for n in numbers]
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(ROOT)}}).execute()
    return {n: json.loads(json.dumps(cell.outputs)) for n, cell in zip(numbers, nb.cells[1:])}


def store(nb: dict, number: int, outputs: list[dict]) -> None:
    """Give the quiz cell ``outputs`` (cleaned as a committed notebook keeps them) and the next execution count."""
    _, code, _ = find(nb, number)
    later = [c for c in nb["cells"][code + 1 :] if c["cell_type"] == "code"]
    if later:
        raise QuizCellError("the quiz cell must be the notebook's last code cell")
    before = [c["execution_count"] for c in nb["cells"][:code] if c["cell_type"] == "code"]
    count = max(filter(None, before), default=0) + 1
    cell = nb["cells"][code]
    cell["execution_count"], cell["outputs"] = count, outputs
    for output in outputs:
        if output.get("output_type") == "execute_result":
            output["execution_count"] = count
        output["data"] = {m: _lines(v) if isinstance(v, str) else v for m, v in output.get("data", {}).items()}
    stored_outputs.clean({"cells": [cell]})


def _write(path: Path, nb: dict) -> None:
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.quiz", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a quiz cell needs work")
    args = parser.parse_args(argv)
    paths = {int(p.name[:2]): p for p in notebook_paths()}
    notebooks = {n: json.loads(p.read_text(encoding="utf-8")) for n, p in paths.items()}
    if args.check:
        found = [f"{paths[n].name}: {problem}" for n, nb in notebooks.items() for problem in problems(nb, n)]
        print("\n".join(found) or "every quiz cell is in place and up to date", file=sys.stderr if found else None)
        return 1 if found else 0
    n = None
    try:
        for n, nb in notebooks.items():
            insert_cells(nb, n)
        for n, outputs in run_quizzes(sorted(notebooks)).items():
            store(notebooks[n], n, outputs)
    except QuizCellError as error:
        print(f"{paths[n].name}: {error}; nothing was written.", file=sys.stderr)
        return 2
    for n, nb in notebooks.items():
        _write(paths[n], nb)
        print(f"{paths[n].name}: quiz cell stored, execution count {nb['cells'][find(nb, n)[1]]['execution_count']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
