"""Ctrl-C and the `xbackprop` command outside training: status 130 and one line, never a
traceback, from the package's first line on; a program that imports xbackprop keeps
Python's own Ctrl-C. (Inside training: tests/test_fit_checkpoints.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

# A Ctrl-C delivered exactly while `import xbackprop` runs: a finder hook sends SIGINT to
# the process when the package asks for NumPy (its first heavy import), then the process
# goes on as the named program would.
PROGRAM = textwrap.dedent("""
    import importlib.abc, os, signal, sys

    class CtrlC(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "numpy":
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGINT)
            return None

    as_what = sys.argv.pop(1)
    if as_what == "-m":  # python -m xbackprop: argv[0] is "-m" while the package imports
        sys.orig_argv = [sys.executable, "-m", "xbackprop", "backends"]
    sys.argv[0] = as_what
    sys.meta_path.insert(0, CtrlC())
    import xbackprop.cli
    print("imported")
""")


def run(as_what: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XBACKPROP_BACKEND"}
    return subprocess.run([sys.executable, "-c", PROGRAM, as_what], capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.parametrize("as_what", ["/usr/local/bin/xbackprop", "-m"])
def test_ctrl_c_while_the_command_imports_exits_130_without_a_traceback(as_what):
    """It printed a KeyboardInterrupt traceback (2 runs in 10 interrupted in the first
    quarter second): the command's own handler came only after the import."""
    done = run(as_what)
    assert done.returncode == 130, done
    assert done.stderr == "\nxbackprop: interrupted\n" and done.stdout == "", done


def test_a_program_that_imports_xbackprop_keeps_pythons_ctrl_c():
    done = run("my_script.py")
    assert done.returncode in (1, -signal.SIGINT), done  # Python's KeyboardInterrupt
    assert "KeyboardInterrupt" in done.stderr and "imported" not in done.stdout
