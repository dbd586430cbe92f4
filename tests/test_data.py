import gzip
import hashlib
import shutil
from pathlib import Path

import pytest
import torch

import cvae_utils as cu
from cvae_utils.data import MNIST_FILES

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"


def _sums(path: Path) -> dict[str, str]:
    """A sha256sum / md5sum listing as {file name: digest}."""
    return dict(line.split()[::-1] for line in path.read_text().splitlines() if line.strip())


def test_shipped_files_match_the_published_checksums():
    for name, (sha256, _) in MNIST_FILES.items():
        assert hashlib.sha256((DATA / f"{name}.gz").read_bytes()).hexdigest() == sha256


def test_checksum_files_agree_with_the_one_place_that_holds_the_sums():
    """MNIST's checksums live in cvae_utils.data.MNIST_FILES; the SHA256SUMS / MD5SUMS files shipped beside it agree."""
    folder = DATA
    assert _sums(folder / "SHA256SUMS") == {f"{name}.gz": sha256 for name, (sha256, _) in MNIST_FILES.items()}
    assert _sums(folder / "MD5SUMS.uncompressed") == {name: md5 for name, (_, md5) in MNIST_FILES.items()}


def test_load_mnist_shapes_ranges_and_first_labels(mnist_test):
    train = cu.load_mnist("train")
    assert train.images.shape == (60_000, 1, 28, 28) and train.images.dtype == torch.float32
    assert mnist_test.images.shape == (10_000, 1, 28, 28)
    assert train.labels.dtype == torch.long
    assert 0.0 == train.images.min() and train.images.max() == 1.0
    assert train.labels[:6].tolist() == [5, 0, 4, 1, 9, 2]
    assert mnist_test.labels[:6].tolist() == [7, 2, 1, 0, 4, 1]
    assert torch.bincount(train.labels).tolist()[1] == 6742  # the well-known count of ones


def test_load_mnist_limit_and_bad_arguments():
    assert len(cu.load_mnist("test", limit=100)) == 100
    with pytest.raises(ValueError, match="split"):
        cu.load_mnist("validation")
    with pytest.raises(ValueError, match="limit"):
        cu.load_mnist("test", limit=0)


def _copy_shipped(tmp_path):
    for name in MNIST_FILES:
        shutil.copy(DATA / f"{name}.gz", tmp_path / f"{name}.gz")


def test_prepare_unpacks_once_into_torchvision_layout(tmp_path):
    _copy_shipped(tmp_path)
    root = cu.data.prepare_mnist(tmp_path)
    raw = root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_FILES)
    stamp = (raw / "t10k-labels-idx1-ubyte").stat().st_mtime_ns
    cu.data.prepare_mnist(tmp_path)  # second call: nothing to unpack
    assert (raw / "t10k-labels-idx1-ubyte").stat().st_mtime_ns == stamp
    data = cu.load_mnist("test", data_dir=tmp_path, limit=6)
    assert data.labels.tolist() == [7, 2, 1, 0, 4, 1]


