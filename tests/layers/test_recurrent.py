"""RNN, LSTM and GRU beyond what the gradient oracle proves by itself (it checks every layer's
`examples()` on every backend): PyTorch's weights load by the documented transposes and
give PyTorch's outputs; a given initial state is used and its gradients are right; a
stateful layer carries its state from call to call and through a train step, with no
gradient across the boundary; the checker catches a broken backward through time; and bad
input gets errors that say what to do."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.layers.recurrent import previous_states

CELLS = {"RNN": xb.RNN, "LSTM": xb.LSTM, "GRU": xb.GRU}


def _from_torch(name, module):
    """Our parameters from a one-layer PyTorch module, by the transposes the docstrings give."""
    w = {k: v.detach().numpy().astype(np.float64) for k, v in module.state_dict().items()}
    params = {"W_x": w["weight_ih_l0"].T, "W_h": w["weight_hh_l0"].T}
    if name == "GRU":
        params.update(b_x=w["bias_ih_l0"], b_h=w["bias_hh_l0"])
    else:
        params["b"] = w["bias_ih_l0"] + w["bias_hh_l0"]
    return params


@pytest.mark.parametrize("name", sorted(CELLS))
def test_pytorch_weights_load_by_a_transpose_and_give_pytorchs_outputs(name, backend):
    torch = pytest.importorskip("torch", reason="PyTorch: not installed (the reference here)")
    torch.manual_seed(0)
    batch, steps, features, hidden = 3, 5, 4, 6
    module = getattr(torch.nn, name)(features, hidden, batch_first=True).double()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, steps, features))
    h0 = rng.normal(size=(batch, hidden))
    c0 = rng.normal(size=(batch, hidden))
    given = (torch.tensor(h0[None]), torch.tensor(c0[None])) if name == "LSTM" else \
        torch.tensor(h0[None])
    with torch.no_grad():
        want, last = module(torch.tensor(x), given)
    state = {"h": h0, "c": c0} if name == "LSTM" else {"h": h0}
    layer = CELLS[name](hidden, stateful=True, batch_size=batch)
    with backend.dtype_scope("float64"):
        params = xb.tree_to_backend(_from_torch(name, module), backend, dtype="float64")
        y, cache = layer.forward(params, backend.asarray(x, dtype="float64"),
                                 xb.Context(state=xb.tree_to_backend(state, backend,
                                                                     dtype="float64")))
        carried = xb.to_numpy(layer.next_state(None, cache))
    np.testing.assert_allclose(xb.to_numpy(y), want.numpy(), rtol=1e-10, atol=1e-12)
    h_n = (last[0] if name == "LSTM" else last).numpy()[0]
    np.testing.assert_allclose(carried["h"], h_n, rtol=1e-10, atol=1e-12)
    if name == "LSTM":
        np.testing.assert_allclose(carried["c"], last[1].numpy()[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_param_grads_are_backwards_without_the_input_gradient(name, backend):
    """A network's first layer skips dL/dx (model.param_grads): the same parameter gradients
    as backward, checked against JAX's autodiff in float64 (backward is proven by the
    oracle; this is the path a train step takes)."""
    jax = pytest.importorskip("jax", reason="JAX: not installed (the oracle here)")
    rng = np.random.default_rng(1)
    layer = CELLS[name](3, return_sequences=name != "GRU")
    x = rng.normal(size=(2, 4, 5))
    with backend.dtype_scope("float64"):
        params = xb.tree_to_backend(xb.init_params(layer, 0, (4, 5), dtype="float64"),
                                    backend, dtype="float64")
        xs = backend.asarray(x, dtype="float64")
        y, cache = layer.forward(params, xs)
        dy = rng.normal(size=tuple(y.shape))
        only = layer.param_grads(params, cache, backend.asarray(dy, dtype="float64"))
        _, full = layer.backward(params, cache, backend.asarray(dy, dtype="float64"))
    assert sorted(only) == sorted(full)
    for key in full:
        np.testing.assert_array_equal(xb.to_numpy(only[key]), xb.to_numpy(full[key]))
    with jax.enable_x64(True):
        want = jax.grad(lambda p: jax.numpy.sum(layer(p, jax.numpy.asarray(x)) * dy))(
            {k: jax.numpy.asarray(xb.to_numpy(v)) for k, v in params.items()})
    for key in want:
        np.testing.assert_allclose(xb.to_numpy(only[key]), np.asarray(want[key]), rtol=1e-9,
                                   atol=1e-12, err_msg=key)


def test_lstm_gate_order_is_pytorchs():
    """Block 1 of b is the forget gate: a large forget bias keeps the cell, a large
    negative one empties it (the order i, f, g, o, not some other)."""
    layer = xb.LSTM(2, forget_bias=0.0)
    params = xb.init_params(layer, 0, (3, 1), dtype="float64")
    params = {**params, "W_x": np.zeros((1, 8)), "W_h": np.zeros((2, 8))}
    x = np.zeros((1, 3, 1))
    c0 = np.full((1, 2), 5.0)
    for f_bias, expect_kept in ((50.0, True), (-50.0, False)):
        b = np.zeros(8)
        b[2:4] = f_bias                       # f: block 1
        b[6:8] = 50.0                         # o = 1, so h = tanh(c)
        _, cache = layer.forward({**params, "b": b}, x, xb.Context(state={"h": np.zeros((1, 2)),
                                                                          "c": c0}))
        c_last = cache[-1]["c"]
        # i = σ(0) = 0.5, g = tanh(0) = 0: c_t = f c_{t-1}
        np.testing.assert_allclose(c_last, c0 if expect_kept else 0.0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradients_at_a_given_initial_state(name, backend, jax_backend):
    """A given (h0, c0) through ctx.state: the oracle proves the gradients there too."""
    layer = CELLS[name](3)
    rng = np.random.default_rng(1)
    state = {n: rng.normal(size=(2, 3)) for n in layer.state_names}
    report = xb.check_model(layer, x=rng.normal(size=(2, 4, 2)), model_state=state,
                            backend=backend, oracle="jax")
    assert report.ok, report
    y0 = layer(xb.init_params(layer, 0, (4, 2), dtype="float64"), np.ones((2, 4, 2)))
    y1 = layer(xb.init_params(layer, 0, (4, 2), dtype="float64"), np.ones((2, 4, 2)),
               xb.Context(state=state))
    assert not np.allclose(y0, y1)  # the state is used, not ignored


@pytest.mark.parametrize("name", sorted(CELLS))
def test_a_stateful_layer_continues_where_the_last_call_stopped(name, backend):
    """Two calls of 3 steps, the state carried by next_state, give what one call of 6 steps
    gives; init_state starts over."""
    layer = CELLS[name](4, stateful=True, batch_size=2)
    params = xb.init_params(layer, 0, (3, 2), backend=backend)
    x = np.random.default_rng(0).normal(size=(2, 6, 2)).astype(np.float32)
    state = xb.init_state(layer, (3, 2), backend=backend)
    with xb.use_backend(backend):
        whole, _ = layer.forward(params, backend.asarray(x), xb.Context(state=state))
        first, cache = layer.forward(params, backend.asarray(x[:, :3]), xb.Context(state=state))
        second, _ = layer.forward(params, backend.asarray(x[:, 3:]),
                                  xb.Context(state=layer.next_state(state, cache)))
    np.testing.assert_allclose(np.concatenate([xb.to_numpy(first), xb.to_numpy(second)], 1),
                               xb.to_numpy(whole), rtol=1e-5, atol=1e-6)
    assert np.all(xb.to_numpy(state["h"]) == 0)


def test_train_step_carries_the_state_and_truncates_the_gradient(backend, jax_backend, x64):
    """A stateful model in make_train_step: each step starts where the last stopped, and
    its gradient is the gradient at that state taken as a constant (no term from the chunk
    before), as jax.grad with the carried state fixed gives."""
    import jax

    model = xb.Sequential([xb.LSTM(3, stateful=True, batch_size=2, return_sequences=False),
                           xb.Dense(1)])
    rng = np.random.default_rng(0)
    chunks = rng.normal(size=(3, 2, 4, 2))
    targets = rng.normal(size=(3, 2, 1))
    opt = xb.optim.sgd(0.0)  # parameters fixed: what changes is the carried state
    state = xb.TrainState.create(xb.init_params(model, 0, (4, 2), dtype="float64",
                                                backend=backend), opt,
                                 xb.init_state(model, (4, 2), dtype="float64", backend=backend))
    step = xb.make_train_step(model, "mse", opt)
    params = xb.to_numpy(state.params)

    def loss(p, x, y, h, c):
        out = model.forward(p, x, xb.Context(state=[{"h": h, "c": c}, None]))[0]
        return jax.numpy.mean((out - y) ** 2)

    jnp = jax.numpy
    h, c = np.zeros((2, 3)), np.zeros((2, 3))
    for x, y in zip(chunks, targets):
        want = jax.value_and_grad(loss)(  # h, c: constants
            jax.tree_util.tree_map(jnp.asarray, params), *map(jnp.asarray, (x, y, h, c)))
        _, grads, _ = xb.loss_and_grads(model, xb.MSE(), state.params,
                                        (backend.asarray(x), backend.asarray(y)),
                                        xb.Context(train=True, state=state.model_state))
        np.testing.assert_allclose(xb.to_numpy(grads[0]["W_h"]), want[1][0]["W_h"],
                                   rtol=1e-8, atol=1e-10)
        state, value = step(state, (backend.asarray(x), backend.asarray(y)))
        np.testing.assert_allclose(float(xb.to_numpy(value)), float(want[0]), rtol=1e-8)
        _, cache = model.layers[0].forward(params[0], x, xb.Context(state={"h": h, "c": c}))
        h, c = cache[-1]["h"], cache[-1]["c"]
        np.testing.assert_allclose(xb.to_numpy(state.model_state[0]["h"]), h, rtol=1e-8)
    assert np.abs(h).max() > 0.01  # the carried state is not trivially zero


@pytest.mark.parametrize("name", ["RNN", "LSTM"])
def test_state_gradients_are_dL_dh_t_through_time(name, jax_backend, x64):
    """state_gradients gives ∂L/∂h_t: what jax.grad gives for a perturbation added to h_t in
    a plain JAX rewrite of the cell, for a loss at the last step only."""
    import jax
    import jax.numpy as jnp

    layer = CELLS[name](3)
    params = xb.init_params(layer, 0, (5, 2), dtype="float64")
    rng = np.random.default_rng(0)
    x, v = rng.normal(size=(2, 5, 2)), rng.normal(size=(2, 3))
    dy = np.zeros((2, 5, 3))
    dy[:, -1] = v                                      # L = Σ v ⊙ h_T

    def loss(eps):
        h = c = jnp.zeros((2, 3))
        for t in range(5):
            a = x[:, t] @ params["W_x"] + h @ params["W_h"] + params["b"]
            if name == "RNN":
                h = jnp.tanh(a)
            else:
                i, f, g, o = jnp.split(a, 4, axis=1)
                c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
                h = jax.nn.sigmoid(o) * jnp.tanh(c)
            h = h + eps[:, t]
        return jnp.sum(v * h)

    want = jax.grad(loss)(jnp.zeros((2, 5, 3)))
    _, cache = layer.forward(params, x)
    got = layer.state_gradients(params, cache, dy)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.abs(got[:, 0]).max() > 1e-6  # the gradient reached the first step


# -- the checker catches a broken backward through time ------------------------------------

@dataclasses.dataclass(frozen=True)
class ForgetfulLSTM(xb.LSTM):
    """A broken backward through time: the forget gate read as 0 there, so the cell's
    gradient stops after one step (dc_{t-1} = dc_t ⊙ 0 instead of dc_t ⊙ f)."""

    def run_backward(self, params, cache, dhs):
        x, h0, c0, hs, cs, gates, tanh_cs = cache
        n = self.hidden
        f_zero = np.concatenate([gates[..., :n], 0 * gates[..., n:2 * n], gates[..., 2 * n:]],
                                axis=-1)
        return super().run_backward(params, (x, h0, c0, hs, cs, f_zero, tanh_cs), dhs)


def test_the_oracle_catches_a_cell_gradient_that_stops_after_one_step():
    report = xb.check_layer(ForgetfulLSTM(3), (2, 4, 2), backend="numpy", oracle="fd")
    assert not report.ok
    assert "W_h" in {r.tensor for r in report.failures()}


# -- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CELLS))
def test_hidden_below_one_is_an_error_naming_it(name):
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=rf"{name}: hidden is the size of the hidden "
                                             rf"state, a positive int .*not {bad!r}"):
            CELLS[name](bad)


def test_stateful_needs_the_number_of_streams():
    with pytest.raises(ValueError, match="needs the number of streams: batch_size"):
        xb.LSTM(4, stateful=True)
    with pytest.raises(ValueError, match="pass stateful=True with it"):
        xb.LSTM(4, batch_size=8)
    with pytest.raises(ValueError, match="activation is 'tanh' or 'relu'.*'sigmoid'"):
        xb.RNN(4, "sigmoid")


def test_sequences_of_length_zero(backend):
    layer = xb.GRU(3)
    params = xb.init_params(layer, 0, (2, 2), backend=backend)
    with pytest.raises(ValueError, match=r"x has shape \(4, 0, 2\), sequences of length 0.*"
                                         r"T >= 1"):
        layer.forward(params, backend.asarray(np.zeros((4, 0, 2), np.float32)))
    with pytest.raises(ValueError, match=r"positive ints"):
        xb.init_params(layer, 0, (0, 2))


def test_two_d_input_says_which_axis_is_missing():
    layer = xb.LSTM(3)
    params = xb.init_params(layer, 0, (5, 4))
    with pytest.raises(ValueError, match=r"2-d x of shape \(8, 4\), which lacks the time "
                                         r"axis: for one step give x\[:, None, :\], shape "
                                         r"\(8, 1, 4\)"):
        layer.forward(params, np.zeros((8, 4), np.float32))
    with pytest.raises(ValueError, match=r"2-d x of shape \(8, 5\), which lacks the feature "
                                         r"axis: .*x\[:, :, None\].*token ids"):
        layer.forward(params, np.zeros((8, 5), np.float32))
    with pytest.raises(ValueError, match=r"the time axis or the feature axis is missing. For "
                                         r"one step of 4 features give \(B, 1, 4\)"):
        xb.init_params(layer, 0, (4,))


def test_a_given_state_of_the_wrong_shape_or_backend(jax_backend):
    layer = xb.LSTM(3)
    params = xb.init_params(layer, 0, (5, 2))
    x = np.zeros((4, 5, 2), np.float32)
    good = {"h": np.zeros((4, 3), np.float32), "c": np.zeros((4, 3), np.float32)}
    with pytest.raises(ValueError, match=r"the initial state 'c' has shape \(2, 3\), but x: "
                                         r"\(4, 5, 2\) needs \(4, 3\), one row per sequence"):
        layer.forward(params, x, xb.Context(state={**good, "c": np.zeros((2, 3), np.float32)}))
    with pytest.raises(ValueError, match=r"a dict of 'h', 'c'.*got \['h'\]"):
        layer.forward(params, x, xb.Context(state={"h": good["h"]}))
    with pytest.raises(TypeError, match=r"the initial state 'h' is a jax array but x is a "
                                        r"numpy array; move it with xbackprop.asarray"):
        layer.forward(params, x, xb.Context(state={**good, "h": jax_backend.asarray(good["h"])}))
    stateful = xb.LSTM(3, stateful=True, batch_size=4)
    state = xb.init_state(stateful, (5, 2))
    with pytest.raises(ValueError, match=r"carries 4 streams .*give batches of 4"):
        stateful.forward(params, x[:3], xb.Context(state=state))
    with pytest.raises(ValueError, match=r"starts from ctx.state: make it with "
                                         r"xbackprop.init_state"):
        stateful.forward(params, x)


def test_pytorch_oriented_weights_are_named_with_the_fix():
    layer = xb.RNN(3)
    params = xb.init_params(layer, 0, (5, 2))
    with pytest.raises(ValueError, match=r"W_x has shape \(3, 2\), but for x: \(1, 5, 2\) it "
                                         r"must be \(2, 3\).*Transpose it"):
        layer.forward({**params, "W_x": params["W_x"].T}, np.zeros((1, 5, 2), np.float32))


def test_previous_states_shifts_by_one_step():
    first, states = np.zeros((1, 2)), np.arange(6.0).reshape(3, 1, 2)
    np.testing.assert_array_equal(previous_states(np, first, states)[:, 0],
                                  [[0, 0], [0, 1], [2, 3]])


def test_saved_and_loaded_with_their_carried_state(tmp_path):
    """A model file rebuilds the cells from their settings (keywords included) and keeps the
    carried state, so a loaded model continues the stream where it stopped."""
    model = xb.Sequential([xb.GRU(4, stateful=True, batch_size=2), xb.LSTM(3),
                           xb.RNN(2, "relu", return_sequences=False)])
    params = xb.init_params(model, 0, (5, 2))
    state = [{"h": np.full((2, 4), 0.5, np.float32)}, None, None]
    path = xb.save_model(tmp_path / "rnn.safetensors", model, params, model_state=state,
                         input_shape=(5, 2))
    loaded, loaded_params, loaded_state = xb.load_model(path)
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded_state[0]["h"], state[0]["h"])
    x = np.random.default_rng(0).normal(size=(2, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded(loaded_params, x, xb.Context(state=loaded_state)),
                                  model(params, x, xb.Context(state=state)))
