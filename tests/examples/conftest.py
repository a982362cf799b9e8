"""Shared checks for the examples' tests: a picture is a real PNG of the expected size that
is not blank."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path: str | Path, min_size: tuple[int, int] = (300, 200)) -> np.ndarray:
    """Assert that `path` is a PNG at least `min_size` (width, height) pixels whose pixels are
    not all one colour (a blank or failed figure), and return its pixels (H, W, channels)."""
    image = pytest.importorskip("matplotlib.image", reason="matplotlib: pip install "
                                "'xbackprop[plot]'")
    path = Path(path)
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG file"
    pixels = image.imread(path)
    height, width = pixels.shape[:2]
    assert width >= min_size[0] and height >= min_size[1], (
        f"{path} is {width}x{height}, smaller than {min_size[0]}x{min_size[1]}")
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 16, f"{path} has only {len(colours)} colours: a blank picture?"
    return pixels


_RESULTS: dict[tuple, object] = {}


@pytest.fixture(scope="session")
def mnist_folder(tmp_path_factory) -> Path:
    """The real MNIST test pair where this checkout has it (../shared/data/mnist), else the
    shipped 8x8 digits blown up to 28x28 and written as an MNIST test pair."""
    from tests.data.conftest import shared_mnist

    import xbackprop as xb

    real = shared_mnist()
    if real is not None:
        return real
    folder = tmp_path_factory.mktemp("mnist")
    digits = xb.data.load_digits(flatten=False, test_fraction=0.5)
    images = np.concatenate([digits.x_train, digits.x_test])[:, 0]        # (N, 8, 8)
    images = np.pad(np.kron(images, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))  # (N, 28, 28)
    xb.data.save_idx(folder / "t10k-images-idx3-ubyte.gz", (images * 255).astype(np.uint8))
    xb.data.save_idx(folder / "t10k-labels-idx1-ubyte.gz",
                     np.concatenate([digits.y_train, digits.y_test]).astype(np.uint8))
    return folder


@pytest.fixture(scope="session", autouse=True)
def data_home(mnist_folder, tmp_path_factory) -> Iterator[Path]:
    """A data cache ($XBACKPROP_DATA) holding MNIST, so examples that read it by default run
    in the registry's tests as a user's would after `xbackprop data download mnist`."""
    import shutil

    from xbackprop.data import DATA_ENV_VAR

    home = tmp_path_factory.mktemp("data-home")
    shutil.copytree(mnist_folder, home / "mnist")
    before = os.environ.get(DATA_ENV_VAR)
    os.environ[DATA_ENV_VAR] = str(home)
    yield home
    if before is None:
        os.environ.pop(DATA_ENV_VAR, None)
    else:
        os.environ[DATA_ENV_VAR] = before


@pytest.fixture(params=["numpy", "jax"])
def lesson_backend(request: pytest.FixtureRequest) -> str:
    """NumPy and JAX, the backends every example is tested on (JAX skipped, with the
    reason, where it is not installed)."""
    if request.param == "jax":
        request.getfixturevalue("jax_backend")
    return request.param


@pytest.fixture(scope="session")
def quick():
    """`quick(name, backend, **options)`: the example's --quick result, run once per session
    and shared by the tests that read it (an example takes up to a few seconds on JAX)."""
    from xbackprop import examples

    def result(name: str, backend: str = "numpy", **options):
        key = (name, backend, tuple(sorted(options.items())))
        if key not in _RESULTS:
            _RESULTS[key] = examples.run(name, backend=backend, quick=True, **options)
        return _RESULTS[key]

    return result


@pytest.fixture(scope="session")
def pictures(quick, tmp_path_factory):
    """`pictures(name)`: the PNG paths of the example's quick NumPy result, drawn once."""
    from xbackprop import examples

    drawn: dict[str, list[Path]] = {}

    def paths(name: str) -> list[Path]:
        if name not in drawn:
            folder = tmp_path_factory.mktemp(name)
            drawn[name] = examples.draw(name, quick(name), folder)
        return drawn[name]

    return paths
