"""Where the quadrant CVAE's lead over pyro's comes from: an ablation at seed 0 (notebook 7).

    python -m cvae_utils.experiments.quadrant_ablation            # writes data/quadrants/ablation.json and .md
    python -m cvae_utils.experiments.quadrant_ablation --resume   # keeps the runs already in ablation.json

The shipped CVAE differs from pyro's example in more than one way: its generation network
reads the baseline-filled x_hat as well as z, its networks are 256-256 wide (pyro's 500-500),
its z has 32 dimensions (pyro's 200), its batches 256 images (pyro's 128), and it trains on
50,000 images with 10,000 held out (pyro trains on 60,000 and stops early on the test set).
Two runs, each with the main experiment's protocol (seed 0, early stopping with patience 3 on
the held-out images, scored by :func:`~cvae_utils.quadrants.test_figures` on the 10,000 test
images), take those differences apart:

* ``z_only``: our CVAE (256-256, z = 32, batch 256) with the generation network on z alone,
  for 1, 2 and 3 observed quadrants, on the shipped seed-0 baselines;
* ``pyro_sizes``: 1 observed quadrant at pyro's sizes (500-500, z = 200, batch 128, the
  generation network on z alone), with its own 500-500 baseline, trained first.

They are set beside the shipped seed-0 figures (``results.json``) and pyro's published ones.
The ablation's weights are not kept. In quick mode (``CVAE_QUICK=1``) every run shrinks as
:func:`~cvae_utils.quadrants.quick_settings` does, and nothing is written unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..config import quick_mode
from ..files import atomic_write
from ..quadrants import COLUMNS, QUADRANTS_DIR, Settings, load_quadrant_model, quick_settings, task_batches
from ..utils import get_device, tune_cpu_allocator
from .quadrant_tables import estimator, table_row
from .quadrants import load_results, train_model

# (name, observed quadrants, what changes from the main experiment's settings, whether it trains its own baseline)
RUNS = (
    ("z_only", 1, {"generation_input": "z"}, False),
    ("z_only", 2, {"generation_input": "z"}, False),
    ("z_only", 3, {"generation_input": "z"}, False),
    ("pyro_sizes", 1, {"generation_input": "z", "hidden_dims": (500, 500), "z_dim": 200, "batch_size": 128}, True),
)
SEED = 0
FIGURES = ("epochs", "best_epoch", "train_seconds", "seconds_per_epoch", "nll", "neg_elbo")


def run_key(name: str, num_observed: int) -> str:
    return f"{name}_q{num_observed}"


def run_settings(changes: dict, quick: bool) -> Settings:
    return replace(quick_settings() if quick else Settings(), **changes)


def ablation_run(name: str, num_observed: int, settings: Settings, own_baseline: bool, device, log=print) -> dict:
    """Train one ablation run (its own baseline first, or the shipped seed-0 one) and score it."""
    batches = task_batches(num_observed, settings, device, SEED)
    start = time.perf_counter()
    record = {"name": name, "num_observed": num_observed, "settings": json.loads(json.dumps(asdict(settings)))}
    if own_baseline:
        out = train_model("baseline", num_observed, SEED, settings, batches, device, None, log)
        baseline = out.pop("model")
        record["baseline"] = {k: out[k] for k in FIGURES}
    else:
        baseline = load_quadrant_model("baseline", num_observed, device)
        record["baseline"] = "shipped"
    out = train_model("cvae", num_observed, SEED, settings, batches, device, baseline, log)
    record["cvae"] = {k: out[k] for k in FIGURES}
    record["seconds"] = time.perf_counter() - start
    return record


def shipped_figures(results: dict) -> dict:
    """The shipped seed-0 baseline and CVAE of each column, as ``results.json`` records them."""
    i = results["seeds"].index(SEED)
    return {
        q: {kind: {m: col[kind][m]["values"][i] for m in ("nll", "neg_elbo")} for kind in ("baseline", "cvae")}
        for q, col in results["columns"].items()
    }


def markdown_table(ablation: dict) -> str:
    """The ablation beside the shipped seed-0 models and pyro's table: NLL / -ELBO per column, then the timing."""
    cols = [str(q) for q in COLUMNS]
    runs, shipped, pyro = ablation["runs"], ablation["shipped"], ablation["pyro"]
    main, S, S_shipped = ablation["main_settings"], ablation["num_samples"], ablation["shipped_num_samples"]

    def sizes(s: dict, z: bool = True) -> str:
        return (
            f"{'-'.join(map(str, s['hidden_dims']))}"
            + (f", z = {s['z_dim']}" if z else "")
            + f", batch {s['batch_size']}"
        )

    def figs(d: dict | None) -> str:
        return "" if not isinstance(d, dict) else f"{d['nll']:.1f} / {d['neg_elbo']:.1f}"

    def row(model: str, reads: str, size: str, by_col: dict, how: str) -> str:
        return table_row(model, reads, size, *(by_col.get(c, "") for c in cols), how)

    z_only = {c: figs(runs.get(run_key("z_only", int(c)), {}).get("cvae")) for c in cols}
    lines = [
        "| model | generation net reads | sizes | "
        + " | ".join(f"{c} quadrant{'s' if c != '1' else ''}: NLL / -ELBO" for c in cols)
        + " | NLL estimator |",
        "|---|---|---|" + "---|" * len(cols) + "---|",
        row(
            "NN (shipped, seed 0)",
            "-",
            sizes(main, False),
            {c: figs(shipped[c]["baseline"]) for c in cols},
            estimator("baseline"),
        ),
        row(
            "CVAE (shipped, seed 0)",
            "z and x̂",
            sizes(main),
            {c: figs(shipped[c]["cvae"]) for c in cols},
            estimator("cvae", S_shipped),
        ),
        row("CVAE, generation net on z alone", "z", sizes(main), z_only, estimator("cvae", S)),
    ]
    pyro_run = runs.get(run_key("pyro_sizes", 1))
    if pyro_run is not None:
        s = pyro_run["settings"]
        lines.append(
            row("NN at pyro's sizes", "-", sizes(s, False), {"1": figs(pyro_run["baseline"])}, estimator("baseline"))
        )
        lines.append(row("CVAE at pyro's sizes", "z", sizes(s), {"1": figs(pyro_run["cvae"])}, estimator("cvae", S)))
    lines.append(
        row("pyro NN", "-", "500-500, batch 128", {c: f"{pyro['baseline'][c]}" for c in cols}, estimator("pyro NN"))
    )
    lines.append(
        row(
            "pyro CVAE",
            "z",
            "500-500, z = 200, batch 128",
            {c: f"- / {pyro['cvae'][c]}" for c in cols},
            estimator("pyro CVAE"),
        )
    )
    lines += ["", "| run | model | epochs (best) | s per epoch | training s |", "|---|---|---|---|---|"]
    for key, r in runs.items():
        for kind in ("baseline", "cvae"):
            if isinstance(r[kind], dict):
                f = r[kind]
                lines.append(
                    f"| {key} | {kind} | {f['epochs']} ({f['best_epoch']}) | {f['seconds_per_epoch']:.2f} "
                    f"| {f['train_seconds']:.0f} |"
                )
    lines += [
        "",
        f"Seed {SEED}; {ablation['test_images']:,} MNIST test images, grey-level targets, Bernoulli likelihood, nats "
        f"per example. Each run of ours trains on {ablation['train_images']:,} images with early stopping (patience "
        f"{main['patience']}) on {main['num_val']:,} held-out ones, as the main experiment; pyro's example trains on "
        f"60,000 and stops early on the test set. The z-alone runs use the shipped seed-0 baselines (the first row), "
        f"the run at pyro's sizes its own. Timing on {ablation['device']} ({ablation['machine']}), load average "
        f"{ablation['load_average_at_start']:.1f} at the start: other jobs shared the machine, so the seconds are "
        f"not comparable with the main experiment's.",
    ]
    return "\n".join(lines) + "\n"


