"""`python -m xbackprop ...`: the same as the `xbackprop` command."""

import sys

from .cli import main

sys.exit(main())
