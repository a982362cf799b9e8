"""`xbackprop train`'s data-parallel options: --devices on JAX (a mesh the run reports), the
errors for NumPy, for a bad count and for an incomplete multi-process address. (Two
processes training together: tests/test_fit_sharded.py.)"""

from __future__ import annotations

import pytest

from xbackprop.cli import main

pytestmark = pytest.mark.usefixtures("clean_backend_choice")


def test_devices_runs_over_a_mesh_and_says_so(jax_backend, capsys):
    assert main(["train", "xor", "--backend", "jax", "--devices", "all", "--epochs", "3",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "backend jax (mesh(data=1) of cpu)" in out and "train loss" in out


def test_devices_on_numpy_exits_2_saying_to_use_jax(capsys):
    assert main(["train", "xor", "--devices", "2", "--epochs", "1", "--quiet"]) == 2
    assert "backend 'numpy' computes on one device" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-2", "many"])
def test_a_bad_device_count_is_a_usage_error(bad, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "xor", "--devices", bad])
    assert e.value.code == 2
    assert f"a number of devices >= 1 or 'all', not '{bad}'" in capsys.readouterr().err


def test_a_multi_process_run_needs_the_whole_address(jax_backend, capsys):
    assert main(["train", "xor", "--backend", "jax", "--coordinator", "127.0.0.1:1234",
                 "--epochs", "1"]) == 2
    assert "needs all of the coordinator address" in capsys.readouterr().err
    assert main(["train", "xor", "--backend", "jax", "--coordinator", "127.0.0.1:1234",
                 "--num-processes", "2", "--process-id", "2", "--epochs", "1"]) == 2
    assert "process id 2 is not in [0, 2)" in capsys.readouterr().err
    assert main(["train", "xor", "--coordinator", "127.0.0.1:1234", "--num-processes", "2",
                 "--process-id", "0", "--epochs", "1"]) == 2
    assert "backend 'numpy' runs in one process" in capsys.readouterr().err
