"""The paper's MNIST structured-output experiment (Sohn et al. 2015, Sec. 5.1): quadrant completion.

Observe 1, 2 or 3 quadrants of a digit (x) and predict the missing ones (y). Four
models per column: the deterministic baseline (the paper's NN), the CVAE with the
recurrent baseline connection (:class:`cvae_utils.models.QuadrantCVAE`), the GSNN
(the same networks trained on E_p(z|x)[log p(y|x,z)]) and the hybrid
alpha * CVAE + (1 - alpha) * GSNN. Two test measures for each, in nats per example:

* ``nll``:      -log p(y|x) by importance sampling with S = 100 (the paper's estimate),
                q(z|x,y) as proposal; the prior p(z|x) for the GSNN, whose recognition
                network is never trained;
* ``neg_elbo``: -ELBO (the measure pyro's CVAE example prints); for the GSNN its own
                objective, which is the ELBO with q = p(z|x).

For the baseline both are its Bernoulli negative log-likelihood of y. Targets are grey
levels in [0, 1] with a Bernoulli likelihood (not binarised), as in pyro's example,
so the figures sit beside pyro's table.

    python -m cvae_utils.quadrants run                 # everything, from scratch (writes results, weights)
    python -m cvae_utils.quadrants run --seeds 0 1 2   # spread over three seeds
    python -m cvae_utils.quadrants verify              # check the shipped weights

Results go to ``data/quadrants/results.json`` and ``results.md``; the weights of the
first seed to ``data/quadrants/*.pt`` (float16, checksummed in ``MANIFEST.json``), so
that notebook 7 evaluates the shipped models without training. Every figure is
measured on the float16-rounded weights that are shipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from .config import quick_mode
from .data import MNISTSplit, Quadrants, TensorBatches, load_mnist, split_quadrants, train_val_split
from .losses import evaluate_log_likelihood
from .models import BaselineNet, QuadrantCVAE
from .train import evaluate, fit
from .utils import file_digest, get_device, seed_everything, tune_cpu_allocator

QUADRANTS_DIR = Path(__file__).resolve().parents[1] / "data" / "quadrants"
MODELS = ("baseline", "cvae", "gsnn", "hybrid")
COLUMNS = (1, 2, 3)

# pyro's CVAE tutorial (examples/cvae, 50 epochs with early stopping, grey-level targets,
# Bernoulli likelihood): test negative ELBO of the CVAE, test NLL of the baseline.
PYRO_TABLE = {"baseline": {1: 100.4, 2: 61.9, 3: 25.4}, "cvae": {1: 71.8, 2: 51.0, 3: 24.2}}
# seconds per epoch of pyro's example (1 quadrant) on the project's 2-core CPU machine
PYRO_EPOCH_SECONDS = {"baseline": 20.0, "cvae": 32.0}


@dataclass(frozen=True)
class Settings:
    """One run of the experiment. The defaults are the real thing; :func:`quick_settings` shrinks them."""

    hidden_dims: tuple[int, ...] = (256, 256)
    z_dim: int = 32
    batch_size: int = 256
    lr: float = 1e-3
    max_epochs: int = 60
    patience: int = 3  # early stopping on the validation objective, as pyro's example
    num_val: int = 10_000  # held out of the 60,000 training images
    alpha: float = 0.5  # the hybrid's weight on the CVAE objective
    input_noise: float = 0.0  # probability of blanking each observed pixel of x in training
    num_samples: int = 100  # S of the importance-sampled likelihood
    train_limit: int | None = None  # use only this many training images (quick mode)
    test_limit: int | None = None


def quick_settings() -> Settings:
    """A minute-long run for CI: 2,000 training images, 2 epochs, 500 test images, S = 10."""
    return Settings(max_epochs=2, num_val=500, num_samples=10, train_limit=2500, test_limit=500)


class InputOmission:
    """Input noise injection (Sec. 4.2 of the paper): blank each observed pixel of x with probability p.

    A :class:`TensorBatches` transform applied after :class:`Quadrants`, in training only.
    Blanked pixels become unobserved (the fill value) but do not join the target.
    """

    def __init__(self, quadrants: Quadrants, p: float, seed: int = 0) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"input noise p={p} must lie in [0, 1).")
        self.quadrants, self.p = quadrants, p
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, images: Tensor, *rest: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y, x, mask = self.quadrants(images)
        if self.p > 0:
            drop = torch.rand(x.shape, generator=self.generator).to(x.device) < self.p
            x = torch.where(drop, torch.full_like(x, self.quadrants.fill), x)
        return y, x, mask


def task_batches(num_observed: int, settings: Settings, device, seed: int = 0):
    """(train, validation, test) batches of (y, x, target mask) for one column."""
    train = load_mnist("train", device, limit=settings.train_limit)
    test = load_mnist("test", device, limit=settings.test_limit)
    train, val = train_val_split(train, settings.num_val, seed=0)  # the same split for every seed
    q = Quadrants(num_observed)
    train_tf = InputOmission(q, settings.input_noise, seed) if settings.input_noise > 0 else q
    return (
        TensorBatches(train.images, batch_size=settings.batch_size, seed=seed, transform=train_tf),
        TensorBatches(val.images, batch_size=2000, shuffle=False, transform=q),
        TensorBatches(test.images, batch_size=1000, shuffle=False, transform=q),
    )


def build(kind: str, settings: Settings, baseline: BaselineNet | None = None):
    if kind == "baseline":
        return BaselineNet(hidden_dims=settings.hidden_dims)
    if kind not in MODELS:
        raise ValueError(f"model {kind!r} is not one of {MODELS}.")
    return QuadrantCVAE(baseline, z_dim=settings.z_dim, hidden_dims=settings.hidden_dims,
                        baseline_hidden_dims=settings.hidden_dims)


def round_to_half(model: torch.nn.Module) -> torch.nn.Module:
    """Round every weight to float16 and back, in place: the model as it is shipped."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


