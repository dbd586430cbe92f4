"""MNIST for the series: verified, unpacked once, loaded through torchvision.

Two ways to feed a model:

* the **fast path**: :func:`load_mnist` puts a whole split on the device as one float
  tensor and :class:`TensorBatches` draws shuffled mini-batches from it by indexing
  on the device; no per-image Python work happens in the training loop;
* the **teaching path**: :func:`mnist_dataloader`, the textbook
  ``torchvision.datasets.MNIST`` + ``ToTensor`` + ``DataLoader`` pipeline, kept for
  comparison (``benchmarks/bench_mlp_throughput.py`` times both).

The paper's structured-output task (the quadrants of a digit) is in :mod:`cvae_utils.quadrants`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .files import DataIntegrityError, atomic_write, file_digest, repository_root, user_cache_dir

# The one place that holds MNIST's checksums. The four files as shipped in data/ (gzip -9n
# of the originals): SHA-256 of the .gz and MD5 of the uncompressed IDX file (the well-known
# sums torchvision also checks). data/SHA256SUMS and data/MD5SUMS.uncompressed list the same
# sums for sha256sum / md5sum, and a test keeps them equal to these.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train-images-idx3-ubyte": (
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    "train-labels-idx1-ubyte": (
        "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
        "a25bea736e30d166cdddb491f175f624",
    ),
    "t10k-images-idx3-ubyte": (
        "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
        "2646ac647ad5339dbf082846283269ea",
    ),
    "t10k-labels-idx1-ubyte": (
        "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
        "27ae3e4e09519cfbb04c329615203637",
    ),
}

DATA_DIR_ENV_VAR = "CVAE_DATA_DIR"
SPLITS = ("train", "test")
BINARIZE_METHODS = (None, "threshold", "sample")

# ----------------------------------------------------------------------------------
# Files: verify, unpack, fall back to torchvision's download
# ----------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """Where MNIST lives: ``$CVAE_DATA_DIR``, else the repository's ``data/``, else a cache.

    The repository's ``data/`` is used when this package runs from a clone (an
    editable install, as in the README's set-up); a plain ``pip install`` of the
    package has no ``data/`` beside it and uses ``~/.cache/cvae_utils``.
    """
    env = os.environ.get(DATA_DIR_ENV_VAR)
    if env:
        return Path(env).expanduser()
    root = repository_root()
    return root / "data" if root is not None else user_cache_dir()


def _raw_dir(root: Path) -> Path:
    # The layout torchvision.datasets.MNIST reads: <root>/MNIST/raw/<uncompressed files>.
    return root / "MNIST" / "raw"


def _raw_is_valid(path: Path, md5: str) -> bool:
    return path.is_file() and file_digest(path, "md5") == md5


def _unpack(gz_path: Path, raw_path: Path, md5: str) -> None:
    remedy = (
        f"Restore the file from the repository (git checkout -- {gz_path.name}) "
        "or delete it so that torchvision downloads MNIST instead."
    )
    try:
        with atomic_write(raw_path) as dst, gzip.open(gz_path, "rb") as src:
            digest = hashlib.md5()
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
            if digest.hexdigest() != md5:
                raise DataIntegrityError(f"{gz_path} unpacks to a file whose MD5 is not MNIST's ({md5}). {remedy}")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataIntegrityError(f"could not unpack {gz_path}: {err}. {remedy}") from err


def prepare_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Make sure the four MNIST files are ready for torchvision; return its ``root``.

    For every file: a shipped ``.gz`` in ``data_dir`` must have the expected SHA-256
    (else :class:`DataIntegrityError`); it is unpacked once into
    ``<data_dir>/MNIST/raw/``, and the unpacked file's MD5 is checked on every call.
    If the shipped files are absent, torchvision's downloader is tried (``download``);
    if that fails too, the error names both remedies.
    """
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    raw_dir = _raw_dir(root)
    missing = []
    for name, (sha256, md5) in MNIST_FILES.items():
        gz_path, raw_path = root / f"{name}.gz", raw_dir / name
        if gz_path.is_file():
            actual = file_digest(gz_path, "sha256")
            if actual != sha256:
                raise DataIntegrityError(
                    f"{gz_path} is corrupt or was changed: its SHA-256 is {actual}, expected "
                    f"{sha256} (see data/README.md). Restore it from the repository "
                    f"(git checkout -- data/{gz_path.name}), or delete it so that torchvision "
                    "downloads MNIST instead."
                )
            if not _raw_is_valid(raw_path, md5):
                _unpack(gz_path, raw_path, md5)
        elif raw_path.exists():
            if not _raw_is_valid(raw_path, md5):
                raise DataIntegrityError(
                    f"{raw_path} is corrupt: its MD5 is not MNIST's ({md5}). Delete it and "
                    "load again (the shipped .gz or torchvision's download will replace it)."
                )
        else:
            missing.append(name)
    if missing:
        _download(root, missing, download)
    return root


def _download(root: Path, missing: Sequence[str], download: bool) -> None:
    remedy = (
        f"Either put the four MNIST .gz files that ship with this repository in {root} "
        "(see data/README.md; on a machine with git: git checkout -- data/), "
        f"or run on a machine with internet access so that torchvision can download MNIST into {root}."
    )
    if not download:
        raise DataIntegrityError(f"MNIST files missing from {root}: {', '.join(missing)}. {remedy}")
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    except Exception as err:  # any network or file failure: report both remedies
        raise DataIntegrityError(
            f"MNIST files missing from {root} ({', '.join(missing)}) and torchvision's "
            f"download failed ({type(err).__name__}: {err}). {remedy}"
        ) from err
    for name in missing:
        md5 = MNIST_FILES[name][1]
        if not _raw_is_valid(_raw_dir(root) / name, md5):
            raise DataIntegrityError(f"the downloaded {name} does not have MNIST's MD5 {md5}. {remedy}")


