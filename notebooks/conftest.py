"""Report how long each notebook took under nbval (the test run prints a table at the end)."""

from collections import defaultdict

_seconds: dict[str, float] = defaultdict(float)
_cells: dict[str, int] = defaultdict(int)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration
        if report.when == "call":
            _cells[path] += 1


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    tr = terminalreporter
    tr.section("notebook run times")
    for path in sorted(_seconds):
        tr.write_line(f"{_seconds[path]:8.1f} s  {_cells[path]:3d} cells  {path}")
    tr.write_line(f"{sum(_seconds.values()):8.1f} s  all {len(_seconds)} notebooks")
