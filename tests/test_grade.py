"""The graded assignments (kit/assignments/session_N.ipynb) and their grader (python -m tools.grade).

One grader run, shared by the tests below, grades a folder built from the real assignment notebooks: the six
lecturer's keys (full marks: the keys are right), the six student versions (solution cells removed: they run top
to bottom without an error and score 0, "not answered"), a wrong submission, one that raises, one that never
finishes, and files that are not notebooks. Everything else runs without a kernel.
"""

from __future__ import annotations

import copy
import csv
import importlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

import cvae_utils as cu
from cvae_utils.exercises.selfcheck import FORM_NOT_YET, FORM_OK, check_form
from tools import grade as grader
from tools.grading import grade
from tools.grading import session_1 as s1
from tools.grading import session_2 as s2
from tools.grading import session_5 as s5
from tools.grading import session_6 as s6

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ROOT / "kit" / "assignments"
SESSIONS = range(1, 7)
TIMEOUT = 20  # the grader's notebook time limit in the shared run: the keys take about 5 s each


def _key(n: int):
    return nbformat.read(ASSIGNMENTS / f"session_{n}.ipynb", as_version=4)


def _is_solution(cell) -> bool:
    return "solution" in cell.metadata.get("tags", [])


def _student_version(nb):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not _is_solution(c)]
    return nb


def _solution(nb, question: int):
    return next(
        c for c in nb.cells if _is_solution(c) and c.source.startswith(f"# @title Solution to question {question}")
    )


# ----------------------------------------------------------------------------------
# The assignment notebooks themselves
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", SESSIONS)
def test_each_assignment_follows_the_conventions(n):
    nb = _key(n)
    nbformat.validate(nb)
    meta = nb.metadata["cvae_assignment"]
    questions = importlib.import_module(f"tools.grading.session_{n}").QUESTIONS
    assert meta["session"] == n and meta["answers"] == [q.name for q in questions]
    assert sum(q.points for q in questions) == meta["points"] == 10 and 3 <= len(questions) <= 4
    first = nb.cells[0].source
    assert first.startswith(f"# Assignment {n}:") and "Covers" in first
    instructions = nb.cells[1].source
    assert "## Instructions" in instructions and ".ipynb" in instructions and "names" in instructions
    for q in questions:
        i = q.number
        head = next(k for k, c in enumerate(nb.cells) if c.source.startswith(f"## Question {i} ("))
        statement, stub, check, solution = nb.cells[head : head + 4]
        assert statement.cell_type == "markdown" and f"({q.points:g} point" in statement.source
        assert "# your code here" in stub.source and q.name in stub.source and not _is_solution(stub)
        assert ("return None" in stub.source) != q.value and (f"{q.name} = None" in stub.source) == q.value
        assert "check_form(" in check.source and not _is_solution(check)
        assert solution.metadata == {"tags": ["solution"], "jupyter": {"source_hidden": True}, "cellView": "form"}
        assert solution.source.startswith(f"# @title Solution to question {i}\n")
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "the keys store no outputs"


