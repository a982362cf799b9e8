"""Data-parallel fit on JAX: a batch split over 4 and 8 devices (XLA's host platform split,
in a fresh process) trains to the single-device result, BatchNorm and dropout included;
padding to a multiple of the devices, one compilation, checkpoints moving between one
device and many; two processes on 127.0.0.1, each with its own slice of the data, agree
with one process running the batches they make together; and the errors say what to do.

float32 tolerance: rtol 2e-5, atol 2e-6 after 9 Adam steps (the sums over the batch add up
in another order across devices; measured differences are ~1e-7)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import backends
from xbackprop.batching import DataOrder

pytestmark = pytest.mark.usefixtures("clean_backend_choice")

RTOL, ATOL = 2e-5, 2e-6

# Shared by the subprocesses: data, models, and the comparison of two runs.
COMMON = """
import json, sys
import numpy as np
import xbackprop as xb
from xbackprop.tree import tree_leaves, tree_paths

RTOL, ATOL = %r, %r
rng = np.random.default_rng(0)
X = rng.normal(size=(70, 5)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
IMAGES = rng.normal(size=(40, 1, 6, 6)).astype(np.float32)
LABELS = (IMAGES[:, 0, :3].mean(axis=(1, 2)) > 0).astype(np.int64)


def mlp():  # no bias before BatchNorm: its gradient is rounding, which Adam would amplify
    return xb.Sequential([xb.Dense(16, use_bias=False), xb.BatchNorm(), xb.ReLU(),
                          xb.Dropout(0.3), xb.Dense(3)])


def cnn():
    return xb.Sequential([xb.Conv2D(4, 3, padding=1, use_bias=False), xb.BatchNorm(),
                          xb.ReLU(), xb.MaxPool2D(2), xb.Dropout(0.2), xb.Flatten(),
                          xb.Dense(2)])


def assert_same(a, b, what):
    for (path, u), (_, v) in zip(tree_paths(xb.to_numpy(a.state)),
                                 tree_paths(xb.to_numpy(b.state))):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=RTOL, atol=ATOL,
                                   err_msg=f"{what}: {path}")
    assert a.history.keys() == b.history.keys(), what
    for name in a.history:
        if name != "time":
            np.testing.assert_allclose(a.history[name], b.history[name], rtol=RTOL,
                                       atol=ATOL, err_msg=f"{what}: {name}")
""" % (RTOL, ATOL)

# One process, N devices: everything data-parallel fit promises, against one device.
MANY_DEVICES = COMMON + """
import jax
from jax.sharding import PartitionSpec

N = len(jax.devices())
tmp = sys.argv[1]
xb.set_backend("jax")                # devices=N below splits over JAX's devices
one = xb.get_backend("jax")          # jax.devices()[0], no mesh
dp = xb.get_backend("jax", devices=N)
assert dp is xb.get_backend("jax", devices=N) and dp.batch_shards == N

# 1. equal to one device on the same global batches: batch 30 pads to a multiple of N, the
# last batch of each epoch (10 of 70) is padded and masked; validation batches likewise
settings = dict(loss="cross_entropy", optimizer=xb.optim.adam(0.01), batch_size=30, seed=3,
                progress=False, epochs=3, validation_data=(X[:50], Y[:50]))
single = xb.fit(mlp(), X, Y, backend=one, **settings)
sharded = xb.fit(mlp(), X, Y, devices=N, **settings)
assert_same(single, sharded, "mlp")
leaves = tree_leaves(sharded.state)
assert all(len(a.sharding.device_set) == N and a.sharding.is_fully_replicated for a in leaves)
same = xb.fit(mlp(), X, Y, backend=dp, **settings)  # a backend value: the same run
assert_same(sharded, same, "devices=N and backend=mesh")

# a batch source splits the same way: its batches (30 rows) padded to a multiple of N
source = dict(loss="cross_entropy", optimizer=xb.optim.adam(0.01), seed=3, progress=False,
              steps=9, eval_every=4, validation_data=(X[:50], Y[:50]))
