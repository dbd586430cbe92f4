"""Files the library writes and ships: atomic writes, digests, manifests, and where files go.

One of each: :func:`atomic_write` is the only way the library writes a file, and a
``MANIFEST.json`` (:func:`read_manifest`, :func:`verified_file`, :func:`record_files`) is
the only way it vouches for a shipped one. A manifest reads

    {"files": {"label_cvae.pt": {"sha256": "...", "bytes": 3493079, ...what the file is...}},
     ...anything else the folder wants to record...}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

CACHE_DIR_ENV_VAR = "CVAE_CACHE_DIR"
MANIFEST_NAME = "MANIFEST.json"
_PACKAGE_DIR = Path(__file__).resolve().parent


class DataIntegrityError(RuntimeError):
    """A data or weights file is missing, corrupt, or not the one its manifest vouches for."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` in one step.

    An interrupted or failed write leaves ``path`` as it was and no temporary file behind.

    >>> with atomic_write("out.json", "w") as f:
    ...     f.write("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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


# ----------------------------------------------------------------------------------
# Where files live
# ----------------------------------------------------------------------------------


def repository_root() -> Path | None:
    """The clone this package runs from (an editable install, as in the README), or None.

    A plain ``pip install`` puts the package in site-packages, where the folder above it
    is not the repository: then files the library writes go to :func:`user_cache_dir`.
    """
    root = _PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "data").is_dir() and (root / "notebooks").is_dir():
        return root
    return None


def user_cache_dir() -> Path:
    """``$CVAE_CACHE_DIR``, else ``~/.cache/cvae_utils``: where a plain install keeps what it writes."""
    env = os.environ.get(CACHE_DIR_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cvae_utils"


def shipped_dir(name: str) -> Path | None:
    """The repository's ``data/<name>`` folder (shipped files), or None outside a clone."""
    root = repository_root()
    return root / "data" / name if root is not None else None


def writable_dir(name: str) -> Path:
    """Where the library may write files of kind ``name``: the clone's ``data/<name>``, else the user cache."""
    return shipped_dir(name) or user_cache_dir() / name


# ----------------------------------------------------------------------------------
# Manifests
# ----------------------------------------------------------------------------------


def read_manifest(directory: str | os.PathLike) -> dict:
    """The folder's ``MANIFEST.json`` ({} when there is none)."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text())
    if not isinstance(manifest.get("files", {}), dict):
        raise DataIntegrityError(f"{path} is not a manifest: its 'files' entry must map file names to records.")
    return manifest


def file_problem(directory: str | os.PathLike, filename: str) -> str | None:
    """None when ``filename`` matches its manifest record, else what is wrong, in words."""
    path = Path(directory) / filename
    entry = read_manifest(directory).get("files", {}).get(filename)
    if entry is None:
        return f"{path} is not listed in {Path(directory) / MANIFEST_NAME}"
    if not path.is_file():
        return f"{path} is missing"
    actual = file_digest(path)
    if actual != entry["sha256"]:
        return f"{path} does not match {MANIFEST_NAME} (SHA-256 {actual[:12]}..., expected {entry['sha256'][:12]}...)"
    return None


def verified_file(directory: str | os.PathLike, filename: str, remedy: str = "") -> Path:
    """The path of ``filename`` in ``directory`` if its SHA-256 matches the manifest.

    Otherwise a :class:`DataIntegrityError` that says what is wrong, followed by ``remedy``.
    """
    problem = file_problem(directory, filename)
    if problem is not None:
        raise DataIntegrityError(f"{problem}. {remedy}".strip())
    return Path(directory) / filename


def unverified_files(directory: str | os.PathLike) -> list[str]:
    """The files of the manifest that are missing or altered (empty when all are intact)."""
    names = read_manifest(directory).get("files", {})
    return [name for name in names if file_problem(directory, name) is not None]


def record_files(directory: str | os.PathLike, files: dict[str, dict], **extra) -> dict:
    """Add (or replace) the records of ``files`` ({name: what it is}) in the manifest, with digests and sizes.

    ``extra`` entries are stored at the top level of the manifest. Returns the manifest.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    records = manifest.setdefault("files", {})
    for name, meta in files.items():
        path = directory / name
        records[name] = {**meta, "sha256": file_digest(path), "bytes": path.stat().st_size}
    manifest.update(extra)
    with atomic_write(directory / MANIFEST_NAME, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