def test_the_questions_are_not_the_notebooks_exercises():
    """Every answer name is new: no notebook of the series defines it (their solutions are in students' hands)."""
    sources = "".join(p.read_text() for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    for n in SESSIONS:
        for name in _key(n).metadata["cvae_assignment"]["answers"]:
            assert f"def {name}(" not in sources and f"{name} =" not in sources, name


# ----------------------------------------------------------------------------------
# The hidden tests, in this process (no kernel)
# ----------------------------------------------------------------------------------


def test_typical_mistakes_get_partial_points_and_a_hint():
    def kl_from_std(mu_q, std_q, mu_p, std_p):  # log(std) taken for the log-variance (and std for the variance)
        return 0.5 * (std_p.log() - std_q.log() + (std_q + (mu_q - mu_p) ** 2) / std_p - 1).sum(dim=1)

    def jensen_gap_estimate(log_w):  # exp overflows at +800, underflows at -1000
        return torch.log(torch.exp(log_w).mean(0)) - log_w.mean(0)

    result = grade(1, {"kl_from_std": kl_from_std, "jensen_gap_estimate": jensen_gap_estimate, "jensen_gap": -0.3466})
    q1, q2, q3 = result["questions"]
    assert 0 < q1["points"] < 4 and "first failure" in q1["failure"] and "half the log-variance" in q1["failure"]
    assert 0 < q2["points"] < 3 and "logsumexp" in q2["failure"] and "near" in q2["failure"]
    assert q3["points"] == 0 and "never negative" in q3["failure"]
    assert result["total"] == round(q1["points"] + q2["points"], 2) and result["max"] == 10


def test_a_refused_library_call_fails_its_question_only():
    namespace = {
        "reparameterize_full": s2.reparameterize_full,
        "log_q_of_z": lambda z, mu, logvar: cu.gaussian_log_density(z, mu, logvar),
        "score_function_gradient": s2.score_function_gradient,
    }
    result = grade(2, namespace)
    assert [q["points"] for q in result["questions"]] == [4, 0, 3]
    assert "without cu.gaussian_log_density" in result["questions"][1]["failure"]
    assert cu.gaussian_log_density is cu.losses.gaussian_log_density  # restored afterwards
    x = torch.randn(2, 3)
    assert torch.equal(cu.gaussian_log_density(x, x, x), cu.losses.gaussian_log_density(x, x, x))


def test_a_function_that_never_returns_fails_alone(monkeypatch):
    import tools.grading as grading

    monkeypatch.setattr(grading, "QUESTION_SECONDS", 1)

    def cyclical_kl_weight(step, steps_per_cycle, ramp_fraction):
        while True:
            pass

    namespace = {"cyclical_kl_weight": cyclical_kl_weight, "effective_sample_size": s5.effective_sample_size}
    result = grade(5, namespace)
    q1, q2, q3 = result["questions"]
    assert q1["points"] == 0 and "did not finish within 1 s" in q1["failure"]
    assert q2["points"] == 3 and q3["failure"] == "not answered: no `transfer_by_hand` is defined (do not rename it)"


def test_the_reference_values_are_recomputed():
    assert math.isclose(s1.exact_jensen_gap(), 0.5 * math.log(2), rel_tol=1e-12)  # KL(q || posterior) in closed form
    assert math.isclose(s6.uniform_nll(), 392 * math.log(2))
    assert s5.cyclical_kl_weight(2, 10, 0.25) == pytest.approx(0.8)


# ----------------------------------------------------------------------------------
# The self-check that students run
# ----------------------------------------------------------------------------------


def test_the_self_check_says_form_not_grade():
    ok = check_form(lambda t: t.sum(1), torch.ones(4, 3), shape=(4,), dtype=torch.float32)
    assert ok and ok.message.startswith(FORM_OK) and "not the values" in ok.message
    assert not check_form(lambda t: None, torch.ones(2)) and "not answered yet" in str(check_form(lambda t: None, 1))
    wrong_shape = check_form(lambda t: t, torch.ones(4, 3), shape=(4,))
    assert not wrong_shape and "shape (4, 3), not (4,)" in wrong_shape.message
    raised = check_form(lambda t: 1 / 0, 1)
    assert not raised and raised.message.startswith(FORM_NOT_YET) and "ZeroDivisionError" in raised.message
    assert check_form(0.35, number=True, name="gap") and not check_form(None, number=True)
    assert not check_form(torch.ones(3), number=True)


# ----------------------------------------------------------------------------------
# The grader's command line, without a kernel
# ----------------------------------------------------------------------------------


def test_bad_usage_is_a_clear_error_and_no_file_is_overwritten(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        grader.main([str(tmp_path / "missing")])
    assert stop.value.code == 2 and "does not exist: give the folder" in capsys.readouterr().err
    out = tmp_path / "grades.csv"
    out.write_text("keep me")
    with pytest.raises(SystemExit) as stop:
        grader.main([str(tmp_path), "--out", str(out)])
    assert stop.value.code == 2 and "pass --force" in capsys.readouterr().err and out.read_text() == "keep me"


def test_files_that_are_not_notebooks_get_a_row_and_a_reason(tmp_path):
    (tmp_path / "junk.ipynb").write_text("this is not JSON")
    (tmp_path / "answers.txt").write_text("print(1)")
    cell = {"cell_type": "poem", "source": "", "metadata": {}, "id": "a"}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "cells": [cell], "metadata": {}}
    (tmp_path / "schema.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    nb = nbformat.read(ROOT / "notebooks" / "01_the_elbo.ipynb", as_version=4)
    nbformat.write(nb, tmp_path / "lecture.ipynb")
    (tmp_path / ".hidden.ipynb").write_text("skipped")
    out = tmp_path / "out" / "grades.csv"
    assert grader.main([str(tmp_path), "--out", str(out)]) == 0
    rows = {r["file"]: r for r in csv.DictReader(out.open())}
    assert sorted(rows) == ["answers.txt", "junk.ipynb", "lecture.ipynb", "list.ipynb", "schema.ipynb"]
    assert rows["answers.txt"]["status"].startswith("not a notebook: a .txt file")
    assert rows["junk.ipynb"]["status"].startswith("not a readable notebook")
    assert rows["schema.ipynb"]["status"].startswith("not a valid notebook (nbformat validation)")
    assert rows["list.ipynb"]["status"].startswith("not a valid notebook: its JSON is not in the notebook format")
    assert rows["lecture.ipynb"]["status"].startswith("could not tell which assignment")
    assert all(r["total"] == "0" for r in rows.values())


# ----------------------------------------------------------------------------------
# One grader run over real submissions, in fresh kernels
# ----------------------------------------------------------------------------------


def _write(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    for n in SESSIONS:  # the keys, one in a student's subfolder
        _write(_key(n), folder / ("alice" if n == 6 else "") / f"key_session_{n}.ipynb")
        _write(_student_version(_key(n)), folder / f"stub_session_{n}.ipynb")

    wrong = _key(2)  # question 1: eps @ L (L transposed); question 3: divided by sigma, not sigma^2
    _solution(wrong, 1).source = _solution(wrong, 1).source.replace(
        'torch.einsum("bij,bj->bi", scale_tril, eps)', "(eps.unsqueeze(1) @ scale_tril).squeeze(1)"
    )
    _solution(wrong, 3).source = _solution(wrong, 3).source.replace("torch.exp(-logvar)", "torch.exp(-0.5 * logvar)")
    _write(wrong, folder / "wrong.ipynb")  # no session in the name: the metadata says it

    raising = _key(4)
    raising.cells.insert(5, nbformat.v4.new_code_cell('raise RuntimeError("a stray cell")'))
    _solution(raising, 2).source += "\n\ndef monte_carlo_kl(*args):\n    raise ValueError('not today')\n"
    _write(raising, folder / "raising_session_4.ipynb")

    endless = _key(1)
    endless.cells.insert(
        endless.cells.index(_solution(endless, 2)) + 1, nbformat.v4.new_code_cell("while True:\n    pass")
    )
    _write(endless, folder / "endless_session_1.ipynb")

    (folder / "junk.ipynb").write_text("{ not json")
    (folder / "notes.txt").write_text("see attached")

    out = folder.parent / "grades.csv"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tools.grade", str(folder), "--out", str(out), "--timeout", str(TIMEOUT), "--jobs", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {"rows": {r["file"]: r for r in rows}, "order": [r["file"] for r in rows], "stdout": proc.stdout,
            "header": out.read_text().splitlines()[0], "seconds": seconds}  # fmt: skip


def test_one_csv_with_one_row_per_file_in_name_order(graded):
    assert graded["header"] == "file,session,q1,q2,q3,q4,total,max,status,failures,flags"
    expected = (
        [f"key_session_{n}.ipynb" for n in range(1, 6)]
        + ["alice/key_session_6.ipynb"]
        + [f"stub_session_{n}.ipynb" for n in SESSIONS]
        + ["wrong.ipynb", "raising_session_4.ipynb", "endless_session_1.ipynb", "junk.ipynb", "notes.txt"]
    )
    assert graded["order"] == sorted(expected)  # the files in name order, a subfolder's where its name sorts
    for name in graded["rows"]:
        assert name in graded["stdout"]  # the summary table lists every file
    print(f"grader run over {len(expected)} files: {graded['seconds']:.1f} s")


@pytest.mark.parametrize("n", SESSIONS)
def test_every_key_gets_full_marks(graded, n):
    row = graded["rows"][f"{'alice/' if n == 6 else ''}key_session_{n}.ipynb"]
    assert (row["session"], row["status"], row["failures"]) == (str(n), "ok", "")
    assert row["total"] == row["max"] == "10"
    # the repository's notebook is the answer key, public: its solution cells are flagged for the lecturer
    assert row["flags"].startswith("holds ") and "solution cell" in row["flags"]


@pytest.mark.parametrize("n", SESSIONS)
def test_every_student_version_runs_top_to_bottom_and_scores_zero(graded, n):
    row = graded["rows"][f"stub_session_{n}.ipynb"]
    assert row["status"] == "ok", row["status"]  # no cell raised
    assert row["total"] == "0" and row["max"] == "10" and row["flags"] == ""  # a handout copy: nothing to flag
    failures = row["failures"].split(" | ")
    assert len(failures) == len(_key(n).metadata["cvae_assignment"]["answers"])
    assert all("not answered" in f for f in failures), failures


def test_a_wrong_submission_gets_partial_points_and_names_the_question(graded):
    row = graded["rows"]["wrong.ipynb"]
    assert row["session"] == "2" and row["status"] == "ok"
    assert float(row["q1"]) < 4 and row["q2"] == "3" and float(row["q3"]) < 3 and 0 < float(row["total"]) < 10
    assert "q1: " in row["failures"] and "transposed" in row["failures"]
    assert "q3: " in row["failures"] and "divide by the variance" in row["failures"]


def test_errors_in_cells_and_functions_leave_the_other_questions_graded(graded):
    row = graded["rows"]["raising_session_4.ipynb"]
    assert "raised RuntimeError: a stray cell" in row["status"]
    assert (row["q1"], row["q2"], row["q3"]) == ("4", "0", "3")
    assert "q2: " in row["failures"] and "ValueError: not today" in row["failures"]


def test_a_notebook_that_never_finishes_is_stopped_and_what_it_defined_is_graded(graded):
    row = graded["rows"]["endless_session_1.ipynb"]
    assert f"did not finish within {TIMEOUT} s" in row["status"] and "while True:" in row["status"]
    assert (row["q1"], row["q2"], row["q3"]) == ("4", "3", "0")
    assert "q3: not answered" in row["failures"]


def test_non_notebooks_in_the_run_get_zero_and_a_reason(graded):
    assert graded["rows"]["junk.ipynb"]["status"].startswith("not a readable notebook")
    assert graded["rows"]["notes.txt"]["status"].startswith("not a notebook")
    assert graded["rows"]["notes.txt"]["total"] == "0"
