import pytest
import torch

import cvae_utils as cu


def small_model(seed=0, **kw):
    torch.manual_seed(seed)
    return cu.MLPCVAE(num_classes=10, z_dim=8, hidden_dims=[128], **kw)


def test_short_training_lowers_the_test_objective(mnist_small):
    train, test = mnist_small
    model = small_model()
    test_batches = cu.TensorBatches(test.images, test.labels, batch_size=500, shuffle=False)
    before = cu.evaluate(model, test_batches)
    history = cu.fit(
        model,
        cu.TensorBatches(train.images, train.labels, batch_size=100),
        test_batches,
        num_epochs=3,
        lr=2e-3,
        progress=False,
    )
    after = history.last()
    assert after["test_loss"] < before["loss"] - 100  # hundreds of nats better than the untrained model
    assert history["test_loss"][-1] < history["test_loss"][0]
    for key in ("train_loss", "train_recon", "train_kl", "train_elbo", "test_loss", "test_recon", "test_kl", "seconds"):
        assert len(history[key]) == 3
    assert history["epoch"] == [1, 2, 3]


def test_same_seed_gives_identical_results_on_cpu(mnist_small):
    train, _ = mnist_small
    runs = []
    for _ in range(2):
        model = small_model(seed=3)
        torch.manual_seed(3)
        h = cu.fit(
            model,
            cu.TensorBatches(train.images[:500], train.labels[:500], batch_size=50, seed=3),
            num_epochs=2,
            progress=False,
        )
        runs.append((h["train_loss"], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_resume_continues_exactly_where_training_stopped(tmp_path, mnist_small):
    train, test = mnist_small
    images, labels = train.images[:600], train.labels[:600]
    test_batches = cu.TensorBatches(test.images[:200], test.labels[:200], batch_size=100, shuffle=False)

    straight = small_model()
    torch.manual_seed(11)
    h_straight = cu.fit(
        straight,
        cu.TensorBatches(images, labels, batch_size=64, seed=1),
        test_batches,
        num_epochs=3,
        progress=False,
        kl_warmup_epochs=2,
    )

    ckpt = tmp_path / "run.pt"
    first = small_model()
    torch.manual_seed(11)
    cu.fit(
        first,
        cu.TensorBatches(images, labels, batch_size=64, seed=1),
        test_batches,
        num_epochs=1,
        progress=False,
        kl_warmup_epochs=2,
        checkpoint_path=ckpt,
    )
    torch.manual_seed(999)  # whatever happens in between must not matter
    resumed = small_model(seed=5)
    h_resumed = cu.fit(
        resumed,
        cu.TensorBatches(images, labels, batch_size=64, seed=1),
        test_batches,
        num_epochs=3,
        progress=False,
        kl_warmup_epochs=2,
        checkpoint_path=ckpt,
        resume=True,
    )

    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h.records]  # noqa: E731
    assert strip(h_straight) == strip(h_resumed)
    assert not list(tmp_path.glob(".*tmp"))  # the atomic save left no temporary file

    # a finished run resumes to nothing new
    again = cu.fit(
        small_model(),
        cu.TensorBatches(images, labels, batch_size=64),
        num_epochs=3,
        kl_warmup_epochs=2,
        checkpoint_path=ckpt,
        resume=True,
        progress=False,
    )
    assert len(again) == 3


def test_resume_from_a_checkpoint_of_another_model_is_a_clear_error(tmp_path, mnist_small):
    train, _ = mnist_small
    ckpt = tmp_path / "a.pt"
    batches = cu.TensorBatches(train.images[:100], train.labels[:100], batch_size=50)
    cu.fit(small_model(), batches, num_epochs=1, checkpoint_path=ckpt, progress=False)
    other = cu.MLPCVAE(num_classes=10, z_dim=4, hidden_dims=[64])
    with pytest.raises(cu.CheckpointError, match="load_model"):
        cu.fit(other, batches, num_epochs=2, checkpoint_path=ckpt, resume=True, progress=False)


def test_kl_warmup_weights_the_kl_term_during_training_only(mnist_small):
    train, test = mnist_small
    model = small_model()
    tb = cu.TensorBatches(test.images[:200], test.labels[:200], batch_size=100, shuffle=False)
    h = cu.fit(
        model,
        cu.TensorBatches(train.images[:500], train.labels[:500], batch_size=50),
        tb,
        num_epochs=1,
        kl_warmup_epochs=4,
        progress=False,
    )
    r = h.last()
    # the optimised loss used a KL weight below 1 ...
    assert r["train_loss"] < r["train_recon"] + r["train_kl"] - 1e-3
    # ... and the recorded ELBO and every test figure did not
    assert r["train_elbo"] == pytest.approx(-(r["train_recon"] + r["train_kl"]), rel=1e-5)
    assert r["test_loss"] == pytest.approx(r["test_recon"] + r["test_kl"], rel=1e-5)


def test_gradient_clipping_and_other_objectives(mnist_small):
    train, _ = mnist_small
    y, x, mask = cu.split_quadrants(train.images[:300], 2)
    batches = cu.TensorBatches(y, x, mask, batch_size=100)
    for objective in ("cvae", "gsnn", "hybrid"):
        m = cu.MLPCVAE(x_shape=(1, 28, 28), hidden_dims=[64], z_dim=4)
        h = cu.fit(m, batches, num_epochs=1, objective=objective, grad_clip=1.0, progress=False)
        assert torch.isfinite(torch.tensor(h["train_loss"])).all()
    assert "train_gsnn_recon" in h.keys()
    base = cu.BaselineNet(hidden_dims=[64])
    h = cu.fit(base, cu.TensorBatches(y, x, mask, batch_size=100), num_epochs=2, lr=3e-3, progress=False)
    assert h["train_loss"][1] < h["train_loss"][0]
    with pytest.raises(ValueError, match="grad_clip"):
        cu.fit(base, batches, num_epochs=1, grad_clip=0)
    with pytest.raises(ValueError, match="empty"):
        cu.fit(base, [], num_epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"\(y, x\) or \(y, x, mask\)"):
        cu.fit(base, [(y,)], num_epochs=1, progress=False)


class _GradRecorder(torch.optim.SGD):
    """SGD that records, at every step, the gradients it is about to apply and the raw
    gradients backward() produced (read by post-accumulate hooks, before any clipping)."""

    def __init__(self, params, lr):
        params = list(params)
        super().__init__(params, lr=lr)
        self.params, self._raw, self.steps = params, {}, []
        for p in params:
            p.register_post_accumulate_grad_hook(lambda p: self._raw.__setitem__(p, p.grad.detach().clone()))

    @torch.no_grad()
    def step(self, closure=None):
        used = [p for p in self.params if p.grad is not None]
        self.steps.append(([self._raw.pop(p) for p in used], [p.grad.detach().clone() for p in used]))
        return super().step(closure)


def _global_norm(grads):
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()


def _run_recorded(train, grad_clip):
    model = small_model(seed=1)
    opt = _GradRecorder(model.parameters(), lr=1e-3)
    batches = cu.TensorBatches(train.images[:128], train.labels[:128], batch_size=32, seed=0)
    torch.manual_seed(2)
    cu.fit(model, batches, num_epochs=1, optimizer=opt, grad_clip=grad_clip, progress=False)
    assert len(opt.steps) == 4
    return opt.steps


def test_gradient_clipping_rescales_the_global_norm_of_every_step(mnist_small):
    train, _ = mnist_small
    clip = 1.0
    unclipped = _run_recorded(train, None)
    for raw, used in unclipped:  # no clipping: the optimizer applies backward's gradients as they are
        assert all(torch.equal(r, u) for r, u in zip(raw, used))
    # on this seed and data the gradient is far above the limit (measured: about 16 at every step)
    assert min(_global_norm(used) for _, used in unclipped) > 5 * clip

    clipped = _run_recorded(train, clip)
    # same seed, same data: the first step's raw gradient is the unclipped run's
    assert all(torch.equal(a, b) for a, b in zip(clipped[0][0], unclipped[0][0]))
    for raw, used in clipped:
        raw_norm = _global_norm(raw)
        assert raw_norm > 5 * clip  # clipping had work to do at every step
        assert _global_norm(used) <= clip * (1 + 1e-5)
        assert _global_norm(used) == pytest.approx(clip, rel=1e-4)  # clipped to the limit, not below it
        scale = clip / raw_norm  # one factor for every parameter: the direction is kept
        for r, u in zip(raw, used):
            torch.testing.assert_close(u, r * scale, rtol=1e-4, atol=1e-7)

    # a limit above every gradient's norm leaves the gradients untouched (clipping, not normalising)
    loose = _run_recorded(train, 10 * max(_global_norm(used) for _, used in unclipped))
    for raw, used in loose:
        assert all(torch.equal(r, u) for r, u in zip(raw, used))


def test_history_plots(mnist_small):
    import matplotlib.pyplot as plt

    train, test = mnist_small
    tb = cu.TensorBatches(test.images[:100], test.labels[:100], batch_size=100, shuffle=False)
    h = cu.fit(
        small_model(),
        cu.TensorBatches(train.images[:200], train.labels[:200], batch_size=100),
        tb,
        num_epochs=2,
        progress=False,
    )
    axes = h.plot()
    assert [ax.get_title() for ax in axes][1].startswith("reconstruction")
    assert len(axes[0].get_lines()) == 2  # train and test
    with pytest.raises(KeyError, match="recorded"):
        h["nope"]
    plt.close("all")


def test_progress_bar_runs(mnist_small, capsys):
    train, _ = mnist_small
    cu.fit(small_model(), cu.TensorBatches(train.images[:100], train.labels[:100], batch_size=50), num_epochs=1)
    assert "training" in capsys.readouterr().err


def _quadrant_batches(images, batch_size=100, shuffle=True, seed=0):
    return cu.TensorBatches(images, batch_size=batch_size, shuffle=shuffle, seed=seed, transform=cu.Quadrants(2))


def test_early_stopping_stops_after_patience_epochs(mnist_small):
    # lr = 0: the deterministic baseline never improves after its first epoch
    train, test = mnist_small
    torch.manual_seed(0)
    model = cu.BaselineNet(hidden_dims=[32])
    h = cu.fit(
        model,
        _quadrant_batches(train.images),
        _quadrant_batches(test.images, shuffle=False),
        num_epochs=10,
        lr=0.0,
        patience=2,
        progress=False,
    )
    assert h["epoch"] == [1, 2, 3]


def test_early_stopping_gives_back_the_best_weights(mnist_small, capsys):
    # a far too large learning rate makes later epochs worse than an earlier one
    train, test = mnist_small
    torch.manual_seed(0)
    model = cu.BaselineNet(hidden_dims=[64])
    val = _quadrant_batches(test.images, shuffle=False)
    h = cu.fit(model, _quadrant_batches(train.images), val, num_epochs=30, lr=0.05, patience=2)
    assert len(h) < 30
    best = h.best("test_loss")
    assert best["epoch"] < h.last()["epoch"]
    assert cu.evaluate(model, val)["loss"] == pytest.approx(best["test_loss"], rel=1e-6)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"fit: {len(h)} epochs in ") and f"kept epoch {best['epoch']}" in line


