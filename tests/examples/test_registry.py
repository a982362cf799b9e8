"""The examples registry: every example keeps the contract (SUMMARY, run, draw, OPTIONS),
runs quick on NumPy and JAX without printing, reports itself in text, and draws real
pictures into the folder it is given."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap

import pytest

from xbackprop import examples

from .conftest import check_png


def test_every_name_has_a_module_that_keeps_the_contract():
    assert len(examples.NAMES) == len(set(examples.NAMES)) >= 10
    for name in examples.NAMES:
        module = examples.load(name)
        assert module.__name__.endswith(name.replace("-", "_"))
        assert isinstance(module.SUMMARY, str) and "\n" not in module.SUMMARY
        assert len(module.SUMMARY) <= 100, f"{name}: summary longer than one line"
        assert module.__doc__ and module.__doc__.startswith(f"{name}:")
        parameters = inspect.signature(module.run).parameters
        for keyword in ("backend", "seed", "quick", "progress"):
            assert parameters[keyword].kind is inspect.Parameter.KEYWORD_ONLY, (name, keyword)
        assert parameters["seed"].default == 0 and parameters["quick"].default is False
        for flags, kwargs in getattr(module, "OPTIONS", ()):
            assert all(f.startswith("--") for f in flags) and "help" in kwargs
            assert flags[0][2:].replace("-", "_") in parameters, (name, flags)


def test_summaries_list_every_example_in_order():
    assert list(examples.summaries()) == list(examples.NAMES)


def test_an_unknown_example_names_the_choices():
    with pytest.raises(ValueError, match="unknown example 'nope'; choose one of worked-221"):
        examples.load("nope")


@pytest.mark.parametrize("name", examples.NAMES)
def test_quick_run_reports_without_printing(name, lesson_backend, quick, capsys):
    result = quick(name, lesson_backend)
    assert capsys.readouterr().out == ""
    report = str(result)
    assert report.startswith(f"{name}:"), report[:80]
    assert len(report.splitlines()) >= 2
    assert " nan" not in report.lower(), f"{name}: a NaN in the report"


@pytest.mark.parametrize("name", examples.NAMES)
def test_results_hold_host_arrays_only(name, lesson_backend, quick):
    """A result draws without the backend it ran on: no device arrays inside."""
    leaves = []

    def walk(value, depth=0):
        if isinstance(value, dict):
            values = value.values()
        elif isinstance(value, (list, tuple)):
            values = value
        elif hasattr(value, "__dataclass_fields__") and depth < 4:
            values = [getattr(value, f) for f in value.__dataclass_fields__]
        else:
            leaves.append(value)
            return
        for v in values:
            walk(v, depth + 1)

    walk(quick(name, lesson_backend))
    modules = {type(v).__module__.split(".")[0] for v in leaves}
    assert not modules & {"jax", "jaxlib", "cupy"}, f"{name}: device arrays in the result"
    assert len(leaves) >= 5, f"{name}: the walk found almost nothing: {leaves}"


@pytest.mark.parametrize("name", examples.NAMES)
def test_pictures_are_real_pngs_in_the_folder(name, pictures):
    paths = pictures(name)
    assert paths, f"{name} drew nothing"
    assert len({p.name for p in paths}) == len(paths)
    for path in paths:
        assert path.suffix == ".png" and path.parent == paths[0].parent
        check_png(path, min_size=(500, 220))


def test_draw_makes_the_folder(quick, tmp_path):
    out = tmp_path / "new" / "folder"
    paths = examples.draw("worked-221", quick("worked-221"), out)
    assert out.is_dir() and paths == [out / "network.png"]


def test_examples_import_numpy_only_and_run_without_jax():
    """Importing every example (and the command, which lists them) imports neither JAX nor
    matplotlib; a NumPy run draws nothing and needs neither."""
    code = textwrap.dedent("""
        import sys
        import xbackprop.cli.example
        from xbackprop import examples
        modules = [examples.load(name) for name in examples.NAMES]
        print(examples.run('xor', quick=True, epochs=5).backend)
        bad = sorted(m for m in sys.modules
                     if m.split('.')[0] in ('jax', 'jaxlib', 'cupy', 'matplotlib'))
        assert not bad, bad
    """)
    env = {k: v for k, v in os.environ.items() if k != "XBACKPROP_BACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "numpy"
