"""Grade a folder of submitted assignment notebooks into one CSV score table.

    python -m tools.grade FOLDER [--out FILE.csv] [--force] [--timeout SECONDS] [--cell-timeout SECONDS] [--jobs N]
    make grade SUBMISSIONS=FOLDER [OUT=FILE.csv] [TIMEOUT=SECONDS]

Every file in FOLDER, and in its subfolders one level deep (one folder per student, as learning
platforms export them), is graded in name order; names starting with "." are skipped. A file that is
not a readable notebook (another extension, invalid JSON, a notebook that fails nbformat's
validation) gets a row with 0 points and the reason. A notebook's session comes from its metadata
(``"cvae_assignment": {"session": N}``, set in ``kit/assignments/session_N.ipynb``), else from a
``session_N`` in its file name.

Each notebook runs in a fresh ``python3`` kernel (nbclient), in a temporary copy of its folder, with
``CVAE_QUICK=1`` and this repository on ``PYTHONPATH``; errors in cells do not stop it. The student's
cells share one time limit (``--timeout``, 120 s by default; ``--cell-timeout`` caps each cell); when
it runs out the running cell is interrupted and the answers defined so far are graded. Then one
injected cell runs the hidden tests (:mod:`tools.grading`) in the same kernel and prints a JSON result
after a random marker, which the student's own output cannot forge. A question earns its points in
proportion to the cases it passes. ``--jobs N`` grades N notebooks at once (each in its own kernel).

The CSV (default ``build/grades/grades-<date>-<time>.csv``, a new file for every run; an existing
``--out`` file is kept unless ``--force``) has one row per file, columns ``file, session, q1, q2, q3,
q4, total, max, status, failures, flags``: the points per question (q4 empty for a three-question
session), ``status`` "ok" or what went wrong (a cell that raised, the time limit, not a notebook),
``failures`` the first failing case of each question with its message, or why it was not graded, and
``flags`` what to check by hand: a submission that still holds the answer key's solution cells.
A summary table is printed as well. The exit code is 0 once every file has a row, whatever the scores;
2 for bad usage (no such folder, an --out file that exists).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "build" / "grades"
SESSIONS = (1, 2, 3, 4, 5, 6)
MAX_QUESTIONS = 4
COLUMNS = [
    "file",
    "session",
    *(f"q{i}" for i in range(1, MAX_QUESTIONS + 1)),
    "total",
    "max",
    "status",
    "failures",
    "flags",
]
# The first line of a solution cell of kit/assignments/session_N.ipynb: a submission that still holds one is
# the repository's answer key (public), not a student's copy from make handouts.
SOLUTION_TITLE = re.compile(r"^#\s*@title Solution to question", re.IGNORECASE)
GRADING_SECONDS = 90  # the injected cell: at most 4 questions of tools.grading.QUESTION_SECONDS each, and a margin
TIMED_OUT = "CvaeGradeTimeLimit"  # the error name of a cell stopped at its time limit
STARTUP_SECONDS = 60  # a kernel that does not start within this is reported, not waited for


@dataclass
class Row:
    """One line of the score table."""

    file: str
    session: int | None = None
    points: list[float] = field(default_factory=list)
    total: float = 0.0
    max: float | None = None
    status: str = "ok"
    failures: str = ""
    flags: str = ""
    seconds: float = 0.0

    def csv_row(self) -> list:
        points = [_number(p) for p in self.points] + [""] * (MAX_QUESTIONS - len(self.points))
        maximum = "" if self.max is None else _number(self.max)
        row = [self.file, self.session or "", *points, _number(self.total), maximum, self.status, self.failures]
        return [*row, self.flags]


def _number(x: float) -> str:
    return f"{x:g}"


# ----------------------------------------------------------------------------------
# Finding and reading the submissions
# ----------------------------------------------------------------------------------


def find_submissions(folder: Path) -> list[Path]:
    """The files of ``folder`` and of its subfolders (one level), sorted; hidden names are skipped."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            found.append(entry)
        elif entry.is_dir():
            found.extend(p for p in sorted(entry.iterdir()) if p.is_file() and not p.name.startswith("."))
    return found


