"""The quadrant experiment keeps each model's learning curves (the per-epoch history of ``fit``) in its records."""

import json

import cvae_utils as cu
from cvae_utils import quadrants as qx
from cvae_utils.experiments import quadrants as ex


def test_train_model_returns_its_history_and_the_record_keeps_it(tmp_path):
    settings = qx.Settings(
        hidden_dims=(16,), z_dim=2, max_epochs=2, num_val=100, num_samples=2, train_limit=400, test_limit=100
    )
    batches = qx.task_batches(1, settings, "cpu")
    quiet = lambda line: None  # noqa: E731
    base = ex.train_model("baseline", 1, 0, settings, batches, "cpu", log=quiet)
    cvae = ex.train_model("cvae", 1, 0, settings, batches, "cpu", base["model"], log=quiet)
    for out in (base, cvae):
        history = out["history"]
        assert [r["epoch"] for r in history] == list(range(1, out["epochs"] + 1))
        assert {"train_loss", "test_loss", "seconds"} <= set(history[0])
        assert cu.History(history).best()["epoch"] == out["best_epoch"]
    out = {
        kind: {**o, "model": None} for kind, o in (("baseline", base), ("cvae", cvae), ("gsnn", cvae), ("hybrid", cvae))
    }
    ex._save_record(1, 0, settings, out, {}, tmp_path)
    record = json.loads(ex.record_path(1, 0, tmp_path).read_text())
    assert record["models"]["cvae"]["history"] == json.loads(json.dumps(cvae["history"]))
