"""`python -m tune.cli`: the `hpo` command."""

import sys

from tune.cli import run

sys.exit(run())
