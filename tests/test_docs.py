"""Every library function a notebook teaches points back to the section that derives it (as d2l's helpers do).

The pointer is one docstring line in one of two forms,

    Derived in notebook 4, "The ELBO assembled".
    Taught in notebook 5, "Training with `cu.fit`".

("Derived" where the notebook derives the maths or builds the thing by hand and checks the library against it,
"Taught" where it explains it), naming a ``## `` heading of ``notebooks/NN_*.ipynb`` without its leading number
("4. "). The pointers are found by walking every public function, class and method of ``cvae_utils``, so a renamed
section or a renumbered notebook fails here until the docstring follows. No model is trained, no notebook run.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest

import cvae_utils

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
POINTER = re.compile(r'^(Derived|Taught) in notebook (\d+), "([^"\n]+)"\.$')
NUMBERING = re.compile(r"^\d+\.\s+")  # "4. The ELBO assembled" -> "The ELBO assembled"

# The names the series teaches first of all: each must carry a pointer.
CORE = [
    "losses.kl_diag_gaussians",
    "losses.kl_standard_normal",
    "losses.gaussian_log_density",
    "losses.log_mean_exp",
    "losses.bernoulli_log_likelihood",
    "losses.gaussian_log_likelihood",
    "losses.elbo_terms",
    "losses.cvae_terms",
    "losses.gsnn_terms",
    "losses.hybrid_terms",
    "losses.importance_sampled_log_likelihood",
    "models.base.BaseVAE.encode",
    "models.base.BaseVAE.prior",
    "models.base.BaseVAE.decode",
    "models.base.BaseVAE.reparameterize",
    "models.base.BaseVAE.loss_function",
    "models.base.BaseVAE.sample",
    "models.mlp_cvae.MLPCVAE",
    "models.conv_cvae.ConditionalVAE",
    "models.quadrant.BaselineNet",
    "models.quadrant.QuadrantCVAE",
    "models.classifier.DigitClassifier",
    "toy.LinearGaussianCVAE",
    "train.fit",
    "train.evaluate",
    "data.load_mnist",
    "data.TensorBatches",
    "sampling.latent_usage",
    "sampling.render_samples",
    "sampling.sampler_widget",
    "sampling.standardised_latent",
    "sampling.transfer_style",
    "sampling.conditional_accuracy",
    "quadrants.split_quadrants",
    "quadrants.completions",
    "quadrants.test_figures",
]


def _modules():
    yield cvae_utils
    for info in pkgutil.walk_packages(cvae_utils.__path__, prefix="cvae_utils."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            yield importlib.import_module(info.name)


def _documented_objects() -> dict[str, str]:
    """{"module.qualname" (without "cvae_utils."): docstring} of every public function, class and method."""
    docs: dict[str, str] = {}
    for module in _modules():
        short = module.__name__.removeprefix("cvae_utils").lstrip(".")
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if obj.__module__ != module.__name__:  # imported from elsewhere: listed where it is defined
                continue
            key = f"{short}.{name}" if short else name
            docs[key] = obj.__doc__ or ""
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    elif isinstance(member, property):
                        member = member.fget
                    if inspect.isfunction(member):
                        docs[f"{key}.{attr}"] = member.__doc__ or ""
    return docs


def _pointer_lines(doc: str) -> list[str]:
    return [line.strip() for line in doc.splitlines() if re.search(r"\b(Derived|Taught) in notebook", line)]


def _notebook_sections() -> dict[int, tuple[Path, set[str]]]:
    """{notebook number: (path, its ``## `` section titles without their leading number)}."""
    sections = {}
    for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        titles = set()
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                for line in "".join(cell["source"]).splitlines():
                    if line.startswith("## "):
                        titles.add(NUMBERING.sub("", line[3:].strip()))
        sections[int(path.name[:2])] = (path, titles)
    return sections


DOCS = _documented_objects()
POINTERS = [
    (name, int(m[2]), m[3]) for name, doc in DOCS.items() for line in _pointer_lines(doc) if (m := POINTER.match(line))
]
SECTIONS = _notebook_sections()


def test_the_walk_finds_the_library_and_its_pointers():
    assert "losses.kl_diag_gaussians" in DOCS and "models.base.BaseVAE.reparameterize" in DOCS
    assert "sampling.render_samples" in DOCS and "quadrants.split_quadrants" in DOCS
    assert len(POINTERS) >= len(CORE), POINTERS


def test_every_pointer_line_has_the_one_form():
    bad = {name: line for name, doc in DOCS.items() for line in _pointer_lines(doc) if not POINTER.match(line)}
    assert not bad, f'write the pointer as: Derived in notebook N, "<section title>".  Found: {bad}'


def test_each_object_points_to_one_section_at_most():
    many = {name: lines for name, doc in DOCS.items() if len(lines := _pointer_lines(doc)) > 1}
    assert not many, many


def test_every_pointer_in_the_source_is_on_a_public_object():
    """A pointer on a private helper or in a module docstring would escape the checks below."""
    in_source = 0
    for path in (ROOT / "cvae_utils").rglob("*.py"):
        in_source += sum(bool(re.search(r"\b(Derived|Taught) in notebook \d", line)) for line in path.open())
    assert in_source == len(POINTERS)


@pytest.mark.parametrize("name, notebook, section", POINTERS, ids=[p[0] for p in POINTERS])
def test_the_pointer_names_a_section_of_the_notebook(name, notebook, section):
    assert notebook in SECTIONS, f"{name} points to notebook {notebook}: no notebooks/{notebook:02d}_*.ipynb"
    path, titles = SECTIONS[notebook]
    assert section in titles, (
        f'{name} points to section "{section}" of {path.name}, which has no such "## " heading. '
        f"Its sections: {sorted(titles)}"
    )


@pytest.mark.parametrize("name", CORE)
def test_each_core_name_points_to_the_section_that_teaches_it(name):
    assert name in DOCS, f"cvae_utils.{name} is gone: update CORE"
    found = [p for p in POINTERS if p[0] == name]
    assert found, f'the docstring of cvae_utils.{name} has no line  Derived in notebook N, "<section>".'


def test_no_loose_notebook_mentions_remain():
    """A loose "(notebook 4)" or "(notebooks 1 and 4)" in a docstring: write the precise pointer instead."""
    loose = re.compile(r"\(notebooks? \d[^)]*\)|see notebook \d")
    found = {name: loose.findall(doc) for name, doc in DOCS.items() if loose.search(doc)}
    assert not found, found