def test_corrupt_shipped_file_is_a_clear_error(tmp_path):
    _copy_shipped(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[1000] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(cu.DataIntegrityError, match="SHA-256.*git checkout"):
        cu.load_mnist("test", data_dir=tmp_path)


def test_corrupt_unpacked_file_is_a_clear_error(tmp_path):
    _copy_shipped(tmp_path)
    cu.data.prepare_mnist(tmp_path)
    # without the .gz beside it, a damaged unpacked file cannot be repaired silently
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    raw = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw.write_bytes(raw.read_bytes()[:-10])
    with pytest.raises(cu.DataIntegrityError, match="corrupt.*Delete it"):
        cu.data.prepare_mnist(tmp_path)


def test_damaged_unpacked_file_is_replaced_from_the_shipped_gz(tmp_path):
    _copy_shipped(tmp_path)
    cu.data.prepare_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw.write_bytes(b"garbage")
    cu.data.prepare_mnist(tmp_path)
    assert raw.read_bytes() == gzip.decompress((DATA / "t10k-labels-idx1-ubyte.gz").read_bytes())


def test_missing_files_and_no_download_names_both_remedies(tmp_path, monkeypatch):
    import torchvision.datasets

    class NoNetwork(torchvision.datasets.MNIST):
        def download(self):
            raise RuntimeError("no network here")

    monkeypatch.setattr(torchvision.datasets, "MNIST", NoNetwork)
    with pytest.raises(cu.DataIntegrityError) as err:
        cu.data.prepare_mnist(tmp_path / "empty")
    message = str(err.value)
    assert "no network here" in message
    assert "data/README.md" in message and "internet access" in message
    with pytest.raises(cu.DataIntegrityError, match="internet access"):
        cu.data.prepare_mnist(tmp_path / "empty", download=False)


def test_data_dir_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CVAE_DATA_DIR", str(tmp_path))
    assert cu.data.default_data_dir() == tmp_path
    monkeypatch.delenv("CVAE_DATA_DIR")
    assert cu.data.default_data_dir() == DATA


def test_binarize_options(mnist_test):
    images = mnist_test.images[:64]
    t = cu.binarize_images(images, "threshold")
    assert set(t.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(t, (images > 0.5).float())
    s1, s2 = cu.binarize_images(images, "sample", seed=3), cu.binarize_images(images, "sample", seed=3)
    assert torch.equal(s1, s2) and set(s1.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(s1, cu.binarize_images(images, "sample", seed=4))
    # a sampled pixel is on about as often as its grey level says
    assert abs(s1.mean().item() - images.mean().item()) < 0.01
    assert cu.binarize_images(images, None) is images
    with pytest.raises(ValueError, match="threshold"):
        cu.binarize_images(images, "otsu")
    assert set(cu.load_mnist("test", limit=10, binarize="threshold").images.unique().tolist()) == {0.0, 1.0}


def test_tensor_batches_cover_every_example_once_per_epoch():
    data = torch.arange(10).float()
    batches = cu.TensorBatches(data, data * 2, batch_size=4, seed=1)
    assert len(batches) == 3
    seen = torch.cat([a for a, _ in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for a, b in batches:
        assert torch.equal(b, a * 2)
    assert len(cu.TensorBatches(data, batch_size=4, drop_last=True)) == 2
    assert [len(a) for (a,) in cu.TensorBatches(data, batch_size=4, drop_last=True)] == [4, 4]
    ordered = torch.cat([a for (a,) in cu.TensorBatches(data, batch_size=3, shuffle=False)])
    assert torch.equal(ordered, data)


def test_tensor_batches_are_seeded_and_resumable():
    data = torch.arange(100)
    one = cu.TensorBatches(data, batch_size=10, seed=5)
    first = [b[0].tolist() for b in one]
    assert first == [b[0].tolist() for b in cu.TensorBatches(data, batch_size=10, seed=5)]
    state = one.state_dict()
    second = [b[0].tolist() for b in one]
    assert second != first
    other = cu.TensorBatches(data, batch_size=10, seed=99)
    other.load_state_dict(state)
    assert [b[0].tolist() for b in other] == second


def test_tensor_batches_bad_input():
    with pytest.raises(ValueError, match="same first dimension"):
        cu.TensorBatches(torch.zeros(3), torch.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        cu.TensorBatches(torch.zeros(3), batch_size=0)


def test_dataloader_path_gives_the_same_images(mnist_test):
    images, labels = next(iter(cu.mnist_dataloader("test", batch_size=32, shuffle=False)))
    assert torch.equal(images, mnist_test.images[:32])
    assert torch.equal(labels, mnist_test.labels[:32])


@pytest.mark.parametrize(
    "num_observed,expected",
    [(1, ["bottom-left"]), (2, ["top-left", "bottom-left"]), (3, ["top-left", "top-right", "bottom-left"])],
)
def test_quadrant_mask(num_observed, expected):
    m = cu.quadrants.quadrant_mask(num_observed)
    quads = {"top-left": m[:14, :14], "top-right": m[:14, 14:], "bottom-left": m[14:, :14], "bottom-right": m[14:, 14:]}
    for name, q in quads.items():
        assert q.all().item() if name in expected else not q.any().item(), name
    assert m.sum().item() == 196 * num_observed


def test_split_quadrants_is_complementary(mnist_test):
    images = mnist_test.images[:8]
    for n in (1, 2, 3):
        y, x, mask = cu.split_quadrants(images, n)
        assert x.shape == y.shape == mask.shape == images.shape
        assert torch.equal(torch.where(mask, y, x), images)
        assert (x[mask] == -1).all() and (y[~mask] == -1).all()
        assert mask[0, 0].sum().item() == 196 * (4 - n)
    y, x, mask = cu.Quadrants(2)(images, mnist_test.labels[:8])
    assert torch.equal(x, cu.split_quadrants(images, 2)[1])


def test_split_quadrants_bad_input(mnist_test):
    with pytest.raises(ValueError, match="1, 2 or 3"):
        cu.split_quadrants(mnist_test.images[:2], 4)
    with pytest.raises(ValueError, match="float tensor"):
        cu.split_quadrants((mnist_test.images[:2] * 255).to(torch.uint8), 1)
    with pytest.raises(ValueError, match="1, 2 or 3"):
        cu.Quadrants(0)


def test_train_val_split(mnist_test):
    train, val = cu.train_val_split(mnist_test, num_val=1000, seed=0)
    assert len(train) == 9000 and len(val) == 1000
    with pytest.raises(ValueError, match="num_val"):
        cu.train_val_split(mnist_test, num_val=10_000)
