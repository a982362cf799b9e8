"""`--module FILE.py`: import a user's Python file by path (`gradcheck`, `predict`), so the
layer and loss classes it defines exist in this process.

The file runs, as any import does, so only ever give it your own. Whatever goes wrong while
it runs is `ModuleFailedError` (exit status 3) naming the file and its line: an exception,
a syntax error, and also `sys.exit()` or `exit()` at the top level, which would otherwise
end the command with the file's status, checking nothing.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from . import ModuleFailedError

__all__ = ["load_user_module"]


def load_user_module(path: str, option: str = "--module") -> ModuleType:
    """The module of the Python file `path`, imported under the name
    `xbackprop_user_<stem>`; `option` names the command-line option in messages."""
    if not path.strip():
        raise ValueError(f"{option} needs a file name, not an empty string")
    file = Path(path)
    if not file.is_file():
        what = "a folder, not a Python file" if file.is_dir() else "no such file"
        raise ValueError(f"{option} {path}: {what}")
    if file.suffix != ".py":
        raise ValueError(f"{option} {path}: not a Python file (the name must end in .py)")
    name = f"xbackprop_user_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ValueError(f"{option} {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as e:  # sys.exit() / exit() at import: a script, not a module
        del sys.modules[name]
        raise ModuleFailedError(f"{option} {path}: {_where_it_exited(e, file)}") from None
    except Exception as e:
        del sys.modules[name]
        raise ModuleFailedError(f"{option} {path}: {_where_it_failed(e, file)}") from e
    return module


def _where_it_exited(error: SystemExit, file: Path) -> str:
    lineno, text = _deepest_line(error, file)
    place = f"line {lineno}: " if lineno is not None else ""
    code = f"\n    {text.strip()}" if text and text.strip() else ""
    return (f"{place}the file called sys.exit({error.code!r}) while it was imported, so "
            f"nothing in it could be checked{code}\n(put a script's own code under "
            "`if __name__ == '__main__':`)")


def _where_it_failed(error: Exception, file: Path) -> str:
    """"line 3: SyntaxError: invalid syntax" with the line, for the deepest line of `file`
    in the error (a syntax error's own line; else the traceback's last frame in the file)."""
    if isinstance(error, SyntaxError) and error.filename and \
            Path(error.filename).resolve() == file.resolve():
        lineno, text = error.lineno, error.text
        message = f"{type(error).__name__}: {error.msg}"
    else:
        lineno, text = _deepest_line(error, file)
        message = f"{type(error).__name__}: {error}"
    if lineno is None:
        return f"importing it failed: {message}"
    code = f"\n    {text.strip()}" if text and text.strip() else ""
    return f"line {lineno}: {message}{code}\n(fix the file, or run it with python to see the " \
        "whole traceback)"


def _deepest_line(error: BaseException, file: Path) -> tuple[int | None, str | None]:
    """The line number and text of the last frame of `error`'s traceback in `file`."""
    lineno, text = None, None
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename).resolve() == file.resolve():
            lineno, text = frame.lineno, frame.line
    return lineno, text
