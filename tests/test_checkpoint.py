import pickle

import pytest
import torch

import cvae_utils as cu


def test_save_and_load_model_round_trip(tmp_path):
    m = cu.ConditionalVAE((1, 28, 28), 4, num_classes=10, hidden_dims=[8, 16]).eval()
    path = cu.save_checkpoint(tmp_path / "sub" / "m.pt", m, note="hello")
    loaded = cu.load_model(path)
    assert type(loaded) is cu.ConditionalVAE and not loaded.training
    for a, b in zip(m.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert cu.read_checkpoint(path)["note"] == "hello"
    y, x = torch.rand(2, 1, 28, 28), torch.tensor([1, 2])
    assert torch.equal(m.generate(y, x), loaded.generate(y, x))
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]


def test_loading_into_another_architecture_is_a_clear_error(tmp_path):
    path = cu.save_checkpoint(tmp_path / "m.pt", cu.MLPCVAE(num_classes=10, hidden_dims=[16]))
    ckpt = cu.read_checkpoint(path)
    with pytest.raises(cu.CheckpointError, match="MLPCVAE.*ConditionalVAE"):
        cu.checkpoint.load_into(cu.ConditionalVAE((1, 28, 28), 4, num_classes=10, hidden_dims=[8]), ckpt)
    with pytest.raises(cu.CheckpointError, match="hidden_dims"):
        cu.checkpoint.load_into(cu.MLPCVAE(num_classes=10, hidden_dims=[32]), ckpt)


def test_missing_or_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(cu.CheckpointError, match="no checkpoint"):
        cu.load_model(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(cu.CheckpointError, match="not a readable checkpoint"):
        cu.load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(cu.CheckpointError, match="not a cvae_utils checkpoint"):
        cu.load_model(tmp_path / "plain.pt")


class Evil:
    def __reduce__(self):
        return (print, ("this code ran while loading",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_weights_only_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"config": Evil(), "state_dict": {}}, f)
    with pytest.raises(cu.CheckpointError, match="not a readable checkpoint"):
        cu.read_checkpoint(path)


def test_interrupted_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    m = cu.MLPCVAE(num_classes=10, hidden_dims=[16])
    path = cu.save_checkpoint(tmp_path / "m.pt", m, epoch=1)

    def broken_save(obj, f, *a, **k):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        cu.save_checkpoint(path, m, epoch=2)
    monkeypatch.undo()
    assert cu.read_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_models_without_config_cannot_be_saved(tmp_path):
    with pytest.raises(cu.CheckpointError, match="no .config"):
        cu.save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))


def test_float16_weights_halve_the_file_and_load_as_rounded(tmp_path):
    torch.manual_seed(0)
    model = cu.MLPCVAE(num_classes=10, z_dim=4, hidden_dims=[64])
    full = cu.save_checkpoint(tmp_path / "full.pt", model)
    half = cu.save_checkpoint(tmp_path / "half.pt", model, weights_dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loaded = cu.load_model(half)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # saving never rounds the model
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    rounded = cu.checkpoint.round_to_half(model)
    for (k, a), b in zip(rounded.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    assert not all(torch.equal(before[k], v) for k, v in rounded.state_dict().items())