def read_notebook(path: Path):
    """(the notebook, None), or (None, why it cannot be graded)."""
    import nbformat

    if path.suffix.lower() != ".ipynb":
        return None, f"not a notebook: a {path.suffix or 'extensionless'} file (submit the .ipynb file)"
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except nbformat.reader.NotJSONError as err:
        return None, f"not a readable notebook: {_first(err)}"
    except UnicodeDecodeError:
        return None, "not a readable notebook: not UTF-8 text"
    except nbformat.ValidationError as err:
        return None, f"not a valid notebook (nbformat validation): {_first(err)}"
    except Exception as err:  # JSON, but not in the notebook format (nbformat raises many kinds)
        return None, f"not a valid notebook: its JSON is not in the notebook format ({_first(err)})"
    return nb, None


def _first(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:200]


def session_of(nb, path: Path) -> int | None:
    """The assignment's session: its notebook metadata, else ``session_N`` in the file name."""
    meta = nb.metadata.get("cvae_assignment", {})
    session = meta.get("session") if isinstance(meta, dict) else None
    if session in SESSIONS:
        return session
    m = re.search(r"session[ _-]?(\d+)", path.stem, re.IGNORECASE)
    return int(m[1]) if m and int(m[1]) in SESSIONS else None


# ----------------------------------------------------------------------------------
# Running one notebook, and its hidden tests
# ----------------------------------------------------------------------------------