@torch.no_grad()
def test_figures(kind: str, model, test_batches, num_samples: int) -> dict[str, float]:
    """``nll`` (importance-sampled, S = num_samples) and ``neg_elbo`` on the test batches, nats per example."""
    if kind == "baseline":
        nll = evaluate(model, test_batches)["loss"]
        return {"nll": nll, "neg_elbo": nll}
    proposal = "prior" if kind == "gsnn" else "recognition"
    nll = -evaluate_log_likelihood(model, test_batches, num_samples=num_samples, proposal=proposal)
    if kind == "gsnn":
        neg_elbo = evaluate(model, test_batches, objective="gsnn")["gsnn_recon"]
    else:
        neg_elbo = -evaluate(model, test_batches, objective="cvae")["elbo"]
    return {"nll": nll, "neg_elbo": neg_elbo}


def train_column(num_observed: int, seed: int, settings: Settings, device, log=print) -> dict:
    """Train the four models of one column; return them with their histories and test figures."""
    train_b, val_b, test_b = task_batches(num_observed, settings, device, seed)
    out = {}
    baseline = None
    for kind in MODELS:
        seed_everything(seed)
        model = build(kind, settings, baseline).to(device)
        objective = {"baseline": "cvae", "cvae": "cvae", "gsnn": "gsnn", "hybrid": "hybrid"}[kind]
        start = time.perf_counter()
        history = fit(model, train_b, val_b, num_epochs=settings.max_epochs, lr=settings.lr, objective=objective,
                      alpha=settings.alpha, patience=settings.patience, progress=False)
        seconds = time.perf_counter() - start
        round_to_half(model)
        if kind == "baseline":
            baseline = model
        seed_everything(seed)
        figures = test_figures(kind, model, test_b, settings.num_samples)
        per_epoch = sum(history["seconds"]) / len(history)
        out[kind] = {"model": model, "epochs": len(history), "best_epoch": int(history.best()["epoch"]),
                     "train_seconds": seconds, "seconds_per_epoch": per_epoch, **figures}
        log(f"  {num_observed} quadrant(s), seed {seed}, {kind:8s}: {len(history):2d} epochs "
            f"({per_epoch:.2f} s each, best {out[kind]['best_epoch']}), test NLL {figures['nll']:.2f}, "
            f"-ELBO {figures['neg_elbo']:.2f}")
    return out


