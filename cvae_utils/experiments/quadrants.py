"""The paper's MNIST structured-output experiment, from scratch: training, results, shipped weights.

    python -m cvae_utils.experiments.quadrants run                 # everything (writes results, weights)
    python -m cvae_utils.experiments.quadrants run --seeds 0 1 2   # spread over three seeds
    python -m cvae_utils.experiments.quadrants verify              # check the shipped weights
    python -m cvae_utils.experiments.quadrants converge            # the shipped CVAEs' NLL with S = 1,000

Four models per column (see :mod:`cvae_utils.quadrants` for the task, the models and the
test measures). Results go to ``data/quadrants/results.json`` and ``results.md``; the
weights of the first seed to ``data/quadrants/*.pt`` (float16, checksummed in
``MANIFEST.json``), so that notebook 7 evaluates the shipped models without training.
Every figure is measured on the float16-rounded weights that are shipped. ``converge`` adds
the shipped CVAEs' NLL with S = 1,000 on the whole test set, beside S = 100 (a rerun of
``run`` keeps those figures only while the weights they measured stay the same).
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
from ..data import TensorBatches, load_mnist
from ..files import atomic_write, file_digest, record_files, unverified_files
from ..losses import evaluate_log_likelihood
from ..quadrants import (
    COLUMNS,
    MODELS,
    OBJECTIVES,
    QUADRANTS_DIR,
    Quadrants,
    Settings,
    build,
    load_quadrant_model,
    quick_settings,
    task_batches,
    test_figures,
    weights_name,
)
from ..train import fit
from ..utils import get_device, seed_everything, tune_cpu_allocator
from .quadrant_tables import SIDE_BY_SIDE, markdown_table

# pyro's CVAE tutorial (examples/cvae, 50 epochs with early stopping, grey-level targets,
# Bernoulli likelihood): test negative ELBO of the CVAE, test NLL of the baseline.
PYRO_TABLE = {"baseline": {1: 100.4, 2: 61.9, 3: 25.4}, "cvae": {1: 71.8, 2: 51.0, 3: 24.2}}


def train_model(
    kind: str, num_observed: int, seed: int, settings: Settings, batches, device, baseline=None, log=print
) -> dict:
    """Train one model of a column (early stopping on the validation batches), round it to float16, score it.

    ``batches`` is :func:`~cvae_utils.quadrants.task_batches`' (train, validation, test); a CVAE
    variant needs the trained ``baseline``. Returns the model with its epochs, timing, test figures and
    ``history``, the per-epoch records of :func:`~cvae_utils.train.fit` (the learning curves, kept in the
    run's record under ``runs/``).
    """
    train_b, val_b, test_b = batches
    seed_everything(seed)
    model = build(kind, settings, baseline).to(device)
    start = time.perf_counter()
    history = fit(
        model,
        train_b,
        val_b,
        num_epochs=settings.max_epochs,
        lr=settings.lr,
        objective=OBJECTIVES[kind],
        alpha=settings.alpha,
        patience=settings.patience,
        progress=False,
    )
    seconds = time.perf_counter() - start
    round_to_half(model)
    seed_everything(seed)
    figures = test_figures(kind, model, test_b, settings.num_samples)
    per_epoch = sum(history["seconds"]) / len(history)
    out = {
        "model": model,
        "epochs": len(history),
        "best_epoch": int(history.best()["epoch"]),
        "train_seconds": seconds,
        "seconds_per_epoch": per_epoch,
        **figures,
        "history": history.records,
    }
    log(
        f"  {num_observed} quadrant(s), seed {seed}, {kind:8s}: {len(history):2d} epochs "
        f"({per_epoch:.2f} s each, best {out['best_epoch']}), test NLL {figures['nll']:.2f}, "
        f"-ELBO {figures['neg_elbo']:.2f}"
    )
    return out


def train_column(num_observed: int, seed: int, settings: Settings, device, log=print) -> dict:
    """Train the four models of one column; return them with their histories and test figures."""
    batches = task_batches(num_observed, settings, device, seed)
    out = {}
    baseline = None
    for kind in MODELS:
        out[kind] = train_model(kind, num_observed, seed, settings, batches, device, baseline, log)
        if kind == "baseline":
            baseline = out[kind]["model"]
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
        "speed": SIDE_BY_SIDE,
    }


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
    defaults = json.loads(json.dumps(asdict(Settings())))  # settings added since the record was made
    if {**defaults, **record["settings"]} != json.loads(json.dumps(asdict(settings))):
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
    results = summarise(per_seed, settings, seeds, timing, str(device))
    conv = _kept_convergence(directory)
    if conv is not None:
        results["convergence"] = conv
    record_files(
        directory,
        {name: {"model": name.split("_q")[0], "observed_quadrants": int(name[-4])} for name in files},
        settings=results["settings"],
    )
    log("\n" + write_results(results, directory))
    log(f"training time: {timing['total_seconds']:.1f} s; results in {directory}")
    return results


def _kept_convergence(directory: Path) -> dict | None:
    """The S = 1,000 figures of the previous ``results.json``, if the weights they measured are still those shipped."""
    path = Path(directory) / "results.json"
    conv = json.loads(path.read_text()).get("convergence") if path.exists() else None
    if conv is None or any(
        not (Path(directory) / name).exists() or file_digest(Path(directory) / name) != digest
        for name, digest in conv["files"].items()
    ):
        return None
    return conv


def write_results(results: dict, directory: Path = QUADRANTS_DIR) -> str:
    """Write ``results.json`` and ``results.md`` (the markdown table, which is returned)."""
    with atomic_write(Path(directory) / "results.json", "w") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    table = markdown_table(results)
    with atomic_write(Path(directory) / "results.md", "w") as f:
        f.write("# Quadrant completion: results\n\n" + table)
    return table


def converge(
    num_samples: int = 1000, directory: Path = QUADRANTS_DIR, device=None, columns=COLUMNS, test_limit=None, log=print
) -> dict:
    """The shipped CVAE of each column scored with S = ``num_samples`` on every test image, beside its S = 100.

    Batches of 1,000 test images (each sampled ``num_samples`` times, 8,192 rows at a time;
    ``test_limit`` keeps the first images only, for tests); the figures join ``results.json``
    (as ``convergence``) and the table of ``results.md``.
    """
    device = torch.device(device) if device is not None else get_device()
    directory = Path(directory)
    seed = load_results(directory)["seeds"][0]  # the seed whose weights are shipped
    conv = {"seed": seed, "num_samples": num_samples, "test_images": None, "cvae": {}, "files": {}}
    images = load_mnist("test", device, limit=test_limit).images
    for q in columns:
        model = load_quadrant_model("cvae", q, device, directory)
        test_b = TensorBatches(images, batch_size=1000, shuffle=False, transform=Quadrants(q))
        seed_everything(seed)
        start = time.perf_counter()
        nll = -evaluate_log_likelihood(model, test_b, num_samples=num_samples, proposal="recognition")
        conv["test_images"] = test_b.num_examples
        conv["cvae"][str(q)] = {"nll": nll, "seconds": time.perf_counter() - start}
        for kind in ("baseline", "cvae"):
            conv["files"][weights_name(kind, q)] = file_digest(directory / weights_name(kind, q))
        log(f"{q} quadrant(s): CVAE NLL with S = {num_samples}: {nll:.3f} ({conv['cvae'][str(q)]['seconds']:.0f} s)")
    results = load_results(directory)  # read again: it may have been rewritten meanwhile
    for q, fig in conv["cvae"].items():
        fig["nll_s100"] = results["columns"][q]["cvae"]["nll"]["values"][results["seeds"].index(seed)]
    results["convergence"] = conv
    log("\n" + write_results(results, directory))
    return conv


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
    c = sub.add_parser("converge", help="score the shipped CVAEs with S = 1,000 on the whole test set")
    c.add_argument("--samples", type=int, default=1000)
    c.add_argument("--device", default=None)
    c.add_argument("--out", type=Path, default=QUADRANTS_DIR, help="folder of the weights and results")
    args = parser.parse_args(argv)
    if args.command == "verify":
        bad = verify()
        print("all shipped weights match MANIFEST.json" if not bad else f"altered or missing: {bad}")
        return 1 if bad else 0
    if args.command == "converge":
        converge(args.samples, args.out, args.device)
        return 0
    settings = quick_settings() if quick_mode() else Settings()
    if args.input_noise:
        settings = Settings(**{**asdict(settings), "input_noise": args.input_noise})
    run(args.seeds, args.columns, settings, args.device, args.out, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
