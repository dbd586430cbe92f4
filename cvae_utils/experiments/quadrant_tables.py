"""The quadrant experiment's tables: the results table with each row's NLL estimator, and the speed figures.

Used by :mod:`cvae_utils.experiments.quadrants` (``results.md``), by
:mod:`cvae_utils.experiments.quadrant_ablation` and by notebook 7.
"""

from __future__ import annotations

from ..quadrants import MODELS

# pyro's example and ours timed side by side: one machine (a 2-core Intel Xeon CPU), one sitting (2026-12-01),
# 1 observed quadrant, mean seconds per epoch (the README gives every epoch's time and how pyro's was run).
SIDE_BY_SIDE = {
    "date": "2026-12-01",
    "machine": "2-core Intel Xeon CPU",
    "observed_quadrants": 1,
    "pyro": {
        "baseline": 16.0,
        "cvae": 28.6,
        "train_images": 60_000,
        "epoch": "a training pass over the 60,000 training images and a validation pass over the 10,000 test "
        "images, batch 128",
    },
    "ours": {
        "baseline": 1.48,
        "cvae": 3.24,
        "train_images": 50_000,
        "epoch": "a training pass over 50,000 training images and a validation pass over the 10,000 held out, "
        "batch 256",
    },
}


def speedup(side: dict = SIDE_BY_SIDE) -> dict:
    """Ours against pyro's, baseline and CVAE together: per epoch, and per training image (epochs scaled)."""
    pyro = side["pyro"]["baseline"] + side["pyro"]["cvae"]
    ours = side["ours"]["baseline"] + side["ours"]["cvae"]
    scale = side["pyro"]["train_images"] / side["ours"]["train_images"]
    return {"pyro_seconds": pyro, "our_seconds": ours, "per_epoch": pyro / ours, "per_image": pyro / (ours * scale)}


def speed_line(side: dict = SIDE_BY_SIDE) -> str:
    """One sentence on the side-by-side timing, every figure from ``side``."""
    p, o, x = side["pyro"], side["ours"], speedup(side)
    return (
        f"Speed, pyro's example and ours timed side by side ({side['machine']}, {side['date']}, "
        f"{side['observed_quadrants']} quadrant): pyro {p['baseline']} s (baseline) + {p['cvae']} s (CVAE) per "
        f"epoch, an epoch being {p['epoch']}; ours {o['baseline']} + {o['cvae']} s, an epoch being {o['epoch']}: "
        f"{x['per_epoch']:.1f}x faster per epoch ({x['pyro_seconds']:.1f} s against {x['our_seconds']:.2f} s), "
        f"{x['per_image']:.1f}x with our epochs scaled to pyro's {p['train_images']:,} training images."
    )


def estimator(kind: str, num_samples: int = 100) -> str:
    """How the NLL of a row of the tables is estimated: ``kind`` is one of MODELS, "pyro NN" or "pyro CVAE"."""
    return {
        "baseline": "exact (deterministic)",
        "cvae": f"IS, S = {num_samples}, proposal q(z|x,y)",
        "gsnn": f"IS, S = {num_samples}, proposal p(z|x)",
        "hybrid": f"IS, S = {num_samples}, proposal q(z|x,y)",
        "pyro NN": "exact (deterministic), as printed by pyro's example",
        "pyro CVAE": "none: -ELBO as printed by pyro's example",
    }[kind]


def table_row(*cells: str) -> str:
    """One markdown table row; a ``|`` inside a cell (as in q(z|x,y)) is escaped, so it does not split the cell."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def markdown_table(results: dict) -> str:
    """The results as a markdown table: NLL / -ELBO per model and column, beside pyro's, with each row's estimator."""
    cols = sorted(results["columns"], key=int)
    n_seeds, S = len(results["seeds"]), results["settings"]["num_samples"]
    columns = results["columns"]

    def cell(d: dict) -> str:
        return f"{d['mean']:.1f} ± {d['sd']:.1f}" if n_seeds > 1 else f"{d['mean']:.1f}"

    def row(name: str, cells, how: str) -> str:
        return table_row(name, *cells, how)

    head = "| model | " + " | ".join(f"{c} quadrant{'s' if c != '1' else ''}: NLL / -ELBO" for c in cols)
    lines = [head + " | NLL estimator |", "|---|" + "---|" * (len(cols) + 1)]
    names = {"baseline": "NN (baseline)", "cvae": "CVAE", "gsnn": "GSNN", "hybrid": "hybrid (α = 0.5)"}
    for kind in MODELS:
        cells = [f"{cell(columns[c][kind]['nll'])} / {cell(columns[c][kind]['neg_elbo'])}" for c in cols]
        lines.append(row(names[kind], cells, estimator(kind, S)))
    gaps = [f"{columns[c]['gap']['nll']:.1f} / {columns[c]['gap']['neg_elbo']:.1f}" for c in cols]
    lines.append(row("gap NN - CVAE", gaps, "the rows above"))
    conv = results.get("convergence")
    if conv:
        lines.append(
            row(
                f"CVAE seed {conv['seed']}, NLL: S = {S} → S = {conv['num_samples']:,}",
                [f"{conv['cvae'][c]['nll_s100']:.2f} → {conv['cvae'][c]['nll']:.2f}" for c in cols],
                f"IS, S = {S} and {conv['num_samples']:,}, proposal q(z|x,y)",
            )
        )
    lines.append(row("pyro NN", [f"{results['pyro']['baseline'][c]}" for c in cols], estimator("pyro NN")))
    lines.append(row("pyro CVAE (-ELBO)", [f"{results['pyro']['cvae'][c]}" for c in cols], estimator("pyro CVAE")))
    lines.append(row("pyro gap", [f"{results['pyro_gap'][c]}" for c in cols], "pyro NN - pyro CVAE -ELBO"))
    seeds = ", ".join(map(str, results["seeds"]))
    notes = [
        "",
        f"Test set: {results['settings']['test_limit'] or 10000} MNIST test images, "
        "grey-level targets (not binarised), "
        f"Bernoulli likelihood, nats per example (lower is better). NLL = -log p(y|x) by importance sampling (IS) "
        f"with S = {S} (q(z|x,y) as proposal; the prior p(z|x) for the GSNN, whose recognition network is never "
        f"trained); exact for the deterministic baseline. -ELBO with one sample (for the GSNN its objective, the "
        f"ELBO with q = p(z|x)). " + (f"Mean ± sd over seeds {seeds}." if n_seeds > 1 else f"Seed {seeds}."),
    ]
    if conv:
        notes.append(
            f"The S = {conv['num_samples']:,} row: the shipped seed-{conv['seed']} CVAE of each column on all "
            f"{conv['test_images']:,} test images, beside the S = {S} figure of the same weights."
        )
    speed = results.get("speed")
    if speed:
        notes.append(speed_line(speed))
    return "\n".join(lines + notes) + "\n"