# ----------------------------------------------------------------------------------
# Tensors
# ----------------------------------------------------------------------------------


@dataclass
class MNISTSplit:
    """One split as tensors: ``images`` (N, 1, 28, 28) float in [0, 1], ``labels`` (N,) long."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> MNISTSplit:
        return MNISTSplit(self.images.to(device), self.labels.to(device))


def binarize_images(images: Tensor, method: str | None, seed: int = 0) -> Tensor:
    """Binarise grey levels in [0, 1].

    ``method``:
      * ``None``: keep the grey levels (a Bernoulli likelihood on grey-level targets,
        as in pyro's CVAE example);
      * ``"threshold"``: pixel > 0.5 becomes 1 (deterministic);
      * ``"sample"``: each pixel is 1 with probability equal to its grey level, drawn
        once with ``seed`` (a fixed, "statically" binarised copy).

    Log-likelihoods are only comparable between runs that binarise the same way.

    Taught in notebook 3, "Grey levels under a Bernoulli".
    """
    if method is None:
        return images
    if method == "threshold":
        return (images > 0.5).to(images.dtype)
    if method == "sample":
        g = torch.Generator(device="cpu").manual_seed(seed)
        u = torch.rand(images.shape, generator=g).to(images.device)
        return (u < images).to(images.dtype)
    raise ValueError(
        f"binarize={method!r} is not one of {BINARIZE_METHODS}: use None (grey levels), "
        "'threshold' (pixel > 0.5) or 'sample' (Bernoulli draw, fixed seed)."
    )


def load_mnist(
    split: str = "train",
    device: torch.device | str = "cpu",
    *,
    binarize: str | None = None,
    limit: int | None = None,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> MNISTSplit:
    """Load a whole MNIST split as tensors on ``device`` (the fast path).

    ``split`` is ``"train"`` (60,000 images) or ``"test"`` (10,000); ``limit`` keeps the
    first ``limit`` images (quick runs). ``binarize``: see :func:`binarize_images`.

    Taught in notebook 5, "The data, on the device".
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}.")
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit} must be a positive number of images, or None for all.")
    from torchvision.datasets import MNIST

    root = prepare_mnist(data_dir)
    ds = MNIST(str(root), train=split == "train", download=False)
    images, labels = ds.data, ds.targets
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    images = images.unsqueeze(1).to(torch.float32).div_(255.0)
    images = binarize_images(images, binarize, seed=seed)
    return MNISTSplit(images.to(device), labels.to(torch.long).to(device))


def train_val_split(data: MNISTSplit, num_val: int = 10_000, seed: int = 0) -> tuple[MNISTSplit, MNISTSplit]:
    """Hold out ``num_val`` random examples of ``data`` (for early stopping)."""
    if not 0 < num_val < len(data):
        raise ValueError(f"num_val={num_val} must be between 1 and {len(data) - 1} for {len(data)} examples.")
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).to(data.labels.device)
    val, train = perm[:num_val], perm[num_val:]
    return (MNISTSplit(data.images[train], data.labels[train]), MNISTSplit(data.images[val], data.labels[val]))


class TensorBatches:
    """Mini-batches drawn from tensors that already live on the device.

    Every epoch the example indices are permuted (a seeded CPU generator, so the
    order is the same on every device) and each batch is gathered with one
    ``index_select`` per tensor on the tensors' device. ``transform`` maps a batch
    tuple to another (for example :class:`Quadrants`). ``state_dict`` and
    ``load_state_dict`` let a checkpoint resume the exact batch order.

    Taught in notebook 5, "The data, on the device".
    """

    def __init__(
        self,
        *tensors: Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        transform: Callable[..., tuple] | None = None,
    ) -> None:
        if not tensors:
            raise ValueError("TensorBatches needs at least one tensor.")
        n = len(tensors[0])
        for t in tensors:
            if len(t) != n:
                raise ValueError(f"all tensors need the same first dimension; got {[len(t) for t in tensors]}.")
            if t.device != tensors[0].device:
                raise ValueError(f"all tensors must be on one device; got {[str(t.device) for t in tensors]}.")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1.")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    @property
    def num_examples(self) -> int:
        return len(self.tensors[0])

    def __len__(self) -> int:
        n, b = self.num_examples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n, b = self.num_examples, self.batch_size
        stop = n - n % b if self.drop_last else n
        if self.shuffle:
            perm = torch.randperm(n, generator=self.generator).to(self.tensors[0].device)
        for start in range(0, stop, b):
            if self.shuffle:
                idx = perm[start : start + b]
                batch = tuple(t.index_select(0, idx) for t in self.tensors)
            else:
                batch = tuple(t[start : start + b] for t in self.tensors)
            yield self.transform(*batch) if self.transform is not None else batch

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def mnist_dataloader(
    split: str = "train",
    batch_size: int = 128,
    *,
    shuffle: bool | None = None,
    num_workers: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> torch.utils.data.DataLoader:
    """The textbook pipeline: ``torchvision.datasets.MNIST`` with ``ToTensor`` in a ``DataLoader``.

    Each image passes through PIL and ``ToTensor`` one by one. Yields ``(images, labels)``
    like the fast path. Slower; kept for teaching and for the benchmark.

    Taught in notebook 5, "The data, on the device".
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}.")
    from torchvision import transforms
    from torchvision.datasets import MNIST

    root = prepare_mnist(data_dir)
    ds = MNIST(str(root), train=split == "train", download=False, transform=transforms.ToTensor())
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=(split == "train") if shuffle is None else shuffle, num_workers=num_workers
    )
