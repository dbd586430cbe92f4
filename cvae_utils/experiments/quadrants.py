"""The paper's MNIST structured-output experiment, from scratch: training, results, shipped weights.

    python -m cvae_utils.experiments.quadrants run                 # everything (writes results, weights)
    python -m cvae_utils.experiments.quadrants run --seeds 0 1 2   # spread over three seeds
    python -m cvae_utils.experiments.quadrants verify              # check the shipped weights

Four models per column (see :mod:`cvae_utils.quadrants` for the task, the models and the
test measures). Results go to ``data/quadrants/results.json`` and ``results.md``; the
weights of the first seed to ``data/quadrants/*.pt`` (float16, checksummed in
``MANIFEST.json``), so that notebook 7 evaluates the shipped models without training.
Every figure is measured on the float16-rounded weights that are shipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..checkpoint import FORMAT_VERSION, round_to_half
from ..config import quick_mode
from ..files import atomic_write, file_digest, record_files, unverified_files
from ..quadrants import (
    COLUMNS,
    MODELS,
    OBJECTIVES,
    QUADRANTS_DIR,
    Settings,
    build,
    quick_settings,
    task_batches,
    test_figures,
    weights_name,
)
from ..train import fit
from ..utils import get_device, seed_everything, tune_cpu_allocator

# pyro's CVAE tutorial (examples/cvae, 50 epochs with early stopping, grey-level targets,
# Bernoulli likelihood): test negative ELBO of the CVAE, test NLL of the baseline.
PYRO_TABLE = {"baseline": {1: 100.4, 2: 61.9, 3: 25.4}, "cvae": {1: 71.8, 2: 51.0, 3: 24.2}}
# seconds per epoch of pyro's example (1 quadrant) on the project's 2-core CPU machine
PYRO_EPOCH_SECONDS = {"baseline": 20.0, "cvae": 32.0}


def train_column(num_observed: int, seed: int, settings: Settings, device, log=print) -> dict:
    """Train the four models of one column; return them with their histories and test figures."""
    train_b, val_b, test_b = task_batches(num_observed, settings, device, seed)
    out = {}
    baseline = None
    for kind in MODELS:
        seed_everything(seed)
        model = build(kind, settings, baseline).to(device)
        objective = OBJECTIVES[kind]
        start = time.perf_counter()
        history = fit(
            model,
            train_b,
            val_b,
            num_epochs=settings.max_epochs,
            lr=settings.lr,
            objective=objective,
            alpha=settings.alpha,
            patience=settings.patience,
            progress=False,
        )
        seconds = time.perf_counter() - start
        round_to_half(model)
        if kind == "baseline":
            baseline = model
        seed_everything(seed)
        figures = test_figures(kind, model, test_b, settings.num_samples)
        per_epoch = sum(history["seconds"]) / len(history)
        out[kind] = {
            "model": model,
            "epochs": len(history),
            "best_epoch": int(history.best()["epoch"]),
            "train_seconds": seconds,
            "seconds_per_epoch": per_epoch,
            **figures,
        }
        log(
            f"  {num_observed} quadrant(s), seed {seed}, {kind:8s}: {len(history):2d} epochs "
            f"({per_epoch:.2f} s each, best {out[kind]['best_epoch']}), test NLL {figures['nll']:.2f}, "
            f"-ELBO {figures['neg_elbo']:.2f}"
        )
    return out


# ----------------------------------------------------------------------------------
# Shipped weights
# ----------------------------------------------------------------------------------


def save_weights(kind: str, num_observed: int, model, directory: Path = QUADRANTS_DIR) -> Path:
    """float16 weights (a CVAE's without its baseline, which has its own file), in checkpoint format."""
    state = {k: v.detach().cpu().half() for k, v in model.state_dict().items() if not k.startswith("baseline.")}
    path = Path(directory) / weights_name(kind, num_observed)
    with atomic_write(path) as f:
        torch.save({"format": FORMAT_VERSION, "config": model.config, "state_dict": state}, f)
    return path


def verify(directory: Path = QUADRANTS_DIR) -> list[str]:
    """Names of the shipped files whose SHA-256 differs from the manifest (or that are missing)."""
    return unverified_files(directory)


# ----------------------------------------------------------------------------------
# The whole experiment
# ----------------------------------------------------------------------------------


def _mean_sd(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def summarise(per_seed: dict, settings: Settings, seeds, timing: dict, device: str) -> dict:
    """The results document: figures per column and model (mean, sd, per seed), pyro's, and timing."""
    columns = {}
    for q, by_seed in per_seed.items():
        col = {}
        for kind in MODELS:
            col[kind] = {m: _mean_sd([by_seed[s][kind][m] for s in seeds]) for m in ("nll", "neg_elbo")}
            col[kind]["epochs"] = [by_seed[s][kind]["epochs"] for s in seeds]
        col["gap"] = {m: col["baseline"][m]["mean"] - col["cvae"][m]["mean"] for m in ("nll", "neg_elbo")}
        columns[str(q)] = col
    return {
        "settings": {**asdict(settings), "quick": settings != Settings()},
        "seeds": list(seeds),
        "device": device,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "binarised": False,
        "pyro": {k: {str(q): v for q, v in t.items()} for k, t in PYRO_TABLE.items()},
        "pyro_gap": {str(q): round(PYRO_TABLE["baseline"][q] - PYRO_TABLE["cvae"][q], 1) for q in COLUMNS},
        "columns": columns,
        "timing": timing,
    }


def markdown_table(results: dict) -> str:
    """The results as a markdown table: NLL (S=100) / -ELBO per model and column, beside pyro's."""
    cols = sorted(results["columns"], key=int)
    n_seeds = len(results["seeds"])

    def cell(d: dict) -> str:
        if n_seeds > 1:
            return f"{d['mean']:.1f} ± {d['sd']:.1f}"
        return f"{d['mean']:.1f}"

    head = "| model | " + " | ".join(f"{c} quadrant{'s' if c != '1' else ''}: NLL / -ELBO" for c in cols) + " |"
    lines = [head, "|---|" + "---|" * len(cols)]
    names = {"baseline": "NN (baseline)", "cvae": "CVAE", "gsnn": "GSNN", "hybrid": "hybrid (α = 0.5)"}
    for kind in MODELS:
        cells = [
            f"{cell(results['columns'][c][kind]['nll'])} / {cell(results['columns'][c][kind]['neg_elbo'])}"
            for c in cols
        ]
        lines.append(f"| {names[kind]} | " + " | ".join(cells) + " |")
    lines.append(
        "| gap NN - CVAE | "
        + " | ".join(
            f"{results['columns'][c]['gap']['nll']:.1f} / {results['columns'][c]['gap']['neg_elbo']:.1f}" for c in cols
        )
        + " |"
    )
    lines.append("| pyro NN | " + " | ".join(f"{results['pyro']['baseline'][c]}" for c in cols) + " |")
    lines.append("| pyro CVAE (-ELBO) | " + " | ".join(f"{results['pyro']['cvae'][c]}" for c in cols) + " |")
    lines.append("| pyro gap | " + " | ".join(f"{results['pyro_gap'][c]}" for c in cols) + " |")
    seeds = ", ".join(map(str, results["seeds"]))
    t = results["timing"]
    notes = [
        "",
        f"Test set: {results['settings']['test_limit'] or 10000} MNIST test images, "
        "grey-level targets (not binarised), "
        f"Bernoulli likelihood, nats per example (lower is better). NLL = -log p(y|x) by importance sampling with "
        f"S = {results['settings']['num_samples']} (q(z|x,y) as proposal; p(z|x) for the GSNN); -ELBO with one sample "
        f"(for the GSNN its objective, the ELBO with q = p(z|x)). "
        + (f"Mean ± sd over seeds {seeds}." if n_seeds > 1 else f"Seed {seeds}."),
    ]
    if "speedup_vs_pyro" in t:
        notes.append(
            f"1-quadrant timing: baseline {t['baseline_seconds_per_epoch']:.2f} s/epoch, CVAE "
            f"{t['cvae_seconds_per_epoch']:.2f} s/epoch on {results['device']} ({results['machine']}); pyro's example "
            f"{PYRO_EPOCH_SECONDS['baseline']:.0f} + {PYRO_EPOCH_SECONDS['cvae']:.0f} s per epoch on the same 2-core "
            f"machine: {t['speedup_vs_pyro']:.1f}x faster."
        )
    return "\n".join(lines + notes) + "\n"


def record_path(num_observed: int, seed: int, directory: Path = QUADRANTS_DIR) -> Path:
    return Path(directory) / "runs" / f"q{num_observed}_seed{seed}.json"


def _save_record(num_observed: int, seed: int, settings: Settings, out: dict, files: dict, directory: Path) -> None:
    """One finished (column, seed): its figures, epochs and timing, so an interrupted run can resume."""
    record = {
        "settings": asdict(settings),
        "num_observed": num_observed,
        "seed": seed,
        "models": {k: {m: v for m, v in out[k].items() if m != "model"} for k in MODELS},
        "files": files,
    }
    with atomic_write(record_path(num_observed, seed, directory), "w") as f:
        f.write(json.dumps(record, indent=2) + "\n")


def _load_record(num_observed: int, seed: int, settings: Settings, directory: Path) -> dict | None:
    """The saved outcome of (column, seed), if it was made with these settings and its weights are intact."""
    path = record_path(num_observed, seed, directory)
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if record["settings"] != json.loads(json.dumps(asdict(settings))):
        return None
    for name, digest in record["files"].items():
        if not (Path(directory) / name).exists() or file_digest(Path(directory) / name) != digest:
            return None
    return record


def run(
    seeds=(0,),
    columns=COLUMNS,
    settings: Settings | None = None,
    device=None,
    directory: Path = QUADRANTS_DIR,
    log=print,
    resume: bool = False,
) -> dict:
    """Train and evaluate every model of every column for every seed; write results (and the first seed's weights).

    Each finished (column, seed) is saved under ``runs/``; with ``resume=True`` those made
    with the same settings (and whose weights are intact) are reused instead of retrained.
    """
    settings = settings or (quick_settings() if quick_mode() else Settings())
    seeds, columns = list(seeds), list(columns)
    if not seeds or not columns or any(q not in COLUMNS for q in columns):
        raise ValueError(f"give at least one seed and columns among {COLUMNS}; got seeds {seeds}, columns {columns}.")
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cpu":
        tune_cpu_allocator()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    per_seed: dict[int, dict] = {}
    timing = {}
    files = {}
    for q in columns:
        per_seed[q] = {}
        for seed in seeds:
            record = _load_record(q, seed, settings, directory) if resume else None
            if record is not None:
                log(
                    f"[{time.perf_counter() - start:7.1f} s] {q} quadrant(s) observed, seed {seed}: "
                    f"reusing {record_path(q, seed, directory).relative_to(directory)}"
                )
                out, new_files = record["models"], record["files"]
            else:
                log(f"[{time.perf_counter() - start:7.1f} s] {q} quadrant(s) observed, seed {seed}")
                out = train_column(q, seed, settings, device, log)
                new_files = {}
                if seed == seeds[0]:
                    for kind in MODELS:
                        path = save_weights(kind, q, out[kind]["model"], directory)
                        new_files[path.name] = file_digest(path)
                _save_record(q, seed, settings, out, new_files, directory)
            per_seed[q][seed] = out
            files.update(new_files)
            if q == 1 and seed == seeds[0]:
                timing["baseline_seconds_per_epoch"] = out["baseline"]["seconds_per_epoch"]
                timing["cvae_seconds_per_epoch"] = out["cvae"]["seconds_per_epoch"]
            timing["total_seconds"] = timing.get("total_seconds", 0.0) + sum(out[k]["train_seconds"] for k in MODELS)
    if "cvae_seconds_per_epoch" in timing:
        ours = timing["baseline_seconds_per_epoch"] + timing["cvae_seconds_per_epoch"]
        timing["speedup_vs_pyro"] = sum(PYRO_EPOCH_SECONDS.values()) / ours
    results = summarise(per_seed, settings, seeds, timing, str(device))
    record_files(
        directory,
        {name: {"model": name.split("_q")[0], "observed_quadrants": int(name[-4])} for name in files},
        settings=results["settings"],
    )
    with atomic_write(directory / "results.json", "w") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    table = markdown_table(results)
    with atomic_write(directory / "results.md", "w") as f:
        f.write("# Quadrant completion: results\n\n" + table)
    log("\n" + table)
    log(f"training time: {timing['total_seconds']:.1f} s; results in {directory}")
    return results


def load_results(directory: Path = QUADRANTS_DIR) -> dict:
    path = Path(directory) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m cvae_utils.experiments.quadrants run` to make it.")
    return json.loads(path.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cvae_utils.experiments.quadrants", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate every model, write results and weights")
    r.add_argument("--seeds", type=int, nargs="+", default=[0])
    r.add_argument("--columns", type=int, nargs="+", default=list(COLUMNS), choices=COLUMNS)
    r.add_argument("--device", default=None)
    r.add_argument("--input-noise", type=float, default=0.0, help="probability of blanking observed pixels")
    r.add_argument("--out", type=Path, default=QUADRANTS_DIR, help="folder for results and weights")
    r.add_argument(
        "--resume",
        action="store_true",
        help="reuse the (column, seed) runs already saved under OUT/runs with the same settings",
    )
    sub.add_parser("verify", help="check the shipped weights against MANIFEST.json")
    args = parser.parse_args(argv)
    if args.command == "verify":
        bad = verify()
        print("all shipped weights match MANIFEST.json" if not bad else f"altered or missing: {bad}")
        return 1 if bad else 0
    settings = quick_settings() if quick_mode() else Settings()
    if args.input_noise:
        settings = Settings(**{**asdict(settings), "input_noise": args.input_noise})
    run(args.seeds, args.columns, settings, args.device, args.out, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
