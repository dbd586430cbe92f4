"""Notebook 6's conditional sampler alone, as a page without code, for a lecturer to show in class.

Serves ``kit/demo/sampler.ipynb`` with Voilà on 127.0.0.1: the page shows the notebook's title and
text and the sampler widget (``cu.sampler_widget``: digit buttons, latent sliders, temperature, seed,
resample), never its code. Each visit starts a kernel that loads the shipped ``label_cvae`` and draws
the widget (a few seconds on a laptop's CPU); closing the page shuts that kernel down.

    python -m tools.demo                 # make demo: a free port; prints the URL to open
    python -m tools.demo --open          # ... and opens it in the system's browser
    python -m tools.demo --port 8866     # a fixed port (an error if it is taken)
    python -m tools.demo --verbose       # Voilà's log in this terminal, tracebacks on the page

It runs until Ctrl-C. Nothing on the page comes from the network: the template
``kit/demo/voila/templates/cvae-demo`` is Voilà's lab template without its CDN links (Voilà bundles
the fonts it needs), so the demo works offline. Voilà's log goes to ``build/demo/voila.log``; a cell
that fails shows a one-line message on the page and its traceback in that log.

:func:`start_demo` and :func:`stop_demo` are what ``tests/test_demo.py`` starts and stops.
Needs Voilà: ``make env`` installs it (the ``kit`` extra of pyproject.toml).
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "kit" / "demo"
NOTEBOOK = DEMO_DIR / "sampler.ipynb"
TEMPLATE = "cvae-demo"  # kit/demo/voila/templates/cvae-demo, found through JUPYTER_PATH=kit/demo
LOG = ROOT / "build" / "demo" / "voila.log"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60  # the server answering on its port (about 2 s here)
POLL_S = 0.25

INSTALL_VOILA = 'make env  (it installs the kit extra; or: pip install -e ".[kit]")'


class DemoError(RuntimeError):
    """The demo server could not start (the message says why and what to do)."""


@dataclass
class Demo:
    """A running Voilà server: its process, port, token and log file."""

    process: subprocess.Popen
    port: int
    token: str
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The page to open (the token lets the browser in; keep it out of slides and screenshots)."""
        return f"{self.base}/?token={self.token}"

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


# ------------------------------------------------------------------------------------------
# Checks before starting
# ------------------------------------------------------------------------------------------


def voila_missing() -> str | None:
    """Why Voilà cannot run in this Python, with what to do; None when it can."""
    if importlib.util.find_spec("voila") is None:
        return f"Voilà is not installed in this Python ({sys.executable}). Install it with: {INSTALL_VOILA}"
    return None


def port_problem(port: int) -> str | None:
    """Why ``port`` on 127.0.0.1 cannot be used, with what to do; None when it is free."""
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {HOST} is already in use (another demo or Jupyter server?): stop it, "
                    "choose another port with --port, or leave --port out to get a free one."
                )
            return f"cannot listen on port {port} of {HOST} ({error.strerror}): choose a port above 1023 with --port."
    return None


