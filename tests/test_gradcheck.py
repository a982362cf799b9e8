"""Every hand-written gradient in the library, proven against JAX autodiff and finite
differences on every backend; and proof that the checker itself catches wrong gradients.

The cases come from the layer and loss registries (`builtin_cases`), so a new layer is
checked here as soon as it exists, without a new test.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xbackprop as xb
from xbackprop.gradcheck import TOLERANCES, builtin_cases, layer_cases, loss_cases
from xbackprop.layers.base import layer_classes
from xbackprop.losses import loss_classes

CASES = builtin_cases(seed=0)
CASE_IDS = [f"{i}-{c.name}-{'train' if c.train else 'eval'}" for i, c in enumerate(CASES)]


def test_every_builtin_layer_and_loss_is_discovered():
    """The registry finds every public layer and loss class, and each lists examples."""
    public_layers = {name for name in xb.__all__
                     if isinstance(getattr(xb, name), type) and issubclass(getattr(xb, name),
                                                                            xb.Layer)}
    public_layers -= {"Layer", "Sequential"}
    assert public_layers <= set(layer_classes())
    public_losses = {name for name in xb.__all__
                     if isinstance(getattr(xb, name), type) and issubclass(getattr(xb, name),
                                                                            xb.Loss)} - {"Loss"}
    assert public_losses <= set(loss_classes())
    checked = {c.name for c in CASES}
    assert set(layer_classes()) | set(loss_classes()) == checked
    # layers that behave differently in training are checked in both modes
    assert {"Dropout", "BatchNorm"} <= {c.name for c in CASES if c.train}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_hand_written_matches_jax_vjp_float64(case, backend, jax_backend):
    """Op by op on every backend (JAX eager included)."""
    report = case.run(backend=backend, dtype="float64", oracle="jax", jit=False)
    assert report.ok, report
    assert {r.oracle for r in report.rows} == {"jax.vjp"}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_hand_written_under_jax_jit_matches_jax_vjp_float64(case, jax_backend):
    """The hand-written forward and backward compiled whole by jax.jit, as a train step
    runs them (the "jax-jit" backend of the proofs)."""
    report = case.run(backend=jax_backend, dtype="float64", oracle="jax", jit=True)
    assert report.ok, report
    assert report.backend == "jax (jit)"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_hand_written_matches_finite_differences(case, backend):
    report = case.run(backend=backend, dtype="float64", oracle="fd")
    assert report.ok, report
    assert all(r.oracle.startswith("fd") for r in report.rows)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float32_backward_within_float32_tolerance(case, backend, jax_backend):
    report = case.run(backend=backend, dtype="float32", oracle="jax")
    assert report.ok, report
    assert report.rows[0].rtol == TOLERANCES[("jax", "float32")][0]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), batch=st.sampled_from([1, 2, 3, 5]))
def test_random_shapes_and_batch_sizes(seed, batch):
    """Shapes and values drawn by hypothesis, batch size 1 and odd sizes included, every
    layer and loss, on NumPy against finite differences (no JAX needed, fast)."""
    for case in layer_cases(layer_classes(), seed=seed, batch=batch) + loss_cases(seed):
        report = case.run(backend="numpy", oracle="fd", seed=seed)
        assert report.ok, report


# -- the checker must be able to fail ---------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TransposedDense(xb.Dense):
    """A classic bug: the weight gradient transposed (dy^T x instead of x^T dy), on a square
    layer so the shapes still fit."""

    def param_grads(self, params, cache, dy):
        grads = super().param_grads(params, cache, dy)
        return dict(grads, W=grads["W"].T)


@dataclasses.dataclass(frozen=True)
class HalfTanh(xb.Tanh):
    """A missing factor: backward returns half the true input gradient."""

    def backward(self, params, cache, dy):
        dx, grads = super().backward(params, cache, dy)
        return 0.5 * dx, grads


@dataclasses.dataclass(frozen=True)
class ForgetfulDense(xb.Dense):
    """Forgets the bias gradient."""

    def param_grads(self, params, cache, dy):
        return {"W": super().param_grads(params, cache, dy)["W"]}


@pytest.mark.parametrize("oracle", ["jax", "fd"])
def test_transposed_weight_gradient_is_caught_and_named(oracle, jax_backend):
    report = xb.check_layer(TransposedDense(4), input_shape=(3, 4), backend="numpy",
                            oracle=oracle)
    assert not report.ok
    assert [r.tensor for r in report.failures()] == ["W"]
    row = report.failures()[0]
    assert row.max_rel > 1e-2  # an O(1) error, far outside the tolerance
    assert len(row.worst) == 3
    index, hand, expected = row.worst[0]
    assert len(index) == 2 and hand != pytest.approx(expected)
    text = str(report)
    assert "WRONG" in text and "FAIL" in text and "W[" in text and "hand-written" in text


def test_missing_factor_is_caught_in_input_gradient(backend):
    report = xb.check_layer(HalfTanh(), input_shape=(2, 3), backend=backend, oracle="fd")
    assert [r.tensor for r in report.failures()] == ["x"]
    # the report shows the hand-written value is half the oracle's
    _, hand, expected = report.failures()[0].worst[0]
    assert hand == pytest.approx(0.5 * expected, rel=1e-6)


def test_missing_gradient_is_reported():
    report = xb.check_layer(ForgetfulDense(2), input_shape=(3, 2), backend="numpy", oracle="fd")
    (row,) = report.failures()
    assert row.tensor == "b" and "no gradient" in row.note


def test_assert_layer_gradients_raises_with_the_table():
    with pytest.raises(xb.GradientCheckError, match=r"(?s)W.*FAIL"):
        xb.assert_layer_gradients(TransposedDense(3), (2, 3), backend="numpy", oracle="fd")
    report = xb.assert_layer_gradients(xb.Dense(3), (2, 3), backend="numpy", oracle="fd")
    assert report.ok


def test_directional_check_catches_bugs_in_large_tensors():
    """Tensors above the full-Jacobian size get random-direction checks; they still fail on
    a wrong gradient."""
    good = xb.check_layer(xb.Dense(20), (8, 20), backend="numpy", oracle="fd")
    assert good.ok, good
    assert any("dirs" in r.oracle for r in good.rows)  # W has 400 elements
    bad = xb.check_layer(TransposedDense(20), (8, 20), backend="numpy", oracle="fd")
    assert [r.tensor for r in bad.failures()] == ["W"]


# -- models, losses and functions ---------------------------------------------------------

def test_check_model_through_loss_mlp(backend):
    model = xb.Sequential([xb.Dense(6), xb.Tanh(), xb.Dense(4), xb.ReLU(), xb.Dense(3)])
    labels = np.array([0, 2, 1, 2, 0])
    report = xb.check_model(model, (5, 7), loss=xb.SoftmaxCrossEntropy(), target=labels,
                            backend=backend, oracle="fd")
    assert report.ok, report
    assert [r.tensor for r in report.rows] == ["x", "0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]


def test_check_model_cnn_with_batchnorm_and_dropout_in_train_mode(backend, jax_backend):
    model = xb.Sequential([xb.Conv2D(3, 3, padding=1), xb.BatchNorm(), xb.ReLU(),
                           xb.MaxPool2D(2), xb.Dropout(0.3), xb.Flatten(), xb.Dense(2)])
    report = xb.check_model(model, (3, 2, 6, 6), loss="cross_entropy", target=np.array([0, 1, 1]),
                            backend=backend, oracle="both", train=True)
    assert report.ok, report


def test_check_function_user_code(backend):
    def forward(x, w):
        xp = xb.backend_of(x, w).xp
        s = xp.sin(x)
        return s * w, (s, xp.cos(x), w)

    def backward(cache, dy):
        s, c, w = cache
        return {"x": dy * w * c, "w": dy * s}

    inputs = {"x": np.linspace(-2, 2, 6), "w": np.arange(6.0)}
    assert xb.check_function(forward, backward, inputs, backend=backend, oracle="fd").ok

    def wrong_backward(cache, dy):
        s, c, w = cache
        return {"x": dy * w * s, "w": dy * s}  # d sin/dx is cos, not sin

    report = xb.check_function(forward, wrong_backward, inputs, backend=backend, oracle="fd")
    assert [r.tensor for r in report.failures()] == ["x"]


def test_check_loss_at_extreme_logits():
    big = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]])
    for loss, target in [(xb.SoftmaxCrossEntropy(), np.array([1, 0])),
                         (xb.BinaryCrossEntropyWithLogits(), (big > 0) * 1.0)]:
        value, cache = loss.forward(big, target)
        assert np.isfinite(value)
        assert np.isfinite(loss.backward(cache)).all()


# -- the oracle leaves JAX as it found it -------------------------------------------------

def test_jax_oracle_does_not_change_global_x64(jax_backend):
    import jax
    import jax.numpy as jnp

    before = jax.config.jax_enable_x64
    f32 = jax.jit(lambda a: jnp.sum(a * a))
    expected = f32(jnp.arange(4.0))
    xb.check_layer(xb.Dense(2), (2, 3), backend="jax", oracle="both")
    xb.check_layer(xb.Dense(2), (2, 3), backend="numpy", oracle="jax")
    assert jax.config.jax_enable_x64 == before
    assert jnp.ones(3).dtype == jnp.float32
    assert f32(jnp.arange(4.0)).dtype == jnp.float32
    assert f32(jnp.arange(4.0)) == expected


def test_jax_oracle_without_jax_is_a_clear_error_and_fd_still_works(tmp_path):
    """With JAX unimportable, oracle='jax' says what to install; 'auto' uses finite
    differences and the report says so."""
    code = textwrap.dedent("""
        import sys
        sys.modules["jax"] = None   # import jax now raises ImportError
        import xbackprop as xb
        r = xb.check_layer(xb.Dense(2), (2, 3), backend="numpy")
        assert r.ok and {row.oracle for row in r.rows} == {"fd"}, r
        try:
            xb.check_layer(xb.Dense(2), (2, 3), backend="numpy", oracle="jax")
        except xb.BackendUnavailableError as e:
            assert "pip install" in str(e) and "fd" in str(e), e
        else:
            raise SystemExit("no error")
        print("OK")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr


