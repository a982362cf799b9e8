"""Backend values with a device or a mesh: what `backend_of`, the layers and compiled steps
see; `put` with placements; `compile` with shardings; data-parallel steps on a JAX mesh."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import backends
from xbackprop.backends import _select

pytestmark = pytest.mark.usefixtures("clean_backend_choice")


@dataclasses.dataclass(frozen=True)
class Spy(xb.Dense):
    """A Dense layer that records the backend value its forward pass sees."""

    seen: list = dataclasses.field(default_factory=list, compare=False, hash=False)

    def forward(self, params, x, ctx=xb.EVAL):
        self.seen.append(xb.backend_of(x, *params.values()))
        return super().forward(params, x, ctx)


# -- naming a device -----------------------------------------------------------------------

def test_a_name_may_carry_a_device(jax_backend):
    cpu0 = xb.get_backend("jax:cpu:0")
    assert cpu0 is xb.get_backend(" JAX:CPU:0 ") and cpu0 is not jax_backend
    assert cpu0.name == "jax" and cpu0.device == "cpu:0"
    assert xb.get_backend("jax:0").device == "cpu:0"
    assert xb.get_backend("numpy:cpu").device == "cpu"


def test_a_device_that_is_not_there_is_an_error(jax_backend):
    with pytest.raises(backends.BackendUnavailableError, match=r"CPU only.*'cupy' or 'jax'"):
        xb.get_backend("numpy:1")
    with pytest.raises(backends.BackendUnavailableError, match=r"no device 'tpu:7'.*JAX sees"):
        xb.get_backend("jax:tpu:7")
    with pytest.raises(backends.BackendUnavailableError, match="one device"):
        xb.get_backend("array_api_strict:1")


def test_a_gpu_index_for_cupy_is_checked(monkeypatch):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 2))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(backends.BackendUnavailableError, match=r"no GPU '3'.*'cupy:0' to 'cupy:1'"):
        xb.get_backend("cupy:3")
    assert "cupy:3" not in _select._instances


def test_options_a_backend_does_not_take_are_an_error():
    with pytest.raises(backends.UnknownBackendError, match="takes no such options"):
        xb.get_backend("numpy", mesh=object())
    with pytest.raises(TypeError, match="need a backend name"):
        xb.get_backend(mesh=object())


# -- a configured value is what the layers see ------------------------------------------------

def test_backend_of_answers_the_current_value_of_the_arrays_library(jax_backend):
    configured = xb.get_backend("jax:cpu:0")
    a = configured.asarray(np.ones(2), dtype="float32")
    host = np.ones(2, np.float32)
    assert xb.backend_of(a) is jax_backend  # outside any scope: the library's default value
    with xb.use_backend(configured):
        assert xb.backend_of(a) is configured
        assert xb.backend_of(host) is xb.get_backend("numpy")  # another library: its own
        with pytest.raises(xb.MixedBackendError, match="numpy.*jax"):
            xb.backend_of(host, a)
    assert xb.backend_of(a) is jax_backend
    xb.set_backend(configured)
    assert xb.backend_of(a) is configured


@pytest.mark.parametrize("spec", ["numpy:cpu", "jax:cpu:0"])
def test_compiled_functions_run_in_their_backends_scope(spec):
    if spec.startswith("jax"):
        pytest.importorskip("jax", reason="JAX: not installed")
    configured = xb.get_backend(spec)
    layer = Spy(3)
    params = xb.init_params(layer, 0, (2,), backend=configured)
    x = configured.asarray(np.ones((4, 2)), dtype="float32")
    y = configured.compile(lambda p, x: layer(p, x))(params, x)
    assert layer.seen == [configured] and y.shape == (4, 3)
    layer.seen.clear()
    default = xb.get_backend(spec.partition(":")[0])
    default.compile(lambda p, x: layer(p, x))(params, x)
    assert layer.seen == [default]


def test_a_train_step_for_a_configured_backend_runs_the_layers_on_it(jax_backend):
    configured = xb.get_backend("jax:cpu:0")
    spy = Spy(2)
    model = xb.Sequential([spy])
    opt = xb.optim.sgd(0.1)
    params = xb.init_params(model, 0, (3,), backend=configured)
    state = xb.TrainState.create(params, opt)
    step = xb.make_train_step(model, "mse", opt, backend=configured)
    state, loss = step(state, (np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)))
    assert spy.seen and all(b is configured for b in spy.seen)
    assert np.isfinite(float(loss))


# -- placement -----------------------------------------------------------------------------

def test_put_moves_array_leaves_and_keeps_the_rest(backend):
    tree = {"w": np.ones((2, 2)), "n": 3, "s": "name", "z": None, "k": [np.float32(2.0)]}
    for sharding in (None, "replicated", "batch"):
        out = backend.put(tree, sharding)
        assert backend.is_array(out["w"]) and backend.is_array(out["k"][0])
        assert out["n"] == 3 and out["s"] == "name" and out["z"] is None
        np.testing.assert_array_equal(xb.to_numpy(out["w"]), tree["w"])


def test_a_placement_a_backend_does_not_know_is_an_error():
    numpy = xb.get_backend("numpy")
    with pytest.raises(ValueError, match=r"one device: a sharding is None, 'replicated' or "
                                         r"'batch', not 'rows'"):
        numpy.put(np.ones(2), "rows")
    with pytest.raises(ValueError, match="'replicated' or 'batch'"):
        numpy.compile(lambda x: x, in_shardings=("replicated", object()))
    assert numpy.compile(lambda x: x + 1, in_shardings=("batch",),
                         out_shardings="replicated")(np.ones(2))[0] == 2


def _mesh_backend(n: int = 1):
    jax = pytest.importorskip("jax", reason="JAX: not installed")
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:n]), ("data",))
    return jax, mesh, xb.get_backend("jax", mesh=mesh)


def test_a_mesh_backend_replicates_by_default_and_splits_batches(jax_backend):
    jax, mesh, b = _mesh_backend()
    P = jax.sharding.PartitionSpec
    assert b.name == "jax" and "mesh(data=1)" in b.device
    assert b.asarray(np.ones(4)).sharding == jax.sharding.NamedSharding(mesh, P())
    assert b.put({"x": np.ones((4, 2))}, "batch")["x"].sharding.spec == P("data")
    own = jax.sharding.NamedSharding(mesh, P(None))
    assert b.put(np.ones((4, 2)), own).sharding == own
    with pytest.raises(backends.ShardingError, match="not the data axis 'batch'"):
        xb.get_backend("jax", mesh=mesh, data_axis="batch")
    with pytest.raises(ValueError, match="jax.sharding.Sharding, not 'rows'"):
        b.put(np.ones(2), "rows")


def test_compile_takes_shardings_per_argument(jax_backend):
    jax, mesh, b = _mesh_backend()
    layer = Spy(3)
    params = xb.init_params(layer, 0, (2,), backend=b)
    fn = b.compile(lambda p, x: layer(p, x), in_shardings=("replicated", "batch"),
                   out_shardings="batch")
    y = fn(params, b.put(np.ones((4, 2), np.float32), "batch"))
    assert y.sharding.spec == jax.sharding.PartitionSpec("data")
    assert layer.seen == [b]


DATA_PARALLEL = textwrap.dedent("""
    import numpy as np, jax
    import xbackprop as xb

    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    dp = xb.get_backend("jax", mesh=mesh)
    model = xb.Sequential([xb.Dense(8), xb.Tanh(), xb.Dense(3)])
    loss, opt = xb.SoftmaxCrossEntropy(), xb.optim.adam(0.05)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=16).astype(np.int32)

    def step(params, opt_state, batch):
        value, grads, _ = xb.loss_and_grads(model, loss, params, batch, xb.Context(train=True))
        params, opt_state = opt.update(params, grads, opt_state)
        return params, opt_state, value

    def run(backend, shardings):
        params = backend.put(xb.init_params(model, 0, (4,), backend="numpy"))
        opt_state = opt.init(params)
        fn = backend.compile(step, **shardings)
        for _ in range(5):
            batch = backend.put((x, y), "batch" if shardings else None)
            params, opt_state, value = fn(params, opt_state, batch)
        return params, batch, float(value)

    sharded, batch, loss_dp = run(dp, dict(in_shardings=("replicated", "replicated", "batch"),
                                           out_shardings="replicated"))
    single, _, loss_one = run(xb.get_backend("jax"), {})
    assert len(jax.devices()) == 2
    assert batch[0].sharding.spec == jax.sharding.PartitionSpec("data")
    assert len({s.device for s in batch[0].addressable_shards}) == 2
    assert all(p.sharding.is_fully_replicated for p in xb.tree.tree_leaves(sharded))
    for a, b in zip(xb.tree.tree_leaves(sharded), xb.tree.tree_leaves(single)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert abs(loss_dp - loss_one) < 1e-5
    print("ok", loss_dp)
""")


def test_a_data_parallel_step_on_two_devices_matches_one_device(jax_backend):
    """Parameters replicated, batches split over a two-device mesh (XLA's host platform
    split in two, in a fresh process): the same numbers as on one device."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    env.pop(backends.ENV_VAR, None)
    out = subprocess.run([sys.executable, "-c", DATA_PARALLEL], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")