def free_port() -> int:
    """A port on 127.0.0.1 that is free now (the operating system's choice)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------
# The server
# ------------------------------------------------------------------------------------------


def voila_command(port: int, token: str, *, verbose: bool = False) -> list[str]:
    """The Voilà command line of the demo (run from the repository root)."""
    command = [
        sys.executable,
        "-m",
        "voila",
        str(NOTEBOOK.relative_to(ROOT)),
        "--no-browser",  # tools.demo opens it (--open), once the server answers
        f"--Voila.ip={HOST}",  # this machine only
        f"--port={port}",
        "--Voila.port_retries=0",  # the port asked for, or an error (never a neighbour silently)
        f"--token={token}",  # the kernel runs code: only a browser given the URL may connect
        f"--template={TEMPLATE}",  # Voilà's lab template without CDN links
        "--theme=light",
        "--strip_sources=True",  # no code on the page (Voilà's default, stated)
        "--preheat_kernel=False",  # one kernel per visit, started when the page is opened
        f"--show_tracebacks={verbose}",  # off: errors and stderr (warnings) stay off the page
        f"--Voila.log_level={'INFO' if verbose else 'WARN'}",
    ]
    if not verbose:  # what the page says under a failed cell, instead of Voilà's advice to rerun it with flags
        command.append(
            "--VoilaExecutor.cell_error_instruction=Its traceback is in the demo's log "
            "(the terminal that runs the demo names it); `python -m tools.demo --verbose` shows it here."
        )
    return command


def demo_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment (its kernels inherit it): ours plus ``env``; the template and this checkout first."""
    merged = {**os.environ, **(env or {})}
    # kit/demo is a Jupyter data directory: Voilà looks for templates in <dir>/voila/templates
    merged["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(DEMO_DIR), merged.get("JUPYTER_PATH")]))
    # the kernel imports this checkout's cvae_utils (and data/), whatever else is installed
    merged["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), merged.get("PYTHONPATH")]))
    return merged


def start_demo(
    port: int | None = None,
    *,
    log: Path = LOG,
    env: dict[str, str] | None = None,
    verbose: bool = False,
    timeout: float = START_TIMEOUT_S,
) -> Demo:
    """Start Voilà serving the sampler on 127.0.0.1 (a free port unless ``port``); return once it answers.

    ``env`` adds to the server's environment (so to its kernels', e.g. ``CVAE_QUICK=1``). Voilà's
    output goes to ``log``, or to this terminal with ``verbose``. Raises :class:`DemoError`
    with what to do when Voilà is missing, the port is taken or the server does not answer within
    ``timeout`` seconds (the server is then stopped).
    """
    for problem in (voila_missing(), port_problem(port) if port is not None else None):
        if problem:
            raise DemoError(problem)
    if not NOTEBOOK.is_file():
        raise DemoError(f"{NOTEBOOK} is missing: restore it from the repository (git checkout -- kit/demo).")
    port = free_port() if port is None else port
    token = secrets.token_hex(16)
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            voila_command(port, token, verbose=verbose),
            cwd=ROOT,
            env=demo_environment(env),
            stdout=None if verbose else log_file,
            stderr=None if verbose else subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches tools.demo only, which then stops Voilà and its kernels
        )
    demo = Demo(process, port, token, log)
    try:
        _wait_until_answering(demo, timeout)
    except BaseException:
        stop_demo(demo)
        raise
    return demo


def answers(port: int) -> bool:
    """Whether something accepts connections on ``port`` of 127.0.0.1."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def _wait_until_answering(demo: Demo, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not answers(demo.port):
        if demo.process.poll() is not None:
            raise DemoError(f"Voilà exited with code {demo.process.returncode} before answering:\n{demo.log_tail()}")
        if time.monotonic() > deadline:
            raise DemoError(f"Voilà did not answer on port {demo.port} within {timeout:.0f} s:\n{demo.log_tail()}")
        time.sleep(POLL_S)


def stop_demo(demo: Demo, timeout: float = 20) -> None:
    """Stop Voilà: SIGTERM (it shuts its kernels down); SIGKILL if it hangs or on a second Ctrl-C.

    A kernel whose Voilà was killed exits by itself (ipykernel watches its parent process).
    """
    if demo.process.poll() is not None:
        return
    demo.process.terminate()
    try:
        demo.process.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        try:
            os.killpg(demo.process.pid, signal.SIGKILL)  # Voilà's own session (start_new_session)
        except ProcessLookupError:
            pass
        demo.process.wait(timeout=timeout)


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1 to 65535)")
    return port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo",
        description="Serve notebook 6's conditional sampler alone, as a page without code (Voilà, 127.0.0.1).",
    )
    parser.add_argument("--port", type=_port, help="the port to serve on (default: a free one)")
    parser.add_argument("--open", action="store_true", help="open the page in the system's browser")
    parser.add_argument("--log", type=Path, default=LOG, help=f"Voilà's log file (default: {LOG.relative_to(ROOT)})")
    parser.add_argument(
        "--verbose", action="store_true", help="Voilà's log in this terminal, and tracebacks of errors on the page"
    )
    return parser.parse_args(argv)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(args: argparse.Namespace) -> int:
    """Start the demo, print its URL, open it if asked, and keep it running until Ctrl-C (or SIGTERM)."""
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # `kill` stops Voilà too, as Ctrl-C does
    try:
        return _serve(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        demo = start_demo(args.port, log=args.log, verbose=args.verbose)  # stops Voilà itself if interrupted
    except DemoError as error:
        print(f"make demo: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopped before the demo was up.", file=sys.stderr)
        return 130
    try:
        print(f"The sampler demo is up ({time.monotonic() - started:.1f} s). Open this page:\n\n    {demo.url}\n")
        print("It shows the widget a few seconds after it opens (its kernel loads the model).")
        print("Voilà's log follows." if args.verbose else f"Voilà's log: {demo.log}")
        print("Press Ctrl-C to stop.", flush=True)
        if args.open and not webbrowser.open(demo.url):
            print("No browser could be opened here: copy the URL above into one.", file=sys.stderr, flush=True)
        code = demo.process.wait()
        print(f"make demo: Voilà stopped by itself (exit code {code}):\n{demo.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping the demo ...", flush=True)
        return 0
    finally:
        stop_demo(demo)


def main(argv: list[str] | None = None) -> int:
    return serve(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