# -- cross-backend parity -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "layer"],
                         ids=[i for i, c in zip(CASE_IDS, CASES) if c.kind == "layer"])
def test_parity_across_backends(case, dtype, jax_backend, x64):
    report = xb.check_parity(case.subject, case.shape, dtype=dtype, train=case.train,
                             backends=[b for b in xb.available_backends() if b != "numpy"])
    assert report.ok, report
    assert any(r.tensor.endswith(":y") for r in report.rows)


# -- the command ------------------------------------------------------------------------

def test_cli_gradcheck_passes_on_builtins(capsys):
    from xbackprop.cli import main

    assert main(["gradcheck", "--backend", "numpy", "--oracle", "fd", "--layer", "Conv2D",
                 "--layer", "SoftmaxCrossEntropy"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "Conv2D" in out and "FAIL" not in out


USER_MODULE = '''
import dataclasses
import xbackprop as xb


@dataclasses.dataclass(frozen=True)
class Scale(xb.Layer):
    """y = a * x with a learnable a; backward forgets the factor a in dL/dx."""

    def init(self, rng, in_shape):
        return {"a": rng.normal(size=(1,))}

    def forward(self, params, x, ctx=xb.EVAL):
        return params["a"] * x, x

    def backward(self, params, cache, dy):
        xp = xb.backend_of(dy).xp
        return dy, {"a": xp.reshape(xp.sum(dy * cache), (1,))}

    @classmethod
    def examples(cls, rng):
        yield cls(), (3,)
'''


def test_cli_gradcheck_user_module_reports_the_wrong_tensor(tmp_path, capsys):
    from xbackprop.cli import main

    path = tmp_path / "my_layers.py"
    path.write_text(USER_MODULE)
    assert main(["gradcheck", "--module", str(path), "--backend", "numpy",
                 "--oracle", "fd"]) == 1
    out = capsys.readouterr().out
    assert "Scale" in out and "1 failed" in out
    assert "x[" in out  # the worst entries of the wrong tensor
    assert "a      (1,)" not in out.split("FAIL", 1)[0]  # parameter a is fine, x is not


def test_cli_gradcheck_rejects_unknown_layer(capsys):
    from xbackprop.cli import main

    assert main(["gradcheck", "--layer", "NoSuchLayer", "--backend", "numpy"]) == 2
    assert "NoSuchLayer" in capsys.readouterr().err


# -- a checker that passes only what it checked (issue 20, class 5) ---------------------------

NUMPY_BACKWARD = '''
import dataclasses
import numpy as np
import xbackprop as xb


@dataclasses.dataclass(frozen=True)
class Double(xb.Layer):
    """y = 2x, whose backward computes with NumPy whatever its inputs are."""

    def forward(self, params, x, ctx=xb.EVAL):
        return 2 * x, None

    def backward(self, params, cache, dy):
        return 2 * np.asarray(dy), {}

    @classmethod
    def examples(cls, rng):
        yield cls(), (3,)


@dataclasses.dataclass(frozen=True)
class Bias(xb.Layer):
    """y = x + b, whose parameter gradient comes back as a NumPy array."""

    def init(self, rng, in_shape):
        return {"b": np.zeros(in_shape)}

    def forward(self, params, x, ctx=xb.EVAL):
        return x + params["b"], None

    def backward(self, params, cache, dy):
        xp = xb.backend_of(dy).xp
        return dy, {"b": np.asarray(xb.to_numpy(xp.sum(dy, axis=0)))}

    @classmethod
    def examples(cls, rng):
        yield cls(), (3,)
'''


@pytest.mark.parametrize("name", ["torch", "array_api_strict"])
def test_cli_gradcheck_fails_a_backward_of_another_library(name, tmp_path, capsys):
    """NumPy arrays for torch inputs turn into the same numbers on the host, so the check
    passed ("all gradients match"); the layer and what it returned are named instead."""
    from xbackprop.cli import main

    try:
        xb.get_backend(name)
    except xb.BackendUnavailableError as e:
        pytest.skip(f"backend {name}: {e}")
    (tmp_path / "mine.py").write_text(NUMPY_BACKWARD)
    assert main(["gradcheck", "--module", str(tmp_path / "mine.py"), "--backend", "numpy",
                 "--backend", name, "--oracle", "fd"]) == 1
    out = capsys.readouterr().out
    assert re.search(rf"FAIL  {name}\s+Double\(\) \[eval\] x: \(2, 3\)  raised TypeError: "
                     rf"Double\(\)\.backward was given a {name} array and returned a numpy "
                     r"array: it computes with another library", out), out
    assert re.search(rf"FAIL  {name}\s+Bias\(\) \[eval\] x: \(2, 3\)  raised TypeError: "
                     rf"Bias\(\)\.backward was given a {name} array and returned a numpy array "
                     r"as the gradient of 'b'", out), out
    assert re.search(r"ok    numpy\s+Double\(\)", out) and "2 passed, 2 failed" in out


def test_cli_gradcheck_on_jax_names_the_layer_not_a_tracer(jax_backend, tmp_path, capsys):
    from xbackprop.cli import main

    (tmp_path / "mine.py").write_text(NUMPY_BACKWARD)
    assert main(["gradcheck", "--module", str(tmp_path / "mine.py"), "--backend", "jax",
                 "--layer", "Double"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  jax    Double() [eval] x: (2, 3)  raised TypeError: Double().backward called " \
        "NumPy (np.*) on a jax array, which jax refuses. Compute with the namespace of the " \
        "inputs: xp = xbackprop.backend_of(x).xp" in out, out
    assert "Tracer" not in out and "0 passed, 1 failed" in out


def test_the_library_checker_refuses_gradients_of_another_library(tmp_path):
    """check_function has no layer to name; the gradient's library is checked all the same."""
    try:
        xb.get_backend("torch")
    except xb.BackendUnavailableError as e:  # its message says how to install PyTorch
        pytest.skip(f"backend torch: {e}")

    def forward(x):
        return 3 * x, None

    def backward(cache, dy):
        return {"x": 3 * np.asarray(xb.to_numpy(dy))}

    with pytest.raises(TypeError, match=r"triple: on the torch backend the hand-written "
                                        r"gradient of x is a numpy array"):
        xb.check_function(forward, backward, {"x": np.ones((2, 2))}, name="triple",
                          backend="torch", oracle="fd")


@pytest.mark.parametrize("source, status, message", [
    ("import sys\nimport xbackprop\nsys.exit(0)\n", 3,
     r"^xbackprop: error: --module .*early.py: line 3: the file called sys.exit\(0\) while it "
     r"was imported, so nothing in it could be checked\n    sys.exit\(0\)\n\(put a script's own "
     r"code under `if __name__ == '__main__':`\)"),
    ("raise SystemExit\n", 3, r"line 1: the file called sys.exit\(None\) while it was imported"),
    ("x = 1\n", 2, r"^xbackprop: error: .*early.py defines no xbackprop Layer or Loss "
                   r"subclasses\n$"),
])
def test_cli_gradcheck_fails_a_module_with_nothing_to_check(source, status, message,
                                                           tmp_path, capsys):
    """A module that exits as it is imported used to end the command with its own status,
    0: "checked" with nothing checked."""
    from xbackprop.cli import main

    (tmp_path / "early.py").write_text(source)
    assert main(["gradcheck", "--module", str(tmp_path / "early.py"), "--backend", "numpy"]) \
        == status
    captured = capsys.readouterr()
    assert re.search(message, captured.err), captured.err
    assert "passed" not in captured.out


def test_cli_gradcheck_refuses_an_empty_module_name(capsys):
    """`--module ''` was falsy: every built-in layer was checked instead, status 0."""
    from xbackprop.cli import main

    assert main(["gradcheck", "--module", "", "--backend", "numpy"]) == 2
    assert "--module needs a file name, not an empty string" in capsys.readouterr().err


BROKEN_BACKWARD = '''
import dataclasses
import xbackprop as xb


@dataclasses.dataclass(frozen=True)
class Broken(xb.Layer):
    """y = x, whose backward has a bug."""

    def forward(self, params, x, ctx=xb.EVAL):
        return x, None

    def backward(self, params, cache, dy):
        return dy * cache, {}

    @classmethod
    def examples(cls, rng):
        yield cls(), (3,)
'''


def test_cli_gradcheck_counts_a_layer_that_raises_as_a_failure(tmp_path, capsys):
    """A backward that raises (here a TypeError) ended the command with a traceback; now that
    check fails, naming the layer and the user's line, and the others still run."""
    from xbackprop.cli import main

    (tmp_path / "broken.py").write_text(BROKEN_BACKWARD)
    assert main(["gradcheck", "--module", str(tmp_path / "broken.py"), "--backend", "numpy",
                 "--oracle", "fd"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  numpy  Broken() [eval] x: (2, 3)  raised TypeError: unsupported operand " \
        "type(s) for *: 'float' and 'NoneType' (broken.py, line 14, in backward)" in out, out
    assert "0 passed, 1 failed" in out
