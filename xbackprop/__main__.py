"""`python -m xbackprop ...`: the same as the `xbackprop` command."""

from .cli import console

console()
