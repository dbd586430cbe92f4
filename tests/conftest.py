import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import cvae_utils as cu  # noqa: E402


@pytest.fixture(scope="session")
def mnist_test():
    """The MNIST test split on the CPU (loaded once per session)."""
    return cu.load_mnist("test")


@pytest.fixture(scope="session")
def mnist_small(mnist_test):
    """2,000 training-like and 1,000 held-out images from the test split, for fast runs."""
    return cu.MNISTSplit(mnist_test.images[:2000], mnist_test.labels[:2000]), cu.MNISTSplit(
        mnist_test.images[2000:3000], mnist_test.labels[2000:3000]
    )


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright, for a module's browser tests: skipped when a piece is
    missing, a failure under CVAE_BROWSER_REQUIRED (CI). test_browser.py and test_demo.py override it, as they
    need JupyterLab or Voila too."""
    from tools import lab_browser as lb

    lb.require(lb.missing_browser())
    with lb.chromium_session() as chromium:
        yield chromium