# ----------------------------------------------------------------------------------
# Shipped weights
# ----------------------------------------------------------------------------------


def weights_path(kind: str, num_observed: int, directory: Path = QUADRANTS_DIR) -> Path:
    return Path(directory) / f"{kind}_q{num_observed}.pt"


def save_weights(kind: str, num_observed: int, model, directory: Path = QUADRANTS_DIR) -> Path:
    """float16 weights (a CVAE's without its baseline, which has its own file) and the config."""
    state = {k: v.half() for k, v in model.state_dict().items() if not k.startswith("baseline.")}
    path = weights_path(kind, num_observed, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"config": model.config, "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def _manifest(directory: Path) -> dict:
    path = Path(directory) / "MANIFEST.json"
    return json.loads(path.read_text()) if path.exists() else {}


def load_quadrant_model(kind: str, num_observed: int, device=None, directory: Path = QUADRANTS_DIR):
    """The shipped model ``kind`` ("baseline", "cvae", "gsnn", "hybrid") for 1, 2 or 3 observed quadrants.

    Each file is checked against ``MANIFEST.json`` first; a missing or altered file is
    an error that says how to rebuild it (``python -m cvae_utils.quadrants run``).
    """
    if kind not in MODELS or num_observed not in COLUMNS:
        raise ValueError(f"ask for a model in {MODELS} and 1, 2 or 3 observed quadrants; got {kind!r}, {num_observed!r}.")
    device = torch.device(device) if device is not None else get_device()
    directory = Path(directory)
    manifest = _manifest(directory)

    def read(name: str) -> dict:
        path = weights_path(name, num_observed, directory)
        expected = manifest.get("files", {}).get(path.name)
        if not path.exists() or expected is None or file_digest(path) != expected:
            problem = "is missing" if not path.exists() else "does not match MANIFEST.json"
            raise FileNotFoundError(
                f"{path} {problem}. Rebuild the shipped weights with `python -m cvae_utils.quadrants run` "
                "(about half an hour on a 2-core CPU), or restore the file with `git checkout -- data/quadrants`."
            )
        return torch.load(path, map_location="cpu", weights_only=True)

    base_ckpt = read("baseline")
    baseline = BaselineNet(**base_ckpt["config"]["kwargs"])
    baseline.load_state_dict({k: v.float() for k, v in base_ckpt["state_dict"].items()})
    if kind == "baseline":
        return baseline.to(device).eval()
    ckpt = read(kind)
    model = QuadrantCVAE(baseline, **ckpt["config"]["kwargs"])
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()}, strict=False)
    if unexpected or any(not k.startswith("baseline.") for k in missing):
        raise ValueError(f"{kind}_q{num_observed}: the weights do not fit the model (missing {missing}, "
                         f"unexpected {unexpected}).")
    return model.to(device).eval()


# ----------------------------------------------------------------------------------
# The whole experiment
# ----------------------------------------------------------------------------------


