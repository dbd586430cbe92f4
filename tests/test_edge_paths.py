"""The edge paths a careful read of the library found broken (issue 11, section 1), one test or more each.

Each failed on the library as it was before the issue and passes now; the docstring names the bug.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cvae_utils as cu
from cvae_utils import files, pretrained
from cvae_utils.checkpoint import FORMAT_VERSION
from cvae_utils.experiments import pretrained as recipes

ROOT = Path(__file__).resolve().parents[1]


def label_batches(split, n=128, batch_size=32):
    return cu.TensorBatches(split.images[:n], split.labels[:n], batch_size=batch_size, seed=0)


def small_label_cvae(seed=0):
    torch.manual_seed(seed)
    return cu.MLPCVAE(num_classes=10, z_dim=4, hidden_dims=[32])


# --- 1. KL warm-up and batches without a length ---------------------------------------


def test_kl_warmup_without_a_batch_count_is_a_clear_error(mnist_small):
    """Bug 1: with a generator of batches, fit silently trained without warm-up."""
    train, _ = mnist_small
    batches = (b for b in label_batches(train))
    with pytest.raises(ValueError, match=r"kl_warmup_epochs=2 needs the number of batches.*no len\(\)"):
        cu.fit(small_label_cvae(), batches, num_epochs=1, kl_warmup_epochs=2, progress=False)


def test_kl_warmup_weights_the_kl_below_one_in_the_first_epoch(mnist_small):
    train, _ = mnist_small
    history = cu.fit(small_label_cvae(), list(label_batches(train)), num_epochs=1, kl_warmup_epochs=2, progress=False)
    record = history.last()
    assert record["train_loss"] < record["train_recon"] + record["train_kl"] - 1e-3  # the KL counted less than 1x


# --- 2. the convolutional CVAE and a batch of one image --------------------------------


def test_conv_cvae_trains_samples_and_generates_on_one_image(mnist_small):
    """Bug 2: at 28 px the default architecture reached a 1 x 1 bottleneck, where BatchNorm fails on one image."""
    train, _ = mnist_small
    model = cu.ConditionalVAE((1, 28, 28), num_classes=10, z_dim=4)
    assert min(model.bottleneck[1:]) >= 2
    batches = cu.TensorBatches(train.images[:65], train.labels[:65], batch_size=32, drop_last=False)
    assert [len(y) for y, _ in batches][-1] == 1  # n % batch_size == 1: the last batch holds one image
    history = cu.fit(model, batches, num_epochs=1, progress=False)
    assert history.last()["train_loss"] > 0
    assert model.sample(1, 3).shape == (1, 1, 28, 28)
    assert model.generate(train.images[:1], train.labels[:1]).shape == (1, 1, 28, 28)


def test_conv_cvae_refuses_an_architecture_that_shrinks_the_image_to_one_pixel():
    with pytest.raises(ValueError, match=r"shrink a 28 x 28 image to 1 x 1.*at most 4 entries"):
        cu.ConditionalVAE((1, 28, 28), 4, num_classes=10, hidden_dims=[8, 8, 8, 8, 8])


def test_conv_cvae_works_on_non_square_images():
    model = cu.ConditionalVAE((2, 28, 32), num_classes=3, z_dim=4, hidden_dims=[8, 16])
    y, x = torch.rand(3, 2, 28, 32), torch.tensor([0, 1, 2])
    assert model(y, x).decoded.shape == y.shape
    assert model.sample(2, 1).shape == (2, 2, 28, 32)
    assert cu.build_model(model.config).y_shape == (2, 28, 32)


# --- 3. saving never moves the caller's model --------------------------------------------


def _refuse_moves(model):
    def refuse(*args, **kwargs):
        raise AssertionError("saving moved or converted the caller's model")

    model._apply = refuse
    return model


def test_save_checkpoint_never_moves_the_model(tmp_path):
    """Bug 3: load_pretrained's retrain path saved with model.cpu(), handing a CPU model back to a CUDA caller."""
    model = _refuse_moves(small_label_cvae())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cu.save_checkpoint(tmp_path / "m.pt", model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_load_pretrained_retrain_path_saves_to_the_cache_without_moving_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("CVAE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CVAE_QUICK", "0")  # full mode: the retrained weights are kept for next time
    trained = _refuse_moves(small_label_cvae())
    monkeypatch.setattr(recipes, "train_recipe", lambda name, device, **k: (trained, {"test_loss": 1.0}))
    model = pretrained.load_pretrained("label_cvae", "cpu", retrain=True, progress=False)
    assert model is trained
    cached = tmp_path / "pretrained" / "label_cvae.pt"
    assert files.file_problem(cached.parent, cached.name) is None  # saved, and recorded in the cache's manifest
    assert pretrained.verified_path("label_cvae").parent == pretrained.PRETRAINED_DIR  # shipped files untouched


# --- 5. resuming checks what it resumes ------------------------------------------------


@pytest.fixture
def three_epochs(tmp_path, mnist_small):
    train, _ = mnist_small
    ckpt = tmp_path / "run.pt"
    cu.fit(small_label_cvae(), label_batches(train), num_epochs=3, lr=1e-3, checkpoint_path=ckpt, progress=False)
    return ckpt, train


@pytest.mark.parametrize(
    "changed",
    [{"lr": 3e-3}, {"objective": "hybrid"}, {"objective": "gsnn"}, {"kl_warmup_epochs": 1}, {"grad_clip": 5.0}],
)
def test_resume_with_other_settings_is_refused(three_epochs, changed):
    """Bug 5: resuming with another lr, objective, alpha, ... was silently accepted."""
    ckpt, train = three_epochs
    with pytest.raises(cu.CheckpointError, match=f"other settings \\({next(iter(changed))}: .* Resume with"):
        cu.fit(
            small_label_cvae(),
            label_batches(train),
            num_epochs=4,
            checkpoint_path=ckpt,
            resume=True,
            progress=False,
            **changed,
        )


def test_resume_with_fewer_epochs_than_trained_is_refused(three_epochs):
    ckpt, train = three_epochs
    with pytest.raises(cu.CheckpointError, match="already trained 3 epochs, more than num_epochs=1"):
        cu.fit(
            small_label_cvae(), label_batches(train), num_epochs=1, checkpoint_path=ckpt, resume=True, progress=False
        )
    more = cu.fit(
        small_label_cvae(), label_batches(train), num_epochs=4, checkpoint_path=ckpt, resume=True, progress=False
    )
    assert len(more) == 4


def test_alpha_matters_only_to_the_hybrid_objective(tmp_path, mnist_small):
    train, _ = mnist_small
    ckpt = tmp_path / "h.pt"
    kw = dict(num_epochs=1, checkpoint_path=ckpt, progress=False, objective="hybrid")
    cu.fit(small_label_cvae(), label_batches(train), alpha=0.5, **kw)
    with pytest.raises(cu.CheckpointError, match="alpha: 0.5 in the checkpoint, 0.9 now"):
        cu.fit(small_label_cvae(), label_batches(train), alpha=0.9, resume=True, **{**kw, "num_epochs": 2})


@pytest.mark.parametrize("fmt", [None, FORMAT_VERSION + 1])
def test_checkpoint_format_is_read(tmp_path, fmt):
    path = cu.save_checkpoint(tmp_path / "m.pt", small_label_cvae())
    ckpt = torch.load(path, weights_only=True)
    if fmt is None:
        del ckpt["format"]
    else:
        ckpt["format"] = fmt
    torch.save(ckpt, path)
    with pytest.raises(cu.CheckpointError, match=f"checkpoint format {fmt}.*reads formats"):
        cu.read_checkpoint(path)


# --- 6. a loss that is no longer finite ----------------------------------------------------


def test_nan_loss_stops_training_naming_epoch_and_step_and_keeps_the_good_checkpoint(tmp_path, mnist_small):
    """Bug 6: a NaN or infinite loss trained on silently (lr=1e6 gave NaN epochs)."""
    train, _ = mnist_small
    model = small_label_cvae()
    calls = {"n": 0}
    objective = model.objective

    def poisoned(*args, **kwargs):  # epoch 2, step 3 (4 steps per epoch) returns NaN
        calls["n"] += 1
        terms = objective(*args, **kwargs)
        if calls["n"] == 4 + 3:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    model.objective = poisoned
    ckpt = tmp_path / "run.pt"
    with pytest.raises(cu.TrainingDiverged, match=r"NaN or infinite at epoch 2, step 3.*after epoch 1.*lr=0.001"):
        cu.fit(model, label_batches(train), num_epochs=3, checkpoint_path=ckpt, progress=False)
    saved = cu.read_checkpoint(ckpt)
    assert saved["epoch"] == 1
    for k, v in model.state_dict().items():  # the model is given back with the last good epoch's weights
        assert torch.isfinite(v).all() and torch.equal(v, saved["state_dict"][k])


def test_an_exploding_learning_rate_is_reported():
    torch.manual_seed(0)
    y, x = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    with pytest.raises(cu.TrainingDiverged, match="epoch 1"):
        cu.fit(small_label_cvae(), [(y, x)] * 4, num_epochs=20, lr=1e6, progress=False)


# --- 7. the importance-sampled likelihood: bounded memory, eval mode ------------------------


def test_importance_sampling_decodes_at_most_max_rows_and_runs_in_eval_mode():
    """Bug 7: a batch above max_rows decoded all its rows at once; a BatchNorm model updated its statistics."""
    torch.manual_seed(0)
    model = cu.ConditionalVAE((1, 12, 12), num_classes=10, z_dim=3, hidden_dims=[4])
    model.train()
    rows = []
    decode = model.decode
    model.decode = lambda z, x: rows.append(len(z)) or decode(z, x)
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    y, x = torch.rand(300, 1, 12, 12), torch.randint(0, 10, (300,))
    ll = cu.importance_sampled_log_likelihood(model, y, x, num_samples=7, max_rows=100)
    assert ll.shape == (300,) and torch.isfinite(ll).all()
    assert max(rows) <= 100 and sum(rows) == 300 * 7
    assert model.training  # given back in the mode it had
    for k, v in stats.items():
        assert torch.equal(model.state_dict()[k], v), f"{k} changed during evaluation"


# --- 8. a plain pip install writes nothing into site-packages -------------------------------


def test_outside_a_clone_files_go_to_the_user_cache(tmp_path, monkeypatch):
    """Bug 8: a plain install wrote weights into site-packages (the folder above the package)."""
    monkeypatch.setattr(files, "_PACKAGE_DIR", tmp_path / "site-packages" / "cvae_utils")
    monkeypatch.setenv("CVAE_CACHE_DIR", str(tmp_path / "cache"))
    assert files.repository_root() is None and files.shipped_dir("pretrained") is None
    assert files.writable_dir("quadrants") == tmp_path / "cache" / "quadrants"
    assert cu.data.default_data_dir() == tmp_path / "cache"


def test_a_plain_install_knows_it_is_not_the_repository(tmp_path):
    import shutil

    source, target = tmp_path / "source", tmp_path / "site-packages"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "cvae_utils"):  # a copy: building writes build/ beside the source
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import cvae_utils, cvae_utils.files as f, cvae_utils.pretrained as p, cvae_utils.quadrants as q\n"
        "import cvae_utils.experiments.quadrants as e\n"
        f"print(cvae_utils.__file__.startswith({str(target)!r}), f.repository_root(), p.PRETRAINED_DIR,"
        " q.QUADRANTS_DIR, e.QUADRANTS_DIR)"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "CVAE_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    cache = str(tmp_path / "cache" / "quadrants")
    assert out == ["True", "None", "None", cache, cache]  # weights read from, and written to, the user cache
    assert not (target / "data").exists()
    assert (target / "cvae_utils" / "models" / "base.py").is_file()  # every subpackage is installed


# --- 9. y and x from different batches ----------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda m, y, x: m(y, x),
    lambda m, y, x: m.encode(y, x),
    lambda m, y, x: cu.cvae_terms(m, y, x),
    lambda m, y, x: cu.gsnn_terms(m, y, x),
    lambda m, y, x: m.generate(y, x),
    lambda m, y, x: cu.importance_sampled_log_likelihood(m, y, x, num_samples=2),
])  # fmt: skip
def test_y_and_x_of_different_batch_sizes_get_the_library_s_message(call):
    """Bug 9: they reached torch's raw "Sizes of tensors must match"."""
    model = small_label_cvae()
    with pytest.raises(ValueError, match="y and x must hold one entry per example, but y has 4, x has 3"):
        call(model, torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3]))


def test_a_mask_that_does_not_fit_y_gets_the_library_s_message():
    with pytest.raises(ValueError, match=r"mask \(3, 1, 28, 28\) does not fit y"):
        cu.bernoulli_log_likelihood(torch.zeros(4, 1, 28, 28), torch.rand(4, 1, 28, 28), torch.ones(3, 1, 28, 28))
