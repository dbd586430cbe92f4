"""Device choice and seeding."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import torch


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then the CPU.

    ``prefer`` (e.g. ``"cpu"``) overrides the choice; asking for a device that is not
    available is an error that says what is.
    """
    available = ["cpu"]
    if torch.backends.mps.is_available():
        available.insert(0, "mps")
    if torch.cuda.is_available():
        available.insert(0, "cuda")
    if prefer is None:
        return torch.device(available[0])
    if torch.device(prefer).type not in available:
        raise ValueError(f"device {prefer!r} is not available here; available: {available}.")
    return torch.device(prefer)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy (if installed) and PyTorch (CPU and CUDA); return a seeded CPU generator.

    With the same seed, results on the CPU are identical from run to run.
    """
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # NumPy is optional for the library
        pass
    return torch.Generator().manual_seed(seed)


_digest_cache: dict[tuple[str, int, int, str], str] = {}


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, cached per (path, size, modification time) within the process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, algorithm)
    if key not in _digest_cache:
        h = hashlib.new(algorithm)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _digest_cache[key] = h.hexdigest()
    return _digest_cache[key]
