"""xb.plot: every picture is a real PNG of a sensible size, shows what it is given (checked
on the pixels where that is simple), and fails clearly without matplotlib or a folder."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import plot

from .examples.conftest import check_png

pytest.importorskip("matplotlib", reason="matplotlib: pip install 'xbackprop[plot]'")

RNG = np.random.default_rng(0)


def test_history_and_histories(tmp_path):
    history = {"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.6, 0.4],
               "accuracy": [0.5, 0.7, 0.9], "val_accuracy": [0.4, 0.6, 0.8]}
    check_png(plot.plot_history(history, tmp_path / "h.png"))
    check_png(plot.plot_histories({"a": history, "b": history}, tmp_path / "hs.png",
                                  metrics=("loss", "val_accuracy")), (700, 300))


def test_curves(tmp_path):
    steps = np.arange(1, 101)
    path = plot.plot_curves({"E": 1 / steps, "F": 2 / steps}, tmp_path / "c.png", x=steps,
                            log=True, logx=True, xlabel="step", ylabel="error")
    check_png(path)


def test_fit(tmp_path):
    x = np.linspace(-2, 2, 50)
    path = plot.plot_fit(x, x ** 2, x ** 2 + 0.1, tmp_path / "f.png", truth=x ** 2,
                         train_range=(-1.5, 1.5), history=[3.0, 1.0, 0.5])
    check_png(path, (800, 300))


def decision_pixels(path):
    """The RGB colour a quarter and three quarters across the middle of the first panel."""
    pixels = check_png(path)
    h, w = pixels.shape[:2]
    return pixels[h // 2, int(w * 0.2), :3], pixels[h // 2, int(w * 0.55), :3]


def test_decision_regions_colour_the_plane_by_class(tmp_path):
    """A model that says class 0 left of x = 0 and class 1 right of it: the two sides of the
    picture get the two class colours."""
    x = RNG.uniform(-1, 1, size=(40, 2))
    y = (x[:, 0] > 0).astype(int)

    def predict(points):
        return np.stack([-points[:, 0], points[:, 0]], axis=1) * 10

    path = plot.plot_decision_regions(predict, x, y, tmp_path / "d.png",
                                      bounds=(-1, 1, -1, 1))
    left, right = decision_pixels(path)
    blue, orange = np.array([0.12, 0.47, 0.71]), np.array([1.0, 0.5, 0.05])
    assert np.argmax(left - left.mean()) == np.argmax(blue - blue.mean())       # bluish
    assert np.argmax(right - right.mean()) == np.argmax(orange - orange.mean())  # orange


def test_decision_surface_of_one_output(tmp_path):
    x, y = xb.data.xor()
    path = plot.plot_decision_regions(lambda p: 1 / (1 + np.exp(-10 * (p[:, :1] - 0.5))),
                                      x, y, tmp_path / "s.png", annotate=True, history=[1, 0.5])
    check_png(path, (800, 300))


def test_optimizer_paths_and_surface(tmp_path):
    def f(p):
        return p[0] ** 2 + 3 * p[1] ** 2

    paths = {"a": np.array([[-1.5, 2.0], [-1.0, 1.0], [0.0, 0.0]]),
             "b": np.array([[-1.5, 2.0], [0.5, 0.5]])}
    check_png(plot.plot_optimizer_paths(f, paths, tmp_path / "p.png", minimum=(0, 0)))
    check_png(plot.plot_optimizer_paths(f, paths, tmp_path / "q.png", log=False))
    check_png(plot.plot_surface(f, paths, tmp_path / "s.png"))


def test_parallel_coordinates(tmp_path):
    labels = np.repeat([0, 1, 2], 20)
    layers = [("in", RNG.normal(size=(60, 2))), ("hidden", RNG.normal(size=(60, 5)))]
    check_png(plot.plot_parallel_coordinates(layers, labels, tmp_path / "pc.png"), (600, 300))


def test_filters_feature_maps_and_matrices(tmp_path):
    check_png(plot.plot_filters(RNG.normal(size=(6, 1, 3, 3)), tmp_path / "f.png"), (400, 150))
    stages = [("input", RNG.uniform(size=(1, 8, 8))), ("conv", RNG.normal(size=(4, 8, 8)))]
    check_png(plot.plot_feature_maps(stages, tmp_path / "m.png"))
    check_png(plot.plot_matrices({"x": np.arange(16.0).reshape(4, 4), "y": np.eye(2)},
                                 tmp_path / "x.png", block=2))


def small_record(hidden=2):
    model = xb.Sequential([xb.Dense(hidden), xb.Sigmoid(), xb.Dense(1), xb.Sigmoid()])
    params = xb.init_params(model, 0, (2,))
    return xb.explain(model, params, [[0.1, 0.2]], [[1.0]], "mse", xb.optim.sgd(0.5))


def test_network_diagram(tmp_path):
    check_png(plot.plot_network(small_record(), tmp_path / "n.png"), (600, 250))


def test_network_diagram_refuses_what_it_cannot_draw(tmp_path):
    with pytest.raises(ValueError, match="at most 6 units"):
        plot.plot_network(small_record(hidden=7), tmp_path / "n.png")
    model = xb.Sequential([xb.Dense(2), xb.Softmax()])
    record = xb.explain(model, xb.init_params(model, 0, (2,)), [[0.1, 0.2]], [[1.0, 0.0]],
                        "mse")
    with pytest.raises(ValueError, match="Dense layers and elementwise activations"):
        plot.plot_network(record, tmp_path / "n.png")


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot.plot_curves({"a": [1, 2]}, tmp_path / "missing" / "c.png")


def test_without_matplotlib_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # `import matplotlib` now fails
    with pytest.raises(ImportError, match=r"pip install 'xbackprop\[plot\]'"):
        plot.plot_curves({"a": [1, 2]}, tmp_path / "c.png")
