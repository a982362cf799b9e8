"""`xb.optim.minimize`: the library's optimizers on a plain function with a hand-written
gradient, on every backend, against optax driven by the same gradient; the path it returns;
Python floats as the start; clear errors for what it cannot take. Also the clear error an
optimizer gives for parameters that are not numbers."""

from __future__ import annotations

import numpy as np
import pytest

from xbackprop import optim

optax = pytest.importorskip("optax", reason="optax is the reference (pip install optax)")


def rosenbrock(p):
    """f(x, y) = (1 - x)² + 100 (y - x²)²."""
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def rosenbrock_grad(p):
    """∂f/∂x = -2 (1 - x) - 400 x (y - x²);  ∂f/∂y = 200 (y - x²)."""
    return (-2 * (1 - p[0]) - 400 * p[0] * (p[1] - p[0] ** 2), 200 * (p[1] - p[0] ** 2))


START = (-1.5, 2.0)
STEPS = 40
# name -> (xbackprop optimizer, the optax one that does the same), rates that do not diverge
CASES = {
    "sgd": (lambda: optim.sgd(2e-4), lambda: optax.sgd(2e-4)),
    "momentum": (lambda: optim.momentum(2e-4, 0.9), lambda: optax.sgd(2e-4, momentum=0.9)),
    "nesterov": (lambda: optim.nesterov(2e-4, 0.9),
                 lambda: optax.sgd(2e-4, momentum=0.9, nesterov=True)),
    "adam": (lambda: optim.adam(0.05), lambda: optax.adam(0.05)),
    "rmsprop": (lambda: optim.rmsprop(0.01),
                lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-8, eps_in_sqrt=False)),
    "adagrad": (lambda: optim.adagrad(0.1), lambda: optax.adagrad(0.1)),
}


def optax_path(name):
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        tx = CASES[name][1]()
        x = jnp.asarray(START, dtype=jnp.float64)
        state, points = tx.init(x), [np.asarray(x)]
        for _ in range(STEPS):
            updates, state = tx.update(jnp.asarray(rosenbrock_grad(x)), state, x)
            x = optax.apply_updates(x, updates)
            points.append(np.asarray(x))
    return np.stack(points)


@pytest.mark.parametrize("name", CASES)
def test_rosenbrock_paths_match_optax(backend, name):
    path = optim.minimize(rosenbrock, rosenbrock_grad, START, CASES[name][0](), STEPS,
                          backend=backend)
    assert path.points.shape == (STEPS + 1, 2) and path.values.shape == (STEPS + 1,)
    assert path.points.dtype == np.float32
    reference = optax_path(name)
    np.testing.assert_allclose(path.points, reference, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(path.values, [rosenbrock(p) for p in reference], rtol=1e-3)
    assert path.value < path.values[0]                      # it went downhill
    np.testing.assert_array_equal(path.x, path.points[-1])


def test_float64_path_is_exact():
    path = optim.minimize(rosenbrock, rosenbrock_grad, START, CASES["adam"][0](), STEPS,
                          backend="numpy", dtype="float64")
    np.testing.assert_allclose(path.points, optax_path("adam"), rtol=1e-12, atol=1e-13)


def test_sgd_on_a_parabola_has_the_closed_form(backend):
    """f(x) = x², x ← x - lr · 2x: x_k = (1 - 2 lr)^k x0 (a Python float as the start)."""
    path = optim.minimize(lambda x: x * x, lambda x: 2 * x, 3.0, optim.sgd(0.1), 10,
                          backend=backend)
    assert path.points.shape == (11,)
    np.testing.assert_allclose(path.points, 3.0 * 0.8 ** np.arange(11), rtol=1e-6)
    np.testing.assert_allclose(path.values, (3.0 * 0.8 ** np.arange(11)) ** 2, rtol=1e-6)


def test_jit_and_eager_agree(jax_backend):
    runs = [optim.minimize(rosenbrock, rosenbrock_grad, START, optim.adam(0.05), 20,
                           backend=jax_backend, jit=jit) for jit in (True, False)]
    np.testing.assert_allclose(runs[0].points, runs[1].points, rtol=1e-6)


@pytest.mark.parametrize("x0", [(-1.5, 2), [-1.5, 2.0], np.array([-1.5, 2.0])])
def test_starts_given_as_numbers(x0):
    path = optim.minimize(rosenbrock, rosenbrock_grad, x0, optim.adam(0.05), 3, backend="jax")
    np.testing.assert_allclose(path.points[0], START)
    assert path.points.dtype == np.float32   # host numbers become float32 on any backend


def test_an_array_of_the_backend_keeps_its_dtype():
    x0 = np.array(START)   # float64, already a NumPy-backend array
    assert optim.minimize(rosenbrock, rosenbrock_grad, x0, optim.sgd(1e-4), 2
                          ).points.dtype == np.float64


@pytest.mark.parametrize("x0, error, match", [
    ({"x": 1.0}, TypeError, "x0=\\(x, y\\)"),
    ("ab", TypeError, "sequence of floats"),
    ([[1.0], [2.0, 3.0]], TypeError, "sequence of floats"),
    ([1.0, float("nan")], ValueError, "finite"),
])
def test_bad_starts(x0, error, match):
    with pytest.raises(error, match=match):
        optim.minimize(rosenbrock, rosenbrock_grad, x0, optim.sgd(0.1), 3)


def test_bad_functions_and_steps(backend):
    def run(f, grad, steps=3):
        return optim.minimize(f, grad, START, optim.sgd(0.1), steps, backend=backend)

    with pytest.raises(ValueError, match="grad returned shape \\(\\) for x of shape \\(2,\\)"):
        run(rosenbrock, lambda p: p[0])
    with pytest.raises(ValueError, match="f returned shape \\(2,\\)"):
        run(lambda p: p, rosenbrock_grad)
    with pytest.raises(ValueError, match="steps"):
        run(rosenbrock, rosenbrock_grad, -1)
    assert run(rosenbrock, rosenbrock_grad, 0).points.shape == (1, 2)


@pytest.mark.parametrize("params, where", [("1.0", "the parameter is a str"),
                                           ({"w": [np.ones(2), None, "b"]},
                                            "parameter 'w.2' is a str")])
@pytest.mark.parametrize("make", [optim.sgd, optim.adam])
def test_optimizers_name_parameters_that_are_not_numbers(make, params, where):
    with pytest.raises(TypeError, match=f"{where}.*xb.optim.minimize"):
        make(0.1).init(params)