def test_early_stopping_bad_arguments(mnist_small):
    train, _ = mnist_small
    batches = _quadrant_batches(train.images)
    with pytest.raises(ValueError, match="patience=0 must be >= 1"):
        cu.fit(cu.BaselineNet(hidden_dims=[8]), batches, batches, num_epochs=1, patience=0, progress=False)
    with pytest.raises(ValueError, match="needs test_batches"):
        cu.fit(cu.BaselineNet(hidden_dims=[8]), batches, num_epochs=1, patience=1, progress=False)
    with pytest.raises(KeyError, match="monitor='test_elbo' is not a recorded figure"):
        cu.fit(
            cu.BaselineNet(hidden_dims=[8]),
            batches,
            batches,
            num_epochs=1,
            patience=1,
            monitor="test_elbo",
            progress=False,
        )


def test_early_stopping_resumes_from_a_checkpoint(mnist_small, tmp_path):
    train, test = mnist_small
    ckpt = tmp_path / "run.pt"

    def run(num_epochs, resume):
        torch.manual_seed(0)
        model = cu.BaselineNet(hidden_dims=[32])
        h = cu.fit(
            model,
            _quadrant_batches(train.images, seed=1),
            _quadrant_batches(test.images, shuffle=False),
            num_epochs=num_epochs,
            lr=0.05,
            patience=2,
            checkpoint_path=ckpt if resume is not None else None,
            resume=bool(resume),
            progress=False,
        )
        return model, h

    straight_model, straight = run(30, None)
    run(2, False)
    resumed_model, resumed = run(30, True)
    assert resumed["test_loss"] == pytest.approx(straight["test_loss"])
    for a, b in zip(straight_model.parameters(), resumed_model.parameters()):
        assert torch.equal(a, b)


