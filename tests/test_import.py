"""Importing xbackprop imports NumPy only; the backend env variable is read when a backend is
first needed, not at import; the backend layer is `xbackprop.backends`, never a top-level
`backends` package."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

import xbackprop as xb

ENV = "XBACKPROP_BACKEND"


def run_python(code: str, env_update: dict | None = None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env.update(env_update or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


def test_import_does_not_import_jax_or_cupy():
    out = run_python("""
        import sys
        import xbackprop, xbackprop.cli, xbackprop.cli.train, xbackprop.cli.gradcheck, xbackprop.recipes, xbackprop.gradcheck
        bad = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'cupy'))
        assert not bad, bad
        print('ok')
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_numpy_training_does_not_import_jax():
    out = run_python("""
        import sys
        import xbackprop as xb
        x, y = xb.data.xor()
        model = xb.Sequential([xb.Dense(4), xb.Sigmoid(), xb.Dense(1), xb.Sigmoid()])
        result = xb.fit(model, x, y, loss='mse', optimizer=xb.optim.adam(0.1), epochs=2,
                        progress=False)
        xb.predict(model, result.params, x)
        assert xb.get_backend().name == 'numpy'
        assert 'jax' not in sys.modules and 'cupy' not in sys.modules
        print('ok')
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_env_variable_is_read_when_a_backend_is_needed_not_at_import():
    pytest.importorskip("jax")
    out = run_python("""
        import os, sys
        import xbackprop as xb
        assert 'jax' not in sys.modules
        os.environ['XBACKPROP_BACKEND'] = 'jax'
        assert xb.get_backend().name == 'jax'
        params = xb.init_params(xb.Dense(2), 0, (3,))
        assert type(params['W']).__module__.startswith('jax'), type(params['W'])
        print('ok')
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_env_variable_set_before_import_is_not_imported_eagerly():
    """Even with XBACKPROP_BACKEND=jax in the environment, importing does not import JAX."""
    out = run_python("""
        import sys
        import xbackprop
        assert 'jax' not in sys.modules
        print('ok')
    """, {ENV: "jax"})
    assert out.returncode == 0, out.stderr


def test_a_bad_env_value_fails_on_use_not_on_import():
    out = run_python("""
        import xbackprop as xb
        try:
            xb.get_backend()
        except xb.UnknownBackendError as e:
            print(e)
        else:
            raise SystemExit('no error')
    """, {ENV: "tensorflow"})
    assert out.returncode == 0, out.stderr
    assert "environment variable XBACKPROP_BACKEND='tensorflow'" in out.stdout


def test_backends_is_a_subpackage_not_a_top_level_package(tmp_path):
    assert xb.backends.__name__ == "xbackprop.backends"
    from xbackprop.backends import numpy_backend

    assert numpy_backend.__name__ == "xbackprop.backends.numpy_backend"
    out = run_python("""
        import importlib.util
        import xbackprop.backends
        print(importlib.util.find_spec('backends'))
        print(xbackprop.backends.get_backend('numpy').__class__.__module__)
    """, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "xbackprop.backends.numpy_backend"]


def test_public_names_exist():
    for name in xb.__all__:
        assert hasattr(xb, name), name
    for name in xb.backends.__all__:
        assert hasattr(xb.backends, name), name


def test_version_matches_the_distribution():
    assert xb.__version__ == metadata.version("xbackprop")


CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_imports_from_the_checkout_root_whatever_the_install_mode(where, tmp_path):
    """`python -c "import xbackprop"` in the checkout's root finds the source folder, which has
    no `backends/` inside: with a wheel installed (simulated here by removing the editable
    install's import hook, if there is one) it must still find its backend layer, and from
    anywhere else the installed package is used as it is."""
    out = run_python(f"""
        import sys
        sys.meta_path[:] = [f for f in sys.meta_path
                            if 'editable' not in getattr(type(f), '__module__', '')
                            and 'editable' not in getattr(f, '__module__', '')]
        sys.path_importer_cache.clear()
        if {where == "checkout"!r}:
            sys.path.insert(0, {CHECKOUT!r})
            sys.modules.pop('xbackprop', None)
        try:
            import xbackprop as xb
        except ModuleNotFoundError as e:
            print('not installed:', e)   # an editable install alone, run from elsewhere
            raise SystemExit(0)
        from xbackprop.backends import numpy_backend
        x, y = xb.data.xor()
        model = xb.Sequential([xb.Dense(2), xb.Tanh(), xb.Dense(1)])
        xb.fit(model, x, y, loss='mse', optimizer=xb.optim.sgd(0.1), epochs=1, progress=False)
        print(xb.backends.__name__, numpy_backend.__name__, xb.__file__.startswith({CHECKOUT!r}))
    """, cwd=CHECKOUT if where == "checkout" else tmp_path)
    assert out.returncode == 0, out.stderr
    if where == "checkout":
        assert out.stdout.split() == ["xbackprop.backends", "xbackprop.backends.numpy_backend",
                                      "True"]
    else:
        assert out.stdout.startswith(("not installed", "xbackprop.backends "))