batches = xb.data.ArraySource(X, Y, 30, seed=5)
assert_same(xb.fit(mlp(), batches, backend=one, **source),
            xb.fit(mlp(), batches, devices=N, **source), "source")

images = dict(settings, batch_size=16, validation_data=(IMAGES[:20], LABELS[:20]))
assert_same(xb.fit(cnn(), IMAGES, LABELS, backend=one, **images),
            xb.fit(cnn(), IMAGES, LABELS, devices=N, **images), "cnn")

# 2. each device runs its own rows: the layers' inputs are split N ways inside the one
# compiled step, and the step is traced once for the padded batches
seen = []


class Spy(xb.Identity):
    abstract = True

    def forward(self, params, x, ctx=xb.EVAL):
        if ctx.train:
            seen.append(tuple(x.shape))
            jax.debug.inspect_array_sharding(x, callback=lambda s: seen.append(s.spec))
        return x, None


xb.fit(xb.Sequential([Spy(), *mlp().layers]), X, Y, devices=N,
       **dict(settings, validation_data=None))
rows = -(-30 // N) * N
assert seen == [(rows, 5), PartitionSpec("data")], seen

# 3. no layer makes XLA gather the batch: every built-in layer's forward and backward (its
# gradcheck examples, 8 samples) on rows split N ways compiles to local work and all-reduces
# of the parameter gradients, never an all-gather or all-to-all of activations
from xbackprop.gradcheck import layer_cases, layer_classes
for case in layer_cases(layer_classes(), batch=8):
    layer, shape = case.subject, case.shape


    def forward_backward(params, state, key, x, layer=layer, train=case.train):
        y, cache = layer.forward(params, x, xb.Context(train=train, key=key, state=state))
        return layer.backward(params, cache, y * y)


    params = xb.init_params(layer, 0, shape[1:], backend=dp)
    state = xb.init_state(layer, shape[1:], backend=dp)
    fn = dp.compile(forward_backward, in_shardings=("replicated", "replicated", "replicated",
                                                    "batch"))
    x = layer.random_input(rng, shape)  # (token ids stay integers)
    x = dp.put(x.astype(np.float32) if x.dtype.kind == "f" else x, "batch")
    hlo = fn.lower(params, state, xb.random.make_key(0, dp), x).compile().as_text()
    assert "all-gather" not in hlo and "all-to-all" not in hlo, (case.name, layer, shape)
if sys.argv[2] == "equality":
    print("ok", N)
    sys.exit()

# 4. evaluate and predict on the mesh (inside its scope) give one device's numbers
# (outside its scope too: the parameters say where they are)
model, params, mstate = mlp(), sharded.params, sharded.state.model_state
on_mesh = xb.evaluate(model, params, X, Y, "cross_entropy", model_state=mstate,
                      batch_size=25)
predicted = np.asarray(xb.predict(model, params, X, model_state=mstate, batch_size=25))
assert one.for_placement(params).batch_shards == N and one.for_placement(X) is one
host = xb.tree_to_backend(xb.to_numpy((params, mstate)), one)
on_one = xb.evaluate(model, *host[:1], X, Y, "cross_entropy", model_state=host[1])
for k in on_one:
    assert abs(on_mesh[k] - on_one[k]) < 1e-5, (k, on_mesh[k], on_one[k])
np.testing.assert_allclose(predicted, np.asarray(xb.predict(model, host[0], X,
                                                            model_state=host[1])),
                           rtol=1e-5, atol=1e-6)
assert predicted.shape == (70, 3)

# 5. pad_batches=False: batches at their own size, which must divide by N
try:
    xb.fit(mlp(), X, Y, devices=N, pad_batches=False, **settings)
    raise AssertionError("batch 30 on N devices without padding")
except ValueError as e:
    assert f"batch_size 30 does not divide by the {N} devices" in str(e), e
try:
    xb.fit(mlp(), X, Y, devices=N, pad_batches=False, **dict(settings, batch_size=32))
    raise AssertionError("a last batch of 6 on N devices without padding")
except ValueError as e:
    assert "the last batch of each epoch (70 samples = 2 x 32 + 6)" in str(e), e
even = dict(settings, batch_size=16)
assert_same(xb.fit(mlp(), X[:64], Y[:64], backend=one, **even),
            xb.fit(mlp(), X[:64], Y[:64], devices=N, pad_batches=False, **even), "unpadded")

# 6. checkpoints: a sharded run stopped after 4 steps resumes on one device, a one-device
# run resumes on N devices, and a state continues from one device onto N: the same run
ck = dict(settings, epochs=3)
xb.fit(mlp(), X, Y, devices=N, max_steps=4, checkpoint_dir=f"{tmp}/dp", **ck)
assert_same(single, xb.fit(mlp(), X, Y, backend=one, checkpoint_dir=f"{tmp}/dp", resume=True,
                           **ck), "N devices -> one")
xb.fit(mlp(), X, Y, backend=one, max_steps=4, checkpoint_dir=f"{tmp}/one", **ck)
resumed = xb.fit(mlp(), X, Y, devices=N, checkpoint_dir=f"{tmp}/one", resume=True, **ck)
assert_same(single, resumed, "one -> N devices")
assert tree_leaves(resumed.params)[0].sharding.is_fully_replicated
ckpt = xb.CheckpointManager(f"{tmp}/dp").load_latest(dp)
assert all(len(a.sharding.device_set) == N for a in tree_leaves(ckpt.state.params))
first = xb.fit(mlp(), X, Y, backend=one, **dict(settings, epochs=1))
middle = xb.fit(mlp(), X, Y, state=first.state, devices=N, **dict(settings, epochs=1))
assert len(tree_leaves(middle.params)[0].sharding.device_set) == N
rest = xb.fit(mlp(), X, Y, state=middle.state, **dict(settings, epochs=1))  # stays on the mesh
assert len(tree_leaves(rest.params)[0].sharding.device_set) == N
rest.history["loss"][:0] = middle.history["loss"]
np.testing.assert_allclose(first.history["loss"] + rest.history["loss"],
                           single.history["loss"], rtol=RTOL)
for a, b in zip(tree_leaves(xb.to_numpy(rest.state)), tree_leaves(xb.to_numpy(single.state))):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)