def _mean_sd(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


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
        cells = [f"{cell(results['columns'][c][kind]['nll'])} / {cell(results['columns'][c][kind]['neg_elbo'])}"
                 for c in cols]
        lines.append(f"| {names[kind]} | " + " | ".join(cells) + " |")
    lines.append("| gap NN - CVAE | " + " | ".join(
        f"{results['columns'][c]['gap']['nll']:.1f} / {results['columns'][c]['gap']['neg_elbo']:.1f}" for c in cols
    ) + " |")
    lines.append("| pyro NN | " + " | ".join(f"{results['pyro']['baseline'][c]}" for c in cols) + " |")
    lines.append("| pyro CVAE (-ELBO) | " + " | ".join(f"{results['pyro']['cvae'][c]}" for c in cols) + " |")
    lines.append("| pyro gap | " + " | ".join(f"{results['pyro_gap'][c]}" for c in cols) + " |")
    seeds = ", ".join(map(str, results["seeds"]))
    t = results["timing"]
    notes = [
        "",
        f"Test set: {results['settings']['test_limit'] or 10000} MNIST test images, grey-level targets (not binarised), "
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
            f"machine: {t['speedup_vs_pyro']:.1f}x faster.")
    return "\n".join(lines + notes) + "\n"


def record_path(num_observed: int, seed: int, directory: Path = QUADRANTS_DIR) -> Path:
    return Path(directory) / "runs" / f"q{num_observed}_seed{seed}.json"


def _save_record(num_observed: int, seed: int, settings: Settings, out: dict, files: dict, directory: Path) -> None:
    """One finished (column, seed): its figures, epochs and timing, so an interrupted run can resume."""
    record = {"settings": asdict(settings), "num_observed": num_observed, "seed": seed,
              "models": {k: {m: v for m, v in out[k].items() if m != "model"} for k in MODELS}, "files": files}
    path = record_path(num_observed, seed, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


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


def run(seeds=(0,), columns=COLUMNS, settings: Settings | None = None, device=None,
        directory: Path = QUADRANTS_DIR, log=print, resume: bool = False) -> dict:
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
                log(f"[{time.perf_counter() - start:7.1f} s] {q} quadrant(s) observed, seed {seed}: "
                    f"reusing {record_path(q, seed, directory).relative_to(directory)}")
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
            timing["total_seconds"] = timing.get("total_seconds", 0.0) + sum(
                out[k]["train_seconds"] for k in MODELS)
    if "cvae_seconds_per_epoch" in timing:
        ours = timing["baseline_seconds_per_epoch"] + timing["cvae_seconds_per_epoch"]
        timing["speedup_vs_pyro"] = sum(PYRO_EPOCH_SECONDS.values()) / ours
    results = summarise(per_seed, settings, seeds, timing, str(device))
    manifest = _manifest(directory)
    manifest.setdefault("files", {}).update(files)
    manifest["settings"] = results["settings"]
    (directory / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (directory / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown_table(results)
    (directory / "results.md").write_text("# Quadrant completion: results\n\n" + table)
    log("\n" + table)
    log(f"training time: {timing['total_seconds']:.1f} s; results in {directory}")
    return results


def verify(directory: Path = QUADRANTS_DIR) -> list[str]:
    """Names of the shipped files whose SHA-256 differs from the manifest (or that are missing)."""
    bad = []
    for name, digest in _manifest(directory).get("files", {}).items():
        path = Path(directory) / name
        if not path.exists() or file_digest(path) != digest:
            bad.append(name)
    return bad


def completions(model: QuadrantCVAE, x: Tensor, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
    """``num_samples`` completed images per condition: (len(x), num_samples, C, H, W), samples of p(y|x)."""
    n = len(x)
    xs = x.repeat_interleave(num_samples, 0)
    eps = torch.randn(n * num_samples, model.z_dim, generator=generator).to(x.device)
    y = model.sample(n * num_samples, xs, eps=eps)
    return model.complete(xs, y).view(n, num_samples, *x.shape[1:])


def load_results(directory: Path = QUADRANTS_DIR) -> dict:
    path = Path(directory) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m cvae_utils.quadrants run` to make it.")
    return json.loads(path.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvae_utils.quadrants", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate every model, write results and weights")
    r.add_argument("--seeds", type=int, nargs="+", default=[0])
    r.add_argument("--columns", type=int, nargs="+", default=list(COLUMNS), choices=COLUMNS)
    r.add_argument("--device", default=None)
    r.add_argument("--input-noise", type=float, default=0.0, help="probability of blanking observed pixels")
    r.add_argument("--out", type=Path, default=QUADRANTS_DIR, help="folder for results and weights")
    r.add_argument("--resume", action="store_true",
                   help="reuse the (column, seed) runs already saved under OUT/runs with the same settings")
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