def load_ablation(directory: Path = QUADRANTS_DIR) -> dict:
    """The committed ablation (``ablation.json``)."""
    path = Path(directory) / "ablation.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m cvae_utils.experiments.quadrant_ablation`.")
    return json.loads(path.read_text())


def write(ablation: dict, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_write(directory / "ablation.json", "w") as f:
        f.write(json.dumps(ablation, indent=2) + "\n")
    with atomic_write(directory / "ablation.md", "w") as f:
        f.write("# Quadrant completion: where the lead over pyro's comes from\n\n" + markdown_table(ablation))


def run(directory: Path | None, device=None, quick: bool | None = None, resume: bool = False, log=print) -> dict:
    """Train and score every run of :data:`RUNS`; write ``ablation.json`` and ``ablation.md`` after each one."""
    quick = quick_mode() if quick is None else quick
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cpu":
        tune_cpu_allocator()
    results = load_results()
    base = quick_settings() if quick else Settings()
    old = {}
    if resume and directory is not None and (Path(directory) / "ablation.json").exists():
        old = json.loads((Path(directory) / "ablation.json").read_text())["runs"]
    ablation = {
        "seed": SEED,
        "quick": quick,
        "device": str(device),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} thread(s)",
        "train_images": (base.train_limit or 60_000) - base.num_val,
        "test_images": base.test_limit or 10_000,
        "num_samples": base.num_samples,
        "main_settings": json.loads(json.dumps(asdict(base))),
        "load_average_at_start": os.getloadavg()[0],
        "shipped": shipped_figures(results),
        "shipped_num_samples": results["settings"]["num_samples"],
        "pyro": results["pyro"],
        "runs": {},
    }
    start = time.perf_counter()
    for name, q, changes, own_baseline in RUNS:
        key, settings = run_key(name, q), run_settings(changes, quick)
        if key in old and old[key]["settings"] == json.loads(json.dumps(asdict(settings))):
            log(f"[{time.perf_counter() - start:7.1f} s] {key}: kept from ablation.json")
            ablation["runs"][key] = old[key]
            continue
        log(f"[{time.perf_counter() - start:7.1f} s] {key}: {changes}")
        ablation["runs"][key] = ablation_run(name, q, settings, own_baseline, device, log)
        if directory is not None:
            write(ablation, Path(directory))
    log("\n" + markdown_table(ablation))
    log(f"ablation: {time.perf_counter() - start:.0f} s" + (f"; written to {directory}" if directory else ""))
    return ablation


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cvae_utils.experiments.quadrant_ablation", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for ablation.json and ablation.md")
    parser.add_argument("--device", default=None)
    parser.add_argument("--resume", action="store_true", help="keep the runs of OUT/ablation.json made alike")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else (None if quick_mode() else QUADRANTS_DIR)
    run(out, args.device, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