# 7. a step that overflows stops at the same step, with the same culprit, as on one device
blown = X.copy()
blown[40] = 3e38
errors = []
for where in (dict(backend=one), dict(devices=N)):
    try:
        xb.fit(xb.Sequential([xb.Dense(8), xb.ReLU(), xb.Dense(3)]), blown, Y, shuffle=False,
               **dict(settings, **where))
    except xb.TrainingDivergedError as e:
        errors.append(str(e))
assert len(errors) == 2 and errors[0] == errors[1], errors
assert "step 2 (epoch 1, batch 2 of 3)" in errors[1] and "layer 0, Dense(8)" in errors[1]
print("ok", N)
"""


def _subprocess_env(devices: int) -> dict[str, str]:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu")
    env.pop(backends.ENV_VAR, None)
    return env


@pytest.mark.parametrize("devices, part", [(4, "all"), (8, "equality")])
def test_n_devices_train_as_one_device_does(jax_backend, tmp_path, devices, part):
    """See MANY_DEVICES: equality with one device (MLP and CNN, BatchNorm and dropout,
    padded batches), the batch split inside one compiled step and no layer gathering the
    batch, on 4 and 8 devices; on 4 also evaluate and predict, pad_batches=False, checkpoints and states moving between one
    device and N, and a diverging step found where one device finds it."""
    out = subprocess.run([sys.executable, "-c", MANY_DEVICES, str(tmp_path), part],
                         capture_output=True, text=True, env=_subprocess_env(devices),
                         timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip().endswith(f"ok {devices}"), out.stdout[-2000:]


# -- errors that say what to do ------------------------------------------------------------

def _x_y():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 3)).astype(np.float32), rng.integers(0, 2, size=8)


def test_devices_on_numpy_says_to_use_jax():
    x, y = _x_y()
    with pytest.raises(backends.ShardingError, match=r"backend 'numpy' computes on one device "
                       r"\(cpu\), so it cannot split batches over devices=2\. Data-parallel "
                       r"training runs on the JAX backend: backend='jax'"):
        xb.fit(xb.Dense(2), x, y, loss="cross_entropy", optimizer=xb.optim.sgd(0.1),
               backend="numpy", devices=2, progress=False)
    with pytest.raises(backends.UnknownBackendError, match=r"takes no such options.*'numpy' "
                       r"computes on one device; meshes and devices= are the JAX backend's"):
        xb.get_backend("numpy", mesh=object())
    with pytest.raises(backends.ShardingError, match="runs in one process.*JAX backend"):
        backends.initialize_distributed("numpy", "127.0.0.1:1", 2, 0)


def test_more_devices_than_there_are_says_how_to_make_them(jax_backend):
    jax = pytest.importorskip("jax")
    n = len(jax.devices()) + 1
    with pytest.raises(backends.ShardingError, match=rf"devices={n}, but JAX sees {n - 1} cpu "
                       rf"device.*XLA_FLAGS=--xla_force_host_platform_device_count={n}"):
        xb.get_backend("jax", devices=n)
    for bad in (0, -1, "some", True):
        with pytest.raises(backends.ShardingError, match="devices is a number of devices"):
            xb.get_backend("jax", devices=bad)
    with pytest.raises(backends.ShardingError, match=r"name the platform \('jax:cpu'\)"):
        xb.get_backend("jax:cpu:0", devices=1)


def test_a_mesh_axis_that_does_not_exist(jax_backend):
    jax = pytest.importorskip("jax")
    mesh = jax.make_mesh((1,), ("batch",))
    with pytest.raises(backends.ShardingError, match=r"the mesh has axes \('batch',\), not the "
                       r"data axis 'data'; pass data_axis=\.\.\. or name a mesh axis 'data'"):
        xb.get_backend("jax", mesh=mesh)
    assert xb.get_backend("jax", mesh=mesh, data_axis="batch").batch_shards == 1
    with pytest.raises(backends.ShardingError, match="give devices=N or a mesh, not both"):
        xb.get_backend("jax", mesh=mesh, data_axis="batch", devices=1)


def test_a_state_of_another_library_is_not_silently_moved(jax_backend):
    x, y = _x_y()
    settings = dict(loss="cross_entropy", optimizer=xb.optim.sgd(0.1), progress=False,
                    epochs=1, batch_size=len(x))
    first = xb.fit(xb.Dense(2), x, y, backend="numpy", **settings)
    with pytest.raises(ValueError, match=r"the state's arrays are numpy's, but backend 'jax' "
                       r"was asked for.*xb.load_checkpoint\(path, backend='jax'\)"):
        xb.fit(xb.Dense(2), x, y, state=first.state, backend="jax", **settings)


# -- one device's mesh, in this process -----------------------------------------------------

def test_a_one_device_mesh_from_make_mesh_trains_as_plain_jax(jax_backend):
    """jax.make_mesh gives "Explicit" axes, under which layer code would have to name its
    output shardings; the backend uses the mesh's devices with "Auto" axes, and the run is
    plain JAX's."""
    jax = pytest.importorskip("jax")
    mesh = jax.make_mesh((1,), ("data",))
    dp = xb.get_backend("jax", mesh=mesh)
    assert all(t == jax.sharding.AxisType.Auto for t in dp.mesh.axis_types)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    settings = dict(loss="cross_entropy", optimizer=xb.optim.adam(0.05), batch_size=8,
                    epochs=2, progress=False, seed=1)
    model = xb.Sequential([xb.Dense(4), xb.Tanh(), xb.Dense(2)])
    a = xb.fit(model, x, y, backend=dp, **settings)
    b = xb.fit(model, x, y, backend="jax", **settings)
    for u, v in zip(xb.tree.tree_leaves(xb.to_numpy(a.state)),
                    xb.tree.tree_leaves(xb.to_numpy(b.state))):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_each_process_orders_its_own_slice():
    """DataOrder for process k of several: its slice shuffled with seeds (seed, epoch, k),
    its part of each batch, and the longest slice's steps per epoch."""
    mine = DataOrder(300, 15, seed=3, shuffle=True, steps_per_epoch=20, stream=0)
    other = DataOrder(290, 15, seed=3, shuffle=True, steps_per_epoch=20, stream=1)
    assert sorted(np.concatenate([mine.indices(s) for s in range(20)])) == list(range(300))
    assert len(other.indices(19)) == 5 and len(other.indices(39)) == 5
    np.testing.assert_array_equal(mine.epoch(1),
                                  np.random.default_rng([3, 1, 0]).permutation(300))
    np.testing.assert_array_equal(other.epoch(1),
                                  np.random.default_rng([3, 1, 1]).permutation(290))
    np.testing.assert_array_equal(DataOrder(300, 15, seed=3, shuffle=True).epoch(1),
                                  np.random.default_rng([3, 1]).permutation(300))


