import platform
import random
import sys

import pytest
import torch

import cvae_utils as cu


def test_get_device_order(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert cu.get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert cu.get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cu.get_device() == torch.device("cuda")
    assert cu.get_device("cpu") == torch.device("cpu")


def test_asking_for_a_missing_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"available: \['cpu'\]"):
        cu.get_device("cuda")


def test_seed_everything_repeats():
    g = cu.seed_everything(7)
    a = (random.random(), torch.rand(3), torch.rand(2, generator=g))
    g = cu.seed_everything(7)
    b = (random.random(), torch.rand(3), torch.rand(2, generator=g))
    assert a[0] == b[0] and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_file_digest(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert cu.files.file_digest(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert cu.files.file_digest(p, "md5") == "900150983cd24fb0d6963f7d28e17f72"


def test_image_grid_and_show_images():
    import matplotlib.pyplot as plt

    images = torch.rand(12, 1, 28, 28)
    grid = cu.image_grid(images, nrow=6)
    assert grid.shape == (2 * 28 + 3 * 2, 6 * 28 + 7 * 2, 3)
    _, x, _ = cu.split_quadrants(images, 1)
    assert (cu.image_grid(x, fill_value=-1.0) == 0.5).any()
    ax = cu.show_images(images, nrow=6, title="digits")
    assert ax.get_title() == "digits"
    with pytest.raises(ValueError, match="images must be"):
        cu.image_grid(torch.rand(28, 28))
    plt.close("all")


def _run(code: str) -> str:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_tune_cpu_allocator_applies_once_on_glibc():
    # a fresh process, so that the setting does not leak into the other tests
    out = _run("import cvae_utils as cu; print(cu.utils.tune_cpu_allocator(), cu.utils.tune_cpu_allocator())")
    assert out == "True True"


def test_tune_cpu_allocator_is_a_no_op_elsewhere():
    out = _run("import sys, cvae_utils as cu; sys.platform = 'darwin'; print(cu.utils.tune_cpu_allocator())")
    assert out == "False"


@pytest.mark.parametrize("kwargs", [{"mmap_threshold_mib": 0}, {"mmap_threshold_mib": 64}, {"trim_threshold_mib": -1}])
def test_tune_cpu_allocator_rejects_bad_thresholds(kwargs):
    with pytest.raises(ValueError, match="must"):
        cu.utils.tune_cpu_allocator(**kwargs)
