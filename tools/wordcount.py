"""How much prose a notebook asks a student to read on its main path.

    python -m tools.wordcount                      # every numbered notebook: main path, optional, total
    python -m tools.wordcount notebooks/05_training.ipynb

The **main path** is every markdown cell that is not tagged ``optional``, the References
section included. A word is a run of letters or digits (``\\w+``): "p(z|x)" is three words,
"2,500" two, "don't" two, and a formula (``$...$`` or ``$$...$$``) counts as one word
however it is written, so a line of maths does not outweigh the prose around it. Optional cells
(tagged ``optional`` in their cell metadata) hold the depth a first reading may skip;
each run of them opens with a markdown cell whose first line is a heading that starts
with "Optional:" (``### Optional: ...``), so the reader knows before reading it.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

MAIN_PATH_LIMIT = 2500  # issue 13: words of prose on each numbered notebook's main path
OPTIONAL_TAG = "optional"
OPTIONAL_HEADING = re.compile(r"^#{2,4} Optional: \S")


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def is_optional(cell: dict) -> bool:
    return OPTIONAL_TAG in cell.get("metadata", {}).get("tags", [])


FORMULA = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.DOTALL)
WORD = re.compile(r"\w+")


def words_in(text: str) -> int:
    """The words of a markdown text: runs of letters or digits, each formula one word."""
    return len(WORD.findall(FORMULA.sub(" formula ", text)))


def count(nb: dict) -> dict:
    """``{"main": words, "optional": words}`` of a notebook's markdown cells."""
    words = {"main": 0, "optional": 0}
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            words["optional" if is_optional(cell) else "main"] += words_in(_source(cell))
    return words


def optional_runs_without_heading(nb: dict) -> list[int]:
    """Indices of cells that open a run of optional cells without an "Optional:" heading."""
    bad, previous_optional = [], False
    for i, cell in enumerate(nb["cells"]):
        optional = is_optional(cell)
        if optional and not previous_optional:
            first_line = _source(cell).lstrip().splitlines()[0] if _source(cell).strip() else ""
            if cell["cell_type"] != "markdown" or not OPTIONAL_HEADING.match(first_line):
                bad.append(i)
        previous_optional = optional
    return bad


def main(argv: list[str] | None = None) -> int:
    from tools.colab import notebook_paths

    parser = argparse.ArgumentParser(prog="python -m tools.wordcount", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or notebook_paths()
    print(f"{'notebook':36s}{'main path':>10s}{'optional':>10s}{'total':>8s}")
    for path in paths:
        words = count(json.loads(Path(path).read_text(encoding="utf-8")))
        flag = "" if words["main"] <= MAIN_PATH_LIMIT else f"  (over {MAIN_PATH_LIMIT:,d})"
        print(f"{Path(path).name:36s}{words['main']:10,d}{words['optional']:10,d}{sum(words.values()):8,d}{flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