def kernel_env() -> dict[str, str]:
    """The kernel's environment: quick mode, and this repository importable (cvae_utils, tools.grading)."""
    env = dict(os.environ)
    env["CVAE_QUICK"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _first_line(cell) -> str:
    line = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
    return line if len(line) <= 50 else line[:47] + "..."


def _grading_source(session: int, marker: str) -> str:
    return (
        "import json as _cvae_json, sys as _cvae_sys\n"
        "from tools.grading import grade as _cvae_grade\n"
        f"_cvae_sys.stdout.write({marker!r} + _cvae_json.dumps(_cvae_grade({session}, globals())) + '\\n')\n"
        "_cvae_sys.stdout.flush()\n"
    )


@dataclass
class Execution:
    """What running a notebook gave: the hidden tests' result (or None) and what went wrong."""

    result: dict | None = None
    problems: list[str] = field(default_factory=list)  # fatal to the run: the time limit, a dead kernel
    errors: list[str] = field(default_factory=list)  # cells that raised (the run went on)


def _cell_error(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()[:160]
    return None


def _parse_result(cell, marker: str) -> dict | None:
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    lines = [ln[len(marker) :] for ln in text.splitlines() if ln.startswith(marker)]
    return json.loads(lines[-1]) if lines else None


def execute(nb, session: int, workdir: Path, timeout: float, cell_timeout: float) -> Execution:
    """Run the student's cells within ``timeout`` seconds, then the hidden tests, in one fresh kernel."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    marker = f"CVAE-GRADE-{secrets.token_hex(16)}:"
    student_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(_grading_source(session, marker)))
    # imported before the student's code runs, the hidden tests hold the library's own functions as references
    prelude = nbformat.v4.new_code_cell(f"import tools.grading.session_{session}")
    nb.cells.append(prelude)
    timed_out: set[int] = set()

    def on_cell_error(cell, cell_index, execute_reply) -> None:
        if execute_reply["content"].get("ename") == TIMED_OUT:  # the reply nbclient makes up after interrupting
            timed_out.add(cell_index)

    client = NotebookClient(
        nb,
        kernel_name="python3",
        allow_errors=True,
        record_timing=False,
        # at a time limit nbclient interrupts the kernel (KeyboardInterrupt in the cell) and goes on
        interrupt_on_timeout=True,
        error_on_timeout={"ename": TIMED_OUT, "evalue": "time limit", "traceback": []},
        on_cell_error=on_cell_error,
        shutdown_kernel="immediate",
        startup_timeout=STARTUP_SECONDS,
        resources={"metadata": {"path": str(workdir)}},
    )
    run = Execution()
    deadline = time.monotonic() + timeout
    where = "start-up"
    try:
        # the kernel's own stdout/stderr (start-up warnings) are not the notebook's output, which comes over IOPub
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        with client.setup_kernel(env=kernel_env(), cwd=str(workdir), **quiet):
            client.timeout = GRADING_SECONDS
            client.execute_cell(prelude, student_cells + 1, store_history=False)
            if error := _cell_error(prelude):
                run.problems.append(f"the hidden tests could not be loaded: {error}")
                return run
            for index, cell in enumerate(nb.cells[:student_cells]):
                if cell.cell_type != "code":
                    continue
                remaining = deadline - time.monotonic()
                where = f'cell {index + 1} ("{_first_line(cell)}")'
                if remaining < 1:
                    run.problems.append(
                        f"did not finish within {timeout:g} s: stopped before {where}; graded what was defined"
                    )
                    break
                client.timeout = int(min(cell_timeout, remaining))
                client.execute_cell(cell, index)
                if index in timed_out:
                    limit = f"{timeout:g} s" if remaining <= cell_timeout else f"the cell limit of {cell_timeout:g} s"
                    if not (_cell_error(cell) or "").startswith("KeyboardInterrupt"):  # the interrupt did not land
                        run.problems.append(f"did not finish within {limit} at {where} and ignored the interrupt")
                        return run  # the kernel is killed on leaving setup_kernel
                    run.problems.append(f"did not finish within {limit}: stopped at {where}; graded what was defined")
                    break
                if error := _cell_error(cell):
                    run.errors.append(f"{where} raised {error}")
            client.timeout = GRADING_SECONDS
            grading = nb.cells[student_cells]
            where = "the hidden tests"
            client.execute_cell(grading, student_cells)
            if student_cells in timed_out:
                run.problems.append(f"the hidden tests did not finish within {GRADING_SECONDS} s")
                return run
            run.result = _parse_result(grading, marker)
            if run.result is None:
                why = _cell_error(grading) or "no result was printed"
                run.problems.append(f"the hidden tests could not run: {why}")
    except DeadKernelError:
        run.problems.append(f"the kernel died at {where} (the notebook crashed or exited it)")
    except (RuntimeError, TimeoutError) as err:  # the kernel failed to start, or to answer
        run.problems.append(f"the kernel failed at {where}: {_first(err)}")
    return run


# ----------------------------------------------------------------------------------
# One file, one row
# ----------------------------------------------------------------------------------


def _status(run: Execution) -> str:
    parts = list(run.problems)
    if run.errors:
        more = f" (and {len(run.errors) - 1} more)" if len(run.errors) > 1 else ""
        parts.append(f"{run.errors[0]}{more}")
    return "; ".join(parts) or "ok"


def solution_flags(nb) -> str:
    """What the lecturer should look at before trusting a score: the key's solution cells left in a submission."""
    cells = [
        c
        for c in nb.cells
        if "solution" in c.get("metadata", {}).get("tags", []) or SOLUTION_TITLE.match(c.get("source", ""))
    ]
    if not cells:
        return ""
    return (
        f"holds {len(cells)} solution cell{'s' if len(cells) > 1 else ''} of the repository's answer key "
        "(tag 'solution' or '# @title Solution to question'): a copy of the key, not of the student handout"
    )


def grade_file(path: Path, folder: Path, timeout: float, cell_timeout: float) -> Row:
    """The row of one submission; never raises for a bad submission."""
    start = time.monotonic()
    row = Row(file=str(path.relative_to(folder)))
    nb, reason = read_notebook(path)
    if nb is not None:
        row.session = session_of(nb, path)
        row.flags = solution_flags(nb)
        if row.session is None:
            reason = (
                "could not tell which assignment this is: no cvae_assignment metadata and no session_N "
                "in the file name (submit the assignment notebook you were given, not a copy of a lecture notebook)"
            )
    if reason:
        row.status = reason
        row.seconds = time.monotonic() - start
        return row
    with tempfile.TemporaryDirectory(prefix="cvae-grade-") as tmp:
        workdir = Path(tmp)
        shutil.copy2(path, workdir / path.name)  # the kernel's working folder: a copy, never the submission
        try:
            run = execute(nb, row.session, workdir, timeout, cell_timeout)
        except Exception as err:  # never stop the whole run on one file: report it in its row
            run = Execution(problems=[f"the grader failed on this file: {type(err).__name__}: {_first(err)}"])
    row.status = _status(run)
    if run.result:
        questions = run.result["questions"]
        row.points = [q["points"] for q in questions]
        row.total, row.max = run.result["total"], run.result["max"]
        row.failures = " | ".join(f"q{q['number']}: {q['failure']}" for q in questions if q["failure"])
    else:
        row.max = _max_points(row.session)
        row.failures = "not graded: " + row.status
    row.seconds = time.monotonic() - start
    return row


def _max_points(session: int) -> float:
    import importlib

    return sum(q.points for q in importlib.import_module(f"tools.grading.session_{session}").QUESTIONS)


# ----------------------------------------------------------------------------------
# The table: CSV and summary
# ----------------------------------------------------------------------------------


def default_out() -> Path:
    """A new file for every run: build/grades/grades-<date>-<time>.csv (a suffix if that exists)."""
    stem = time.strftime("grades-%Y%m%d-%H%M%S")
    out, n = OUT_DIR / f"{stem}.csv", 2
    while out.exists():
        out, n = OUT_DIR / f"{stem}-{n}.csv", n + 1
    return out


def write_csv(rows: list[Row], out: Path) -> None:
    from cvae_utils.files import atomic_write

    with atomic_write(out, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(r.csv_row() for r in rows)


def summary(rows: list[Row]) -> str:
    """The score table as text, one line per file."""
    width = max([len("file"), *(len(r.file) for r in rows)])
    head = f"{'file':<{width}}  ses  {'  '.join(f'q{i:<4}' for i in range(1, MAX_QUESTIONS + 1))}  total   time  status"
    lines = [head, "-" * len(head)]
    for r in rows:
        points = [f"{_number(p):<5}" for p in r.points] + ["-    "] * (MAX_QUESTIONS - len(r.points))
        total = f"{_number(r.total)}/{_number(r.max)}" if r.max is not None else "0"
        status = r.status if len(r.status) <= 70 else r.status[:67] + "..."
        lines.append(
            f"{r.file:<{width}}  {r.session or '-':<3}  {'  '.join(points)}  {total:<6} {r.seconds:5.1f}s  {status}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.grade",
        description="Grade the assignment notebooks in FOLDER (and its subfolders) into one CSV score table.",
    )
    parser.add_argument("folder", type=Path, help="a folder of submitted .ipynb files (subfolders one level deep too)")
    parser.add_argument("--out", type=Path, help="the CSV to write (default: build/grades/grades-<date>-<time>.csv)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for a notebook's cells (default 120)")
    parser.add_argument("--cell-timeout", type=float, default=None, help="seconds for one cell (default: --timeout)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="notebooks graded at once, each in its own kernel (default 1)"
    )
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        what = "is not a folder" if args.folder.exists() else "does not exist"
        parser.error(f"{args.folder} {what}: give the folder that holds the submitted notebooks.")
    if args.out is not None and args.out.exists() and not args.force:
        parser.error(f"{args.out} exists: pass --force to overwrite it, or choose another --out.")
    if args.timeout <= 0 or (args.cell_timeout is not None and args.cell_timeout <= 0):
        parser.error("--timeout and --cell-timeout are numbers of seconds, greater than 0.")
    if args.jobs < 1:
        parser.error("--jobs is a number of notebooks graded at once: 1 or more.")
    return args


def _graded(files: list[Path], folder: Path, timeout: float, cell_timeout: float, jobs: int) -> Iterator[Row]:
    """The rows of ``files`` in order; with ``jobs`` > 1 graded in that many worker processes at once."""
    if jobs == 1:
        yield from (grade_file(path, folder, timeout, cell_timeout) for path in files)
        return
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker: no forked torch state
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(grade_file, path, folder, timeout, cell_timeout) for path in files]
        yield from (future.result() for future in futures)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.folder.resolve()
    out = args.out or default_out()
    files = find_submissions(folder)
    print(f"grading {len(files)} file(s) in {folder} (notebook time limit {args.timeout:g} s)", flush=True)
    rows = []
    for row in _graded(files, folder, args.timeout, args.cell_timeout or args.timeout, args.jobs):
        score = f"{_number(row.total)}/{_number(row.max)}" if row.max is not None else "0 points"
        print(f"  {row.file}: {score} in {row.seconds:.1f} s, {row.status}", flush=True)
        rows.append(row)
    write_csv(rows, out)
    print()
    print(summary(rows))
    print(f"\nwrote {out} ({len(rows)} row(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