def test_fit_prints_one_summary_line(mnist_small, capsys):
    train, test = mnist_small
    model = small_model()
    cu.fit(
        model,
        cu.TensorBatches(train.images[:200], train.labels[:200], batch_size=100),
        cu.TensorBatches(test.images[:200], test.labels[:200], batch_size=100, shuffle=False),
        num_epochs=2,
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("fit: 2 epochs in ") and "epoch 2: train loss" in out[0]
    assert "test loss" in out[0]
    cu.fit(
        model, cu.TensorBatches(train.images[:200], train.labels[:200], batch_size=100), num_epochs=1, progress=False
    )
    assert capsys.readouterr().out == ""


def test_summary_line_of_a_resumed_run_counts_and_times_only_the_new_epochs(mnist_small, tmp_path, capsys):
    from cvae_utils.train import _summary_line

    records = [{"epoch": e, "train_loss": 100.0 - e, "test_loss": 99.0 - e, "seconds": 3.0} for e in range(1, 21)]
    records += [{"epoch": e, "train_loss": 100.0 - e, "test_loss": 99.0 - e, "seconds": 2.5} for e in (21, 22)]
    h = cu.History(records)
    fresh = _summary_line(h, False, None)
    assert fresh.startswith("fit: 22 epochs in 65.0 s (2.95 s/epoch); epoch 22: train loss 78.00, test loss 77.00")
    resumed = _summary_line(h, False, None, resumed_epochs=20)
    assert resumed == (
        "fit: 2 new epochs (22 in all) in 5.0 s (2.50 s/epoch); epoch 22: train loss 78.00, test loss 77.00"
    )
    assert _summary_line(h, False, None, resumed_epochs=22).startswith("fit: 0 new epochs (22 in all); epoch 22:")
    assert _summary_line(h, False, None, resumed_epochs=21).startswith("fit: 1 new epoch (22 in all) in 2.5 s")
    assert _summary_line(cu.History(records[:1]), False, None).startswith("fit: 1 epoch in 3.0 s (3.00 s/epoch);")

    # through fit: 1 epoch, then resumed to 3
    train, test = mnist_small
    ckpt = tmp_path / "run.pt"

    def run(num_epochs, resume):
        return cu.fit(
            small_model(),
            cu.TensorBatches(train.images[:200], train.labels[:200], batch_size=100, seed=1),
            cu.TensorBatches(test.images[:200], test.labels[:200], batch_size=100, shuffle=False),
            num_epochs=num_epochs,
            checkpoint_path=ckpt,
            resume=resume,
        )

    run(1, False)
    assert capsys.readouterr().out.strip().startswith("fit: 1 epoch in ")  # singular for one epoch
    h = run(3, True)
    line = capsys.readouterr().out.strip()
    new_seconds = sum(h["seconds"][1:])
    assert line.startswith(f"fit: 2 new epochs (3 in all) in {new_seconds:.1f} s ({new_seconds / 2:.2f} s/epoch);")
    assert "epoch 3: train loss" in line
