"""Stage 8, the command line: the only stage that turns errors into messages and exit codes.
`group.py` is the `cg` group (options, limits, lazily imported commands from `lazy.py`); each
command has its module; `common.py` is what they share."""

from cg.cli.group import main

__all__ = ["main"]