# -- several processes --------------------------------------------------------------------

# Process k of 2 (2 CPU devices each: a 4-device mesh over both) on its own slice of the
# data: 36 and 34 training rows, 26 and 24 validation rows. It trains straight, then stops
# after 4 steps and resumes from the checkpoint process 0 wrote, and dumps what it got.
PROCESS = COMMON + """
port, rank, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
assert xb.backends.initialize_distributed("jax", f"127.0.0.1:{port}", 2, rank) == (rank, 2)
dp = xb.get_backend("jax", devices="all")
assert dp.batch_shards == 4 and dp.process_count == 2 and dp.process_index == rank
train, val = (slice(0, 36), slice(0, 26)) if rank == 0 else (slice(36, 70), slice(26, 50))
settings = dict(loss="cross_entropy", optimizer=xb.optim.adam(0.01), batch_size=30, seed=3,
                progress=False, epochs=3, validation_data=(X[val], Y[val]), backend=dp)
try:  # this process's devices alone would train alone
    xb.fit(mlp(), X[train], Y[train], **dict(settings, backend="jax"))
    raise AssertionError("a one-process backend in a two-process run")
except ValueError as e:
    assert "one of 2 that train together" in str(e) and "devices='all'" in str(e), e
straight = xb.fit(mlp(), X[train], Y[train], **settings)
xb.fit(mlp(), X[train], Y[train], max_steps=4, checkpoint_dir=f"{tmp}/ckpt", **settings)
resumed = xb.fit(mlp(), X[train], Y[train], checkpoint_dir=f"{tmp}/ckpt", resume=True,
                 **settings)
assert_same(straight, resumed, "resumed")
with xb.use_backend(dp):
    scores = xb.evaluate(mlp(), straight.params, X[train], Y[train], "cross_entropy",
                         model_state=straight.state.model_state, batch_size=16)
leaves = [np.asarray(a) for a in tree_leaves(xb.to_numpy(straight.state))]
np.savez(f"{tmp}/state{rank}.npz", *leaves)
history = {k: v for k, v in straight.history.items() if k != "time"}
with open(f"{tmp}/out{rank}.json", "w") as f:
    json.dump({"history": history, "evaluate": scores}, f)
print("ok", rank)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes(argv: list[list[str]], env: dict[str, str], timeout: float = 300
               ) -> list[tuple[int, str, str]]:
    """Run the command lines together; (status, stdout, stderr) of each. If one fails the
    others are stopped, since they would wait for it forever."""
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for a in argv]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            results.append((p.returncode, out, err))
            if p.returncode:
                break
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return results


def test_two_processes_agree_with_one_process_on_their_batches(jax_backend, tmp_path):
    """Two processes on 127.0.0.1 (gloo collectives on the CPU), each with its own slice of
    the data and two devices, train as one process does on the global batches they make
    together: each step joins process 0's part and process 1's, each drawn from its own
    slice in the documented order (DataOrder with stream=k), padded to 16 rows and masked.
    Checkpoints written by process 0 resume the run in both; validation and evaluate cover
    both slices."""
    port = _free_port()
    results = _processes([[sys.executable, "-c", PROCESS, str(port), str(k), str(tmp_path)]
                          for k in range(2)], _subprocess_env(2))
    for k, (status, out, err) in enumerate(results):
        assert status == 0, f"process {k}: {err[-4000:]}"
    assert len(results) == 2
    namespace: dict = {}
    exec(compile(COMMON, "COMMON", "exec"), namespace)
    x, y, mlp = namespace["X"], namespace["Y"], namespace["mlp"]

    # the same steps in one process, on one device
    slices = [(x[:36], y[:36]), (x[36:], y[36:])]
    orders = [DataOrder(len(xs), 15, seed=3, shuffle=True, steps_per_epoch=3, stream=k)
              for k, (xs, _) in enumerate(slices)]
    model, opt, one = mlp(), xb.optim.adam(0.01), xb.get_backend("jax")
    state = xb.TrainState.create(xb.init_params(model, 3, (5,), backend=one), opt,
                                 xb.init_state(model, (5,), backend=one), seed=3)
    step = xb.make_train_step(model, "cross_entropy", opt, backend=one)
    losses, val_losses = [], []
    for epoch in range(3):
        total = count = 0.0
        for s in range(3 * epoch, 3 * epoch + 3):
            parts = []
            for order, (xs, ys) in zip(orders, slices):
                idx = order.indices(s)
                pad = 16 - len(idx)
                parts.append((np.concatenate([xs[idx], np.zeros((pad, 5), np.float32)]),
                              np.concatenate([ys[idx], np.zeros(pad, ys.dtype)]),
                              (np.arange(16) < len(idx)).astype(np.float32)))
            batch = tuple(np.concatenate(column) for column in zip(*parts))
            state, loss = step(state, batch)
            total += float(loss) * batch[2].sum()
            count += batch[2].sum()
        losses.append(total / count)
        val_losses.append(xb.evaluate(model, state.params, x[:50], y[:50], "cross_entropy",
                                      model_state=state.model_state)["loss"])
    reference = [np.asarray(a) for a in xb.tree.tree_leaves(xb.to_numpy(state))]
    for k in range(2):
        with np.load(tmp_path / f"state{k}.npz", allow_pickle=False) as f:
            got = [f[f"arr_{i}"] for i in range(len(f.files))]
        assert len(got) == len(reference)
        for a, b in zip(got, reference):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"process {k}")
        out = json.loads((tmp_path / f"out{k}.json").read_text())
        np.testing.assert_allclose(out["history"]["loss"], losses, rtol=RTOL)
        np.testing.assert_allclose(out["history"]["val_loss"], val_losses, rtol=RTOL)
        whole = xb.evaluate(model, state.params, x, y, "cross_entropy",
                            model_state=state.model_state)
        for name, value in whole.items():
            assert abs(out["evaluate"][name] - value) < 1e-5, (name, out["evaluate"], whole)
    assert [p.name for p in xb.CheckpointManager(tmp_path / "ckpt").checkpoints()][-1] == \
        "ckpt-000000009.safetensors"


def test_the_train_command_in_two_processes_agrees_with_one(jax_backend):
    """`xbackprop train xor --coordinator ... --num-processes 2 --process-id K`: each process
    takes 2 of the 4 XOR points, every step's batch holds all four (its order does not
    change the sums), so the result is the one-process run's; only process 0 prints."""
    port = _free_port()
    command = [sys.executable, "-m", "xbackprop", "train", "xor", "--backend", "jax",
               "--epochs", "50", "--quiet"]
    results = _processes([command + ["--coordinator", f"127.0.0.1:{port}", "--num-processes",
                                     "2", "--process-id", str(k)] for k in range(2)],
                         _subprocess_env(1))
    assert [r[0] for r in results] == [0, 0], results[-1][2][-3000:]
    single = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=_subprocess_env(1))
    assert single.returncode == 0, single.stderr[-3000:]
    first, second = ("\n".join(line for line in r[1].splitlines()
                                if not line.startswith("[Gloo]"))  # gloo's own hello
                      for r in results)
    assert second == ""
    assert "backend jax (mesh(data=2) of cpu, 2 processes)" in first and "4 train" in first

    def scores(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith(("train loss", "test  loss"))]
    assert scores(first) == scores(single.stdout) and len(scores(first)) == 2, (first, single)
