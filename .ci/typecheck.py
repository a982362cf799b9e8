"""The type check: mypy, configured in pyproject.toml ([tool.mypy]), over the package as it
is installed. Run from anywhere: `python .ci/typecheck.py` (.ci/run runs it). Exits 0 when
mypy finds nothing, 1 when it reports errors (printed as mypy prints them), 2 when it could
not run.

Why not plain `mypy`: setuptools installs the checkout's top-level `backends/` folder as
`xbackprop.backends` ([tool.setuptools.package-dir]), and mypy has no such mapping
(python/mypy#10564, closed as a question). Plain `mypy` sees a top-level package `backends`
beside `xbackprop`, cannot resolve `from .backends import ...` and checks every use of the
backend layer against nothing. Here mypy reads its configuration and finds the files as it
always does; only the module names of the files under `backends/` change to the names they
are installed under, so every import between the two folders is checked.
"""

from __future__ import annotations

import os
import sys

from mypy import build, main
from mypy.errors import CompileError
from mypy.modulefinder import BuildSource

INSTALLED_AS = {"backends": "xbackprop.backends"}  # the folder's package: its installed name


def installed_name(module: str) -> str:
    """`backends._base` -> `xbackprop.backends._base`; any other module keeps its name."""
    top, dot, rest = module.partition(".")
    return INSTALLED_AS[top] + dot + rest if top in INSTALLED_AS else module


def run(args: list[str]) -> int:
    sources, options = main.process_options(args, program="typecheck")
    renamed = [BuildSource(s.path, installed_name(s.module), s.text, base_dir=s.base_dir)
               for s in sources]
    try:
        result = build.build(renamed, options)
    except CompileError as e:  # a blocking error (a syntax error, a bad option): its messages
        messages, status = e.messages, 2
    else:
        messages, status = result.errors, 1
    for line in messages:
        print(line)
    errors = sum(": error:" in line for line in messages)
    if errors:
        files = len({line.split(":", 1)[0] for line in messages if ": error:" in line})
        print(f"Found {errors} error{'s' * (errors != 1)} in {files} file"
              f"{'s' * (files != 1)} (checked {len(sources)} source files)")
        return status
    print(f"Success: no issues found in {len(sources)} source files")
    return 0


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # pyproject.toml's
    sys.exit(run(sys.argv[1:]))
